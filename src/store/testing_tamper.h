// Test helpers for integrity tests (linked only into tests): a populated workspace, raw
// SQL that bypasses keel (and its triggers) the way someone editing keel.db would, and a
// logical dump of everything verify vouches for.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/env.h"
#include "store/workspace.h"

namespace keel::testing {

// Creates a workspace in `dir` with ledger.checkpoint_every = `checkpoint_every`.
std::unique_ptr<store::Workspace> MakeWorkspace(const std::string& dir, const Env& env,
                                                int64_t checkpoint_every);

// Appends `n` entries (one Write each when `single`, else one Write for all), every
// `artifact_every`-th one putting a small artifact (0 = none).
void AppendEntries(store::Workspace& ws, int n, bool single, int artifact_every = 0);

// Runs `sql` on the database file directly with the sqlite3 C API (no triggers dropped
// unless the SQL does it). Fails the test on error.
void RawSql(const std::string& db_path, const std::string& sql);

// Every row of meta, ledger, artifacts and checkpoints with their SQLite storage classes,
// plus every file under artifacts/ (name and bytes). "ERROR: ..." if SQLite cannot read it.
std::string LogicalDump(const std::string& workspace_dir);

// Copies a folder tree (files and sub-folders).
void CopyTree(const std::string& from, const std::string& to);

}  // namespace keel::testing
