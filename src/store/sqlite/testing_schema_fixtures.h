// Schema fixtures (tests only; docs/testing.md, "Schema fixtures"): one small workspace per
// released schema version, as a keel of that version wrote it, kept forever under
// tests/fixtures/schema/vN/. store/sqlite/schema_fixtures_test.cc opens each with the current code
// (which migrates it) and checks that nothing was lost.
//
// A fixture is made through the normal store code with the schema capped at its version
// (ScopedSchemaVersionLimit), on a simulated clock and seeded randomness, and filled with
// rows for every table that exists at that version. Each migration has a Fill step here
// that writes rows for the tables it added, and a Check step that reads them back through
// the store API; a new migration adds both (the test fails for a version whose tables are
// left empty).
//
// Thread-safety: not thread-safe (the schema cap is process-wide).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store::testing {

// tests/fixtures/schema in the source tree.
std::string SchemaFixturesDir();
// SchemaFixturesDir()/v<version>.
std::string SchemaFixtureDir(int version);

// The newest version that has a Fill step (a fixture can be made up to it).
int NewestFixtureVersion();

// Creates a workspace at schema `version` in `dir` (which must not exist) and fills it.
// The result holds keel.yaml, keel.db (WAL folded in, no -wal/-shm), artifacts/,
// checkpoints.log and keys/ (snapshots/ is left out: it is empty). InvalidArgument for a
// version with no Fill step.
Status WriteSchemaFixture(const std::string& dir, int version);

// Copies the fixture folder `from` to `to` (created) and gives keys/ and its files the modes
// keel requires (0700, 0600), which git does not keep.
Status CopyFixture(const std::string& from, const std::string& to);

// Reads back, through the store API, every row that WriteSchemaFixture(version) wrote, in a
// workspace that may since have been migrated. The first difference as FailedPrecondition.
Status CheckSchemaFixtureRows(Workspace& ws, int version);

// Tables (not indexes, not SQLite's or FTS5's internal ones) that hold no row.
Result<std::vector<std::string>> EmptyTables(Workspace& ws);

// The schema as SQLite stores it: one line per object, "type name: sql" with whitespace
// runs collapsed, sorted; plus "user_version N".
Result<std::vector<std::string>> SchemaOf(const std::string& db_path);

}  // namespace keel::store::testing
