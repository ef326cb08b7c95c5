// INTERNAL to src/memory: turns operator or agent text into search terms for the store's
// full-text search (store::FactTextSearch).
//
// Nothing of the input's syntax reaches the index: the text is cut into words (ASCII
// letters and digits, '_' and any byte >= 0x80), stop words are dropped, and a word written
// with a trailing '*' becomes a prefix term. The store quotes each term when it builds the
// index's query (store/sqlite/fts.h), so `"`, `AND(`, `NEAR(a b)` or `col:x` are plain
// words or nothing, never a query syntax error.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/search_terms.h"

namespace keel::memory {

// A word (lowercase) and whether it is a prefix.
using QueryTerm = store::SearchTerm;

struct ParsedQuery {
  std::vector<QueryTerm> terms;  // at most kMaxQueryTerms, duplicates removed
};

inline constexpr size_t kMaxQueryTerms = 16;

ParsedQuery ParseQuery(std::string_view text);

// A light suffix-stripping stemmer used when keel scores candidates ("invoices" -> "invoice",
// "meetings" -> "meeting" -> "meet"). The index itself uses FTS5's Porter stemmer; this one only
// counts term frequencies in candidate texts, and TermMatches tolerates the difference.
std::string Stem(std::string_view lower_word);
// Whether a (lowercase) document word counts as an occurrence of query term `t`.
bool TermMatches(const QueryTerm& t, const std::string& term_stem, std::string_view doc_word,
                 const std::string& doc_stem);

// True for the English stop words dropped from queries ("the", "who", "is", ...).
bool IsStopWord(std::string_view lower_word);

}  // namespace keel::memory
