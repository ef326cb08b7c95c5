#include "store/snapshot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/crash_point.h"
#include "core/hash.h"
#include "core/json.h"
#include "store/artifacts.h"
#include "store/ledger.h"
#include "store/sqlite/database.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

constexpr char kManifest[] = "manifest.json";
constexpr char kManifestFormat[] = "keel.snapshot";
constexpr char kTmpPrefix[] = ".tmp-";
constexpr uint64_t kMaxManifestBytes = 256ull << 20;

}  // namespace

// Streams `src` to `dst` (created with `mode`, synced), hashing on the way; with `dst` empty
// only hashes.
Result<FileDigest> CopyHashing(FileSystem* fs, const std::string& src, const std::string& dst,
                               int mode) {
  KEEL_ASSIGN_OR_RETURN(auto in, fs->NewSequentialFile(src));
  std::unique_ptr<WritableFile> out;
  if (!dst.empty()) {
    KEEL_ASSIGN_OR_RETURN(out, fs->NewWritableFile(dst, mode));
  }
  Sha256 sha;
  FileDigest d;
  std::string buf(1 << 20, '\0');
  Status s;
  for (;;) {
    Result<size_t> n = in->Read(buf.data(), buf.size());
    if (!n.ok()) {
      s = n.status();
      break;
    }
    if (*n == 0) break;
    sha.Update(buf.data(), *n);
    d.size += *n;
    if (out) {
      s = out->Append(std::string_view(buf.data(), *n));
      if (!s.ok()) break;
    }
  }
  if (out) {
    if (s.ok()) s = out->Sync();
    Status c = out->Close();
    if (s.ok()) s = c;
  }
  if (!s.ok()) return s;
  d.sha256 = ToHex(sha.Finish());
  return d;
}

namespace {

// The bits a copied file gets: owner-only, read-only if it was (docs/architecture.md,
// "Permissions"). Snapshots of older keel versions recorded 0644 for keel.yaml and the
// database; a restore tightens them.
int OwnerOnly(int mode) {
  return (mode & 0200) != 0 ? kPrivateFileMode : kPrivateReadOnlyMode;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct ChainSummary {
  int64_t size = 0;
  Digest last{};
};

// Recomputes every entry's hash and link in `db` (a snapshot's or restored database).
Result<ChainSummary> CheckChain(sql::Db* db, const std::string& what) {
  // Databases before schema 9 have no state column (their entries carry no images).
  auto with_state = db->Prepare(
      "SELECT seq, time_us, actor, kind, subject, run_id, step_id, payload, artifacts, "
      "prev_hash, hash, state FROM ledger ORDER BY seq");
  const bool has_state = with_state.ok();
  KEEL_ASSIGN_OR_RETURN(auto st, has_state ? std::move(with_state)
                                           : db->Prepare("SELECT seq, time_us, actor, kind, "
                                                         "subject, run_id, step_id, payload, "
                                                         "artifacts, prev_hash, hash FROM ledger "
                                                         "ORDER BY seq"));
  ChainSummary sum;
  std::string scratch;
  LedgerEntry e;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    e.seq = st->Int(0);
    e.time_us = st->Int(1);
    e.actor = st->Text(2);
    e.kind = st->Text(3);
    e.subject = st->Text(4);
    e.run_id = st->Text(5);
    e.step_id = st->Text(6);
    e.payload = st->Text(7);
    auto arts = st->BlobView(8);
    auto prev = st->BlobView(9);
    auto hash = st->BlobView(10);
    e.state = has_state ? std::string(st->BlobView(11)) : std::string();
    std::string at = what + ": ledger entry " + std::to_string(e.seq);
    if (e.seq != sum.size + 1) return DataLoss(at + " follows entry " + std::to_string(sum.size));
    if (arts.size() % 32 != 0 || prev.size() != 32 || hash.size() != 32) {
      return DataLoss(at + " has a damaged hash field");
    }
    e.artifacts.clear();
    for (size_t i = 0; i < arts.size(); i += 32) {
      Digest d;
      std::copy(arts.begin() + i, arts.begin() + i + 32, d.begin());
      e.artifacts.push_back(d);
    }
    std::copy(prev.begin(), prev.end(), e.prev_hash.begin());
    if (e.prev_hash != sum.last) return DataLoss(at + " does not link to the entry before it");
    Digest h = ComputeEntryHash(e, &scratch);
    if (!std::equal(h.begin(), h.end(), reinterpret_cast<const uint8_t*>(hash.data()))) {
      return DataLoss(at + " does not match its hash");
    }
    sum.size = e.seq;
    sum.last = h;
  }
  return sum;
}

struct DbFacts {
  int64_t schema_version = 0;
  std::string workspace_id;
  ChainSummary chain;
  std::vector<std::pair<std::string, uint64_t>> artifacts;  // hash, size; sorted by hash
};

Result<DbFacts> ReadDbFacts(const std::string& path, const std::string& what) {
  sql::OpenOptions o;
  o.read_only = true;
  KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(path, o));
  DbFacts f;
  KEEL_ASSIGN_OR_RETURN(f.schema_version, StoredSchemaVersion(db.get()));
  {
    KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("SELECT value FROM meta WHERE key = "
                                               "'workspace_id'"));
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return DataLoss(what + " has no workspace id");
    f.workspace_id = st->Text(0);
  }
  KEEL_ASSIGN_OR_RETURN(f.chain, CheckChain(db.get(), what));
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("SELECT hash, size FROM artifacts ORDER BY hash"));
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    f.artifacts.emplace_back(st->Text(0), static_cast<uint64_t>(st->Int(1)));
  }
  return f;
}

// Copies the live database as one committed state even while others write
// (store/sqlite/database.h). The caller syncs the copy through the FileSystem.
Status BackupDatabase(const std::string& src_path, const std::string& dst_path) {
  return sql::BackupDatabase(src_path, dst_path);
}

// "2026-11-24T22:15:00.000000Z" -> "20261124T221500Z".
std::string BaseName(int64_t now_us) {
  std::string t = FormatTimeMicros(now_us);
  std::string out;
  for (size_t i = 0; i < 19 && i < t.size(); ++i) {
    if (t[i] != '-' && t[i] != ':') out += t[i];
  }
  return out + "Z";
}

// Parses a published snapshot name into (base, n); false for anything else.
bool ParseName(const std::string& name, std::string* base, long* n) {
  if (name.size() < 16) return false;
  for (size_t i = 0; i < 16; ++i) {
    char c = name[i];
    bool ok = i == 8 ? c == 'T' : i == 15 ? c == 'Z' : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  *base = name.substr(0, 16);
  *n = 0;
  if (name.size() == 16) return true;
  if (name[16] != '-' || name.size() == 17 || name.size() > 26) return false;
  for (size_t i = 17; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  *n = std::stol(name.substr(17));
  return *n > 0;
}

nlohmann::json FileEntry(const std::string& path, const FileDigest& d, int mode) {
  return {{"path", path}, {"size", d.size}, {"sha256", d.sha256}, {"mode", mode}};
}

// Only these paths may appear in a manifest's file list: a manifest is input, and a
// crafted one must not write outside the restore folder.
bool AllowedFilePath(const std::string& p) {
  if (p == "keel.yaml" || p == "checkpoints.log") return true;
  if (p.rfind("keys/", 0) != 0) return false;
  std::string n = p.substr(5);
  if (n.empty() || n == "." || n == ".." || n.size() > 255) return false;
  return n.find('/') == std::string::npos && n.find('\0') == std::string::npos;
}

}  // namespace

Result<std::vector<std::string>> ListSnapshots(FileSystem* fs, const std::string& snapshots_dir) {
  std::vector<std::pair<std::pair<std::string, long>, std::string>> found;
  if (!fs->Exists(snapshots_dir)) return std::vector<std::string>{};
  KEEL_ASSIGN_OR_RETURN(auto names, fs->ListDir(snapshots_dir));
  for (const auto& n : names) {
    std::string base;
    long k = 0;
    if (!ParseName(n, &base, &k)) continue;
    if (!fs->Exists(JoinPath(JoinPath(snapshots_dir, n), kManifest))) continue;
    found.push_back({{base, k}, n});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(f.second);
  return out;
}

Result<std::string> ResolveSnapshot(FileSystem* fs, const std::string& arg,
                                    const std::string& snapshots_dir) {
  if (arg.empty()) return InvalidArgument("no snapshot given");
  std::string base;
  long k = 0;
  bool is_name = arg.find('/') == std::string::npos && ParseName(arg, &base, &k);
  if (is_name && !snapshots_dir.empty()) {
    std::string p = JoinPath(snapshots_dir, arg);
    if (fs->Exists(JoinPath(p, kManifest))) return p;
  }
  std::string p = AbsolutePath(arg);
  std::string leaf = p.substr(p.find_last_of('/') + 1);
  if (leaf.rfind(kTmpPrefix, 0) == 0) {
    return FailedPrecondition(p +
                              " is an unfinished snapshot (its name starts with .tmp-); it "
                              "was never published and cannot be restored");
  }
  if (fs->Exists(JoinPath(p, kManifest))) return p;
  if (fs->Exists(p)) return NotFound(p + " is not a keel snapshot (no manifest.json)");
  return NotFound("no snapshot '" + arg + "'" +
                  (snapshots_dir.empty() ? std::string() : " in " + snapshots_dir) +
                  "; list them with `ls " + (snapshots_dir.empty() ? "snapshots" : snapshots_dir) +
                  "`");
}

Result<SnapshotResult> CreateSnapshot(Workspace& ws, const SnapshotOptions& opts) {
  if (ws.read_only()) return FailedPrecondition("a snapshot needs the workspace open for writing");
  int keep = opts.keep > 0 ? opts.keep : ws.config().snapshot_keep;
  if (keep < 1) return InvalidArgument("--keep must be at least 1");
  FileSystem* fs = ws.env().fs;
  const std::string snapdir = ws.snapshots_dir();
  if (!fs->Exists(snapdir)) KEEL_RETURN_IF_ERROR(fs->CreateDirs(snapdir, kPrivateDirMode));
  // Two snapshots of one workspace at once would each take the other's temp folder for a
  // crash leftover.
  KEEL_ASSIGN_OR_RETURN(
      auto lock, LockFile(fs, JoinPath(snapdir, ".lock"), LockMode::kExclusive, LockWait::kNoWait));
  if (lock == nullptr) {
    return Unavailable(
        "another `keel snapshot` of this workspace is running; retry when it has finished");
  }

  // With the lock held, any temp folder is a leftover of a snapshot that died.
  KEEL_ASSIGN_OR_RETURN(auto existing, fs->ListDir(snapdir));
  for (const auto& n : existing) {
    if (n.rfind(kTmpPrefix, 0) == 0) KEEL_RETURN_IF_ERROR(fs->RemoveTree(JoinPath(snapdir, n)));
  }
  std::string base = BaseName(ws.env().clock->NowMicros());
  // Names only grow within a second: after pruning "<base>", the next one is still
  // "<base>-<n+1>", never "<base>" again (which would sort before its elders).
  long next = -1;
  for (const auto& n : existing) {
    std::string b;
    long k = 0;
    if (ParseName(n, &b, &k) && b == base) next = std::max(next, k + 1);
  }
  std::string name = next <= 0 ? base : base + "-" + std::to_string(next);
  while (fs->Exists(JoinPath(snapdir, name))) name = base + "-" + std::to_string(++next);
  const std::string tmp = JoinPath(snapdir, kTmpPrefix + name);
  const std::string final_path = JoinPath(snapdir, name);
  KEEL_RETURN_IF_ERROR(fs->CreateDirs(tmp, kPrivateDirMode));
  // On any failure the temp folder goes at once (the next snapshot would remove it anyway).
  struct TmpGuard {
    FileSystem* fs;
    std::string path;
    bool published = false;
    ~TmpGuard() {
      if (!published) fs->RemoveTree(path).IgnoreError();
    }
  } guard{fs, tmp};

  SnapshotResult res;
  res.name = name;
  res.path = final_path;
  nlohmann::json files = nlohmann::json::array();
  auto copy = [&](const std::string& rel, int mode) -> Status {
    KEEL_ASSIGN_OR_RETURN(FileDigest d,
                          CopyHashing(fs, JoinPath(ws.dir(), rel), JoinPath(tmp, rel), mode));
    files.push_back(FileEntry(rel, d, mode));
    res.bytes += d.size;
    return OkStatus();
  };

  KEEL_ASSIGN_OR_RETURN(int cfg_mode, fs->Mode(ws.config_path()));
  KEEL_RETURN_IF_ERROR(copy("keel.yaml", OwnerOnly(cfg_mode)));
  if (fs->Exists(ws.keys_dir())) {
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(tmp, "keys"), kPrivateDirMode));
    KEEL_ASSIGN_OR_RETURN(auto keys, fs->ListDir(ws.keys_dir()));
    for (const auto& k : keys) {
      // Skip WriteFileAtomic's temp files: not keys yet.
      if (k.size() > 4 && k.compare(k.size() - 4, 4, ".tmp") == 0) continue;
      if (!IsRegularFile(JoinPath(ws.keys_dir(), k))) continue;
      KEEL_ASSIGN_OR_RETURN(int mode, fs->Mode(JoinPath(ws.keys_dir(), k)));
      KEEL_RETURN_IF_ERROR(copy("keys/" + k, OwnerOnly(mode)));
    }
    KEEL_RETURN_IF_ERROR(fs->SyncDir(JoinPath(tmp, "keys")));
  }
  // Before the database: every checkpoint in the copied log then covers entries that the
  // (later) backup contains.
  if (fs->Exists(JoinPath(ws.dir(), "checkpoints.log"))) {
    KEEL_ASSIGN_OR_RETURN(int mode, fs->Mode(JoinPath(ws.dir(), "checkpoints.log")));
    KEEL_RETURN_IF_ERROR(copy("checkpoints.log", OwnerOnly(mode)));
  }

  const std::string tmp_db = JoinPath(tmp, "keel.db");
  KEEL_RETURN_IF_ERROR(BackupDatabase(ws.db_path(), tmp_db));
  KEEL_RETURN_IF_ERROR(fs->SyncFile(tmp_db));
  KEEL_ASSIGN_OR_RETURN(FileDigest db_digest, CopyHashing(fs, tmp_db, "", 0));
  res.bytes += db_digest.size;
  KEEL_ASSIGN_OR_RETURN(DbFacts facts, ReadDbFacts(tmp_db, "the backed-up database"));

  // The artifacts the backed-up database lists, re-hashed while copied: a damaged artifact
  // fails the snapshot rather than being preserved as if it were good.
  nlohmann::json arts = nlohmann::json::array();
  std::set<std::string> made_dirs;
  const std::string tmp_arts = JoinPath(tmp, "artifacts");
  KEEL_RETURN_IF_ERROR(fs->CreateDirs(tmp_arts, kPrivateDirMode));
  for (const auto& [hash, size] : facts.artifacts) {
    if (!IsDigestHex(hash)) return DataLoss("the artifacts table lists a bad address");
    std::string sub = JoinPath(tmp_arts, hash.substr(0, 2));
    if (made_dirs.insert(sub).second) KEEL_RETURN_IF_ERROR(fs->CreateDirs(sub, kPrivateDirMode));
    std::string src = ArtifactPath(ws.artifacts_dir(), hash);
    if (!fs->Exists(src)) {
      return DataLoss("artifact " + hash +
                      " is listed in the database but its file is missing; "
                      "no snapshot was written (run `keel verify`)");
    }
    KEEL_ASSIGN_OR_RETURN(FileDigest d,
                          CopyHashing(fs, src, JoinPath(sub, hash), kPrivateReadOnlyMode));
    if (d.sha256 != hash || d.size != size) {
      return DataLoss("artifact " + hash +
                      " is damaged (its content no longer matches its "
                      "hash); no snapshot was written (run `keel verify`)");
    }
    arts.push_back({{"hash", hash}, {"size", size}});
    res.bytes += size;
  }
  for (const auto& d : made_dirs) KEEL_RETURN_IF_ERROR(fs->SyncDir(d));
  KEEL_RETURN_IF_ERROR(fs->SyncDir(tmp_arts));

  int64_t now = ws.env().clock->NowMicros();
  nlohmann::json manifest = {
      {"format", kManifestFormat},
      {"format_version", kSnapshotFormatVersion},
      {"name", name},
      {"created", FormatTimeMicros(now)},
      {"created_us", now},
      {"workspace_id", facts.workspace_id},
      {"schema_version", facts.schema_version},
      {"ledger", {{"size", facts.chain.size}, {"last_hash", ToHex(facts.chain.last)}}},
      {"db", {{"path", "keel.db"}, {"size", db_digest.size}, {"sha256", db_digest.sha256}}},
      {"files", files},
      {"artifacts", arts}};
  {
    KEEL_ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(JoinPath(tmp, kManifest), kPrivateFileMode));
    Status s = f->Append(manifest.dump(2) + "\n");
    if (s.ok()) s = f->Sync();
    Status c = f->Close();
    KEEL_RETURN_IF_ERROR(s);
    KEEL_RETURN_IF_ERROR(c);
  }
  KEEL_RETURN_IF_ERROR(fs->SyncDir(tmp));
  // Everything is written but not published: a crash here leaves only a .tmp- folder.
  KEEL_CRASH_POINT("snapshot.mid");
  KEEL_RETURN_IF_ERROR(fs->Rename(tmp, final_path));
  // Published once its entry in snapshots/ is durable: if that fsync fails, the folder goes
  // too, so a snapshot reported as failed never stays behind looking complete.
  guard.path = final_path;
  KEEL_RETURN_IF_ERROR(fs->SyncDir(snapdir));
  guard.published = true;

  res.ledger_size = facts.chain.size;
  res.last_hash = ToHex(facts.chain.last);
  res.artifacts = facts.artifacts.size();

  KEEL_ASSIGN_OR_RETURN(auto all, ListSnapshots(fs, snapdir));
  if (all.size() > static_cast<size_t>(keep)) {
    for (size_t i = 0; i + keep < all.size(); ++i) {
      if (all[i] == name) continue;  // never the one just made (a clock set back)
      KEEL_RETURN_IF_ERROR(fs->RemoveTree(JoinPath(snapdir, all[i])));
      res.pruned.push_back(all[i]);
    }
    KEEL_RETURN_IF_ERROR(fs->SyncDir(snapdir));
  }

  nlohmann::json payload = {{"name", name},
                            {"ledger_size", res.ledger_size},
                            {"last_hash", res.last_hash},
                            {"db_sha256", db_digest.sha256},
                            {"artifacts", res.artifacts},
                            {"bytes", res.bytes},
                            {"pruned", res.pruned}};
  Status s = ws.Write([&](Txn& txn) {
    return txn.Append({opts.actor, "snapshot.created", name, "", "", CanonicalJson(payload), {}})
        .status();
  });
  if (!s.ok()) {
    return s.WithContext("snapshot " + name +
                         " was written, but recording it in the ledger "
                         "failed");
  }
  return res;
}

namespace {

Status RestoreInto(const std::string& snap, const std::string& dest, const Env& env,
                   RestoreResult* res) {
  FileSystem* fs = env.fs;
  KEEL_ASSIGN_OR_RETURN(std::string text,
                        fs->ReadFile(JoinPath(snap, kManifest), kMaxManifestBytes));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return InvalidArgument(JoinPath(snap, kManifest) +
                           " is not a valid keel snapshot manifest: " + why);
  };
  if (!m.is_object() || m.value("format", "") != kManifestFormat) return bad("wrong format");
  if (!m["format_version"].is_number_integer()) return bad("no format_version");
  if (m["format_version"].get<int>() > kSnapshotFormatVersion) {
    return FailedPrecondition("snapshot " + snap + " has format version " +
                              std::to_string(m["format_version"].get<int>()) +
                              ", newer than this keel knows; upgrade keel");
  }
  try {
    const auto& db = m.at("db");
    const std::string ws_id = m.at("workspace_id").get<std::string>();
    const int64_t schema = m.at("schema_version").get<int64_t>();
    const int64_t ledger_size = m.at("ledger").at("size").get<int64_t>();
    const std::string last_hash = m.at("ledger").at("last_hash").get<std::string>();
    if (schema > CurrentSchemaVersion()) {
      return FailedPrecondition("snapshot " + snap + " has schema version " +
                                std::to_string(schema) +
                                ", newer than this keel knows; "
                                "upgrade keel");
    }

    // The database first: the checks below read the restored copy.
    KEEL_ASSIGN_OR_RETURN(FileDigest d, CopyHashing(fs, JoinPath(snap, "keel.db"),
                                                    JoinPath(dest, "keel.db"), kPrivateFileMode));
    if (d.sha256 != db.at("sha256").get<std::string>() || d.size != db.at("size").get<uint64_t>()) {
      return DataLoss("the snapshot's keel.db does not match its manifest (damaged or altered)");
    }

    std::string yaml;
    int yaml_mode = kPrivateFileMode;
    for (const auto& f : m.at("files")) {
      std::string p = f.at("path").get<std::string>();
      if (!AllowedFilePath(p)) return bad("file path '" + p.substr(0, 100) + "' is not allowed");
      int mode = OwnerOnly(f.at("mode").get<int>());
      std::string want = f.at("sha256").get<std::string>();
      uint64_t size = f.at("size").get<uint64_t>();
      if (p == "keel.yaml") {
        // Written last, after every check: its presence marks a complete workspace.
        KEEL_ASSIGN_OR_RETURN(yaml, fs->ReadFile(JoinPath(snap, p), 1 << 20));
        if (Sha256Hex(yaml) != want || yaml.size() != size) {
          return DataLoss("the snapshot's keel.yaml does not match its manifest");
        }
        yaml_mode = mode;
        continue;
      }
      if (p.rfind("keys/", 0) == 0 && !fs->Exists(JoinPath(dest, "keys"))) {
        KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dest, "keys"), kPrivateDirMode));
      }
      KEEL_ASSIGN_OR_RETURN(FileDigest fd,
                            CopyHashing(fs, JoinPath(snap, p), JoinPath(dest, p), mode));
      if (fd.sha256 != want || fd.size != size) {
        return DataLoss("the snapshot's " + p + " does not match its manifest");
      }
    }
    if (yaml.empty()) return bad("no keel.yaml");
    if (!fs->Exists(JoinPath(dest, "keys"))) {
      KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dest, "keys"), kPrivateDirMode));
    }
    KEEL_RETURN_IF_ERROR(fs->SyncDir(JoinPath(dest, "keys")));

    std::map<std::string, uint64_t> listed;
    const std::string arts = JoinPath(dest, "artifacts");
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(arts, kPrivateDirMode));
    std::set<std::string> made_dirs;
    for (const auto& a : m.at("artifacts")) {
      std::string hash = a.at("hash").get<std::string>();
      uint64_t size = a.at("size").get<uint64_t>();
      if (!IsDigestHex(hash)) return bad("an artifact address is not 64 lowercase hex");
      std::string sub = JoinPath(arts, hash.substr(0, 2));
      if (made_dirs.insert(sub).second) KEEL_RETURN_IF_ERROR(fs->CreateDirs(sub, kPrivateDirMode));
      std::string src = ArtifactPath(JoinPath(snap, "artifacts"), hash);
      if (!fs->Exists(src)) return DataLoss("artifact " + hash + " is missing from the snapshot");
      KEEL_ASSIGN_OR_RETURN(FileDigest fd,
                            CopyHashing(fs, src, JoinPath(sub, hash), kPrivateReadOnlyMode));
      if (fd.sha256 != hash || fd.size != size) {
        return DataLoss("artifact " + hash + " in the snapshot is damaged");
      }
      listed[hash] = size;
    }
    for (const auto& d : made_dirs) KEEL_RETURN_IF_ERROR(fs->SyncDir(d));
    KEEL_RETURN_IF_ERROR(fs->SyncDir(arts));
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dest, "snapshots"), kPrivateDirMode));
    // Snapshots hold no workflow definitions (docs/snapshots.md): the folder is made empty,
    // as `keel init` makes it.
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dest, kWorkflowsDir), kPrivateDirMode));

    // The restored database against the manifest: same workspace, same ledger (every hash
    // recomputed), the same artifacts.
    KEEL_ASSIGN_OR_RETURN(DbFacts facts,
                          ReadDbFacts(JoinPath(dest, "keel.db"), "the snapshot's database"));
    if (facts.workspace_id != ws_id || facts.schema_version != schema) {
      return DataLoss(
          "the snapshot's database belongs to another workspace or schema than its "
          "manifest says");
    }
    if (facts.chain.size != ledger_size || ToHex(facts.chain.last) != last_hash) {
      return DataLoss("the snapshot's ledger ends at entry " + std::to_string(facts.chain.size) +
                      " but its manifest says " + std::to_string(ledger_size));
    }
    std::map<std::string, uint64_t> in_db(facts.artifacts.begin(), facts.artifacts.end());
    if (in_db != listed) {
      return DataLoss("the snapshot's artifact list differs from its database's artifacts table");
    }
    if (yaml.find(ws_id) == std::string::npos) {
      return DataLoss("the snapshot's keel.yaml names another workspace than its database");
    }
    KEEL_RETURN_IF_ERROR(fs->SyncDir(dest));
    KEEL_RETURN_IF_ERROR(WriteFileAtomic(fs, JoinPath(dest, "keel.yaml"), yaml, yaml_mode));

    res->workspace_id = ws_id;
    res->ledger_size = ledger_size;
    res->artifacts = listed.size();
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }

  KEEL_ASSIGN_OR_RETURN(auto ws, Workspace::Open(dest, WorkspaceOpenOptions{}, env));
  std::string leaf = snap.substr(snap.find_last_of('/') + 1);
  nlohmann::json payload = {{"snapshot", leaf},
                            {"ledger_size", res->ledger_size},
                            {"last_hash", m["ledger"]["last_hash"]}};
  return ws->Write([&](Txn& txn) {
    return txn
        .Append({"operator",
                 "workspace.restored",
                 res->workspace_id,
                 "",
                 "",
                 CanonicalJson(payload),
                 {}})
        .status();
  });
}

}  // namespace

Result<RestoreResult> RestoreSnapshot(const std::string& snapshot_dir, const std::string& dest_in,
                                      const Env& env) {
  FileSystem* fs = env.fs;
  std::string snap = AbsolutePath(snapshot_dir);
  std::string dest = AbsolutePath(dest_in);
  if (!fs->Exists(JoinPath(snap, kManifest))) {
    return NotFound(snap + " is not a keel snapshot (no manifest.json)");
  }
  bool created = !fs->Exists(dest);
  if (!created) {
    auto entries = fs->ListDir(dest);
    if (!entries.ok()) return entries.status().WithContext("restore target " + dest);
    if (!entries->empty()) {
      return FailedPrecondition("restore target " + dest +
                                " is not empty; give a new or empty folder");
    }
  }
  // Only a folder the restore creates is made owner-only; an existing empty one keeps its bits.
  KEEL_RETURN_IF_ERROR(fs->CreateDirs(dest, kPrivateDirMode));
  RestoreResult res;
  res.dir = dest;
  Status s = RestoreInto(snap, dest, env, &res);
  if (!s.ok()) {
    // Remove what was written; a partial copy has no keel.yaml, so it is never opened as a
    // workspace even if this cleanup fails.
    if (created) {
      fs->RemoveTree(dest).IgnoreError();
    } else if (auto left = fs->ListDir(dest); left.ok()) {
      for (const auto& n : *left) fs->RemoveTree(JoinPath(dest, n)).IgnoreError();
    }
    return s.WithContext("restoring " + snap);
  }
  return res;
}

}  // namespace keel::store
