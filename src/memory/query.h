// INTERNAL to src/memory: turns operator or agent text into a safe FTS5 MATCH expression.
//
// Nothing of the input's syntax reaches FTS5: the text is cut into words (ASCII letters and
// digits, '_' and any byte >= 0x80), stop words are dropped, each word becomes a quoted
// phrase, and a word written with a trailing '*' becomes a prefix query. So `"`, `AND(`,
// `NEAR(a b)` or `col:x` are plain words or nothing, never an FTS5 syntax error.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::memory {

struct QueryTerm {
  std::string word;  // lowercase
  bool prefix = false;
};

struct ParsedQuery {
  std::vector<QueryTerm> terms;  // at most kMaxQueryTerms, duplicates removed
};

inline constexpr size_t kMaxQueryTerms = 16;

ParsedQuery ParseQuery(std::string_view text);

// `text : ("a" OR "b"*)`, and `subject : "<subject>" AND (...)` when a subject is given.
// Terms are OR-ed: BM25 ranks facts that match more (and rarer) words first.
std::string BuildMatch(const ParsedQuery& q, const std::string& subject);

// True for the English stop words dropped from queries ("the", "who", "is", ...).
bool IsStopWord(std::string_view lower_word);

}  // namespace keel::memory
