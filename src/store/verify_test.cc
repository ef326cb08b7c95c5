#include "store/verify.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>

#include "core/testing_util.h"
#include "store/checkpoint.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_tamper.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::AppendEntries;
using keel::testing::MakeWorkspace;
using keel::testing::RawSql;
using keel::testing::ReadFileOrDie;
using keel::testing::RunKeel;
using keel::testing::TempDir;
using keel::testing::WriteFile;

struct Fixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::string dir;
  std::unique_ptr<Workspace> ws;
  explicit Fixture(int64_t every = 10) {
    env.clock = &clock;
    env.random = &random;
    dir = tmp.Sub("ws");
    ws = MakeWorkspace(dir, env, every);
  }
  VerifyReport Verify() {
    auto r = VerifyWorkspace(dir, VerifyOptions{}, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }
  void Close() { ws.reset(); }
  std::string Db() const { return dir + "/keel.db"; }
};

std::string Problems(const VerifyReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += "  " + p + "\n";
  return s;
}

TEST(Checkpoint, LineAndStatementFormat) {
  CheckpointInfo c;
  c.tree_size = 1000;
  c.root.fill(0xab);
  c.time_us = 1767225600000000;
  c.public_key.fill(0x01);
  c.signature.fill(0x02);
  EXPECT_EQ(CheckpointStatement("ws_X", c), "keel.checkpoint.v1\nws_X\n1000\n" +
                                                std::string(64, 'a').replace(0, 64, ToHex(c.root)) +
                                                "\n1767225600000000\n");
  std::string line = FormatCheckpointLine(c);
  EXPECT_EQ(line.substr(0, 8), "v1 1000 ");
  EXPECT_EQ(line.back(), '\n');
  auto back = ParseCheckpointLine(line.substr(0, line.size() - 1));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->tree_size, 1000);
  EXPECT_EQ(back->root, c.root);
  EXPECT_EQ(back->signature, c.signature);
  // Malformed lines are refused, each with a reason.
  for (std::string bad : {std::string(""), std::string("v2") + line.substr(2, line.size() - 3),
                          line.substr(0, line.size() - 3), "v1 01 " + line.substr(8),
                          "v1 -5 " + line.substr(8), line.substr(0, line.size() - 1) + " x"}) {
    EXPECT_FALSE(ParseCheckpointLine(bad).ok()) << bad;
  }
  std::string upper = line.substr(0, line.size() - 1);
  upper[10] = 'A';
  EXPECT_FALSE(ParseCheckpointLine(upper).ok());
}

TEST(Checkpoint, SignsWritesLogAndRowAndLedgerEntry) {
  Fixture f(1000);
  AppendEntries(*f.ws, 5, true);
  auto c = Checkpoint(*f.ws);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tree_size, 6);  // workspace.created + 5; the checkpoint's own entry is 7
  EXPECT_EQ(*f.env.fs->Mode(f.dir + "/keys/ledger.ed25519"), 0600);
  auto pk = LoadLedgerPublicKey(*f.ws);
  ASSERT_TRUE(pk.ok()) << pk.status().ToString();
  EXPECT_TRUE(CheckpointSignatureValid(f.ws->config().id, *c, *pk));
  CheckpointInfo forged = *c;
  forged.tree_size = 5;
  EXPECT_FALSE(CheckpointSignatureValid(f.ws->config().id, forged, *pk));
  EXPECT_FALSE(CheckpointSignatureValid("ws_other", *c, *pk));
  std::string log = ReadFileOrDie(f.dir + "/checkpoints.log");
  EXPECT_EQ(log, FormatCheckpointLine(*c));
  auto entries = f.ws->QueryLedger({});
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 7u);
  EXPECT_EQ(entries->back().kind, "ledger.checkpoint");
  EXPECT_EQ(entries->back().payload, "{\"root\":\"" + ToHex(c->root) + "\",\"tree_size\":6}");
  // A second checkpoint covers the first one's entry, and reuses the key.
  auto c2 = Checkpoint(*f.ws);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->tree_size, 7);
  EXPECT_EQ(c2->public_key, c->public_key);
  auto r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.checkpoints_checked, 2);
  EXPECT_EQ(r.last_checkpoint_size, 7);
  EXPECT_EQ(r.entries_checked, 8);
  EXPECT_EQ(r.integrity, "ok");
}

TEST(Checkpoint, AutomaticEveryNEntriesAndAcrossReopen) {
  Fixture f(10);
  AppendEntries(*f.ws, 25, true);  // ledger: 1 + 25 appends + the checkpoints' own entries
  {
    std::lock_guard<std::recursive_mutex> l(f.ws->mu());
    auto rows = ReadCheckpointRows(*f.ws);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0].tree_size, 10);
    EXPECT_EQ((*rows)[1].tree_size, 20);
  }
  EXPECT_TRUE(f.ws->last_auto_checkpoint_status().ok());
  // A batch that crosses the threshold checkpoints once, after its commit.
  AppendEntries(*f.ws, 30, false);
  f.Close();
  auto ws = Workspace::Open(f.dir, {}, f.env);
  ASSERT_TRUE(ws.ok());
  AppendEntries(**ws, 1, true);
  {
    std::lock_guard<std::recursive_mutex> l((*ws)->mu());
    auto rows = ReadCheckpointRows(**ws);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 3u);
    EXPECT_EQ((*rows)[2].tree_size, 58);  // 28 entries, then 30 in one batch
  }
  ws->reset();
  auto r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.checkpoints_checked, 3);
}

TEST(Checkpoint, RefusesToSignOverATamperedLedger) {
  Fixture f(1000);
  AppendEntries(*f.ws, 5, true);
  ASSERT_TRUE(Checkpoint(*f.ws).ok());
  f.Close();
  // The root commits to the entries' hashes; rewriting one (as a forger re-hashing an edited
  // entry must) contradicts the checkpoint.
  RawSql(f.Db(),
         "DROP TRIGGER ledger_no_update; UPDATE ledger SET hash = zeroblob(32) "
         "WHERE seq = 3;");
  auto ws = Workspace::Open(f.dir, {}, f.env);
  ASSERT_TRUE(ws.ok());
  auto c = Checkpoint(**ws);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss) << c.status().ToString();
  EXPECT_NE(c.status().message().find("no longer match"), std::string::npos);
}

TEST(Checkpoint, TornLogTailIsANoteAndTheNextCheckpointRemovesIt) {
  Fixture f(1000);
  ASSERT_TRUE(Checkpoint(*f.ws).ok());
  std::string log = ReadFileOrDie(f.dir + "/checkpoints.log");
  // A fragment that cannot occur in a real line (which holds only decimal and hex fields):
  // "abcd" used to be the marker and turned up by chance in the next line's signature.
  WriteFile(f.dir + "/checkpoints.log", log + "v1 5 torn-tail");
  auto r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  ASSERT_FALSE(r.notes.empty());
  ASSERT_TRUE(Checkpoint(*f.ws).ok());
  auto log2 = ReadFileOrDie(f.dir + "/checkpoints.log");
  EXPECT_EQ(log2.find("torn-tail"), std::string::npos);
  EXPECT_EQ(std::count(log2.begin(), log2.end(), '\n'), 2);
  f.Close();
  r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
}

TEST(Checkpoint, InterruptedCheckpointInLogOnlyVerifies) {
  Fixture f(1000);
  AppendEntries(*f.ws, 3, true);
  ASSERT_TRUE(Checkpoint(*f.ws).ok());
  f.Close();
  // The database as if the checkpoint's commit never happened: log line present, no row.
  RawSql(f.Db(),
         "DROP TRIGGER ledger_no_delete; DROP TRIGGER checkpoints_no_delete; "
         "DELETE FROM ledger WHERE kind = 'ledger.checkpoint'; DELETE FROM checkpoints;");
  auto r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_FALSE(r.notes.empty());
}

TEST(Verify, FreshWorkspaceAndArtifactsVerify) {
  Fixture f(1000);
  AppendEntries(*f.ws, 20, true, 4);
  auto r = f.Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.entries_checked, 21);
  EXPECT_EQ(r.artifact_files_checked, 5);
  EXPECT_EQ(r.artifact_rows_checked, 5);
  EXPECT_EQ(r.artifacts_referenced, 5);
}

TEST(Verify, EditedEntryIsTheFirstBadEntry) {
  Fixture f(1000);
  AppendEntries(*f.ws, 20, true);
  f.Close();
  RawSql(f.Db(),
         "DROP TRIGGER ledger_no_update; UPDATE ledger SET actor = 'agent:x' WHERE "
         "seq = 12; UPDATE ledger SET payload = '{}' WHERE seq = 15;");
  auto r = f.Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq, 12);
  EXPECT_NE(r.problems[0].find("ledger entry 12"), std::string::npos) << r.problems[0];
}

TEST(Verify, RehashedEditBreaksTheChainLink) {
  Fixture f(1000);
  AppendEntries(*f.ws, 10, true);
  f.Close();
  // The editor recomputes entry 5's hash correctly: the link from entry 6 breaks.
  auto ws = Workspace::Open(f.dir, {}, f.env);
  ASSERT_TRUE(ws.ok());
  auto e = (*ws)->QueryLedger({});
  ASSERT_TRUE(e.ok());
  LedgerEntry x = (*e)[4];
  x.payload = "{\"forged\":true}";
  std::string scratch;
  x.hash = ComputeEntryHash(x, &scratch);
  ws->reset();
  RawSql(f.Db(), "DROP TRIGGER ledger_no_update; UPDATE ledger SET payload = '" + x.payload +
                     "', hash = x'" + ToHex(x.hash) + "' WHERE seq = 5;");
  auto r = f.Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq, 6);
  EXPECT_NE(r.first_bad_reason.find("prev_hash"), std::string::npos);
}

TEST(Verify, DeletedReorderedAndMissingArtifacts) {
  {
    Fixture f(1000);
    AppendEntries(*f.ws, 10, true);
    f.Close();
    RawSql(f.Db(), "DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE seq = 4;");
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.first_bad_seq, 4);
    EXPECT_NE(r.first_bad_reason.find("missing"), std::string::npos) << r.first_bad_reason;
  }
  {
    Fixture f(1000);
    AppendEntries(*f.ws, 10, true);
    f.Close();
    // Swap the contents of entries 3 and 7 (every column but seq).
    RawSql(f.Db(),
           "DROP TRIGGER ledger_no_update; CREATE TEMP TABLE t AS SELECT * FROM ledger WHERE seq "
           "IN (3, 7); UPDATE ledger SET (time_us, actor, kind, subject, run_id, step_id, "
           "payload, artifacts, prev_hash, hash) = (SELECT time_us, actor, kind, subject, "
           "run_id, step_id, payload, artifacts, prev_hash, hash FROM t WHERE t.seq = 10 - "
           "ledger.seq) WHERE seq IN (3, 7);");
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.first_bad_seq, 3);
  }
  {
    Fixture f(1000);
    AppendEntries(*f.ws, 8, true, 2);
    f.Close();
    auto r0 = f.Verify();
    ASSERT_TRUE(r0.ok()) << Problems(r0);
    int n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(f.dir + "/artifacts")) {
      if (!e.is_regular_file()) continue;
      if (n++ == 0) {
        std::filesystem::remove(e.path());
      } else if (n == 2) {
        std::filesystem::permissions(e.path(), std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add);
        WriteFile(e.path().string(), "replaced");
      }
    }
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    std::string all = Problems(r);
    EXPECT_NE(all.find("is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("is damaged"), std::string::npos) << all;
  }
  {
    Fixture f(1000);
    AppendEntries(*f.ws, 4, true, 2);
    f.Close();
    RawSql(f.Db(), "UPDATE artifacts SET media_type = 'text/html';");
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problems(r).find("metadata row does not match"), std::string::npos) << Problems(r);
  }
}

TEST(Verify, TruncatedTailAndOlderDatabaseNeedTheCheckpoints) {
  {
    Fixture f(10);
    AppendEntries(*f.ws, 30, true);
    f.Close();
    ASSERT_TRUE(f.Verify().ok());
    // Delete the last entries *and* the checkpoint rows that would give it away: only the
    // log outside the database still knows.
    RawSql(f.Db(),
           "DROP TRIGGER ledger_no_delete; DROP TRIGGER checkpoints_no_delete; "
           "DELETE FROM ledger WHERE seq > 15; DELETE FROM checkpoints WHERE "
           "tree_size > 15;");
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.first_bad_seq, 0);  // the chain itself is intact
    EXPECT_NE(Problems(r).find("truncated or an older copy"), std::string::npos) << Problems(r);
  }
  {
    Fixture f(10);
    AppendEntries(*f.ws, 12, true);
    f.Close();
    std::filesystem::copy_file(f.Db(), f.tmp.Sub("old.db"));
    auto ws = Workspace::Open(f.dir, {}, f.env);
    ASSERT_TRUE(ws.ok());
    AppendEntries(**ws, 12, true);
    ASSERT_TRUE(Checkpoint(**ws).ok());
    ws->reset();
    std::filesystem::copy_file(f.tmp.Sub("old.db"), f.Db(),
                               std::filesystem::copy_options::overwrite_existing);
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problems(r).find("truncated or an older copy"), std::string::npos) << Problems(r);
  }
}

TEST(Verify, CheckpointLogAndKeyTampering) {
  auto setup = [](Fixture& f) {
    AppendEntries(*f.ws, 25, true);
    f.Close();
    auto r = f.Verify();
    ASSERT_TRUE(r.ok()) << Problems(r);
  };
  {
    Fixture f(10);
    setup(f);
    std::remove((f.dir + "/checkpoints.log").c_str());
    EXPECT_FALSE(f.Verify().ok());
  }
  {
    Fixture f(10);
    setup(f);
    std::string log = ReadFileOrDie(f.dir + "/checkpoints.log");
    WriteFile(f.dir + "/checkpoints.log", log.substr(log.find('\n') + 1));  // first line gone
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problems(r).find("not in checkpoints.log"), std::string::npos) << Problems(r);
  }
  {
    Fixture f(10);
    setup(f);
    std::string log = ReadFileOrDie(f.dir + "/checkpoints.log");
    size_t sig = log.find('\n') - 5;
    log[sig] = log[sig] == 'a' ? 'b' : 'a';
    WriteFile(f.dir + "/checkpoints.log", log);
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problems(r).find("signature"), std::string::npos) << Problems(r);
  }
  {
    // A checkpoint re-signed with another key (someone without the workspace key).
    Fixture f(10);
    setup(f);
    ASSERT_EQ(sodium_init() >= 0, true);
    unsigned char pk[32], sk[64];
    crypto_sign_keypair(pk, sk);
    WriteFile(f.dir + "/keys/ledger.ed25519.pub", ToHex(pk, 32) + "\n");
    auto r = f.Verify();
    ASSERT_FALSE(r.ok());
  }
}

TEST(Verify, CommandLine) {
  TempDir tmp;
  std::string dir = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  auto c = RunKeel({"-w", dir, "checkpoint"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("checkpoint: 1 entries"), std::string::npos) << c.out;
  auto v = RunKeel({"-w", dir, "verify"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("ok: 2 ledger entries"), std::string::npos) << v.out;
  auto j = RunKeel({"-w", dir, "verify", "--json"});
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_NE(j.out.find("\"ok\": true"), std::string::npos) << j.out;
  RawSql(dir + "/keel.db",
         "DROP TRIGGER ledger_no_update; UPDATE ledger SET kind = 'x' WHERE seq = 1;");
  v = RunKeel({"-w", dir, "verify"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("FAILED: ledger entry 1"), std::string::npos) << v.out;
  j = RunKeel({"-w", dir, "verify", "--json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.out.find("\"first_bad_seq\": 1"), std::string::npos) << j.out;
  EXPECT_NE(RunKeel({"-w", tmp.Sub("nowhere"), "verify"}).exit_code, 0);
}

}  // namespace
}  // namespace keel::store
