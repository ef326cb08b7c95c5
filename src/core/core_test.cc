#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/random.h"
#include "core/status.h"
#include "core/testing_fault_fs.h"
#include "core/testing_util.h"

namespace keel {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  KEEL_ASSIGN_OR_RETURN(*out, Half(x));
  return OkStatus();
}

TEST(Status, ResultAndMacros) {
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "invalid_argument: odd");
  EXPECT_EQ(s.WithContext("halving").message(), "halving: odd");
  Result<int> bad = Status();  // an OK status cannot carry no value
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(ErrnoStatus(ENOSPC, "w").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus(ENOENT, "w").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EACCES, "w").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EIO, "w").code(), StatusCode::kDataLoss);
  EXPECT_EQ(ErrnoStatus(EISDIR, "w").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatus(EISDIR, "reading /etc").message(), "reading /etc: Is a directory");
  EXPECT_EQ(ErrnoStatus(EOVERFLOW, "w").code(), StatusCode::kInternal);
}

TEST(Clock, FormatAndParse) {
  int64_t t = 0;
  ASSERT_TRUE(ParseTimeMicros("2026-01-01T00:00:00Z", &t));
  EXPECT_EQ(t, 1767225600000000);
  EXPECT_EQ(FormatTimeMicros(t), "2026-01-01T00:00:00.000000Z");
  ASSERT_TRUE(ParseTimeMicros("2026-01-01T02:00:00.5+02:00", &t));
  EXPECT_EQ(t, 1767225600500000);
  ASSERT_TRUE(ParseTimeMicros("2026-03-01", &t));
  EXPECT_EQ(FormatTimeMicros(t), "2026-03-01T00:00:00.000000Z");
  for (const char* bad : {"", "2026", "2026-13-01", "2026-01-01T25:00:00Z", "2026-01-01T00:00:00",
                          "yesterday", "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00."}) {
    EXPECT_FALSE(ParseTimeMicros(bad, &t)) << bad;
  }
}

TEST(Clock, SimulatedMovesOnlyWhenTold) {
  SimulatedClock c;
  int64_t w = c.NowMicros(), m = c.MonotonicMicros();
  c.Advance(1000);
  EXPECT_EQ(c.NowMicros(), w + 1000);
  EXPECT_EQ(c.MonotonicMicros(), m + 1000);
  c.JumpWall(-3600000000LL);
  EXPECT_EQ(c.NowMicros(), w + 1000 - 3600000000LL);
  EXPECT_EQ(c.MonotonicMicros(), m + 1000);  // monotonic time never goes back
}

TEST(Random, SeededIsDeterministicAndIdsAreUnique) {
  SeededRandom a(7), b(7);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.Next64(), b.Next64());
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewId("lead", 1767225600000000, SystemRandom());
    EXPECT_EQ(id.size(), 5u + 26u);
    EXPECT_EQ(id.rfind("lead_", 0), 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.Uniform(10), 10u);
}

TEST(Hash, Sha256AndHex) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest d;
  EXPECT_TRUE(ParseDigestHex(Sha256Hex("abc"), &d));
  EXPECT_FALSE(IsDigestHex("../etc/passwd"));
  EXPECT_FALSE(IsDigestHex(std::string(64, 'A')));  // addresses are lowercase only
  // GitHub's documented webhook signature vector.
  EXPECT_EQ(Sha256Hex("x").size(), 64u);
  std::string mac = HmacSha256("It's a Secret to Everybody", "Hello, World!");
  EXPECT_EQ(ToHex(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
}

TEST(Json, CanonicalAndErrors) {
  auto j = ParseJson(R"({"b":1,"a":[true,null]})", "input");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(CanonicalJson(*j), R"({"a":[true,null],"b":1})");
  auto bad = ParseJson("{nope", "--input");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--input is not valid JSON"), std::string::npos);
  EXPECT_FALSE(ParseJsonObject("[1]", "x").ok());
}

// What FileSystem creates has exactly the bits asked for, whatever the umask: 000 would
// leave world-writable folders, 0277 would strip the owner's write bit.
TEST(FileSystem, ModesAreExactWhateverTheUmask) {
  FileSystem* fs = DefaultFileSystem();
  for (unsigned mask : {000u, 022u, 077u, 0277u}) {
    SCOPED_TRACE("umask " + std::to_string(mask));
    keel::testing::TempDir tmp;
    keel::testing::ScopedUmask umask(mask);
    ASSERT_TRUE(fs->CreateDirs(tmp.Sub("a/b/c")).ok());
    for (const char* d : {"a", "a/b", "a/b/c"}) EXPECT_EQ(*fs->Mode(tmp.Sub(d)), 0700) << d;
    ASSERT_TRUE(WriteFileAtomic(fs, tmp.Sub("a/f"), "x").ok());
    EXPECT_EQ(*fs->Mode(tmp.Sub("a/f")), 0600);
    ASSERT_TRUE(WriteFileAtomic(fs, tmp.Sub("a/ro"), "x", kPrivateReadOnlyMode).ok());
    EXPECT_EQ(*fs->Mode(tmp.Sub("a/ro")), 0400);
    auto w = fs->NewWritableFile(tmp.Sub("a/w"));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*fs->Mode(tmp.Sub("a/w")), 0600);
    auto l = fs->NewAppendableFile(tmp.Sub("a/log"));
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(*fs->Mode(tmp.Sub("a/log")), 0600);
  }
}

// A file left with wider bits (by an older keel) is tightened when keel writes it again; a
// folder that already exists is the operator's and keeps its bits.
TEST(FileSystem, RewrittenFilesAreTightenedExistingFoldersKept) {
  FileSystem* fs = DefaultFileSystem();
  keel::testing::TempDir tmp;
  keel::testing::WriteFile(tmp.Sub("log"), "old\n");
  ASSERT_EQ(::chmod(tmp.Sub("log").c_str(), 0644), 0);
  auto l = fs->NewAppendableFile(tmp.Sub("log"));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*fs->Mode(tmp.Sub("log")), 0600);
  keel::testing::WriteFile(tmp.Sub("w"), "old");
  ASSERT_EQ(::chmod(tmp.Sub("w").c_str(), 0666), 0);
  ASSERT_TRUE(fs->NewWritableFile(tmp.Sub("w")).ok());
  EXPECT_EQ(*fs->Mode(tmp.Sub("w")), 0600);

  ASSERT_EQ(::mkdir(tmp.Sub("mine").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(tmp.Sub("mine").c_str(), 0750), 0);
  ASSERT_TRUE(fs->CreateDirs(tmp.Sub("mine/sub")).ok());
  EXPECT_EQ(*fs->Mode(tmp.Sub("mine")), 0750);
  EXPECT_EQ(*fs->Mode(tmp.Sub("mine/sub")), 0700);
  ASSERT_TRUE(fs->CreateDirs(tmp.Sub("mine"), 0700).ok());
  EXPECT_EQ(*fs->Mode(tmp.Sub("mine")), 0750);
  // A file where a folder is asked for is refused.
  EXPECT_FALSE(fs->CreateDirs(tmp.Sub("w/sub")).ok());
  EXPECT_FALSE(fs->CreateDirs(tmp.Sub("w")).ok());
}

// Locks belong to handles: a second handle in the same process conflicts as another process
// would; "held elsewhere" is a null handle, a real failure an error.
TEST(FileSystem, LocksConflictBetweenHandles) {
  FileSystem* fs = DefaultFileSystem();
  keel::testing::TempDir tmp;
  const std::string path = tmp.Sub("x.lock");
  auto a = LockFile(fs, path, LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_NE(*a, nullptr);
  EXPECT_EQ(*fs->Mode(path), 0600);
  auto b = LockFile(fs, path, LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, nullptr);
  auto probe = fs->OpenLockFile(path, /*create=*/false);
  ASSERT_TRUE(probe.ok());
  EXPECT_FALSE(*(*probe)->TryLock(LockMode::kShared));
  ASSERT_TRUE((*a)->Unlock().ok());
  EXPECT_TRUE(*(*probe)->TryLock(LockMode::kShared));
  // Shared locks coexist; an exclusive one waits for them all.
  EXPECT_TRUE(*(*a)->TryLock(LockMode::kShared));
  auto c = LockFile(fs, path, LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, nullptr);
  a->reset();
  probe->reset();
  c = LockFile(fs, path, LockMode::kExclusive, LockWait::kWait);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*c, nullptr);

  // Real failures are errors, never mistaken for a held lock.
  auto missing = fs->OpenLockFile(tmp.Sub("none.lock"), /*create=*/false);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs->Exists(tmp.Sub("none.lock")));
  auto nodir = LockFile(fs, tmp.Sub("no/such/dir.lock"), LockMode::kExclusive, LockWait::kNoWait);
  EXPECT_EQ(nodir.status().code(), StatusCode::kNotFound) << nodir.status().ToString();
}

TEST(FileSystem, SequentialFileReadsInPieces) {
  FileSystem* fs = DefaultFileSystem();
  keel::testing::TempDir tmp;
  std::string data;
  for (int i = 0; i < 30000; ++i) data += std::to_string(i);
  ASSERT_TRUE(WriteFileAtomic(fs, tmp.Sub("f"), data).ok());
  auto f = fs->NewSequentialFile(tmp.Sub("f"));
  ASSERT_TRUE(f.ok());
  std::string got;
  char buf[4096];
  for (;;) {
    auto n = (*f)->Read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(fs->NewSequentialFile(tmp.Sub("none")).status().code(), StatusCode::kNotFound);
}

// A crash is the death of the process: its locks go with it and its handles stay dead.
TEST(FaultInjectionFileSystem, CrashReleasesLocks) {
  keel::testing::TempDir tmp;
  keel::testing::FaultInjectionFileSystem ffs;
  const std::string path = tmp.Sub("x.lock");
  auto held = LockFile(&ffs, path, LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(held.ok() && *held != nullptr);
  auto other = LockFile(DefaultFileSystem(), path, LockMode::kShared, LockWait::kNoWait);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, nullptr);
  ffs.SimulateCrash();
  other = LockFile(DefaultFileSystem(), path, LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, nullptr);
  EXPECT_EQ((*held)->TryLock(LockMode::kExclusive).status().code(), StatusCode::kUnavailable);
}

// SyncFile (a file SQLite wrote) is a sync like any other: FailSyncAt reaches it.
TEST(FaultInjectionFileSystem, SyncFileFailureIsDataLoss) {
  keel::testing::TempDir tmp;
  keel::testing::FaultInjectionFileSystem ffs;
  keel::testing::WriteFile(tmp.Sub("db"), "pages");
  ASSERT_TRUE(ffs.SyncFile(tmp.Sub("db")).ok());
  ffs.FailSyncAt(1);
  Status s = ffs.SyncFile(tmp.Sub("db"));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(tmp.Sub("db")), std::string::npos) << s.message();
  EXPECT_EQ(ffs.SyncFile(tmp.Sub("none")).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace keel
