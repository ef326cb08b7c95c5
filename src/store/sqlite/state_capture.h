// INTERNAL to src/store: the images of the state-table rows a write transaction changed,
// for its ledger entries (store/state.h).
//
// SQLite: the connection's preupdate hook sees every row inserted, updated or deleted, with
// its old and new values, before the change is made. For a covered table it encodes the
// row's new image (or a tombstone) at once, keeping the latest per row; an update that
// changes no covered column (a lease renewal) is ignored. No statement runs for it.
//
// A statement that fails after the hook saw its rows is rolled back by SQLite while the
// transaction goes on (a foreign key checked at the statement's end). When any statement
// failed since the first captured change, Take reads every captured row back instead of
// trusting the hook. A PostgreSQL backend would capture with triggers or RETURNING.
//
// Thread-safety: as its Db (one thread at a time). Errors: those of the SQL layer; Internal
// from Take when the hook could not read a changed row (SQLite out of memory), so the
// transaction fails rather than commit without that row's image.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace keel::store {
class StateBuilder;
struct StateTable;
}  // namespace keel::store

namespace keel::store::sql {

class Db;

class StateCapture {
 public:
  // Maps each covered table's columns on `db` (which must outlive this) and sets the hook.
  static Result<std::unique_ptr<StateCapture>> Install(Db* db);
  ~StateCapture();

  bool empty() const { return rows_.empty() && failed_.empty(); }
  // Appends the image of every changed row (or its tombstone) to `out`, in (table, key)
  // order, and forgets them.
  Status Take(StateBuilder* out);
  // Forgets the changed rows (the transaction rolled back).
  void Clear() {
    rows_.clear();
    failed_.clear();
  }
  // The names of the tables with changed rows ("runs, steps"), for error messages.
  std::string TouchedTables() const;

 private:
  explicit StateCapture(Db* db) : db_(db) {}
  void Failed(const StateTable& t);  // the hook could not read a row: Take fails
  friend struct StateCaptureHook;
  struct Image {
    bool put = true;
    std::string values;  // all covered values for a put, the key for a tombstone
  };
  Db* db_;
  struct Col {
    int cid = 0;        // the column's index in its table
    bool real = false;  // declared REAL (the keel schema's tables are STRICT)
  };
  std::vector<std::vector<Col>> cols_;  // per covered table, its covered columns in order
  std::map<std::pair<int, std::string>, Image> rows_;  // (table, encoded key) -> image
  uint64_t failures_at_first_ = 0;  // db_->statement_failures() at the first change
  std::string failed_;   // the table of a row the hook could not read (SQLite out of memory)
  std::string scratch_;  // the hook's encoding buffer, kept between calls
};

}  // namespace keel::store::sql
