// The record and import commands, run as the real binary: exit codes, output shapes and the
// import's all-or-nothing rule.
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
  std::string Trimmed(const std::string& s) { return s.substr(0, s.find_last_not_of("\n") + 1); }
};

TEST(RecordCli, AddPrintsTheIdAndShowHasHistory) {
  Ws w;
  auto r =
      w.Run({"record", "add", "lead", "--set", "email=ann@example.com", "--set", "name=Ann Lee"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = w.Trimmed(r.out);
  EXPECT_EQ(id.substr(0, 5), "lead_");
  EXPECT_EQ(id.size(), 31u);
  EXPECT_EQ(id.find_first_of(" \n"), std::string::npos);

  auto set = w.Run({"record", "set", id, "--set", "status=contacted", "--unset", "name"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(set.out.find("version 2"), std::string::npos);
  EXPECT_NE(set.out.find("name: Ann Lee -> (unset)"), std::string::npos);

  auto show = w.Run({"record", "show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("status  contacted"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("record.created"), std::string::npos);
  EXPECT_NE(show.out.find("record.changed  name: Ann Lee -> (unset); status: new -> contacted"),
            std::string::npos)
      << show.out;

  auto j = w.Json({"record", "show", id, "--json"});
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["fields"]["email"], "ann@example.com");
  EXPECT_FALSE(j["fields"].contains("name"));
  ASSERT_EQ(j["history"].size(), 2u);
  EXPECT_EQ(j["history"][1]["payload"]["changes"]["status"][1], "contacted");

  // The ledger has the entries too.
  auto ledger = w.Json({"ledger", "--subject", id, "--json"});
  EXPECT_EQ(ledger.size(), 2u);
}

TEST(RecordCli, BadInputExitCodes) {
  Ws w;
  auto dup1 = w.Run({"record", "add", "lead", "--set", "email=ann@example.com"});
  ASSERT_EQ(dup1.exit_code, 0);
  auto dup = w.Run({"record", "add", "lead", "--set", "email=Ann@Example.com"});
  EXPECT_EQ(dup.exit_code, 65);
  EXPECT_NE(dup.err.find("already exists: " + w.Trimmed(dup1.out)), std::string::npos);
  EXPECT_EQ(dup.out, "");

  auto unknown = w.Run({"record", "add", "lead", "--set", "colour=red"});
  EXPECT_EQ(unknown.exit_code, 65);
  EXPECT_NE(unknown.err.find("unknown field 'colour'"), std::string::npos);
  EXPECT_EQ(w.Run({"record", "add", "widget", "--set", "name=x"}).exit_code, 65);
  EXPECT_EQ(w.Run({"record", "add", "lead", "--set", "email"}).exit_code, 65);
  EXPECT_EQ(w.Run({"record", "add", "lead", "--set", "email="}).exit_code, 65);
  EXPECT_EQ(w.Run({"record", "add", "lead", "--set", "email=not-an-email"}).exit_code, 65);
  EXPECT_EQ(w.Run({"record", "show", "lead_01m87vh7dpa1zpr11a9g3s1xkk"}).exit_code, 66);
  EXPECT_EQ(
      w.Run({"record", "set", "lead_01m87vh7dpa1zpr11a9g3s1xkk", "--set", "name=x"}).exit_code, 66);
  auto stale =
      w.Run({"record", "set", w.Trimmed(dup1.out), "--set", "name=x", "--expect-version", "9"});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_EQ(w.Run({"record", "add"}).exit_code, 64);  // usage
  auto deal = w.Run({"record", "add", "deal", "--set", "title=Site"});
  EXPECT_EQ(deal.exit_code, 65);
  EXPECT_NE(deal.err.find("next_action_at"), std::string::npos);
  // Nothing but the first lead reached the ledger.
  EXPECT_EQ(w.Json({"ledger", "--kind", "record.*", "--json"}).size(), 1u);
}

TEST(RecordCli, ListWhereLimitJsonAndTypes) {
  Ws w;
  for (const char* e : {"a@example.com", "b@example.com", "c@example.com"}) {
    ASSERT_EQ(w.Run({"record", "add", "lead", "--set", std::string("email=") + e, "--set",
                     std::string("source=") + (e[0] == 'b' ? "ads" : "referral")})
                  .exit_code,
              0);
  }
  ASSERT_EQ(w.Run({"record", "add", "company", "--set", "name=Acme"}).exit_code, 0);
  EXPECT_EQ(w.Json({"record", "list", "--json"}).size(), 4u);
  auto refs = w.Json({"record", "list", "lead", "--where", "source=referral", "--json"});
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[1]["fields"]["email"], "c@example.com");
  EXPECT_EQ(w.Json({"record", "list", "lead", "--limit", "1", "--json"}).size(), 1u);
  // --limit follows the one rule of every listing (1..100000, as `keel runs`): 0 does not
  // mean "everything", and a cut list says so on standard error.
  for (const char* bad : {"0", "-1", "100001"}) {
    auto r = w.Run({"record", "list", "--limit", bad});
    EXPECT_EQ(r.exit_code, 64) << bad;
    EXPECT_EQ(r.out, "") << bad;
  }
  auto cut = w.Run({"record", "list", "lead", "--limit", "2"});
  EXPECT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_NE(cut.err.find("more records match; showing the first 2"), std::string::npos) << cut.err;
  EXPECT_EQ(w.Run({"record", "list", "lead", "--limit", "3"}).err, "");
  EXPECT_EQ(w.Run({"ledger", "--limit", "0"}).exit_code, 64);
  EXPECT_EQ(w.Json({"ledger", "--limit", "2", "--json"}).size(), 2u);
  auto text = w.Run({"record", "list", "lead"});
  EXPECT_NE(text.out.find("<b@example.com>"), std::string::npos);
  EXPECT_EQ(w.Run({"record", "list", "--where", "source=ads"}).exit_code, 65);

  auto types = w.Json({"record", "types", "--json"});
  ASSERT_GE(types.size(), 7u);
  EXPECT_EQ(types[0]["type"], "lead");
  auto help = RunKeel({"record", "types"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("invoice (ids invoice_"), std::string::npos);
}

TEST(ImportCli, BadFileExits65AndWritesNothing) {
  Ws w;
  std::string fixture = keel::testing::SourceDir() + "/tests/fixtures/bad_leads.csv";
  auto before = w.Json({"ledger", "--json"}).size();
  auto r = w.Run({"import", "leads", fixture});
  EXPECT_EQ(r.exit_code, 65);
  for (const char* line :
       {"line 3: missing required field email",
        "line 4: email:", "line 5: duplicate email ann@example.com (first on line 2)",
        "line 6: too few fields", "line 7: website", "line 8: too many fields"}) {
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
  }
  EXPECT_NE(r.err.find("nothing imported"), std::string::npos);
  EXPECT_EQ(w.Json({"ledger", "--json"}).size(), before);
  EXPECT_EQ(w.Json({"record", "list", "--json"}).size(), 0u);

  auto dry = w.Run({"import", "leads", fixture, "--dry-run", "--skip-bad"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would import 2 leads"), std::string::npos);
  EXPECT_EQ(w.Json({"ledger", "--json"}).size(), before);

  auto skip = w.Run({"import", "leads", fixture, "--skip-bad", "--json"});
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  auto j = nlohmann::json::parse(skip.out);
  EXPECT_EQ(j["imported"], 2);
  EXPECT_EQ(j["skipped"], 6);
  EXPECT_EQ(j["problems"].size(), 6u);
  EXPECT_TRUE(j["written"]);
  EXPECT_EQ(w.Json({"record", "list", "lead", "--json"}).size(), 2u);
  // The file is stored as an artifact, byte for byte.
  auto art = w.Run({"artifact", "get", j["file_hash"].get<std::string>()});
  EXPECT_EQ(art.out, keel::testing::ReadFileOrDie(fixture));
}

TEST(ImportCli, SampleLeadsImportCleanly) {
  Ws w;
  std::string sample = keel::testing::SourceDir() + "/examples/data/leads.csv";
  auto r = w.Run({"import", "leads", sample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("imported 12 leads"), std::string::npos) << r.out;
  auto leads = w.Json({"record", "list", "lead", "--json"});
  ASSERT_EQ(leads.size(), 12u);
  EXPECT_EQ(leads[0]["fields"]["email"], "maria.lindqvist@northwind.example.com");
  EXPECT_EQ(leads[0]["fields"]["website"], "https://northwind.example.com");
  // A second import of the same file: all duplicates, exit 65, nothing new.
  auto again = w.Run({"import", "leads", sample});
  EXPECT_EQ(again.exit_code, 65);
  EXPECT_NE(again.err.find("line 2: a lead with email maria.lindqvist@northwind.example.com "
                           "already exists"),
            std::string::npos);
  EXPECT_EQ(w.Json({"record", "list", "--json"}).size(), 12u);
}

TEST(ImportCli, UnreadableAndMalformedInput) {
  Ws w;
  EXPECT_EQ(w.Run({"import", "leads", w.tmp.Sub("missing.csv")}).exit_code, 66);
  auto r = w.Run({"import", "leads", "-"}, "email\n\"open@example.com\n");
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("line 2: a quoted field is not closed"), std::string::npos) << r.err;
  auto nul = w.Run({"import", "leads", "-"}, std::string("email\na\0b@example.com\n", 22));
  EXPECT_EQ(nul.exit_code, 65);
  EXPECT_NE(nul.err.find("NUL"), std::string::npos);
}

}  // namespace
}  // namespace keel
