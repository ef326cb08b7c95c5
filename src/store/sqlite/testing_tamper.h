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

namespace keel::testing {

struct TamperCounts {
  int trials = 0;
  int changed = 0;           // trials whose logical content differs from the original
  int detected_changed = 0;  // ... and that verify reported
  int unchanged = 0;
  int detected_unchanged = 0;
  std::vector<std::string> misses;  // changed but not detected: must stay empty
};

// Builds the workspace the tamper campaigns start from in `dir`: entries, artifacts,
// automatic checkpoints, ending with a checkpoint, closed (WAL folded into keel.db).
void BuildTamperWorkspace(const std::string& dir, const Env& env, int entries);

// `trials` single-byte flips at seeded random positions of keel.db (90%) or an artifact
// file (10%), each on a fresh copy of `pristine` made in `scratch`.
TamperCounts RunByteFlips(const std::string& pristine, const std::string& scratch, int trials,
                          uint64_t seed);

// `trials` structural mutations, cycling through: a deleted entry, two entries swapped, a
// truncated tail, an older copy of the database put back, an entry edited with the chain
// re-hashed after it (a forger without the key). Every one changes content.
TamperCounts RunStructuralMutations(const std::string& pristine, const std::string& scratch,
                                    int trials, uint64_t seed);

}  // namespace keel::testing
