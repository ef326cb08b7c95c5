#include "store/sqlite/database.h"

#include <sqlite3.h>
#include <unistd.h>

#include "store/sqlite/sql.h"

namespace keel::store::sql {

Status InitNewDatabase(Db* db, int page_size) {
  return db->Exec("PRAGMA page_size = " + std::to_string(page_size) +
                  "; PRAGMA auto_vacuum = INCREMENTAL");
}

Status ApplyConnectionSettings(Db* db, bool read_only) {
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON"));
  // The ledger's indexes (kind, time, subject) take inserts all over their b-trees; with
  // SQLite's default 2 MiB page cache a large ledger re-reads index pages on every batch.
  // Memory-mapped reads skip a copy per page. Both are upper bounds, not allocations.
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA cache_size = -65536"));
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA mmap_size = 268435456"));
  if (read_only) return OkStatus();
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode = WAL"));
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous = FULL"));
  // 32 MiB of page cache (default 2 MiB): a worker advancing thousands of runs per round
  // otherwise re-reads the same pages from the file in every transaction.
  KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA cache_size = -32768"));
  return OkStatus();
}

void PreferMappedReads(Db* db) {
  db->Exec("PRAGMA mmap_size = 4294967296").IgnoreError();
}

Result<int64_t> DatabaseBytes(Db* db) {
  KEEL_ASSIGN_OR_RETURN(int64_t pages, db->QueryInt("PRAGMA page_count"));
  KEEL_ASSIGN_OR_RETURN(int64_t size, db->QueryInt("PRAGMA page_size"));
  return pages * size;
}

Result<std::string> IntegrityCheck(Db* db) {
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("PRAGMA integrity_check"));
  std::string first;
  for (;;) {
    auto row = st->Step();
    if (!row.ok()) {
      first = row.status().message();  // a check cut short (unreadable page) is its finding
      break;
    }
    if (!*row) break;
    std::string msg = st->Text(0);
    if (msg != "ok" && first.empty()) first = msg;
  }
  return first.empty() ? std::string("ok") : first;
}

Status BackupDatabase(const std::string& src_path, const std::string& dst_path) {
  KEEL_ASSIGN_OR_RETURN(auto src, Db::Open(src_path, OpenOptions{}));
  OpenOptions o;
  o.create = true;
  KEEL_ASSIGN_OR_RETURN(auto dst, Db::Open(dst_path, o));
  for (int attempt = 0;; ++attempt) {
    sqlite3_backup* b = sqlite3_backup_init(dst->raw(), "main", src->raw(), "main");
    if (b == nullptr) return dst->Error(sqlite3_errcode(dst->raw()), "starting the backup");
    int rc = sqlite3_backup_step(b, -1);
    int fin = sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE && fin == SQLITE_OK) break;
    if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && attempt < 100) {
      ::usleep(100000);
      continue;
    }
    return dst->Error(rc == SQLITE_DONE ? fin : rc, "backing up " + src_path);
  }
  // One self-contained file: no -wal beside it in the snapshot.
  return dst->Exec("PRAGMA journal_mode = DELETE");
}

Status AttachDatabase(Db* db, const std::string& path, const std::string& alias) {
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("ATTACH DATABASE ? AS " + alias));
  st->Bind(1, path);
  return st->Run();
}

Status DetachDatabase(Db* db, const std::string& alias) {
  return db->Exec("DETACH DATABASE " + alias);
}

Status DeferForeignKeys(Db* db) {
  return db->Exec("PRAGMA defer_foreign_keys = ON");
}

}  // namespace keel::store::sql
