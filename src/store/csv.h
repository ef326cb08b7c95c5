// An RFC 4180 CSV reader for operator-supplied files (lead lists exported from spreadsheets
// and CRMs). Pure functions: no I/O.
//
// Accepted: comma separators; fields quoted with '"' where a doubled quote ("") is a literal
// quote and commas, CR and LF may appear inside; records ended by CRLF, LF or a lone CR
// (old spreadsheet exports); a UTF-8 byte-order mark at the start (dropped); a last record
// with no line ending; blank lines (skipped).
// Refused, with the 1-based physical line number: a quote inside an unquoted field, text
// after a closing quote, a quoted field still open at the end of the file, NUL bytes,
// bytes that are not UTF-8 (a UTF-16 or UTF-32 byte-order mark gets its own hint), and
// input over the limits in CsvLimits (size, field size, fields per row, rows).
//
// Errors: InvalidArgument naming the line ("line 7: ..."). Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace keel::store {

struct CsvLimits {
  size_t max_bytes = 32u * 1024 * 1024;  // the whole input
  size_t max_field_bytes = 64u * 1024;   // one field, after unquoting
  size_t max_fields = 256;               // fields in one row
  size_t max_rows = 1000000;             // rows, the header included
};

struct CsvRow {
  int64_t line = 0;  // physical line (1-based) on which the row starts
  std::vector<std::string> fields;
};

// Parses `text` into rows. Blank lines (nothing between two line endings) are skipped; a
// line holding only separators is a row of empty fields.
Result<std::vector<CsvRow>> ParseCsv(std::string_view text, const CsvLimits& limits = {});

// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
// On failure `*bad_offset` (if given) is the offset of the first bad byte.
bool IsValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace keel::store
