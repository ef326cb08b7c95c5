// Application services for business records (leads, contacts, deals, ...) and the CSV
// import: what `keel record ...` and `keel import ...` do, for every face. The record types,
// validation and ledger entries are the store's (store/records.h, docs/records.md); these
// functions add the request checks a face needs and nothing else.
//
// Thread-safety: as the Runtime. Errors: the store's (InvalidArgument for an unknown type,
// field or bad value, AlreadyExists for a duplicate email, NotFound for no such record,
// FailedPrecondition for a stale expected version), plus InvalidArgument for a bad request.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "app/runtime.h"
#include "core/status.h"
#include "store/ledger.h"
#include "store/records.h"

namespace keel::app {

// Every record type, in display order; nullptr for an unknown name.
const std::vector<store::RecordTypeSpec>& RecordTypes();
const store::RecordTypeSpec* FindRecordType(const std::string& type);

struct AddRecordRequest {
  std::string type;
  store::FieldValues values;  // field -> value as text; empty values count as not given
  bool dry_run = false;       // validate and roll back: shows exactly what would be created
  std::string actor = "operator";
};
Result<store::Record> AddRecord(Runtime& rt, const AddRecordRequest& req);

// A record with its history: the ledger entries about it, oldest first.
struct RecordDetail {
  store::Record record;
  const store::RecordTypeSpec* spec = nullptr;  // its type (schema order of the fields)
  std::vector<store::LedgerEntry> history;
};
Result<RecordDetail> ShowRecord(Runtime& rt, const std::string& id);

// The one rule for --limit of a listing: 1..kMaxListLimit.
inline constexpr int64_t kMaxListLimit = 100000;
inline constexpr int64_t kDefaultRecordLimit = kMaxListLimit;

struct ListRecordsRequest {
  std::string type;  // empty: every type (then `where` must be empty)
  // field=value filters, all of which must match; "field=" matches records without it.
  std::vector<std::pair<std::string, std::string>> where;
  int64_t limit = kDefaultRecordLimit;  // 1..kMaxListLimit
};
struct RecordList {
  std::vector<store::Record> records;  // oldest first
  bool more = false;                   // more records match than `limit`
};
Result<RecordList> ListRecords(Runtime& rt, const ListRecordsRequest& req);

struct SetRecordRequest {
  std::string id;
  store::FieldValues set;
  std::vector<std::string> unset;
  int64_t expected_version = 0;  // 0: no check
  bool dry_run = false;
  std::string actor = "operator";
};
// InvalidArgument when the request changes nothing (no set, no unset).
Result<store::UpdateResult> SetRecord(Runtime& rt, const SetRecordRequest& req);

// The largest CSV file ImportLeads accepts (a face refuses larger input while reading it).
uint64_t MaxImportBytes();

struct ImportRequest {
  std::string csv;        // the file's bytes
  std::string file_name;  // the artifact's label (no folder); empty for standard input
  bool skip_bad = false;  // import the good rows, report the bad ones
  bool dry_run = false;
  std::string actor = "operator";
};
struct ImportResult {
  store::ImportReport report;
  // Bad rows stopped the import: nothing was imported (always without skip_bad; with it,
  // when no row was good). A face reports this as bad input (CLI: exit 65).
  bool refused = false;
};
// Bad rows are not an error (they are in the report); a file that is not CSV is.
Result<ImportResult> ImportLeads(Runtime& rt, const ImportRequest& req);

}  // namespace keel::app
