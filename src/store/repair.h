// keel verify --repair-from-ledger: rebuilds a workspace's state tables from the row images
// its ledger holds (store/state.h), into a new workspace folder, and verifies the result.
// For an operator whose database was edited behind keel's back and who has no snapshot
// from before the edit (docs/ledger-format.md, "Repair from the ledger").
//
// The ledger must be intact: every entry re-hashes and links, and every signed checkpoint
// matches. The new folder gets the same keel.yaml, keys, checkpoints.log, workflows and
// every artifact whose content still hashes to its name; its database holds the same
// ledger and checkpoints, and each covered table's rows as the last image says. Columns
// left out of the images (store/state.h LeftOut) are taken from the damaged row when it
// still exists, else they get the registry's repair value. A column covered by digest (the
// vault's sealed values) is taken from the damaged row only when it still matches.
//
// Thread-safety: a free function; opens its own connections. The damaged workspace is only
// read. Errors: NotFound (no workspace at `src_dir`), AlreadyExists (`dst_dir` is not empty),
// InvalidArgument (`dst_dir` is a file, or inside the workspace), FailedPrecondition (the ledger
// itself is damaged: restore a snapshot instead), and the store's I/O errors; a failure leaves
// `dst_dir` removed if this call created it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "store/verify.h"

namespace keel::store {

struct RepairReport {
  std::string dst_dir;
  std::vector<std::string> damage;      // what verify found in the damaged workspace
  std::map<std::string, int64_t> rows;  // rows written per table
  std::vector<std::string> notes;       // what could not be restored as it was
  int64_t artifacts_copied = 0;
  VerifyReport verify;  // of the new workspace
};

Result<RepairReport> RepairFromLedger(const std::string& src_dir, const std::string& dst_dir,
                                      const Env& env);

}  // namespace keel::store
