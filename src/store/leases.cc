#include "store/leases.h"

#include <sqlite3.h>

#include <mutex>

#include "store/sql.h"

namespace keel::store {

Result<std::vector<std::string>> LiveLeaseOwners(Workspace& ws, int64_t now_us) {
  std::lock_guard<std::recursive_mutex> l(ws.mu());
  KEEL_ASSIGN_OR_RETURN(auto* st, ws.db()->Cached("SELECT DISTINCT lease_owner FROM runs WHERE "
                                                  "lease_owner <> '' AND lease_until_us > ?"));
  st->Bind(1, now_us);
  std::vector<std::string> out;
  for (;;) {
    auto row = st->Step();
    if (!row.ok()) {
      st->Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back(st->Text(0));
  }
  st->Reset();
  return out;
}

Result<int64_t> ReleaseLeasesOf(Txn& txn, const std::string& owner) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE runs SET lease_owner = '', "
                                                   "lease_until_us = 0 WHERE lease_owner = ?"));
  st->Bind(1, owner);
  Status s = st->Run();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return static_cast<int64_t>(sqlite3_changes(txn.db()->raw()));
}

Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE runs SET lease_until_us = ? WHERE "
                                                   "id = ? AND lease_owner = ?"));
  st->Bind(1, until_us).Bind(2, run_id).Bind(3, owner);
  Status s = st->Run();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return sqlite3_changes(txn.db()->raw()) == 1;
}

}  // namespace keel::store
