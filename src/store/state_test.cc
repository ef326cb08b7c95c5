// State images: the ledger speaks for every row of the state tables (store/state.h).
#include "store/state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/records.h"
#include "store/repair.h"
#include "store/runs.h"
#include "store/sqlite/fts.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_schema_fixtures.h"
#include "store/testing_state_tamper.h"
#include "store/verify.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

struct Fixture {
  TempDir tmp;
  std::string dir = tmp.Sub("ws");
  Env env;
  std::unique_ptr<Workspace> ws;
  Fixture() {
    EXPECT_TRUE(Workspace::Init(dir, InitOptions{}, env).ok());
    auto w = Workspace::Open(dir, WorkspaceOpenOptions{}, env);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    ws = std::move(*w);
  }
  void Sql(const std::string& q) {
    auto db = sql::Db::Open(dir + "/keel.db", sql::OpenOptions{});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec(q).ok()) << q;
  }
  VerifyReport Verify() {
    VerifyOptions o;
    o.integrity_check = false;
    auto r = VerifyWorkspace(dir, o, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }
};

// Every table of the schema is either covered, with each column in its image or listed as
// bookkeeping, or listed as uncovered with the check that covers it instead. A new table or
// column fails here until it is classified (docs/architecture.md: a state table without a
// verify rule is a bug).
TEST(StateTables, CoverEveryTableAndColumn) {
  Fixture f;
  auto db = sql::Db::Open(f.dir + "/keel.db", sql::OpenOptions{});
  ASSERT_TRUE(db.ok());
  auto tables = (*db)->Prepare("SELECT name FROM sqlite_schema WHERE type = 'table'");
  ASSERT_TRUE(tables.ok());
  std::set<std::string> seen;
  for (;;) {
    auto row = (*tables)->Step();
    ASSERT_TRUE(row.ok());
    if (!*row) break;
    std::string name = (*tables)->Text(0);
    seen.insert(name);
    const StateTable* t = FindStateTable(name);
    if (t == nullptr) {
      bool listed = false;
      for (const auto& u : UncoveredTables()) {
        std::string_view p = u.name;
        listed =
            listed || (p.back() == '*' ? name.rfind(std::string(p.substr(0, p.size() - 1)), 0) == 0
                                       : name == p);
      }
      EXPECT_TRUE(listed) << "table " << name
                          << " has no verify rule: add it to StateTables() or UncoveredTables()";
      continue;
    }
    std::set<std::string> classified;
    for (const auto& c : t->cols) EXPECT_TRUE(classified.insert(c.name).second) << c.name;
    for (const auto& l : t->left_out) EXPECT_TRUE(classified.insert(l.name).second) << l.name;
    if (!t->left_out.empty()) {
      EXPECT_STRNE(t->why_left_out, "") << name;
    }
    auto info = (*db)->Prepare("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid");
    ASSERT_TRUE(info.ok());
    (*info)->Bind(1, name);
    std::set<std::string> actual;
    std::vector<std::string> key;
    for (;;) {
      auto r = (*info)->Step();
      ASSERT_TRUE(r.ok());
      if (!*r) break;
      actual.insert((*info)->Text(0));
      if ((*info)->Int(1) > 0) key.push_back((*info)->Text(0));
    }
    EXPECT_EQ(actual, classified) << "columns of " << name;
    ASSERT_EQ(static_cast<int>(key.size()), t->key_cols) << "primary key of " << name;
    for (int k = 0; k < t->key_cols; ++k) {
      EXPECT_EQ(key[static_cast<size_t>(k)], t->cols[static_cast<size_t>(k)].name) << name;
    }
  }
  for (const StateTable& t : StateTables()) EXPECT_TRUE(seen.count(t.name)) << t.name;
}

TEST(StateImages, EncodingRoundTrips) {
  StateBuilder b;
  b.Begin("records", true, 1, 4);
  PutIntValue(b.values(), -7);
  PutTextValue(b.values(), "a\0b");
  PutRealValue(b.values(), 0.25);
  PutNullValue(b.values());
  b.End();
  b.Begin("pauses", false, 2, 2);
  PutTextValue(b.values(), "global");
  PutBlobValue(b.values(), std::string("\x01\x02", 2));
  b.End();
  std::string blob = b.Finish();
  std::vector<StateWrite> w;
  std::string why;
  ASSERT_TRUE(ParseState(blob, &w, &why)) << why;
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].table, "records");
  EXPECT_TRUE(w[0].put);
  std::vector<StateValue> v;
  ASSERT_TRUE(ParseValues(w[0].values, &v));
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].i, -7);
  EXPECT_EQ(w[0].key, v[0].raw);
  EXPECT_EQ(v[2].f, 0.25);
  EXPECT_EQ(v[3].type, 'n');
  EXPECT_FALSE(w[1].put);
  // Every cut of the blob is refused, never misread.
  for (size_t n = 0; n < blob.size(); ++n) {
    EXPECT_FALSE(ParseState(std::string_view(blob).substr(0, n), &w, &why)) << n;
  }
  EXPECT_FALSE(ParseState(blob + "x", &w, &why));
}

// Nothing happens off the ledger: a write that changes a state table without an entry is
// refused before it commits.
TEST(StateImages, AChangeWithoutAnEntryIsRefused) {
  Fixture f;
  Status s = f.ws->Write([](Txn& txn) { return SetPause(txn, "global", "", true); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("pauses"), std::string::npos) << s.message();
  auto pauses = ListPauses(*f.ws);
  ASSERT_TRUE(pauses.ok());
  EXPECT_TRUE(pauses->empty());
  // The same change with an entry commits, and the entry carries the row's image.
  ASSERT_TRUE(f.ws->Write([](Txn& txn) {
                    KEEL_RETURN_IF_ERROR(SetPause(txn, "global", "", true));
                    return txn.Append({"operator", "pause.set", "", "", "", "{}", {}}).status();
                  })
                  .ok());
  LedgerQuery q;
  q.kind = "pause.set";
  auto e = f.ws->QueryLedger(q);
  ASSERT_TRUE(e.ok() && e->size() == 1);
  std::vector<StateWrite> w;
  std::string why;
  ASSERT_TRUE(ParseState((*e)[0].state, &w, &why)) << why;
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].table, "pauses");
  EXPECT_TRUE(f.Verify().ok());
}

// The images of a transaction ride on its last entry; a read of the ledger inside the
// transaction puts those made so far on the entry it writes.
TEST(StateImages, TheLastEntryOfATransactionCarriesItsImages) {
  Fixture f;
  ASSERT_TRUE(
      f.ws->Write([&](Txn& txn) -> Status {
            KEEL_RETURN_IF_ERROR(txn.Append({"operator", "first", "", "", "", "{}", {}}).status());
            KEEL_RETURN_IF_ERROR(SetPause(txn, "workflow", "a", true));
            KEEL_RETURN_IF_ERROR(txn.Append({"operator", "second", "", "", "", "{}", {}}).status());
            KEEL_ASSIGN_OR_RETURN(int64_t n, f.ws->LedgerSize());  // flushes "second"
            if (n < 3) return Internal("the read did not see the held entry");
            KEEL_RETURN_IF_ERROR(SetPause(txn, "workflow", "b", true));
            return txn.Append({"operator", "third", "", "", "", "{}", {}}).status();
          })
          .ok());
  auto all = f.ws->QueryLedger(LedgerQuery{});
  ASSERT_TRUE(all.ok());
  std::map<std::string, size_t> images;
  for (const auto& e : *all) {
    std::vector<StateWrite> w;
    std::string why;
    if (!e.state.empty()) {
      ASSERT_TRUE(ParseState(e.state, &w, &why));
    }
    images[e.kind] = w.size();
  }
  EXPECT_EQ(images["first"], 0u);
  EXPECT_EQ(images["second"], 1u);
  EXPECT_EQ(images["third"], 1u);
  EXPECT_TRUE(f.Verify().ok());
}

TEST(StateImages, VerifyNamesTheTableRowAndEntry) {
  Fixture f;
  auto id = CreateRecord(*f.ws, "lead", {{"name", "Ana"}, {"email", "ana@example.com"}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(f.Verify().ok()) << Joined(f.Verify().problems);
  f.Sql("UPDATE records SET email = 'attacker@evil.example'");
  VerifyReport r = f.Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("records " + id->id), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("email is 'attacker@evil.example'"), std::string::npos)
      << r.problems[0];
  EXPECT_NE(r.problems[0].find("ledger entry"), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("record.created"), std::string::npos) << r.problems[0];
}

TEST(StateImages, BookkeepingColumnsAreLeftOut) {
  Fixture f;
  ASSERT_TRUE(f.ws->Write([](Txn& txn) {
                    KEEL_RETURN_IF_ERROR(
                        UpsertSchedule(txn, {"wf", "workflows/wf.yaml", "0 9 * * *", "UTC", 5, 0}));
                    return txn.Append({"operator", "schedule.set", "", "", "", "{}", {}}).status();
                  })
                  .ok());
  f.Sql("UPDATE schedules SET next_us = 99, last_us = 7");
  EXPECT_TRUE(f.Verify().ok()) << Joined(f.Verify().problems);
  f.Sql("UPDATE schedules SET cron = '* * * * *'");
  VerifyReport r = f.Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].rfind("schedules wf: cron is '* * * * *'", 0), 0u) << r.problems[0];
}

// A REAL column holding a whole number: SQLite stores 1.0 as the integer 1 in the row's
// record, which the capture sees, and reads it back as the REAL 1.0. The image records what
// a reader gets, so the row verifies; an edit of the value is still reported.
TEST(StateImages, WholeNumbersInRealColumnsVerify) {
  Fixture f;
  auto add = [&](const char* confidence) {
    return f.ws->Write([&](Txn& txn) -> Status {
      KEEL_RETURN_IF_ERROR(txn.db()->Exec(
          std::string("INSERT INTO facts(n, id, subject, text, norm, confidence, scope, "
                      "valid_from_us, agent, created_us, ledger_seq) VALUES (1, 'fact_1', "
                      "'lead_1', 'Ana runs a bakery', 'ana runs a bakery', ") +
          confidence + ", 'long', 1, 'researcher', 1, 1)"));
      KEEL_RETURN_IF_ERROR(sql::FtsIndexFact(txn.db(), 1, "lead_1", "Ana runs a bakery"));
      return txn.Append({"operator", "memory.fact.added", "lead_1", "", "", "{}", {}}).status();
    });
  };
  ASSERT_TRUE(add("1.0").ok());
  EXPECT_TRUE(f.Verify().ok()) << Joined(f.Verify().problems);
  // An update from a fraction to a whole number, and one that changes nothing but the type
  // SQLite hands the capture (1 for 1.0): both verify.
  for (const char* q : {"UPDATE facts SET confidence = 0.5", "UPDATE facts SET confidence = 1",
                        "UPDATE facts SET confidence = 1.0"}) {
    ASSERT_TRUE(
        f.ws->Write([&](Txn& txn) -> Status {
              KEEL_RETURN_IF_ERROR(txn.db()->Exec(q));
              return txn.Append({"operator", "fact.edited", "lead_1", "", "", "{}", {}}).status();
            })
            .ok())
        << q;
    EXPECT_TRUE(f.Verify().ok()) << q << "\n" << Joined(f.Verify().problems);
  }
  f.Sql("UPDATE facts SET confidence = 0.25");
  VerifyReport r = f.Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("confidence is 0.25"), std::string::npos) << r.problems[0];
}

// Hundreds of seeded random edits (update a covered column, insert a row, delete a row) on
// every covered table: each one is reported, naming its table. The long variant is in
// tamper_slowtest.cc.
TEST(StateTamper, SeededRandomEditsAreAllReported) {
  TempDir tmp;
  auto r = testing::RunStateTamperTrials(tmp.Sub("ws"), 20261203, 300);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("state tamper: %d edits applied, %d refused by constraints, %zu tables\n", r->applied,
              r->refused, r->tables.size());
  EXPECT_GE(r->applied, 200);
  EXPECT_EQ(r->tables.size(), StateTables().size());
  EXPECT_TRUE(r->missed.empty()) << Joined(r->missed);
}

TEST(Repair, RebuildsEditedRowsFromTheLedger) {
  TempDir tmp;
  std::string dir = tmp.Sub("ws");
  ASSERT_TRUE(
      testing::CopyFixture(testing::SchemaFixtureDir(testing::NewestFixtureVersion()), dir).ok());
  Env env;
  {
    auto ws = Workspace::Open(dir, WorkspaceOpenOptions{}, env);
    ASSERT_TRUE(ws.ok());
  }
  int64_t pauses = 0;
  {
    auto db = sql::Db::Open(dir + "/keel.db", sql::OpenOptions{});
    ASSERT_TRUE(db.ok());
    pauses = *(*db)->QueryInt("SELECT count(*) FROM pauses");
    ASSERT_TRUE((*db)
                    ->Exec("UPDATE records SET data = '{}' WHERE n = (SELECT min(n) FROM "
                           "records); DELETE FROM steps; INSERT INTO pauses VALUES "
                           "('global', '', 1); UPDATE facts SET text = 'edited'; "
                           "UPDATE secrets SET ciphertext = x'00'; UPDATE runs SET "
                           "lease_owner = 'kept'")
                    .ok());
  }
  auto r = RepairFromLedger(dir, tmp.Sub("fixed"), env);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->damage.empty());
  EXPECT_TRUE(r->verify.ok()) << Joined(r->verify.problems);
  EXPECT_GT(r->rows["steps"], 0);
  EXPECT_EQ(r->rows["pauses"], pauses);
  // The sealed secret's value is not in the ledger (only its digest): it is reported.
  bool secret_note = false;
  for (const auto& n : r->notes) secret_note = secret_note || n.rfind("secrets ", 0) == 0;
  EXPECT_TRUE(secret_note) << Joined(r->notes);
  LedgerQuery lost_q;
  lost_q.kind = "repair.rows_lost";
  {
    auto fixed_ws = Workspace::Open(tmp.Sub("fixed"), WorkspaceOpenOptions{}, env);
    ASSERT_TRUE(fixed_ws.ok());
    auto lost = (*fixed_ws)->QueryLedger(lost_q);
    ASSERT_TRUE(lost.ok());
    EXPECT_EQ(lost->size(), 1u);
  }
  auto fixed = sql::Db::Open(tmp.Sub("fixed") + "/keel.db", sql::OpenOptions{});
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(*(*fixed)->QueryInt("SELECT count(*) FROM facts WHERE text = 'edited'"), 0);
  EXPECT_EQ(*(*fixed)->QueryInt("SELECT count(*) FROM runs WHERE lease_owner = 'kept'"),
            *(*fixed)->QueryInt("SELECT count(*) FROM runs"));
  // Refusals: a folder that is not empty, a damaged ledger.
  auto again = RepairFromLedger(dir, tmp.Sub("fixed"), env);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  {
    auto db = sql::Db::Open(dir + "/keel.db", sql::OpenOptions{});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("DROP TRIGGER ledger_no_update; UPDATE ledger SET payload = "
                           "'{\"x\":1}' WHERE seq = 3")
                    .ok());
  }
  auto bad = RepairFromLedger(dir, tmp.Sub("other"), env);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("restore a snapshot"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("other")));
}

}  // namespace
}  // namespace keel::store

namespace keel::store {
namespace {
TEST(StateImages, SeveralRowsInOneTransaction) {
  Fixture f;
  ASSERT_TRUE(f.ws->Write([](Txn& txn) -> Status {
                    for (int i = 0; i < 3; ++i) {
                      PutArtifactOptions o;
                      o.media_type = "text/plain";
                      KEEL_RETURN_IF_ERROR(
                          PutArtifact(txn, "body " + std::to_string(i), o).status());
                      KEEL_RETURN_IF_ERROR(
                          txn.Append({"operator", "test.entry", "", "", "", "{}", {}}).status());
                    }
                    return OkStatus();
                  })
                  .ok());
  VerifyReport r = f.Verify();
  EXPECT_TRUE(r.ok()) << Joined(r.problems);
  EXPECT_EQ(r.state_images, 3);
}
}  // namespace
}  // namespace keel::store
