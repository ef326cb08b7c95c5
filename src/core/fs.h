// FileSystem: the seam through which keel touches files outside SQLite (artifacts, keys,
// checkpoints, snapshots). Tests substitute a fault-injecting implementation
// (core/testing_fault_fs.h) that tracks what was synced and can "crash", dropping unsynced
// bytes and files whose directory entry was never synced, as leveldb's fault-injection Env.
//
// Errors: every method converts errno with context (the path); ENOSPC becomes Unavailable,
// an fsync failure DataLoss (the caller must stop writing: after a failed fsync the kernel
// may have dropped the dirty pages, so a later successful fsync proves nothing).
//
// Thread-safety: implementations are safe to call from any thread; a WritableFile is used by
// one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace keel {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Flushes data and metadata needed to read it back after a power loss (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates or truncates `path` with the given permission bits.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                int mode = 0644) = 0;
  // Opens `path` for appending (creating it if missing).
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                                  int mode = 0644) = 0;
  // Reads a whole file; refuses files larger than `max_bytes` with InvalidArgument.
  virtual Result<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes = UINT64_MAX) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)). Durable only after SyncDir(parent).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status CreateDirs(const std::string& dir, int mode = 0755) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status RemoveTree(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // The permission bits of `path` (st_mode & 07777).
  virtual Result<int> Mode(const std::string& path) = 0;
};

// The real POSIX file system. A process-wide instance is returned by DefaultFileSystem().
FileSystem* DefaultFileSystem();

// Writes `data` to `path` atomically and durably: a temp file beside it, fsync, rename,
// fsync of the folder. Readers see the old content or the new, never a mix. The folder's
// own entry must already be durable in its parent (the caller syncs a folder it created).
// A stale temp file from a crashed writer is removed first. DataLoss when an fsync fails.
Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                       int mode = 0644);

// Joins path parts with '/'.
std::string JoinPath(std::string_view a, std::string_view b);
// The folder part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);
// Absolute, lexically normalised form of `path` (no symlink resolution).
std::string AbsolutePath(const std::string& path);

}  // namespace keel
