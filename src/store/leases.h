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
// not). False when another worker took it over, or it was released because the step was
// finished by someone else: the caller must not start the external effect then.
Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us);

}  // namespace keel::store
