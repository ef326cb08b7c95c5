// Memory's internals, shared by the files that implement memory/memory.h, one job each:
//   memory.cc            facts: text normalisation, adding (dedupe, near-duplicate merge),
//                        superseding, reading and purging them
//   memory_recall.cc     Recall (candidates, BM25 ranking, the token budget), the retrieval
//                        log and its telemetry (MarkUsed, Stats)
//   memory_summaries.cc  long-term memory: summaries and decisions
//   memory_origin.cc     origins of generated text, and ExtractFrom
// Included only by those files (src/memory/memory*.cc), never outside them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "memory/memory.h"
#include "store/facts.h"

namespace keel::memory {
// A namespace of its own: these names are short and common.
namespace memory_internal {

// All in memory.cc.
bool HasNul(std::string_view s);
// The words of a normalised text (NormalizeText): the runs between single spaces.
std::vector<std::string_view> Tokens(std::string_view norm);
// A fact row and its extra sources (merged duplicates) as the public Fact.
Fact ToFact(const store::FactRow& r, const std::vector<store::FactSourceRow>& extra);
// InvalidArgument unless `subject` is non-empty, at most 200 bytes, with no NUL.
Status ValidateSubject(const std::string& subject);
// The NotFound for a subject that is no record's id.
Status UnknownSubject(const std::string& subject);
// `s` cut to at most `n` bytes on a UTF-8 character boundary, with "…" when cut.
std::string Truncate(const std::string& s, size_t n);

}  // namespace memory_internal
}  // namespace keel::memory
