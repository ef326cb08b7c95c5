// Schema migrations tested from fixture workspaces kept in the repo (issue 3, "Workspace";
// docs/testing.md, "Schema fixtures"). tests/fixtures/schema/vN/ is a workspace as keel
// wrote it at schema version N. For every fixture: its schema is still exactly what
// migrations 1..N create today (a released migration was not edited); opened by this
// build, it migrates to exactly the schema of a new workspace; every row it held reads
// back through the store API; `keel verify` passes; a new ledger entry chains onto the old
// tail. A version without a fixture fails the suite.
//
// KEEL_UPDATE_FIXTURES=1 with --gtest_filter='SchemaFixtures.Generate' writes the fixtures
// that are missing (never overwriting one: a released fixture is kept forever).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/testing_util.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_schema_fixtures.h"
#include "store/state.h"
#include "store/verify.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;
using namespace keel::store::testing;

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The schema of a workspace created now by a keel whose newest migration is `version`.
std::vector<std::string> FreshSchema(int version) {
  TempDir tmp;
  ScopedSchemaVersionLimit limit(version);
  Env env;
  Status s = Workspace::Init(tmp.Sub("ws"), InitOptions{}, env);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto schema = SchemaOf(tmp.Sub("ws/keel.db"));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? *schema : std::vector<std::string>{};
}

struct Tail {
  int64_t seq = 0;
  std::string hash;
};

// The ledger's last entry, read from the file as it is (no migration).
Tail RawTail(const std::string& db_path) {
  sql::OpenOptions o;
  o.read_only = true;
  auto db = sql::Db::Open(db_path, o);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return {};
  auto st = (*db)->Prepare("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1");
  EXPECT_TRUE(st.ok());
  if (!st.ok() || !*(*st)->Step()) return {};
  return {(*st)->Int(0), std::string((*st)->BlobView(1))};
}

TEST(SchemaFixtures, OneFixturePerVersionAndNoOther) {
  // Adding migration N without tests/fixtures/schema/vN fails here: run the command in
  // docs/testing.md ("Schema fixtures") to make it.
  for (int v = 1; v <= CurrentSchemaVersion(); ++v) {
    EXPECT_TRUE(std::filesystem::exists(SchemaFixtureDir(v) + "/keel.db"))
        << "no fixture for schema version " << v << " (" << SchemaFixtureDir(v)
        << "); make it with KEEL_UPDATE_FIXTURES=1 build/keel_store_test "
           "--gtest_filter=SchemaFixtures.Generate";
  }
  EXPECT_EQ(NewestFixtureVersion(), CurrentSchemaVersion())
      << "each migration needs Fill and Check steps in store/sqlite/testing_schema_fixtures.cc";
  for (const auto& e : std::filesystem::directory_iterator(SchemaFixturesDir())) {
    std::string name = e.path().filename().string();
    int v = name.size() > 1 && name[0] == 'v' ? std::atoi(name.c_str() + 1) : 0;
    EXPECT_TRUE(v >= 1 && v <= CurrentSchemaVersion() && name == "v" + std::to_string(v))
        << "unexpected entry " << e.path() << " (a fixture newer than this build?)";
  }
}

TEST(SchemaFixtures, EveryFixtureMigratesToTheFreshSchemaAndKeepsItsRows) {
  const std::vector<std::string> fresh = FreshSchema(CurrentSchemaVersion());
  ASSERT_FALSE(fresh.empty());
  ASSERT_EQ(fresh[fresh.size() - 2], "user_version " + std::to_string(CurrentSchemaVersion()));
  for (int v = 1; v <= CurrentSchemaVersion(); ++v) {
    SCOPED_TRACE("fixture v" + std::to_string(v));
    TempDir tmp;
    std::string dir = tmp.Sub("ws");
    ASSERT_TRUE(CopyFixture(SchemaFixtureDir(v), dir).ok());
    std::string db_path = dir + "/keel.db";

    // 1. The fixture is what migrations 1..v make today: a released migration that was
    //    edited (rather than followed by a new one) shows up here.
    auto before = SchemaOf(db_path);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    EXPECT_EQ(Join(*before), Join(FreshSchema(v)))
        << "the schema of fixture v" << v << " differs from what migrations 1.." << v
        << " create now: was a released migration edited?";
    Tail old_tail = RawTail(db_path);
    ASSERT_GT(old_tail.seq, 1);
    int64_t baseline = 0;

    // 2. Opened by this build: migrated to exactly a new workspace's schema.
    Env env;
    {
      auto ws = Workspace::Open(dir, WorkspaceOpenOptions{}, env);
      ASSERT_TRUE(ws.ok()) << ws.status().ToString();
      auto after = SchemaOf(db_path);
      ASSERT_TRUE(after.ok()) << after.status().ToString();
      EXPECT_EQ(Join(*after), Join(fresh));

      // 3. A new entry chains onto the old tail.
      LedgerEntry added;
      ASSERT_TRUE(
          (*ws)
              ->Write([&](Txn& txn) -> Status {
                KEEL_ASSIGN_OR_RETURN(
                    added,
                    txn.Append(
                        {"operator", "note.added", "", "", "", R"({"after":"migration"})", {}}));
                return OkStatus();
              })
              .ok());
      // A fixture from before state images gets state.baseline entries first.
      LedgerQuery tail_q;
      tail_q.after_seq = old_tail.seq;
      auto since = (*ws)->QueryLedger(tail_q);
      ASSERT_TRUE(since.ok() && !since->empty());
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(since->front().prev_hash.data()), 32),
                old_tail.hash);
      for (size_t i = 0; i + 1 < since->size(); ++i) {
        EXPECT_EQ((*since)[i].kind, "state.baseline");
        EXPECT_LT(v, kFirstStateImageSchema);
      }
      baseline = static_cast<int64_t>(since->size()) - 1;
      EXPECT_EQ(added.seq, old_tail.seq + 1 + baseline);
      EXPECT_EQ(since->back().kind, "note.added");

      // 4. Every row the fixture held reads back through the store API.
      Status rows = CheckSchemaFixtureRows(**ws, v);
      EXPECT_TRUE(rows.ok()) << rows.ToString();
      // Representative: every table that existed at v had rows in the fixture.
      auto empty = EmptyTables(**ws);
      ASSERT_TRUE(empty.ok());
      std::vector<std::string> unexpected;
      auto fresh_at_v = FreshSchema(v);
      for (const std::string& t : *empty) {
        bool existed = false;
        for (const auto& line : fresh_at_v) existed |= line.rfind("table " + t + ":", 0) == 0;
        if (existed) unexpected.push_back(t);
      }
      EXPECT_TRUE(unexpected.empty())
          << "tables of schema version <= " << v
          << " left empty by the fixture: " << Join(unexpected)
          << "add rows for them in store/sqlite/testing_schema_fixtures.cc";
    }

    // 5. keel verify: chain, artifacts, signed checkpoints, integrity.
    auto report = VerifyWorkspace(dir, VerifyOptions{}, env);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok()) << Join(report->problems);
    EXPECT_EQ(report->integrity, "ok");
    EXPECT_GE(report->checkpoints_checked, 1);
    EXPECT_GT(report->entries_checked, old_tail.seq);

    // 6. A second open finds nothing to migrate and changes nothing.
    auto again = Workspace::Open(dir, WorkspaceOpenOptions{}, env);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*(*again)->LedgerSize(), old_tail.seq + 2 + baseline)
        << "the state baseline, the fixture check's secret.used entry and the appended note";
  }
}

// Newer than this build: refused before anything is written, with one line that says what
// to do. (Workspace.NewerSchemaIsRefused covers a fresh workspace; this one is a fixture,
// through the CLI, and checks the file is left as it was.)
TEST(SchemaFixtures, NewerVersionIsRefusedWithOneLine) {
  TempDir tmp;
  std::string dir = tmp.Sub("ws");
  int v = CurrentSchemaVersion();
  ASSERT_TRUE(CopyFixture(SchemaFixtureDir(v), dir).ok());
  {
    auto db = sql::Db::Open(dir + "/keel.db", {});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version = " + std::to_string(v + 1)).ok());
  }
  auto schema_before = SchemaOf(dir + "/keel.db");
  ASSERT_TRUE(schema_before.ok());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-w", dir, "ledger"},
        {"-w", dir, "record", "list", "lead"},
        {"-w", dir, "record", "add", "lead", "--set", "email=bob@example.com"}}) {
    auto r = keel::testing::RunKeel(args);
    EXPECT_NE(r.exit_code, 0) << args[2];
    EXPECT_NE(r.err.find("newer than this keel knows"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // keel verify reports it as its finding (on standard output) and fails.
  auto verify = keel::testing::RunKeel({"-w", dir, "verify"});
  EXPECT_NE(verify.exit_code, 0);
  EXPECT_NE(verify.out.find("newer than this keel knows"), std::string::npos) << verify.out;
  EXPECT_EQ(Join(*SchemaOf(dir + "/keel.db")), Join(*schema_before));
}

// A fixture database cut short (a bad copy, a full disk outside keel) is refused cleanly,
// at whatever point: no crash, no migration run over it, one line from the CLI.
TEST(SchemaFixtures, TruncatedDatabaseIsRefusedCleanly) {
  TempDir tmp;
  auto size = std::filesystem::file_size(SchemaFixtureDir(1) + "/keel.db");
  for (uintmax_t keep : {uintmax_t{0}, uintmax_t{100}, uintmax_t{4096}, size / 2, size - 4096}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(size) + " bytes");
    std::string dir = tmp.Sub("ws" + std::to_string(keep));
    ASSERT_TRUE(CopyFixture(SchemaFixtureDir(1), dir).ok());
    std::filesystem::resize_file(dir + "/keel.db", keep);
    Env env;
    auto ws = Workspace::Open(dir, WorkspaceOpenOptions{}, env);
    Status s = ws.status();
    if (keep == 0) {
      // Not mistaken for a new database and migrated afresh: that would hide the loss.
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
      EXPECT_NE(s.message().find("no keel schema"), std::string::npos) << s.ToString();
    }
    if (ws.ok()) {
      // The header and schema pages survived: the damage is found when the rows are read.
      s = CheckSchemaFixtureRows(**ws, 1);
      if (s.ok()) {
        auto report = VerifyWorkspace(dir, VerifyOptions{}, env);
        ASSERT_TRUE(report.ok());
        EXPECT_FALSE(report->ok()) << "a truncated database must not verify";
        continue;
      }
    }
    EXPECT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kFailedPrecondition)
        << s.ToString();
    auto r = keel::testing::RunKeel({"-w", dir, "ledger"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// The generator: run by hand (docs/testing.md), skipped otherwise. Writes every missing
// fixture up to this build's version; never overwrites one.
TEST(SchemaFixtures, Generate) {
  const char* update = std::getenv("KEEL_UPDATE_FIXTURES");
  if (update == nullptr || std::string(update) != "1") {
    GTEST_SKIP() << "set KEEL_UPDATE_FIXTURES=1 to write missing schema fixtures";
  }
  std::filesystem::create_directories(SchemaFixturesDir());
  for (int v = 1; v <= CurrentSchemaVersion(); ++v) {
    std::string dir = SchemaFixtureDir(v);
    if (std::filesystem::exists(dir)) {
      std::printf("kept %s (released fixtures are never regenerated)\n", dir.c_str());
      continue;
    }
    Status s = WriteSchemaFixture(dir, v);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::printf("wrote %s (%ju bytes of keel.db)\n", dir.c_str(),
                std::filesystem::file_size(dir + "/keel.db"));
  }
}

}  // namespace
}  // namespace keel::store
