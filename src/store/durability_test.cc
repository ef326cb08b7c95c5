// Durability rules (issue 3): a full disk, a failed fsync and a power loss, injected through
// the fault-injecting SQLite VFS (store/sqlite/testing_fault_vfs.h) and file system
// (core/testing_fault_fs.h). Each test states the rule it checks.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/json.h"
#include "core/testing_fault_fs.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/ledger.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_fault_vfs.h"
#include "store/testing_ledger_check.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::FaultInjectionFileSystem;
using keel::testing::TempDir;
using namespace keel::store::testing;

// Disarms the process-wide VFS knobs whatever the test's outcome. Real syncs are off:
// these tests simulate no power loss of the database (only of the files around it), so
// waiting for the disk would add minutes and prove nothing more. Syncs are still counted
// and can still be failed.
struct VfsGuard {
  VfsGuard() {
    RegisterFaultVfs();
    FaultVfsClear();
    FaultVfsSetRealSyncs(false);
  }
  ~VfsGuard() {
    FaultVfsClear();
    FaultVfsSetRealSyncs(true);
  }
};

// A workspace initialised once per test program; fixtures copy it (Init costs fsyncs).
const std::string& TemplateWorkspace() {
  static const std::string* dir = [] {
    auto* tmp = new TempDir;  // lives until exit
    static SimulatedClock clock;
    static SeededRandom random{7};
    Env env;
    env.clock = &clock;
    env.random = &random;
    auto* path = new std::string(tmp->Sub("template"));
    Status s = Workspace::Init(*path, InitOptions{}, env);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return path;
  }();
  return *dir;
}

struct Fixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::string dir;
  // `fs`: the file system seam (default: the real one). `fresh`: run Workspace::Init
  // through it instead of copying the template.
  explicit Fixture(FileSystem* fs = nullptr, bool fresh = false) {
    env.clock = &clock;
    env.random = &random;
    if (fs != nullptr) env.fs = fs;
    dir = tmp.Sub("ws");
    if (fresh) {
      Status s = Workspace::Init(dir, InitOptions{}, env);
      EXPECT_TRUE(s.ok()) << s.ToString();
    } else {
      std::error_code ec;
      std::filesystem::copy(TemplateWorkspace(), dir, std::filesystem::copy_options::recursive, ec);
      EXPECT_FALSE(ec) << ec.message();
    }
  }
  // Through the fault VFS unless another is named ("" = SQLite's default).
  std::unique_ptr<Workspace> Open(const std::string& vfs = kFaultVfsName) {
    WorkspaceOpenOptions o;
    o.sqlite_vfs = vfs;
    // These tests fail the Nth fsync: a checkpointing thread would shift the count.
    o.background_checkpoint = false;
    auto r = Workspace::Open(dir, o, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
};

Status AppendOne(Workspace& ws, int i, bool* committed_hook = nullptr) {
  return ws.Write([&](Txn& txn) -> Status {
    nlohmann::json p = {{"i", i}};
    KEEL_RETURN_IF_ERROR(txn.Append({"operator",
                                     "test.entry",
                                     "subj_" + std::to_string(i),
                                     "",
                                     "",
                                     CanonicalJson(p),
                                     {}})
                             .status());
    if (committed_hook != nullptr) txn.OnCommit([committed_hook] { *committed_hook = true; });
    return OkStatus();
  });
}

Status PutOne(Workspace& ws, const std::string& content, std::string* hash = nullptr) {
  return ws.Write([&](Txn& txn) -> Status {
    PutArtifactOptions o;
    o.media_type = "text/plain";
    KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(txn, content, o));
    if (hash != nullptr) *hash = info.hash;
    // A second entry that references the artifact, as flows do.
    return txn.Append({"agent", "test.uses_artifact", info.hash, "", "", "{}", {info.hash}})
        .status();
  });
}

std::string Content(int i) {
  return "artifact content number " + std::to_string(i) + "\n";
}

void ExpectDiskFull(const Status& s) {
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("disk full"), std::string::npos) << s.ToString();
}

void ExpectConsistent(Workspace& ws, int64_t ledger_size) {
  Status s = CheckWorkspace(ws);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto n = CheckLedgerChain(ws);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, ledger_size);
}

// The number of ledger entries each kind of transaction below adds.
constexpr int kEntriesPerAppend = 1;
constexpr int kEntriesPerPut = 2;

// Rule: a full disk gives a clear error, no partial record, and work resumes once space is
// freed. SQLite's writes fail with SQLITE_FULL at write k, for every k up to K (the writes
// of ~12 transactions mixing ledger appends and artifact puts).
TEST(Durability, DiskFullInDatabaseAtEveryWrite) {
  VfsGuard guard;
  constexpr int K = 40;
  int failures_seen = 0;
  for (int k = 1; k <= K; ++k) {
    SCOPED_TRACE("disk full at database write " + std::to_string(k));
    Fixture f;
    auto ws = f.Open(kFaultVfsName);
    ASSERT_NE(ws, nullptr);
    int64_t size = 1;  // workspace.created
    FaultVfsFullAfterWrites(k - 1);
    Status failed;
    int i = 0;
    for (; i < 30; ++i) {
      Status s = i % 2 == 0 ? AppendOne(*ws, i) : PutOne(*ws, Content(k * 100 + i));
      if (!s.ok()) {
        failed = s;
        break;
      }
      size += i % 2 == 0 ? kEntriesPerAppend : kEntriesPerPut;
    }
    ASSERT_FALSE(failed.ok()) << "no write failed";
    ++failures_seen;
    ExpectDiskFull(failed);
    // A full disk is not a failed fsync: the workspace keeps accepting writes.
    EXPECT_TRUE(ws->WriteState().ok());
    // Nothing of the failed transaction is visible; the chain and counts hold.
    ExpectConsistent(*ws, size);
    // Still full: a retry fails the same way and changes nothing.
    ExpectDiskFull(AppendOne(*ws, 1000));
    ExpectConsistent(*ws, size);
    // Space freed: the same work succeeds in this process...
    FaultVfsFreeSpace();
    Status again = i % 2 == 0 ? AppendOne(*ws, i) : PutOne(*ws, Content(k * 100 + i));
    ASSERT_TRUE(again.ok()) << again.ToString();
    size += i % 2 == 0 ? kEntriesPerAppend : kEntriesPerPut;
    ASSERT_TRUE(AppendOne(*ws, 2000).ok());
    size += 1;
    ExpectConsistent(*ws, size);
    // ...and after a reopen (SQLite's default VFS).
    ws.reset();
    ws = f.Open("");
    ASSERT_NE(ws, nullptr);
    ExpectConsistent(*ws, size);
    ASSERT_TRUE(AppendOne(*ws, 3000).ok());
    ExpectConsistent(*ws, size + 1);
  }
  EXPECT_EQ(failures_seen, K);
}

// Rule: as above with the byte budget running out part-way through a write (a partly
// written WAL frame must not survive as a record).
TEST(Durability, DiskFullByBytesInDatabase) {
  VfsGuard guard;
  for (int64_t budget : {100, 1000, 4000, 5000, 9000, 20000, 40000}) {
    SCOPED_TRACE("byte budget " + std::to_string(budget));
    Fixture f;
    auto ws = f.Open(kFaultVfsName);
    ASSERT_NE(ws, nullptr);
    int64_t size = 1;
    FaultVfsFullAfterBytes(budget);
    Status failed;
    for (int i = 0; i < 200 && failed.ok(); ++i) {
      Status s = PutOne(*ws, std::string(static_cast<size_t>(500 + i * 37), 'a' + i % 26));
      if (s.ok()) size += kEntriesPerPut;
      failed = s;
    }
    ExpectDiskFull(failed);
    ExpectConsistent(*ws, size);
    FaultVfsFreeSpace();
    ws.reset();
    ws = f.Open();
    ASSERT_NE(ws, nullptr);
    ExpectConsistent(*ws, size);
  }
}

// Rule: a full disk while writing an artifact's file (ENOSPC from the file-system seam) at
// every write k: Unavailable "disk full", no temp or partial file left behind, nothing in
// the database, and the same put succeeds once space is freed.
TEST(Durability, DiskFullInArtifactFilesAtEveryWrite) {
  VfsGuard guard;
  for (int k = 1; k <= 6; ++k) {
    SCOPED_TRACE("disk full at file write " + std::to_string(k));
    FaultInjectionFileSystem fs;
    fs.SetRealSyncs(false);
    Fixture f(&fs);
    auto ws = f.Open();
    ASSERT_NE(ws, nullptr);
    int64_t size = 1;
    fs.SetDiskFullAfterWrites(k - 1);
    Status failed;
    int i = 0;
    std::string failed_content;
    for (; i < 10; ++i) {
      failed_content = Content(i);
      Status s = PutOne(*ws, failed_content);
      if (!s.ok()) {
        failed = s;
        break;
      }
      size += kEntriesPerPut;
    }
    ASSERT_EQ(i, k - 1);
    ExpectDiskFull(failed);
    EXPECT_TRUE(ws->WriteState().ok());
    ExpectConsistent(*ws, size);
    std::string hash = Sha256Hex(failed_content);
    std::string shard = JoinPath(ws->artifacts_dir(), hash.substr(0, 2));
    EXPECT_FALSE(fs.Exists(JoinPath(shard, hash))) << "a partial artifact file was left";
    EXPECT_FALSE(fs.Exists(JoinPath(shard, hash) + ".tmp")) << "a temp file was left";
    EXPECT_EQ(GetArtifactInfo(*ws, hash).status().code(), StatusCode::kNotFound);

    fs.FreeSpace();
    std::string got;
    ASSERT_TRUE(PutOne(*ws, failed_content, &got).ok());
    EXPECT_EQ(got, hash);
    size += kEntriesPerPut;
    ExpectConsistent(*ws, size);
    ws.reset();
    ws = f.Open();
    ASSERT_NE(ws, nullptr);
    ExpectConsistent(*ws, size);
    EXPECT_EQ(*GetArtifact(*ws, hash), failed_content);
  }
}

// Rule: an fsync failure inside SQLite (xSync -> SQLITE_IOERR_FSYNC) fails the write with
// DataLoss, reports nothing of it as committed, poisons the connection so a retry in the
// same process is refused without touching the disk, and a reopen recovers.
TEST(Durability, DatabaseFsyncFailureStopsWrites) {
  VfsGuard guard;
  for (int k = 1; k <= 4; ++k) {
    SCOPED_TRACE("database fsync " + std::to_string(k) + " fails");
    Fixture f;
    auto ws = f.Open(kFaultVfsName);
    ASSERT_NE(ws, nullptr);
    int64_t size = 1;
    FaultVfsFailSyncAt(k);
    Status failed;
    bool on_commit_ran = false;
    for (int i = 0; i < 10; ++i) {
      on_commit_ran = false;
      Status s = i % 2 == 0 ? AppendOne(*ws, i, &on_commit_ran) : PutOne(*ws, Content(i));
      if (!s.ok()) {
        failed = s;
        break;
      }
      size += i % 2 == 0 ? kEntriesPerAppend : kEntriesPerPut;
    }
    EXPECT_EQ(failed.code(), StatusCode::kDataLoss) << failed.ToString();
    EXPECT_NE(failed.message().find("fsync"), std::string::npos) << failed.ToString();
    EXPECT_FALSE(on_commit_ran) << "a transaction whose fsync failed ran its commit hooks";
    EXPECT_EQ(ws->WriteState().code(), StatusCode::kDataLoss);
    {
      std::lock_guard<std::recursive_mutex> l(ws->mu());
      EXPECT_TRUE(ws->db()->poisoned());
    }
    // The retry is refused before it reaches the disk (no new write, no new sync).
    FaultVfsClear();
    int64_t writes = FaultVfsWrites(), syncs = FaultVfsSyncs();
    Status retry = AppendOne(*ws, 99);
    EXPECT_EQ(retry.code(), StatusCode::kDataLoss) << retry.ToString();
    EXPECT_NE(retry.message().find("stopped"), std::string::npos) << retry.ToString();
    EXPECT_EQ(PutOne(*ws, Content(99)).code(), StatusCode::kDataLoss);
    EXPECT_EQ(FaultVfsWrites(), writes);
    EXPECT_EQ(FaultVfsSyncs(), syncs);
    // Reopen: recovery from the WAL. The transaction whose fsync failed was never
    // acknowledged; it may or may not have reached the disk (an ambiguous outcome), but
    // everything acknowledged is there and the chain holds.
    ws.reset();
    ws = f.Open(kFaultVfsName);
    ASSERT_NE(ws, nullptr);
    auto n = CheckLedgerChain(*ws);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_GE(*n, size);
    EXPECT_LE(*n, size + kEntriesPerPut);
    Status s = CheckWorkspace(*ws);
    EXPECT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(AppendOne(*ws, 100).ok());
    EXPECT_EQ(*CheckLedgerChain(*ws), *n + 1);
  }
}

// Rule: an fsync failure of an artifact's file or folder (EIO from the file-system seam)
// fails the put with DataLoss, stops the workspace's writes (a retry is refused without
// syncing again), and a reopen recovers.
TEST(Durability, ArtifactFsyncFailureStopsWrites) {
  VfsGuard guard;
  // Syncs of a first put in a fresh process: artifacts/ (for the new shard folder), the
  // temp file, the shard folder after the rename.
  for (int k = 1; k <= 3; ++k) {
    SCOPED_TRACE("artifact fsync " + std::to_string(k) + " fails");
    FaultInjectionFileSystem fs;
    fs.SetRealSyncs(false);
    Fixture f(&fs);
    auto ws = f.Open();
    ASSERT_NE(ws, nullptr);
    fs.FailSyncAt(k);
    std::string content = Content(k);
    Status s = PutOne(*ws, content);
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find("fsync"), std::string::npos) << s.ToString();
    EXPECT_EQ(ws->WriteState().code(), StatusCode::kDataLoss);
    // Nothing committed: no row, no entry.
    EXPECT_EQ(GetArtifactInfo(*ws, Sha256Hex(content)).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(*ws->LedgerSize(), 1);
    // Retries of any write are refused, and they do not fsync again (a later fsync that
    // succeeds would prove nothing about the data whose fsync failed).
    fs.ClearFaults();
    int64_t syncs = fs.syncs();
    EXPECT_EQ(PutOne(*ws, content).code(), StatusCode::kDataLoss);
    EXPECT_EQ(AppendOne(*ws, 1).code(), StatusCode::kDataLoss);
    EXPECT_EQ(fs.syncs(), syncs);
    EXPECT_EQ(*ws->LedgerSize(), 1);
    // Reopen: writes work again and the put completes.
    ws.reset();
    ws = f.Open();
    ASSERT_NE(ws, nullptr);
    ASSERT_TRUE(PutOne(*ws, content).ok());
    ExpectConsistent(*ws, 1 + kEntriesPerPut);
    EXPECT_EQ(*GetArtifact(*ws, Sha256Hex(content)), content);
  }
}

// The SQL layer: SQLITE_IOERR_FSYNC poisons the Db through both Exec and Stmt::Step, and a
// poisoned Db refuses BEGIN.
TEST(Durability, FsyncErrorPoisonsDbThroughExecAndStep) {
  VfsGuard guard;
  TempDir tmp;
  for (bool via_stmt : {false, true}) {
    SCOPED_TRACE(via_stmt ? "Stmt::Step" : "Db::Exec");
    sql::OpenOptions o;
    o.create = true;
    o.vfs = kFaultVfsName;
    auto db = sql::Db::Open(tmp.Sub(via_stmt ? "a.db" : "b.db"), o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)
                    ->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                           "CREATE TABLE t(x INTEGER) STRICT")
                    .ok());
    ASSERT_TRUE((*db)->Begin().ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (1)").ok());
    FaultVfsFailSyncAt(1);
    Status s;
    if (via_stmt) {
      auto st = (*db)->Prepare("COMMIT");
      ASSERT_TRUE(st.ok());
      s = (*st)->Run();
    } else {
      s = (*db)->Commit();
    }
    FaultVfsClear();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_TRUE((*db)->poisoned());
    (*db)->Rollback();
    EXPECT_EQ((*db)->Begin().code(), StatusCode::kDataLoss);
  }
}

// A database on the fault VFS with one transaction of 700 rows of 8 KB open: over 1000
// pages in the WAL, so its commit triggers a checkpoint.
std::unique_ptr<sql::Db> OpenWithBigTransaction(const std::string& path, bool background) {
  sql::OpenOptions o;
  o.create = true;
  o.vfs = kFaultVfsName;
  o.background_checkpoint = background;
  auto db = sql::Db::Open(path, o);
  EXPECT_TRUE(db.ok());
  if (!db.ok()) return nullptr;
  EXPECT_TRUE((*db)
                  ->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                         "CREATE TABLE t(x BLOB) STRICT")
                  .ok());
  EXPECT_TRUE((*db)->Begin().ok());
  auto st = (*db)->Prepare("INSERT INTO t VALUES (zeroblob(8000))");
  EXPECT_TRUE(st.ok());
  for (int i = 0; st.ok() && i < 700; ++i) {
    EXPECT_TRUE((*st)->Run().ok());
    (*st)->Reset();
  }
  return std::move(*db);
}

// A checkpoint (run by our WAL hook after a commit) whose fsync fails poisons the Db: the
// commit that triggered it is durable in the WAL and reported as done, later writes stop.
TEST(Durability, CheckpointFsyncFailurePoisons) {
  VfsGuard guard;
  TempDir tmp;
  auto db = OpenWithBigTransaction(tmp.Sub("c.db"), /*background=*/false);
  ASSERT_NE(db, nullptr);
  // Every sync after the commit's own WAL sync fails: the checkpoint's.
  FaultVfsFailSyncAt(2, /*sticky=*/true);
  Status s = db->Commit();
  FaultVfsClear();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(db->poisoned());
  EXPECT_EQ(db->Begin().code(), StatusCode::kDataLoss);
  EXPECT_EQ(*db->QueryInt("SELECT COUNT(*) FROM t"), 700);
}

// The same with the checkpoint on the background thread: its failed fsync poisons the Db
// the writer uses, and the writer's next Begin() refuses.
TEST(Durability, BackgroundCheckpointFsyncFailurePoisons) {
  VfsGuard guard;
  TempDir tmp;
  auto db = OpenWithBigTransaction(tmp.Sub("c.db"), /*background=*/true);
  ASSERT_NE(db, nullptr);
  // The commit's own WAL sync succeeds; every later one (the thread's checkpoint) fails.
  FaultVfsFailSyncAt(2, /*sticky=*/true);
  Status s = db->Commit();
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < 1000 && !db->poisoned(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FaultVfsClear();
  EXPECT_TRUE(db->poisoned());
  EXPECT_EQ(db->Begin().code(), StatusCode::kDataLoss);
  EXPECT_EQ(*db->QueryInt("SELECT COUNT(*) FROM t"), 700);
}

// A writer that keeps committing while the thread checkpoints: nothing is lost, the WAL is
// copied back (the database file grows) and reads see every row.
TEST(Durability, BackgroundCheckpointKeepsUpWithWriter) {
  TempDir tmp;
  sql::OpenOptions o;
  o.create = true;
  o.background_checkpoint = true;
  std::string path = tmp.Sub("b.db");
  {
    auto db = sql::Db::Open(path, o);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                           "CREATE TABLE t(x BLOB) STRICT")
                    .ok());
    auto st = (*db)->Prepare("INSERT INTO t VALUES (zeroblob(3000))");
    ASSERT_TRUE(st.ok());
    for (int txn = 0; txn < 40; ++txn) {
      ASSERT_TRUE((*db)->Begin().ok());
      for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE((*st)->Run().ok());
        (*st)->Reset();
      }
      ASSERT_TRUE((*db)->Commit().ok());
    }
    // 4,000 rows of 3 KB: about 4,000 pages went through the WAL, past the threshold
    // several times; give the thread a moment, then the file must hold copied pages.
    for (int i = 0; i < 500 && std::filesystem::file_size(path) < 4'000'000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(std::filesystem::file_size(path), 4'000'000u);
    EXPECT_FALSE((*db)->poisoned());
  }
  auto db = sql::Db::Open(path, {});
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT COUNT(*) FROM t"), 4000);
}

// The fault file system's own model, checked directly (what the crash tests rely on).
TEST(FaultFs, CrashDropsWhatWasNotDurable) {
  TempDir tmp;
  FaultInjectionFileSystem fs;
  std::string d = tmp.Sub("d");
  ASSERT_TRUE(fs.CreateDirs(d, 0755).ok());
  ASSERT_TRUE(fs.SyncDir(tmp.path()).ok());
  // Durable: written, synced, folder synced.
  ASSERT_TRUE(WriteFileAtomic(&fs, d + "/kept", "kept").ok());
  // An appendable file with a synced prefix and an unsynced tail: truncated.
  {
    auto w = fs.NewAppendableFile(d + "/log", 0644);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("synced|").ok());
    ASSERT_TRUE((*w)->Sync().ok());
    ASSERT_TRUE(fs.SyncDir(d).ok());
    ASSERT_TRUE((*w)->Append("lost").ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  // Synced data but the folder entry not synced: disappears.
  {
    auto w = fs.NewWritableFile(d + "/nodirsync", 0644);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("x").ok());
    ASSERT_TRUE((*w)->Sync().ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  // A rename over "kept" not followed by a folder sync: undone, old content back.
  {
    auto w = fs.NewWritableFile(d + "/kept.new", 0644);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("replacement").ok());
    ASSERT_TRUE((*w)->Sync().ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  ASSERT_TRUE(fs.Rename(d + "/kept.new", d + "/kept").ok());
  // A new folder never synced into its parent: gone with its contents.
  ASSERT_TRUE(fs.CreateDirs(d + "/newdir", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(&fs, d + "/newdir/f", "f").ok());
  EXPECT_EQ(*fs.ReadFile(d + "/kept", 100), "replacement");

  auto log = fs.SimulateCrash();
  EXPECT_FALSE(log.empty());
  EXPECT_EQ(*fs.ReadFile(d + "/kept", 100), "kept");
  EXPECT_FALSE(fs.Exists(d + "/nodirsync"));
  EXPECT_EQ(*fs.ReadFile(d + "/log", 100), "synced|");
  EXPECT_FALSE(fs.Exists(d + "/newdir"));
  // kept.new came back by the undone rename, then vanished as an unsynced new file.
  EXPECT_FALSE(fs.Exists(d + "/kept.new"));
}

TEST(FaultFs, KnobsFailWritesAndSyncs) {
  TempDir tmp;
  FaultInjectionFileSystem fs;
  fs.SetDiskFullAfterWrites(1);
  auto w = fs.NewWritableFile(tmp.Sub("a"), 0644);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->Append("1").ok());
  Status full = (*w)->Append("2");
  ExpectDiskFull(full);
  EXPECT_EQ(fs.NewWritableFile(tmp.Sub("b"), 0644).status().code(), StatusCode::kUnavailable);
  fs.FreeSpace();
  EXPECT_TRUE((*w)->Append("2").ok());
  fs.FailSyncAt(2);
  EXPECT_TRUE((*w)->Sync().ok());
  EXPECT_EQ((*w)->Sync().code(), StatusCode::kDataLoss);
  EXPECT_TRUE((*w)->Sync().ok());  // not sticky
  fs.FailSyncAt(1, /*sticky=*/true);
  EXPECT_EQ(fs.SyncDir(tmp.path()).code(), StatusCode::kDataLoss);
  EXPECT_EQ((*w)->Sync().code(), StatusCode::kDataLoss);
  fs.ClearFaults();
  EXPECT_TRUE((*w)->Sync().ok());
  // A crash kills open handles.
  fs.SimulateCrash();
  EXPECT_EQ((*w)->Append("3").code(), StatusCode::kUnavailable);
}

// A planned workload: transactions each putting one or two artifacts (some content
// repeats, so existing rows and orphans are exercised) and an entry referencing them.
using Plan = std::vector<std::vector<std::string>>;

Plan MakePlan(std::mt19937_64& rng, int txns, int salt) {
  Plan plan;
  for (int t = 0; t < txns; ++t) {
    std::vector<std::string> contents;
    int puts = 1 + static_cast<int>(rng() % 2);
    for (int p = 0; p < puts; ++p) {
      int id = static_cast<int>(rng() % 12);  // repeats on purpose
      contents.push_back(Content(salt * 1000 + id) +
                         std::string(static_cast<size_t>(rng() % 3000), 'z'));
    }
    plan.push_back(std::move(contents));
  }
  return plan;
}

struct CrashRun {
  int64_t acknowledged = 0;  // ledger size after the last Write that returned ok
  bool crashed = false;
  size_t next = 0;  // the first planned transaction not acknowledged
};

// Runs plan[from, from + max) until the file system crashes.
CrashRun RunPlan(Workspace& ws, FaultInjectionFileSystem& fs, const Plan& plan, size_t from,
                 size_t max = SIZE_MAX) {
  CrashRun run;
  run.acknowledged = *ws.LedgerSize();
  run.next = from;
  for (size_t t = from; t < plan.size() && t - from < max; ++t) {
    Status s = ws.Write([&](Txn& txn) -> Status {
      std::vector<std::string> refs;
      for (const std::string& content : plan[t]) {
        KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(txn, content, PutArtifactOptions{}));
        refs.push_back(info.hash);
      }
      return txn.Append({"agent", "test.uses", "", "", "", "{}", refs}).status();
    });
    if (fs.crashed()) {
      EXPECT_FALSE(s.ok());
      run.crashed = true;
      return run;
    }
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return run;
    run.acknowledged = *ws.LedgerSize();
    run.next = t + 1;
  }
  return run;
}

// Reopens after a crash and checks every committed reference; returns the ledger size.
int64_t CheckAfterCrash(Fixture& f, int64_t acknowledged, const std::string& what) {
  auto ws = f.Open();
  EXPECT_NE(ws, nullptr) << what;
  if (ws == nullptr) return 0;
  Status s = CheckWorkspace(*ws);
  EXPECT_TRUE(s.ok()) << what << ": " << s.ToString();
  auto n = CheckLedgerChain(*ws);
  EXPECT_TRUE(n.ok());
  if (!n.ok()) return 0;
  EXPECT_GE(*n, acknowledged) << what << ": an acknowledged entry is missing";
  return *n;
}

// leveldb-style (db/fault_injection_test.cc): crash at every file-system operation of the
// workload, either as a process crash (files stay, nothing more becomes durable) or as a
// power loss (what was not durable is dropped there). Then a new process retries the
// unacknowledged transaction and the power goes right after it commits (so no later sync
// can mask a missing one), then the rest of the plan runs and the power goes again. After
// each power loss: every artifact referenced by a committed entry is present and intact,
// every acknowledged write is present.
TEST(Durability, CrashAtEveryFileOperationKeepsReferencedArtifacts) {
  VfsGuard guard;
  int crash_points = 0;
  for (bool power_loss : {true, false}) {
    for (int64_t n = 0;; ++n) {
      std::string what = std::string(power_loss ? "power loss" : "process crash") +
                         " at file operation " + std::to_string(n);
      SCOPED_TRACE(what);
      FaultInjectionFileSystem fs;
      fs.SetRealSyncs(false);
      Fixture f(&fs);
      std::mt19937_64 rng(static_cast<uint64_t>(n) * 31 + 5);
      Plan plan = MakePlan(rng, 5, 1);
      CrashRun run;
      {
        auto ws = f.Open();
        ASSERT_NE(ws, nullptr);
        fs.CrashAfterOps(n, power_loss);
        run = RunPlan(*ws, fs, plan, 0);
      }
      if (!run.crashed) break;  // n is past the workload's last operation
      ++crash_points;
      fs.ResetAfterCrash();
      int64_t acked = CheckAfterCrash(f, run.acknowledged, what);
      // The retry of the crashed transaction, then a power loss.
      {
        auto ws = f.Open();
        ASSERT_NE(ws, nullptr);
        CrashRun retry = RunPlan(*ws, fs, plan, run.next, 1);
        ASSERT_FALSE(retry.crashed);
        acked = retry.acknowledged;
        run.next = retry.next;
      }
      fs.SimulateCrash();
      CheckAfterCrash(f, acked, what + ", retry, power loss");
      // The rest of the plan, then a power loss.
      {
        auto ws = f.Open();
        ASSERT_NE(ws, nullptr);
        CrashRun rest = RunPlan(*ws, fs, plan, run.next);
        ASSERT_FALSE(rest.crashed);
        acked = rest.acknowledged;
      }
      fs.SimulateCrash();
      CheckAfterCrash(f, acked, what + ", the rest, power loss");
    }
  }
  // The workload has dozens of file operations; every one was a crash point.
  EXPECT_GT(crash_points, 40);
}

// Random variant: random plans, power losses at random moments inside and between
// transactions, several seeds (leveldb runs 3 iterations of random sizes).
TEST(Durability, RandomPowerLossKeepsReferencedArtifacts) {
  VfsGuard guard;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FaultInjectionFileSystem fs;
    fs.SetRealSyncs(false);
    Fixture f(&fs, /*fresh=*/true);  // Init itself runs through the fault file system
    std::mt19937_64 rng(seed);
    int64_t acknowledged = 1;
    for (int round = 0; round < 8; ++round) {
      Plan plan = MakePlan(rng, 1 + static_cast<int>(rng() % 5), round);
      CrashRun run;
      {
        auto ws = f.Open();
        ASSERT_NE(ws, nullptr);
        fs.CrashAfterOps(static_cast<int64_t>(rng() % 40), true);
        run = RunPlan(*ws, fs, plan, 0);
      }
      acknowledged = std::max(acknowledged, run.acknowledged);
      if (!run.crashed) fs.SimulateCrash();
      fs.ResetAfterCrash();
      CheckAfterCrash(f, acknowledged, "round " + std::to_string(round));
    }
  }
}

}  // namespace
}  // namespace keel::store
