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
std::string BuildMatch(const ParsedQuery& q, const std::string& subject);
// One term: `text : "a"` (or `"a"*`), restricted to a subject when given.
std::string BuildTermMatch(const QueryTerm& t, const std::string& subject);
// All terms AND-ed: `text : ("a" AND "b")`.
std::string BuildAllMatch(const ParsedQuery& q, const std::string& subject);

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
