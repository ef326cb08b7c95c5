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

// Brings `db` to CurrentSchemaVersion(). `created_now` is true for a new, empty database.
Status Migrate(sql::Db* db);

}  // namespace keel::store
