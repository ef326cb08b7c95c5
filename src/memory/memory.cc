// Facts: text normalisation, adding facts (validation, dedupe and the near-duplicate merge),
// superseding them, reading them back, and purging expired short-term ones.
#include "memory/memory.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "core/json.h"
#include "core/random.h"
#include "memory/memory_internal.h"
#include "store/artifacts.h"
#include "store/facts.h"
#include "store/records.h"
#include "store/workspace.h"

namespace keel::memory {

using namespace memory_internal;

namespace {

constexpr size_t kMaxSubjectBytes = 200;
constexpr int kNearDuplicateScan = 200;  // newest active facts of a subject compared per add
constexpr size_t kPurgeIdsPerEntry = 1000;

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

bool SameSource(const std::string& artifact, int64_t b, int64_t e, const std::string& agent,
                const std::string& a2, int64_t b2, int64_t e2, const std::string& agent2) {
  if (artifact != a2 || b != b2 || e != e2) return false;
  // Operator input has no artifact: the same words from the same author is the same source.
  return !artifact.empty() || agent == agent2;
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

}  // namespace

namespace memory_internal {

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

std::string Truncate(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

}  // namespace memory_internal

int64_t EstimateTokens(std::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4) + kTokensPerFactOverhead;
}

std::string_view ScopeName(Scope s) {
  return s == Scope::kShort ? "short" : "long";
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

}  // namespace keel::memory
