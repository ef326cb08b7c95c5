#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "store/sqlite/state_capture.h"

#include <sqlite3.h>

#include <cstring>
#include <set>

#include "store/sqlite/sql.h"
#include "store/state.h"

namespace keel::store::sql {
namespace {

void PutValue(std::string* out, sqlite3_value* v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      PutIntValue(out, sqlite3_value_int64(v));
      break;
    case SQLITE_FLOAT:
      PutRealValue(out, sqlite3_value_double(v));
      break;
    case SQLITE_TEXT:
      PutTextValue(out, std::string_view(reinterpret_cast<const char*>(sqlite3_value_text(v)),
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

}  // namespace

struct StateCaptureHook {
  // Encodes the covered values of the old (`old_row`) or new row.
  static bool Values(sqlite3* db, const StateTable& t, const std::vector<int>& cids, bool old_row,
                     std::string* out, size_t* key_len) {
    for (size_t i = 0; i < cids.size(); ++i) {
      sqlite3_value* v = nullptr;
      int rc =
          old_row ? sqlite3_preupdate_old(db, cids[i], &v) : sqlite3_preupdate_new(db, cids[i], &v);
      if (rc != SQLITE_OK || v == nullptr) return false;
      if (t.cols[i].cover == Cover::kDigest) {
        std::string tmp;
        PutValue(&tmp, v);
        PutDigestOf(tmp, out);  // as PutColumnValue makes it
      } else {
        PutValue(out, v);
      }
      if (static_cast<int>(i) + 1 == t.key_cols) *key_len = out->size();
    }
    return true;
  }

  static void Call(void* self_v, sqlite3* db, int op, const char* schema, const char* name,
                   sqlite3_int64, sqlite3_int64) {
    if (std::strcmp(schema, "main") != 0) return;
    auto* self = static_cast<StateCapture*>(self_v);
    const int index = StateTableIndex(name);
    if (index < 0) return;
    const StateTable& t = StateTables()[static_cast<size_t>(index)];
    const std::vector<int>& cids = self->cids_[static_cast<size_t>(index)];
    if (self->rows_.empty()) self->failures_at_first_ = self->db_->statement_failures();
    std::string old_v, new_v;
    size_t old_key = 0, new_key = 0;
    if (op != SQLITE_INSERT && !Values(db, t, cids, true, &old_v, &old_key)) return;
    if (op != SQLITE_DELETE && !Values(db, t, cids, false, &new_v, &new_key)) return;
    if (op == SQLITE_UPDATE && old_v == new_v) return;  // only bookkeeping columns changed
    if (op != SQLITE_INSERT &&
        (op == SQLITE_DELETE || old_v.compare(0, old_key, new_v, 0, new_key) != 0)) {
      // A deleted row, or an update that changed the key: the old key's tombstone.
      std::string key = old_v.substr(0, old_key);
      self->rows_[{index, key}] = StateCapture::Image{false, key};
    }
    if (op != SQLITE_DELETE) {
      // The key first: the right side of `=` is evaluated before the left.
      std::pair<int, std::string> key(index, new_v.substr(0, new_key));
      self->rows_[std::move(key)] = StateCapture::Image{true, std::move(new_v)};
    }
  }
};

Result<std::unique_ptr<StateCapture>> StateCapture::Install(Db* db) {
  std::unique_ptr<StateCapture> c(new StateCapture(db));
  for (const StateTable& t : StateTables()) {
    KEEL_ASSIGN_OR_RETURN(auto info, db->Prepare("SELECT name, cid FROM pragma_table_info(?)"));
    info->Bind(1, std::string(t.name));
    std::map<std::string, int> cid;
    for (;;) {
      KEEL_ASSIGN_OR_RETURN(bool row, info->Step());
      if (!row) break;
      cid[info->Text(0)] = static_cast<int>(info->Int(1));
    }
    std::vector<int> cols;
    for (const StateColumn& col : t.cols) {
      auto it = cid.find(col.name);
      if (it == cid.end()) {
        return Internal(std::string("table ") + t.name + " has no column " + col.name);
      }
      cols.push_back(it->second);
    }
    c->cids_.push_back(std::move(cols));
  }
  sqlite3_preupdate_hook(db->raw(), &StateCaptureHook::Call, c.get());
  return c;
}

StateCapture::~StateCapture() {
  sqlite3_preupdate_hook(db_->raw(), nullptr, nullptr);
}

Status StateCapture::Take(StateBuilder* out) {
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
