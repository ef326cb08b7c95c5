#include "store/testing_tamper.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json.h"
#include "core/testing_util.h"
#include "store/artifacts.h"

namespace keel::testing {

std::unique_ptr<store::Workspace> MakeWorkspace(const std::string& dir, const Env& env,
                                                int64_t checkpoint_every) {
  Status s = store::Workspace::Init(dir, store::InitOptions{}, env);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::string cfg = ReadFileOrDie(dir + "/keel.yaml");
  auto pos = cfg.find("checkpoint_every: 1000");
  EXPECT_NE(pos, std::string::npos);
  cfg.replace(pos, 22, "checkpoint_every: " + std::to_string(checkpoint_every));
  WriteFile(dir + "/keel.yaml", cfg);
  auto ws = store::Workspace::Open(dir, store::WorkspaceOpenOptions{}, env);
  EXPECT_TRUE(ws.ok()) << ws.status().ToString();
  return ws.ok() ? std::move(*ws) : nullptr;
}

void AppendEntries(store::Workspace& ws, int n, bool single, int artifact_every) {
  auto one = [&](store::Txn& txn, int i) -> Status {
    if (artifact_every > 0 && i % artifact_every == 0) {
      store::PutArtifactOptions o;
      o.media_type = "text/plain";
      o.name = "note " + std::to_string(i);
      return store::PutArtifact(txn, "artifact body " + std::to_string(i) + " of the test", o)
          .status();
    }
    Json payload = {{"i", i}, {"note", "entry number " + std::to_string(i)}};
    return txn
        .Append({"operator", "test.entry", "lead_" + std::to_string(i % 7), "", "",
                 CanonicalJson(payload), {}})
        .status();
  };
  if (single) {
    for (int i = 0; i < n; ++i) {
      Status s = ws.Write([&](store::Txn& txn) { return one(txn, i); });
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  } else {
    Status s = ws.Write([&](store::Txn& txn) -> Status {
      for (int i = 0; i < n; ++i) KEEL_RETURN_IF_ERROR(one(txn, i));
      return OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

void RawSql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg << " in: " << sql;
}

std::string LogicalDump(const std::string& dir) {
  std::ostringstream out;
  sqlite3* db = nullptr;
  std::string path = dir + "/keel.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "ERROR: open";
  }
  for (const char* table : {"meta", "ledger", "artifacts", "checkpoints"}) {
    std::string sql = std::string("SELECT * FROM ") + table + " ORDER BY rowid";
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return std::string("ERROR: prepare ") + table;
    }
    out << "[" << table << "]\n";
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        int t = sqlite3_column_type(st, c);
        out << t << ":";
        if (t == SQLITE_INTEGER) {
          out << sqlite3_column_int64(st, c);
        } else if (t == SQLITE_FLOAT) {
          out << sqlite3_column_double(st, c);
        } else if (t != SQLITE_NULL) {
          const void* p = sqlite3_column_blob(st, c);
          int n = sqlite3_column_bytes(st, c);
          out << n << ":" << ToHex(static_cast<const uint8_t*>(p), static_cast<size_t>(n));
        }
        out << "|";
      }
      out << "\n";
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
      sqlite3_close(db);
      return std::string("ERROR: step ") + table;
    }
  }
  sqlite3_close(db);
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/artifacts")) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) out << f.substr(dir.size()) << "=" << Sha256Hex(ReadFileOrDie(f)) << "\n";
  return out.str();
}

void CopyTree(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

}  // namespace keel::testing
