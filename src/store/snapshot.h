// Snapshots: a complete, self-checking copy of a workspace that `keel restore` turns back
// into a workspace (docs/snapshots.md).
//
// A snapshot is a folder snapshots/<UTC time like 20261124T221500Z>[-n]/ holding keel.yaml,
// keys/ (rights kept), checkpoints.log (if any), keel.db (made with SQLite's online backup
// API, so it is one consistent state even while other threads and processes write), the
// artifacts that the backed-up database lists (each re-hashed while copied), and
// manifest.json (format version, workspace id, schema version, ledger size and last hash,
// SHA-256 and size of every file and artifact).
//
// Order matters: checkpoints.log is copied before the database backup, so every checkpoint
// it holds covers entries the backed-up database contains. Everything is written into
// snapshots/.tmp-<name>/, synced, and published with one rename: a folder without the
// `.tmp-` prefix is always complete. Leftover temp folders (a crash, crash point
// `snapshot.mid`) are removed by the next snapshot. One snapshot runs at a time per
// workspace (a lock file, snapshots/.lock).
//
// Thread-safety: CreateSnapshot may run while other threads write through the same or
// another Workspace; it uses its own database connection for the backup.
// Errors: FailedPrecondition (read-only workspace; restore into a non-empty folder; a
// snapshot name that is not published), NotFound (no such snapshot), Unavailable (another
// snapshot running, disk full), DataLoss (an artifact or file does not match its hash, the
// backed-up chain does not verify, a snapshot file does not match its manifest),
// InvalidArgument (a manifest that is not keel's or names a path outside the snapshot).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

inline constexpr int kSnapshotFormatVersion = 1;

struct SnapshotOptions {
  int keep = 0;  // snapshots to keep after this one is published; 0: keel.yaml snapshots.keep
  std::string actor = "operator";
};

struct SnapshotResult {
  std::string name;  // "20261124T221500Z" or "20261124T221500Z-1"
  std::string path;
  int64_t ledger_size = 0;
  std::string last_hash;  // hex of the last ledger entry in the snapshot
  size_t artifacts = 0;
  uint64_t bytes = 0;  // total size of the files in the snapshot
  std::vector<std::string> pruned;
};

// Writes a snapshot of `ws`, prunes older ones to `keep`, and appends `snapshot.created`
// to `ws`'s ledger (that entry itself is not in the snapshot).
Result<SnapshotResult> CreateSnapshot(Workspace& ws, const SnapshotOptions& opts);

// The published snapshot names in `snapshots_dir`, oldest first.
Result<std::vector<std::string>> ListSnapshots(FileSystem* fs, const std::string& snapshots_dir);

// Finds a snapshot folder: `arg` is a path to a folder holding manifest.json, or the name of
// a published snapshot in `snapshots_dir` (may be empty when no workspace is known).
Result<std::string> ResolveSnapshot(FileSystem* fs, const std::string& arg,
                                    const std::string& snapshots_dir);

struct RestoreResult {
  std::string dir;
  std::string workspace_id;
  int64_t ledger_size = 0;  // entries restored from the snapshot
  size_t artifacts = 0;
};

// Recreates the workspace held in `snapshot_dir` at `dest_dir` (missing or empty), checking
// every file against the manifest and the ledger chain of the restored database, then
// appends `workspace.restored` to the restored ledger. keel.yaml is written last, so an
// interrupted restore never looks like a workspace; on failure what was written is removed.
Result<RestoreResult> RestoreSnapshot(const std::string& snapshot_dir, const std::string& dest_dir,
                                      const Env& env);

// INTERNAL to src/store (snapshots, repair): streams `src` to `dst` (created with `mode`,
// synced), hashing on the way; with `dst` empty only hashes.
struct FileDigest {
  std::string sha256;  // lowercase hex
  uint64_t size = 0;
};
Result<FileDigest> CopyHashing(FileSystem* fs, const std::string& src, const std::string& dst,
                               int mode);

}  // namespace keel::store
