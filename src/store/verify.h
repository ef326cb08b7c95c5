// keel verify: recomputes everything the workspace claims about itself
// (docs/ledger-format.md, "What keel verify checks").
//
// - the ledger: seq without gaps, each prev_hash linking to the previous entry's hash, each
//   hash equal to SHA-256 of the recomputed canonical encoding; the first bad entry is named;
// - artifacts: every artifact an entry references exists and re-hashes to its address, every
//   file under artifacts/ re-hashes to its name, and each metadata row matches its
//   `artifact.put` entry;
// - signed checkpoints (table and checkpoints.log): signature by the workspace key, Merkle
//   root recomputed over the first tree_size entries, tree_size not beyond the ledger's end
//   (a truncated tail or an older database put back), table and log agreeing;
// - the state tables (store/state.h): every row of a covered table equals the last image
//   the ledger holds for it, every row the ledger says exists is there, and the full-text
//   index holds exactly the active facts; a difference names the table, the row and the
//   ledger entry it contradicts;
// - SQLite's own integrity check (store/sqlite/database.h).
//
// The database is opened read-only and read in one read transaction (a consistent snapshot
// while other processes write). Hashing runs on a second thread beside the SQLite scan.
//
// Thread-safety: a free function; opens its own connection.
// Errors: the returned Status is non-ok only when verification could not run at all
// (NotFound: no workspace; PermissionDenied). Damage of any kind, including a database file
// SQLite cannot read, is reported in VerifyReport::problems.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace keel::store {

struct VerifyOptions {
  bool integrity_check = true;  // SQLite's integrity check: O(database size)
  bool artifacts = true;        // re-hash artifact files: O(total artifact bytes)
  bool state = true;            // every state-table row against its last image in the ledger
};

struct VerifyReport {
  int64_t entries_checked = 0;
  int64_t first_bad_seq = 0;     // 0: every entry checked out
  std::string first_bad_reason;  // what differs at first_bad_seq
  int64_t artifacts_referenced = 0;
  int64_t artifact_files_checked = 0;
  int64_t artifact_rows_checked = 0;
  int64_t checkpoints_checked = 0;  // distinct checkpoints (table and log together)
  int64_t last_checkpoint_size = 0;
  int64_t state_images = 0;           // row images in the ledger
  int64_t state_rows_checked = 0;     // rows of the state tables compared with them
  std::string integrity = "skipped";  // "ok", or SQLite's first complaint
  // Empty when everything verified. problems[0] is the most important finding: the first bad
  // entry if there is one.
  std::vector<std::string> problems;
  // Findings that are not damage: an orphan artifact file from an interrupted put, a
  // checkpoint logged by a checkpoint whose commit was interrupted, no checkpoint yet.
  std::vector<std::string> notes;
  double seconds = 0;
  bool ok() const { return problems.empty(); }
};

Result<VerifyReport> VerifyWorkspace(const std::string& dir, const VerifyOptions& opts,
                                     const Env& env);

}  // namespace keel::store
