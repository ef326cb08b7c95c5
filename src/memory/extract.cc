#include "memory/extract.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <set>

namespace keel::memory {
namespace {

// ---------------------------------------------------------------------------------------------
// Byte classes. Bytes >= 0x80 (UTF-8) count as lowercase letters: names like "José" stay one
// word, and invalid UTF-8 cannot break anything.

bool IsUpper(unsigned char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsLower(unsigned char c) {
  return (c >= 'a' && c <= 'z') || c >= 0x80;
}
bool IsDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool IsAlpha(unsigned char c) {
  return IsUpper(c) || IsLower(c);
}
bool IsAlnum(unsigned char c) {
  return IsAlpha(c) || IsDigit(c);
}
char Lower(char c) {
  return IsUpper(static_cast<unsigned char>(c)) ? static_cast<char>(c + 32) : c;
}

std::string LowerStr(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool StartsWithNoCase(std::string_view text, size_t pos, std::string_view prefix) {
  if (pos + prefix.size() > text.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(text[pos + i]) != prefix[i]) return false;
  }
  return true;
}

// A span already claimed by a more specific rule (a URL's digits are not a phone number).
struct Claimed {
  std::vector<std::pair<size_t, size_t>> spans;
  bool Overlaps(size_t b, size_t e) const {
    for (const auto& s : spans) {
      if (b < s.second && s.first < e) return true;
    }
    return false;
  }
  void Add(size_t b, size_t e) { spans.emplace_back(b, e); }
};

// The sentence or line around [b, e), trimmed to about 160 bytes, for the fact's text: the
// words around an amount or a date are what a later query will use ("budget", "deadline").
std::string Context(std::string_view text, size_t b, size_t e) {
  size_t lo = b;
  while (lo > 0 && b - lo < 100) {
    char c = text[lo - 1];
    if (c == '\n' || c == '!' || c == '?' || c == '|') break;
    if (c == '.' && lo < text.size() && (text[lo] == ' ' || text[lo] == '\n')) break;
    --lo;
  }
  size_t hi = e;
  while (hi < text.size() && hi - e < 100) {
    char c = text[hi];
    if (c == '\n' || c == '!' || c == '?' || c == '|') break;
    if (c == '.' && (hi + 1 >= text.size() || text[hi + 1] == ' ' || text[hi + 1] == '\n')) break;
    ++hi;
  }
  // Do not cut a UTF-8 sequence.
  while (lo < b && (static_cast<unsigned char>(text[lo]) & 0xC0) == 0x80) ++lo;
  while (hi > e && hi < text.size() && (static_cast<unsigned char>(text[hi]) & 0xC0) == 0x80) {
    --hi;
  }
  std::string out;
  bool space = false;
  for (size_t i = lo; i < hi; ++i) {
    char c = text[i];
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20) continue;
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string WithContext(const std::string& head, std::string_view text, size_t b, size_t e) {
  std::string ctx = Context(text, b, e);
  std::string raw(text.substr(b, e - b));
  if (ctx.empty() || ctx == raw) return head;
  return head + " (" + ctx + ")";
}

// ---------------------------------------------------------------------------------------------
// URLs and e-mail addresses.

bool UrlStop(unsigned char c) {
  return c <= ' ' || c == '<' || c == '>' || c == '"' || c == '\'' || c == '`' || c == '[' ||
         c == ']' || c == '{' || c == '}' || c == '|' || c == '\\' || c == '^';
}

void FindUrls(std::string_view t, std::vector<ExtractedFact>* out, Claimed* claimed) {
  for (size_t i = 0; i < t.size(); ++i) {
    size_t start_len = 0;
    if (StartsWithNoCase(t, i, "https://")) {
      start_len = 8;
    } else if (StartsWithNoCase(t, i, "http://")) {
      start_len = 7;
    } else if (StartsWithNoCase(t, i, "www.")) {
      start_len = 4;
    } else {
      continue;
    }
    if (i > 0 &&
        (IsAlnum(static_cast<unsigned char>(t[i - 1])) || t[i - 1] == '/' || t[i - 1] == '.')) {
      continue;
    }
    size_t j = i + start_len;
    while (j < t.size() && !UrlStop(static_cast<unsigned char>(t[j]))) ++j;
    // Trailing punctuation belongs to the sentence; a ')' only to the URL if it opened one.
    while (j > i + start_len) {
      char c = t[j - 1];
      bool punct =
          c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '\'';
      bool unopened = c == ')' && std::count(t.begin() + i, t.begin() + j, '(') <
                                      std::count(t.begin() + i, t.begin() + j, ')');
      if (punct || unopened) {
        --j;
      } else {
        break;
      }
    }
    std::string_view host = t.substr(i + start_len, j - i - start_len);
    if (host.empty() || host.find('.') == std::string_view::npos) continue;
    ExtractedFact f;
    f.kind = "url";
    f.key = "url";
    f.value = std::string(t.substr(i, j - i));
    f.text = WithContext("website: " + f.value, t, i, j);
    f.begin = i;
    f.end = j;
    f.confidence = 0.9;
    claimed->Add(i, j);
    out->push_back(std::move(f));
    i = j;
  }
}

bool LocalChar(unsigned char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool DomainChar(unsigned char c) {
  return IsAlnum(c) || c == '.' || c == '-';
}

void FindEmails(std::string_view t, std::vector<ExtractedFact>* out, Claimed* claimed) {
  for (size_t at = 0; at < t.size(); ++at) {
    if (t[at] != '@') continue;
    size_t b = at;
    while (b > 0 && LocalChar(static_cast<unsigned char>(t[b - 1])) &&
           static_cast<unsigned char>(t[b - 1]) < 0x80) {
      --b;
    }
    while (b < at && (t[b] == '.' || t[b] == '-')) ++b;
    size_t e = at + 1;
    while (e < t.size() && DomainChar(static_cast<unsigned char>(t[e])) &&
           static_cast<unsigned char>(t[e]) < 0x80) {
      ++e;
    }
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    if (b == at || e <= at + 1) continue;
    std::string_view domain = t.substr(at + 1, e - at - 1);
    size_t dot = domain.rfind('.');
    if (dot == std::string_view::npos || dot == 0) continue;
    std::string_view tld = domain.substr(dot + 1);
    if (tld.size() < 2 || !std::all_of(tld.begin(), tld.end(), [](char c) {
          return IsAlpha(static_cast<unsigned char>(c));
        })) {
      continue;
    }
    if (claimed->Overlaps(b, e)) continue;
    ExtractedFact f;
    f.kind = "email";
    f.key = "email";
    f.value = LowerStr(t.substr(b, e - b));
    f.text = WithContext("email: " + f.value, t, b, e);
    f.begin = b;
    f.end = e;
    f.confidence = 0.95;
    claimed->Add(b, e);
    out->push_back(std::move(f));
    at = e;
  }
}

// ---------------------------------------------------------------------------------------------
// Dates.

constexpr std::array<std::string_view, 12> kMonths = {
    "january", "february", "march",     "april",   "may",      "june",
    "july",    "august",   "september", "october", "november", "december"};

// Reads a month name (full or 3-letter abbreviation, optional '.') at `i`; returns 1..12 and
// sets *end, or 0.
int ReadMonth(std::string_view t, size_t i, size_t* end) {
  if (i >= t.size() || !IsUpper(static_cast<unsigned char>(t[i]))) return 0;
  size_t j = i;
  while (j < t.size() && IsAlpha(static_cast<unsigned char>(t[j]))) ++j;
  std::string w = LowerStr(t.substr(i, j - i));
  for (int m = 0; m < 12; ++m) {
    bool full = w == kMonths[m];
    bool abbr = w.size() >= 3 && w.size() <= 4 && kMonths[m].substr(0, w.size()) == w &&
                (w.size() == 3 || w == "sept");
    if (full || abbr) {
      if (!full && j < t.size() && t[j] == '.') ++j;
      *end = j;
      return m + 1;
    }
  }
  return 0;
}

// Reads 1..max_digits digits at `i`.
int ReadNumber(std::string_view t, size_t i, size_t max_digits, size_t* end) {
  size_t j = i;
  int v = 0;
  while (j < t.size() && IsDigit(static_cast<unsigned char>(t[j])) && j - i < max_digits) {
    v = v * 10 + (t[j] - '0');
    ++j;
  }
  if (j == i || (j < t.size() && IsDigit(static_cast<unsigned char>(t[j])))) return -1;
  *end = j;
  return v;
}

size_t SkipOrdinal(std::string_view t, size_t j) {
  for (std::string_view suf : {"st", "nd", "rd", "th"}) {
    if (StartsWithNoCase(t, j, suf) &&
        (j + 2 >= t.size() || !IsAlpha(static_cast<unsigned char>(t[j + 2])))) {
      return j + 2;
    }
  }
  return j;
}

bool ValidDate(int y, int m, int d) {
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return y >= 1900 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= kDays[m - 1];
}

void AddDate(std::string_view t, size_t b, size_t e, int y, int m, int d, double conf,
             std::vector<ExtractedFact>* out, Claimed* claimed) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  ExtractedFact f;
  f.kind = "date";
  f.key = "date";
  f.value = buf;
  f.text = WithContext(std::string("date: ") + buf, t, b, e);
  f.begin = b;
  f.end = e;
  f.confidence = conf;
  claimed->Add(b, e);
  out->push_back(std::move(f));
}

void FindDates(std::string_view t, std::vector<ExtractedFact>* out, Claimed* claimed) {
  for (size_t i = 0; i < t.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    bool boundary = i == 0 || !IsAlnum(static_cast<unsigned char>(t[i - 1]));
    if (!boundary || claimed->Overlaps(i, i + 1)) continue;
    size_t e = 0;
    if (IsDigit(c)) {
      // ISO: 2026-03-14
      size_t j;
      int y = ReadNumber(t, i, 4, &j);
      if (y >= 0 && j - i == 4 && j < t.size() && t[j] == '-') {
        size_t k;
        int m = ReadNumber(t, j + 1, 2, &k);
        if (m >= 0 && k - j - 1 == 2 && k < t.size() && t[k] == '-') {
          int d = ReadNumber(t, k + 1, 2, &e);
          if (d >= 0 && e - k - 1 == 2 && ValidDate(y, m, d) &&
              (e >= t.size() || !IsAlnum(static_cast<unsigned char>(t[e])))) {
            AddDate(t, i, e, y, m, d, 0.9, out, claimed);
            i = e;
            continue;
          }
        }
      }
      // 14 March 2026, 14th of March, 2026
      int d = ReadNumber(t, i, 2, &j);
      if (d > 0) {
        j = SkipOrdinal(t, j);
        if (j < t.size() && t[j] == ' ') {
          size_t k = j + 1;
          if (StartsWithNoCase(t, k, "of ")) k += 3;
          int m = ReadMonth(t, k, &k);
          if (m > 0) {
            if (k < t.size() && t[k] == ',') ++k;
            if (k < t.size() && t[k] == ' ') {
              int y2 = ReadNumber(t, k + 1, 4, &e);
              if (y2 >= 0 && e - k - 1 == 4 && ValidDate(y2, m, d)) {
                AddDate(t, i, e, y2, m, d, 0.85, out, claimed);
                i = e;
                continue;
              }
            }
          }
        }
      }
    } else if (IsUpper(c)) {
      // March 14, 2026 / Mar. 14th 2026
      size_t j;
      int m = ReadMonth(t, i, &j);
      if (m > 0 && j < t.size() && t[j] == ' ') {
        size_t k;
        int d = ReadNumber(t, j + 1, 2, &k);
        if (d > 0) {
          k = SkipOrdinal(t, k);
          if (k < t.size() && t[k] == ',') ++k;
          if (k < t.size() && t[k] == ' ') {
            int y = ReadNumber(t, k + 1, 4, &e);
            if (y >= 0 && e - k - 1 == 4 && ValidDate(y, m, d)) {
              AddDate(t, i, e, y, m, d, 0.85, out, claimed);
              i = e;
              continue;
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Money.

struct Currency {
  std::string_view token;  // as written (symbols are UTF-8)
  std::string_view code;
  bool symbol;  // a symbol may touch the number ("$5"); a code needs a boundary
};
constexpr std::array<Currency, 22> kCurrencies = {{
    {"US$", "USD", true},      {"$", "USD", true},        {"\xE2\x82\xAC", "EUR", true},
    {"\xC2\xA3", "GBP", true}, {"\xC2\xA5", "JPY", true}, {"USD", "USD", false},
    {"EUR", "EUR", false},     {"GBP", "GBP", false},     {"CHF", "CHF", false},
    {"JPY", "JPY", false},     {"CAD", "CAD", false},     {"AUD", "AUD", false},
    {"SEK", "SEK", false},     {"NOK", "NOK", false},     {"DKK", "DKK", false},
    {"dollars", "USD", false}, {"euros", "EUR", false},   {"euro", "EUR", false},
    {"pounds", "GBP", false},  {"francs", "CHF", false},  {"Fr.", "CHF", false},
    {"yen", "JPY", false},
}};

// Matches a currency at `i`; returns it and sets *end.
const Currency* CurrencyAt(std::string_view t, size_t i, size_t* end) {
  for (const auto& c : kCurrencies) {
    if (t.substr(i, c.token.size()) != c.token) continue;
    size_t e = i + c.token.size();
    if (!c.symbol) {
      bool left_ok = i == 0 || !IsAlpha(static_cast<unsigned char>(t[i - 1]));
      bool right_ok = e >= t.size() || !IsAlpha(static_cast<unsigned char>(t[e]));
      if (!left_ok || !right_ok) continue;
    }
    *end = e;
    return &c;
  }
  return nullptr;
}

// Reads an amount "12,500.50", "12.500,50", "1 200", "3.5k", "2 million" at `i`. Returns the
// value in cents (or -1) and sets *end.
long double ReadAmount(std::string_view t, size_t i, size_t* end) {
  size_t j = i;
  std::string digits;
  std::vector<std::pair<char, size_t>> seps;  // separator and digits after it
  while (j < t.size()) {
    unsigned char c = static_cast<unsigned char>(t[j]);
    if (IsDigit(c)) {
      digits += static_cast<char>(c);
      if (!seps.empty()) ++seps.back().second;
      ++j;
    } else if ((c == ',' || c == '.' || c == '\'') && j + 1 < t.size() &&
               IsDigit(static_cast<unsigned char>(t[j + 1])) && !digits.empty()) {
      seps.emplace_back(static_cast<char>(c), 0);
      digits += '|';
      ++j;
    } else {
      break;
    }
  }
  if (digits.empty() || digits.front() == '|') return -1;
  // The decimal separator is the last one when it is followed by 1 or 2 digits, or by any
  // count when it differs from the separators before it.
  int decimal = -1;
  if (!seps.empty()) {
    const auto last = seps.back().first;
    const auto n = seps.back().second;
    bool other_before =
        std::any_of(seps.begin(), seps.end() - 1, [&](const auto& s) { return s.first != last; });
    if (n != 3 || other_before) decimal = static_cast<int>(seps.size()) - 1;
  }
  long double value = 0;
  long double frac_scale = 0;
  int sep_index = -1;
  for (char c : digits) {
    if (c == '|') {
      ++sep_index;
      if (sep_index == decimal) frac_scale = 0.1L;
      continue;
    }
    if (frac_scale > 0) {
      value += (c - '0') * frac_scale;
      frac_scale /= 10;
    } else {
      value = value * 10 + (c - '0');
    }
  }
  // Multipliers: 3.5k, 2m, 2 million.
  size_t k = j;
  if (k < t.size() && t[k] == ' ') ++k;
  for (auto [word, mult] :
       std::array<std::pair<std::string_view, long double>, 6>{{{"million", 1e6L},
                                                                {"thousand", 1e3L},
                                                                {"bn", 1e9L},
                                                                {"k", 1e3L},
                                                                {"m", 1e6L},
                                                                {"K", 1e3L}}}) {
    size_t at = (word.size() == 1 || word == "bn") ? j : k;
    if (t.substr(at, word.size()) == word &&
        (at + word.size() >= t.size() ||
         !IsAlpha(static_cast<unsigned char>(t[at + word.size()])))) {
      value *= mult;
      j = at + word.size();
      break;
    }
  }
  *end = j;
  return value;
}

void AddMoney(std::string_view t, size_t b, size_t e, long double v, std::string_view code,
              std::vector<ExtractedFact>* out, Claimed* claimed) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2Lf %.*s", v, static_cast<int>(code.size()), code.data());
  ExtractedFact f;
  f.kind = "money";
  f.key = "amount";
  f.value = buf;
  f.text = WithContext(std::string("amount: ") + buf, t, b, e);
  f.begin = b;
  f.end = e;
  f.confidence = 0.85;
  claimed->Add(b, e);
  out->push_back(std::move(f));
}

void FindMoney(std::string_view t, std::vector<ExtractedFact>* out, Claimed* claimed) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (claimed->Overlaps(i, i + 1)) continue;
    size_t ce;
    const Currency* cur = CurrencyAt(t, i, &ce);
    if (cur != nullptr) {
      size_t n = ce;
      if (n < t.size() && t[n] == ' ') ++n;
      if (n < t.size() && IsDigit(static_cast<unsigned char>(t[n]))) {
        size_t e;
        long double v = ReadAmount(t, n, &e);
        if (v >= 0 && !claimed->Overlaps(i, e)) {
          AddMoney(t, i, e, v, cur->code, out, claimed);
          i = e;
          continue;
        }
      }
    }
    // Number followed by a currency: "12,500 EUR", "300 euros", "5k USD".
    if (IsDigit(static_cast<unsigned char>(t[i])) &&
        (i == 0 ||
         (!IsAlnum(static_cast<unsigned char>(t[i - 1])) && t[i - 1] != '.' && t[i - 1] != ','))) {
      size_t e;
      long double v = ReadAmount(t, i, &e);
      if (v < 0) continue;
      size_t c = e;
      if (c < t.size() && t[c] == ' ') ++c;
      size_t ce2;
      const Currency* cur2 = CurrencyAt(t, c, &ce2);
      if (cur2 != nullptr && !cur2->symbol && !claimed->Overlaps(i, ce2)) {
        AddMoney(t, i, ce2, v, cur2->code, out, claimed);
        i = ce2;
      } else {
        i = e > i ? e - 1 : i;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers.

void FindPhones(std::string_view t, std::vector<ExtractedFact>* out, Claimed* claimed) {
  for (size_t i = 0; i < t.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    if (!(c == '+' || c == '(' || IsDigit(c))) continue;
    if (i > 0) {
      unsigned char p = static_cast<unsigned char>(t[i - 1]);
      if (IsAlnum(p) || p == '.' || p == ',' || p == '/' || p == '-' || p == '$') continue;
    }
    if (claimed->Overlaps(i, i + 1)) continue;
    size_t j = i;
    int digits = 0;
    bool sep = false;
    std::string norm;
    if (c == '+') {
      norm = "+";
      ++j;
    }
    while (j < t.size()) {
      unsigned char d = static_cast<unsigned char>(t[j]);
      if (IsDigit(d)) {
        ++digits;
        norm += static_cast<char>(d);
        ++j;
      } else if ((d == ' ' || d == '-' || d == '.' || d == '(' || d == ')') && j + 1 < t.size() &&
                 (IsDigit(static_cast<unsigned char>(t[j + 1])) || t[j + 1] == '(' ||
                  (d == ')' && t[j + 1] == ' '))) {
        sep = true;
        ++j;
      } else {
        break;
      }
    }
    size_t e = j;
    while (e > i && !IsDigit(static_cast<unsigned char>(t[e - 1]))) --e;
    if (e < t.size() && IsAlpha(static_cast<unsigned char>(t[e]))) continue;
    if (digits < 7 || digits > 15 || claimed->Overlaps(i, e)) continue;
    // A label before it ("Phone:", "tel", "call") makes a bare number believable.
    size_t lb = i >= 24 ? i - 24 : 0;
    std::string before = LowerStr(t.substr(lb, i - lb));
    bool label =
        before.find("phone") != std::string::npos || before.find("tel") != std::string::npos ||
        before.find("call") != std::string::npos || before.find("mobile") != std::string::npos ||
        before.find("cell") != std::string::npos || before.find("fax") != std::string::npos ||
        before.find("whatsapp") != std::string::npos;
    bool plus = c == '+';
    if (!plus && !label && !(sep && digits >= 9)) continue;
    // Bank and tax numbers look like phone numbers.
    if (before.find("iban") != std::string::npos || before.find("vat") != std::string::npos ||
        before.find("account") != std::string::npos) {
      continue;
    }
    ExtractedFact f;
    f.kind = "phone";
    f.key = "phone";
    f.value = norm;
    f.text = WithContext("phone: " + std::string(t.substr(i, e - i)), t, i, e);
    f.begin = i;
    f.end = e;
    f.confidence = (plus || label) ? 0.9 : 0.7;
    claimed->Add(i, e);
    out->push_back(std::move(f));
    i = e;
  }
}

// ---------------------------------------------------------------------------------------------
// Words, for companies, people and roles.

struct Word {
  size_t b, e;
  std::string text;  // as written
  std::string lower;
  bool line_start;    // first word of a line
  char before = ' ';  // the non-space character just before it ('\n' for a line break)
};

std::vector<Word> SplitWords(std::string_view t) {
  std::vector<Word> out;
  size_t i = 0;
  bool line_start = true;
  char before = '\n';
  while (i < t.size()) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    if (c == '\n') {
      line_start = true;
      before = '\n';
      ++i;
      continue;
    }
    if (!IsAlnum(c) && c != '&') {
      if (c != ' ' && c != '\t' && c != '\r') before = static_cast<char>(c);
      ++i;
      continue;
    }
    size_t j = i;
    if (c == '&') {
      j = i + 1;
    } else {
      while (j < t.size()) {
        unsigned char d = static_cast<unsigned char>(t[j]);
        // Letters and digits, and an apostrophe or hyphen inside a word ("don't", "e-mail").
        bool joiner = (d == '\'' || d == '-') && j + 1 < t.size() &&
                      IsAlpha(static_cast<unsigned char>(t[j + 1]));
        if (IsAlnum(d) || joiner) {
          ++j;
        } else {
          break;
        }
      }
    }
    Word w;
    w.b = i;
    w.e = j;
    w.text = std::string(t.substr(i, j - i));
    w.lower = LowerStr(w.text);
    w.line_start = line_start;
    w.before = before;
    out.push_back(std::move(w));
    line_start = false;
    before = ' ';
    i = j;
  }
  return out;
}

// True when words a and a+1 are separated by spaces only (same phrase).
bool Adjacent(const std::vector<Word>& w, size_t a) {
  return a + 1 < w.size() && w[a + 1].before == ' ' && !w[a + 1].line_start;
}

bool InSet(std::string_view w, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), w) != set.end();
}

bool IsCompanySuffix(const Word& w) {
  return InSet(
      w.text, {"Inc",         "Ltd",        "LLC",        "LLP",       "GmbH",       "Corp",
               "Corporation", "SA",         "AG",         "AS",        "OU",         "Oy",
               "AB",          "NV",         "SRL",        "SL",        "KG",         "ApS",
               "BV",          "PLC",        "plc",        "SARL",      "SAS",        "Pty",
               "Limited",     "Co",         "Labs",       "Group",     "Holdings",   "Technologies",
               "Systems",     "Partners",   "Studio",     "Studios",   "Consulting", "Software",
               "Solutions",   "Industries", "Ventures",   "Logistics", "Analytics",  "Media",
               "Foods",       "Bakery",     "Architects", "Robotics",  "Capital",    "Agency",
               "Works"});
}

// Capitalised words that begin sentences or label fields, never part of a name.
bool IsNameStop(const Word& w) {
  static const std::set<std::string> kStop = {
      "the",       "a",         "an",       "dear",      "hi",        "hello",     "hey",
      "best",      "regards",   "thanks",   "thank",     "kind",      "warm",      "cheers",
      "sincerely", "contact",   "email",    "phone",     "tel",       "call",      "website",
      "team",      "about",     "our",      "we",        "i",         "you",       "your",
      "meet",      "join",      "welcome",  "from",      "to",        "subject",   "date",
      "re",        "fwd",       "cc",       "at",        "of",        "and",       "or",
      "in",        "on",        "for",      "with",      "by",        "as",        "is",
      "this",      "that",      "it",       "if",        "new",       "please",    "street",
      "road",      "avenue",    "suite",    "office",    "monday",    "tuesday",   "wednesday",
      "thursday",  "friday",    "saturday", "sunday",    "january",   "february",  "march",
      "april",     "may",       "june",     "july",      "august",    "september", "october",
      "november",  "december",  "mr",       "mrs",       "ms",        "dr",        "prof",
      "budget",    "invoice",   "project",  "services",  "pricing",   "home",      "news",
      "careers",   "blog",      "privacy",  "terms",     "copyright", "all",       "rights",
      "reserved",  "address",   "mobile",   "web",       "sales",     "support",   "info",
      "customer",  "customers", "company",  "proposal",  "quote",     "order",     "payment",
      "sent",      "reply",     "re:",      "yes",       "no",        "note",      "notes",
      "ceo",       "cfo",       "cto",      "coo",       "cmo",       "vp",        "head",
      "founder",   "director",  "manager",  "president", "owner",     "partner",   "chief",
      "he",        "she",       "they",     "his",       "her",       "their",     "today",
      "tomorrow",  "yesterday", "next",     "last",      "here",      "there",     "when"};
  return kStop.count(w.lower) > 0 || IsCompanySuffix(w);
}

bool IsNameWord(const Word& w) {
  if (w.text.size() < 2 || !IsUpper(static_cast<unsigned char>(w.text[0]))) return false;
  bool has_lower = false;
  for (size_t i = 1; i < w.text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(w.text[i]);
    if (IsDigit(c)) return false;
    if (IsLower(c)) has_lower = true;
  }
  return has_lower && !IsNameStop(w);
}

// A person's name at word `i`: 2 or 3 name words in one phrase (1..3 after an honorific).
size_t NameAt(const std::vector<Word>& w, size_t i, size_t min_words = 2) {
  size_t n = 0;
  while (i + n < w.size() && n < 3 && IsNameWord(w[i + n]) && (n == 0 || Adjacent(w, i + n - 1))) {
    ++n;
  }
  // The word after a name must not continue a capitalised run (that is a company or a title).
  if (n >= min_words && i + n < w.size() && Adjacent(w, i + n - 1) &&
      IsUpper(static_cast<unsigned char>(w[i + n].text[0])) && !IsNameStop(w[i + n]) &&
      !IsCompanySuffix(w[i + n])) {
    return 0;
  }
  return n >= min_words ? n : 0;
}

std::string Join(const std::vector<Word>& w, size_t b, size_t n, std::string_view t) {
  return std::string(t.substr(w[b].b, w[b + n - 1].e - w[b].b));
}

// A role at word `i` (case-insensitive): returns the number of words, 0 if none.
size_t RoleAt(const std::vector<Word>& w, size_t i) {
  if (i >= w.size()) return 0;
  auto low = [&](size_t k) -> std::string_view {
    return k < w.size() ? std::string_view(w[k].lower) : std::string_view();
  };
  static const std::set<std::string> kCore = {
      "ceo",        "cfo",        "cto",        "coo",          "cmo",        "cio",
      "cpo",        "cro",        "founder",    "co-founder",   "cofounder",  "owner",
      "president",  "director",   "partner",    "chairman",     "chairwoman", "treasurer",
      "accountant", "consultant", "engineer",   "designer",     "architect",  "manager",
      "recruiter",  "buyer",      "editor",     "principal",    "lead",       "developer",
      "officer",    "controller", "bookkeeper", "administrator"};
  static const std::set<std::string> kModifier = {
      "sales",       "marketing",   "product",    "operations", "finance",   "financial",
      "engineering", "procurement", "office",     "project",    "account",   "hr",
      "it",          "design",      "technical",  "creative",   "art",       "software",
      "senior",      "junior",      "general",    "managing",   "executive", "purchasing",
      "regional",    "country",     "brand",      "content",    "digital",   "communications",
      "chief",       "technology",  "operating",  "revenue",    "people",    "data",
      "lead",        "principal",   "founding",   "associate",  "assistant", "deputy",
      "interim",     "acting",      "commercial", "legal",      "events",    "studio"};
  // "Head of Sales", "VP of Engineering", "Vice President, Sales"
  if (low(i) == "head" && low(i + 1) == "of" && i + 2 < w.size() && Adjacent(w, i + 1)) {
    size_t n = 3;
    while (i + n < w.size() && n < 5 && Adjacent(w, i + n - 1) &&
           IsUpper(static_cast<unsigned char>(w[i + n].text[0])) && !IsCompanySuffix(w[i + n]) &&
           kModifier.count(w[i + n].lower) > 0) {
      ++n;
    }
    return IsUpper(static_cast<unsigned char>(w[i + 2].text[0])) ? n : 0;
  }
  if ((low(i) == "vp" || (low(i) == "vice" && low(i + 1) == "president"))) {
    size_t n = low(i) == "vp" ? 1 : 2;
    if (low(i + n) == "of" && i + n + 1 < w.size() &&
        IsUpper(static_cast<unsigned char>(w[i + n + 1].text[0]))) {
      return n + 2;
    }
    if (i + n < w.size() && Adjacent(w, i + n - 1) && kModifier.count(low(i + n).data()) > 0) {
      return n + 1;
    }
    return n;
  }
  // Modifiers then a core word: "Senior Product Manager", "Chief Financial Officer".
  size_t n = 0;
  while (i + n < w.size() && n < 3 && kModifier.count(w[i + n].lower) > 0 &&
         (n == 0 || Adjacent(w, i + n - 1))) {
    ++n;
  }
  for (size_t m = n + 1; m-- > 0;) {
    // Try the longest run of modifiers first, then fewer (a modifier may itself be a core
    // word: "lead").
    size_t k = i + m;
    if (k < w.size() && kCore.count(w[k].lower) > 0 && (m == 0 || Adjacent(w, k - 1))) {
      size_t len = m + 1;
      // "Founder & CEO", "Founder and CEO"
      if (k + 2 < w.size() && (w[k + 1].lower == "&" || w[k + 1].lower == "and") &&
          kCore.count(w[k + 2].lower) > 0 && Adjacent(w, k) && Adjacent(w, k + 1)) {
        len += 2;
      }
      // An all-lowercase role in prose is fine ("is the founder"), but a lone lowercase
      // generic word ("lead", "partner", "owner") needs a modifier to count.
      bool generic = m == 0 && InSet(w[k].lower, {"lead", "partner", "owner", "buyer", "principal",
                                                  "officer", "editor"});
      if (generic && !IsUpper(static_cast<unsigned char>(w[k].text[0]))) return 0;
      return len;
    }
  }
  return 0;
}

// A company after "at"/"of"/"@" starting at word `i`: capitalised words (up to 4), ending at
// the phrase's end or a suffix. Returns the word count.
size_t CompanyRunAt(const std::vector<Word>& w, size_t i) {
  size_t n = 0;
  while (i + n < w.size() && n < 4 && (n == 0 || Adjacent(w, i + n - 1))) {
    const Word& x = w[i + n];
    bool cap = IsUpper(static_cast<unsigned char>(x.text[0])) || x.text == "&";
    if (!cap) break;
    if (n > 0 && RoleAt(w, i + n) > 0 && !IsCompanySuffix(x)) break;
    ++n;
    if (IsCompanySuffix(x) &&
        !(i + n < w.size() && Adjacent(w, i + n - 1) && IsCompanySuffix(w[i + n]))) {
      break;
    }
  }
  if (n == 0 || w[i].text == "&" || IsNameStop(w[i])) return 0;
  while (n > 0 && w[i + n - 1].text == "&") --n;
  return n;
}

struct Found {
  std::vector<ExtractedFact>* out;
  std::set<std::string> people, companies, roles;
};

// A named entity ("company", "person") found at [b, e), once per name.
void AddNamed(Found* f, std::set<std::string>* seen, const char* kind, const std::string& name,
              size_t b, size_t e, double conf) {
  if (!seen->insert(name).second) return;
  ExtractedFact x;
  x.kind = kind;
  x.key = kind;
  x.value = name;
  x.text = std::string(kind) + ": " + name;
  x.begin = b;
  x.end = e;
  x.confidence = conf;
  f->out->push_back(std::move(x));
}

void AddCompany(Found* f, std::string_view t, size_t b, size_t e, double conf) {
  AddNamed(f, &f->companies, "company", std::string(t.substr(b, e - b)), b, e, conf);
}

void AddPerson(Found* f, const std::string& name, size_t b, size_t e, double conf) {
  AddNamed(f, &f->people, "person", name, b, e, conf);
}

void AddRole(Found* f, const std::string& person, const std::string& role,
             const std::string& company, size_t b, size_t e) {
  std::string text = person + " is " + role;
  if (!company.empty()) text += " at " + company;
  if (!f->roles.insert(LowerStr(person + "|" + role)).second) return;
  ExtractedFact x;
  x.kind = "role";
  x.key = "role";
  x.value = role;
  x.text = text;
  x.begin = b;
  x.end = e;
  x.confidence = 0.75;
  f->out->push_back(std::move(x));
}

// "at Acme Ltd" / "of Acme" / "@ Acme" after word `k`; returns the company, sets *end_word.
std::string CompanyAfter(const std::vector<Word>& w, size_t k, std::string_view t,
                         size_t* start_word, size_t* end_word) {
  if (k >= w.size()) return "";
  const std::string& l = w[k].lower;
  bool prep = l == "at" || l == "of" || l == "with" || l == "for" || w[k].before == '@';
  size_t start = k;
  if (prep && w[k].before != '@') start = k + 1;
  if (!prep && w[k].before != ',') return "";
  if (start >= w.size()) return "";
  if (start > k && !Adjacent(w, k)) return "";
  if (w[start].lower == "the" && start + 1 < w.size()) ++start;
  size_t n = CompanyRunAt(w, start);
  if (n == 0) return "";
  // After a comma, only a name with a company suffix counts ("Jane Doe, CFO, Acme Ltd").
  if (!prep && !IsCompanySuffix(w[start + n - 1])) return "";
  *start_word = start;
  *end_word = start + n;
  return Join(w, start, n, t);
}

void FindPeople(std::string_view t, const std::vector<Word>& w, Found* f) {
  for (size_t i = 0; i < w.size(); ++i) {
    // Honorific + name: "Dr. Jane Doe", "Ms Lee".
    if (InSet(w[i].lower, {"mr", "mrs", "ms", "dr", "prof", "mx"}) &&
        IsUpper(static_cast<unsigned char>(w[i].text[0]))) {
      size_t n = NameAt(w, i + 1, 1);
      if (n > 0 && (w[i + 1].before == '.' || w[i + 1].before == ' ')) {
        AddPerson(f, Join(w, i + 1, n, t), w[i + 1].b, w[i + n].e, 0.75);
        i += n;
        continue;
      }
    }
    // Role then name: "CEO Jane Doe", "our founder, Jane Doe".
    if (size_t r = RoleAt(w, i); r > 0) {
      size_t k = i + r;
      bool joined =
          k < w.size() && (Adjacent(w, k - 1) || w[k].before == ',' || w[k].before == ':');
      size_t n = joined ? NameAt(w, k) : 0;
      if (n > 0) {
        std::string person = Join(w, k, n, t);
        std::string role = Join(w, i, r, t);
        size_t end_word = k + n, start_word = 0;
        std::string company = CompanyAfter(w, k + n, t, &start_word, &end_word);
        AddPerson(f, person, w[k].b, w[k + n - 1].e, 0.8);
        AddRole(f, person, role, company, w[i].b, w[end_word - 1].e);
        if (!company.empty()) AddCompany(f, t, w[start_word].b, w[end_word - 1].e, 0.65);
        i = end_word - 1;
        continue;
      }
    }
    size_t n = NameAt(w, i);
    if (n == 0) continue;
    std::string person = Join(w, i, n, t);
    size_t k = i + n;
    // Name, Role [at Company] | Name (Role) | Name is [the] Role [of Company] | Name \n Role.
    bool found_role = false;
    if (k < w.size()) {
      size_t r0 = k;
      bool sep_ok = w[k].before == ',' || w[k].before == '(' || w[k].before == '-' ||
                    w[k].before == '\n' || w[k].line_start;
      if (!sep_ok && Adjacent(w, k - 1) &&
          InSet(w[k].lower, {"is", "was", "as", "became", "joined"})) {
        r0 = k + 1;
        if (r0 < w.size() && InSet(w[r0].lower, {"the", "our", "a", "an", "their", "its"})) ++r0;
        if (r0 < w.size() && w[r0].lower == "new") ++r0;
        sep_ok = true;
      }
      size_t r = sep_ok ? RoleAt(w, r0) : 0;
      if (r > 0) {
        std::string role = Join(w, r0, r, t);
        size_t end_word = r0 + r, start_word = 0;
        std::string company = CompanyAfter(w, r0 + r, t, &start_word, &end_word);
        AddPerson(f, person, w[i].b, w[k - 1].e, 0.8);
        AddRole(f, person, role, company, w[i].b, w[end_word - 1].e);
        if (!company.empty()) AddCompany(f, t, w[start_word].b, w[end_word - 1].e, 0.65);
        found_role = true;
        i = end_word - 1;
      }
    }
    if (found_role) continue;
    // "From: Jane Doe <jane@…>" and signature lines "Jane Doe" alone on a line after a
    // closing ("Best regards,").
    bool header = i > 0 && InSet(w[i - 1].lower, {"from", "to", "cc"}) && w[i].before == ':';
    bool own_line = w[i].line_start &&
                    (k >= w.size() || w[k].line_start || w[k].before == '<' || w[k].before == '|');
    bool after_closing = i > 0 && InSet(w[i - 1].lower, {"regards", "thanks", "cheers", "sincerely",
                                                         "best", "wishes"});
    bool greeting = i > 0 && InSet(w[i - 1].lower, {"dear", "hi", "hello"});
    if (header || (own_line && after_closing) || greeting || (k < w.size() && w[k].before == '<')) {
      AddPerson(f, person, w[i].b, w[k - 1].e, header ? 0.85 : 0.7);
    }
    i = k - 1;
  }
}

void FindCompanies(std::string_view t, const std::vector<Word>& w, Found* f) {
  for (size_t i = 0; i < w.size(); ++i) {
    if (!IsCompanySuffix(w[i]) || i == 0 || !Adjacent(w, i - 1)) continue;
    // "Sol Bakery Co.", "Nimbus Software Inc": the name ends at the last suffix.
    if (Adjacent(w, i) && IsCompanySuffix(w[i + 1])) continue;
    // Walk back over capitalised words of the same phrase.
    size_t b = i;
    while (b > 0 && i - b < 4 && Adjacent(w, b - 1)) {
      const Word& p = w[b - 1];
      bool cap = IsUpper(static_cast<unsigned char>(p.text[0])) || p.text == "&";
      if (!cap || (IsNameStop(p) && !IsCompanySuffix(p)) || RoleAt(w, b - 1) > 0) break;
      --b;
    }
    while (b < i && w[b].text == "&") ++b;
    if (b == i) continue;
    size_t e = w[i].e;
    if (e < t.size() && t[e] == '.' && InSet(w[i].text, {"Inc", "Ltd", "Corp", "Co"})) ++e;
    AddCompany(f, t, w[b].b, e, 0.8);
  }
}

}  // namespace

std::vector<ExtractedFact> ExtractFacts(std::string_view text, const ExtractOptions& opts) {
  std::vector<ExtractedFact> out;
  Claimed claimed;
  FindUrls(text, &out, &claimed);
  FindEmails(text, &out, &claimed);
  FindDates(text, &out, &claimed);
  FindMoney(text, &out, &claimed);
  FindPhones(text, &out, &claimed);
  std::vector<Word> words = SplitWords(text);
  Found found{&out, {}, {}, {}};
  FindCompanies(text, words, &found);
  FindPeople(text, words, &found);
  // Same kind and value twice (an address in the header and the signature): keep the first.
  std::vector<ExtractedFact> uniq;
  std::set<std::string> seen;
  std::stable_sort(out.begin(), out.end(), [](const ExtractedFact& a, const ExtractedFact& b) {
    return a.begin < b.begin;
  });
  for (auto& f : out) {
    std::string k = f.kind + "|" + (f.kind == "role" ? f.text : f.value);
    if (!seen.insert(k).second) continue;
    uniq.push_back(std::move(f));
    if (uniq.size() >= opts.max_facts) break;
  }
  return uniq;
}

}  // namespace keel::memory
