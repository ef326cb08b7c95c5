// The WAL-buffering VFS (store/wal_vfs.h): a WAL grows in zero-filled 1 MiB steps, and
// neither the zeros nor a connection's stale idea of the file's size ever cost a frame.
#include "store/wal_vfs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/testing_util.h"
#include "store/sql.h"

namespace keel::store::sql {
namespace {

using keel::testing::TempDir;
namespace fs = std::filesystem;

constexpr uintmax_t kStep = 1 << 20;

std::unique_ptr<Db> OpenWal(const std::string& path) {
  OpenOptions o;
  o.create = true;
  auto db = Db::Open(path, o);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return nullptr;
  EXPECT_TRUE((*db)->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL").ok());
  return std::move(*db);
}

// `rows` rows of `bytes` each, in one transaction.
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
  auto ok = db->QueryInt("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'");
  return ok.ok() && *ok == 1;
}

// The first commit already finds a whole step of written blocks, and a WAL that outgrows
// it grows by whole steps: its size is always a multiple of the step while it is in use.
TEST(WalVfs, WalGrowsInZeroFilledSteps) {
  TempDir tmp;
  std::string path = tmp.Sub("g.db");
  auto db = OpenWal(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t(x BLOB) STRICT").ok());
  EXPECT_EQ(fs::file_size(path + "-wal"), kStep);
  // Past the first step in one transaction (the WAL holds all of it until the commit).
  Insert(db.get(), 600, 3000);
  uintmax_t size = fs::file_size(path + "-wal");
  EXPECT_GT(size, kStep);
  EXPECT_EQ(size % kStep, 0u);
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

}  // namespace
}  // namespace keel::store::sql
