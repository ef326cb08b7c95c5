#include "store/leases.h"

#include "store/sqlite/sql.h"

namespace keel::store {

Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE runs SET lease_until_us = ? WHERE "
                                                   "id = ? AND lease_owner = ?"));
  st->Bind(1, until_us).Bind(2, run_id).Bind(3, owner);
  Status s = st->Run();
  int64_t changed = st->changes();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return changed == 1;
}

}  // namespace keel::store
