// Engine::Check: what a workflow file is refused for when it is loaded (action names its
// adapter does not offer, names of `keel run` subcommands), and that every bundled example
// passes, against the fakes and against the real sandbox adapter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/testing_util.h"
#include "flow/engine.h"
#include "flow/testing_flow.h"
#include "flow/workflow.h"
// Test code may include any layer: the real sandbox adapter is checked against the examples.
#include "adapters/log.h"

namespace keel::flow {
namespace {

using testing::FlowFixture;

Status LoadError(FlowFixture& f, const std::string& name, const std::string& yaml) {
  f.AddWorkflow(name, yaml);
  return f.engine->Resolve(name).status();
}

TEST(CheckActions, AnActionItsAdapterDoesNotOfferIsRefusedWithFileLineStepAndTheList) {
  FlowFixture f;
  Status s = LoadError(f, "typo", R"(name: typo
steps:
  - id: draft
    noop: true
  - id: notify
    action: fake_smtp.snd
    params: {to: a}
)");
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  const std::string& m = s.message();
  EXPECT_NE(m.find("workflows/typo.yaml:5: step 'notify'"), std::string::npos) << m;
  EXPECT_NE(m.find("fake_smtp.snd"), std::string::npos) << m;
  EXPECT_NE(m.find("adapter 'fake_smtp' has no action 'snd'"), std::string::npos) << m;
  EXPECT_NE(m.find("send"), std::string::npos) << m;  // the list it offers
  // Nothing was started: the refusal comes before the run.
  EXPECT_FALSE(f.engine->Start("typo", nlohmann::json::object()).ok());
  EXPECT_TRUE(f.Pending().empty());
}

TEST(CheckActions, NestedStepsAndCompensationsAreCheckedToo) {
  FlowFixture f;
  EXPECT_EQ(LoadError(f, "nested", R"(name: nested
steps:
  - id: b
    if: "true"
    then:
      - id: loop
        foreach: "[1, 2]"
        do:
          - id: pay
            action: fake_keyed.pya
)")
                .code(),
            StatusCode::kInvalidArgument);
  Status s = LoadError(f, "comp", R"(name: comp
steps:
  - id: charge
    action: fake_keyed.charge
    compensate: refund
compensations:
  - id: refund
    action: fake_keyed.refnud
)");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("step 'refund'"), std::string::npos) << s.message();
  Status t = LoadError(f, "timeout", R"(name: timeout
steps:
  - id: wait
    wait_event: {type: reply, key: k, timeout: 1h}
    on_timeout:
      - id: nudge
        action: log.nudge_again
)");
  EXPECT_EQ(t.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.message().find("step 'nudge'"), std::string::npos) << t.message();
}

TEST(CheckActions, EveryFakeOffersTheOneDocumentedList) {
  FlowFixture f;
  std::set<std::string> want(std::begin(kFakeActions), std::end(kFakeActions));
  for (const CountingAdapter* a : {&f.log, &f.keyed, &f.smtp}) {
    auto got = a->actions();
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << a->name();
  }
}

TEST(ReservedNames, AWorkflowNamedLikeARunSubcommandIsRefusedWithWhyAndARename) {
  for (std::string_view reserved : kReservedWorkflowNames) {
    FlowFixture f;
    std::string n(reserved);
    Status s =
        LoadError(f, n, "# a comment first\nname: " + n + "\nsteps:\n  - id: a\n    noop: true\n");
    ASSERT_EQ(s.code(), StatusCode::kInvalidArgument) << n;
    const std::string& m = s.message();
    EXPECT_NE(m.find("workflows/" + n + ".yaml:2: name: '" + n + "'"), std::string::npos) << m;
    EXPECT_NE(m.find("`keel run " + n + "` would run the subcommand"), std::string::npos) << m;
    EXPECT_NE(m.find("rename it"), std::string::npos) << m;
    // Also when found by path, and in the list of the workflows folder.
    EXPECT_FALSE(f.engine->LoadFile(f.dir() + "/workflows/" + n + ".yaml").ok());
    auto all = f.engine->ListWorkflows();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_FALSE(all[0].second.ok());
  }
  EXPECT_TRUE(IsReservedWorkflowName("retry"));
  EXPECT_FALSE(IsReservedWorkflowName("retry2"));
  EXPECT_FALSE(IsReservedWorkflowName("flaky_retry"));
  EXPECT_FALSE(IsReservedWorkflowName("Retry"));  // the CLI's subcommands are lower case
}

TEST(ReservedNames, NamesThatOnlyContainAReservedWordAreFine) {
  FlowFixture f;
  f.AddWorkflow("flaky_retry", "name: flaky_retry\nsteps:\n  - id: a\n    noop: true\n");
  f.AddWorkflow("show2", "name: show2\nsteps:\n  - id: a\n    noop: true\n");
  EXPECT_TRUE(f.engine->Resolve("flaky_retry").ok());
  EXPECT_TRUE(f.engine->Resolve("show2").ok());
}

TEST(ReservedNames, AStoredVersionWithAReservedNameStillParses) {
  // Runs in flight keep their version's text; a workspace that ran a workflow named
  // `retry` before the name was reserved must still drive those runs (Engine::Version
  // parses stored versions without Check).
  auto wf = ParseWorkflow("name: retry\nsteps:\n  - id: a\n    noop: true\n", "stored");
  EXPECT_TRUE(wf.ok()) << wf.status().ToString();
}

std::vector<std::string> ExampleFiles() {
  return ListWorkflowFiles(keel::testing::SourceDir() + "/examples/workflows");
}

TEST(Examples, EveryBundledExampleLoadsWithTheFakes) {
  FlowFixture f;
  auto files = ExampleFiles();
  ASSERT_GE(files.size(), 5u);
  for (const auto& p : files) {
    auto wf = f.engine->LoadFile(p);
    EXPECT_TRUE(wf.ok()) << p << ": " << wf.status().ToString();
  }
}

TEST(Examples, EveryBundledExampleLoadsWithTheRealSandboxAdapter) {
  // `cp examples/workflows/*.yaml workflows/` in the README: the shipped `log` adapter
  // must offer every action the examples name.
  FlowFixture f;
  adapters::LogAdapter log;
  Registry reg = f.registry();
  reg.adapters["log"] = &log;
  Engine e(f.ws.get(), reg, EngineOptions{});
  for (const auto& p : ExampleFiles()) {
    auto wf = e.LoadFile(p);
    EXPECT_TRUE(wf.ok()) << p << ": " << wf.status().ToString();
  }
}

}  // namespace
}  // namespace keel::flow
