#include "store/testing_state_tamper.h"

#include <filesystem>
#include <random>
#include <set>

#include "core/env.h"
#include "core/testing_util.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/testing_schema_fixtures.h"
#include "store/state.h"
#include "store/verify.h"
#include "store/workspace.h"

namespace keel::store::testing {
namespace {

// Binds column `col` of the current row of `from` as parameter `i` of `to`.
void BindFrom(sql::Stmt* to, int i, const sql::Stmt& from, int col) {
  switch (from.Type(col)) {
    case sql::ColType::kInteger:
      to->Bind(i, from.Int(col));
      break;
    case sql::ColType::kFloat:
      to->BindDouble(i, from.Double(col));
      break;
    case sql::ColType::kText:
      to->Bind(i, from.TextView(col));
      break;
    case sql::ColType::kBlob:
      to->BindBlob(i, from.BlobView(col));
      break;
    case sql::ColType::kNull:
      to->BindNull(i);
      break;
  }
}

std::string KeyWhere(const StateTable& t) {
  std::string w;
  for (int k = 0; k < t.key_cols; ++k) {
    if (k) w += " AND ";
    w += std::string(t.cols[static_cast<size_t>(k)].name) + " = ?";
  }
  return w;
}

// A value of the column's declared type that differs from the current one: numbers move,
// text and blobs grow by a character, NULL becomes a value.
std::string NewValueSql(const std::string& col, const std::string& decl) {
  if (decl == "INTEGER") return "COALESCE(" + col + " + 1, 1)";
  if (decl == "REAL") return "COALESCE(" + col + " / 2.0 + 0.125, 0.5)";
  if (decl == "BLOB") return "COALESCE(" + col + " || x'7e', x'7e')";
  return "COALESCE(" + col + " || '~', '~')";
}

// The edited row's new key: text gets a suffix, numbers move far away.
std::string NewKeySql(const std::string& col, const std::string& decl) {
  return decl == "INTEGER" ? col + " + 1000000" : col + " || '~'";
}

Result<std::string> DeclType(sql::Db* db, const std::string& table, const std::string& col) {
  KEEL_ASSIGN_OR_RETURN(auto st,
                        db->Prepare("SELECT type FROM pragma_table_info(?) WHERE name = ?"));
  st->Bind(1, table).Bind(2, col);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return NotFound(table + "." + col);
  return st->Text(0);
}

}  // namespace

Result<StateTamperResult> RunStateTamperTrials(const std::string& dir, uint64_t seed, int trials) {
  KEEL_RETURN_IF_ERROR(CopyFixture(SchemaFixtureDir(NewestFixtureVersion()), dir));
  Env env;
  {
    // Opened once by this build (a no-op at the newest version) and closed: no WAL left.
    KEEL_ASSIGN_OR_RETURN(auto ws, Workspace::Open(dir, WorkspaceOpenOptions{}, env));
  }
  const std::string db_path = dir + "/keel.db";
  const std::string pristine = keel::testing::ReadFileOrDie(db_path);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  StateTamperResult out;
  std::set<std::string> tables;
  VerifyOptions vo;
  vo.integrity_check = false;
  vo.artifacts = false;
  const auto& all = StateTables();
  for (int trial = 0; trial < trials; ++trial) {
    std::filesystem::remove(db_path + "-wal");
    std::filesystem::remove(db_path + "-shm");
    keel::testing::WriteFile(db_path, pristine);
    const StateTable& t = all[pick(all.size())];
    const int op = static_cast<int>(pick(3));  // 0 update, 1 insert, 2 delete
    std::string what;
    Status applied = [&]() -> Status {
      sql::OpenOptions o;
      KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(db_path, o));
      KEEL_ASSIGN_OR_RETURN(int64_t rows,
                            db->QueryInt("SELECT count(*) FROM " + std::string(t.name)));
      if (rows == 0) return NotFound(std::string("no rows in ") + t.name);
      std::string keys;
      for (int k = 0; k < t.key_cols; ++k) {
        (keys += k ? ", " : "") += t.cols[static_cast<size_t>(k)].name;
      }
      KEEL_ASSIGN_OR_RETURN(auto sel, db->Prepare("SELECT " + keys + " FROM " + t.name +
                                                  " ORDER BY " + keys + " LIMIT 1 OFFSET ?"));
      sel->Bind(1, static_cast<int64_t>(pick(static_cast<size_t>(rows))));
      KEEL_ASSIGN_OR_RETURN(bool row, sel->Step());
      if (!row) return NotFound("row");
      std::string q;
      if (op == 0) {
        const StateColumn& c = t.cols[pick(t.cols.size())];
        KEEL_ASSIGN_OR_RETURN(std::string decl, DeclType(db.get(), t.name, c.name));
        q = std::string("UPDATE ") + t.name + " SET " + c.name + " = " + NewValueSql(c.name, decl) +
            " WHERE " + KeyWhere(t);
        what = std::string("update ") + t.name + "." + c.name;
      } else if (op == 1) {
        // A copy of the row under a new key.
        KEEL_ASSIGN_OR_RETURN(auto info, db->Prepare("SELECT name, type FROM "
                                                     "pragma_table_info(?) ORDER BY cid"));
        info->Bind(1, std::string(t.name));
        std::string cols, exprs;
        const std::string last_key = t.cols[static_cast<size_t>(t.key_cols - 1)].name;
        for (;;) {
          KEEL_ASSIGN_OR_RETURN(bool r, info->Step());
          if (!r) break;
          std::string name = info->Text(0);
          if (!cols.empty()) cols += ", ", exprs += ", ";
          cols += name;
          // Unique columns other than the key (an id) change too.
          bool unique = name == "id" && t.cols[0].name != std::string("id");
          exprs += name == last_key || unique ? NewKeySql(name, info->Text(1)) : name;
        }
        q = std::string("INSERT INTO ") + t.name + "(" + cols + ") SELECT " + exprs + " FROM " +
            t.name + " WHERE " + KeyWhere(t);
        what = std::string("insert into ") + t.name;
      } else {
        q = std::string("DELETE FROM ") + t.name + " WHERE " + KeyWhere(t);
        what = std::string("delete from ") + t.name;
      }
      KEEL_ASSIGN_OR_RETURN(auto edit, db->Prepare(q));
      for (int k = 0; k < t.key_cols; ++k) BindFrom(edit.get(), k + 1, *sel, k);
      sel->Reset();
      KEEL_RETURN_IF_ERROR(edit->Run());
      if (edit->changes() != 1) return NotFound("no row changed");
      return OkStatus();
    }();
    if (!applied.ok()) {
      if (applied.code() == StatusCode::kNotFound) return applied;
      ++out.refused;  // a CHECK or UNIQUE constraint: not an edit keel could be fooled by
      continue;
    }
    ++out.applied;
    tables.insert(t.name);
    KEEL_ASSIGN_OR_RETURN(VerifyReport r, VerifyWorkspace(dir, vo, env));
    bool named = false;
    for (const std::string& p : r.problems) {
      named = named || p.rfind(std::string(t.name) + " ", 0) == 0;
    }
    if (!named) {
      out.missed.push_back("trial " + std::to_string(trial) + ": " + what + " (" +
                           (r.problems.empty() ? "verify said ok" : r.problems[0]) + ")");
    }
  }
  out.tables.assign(tables.begin(), tables.end());
  return out;
}

}  // namespace keel::store::testing
