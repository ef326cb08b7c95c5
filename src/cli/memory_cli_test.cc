// The memory commands, run as the real binary: output shapes other tools rely on
// (`recall --json` facts with a `provenance` object, `memory stats --json`), exit codes and
// errors for bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/testing_cli_workspace.h"
#include "core/testing_util.h"

namespace keel {
namespace {

using keel::testing::ProcessResult;
using keel::testing::RunKeel;
using keel::testing::TempDir;

struct Ws : keel::testing::CliWorkspace {
  // A new lead: facts are about records that exist (or need --free-subject).
  std::string Lead(const std::string& email) {
    return Line({"record", "add", "lead", "--set", "email=" + email});
  }
};

TEST(MemoryCli, RememberRecallWithProvenance) {
  Ws w;
  std::string page = w.tmp.Sub("page.txt");
  keel::testing::WriteFile(page, "Team: Jane Doe, CFO of Acme Ltd. Reach her at jane@acme.example");
  std::string art = w.Line({"artifact", "put", page});
  ASSERT_EQ(art.size(), 64u);
  std::string acme = w.Lead("jane@acme.example");
  auto add = w.Json({"remember", acme, "Jane Doe is CFO at Acme Ltd", "--source", art, "--span",
                     "6:31", "--confidence", "0.8", "--agent", "research", "--run", "run_1",
                     "--step", "extract", "--json"});
  ASSERT_TRUE(add.is_object());
  std::string id = add["fact_id"];
  EXPECT_EQ(id.rfind("fact_", 0), 0u);
  EXPECT_EQ(add["merged"], false);

  auto r = w.Json({"recall", "who is the CFO of Acme?", "--json", "--agent", "drafting"});
  ASSERT_TRUE(r.is_object()) << r;
  ASSERT_EQ(r["facts"].size(), 1u);
  const auto& f = r["facts"][0];
  EXPECT_EQ(f["id"], id);
  EXPECT_EQ(f["text"], "Jane Doe is CFO at Acme Ltd");
  ASSERT_TRUE(f["provenance"].is_object());
  EXPECT_EQ(f["provenance"]["artifact"], art);
  EXPECT_EQ(f["provenance"]["span"], nlohmann::json::array({6, 31}));
  EXPECT_EQ(f["provenance"]["agent"], "research");
  EXPECT_EQ(f["provenance"]["run_id"], "run_1");
  EXPECT_EQ(f["provenance"]["step_id"], "extract");
  EXPECT_GT(f["provenance"]["ledger_seq"].get<int>(), 0);
  EXPECT_EQ(f["provenance"]["sources"].size(), 1u);
  EXPECT_TRUE(f["score"].is_number());
  EXPECT_TRUE(f["tokens"].is_number());
  std::string ret = r["retrieval_id"];
  EXPECT_EQ(ret.rfind("ret_", 0), 0u);
  EXPECT_LE(r["tokens_used"].get<int>(), 1000);

  // A restated fact merges: one fact, two sources.
  auto again = w.Json({"remember", acme, "jane doe is CFO at ACME Ltd.", "--json"});
  EXPECT_EQ(again["fact_id"], id);
  EXPECT_EQ(again["merged"], true);
  auto facts = w.Json({"facts", acme, "--json"});
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0]["provenance"]["sources"].size(), 2u);

  // Usage feedback and stats.
  auto used = w.Run({"memory", "used", ret, id});
  EXPECT_EQ(used.exit_code, 0) << used.err;
  auto stats = w.Json({"memory", "stats", "--json"});
  EXPECT_EQ(stats["retrievals"]["retrievals"], 1);
  EXPECT_EQ(stats["retrievals"]["hits"], 1);
  EXPECT_EQ(stats["retrievals"]["hit_rate"], 1.0);
  ASSERT_EQ(stats["by_agent"].size(), 1u);
  EXPECT_EQ(stats["by_agent"][0]["name"], "drafting");
  EXPECT_EQ(stats["facts"]["active"], 1);
  EXPECT_EQ(stats["facts"]["merged"], 1);
  auto human = w.Run({"memory", "stats"});
  EXPECT_NE(human.out.find("hit rate 100%"), std::string::npos) << human.out;

  // Every write is on the ledger.
  auto ledger = w.Run({"ledger", "--json"});
  EXPECT_NE(ledger.out.find("memory.fact.added"), std::string::npos);
  EXPECT_NE(ledger.out.find("memory.fact.merged"), std::string::npos);
  EXPECT_NE(ledger.out.find("memory.recall"), std::string::npos);
  EXPECT_NE(ledger.out.find("memory.used"), std::string::npos);
}

TEST(MemoryCli, BudgetSupersedeAndTtl) {
  Ws w;
  for (int i = 0; i < 10; ++i) {
    w.Line({"remember", "topic_" + std::to_string(i),
            "turbine order " + std::to_string(i) + " needs a site visit before delivery",
            "--free-subject"});
  }
  auto r = w.Json({"recall", "turbine order", "--budget", "40", "--json", "--no-log"});
  EXPECT_LE(r["tokens_used"].get<int>(), 40);
  EXPECT_GT(r["dropped_for_budget"].get<int>(), 0);
  EXPECT_TRUE(r["retrieval_id"].is_null());

  std::string rec_x = w.Lead("cfo@acme.example");
  std::string old_id = w.Line({"remember", rec_x, "Acme's CFO is Jane Doe"});
  auto sup =
      w.Run({"memory", "supersede", old_id, "Acme's CFO is John Roe", "--reason", "Jane left"});
  ASSERT_EQ(sup.exit_code, 0) << sup.err;
  EXPECT_EQ(w.Json({"facts", rec_x, "--json"}).size(), 1u);
  auto all = w.Json({"facts", rec_x, "--all", "--json"});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1]["superseded_by"], all[0]["id"]);
  EXPECT_EQ(w.Run({"memory", "supersede", old_id, "x", "--reason", "y"}).exit_code, 1);

  auto tmp = w.Json(
      {"remember", "run_1", "draft uses formal tone", "--ttl", "2h", "--free-subject", "--json"});
  auto listed = w.Json({"facts", "run_1", "--json"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["scope"], "short");
  EXPECT_TRUE(listed[0]["expires"].is_string());
  EXPECT_EQ(w.Run({"memory", "purge"}).exit_code, 0);  // not expired yet: kept
  EXPECT_EQ(w.Json({"facts", "run_1", "--json"}).size(), 1u);
}

TEST(MemoryCli, HostileQueriesAndBadInput) {
  Ws w;
  const std::string rec_1 = w.Lead("ops@globex.example");
  w.Line({"remember", rec_1, "Acme AND Globex (NEAR) merger"});
  for (const char* q : {"\"", "AND(", "NEAR(", "*", "text:(", "acme\" OR \"x", "NOT"}) {
    auto r = w.Run({"recall", q, "--subject", rec_1, "--json", "--no-log"});
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 65) << q << ": " << r.err;
    if (r.exit_code == 65) {
      EXPECT_NE(r.err.find("no searchable words"), std::string::npos) << r.err;
    }
  }
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* needle;
  };
  std::vector<Case> cases = {
      {{"remember", rec_1}, 65, "TEXT"},
      {{"remember", "", "x"}, 65, "subject"},
      {{"remember", rec_1, "x", "--confidence", "2"}, 65, "between 0 and 1"},
      {{"remember", rec_1, "x", "--ttl", "5"}, 65, "unit"},
      {{"remember", rec_1, "x", "--ttl", "5y"}, 65, "unknown unit"},
      {{"remember", rec_1, "x", "--ttl", "0h"}, 65, "greater than zero"},
      {{"remember", rec_1, "x", "--span", "a:b"}, 65, "BEGIN:END"},
      {{"remember", rec_1, "x", "--source", std::string(64, 'c')}, 66, "not stored"},
      {{"remember", rec_1, "x", "--source", "nothex"}, 65, "artifact address"},
      {{"recall", "x", "--budget", "0"}, 65, "--budget"},
      {{"recall", "??"}, 65, "no searchable words"},
      {{"memory", "used", "ret_nope"}, 66, "does not exist"},
      {{"memory", "summary", rec_1}, 66, "no summary"},
      {{"memory", "extract", std::string(64, 'd'), "--subject", rec_1}, 66, "not stored"},
  };
  for (const auto& c : cases) {
    auto r = w.Run(c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args[0] << " " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one-line error: " << r.err;
  }
}

// A fact is about a record: a mistyped or missing record id is refused (it would file the
// fact where nothing recalls it); a subject that is not a record needs --free-subject.
TEST(MemoryCli, RememberRefusesUnknownRecordUnlessFreeSubject) {
  Ws w;
  auto refused = w.Run({"remember", "lead_nothere", "Budget is 20k EUR"});
  EXPECT_EQ(refused.exit_code, 66) << refused.err;
  EXPECT_NE(refused.err.find("no record lead_nothere"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--free-subject"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find('\n'), refused.err.size() - 1) << "one-line error: " << refused.err;
  EXPECT_EQ(w.Run({"remember", "lead_nothere", "x", "--key", "k", "--value", "v"}).exit_code, 66);
  EXPECT_TRUE(w.Json({"facts", "lead_nothere", "--json"}).empty());
  EXPECT_EQ(w.Run({"ledger", "--kind", "memory.*"}).out, "") << "nothing written";

  // An existing record needs no flag.
  std::string lead = w.Lead("ann@example.com");
  auto ok = w.Json({"remember", lead, "Budget is 20k EUR", "--json"});
  EXPECT_EQ(ok["fact_id"].get<std::string>().rfind("fact_", 0), 0u) << ok;
  EXPECT_EQ(w.Json({"facts", lead, "--json"}).size(), 1u);

  // A free-form subject is taken as given, with the flag.
  auto free = w.Json({"remember", "lead_nothere", "Budget is 20k EUR", "--free-subject", "--json"});
  EXPECT_EQ(free["merged"], false) << free;
  auto facts = w.Json({"facts", "lead_nothere", "--json"});
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0]["subject"], "lead_nothere");
  EXPECT_EQ(facts[0]["id"], free["fact_id"]);

  // Extraction follows the same rule.
  std::string page = w.tmp.Sub("mail.txt");
  keel::testing::WriteFile(page, "From: Priya Nair <priya@kestrel.example>\n");
  std::string art = w.Line({"artifact", "put", page});
  auto ex = w.Run({"memory", "extract", art, "--subject", "topic_kestrel"});
  EXPECT_EQ(ex.exit_code, 66) << ex.err;
  EXPECT_NE(ex.err.find("--free-subject"), std::string::npos) << ex.err;
  auto ex_free =
      w.Json({"memory", "extract", art, "--subject", "topic_kestrel", "--free-subject", "--json"});
  EXPECT_FALSE(ex_free.empty());
  EXPECT_EQ(w.Json({"facts", "topic_kestrel", "--json"}).size(), ex_free.size());
}

TEST(MemoryCli, ExtractRefusesGeneratedText) {
  Ws w;
  std::string page = w.tmp.Sub("email.txt");
  keel::testing::WriteFile(page,
                           "From: Priya Nair <priya@kestrel.example>\n"
                           "Our budget is EUR 12,000 and we need it live by March 3, 2026.\n"
                           "Call +44 20 7946 0958.\n");
  std::string art = w.Line({"artifact", "put", page});
  const std::string rec_k = w.Lead("priya@kestrel.example");
  auto ex = w.Json({"memory", "extract", art, "--subject", rec_k, "--json"});
  EXPECT_GE(ex.size(), 4u);
  auto facts = w.Json({"facts", rec_k, "--json"});
  bool money = false;
  for (const auto& f : facts) {
    EXPECT_EQ(f["provenance"]["artifact"], art);
    money = money || f["value"] == "12000.00 EUR";
  }
  EXPECT_TRUE(money) << facts.dump(2);
  auto sum =
      w.Json({"memory", "summary", rec_k, "Kestrel: budget EUR 12,000, live by March 3", "--json"});
  std::string sum_art = sum["artifact"];
  auto refused = w.Run({"memory", "extract", sum_art, "--subject", rec_k});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("keel generated"), std::string::npos) << refused.err;
  auto model = w.Line({"artifact", "put", page, "--type", "text/plain; keel-origin=model"});
  (void)model;  // same content as the raw page: the address is the raw page's, already stored
  std::string out = w.tmp.Sub("model.txt");
  keel::testing::WriteFile(out, "Priya Nair is CEO of Kestrel Ltd, per the model.");
  auto model_art = w.Line({"artifact", "put", out, "--type", "text/plain; keel-origin=model"});
  EXPECT_EQ(w.Run({"memory", "extract", model_art, "--subject", rec_k}).exit_code, 1);
}

}  // namespace
}  // namespace keel
