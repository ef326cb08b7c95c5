#include "memory/memory.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/json.h"
#include "core/random.h"
#include "memory/extract.h"
#include "memory/query.h"
#include "store/artifacts.h"
#include "store/facts.h"
#include "store/records.h"
#include "store/workspace.h"

namespace keel::memory {
namespace {

constexpr size_t kMaxSubjectBytes = 200;
constexpr size_t kMaxQueryBytes = 2000;
constexpr int kNearDuplicateScan = 200;  // newest active facts of a subject compared per add
constexpr size_t kPurgeIdsPerEntry = 1000;

bool HasNul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

std::vector<std::string_view> Tokens(std::string_view norm) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < norm.size()) {
    size_t j = norm.find(' ', i);
    if (j == std::string_view::npos) j = norm.size();
    if (j > i) out.push_back(norm.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool HasDigit(std::string_view t) {
  return std::any_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Numbers carry the fact (amounts, dates, phone numbers): two texts that differ in one number
// are different facts however similar the words are.
std::set<std::string_view> NumericTokens(std::string_view norm) {
  std::set<std::string_view> out;
  for (auto t : Tokens(norm)) {
    if (HasDigit(t)) out.insert(t);
  }
  return out;
}

std::string ScopeText(Scope s) {
  return s == Scope::kShort ? "short" : "long";
}

Source FirstSource(const store::FactRow& r) {
  return {r.source_artifact, r.span_begin, r.span_end,   r.agent,     r.run_id,
          r.step_id,         r.confidence, r.created_us, r.ledger_seq};
}

Fact ToFact(const store::FactRow& r, const std::vector<store::FactSourceRow>& extra) {
  Fact f;
  f.id = r.id;
  f.subject = r.subject;
  f.text = r.text;
  f.key = r.key;
  f.value = r.value;
  f.confidence = r.confidence;
  f.scope = r.scope == "short" ? Scope::kShort : Scope::kLong;
  f.expires_us = r.expires_us;
  f.valid_from_us = r.valid_from_us;
  f.valid_to_us = r.valid_to_us;
  f.superseded_by = r.superseded_by;
  f.supersedes = r.supersedes;
  f.created_us = r.created_us;
  Provenance& p = f.provenance;
  p.artifact = r.source_artifact;
  p.span_begin = r.span_begin;
  p.span_end = r.span_end;
  p.agent = r.agent;
  p.run_id = r.run_id;
  p.step_id = r.step_id;
  p.ledger_seq = r.ledger_seq;
  Source first = FirstSource(r);
  // The row's confidence is the maximum over sources; the first source's own value is not
  // stored apart, so report it as the row's when there is only one source.
  p.sources.push_back(first);
  for (const auto& s : extra) {
    p.sources.push_back({s.artifact, s.span_begin, s.span_end, s.agent, s.run_id, s.step_id,
                         s.confidence, s.added_us, s.ledger_seq});
  }
  return f;
}

bool SameSource(const std::string& artifact, int64_t b, int64_t e, const std::string& agent,
                const std::string& a2, int64_t b2, int64_t e2, const std::string& agent2) {
  if (artifact != a2 || b != b2 || e != e2) return false;
  // Operator input has no artifact: the same words from the same author is the same source.
  return !artifact.empty() || agent == agent2;
}

Status ValidateSubject(const std::string& subject) {
  if (subject.empty()) return InvalidArgument("a fact needs a subject (a record id)");
  if (subject.size() > kMaxSubjectBytes || HasNul(subject)) {
    return InvalidArgument("subject must be at most 200 bytes with no NUL");
  }
  return OkStatus();
}

// A fact about a record that does not exist: most likely a typo or an id from another
// workspace.
Status UnknownSubject(const std::string& subject) {
  return NotFound("no record " + subject +
                  " to remember a fact about (list them with `keel record list`); pass "
                  "--free-subject to store a fact about a free-form subject on purpose");
}

std::string TextOf(const NewFact& f) {
  if (!f.text.empty()) return f.text;
  if (f.key.empty() && f.value.empty()) return "";
  return f.key + ": " + f.value;
}

Status Validate(store::Workspace& ws, const NewFact& f) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(f.subject));
  std::string text = TextOf(f);
  if (NormalizeText(text).empty()) {
    return InvalidArgument("a fact needs text (or a key and a value) with letters or digits");
  }
  if (text.size() > kMaxFactTextBytes) {
    return InvalidArgument("fact text of " + std::to_string(text.size()) +
                           " bytes exceeds the limit of " + std::to_string(kMaxFactTextBytes) +
                           "; archive long text as an artifact and remember a short fact");
  }
  if (HasNul(text) || HasNul(f.key) || HasNul(f.value) || HasNul(f.by.agent) ||
      HasNul(f.by.run_id) || HasNul(f.by.step_id)) {
    return InvalidArgument("fact fields must not contain NUL");
  }
  if (f.key.size() > 200 || f.value.size() > kMaxFactTextBytes) {
    return InvalidArgument("fact key must be at most 200 bytes");
  }
  if (!(f.confidence >= 0.0 && f.confidence <= 1.0)) {
    return InvalidArgument("confidence must be between 0 and 1");
  }
  if (f.by.agent.empty()) return InvalidArgument("a fact needs an author (agent or operator)");
  if (f.scope == Scope::kShort && f.ttl_us <= 0) {
    return InvalidArgument("a short-term fact needs a TTL greater than zero");
  }
  if (f.scope == Scope::kLong && f.ttl_us != 0) {
    return InvalidArgument("a TTL makes a fact short-term: set scope to short");
  }
  if (f.valid_to_us != 0 && f.valid_from_us != 0 && f.valid_to_us <= f.valid_from_us) {
    return InvalidArgument("valid_to must be after valid_from");
  }
  bool span_set = f.span_begin >= 0 || f.span_end >= 0;
  if (span_set && (f.span_begin < 0 || f.span_end < f.span_begin)) {
    return InvalidArgument("a source span needs 0 <= begin <= end");
  }
  if (f.source_artifact.empty()) {
    if (span_set) return InvalidArgument("a source span needs a source artifact");
    return OkStatus();
  }
  auto info = store::GetArtifactInfo(ws, f.source_artifact);
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) {
      return NotFound("source artifact " + f.source_artifact + " is not stored");
    }
    return info.status();
  }
  if (span_set && static_cast<uint64_t>(f.span_end) > info->size) {
    return InvalidArgument("source span [" + std::to_string(f.span_begin) + ", " +
                           std::to_string(f.span_end) + ") lies outside artifact " +
                           f.source_artifact + " of " + std::to_string(info->size) + " bytes");
  }
  return OkStatus();
}

nlohmann::json SourceJson(const std::string& artifact, int64_t b, int64_t e) {
  nlohmann::json j = nlohmann::json::object();
  if (!artifact.empty()) j["artifact"] = artifact;
  if (b >= 0) j["span"] = {b, e};
  return j;
}

std::string Truncate(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

// Adds `f` as a new fact row. `supersedes` names the fact it replaces, if any.
Result<RememberResult> InsertNew(store::Txn& txn, const NewFact& f, const std::string& text,
                                 const std::string& norm, const std::string& supersedes) {
  store::Workspace& ws = txn.workspace();
  int64_t now = txn.now_us();
  store::FactRow r;
  r.id = NewId("fact", now, ws.env().random);
  r.subject = f.subject;
  r.text = text;
  r.key = f.key;
  r.value = f.value;
  r.norm = norm;
  r.confidence = f.confidence;
  r.scope = ScopeText(f.scope);
  r.expires_us = f.scope == Scope::kShort ? now + f.ttl_us : 0;
  r.valid_from_us = f.valid_from_us != 0 ? f.valid_from_us : now;
  r.valid_to_us = f.valid_to_us;
  r.supersedes = supersedes;
  r.source_artifact = f.source_artifact;
  r.span_begin = f.span_begin;
  r.span_end = f.span_end;
  r.agent = f.by.agent;
  r.run_id = f.by.run_id;
  r.step_id = f.by.step_id;
  r.created_us = now;
  nlohmann::json payload = {{"fact", r.id},
                            {"text", Truncate(text, 2000)},
                            {"confidence", f.confidence},
                            {"scope", r.scope},
                            {"source", SourceJson(f.source_artifact, f.span_begin, f.span_end)}};
  if (!f.key.empty()) payload["key"] = f.key;
  if (!f.value.empty()) payload["value"] = Truncate(f.value, 2000);
  if (r.expires_us != 0) payload["expires_us"] = r.expires_us;
  if (!supersedes.empty()) payload["supersedes"] = supersedes;
  std::vector<std::string> arts;
  if (!f.source_artifact.empty()) arts.push_back(f.source_artifact);
  KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e,
                        txn.Append({f.by.agent, "memory.fact.added", f.subject, f.by.run_id,
                                    f.by.step_id, CanonicalJson(payload), arts}));
  r.ledger_seq = e.seq;
  KEEL_RETURN_IF_ERROR(store::InsertFact(txn, &r));
  RememberResult out;
  out.fact_id = r.id;
  return out;
}

// Records `f` as one more source of the existing fact `into`.
Result<RememberResult> MergeInto(store::Txn& txn, const store::FactRow& into, const NewFact& f,
                                 double similarity) {
  RememberResult out;
  out.fact_id = into.id;
  out.merged = true;
  if (SameSource(into.source_artifact, into.span_begin, into.span_end, into.agent,
                 f.source_artifact, f.span_begin, f.span_end, f.by.agent)) {
    out.already_known = true;
    return out;
  }
  KEEL_ASSIGN_OR_RETURN(auto extra, store::FactSources(txn, into.n));
  for (const auto& s : extra) {
    if (SameSource(s.artifact, s.span_begin, s.span_end, s.agent, f.source_artifact, f.span_begin,
                   f.span_end, f.by.agent)) {
      out.already_known = true;
      return out;
    }
  }
  nlohmann::json payload = {{"fact", into.id},
                            {"similarity", std::round(similarity * 1000) / 1000},
                            {"confidence", f.confidence},
                            {"text", Truncate(TextOf(f), 2000)},
                            {"source", SourceJson(f.source_artifact, f.span_begin, f.span_end)}};
  std::vector<std::string> arts;
  if (!f.source_artifact.empty()) arts.push_back(f.source_artifact);
  KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e,
                        txn.Append({f.by.agent, "memory.fact.merged", into.subject, f.by.run_id,
                                    f.by.step_id, CanonicalJson(payload), arts}));
  store::FactSourceRow s;
  s.fact_n = into.n;
  s.artifact = f.source_artifact;
  s.span_begin = f.span_begin;
  s.span_end = f.span_end;
  s.agent = f.by.agent;
  s.run_id = f.by.run_id;
  s.step_id = f.by.step_id;
  s.confidence = f.confidence;
  s.added_us = txn.now_us();
  s.ledger_seq = e.seq;
  KEEL_RETURN_IF_ERROR(store::InsertFactSource(txn, s));
  if (f.confidence > into.confidence) {
    KEEL_RETURN_IF_ERROR(store::SetFactConfidence(txn, into.n, f.confidence));
  }
  return out;
}

bool Usable(const store::FactRow& r, Scope scope, int64_t now) {
  if (r.scope != ScopeText(scope)) return false;
  if (r.expires_us != 0 && r.expires_us <= now) return false;
  if (r.valid_to_us != 0 && r.valid_to_us <= now) return false;
  return true;
}

Result<RememberResult> RememberIn(store::Txn& txn, const NewFact& f, double jaccard_threshold) {
  KEEL_RETURN_IF_ERROR(Validate(txn.workspace(), f));
  if (!f.free_subject) {
    KEEL_ASSIGN_OR_RETURN(bool exists, store::RecordExists(txn, f.subject));
    if (!exists) return UnknownSubject(f.subject);
  }
  std::string text = TextOf(f);
  std::string norm = NormalizeText(text);
  int64_t now = txn.now_us();
  KEEL_ASSIGN_OR_RETURN(auto exact, store::FindFactsByNorm(txn, f.subject, norm));
  for (const auto& r : exact) {
    if (!Usable(r, f.scope, now)) continue;
    if (!f.key.empty() && !r.key.empty() && (f.key != r.key || f.value != r.value)) continue;
    return MergeInto(txn, r, f, 1.0);
  }
  // A key/value fact is the same fact whatever sentence it was read from ("email: a@b.c
  // (From: ...)" and "email: a@b.c (Contact: ...)"): one fact, one more source.
  if (!f.key.empty() && !f.value.empty()) {
    KEEL_ASSIGN_OR_RETURN(auto same, store::FindFactsByKeyValue(txn, f.subject, f.key, f.value));
    for (const auto& r : same) {
      if (Usable(r, f.scope, now)) return MergeInto(txn, r, f, TokenJaccard(norm, r.norm));
    }
  }
  KEEL_ASSIGN_OR_RETURN(auto norms, store::ActiveNorms(txn, f.subject, kNearDuplicateScan));
  auto nums = NumericTokens(norm);
  for (const auto& [n, other] : norms) {
    double j = TokenJaccard(norm, other);
    if (j < jaccard_threshold || NumericTokens(other) != nums) continue;
    KEEL_ASSIGN_OR_RETURN(auto r, store::FactByRow(txn, n));
    if (!r || !Usable(*r, f.scope, now)) continue;
    if (!f.key.empty() && !r->key.empty() && (f.key != r->key || f.value != r->value)) continue;
    return MergeInto(txn, *r, f, j);
  }
  return InsertNew(txn, f, text, norm, "");
}

nlohmann::json ScoresJson(const std::vector<ScoredFact>& facts) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : facts) {
    arr.push_back({{"id", s.fact.id}, {"score", std::round(s.score * 1e6) / 1e6}});
  }
  return arr;
}

std::optional<std::string> OriginFromMediaType(const std::string& mt) {
  std::string lower;
  for (char c : mt) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string needle = std::string(kOriginParam) + "=";
  auto pos = lower.find(needle);
  if (pos == std::string::npos) return std::nullopt;
  size_t b = pos + needle.size();
  size_t e = lower.find_first_of("; ", b);
  std::string v = lower.substr(b, e == std::string::npos ? std::string::npos : e - b);
  if (v.empty()) v = "keel";
  return v;
}

}  // namespace

int64_t EstimateTokens(std::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4) + kTokensPerFactOverhead;
}

std::string_view ScopeName(Scope s) {
  return s == Scope::kShort ? "short" : "long";
}

std::string_view OriginName(Origin o) {
  switch (o) {
    case Origin::kModel:
      return "model";
    case Origin::kAgent:
      return "agent";
    case Origin::kSummary:
      return "summary";
    case Origin::kRecall:
      return "recall";
    case Origin::kKeel:
      return "keel";
  }
  return "keel";
}

std::string WithOrigin(std::string_view media_type, Origin o) {
  std::string out(media_type.empty() ? "text/plain" : media_type);
  out += "; ";
  out += kOriginParam;
  out += "=";
  out += OriginName(o);
  return out;
}

std::string NormalizeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (unsigned char c : text) {
    bool word =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
    if (word) {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    } else {
      space = true;
    }
  }
  return out;
}

double TokenJaccard(std::string_view a, std::string_view b) {
  std::unordered_set<std::string_view> sa, sb;
  for (auto t : Tokens(a)) sa.insert(t);
  for (auto t : Tokens(b)) sb.insert(t);
  if (sa.empty() && sb.empty()) return 1.0;
  size_t inter = 0;
  for (auto t : sa) inter += sb.count(t);
  size_t uni = sa.size() + sb.size() - inter;
  return uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

Memory::Memory(store::Workspace* ws, MemoryOptions opts) : ws_(ws), opts_(opts) {}

Result<RememberResult> Memory::Remember(const NewFact& f) {
  RememberResult out;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(out, Remember(txn, f));
    return OkStatus();
  }));
  return out;
}

Result<RememberResult> Memory::Remember(store::Txn& txn, const NewFact& f) {
  return RememberIn(txn, f, opts_.near_duplicate_jaccard);
}

Result<std::vector<RememberResult>> Memory::RememberAll(const std::vector<NewFact>& facts) {
  std::vector<RememberResult> out;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    out.clear();
    out.reserve(facts.size());
    for (size_t i = 0; i < facts.size(); ++i) {
      auto r = RememberIn(txn, facts[i], opts_.near_duplicate_jaccard);
      if (!r.ok()) return r.status().WithContext("fact " + std::to_string(i + 1));
      out.push_back(std::move(r).value());
    }
    return OkStatus();
  }));
  return out;
}

Result<std::string> Memory::Supersede(const std::string& old_id, const NewFact& replacement,
                                      const std::string& reason) {
  std::string new_id;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto old, store::FindFact(txn, old_id));
    if (!old) return NotFound("fact " + old_id + " does not exist");
    if (!old->superseded_by.empty()) {
      return FailedPrecondition("fact " + old_id + " was already superseded by " +
                                old->superseded_by);
    }
    NewFact f = replacement;
    if (f.subject.empty()) f.subject = old->subject;
    if (f.subject != old->subject) {
      return InvalidArgument("a replacement fact must have the same subject (" + old->subject +
                             ")");
    }
    KEEL_RETURN_IF_ERROR(Validate(*ws_, f));
    std::string text = TextOf(f);
    KEEL_ASSIGN_OR_RETURN(RememberResult r, InsertNew(txn, f, text, NormalizeText(text), old_id));
    nlohmann::json payload = {{"fact", old_id}, {"superseded_by", r.fact_id}, {"reason", reason}};
    KEEL_RETURN_IF_ERROR(txn.Append({f.by.agent,
                                     "memory.fact.superseded",
                                     old->subject,
                                     f.by.run_id,
                                     f.by.step_id,
                                     CanonicalJson(payload),
                                     {}})
                             .status());
    KEEL_RETURN_IF_ERROR(store::SupersedeFact(txn, *old, r.fact_id, txn.now_us()));
    new_id = r.fact_id;
    return OkStatus();
  }));
  return new_id;
}

namespace {
// Reads through the caller's transaction when there is one, else through the workspace.
struct Reader {
  store::Workspace* ws;
  store::Txn* txn;
  Result<std::vector<int64_t>> Match(const store::FactTextSearch& s, int limit,
                                     int64_t min_row = 0) {
    return txn != nullptr ? store::SearchFactRows(*txn, s, limit, min_row)
                          : store::SearchFactRows(*ws, s, limit, min_row);
  }
  Result<int64_t> MaxRow() {
    return txn != nullptr ? store::MaxFactRow(*txn) : store::MaxFactRow(*ws);
  }
  Result<std::optional<store::FactRow>> Row(int64_t n) {
    return txn != nullptr ? store::FactByRow(*txn, n) : store::FactByRow(*ws, n);
  }
  Result<std::vector<store::FactSourceRow>> Sources(int64_t n) {
    return txn != nullptr ? store::FactSources(*txn, n) : store::FactSources(*ws, n);
  }
};

// Fact numbers read from the index per query term: bounds the work for common words
// (docs/memory.md).
constexpr int kTermCap = 1000;
// Okapi BM25 parameters (the usual defaults, as FTS5's bm25()).
constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

// Finds candidates with the FTS5 index and scores them with BM25 (docs/memory.md, "Ranking"):
//  1. Per term, the first kTermCap matching fact numbers. A shorter list is complete and gives the
//     exact document frequency; a full one gives an estimate from how far it reaches.
//  2. Candidates: with a subject, every fact of the subject matching any term (up to
//     kTermCap); without one, the facts of the complete ("rare") terms' lists, or when every
//     term is common, facts matching all terms plus those of the (capped) lists. Pre-scored by
//     the summed IDF of the lists they are in; the best `candidate_window` are read.
//  3. Each candidate's text is scored with BM25 against all terms.
Result<std::vector<store::FactHit>> Candidates(Reader& rd, const ParsedQuery& pq,
                                               const RecallQuery& q, const MemoryOptions& opts,
                                               int64_t now) {
  KEEL_ASSIGN_OR_RETURN(int64_t max_row, rd.MaxRow());
  double n_docs = static_cast<double>(std::max<int64_t>(max_row, 1));
  size_t nt = pq.terms.size();
  std::vector<std::vector<int64_t>> lists(nt);
  std::vector<double> idf(nt), dfs(nt);
  std::vector<bool> complete(nt);
  bool any_rare = false;
  for (size_t t = 0; t < nt; ++t) {
    KEEL_ASSIGN_OR_RETURN(lists[t], rd.Match({{pq.terms[t]}, store::TermJoin::kAny, ""}, kTermCap));
    complete[t] = static_cast<int>(lists[t].size()) < kTermCap;
    double df = static_cast<double>(lists[t].size());
    if (!complete[t]) {
      // The list reaches from the oldest row to lists[t].back(): extrapolate its density.
      double reach = static_cast<double>(lists[t].back());
      df = std::min(n_docs, df * n_docs / std::max(reach, 1.0));
    }
    dfs[t] = df;
    idf[t] = std::log(1.0 + (n_docs - df + 0.5) / (df + 0.5));
    any_rare = any_rare || complete[t];
  }
  std::vector<int64_t> cand;  // candidate fact numbers (sorted and made unique below)
  std::vector<int64_t> all;   // facts known to hold every term
  if (!q.subject.empty()) {
    KEEL_ASSIGN_OR_RETURN(cand, rd.Match({pq.terms, store::TermJoin::kAny, q.subject}, kTermCap));
  } else if (any_rare) {
    for (size_t t = 0; t < nt; ++t) {
      if (complete[t]) cand.insert(cand.end(), lists[t].begin(), lists[t].end());
    }
  } else {
    double df_min = *std::min_element(dfs.begin(), dfs.end());
    double window = static_cast<double>(opts.and_window_facts) * n_docs / std::max(df_min, 1.0);
    int64_t min_row =
        opts.and_window_facts <= 0 || window >= n_docs ? 0 : max_row - static_cast<int64_t>(window);
    KEEL_ASSIGN_OR_RETURN(
        all, rd.Match({pq.terms, store::TermJoin::kAll, ""}, opts.candidate_window, min_row));
    cand = all;
    for (size_t t = 0; t < nt; ++t) cand.insert(cand.end(), lists[t].begin(), lists[t].end());
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  // Pre-score: the summed IDF of the terms a candidate is known to hold (from the lists; the
  // AND's results hold them all, even where the capped lists do not reach them).
  double idf_sum = 0;
  for (double x : idf) idf_sum += x;
  std::vector<std::pair<double, int64_t>> ranked;
  ranked.reserve(cand.size());
  for (int64_t r : cand) {
    double score = 0;
    if (std::binary_search(all.begin(), all.end(), r)) {
      score = idf_sum;
    } else {
      for (size_t t = 0; t < nt; ++t) {
        if (std::binary_search(lists[t].begin(), lists[t].end(), r)) score += idf[t];
      }
    }
    ranked.emplace_back(score, r);
  }
  size_t window = static_cast<size_t>(std::max(opts.candidate_window, q.limit));
  auto cmp = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  };
  if (ranked.size() > window) {
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(window),
                      ranked.end(), cmp);
    ranked.resize(window);
  }

  std::vector<std::string> term_stems;
  for (const auto& t : pq.terms) term_stems.push_back(Stem(t.word));
  double min_idf = *std::min_element(idf.begin(), idf.end());
  std::vector<store::FactHit> hits;
  std::vector<std::vector<std::string>> words;
  for (const auto& [pre_score, r] : ranked) {
    KEEL_ASSIGN_OR_RETURN(auto row, rd.Row(r));
    if (!row || !row->superseded_by.empty()) continue;
    if (!q.subject.empty() && row->subject != q.subject) continue;
    if (row->expires_us != 0 && row->expires_us <= now) continue;
    if (row->valid_to_us != 0 && row->valid_to_us <= now) continue;
    if (!q.include_short && row->scope == "short") continue;
    store::FactHit h;
    h.row = std::move(*row);
    std::vector<std::string> ws;
    std::string norm = NormalizeText(h.row.text);
    for (auto w : Tokens(norm)) ws.emplace_back(w);
    words.push_back(std::move(ws));
    hits.push_back(std::move(h));
  }
  double avgdl = 0;
  for (const auto& w : words) avgdl += static_cast<double>(w.size());
  avgdl = hits.empty() ? 1 : std::max(1.0, avgdl / static_cast<double>(hits.size()));
  for (size_t i = 0; i < hits.size(); ++i) {
    double dl = static_cast<double>(words[i].size());
    std::vector<std::string> stems;
    stems.reserve(words[i].size());
    for (const auto& w : words[i]) stems.push_back(Stem(w));
    double score = 0;
    for (size_t t = 0; t < nt; ++t) {
      double tf = 0;
      for (size_t k = 0; k < words[i].size(); ++k) {
        if (TermMatches(pq.terms[t], term_stems[t], words[i][k], stems[k])) tf += 1;
      }
      if (tf > 0) score += idf[t] * tf * (kK1 + 1) / (tf + kK1 * (1 - kB + kB * dl / avgdl));
    }
    // The index matched it (Porter stemming) even if the light stemmer above did not.
    hits[i].bm25 = score > 0 ? score : 0.1 * min_idf;
  }
  return hits;
}

// The recall body. `txn` is null for an unlogged search outside a transaction.
Result<RecallResult> RecallImpl(store::Workspace* ws_, const MemoryOptions& opts_, store::Txn* txn,
                                const RecallQuery& q) {
  if (q.query.size() > kMaxQueryBytes || HasNul(q.query)) {
    return InvalidArgument("query must be at most 2000 bytes with no NUL");
  }
  if (!q.subject.empty()) KEEL_RETURN_IF_ERROR(ValidateSubject(q.subject));
  if (q.budget_tokens <= 0) return InvalidArgument("the token budget must be positive");
  if (q.limit <= 0) return InvalidArgument("the fact limit must be positive");
  if (q.log && txn == nullptr) return Internal("a logged recall needs a transaction");
  int64_t now = txn != nullptr ? txn->now_us() : ws_->env().clock->NowMicros();

  ParsedQuery pq = ParseQuery(q.query);
  store::FactSearch s;
  s.subject = q.subject;
  s.now_us = now;
  s.include_short = q.include_short;
  s.limit = std::max(opts_.candidate_window, q.limit);
  std::vector<store::FactHit> hits;
  Reader rd{ws_, txn};
  if (pq.terms.empty()) {
    if (q.subject.empty()) {
      return InvalidArgument("the query has no searchable words; give words or a --subject");
    }
    store::FactSearch s;
    s.subject = q.subject;
    s.now_us = now;
    s.include_short = q.include_short;
    s.limit = q.limit * 4;
    KEEL_ASSIGN_OR_RETURN(hits, store::LatestFacts(*ws_, s));
    for (auto& h : hits) h.bm25 = 1;  // no text to rank by: recency and confidence decide
  } else {
    KEEL_ASSIGN_OR_RETURN(hits, Candidates(rd, pq, q, opts_, now));
  }

  double best = 0;
  for (const auto& h : hits) best = std::max(best, h.bm25);
  // Scores first; a Fact (strings, provenance) is built only for what is returned.
  std::vector<ScoredFact> scored(hits.size());
  double ln2 = std::log(2.0);
  for (size_t i = 0; i < hits.size(); ++i) {
    const store::FactRow& row = hits[i].row;
    ScoredFact& sf = scored[i];
    sf.relevance = best > 0 ? hits[i].bm25 / best : 0;
    int64_t age = now - (row.valid_from_us != 0 ? row.valid_from_us : row.created_us);
    sf.recency =
        age <= 0 ? 1.0
                 : std::exp(-ln2 * static_cast<double>(age) /
                            static_cast<double>(std::max<int64_t>(1, opts_.recency_half_life_us)));
    sf.score = sf.relevance * (0.5 + 0.3 * row.confidence + 0.2 * sf.recency);
    if (opts_.embedding != nullptr && !pq.terms.empty()) {
      double sim = std::clamp(opts_.embedding->Similarity(q.query, row.text), 0.0, 1.0);
      sf.score += opts_.embedding_weight * sim;
    }
    sf.tokens = EstimateTokens(row.text);
  }
  std::vector<size_t> order(scored.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (scored[x].score != scored[y].score) return scored[x].score > scored[y].score;
    return hits[x].row.id > hits[y].row.id;  // newer id first on ties
  });

  RecallResult out;
  for (size_t i : order) {
    ScoredFact& sf = scored[i];
    if (static_cast<int>(out.facts.size()) >= q.limit) break;
    if (out.tokens_used + sf.tokens > q.budget_tokens) {
      ++out.dropped_for_budget;
      continue;
    }
    out.tokens_used += sf.tokens;
    // Full provenance (merged sources) only for what is returned.
    KEEL_ASSIGN_OR_RETURN(auto extra, rd.Sources(hits[i].row.n));
    sf.fact = ToFact(hits[i].row, extra);
    out.facts.push_back(std::move(sf));
  }

  if (!q.log) return out;
  store::RetrievalRow r;
  r.id = NewId("ret", now, ws_->env().random);
  r.time_us = now;
  r.query = q.query;
  r.subject = q.subject;
  r.agent = q.agent;
  r.workflow = q.workflow;
  r.run_id = q.run_id;
  r.step_id = q.step_id;
  r.budget_tokens = q.budget_tokens;
  r.tokens_used = out.tokens_used;
  r.returned_json = ScoresJson(out.facts).dump();
  r.returned_count = static_cast<int64_t>(out.facts.size());
  nlohmann::json payload = {{"retrieval", r.id},
                            {"query", Truncate(q.query, 1000)},
                            {"budget_tokens", q.budget_tokens},
                            {"tokens_used", out.tokens_used},
                            {"returned", ScoresJson(out.facts)}};
  if (!q.workflow.empty()) payload["workflow"] = q.workflow;
  KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e, txn->Append({q.agent.empty() ? "operator" : q.agent,
                                                           "memory.recall",
                                                           q.subject,
                                                           q.run_id,
                                                           q.step_id,
                                                           CanonicalJson(payload),
                                                           {}}));
  r.ledger_seq = e.seq;
  KEEL_RETURN_IF_ERROR(store::InsertRetrieval(*txn, r));
  out.retrieval_id = r.id;
  return out;
}
}  // namespace

Result<RecallResult> Memory::Recall(const RecallQuery& q) {
  if (!q.log) {
    RecallResult out;
    KEEL_RETURN_IF_ERROR(store::ReadSnapshot(*ws_, [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(out, RecallImpl(ws_, opts_, nullptr, q));
      return OkStatus();
    }));
    return out;
  }
  RecallResult out;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(out, RecallImpl(ws_, opts_, &txn, q));
    return OkStatus();
  }));
  return out;
}

Result<RecallResult> Memory::Recall(store::Txn& txn, const RecallQuery& q) {
  return RecallImpl(ws_, opts_, &txn, q);
}

Status Memory::MarkUsed(const std::string& retrieval_id, const std::vector<std::string>& used) {
  return ws_->Write([&](store::Txn& txn) { return MarkUsed(txn, retrieval_id, used); });
}

Status Memory::MarkUsed(store::Txn& txn, const std::string& retrieval_id,
                        const std::vector<std::string>& used) {
  KEEL_ASSIGN_OR_RETURN(auto r, store::FindRetrieval(txn, retrieval_id));
  if (!r) return NotFound("retrieval " + retrieval_id + " does not exist");
  auto returned = nlohmann::json::parse(r->returned_json, nullptr, false);
  std::set<std::string> ids;
  if (returned.is_array()) {
    for (const auto& x : returned) {
      if (x.is_object() && x.contains("id") && x["id"].is_string()) {
        ids.insert(x["id"].get<std::string>());
      }
    }
  }
  std::set<std::string> uniq;
  for (const auto& u : used) {
    if (ids.count(u) == 0) {
      return InvalidArgument("fact " + u + " was not returned by retrieval " + retrieval_id);
    }
    uniq.insert(u);
  }
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& u : uniq) arr.push_back(u);
  nlohmann::json payload = {{"retrieval", retrieval_id}, {"used", arr}};
  KEEL_RETURN_IF_ERROR(txn.Append({r->agent.empty() ? "operator" : r->agent,
                                   "memory.used",
                                   r->subject,
                                   r->run_id,
                                   r->step_id,
                                   CanonicalJson(payload),
                                   {}})
                           .status());
  return store::SetRetrievalUsed(txn, retrieval_id, arr.dump(), static_cast<int64_t>(uniq.size()),
                                 txn.now_us());
}

Result<Fact> Memory::Get(const std::string& fact_id) {
  KEEL_ASSIGN_OR_RETURN(auto row, store::FindFact(*ws_, fact_id));
  if (!row) return NotFound("fact " + fact_id + " does not exist");
  KEEL_ASSIGN_OR_RETURN(auto extra, store::FactSources(*ws_, row->n));
  return ToFact(*row, extra);
}

Result<std::vector<Fact>> Memory::FactsOf(const std::string& subject, bool all) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  int64_t now = ws_->env().clock->NowMicros();
  KEEL_ASSIGN_OR_RETURN(auto rows, store::FactsBySubject(*ws_, subject));
  std::vector<Fact> out;
  for (const auto& r : rows) {
    bool active = r.superseded_by.empty() && (r.expires_us == 0 || r.expires_us > now) &&
                  (r.valid_to_us == 0 || r.valid_to_us > now);
    if (!all && !active) continue;
    KEEL_ASSIGN_OR_RETURN(auto extra, store::FactSources(*ws_, r.n));
    out.push_back(ToFact(r, extra));
  }
  return out;
}

Result<int64_t> Memory::PurgeExpired() {
  int64_t purged = 0;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rows, store::ExpiredFacts(txn, txn.now_us()));
    if (rows.empty()) return OkStatus();
    for (size_t i = 0; i < rows.size(); i += kPurgeIdsPerEntry) {
      nlohmann::json ids = nlohmann::json::array();
      for (size_t j = i; j < rows.size() && j < i + kPurgeIdsPerEntry; ++j) {
        ids.push_back(rows[j].id);
      }
      nlohmann::json payload = {{"facts", ids}, {"reason", "ttl expired"}};
      KEEL_RETURN_IF_ERROR(
          txn.Append({"keel", "memory.purged", "", "", "", CanonicalJson(payload), {}}).status());
    }
    KEEL_RETURN_IF_ERROR(store::DeleteFacts(txn, rows));
    purged = static_cast<int64_t>(rows.size());
    return OkStatus();
  }));
  return purged;
}

Result<Summary> Memory::PutSummary(const std::string& subject, const std::string& text,
                                   const Actor& by) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  if (NormalizeText(text).empty()) return InvalidArgument("a summary needs text");
  if (by.agent.empty()) return InvalidArgument("a summary needs an author");
  Summary out;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto latest, store::LatestSummaryRow(txn, subject));
    if (latest) {
      auto old_text = store::GetArtifact(*ws_, latest->artifact);
      if (old_text.ok() && *old_text == text) {
        out.subject = subject;
        out.artifact = latest->artifact;
        out.parent_artifact = latest->parent;
        out.version = static_cast<int>(latest->version);
        out.text = text;
        out.by = {latest->agent, latest->run_id, latest->step_id};
        out.created_us = latest->created_us;
        return OkStatus();
      }
    }
    int version = latest ? static_cast<int>(latest->version) + 1 : 1;
    store::PutArtifactOptions po;
    po.media_type = WithOrigin("text/markdown", Origin::kSummary);
    po.parent = latest ? latest->artifact : "";
    po.name = "summary of " + subject + " v" + std::to_string(version);
    po.actor = by.agent;
    po.run_id = by.run_id;
    po.step_id = by.step_id;
    KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo info, store::PutArtifact(txn, text, po));
    nlohmann::json payload = {{"artifact", info.hash}, {"version", version}};
    if (latest) payload["parent"] = latest->artifact;
    KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e, txn.Append({by.agent,
                                                            "memory.summary",
                                                            subject,
                                                            by.run_id,
                                                            by.step_id,
                                                            CanonicalJson(payload),
                                                            {info.hash}}));
    KEEL_RETURN_IF_ERROR(
        store::InsertArtifactOrigin(txn, info.hash, "summary", txn.now_us(), e.seq));
    store::SummaryRow row;
    row.subject = subject;
    row.version = version;
    row.artifact = info.hash;
    row.parent = latest ? latest->artifact : "";
    row.agent = by.agent;
    row.run_id = by.run_id;
    row.step_id = by.step_id;
    row.created_us = txn.now_us();
    row.ledger_seq = e.seq;
    KEEL_RETURN_IF_ERROR(store::InsertSummary(txn, row));
    out.subject = subject;
    out.artifact = info.hash;
    out.parent_artifact = row.parent;
    out.version = version;
    out.text = text;
    out.by = by;
    out.created_us = row.created_us;
    return OkStatus();
  }));
  return out;
}

Result<std::vector<Summary>> Memory::SummaryHistory(const std::string& subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  KEEL_ASSIGN_OR_RETURN(auto rows, store::SummaryRows(*ws_, subject));
  std::vector<Summary> out;
  for (const auto& r : rows) {
    Summary s;
    s.subject = r.subject;
    s.artifact = r.artifact;
    s.parent_artifact = r.parent;
    s.version = static_cast<int>(r.version);
    KEEL_ASSIGN_OR_RETURN(s.text, store::GetArtifact(*ws_, r.artifact));
    s.by = {r.agent, r.run_id, r.step_id};
    s.created_us = r.created_us;
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<Summary>> Memory::LatestSummary(const std::string& subject) {
  KEEL_ASSIGN_OR_RETURN(auto all, SummaryHistory(subject));
  if (all.empty()) return std::optional<Summary>();
  return std::optional<Summary>(std::move(all[0]));
}

Result<Decision> Memory::LogDecision(const Decision& d) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(d.subject));
  if (NormalizeText(d.decision).empty()) return InvalidArgument("a decision needs its text");
  if (d.decided_by.empty()) return InvalidArgument("a decision needs who decided it");
  if (HasNul(d.decision) || HasNul(d.reason) || HasNul(d.decided_by)) {
    return InvalidArgument("decision fields must not contain NUL");
  }
  if (d.decision.size() > kMaxFactTextBytes || d.reason.size() > kMaxFactTextBytes) {
    return InvalidArgument("decision text and reason must be at most 4096 bytes each");
  }
  Decision out = d;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& id : d.fact_ids) {
      KEEL_ASSIGN_OR_RETURN(auto f, store::FindFact(txn, id));
      if (!f) return NotFound("decision cites fact " + id + ", which does not exist");
      ids.push_back(id);
    }
    out.id = NewId("dec", txn.now_us(), ws_->env().random);
    out.time_us = txn.now_us();
    nlohmann::json payload = {
        {"decision", out.id}, {"text", d.decision}, {"reason", d.reason}, {"facts", ids}};
    KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e, txn.Append({d.decided_by,
                                                            "memory.decision",
                                                            d.subject,
                                                            d.run_id,
                                                            d.step_id,
                                                            CanonicalJson(payload),
                                                            {}}));
    out.ledger_seq = e.seq;
    store::DecisionRow r;
    r.id = out.id;
    r.subject = d.subject;
    r.decision = d.decision;
    r.decided_by = d.decided_by;
    r.reason = d.reason;
    r.fact_ids_json = ids.dump();
    r.run_id = d.run_id;
    r.step_id = d.step_id;
    r.time_us = out.time_us;
    r.ledger_seq = e.seq;
    return store::InsertDecision(txn, r);
  }));
  return out;
}

Result<std::vector<Decision>> Memory::Decisions(const std::string& subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  KEEL_ASSIGN_OR_RETURN(auto rows, store::DecisionRows(*ws_, subject));
  std::vector<Decision> out;
  for (const auto& r : rows) {
    Decision d;
    d.id = r.id;
    d.subject = r.subject;
    d.decision = r.decision;
    d.decided_by = r.decided_by;
    d.reason = r.reason;
    auto ids = nlohmann::json::parse(r.fact_ids_json, nullptr, false);
    if (ids.is_array()) {
      for (const auto& x : ids) {
        if (x.is_string()) d.fact_ids.push_back(x.get<std::string>());
      }
    }
    d.run_id = r.run_id;
    d.step_id = r.step_id;
    d.time_us = r.time_us;
    d.ledger_seq = r.ledger_seq;
    out.push_back(std::move(d));
  }
  return out;
}

Status Memory::MarkArtifactOrigin(store::Txn& txn, const std::string& artifact, Origin origin) {
  auto info = store::GetArtifactInfo(*ws_, artifact);
  if (!info.ok()) return info.status();
  KEEL_ASSIGN_OR_RETURN(auto existing, store::FindArtifactOrigin(txn, artifact));
  if (existing) return OkStatus();
  nlohmann::json payload = {{"origin", std::string(OriginName(origin))}};
  KEEL_ASSIGN_OR_RETURN(
      store::LedgerEntry e,
      txn.Append({"keel", "memory.origin", artifact, "", "", CanonicalJson(payload), {artifact}}));
  return store::InsertArtifactOrigin(txn, artifact, std::string(OriginName(origin)), txn.now_us(),
                                     e.seq);
}

Result<std::optional<std::string>> Memory::ArtifactOrigin(const std::string& artifact) {
  KEEL_ASSIGN_OR_RETURN(auto info, store::GetArtifactInfo(*ws_, artifact));
  KEEL_ASSIGN_OR_RETURN(auto marked, store::FindArtifactOrigin(*ws_, artifact));
  if (marked) return marked;
  return OriginFromMediaType(info.media_type);
}

Result<std::vector<RememberResult>> Memory::ExtractFrom(const std::string& artifact,
                                                        const std::string& subject, const Actor& by,
                                                        bool free_subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  if (!free_subject) {
    // Checked again for each fact inside RememberAll's transaction; this one fails fast,
    // and also when the text yields no facts.
    auto record = store::GetRecord(*ws_, subject);
    if (record.status().code() == StatusCode::kNotFound) return UnknownSubject(subject);
    if (!record.ok()) return record.status();
  }
  KEEL_ASSIGN_OR_RETURN(auto origin, ArtifactOrigin(artifact));
  if (origin) {
    return FailedPrecondition("artifact " + artifact + " holds text keel generated (origin " +
                              *origin +
                              "); facts are extracted only from raw outside text, never "
                              "from model output, summaries or recalled facts");
  }
  KEEL_ASSIGN_OR_RETURN(std::string content, store::GetArtifact(*ws_, artifact));
  std::vector<ExtractedFact> extracted = ExtractFacts(content);
  std::vector<NewFact> facts;
  for (const auto& x : extracted) {
    NewFact f;
    f.subject = subject;
    f.text = x.text;
    f.key = x.key;
    f.value = x.value;
    f.confidence = x.confidence;
    f.source_artifact = artifact;
    f.span_begin = static_cast<int64_t>(x.begin);
    f.span_end = static_cast<int64_t>(x.end);
    f.by = by;
    f.free_subject = free_subject;
    facts.push_back(std::move(f));
  }
  if (facts.empty()) return std::vector<RememberResult>();
  return RememberAll(facts);
}

Result<MemoryStats> Memory::Stats() {
  MemoryStats s;
  KEEL_ASSIGN_OR_RETURN(auto c, store::CountFacts(*ws_, ws_->env().clock->NowMicros()));
  s.facts_active = c.active;
  s.facts_superseded = c.superseded;
  s.facts_expired = c.expired;
  s.sources = c.active + c.superseded + c.expired + c.sources;
  s.merged_facts = c.merged;
  s.summaries = c.summaries;
  s.decisions = c.decisions;
  auto convert = [](const store::RetrievalAggregate& a) {
    RateStats r;
    r.name = a.name;
    r.retrievals = a.retrievals;
    r.hits = a.hits;
    r.misses = a.misses;
    r.pending = a.pending;
    r.facts_returned = a.returned;
    r.facts_used = a.used;
    r.hit_rate = a.hits + a.misses == 0
                     ? 0.0
                     : static_cast<double>(a.hits) / static_cast<double>(a.hits + a.misses);
    return r;
  };
  KEEL_ASSIGN_OR_RETURN(auto total, store::AggregateRetrievals(*ws_, ""));
  if (!total.empty()) s.total = convert(total[0]);
  KEEL_ASSIGN_OR_RETURN(auto by_agent, store::AggregateRetrievals(*ws_, "agent"));
  for (const auto& a : by_agent) s.by_agent.push_back(convert(a));
  KEEL_ASSIGN_OR_RETURN(auto by_wf, store::AggregateRetrievals(*ws_, "workflow"));
  for (const auto& a : by_wf) s.by_workflow.push_back(convert(a));
  return s;
}

}  // namespace keel::memory
