// The record types: each type's field schema (RecordTypes(); docs/records.md lists it) and
// the lookups by type name and by id prefix.
#include <string>
#include <vector>

#include "store/records.h"

namespace keel::store {
namespace {

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
// A record type whose id prefix is its name.
RecordTypeSpec Type(std::string type, std::string help) {
  RecordTypeSpec t;
  t.prefix = type;
  t.type = std::move(type);
  t.help = std::move(help);
  return t;
}
// A personal field (FieldSpec::personal).
FieldSpec P(FieldSpec f) {
  f.personal = true;
  return f;
}
FieldSpec Ref(std::string name, std::string ref_type) {
  FieldSpec f = F(std::move(name), FieldType::kRef, "id of the related " + ref_type);
  f.ref_type = std::move(ref_type);
  return f;
}

std::vector<RecordTypeSpec> BuildTypes() {
  using T = FieldType;
  std::vector<RecordTypeSpec> v;
  {
    RecordTypeSpec s = Type("lead", "a person or business that may buy; unique by email");
    s.fields = {P(F("email", T::kEmail, "work email; unique among leads")),
                P(F("name", T::kString, "full name")),
                F("company", T::kString, "company name as written by the lead"),
                P(F("title", T::kString, "job title")),
                P(F("website", T::kUrl, "company or personal site")),
                P(F("phone", T::kPhone, "phone number")),
                F("source", T::kString, "where the lead came from (referral, form, list...)"),
                Enum("status", {"new", "contacted", "qualified", "won", "lost"}, "new",
                     "where the lead stands"),
                Ref("company_id", "company"),
                P(F("notes", T::kText, "free text"))};
    s.one_of = {{"email", "name"}};
    s.person = true;
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("contact", "a person you deal with; unique by email");
    s.fields = {P(F("email", T::kEmail, "email; unique among contacts")),
                P(F("name", T::kString, "full name")),
                P(F("title", T::kString, "job title")),
                P(F("phone", T::kPhone, "phone number")),
                Ref("company_id", "company"),
                Ref("lead_id", "lead"),
                P(F("notes", T::kText, "free text"))};
    s.one_of = {{"email", "name"}};
    s.person = true;
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("company", "a customer or prospect organisation");
    s.fields = {
        F("name", T::kString, "company name", true), F("website", T::kUrl, "company site"),
        F("industry", T::kString, "industry"),
        // A one-person company's number is its owner's.
        P(F("phone", T::kPhone, "main phone number")),
        Enum("status", {"prospect", "customer", "partner", "former"}, "prospect", "relationship"),
        P(F("notes", T::kText, "free text"))};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("deal", "a sale in progress (open, won or lost)");
    s.fields = {F("title", T::kString, "what is being sold", true),
                F("value", T::kMoney, "expected amount (>= 0, up to 2 decimals)"),
                F("currency", T::kCurrency, "ISO 4217 code (EUR, USD...)"),
                F("stage", T::kString, "pipeline stage"),
                Enum("status", {"open", "won", "lost"}, "open", "outcome"),
                F("probability", T::kPercent, "chance to win, 0-100"),
                F("expected_close", T::kDate, "expected closing day"),
                P(F("next_action", T::kString, "the next step")),  // "call Ana"
                F("next_action_at", T::kDate, "when the next step is due"),
                P(F("lost_reason", T::kText, "why the deal was lost")),
                Ref("lead_id", "lead"),
                Ref("contact_id", "contact"),
                Ref("company_id", "company"),
                P(F("notes", T::kText, "free text"))};
    s.fields[3].default_value = "new";
    s.rules = {"value needs currency",
               "an open deal needs next_action_at (every open deal has a "
               "next step and a date)",
               "a lost deal needs lost_reason"};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("project", "work delivered for a customer");
    s.fields = {
        F("name", T::kString, "project name", true),
        Enum("status", {"planned", "active", "paused", "done", "cancelled"}, "active", "progress"),
        Ref("company_id", "company"),
        Ref("deal_id", "deal"),
        F("start_date", T::kDate, "first day"),
        F("due_date", T::kDate, "deadline"),
        P(F("notes", T::kText, "free text"))};
    s.rules = {"due_date is not before start_date"};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("document", "a proposal, contract or other file");
    s.fields = {F("title", T::kString, "document title", true),
                Enum("kind", {"proposal", "contract", "brief", "report", "note", "other"}, "other",
                     "kind of document"),
                F("artifact", T::kArtifact, "SHA-256 of the stored content (keel artifact put)"),
                F("url", T::kUrl, "where it lives outside keel"),
                Ref("deal_id", "deal"),
                Ref("project_id", "project"),
                Ref("company_id", "company"),
                P(F("notes", T::kText, "free text"))};
    v.push_back(std::move(s));
  }
  {
    RecordTypeSpec s = Type("invoice", "a bill sent to a customer");
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
                P(F("notes", T::kText, "free text"))};
    s.rules = {"due_date is not before issue_date", "number is unique among invoices"};
    s.retention = "tax and accounting records: 10 years";
    v.push_back(std::move(s));
  }
  return v;
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

}  // namespace keel::store
