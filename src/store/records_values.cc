// Field values: text as it arrives (flags, CSV cells, agents) is validated against its
// FieldSpec and normalised to the JSON value that is stored (NormalizeValue, NormalizeEmail).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "core/json.h"
#include "store/csv.h"
#include "store/records.h"
#include "store/records_internal.h"

namespace keel::store {

using namespace records_internal;

namespace {

constexpr size_t kMaxStringBytes = 500;
constexpr size_t kMaxTextBytes = 10000;
constexpr size_t kMaxUrlBytes = 2000;
constexpr double kMaxMoney = 1e13;

Status Bad(const FieldSpec& f, std::string_view value, const std::string& why) {
  return InvalidArgument(f.name + " " + Quote(value) + " " + why);
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Checks a decimal "[-]digits[.digits]" and returns its value; no exponent, inf or nan.
bool ParseDecimal(const std::string& s, bool allow_negative, int max_fraction, double* out,
                  bool* is_integer) {
  size_t i = 0;
  if (allow_negative && i < s.size() && s[i] == '-') ++i;
  size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  size_t int_digits = i - int_start;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t fs = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    frac_digits = i - fs;
    if (frac_digits == 0) return false;
  }
  if (i != s.size() || int_digits == 0 || int_digits > 15) return false;
  if (max_fraction >= 0 && frac_digits > static_cast<size_t>(max_fraction)) return false;
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || !std::isfinite(v)) return false;
  *out = v;
  *is_integer = frac_digits == 0 || std::all_of(s.begin() + static_cast<long>(s.find('.')) + 1,
                                                s.end(), [](char c) { return c == '0'; });
  return true;
}

Json NumberJson(double v, bool is_integer) {
  if (is_integer) return Json(static_cast<int64_t>(v));
  return Json(v);
}

bool ValidDate(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(s[i])) return false;
  }
  int y = std::stoi(s.substr(0, 4)), m = std::stoi(s.substr(5, 2)), d = std::stoi(s.substr(8, 2));
  if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1) return false;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int max = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
  return d <= max;
}

bool ValidIdShape(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 27 || id.substr(0, prefix.size()) != prefix ||
      id[prefix.size()] != '_') {
    return false;
  }
  for (char c : id.substr(prefix.size() + 1)) {
    // NewId's alphabet: lowercase Crockford base32 (no i, l, o, u).
    bool ok = IsDigit(c) || (c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u');
    if (!ok) return false;
  }
  return true;
}

bool HasControl(std::string_view s, bool allow_newlines) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (allow_newlines && (c == '\n' || c == '\t' || c == '\r')) continue;
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

namespace records_internal {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Short and printable, for quoting user input back in an error.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 60)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  if (s.size() > 60) out += "...";
  return out + "'";
}

Result<Json> NormalizeValue(const FieldSpec& f, std::string_view raw) {
  if (!IsValidUtf8(raw)) return InvalidArgument(f.name + " is not valid UTF-8 text");
  std::string v = Trim(raw);
  if (v.empty()) return InvalidArgument(f.name + " is empty");
  switch (f.type) {
    case FieldType::kString:
      if (HasControl(v, false)) return Bad(f, v, "contains control characters or a line break");
      if (v.size() > kMaxStringBytes) {
        return InvalidArgument(f.name + " is longer than " + std::to_string(kMaxStringBytes) +
                               " bytes");
      }
      return Json(v);
    case FieldType::kText:
      if (HasControl(v, true)) return Bad(f, v, "contains control characters");
      if (v.size() > kMaxTextBytes) {
        return InvalidArgument(f.name + " is longer than " + std::to_string(kMaxTextBytes) +
                               " bytes");
      }
      return Json(v);
    case FieldType::kEmail: {
      auto e = NormalizeEmail(v);
      if (!e.ok()) return InvalidArgument(f.name + ": " + e.status().message());
      return Json(*e);
    }
    case FieldType::kUrl: {
      if (v.size() > kMaxUrlBytes || HasControl(v, false) || v.find(' ') != std::string::npos) {
        return Bad(f, v, "is not a URL (no spaces or control characters, at most 2000 bytes)");
      }
      size_t sep = v.find("://");
      std::string scheme = sep == std::string::npos ? "https" : Lower(v.substr(0, sep));
      std::string rest = sep == std::string::npos ? v : v.substr(sep + 3);
      if (scheme != "http" && scheme != "https") {
        return Bad(f, v, "must be an http:// or https:// URL");
      }
      size_t end = rest.find_first_of("/?#");
      std::string host = Lower(rest.substr(0, end));
      std::string tail = end == std::string::npos ? "" : rest.substr(end);
      std::string hostname = host.substr(0, host.find(':'));
      bool ok = !hostname.empty() && hostname.find('.') != std::string::npos &&
                hostname.front() != '.' && hostname.back() != '.' &&
                hostname.find("..") == std::string::npos;
      for (char c : host) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':')) {
          ok = false;
        }
      }
      if (!ok) return Bad(f, v, "does not have a valid host name (like example.com)");
      return Json(scheme + "://" + host + tail);
    }
    case FieldType::kPhone: {
      int digits = 0;
      for (char c : v) {
        if (IsDigit(c)) {
          ++digits;
        } else if (!(c == '+' || c == '-' || c == '(' || c == ')' || c == '.' || c == ' ')) {
          return Bad(f, v, "may hold only digits, spaces and + - ( ) .");
        }
      }
      if (digits < 5 || digits > 20) return Bad(f, v, "must have 5 to 20 digits");
      return Json(v);
    }
    case FieldType::kDate:
      if (!ValidDate(v)) return Bad(f, v, "is not a date as YYYY-MM-DD (a real calendar day)");
      return Json(v);
    case FieldType::kNumber: {
      double d;
      bool is_int;
      if (!ParseDecimal(v, true, -1, &d, &is_int)) {
        return Bad(f, v, "is not a number (digits, an optional '-' and '.', no exponent)");
      }
      return NumberJson(d, is_int);
    }
    case FieldType::kInteger:
    case FieldType::kPercent: {
      std::string s = v;
      if (f.type == FieldType::kPercent && s.back() == '%') s = Trim(s.substr(0, s.size() - 1));
      int64_t n = 0;
      auto r = std::from_chars(s.data(), s.data() + s.size(), n);
      if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
        return Bad(f, v, "is not a whole number");
      }
      if (f.type == FieldType::kPercent && (n < 0 || n > 100)) {
        return Bad(f, v, "must be between 0 and 100");
      }
      return Json(n);
    }
    case FieldType::kMoney: {
      double d;
      bool is_int;
      if (v.front() == '-') return Bad(f, v, "must not be negative");
      if (!ParseDecimal(v, false, 2, &d, &is_int) || d > kMaxMoney) {
        return Bad(f, v,
                   "is not an amount (digits with up to 2 decimals after '.', no "
                   "thousands separators or currency signs)");
      }
      return NumberJson(d, is_int);
    }
    case FieldType::kCurrency: {
      std::string up = v;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (up.size() != 3 ||
          !std::all_of(up.begin(), up.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        return Bad(f, v, "is not an ISO 4217 currency code (3 letters, like EUR or USD)");
      }
      return Json(up);
    }
    case FieldType::kEnum: {
      std::string low = Lower(v);
      if (std::find(f.allowed.begin(), f.allowed.end(), low) == f.allowed.end()) {
        std::string list;
        for (const auto& a : f.allowed) list += (list.empty() ? "" : ", ") + a;
        return Bad(f, v, "is not one of: " + list);
      }
      return Json(low);
    }
    case FieldType::kRef: {
      const RecordTypeSpec* t = RecordTypeOfId(v);
      if (!t || !ValidIdShape(v, t->prefix)) {
        return Bad(f, v, "is not a record id (like " + f.ref_type + "_01j...)");
      }
      if (t->type != f.ref_type) return Bad(f, v, "must be the id of a " + f.ref_type);
      return Json(v);
    }
    case FieldType::kArtifact: {
      std::string low = Lower(v);
      if (!IsDigestHex(low)) return Bad(f, v, "is not an artifact address (64 hex characters)");
      return Json(low);
    }
  }
  return Internal("unhandled field type");
}

}  // namespace records_internal

Result<std::string> NormalizeEmail(std::string_view text) {
  std::string e = Trim(text);
  // "Ann Lee <ann@example.com>" is a common paste; take the address.
  if (!e.empty() && e.back() == '>' && e.find('<') != std::string::npos) {
    e = Trim(e.substr(e.rfind('<') + 1, e.size() - e.rfind('<') - 2));
  }
  if (e.size() > 254) return InvalidArgument(Quote(e) + " is longer than 254 characters");
  size_t at = e.rfind('@');
  if (at == std::string::npos) return InvalidArgument(Quote(e) + " has no @");
  if (e.find('@') != at) return InvalidArgument(Quote(e) + " has more than one @");
  std::string local = e.substr(0, at), domain = Lower(e.substr(at + 1));
  if (local.empty() || local.size() > 64) {
    return InvalidArgument(Quote(e) + " needs 1 to 64 characters before the @");
  }
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    bool ok = std::isalnum(u) ||
              std::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != std::string_view::npos;
    if (u >= 0x80) return InvalidArgument(Quote(e) + " has non-ASCII characters (not supported)");
    if (!ok) return InvalidArgument(Quote(e) + " has a character not allowed before the @");
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string::npos) {
    return InvalidArgument(Quote(e) + " has a misplaced dot before the @");
  }
  if (domain.empty() || domain.size() > 253 || domain.find('.') == std::string::npos) {
    return InvalidArgument(Quote(e) + " needs a domain with a dot after the @ (like example.com)");
  }
  size_t start = 0;
  for (;;) {
    size_t dot = domain.find('.', start);
    std::string label =
        domain.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
              std::all_of(label.begin(), label.end(),
                          [](char c) { return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-'; });
    if (!ok) return InvalidArgument(Quote(e) + " has an invalid domain after the @");
    if (dot == std::string::npos) {
      if (label.size() < 2 ||
          !std::all_of(label.begin(), label.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        return InvalidArgument(Quote(e) + " has an invalid top-level domain");
      }
      break;
    }
    start = dot + 1;
  }
  // Lowercased whole: mailbox providers treat local parts case-insensitively, and
  // duplicate detection must see Ann@ and ann@ as one person.
  return Lower(local) + "@" + domain;
}

Result<std::string> NormalizeFieldValue(const FieldSpec& field, std::string_view text) {
  KEEL_ASSIGN_OR_RETURN(Json v, NormalizeValue(field, text));
  return CanonicalJson(v);
}

}  // namespace keel::store
