// Signed ledger checkpoints (docs/ledger-format.md, "Signed checkpoints").
//
// A checkpoint commits to the first tree_size ledger entries with an RFC 6962 Merkle root,
// signed with the workspace's Ed25519 key (keys/ledger.ed25519, created on the first
// checkpoint). It is appended and fsynced to checkpoints.log (outside the database) before
// its row and its `ledger.checkpoint` entry commit, so a database that is truncated or put
// back to an older copy still meets a checkpoint it cannot match.
//
// A checkpoint covers the entries *before* it: the `ledger.checkpoint` entry that records a
// checkpoint of tree_size n has seq n + 1 and is covered by the next checkpoint.
//
// Thread-safety: as Workspace (each call is one Workspace::Write).
// Errors: FailedPrecondition (read-only workspace), DataLoss (the ledger no longer matches
// an earlier checkpoint: keel refuses to sign over tampering; a failed fsync of the log),
// PermissionDenied / NotFound (key file), Unavailable (disk full, database locked).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"
#include "core/status.h"
#include "store/merkle.h"

namespace keel::store {

class Workspace;

using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

struct CheckpointInfo {
  int64_t tree_size = 0;
  Digest root{};
  int64_t time_us = 0;
  PublicKey public_key{};
  Signature signature{};
};

inline constexpr char kCheckpointLogFile[] = "checkpoints.log";
inline constexpr char kLedgerKeyFile[] = "ledger.ed25519";            // in keys/, mode 0600
inline constexpr char kLedgerPublicKeyFile[] = "ledger.ed25519.pub";  // in keys/, mode 0600

// The exact text that is signed (five lines, each ending in '\n').
std::string CheckpointStatement(const std::string& workspace_id, const CheckpointInfo& c);
// One checkpoints.log line, with its trailing '\n'.
std::string FormatCheckpointLine(const CheckpointInfo& c);
// Parses one line (without its '\n'). InvalidArgument says which field is wrong.
Result<CheckpointInfo> ParseCheckpointLine(std::string_view line);
// True iff `c.signature` is a valid signature of the statement by `key`.
bool CheckpointSignatureValid(const std::string& workspace_id, const CheckpointInfo& c,
                              const PublicKey& key);

// Takes a checkpoint over every entry now in the ledger, in one Workspace::Write.
Result<CheckpointInfo> Checkpoint(Workspace& ws);
// Takes one only if ledger.checkpoint_every entries were appended since the last one;
// nullopt otherwise. Workspace::Write calls this after a commit that makes one due.
Result<std::optional<CheckpointInfo>> CheckpointIfDue(Workspace& ws);

// The workspace's checkpoint public key: keys/ledger.ed25519.pub, or derived from the
// secret key if only that exists. NotFound if neither exists (no checkpoint ever taken);
// DataLoss if the two disagree or a file is malformed.
Result<PublicKey> LoadLedgerPublicKey(const Workspace& ws);

// The checkpoints recorded in the `checkpoints` table, by tree_size. INTERNAL to src/store
// (verify); callers must hold ws.mu().
Result<std::vector<CheckpointInfo>> ReadCheckpointRows(Workspace& ws);

// Parsed checkpoints.log. A final line without '\n' is an append cut short by a crash
// (`torn_tail`), not an error; any other unparseable line is listed in `bad_lines`.
struct CheckpointLog {
  bool exists = false;
  std::vector<CheckpointInfo> entries;
  std::vector<int> line_numbers;  // 1-based, parallel to entries
  std::vector<std::string> bad_lines;
  bool torn_tail = false;
};
Result<CheckpointLog> ReadCheckpointLog(const Workspace& ws);

// In-memory state kept by a Workspace so that automatic checkpoints cost O(1) per commit and
// O(new entries) per checkpoint. INTERNAL to src/store.
struct CheckpointState {
  bool loaded = false;
  int64_t next_due = 0;  // auto-checkpoint once the ledger reaches this size
  // Merkle compact range over the first frontier.size() entries, all of them already
  // checked against every earlier checkpoint.
  std::optional<MerkleTreeBuilder> frontier;
  Status last_error;  // of the last automatic checkpoint (the write itself had committed)
};

}  // namespace keel::store
