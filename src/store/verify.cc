#include "store/verify.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/merkle.h"
#include "store/sql.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

constexpr size_t kBatchEntries = 4096;

// Column storage classes as the schema declares them. The hash covers bytes, not SQLite's
// type tags; an edit that turns a TEXT value into a BLOB of the same bytes is still an edit.
#define TYPES_OK                                                                             \
  "(typeof(time_us) = 'integer' AND typeof(actor) = 'text' AND typeof(kind) = 'text' AND "  \
  "typeof(subject) = 'text' AND typeof(run_id) = 'text' AND typeof(step_id) = 'text' AND "  \
  "typeof(payload) = 'text' AND typeof(artifacts) = 'blob' AND typeof(prev_hash) = 'blob' " \
  "AND typeof(hash) = 'blob')"

// Canonical encodings of a run of consecutive entries, built by the scanning thread and
// hashed by the worker.
struct Batch {
  std::string buf;
  std::vector<uint32_t> ends;  // end offset of each entry's encoding in buf
  std::vector<Digest> stored;  // the hash column as stored
  std::vector<int64_t> seqs;
  void Clear() {
    buf.clear();
    ends.clear();
    stored.clear();
    seqs.clear();
  }
};

// A bounded hand-off between the scanner and the hashing worker.
class BatchQueue {
 public:
  std::unique_ptr<Batch> TakeFree() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !free_.empty() || allocated_ < kMaxBatches; });
    if (!free_.empty()) {
      auto b = std::move(free_.back());
      free_.pop_back();
      return b;
    }
    ++allocated_;
    auto b = std::make_unique<Batch>();
    b->buf.reserve(kBatchEntries * 256);
    return b;
  }
  void PushFull(std::unique_ptr<Batch> b) {
    std::lock_guard<std::mutex> l(mu_);
    full_.push_back(std::move(b));
    cv_.notify_all();
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // nullptr once closed and drained.
  std::unique_ptr<Batch> TakeFull() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !full_.empty() || closed_; });
    if (full_.empty()) return nullptr;
    auto b = std::move(full_.front());
    full_.pop_front();
    return b;
  }
  void Recycle(std::unique_ptr<Batch> b) {
    b->Clear();
    std::lock_guard<std::mutex> l(mu_);
    free_.push_back(std::move(b));
    cv_.notify_all();
  }

 private:
  static constexpr int kMaxBatches = 4;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Batch>> free_;
  std::deque<std::unique_ptr<Batch>> full_;
  int allocated_ = 0;
  bool closed_ = false;
};

// The worker: recomputes each entry hash and builds the Merkle tree over the stored hashes,
// taking the root at every size a checkpoint names.
struct HashWorker {
  BatchQueue* queue;
  std::vector<int64_t> wanted_sizes;  // sorted, distinct
  std::map<int64_t, Digest> roots;
  int64_t first_mismatch_seq = 0;
  int64_t leaves = 0;

  void Run() {
    MerkleHasher h;
    MerkleTreeBuilder tree;
    size_t w = 0;
    auto take_roots = [&] {
      while (w < wanted_sizes.size() && wanted_sizes[w] <= static_cast<int64_t>(tree.size())) {
        if (wanted_sizes[w] == static_cast<int64_t>(tree.size())) {
          roots[wanted_sizes[w]] = tree.Root();
        }
        ++w;
      }
    };
    take_roots();
    while (auto b = queue->TakeFull()) {
      uint32_t begin = 0;
      for (size_t i = 0; i < b->ends.size(); ++i) {
        std::string_view enc(b->buf.data() + begin, b->ends[i] - begin);
        begin = b->ends[i];
        if (first_mismatch_seq == 0 && h.Plain(enc) != b->stored[i]) {
          first_mismatch_seq = b->seqs[i];
        }
        tree.AddLeafHash(h.Leaf(b->stored[i]));
        if (w < wanted_sizes.size()) take_roots();
      }
      queue->Recycle(std::move(b));
    }
    leaves = static_cast<int64_t>(tree.size());
  }
};

inline void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

inline void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(b, 8);
}

inline void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

struct DigestHasher {
  size_t operator()(const Digest& d) const {
    size_t v;
    std::memcpy(&v, d.data(), sizeof v);
    return v;
  }
};

struct PutEntry {
  int64_t seq;
  int64_t time_us;
  std::string subject;
  std::string payload;
  bool references_subject;
};

std::string Where(const CheckpointInfo& c, const std::string& where) {
  return "checkpoint of " + std::to_string(c.tree_size) + " entries (" + where + ")";
}

bool SameCheckpoint(const CheckpointInfo& a, const CheckpointInfo& b) {
  return a.tree_size == b.tree_size && a.root == b.root && a.time_us == b.time_us &&
         a.public_key == b.public_key && a.signature == b.signature;
}

class Verifier {
 public:
  Verifier(Workspace& ws, const VerifyOptions& opts, VerifyReport* r)
      : ws_(ws), opts_(opts), r_(*r) {}

  void Run() {
    // The log is read before the database snapshot: every line in it then names a tree
    // size the snapshot has reached, even while other processes append and checkpoint.
    auto log = ReadCheckpointLog(ws_);
    if (log.ok()) {
      log_ = std::move(*log);
    } else {
      Problem("checkpoints.log cannot be read: " + log.status().message());
    }
    sql::Db* db = ws_.db();
    Status s = db->Exec("BEGIN");
    if (!s.ok()) {
      Problem("the database cannot be read: " + s.message());
      return;
    }
    CheckMeta();
    auto rows = ReadCheckpointRows(ws_);
    if (rows.ok()) {
      rows_ = std::move(*rows);
    } else {
      Problem("the checkpoints table cannot be read: " + rows.status().message());
    }
    ScanLedger();
    CheckCheckpoints();
    if (opts_.artifacts) CheckArtifacts();
    if (opts_.integrity_check) IntegrityCheck();
    db->Exec("COMMIT").IgnoreError();
  }

 private:
  void Problem(std::string p) { r_.problems.push_back(std::move(p)); }
  void Note(std::string n) { r_.notes.push_back(std::move(n)); }

  void CheckMeta() {
    auto st = ws_.db()->Prepare(
        "SELECT CASE WHEN typeof(value) = 'text' THEN value ELSE NULL END FROM meta WHERE key "
        "= 'workspace_id'");
    if (!st.ok()) {
      Problem("the meta table cannot be read: " + st.status().message());
      return;
    }
    auto row = (*st)->Step();
    if (!row.ok()) {
      Problem("the meta table cannot be read: " + row.status().message());
    } else if (!*row) {
      Problem("the database has no workspace id");
    } else if ((*st)->Text(0) != ws_.config().id) {
      Problem("the database belongs to workspace " + (*st)->Text(0) + " but keel.yaml names " +
              ws_.config().id);
    }
  }

  void ScanLedger() {
    std::set<int64_t> sizes;
    for (const auto& c : rows_) sizes.insert(c.tree_size);
    for (const auto& c : log_.entries) sizes.insert(c.tree_size);
    BatchQueue queue;
    HashWorker worker;
    worker.queue = &queue;
    worker.wanted_sizes.assign(sizes.begin(), sizes.end());
    std::thread t([&] { worker.Run(); });

    int64_t expected = 1;
    int64_t link_bad_seq = 0;
    std::string link_bad_reason;
    auto link_problem = [&](int64_t seq, std::string why) {
      if (link_bad_seq == 0) {
        link_bad_seq = seq;
        link_bad_reason = std::move(why);
      }
    };
    Digest prev{};
    std::string scan_error;
    auto batch = queue.TakeFree();
    auto st = ws_.db()->Prepare(
        "SELECT seq, time_us, actor, kind, subject, run_id, step_id, payload, artifacts, "
        "prev_hash, hash, " TYPES_OK " FROM ledger ORDER BY seq");
    if (!st.ok()) {
      scan_error = st.status().message();
    } else {
      sql::Stmt& q = **st;
      for (;;) {
        auto row = q.Step();
        if (!row.ok()) {
          scan_error = row.status().message();
          break;
        }
        if (!*row) break;
        int64_t seq = q.Int(0);
        if (q.Int(11) != 1) link_problem(seq, "a column holds a value of the wrong type");
        if (seq != expected) {
          link_problem(expected, seq > expected
                                     ? "entries " + std::to_string(expected) + ".." +
                                           std::to_string(seq - 1) + " are missing"
                                     : "entry " + std::to_string(seq) + " is out of order");
        }
        expected = seq + 1;
        std::string& buf = batch->buf;
        buf.append("keel.ledger.v1\n", 15);
        PutU64(&buf, static_cast<uint64_t>(seq));
        PutU64(&buf, static_cast<uint64_t>(q.Int(1)));
        std::string_view kind = q.TextView(3);
        for (int col = 2; col <= 7; ++col) PutStr(&buf, col == 3 ? kind : q.TextView(col));
        std::string_view arts = q.BlobView(8);
        if (arts.size() % 32 != 0) link_problem(seq, "its artifact list is damaged");
        PutU32(&buf, static_cast<uint32_t>(arts.size() / 32));
        buf.append(arts.data(), arts.size() - arts.size() % 32);
        std::string_view p = q.BlobView(9), h = q.BlobView(10);
        Digest stored{};
        if (p.size() != 32) {
          link_problem(seq, "its prev_hash is damaged");
          buf.append(32, '\0');
        } else {
          buf.append(p);
          if (std::memcmp(p.data(), prev.data(), 32) != 0) {
            link_problem(seq, seq == 1 ? "prev_hash of the first entry is not zero"
                                       : "prev_hash does not link to entry " +
                                             std::to_string(seq - 1) + "'s hash");
          }
        }
        if (h.size() != 32) {
          link_problem(seq, "its hash is damaged");
        } else {
          std::memcpy(stored.data(), h.data(), 32);
        }
        prev = stored;
        batch->ends.push_back(static_cast<uint32_t>(buf.size()));
        batch->stored.push_back(stored);
        batch->seqs.push_back(seq);
        for (size_t i = 0; i + 32 <= arts.size(); i += 32) {
          Digest d;
          std::memcpy(d.data(), arts.data() + i, 32);
          referenced_.try_emplace(d, seq);
        }
        if (kind == "artifact.put") {
          std::string subject(q.TextView(4));
          bool refs = false;
          for (size_t i = 0; i + 32 <= arts.size(); i += 32) {
            refs = refs || ToHex(reinterpret_cast<const uint8_t*>(arts.data() + i), 32) == subject;
          }
          puts_.push_back({seq, q.Int(1), std::move(subject), std::string(q.TextView(7)), refs});
        } else if (kind == "ledger.checkpoint") {
          checkpoint_entries_.emplace_back(seq, std::string(q.TextView(7)));
        }
        ++r_.entries_checked;
        if (batch->ends.size() == kBatchEntries) {
          queue.PushFull(std::move(batch));
          batch = queue.TakeFree();
        }
      }
    }
    if (!batch->ends.empty()) {
      queue.PushFull(std::move(batch));
    }
    queue.Close();
    t.join();
    roots_ = std::move(worker.roots);
    leaves_ = worker.leaves;

    int64_t bad = link_bad_seq;
    std::string why = link_bad_reason;
    if (worker.first_mismatch_seq != 0 && (bad == 0 || worker.first_mismatch_seq < bad)) {
      bad = worker.first_mismatch_seq;
      why = "its content does not match its hash (edited after it was written)";
    }
    if (bad != 0) {
      r_.first_bad_seq = bad;
      r_.first_bad_reason = why;
      Problem("ledger entry " + std::to_string(bad) + ": " + why);
    }
    if (!scan_error.empty()) {
      Problem("the ledger cannot be read past entry " + std::to_string(r_.entries_checked) +
              ": " + scan_error);
    }
  }

  void CheckCheckpoints() {
    std::optional<PublicKey> key;
    auto k = LoadLedgerPublicKey(ws_);
    if (k.ok()) {
      key = *k;
    } else if (k.status().code() != StatusCode::kNotFound) {
      Problem("the checkpoint key cannot be read: " + k.status().message());
    }
    const bool any = !rows_.empty() || !log_.entries.empty();
    if (key && !log_.exists) {
      Problem("checkpoints.log is missing although the workspace has a checkpoint key: the "
              "record kept outside the database was deleted");
    }
    if (any && !key && k.status().code() == StatusCode::kNotFound) {
      Problem("the workspace has checkpoints but no checkpoint key (keys/" +
              std::string(kLedgerPublicKeyFile) + ")");
    }
    for (const auto& b : log_.bad_lines) Problem("checkpoints.log " + b);
    if (log_.torn_tail) {
      Note("checkpoints.log ends in an incomplete line (a checkpoint interrupted before it "
           "committed); the next checkpoint removes it");
    }
    int64_t n = r_.entries_checked;
    std::set<std::pair<int64_t, std::string>> bad_sizes;
    int64_t last_good = 0;
    auto check_one = [&](const CheckpointInfo& c, const std::string& where) {
      if (key && !CheckpointSignatureValid(ws_.config().id, c, *key)) {
        Problem(Where(c, where) + ": the signature is not valid for this workspace's key");
      }
      if (c.tree_size > n) {
        Problem(Where(c, where) + " but the ledger has only " + std::to_string(n) +
                " entries: its tail was truncated or an older copy of the database was put "
                "back");
        return;
      }
      auto it = roots_.find(c.tree_size);
      if (it == roots_.end() || it->second != c.root) {
        bad_sizes.emplace(c.tree_size, where);
      } else {
        last_good = std::max(last_good, c.tree_size);
      }
    };
    std::set<int64_t> distinct;
    for (const auto& c : rows_) {
      check_one(c, "database");
      distinct.insert(c.tree_size);
      bool in_log = std::any_of(log_.entries.begin(), log_.entries.end(),
                                [&](const CheckpointInfo& l) { return SameCheckpoint(l, c); });
      if (!in_log) {
        Problem(Where(c, "database") + " is not in checkpoints.log: the log was edited or "
                                       "replaced");
      }
    }
    for (size_t i = 0; i < log_.entries.size(); ++i) {
      const auto& c = log_.entries[i];
      std::string where = "checkpoints.log line " + std::to_string(log_.line_numbers[i]);
      check_one(c, where);
      distinct.insert(c.tree_size);
      bool in_db = std::any_of(rows_.begin(), rows_.end(),
                               [&](const CheckpointInfo& d) { return SameCheckpoint(d, c); });
      if (!in_db) {
        if (std::any_of(rows_.begin(), rows_.end(),
                        [&](const CheckpointInfo& d) { return d.tree_size > c.tree_size; })) {
          Note(Where(c, where) + " has no database row (a checkpoint interrupted before it "
                                 "committed)");
        } else if (c.tree_size <= n) {
          Note(Where(c, where) + " has no database row (a checkpoint interrupted before it "
                                 "committed, or the newest rows were removed)");
        }
      }
    }
    for (const auto& [size, where] : bad_sizes) {
      std::string range = last_good < size ? " (entries up to " + std::to_string(last_good) +
                                                 " match an earlier checkpoint; the change lies "
                                                 "between " +
                                                 std::to_string(last_good + 1) + " and " +
                                                 std::to_string(size) + ")"
                                           : "";
      Problem("the first " + std::to_string(size) + " entries no longer match the " +
              Where(CheckpointInfo{size, {}, 0, {}, {}}, where) + range);
    }
    // A checkpoint row of size T commits together with its ledger.checkpoint entry T + 1,
    // so removing only that last entry is noticed too.
    for (const auto& c : rows_) {
      bool found = false;
      for (const auto& [seq, payload] : checkpoint_entries_) {
        if (seq != c.tree_size + 1) continue;
        auto j = nlohmann::json::parse(payload, nullptr, false);
        found = !j.is_discarded() && j.is_object() && j.value("tree_size", int64_t{-1}) == c.tree_size;
      }
      if (!found && c.tree_size < n + 1) {
        Problem(Where(c, "database") + ": ledger entry " + std::to_string(c.tree_size + 1) +
                " that records it is missing or altered");
      }
    }
    // Each ledger.checkpoint entry names a checkpoint row committed with it.
    for (const auto& [seq, payload] : checkpoint_entries_) {
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("tree_size") ||
          !j["tree_size"].is_number_integer()) {
        Problem("ledger entry " + std::to_string(seq) + " (ledger.checkpoint) has no tree_size");
        continue;
      }
      int64_t size = j["tree_size"].get<int64_t>();
      bool found = std::any_of(rows_.begin(), rows_.end(), [&](const CheckpointInfo& c) {
        return c.tree_size == size && j.value("root", "") == ToHex(c.root);
      });
      if (!found) {
        Problem("ledger entry " + std::to_string(seq) + " records a checkpoint of " +
                std::to_string(size) + " entries that is missing from the checkpoints table");
      }
    }
    r_.checkpoints_checked = static_cast<int64_t>(distinct.size());
    r_.last_checkpoint_size = distinct.empty() ? 0 : *distinct.rbegin();
    if (distinct.empty() && n >= ws_.config().checkpoint_every) {
      Note("the ledger has no signed checkpoint yet: a truncated tail would go unnoticed; run "
           "`keel checkpoint`");
    }
  }

  void CheckArtifacts() {
    FileSystem* fs = ws_.env().fs;
    std::string dir = ws_.artifacts_dir();
    r_.artifacts_referenced = static_cast<int64_t>(referenced_.size());
    // Files on disk.
    std::unordered_map<Digest, bool, DigestHasher> files;  // -> content intact
    auto subs = fs->ListDir(dir);
    if (!subs.ok()) {
      Problem("artifacts/ cannot be listed: " + subs.status().message());
      subs = std::vector<std::string>();
    }
    for (const std::string& sub : *subs) {
      std::string subdir = JoinPath(dir, sub);
      auto names = fs->ListDir(subdir);
      if (!names.ok()) {
        Note("artifacts/" + sub + " is not a folder of artifacts");
        continue;
      }
      for (const std::string& name : *names) {
        std::string rel = "artifacts/" + sub + "/" + name;
        if (!IsDigestHex(name) || name.compare(0, 2, sub) != 0) {
          Note(rel + " is not an artifact (left over from an interrupted write?)");
          continue;
        }
        Digest d;
        ParseDigestHex(name, &d);
        auto content = fs->ReadFile(JoinPath(subdir, name), kMaxArtifactBytes);
        ++r_.artifact_files_checked;
        bool intact = content.ok() && Sha256Of(*content) == d;
        files[d] = intact;
        if (!content.ok()) {
          Problem("artifact " + name + " cannot be read: " + content.status().message());
        } else if (!intact) {
          Problem("artifact " + name + " is damaged: its content hashes to " +
                  Sha256Hex(*content));
        } else if (referenced_.find(d) == referenced_.end()) {
          Note("artifact file " + name + " is not referenced by any ledger entry (an "
               "interrupted put; the next put of the same content adopts it)");
        }
      }
    }
    std::vector<std::pair<int64_t, Digest>> missing;
    for (const auto& [d, seq] : referenced_) {
      if (files.find(d) == files.end()) missing.emplace_back(seq, d);
    }
    std::sort(missing.begin(), missing.end());
    for (const auto& [seq, d] : missing) {
      Problem("artifact " + ToHex(d) + " referenced by ledger entry " + std::to_string(seq) +
              " is missing");
    }
    // Metadata rows against their artifact.put entries.
    auto st = ws_.db()->Prepare(
        "SELECT hash, size, media_type, parent, name, created_us, ledger_seq, (typeof(hash) = "
        "'text' AND typeof(size) = 'integer' AND typeof(media_type) = 'text' AND "
        "typeof(parent) IN ('text', 'null') AND typeof(name) = 'text' AND typeof(created_us) = "
        "'integer' AND typeof(ledger_seq) = 'integer') FROM artifacts ORDER BY ledger_seq");
    if (!st.ok()) {
      Problem("the artifacts table cannot be read: " + st.status().message());
      return;
    }
    std::unordered_map<int64_t, const PutEntry*> by_seq;
    for (const auto& p : puts_) by_seq[p.seq] = &p;
    std::set<int64_t> rows_seen;
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) {
        Problem("the artifacts table cannot be read: " + row.status().message());
        break;
      }
      if (!*row) break;
      ++r_.artifact_rows_checked;
      sql::Stmt& q = **st;
      std::string hash = q.Text(0);
      int64_t seq = q.Int(6);
      rows_seen.insert(seq);
      auto it = by_seq.find(seq);
      std::string what = "artifact " + hash.substr(0, 80) + ": its metadata row ";
      if (it == by_seq.end()) {
        Problem(what + "names ledger entry " + std::to_string(seq) +
                ", which is not an artifact.put entry");
        continue;
      }
      const PutEntry& e = *it->second;
      auto j = nlohmann::json::parse(e.payload, nullptr, false);
      bool match = q.Int(7) == 1 && !j.is_discarded() && j.is_object() && e.subject == hash &&
                   e.references_subject && q.Int(5) == e.time_us &&
                   j.value("media_type", "") == q.Text(2) &&
                   j.value("size", int64_t{-1}) == q.Int(1) &&
                   j.value("name", "") == q.Text(4) &&
                   j.value("parent", "") == (q.IsNull(3) ? "" : q.Text(3));
      if (!match) {
        Problem(what + "does not match ledger entry " + std::to_string(seq));
      }
      Digest d;
      if (ParseDigestHex(hash, &d) && files.find(d) == files.end() &&
          referenced_.find(d) == referenced_.end()) {
        Problem("artifact " + hash + " has a metadata row but no content file");
      }
    }
    for (const auto& p : puts_) {
      if (rows_seen.count(p.seq) == 0) {
        Problem("ledger entry " + std::to_string(p.seq) + " (artifact.put " +
                p.subject.substr(0, 80) + ") has no metadata row");
      }
    }
  }

  void IntegrityCheck() {
    auto st = ws_.db()->Prepare("PRAGMA integrity_check");
    if (!st.ok()) {
      r_.integrity = st.status().message();
      Problem("SQLite integrity check could not run: " + r_.integrity);
      return;
    }
    std::string first;
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) {
        first = row.status().message();
        break;
      }
      if (!*row) break;
      std::string msg = (*st)->Text(0);
      if (msg == "ok") continue;
      if (first.empty()) first = msg;
    }
    if (first.empty()) {
      r_.integrity = "ok";
    } else {
      r_.integrity = first;
      Problem("SQLite integrity check: " + first);
    }
  }

  Workspace& ws_;
  const VerifyOptions& opts_;
  VerifyReport& r_;
  CheckpointLog log_;
  std::vector<CheckpointInfo> rows_;
  std::map<int64_t, Digest> roots_;
  int64_t leaves_ = 0;
  std::unordered_map<Digest, int64_t, DigestHasher> referenced_;  // -> first seq
  std::vector<PutEntry> puts_;
  std::vector<std::pair<int64_t, std::string>> checkpoint_entries_;
};

}  // namespace

Result<VerifyReport> VerifyWorkspace(const std::string& dir, const VerifyOptions& opts,
                                     const Env& env) {
  auto t0 = std::chrono::steady_clock::now();
  VerifyReport r;
  WorkspaceOpenOptions o;
  o.read_only = true;
  auto ws = Workspace::Open(dir, o, env);
  if (!ws.ok()) {
    StatusCode c = ws.status().code();
    if (c == StatusCode::kNotFound || c == StatusCode::kPermissionDenied ||
        c == StatusCode::kInvalidArgument) {
      return ws.status();
    }
    // The database exists but SQLite cannot open or read it: that is damage to report.
    r.problems.push_back("the database cannot be opened: " + ws.status().message());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }
  {
    std::lock_guard<std::recursive_mutex> lock((*ws)->mu());
    Verifier v(**ws, opts, &r);
    v.Run();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace keel::store
