// Worker presence: how a restarted worker tells a crashed worker's leases from a live one's,
// so the work the crashed worker had claimed resumes at once instead of after the lease
// expires (five minutes by default).
//
// Each `keel worker` holds an exclusive flock(2) on <workspace>/workers/<worker id>.lock for
// as long as it lives. The kernel drops the lock when the process dies, however it dies
// (SIGKILL included). A worker that can take the lock of a lease owner knows that owner is
// gone and frees its leases (one ledger entry `lease.reclaimed` per owner). An owner without
// a lock file (an engine run in-process, a worker on another machine) is never judged gone:
// its leases expire as usual.
//
// The outcome of what the gone worker had started is then settled by the outbox rules: a
// key-honouring action is retried with the same token, an SMTP-like one becomes uncertain
// and goes to the operator.
//
// Thread-safety: a WorkerPresence is owned by one thread; the functions are safe anywhere.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::flow {

class WorkerPresence {
 public:
  // Creates and locks <dir>/workers/<worker_id>.lock. InvalidArgument for an id that is not
  // a plain file name; Unavailable if the file cannot be created or locked.
  static Result<std::unique_ptr<WorkerPresence>> Announce(const std::string& workspace_dir,
                                                          const std::string& worker_id);
  // Removes the file and drops the lock (a clean exit).
  ~WorkerPresence();
  WorkerPresence(const WorkerPresence&) = delete;
  WorkerPresence& operator=(const WorkerPresence&) = delete;

  // True only if `worker_id` announced itself in `workspace_dir` and is no longer alive (its
  // lock file exists and can be locked). The stale file is removed then.
  static bool IsGone(const std::string& workspace_dir, const std::string& worker_id);

 private:
  WorkerPresence(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

// Frees the live leases of every owner other than `self` that IsGone says is gone, each with
// a `lease.reclaimed` ledger entry. Returns the number of runs freed.
Result<int64_t> ReclaimLeasesOfGoneWorkers(store::Workspace& ws, const std::string& self);

}  // namespace keel::flow
