// The context engine's tables (schema migration 3): facts, their extra sources, the FTS5
// index, summaries, the decision log, the retrieval log and artifact origins. Typed rows and
// functions only; the rules (dedupe, ranking, budgets) live in src/memory/, the SQL here.
//
// Writes take a Txn (the caller appends the ledger entry in the same transaction and passes
// its seq); reads come in two forms: on a Txn (inside a write) and on a Workspace (they take
// the workspace lock).
//
// Errors: the store's (Unavailable, DataLoss, Internal); AlreadyExists on a duplicate id;
// FailedPrecondition when a CHECK fails (confidence outside [0, 1]).
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/search_terms.h"
#include "store/workspace.h"

namespace keel::store {

struct FactRow {
  int64_t n = 0;  // internal row number (also the fact's key in the full-text index)
  std::string id;
  std::string subject;
  std::string text;
  std::string key;
  std::string value;
  std::string norm;
  double confidence = 1.0;
  std::string scope = "long";  // long | short
  int64_t expires_us = 0;
  int64_t valid_from_us = 0;
  int64_t valid_to_us = 0;
  std::string superseded_by;
  std::string supersedes;
  std::string source_artifact;
  int64_t span_begin = -1;
  int64_t span_end = -1;
  std::string agent;
  std::string run_id;
  std::string step_id;
  int64_t created_us = 0;
  int64_t ledger_seq = 0;
};

struct FactSourceRow {
  int64_t fact_n = 0;
  std::string artifact;
  int64_t span_begin = -1;
  int64_t span_end = -1;
  std::string agent;
  std::string run_id;
  std::string step_id;
  double confidence = 0;
  int64_t added_us = 0;
  int64_t ledger_seq = 0;
};

// Inserts the fact and its index row; fills row->n.
Status InsertFact(Txn& txn, FactRow* row);
Status InsertFactSource(Txn& txn, const FactSourceRow& src);
Status SetFactConfidence(Txn& txn, int64_t n, double confidence);
// Marks `old` superseded by `new_id` with valid_to = `valid_to_us` and drops it from the index.
Status SupersedeFact(Txn& txn, const FactRow& old, const std::string& new_id, int64_t valid_to_us);
// Deletes the facts (index rows and sources too).
Status DeleteFacts(Txn& txn, const std::vector<FactRow>& rows);

Result<std::optional<FactRow>> FindFact(Txn& txn, const std::string& id);
Result<std::optional<FactRow>> FindFact(Workspace& ws, const std::string& id);
// Active (not superseded) facts of `subject` with exactly this normalised text, oldest first.
Result<std::vector<FactRow>> FindFactsByNorm(Txn& txn, const std::string& subject,
                                             const std::string& norm);
// Active facts of `subject` with this key and value (a key/value fact is the same fact
// whatever sentence it was read from), oldest first. Uses the subject index.
Result<std::vector<FactRow>> FindFactsByKeyValue(Txn& txn, const std::string& subject,
                                                 const std::string& key, const std::string& value);
Result<std::vector<FactSourceRow>> FactSources(Workspace& ws, int64_t fact_n);
Result<std::vector<FactSourceRow>> FactSources(Txn& txn, int64_t fact_n);
// All facts of `subject`, newest first.
Result<std::vector<FactRow>> FactsBySubject(Workspace& ws, const std::string& subject);
// Short-term facts with 0 < expires_us <= now.
Result<std::vector<FactRow>> ExpiredFacts(Txn& txn, int64_t now_us);

// A full-text search of indexed (active) facts' text: plain words, never index syntax (the
// backend quotes them; store/sqlite/fts.h builds the FTS5 expression).
struct FactTextSearch {
  std::vector<SearchTerm> terms;  // no terms: nothing matches
  TermJoin join = TermJoin::kAny;
  std::string subject;  // empty: every subject
};
// Candidate generation for recall: numbers (FactRow::n) of indexed facts matching `search`,
// in ascending order, at most `limit`. No ranking happens here: ascending order lets the
// index stop after `limit` rows instead of scoring every match (descending order would make
// it load each term's whole doclist). With `min_row` > 0, only rows >= min_row: the index
// seeks there in each doclist, so a window of the newest facts costs what the window holds,
// not what the whole doclists hold.
Result<std::vector<int64_t>> SearchFactRows(Workspace& ws, const FactTextSearch& search, int limit,
                                            int64_t min_row = 0);
Result<std::vector<int64_t>> SearchFactRows(Txn& txn, const FactTextSearch& search, int limit,
                                            int64_t min_row = 0);
// Runs `fn` inside one read transaction (one consistent snapshot, one lock acquisition for
// all the reads `fn` makes through the Workspace forms below), holding the workspace lock.
// Runs `fn` directly when a transaction is already open on this connection.
Status ReadSnapshot(Workspace& ws, const std::function<Status()>& fn);
// The largest row number (an O(log n) stand-in for the number of facts, for IDF).
Result<int64_t> MaxFactRow(Workspace& ws);
Result<int64_t> MaxFactRow(Txn& txn);
Result<std::optional<FactRow>> FactByRow(Workspace& ws, int64_t n);
Result<std::optional<FactRow>> FactByRow(Txn& txn, int64_t n);
// Row numbers and normalised texts of up to `limit` active facts of `subject`, read from the
// covering index (no table access): what the near-duplicate check compares against.
Result<std::vector<std::pair<int64_t, std::string>>> ActiveNorms(Txn& txn,
                                                                 const std::string& subject,
                                                                 int limit);

struct FactSearch {
  std::string subject;
  int64_t now_us = 0;  // expired / no longer valid facts are skipped
  bool include_short = true;
  int limit = 200;
};
struct FactHit {
  FactRow row;
  double bm25 = 0;
};
// Newest active facts of a subject (no text query).
Result<std::vector<FactHit>> LatestFacts(Workspace& ws, const FactSearch& q);

struct FactCounts {
  int64_t active = 0, superseded = 0, expired = 0, sources = 0, merged = 0, summaries = 0,
          decisions = 0;
};
Result<FactCounts> CountFacts(Workspace& ws, int64_t now_us);

// Summaries.
struct SummaryRow {
  std::string subject;
  int64_t version = 0;
  std::string artifact;
  std::string parent;
  std::string agent, run_id, step_id;
  int64_t created_us = 0;
  int64_t ledger_seq = 0;
};
Status InsertSummary(Txn& txn, const SummaryRow& row);
Result<std::optional<SummaryRow>> LatestSummaryRow(Txn& txn, const std::string& subject);
Result<std::vector<SummaryRow>> SummaryRows(Workspace& ws, const std::string& subject);

// Decisions. fact_ids is stored as a JSON array.
struct DecisionRow {
  std::string id, subject, decision, decided_by, reason, fact_ids_json, run_id, step_id;
  int64_t time_us = 0;
  int64_t ledger_seq = 0;
};
Status InsertDecision(Txn& txn, const DecisionRow& row);
Result<std::vector<DecisionRow>> DecisionRows(Workspace& ws, const std::string& subject);

// Retrievals. returned/used are JSON arrays.
struct RetrievalRow {
  std::string id;
  int64_t time_us = 0;
  std::string query, subject, agent, workflow, run_id, step_id;
  int64_t budget_tokens = 0, tokens_used = 0;
  std::string returned_json;
  int64_t returned_count = 0;
  std::optional<std::string> used_json;
  int64_t used_count = 0;
  int64_t marked_us = 0;
  int64_t ledger_seq = 0;
};
Status InsertRetrieval(Txn& txn, const RetrievalRow& row);
Result<std::optional<RetrievalRow>> FindRetrieval(Txn& txn, const std::string& id);
Status SetRetrievalUsed(Txn& txn, const std::string& id, const std::string& used_json,
                        int64_t used_count, int64_t marked_us);

struct RetrievalAggregate {
  std::string name;
  int64_t retrievals = 0, hits = 0, misses = 0, pending = 0, returned = 0, used = 0;
};
// group_by: "" (one total row), "agent" or "workflow".
Result<std::vector<RetrievalAggregate>> AggregateRetrievals(Workspace& ws,
                                                            const std::string& group_by);

// Artifact origins.
Status InsertArtifactOrigin(Txn& txn, const std::string& artifact, const std::string& origin,
                            int64_t time_us, int64_t ledger_seq);
Result<std::optional<std::string>> FindArtifactOrigin(Workspace& ws, const std::string& artifact);
Result<std::optional<std::string>> FindArtifactOrigin(Txn& txn, const std::string& artifact);

// Sizes for the benchmark: bytes of the facts table, its indexes and the FTS index (dbstat
// when compiled in, else page counts of the whole file).
struct MemoryFootprint {
  int64_t db_bytes = 0;
  int64_t fts_bytes = -1;  // -1 when dbstat is unavailable
};
Result<MemoryFootprint> MeasureFootprint(Workspace& ws);

}  // namespace keel::store
