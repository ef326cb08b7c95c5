// INTERNAL to src/store: versioned schema migrations.
//
// The schema version lives in PRAGMA user_version. Migrations run in order inside one
// transaction each; a database whose version is newer than this build knows is refused
// (FailedPrecondition), never "upgraded" or written. Every released version has a fixture
// database in tests/fixtures/ that the migration test opens and upgrades.
#pragma once

#include "core/status.h"

namespace keel::store {
namespace sql {
class Db;
}

// The schema version this build writes.
int CurrentSchemaVersion();

// The schema version stored in `db` (0: no keel schema yet). Reading it is also the first
// read of the file: an error here means the file is not a database (DataLoss).
Result<int64_t> StoredSchemaVersion(sql::Db* db);

// Brings `db` to CurrentSchemaVersion().
Status Migrate(sql::Db* db);

// Tests only: the schema fixture generator (store/sqlite/testing_schema_fixtures.h) makes
// workspaces as an older keel wrote them. While one of these is alive, this process behaves
// as a keel whose newest migration is `version`: CurrentSchemaVersion() returns it and
// Migrate stops there. Not for concurrent use with opens on other threads.
class ScopedSchemaVersionLimit {
 public:
  explicit ScopedSchemaVersionLimit(int version);
  ~ScopedSchemaVersionLimit();
  ScopedSchemaVersionLimit(const ScopedSchemaVersionLimit&) = delete;
  ScopedSchemaVersionLimit& operator=(const ScopedSchemaVersionLimit&) = delete;

 private:
  int previous_;
};

}  // namespace keel::store
