// The records' internals, shared by the files that implement store/records.h, one job each:
//   records_types.cc   the record types: field schemas, lookups by type name and id prefix
//   records_values.cc  validation and normalisation of field values (and of emails)
//   records.cc         creating, updating, reading and listing records; the store checks
//   records_import.cc  CSV import of leads
// Included only by those files (src/store/records*.cc), never outside them.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"
#include "store/records.h"
#include "store/workspace.h"

namespace keel::store {
// A namespace of its own: these names are short and common, and other store files define
// their own helpers with the same names.
namespace records_internal {

// records_values.cc
std::string Trim(std::string_view s);
std::string Lower(std::string s);
std::string Quote(std::string_view s);
// Validates and normalises one value of field `f` (leading and trailing blanks dropped).
Result<Json> NormalizeValue(const FieldSpec& f, std::string_view raw);

// records.cc
// The string value of `key` in `data`, or "" when absent or not a string.
std::string Str(const Json& data, const char* key);
// References exist, emails and invoice numbers are unique (details at the definition).
Status CheckAgainstStore(Workspace& ws, const RecordTypeSpec& spec, const Json& data,
                         const std::string& self, const std::set<std::string>* only);
// A new record's data from `values`, without the store checks.
Result<Json> BuildNewData(const RecordTypeSpec& spec, const FieldValues& values);

}  // namespace records_internal
}  // namespace keel::store
