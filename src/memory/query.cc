#include "memory/query.h"

#include <algorithm>
#include <array>

namespace keel::memory {
namespace {

bool WordByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c >= 0x80;
}

}  // namespace

bool IsStopWord(std::string_view w) {
  static constexpr std::array<std::string_view, 58> kStop = {
      "a",     "about", "an",    "and",  "are",   "as",  "at",   "be",   "by",    "can",
      "did",   "do",    "does",  "for",  "from",  "had", "has",  "have", "he",    "her",
      "his",   "how",   "i",     "in",   "is",    "it",  "its",  "me",   "my",    "not",
      "of",    "on",    "or",    "our",  "s",     "she", "that", "the",  "their", "them",
      "they",  "this",  "those", "to",   "us",    "was", "we",   "were", "what",  "when",
      "where", "which", "who",   "whom", "whose", "why", "with", "you"};
  return std::binary_search(kStop.begin(), kStop.end(), w);
}

ParsedQuery ParseQuery(std::string_view text) {
  ParsedQuery q;
  size_t i = 0;
  while (i < text.size() && q.terms.size() < kMaxQueryTerms) {
    if (!WordByte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && WordByte(static_cast<unsigned char>(text[j]))) ++j;
    QueryTerm t;
    for (size_t k = i; k < j; ++k) {
      char c = text[k];
      t.word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    t.prefix = j < text.size() && text[j] == '*';
    i = j;
    // A word of only underscores tokenises to nothing in the index.
    if (t.word.find_first_not_of('_') == std::string::npos) continue;
    if (!t.prefix && IsStopWord(t.word)) continue;
    bool dup = std::any_of(q.terms.begin(), q.terms.end(), [&](const QueryTerm& o) {
      return o.word == t.word && o.prefix == t.prefix;
    });
    if (!dup) q.terms.push_back(std::move(t));
  }
  return q;
}

std::string Stem(std::string_view w) {
  std::string s(w);
  auto ends = [&](std::string_view suf) {
    return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (s.size() > 4 && ends("ies")) {
    s.replace(s.size() - 3, 3, "y");
  } else if (ends("sses")) {
    s.resize(s.size() - 2);
  } else if (s.size() > 3 && ends("s") && !ends("ss") && !ends("us") && !ends("is")) {
    s.resize(s.size() - 1);
  }
  if (s.size() > 5 && ends("ing")) {
    s.resize(s.size() - 3);
  } else if (s.size() > 4 && ends("ed")) {
    s.resize(s.size() - 2);
  }
  return s;
}

bool TermMatches(const QueryTerm& t, const std::string& term_stem, std::string_view doc_word,
                 const std::string& doc_stem) {
  if (t.prefix) return doc_word.substr(0, t.word.size()) == t.word;
  if (doc_stem == term_stem || doc_word == t.word) return true;
  // Stemmers disagree on some words ("invoicing" / "invoice"): accept a shared stem of at
  // least four letters where one is a prefix of the other.
  const std::string& a = doc_stem.size() < term_stem.size() ? doc_stem : term_stem;
  const std::string& b = doc_stem.size() < term_stem.size() ? term_stem : doc_stem;
  return a.size() >= 4 && b.size() - a.size() <= 2 && b.compare(0, a.size(), a) == 0;
}

}  // namespace keel::memory
