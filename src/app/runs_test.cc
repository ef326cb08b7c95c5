// The application services for runs, operator items and switches, over a real workspace
// built through a Runtime (the composition root every face uses).
#include "app/runs.h"

#include <gtest/gtest.h>

#include "app/views.h"
#include "core/testing_util.h"
#include "flow/builtins.h"
#include "flow/testing_adapters.h"
#include "store/workspace.h"

namespace keel::app {
namespace {

using nlohmann::json;

class AppRunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store::Workspace::Init(dir(), store::InitOptions{}, env_).ok());
    keel::testing::WriteFile(dir() + "/workflows/gate.yaml", R"(name: gate
input: {required: [amount]}
steps:
  - id: review
    approval: {summary: "Pay ${input.amount}", recommend: approve}
  - id: pay
    action: fake_keyed.pay
    params: {amount: "${input.amount}"}
)");
    Open();
  }
  std::string dir() const { return tmp_.Sub("ws"); }
  void Open(const std::string& yaml_extra = "") {
    rt_.reset();
    if (!yaml_extra.empty()) {
      std::string cfg = keel::testing::ReadFileOrDie(dir() + "/keel.yaml");
      keel::testing::WriteFile(dir() + "/keel.yaml", cfg + yaml_extra);
    }
    RuntimeOptions o;
    o.workspace_dir = dir();
    o.env = env_;
    AdapterFactory f;
    f.name = "fake_keyed";
    f.make = [](const Env&) { return std::make_unique<flow::CountingAdapter>("fake_keyed", true); };
    o.test_adapters.push_back(f);
    auto rt = Runtime::Open(std::move(o));
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    rt_ = std::move(*rt);
  }
  std::string Start(int amount) {
    StartRunRequest req;
    req.workflow = "gate";
    req.input = {{"amount", amount}};
    auto id = StartRun(*rt_, req);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }
  Status Work() {
    WorkerRequest w;
    w.until_idle = true;
    std::atomic<bool> stop{false};
    return RunWorker(*rt_, w, stop, [](const std::string&) {}).status();
  }

  keel::testing::TempDir tmp_;
  Env env_;
  std::unique_ptr<Runtime> rt_;
};

TEST_F(AppRunsTest, ListRunsPagesWithACursorAndRefusesBadRequests) {
  std::set<std::string> started;
  for (int i = 0; i < 7; ++i) started.insert(Start(i));
  std::set<std::string> seen;
  ListRunsRequest req;
  req.limit = 3;
  int pages = 0;
  for (;;) {
    auto page = ListRuns(*rt_, req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (const auto& r : page->runs) EXPECT_TRUE(seen.insert(r.id).second) << "repeated " << r.id;
    if (page->next.empty()) break;
    req.cursor = page->next;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, started);

  req.cursor = "not-a-cursor";
  EXPECT_EQ(ListRuns(*rt_, req).status().code(), StatusCode::kInvalidArgument);
  req.cursor.clear();
  req.limit = 0;
  EXPECT_EQ(ListRuns(*rt_, req).status().code(), StatusCode::kInvalidArgument);
  req.limit = 5;
  req.status = "done";
  EXPECT_EQ(ListRuns(*rt_, req).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(AppRunsTest, ShowRunTakesAUniquePrefixAndRefusesAnAmbiguousOne) {
  std::string a = Start(1);
  Start(2);
  auto d = ShowRun(*rt_, a.substr(0, a.size() - 2));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->run.id, a);
  auto amb = ShowRun(*rt_, "run_");
  EXPECT_EQ(amb.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(amb.status().message().find("several"), std::string::npos);
  EXPECT_EQ(ShowRun(*rt_, "run_nothere").status().code(), StatusCode::kNotFound);
  auto huge = ShowRun(*rt_, std::string(5000, 'a'));
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_LT(huge.status().message().size(), 200u);  // not echoed back whole
}

TEST_F(AppRunsTest, OneItemViewAndSeveralDecisionsInOneRequest) {
  std::string r1 = Start(10), r2 = Start(20), r3 = Start(30);
  ASSERT_TRUE(Work().ok());
  auto items = ListItems(*rt_, {});
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 3u);
  for (const auto& it : *items) {
    json v = views::Item(it);
    EXPECT_EQ(v["state"], "open");
    EXPECT_EQ(v["kind"], "approval");
    EXPECT_FALSE(v.contains("decision"));
  }
  // The same item inside the run view has the same shape.
  auto d = ShowRun(*rt_, r1);
  ASSERT_TRUE(d.ok());
  json run = views::Run(*d);
  ASSERT_EQ(run["approvals"].size(), 1u);
  EXPECT_EQ(run["approvals"][0], views::Item(d->items[0]));

  DecideRequest dr;
  dr.ids = {(*items)[0].id, (*items)[1].id.substr(0, 20), "apv_nothere"};
  auto res = DecideItems(*rt_, dr);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->size(), 3u);
  EXPECT_TRUE((*res)[0].status.ok());
  EXPECT_TRUE((*res)[1].status.ok()) << (*res)[1].status.ToString();
  EXPECT_EQ((*res)[1].id, (*items)[1].id);  // the prefix resolved
  EXPECT_NE((*res)[0].next.find("run " + (*items)[0].run_id + " continues"), std::string::npos)
      << (*res)[0].next;
  EXPECT_EQ((*res)[2].status.code(), StatusCode::kNotFound);
  // Deciding again is refused, and says so per item.
  auto again = DecideItems(*rt_, dr);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)[0].status.ok());

  ListItemsRequest all;
  all.all = true;
  auto every = ListItems(*rt_, all);
  ASSERT_TRUE(every.ok());
  int decided = 0;
  for (const auto& it : *every) decided += views::Item(it)["state"] == "decided";
  EXPECT_EQ(decided, 2);

  DecideRequest bad;
  EXPECT_EQ(DecideItems(*rt_, bad).status().code(), StatusCode::kInvalidArgument);
  bad.ids = {(*items)[2].id};
  bad.approve = false;  // a rejection needs a reason
  EXPECT_EQ(DecideItems(*rt_, bad).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Work().ok());
  for (const auto& r : {r1, r2, r3}) {
    bool decided = r == (*items)[0].run_id || r == (*items)[1].run_id;
    EXPECT_EQ(ShowRun(*rt_, r)->run.status, decided ? "completed" : "waiting");
  }
}

TEST_F(AppRunsTest, AdapterModesComeFromTheFileUntilASwitchIsOnTheLedger) {
  auto find = [&](const std::string& name) {
    auto list = ListAdapters(*rt_);
    EXPECT_TRUE(list.ok());
    for (const auto& a : *list) {
      if (a.name == name) return a;
    }
    ADD_FAILURE() << "no adapter " << name;
    return AdapterState{};
  };
  EXPECT_EQ(find("log").entry.mode, AdapterMode::kSandbox);
  EXPECT_FALSE(find("log").entry.can_go_live);
  EXPECT_EQ(find("fake_keyed").entry.mode, AdapterMode::kSandbox);
  EXPECT_EQ(find("fake_keyed").entry.mode_source, "default");

  // keel.yaml sets a default per adapter; the workspace's `mode:` is the master switch.
  Open("adapters:\n  fake_keyed: {mode: live}\n");
  EXPECT_EQ(find("fake_keyed").entry.requested, AdapterMode::kLive);
  EXPECT_EQ(find("fake_keyed").entry.mode, AdapterMode::kSandbox);  // mode: sandbox
  {
    std::string cfg = keel::testing::ReadFileOrDie(dir() + "/keel.yaml");
    cfg.replace(cfg.find("mode: sandbox"), 13, "mode: live");
    keel::testing::WriteFile(dir() + "/keel.yaml", cfg);
  }
  Open();
  EXPECT_EQ(find("fake_keyed").entry.mode, AdapterMode::kLive);
  EXPECT_EQ(find("log").entry.mode, AdapterMode::kSandbox);  // no live mode at all
  // A switch on the ledger wins over the file, also after a restart.
  ASSERT_TRUE(SetAdapterMode(*rt_, "fake_keyed", AdapterMode::kSandbox).ok());
  EXPECT_EQ(find("fake_keyed").entry.mode, AdapterMode::kSandbox);
  EXPECT_EQ(find("fake_keyed").entry.requested, AdapterMode::kSandbox);
  Open();
  EXPECT_EQ(find("fake_keyed").entry.mode, AdapterMode::kSandbox);
  EXPECT_EQ(find("fake_keyed").entry.mode_source, "ledger");
  // Refusals: the same mode again, a recorder going live, an unknown adapter.
  EXPECT_EQ(SetAdapterMode(*rt_, "fake_keyed", AdapterMode::kSandbox).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(SetAdapterMode(*rt_, "log", AdapterMode::kLive).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(SetAdapterMode(*rt_, "smtp", AdapterMode::kLive).code(), StatusCode::kNotFound);
  store::LedgerQuery q;
  q.kind = "adapter.mode";
  EXPECT_EQ(rt_->ws().QueryLedger(q)->size(), 1u);
}

TEST_F(AppRunsTest, ABadAdaptersSectionIsRefusedWithItsLine) {
  rt_.reset();
  for (const char* bad :
       {"adapters:\n  smtp: {mode: live}\n", "adapters:\n  log: {mode: on}\n",
        "adapters:\n  log: {mood: live}\n", "adapters: [log]\n",
        "adapters:\n  log: {concurrency: 0}\n", "adapters:\n  log: {concurrency: 257}\n",
        "adapters:\n  log: {concurrency: many}\n"}) {
    std::string cfg = keel::testing::ReadFileOrDie(dir() + "/keel.yaml");
    keel::testing::WriteFile(dir() + "/keel.yaml", cfg + bad);
    RuntimeOptions o;
    o.workspace_dir = dir();
    o.env = env_;
    auto rt = Runtime::Open(std::move(o));
    EXPECT_EQ(rt.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(rt.status().message().find("line"), std::string::npos) << rt.status().message();
    keel::testing::WriteFile(dir() + "/keel.yaml", cfg);
  }
}

TEST_F(AppRunsTest, EffectLimitsComeFromKeelYaml) {
  rt_.reset();
  std::string cfg = keel::testing::ReadFileOrDie(dir() + "/keel.yaml");
  keel::testing::WriteFile(
      dir() + "/keel.yaml",
      cfg + "adapters:\n  log: {concurrency: 2}\neffects:\n  concurrency: 3\n");
  Open();
  auto list = ListAdapters(*rt_);
  ASSERT_TRUE(list.ok());
  for (const auto& a : *list) {
    EXPECT_EQ(a.entry.concurrency, a.name == "log" ? 2 : 0) << a.name;
  }
  EXPECT_TRUE(rt_->engine().ok());
  // A bad effects section is refused when the engine is first needed, naming the line.
  rt_.reset();
  keel::testing::WriteFile(dir() + "/keel.yaml", cfg + "effects:\n  concurrency: 0\n");
  Open();
  auto e = rt_->engine();
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("effects.concurrency"), std::string::npos)
      << e.status().message();
}

TEST_F(AppRunsTest, LocateWorkspaceTakesTheFlagThenTheEnvironmentThenTheFolders) {
  EXPECT_EQ(*LocateWorkspace(dir(), "/elsewhere", "/"), dir());
  EXPECT_EQ(*LocateWorkspace("", dir(), "/"), dir());
  EXPECT_EQ(*LocateWorkspace("", "", dir() + "/workflows"), dir());
  EXPECT_EQ(LocateWorkspace("", "", tmp_.path()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace keel::app
