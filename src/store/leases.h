// Lease bookkeeping beyond the per-step claim in runs.h: which workers hold live leases,
// releasing the leases of a worker known to be gone, and renewing a lease only while it is
// still ours (the fence before an external effect).
//
// Errors: Unavailable (locked, disk full), DataLoss.
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

// Distinct owners of leases that are still live at `now_us`.
Result<std::vector<std::string>> LiveLeaseOwners(Workspace& ws, int64_t now_us);

// Frees every lease held by `owner` (a worker known to be gone): the runs become claimable
// at once instead of after the lease expiry. Returns how many runs were freed.
Result<int64_t> ReleaseLeasesOf(Txn& txn, const std::string& owner);

// Extends the lease on `run_id` to `until_us` only if `owner` still holds it (expired or
// not). False when another worker took it over, or it was released: the caller must not
// start the external effect then.
Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us);

}  // namespace keel::store
