// The WAL: the buffering layer (store/wal_vfs.h) grows it in zero-filled 1 MiB steps that
// never cost a frame, and pipelined commits (sql::Db::Durability::kPipelined,
// Workspace::WritePipelined) are visible at once, durable after WaitDurable, synced through
// the connection's own VFS, stop writes when that fsync fails, and reach the file before
// SQLite publishes them although no sync comes between.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/testing_util.h"
#include "store/checkpoint.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_fault_vfs.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;
using sql::Db;
namespace fs = std::filesystem;

std::unique_ptr<Db> OpenWal(const std::string& path, const std::string& vfs = "") {
  sql::OpenOptions o;
  o.create = true;
  o.vfs = vfs;
  auto db = Db::Open(path, o);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return nullptr;
  EXPECT_TRUE((*db)->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL").ok());
  return std::move(*db);
}

// One pipelined transaction inserting `rows` blobs of `bytes`.
Status InsertPipelined(Db* db, int rows, int bytes) {
  KEEL_RETURN_IF_ERROR(db->Begin(Db::Durability::kPipelined));
  KEEL_ASSIGN_OR_RETURN(
      auto st, db->Prepare("INSERT INTO t(x) VALUES (randomblob(" + std::to_string(bytes) + "))"));
  for (int i = 0; i < rows; ++i) {
    Status s = st->Run();
    if (!s.ok()) {
      db->Rollback();
      return s;
    }
    st->Reset();
  }
  return db->Commit();
}

// The same as one durable transaction.
void Insert(Db* db, int rows, int bytes) {
  ASSERT_TRUE(db->Begin().ok());
  auto st = db->Prepare("INSERT INTO t(x) VALUES (randomblob(" + std::to_string(bytes) + "))");
  ASSERT_TRUE(st.ok());
  for (int i = 0; i < rows; ++i) {
    ASSERT_TRUE((*st)->Run().ok());
    (*st)->Reset();
  }
  ASSERT_TRUE(db->Commit().ok());
}

int64_t Count(Db* db) {
  auto n = db->QueryInt("SELECT COUNT(*) FROM t");
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : -1;
}

bool IntegrityOk(Db* db) {
  auto ok =
      db->QueryInt("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'");
  return ok.ok() && *ok == 1;
}

constexpr uintmax_t kGrowStep = 1 << 20;

// The first commit already finds a whole step of written blocks, and a WAL that outgrows
// it grows by whole steps: its size is always a multiple of the step while it is in use.
TEST(WalVfs, WalGrowsInZeroFilledSteps) {
  TempDir tmp;
  std::string path = tmp.Sub("g.db");
  auto db = OpenWal(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  EXPECT_EQ(fs::file_size(path + "-wal"), kGrowStep);
  // Past the first step in one transaction (the WAL holds all of it until the commit).
  Insert(db.get(), 600, 3000);
  uintmax_t size = fs::file_size(path + "-wal");
  EXPECT_GT(size, kGrowStep);
  EXPECT_EQ(size % kGrowStep, 0u);
  EXPECT_EQ(Count(db.get()), 600);
  EXPECT_TRUE(IntegrityOk(db.get()));
}

// What a SIGKILL leaves: the WAL with its zero tail, never checkpointed. A copy of both
// files opens with every committed row: SQLite's recovery stops at the first zero frame.
TEST(WalVfs, ZeroTailIsReadAsTheEndOfTheLog) {
  TempDir tmp;
  std::string path = tmp.Sub("k.db");
  std::string copy = tmp.Sub("copy.db");
  auto db = OpenWal(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  for (int i = 0; i < 5; ++i) Insert(db.get(), 20, 500);
  fs::copy_file(path, copy);
  fs::copy_file(path + "-wal", copy + "-wal");
  db.reset();
  auto re = Db::Open(copy, {});
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  EXPECT_EQ(Count(re->get()), 100);
  EXPECT_TRUE(IntegrityOk(re->get()));
}

// Two connections take turns growing one WAL. 150 rows of 3 KB are about 0.6 MiB of frames
// (4 KiB pages): a grows the WAL to 1 MiB, b to 2 MiB, then b to 3 MiB while a still
// believes 2 MiB, and a's next commit lands after b's frames. A writer trusting its own
// last look would zero b's frames there; the 1,000-page checkpoint comes only after that.
TEST(WalVfs, StaleSizeNeverZeroesAnotherWritersFrames) {
  TempDir tmp;
  std::string path = tmp.Sub("s.db");
  auto a = OpenWal(path);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  auto b = OpenWal(path);
  ASSERT_NE(b, nullptr);
  for (int turn = 0; turn < 8; ++turn) Insert(turn % 2 ? b.get() : a.get(), 150, 3000);
  EXPECT_EQ(Count(a.get()), 1200);
  EXPECT_EQ(Count(b.get()), 1200);
  a.reset();
  b.reset();
  auto re = Db::Open(path, {});
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(Count(re->get()), 1200);
  EXPECT_TRUE(IntegrityOk(re->get()));
}

TEST(Pipelined, VisibleAtOnceDurableAfterWait) {
  TempDir tmp;
  std::string path = tmp.Sub("p.db");
  auto db = OpenWal(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  auto reader = OpenWal(path);
  ASSERT_NE(reader, nullptr);
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(InsertPipelined(db.get(), 1, 100).ok());
    EXPECT_EQ(Count(reader.get()), i);  // committed: every connection sees it
  }
  EXPECT_EQ(db->pipelined_commits(), 20u);
  ASSERT_TRUE(db->WaitDurable().ok());
  EXPECT_EQ(db->durable_commits(), 20u);
  // The setting is back to FULL for the next durable transaction.
  ASSERT_TRUE(db->Begin().ok());
  EXPECT_EQ(*db->QueryInt("PRAGMA synchronous"), 2);
  ASSERT_TRUE(db->Commit().ok());
  EXPECT_EQ(db->pipelined_commits(), 20u);
}

// The WAL VFS collects a commit's frames into one write and, with no sync at commit, must
// write them before SQLite publishes them: a second connection reads each commit right
// after it, small ones and ones larger than the VFS's 120 KiB buffer.
TEST(Pipelined, BufferedFramesReachTheFileBeforeOthersSeeThem) {
  TempDir tmp;
  std::string path = tmp.Sub("f.db");
  auto db = OpenWal(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  auto reader = OpenWal(path);
  ASSERT_NE(reader, nullptr);
  int64_t total = 0;
  for (int i = 0; i < 30; ++i) {
    int rows = i % 3 == 0 ? 60 : 1;  // 60 x 3 KB: past the buffer, flushed in parts
    ASSERT_TRUE(InsertPipelined(db.get(), rows, 3000).ok());
    total += rows;
    ASSERT_EQ(Count(reader.get()), total) << "commit " << i;
    auto sum = reader->QueryInt("SELECT SUM(length(x)) FROM t");
    ASSERT_TRUE(sum.ok()) << sum.status().ToString();
    EXPECT_EQ(*sum, total * 3000);
  }
  ASSERT_TRUE(db->WaitDurable().ok());
  db.reset();
  reader.reset();
  auto re = Db::Open(path, {});
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(Count(re->get()), total);
  EXPECT_TRUE(IntegrityOk(re->get()));
}

struct FaultVfs {
  FaultVfs() {
    testing::RegisterFaultVfs();
    testing::FaultVfsClear();
  }
  ~FaultVfs() { testing::FaultVfsClear(); }
};

// The syncer's fsync goes through the connection's VFS: a pipelined commit makes no sync
// in COMMIT, and WaitDurable makes at least one.
TEST(Pipelined, SyncsThroughTheConnectionsVfs) {
  FaultVfs guard;
  TempDir tmp;
  auto db = OpenWal(tmp.Sub("v.db"), testing::kFaultVfsName);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  ASSERT_TRUE(InsertPipelined(db.get(), 1, 10).ok());  // starts the syncer
  ASSERT_TRUE(db->WaitDurable().ok());
  int64_t before = testing::FaultVfsSyncs();
  ASSERT_TRUE(InsertPipelined(db.get(), 1, 10).ok());
  ASSERT_TRUE(db->WaitDurable().ok());
  EXPECT_GE(testing::FaultVfsSyncs(), before + 1);
  EXPECT_EQ(db->durable_commits(), 2u);
}

// A failed fsync of pipelined commits: WaitDurable says DataLoss, the connection is
// poisoned (no more writes), and commits already durable stay reported as such.
TEST(Pipelined, FailedSyncStopsWrites) {
  FaultVfs guard;
  TempDir tmp;
  auto db = OpenWal(tmp.Sub("x.db"), testing::kFaultVfsName);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  ASSERT_TRUE(InsertPipelined(db.get(), 1, 10).ok());
  ASSERT_TRUE(db->WaitDurable().ok());
  testing::FaultVfsFailSyncAt(1, /*sticky=*/true);
  ASSERT_TRUE(InsertPipelined(db.get(), 1, 10).ok());
  Status s = db->WaitDurable();
  testing::FaultVfsClear();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("fsync"), std::string::npos) << s.message();
  EXPECT_TRUE(db->poisoned());
  EXPECT_EQ(db->Begin(Db::Durability::kPipelined).code(), StatusCode::kDataLoss);
  EXPECT_EQ(db->durable_commits(), 1u);  // the first one was durable, the second is not known
  EXPECT_EQ(db->pipelined_commits(), 2u);
}

// A full disk in a pipelined commit is the same clean error as in a durable one: the
// commit fails, nothing of it is visible, and the same write succeeds once space is back.
TEST(Pipelined, DiskFullFailsTheCommitCleanly) {
  FaultVfs guard;
  TempDir tmp;
  std::string path = tmp.Sub("d.db");
  auto db = OpenWal(path, testing::kFaultVfsName);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  testing::FaultVfsFullAfterWrites(3);
  Status s = InsertPipelined(db.get(), 50, 3000);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  testing::FaultVfsFreeSpace();
  testing::FaultVfsClear();
  EXPECT_EQ(Count(db.get()), 0);
  ASSERT_TRUE(InsertPipelined(db.get(), 50, 3000).ok());
  ASSERT_TRUE(db->WaitDurable().ok());
  EXPECT_EQ(Count(db.get()), 50);
}

// Workspace level: a signed checkpoint first makes the entries it signs durable (its line
// leaves the database); WaitDurable on a workspace with nothing pending returns at once.
TEST(Pipelined, CheckpointWaitsForPipelinedEntries) {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{3};
  Env env;
  env.clock = &clock;
  env.random = &random;
  std::string dir = tmp.Sub("ws");
  ASSERT_TRUE(Workspace::Init(dir, InitOptions{}, env).ok());
  auto ws = Workspace::Open(dir, {}, env);
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  ASSERT_TRUE((*ws)->WaitDurable().ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*ws)
                    ->WritePipelined([&](Txn& txn) -> Status {
                      NewEntry e;
                      e.actor = "test";
                      e.kind = "test.pipelined";
                      return txn.Append(e).status();
                    })
                    .ok());
  }
  auto cp = Checkpoint(**ws);
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  sql::Db* db = (*ws)->db();
  EXPECT_EQ(db->durable_commits(), 10u);
  EXPECT_EQ(db->pipelined_commits(), 10u);
}

}  // namespace
}  // namespace keel::store
