#include "store/leases.h"

#include "store/runs.h"
#include "store/sqlite/sql.h"

namespace keel::store {

Result<bool> RenewLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t until_us) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("UPDATE runs SET lease_until_us = ?1, due_us = ?1 "
                                         "WHERE id = ?2 AND lease_owner = ?3"));
  st->Bind(1, until_us).Bind(2, run_id).Bind(3, owner);
  Status s = st->Run();
  int64_t changed = st->changes();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return changed == 1;
}

namespace {
// Runs leased by ?1 until after ?2 and due only then; parked and ended runs (due never)
// are outside the range of the due-time index read.
constexpr const char* kLeasedBy =
    " FROM runs WHERE due_us > ?2 AND due_us < ?3 AND lease_owner = ?1 AND lease_until_us > ?2";
}  // namespace

Result<bool> HasLeasesOf(Workspace& ws, const std::string& owner, int64_t now_us) {
  Reader rd(ws);
  static const std::string q = std::string("SELECT 1") + kLeasedBy + " LIMIT 1";
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, owner).Bind(2, now_us).Bind(3, kNeverUs);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  st->Reset();
  return row;
}

Status MakeLeasesOfDue(Txn& txn, const std::string& owner, int64_t now_us) {
  static const std::string q =
      std::string("UPDATE runs SET due_us = ?2 WHERE id IN (SELECT id") + kLeasedBy + ")";
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q.c_str()));
  st->Bind(1, owner).Bind(2, now_us).Bind(3, kNeverUs);
  Status s = st->Run();
  st->Reset();
  return s;
}

}  // namespace keel::store
