// Records: the business's typed objects — leads, contacts, companies (customers), deals,
// projects, documents, invoices — with stable ids ("lead_01j…", core/random.h NewId).
//
// Each type has a field schema defined in code (RecordTypes(); docs/records.md lists it).
// Values arrive as text (from flags, CSV cells, agents), are validated and normalised
// against the schema (emails lowercased, currencies uppercased, dates checked against the
// calendar, numbers parsed), and are stored as a canonical JSON object. Unknown fields are
// refused with the list of allowed ones: a typo must not silently create a new field.
//
// Every change is one ledger entry in the same transaction as the row change:
//   record.created  subject=id  payload {"type", "fields", ["source": {...}]}
//   record.changed  subject=id  payload {"type", "version", "changes": {field: [old, new]}}
// (an absent value is null in `changes`). Leads and contacts are unique per type by email.
//
// Errors: InvalidArgument (unknown type or field, a bad value, a broken cross-field rule, a
// reference to a record that does not exist), AlreadyExists (same email for the same type;
// the message names the existing id), NotFound (no record with that id),
// FailedPrecondition (UpdateRecord's expected version is stale), and the Workspace's
// storage errors.
// Thread-safety: as Workspace (reads lock its mutex; writes run inside Workspace::Write).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

enum class FieldType {
  kString,    // one line of text, at most 500 bytes
  kText,      // free text (newlines allowed), at most 10,000 bytes
  kEmail,     // an address; stored lowercased
  kUrl,       // http(s) URL; a bare host name gets https:// in front
  kPhone,     // digits and + - ( ) . space, at least 5 digits
  kDate,      // YYYY-MM-DD, a real calendar day
  kNumber,    // a finite decimal number
  kInteger,   // a whole number
  kPercent,   // a whole number 0..100
  kMoney,     // a decimal >= 0 with at most 2 fraction digits
  kCurrency,  // ISO 4217 code: 3 letters, stored uppercase
  kEnum,      // one of `allowed`
  kRef,       // the id of an existing record of type `ref_type`
  kArtifact,  // the SHA-256 address of a stored artifact
};

std::string_view FieldTypeName(FieldType t);

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::kString;
  bool required = false;
  std::vector<std::string> allowed;  // kEnum only
  std::string ref_type;              // kRef only
  std::string default_value;         // applied at creation when the field is not given
  std::string help;                  // one line for `keel record types` and docs
  // Holds personal data: a person's identifiers (email, name, phone, title, personal site)
  // or free text, which may name anyone. Declared per field, never guessed from values;
  // privacy erasure, export and encryption follow these declarations (docs/privacy.md).
  bool personal = false;
};

struct RecordTypeSpec {
  std::string type;    // "lead"
  std::string prefix;  // id prefix, "lead"
  std::string help;
  std::vector<FieldSpec> fields;
  // Groups of which at least one field must be set ({"email", "name"}).
  std::vector<std::vector<std::string>> one_of;
  // Prose of the cross-field rules (checked in code), for help texts and docs.
  std::vector<std::string> rules;
  // A record about one person (a data subject): what `keel privacy erase` and `export` take.
  bool person = false;
  // A legal duty to keep records of this type, in prose ("" for none): docs/privacy.md
  // plans to keep such records through an erasure with their personal fields minimised.
  std::string retention;
  const FieldSpec* Field(std::string_view name) const;
  std::string FieldList() const;  // "email, name, company, ..."
};

// All record types, in display order.
const std::vector<RecordTypeSpec>& RecordTypes();
// nullptr if unknown.
const RecordTypeSpec* FindRecordType(std::string_view type);
// The type of an id by its prefix ("deal_01j…" -> deal); nullptr if none matches.
const RecordTypeSpec* RecordTypeOfId(std::string_view id);

// Validates and normalises one value ("Ann@Example.COM" -> "ann@example.com"). Returns the
// canonical JSON encoding of the value ("\"ann@example.com\"", "1200.5"). Does not check
// that references exist. InvalidArgument names the field.
Result<std::string> NormalizeFieldValue(const FieldSpec& field, std::string_view text);
// Normalises an email address alone; InvalidArgument says what is wrong with it.
Result<std::string> NormalizeEmail(std::string_view text);

struct Record {
  std::string id;
  std::string type;
  std::string data_json;  // canonical JSON object: field -> value
  // The same fields as display text (strings as they are, numbers as written).
  std::map<std::string, std::string> fields;
  int64_t version = 0;  // 1 at creation, +1 per change
  int64_t created_us = 0;
  int64_t updated_us = 0;
  // "" if the field is unset.
  std::string Get(const std::string& field) const;
};

// Field values as text, keyed by field name (flags "--set k=v", CSV cells).
using FieldValues = std::map<std::string, std::string>;

struct RecordWriteOptions {
  std::string actor = "operator";
  std::string run_id;
  std::string step_id;
  // Provenance merged into the ledger payload as "source" ({"artifact": hash, "line": 7}),
  // given as a canonical JSON object; empty for none.
  std::string source_json;
  std::vector<std::string> artifacts;  // ledger artifact references (64-hex)
};

// Creates a record of `type` inside `txn`. Empty values in `values` count as not given.
Result<Record> CreateRecord(Txn& txn, const std::string& type, const FieldValues& values,
                            const RecordWriteOptions& opts = {});

struct RecordUpdate {
  FieldValues set;
  std::vector<std::string> unset;
  int64_t expected_version = 0;  // 0 = no check; else FailedPrecondition if it differs
};

struct UpdateResult {
  Record record;
  bool changed = false;  // false: the values were already so; nothing was written
  // field -> (old, new) as display text; "" for absent.
  std::map<std::string, std::pair<std::string, std::string>> changes;
};

// Applies `update` to record `id` inside `txn` and checks the result against the schema.
Result<UpdateResult> UpdateRecord(Txn& txn, const std::string& id, const RecordUpdate& update,
                                  const RecordWriteOptions& opts = {});

// Convenience wrappers running one Workspace::Write each. With `dry_run` the change is made,
// checked and rolled back, so the result shows exactly what would happen.
Result<Record> CreateRecord(Workspace& ws, const std::string& type, const FieldValues& values,
                            const RecordWriteOptions& opts = {}, bool dry_run = false);
Result<UpdateResult> UpdateRecord(Workspace& ws, const std::string& id, const RecordUpdate& update,
                                  const RecordWriteOptions& opts = {}, bool dry_run = false);

Result<Record> GetRecord(Workspace& ws, const std::string& id);
// Whether a record with this id exists, read in `txn` (a check and the write that relies on
// it see one state). One primary-key lookup.
Result<bool> RecordExists(Txn& txn, const std::string& id);

struct RecordQuery {
  std::string type;  // empty: all types (then `where` must be empty)
  // field=value filters, all of which must match; values are normalised like inputs, so
  // "email=Ann@Example.com" finds "ann@example.com".
  std::vector<std::pair<std::string, std::string>> where;
  int64_t limit = 0;  // 0 = no limit
};
// Records oldest first. InvalidArgument for an unknown type or field.
Result<std::vector<Record>> ListRecords(Workspace& ws, const RecordQuery& q);

// The record of `type` with this email (normalised first), if any.
Result<std::optional<Record>> FindByEmail(Workspace& ws, const std::string& type,
                                          const std::string& email);

// ----- CSV import -----

struct ImportOptions {
  bool skip_bad = false;  // import the good rows and report the bad ones
  bool dry_run = false;   // validate only; write nothing
  std::string actor = "operator";
  std::string file_name;  // the artifact's label and the ledger summary
};

struct ImportProblem {
  int64_t line = 0;
  std::string reason;
};

struct ImportReport {
  std::string file_hash;                // SHA-256 of the file; the artifact address once written
  int64_t rows = 0;                     // data rows (header and blank rows excluded)
  int64_t imported = 0;                 // rows written (or that would be, with dry_run)
  int64_t skipped = 0;                  // bad rows left out (skip_bad)
  std::vector<ImportProblem> problems;  // every bad row, by line
  std::vector<std::string> ids;         // ids created, in file order
  bool written = false;                 // true once the transaction committed
  int64_t ledger_seq = 0;               // the import.completed entry
};

// Imports leads from CSV text. The header names lead fields (case-insensitive); `email` is
// required in the header and in every row. Every row is checked before anything is written
// (field count, required fields, each value, duplicate emails within the file and against
// existing leads). If any row is bad and !skip_bad, nothing is written and the report lists
// the problems (the Result is still ok: the caller decides the exit code from `problems`).
// Otherwise the file is stored as an artifact and all good rows are created in ONE
// transaction with one `import.completed` entry; each record.created entry references the
// artifact and its line. Header problems are never skippable.
// Errors: InvalidArgument for a file that is not CSV at all (parse errors, empty), storage
// errors.
Result<ImportReport> ImportLeads(Workspace& ws, std::string_view csv, const ImportOptions& opts);

}  // namespace keel::store
