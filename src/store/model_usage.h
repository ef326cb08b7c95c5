// Model usage: one row per model call (tokens, cost, attribution to run, agent and customer
// record) and the response cache for identical temperature-0 requests.
//
// The ledger entry for a call is appended by the caller (agents layer) in the same
// transaction; its sequence number is stored here so a row and its entry point at each other.
// Costs are integers in nano-US-dollars (1e-9 USD) so that sums are exact.
//
// Errors: InvalidArgument (empty ids, negative counts), Unavailable (database busy or full).
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

struct ModelCall {
  std::string id;       // "mc_..."
  int64_t time_us = 0;  // filled from the transaction
  std::string run_id, step_id, agent, record_id;
  std::string provider, model, operation = "chat";
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t cost_nanousd = 0;
  bool cached = false;
  std::string finish_reason;
  std::string prompt_hash;        // SHA-256 of the canonical request
  std::string prompt_artifact;    // 64 hex
  std::string response_artifact;  // 64 hex
  int64_t ledger_seq = 0;
};

Status InsertModelCall(Txn& txn, const ModelCall& call);

struct CachedResponse {
  std::string prompt_hash;
  std::string response_artifact;
  std::string provider, model;
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t created_us = 0;
  int64_t hits = 0;
};

// The cached response for `prompt_hash`, if any.
Result<std::optional<CachedResponse>> LookupResponseCache(Workspace& ws,
                                                          const std::string& prompt_hash);
// Inserts (or keeps the existing) cache entry; counts a hit when `hit` is true.
Status PutResponseCache(Txn& txn, const CachedResponse& entry);
Status CountCacheHit(Txn& txn, const std::string& prompt_hash);

struct CostQuery {
  std::string record_id;  // empty: all
  std::string run_id;
  std::string agent;
  int64_t since_us = 0;  // inclusive; 0: from the start
};

struct CostLine {
  std::string key;  // the agent, model or record this line sums
  int64_t calls = 0, cached_calls = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t cost_nanousd = 0;
};

struct CostReport {
  CostLine total;
  std::vector<CostLine> by_agent, by_model, by_record;  // largest cost first
};

Result<CostReport> QueryCost(Workspace& ws, const CostQuery& q);
// The calls matching `q`, newest first, at most `limit`.
Result<std::vector<ModelCall>> ListModelCalls(Workspace& ws, const CostQuery& q, int64_t limit);

}  // namespace keel::store
