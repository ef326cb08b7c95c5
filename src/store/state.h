// The state tables the ledger speaks for, and the row images that bind them to it
// (docs/ledger-format.md, "State images").
//
// Every write transaction records, in its ledger entries, the image of each row it inserted,
// changed or deleted in a covered table: the row's key and the values of its covered
// columns (or a tombstone). The state tables are then a cache of the ledger: `keel verify`
// compares every row with the last image the ledger holds for it, and
// `keel verify --repair-from-ledger` rebuilds them from the images.
//
// This header holds the registry (which tables and columns are covered, and which
// bookkeeping columns are left out, with why) and the canonical encoding. Pure functions
// and constant data: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"
#include "core/status.h"

namespace keel::store {

namespace sql {
class Stmt;
}

// The meta key naming the first ledger entry from which every state change has its image
// (1 for a workspace created with images; the first state.baseline entry for one migrated).
inline constexpr char kStateImagesSinceKey[] = "state.images_since";
// The schema version that added the images (the ledger's state column).
inline constexpr int kFirstStateImageSchema = 9;

// How a covered column enters the image.
enum class Cover {
  kValue,   // the value itself: verify names the column, repair restores it
  kDigest,  // SHA-256 of the value's encoding: for ciphertext that must not outlive its row
            // in the ledger (the vault's sealed secrets); repair takes the value from the
            // damaged database when it still matches
};

struct StateColumn {
  const char* name;
  Cover cover = Cover::kValue;
};

// A bookkeeping column: changes without a ledger entry, so it is not in the image.
struct LeftOut {
  const char* name;
  const char* repair_value;  // SQL literal a rebuilt row gets when the old row cannot be used
};

struct StateTable {
  const char* name;
  int key_cols;                   // the first key_cols columns are the primary key
  std::vector<StateColumn> cols;  // covered columns, key first, in image order
  std::vector<LeftOut> left_out;  // every other column of the table
  const char* why_left_out = "";  // one line for docs and `keel verify --explain`
};

// Every covered table, in the order their images are written and rebuilt (a table whose
// rows another references comes first). Adding a state table without adding it here (or
// to UncoveredTables) fails the StateTables.CoverEveryTable test.
const std::vector<StateTable>& StateTables();
// The table named `name`, or null.
const StateTable* FindStateTable(std::string_view name);
int StateTableIndex(std::string_view name);  // -1 when not covered

struct UncoveredTable {
  const char* name;  // a table, or a prefix ending in '*' (an FTS index's shadow tables)
  const char* why;
};
// The schema's tables that carry no images, each with the check that covers it instead.
const std::vector<UncoveredTable>& UncoveredTables();

// Value encoding (one byte of type, then the value):
//   'n'                      NULL
//   'i' i64be                INTEGER
//   'f' u64be(IEEE-754 bits) REAL
//   't' u32be(len) bytes     TEXT
//   'b' u32be(len) bytes     BLOB
//   'h' 32 bytes             SHA-256 of the value's own encoding (Cover::kDigest)
void PutNullValue(std::string* out);
void PutIntValue(std::string* out, int64_t v);
void PutRealValue(std::string* out, double v);
void PutTextValue(std::string* out, std::string_view v);
void PutBlobValue(std::string* out, std::string_view v);
// Appends the 'h' value: SHA-256 of `encoded` (a value's own encoding).
void PutDigestOf(std::string_view encoded, std::string* out);
// Encodes column `col` of the current row of `st` as `cover` says.
void PutColumnValue(const sql::Stmt& st, int col, Cover cover, std::string* out);

// One decoded value. `raw` is its encoding; for 'i'/'f' the number, for 't'/'b' the bytes.
struct StateValue {
  char type = 'n';
  int64_t i = 0;
  double f = 0;
  std::string_view bytes;
  std::string_view raw;
};
// Decodes every value in `values`; false if the bytes are not a sequence of values.
bool ParseValues(std::string_view values, std::vector<StateValue>* out);
// Binds a decoded value as parameter `i` of `st`. Internal for a digest ('h'), which has
// no SQL value.
Status BindStateValue(sql::Stmt* st, int i, const StateValue& v);
// The SQL literal-free text a person reads for a value: numbers, 'text', x'hex', NULL,
// #digest.
std::string ValueText(const StateValue& v);

// A transaction's images (the `state` field of a ledger entry):
//   u32be(count), then per row:
//   str(table) u8('P' put | 'D' delete) u8(key values) u32be(values) values...
// A put carries every covered column, a delete only the key.
struct StateWrite {
  std::string_view table;
  bool put = true;
  std::string_view key;     // the encoding of the key values
  std::string_view values;  // the encoding of all values (key first)
};
class StateBuilder {
 public:
  // Starts a row: call Put*Value/PutColumnValue for its values, then End.
  void Begin(std::string_view table, bool put, int key_values, int values);
  std::string* values() { return &out_; }
  void End() { ++count_; }
  bool empty() const { return count_ == 0; }
  size_t size() const { return out_.size(); }
  // The finished blob (empty when no row was added); resets the builder.
  std::string Finish();

 private:
  std::string out_;
  uint32_t count_ = 0;
};
// Parses a state blob; false (and `why`) if it is malformed.
bool ParseState(std::string_view blob, std::vector<StateWrite>* out, std::string* why);

// SELECT of a table's covered columns in image order, with `suffix` appended (a WHERE
// clause or ORDER BY).
std::string SelectCoveredSql(const StateTable& t, std::string_view suffix);
// Appends the image values of the current row of `st` (columns from 0 in image order) and
// returns the length of the key part.
size_t PutRowValues(const StateTable& t, const sql::Stmt& st, std::string* out);

}  // namespace keel::store
