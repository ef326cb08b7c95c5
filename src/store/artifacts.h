// Artifacts: immutable, content-addressed blobs (drafts, notes, prompts, model responses,
// invoices, raw pages). Content lives in artifacts/<first 2 hex>/<64 hex>; metadata (media
// type, parent, name) in the database with an `artifact.put` ledger entry.
//
// Permissions: content files are 0400 (owner-only, immutable) in 0700 shard folders
// (docs/architecture.md, "Permissions").
//
// Crash safety: the content file is written and made durable (temp file, fsync, rename,
// fsync of the folder) before the metadata row and ledger entry are inserted, so a committed
// entry never references a missing file. A crash in between leaves at most an orphan file,
// which a later Put of the same content rewrites. The shard folder (artifacts/<2 hex>/) is
// synced into artifacts/ once per process before the first file in it is relied on. A
// failed fsync stops the workspace's writes (Workspace::StopWrites).
//
// Errors: InvalidArgument (not a 64-hex address, over kMaxArtifactBytes, unknown parent),
// NotFound, DataLoss (content does not match its address; fsync failed, writes stopped),
// Unavailable (disk full: nothing was kept, retry once space is freed).
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

inline constexpr uint64_t kMaxArtifactBytes = 64ull * 1024 * 1024;

struct ArtifactInfo {
  std::string hash;  // 64 lowercase hex
  uint64_t size = 0;
  std::string media_type;
  std::string parent;  // empty for a first version
  std::string name;    // optional label (file name, "draft v2")
  int64_t created_us = 0;
  int64_t ledger_seq = 0;
};

struct PutArtifactOptions {
  std::string media_type = "application/octet-stream";
  std::string parent;  // the previous version, if this is a new version
  std::string name;
  std::string actor = "operator";
  std::string run_id;
  std::string step_id;
};

// Stores `content` in the transaction. Putting content that is already stored returns the
// existing info and appends nothing: an artifact is immutable, so its media type, name and
// parent stay as first stored (compare the returned parent with the one asked for).
// Errors: InvalidArgument for content over kMaxArtifactBytes, a malformed media type or
// name, or a parent that is not a stored artifact's address (checked even when the content
// is already stored); the disk's errors from writing the file.
Result<ArtifactInfo> PutArtifact(Txn& txn, std::string_view content,
                                 const PutArtifactOptions& opts);

// Reads and re-hashes the content; DataLoss if the file does not match its address.
Result<std::string> GetArtifact(Workspace& ws, const std::string& hash);
Result<ArtifactInfo> GetArtifactInfo(Workspace& ws, const std::string& hash);
// The artifact and its ancestors, newest first (walks `parent` links).
Result<std::vector<ArtifactInfo>> ArtifactLineage(Workspace& ws, const std::string& hash);
// The artifacts whose parent is `hash`.
Result<std::vector<ArtifactInfo>> ArtifactChildren(Workspace& ws, const std::string& hash);
Result<std::vector<ArtifactInfo>> ListArtifacts(Workspace& ws);

// The shortest hash prefix ResolveArtifactPrefix accepts. Six hex characters take 16.7
// million values: in a workspace of 10,000 artifacts a given 6-character prefix names
// another artifact too with a chance of about 1 in 1,700, so listings print more (`keel
// facts` prints 12) and an ambiguous one is reported, never guessed.
inline constexpr size_t kMinArtifactPrefix = 6;

// The address of the one stored artifact whose hash starts with `prefix` (hex digits, either
// case; what an operator copies from a listing). A full 64-character address is returned
// lowercased without a lookup: GetArtifact and GetArtifactInfo then say if it is not stored.
// One range scan of the primary key's index (hash >= prefix AND hash < prefix + "g"),
// reading at most a few rows however many artifacts there are.
// Errors: InvalidArgument when `prefix` is not hex, shorter than kMinArtifactPrefix or longer
// than 64, or ambiguous (the message lists up to five candidates and asks for more
// characters); NotFound when no stored artifact starts with it.
Result<std::string> ResolveArtifactPrefix(Workspace& ws, std::string_view prefix);
// SQLite's plan for ResolveArtifactPrefix's lookup, one step per line (tests pin that it
// searches the primary key's index rather than scanning the table).
Result<std::string> ExplainArtifactPrefixLookup(Workspace& ws);

// The content path of `hash` (which must be a valid address) inside `artifacts_dir`.
std::string ArtifactPath(const std::string& artifacts_dir, const std::string& hash);

}  // namespace keel::store
