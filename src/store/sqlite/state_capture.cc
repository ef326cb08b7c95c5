#include "store/sqlite/state_capture.h"

#include <sqlite3.h>

#include <vector>

#include "store/sqlite/sql.h"
#include "store/state.h"

namespace keel::store::sql {

struct StateCaptureAccess {
  static void Call(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
    auto* self = static_cast<StateCapture*>(sqlite3_user_data(ctx));
    if (argc < 2) {
      sqlite3_result_error(ctx, "keel_state_touch needs a table and a key", -1);
      return;
    }
    std::string key;
    for (int i = 1; i < argc; ++i) {
      sqlite3_value* v = argv[i];
      switch (sqlite3_value_type(v)) {
        case SQLITE_INTEGER:
          PutIntValue(&key, sqlite3_value_int64(v));
          break;
        case SQLITE_FLOAT:
          PutRealValue(&key, sqlite3_value_double(v));
          break;
        case SQLITE_TEXT:
          PutTextValue(&key, std::string_view(reinterpret_cast<const char*>(sqlite3_value_text(v)),
                                              static_cast<size_t>(sqlite3_value_bytes(v))));
          break;
        case SQLITE_BLOB:
          PutBlobValue(&key, std::string_view(static_cast<const char*>(sqlite3_value_blob(v)),
                                              static_cast<size_t>(sqlite3_value_bytes(v))));
          break;
        default:
          PutNullValue(&key);
      }
    }
    self->touched_.emplace(static_cast<int>(sqlite3_value_int(argv[0])), std::move(key));
    sqlite3_result_null(ctx);
  }
};

namespace {

// The lookups of one row by key, per table; the texts live for the process (Db::Cached
// keys statements by address).
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

std::string TriggerSql(const StateTable& t, int index) {
  auto keys = [&](const char* row) {
    std::string s = "keel_state_touch(" + std::to_string(index);
    for (int k = 0; k < t.key_cols; ++k) {
      ((s += ", ") += row) += t.cols[static_cast<size_t>(k)].name;
    }
    return s + ")";
  };
  std::string cols;
  for (const StateColumn& c : t.cols) {
    if (!cols.empty()) cols += ", ";
    cols += c.name;
  }
  const std::string n = t.name;
  return "CREATE TEMP TRIGGER keel_state_" + n + "_ins AFTER INSERT ON main." + n +
         " BEGIN SELECT " + keys("NEW.") + "; END;\n" + "CREATE TEMP TRIGGER keel_state_" + n +
         "_del AFTER DELETE ON main." + n + " BEGIN SELECT " + keys("OLD.") + "; END;\n" +
         "CREATE TEMP TRIGGER keel_state_" + n + "_upd AFTER UPDATE OF " + cols + " ON main." + n +
         " BEGIN SELECT " + keys("OLD.") + ", " + keys("NEW.") + "; END;\n";
}

}  // namespace

Result<std::unique_ptr<StateCapture>> StateCapture::Install(Db* db) {
  std::unique_ptr<StateCapture> c(new StateCapture(db));
  int rc =
      sqlite3_create_function_v2(db->raw(), "keel_state_touch", -1, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                 c.get(), &StateCaptureAccess::Call, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db->Error(rc, "registering keel_state_touch");
  std::string sql;
  const auto& tables = StateTables();
  for (size_t i = 0; i < tables.size(); ++i) sql += TriggerSql(tables[i], static_cast<int>(i));
  KEEL_RETURN_IF_ERROR(db->Exec(sql));
  return c;
}

StateCapture::~StateCapture() {
  // The triggers are temporary (gone with the connection); the function must not call a
  // destroyed object if the connection outlives this.
  sqlite3_create_function_v2(db_->raw(), "keel_state_touch", -1, SQLITE_UTF8, nullptr, nullptr,
                             nullptr, nullptr, nullptr);
}

Status StateCapture::Take(StateBuilder* out) {
  const auto& tables = StateTables();
  const auto& lookups = LookupSql();
  std::vector<StateValue> key;
  Status s;
  for (const auto& [index, key_bytes] : touched_) {
    const StateTable& t = tables[static_cast<size_t>(index)];
    auto st = db_->Cached(lookups[static_cast<size_t>(index)].c_str());
    if (!st.ok()) {
      s = st.status();
      break;
    }
    Stmt* q = *st;
    if (!ParseValues(key_bytes, &key) || static_cast<int>(key.size()) != t.key_cols) {
      s = Internal(std::string("a touched row of ") + t.name + " has a damaged key");
      break;
    }
    for (size_t k = 0; k < key.size(); ++k) {
      int i = static_cast<int>(k) + 1;
      switch (key[k].type) {
        case 'i':
          q->Bind(i, key[k].i);
          break;
        case 'f':
          q->BindDouble(i, key[k].f);
          break;
        case 't':
          q->Bind(i, key[k].bytes);
          break;
        case 'b':
          q->BindBlob(i, key[k].bytes);
          break;
        default:
          q->BindNull(i);
      }
    }
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
      out->values()->append(key_bytes);
    }
    out->End();
    q->Reset();
  }
  touched_.clear();
  return s;
}

std::string StateCapture::TouchedTables() const {
  std::set<std::string> names;
  for (const auto& [index, key] : touched_)
    names.insert(StateTables()[static_cast<size_t>(index)].name);
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace keel::store::sql
