// Recall: candidates from the full-text index ranked with BM25, confidence and recency
// within a token budget (memory.h, "Ranking"), the retrieval log, and its telemetry
// (MarkUsed, Stats).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.h"
#include "core/random.h"
#include "memory/memory.h"
#include "memory/memory_internal.h"
#include "memory/query.h"
#include "store/facts.h"
#include "store/workspace.h"

namespace keel::memory {

using namespace memory_internal;

namespace {

constexpr size_t kMaxQueryBytes = 2000;

nlohmann::json ScoresJson(const std::vector<ScoredFact>& facts) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : facts) {
    arr.push_back({{"id", s.fact.id}, {"score", std::round(s.score * 1e6) / 1e6}});
  }
  return arr;
}

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
