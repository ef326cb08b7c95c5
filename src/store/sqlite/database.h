// INTERNAL to src/store: the SQLite settings and whole-database operations the store needs,
// behind plain functions so that repositories run no PRAGMA and call no SQLite API
// (docs/architecture.md, "Store"). A PostgreSQL backend has its own answer to each: server
// settings, pg_database_size, amcheck, pg_dump.
//
// Errors: those of the statement wrapper (sql.h); BackupDatabase also returns Unavailable
// when the source stays locked for about ten seconds.
//
// Thread-safety: as the Db passed in (one thread at a time); BackupDatabase opens its own
// connections.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace keel::store::sql {

class Db;

// Before the first table of a new database: its page size (fixed per file from then on)
// and incremental auto-vacuum (freed pages can be returned to the file system later).
Status InitNewDatabase(Db* db, int page_size);

// The settings every workspace connection runs with: foreign keys enforced, a larger page
// cache, memory-mapped reads and, unless `read_only`, WAL journaling with synchronous=FULL
// (with NORMAL an acknowledged commit can roll back after a power loss; docs/architecture.md,
// "Durability").
Status ApplyConnectionSettings(Db* db, bool read_only);

// Maps up to 4 GiB of the file for a connection that reads the whole database once
// (verify): saves a copy per page. Best effort: a failure only costs speed.
void PreferMappedReads(Db* db);

// The size of the database file in bytes (pages in use times the page size).
Result<int64_t> DatabaseBytes(Db* db);

// SQLite's own consistency check of the file (b-trees, indexes, free list): "ok", or the
// first problem it reports (an error that stops the check half-way is reported the same
// way). An error only when the check could not start.
Result<std::string> IntegrityCheck(Db* db);

// Copies the database at `src_path` into a new single file at `dst_path` (no -wal beside
// it) with the online backup API, in one step: the source is read in one read transaction,
// so the copy is one committed state even while others write. Does not fsync `dst_path`.
Status BackupDatabase(const std::string& src_path, const std::string& dst_path);

// Repair (store/repair.cc): attaches the database at `path` as `alias`, to be read with
// `alias.table` in the same transactions, and defers foreign-key checks of the open
// transaction to its commit (rows are rebuilt in any order).
Status AttachDatabase(Db* db, const std::string& path, const std::string& alias);
Status DetachDatabase(Db* db, const std::string& alias);
Status DeferForeignKeys(Db* db);

}  // namespace keel::store::sql
