// Search terms as the store's full-text search takes them: plain words, never the query
// syntax of a database engine. The engine-specific expression is built inside
// src/store/sqlite/ (fts.h), so a caller cannot inject operators and a PostgreSQL backend
// can build its own (tsquery) from the same terms.
//
// Thread-safety: plain values.
#pragma once

#include <string>
#include <vector>

namespace keel::store {

struct SearchTerm {
  std::string word;     // one word as the tokenizer sees it (lowercase; any byte is allowed)
  bool prefix = false;  // also match longer words starting with `word`
};

// How a search combines its terms.
enum class TermJoin {
  kAny,  // a row matches when it has at least one term
  kAll,  // a row matches when it has every term
};

}  // namespace keel::store
