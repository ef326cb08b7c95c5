// Application services for memory: remembering and recalling facts, listing them, telemetry,
// extraction, supersession, long-term summaries and the decision log (docs/memory.md). Every
// face calls these; none builds a memory::Memory itself. Results are the memory layer's
// structs; app/views.h shows them.
//
// Thread-safety: as the Runtime (one thread at a time per Runtime).
// Errors: those of memory::Memory (memory/memory.h) plus InvalidArgument for a bad request
// (messages name the CLI flag, as the other services do) and NotFound for a subject that is
// not a record (Remember and ExtractFacts without `free_subject`; the memory layer's rule)
// or a subject with no summary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "core/status.h"
#include "memory/memory.h"

namespace keel::app {

struct RememberRequest {
  // A record id, which must exist, unless `free_subject` (a run id, a topic, ...).
  std::string subject;
  bool free_subject = false;
  std::string text;  // or key + value
  std::string key, value;
  double confidence = 1.0;  // in [0, 1]
  std::string source;       // artifact address of the raw text
  std::string span;         // "BEGIN:END" byte offsets into `source`, or empty
  std::string ttl;          // short-term: "90s", "15m", "2h", "7d", "1w"; empty: long-term
  memory::Actor by;
};
Result<memory::RememberResult> Remember(Runtime& rt, const RememberRequest& req);

struct RecallRequest {
  std::string query, subject;
  int64_t budget_tokens = 1000;  // > 0
  int limit = 20;                // > 0
  std::string agent, workflow, run_id, step_id;
  bool include_short = true;
  bool log = true;  // false: a read-only search (works on a read-only Runtime)
};
Result<memory::RecallResult> Recall(Runtime& rt, const RecallRequest& req);

// Facts of `subject`, newest first; `all` adds superseded and expired ones.
Result<std::vector<memory::Fact>> ListFacts(Runtime& rt, const std::string& subject, bool all);

Result<memory::MemoryStats> GetMemoryStats(Runtime& rt);
// Deletes expired short-term facts; returns how many.
Result<int64_t> PurgeExpiredFacts(Runtime& rt);
// Records which facts of a retrieval were used (none: a miss).
Status MarkFactsUsed(Runtime& rt, const std::string& retrieval_id,
                     const std::vector<std::string>& fact_ids);

struct ExtractRequest {
  std::string artifact, subject;
  bool free_subject = false;  // as RememberRequest::free_subject
  memory::Actor by{"offline", "", ""};
};
Result<std::vector<memory::RememberResult>> ExtractFacts(Runtime& rt, const ExtractRequest& req);

struct SupersedeRequest {
  std::string fact_id, text, reason;
  double confidence = 1.0;  // in [0, 1]
  std::string agent = "operator";
};
// Returns the new fact's id.
Result<std::string> SupersedeFact(Runtime& rt, const SupersedeRequest& req);

// Stores `text` as the next version of the subject's long-term summary.
Result<memory::Summary> PutSummary(Runtime& rt, const std::string& subject, const std::string& text,
                                   const std::string& agent);
// The newest summary; NotFound when there is none.
Result<memory::Summary> LatestSummary(Runtime& rt, const std::string& subject);

// The decision log of `subject`, oldest first.
Result<std::vector<memory::Decision>> ListDecisions(Runtime& rt, const std::string& subject);

}  // namespace keel::app
