#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "store/sqlite/state_capture.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <set>

#include "store/sqlite/sql.h"
#include "store/state.h"

namespace keel::store::sql {
namespace {

// Encodes `v` as a SELECT of the column returns it. `real`: the column is declared REAL,
// where SQLite stores a whole number as an integer in the record (which the hook sees) and
// turns it back into a REAL when the column is read.
void PutValue(std::string* out, sqlite3_value* v, bool real) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      if (real) {
        PutRealValue(out, static_cast<double>(sqlite3_value_int64(v)));
      } else {
        PutIntValue(out, sqlite3_value_int64(v));
      }
      break;
    case SQLITE_FLOAT:
      PutRealValue(out, sqlite3_value_double(v));
      break;
    case SQLITE_TEXT:
      // The bytes as stored (UTF-8): sqlite3_value_text would copy them to add a NUL.
      PutTextValue(out, std::string_view(static_cast<const char*>(sqlite3_value_blob(v)),
                                         static_cast<size_t>(sqlite3_value_bytes(v))));
      break;
    case SQLITE_BLOB:
      PutBlobValue(out, std::string_view(static_cast<const char*>(sqlite3_value_blob(v)),
                                         static_cast<size_t>(sqlite3_value_bytes(v))));
      break;
    default:
      PutNullValue(out);
  }
}

// The lookups of one row by key, per table (the read-back after a failed statement); the
// texts live for the process (Db::Cached keys statements by address).
const std::vector<std::string>& LookupSql() {
  static const std::vector<std::string> q = [] {
    std::vector<std::string> out;
    for (const StateTable& t : StateTables()) {
      std::string where = "WHERE ";
      for (int k = 0; k < t.key_cols; ++k) {
        if (k) where += " AND ";
        (where += t.cols[static_cast<size_t>(k)].name) += " = ?";
      }
      out.push_back(SelectCoveredSql(t, where));
    }
    return out;
  }();
  return q;
}

// Whether two column values are the same stored value (whether their encodings match).
bool SameValue(sqlite3_value* a, sqlite3_value* b, bool real) {
  int type = sqlite3_value_type(a);
  const int type_b = sqlite3_value_type(b);
  if (real && (type == SQLITE_INTEGER || type == SQLITE_FLOAT) &&
      (type_b == SQLITE_INTEGER || type_b == SQLITE_FLOAT)) {
    type = SQLITE_FLOAT;  // both read back as REAL (PutValue)
  } else if (type != type_b) {
    return false;
  }
  switch (type) {
    case SQLITE_INTEGER:
      return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT: {
      // Bit for bit, as PutRealValue encodes (0.0 and -0.0 differ).
      const double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
      uint64_t xb = 0, yb = 0;
      std::memcpy(&xb, &x, sizeof xb);
      std::memcpy(&yb, &y, sizeof yb);
      return xb == yb;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const void* x = sqlite3_value_blob(a);  // a text's stored bytes, as PutValue reads them
      const int n = sqlite3_value_bytes(a);
      const void* y = sqlite3_value_blob(b);
      return n == sqlite3_value_bytes(b) &&
             (n == 0 || std::memcmp(x, y, static_cast<size_t>(n)) == 0);
    }
    default:
      return true;
  }
}

}  // namespace

// The hook runs for every row the write connection changes, so it does only what the
// image needs: the new row is encoded into a reused buffer while an update's values are
// compared with the old row's (the update is dropped when no covered column changed); the
// old row is encoded only for a tombstone's key.
struct StateCaptureHook {
  // Appends covered column `i` of `t` with value `v` as the image holds it.
  static void PutColumn(const StateTable& t, const StateCapture::Col& c, size_t i, sqlite3_value* v,
                        std::string* out) {
    if (t.cols[i].cover == Cover::kDigest) {
      std::string tmp;
      PutValue(&tmp, v, c.real);
      PutDigestOf(tmp, out);  // as PutColumnValue makes it
    } else {
      PutValue(out, v, c.real);
    }
  }

  // Appends the first `n` covered values of the old (`old_row`) or new row to `out`;
  // `key_len` (if set) gets the length of the key part.
  static bool Put(sqlite3* db, const StateTable& t, const std::vector<StateCapture::Col>& cids,
                  size_t n, bool old_row, std::string* out, size_t* key_len = nullptr) {
    for (size_t i = 0; i < n; ++i) {
      sqlite3_value* v = nullptr;
      int rc = old_row ? sqlite3_preupdate_old(db, cids[i].cid, &v)
                       : sqlite3_preupdate_new(db, cids[i].cid, &v);
      if (rc != SQLITE_OK || v == nullptr) return false;
      PutColumn(t, cids[i], i, v, out);
      if (key_len != nullptr && static_cast<int>(i) + 1 == t.key_cols) *key_len = out->size();
    }
    return true;
  }

  // Appends every covered value of the new row of an update to `out`, comparing each with
  // the old row's as it goes: false (and `out` unusable) when none changed. `key_len` gets
  // the length of the key part, `key_changed` whether a key column changed; `ok` is
  // cleared on an error.
  static bool PutChanged(sqlite3* db, const StateTable& t,
                         const std::vector<StateCapture::Col>& cids, std::string* out,
                         size_t* key_len, bool* key_changed, bool* ok) {
    bool changed = false;
    for (size_t i = 0; i < cids.size(); ++i) {
      sqlite3_value* o = nullptr;
      sqlite3_value* n = nullptr;
      if (sqlite3_preupdate_old(db, cids[i].cid, &o) != SQLITE_OK ||
          sqlite3_preupdate_new(db, cids[i].cid, &n) != SQLITE_OK || o == nullptr || n == nullptr) {
        *ok = false;
        return false;
      }
      if (!SameValue(o, n, cids[i].real)) {
        changed = true;
        if (static_cast<int>(i) < t.key_cols) *key_changed = true;
      }
      PutColumn(t, cids[i], i, n, out);
      if (static_cast<int>(i) + 1 == t.key_cols) *key_len = out->size();
    }
    return changed;
  }

  static void Call(void* self_v, sqlite3* db, int op, const char* schema, const char* name,
                   sqlite3_int64, sqlite3_int64) {
    if (std::strcmp(schema, "main") != 0) return;
    auto* self = static_cast<StateCapture*>(self_v);
    const int index = StateTableIndex(name);
    if (index < 0) return;
    const StateTable& t = StateTables()[static_cast<size_t>(index)];
    const std::vector<StateCapture::Col>& cids = self->cols_[static_cast<size_t>(index)];
    const auto key_cols = static_cast<size_t>(t.key_cols);
    std::string& buf = self->scratch_;
    buf.clear();
    size_t key_len = 0;
    bool key_changed = false;
    if (op == SQLITE_UPDATE) {
      bool ok = true;
      if (!PutChanged(db, t, cids, &buf, &key_len, &key_changed, &ok)) {
        if (ok) return;  // only bookkeeping columns changed
        return self->Failed(t);
      }
    } else if (op == SQLITE_INSERT &&
               !Put(db, t, cids, cids.size(), /*old_row=*/false, &buf, &key_len)) {
      return self->Failed(t);
    }
    if (self->rows_.empty()) self->failures_at_first_ = self->db_->statement_failures();
    if (op == SQLITE_DELETE || key_changed) {
      // A deleted row, or an update that changed the key: the old key's tombstone.
      std::string old_key;
      if (!Put(db, t, cids, key_cols, /*old_row=*/true, &old_key)) return self->Failed(t);
      StateCapture::Image& img = self->rows_[{index, old_key}];
      img.put = false;
      img.values = std::move(old_key);
    }
    if (op == SQLITE_DELETE) return;
    auto it = self->rows_.try_emplace({index, buf.substr(0, key_len)}).first;
    it->second.put = true;
    it->second.values.assign(buf);  // a row changed again keeps its buffer
  }
};

Result<std::unique_ptr<StateCapture>> StateCapture::Install(Db* db) {
  std::unique_ptr<StateCapture> c(new StateCapture(db));
  for (const StateTable& t : StateTables()) {
    KEEL_ASSIGN_OR_RETURN(auto info,
                          db->Prepare("SELECT name, cid, upper(type) FROM pragma_table_info(?)"));
    info->Bind(1, std::string(t.name));
    std::map<std::string, Col> cid;
    for (;;) {
      KEEL_ASSIGN_OR_RETURN(bool row, info->Step());
      if (!row) break;
      cid[info->Text(0)] = Col{static_cast<int>(info->Int(1)), info->Text(2) == "REAL"};
    }
    std::vector<Col> cols;
    for (const StateColumn& col : t.cols) {
      auto it = cid.find(col.name);
      if (it == cid.end()) {
        return Internal(std::string("table ") + t.name + " has no column " + col.name);
      }
      cols.push_back(it->second);
    }
    c->cols_.push_back(std::move(cols));
  }
  sqlite3_preupdate_hook(db->raw(), &StateCaptureHook::Call, c.get());
  return c;
}

StateCapture::~StateCapture() {
  sqlite3_preupdate_hook(db_->raw(), nullptr, nullptr);
}

void StateCapture::Failed(const StateTable& t) {
  if (failed_.empty()) failed_ = t.name;
}

Status StateCapture::Take(StateBuilder* out) {
  if (!failed_.empty()) {
    std::string table = std::move(failed_);
    Clear();
    return Internal("could not read a changed row of " + table + " to record its image");
  }
  const auto& tables = StateTables();
  // A statement failed after the hook saw rows: some of those changes were rolled back.
  // Read every captured row back instead.
  const bool read_back = db_->statement_failures() != failures_at_first_;
  std::vector<StateValue> key;
  Status s;
  for (auto& [k, img] : rows_) {
    const StateTable& t = tables[static_cast<size_t>(k.first)];
    if (!read_back) {
      out->Begin(t.name, img.put, t.key_cols,
                 img.put ? static_cast<int>(t.cols.size()) : t.key_cols);
      out->values()->append(img.values);
      out->End();
      continue;
    }
    auto st = db_->Cached(LookupSql()[static_cast<size_t>(k.first)].c_str());
    if (!st.ok()) {
      s = st.status();
      break;
    }
    Stmt* q = *st;
    if (!ParseValues(k.second, &key) || static_cast<int>(key.size()) != t.key_cols) {
      s = Internal(std::string("a changed row of ") + t.name + " has a damaged key");
      break;
    }
    for (size_t i = 0; i < key.size() && s.ok(); ++i) {
      s = BindStateValue(q, static_cast<int>(i) + 1, key[i]);
    }
    if (!s.ok()) break;
    auto row = q->Step();
    if (!row.ok()) {
      q->Reset();
      s = row.status();
      break;
    }
    if (*row) {
      out->Begin(t.name, true, t.key_cols, static_cast<int>(t.cols.size()));
      PutRowValues(t, *q, out->values());
    } else {
      out->Begin(t.name, false, t.key_cols, t.key_cols);
      out->values()->append(k.second);
    }
    out->End();
    q->Reset();
  }
  rows_.clear();
  return s;
}

std::string StateCapture::TouchedTables() const {
  std::set<std::string> names;
  for (const auto& [k, img] : rows_) names.insert(StateTables()[static_cast<size_t>(k.first)].name);
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace keel::store::sql
