#include "store/sqlite/testing_tamper.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/verify.h"

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
        .Append({"operator",
                 "test.entry",
                 "lead_" + std::to_string(i % 7),
                 "",
                 "",
                 CanonicalJson(payload),
                 {}})
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
  for (const auto& f : files)
    out << f.substr(dir.size()) << "=" << Sha256Hex(ReadFileOrDie(f)) << "\n";
  return out.str();
}

void CopyTree(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

}  // namespace keel::testing

namespace keel::testing {
namespace {

store::WorkspaceOpenOptions ReadOnly() {
  store::WorkspaceOpenOptions o;
  o.read_only = true;
  return o;
}

namespace fs = std::filesystem;

bool Detected(const std::string& dir, std::string* first) {
  auto r = store::VerifyWorkspace(dir, store::VerifyOptions{}, Env{});
  if (!r.ok()) {
    *first = "verify error: " + r.status().ToString();
    return true;  // verify refusing to run on the damaged file counts as detection
  }
  if (!r->problems.empty()) *first = r->problems[0];
  return !r->ok();
}

void FreshCopy(const std::string& pristine, const std::string& scratch) {
  fs::remove_all(scratch);
  CopyTree(pristine, scratch);
}

void FlipByte(const std::string& path, uint64_t pos, uint8_t mask) {
  fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(pos));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ mask);
  f.seekp(static_cast<std::streamoff>(pos));
  f.write(&c, 1);
}

void Record(TamperCounts* t, bool changed, bool detected, const std::string& what) {
  ++t->trials;
  if (changed) {
    ++t->changed;
    if (detected) {
      ++t->detected_changed;
    } else {
      t->misses.push_back(what);
    }
  } else {
    ++t->unchanged;
    if (detected) ++t->detected_unchanged;
  }
}

}  // namespace

void BuildTamperWorkspace(const std::string& dir, const Env& env, int entries) {
  auto ws = MakeWorkspace(dir, env, 40);
  ASSERT_NE(ws, nullptr);
  AppendEntries(*ws, entries / 2, true, 9);
  AppendEntries(*ws, entries - entries / 2, false, 11);
  auto c = store::Checkpoint(*ws);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ws.reset();  // the last connection folds the WAL into keel.db and removes it
  ASSERT_FALSE(fs::exists(dir + "/keel.db-wal") && fs::file_size(dir + "/keel.db-wal") > 0);
  auto r = store::VerifyWorkspace(dir, store::VerifyOptions{}, env);
  ASSERT_TRUE(r.ok() && r->ok()) << (r.ok() && !r->ok() ? r->problems[0] : "");
  fs::remove(dir + "/keel.db-shm");
  fs::remove(dir + "/keel.db-wal");
}

TamperCounts RunByteFlips(const std::string& pristine, const std::string& scratch, int trials,
                          uint64_t seed) {
  TamperCounts t;
  SeededRandom rnd(seed);
  const std::string before = LogicalDump(pristine);
  std::vector<std::string> artifacts;
  for (const auto& e : fs::recursive_directory_iterator(pristine + "/artifacts")) {
    if (e.is_regular_file()) artifacts.push_back(e.path().string().substr(pristine.size()));
  }
  std::sort(artifacts.begin(), artifacts.end());
  // One copy; each trial damages one file and restores it afterwards (copying the whole
  // folder per trial is dominated by the file system's metadata work).
  FreshCopy(pristine, scratch);
  for (int i = 0; i < trials; ++i) {
    std::string rel = "/keel.db";
    if (!artifacts.empty() && rnd.Uniform(10) == 0) rel = artifacts[rnd.Uniform(artifacts.size())];
    std::string path = scratch + rel;
    uint64_t pos = rnd.Uniform(fs::file_size(path));
    uint8_t mask = static_cast<uint8_t>(1u << rnd.Uniform(8));
    FlipByte(path, pos, mask);
    // LogicalDump names artifact files relative to the workspace, so copies compare.
    bool changed = LogicalDump(scratch) != before;
    std::string first;
    bool detected = Detected(scratch, &first);
    char what[200];
    std::snprintf(what, sizeof what, "flip %s byte %llu mask 0x%02x", rel.c_str(),
                  static_cast<unsigned long long>(pos), mask);
    Record(&t, changed, detected, what);
    FlipByte(path, pos, mask);  // restore
    fs::remove(scratch + "/keel.db-wal");
    fs::remove(scratch + "/keel.db-shm");
  }
  EXPECT_EQ(LogicalDump(scratch), before) << "the scratch copy drifted from the original";
  fs::remove_all(scratch);
  return t;
}

TamperCounts RunStructuralMutations(const std::string& pristine, const std::string& scratch,
                                    int trials, uint64_t seed) {
  TamperCounts t;
  SeededRandom rnd(seed);
  int64_t n = 0, last_checkpoint = 0;
  {
    auto ws = store::Workspace::Open(pristine, ReadOnly(), Env{});
    EXPECT_TRUE(ws.ok());
    if (!ws.ok()) return t;
    n = *(*ws)->LedgerSize();
    auto cps = (*ws)->QueryLedger({"", "ledger.checkpoint", "", "", 0, 0, 0, 0, false});
    last_checkpoint = cps->empty() ? 0 : cps->back().seq - 1;
  }
  for (int i = 0; i < trials; ++i) {
    FreshCopy(pristine, scratch);
    std::string db = scratch + "/keel.db";
    int kind = i % 5;
    std::string what;
    int64_t a = 1 + static_cast<int64_t>(rnd.Uniform(static_cast<uint64_t>(n)));
    int64_t b = 1 + static_cast<int64_t>(rnd.Uniform(static_cast<uint64_t>(n)));
    if (a == b) b = a == n ? a - 1 : a + 1;
    switch (kind) {
      case 0:
        what = "delete entry " + std::to_string(a);
        RawSql(db, "DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE seq = " +
                       std::to_string(a));
        break;
      case 1:
        what = "swap entries " + std::to_string(a) + " and " + std::to_string(b);
        RawSql(db,
               "DROP TRIGGER ledger_no_update; CREATE TEMP TABLE t AS SELECT * FROM ledger "
               "WHERE seq IN (" +
                   std::to_string(a) + "," + std::to_string(b) +
                   "); UPDATE ledger SET (time_us, actor, kind, subject, run_id, step_id, "
                   "payload, artifacts, prev_hash, hash) = (SELECT time_us, actor, kind, "
                   "subject, run_id, step_id, payload, artifacts, prev_hash, hash FROM t "
                   "WHERE t.seq = " +
                   std::to_string(a + b) + " - ledger.seq) WHERE seq IN (" + std::to_string(a) +
                   "," + std::to_string(b) + ");");
        break;
      case 2: {
        // Truncate the tail, and remove the checkpoint rows that would give it away inside
        // the database: only checkpoints.log outside it still knows.
        int64_t keep = n - 1 - static_cast<int64_t>(rnd.Uniform(static_cast<uint64_t>(n / 2)));
        what = "truncate to " + std::to_string(keep) + " entries";
        RawSql(db,
               "DROP TRIGGER ledger_no_delete; DROP TRIGGER checkpoints_no_delete; "
               "DELETE FROM ledger WHERE seq > " +
                   std::to_string(keep) +
                   "; DELETE FROM checkpoints WHERE tree_size >= " + std::to_string(keep) +
                   "; DELETE FROM artifacts WHERE ledger_seq > " + std::to_string(keep) + ";");
        break;
      }
      case 3: {
        // An older copy of the database put back after more entries and a checkpoint.
        fs::copy_file(db, scratch + "/old.db");
        {
          auto ws = store::Workspace::Open(scratch, {}, Env{});
          EXPECT_TRUE(ws.ok());
          if (!ws.ok()) break;
          AppendEntries(**ws, 1 + static_cast<int>(rnd.Uniform(5)), true);
          EXPECT_TRUE(store::Checkpoint(**ws).ok());
        }
        fs::remove(db + "-wal");
        fs::remove(db + "-shm");
        fs::copy_file(scratch + "/old.db", db, fs::copy_options::overwrite_existing);
        fs::remove(scratch + "/old.db");
        what = "older database put back";
        break;
      }
      case 4: {
        // A forger edits one covered entry and re-hashes the chain after it.
        int64_t k = 1 + static_cast<int64_t>(rnd.Uniform(static_cast<uint64_t>(last_checkpoint)));
        what = "edit entry " + std::to_string(k) + " and re-hash the chain";
        std::vector<store::LedgerEntry> es;
        {
          auto ws = store::Workspace::Open(scratch, ReadOnly(), Env{});
          EXPECT_TRUE(ws.ok());
          if (!ws.ok()) break;
          es = *(*ws)->QueryLedger({});
        }
        std::string sql = "DROP TRIGGER ledger_no_update;";
        std::string scratch_buf;
        for (size_t j = static_cast<size_t>(k - 1); j < es.size(); ++j) {
          if (j == static_cast<size_t>(k - 1)) es[j].time_us += 1;
          if (j > 0) es[j].prev_hash = es[j - 1].hash;
          es[j].hash = store::ComputeEntryHash(es[j], &scratch_buf);
          sql += "UPDATE ledger SET time_us = " + std::to_string(es[j].time_us) +
                 ", prev_hash = x'" + ToHex(es[j].prev_hash) + "', hash = x'" + ToHex(es[j].hash) +
                 "' WHERE seq = " + std::to_string(es[j].seq) + ";";
        }
        RawSql(db, sql);
        break;
      }
    }
    std::string first;
    bool detected = Detected(scratch, &first);
    Record(&t, true, detected, what);
  }
  fs::remove_all(scratch);
  return t;
}

}  // namespace keel::testing
