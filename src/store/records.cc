// Records in the store: creating and updating them (each change and its ledger entry in one
// transaction), the checks against the store, and reading and listing them.
#include "store/records.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.h"
#include "core/random.h"
#include "store/artifacts.h"
#include "store/records_internal.h"
#include "store/sqlite/sql.h"

namespace keel::store {

using namespace records_internal;

namespace {

constexpr size_t kMaxDataBytes = 32 * 1024;  // a record's JSON; stays well under a payload

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

namespace records_internal {

std::string Str(const Json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : "";
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

}  // namespace records_internal

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

}  // namespace keel::store
