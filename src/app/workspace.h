// Application services for the workspace itself: creating one, the ledger, integrity
// (verify, checkpoints) and snapshots. Verify and restore work on a folder, not an open
// Runtime: verify must read a workspace that may be damaged, restore creates one.
//
// Thread-safety: as the Runtime. Errors: the store's (store/workspace.h, verify.h,
// snapshot.h), plus InvalidArgument for a bad request.
#pragma once

#include <string>
#include <vector>

#include "app/runtime.h"
#include "core/status.h"
#include "store/checkpoint.h"
#include "store/ledger.h"
#include "store/repair.h"
#include "store/snapshot.h"
#include "store/verify.h"
#include "store/workspace.h"

namespace keel::app {

struct InitRequest {
  std::string dir = ".";
  std::string name = "My business";
  bool nested = false;  // allow a workspace inside another one
};
// Creates the workspace; returns its absolute path. AlreadyExists, FailedPrecondition
// (inside another workspace without `nested`).
Result<std::string> InitWorkspace(const InitRequest& req, const Env& env);

// Before a face shows what it read from the workspace in `dir` (a CLI's output, an API's
// reply): makes durable every commit any process made visible so far, so nothing shown can
// be undone by a power loss (a worker's rounds are visible a moment before their fsync).
// Runtime::SyncReads does the same for an open Runtime and also waits for its own
// pipelined commits. DataLoss if the sync fails.
Status MakeReadsDurable(const std::string& dir);

struct LedgerRequest {
  store::LedgerQuery query;  // query.limit: 1..100000, or 0 for every entry
  std::string since, until;  // RFC 3339 or YYYY-MM-DD; parsed here
};
Result<std::vector<store::LedgerEntry>> QueryLedger(Runtime& rt, const LedgerRequest& req);

Result<store::VerifyReport> Verify(const std::string& workspace_dir,
                                   const store::VerifyOptions& opts, const Env& env);
// Rebuilds the state tables of the workspace in `workspace_dir` from its ledger into the
// new folder `dest_dir` and verifies the result (store/repair.h).
Result<store::RepairReport> RepairFromLedger(const std::string& workspace_dir,
                                             const std::string& dest_dir, const Env& env);
Result<store::CheckpointInfo> TakeCheckpoint(Runtime& rt);

Result<store::SnapshotResult> TakeSnapshot(Runtime& rt, int keep);
struct SnapshotListing {
  std::string name, path;
};
Result<std::vector<SnapshotListing>> ListSnapshots(Runtime& rt);
// `snapshot` is a folder or the name of one in `snapshots_dir` (may be empty when no
// workspace is at hand).
Result<store::RestoreResult> Restore(const std::string& snapshot, const std::string& snapshots_dir,
                                     const std::string& dest_dir, const Env& env);

}  // namespace keel::app
