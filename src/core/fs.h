// FileSystem: the seam through which keel touches files outside SQLite (artifacts, keys,
// checkpoints, snapshots, zone files, lock files). Tests substitute a fault-injecting
// implementation (core/testing_fault_fs.h) that tracks what was synced and can "crash", dropping
// unsynced bytes and files whose directory entry was never synced, as leveldb's fault-injection
// Env.
//
// Errors: every method converts errno with context (the path); ENOSPC becomes Unavailable,
// an fsync failure DataLoss (the caller must stop writing: after a failed fsync the kernel
// may have dropped the dirty pages, so a later successful fsync proves nothing).
//
// Thread-safety: implementations are safe to call from any thread; a WritableFile,
// SequentialFile or FileLock is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace keel {

// The modes of what keel creates in a workspace: owner only. A workspace holds a business's
// personal data (contacts, emails, invoices, secrets), so nothing in it is readable by other
// users whatever the process umask (docs/architecture.md, "Permissions"). Artifacts are
// immutable and get kPrivateReadOnlyMode.
inline constexpr int kPrivateDirMode = 0700;
inline constexpr int kPrivateFileMode = 0600;
inline constexpr int kPrivateReadOnlyMode = 0400;

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Flushes data and metadata needed to read it back after a power loss (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

// Reads a file front to back in pieces, for files too large to hold whole (a database or
// an artifact being copied and hashed).
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `buf`; returns how many, 0 only at the end of the file.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

enum class LockMode { kShared, kExclusive };

// An open lock file: an advisory flock(2) lock. Locks belong to the handle, not the process:
// two handles on one file conflict even within one process, as two processes would. A lock
// is released by Unlock, by destroying the handle, or by the process dying (so a lock left
// by a killed process never needs cleaning up). One handle holds at most one lock; taking the
// other mode converts it (not atomically: flock may drop the old lock first).
class FileLock {
 public:
  // Releases the lock, if held, and closes the file.
  virtual ~FileLock() = default;
  // Takes `mode` without waiting. False when another handle holds a conflicting lock:
  // "held elsewhere" is an answer, not an error. Errors are real failures only.
  virtual Result<bool> TryLock(LockMode mode) = 0;
  // Takes `mode`, waiting as long as another handle holds a conflicting lock.
  virtual Status Lock(LockMode mode) = 0;
  virtual Status Unlock() = 0;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates or truncates `path`. Its permission bits are exactly `mode` afterwards, whatever
  // the umask and whatever bits a file already there had.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                int mode = kPrivateFileMode) = 0;
  // Opens `path` for appending (creating it if missing); its bits become exactly `mode`, as
  // above (an older keel may have left the file with wider ones).
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                                  int mode = kPrivateFileMode) = 0;
  // Reads a whole file; refuses files larger than `max_bytes` with InvalidArgument.
  virtual Result<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes = UINT64_MAX) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)). Durable only after SyncDir(parent).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  // Creates `dir` and its missing parents, each with exactly `mode` whatever the umask.
  // Folders that already exist keep their bits: a folder the operator made (the one given
  // to `keel init`) is theirs to set, and a parent outside the workspace is none of keel's.
  virtual Status CreateDirs(const std::string& dir, int mode = kPrivateDirMode) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status RemoveTree(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // The permission bits of `path` (st_mode & 07777).
  virtual Result<int> Mode(const std::string& path) = 0;
  // Opens `path` for reading in pieces. NotFound when it is missing.
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  // Makes a file written outside this seam (a database SQLite wrote) durable: fsync(2) of
  // its data. DataLoss when the fsync fails, as for WritableFile::Sync.
  virtual Status SyncFile(const std::string& path) = 0;
  // Opens `path` as a lock file, holding no lock yet. With `create` the file is made if
  // missing and its bits become exactly `mode` (as NewWritableFile); without, a missing file
  // is NotFound and the file is opened read-only (a read-only workspace can still test a
  // lock). The file's content is never read or written here.
  virtual Result<std::unique_ptr<FileLock>> OpenLockFile(const std::string& path,
                                                         bool create = true,
                                                         int mode = kPrivateFileMode) = 0;
};

// The real POSIX file system. A process-wide instance is returned by DefaultFileSystem().
FileSystem* DefaultFileSystem();

// Writes `data` to `path` atomically and durably: a temp file beside it, fsync, rename,
// fsync of the folder. Readers see the old content or the new, never a mix. The folder's
// own entry must already be durable in its parent (the caller syncs a folder it created).
// A stale temp file from a crashed writer is removed first. The temp file, and so the
// result, has exactly the bits `mode`. DataLoss when an fsync fails.
Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                       int mode = kPrivateFileMode);

enum class LockWait { kWait, kNoWait };

// The one way keel takes a file lock for a span of work (snapshots/.lock, .worker.lock):
// opens `path` (created with `mode` if missing) and takes `lock` on it, held until the
// returned handle is destroyed. With kNoWait, a lock another handle holds gives a null
// handle, not an error; errors are real failures (opening the file, flock failing).
Result<std::unique_ptr<FileLock>> LockFile(FileSystem* fs, const std::string& path, LockMode lock,
                                           LockWait wait, int mode = kPrivateFileMode);

// Sets the bits of the open file `fd` (named `path` in errors) to exactly `mode` unless they
// already are: open(2) applies the umask to a new file's mode and keeps an existing file's.
// For files opened outside FileSystem (SQLite's database and its writers' lock file).
Status EnsureFileMode(int fd, int mode, const std::string& path);

// Joins path parts with '/'.
std::string JoinPath(std::string_view a, std::string_view b);
// The folder part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);
// Absolute, lexically normalised form of `path` (no symlink resolution).
std::string AbsolutePath(const std::string& path);

}  // namespace keel
