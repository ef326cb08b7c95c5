// Lease renewal with a fence (runs.h has the claim): a worker extends a lease only while it
// still holds it, and must not start the external effect of a step whose lease it lost.
//
// Errors: Unavailable (locked, disk full), DataLoss.
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

// Extends the lease on `run_id` to `until_us` only if `owner` still holds it (expired or
// not), and makes the run due then (a run whose effect is in flight is due when its lease
// ends: flow/engine.h). False when another worker took it over, or it was released because
// the step was finished by someone else: the caller must not start the external effect then.
Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us);

// True if some run is leased by `owner` until after `now_us` and is due only then. Reads a
// range of the due-time index.
Result<bool> HasLeasesOf(Workspace& ws, const std::string& owner, int64_t now_us);
// Makes those runs due at `now_us`: a worker restarting under its old id takes them back at
// once instead of when the leases its previous life took end.
Status MakeLeasesOfDue(Txn& txn, const std::string& owner, int64_t now_us);

}  // namespace keel::store
