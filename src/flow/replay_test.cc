// Journals of example runs are kept as fixtures (tests/fixtures/flow/*.json, made by an
// earlier build with KEEL_UPDATE_FIXTURES=1) and must replay on this build without
// divergence: the same workflow version and recorded outputs lead to the same steps.
#include "flow/replay.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kDay;
using testing::kSec;

std::string FixtureDir() {
  return keel::testing::SourceDir() + "/tests/fixtures/flow";
}
std::string ExampleDir() {
  return keel::testing::SourceDir() + "/examples/workflows";
}

std::vector<store::JournalRow> FromJson(const json& arr) {
  std::vector<store::JournalRow> out;
  for (const auto& j : arr) {
    store::JournalRow r;
    r.step_key = j["key"];
    r.step_id = j["step"];
    r.kind = j["kind"];
    r.status = j["status"];
    r.output = j["output"].dump();
    out.push_back(r);
  }
  return out;
}

// Runs one example with a script of operator actions and returns its fixture.
json RunExample(const std::string& name, const json& input,
                const std::function<void(FlowFixture&, const std::string&)>& script) {
  FlowFixture f;
  f.AddWorkflow(name, keel::testing::ReadFileOrDie(ExampleDir() + "/" + name + ".yaml"));
  std::string id = f.Start(name, input);
  f.Drive(60 * kSec, kSec);
  if (script) script(f, id);
  auto journal = store::ListJournal(*f.ws, id);
  EXPECT_TRUE(journal.ok());
  json arr = json::array();
  for (const auto& r : *journal) {
    arr.push_back({{"key", r.step_key},
                   {"step", r.step_id},
                   {"kind", r.kind},
                   {"status", r.status},
                   {"output", json::parse(r.output)}});
  }
  auto run = store::GetRun(*f.ws, id);
  return {{"example", name},
          {"workflow", keel::testing::ReadFileOrDie(ExampleDir() + "/" + name + ".yaml")},
          {"input", input},
          {"status", (*run)->status},
          {"journal", arr}};
}

std::vector<std::pair<std::string, json>> Examples() {
  std::vector<std::pair<std::string, json>> out;
  out.emplace_back("hello", RunExample("hello", {{"name", "Ada"}}, nullptr));
  out.emplace_back("flaky_retry", RunExample("flaky_retry", json::object(), nullptr));
  out.emplace_back("approval",
                   RunExample("approval", {{"amount", 5000}, {"to", "acme"}},
                              [](FlowFixture& f, const std::string&) {
                                auto p = f.Pending();
                                ASSERT_EQ(p.size(), 1u);
                                ASSERT_TRUE(f.engine->Decide(p[0].id, true, nullptr, "").ok());
                                f.Drive(kSec, kSec);
                              }));
  out.emplace_back(
      "wait_event",
      RunExample("wait_event", {{"lead", "L1"}}, [](FlowFixture& f, const std::string&) {
        ASSERT_TRUE(f.engine->SendEvent("reply", "L1", "m1", {{"text", "yes"}}).ok());
        f.Drive(kSec, kSec);
      }));
  out.emplace_back("wait_event_timeout", RunExample("wait_event", {{"lead", "L2"}},
                                                    [](FlowFixture& f, const std::string&) {
                                                      f.Drive(4 * kDay, 3600 * kSec);
                                                    }));
  out.emplace_back("compensation", RunExample("compensation", {{"item", "x"}}, nullptr));
  // Approved with an edit: the send after the gate carries the edited draft.
  out.emplace_back("draft_review",
                   RunExample("draft_review", {{"name", "Ada"}, {"email", "ada@example.com"}},
                              [](FlowFixture& f, const std::string&) {
                                auto p = f.Pending();
                                ASSERT_EQ(p.size(), 1u);
                                json edit = {{"body", "Dear Ada, the call is at 10."}};
                                ASSERT_TRUE(f.engine->Decide(p[0].id, true, &edit, "").ok());
                                f.Drive(kSec, kSec);
                              }));
  return out;
}

TEST(Replay, ExampleRunsMatchTheirFixturesOnThisBuild) {
  bool update = std::getenv("KEEL_UPDATE_FIXTURES") != nullptr;
  for (const auto& [name, fresh] : Examples()) {
    std::string path = FixtureDir() + "/" + name + ".json";
    if (update) keel::testing::WriteFile(path, fresh.dump(2) + "\n");
    // The run made now replays against itself...
    auto wf = ParseWorkflow(fresh["workflow"], name);
    ASSERT_TRUE(wf.ok()) << wf.status().ToString();
    EXPECT_TRUE(Replay(**wf, fresh["input"], FromJson(fresh["journal"])).ok()) << name;
    // ...and took the same steps as the run kept in the fixture.
    json kept = json::parse(keel::testing::ReadFileOrDie(path));
    std::vector<std::string> a, b;
    for (const auto& j : fresh["journal"]) a.push_back(j["key"]);
    for (const auto& j : kept["journal"]) b.push_back(j["key"]);
    EXPECT_EQ(a, b) << name;
    EXPECT_EQ(fresh["status"], kept["status"]) << name;
  }
}

TEST(Replay, StoredJournalsReplayWithoutDivergence) {
  int n = 0;
  // `retry` is the journal of the example before it was renamed flaky_retry (a workflow
  // may not be named like a `keel run` subcommand): runs of the old name must still replay.
  for (const char* name : {"hello", "retry", "flaky_retry", "approval", "wait_event",
                           "wait_event_timeout", "compensation", "draft_review"}) {
    json kept = json::parse(keel::testing::ReadFileOrDie(FixtureDir() + "/" + name + ".json"));
    // The stored workflow text is the version the run started with.
    auto wf = ParseWorkflow(kept["workflow"], name);
    ASSERT_TRUE(wf.ok()) << wf.status().ToString();
    Status s = Replay(**wf, kept["input"], FromJson(kept["journal"]));
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
    ++n;
  }
  EXPECT_EQ(n, 8);
}

TEST(Replay, DetectsDivergence) {
  json kept = json::parse(keel::testing::ReadFileOrDie(FixtureDir() + "/hello.json"));
  auto journal = FromJson(kept["journal"]);
  // A workflow whose `set` computes something else diverges.
  std::string text = kept["workflow"];
  auto pos = text.find("greeting: ");
  ASSERT_NE(pos, std::string::npos);
  std::string changed = text;
  changed.insert(pos + 10, "\"Hi \" + ");
  auto wf = ParseWorkflow(changed, "changed");
  if (wf.ok()) {
    EXPECT_FALSE(Replay(**wf, kept["input"], journal).ok());
  }
  // Renamed steps diverge.
  std::string renamed = text;
  renamed.replace(renamed.find("id: remember"), 12, "id: memorize");
  auto wf2 = ParseWorkflow(renamed, "renamed");
  ASSERT_TRUE(wf2.ok());
  EXPECT_FALSE(Replay(**wf2, kept["input"], journal).ok());
  // A tampered output of a pure step diverges.
  auto orig = ParseWorkflow(text, "orig");
  ASSERT_TRUE(orig.ok());
  journal[1].output = R"({"greeting":"forged"})";
  EXPECT_FALSE(Replay(**orig, kept["input"], journal).ok());
}

}  // namespace
}  // namespace keel::flow
