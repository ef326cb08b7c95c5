// The CLI as a newcomer meets it: help, misspelt commands, the operator inbox, and what the
// shipped binary (no test adapters, no test commands) accepts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cli/testing_cli_workspace.h"
#include "core/testing_util.h"
#include "flow/workflow.h"

namespace keel {
namespace {

using keel::testing::CliWorkspace;
using keel::testing::RunKeel;
using keel::testing::RunProcess;
using nlohmann::json;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(NewcomerCli, ABareKeelShowsTheHelpWithoutTheTestTools) {
  auto r = RunProcess(KEEL_SHIPPED_BINARY, {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Usage: keel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("approve"), std::string::npos);
  EXPECT_EQ(r.out.find("debug"), std::string::npos) << "test tools are not in the product";
  // The test binary has them; the shipped one does not know the command at all.
  EXPECT_EQ(RunKeel({"debug", "--help"}).exit_code, 0);
  EXPECT_EQ(RunProcess(KEEL_SHIPPED_BINARY, {"debug", "append"}).exit_code, 64);
}

TEST(NewcomerCli, AMisspeltCommandGetsTheClosestRealOne) {
  CliWorkspace ws;
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  for (const auto& c : std::vector<Case>{{{"aprove"}, "keel approve"},
                                         {{"record", "lsit"}, "keel record list"},
                                         {{"wrokflow", "list"}, "keel workflow"},
                                         {{"approvals", "shwo", "x"}, "keel approvals show"}}) {
    auto r = ws.Run(c.args);
    EXPECT_EQ(r.exit_code, 64) << c.args[0];
    EXPECT_NE(r.err.find("did you mean `" + c.want), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("A subcommand is required"), std::string::npos) << r.err;
  }
  // Nothing close: still named, with where to look.
  auto r = ws.Run({"zzzzzzzz"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("'zzzzzzzz' is not a command of `keel`"), std::string::npos) << r.err;
}

TEST(NewcomerCli, TheShippedBinaryRegistersOnlyRealAdapters) {
  CliWorkspace ws;
  auto shipped = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--workspace", ws.dir});
    return RunProcess(KEEL_SHIPPED_BINARY, args);
  };
  auto r = shipped({"pause", "--adapter", "fake_keyed"});
  EXPECT_EQ(r.exit_code, 66) << r.err;
  EXPECT_NE(r.err.find("adapters: log"), std::string::npos) << r.err;
  EXPECT_EQ(ws.Run({"pause", "--adapter", "fake_keyed"}).exit_code, 0);  // the test binary
  auto list = json::parse(shipped({"adapter", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "log");
  EXPECT_EQ(list[0]["mode"], "sandbox");
  EXPECT_EQ(shipped({"adapter", "live", "log"}).exit_code, 1);  // records only
  // The test binary's fakes can be switched, and the switch is on the ledger.
  EXPECT_EQ(ws.Run({"adapter", "live", "fake_keyed"}).exit_code, 0);
  EXPECT_EQ(ws.Run({"adapter", "live", "fake_keyed"}).exit_code, 1);  // already live
  auto e = ws.Json({"ledger", "--kind", "adapter.mode", "--json"});
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["payload"]["mode"], "live");
  EXPECT_EQ(ws.Run({"adapter", "live", "nope"}).exit_code, 66);
}

TEST(NewcomerCli, TheInboxShowsAnItemReadablyAndDecidesSeveral) {
  CliWorkspace ws;
  keel::testing::WriteFile(ws.dir + "/workflows/mail.yaml", R"(name: mail
input: {required: [to]}
steps:
  - id: check
    approval:
      summary: "Send the welcome mail to ${input.to}"
      recommend: approve
      context:
        to: "${input.to}"
        subject: "Welcome"
        body: "Hello there,\nthanks for writing.\n-- Ann"
  - id: send
    action: log.send
    params: {to: "${input.to}"}
)");
  std::string a = Trim(ws.Run({"run", "mail", "--input", R"({"to":"ann@example.com"})"}).out);
  std::string b = Trim(ws.Run({"run", "mail", "--input", R"({"to":"bob@example.com"})"}).out);
  ASSERT_EQ(ws.Run({"worker", "--until-idle"}).exit_code, 0);
  auto items = ws.Json({"approvals", "--json"});
  ASSERT_EQ(items.size(), 2u);
  for (const auto& it : items) {
    EXPECT_EQ(it["state"], "open");
    EXPECT_EQ(it["kind"], "approval");
  }
  std::string id0 = items[0]["id"], id1 = items[1]["id"];
  std::string to0 = items[0]["context"]["facts"]["to"];
  auto show = ws.Run({"approvals", "show", id0.substr(0, 16)});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("    To: " + to0), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("    Subject: Welcome"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("\n    thanks for writing.\n"), std::string::npos) << show.out;
  EXPECT_EQ(ws.Json({"approvals", "show", id0, "--json"}), items[0]);  // one shape

  auto dec = ws.Run({"approve", id0, id1});
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_NE(dec.out.find("approved " + id0), std::string::npos) << dec.out;
  EXPECT_NE(dec.out.find("continues when a worker runs"), std::string::npos) << dec.out;
  // Deciding again: each item says why, the command fails.
  auto again = ws.Run({"approve", id0, id1});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_NE(again.err.find("2 of 2 item(s) not decided"), std::string::npos) << again.err;
  ASSERT_EQ(ws.Run({"worker", "--until-idle"}).exit_code, 0);
  EXPECT_EQ(ws.Json({"run", "show", a, "--json"})["status"], "completed");
  EXPECT_EQ(ws.Json({"run", "show", b, "--json"})["approvals"][0]["state"], "decided");
  EXPECT_EQ(ws.Json({"approvals", "--json"}).size(), 0u);
  EXPECT_EQ(ws.Json({"approvals", "--all", "--json"}).size(), 2u);
}

// `keel run NAME` starts every valid workflow: the names validation reserves are exactly the
// subcommands of `keel run`, so no workflow can be shadowed by one.
TEST(NewcomerCli, TheReservedWorkflowNamesAreTheRunSubcommands) {
  auto help = RunKeel({"run", "--help"});
  ASSERT_EQ(help.exit_code, 0);
  std::string subs = help.out.substr(help.out.find("Subcommands:"));
  std::set<std::string> listed;
  for (size_t at = subs.find("\n  "); at != std::string::npos; at = subs.find("\n  ", at + 1)) {
    listed.insert(subs.substr(at + 3, subs.find(' ', at + 3) - at - 3));
  }
  std::set<std::string> reserved;
  for (auto n : flow::kReservedWorkflowNames) reserved.insert(std::string(n));
  EXPECT_EQ(listed, reserved);
}

TEST(NewcomerCli, RunsPageWithACursor) {
  CliWorkspace ws;
  std::string hello = keel::testing::SourceDir() + "/examples/workflows/hello.yaml";
  for (int i = 0; i < 3; ++i) ws.Run({"run", hello, "--input", R"({"name":"Ada"})"});
  auto p1 = ws.Run({"runs", "--limit", "2", "--json"});
  ASSERT_EQ(p1.exit_code, 0);
  EXPECT_EQ(json::parse(p1.out).size(), 2u);
  auto at = p1.err.find("next: ");
  ASSERT_NE(at, std::string::npos) << p1.err;
  std::string cursor = p1.err.substr(at + 6, p1.err.find(' ', at + 6) - at - 6);
  auto p2 = ws.Run({"runs", "--limit", "2", "--cursor", cursor, "--json"});
  ASSERT_EQ(p2.exit_code, 0) << p2.err;
  EXPECT_EQ(json::parse(p2.out).size(), 1u);
  EXPECT_EQ(p2.err.find("next: "), std::string::npos);
  EXPECT_EQ(ws.Run({"runs", "--cursor", "garbage"}).exit_code, 65);
}

}  // namespace
}  // namespace keel
