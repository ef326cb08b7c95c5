#include "store/state.h"

#include <cstring>
#include <unordered_map>

#include "store/ledger.h"
#include "store/merkle.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

std::vector<StateColumn> Cols(std::initializer_list<const char*> names) {
  std::vector<StateColumn> out;
  for (const char* n : names) out.push_back({n, Cover::kValue});
  return out;
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The length of the value encoded at the start of `s`, or 0 if it is malformed.
size_t ValueLength(std::string_view s) {
  if (s.empty()) return 0;
  switch (s[0]) {
    case 'n':
      return 1;
    case 'i':
    case 'f':
      return s.size() >= 9 ? 9 : 0;
    case 'h':
      return s.size() >= 33 ? 33 : 0;
    case 't':
    case 'b': {
      if (s.size() < 5) return 0;
      uint64_t n = GetU32(s.data() + 1);
      return s.size() - 5 >= n ? 5 + n : 0;
    }
    default:
      return 0;
  }
}

}  // namespace

const std::vector<StateTable>& StateTables() {
  static const std::vector<StateTable> tables = [] {
    std::vector<StateTable> t;
    t.push_back({"artifacts",
                 1,
                 Cols({"hash", "size", "media_type", "parent", "name", "created_us", "ledger_seq"}),
                 {}});
    t.push_back({"artifact_origins", 1, Cols({"artifact", "origin", "time_us", "ledger_seq"}), {}});
    t.push_back({"records",
                 1,
                 Cols({"n", "id", "type", "data", "email", "version", "created_us", "updated_us"}),
                 {}});
    StateTable secrets{"secrets", 1, Cols({"name", "nonce", "ciphertext", "updated_us"}), {}};
    secrets.cols[1].cover = Cover::kDigest;
    secrets.cols[2].cover = Cover::kDigest;
    t.push_back(std::move(secrets));
    t.push_back(
        {"workflow_versions", 1, Cols({"hash", "name", "path", "content", "created_us"}), {}});
    t.push_back(
        {"runs",
         1,
         Cols({"id", "workflow", "version", "status", "wait_kind", "wait_type", "wait_key", "state",
               "input", "output", "error", "parent_run", "parent_step", "created_us",
               "updated_us"}),
         {{"due_us", "0"},
          {"mono_due_us", "0"},
          {"epoch", "''"},
          {"lease_owner", "''"},
          {"lease_until_us", "0"}},
         "when the worker looks at the run next and who holds it: claims, lease renewals and "
         "clock re-anchoring change them without an entry; an edit can only make the worker "
         "look at a run early or late, and a look re-checks the covered state"});
    t.push_back({"steps",
                 2,
                 Cols({"run_id", "step_key", "step_id", "kind", "status", "attempts", "output",
                       "error", "finished_us", "seq"}),
                 {}});
    t.push_back({"outbox",
                 1,
                 Cols({"token", "run_id", "step_key", "adapter", "action", "params", "state",
                       "attempts", "result", "error", "honours_key", "created_us", "updated_us"}),
                 {}});
    t.push_back(
        {"approvals",
         1,
         Cols({"id", "run_id", "step_key", "kind", "status", "summary", "recommend", "context",
               "decision", "deadline_us", "remind_us", "reminded", "created_us", "decided_us"}),
         {}});
    t.push_back({"events", 1, Cols({"id", "type", "key", "data", "received_us", "delivered"}), {}});
    t.push_back(
        {"event_deliveries", 2, Cols({"event_id", "run_id", "step_key", "delivered_us"}), {}});
    t.push_back({"pauses", 2, Cols({"scope", "name", "since_us"}), {}});
    t.push_back({"schedules",
                 1,
                 Cols({"workflow", "path", "cron", "tz"}),
                 {{"next_us", "0"}, {"last_us", "0"}},
                 "the next and last firing times: the worker advances them as it fires, and the "
                 "run it starts is on the ledger; an edit can only fire a schedule early or "
                 "late, never start a run off the ledger"});
    t.push_back({"facts",
                 1,
                 Cols({"n",
                       "id",
                       "subject",
                       "text",
                       "key",
                       "value",
                       "norm",
                       "confidence",
                       "scope",
                       "expires_us",
                       "valid_from_us",
                       "valid_to_us",
                       "superseded_by",
                       "supersedes",
                       "source_artifact",
                       "span_begin",
                       "span_end",
                       "agent",
                       "run_id",
                       "step_id",
                       "created_us",
                       "ledger_seq"}),
                 {}});
    t.push_back({"fact_sources",
                 1,
                 Cols({"n", "fact_n", "artifact", "span_begin", "span_end", "agent", "run_id",
                       "step_id", "confidence", "added_us", "ledger_seq"}),
                 {}});
    t.push_back({"memory_summaries",
                 2,
                 Cols({"subject", "version", "artifact", "parent", "agent", "run_id", "step_id",
                       "created_us", "ledger_seq"}),
                 {}});
    t.push_back({"memory_decisions",
                 1,
                 Cols({"n", "id", "subject", "decision", "decided_by", "reason", "fact_ids",
                       "run_id", "step_id", "time_us", "ledger_seq"}),
                 {}});
    t.push_back({"memory_retrievals",
                 1,
                 Cols({"id", "time_us", "query", "subject", "agent", "workflow", "run_id",
                       "step_id", "budget_tokens", "tokens_used", "returned", "returned_count",
                       "used", "used_count", "marked_us", "ledger_seq"}),
                 {}});
    t.push_back({"model_calls",
                 1,
                 Cols({"id", "time_us", "run_id", "step_id", "agent", "record_id", "provider",
                       "model", "operation", "input_tokens", "output_tokens", "cost_nanousd",
                       "cached", "finish_reason", "prompt_hash", "prompt_artifact",
                       "response_artifact", "ledger_seq"}),
                 {}});
    t.push_back({"model_response_cache",
                 1,
                 Cols({"prompt_hash", "response_artifact", "provider", "model", "input_tokens",
                       "output_tokens", "created_us"}),
                 {{"hits", "0"}},
                 "how often a cached response was reused: counted on every hit, read by no "
                 "decision"});
    return t;
  }();
  return tables;
}

const StateTable* FindStateTable(std::string_view name) {
  for (const StateTable& t : StateTables()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

int StateTableIndex(std::string_view name) {
  // Asked for every row the write connection changes (the capture hook): one hash lookup.
  static const std::unordered_map<std::string_view, int> index = [] {
    std::unordered_map<std::string_view, int> m;
    const auto& all = StateTables();
    for (size_t i = 0; i < all.size(); ++i) m.emplace(all[i].name, static_cast<int>(i));
    return m;
  }();
  auto it = index.find(name);
  return it == index.end() ? -1 : it->second;
}

const std::vector<UncoveredTable>& UncoveredTables() {
  static const std::vector<UncoveredTable> t = {
      {"ledger", "the hash chain and the signed checkpoints cover every entry"},
      {"checkpoints", "each row is signed and must match checkpoints.log and the ledger"},
      {"meta",
       "workspace_id is checked against keel.yaml; the vault's entries are checked by its "
       "key check on unlock (an edit fails every unlock, never yields a wrong secret)"},
      {"facts_fts*",
       "the full-text index is derived from facts: verify runs FTS5's integrity check "
       "against facts, repair rebuilds it"},
      {"sqlite_*", "SQLite's own tables (sqlite_sequence, sqlite_stat1)"},
  };
  return t;
}

void PutNullValue(std::string* out) {
  out->push_back('n');
}

void PutIntValue(std::string* out, int64_t v) {
  out->push_back('i');
  PutU64(out, static_cast<uint64_t>(v));
}

void PutRealValue(std::string* out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  out->push_back('f');
  PutU64(out, bits);
}

void PutTextValue(std::string* out, std::string_view v) {
  out->push_back('t');
  PutU32(out, static_cast<uint32_t>(v.size()));
  out->append(v);
}

void PutBlobValue(std::string* out, std::string_view v) {
  out->push_back('b');
  PutU32(out, static_cast<uint32_t>(v.size()));
  out->append(v);
}

void PutDigestOf(std::string_view encoded, std::string* out) {
  thread_local MerkleHasher hasher;
  Digest d = hasher.Plain(encoded);
  out->push_back('h');
  out->append(reinterpret_cast<const char*>(d.data()), 32);
}

void PutColumnValue(const sql::Stmt& st, int col, Cover cover, std::string* out) {
  if (cover == Cover::kDigest) {
    thread_local std::string tmp;
    tmp.clear();
    PutColumnValue(st, col, Cover::kValue, &tmp);
    PutDigestOf(tmp, out);
    return;
  }
  switch (st.Type(col)) {
    case sql::ColType::kNull:
      PutNullValue(out);
      break;
    case sql::ColType::kInteger:
      PutIntValue(out, st.Int(col));
      break;
    case sql::ColType::kFloat:
      PutRealValue(out, st.Double(col));
      break;
    case sql::ColType::kText:
      PutTextValue(out, st.TextView(col));
      break;
    case sql::ColType::kBlob:
      PutBlobValue(out, st.BlobView(col));
      break;
  }
}

bool ParseValues(std::string_view values, std::vector<StateValue>* out) {
  out->clear();
  while (!values.empty()) {
    size_t n = ValueLength(values);
    if (n == 0) return false;
    StateValue v;
    v.type = values[0];
    v.raw = values.substr(0, n);
    if (v.type == 'i') v.i = static_cast<int64_t>(GetU64(values.data() + 1));
    if (v.type == 'f') {
      uint64_t bits = GetU64(values.data() + 1);
      std::memcpy(&v.f, &bits, 8);
    }
    if (v.type == 't' || v.type == 'b') v.bytes = values.substr(5, n - 5);
    if (v.type == 'h') v.bytes = values.substr(1, 32);
    out->push_back(v);
    values.remove_prefix(n);
  }
  return true;
}

Status BindStateValue(sql::Stmt* st, int i, const StateValue& v) {
  switch (v.type) {
    case 'i':
      st->Bind(i, v.i);
      return OkStatus();
    case 'f':
      st->BindDouble(i, v.f);
      return OkStatus();
    case 't':
      st->Bind(i, v.bytes);
      return OkStatus();
    case 'b':
      st->BindBlob(i, v.bytes);
      return OkStatus();
    case 'n':
      st->BindNull(i);
      return OkStatus();
    default:
      return Internal("a digest has no SQL value to bind");
  }
}

std::string ValueText(const StateValue& v) {
  static const char* kHex = "0123456789abcdef";
  auto hex = [&](std::string_view b, size_t max) {
    std::string s;
    for (size_t i = 0; i < b.size() && i < max; ++i) {
      s += kHex[static_cast<unsigned char>(b[i]) >> 4];
      s += kHex[static_cast<unsigned char>(b[i]) & 15];
    }
    if (b.size() > max) s += "…";
    return s;
  };
  switch (v.type) {
    case 'n':
      return "NULL";
    case 'i':
      return std::to_string(v.i);
    case 'f': {
      char b[32];
      std::snprintf(b, sizeof b, "%.17g", v.f);
      std::string out = b;
      // A REAL reads as one even when whole (1.0), so it never looks like the integer 1.
      if (out.find_first_of(".eEn") == std::string::npos) out += ".0";
      return out;
    }
    case 't': {
      std::string s(v.bytes.substr(0, 80));
      return "'" + s + (v.bytes.size() > 80 ? "…'" : "'");
    }
    case 'b':
      return "x'" + hex(v.bytes, 32) + "'";
    case 'h':
      return "#" + hex(v.bytes, 8);
    default:
      return "?";
  }
}

void StateBuilder::Begin(std::string_view table, bool put, int key_values, int values) {
  if (out_.empty()) out_.assign(4, '\0');  // the count, filled in by Finish
  PutU32(&out_, static_cast<uint32_t>(table.size()));
  out_.append(table);
  out_.push_back(put ? 'P' : 'D');
  out_.push_back(static_cast<char>(key_values));
  PutU32(&out_, static_cast<uint32_t>(values));
}

std::string StateBuilder::Finish() {
  std::string s;
  if (count_ > 0) {
    s = std::move(out_);
    s[0] = static_cast<char>(count_ >> 24);
    s[1] = static_cast<char>(count_ >> 16);
    s[2] = static_cast<char>(count_ >> 8);
    s[3] = static_cast<char>(count_);
  }
  out_.clear();
  count_ = 0;
  return s;
}

bool ParseState(std::string_view blob, std::vector<StateWrite>* out, std::string* why) {
  out->clear();
  auto fail = [&](std::string w) {
    *why = std::move(w);
    return false;
  };
  if (blob.size() < 4) return fail("its state images are cut short");
  uint32_t count = GetU32(blob.data());
  blob.remove_prefix(4);
  for (uint32_t r = 0; r < count; ++r) {
    if (blob.size() < 4) return fail("its state images are cut short");
    uint32_t tn = GetU32(blob.data());
    if (blob.size() - 4 < static_cast<size_t>(tn) + 6)
      return fail("its state images are cut short");
    StateWrite w;
    w.table = blob.substr(4, tn);
    blob.remove_prefix(4 + tn);
    if (blob[0] != 'P' && blob[0] != 'D') return fail("a state image has an unknown operation");
    w.put = blob[0] == 'P';
    int keys = static_cast<unsigned char>(blob[1]);
    uint32_t nvals = GetU32(blob.data() + 2);
    blob.remove_prefix(6);
    if (keys < 1 || static_cast<uint32_t>(keys) > nvals) {
      return fail("a state image has a bad key count");
    }
    size_t len = 0, key_len = 0;
    for (uint32_t i = 0; i < nvals; ++i) {
      size_t n = ValueLength(blob.substr(len));
      if (n == 0) return fail("a state image holds a damaged value");
      len += n;
      if (i + 1 == static_cast<uint32_t>(keys)) key_len = len;
    }
    w.values = blob.substr(0, len);
    w.key = blob.substr(0, key_len);
    blob.remove_prefix(len);
    out->push_back(w);
  }
  if (!blob.empty()) return fail("its state images have trailing bytes");
  return true;
}

std::string SelectCoveredSql(const StateTable& t, std::string_view suffix) {
  std::string q = "SELECT ";
  for (size_t i = 0; i < t.cols.size(); ++i) {
    if (i) q += ", ";
    q += t.cols[i].name;
  }
  q += " FROM ";
  q += t.name;
  if (!suffix.empty()) (q += ' ') += suffix;
  return q;
}

size_t PutRowValues(const StateTable& t, const sql::Stmt& st, std::string* out) {
  size_t start = out->size(), key_len = 0;
  for (size_t i = 0; i < t.cols.size(); ++i) {
    PutColumnValue(st, static_cast<int>(i), t.cols[i].cover, out);
    if (static_cast<int>(i) + 1 == t.key_cols) key_len = out->size() - start;
  }
  return key_len;
}

}  // namespace keel::store
