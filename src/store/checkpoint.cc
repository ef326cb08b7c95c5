#include "store/checkpoint.h"

#include <sodium.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/crash_point.h"
#include "core/json.h"
#include "store/sqlite/sql.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

struct KeyPair {
  PublicKey pk{};
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> sk{};
  ~KeyPair() { sodium_memzero(sk.data(), sk.size()); }
};

Status InitSodium() {
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  return OkStatus();
}

bool ParseHex(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    int v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = hex[2 * i + j];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (d < 0) return false;  // lowercase only: one spelling per value
      v = v * 16 + d;
    }
    out[i] = static_cast<uint8_t>(v);
  }
  return true;
}

std::string TrimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string KeyPath(const Workspace& ws) {
  return JoinPath(ws.keys_dir(), kLedgerKeyFile);
}
std::string PubPath(const Workspace& ws) {
  return JoinPath(ws.keys_dir(), kLedgerPublicKeyFile);
}
std::string LogPath(const Workspace& ws) {
  return JoinPath(ws.dir(), kCheckpointLogFile);
}

Result<KeyPair> ReadSecretKey(const Workspace& ws) {
  FileSystem* fs = ws.env().fs;
  std::string path = KeyPath(ws);
  KEEL_ASSIGN_OR_RETURN(int mode, fs->Mode(path));
  if ((mode & 077) != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode);
    return PermissionDenied(path + " is accessible to other users (mode " + buf +
                            "); run `chmod 600 " + path + "`");
  }
  KEEL_ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 4096));
  KeyPair kp;
  std::string hex = TrimNewline(std::move(text));
  bool ok = ParseHex(hex, kp.sk.data(), kp.sk.size());
  sodium_memzero(hex.data(), hex.size());
  if (!ok) return DataLoss(path + " is not a keel signing key (128 lowercase hex characters)");
  // libsodium's secret key is seed || public key; re-deriving catches a damaged file.
  KeyPair check;
  crypto_sign_seed_keypair(check.pk.data(), check.sk.data(), kp.sk.data());
  if (sodium_memcmp(check.sk.data(), kp.sk.data(), kp.sk.size()) != 0) {
    return DataLoss(path + " is damaged: its public half does not match its seed");
  }
  kp.pk = check.pk;
  return kp;
}

// Loads the signing key, creating it on the first checkpoint. Runs inside the checkpoint's
// write transaction, which serialises it across processes.
Result<KeyPair> LoadOrCreateKey(Workspace& ws) {
  KEEL_RETURN_IF_ERROR(InitSodium());
  FileSystem* fs = ws.env().fs;
  std::string path = KeyPath(ws);
  if (!fs->Exists(path)) {
    if (!fs->Exists(ws.keys_dir())) {
      KEEL_RETURN_IF_ERROR(fs->CreateDirs(ws.keys_dir(), kPrivateDirMode));
      KEEL_RETURN_IF_ERROR(fs->SyncDir(ws.dir()));
    }
    // Key material comes from the OS CSPRNG (libsodium), never from the injected Random.
    KeyPair kp;
    crypto_sign_keypair(kp.pk.data(), kp.sk.data());
    std::string hex = ToHex(kp.sk.data(), kp.sk.size()) + "\n";
    Status s = WriteFileAtomic(fs, path, hex, kPrivateFileMode);
    sodium_memzero(hex.data(), hex.size());
    KEEL_RETURN_IF_ERROR(s);
    KEEL_RETURN_IF_ERROR(
        WriteFileAtomic(fs, PubPath(ws), ToHex(kp.pk.data(), 32) + "\n", kPrivateFileMode));
    return kp;
  }
  KEEL_ASSIGN_OR_RETURN(KeyPair kp, ReadSecretKey(ws));
  if (!fs->Exists(PubPath(ws))) {
    // A crash between writing the two files: the public half is derived again.
    KEEL_RETURN_IF_ERROR(
        WriteFileAtomic(fs, PubPath(ws), ToHex(kp.pk.data(), 32) + "\n", kPrivateFileMode));
  }
  return kp;
}

// Appends `line` to checkpoints.log and makes it durable before the caller commits.
Status AppendToLog(Workspace& ws, const std::string& line) {
  FileSystem* fs = ws.env().fs;
  std::string path = LogPath(ws);
  bool existed = fs->Exists(path);
  if (existed) {
    KEEL_ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path));
    if (!text.empty() && text.back() != '\n') {
      // An append cut short by a crash (its checkpoint never committed): drop the fragment
      // so the new line starts on a line of its own.
      text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
      KEEL_RETURN_IF_ERROR(WriteFileAtomic(fs, path, text, kPrivateFileMode));
    }
  }
  KEEL_ASSIGN_OR_RETURN(auto file, fs->NewAppendableFile(path, kPrivateFileMode));
  KEEL_RETURN_IF_ERROR(file->Append(line));
  KEEL_RETURN_IF_ERROR(file->Sync());
  KEEL_RETURN_IF_ERROR(file->Close());
  if (!existed) KEEL_RETURN_IF_ERROR(fs->SyncDir(ws.dir()));
  return OkStatus();
}

// The Merkle root over entries 1..n. The first call in a process scans the whole ledger and
// checks it against every checkpoint already taken (table and log), so keel never signs a
// root over a ledger that contradicts an earlier checkpoint; later calls extend the cached
// compact range with the new entries only. Caller holds the write transaction.
Result<Digest> RootAt(Workspace& ws, sql::Db* db, int64_t n) {
  CheckpointState& st = ws.checkpoint_state();
  std::multimap<int64_t, Digest> expected;
  if (!st.frontier || static_cast<int64_t>(st.frontier->size()) > n) {
    KEEL_ASSIGN_OR_RETURN(auto rows, ReadCheckpointRows(ws));
    KEEL_ASSIGN_OR_RETURN(CheckpointLog log, ReadCheckpointLog(ws));
    for (const auto& c : rows) expected.emplace(c.tree_size, c.root);
    for (const auto& c : log.entries) expected.emplace(c.tree_size, c.root);
    if (!expected.empty() && expected.rbegin()->first > n) {
      return DataLoss("a checkpoint covers " + std::to_string(expected.rbegin()->first) +
                      " ledger entries but the ledger has only " + std::to_string(n) +
                      ": its tail was truncated or an older database was put back; run "
                      "`keel verify`. No new checkpoint was signed");
    }
    st.frontier.emplace();
  }
  MerkleTreeBuilder& b = *st.frontier;
  auto check = [&]() -> Status {
    auto [lo, hi] = expected.equal_range(static_cast<int64_t>(b.size()));
    if (lo == hi) return OkStatus();
    Digest root = b.Root();
    for (auto it = lo; it != hi; ++it) {
      if (it->second != root) {
        return DataLoss("the first " + std::to_string(b.size()) +
                        " ledger entries no longer match the checkpoint taken over them; run "
                        "`keel verify`. No new checkpoint was signed");
      }
    }
    return OkStatus();
  };
  Status s = check();
  if (s.ok() && static_cast<int64_t>(b.size()) < n) {
    auto st_or =
        db->Prepare("SELECT seq, hash FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq");
    if (!st_or.ok()) {
      s = st_or.status();
    } else {
      auto& q = **st_or;
      q.Bind(1, static_cast<int64_t>(b.size())).Bind(2, n);
      while (s.ok()) {
        auto row = q.Step();
        if (!row.ok()) {
          s = row.status();
          break;
        }
        if (!*row) break;
        int64_t seq = q.Int(0);
        auto h = q.BlobView(1);
        if (seq != static_cast<int64_t>(b.size()) + 1 || h.size() != 32) {
          s = DataLoss("ledger entry " + std::to_string(b.size() + 1) +
                       " is missing or damaged; run `keel verify`. No checkpoint was signed");
          break;
        }
        b.AddLeaf(h);
        if (!expected.empty()) s = check();
      }
      if (s.ok() && static_cast<int64_t>(b.size()) != n) {
        s = DataLoss("the ledger has gaps below entry " + std::to_string(n) +
                     "; run `keel verify`. No checkpoint was signed");
      }
    }
  }
  if (!s.ok()) {
    st.frontier.reset();  // rebuilt (and re-checked) from scratch next time
    return s;
  }
  return b.Root();
}

Result<std::optional<CheckpointInfo>> DoCheckpoint(Workspace& ws, bool only_if_due) {
  std::optional<CheckpointInfo> out;
  const int64_t every = ws.config().checkpoint_every;
  // The line goes to checkpoints.log, outside the database, before the row commits: the
  // entries it signs must be durable first (pipelined commits of this process), or a power
  // loss would leave the log naming a tree the database no longer has. Entries committed
  // by other processes were durable when their Write returned.
  KEEL_RETURN_IF_ERROR(ws.WaitDurable());
  Status s = ws.Write([&](Txn& txn) -> Status {
    sql::Db* db = txn.db();
    KEEL_ASSIGN_OR_RETURN(int64_t n, db->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM ledger"));
    KEEL_ASSIGN_OR_RETURN(int64_t last,
                          db->QueryInt("SELECT COALESCE(MAX(tree_size), 0) FROM checkpoints"));
    CheckpointState& st = ws.checkpoint_state();
    if (only_if_due && n - last < every) {
      st.loaded = true;
      st.next_due = last + every;
      return OkStatus();
    }
    KEEL_ASSIGN_OR_RETURN(Digest root, RootAt(ws, db, n));
    KEEL_ASSIGN_OR_RETURN(KeyPair kp, LoadOrCreateKey(ws));
    CheckpointInfo c;
    c.tree_size = n;
    c.root = root;
    c.time_us = txn.now_us();
    c.public_key = kp.pk;
    std::string statement = CheckpointStatement(ws.config().id, c);
    crypto_sign_detached(c.signature.data(), nullptr,
                         reinterpret_cast<const unsigned char*>(statement.data()), statement.size(),
                         kp.sk.data());
    // The log line is durable before the row commits: a crash in between leaves a valid
    // checkpoint in the log only, which verify accepts; the reverse order could leave a row
    // whose line never reached the disk.
    KEEL_RETURN_IF_ERROR(AppendToLog(ws, FormatCheckpointLine(c)));
    KEEL_CRASH_POINT("checkpoint.after_log_before_commit");
    KEEL_ASSIGN_OR_RETURN(auto* ins, db->Cached("INSERT INTO checkpoints(tree_size, root, "
                                                "time_us, public_key, signature) VALUES "
                                                "(?,?,?,?,?)"));
    ins->Bind(1, c.tree_size)
        .BindBlob(2, c.root.data(), c.root.size())
        .Bind(3, c.time_us)
        .BindBlob(4, c.public_key.data(), c.public_key.size())
        .BindBlob(5, c.signature.data(), c.signature.size());
    KEEL_RETURN_IF_ERROR(ins->Run());
    nlohmann::json payload = {{"root", ToHex(c.root)}, {"tree_size", c.tree_size}};
    KEEL_RETURN_IF_ERROR(
        txn.Append({"system", "ledger.checkpoint", "", "", "", CanonicalJson(payload), {}})
            .status());
    st.loaded = true;
    st.next_due = n + every;
    out = c;
    return OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace

std::string CheckpointStatement(const std::string& workspace_id, const CheckpointInfo& c) {
  return "keel.checkpoint.v1\n" + workspace_id + "\n" + std::to_string(c.tree_size) + "\n" +
         ToHex(c.root) + "\n" + std::to_string(c.time_us) + "\n";
}

std::string FormatCheckpointLine(const CheckpointInfo& c) {
  return "v1 " + std::to_string(c.tree_size) + " " + ToHex(c.root) + " " +
         std::to_string(c.time_us) + " " + ToHex(c.public_key.data(), c.public_key.size()) + " " +
         ToHex(c.signature.data(), c.signature.size()) + "\n";
}

Result<CheckpointInfo> ParseCheckpointLine(std::string_view line) {
  std::vector<std::string_view> f;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) sp = line.size();
    f.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (f.size() != 6) {
    return InvalidArgument("expected 6 space-separated fields, found " + std::to_string(f.size()));
  }
  if (f[0] != "v1")
    return InvalidArgument("unknown checkpoint version '" + std::string(f[0]) + "'");
  auto parse_int = [](std::string_view s, int64_t* out) {
    if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
    int64_t v = 0;
    for (char ch : s) {
      if (ch < '0' || ch > '9') return false;
      v = v * 10 + (ch - '0');
    }
    *out = v;
    return true;
  };
  CheckpointInfo c;
  if (!parse_int(f[1], &c.tree_size)) return InvalidArgument("bad tree_size");
  if (!ParseHex(f[2], c.root.data(), c.root.size())) return InvalidArgument("bad root");
  if (!parse_int(f[3], &c.time_us)) return InvalidArgument("bad time_us");
  if (!ParseHex(f[4], c.public_key.data(), c.public_key.size())) {
    return InvalidArgument("bad public key");
  }
  if (!ParseHex(f[5], c.signature.data(), c.signature.size())) {
    return InvalidArgument("bad signature");
  }
  return c;
}

bool CheckpointSignatureValid(const std::string& workspace_id, const CheckpointInfo& c,
                              const PublicKey& key) {
  if (!InitSodium().ok()) return false;
  if (sodium_memcmp(c.public_key.data(), key.data(), key.size()) != 0) return false;
  std::string statement = CheckpointStatement(workspace_id, c);
  return crypto_sign_verify_detached(c.signature.data(),
                                     reinterpret_cast<const unsigned char*>(statement.data()),
                                     statement.size(), key.data()) == 0;
}

Result<CheckpointInfo> Checkpoint(Workspace& ws) {
  KEEL_ASSIGN_OR_RETURN(auto c, DoCheckpoint(ws, false));
  if (!c) return Internal("checkpoint was not taken");
  return *c;
}

Result<std::optional<CheckpointInfo>> CheckpointIfDue(Workspace& ws) {
  return DoCheckpoint(ws, true);
}

Result<PublicKey> LoadLedgerPublicKey(const Workspace& ws) {
  KEEL_RETURN_IF_ERROR(InitSodium());
  FileSystem* fs = ws.env().fs;
  std::optional<PublicKey> from_pub, from_secret;
  if (fs->Exists(PubPath(ws))) {
    KEEL_ASSIGN_OR_RETURN(std::string text, fs->ReadFile(PubPath(ws), 4096));
    PublicKey pk;
    if (!ParseHex(TrimNewline(text), pk.data(), pk.size())) {
      return DataLoss(PubPath(ws) + " is not a public key (64 lowercase hex characters)");
    }
    from_pub = pk;
  }
  if (fs->Exists(KeyPath(ws))) {
    auto kp = ReadSecretKey(ws);
    if (kp.ok()) {
      from_secret = kp->pk;
    } else if (!from_pub || kp.status().code() != StatusCode::kPermissionDenied) {
      return kp.status();
    }
  }
  if (from_pub && from_secret && *from_pub != *from_secret) {
    return DataLoss(PubPath(ws) + " does not match the signing key " + KeyPath(ws));
  }
  if (from_pub) return *from_pub;
  if (from_secret) return *from_secret;
  return NotFound("the workspace has no checkpoint signing key (" + KeyPath(ws) + ")");
}

Result<std::vector<CheckpointInfo>> ReadCheckpointRows(Workspace& ws) {
  KEEL_ASSIGN_OR_RETURN(
      auto st, ws.db()->Prepare("SELECT tree_size, root, time_us, public_key, signature, "
                                "(typeof(root) = 'blob' AND typeof(time_us) = 'integer' AND "
                                "typeof(public_key) = 'blob' AND typeof(signature) = 'blob') "
                                "FROM checkpoints ORDER BY tree_size"));
  std::vector<CheckpointInfo> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    CheckpointInfo c;
    c.tree_size = st->Int(0);
    auto root = st->BlobView(1), pk = st->BlobView(3), sig = st->BlobView(4);
    if (root.size() != 32 || pk.size() != 32 || sig.size() != 64 || st->Int(5) != 1) {
      return DataLoss("the checkpoint row for tree size " + std::to_string(c.tree_size) +
                      " is damaged");
    }
    std::copy(root.begin(), root.end(), c.root.begin());
    c.time_us = st->Int(2);
    std::copy(pk.begin(), pk.end(), c.public_key.begin());
    std::copy(sig.begin(), sig.end(), c.signature.begin());
    out.push_back(c);
  }
  return out;
}

Result<CheckpointLog> ReadCheckpointLog(const Workspace& ws) {
  CheckpointLog log;
  FileSystem* fs = ws.env().fs;
  std::string path = LogPath(ws);
  if (!fs->Exists(path)) return log;
  log.exists = true;
  KEEL_ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 256ull << 20));
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {
      log.torn_tail = true;
      break;
    }
    std::string_view line(text.data() + pos, nl - pos);
    auto c = ParseCheckpointLine(line);
    if (c.ok()) {
      log.entries.push_back(*c);
      log.line_numbers.push_back(line_no);
    } else {
      log.bad_lines.push_back("line " + std::to_string(line_no) + ": " + c.status().message());
    }
    pos = nl + 1;
  }
  return log;
}

}  // namespace keel::store
