// The command shapes other tools rely on: `keel run FILE --input JSON` prints the run id,
// `keel run show ID --json` has `status`, `keel worker --until-idle` exits when idle.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/testing_util.h"

namespace keel {
namespace {

using keel::testing::RunKeel;
using keel::testing::TempDir;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(FlowCli, RunShowWorkerAndOperatorCommands) {
  TempDir tmp;
  std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  std::string hello = keel::testing::SourceDir() + "/examples/workflows/hello.yaml";
  auto run = RunKeel({"-w", ws, "run", hello, "--input", R"({"name":"Ada"})"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = Trim(run.out);
  EXPECT_EQ(id.rfind("run_", 0), 0u);
  auto show = RunKeel({"-w", ws, "run", "show", id, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(nlohmann::json::parse(show.out)["status"], "running");
  auto worker = RunKeel({"-w", ws, "worker", "--until-idle"});
  ASSERT_EQ(worker.exit_code, 0) << worker.err;
  show = RunKeel({"-w", ws, "run", "show", id, "--json"});
  EXPECT_EQ(nlohmann::json::parse(show.out)["status"], "completed");
  auto runs = RunKeel({"-w", ws, "runs", "--status", "completed", "--json"});
  EXPECT_EQ(nlohmann::json::parse(runs.out).size(), 1u);

  // Bad input: one-line errors, non-zero exits.
  EXPECT_EQ(RunKeel({"-w", ws, "run", hello, "--input", "{nope"}).exit_code, 65);
  EXPECT_EQ(RunKeel({"-w", ws, "run", hello, "--input", "{}"}).exit_code, 65);  // name required
  EXPECT_EQ(RunKeel({"-w", ws, "run", "show", "run_missing"}).exit_code, 66);
  EXPECT_NE(RunKeel({"-w", ws, "run"}).exit_code, 0);
  EXPECT_NE(RunKeel({"-w", ws, "runs", "--status", "sleeping"}).exit_code, 0);
  EXPECT_EQ(RunKeel({"-w", ws, "runs", "--limit", "-3"}).exit_code, 64);
  EXPECT_NE(RunKeel({"-w", ws, "reject", "apv_x"}).exit_code, 0);  // --reason required
  EXPECT_EQ(RunKeel({"-w", ws, "approve", "apv_x"}).exit_code, 66);
  // A worker that could never advance a run (batch 0), or would take every run at once
  // (a negative LIMIT), is refused as a usage error.
  for (const char* bad : {"0", "-5", "10001", "x"}) {
    auto w = RunKeel({"-w", ws, "worker", "--until-idle", "--batch", bad});
    EXPECT_EQ(w.exit_code, 64) << bad << w.err;
    EXPECT_NE(w.err.find("--batch"), std::string::npos) << w.err;
  }
  EXPECT_EQ(RunKeel({"-w", ws, "worker", "--until-idle", "--poll-ms", "0"}).exit_code, 64);
  EXPECT_EQ(RunKeel({"-w", ws, "worker", "--until-idle", "--lease-ms", "0"}).exit_code, 64);

  // Events: a repeated id is delivered once.
  std::string wait = keel::testing::SourceDir() + "/examples/workflows/wait_event.yaml";
  std::string wid = Trim(RunKeel({"-w", ws, "run", wait, "--input", R"({"lead":"L1"})"}).out);
  ASSERT_EQ(RunKeel({"-w", ws, "worker", "--until-idle"}).exit_code, 0);
  auto e1 =
      RunKeel({"-w", ws, "event", "send", "reply", "--key", "L1", "--id", "m1", "--data", "{}"});
  auto e2 =
      RunKeel({"-w", ws, "event", "send", "reply", "--key", "L1", "--id", "m1", "--data", "{}"});
  EXPECT_NE(e1.out.find("delivered to 1"), std::string::npos) << e1.out << e1.err;
  EXPECT_NE(e2.out.find("duplicate"), std::string::npos) << e2.out;
  ASSERT_EQ(RunKeel({"-w", ws, "worker", "--until-idle"}).exit_code, 0);
  show = RunKeel({"-w", ws, "run", "show", wid, "--json"});
  EXPECT_EQ(nlohmann::json::parse(show.out)["status"], "completed");

  // Approvals from the CLI.
  std::string gate = keel::testing::SourceDir() + "/examples/workflows/approval.yaml";
  std::string gid =
      Trim(RunKeel({"-w", ws, "run", gate, "--input", R"({"amount":5000,"to":"x"})"}).out);
  ASSERT_EQ(RunKeel({"-w", ws, "worker", "--until-idle"}).exit_code, 0);
  auto items = nlohmann::json::parse(RunKeel({"-w", ws, "approvals", "--json"}).out);
  ASSERT_EQ(items.size(), 1u);
  std::string apv = items[0]["id"];
  EXPECT_EQ(RunKeel({"-w", ws, "reject", apv, "--reason", "too much"}).exit_code, 0);
  EXPECT_EQ(RunKeel({"-w", ws, "approve", apv}).exit_code, 1);  // already decided
  ASSERT_EQ(RunKeel({"-w", ws, "worker", "--until-idle"}).exit_code, 0);
  show = RunKeel({"-w", ws, "run", "show", gid, "--json"});
  EXPECT_EQ(nlohmann::json::parse(show.out)["status"], "failed");

  // Pause switches.
  EXPECT_EQ(RunKeel({"-w", ws, "pause", "--adapter", "log"}).exit_code, 0);
  EXPECT_EQ(RunKeel({"-w", ws, "resume", "--adapter", "log"}).exit_code, 0);
  EXPECT_NE(RunKeel({"-w", ws, "pause", "--adapter", "log", "--agent", "echo"}).exit_code, 0);
  // A misspelt name pauses nothing and says so; resuming what is not paused is refused and
  // lists what is. None of these reaches the ledger.
  size_t switches =
      nlohmann::json::parse(RunKeel({"-w", ws, "ledger", "--kind", "flow.*", "--json"}).out).size();
  // An empty name (an unset shell variable) is refused, not taken for "everything".
  auto empty = RunKeel({"-w", ws, "pause", "--adapter", ""});
  EXPECT_EQ(empty.exit_code, 65);
  EXPECT_NE(empty.err.find("name the adapter"), std::string::npos) << empty.err;
  EXPECT_EQ(RunKeel({"-w", ws, "resume", "--workflow", ""}).exit_code, 65);
  auto typo = RunKeel({"-w", ws, "pause", "--adapter", "lgo"});
  EXPECT_EQ(typo.exit_code, 66);
  EXPECT_NE(typo.err.find("no adapter named 'lgo' (adapters: "), std::string::npos) << typo.err;
  EXPECT_NE(typo.err.find("log"), std::string::npos) << typo.err;
  EXPECT_EQ(RunKeel({"-w", ws, "pause", "--agent", "nosuch"}).exit_code, 66);
  EXPECT_EQ(RunKeel({"-w", ws, "pause", "--workflow", "nosuch"}).exit_code, 66);
  // A workflow run from a file outside workflows/ can be paused by its name.
  EXPECT_EQ(RunKeel({"-w", ws, "pause", "--workflow", "approval"}).exit_code, 0);
  auto not_paused = RunKeel({"-w", ws, "resume", "--adapter", "log"});
  EXPECT_EQ(not_paused.exit_code, 1);
  EXPECT_NE(not_paused.err.find("adapter log is not paused; paused now: workflow approval"),
            std::string::npos)
      << not_paused.err;
  EXPECT_EQ(RunKeel({"-w", ws, "resume", "--workflow", "approval"}).exit_code, 0);
  EXPECT_NE(RunKeel({"-w", ws, "resume"}).err.find("nothing is paused"), std::string::npos);
  EXPECT_EQ(
      nlohmann::json::parse(RunKeel({"-w", ws, "ledger", "--kind", "flow.*", "--json"}).out).size(),
      switches + 2);
}

TEST(FlowCli, ValidateNamesFileLineAndField) {
  TempDir tmp;
  std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  std::string bad = tmp.Sub("bad.yaml");
  keel::testing::WriteFile(bad, "name: bad\nsteps:\n  - id: a\n    wait: 3 fortnights\n");
  auto r = RunKeel({"-w", ws, "workflow", "validate", bad});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("bad.yaml:4: steps[0].wait"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace keel
