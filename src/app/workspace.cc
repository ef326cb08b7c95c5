#include "app/workspace.h"

#include "core/clock.h"

namespace keel::app {

Status MakeReadsDurable(const std::string& dir) {
  return store::SyncWorkspaceWal(dir);
}

Result<std::string> InitWorkspace(const InitRequest& req, const Env& env) {
  store::InitOptions o;
  o.name = req.name;
  o.allow_nested = req.nested;
  KEEL_RETURN_IF_ERROR(store::Workspace::Init(req.dir, o, env));
  return AbsolutePath(req.dir);
}

Result<std::vector<store::LedgerEntry>> QueryLedger(Runtime& rt, const LedgerRequest& req) {
  store::LedgerQuery q = req.query;
  if (!req.since.empty() && !ParseTimeMicros(req.since, &q.since_us)) {
    return InvalidArgument("--since '" + req.since + "' is not a date or RFC 3339 time");
  }
  if (!req.until.empty() && !ParseTimeMicros(req.until, &q.until_us)) {
    return InvalidArgument("--until '" + req.until + "' is not a date or RFC 3339 time");
  }
  if (q.limit < 0 || q.limit > 100000) {
    return InvalidArgument("--limit must be between 1 and 100000 (not given: every entry)");
  }
  if (q.after_seq < 0) return InvalidArgument("--after must not be negative");
  return rt.ws().QueryLedger(q);
}

Result<store::VerifyReport> Verify(const std::string& workspace_dir,
                                   const store::VerifyOptions& opts, const Env& env) {
  return store::VerifyWorkspace(workspace_dir, opts, env);
}

Result<store::RepairReport> RepairFromLedger(const std::string& workspace_dir,
                                             const std::string& dest_dir, const Env& env) {
  if (dest_dir.empty()) return InvalidArgument("--repair-from-ledger needs a new folder");
  return store::RepairFromLedger(workspace_dir, dest_dir, env);
}

Result<store::CheckpointInfo> TakeCheckpoint(Runtime& rt) {
  return store::Checkpoint(rt.ws());
}

Result<store::SnapshotResult> TakeSnapshot(Runtime& rt, int keep) {
  store::SnapshotOptions so;
  so.keep = keep;
  return store::CreateSnapshot(rt.ws(), so);
}

Result<std::vector<SnapshotListing>> ListSnapshots(Runtime& rt) {
  const std::string dir = rt.ws().snapshots_dir();
  KEEL_ASSIGN_OR_RETURN(auto names, store::ListSnapshots(rt.env().fs, dir));
  std::vector<SnapshotListing> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back({n, JoinPath(dir, n)});
  return out;
}

Result<store::RestoreResult> Restore(const std::string& snapshot, const std::string& snapshots_dir,
                                     const std::string& dest_dir, const Env& env) {
  KEEL_ASSIGN_OR_RETURN(std::string path, store::ResolveSnapshot(env.fs, snapshot, snapshots_dir));
  return store::RestoreSnapshot(path, dest_dir, env);
}

}  // namespace keel::app
