#include "store/artifacts.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/crash_point.h"
#include "core/json.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

Status CheckAddress(const std::string& hash) {
  if (!IsDigestHex(hash)) {
    // Built by appending: g++ 12 at -O3 reports a false -Wrestrict for "'" + string&&.
    std::string msg = "'";
    msg += hash.substr(0, 80);
    msg += "' is not an artifact address (64 lowercase hex characters)";
    return InvalidArgument(msg);
  }
  return OkStatus();
}

ArtifactInfo ReadInfo(const sql::Stmt& st) {
  ArtifactInfo a;
  a.hash = st.Text(0);
  a.size = static_cast<uint64_t>(st.Int(1));
  a.media_type = st.Text(2);
  a.parent = st.IsNull(3) ? "" : st.Text(3);
  a.name = st.Text(4);
  a.created_us = st.Int(5);
  a.ledger_seq = st.Int(6);
  return a;
}

constexpr char kInfoColumns[] =
    "SELECT hash, size, media_type, parent, name, created_us, ledger_seq FROM artifacts";

Result<std::optional<ArtifactInfo>> FindInfo(sql::Db* db, const std::string& hash) {
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare(std::string(kInfoColumns) + " WHERE hash = ?"));
  st->Bind(1, hash);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<ArtifactInfo>();
  return std::optional<ArtifactInfo>(ReadInfo(*st));
}

bool ValidMediaType(const std::string& m) {
  if (m.empty() || m.size() > 255) return false;
  auto slash = m.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == m.size()) return false;
  for (char c : m) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Hashes in [prefix, prefix + "g") start with `prefix`: every stored hash is lowercase hex,
// and 'g' sorts after '0'-'9' and 'a'-'f'. A range on the primary key, so SQLite searches
// its index; LIKE or substr() would scan the whole table.
constexpr char kPrefixLookup[] =
    "SELECT hash FROM artifacts WHERE hash >= ? AND hash < ? ORDER BY hash LIMIT ?";
constexpr int kShownCandidates = 5;

}  // namespace

Result<std::string> ResolveArtifactPrefix(Workspace& ws, std::string_view prefix_in) {
  std::string prefix(prefix_in);
  for (char& c : prefix) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      std::string msg = "'";
      msg += std::string(prefix_in.substr(0, 80));
      msg += "' is not an artifact address or a prefix of one (hex digits 0-9, a-f)";
      return InvalidArgument(msg);
    }
  }
  if (prefix.size() > 64) {
    return InvalidArgument("'" + prefix.substr(0, 80) +
                           "...' is longer than an artifact address (64 hex characters)");
  }
  if (prefix.size() == 64) return prefix;
  if (prefix.size() < kMinArtifactPrefix) {
    return InvalidArgument("artifact prefix '" + prefix + "' is too short: give at least " +
                           std::to_string(kMinArtifactPrefix) + " hex characters");
  }
  std::vector<std::string> found;
  {
    Reader rd(ws);
    KEEL_ASSIGN_OR_RETURN(auto st, rd.db()->Prepare(kPrefixLookup));
    st->Bind(1, prefix).Bind(2, prefix + "g").Bind(3, int64_t{kShownCandidates + 1});
    for (;;) {
      KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      found.push_back(st->Text(0));
    }
  }
  if (found.empty()) {
    return NotFound("no stored artifact's address starts with " + prefix +
                    "; the ledger lists them: `keel ledger --kind artifact.put`");
  }
  if (found.size() == 1) return found[0];
  std::string msg = "artifact prefix " + prefix + " is ambiguous: ";
  msg += found.size() > kShownCandidates ? "more than " + std::to_string(kShownCandidates)
                                         : std::to_string(found.size());
  msg += " artifacts start with it (";
  for (size_t i = 0; i < found.size() && i < kShownCandidates; ++i) {
    if (i > 0) msg += ", ";
    // Enough characters to tell them apart in practice, short enough to read.
    msg += found[i].substr(0, std::max<size_t>(prefix.size() + 4, 16));
  }
  msg += "); give more characters";
  return InvalidArgument(msg);
}

Result<std::string> ExplainArtifactPrefixLookup(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto st,
                        rd.db()->Prepare(std::string("EXPLAIN QUERY PLAN ") + kPrefixLookup));
  st->Bind(1, "abcdef").Bind(2, "abcdefg").Bind(3, int64_t{kShownCandidates + 1});
  return sql::QueryPlanText(st.get());
}

std::string ArtifactPath(const std::string& artifacts_dir, const std::string& hash) {
  return JoinPath(JoinPath(artifacts_dir, hash.substr(0, 2)), hash);
}

Result<ArtifactInfo> PutArtifact(Txn& txn, std::string_view content,
                                 const PutArtifactOptions& opts) {
  if (content.size() > kMaxArtifactBytes) {
    return InvalidArgument("artifact of " + std::to_string(content.size()) +
                           " bytes exceeds the limit of " + std::to_string(kMaxArtifactBytes));
  }
  if (!ValidMediaType(opts.media_type)) {
    return InvalidArgument("media type '" + opts.media_type + "' is not of the form type/subtype");
  }
  if (opts.name.size() > 1024 || opts.name.find('\0') != std::string::npos) {
    return InvalidArgument("artifact name must be at most 1024 bytes with no NUL");
  }
  Workspace& ws = txn.workspace();
  sql::Db* db = txn.db();
  std::string hash = Sha256Hex(content);
  // The parent is checked first: a bad one is refused even when the content is stored.
  if (!opts.parent.empty()) {
    KEEL_RETURN_IF_ERROR(CheckAddress(opts.parent));
    KEEL_ASSIGN_OR_RETURN(auto parent, FindInfo(db, opts.parent));
    if (!parent) return InvalidArgument("parent artifact " + opts.parent + " does not exist");
  }
  KEEL_ASSIGN_OR_RETURN(auto existing, FindInfo(db, hash));
  if (existing) return *existing;

  FileSystem* fs = ws.env().fs;
  std::string dir = JoinPath(ws.artifacts_dir(), hash.substr(0, 2));
  std::string path = JoinPath(dir, hash);
  // A failed fsync means the disk can no longer be trusted: stop writing (workspace.h).
  auto stop_on_data_loss = [&ws](const Status& s) {
    if (s.code() == StatusCode::kDataLoss) ws.StopWrites(s);
    return s;
  };
  // The shard folder's entry must be durable before a file in it is. It may exist from a
  // process that crashed before syncing artifacts/, so each process syncs it once.
  if (!ws.DirKnownDurable(dir)) {
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(dir, kPrivateDirMode));
    KEEL_RETURN_IF_ERROR(stop_on_data_loss(fs->SyncDir(ws.artifacts_dir())));
    ws.NoteDirDurable(dir);
  }
  // Always (re)write the content, even when a file is already there: a file without a row
  // is an orphan of a crash, and its folder entry may never have been synced. Rewriting
  // costs one write in that rare case and makes the file durable whatever its history.
  KEEL_RETURN_IF_ERROR(stop_on_data_loss(WriteFileAtomic(fs, path, content, kPrivateReadOnlyMode)));
  KEEL_CRASH_POINT("artifact.after_file_before_row");

  ArtifactInfo info;
  info.hash = hash;
  info.size = content.size();
  info.media_type = opts.media_type;
  info.parent = opts.parent;
  info.name = opts.name;
  info.created_us = txn.now_us();
  nlohmann::json payload = {{"media_type", info.media_type}, {"size", info.size}};
  if (!info.parent.empty()) payload["parent"] = info.parent;
  if (!info.name.empty()) payload["name"] = info.name;
  KEEL_ASSIGN_OR_RETURN(LedgerEntry e, txn.Append({opts.actor,
                                                   "artifact.put",
                                                   hash,
                                                   opts.run_id,
                                                   opts.step_id,
                                                   CanonicalJson(payload),
                                                   {hash}}));
  info.ledger_seq = e.seq;
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("INSERT INTO artifacts(hash, size, media_type, "
                                             "parent, name, created_us, ledger_seq) VALUES "
                                             "(?,?,?,?,?,?,?)"));
  st->Bind(1, hash).Bind(2, static_cast<int64_t>(info.size)).Bind(3, info.media_type);
  if (info.parent.empty()) {
    st->BindNull(4);
  } else {
    st->Bind(4, info.parent);
  }
  st->Bind(5, info.name).Bind(6, info.created_us).Bind(7, info.ledger_seq);
  KEEL_RETURN_IF_ERROR(st->Run());
  return info;
}

Result<std::string> GetArtifact(Workspace& ws, const std::string& hash) {
  KEEL_RETURN_IF_ERROR(CheckAddress(hash));
  std::string path = ArtifactPath(ws.artifacts_dir(), hash);
  FileSystem* fs = ws.env().fs;
  if (!fs->Exists(path)) return NotFound("artifact " + hash + " is not stored");
  KEEL_ASSIGN_OR_RETURN(std::string content, fs->ReadFile(path, kMaxArtifactBytes));
  if (Sha256Hex(content) != hash) {
    return DataLoss("artifact " + hash + " is damaged: its content no longer matches its hash");
  }
  return content;
}

Result<ArtifactInfo> GetArtifactInfo(Workspace& ws, const std::string& hash) {
  KEEL_RETURN_IF_ERROR(CheckAddress(hash));
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto info, FindInfo(rd.db(), hash));
  if (!info) return NotFound("artifact " + hash + " is not stored");
  return *info;
}

Result<std::vector<ArtifactInfo>> ArtifactLineage(Workspace& ws, const std::string& hash) {
  std::vector<ArtifactInfo> out;
  std::string cur = hash;
  while (!cur.empty()) {
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo info, GetArtifactInfo(ws, cur));
    cur = info.parent;
    out.push_back(std::move(info));
    if (out.size() > 100000) return DataLoss("artifact lineage of " + hash + " has a cycle");
  }
  return out;
}

Result<std::vector<ArtifactInfo>> ArtifactChildren(Workspace& ws, const std::string& hash) {
  KEEL_RETURN_IF_ERROR(CheckAddress(hash));
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto st, rd.db()->Prepare(std::string(kInfoColumns) +
                                                  " WHERE parent = ? ORDER BY created_us"));
  st->Bind(1, hash);
  std::vector<ArtifactInfo> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.push_back(ReadInfo(*st));
  }
  return out;
}

Result<std::vector<ArtifactInfo>> ListArtifacts(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto st,
                        rd.db()->Prepare(std::string(kInfoColumns) + " ORDER BY ledger_seq"));
  std::vector<ArtifactInfo> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.push_back(ReadInfo(*st));
  }
  return out;
}

}  // namespace keel::store
