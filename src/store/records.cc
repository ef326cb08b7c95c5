#include "store/records.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.h"
#include "core/random.h"
#include "store/artifacts.h"
#include "store/csv.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

constexpr size_t kMaxStringBytes = 500;
constexpr size_t kMaxTextBytes = 10000;
constexpr size_t kMaxUrlBytes = 2000;
constexpr size_t kMaxDataBytes = 32 * 1024;  // a record's JSON; stays well under a payload
constexpr double kMaxMoney = 1e13;

FieldSpec F(std::string name, FieldType type, std::string help, bool required = false) {
  FieldSpec f;
  f.name = std::move(name);
  f.type = type;
  f.help = std::move(help);
  f.required = required;
  return f;
}
FieldSpec Enum(std::string name, std::vector<std::string> allowed, std::string def,
               std::string help) {
  FieldSpec f = F(std::move(name), FieldType::kEnum, std::move(help));
  f.allowed = std::move(allowed);
  f.default_value = std::move(def);
  return f;
}
FieldSpec Ref(std::string name, std::string ref_type) {
  FieldSpec f = F(name, FieldType::kRef, "id of the related " + ref_type);
  f.ref_type = std::move(ref_type);
  return f;
}

std::vector<RecordTypeSpec> BuildTypes() {
  using T = FieldType;
  std::vector<RecordTypeSpec> v;
  {
    RecordTypeSpec s{"lead", "lead", "a person or business that may buy; unique by email",
                     {},     {},     {}};
    s.fields = {F("email", T::kEmail, "work email; unique among leads"),
                F("name", T::kString, "full name"),
                F("company", T::kString, "company name as written by the lead"),
                F("title", T::kString, "job title"),
                F("website", T::kUrl, "company or personal site"),
                F("phone", T::kPhone, "phone number"),
                F("source", T::kString, "where the lead came from (referral, form, list...)"),
                Enum("status", {"new", "contacted", "qualified", "won", "lost"}, "new",
                     "where the lead stands"),
                Ref("company_id", "company"),
                F("notes", T::kText, "free text")};
    s.one_of = {{"email", "name"}};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"contact", "contact", "a person you deal with; unique by email", {}, {}, {}};
    s.fields = {F("email", T::kEmail, "email; unique among contacts"),
                F("name", T::kString, "full name"),
                F("title", T::kString, "job title"),
                F("phone", T::kPhone, "phone number"),
                Ref("company_id", "company"),
                Ref("lead_id", "lead"),
                F("notes", T::kText, "free text")};
    s.one_of = {{"email", "name"}};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"company", "company", "a customer or prospect organisation", {}, {}, {}};
    s.fields = {
        F("name", T::kString, "company name", true),
        F("website", T::kUrl, "company site"),
        F("industry", T::kString, "industry"),
        F("phone", T::kPhone, "main phone number"),
        Enum("status", {"prospect", "customer", "partner", "former"}, "prospect", "relationship"),
        F("notes", T::kText, "free text")};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"deal", "deal", "a sale in progress (open, won or lost)", {}, {}, {}};
    s.fields = {F("title", T::kString, "what is being sold", true),
                F("value", T::kMoney, "expected amount (>= 0, up to 2 decimals)"),
                F("currency", T::kCurrency, "ISO 4217 code (EUR, USD...)"),
                F("stage", T::kString, "pipeline stage"),
                Enum("status", {"open", "won", "lost"}, "open", "outcome"),
                F("probability", T::kPercent, "chance to win, 0-100"),
                F("expected_close", T::kDate, "expected closing day"),
                F("next_action", T::kString, "the next step"),
                F("next_action_at", T::kDate, "when the next step is due"),
                F("lost_reason", T::kText, "why the deal was lost"),
                Ref("lead_id", "lead"),
                Ref("contact_id", "contact"),
                Ref("company_id", "company"),
                F("notes", T::kText, "free text")};
    s.fields[3].default_value = "new";
    s.rules = {"value needs currency",
               "an open deal needs next_action_at (every open deal has a "
               "next step and a date)",
               "a lost deal needs lost_reason"};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"project", "project", "work delivered for a customer", {}, {}, {}};
    s.fields = {
        F("name", T::kString, "project name", true),
        Enum("status", {"planned", "active", "paused", "done", "cancelled"}, "active", "progress"),
        Ref("company_id", "company"),
        Ref("deal_id", "deal"),
        F("start_date", T::kDate, "first day"),
        F("due_date", T::kDate, "deadline"),
        F("notes", T::kText, "free text")};
    s.rules = {"due_date is not before start_date"};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"document", "document", "a proposal, contract or other file", {}, {}, {}};
    s.fields = {F("title", T::kString, "document title", true),
                Enum("kind", {"proposal", "contract", "brief", "report", "note", "other"}, "other",
                     "kind of document"),
                F("artifact", T::kArtifact, "SHA-256 of the stored content (keel artifact put)"),
                F("url", T::kUrl, "where it lives outside keel"),
                Ref("deal_id", "deal"),
                Ref("project_id", "project"),
                Ref("company_id", "company"),
                F("notes", T::kText, "free text")};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s{"invoice", "invoice", "a bill sent to a customer", {}, {}, {}};
    s.fields = {F("number", T::kString, "invoice number; unique among invoices", true),
                F("amount", T::kMoney, "total (>= 0, up to 2 decimals)", true),
                F("currency", T::kCurrency, "ISO 4217 code", true),
                Enum("status", {"draft", "issued", "paid", "void"}, "draft", "billing state"),
                F("issue_date", T::kDate, "day issued"),
                F("due_date", T::kDate, "payment due"),
                F("paid_date", T::kDate, "day paid"),
                Ref("deal_id", "deal"),
                Ref("company_id", "company"),
                Ref("contact_id", "contact"),
                F("notes", T::kText, "free text")};
    s.rules = {"due_date is not before issue_date", "number is unique among invoices"};
    v.push_back(std::move(s));
  }
  return v;
}

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

std::string DisplayText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

Record ReadRecord(const sql::Stmt& st) {
  Record r;
  r.id = st.Text(0);
  r.type = st.Text(1);
  r.data_json = st.Text(2);
  r.version = st.Int(3);
  r.created_us = st.Int(4);
  r.updated_us = st.Int(5);
  Json data = Json::parse(r.data_json, nullptr, false);
  if (data.is_object()) {
    for (auto it = data.begin(); it != data.end(); ++it) r.fields[it.key()] = DisplayText(*it);
  }
  return r;
}

constexpr char kRecordColumns[] =
    "SELECT id, type, data, version, created_us, updated_us FROM records";

std::string TypeList() {
  std::string s;
  for (const auto& t : RecordTypes()) s += (s.empty() ? "" : ", ") + t.type;
  return s;
}

Result<const RecordTypeSpec*> TypeOrError(const std::string& type) {
  const RecordTypeSpec* spec = FindRecordType(type);
  if (!spec) {
    return InvalidArgument("unknown record type " + Quote(type) + " (types: " + TypeList() + ")");
  }
  return spec;
}

Result<const FieldSpec*> FieldOrError(const RecordTypeSpec& spec, const std::string& name) {
  const FieldSpec* f = spec.Field(name);
  if (!f) {
    return InvalidArgument("unknown field " + Quote(name) + " for " + spec.type +
                           " (fields: " + spec.FieldList() + ")");
  }
  return f;
}

std::string Str(const Json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : "";
}

// Required fields, one-of groups and the cross-field rules of each type.
Status CheckShape(const RecordTypeSpec& spec, const Json& data) {
  for (const auto& f : spec.fields) {
    if (f.required && !data.contains(f.name)) {
      return InvalidArgument("missing required field " + f.name + " for " + spec.type);
    }
  }
  for (const auto& group : spec.one_of) {
    bool any = std::any_of(group.begin(), group.end(),
                           [&](const std::string& n) { return data.contains(n); });
    if (!any) {
      std::string names;
      for (const auto& n : group) names += (names.empty() ? "" : " or ") + n;
      return InvalidArgument("a " + spec.type + " needs " + names);
    }
  }
  if (spec.type == "deal") {
    if (data.contains("value") && !data.contains("currency")) {
      return InvalidArgument("a deal with a value needs a currency (like currency=EUR)");
    }
    std::string status = Str(data, "status");
    if (status == "open" && !data.contains("next_action_at")) {
      return InvalidArgument(
          "an open deal needs next_action_at (YYYY-MM-DD): every open deal "
          "has a next step and a date");
    }
    if (status == "lost" && !data.contains("lost_reason")) {
      return InvalidArgument("a lost deal needs lost_reason");
    }
  }
  auto order = [&](const char* first, const char* second) -> Status {
    std::string a = Str(data, first), b = Str(data, second);
    if (!a.empty() && !b.empty() && b < a) {
      return InvalidArgument(std::string(second) + " " + b + " is before " + first + " " + a);
    }
    return OkStatus();
  };
  if (spec.type == "project") KEEL_RETURN_IF_ERROR(order("start_date", "due_date"));
  if (spec.type == "invoice") KEEL_RETURN_IF_ERROR(order("issue_date", "due_date"));
  if (CanonicalJson(data).size() > kMaxDataBytes) {
    return InvalidArgument("the record's fields total more than " + std::to_string(kMaxDataBytes) +
                           " bytes; store long content as an "
                           "artifact and reference it");
  }
  return OkStatus();
}

Result<std::optional<Record>> FindOne(sql::Db* db, const std::string& where,
                                      const std::vector<std::string>& args) {
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare(std::string(kRecordColumns) + " WHERE " + where));
  for (size_t i = 0; i < args.size(); ++i) st->Bind(static_cast<int>(i + 1), args[i]);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<Record>();
  return std::optional<Record>(ReadRecord(*st));
}

// References exist, the email and invoice number are unique. `self` is the record being
// changed (excluded from uniqueness), empty at creation. `only` limits the reference checks
// to fields that changed (nullptr: all).
Status CheckAgainstStore(Workspace& ws, const RecordTypeSpec& spec, const Json& data,
                         const std::string& self, const std::set<std::string>* only) {
  Reader rd(ws);
  sql::Db* db = rd.db();
  for (const auto& f : spec.fields) {
    if (!data.contains(f.name) || (only && !only->count(f.name))) continue;
    std::string v = Str(data, f.name.c_str());
    if (f.type == FieldType::kRef) {
      KEEL_ASSIGN_OR_RETURN(auto r, FindOne(db, "id = ? AND type = ?", {v, f.ref_type}));
      if (!r) return InvalidArgument(f.name + " " + v + " does not exist");
    } else if (f.type == FieldType::kArtifact) {
      auto info = GetArtifactInfo(ws, v);
      if (!info.ok()) return InvalidArgument(f.name + " " + v + " is not a stored artifact");
    }
  }
  if (spec.Field("email") && data.contains("email")) {
    std::string email = Str(data, "email");
    KEEL_ASSIGN_OR_RETURN(auto r, FindOne(db, "type = ? AND email = ?", {spec.type, email}));
    if (r && r->id != self) {
      return AlreadyExists("a " + spec.type + " with email " + email + " already exists: " + r->id);
    }
  }
  if (spec.type == "invoice" && data.contains("number")) {
    // Few invoices per solo business: a scan keeps the SQL portable (no JSON operators).
    KEEL_ASSIGN_OR_RETURN(auto st,
                          db->Prepare(std::string(kRecordColumns) + " WHERE type = 'invoice'"));
    std::string number = Str(data, "number");
    for (;;) {
      KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      Record r = ReadRecord(*st);
      if (r.id != self && r.Get("number") == number) {
        return AlreadyExists("invoice number " + number + " is already used by " + r.id);
      }
    }
  }
  return OkStatus();
}

// Validates `values` for a new record of `spec` (defaults applied) without the store checks.
Result<Json> BuildNewData(const RecordTypeSpec& spec, const FieldValues& values) {
  Json data = Json::object();
  for (const auto& [key, value] : values) {
    KEEL_ASSIGN_OR_RETURN(const FieldSpec* f, FieldOrError(spec, Lower(Trim(key))));
    if (Trim(value).empty()) continue;
    KEEL_ASSIGN_OR_RETURN(Json v, NormalizeValue(*f, value));
    data[f->name] = std::move(v);
  }
  for (const auto& f : spec.fields) {
    if (!f.default_value.empty() && !data.contains(f.name)) {
      KEEL_ASSIGN_OR_RETURN(data[f.name], NormalizeValue(f, f.default_value));
    }
  }
  KEEL_RETURN_IF_ERROR(CheckShape(spec, data));
  return data;
}

Status BindEmail(sql::Stmt* st, int i, const Json& data) {
  std::string email = Str(data, "email");
  if (email.empty()) {
    st->BindNull(i);
  } else {
    st->Bind(i, email);
  }
  return OkStatus();
}

Json SourceJson(const RecordWriteOptions& opts) {
  if (opts.source_json.empty()) return Json();
  Json j = Json::parse(opts.source_json, nullptr, false);
  return j.is_object() ? j : Json();
}

}  // namespace

std::string_view FieldTypeName(FieldType t) {
  switch (t) {
    case FieldType::kString:
      return "string";
    case FieldType::kText:
      return "text";
    case FieldType::kEmail:
      return "email";
    case FieldType::kUrl:
      return "url";
    case FieldType::kPhone:
      return "phone";
    case FieldType::kDate:
      return "date";
    case FieldType::kNumber:
      return "number";
    case FieldType::kInteger:
      return "integer";
    case FieldType::kPercent:
      return "percent";
    case FieldType::kMoney:
      return "money";
    case FieldType::kCurrency:
      return "currency";
    case FieldType::kEnum:
      return "enum";
    case FieldType::kRef:
      return "ref";
    case FieldType::kArtifact:
      return "artifact";
  }
  return "?";
}

const FieldSpec* RecordTypeSpec::Field(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string RecordTypeSpec::FieldList() const {
  std::string s;
  for (const auto& f : fields) s += (s.empty() ? "" : ", ") + f.name;
  return s;
}

const std::vector<RecordTypeSpec>& RecordTypes() {
  static const std::vector<RecordTypeSpec> types = BuildTypes();
  return types;
}

const RecordTypeSpec* FindRecordType(std::string_view type) {
  for (const auto& t : RecordTypes()) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

const RecordTypeSpec* RecordTypeOfId(std::string_view id) {
  for (const auto& t : RecordTypes()) {
    if (id.size() > t.prefix.size() && id.substr(0, t.prefix.size()) == t.prefix &&
        id[t.prefix.size()] == '_') {
      return &t;
    }
  }
  return nullptr;
}

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

std::string Record::Get(const std::string& field) const {
  auto it = fields.find(field);
  return it == fields.end() ? "" : it->second;
}

Result<Record> CreateRecord(Txn& txn, const std::string& type, const FieldValues& values,
                            const RecordWriteOptions& opts) {
  KEEL_ASSIGN_OR_RETURN(const RecordTypeSpec* spec, TypeOrError(type));
  KEEL_ASSIGN_OR_RETURN(Json data, BuildNewData(*spec, values));
  Workspace& ws = txn.workspace();
  KEEL_RETURN_IF_ERROR(CheckAgainstStore(ws, *spec, data, "", nullptr));

  Record r;
  r.id = NewId(spec->prefix, txn.now_us(), ws.env().random);
  r.type = spec->type;
  r.data_json = CanonicalJson(data);
  r.version = 1;
  r.created_us = r.updated_us = txn.now_us();
  for (auto it = data.begin(); it != data.end(); ++it) r.fields[it.key()] = DisplayText(*it);

  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("INSERT INTO records(id, type, data, email, "
                                                   "version, created_us, updated_us) VALUES "
                                                   "(?,?,?,?,?,?,?)"));
  st->Bind(1, r.id).Bind(2, r.type).Bind(3, r.data_json);
  KEEL_RETURN_IF_ERROR(BindEmail(st, 4, data));
  st->Bind(5, r.version).Bind(6, r.created_us).Bind(7, r.updated_us);
  Status s = st->Run();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s.WithContext("storing " + r.id));

  Json payload = {{"type", r.type}, {"fields", data}};
  Json source = SourceJson(opts);
  if (!source.is_null()) payload["source"] = source;
  KEEL_RETURN_IF_ERROR(txn.Append({opts.actor, "record.created", r.id, opts.run_id, opts.step_id,
                                   CanonicalJson(payload), opts.artifacts})
                           .status());
  return r;
}

Result<UpdateResult> UpdateRecord(Txn& txn, const std::string& id, const RecordUpdate& update,
                                  const RecordWriteOptions& opts) {
  Workspace& ws = txn.workspace();
  KEEL_ASSIGN_OR_RETURN(Record old, GetRecord(ws, id));
  const RecordTypeSpec* spec = FindRecordType(old.type);
  if (!spec) return Internal("record " + id + " has unknown type " + old.type);
  if (update.expected_version != 0 && update.expected_version != old.version) {
    return FailedPrecondition("record " + id + " is at version " + std::to_string(old.version) +
                              ", not " + std::to_string(update.expected_version) +
                              " (changed meanwhile; show it again and retry)");
  }
  Json before = Json::parse(old.data_json, nullptr, false);
  if (!before.is_object()) return DataLoss("record " + id + " holds damaged data");
  Json after = before;
  std::set<std::string> touched;
  for (const auto& [key, value] : update.set) {
    KEEL_ASSIGN_OR_RETURN(const FieldSpec* f, FieldOrError(*spec, Lower(Trim(key))));
    if (Trim(value).empty()) {
      return InvalidArgument(f->name + " is empty; to remove a field, unset it");
    }
    if (!touched.insert(f->name).second) {
      return InvalidArgument(f->name + " is given more than once");
    }
    KEEL_ASSIGN_OR_RETURN(after[f->name], NormalizeValue(*f, value));
  }
  for (const auto& key : update.unset) {
    KEEL_ASSIGN_OR_RETURN(const FieldSpec* f, FieldOrError(*spec, Lower(Trim(key))));
    if (!touched.insert(f->name).second) {
      return InvalidArgument(f->name + " is both set and unset");
    }
    after.erase(f->name);
  }
  KEEL_RETURN_IF_ERROR(CheckShape(*spec, after));

  UpdateResult out;
  Json changes = Json::object();
  std::set<std::string> changed_fields;
  for (const auto& f : spec->fields) {
    Json a = before.contains(f.name) ? before[f.name] : Json();
    Json b = after.contains(f.name) ? after[f.name] : Json();
    if (a == b) continue;
    changes[f.name] = Json::array({a, b});
    changed_fields.insert(f.name);
    out.changes[f.name] = {DisplayText(a), DisplayText(b)};
  }
  if (changed_fields.empty()) {
    out.record = std::move(old);
    return out;
  }
  KEEL_RETURN_IF_ERROR(CheckAgainstStore(ws, *spec, after, id, &changed_fields));

  Record r = old;
  r.data_json = CanonicalJson(after);
  r.version = old.version + 1;
  r.updated_us = txn.now_us();
  r.fields.clear();
  for (auto it = after.begin(); it != after.end(); ++it) r.fields[it.key()] = DisplayText(*it);
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE records SET data = ?, email = ?, "
                                                   "version = ?, updated_us = ? WHERE id = ? "
                                                   "AND version = ?"));
  st->Bind(1, r.data_json);
  KEEL_RETURN_IF_ERROR(BindEmail(st, 2, after));
  st->Bind(3, r.version).Bind(4, r.updated_us).Bind(5, id).Bind(6, old.version);
  Status s = st->Run();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s.WithContext("updating " + id));

  Json payload = {{"type", r.type}, {"version", r.version}, {"changes", changes}};
  Json source = SourceJson(opts);
  if (!source.is_null()) payload["source"] = source;
  KEEL_RETURN_IF_ERROR(txn.Append({opts.actor, "record.changed", id, opts.run_id, opts.step_id,
                                   CanonicalJson(payload), opts.artifacts})
                           .status());
  out.record = std::move(r);
  out.changed = true;
  return out;
}

namespace {
// Rolls a dry run back after `fn` succeeded.
const char kDryRunMarker[] = "keel.dry-run.rollback";
}  // namespace

Result<Record> CreateRecord(Workspace& ws, const std::string& type, const FieldValues& values,
                            const RecordWriteOptions& opts, bool dry_run) {
  Record out;
  Status s = ws.Write([&](Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(out, CreateRecord(txn, type, values, opts));
    return dry_run ? Cancelled(kDryRunMarker) : OkStatus();
  });
  if (dry_run && s.code() == StatusCode::kCancelled && s.message() == kDryRunMarker) {
    return out;
  }
  if (!s.ok()) return s;
  return out;
}

Result<UpdateResult> UpdateRecord(Workspace& ws, const std::string& id, const RecordUpdate& update,
                                  const RecordWriteOptions& opts, bool dry_run) {
  UpdateResult out;
  Status s = ws.Write([&](Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(out, UpdateRecord(txn, id, update, opts));
    return dry_run ? Cancelled(kDryRunMarker) : OkStatus();
  });
  if (dry_run && s.code() == StatusCode::kCancelled && s.message() == kDryRunMarker) {
    return out;
  }
  if (!s.ok()) return s;
  return out;
}

Result<Record> GetRecord(Workspace& ws, const std::string& id) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto r, FindOne(rd.db(), "id = ?", {id}));
  if (!r) {
    const RecordTypeSpec* t = RecordTypeOfId(id);
    return NotFound("no record " + Quote(id) +
                    (t ? "" : " (ids start with a type: lead_, deal_, ...)") +
                    "; list them with `keel record list`");
  }
  return *r;
}

Result<bool> RecordExists(Txn& txn, const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("SELECT 1 FROM records WHERE id = ?"));
  st->Bind(1, id);
  auto row = st->Step();
  st->Reset();
  return row;
}

Result<std::vector<Record>> ListRecords(Workspace& ws, const RecordQuery& q) {
  const RecordTypeSpec* spec = nullptr;
  if (!q.type.empty()) {
    KEEL_ASSIGN_OR_RETURN(spec, TypeOrError(q.type));
  } else if (!q.where.empty()) {
    return InvalidArgument("filtering by field needs a record type (fields differ per type)");
  }
  if (q.limit < 0) return InvalidArgument("limit must not be negative");
  std::vector<std::pair<std::string, std::string>> filters;
  for (const auto& [key, value] : q.where) {
    KEEL_ASSIGN_OR_RETURN(const FieldSpec* f, FieldOrError(*spec, Lower(Trim(key))));
    std::string want;
    if (!Trim(value).empty()) {
      KEEL_ASSIGN_OR_RETURN(Json v, NormalizeValue(*f, value));
      want = DisplayText(v);
    }
    filters.emplace_back(f->name, want);  // "" matches an unset field
  }
  Reader rd(ws);
  std::string sql = kRecordColumns;
  if (spec) sql += " WHERE type = ?";
  // Rows of one transaction share created_us; the integer key n keeps them in insertion
  // order (file order for an import; schema migration 7).
  sql += " ORDER BY created_us, n";
  KEEL_ASSIGN_OR_RETURN(auto st, rd.db()->Prepare(sql));
  if (spec) st->Bind(1, spec->type);
  std::vector<Record> out;
  for (;;) {
    if (q.limit > 0 && static_cast<int64_t>(out.size()) >= q.limit) break;
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    Record r = ReadRecord(*st);
    bool match = std::all_of(filters.begin(), filters.end(),
                             [&](const auto& f) { return r.Get(f.first) == f.second; });
    if (match) out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<Record>> FindByEmail(Workspace& ws, const std::string& type,
                                          const std::string& email) {
  KEEL_ASSIGN_OR_RETURN(const RecordTypeSpec* spec, TypeOrError(type));
  if (!spec->Field("email")) return InvalidArgument(spec->type + " records have no email field");
  KEEL_ASSIGN_OR_RETURN(std::string norm, NormalizeEmail(email));
  Reader rd(ws);
  return FindOne(rd.db(), "type = ? AND email = ?", {spec->type, norm});
}

// ----- CSV import -----

namespace {

struct ImportPlan {
  std::vector<std::pair<int64_t, FieldValues>> good;  // line, values
  std::vector<ImportProblem> problems;
  int64_t rows = 0;
  bool header_bad = false;
};

Result<ImportPlan> PlanImport(Workspace& ws, const std::vector<CsvRow>& rows) {
  const RecordTypeSpec& spec = *FindRecordType("lead");
  ImportPlan plan;
  std::vector<std::string> columns;
  std::set<std::string> seen;
  const CsvRow& header = rows[0];
  for (const auto& raw : header.fields) {
    std::string name = Lower(Trim(raw));
    if (name.empty()) {
      plan.problems.push_back({header.line, "a column has no name"});
    } else if (!spec.Field(name)) {
      plan.problems.push_back(
          {header.line, "unknown column " + Quote(raw) + " (allowed: " + spec.FieldList() + ")"});
    } else if (!seen.insert(name).second) {
      plan.problems.push_back({header.line, "column " + name + " appears twice"});
    }
    columns.push_back(name);
  }
  if (!seen.count("email")) {
    plan.problems.push_back({header.line,
                             "the header has no email column (imported leads are "
                             "matched by email)"});
  }
  plan.rows = static_cast<int64_t>(rows.size()) - 1;
  if (!plan.problems.empty()) {
    plan.header_bad = true;
    return plan;
  }
  std::map<std::string, int64_t> first_line;  // email -> line of its first good row
  for (size_t i = 1; i < rows.size(); ++i) {
    const CsvRow& row = rows[i];
    auto bad = [&](std::string why) { plan.problems.push_back({row.line, std::move(why)}); };
    bool blank = std::all_of(row.fields.begin(), row.fields.end(),
                             [](const std::string& f) { return Trim(f).empty(); });
    if (blank) {
      --plan.rows;
      continue;
    }
    if (row.fields.size() != columns.size()) {
      bad((row.fields.size() > columns.size() ? "too many fields: " : "too few fields: ") +
          std::to_string(row.fields.size()) + " where the header has " +
          std::to_string(columns.size()));
      continue;
    }
    FieldValues values;
    for (size_t c = 0; c < columns.size(); ++c) values[columns[c]] = row.fields[c];
    if (Trim(values["email"]).empty()) {
      bad("missing required field email");
      continue;
    }
    auto data = BuildNewData(spec, values);
    if (!data.ok()) {
      bad(data.status().message());
      continue;
    }
    std::string email = Str(*data, "email");
    if (auto it = first_line.find(email); it != first_line.end()) {
      bad("duplicate email " + email + " (first on line " + std::to_string(it->second) + ")");
      continue;
    }
    Status s = CheckAgainstStore(ws, spec, *data, "", nullptr);
    if (!s.ok()) {
      if (s.code() != StatusCode::kAlreadyExists && s.code() != StatusCode::kInvalidArgument) {
        return s;  // a storage error, not a bad row
      }
      bad(s.message());
      continue;
    }
    first_line[email] = row.line;
    plan.good.emplace_back(row.line, std::move(values));
  }
  return plan;
}

void FillReport(const ImportPlan& plan, const ImportOptions& opts, ImportReport* report) {
  report->rows = plan.rows;
  report->problems = plan.problems;
  bool proceed = !plan.header_bad && (plan.problems.empty() || opts.skip_bad);
  report->imported = proceed ? static_cast<int64_t>(plan.good.size()) : 0;
  report->skipped = proceed ? static_cast<int64_t>(plan.problems.size()) : 0;
}

}  // namespace

Result<ImportReport> ImportLeads(Workspace& ws, std::string_view csv, const ImportOptions& opts) {
  auto parsed = ParseCsv(csv);
  if (!parsed.ok()) return parsed.status();
  const std::vector<CsvRow>& rows = *parsed;
  if (rows.empty()) {
    return InvalidArgument("the file is empty; expected a header line naming the columns (" +
                           FindRecordType("lead")->FieldList() + ")");
  }
  ImportReport report;
  report.file_hash = Sha256Hex(csv);
  if (opts.dry_run) {
    Reader rd(ws);
    KEEL_ASSIGN_OR_RETURN(ImportPlan plan, PlanImport(ws, rows));
    FillReport(plan, opts, &report);
    if (report.rows == 0) return InvalidArgument("the file has a header but no rows");
    return report;
  }
  Status s = ws.Write([&](Txn& txn) -> Status {
    // Planned inside the write transaction, so no other writer can add a lead with one of
    // these emails between the check and the insert.
    KEEL_ASSIGN_OR_RETURN(ImportPlan plan, PlanImport(ws, rows));
    FillReport(plan, opts, &report);
    if (report.rows == 0) return InvalidArgument("the file has a header but no rows");
    if (report.imported == 0) return OkStatus();  // nothing to write
    PutArtifactOptions ap;
    ap.media_type = "text/csv";
    ap.name = opts.file_name;
    ap.actor = opts.actor;
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo art, PutArtifact(txn, csv, ap));
    for (const auto& [line, values] : plan.good) {
      RecordWriteOptions wo;
      wo.actor = opts.actor;
      wo.source_json =
          CanonicalJson(Json{{"import", "leads"}, {"artifact", art.hash}, {"line", line}});
      wo.artifacts = {art.hash};
      auto r = CreateRecord(txn, "lead", values, wo);
      if (!r.ok()) return r.status().WithContext("line " + std::to_string(line));
      report.ids.push_back(r->id);
    }
    Json skipped_lines = Json::array();
    for (const auto& p : plan.problems) {
      if (skipped_lines.size() >= 1000) break;  // keeps the payload bounded
      skipped_lines.push_back(p.line);
    }
    Json payload = {{"import", "leads"},
                    {"file", opts.file_name},
                    {"file_hash", art.hash},
                    {"rows", report.rows},
                    {"imported", report.imported},
                    {"skipped", report.skipped},
                    {"skipped_lines", skipped_lines}};
    KEEL_ASSIGN_OR_RETURN(LedgerEntry e, txn.Append({opts.actor,
                                                     "import.completed",
                                                     art.hash,
                                                     "",
                                                     "",
                                                     CanonicalJson(payload),
                                                     {art.hash}}));
    report.ledger_seq = e.seq;
    return OkStatus();
  });
  if (!s.ok()) return s;
  report.written = report.ledger_seq != 0;
  return report;
}

}  // namespace keel::store
