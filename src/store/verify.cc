#include "store/verify.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/ledger.h"
#include "store/merkle.h"
#include "store/sqlite/database.h"
#include "store/sqlite/fts.h"
#include "store/sqlite/sql.h"
#include "store/state.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

// Problems reported per state table; the rest are counted.
constexpr int64_t kPerTable = 20;

// Below this many entries one thread scans everything; above, two threads each scan a range
// on their own connection.
constexpr int64_t kParallelFrom = 8192;

struct DigestHasher {
  size_t operator()(const Digest& d) const {
    size_t v;
    std::memcpy(&v, d.data(), sizeof v);
    return v;
  }
};

// A keyed 128-bit digest of a row's image values (RowRefs::ImageOf).
struct ImageDigest {
  uint64_t a = 0, b = 0;
  bool operator!=(const ImageDigest& o) const { return a != o.a || b != o.b; }
};

// The last image the ledger holds for a row: what the row must be.
struct Expected {
  int64_t seq = 0;       // the entry that wrote it
  ImageDigest digest{};  // of the image's values (a put)
  int16_t table = -1;
  bool put = true;
  bool seen = false;
};

// A row's identity and its image's digest: SipHash-2-4 (128-bit) of the table index and
// key encoding, and of the image's values, each under a key drawn at random for each
// verify, so that no edit can be crafted to collide with another row or another image
// (SipHash is a keyed PRF: without the key, a collision is a 2^-128 guess). The digests are
// compared only inside one verify, never stored, so they need no fixed function; SHA-256
// here took a fifth of the state check, mostly in per-call overhead for short inputs.
// Fixed-size keys keep the map free of a string per row, which at a million rows was a
// fifth of verify's time.
struct RowRef {
  uint64_t a = 0, b = 0;
  bool operator==(const RowRef& o) const { return a == o.a && b == o.b; }
};
struct RowRefHash {
  size_t operator()(const RowRef& r) const { return static_cast<size_t>(r.a); }
};
using ExpectedRows = std::unordered_map<RowRef, Expected, RowRefHash>;

class RowRefs {
 public:
  RowRefs() {
    if (sodium_init() < 0) std::abort();  // libsodium cannot run at all on this machine
    randombytes_buf(key_, sizeof key_);
    randombytes_buf(image_key_, sizeof image_key_);
  }
  ImageDigest ImageOf(std::string_view values) const {
    unsigned char out[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(out, reinterpret_cast<const unsigned char*>(values.data()),
                                values.size(), image_key_);
    ImageDigest d;
    std::memcpy(&d.a, out, 8);
    std::memcpy(&d.b, out + 8, 8);
    return d;
  }
  RowRef Of(int table, std::string_view key) const {
    thread_local std::string buf;
    buf.assign(1, static_cast<char>(table));
    buf.append(key);
    unsigned char out[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(out, reinterpret_cast<const unsigned char*>(buf.data()), buf.size(),
                                key_);
    RowRef r;
    std::memcpy(&r.a, out, 8);
    std::memcpy(&r.b, out + 8, 8);
    return r;
  }

 private:
  unsigned char key_[crypto_shorthash_siphashx24_KEYBYTES];
  unsigned char image_key_[crypto_shorthash_siphashx24_KEYBYTES];
};

struct PutEntry {
  int64_t seq;
  int64_t time_us;
  std::string subject;
  std::string payload;
  bool references_subject;
};

// Scans the entries with lo <= seq <= hi: checks types, seq continuity and prev links
// inside the range, recomputes each hash, and builds the Merkle tree over the stored hashes
// (whose first leaf is tree position `offset`), taking the root at each wanted tree size.
struct RangeScan {
  int64_t lo = 1, hi = 0, offset = 0;
  std::vector<int64_t> wanted;  // absolute tree sizes in (offset, offset + hi - lo + 1]

  int64_t count = 0, first_seq = 0, last_seq = 0;
  Digest first_prev{}, last_hash{};
  int64_t bad_seq = 0;
  std::string bad_reason;
  int64_t mismatch_seq = 0;
  std::map<int64_t, Digest> roots;  // by absolute tree size; relative to offset
  Digest final_root{};
  int64_t leaves = 0;
  std::unordered_map<Digest, int64_t, DigestHasher> referenced;  // -> first seq
  std::vector<PutEntry> puts;
  std::vector<std::pair<int64_t, std::string>> checkpoint_entries;
  const RowRefs* ids = nullptr;
  ExpectedRows images;  // the last image per row within this range
  int64_t image_count = 0;
  int64_t unknown_table_seq = 0;  // the first image of a table this keel does not know
  std::string unknown_table;
  std::string error;

  void Problem(int64_t seq, std::string why) {
    if (bad_seq == 0) {
      bad_seq = seq;
      bad_reason = std::move(why);
    }
  }

  void Run(sql::Db* db) {
    auto st = db->Prepare(
        "SELECT seq, time_us, actor, kind, subject, run_id, step_id, payload, artifacts, "
        "prev_hash, hash, state FROM ledger WHERE seq >= ? AND seq <= ? ORDER BY seq");
    if (!st.ok()) {
      error = st.status().message();
      return;
    }
    sql::Stmt& q = **st;
    q.Bind(1, lo).Bind(2, hi);
    MerkleHasher h;
    MerkleTreeBuilder tree;
    std::string buf;
    buf.reserve(4096);
    std::vector<StateWrite> writes;
    std::string why;
    size_t w = 0;
    auto take_roots = [&] {
      int64_t size = offset + static_cast<int64_t>(tree.size());
      while (w < wanted.size() && wanted[w] <= size) {
        if (wanted[w] == size) roots[size] = tree.Root();
        ++w;
      }
    };
    take_roots();
    int64_t expected = lo;
    Digest prev{};
    for (;;) {
      auto row = q.Step();
      if (!row.ok()) {
        error = row.status().message();
        break;
      }
      if (!*row) break;
      int64_t seq = q.Int(0);
      bool types_ok = q.Type(0) == sql::ColType::kInteger && q.Type(1) == sql::ColType::kInteger;
      for (int c = 2; c <= 7; ++c) types_ok = types_ok && q.Type(c) == sql::ColType::kText;
      for (int c = 8; c <= 11; ++c) types_ok = types_ok && q.Type(c) == sql::ColType::kBlob;
      if (!types_ok) Problem(seq, "a column holds a value of the wrong type");
      std::string_view state = q.BlobView(11);
      if (seq != expected) {
        Problem(expected, seq > expected ? "entries " + std::to_string(expected) + ".." +
                                               std::to_string(seq - 1) + " are missing"
                                         : "entry " + std::to_string(seq) + " is out of order");
      }
      expected = seq + 1;
      buf.clear();
      buf.append(state.empty() ? "keel.ledger.v1\n" : "keel.ledger.v2\n", 15);
      PutU64(&buf, static_cast<uint64_t>(seq));
      PutU64(&buf, static_cast<uint64_t>(q.Int(1)));
      std::string_view kind = q.TextView(3);
      PutStr(&buf, q.TextView(2));
      PutStr(&buf, kind);
      for (int col = 4; col <= 7; ++col) PutStr(&buf, q.TextView(col));
      std::string_view arts = q.BlobView(8);
      if (arts.size() % 32 != 0) Problem(seq, "its artifact list is damaged");
      PutU32(&buf, static_cast<uint32_t>(arts.size() / 32));
      buf.append(arts.data(), arts.size() - arts.size() % 32);
      if (!state.empty()) PutStr(&buf, state);
      std::string_view p = q.BlobView(9), hv = q.BlobView(10);
      Digest prev_col{};
      if (p.size() != 32) {
        Problem(seq, "its prev_hash is damaged");
      } else {
        std::memcpy(prev_col.data(), p.data(), 32);
      }
      buf.append(reinterpret_cast<const char*>(prev_col.data()), 32);
      Digest stored{};
      if (hv.size() != 32) {
        Problem(seq, "its hash is damaged");
      } else {
        std::memcpy(stored.data(), hv.data(), 32);
      }
      if (count == 0) {
        first_seq = seq;
        first_prev = prev_col;
      } else if (prev_col != prev) {
        Problem(seq, "prev_hash does not link to entry " + std::to_string(seq - 1) + "'s hash");
      }
      if (mismatch_seq == 0 && h.Plain(buf) != stored) mismatch_seq = seq;
      prev = stored;
      tree.AddLeafHash(h.Leaf(stored));
      if (w < wanted.size()) take_roots();
      for (size_t i = 0; i + 32 <= arts.size(); i += 32) {
        Digest d;
        std::memcpy(d.data(), arts.data() + i, 32);
        referenced.try_emplace(d, seq);
      }
      if (ids != nullptr && !state.empty()) {
        if (!ParseState(state, &writes, &why)) {
          Problem(seq, why);
        } else {
          for (const StateWrite& sw : writes) {
            ++image_count;
            int table = StateTableIndex(sw.table);
            if (table < 0) {
              if (unknown_table_seq == 0) {
                unknown_table_seq = seq;
                unknown_table = std::string(sw.table.substr(0, 80));
              }
              continue;
            }
            Expected& e = images[ids->Of(table, sw.key)];
            e.seq = seq;
            e.table = static_cast<int16_t>(table);
            e.put = sw.put;
            if (sw.put) e.digest = ids->ImageOf(sw.values);
          }
        }
      }
      if (kind == "artifact.put") {
        std::string subject(q.TextView(4));
        bool refs = false;
        for (size_t i = 0; i + 32 <= arts.size(); i += 32) {
          refs = refs || ToHex(reinterpret_cast<const uint8_t*>(arts.data() + i), 32) == subject;
        }
        puts.push_back({seq, q.Int(1), std::move(subject), std::string(q.TextView(7)), refs});
      } else if (kind == "ledger.checkpoint") {
        checkpoint_entries.emplace_back(seq, std::string(q.TextView(7)));
      }
      ++count;
      last_seq = seq;
    }
    last_hash = prev;
    final_root = tree.Root();
    leaves = static_cast<int64_t>(tree.size());
  }
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
    sql::PreferMappedReads(db);  // verify reads the whole file once
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
    if (opts_.state) CheckState();
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
    auto n_or = ws_.db()->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM ledger");
    if (!n_or.ok()) {
      Problem("the ledger cannot be read: " + n_or.status().message());
      return;
    }
    const int64_t n = *n_or;
    // RFC 6962 splits a tree of n leaves at k, the largest power of two below n; every tree
    // size in (k, n] has the same perfect left subtree [0, k). So the two halves hash
    // independently and combine: root(s) = node(root[0, k), root[k, s)).
    int64_t k = n;
    if (n >= kParallelFrom) {
      k = 1;
      while (k * 2 < n) k *= 2;
    }
    RangeScan a, b;
    if (opts_.state) {
      a.ids = b.ids = &ids_;
      // About one row per entry: growing the maps one rehash at a time cost a tenth of
      // the state check.
      a.images.reserve(static_cast<size_t>(k));
      b.images.reserve(static_cast<size_t>(n - k));
    }
    a.lo = 1;
    a.hi = k;
    b.lo = k + 1;
    b.hi = n;
    b.offset = k;
    for (int64_t s : sizes) (s <= k ? a.wanted : b.wanted).push_back(s);
    std::thread t;
    std::string b_open_error;
    if (k < n) {
      t = std::thread([&] {
        sql::OpenOptions o;
        o.read_only = true;
        auto db = sql::Db::Open(ws_.db_path(), o);
        if (!db.ok()) {
          b.error = db.status().message();
          return;
        }
        sql::PreferMappedReads(db->get());
        // Entries are append-only, so a second read transaction sees the same entries up
        // to n as the main one (anything newer is outside the range).
        if (Status s = (*db)->Exec("BEGIN"); !s.ok()) {
          b.error = s.message();
          return;
        }
        b.Run(db->get());
        (*db)->Exec("COMMIT").IgnoreError();
      });
    }
    a.Run(ws_.db());
    if (t.joinable()) t.join();

    r_.entries_checked = a.count + b.count;
    // The later range's images win: they were written after.
    images_ = std::move(a.images);
    while (!b.images.empty()) {
      auto node = b.images.extract(b.images.begin());
      auto it = images_.find(node.key());
      if (it != images_.end()) {
        it->second = node.mapped();
      } else {
        images_.insert(std::move(node));
      }
    }
    roots_ = std::move(a.roots);
    for (const auto& [size, partial] : b.roots) {
      MerkleHasher h;
      roots_[size] = h.Node(a.final_root, partial);
    }
    // Findings in seq order: the first bad entry is the smallest seq any check names.
    std::vector<std::pair<int64_t, std::string>> bad;
    auto add = [&](int64_t seq, const std::string& why) {
      if (seq != 0) bad.emplace_back(seq, why);
    };
    const std::string kMismatch =
        "its content does not match its hash (edited after it was written)";
    if (a.count > 0 && a.first_seq == 1 && a.first_prev != Digest{}) {
      add(1, "prev_hash of the first entry is not zero");
    }
    add(a.bad_seq, a.bad_reason);
    add(a.mismatch_seq, kMismatch);
    if (b.count > 0) {
      if (a.last_seq != k) {
        add(a.last_seq + 1, "entries " + std::to_string(a.last_seq + 1) + ".." + std::to_string(k) +
                                " are missing");
      } else if (b.first_seq == k + 1 && b.first_prev != a.last_hash) {
        add(k + 1, "prev_hash does not link to entry " + std::to_string(k) + "'s hash");
      }
      add(b.bad_seq, b.bad_reason);
      add(b.mismatch_seq, kMismatch);
    }
    if (!bad.empty()) {
      auto first = *std::min_element(
          bad.begin(), bad.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      r_.first_bad_seq = first.first;
      r_.first_bad_reason = first.second;
      Problem("ledger entry " + std::to_string(first.first) + ": " + first.second);
    }
    for (RangeScan* part : {&a, &b}) {
      if (!part->error.empty()) {
        Problem("the ledger cannot be read past entry " +
                std::to_string(std::max(part->last_seq, part->lo - 1)) + ": " + part->error);
      }
      for (const auto& [d, seq] : part->referenced) referenced_.try_emplace(d, seq);
      r_.state_images += part->image_count;
      if (part->unknown_table_seq != 0 && unknown_table_seq_ == 0) {
        unknown_table_seq_ = part->unknown_table_seq;
        unknown_table_ = part->unknown_table;
      }
      for (auto& p : part->puts) puts_.push_back(std::move(p));
      for (auto& c : part->checkpoint_entries) checkpoint_entries_.push_back(std::move(c));
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
      Problem(
          "checkpoints.log is missing although the workspace has a checkpoint key: the "
          "record kept outside the database was deleted");
    }
    if (any && !key && k.status().code() == StatusCode::kNotFound) {
      Problem("the workspace has checkpoints but no checkpoint key (keys/" +
              std::string(kLedgerPublicKeyFile) + ")");
    }
    for (const auto& b : log_.bad_lines) Problem("checkpoints.log " + b);
    if (log_.torn_tail) {
      Note(
          "checkpoints.log ends in an incomplete line (a checkpoint interrupted before it "
          "committed); the next checkpoint removes it");
    }
    int64_t n = r_.entries_checked;
    std::set<std::pair<int64_t, std::string>> bad_sizes;
    int64_t last_good = 0;
    std::map<Signature, bool> sig_ok;  // the table and the log hold the same checkpoints
    auto check_one = [&](const CheckpointInfo& c, const std::string& where) {
      auto it_sig = sig_ok.find(c.signature);
      if (it_sig == sig_ok.end() && key) {
        it_sig =
            sig_ok.emplace(c.signature, CheckpointSignatureValid(ws_.config().id, c, *key)).first;
      }
      if (key && !it_sig->second) {
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
    std::multimap<int64_t, const CheckpointInfo*> log_by_size, rows_by_size;
    for (const auto& c : log_.entries) log_by_size.emplace(c.tree_size, &c);
    for (const auto& c : rows_) rows_by_size.emplace(c.tree_size, &c);
    for (const auto& c : rows_) {
      check_one(c, "database");
      distinct.insert(c.tree_size);
      auto [lo, hi] = log_by_size.equal_range(c.tree_size);
      bool in_log =
          std::any_of(lo, hi, [&](const auto& l) { return SameCheckpoint(*l.second, c); });
      if (!in_log) {
        Problem(Where(c, "database") +
                " is not in checkpoints.log: the log was edited or "
                "replaced");
      }
    }
    for (size_t i = 0; i < log_.entries.size(); ++i) {
      const auto& c = log_.entries[i];
      std::string where = "checkpoints.log line " + std::to_string(log_.line_numbers[i]);
      check_one(c, where);
      distinct.insert(c.tree_size);
      auto [lo, hi] = rows_by_size.equal_range(c.tree_size);
      bool in_db = std::any_of(lo, hi, [&](const auto& d) { return SameCheckpoint(*d.second, c); });
      if (!in_db) {
        if (!rows_.empty() && rows_.back().tree_size > c.tree_size) {
          Note(Where(c, where) +
               " has no database row (a checkpoint interrupted before it "
               "committed)");
        } else if (c.tree_size <= n) {
          Note(Where(c, where) +
               " has no database row (a checkpoint interrupted before it "
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
    std::map<int64_t, const std::string*> entry_by_seq;
    for (const auto& [seq, payload] : checkpoint_entries_) entry_by_seq[seq] = &payload;
    for (const auto& c : rows_) {
      bool found = false;
      if (auto e = entry_by_seq.find(c.tree_size + 1); e != entry_by_seq.end()) {
        auto j = nlohmann::json::parse(*e->second, nullptr, false);
        found =
            !j.is_discarded() && j.is_object() && j.value("tree_size", int64_t{-1}) == c.tree_size;
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
      auto [lo, hi] = rows_by_size.equal_range(size);
      bool found = std::any_of(
          lo, hi, [&](const auto& c) { return j.value("root", "") == ToHex(c.second->root); });
      if (!found) {
        Problem("ledger entry " + std::to_string(seq) + " records a checkpoint of " +
                std::to_string(size) + " entries that is missing from the checkpoints table");
      }
    }
    r_.checkpoints_checked = static_cast<int64_t>(distinct.size());
    r_.last_checkpoint_size = distinct.empty() ? 0 : *distinct.rbegin();
    if (distinct.empty() && n >= ws_.config().checkpoint_every) {
      Note(
          "the ledger has no signed checkpoint yet: a truncated tail would go unnoticed; run "
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
          Problem("artifact " + name + " is damaged: its content hashes to " + Sha256Hex(*content));
        } else if (referenced_.find(d) == referenced_.end()) {
          Note("artifact file " + name +
               " is not referenced by any ledger entry (an "
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
                   j.value("size", int64_t{-1}) == q.Int(1) && j.value("name", "") == q.Text(4) &&
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

  // How a person names a row: its id (records, facts, decisions are keyed by an internal
  // number), else its key values joined by '/'.
  static std::string RowName(const StateTable& t, std::string_view values) {
    std::vector<StateValue> v;
    if (!ParseValues(values, &v) || v.empty()) return "(damaged key)";
    if (t.key_cols == 1 && std::string_view(t.cols[0].name) == "n" && v.size() > 1 &&
        std::string_view(t.cols[1].name) == "id" && v[1].type == 't') {
      return std::string(v[1].bytes.substr(0, 120)) + " (n " + ValueText(v[0]) + ")";
    }
    std::string out;
    for (int k = 0; k < t.key_cols && k < static_cast<int>(v.size()); ++k) {
      if (k) out += '/';
      out += v[static_cast<size_t>(k)].type == 't'
                 ? std::string(v[static_cast<size_t>(k)].bytes.substr(0, 120))
                 : ValueText(v[static_cast<size_t>(k)]);
    }
    return out;
  }

  // "ledger entry 12 (record.changed)", and the image it holds for the row, if readable.
  std::string EntryName(sql::Db* db, int64_t seq, const StateTable& t, const RowRef& id,
                        std::string* image) {
    std::string name = "ledger entry " + std::to_string(seq);
    auto st = db->Prepare("SELECT kind, state FROM ledger WHERE seq = ?");
    if (!st.ok()) return name;
    (*st)->Bind(1, seq);
    auto row = (*st)->Step();
    if (!row.ok() || !*row) return name;
    name += " (" + (*st)->Text(0) + ")";
    std::vector<StateWrite> writes;
    std::string why;
    if (image && ParseState((*st)->BlobView(1), &writes, &why)) {
      const int table = StateTableIndex(t.name);
      for (const StateWrite& w : writes) {
        if (w.table == t.name && ids_.Of(table, w.key) == id) *image = std::string(w.values);
      }
    }
    return name;
  }

  // What differs between a row and its image: "email is 'a' where ... wrote 'b'".
  static std::string Difference(const StateTable& t, std::string_view row, std::string_view image,
                                const std::string& entry) {
    std::vector<StateValue> a, b;
    if (!ParseValues(row, &a) || !ParseValues(image, &b) || a.size() != b.size()) {
      return "differs from " + entry;
    }
    std::string out;
    int shown = 0;
    for (size_t i = 0; i < a.size() && i < t.cols.size(); ++i) {
      if (a[i].raw == b[i].raw) continue;
      if (shown++ == 3) {
        out += ", and more";
        break;
      }
      if (!out.empty()) out += "; ";
      out += std::string(t.cols[i].name) + " is " + ValueText(a[i]) + " where " + entry +
             " wrote " + ValueText(b[i]);
    }
    return out.empty() ? "differs from " + entry : out;
  }

  struct TableFindings {
    std::vector<std::string> problems;
    std::map<std::string, int64_t> bad;  // problems per table, reported up to kPerTable
    int64_t rows = 0;
  };

  // Compares every row of `t` (read on `db`) with its image, marking the images seen.
  // Safe on two threads at once for different tables: each touches only its table's images.
  void CheckTable(sql::Db* db, const StateTable& t, TableFindings* out) {
    std::string buf;
    auto report = [&](const std::string& what) {
      if (++out->bad[t.name] <= kPerTable) out->problems.push_back(what);
    };
    const int table = StateTableIndex(t.name);
    auto st = db->Prepare(SelectCoveredSql(t, ""));
    if (!st.ok()) {
      out->problems.push_back(std::string("the ") + t.name +
                              " table cannot be read: " + st.status().message());
      return;
    }
    sql::Stmt& q = **st;
    for (;;) {
      auto row = q.Step();
      if (!row.ok()) {
        out->problems.push_back(std::string("the ") + t.name +
                                " table cannot be read: " + row.status().message());
        break;
      }
      if (!*row) break;
      ++out->rows;
      buf.clear();
      size_t key_len = PutRowValues(t, q, &buf);
      std::string_view values = buf;
      const RowRef id = ids_.Of(table, values.substr(0, key_len));
      auto it = images_.find(id);
      auto what = [&] { return std::string(t.name) + " " + RowName(t, values) + ": "; };
      if (it == images_.end()) {
        report(what() + "the row is on no ledger entry (added behind keel's back)");
        continue;
      }
      Expected& e = it->second;
      e.seen = true;
      if (!e.put) {
        report(what() + "the row exists but " + EntryName(db, e.seq, t, id, nullptr) +
               " deleted it");
      } else if (ids_.ImageOf(values) != e.digest) {
        std::string image;
        std::string entry = EntryName(db, e.seq, t, id, &image);
        report(what() + Difference(t, values, image, entry));
      }
    }
  }

  void CheckState() {
    sql::Db* db = ws_.db();
    auto since = db->Prepare("SELECT value FROM meta WHERE key = ?");
    if (since.ok()) {
      (*since)->Bind(1, std::string(kStateImagesSinceKey));
      auto row = (*since)->Step();
      if (row.ok() && !*row) {
        Problem("the database has no " + std::string(kStateImagesSinceKey) +
                " mark: its state was never attested (open it once with a write command)");
      }
    }
    // Two threads share the tables, the second on its own connection, each taking the
    // largest table left (by the rows the ledger says it has) until none is. The second's
    // read transaction sees the same state as ours when it sees the same ledger: every
    // commit that changes a covered table appends an entry (Workspace refuses one that does
    // not). Otherwise, with another process writing, this thread checks every table itself.
    std::vector<int64_t> expected_rows(StateTables().size(), 0);
    for (const auto& [id, e] : images_) {
      if (e.put) ++expected_rows[static_cast<size_t>(e.table)];
    }
    std::vector<const StateTable*> order;
    for (const StateTable& t : StateTables()) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), [&](const StateTable* x, const StateTable* y) {
      return expected_rows[static_cast<size_t>(StateTableIndex(x->name))] >
             expected_rows[static_cast<size_t>(StateTableIndex(y->name))];
    });
    std::atomic<size_t> next{0};
    auto take = [&]() -> const StateTable* {
      size_t i = next.fetch_add(1);
      return i < order.size() ? order[i] : nullptr;
    };
    TableFindings other;
    std::thread helper;
    if (r_.entries_checked >= kParallelFrom) {
      helper = std::thread([&] {
        sql::OpenOptions o;
        o.read_only = true;
        auto db2 = sql::Db::Open(ws_.db_path(), o);
        if (!db2.ok()) return;
        sql::PreferMappedReads(db2->get());
        if (!(*db2)->Exec("BEGIN").ok()) return;
        auto tail = (*db2)->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM ledger");
        if (tail.ok() && *tail == r_.entries_checked) {
          while (const StateTable* t = take()) CheckTable(db2->get(), *t, &other);
        }
        (*db2)->Exec("COMMIT").IgnoreError();
      });
    }
    TableFindings found;
    while (const StateTable* t = take()) CheckTable(db, *t, &found);
    if (helper.joinable()) helper.join();
    for (TableFindings* f : {&found, &other}) {
      for (auto& p : f->problems) Problem(std::move(p));
      r_.state_rows_checked += f->rows;
    }
    std::map<std::string, int64_t> bad = std::move(found.bad);
    for (const auto& [t, n] : other.bad) bad[t] += n;
    auto report = [&](const StateTable& t, const std::string& what) {
      if (++bad[t.name] <= kPerTable) Problem(what);
    };
    // Rows the ledger says exist that no table holds.
    for (const auto& [id, e] : images_) {
      if (e.seen || !e.put) continue;
      const StateTable& t = StateTables()[static_cast<size_t>(e.table)];
      if (bad[t.name] >= kPerTable) {
        ++bad[t.name];
        continue;
      }
      std::string image;
      std::string entry = EntryName(db, e.seq, t, id, &image);
      report(t, std::string(t.name) + " " + RowName(t, image) +
                    ": the row is missing (deleted behind keel's back; " + entry + " wrote it)");
    }
    if (unknown_table_seq_ != 0) {
      Problem("ledger entry " + std::to_string(unknown_table_seq_) + " holds an image of table " +
              unknown_table_ + ", which this keel does not know (written by a newer keel?)");
    }
    for (const auto& [table, n] : bad) {
      if (n > kPerTable) {
        Problem("… and " + std::to_string(n - kPerTable) + " more rows of " + table +
                " that do not match the ledger");
      }
    }
    CheckFactIndex();
  }

  // The full-text index must hold exactly the facts that are not superseded (the rows of
  // facts are checked above; the index is derived from them). Its tokens are not compared:
  // an edit there can only change which verified facts a recall finds, and
  // --repair-from-ledger rebuilds it.
  void CheckFactIndex() {
    auto diff = sql::FtsIndexedRowsMismatch(ws_.db(), 5);
    if (!diff.ok()) {
      Problem("the full-text index of facts cannot be read: " + diff.status().message());
      return;
    }
    for (const auto& [n, why] : *diff) {
      Problem("facts_fts row " + std::to_string(n) + ": " + why +
              " (rebuild it with `keel verify --repair-from-ledger`)");
    }
  }

  void IntegrityCheck() {
    auto check = sql::IntegrityCheck(ws_.db());
    if (!check.ok()) {
      r_.integrity = check.status().message();
      Problem("SQLite integrity check could not run: " + r_.integrity);
      return;
    }
    r_.integrity = *check;
    if (r_.integrity != "ok") Problem("SQLite integrity check: " + r_.integrity);
  }

  Workspace& ws_;
  const VerifyOptions& opts_;
  VerifyReport& r_;
  CheckpointLog log_;
  std::vector<CheckpointInfo> rows_;
  std::map<int64_t, Digest> roots_;
  std::unordered_map<Digest, int64_t, DigestHasher> referenced_;  // -> first seq
  std::vector<PutEntry> puts_;
  std::vector<std::pair<int64_t, std::string>> checkpoint_entries_;
  RowRefs ids_;
  ExpectedRows images_;
  int64_t unknown_table_seq_ = 0;
  std::string unknown_table_;
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
