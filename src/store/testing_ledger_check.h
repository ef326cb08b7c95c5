// Consistency checks and the SIGKILL loop shared by the durability, crash and slow tests
// (tests only). The chain check recomputes every hash itself (it does not use `keel verify`).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store::testing {

// Walks the whole ledger: seqs 1..N without gaps, each prev_hash equal to the previous
// entry's hash (zeros for the first), each hash equal to ComputeEntryHash. Returns N, or
// DataLoss naming the first bad seq.
Result<int64_t> CheckLedgerChain(Workspace& ws);
// SQLite's integrity check of the file returns "ok".
Status CheckIntegrity(Workspace& ws);
// Every artifact referenced by a ledger entry has a row and a file whose content matches
// its hash. Returns how many distinct artifacts were checked.
Result<int64_t> CheckReferencedArtifacts(Workspace& ws);
// Row counts agree with the ledger: one artifacts row per artifact.put entry.
Status CheckRowCounts(Workspace& ws);
// All four checks.
Status CheckWorkspace(Workspace& ws);

struct KillLoopOptions {
  int kills = 200;
  uint64_t seed = 1;
  int min_delay_ms = 20;  // after the first acknowledgement (or start, see below)
  int max_delay_ms = 50;
  bool artifacts = false;  // run `keel debug append --artifacts`
  int batch = 1;
};
// Starts `keel debug append` in a fresh workspace `kills` times, SIGKILLs it after a
// seeded random delay (some kills land during start-up, most while appending), reopens the
// workspace after each kill and checks: chain, integrity, referenced artifacts, and that
// every acknowledged seq is present with kind debug.append. Reports with gtest assertions.
// Returns the total number of acknowledged entries.
int64_t RunKillLoop(const std::string& ws_dir, const KillLoopOptions& opts);

}  // namespace keel::store::testing
