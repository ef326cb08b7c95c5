// FaultInjectionFileSystem (tests only): wraps a real FileSystem, remembers what has been
// made durable, and can "crash" (lose power) or fail writes and syncs on demand. Modelled
// on leveldb's fault-injection Env.
//
// What is modelled (the rules a power loss follows on a POSIX file system that keeps
// only what fsync made durable):
//  - File data: each file's size at its last successful Sync. A crash truncates the file
//    to that size. A file opened with NewWritableFile starts with a durable size of 0 (the
//    truncation itself is not undone: keel never truncates a file it needs after a crash).
//  - Directory entries: files and folders created, renamed or removed since the last SyncDir
//    of the folder holding the entry. A crash undoes those operations newest first: a
//    created file or folder disappears (with its contents), a rename is moved back (and
//    the file it replaced, whose content is kept in memory, comes back), a removed file
//    comes back with its durable content. A rename across folders is durable only when
//    both folders were synced after it.
//  - Files written outside the seam (SQLite's) are durable once SyncFile succeeds; their
//    directory entries are not tracked.
//  - Locks: flock locks held by the real file system. A crash ("the process died") releases
//    every lock taken through this object, and their handles fail every call after it. A
//    lock file's own directory entry is not tracked (its content never matters).
//  - Not modelled: torn or reordered writes inside a file's unsynced tail (the tail is
//    dropped whole), partial metadata (modes), hard links, SQLite's files (they do not go
//    through this seam; see store/sqlite/testing_fault_vfs.h).
//
// Knobs:
//  - SetDiskFullAfterWrites(n): the first n Appends succeed, every later Append, new file
//    and new folder fails with ENOSPC (-> Unavailable "disk full") until FreeSpace().
//  - FailSyncAt(n): the n-th Sync, SyncFile or SyncDir from now fails with EIO (-> DataLoss); with
//    `sticky`, every later one fails too (a disk that went bad).
//  - CrashAfterOps(n): after n more mutating operations, the file system crashes on its
//    own (SimulateCrash) and every later mutating call fails with
//    Unavailable("simulated crash") until ResetAfterCrash(): the process "died" at that
//    point. Reads keep working (they see the post-crash state).
//
// The base must be a view of real POSIX paths (a crash truncates with truncate(2)). Files
// and lock handles it returns must not outlive it.
//
// Thread-safety: all methods are safe from any thread (one mutex). WritableFiles opened
// before a crash fail every call after it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/fs.h"

namespace keel::testing {

class FaultLock;

class FaultInjectionFileSystem final : public FileSystem {
 public:
  // `base` must outlive this object.
  explicit FaultInjectionFileSystem(FileSystem* base = DefaultFileSystem());
  ~FaultInjectionFileSystem() override;

  // --- FileSystem ---
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, int mode) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          int mode) override;
  Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override;
  bool Exists(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir, int mode) override;
  Status RemoveFile(const std::string& path) override;
  Status RemoveTree(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<int> Mode(const std::string& path) override;
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override;
  Status SyncFile(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> OpenLockFile(const std::string& path, bool create,
                                                 int mode) override;

  // --- crash model ---
  // Drops everything not yet durable (see the header comment). Returns what it did, one
  // line per action, for test diagnostics.
  std::vector<std::string> SimulateCrash();
  // Forgets the durability bookkeeping: everything on disk now counts as durable.
  void MarkAllDurable();
  // Crashes by itself after `n` more mutating calls (Append, Sync, Rename, SyncDir, create,
  // remove); n = 0 crashes on the next one, before it takes effect. -1 disarms.
  // `power_loss`: the crash also drops what is not durable (SimulateCrash); otherwise only
  // the process dies: files stay as they are and what was not durable stays not durable
  // (a later SimulateCrash still drops it), as after a real SIGKILL.
  void CrashAfterOps(int64_t n, bool power_loss = true);
  bool crashed() const;
  // After a crash: accept calls again (a new "process"). Open WritableFiles stay dead.
  void ResetAfterCrash();

  // Whether Sync and SyncDir also reach the real disk (default true). The crash model
  // decides what is durable either way; tests that only use the model turn real syncs off
  // to run at memory speed.
  void SetRealSyncs(bool on);

  // --- fault knobs ---
  void SetDiskFullAfterWrites(int64_t n);
  void FreeSpace();
  void FailSyncAt(int64_t n, bool sticky = false);
  void ClearFaults();

  // --- counters (since construction) ---
  int64_t appends() const;
  int64_t syncs() const;  // file Syncs, SyncFiles and SyncDirs
  int64_t mutating_ops() const;

 private:
  friend class FaultFile;
  friend class FaultLock;
  struct FileState {
    uint64_t size = 0;         // bytes appended so far (as we know them)
    uint64_t synced_size = 0;  // size at the last successful Sync
  };
  enum class OpKind { kCreateFile, kCreateDir, kRename, kRemove };
  struct DirOp {
    OpKind kind;
    std::string path;         // created/removed path, or rename target
    std::string from;         // rename source
    bool has_backup = false;  // rename replaced / remove removed a file: its content
    std::string backup;
    int backup_mode = 0644;
    bool dir_synced = false;       // folder of `path` synced since
    bool from_dir_synced = false;  // folder of `from` synced since (renames)
  };

  // All with mu_ held.
  Status CheckAlive() const;
  // Counts a mutating op; crashes first when the armed count is reached.
  Status CountOp();
  Status MaybeSyncFault(const std::string& what);
  bool DiskFull() const { return full_after_ >= 0 && appends_ >= full_after_; }
  std::string DurableContent(const std::string& path);
  std::vector<std::string> CrashLocked();
  // The process "died": bumps the generation and releases every lock taken through this.
  void KillProcessLocked();

  Status FileAppend(uint64_t gen, const std::string& path, std::string_view data,
                    WritableFile* real);
  Status FileSync(uint64_t gen, const std::string& path, WritableFile* real);

  FileSystem* base_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::vector<DirOp> ops_;
  std::set<FaultLock*> locks_;  // open lock handles of the current generation
  uint64_t generation_ = 0;     // bumped by a crash; older WritableFiles are dead
  bool crashed_ = false;
  int64_t crash_after_ = -1;
  bool crash_power_loss_ = true;
  bool real_syncs_ = true;
  int64_t full_after_ = -1;
  int64_t fail_sync_at_ = -1;
  bool fail_sync_sticky_ = false;
  int64_t appends_ = 0;
  int64_t syncs_ = 0;
  int64_t ops_count_ = 0;
  int64_t sync_counter_ = 0;  // syncs since FailSyncAt
};

}  // namespace keel::testing
