#include "memory/query.h"

#include <algorithm>
#include <array>

namespace keel::memory {
namespace {

bool WordByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '_' || c >= 0x80;
}

// A quoted FTS5 string: double quotes inside are doubled.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

bool IsStopWord(std::string_view w) {
  static constexpr std::array<std::string_view, 58> kStop = {
      "a",     "about", "an",    "and",  "are",   "as",    "at",    "be",   "by",    "can",
      "did",   "do",    "does",  "for",  "from",  "had",   "has",   "have", "he",    "her",
      "his",   "how",   "i",     "in",   "is",    "it",    "its",   "me",   "my",    "not",
      "of",    "on",    "or",    "our",  "s",     "she",   "that",  "the",  "their", "them",
      "they",  "this",  "those", "to",   "us",    "was",   "we",    "were", "what",  "when",
      "where", "which", "who",   "whom", "whose", "why",   "with",  "you"};
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
    // A word of only underscores tokenises to nothing in FTS5.
    if (t.word.find_first_not_of('_') == std::string::npos) continue;
    if (!t.prefix && IsStopWord(t.word)) continue;
    bool dup = std::any_of(q.terms.begin(), q.terms.end(), [&](const QueryTerm& o) {
      return o.word == t.word && o.prefix == t.prefix;
    });
    if (!dup) q.terms.push_back(std::move(t));
  }
  return q;
}

std::string BuildMatch(const ParsedQuery& q, const std::string& subject) {
  std::string terms;
  for (const auto& t : q.terms) {
    if (!terms.empty()) terms += " OR ";
    terms += Quote(t.word);
    if (t.prefix) terms += '*';
  }
  std::string out = "text : (" + terms + ")";
  if (!subject.empty()) out = "subject : " + Quote(subject) + " AND " + out;
  return out;
}

}  // namespace keel::memory
