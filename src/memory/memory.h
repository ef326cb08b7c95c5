// The context engine: facts kept apart from raw text, short- and long-term memory, retrieval
// within a token budget with provenance, and hit/miss telemetry (docs/memory.md).
//
// Model. Raw text (a fetched page, an email) is an artifact (store/artifacts.h). A fact is a
// small indexed row about one subject (a record id): a sentence and/or a key/value, a
// confidence in [0, 1], the artifact and byte span it came from, who extracted it (agent, run,
// step), a validity interval, and `superseded_by` when a newer fact replaced it (the old one is
// kept). Every write below is one ledger entry in the same transaction as the change.
//
// Quality rules (why: an audit of one popular memory library found ~98% of its memories were
// junk, many of them recalled memories re-extracted as new ones):
//  - Text keel generated (model output, summaries, rendered recalls) is never a source of new
//    facts: such artifacts carry an origin (MarkArtifactOrigin, or a `keel-origin=` media-type
//    parameter) and ExtractFrom refuses them with FailedPrecondition.
//  - A fact equal to an active fact of the same subject after normalisation, or whose token
//    set has Jaccard similarity >= MemoryOptions::near_duplicate_jaccard with one, is merged
//    into it: one fact, several sources (RememberResult::merged).
//
// Ranking (Recall). Candidates come from the SQLite FTS5 index (porter + unicode61) through
// bounded scans in fact-number order; keel scores them with Okapi BM25 (k1 1.2, b 0.75, IDF from
// FTS5 document counts) and, with relevance = bm25 / the best bm25 of the query, in (0, 1]:
//     recency   = 0.5 ^ (age / recency_half_life)               age from the fact's valid_from
//     score     = relevance * (0.5 + 0.3 * confidence + 0.2 * recency)
//                 (+ embedding_weight * similarity when an EmbeddingHook is set)
// (docs/memory.md, "Ranking", has the candidate rules.)
// Facts are taken in score order while their estimated tokens fit the budget:
//     tokens(fact) = ceil(bytes(text) / 4) + kTokensPerFactOverhead
// (about four bytes per token for English text; the overhead pays for the citation).
//
// Telemetry. Every Recall is logged (query, subject, agent, workflow, run, step, budget,
// returned facts with scores). When the step finishes, MarkUsed records which returned facts it
// actually used. A retrieval is a *hit* when at least one returned fact was used, a *miss* when
// it was marked with none used or returned nothing, *pending* until marked. hit_rate = hits /
// (hits + misses).
//
// Ownership: a Memory borrows the Workspace (which must outlive it) and its Env (the Clock
// decides TTL expiry and recency).
// Thread-safety: as Workspace: every method may be called from any thread; writes serialise.
// Errors (all methods): InvalidArgument (bad input: empty subject or text, confidence outside
// [0, 1], span outside the artifact, bad ids), NotFound (unknown fact, retrieval, artifact;
// a subject that is no record's id unless NewFact::free_subject),
// FailedPrecondition (superseding a superseded fact, extracting from generated text,
// read-only workspace), plus the store's Unavailable / DataLoss.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace keel::store {
class Workspace;
class Txn;
}  // namespace keel::store

namespace keel::memory {

// Estimated tokens added per returned fact for its citation and framing.
inline constexpr int64_t kTokensPerFactOverhead = 8;
// Largest fact text accepted (longer text belongs in an artifact, with a summary fact).
inline constexpr size_t kMaxFactTextBytes = 4096;

// ceil(bytes / 4) + kTokensPerFactOverhead: the estimate the budget is spent in.
int64_t EstimateTokens(std::string_view fact_text);

// Who wrote something: the extracting agent (or "operator"), the run and step.
struct Actor {
  std::string agent = "operator";
  std::string run_id;
  std::string step_id;
};

enum class Scope { kLong, kShort };
std::string_view ScopeName(Scope s);  // "long" | "short"

// Where a fact came from. One fact may have several (merged duplicates).
struct Source {
  std::string artifact;     // 64-hex SHA-256 of the raw text, empty for operator input
  int64_t span_begin = -1;  // byte offsets [begin, end) into the artifact; -1 when unknown
  int64_t span_end = -1;
  std::string agent;
  std::string run_id;
  std::string step_id;
  double confidence = 0;
  int64_t added_us = 0;
  int64_t ledger_seq = 0;  // the ledger entry that recorded this source
};

// The provenance object every returned fact carries (`provenance` in JSON output).
struct Provenance {
  std::string artifact;  // the first source (empty for operator input)
  int64_t span_begin = -1;
  int64_t span_end = -1;
  std::string agent;  // who extracted it first
  std::string run_id;
  std::string step_id;
  int64_t ledger_seq = 0;       // the `memory.fact.added` entry
  std::vector<Source> sources;  // every source, first one included, oldest first
};

struct Fact {
  std::string id;  // "fact_…"
  std::string subject;
  std::string text;
  std::string key;  // optional key/value form ("email", "role")
  std::string value;
  double confidence = 1.0;  // the highest confidence of its sources
  Scope scope = Scope::kLong;
  int64_t expires_us = 0;  // short-term facts: when they stop being returned; 0 = never
  int64_t valid_from_us = 0;
  int64_t valid_to_us = 0;    // 0 = still valid
  std::string superseded_by;  // the newer fact that replaced this one, or empty
  std::string supersedes;     // the older fact this one replaced, or empty
  int64_t created_us = 0;
  Provenance provenance;
};

// What to remember. `text` or `key`+`value` (then text = "key: value").
struct NewFact {
  std::string subject;
  std::string text;
  std::string key;
  std::string value;
  double confidence = 1.0;
  std::string source_artifact;  // must exist when set
  int64_t span_begin = -1;      // both set or both -1; within the artifact when set
  int64_t span_end = -1;
  int64_t valid_from_us = 0;  // 0 = now
  int64_t valid_to_us = 0;
  // Short-term facts need ttl_us > 0 and expire at now + ttl_us; long-term ones ignore it.
  Scope scope = Scope::kLong;
  int64_t ttl_us = 0;
  Actor by;
  // A fact is about a record: Remember refuses a subject that is not an existing record's id
  // with NotFound (a typo in `keel remember lead_01j...` would otherwise file the fact
  // where no recall for that record finds it). Set this to keep facts about a free-form
  // subject on purpose: a topic, a run's scratch notes, an agent's context, a benchmark.
  bool free_subject = false;
};

struct RememberResult {
  std::string fact_id;
  bool merged = false;  // an equal or near-duplicate fact existed; this became one more source
  bool already_known = false;  // same fact from the same source: nothing was written
};

struct RecallQuery {
  std::string query;    // free text; FTS syntax in it is treated as plain words
  std::string subject;  // restrict to one subject, or empty for all
  int64_t budget_tokens = 1000;
  int limit = 20;             // at most this many facts even when the budget allows more
  bool include_short = true;  // short-term facts that have not expired
  // For the retrieval log and per-agent/per-workflow stats.
  std::string agent;
  std::string workflow;
  std::string run_id;
  std::string step_id;
  bool log = true;  // false: a read-only search (CLI on a read-only workspace, benchmarks)
};

struct ScoredFact {
  Fact fact;
  double score = 0;
  double relevance = 0;
  double recency = 0;
  int64_t tokens = 0;
};

struct RecallResult {
  std::string retrieval_id;       // "ret_…" when logged, else empty
  std::vector<ScoredFact> facts;  // best first, total tokens <= budget
  int64_t tokens_used = 0;
  int64_t dropped_for_budget = 0;  // relevant facts left out because the budget was spent
};

// Long-term summary of a record: each version is an artifact (origin "summary") naming its
// parent, so the history is the artifact lineage.
struct Summary {
  std::string subject;
  std::string artifact;
  std::string parent_artifact;
  int version = 0;
  std::string text;
  Actor by;
  int64_t created_us = 0;
};

struct Decision {
  std::string id;  // "dec_…" (filled in by LogDecision)
  std::string subject;
  std::string decision;               // what was decided
  std::string decided_by;             // agent or "operator"
  std::string reason;                 // why
  std::vector<std::string> fact_ids;  // the facts it rests on (must exist)
  std::string run_id;
  std::string step_id;
  int64_t time_us = 0;
  int64_t ledger_seq = 0;
};

struct RateStats {
  std::string name;  // agent or workflow ("" = not given)
  int64_t retrievals = 0;
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t pending = 0;
  int64_t facts_returned = 0;
  int64_t facts_used = 0;
  double hit_rate = 0;  // hits / (hits + misses); 0 when none is marked
};

struct MemoryStats {
  int64_t facts_active = 0;  // not superseded, not expired
  int64_t facts_superseded = 0;
  int64_t facts_expired = 0;  // short-term facts past their TTL, not yet purged
  int64_t sources = 0;
  int64_t merged_facts = 0;  // facts with more than one source
  int64_t summaries = 0;
  int64_t decisions = 0;
  RateStats total;
  std::vector<RateStats> by_agent;
  std::vector<RateStats> by_workflow;
};

// Origins of text keel produced itself: facts are never extracted from them.
enum class Origin { kModel, kAgent, kSummary, kRecall, kKeel };
std::string_view OriginName(Origin o);  // "model" | "agent" | "summary" | "recall" | "keel"
// The media-type parameter that marks generated text: "text/plain; keel-origin=model".
inline constexpr char kOriginParam[] = "keel-origin";
std::string WithOrigin(std::string_view media_type, Origin o);

// Optional semantic similarity. The default (none) keeps keel working with no model.
class EmbeddingHook {
 public:
  virtual ~EmbeddingHook() = default;
  // Similarity in [0, 1] of `query` and `fact_text`; called for each FTS candidate.
  virtual double Similarity(std::string_view query, std::string_view fact_text) = 0;
};

struct MemoryOptions {
  double near_duplicate_jaccard = 0.8;  // token-set Jaccard at or above this merges
  int64_t recency_half_life_us = 30ll * 24 * 3600 * 1000000;  // 30 days
  int candidate_window = 64;  // FTS candidates read and scored per recall (at least `limit`)
  // When every query word is common, the facts holding all of them are searched only among
  // the newest facts, in a window expected to hold this many facts of the rarest word, so the
  // search costs O(this) however rarely the words meet (unbounded, FTS5 walks doclists of
  // 100,000s of entries: 5-10 ms at 1,000,000 facts). 0: search all facts.
  int and_window_facts = 2000;
  EmbeddingHook* embedding = nullptr;  // not owned
  double embedding_weight = 0.3;
};

class Memory {
 public:
  explicit Memory(store::Workspace* ws, MemoryOptions opts = {});

  // Adds a fact (dedupe + near-duplicate merge on the same subject). One transaction.
  // NotFound when f.subject is not an existing record's id and !f.free_subject.
  Result<RememberResult> Remember(const NewFact& f);
  // The same inside the caller's transaction (e.g. with the artifact it came from); the
  // record is looked up in that transaction.
  Result<RememberResult> Remember(store::Txn& txn, const NewFact& f);
  // Many facts in one transaction (bulk ingest); the first refused one fails them all.
  Result<std::vector<RememberResult>> RememberAll(const std::vector<NewFact>& facts);

  // Replaces `old_id` with `replacement` (same subject required unless empty). The old fact
  // gets valid_to = now and superseded_by = the new id; it is kept and listed with --all.
  // FailedPrecondition if `old_id` is already superseded.
  Result<std::string> Supersede(const std::string& old_id, const NewFact& replacement,
                                const std::string& reason);

  // The most relevant active facts within the budget, ranked as documented above. An empty
  // query (after dropping punctuation and stop words) returns the subject's most recent facts
  // when a subject is given, else InvalidArgument.
  Result<RecallResult> Recall(const RecallQuery& q);
  // The same, logging the retrieval inside the caller's transaction.
  Result<RecallResult> Recall(store::Txn& txn, const RecallQuery& q);

  // Records which facts of retrieval `retrieval_id` were used. Ids not returned by it are
  // InvalidArgument; marking twice replaces the earlier mark. An empty list marks a miss.
  Status MarkUsed(const std::string& retrieval_id, const std::vector<std::string>& used_ids);
  // The same inside the caller's transaction (an agent marks its retrieval with its output).
  Status MarkUsed(store::Txn& txn, const std::string& retrieval_id,
                  const std::vector<std::string>& used_ids);

  Result<Fact> Get(const std::string& fact_id);
  // Facts of `subject`, newest first. `all` includes superseded and expired ones.
  Result<std::vector<Fact>> FactsOf(const std::string& subject, bool all = false);

  // Deletes short-term facts whose TTL has passed (and their index rows); returns how many.
  // One ledger entry (`memory.purged`) listing them.
  Result<int64_t> PurgeExpired();

  // Long-term memory.
  Result<Summary> PutSummary(const std::string& subject, const std::string& text, const Actor& by);
  Result<std::optional<Summary>> LatestSummary(const std::string& subject);
  Result<std::vector<Summary>> SummaryHistory(const std::string& subject);  // newest first
  Result<Decision> LogDecision(const Decision& d);
  Result<std::vector<Decision>> Decisions(const std::string& subject);  // oldest first

  // Marks an artifact as text keel generated, so that ExtractFrom refuses it.
  Status MarkArtifactOrigin(store::Txn& txn, const std::string& artifact, Origin origin);
  // The origin of an artifact if keel generated it (table mark or media-type parameter).
  Result<std::optional<std::string>> ArtifactOrigin(const std::string& artifact);

  // Runs the rule-based extractor (memory/extract.h) on a raw-text artifact and remembers
  // each fact with its span. FailedPrecondition when the artifact is keel-generated or recalled
  // text; NotFound when `subject` is not an existing record's id and !free_subject (as
  // NewFact::free_subject), checked before the artifact is read. Returns one result per
  // extracted fact (merged ones included).
  Result<std::vector<RememberResult>> ExtractFrom(const std::string& artifact,
                                                  const std::string& subject, const Actor& by,
                                                  bool free_subject = false);

  Result<MemoryStats> Stats();

  const MemoryOptions& options() const { return opts_; }

 private:
  store::Workspace* ws_;
  MemoryOptions opts_;
};

// Text normalisation used for dedupe: lowercase ASCII, runs of non-alphanumeric bytes become
// one space, trimmed. Bytes >= 0x80 are kept (UTF-8 letters stay letters).
std::string NormalizeText(std::string_view text);
// Jaccard similarity of the token sets of two normalised texts.
double TokenJaccard(std::string_view a, std::string_view b);

}  // namespace keel::memory
