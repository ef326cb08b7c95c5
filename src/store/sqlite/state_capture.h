// INTERNAL to src/store: which rows of the state tables a write transaction touched, so
// that its ledger entries can carry their images (store/state.h).
//
// SQLite: a temporary trigger per covered table and operation (they live in the write
// connection only, not in the file) calls keel_state_touch(table, key...) for each row
// inserted, deleted, or updated in a covered column (UPDATE OF lists exactly those, so a
// lease renewal fires nothing). A PostgreSQL backend would do the same with its own
// triggers or RETURNING clauses.
//
// Thread-safety: as its Db (one thread at a time). Errors: those of the SQL layer.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "core/status.h"

namespace keel::store {
class StateBuilder;
}

namespace keel::store::sql {

class Db;

class StateCapture {
 public:
  // Registers the function and creates the triggers on `db` (which must outlive this).
  static Result<std::unique_ptr<StateCapture>> Install(Db* db);
  ~StateCapture();

  bool empty() const { return touched_.empty(); }
  // Appends the current image of every touched row (or its tombstone when it no longer
  // exists) to `out`, in (table, key) order, and forgets them.
  Status Take(StateBuilder* out);
  // Forgets the touched rows (the transaction rolled back).
  void Clear() { touched_.clear(); }
  // The names of the tables with touched rows ("runs, steps"), for error messages.
  std::string TouchedTables() const;

 private:
  explicit StateCapture(Db* db) : db_(db) {}
  static void Touch(void* self, int table, std::string key);
  friend struct StateCaptureAccess;
  Db* db_;
  std::set<std::pair<int, std::string>> touched_;  // (table index, encoded key)
};

}  // namespace keel::store::sql
