#include "store/csv.h"

namespace keel::store {
namespace {

// The physical line (1-based) of byte `offset`: CRLF, LF and a lone CR each end a line.
int64_t LineAt(std::string_view text, size_t offset) {
  int64_t line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    // A line ends at \n, or at a \r not followed by \n (a \r\n counts once).
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n'))) {
      ++line;
    }
  }
  return line;
}

Status LineError(int64_t line, const std::string& what) {
  return InvalidArgument("line " + std::to_string(line) + ": " + what);
}

}  // namespace

bool IsValidUtf8(std::string_view s, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

Result<std::vector<CsvRow>> ParseCsv(std::string_view text, const CsvLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return InvalidArgument("the file is " + std::to_string(text.size()) +
                           " bytes, over the limit of " + std::to_string(limits.max_bytes));
  }
  // Byte-order marks: UTF-8's is dropped; the others mean the file is not UTF-8 at all. The
  // UTF-32 LE mark starts with the UTF-16 LE one, so it is checked first.
  if (text.substr(0, 4) == std::string_view("\xFF\xFE\0\0", 4) ||
      text.substr(0, 4) == std::string_view("\0\0\xFE\xFF", 4)) {
    return InvalidArgument("line 1: the file is UTF-32; save it as UTF-8 (CSV UTF-8)");
  }
  if (text.substr(0, 2) == "\xFF\xFE" || text.substr(0, 2) == "\xFE\xFF") {
    return InvalidArgument("line 1: the file is UTF-16; save it as UTF-8 (CSV UTF-8)");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return LineError(LineAt(text, nul), "contains a NUL byte (is this a binary or UTF-16 file?)");
  }
  if (size_t bad = 0; !IsValidUtf8(text, &bad)) {
    return LineError(LineAt(text, bad),
                     "contains bytes that are not UTF-8 (save the file as UTF-8; Latin-1 and "
                     "Windows-1252 are not accepted)");
  }

  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  int64_t line = 1;
  const size_t n = text.size();
  size_t i = 0;
  row.line = 1;

  auto end_field = [&]() -> Status {
    if (row.fields.size() >= limits.max_fields) {
      return LineError(row.line, "more than " + std::to_string(limits.max_fields) + " fields");
    }
    row.fields.push_back(std::move(field));
    field.clear();
    return OkStatus();
  };
  auto end_row = [&]() -> Status {
    bool blank = row.fields.size() == 1 && row.fields[0].empty();
    if (!blank) {
      if (rows.size() >= limits.max_rows) {
        return LineError(row.line, "more than " + std::to_string(limits.max_rows) + " rows");
      }
      rows.push_back(std::move(row));
    }
    row = CsvRow();
    return OkStatus();
  };
  // Consumes a line ending at i (CRLF, LF or CR); returns false if there is none.
  auto take_newline = [&]() -> bool {
    if (i < n && text[i] == '\r') {
      i += (i + 1 < n && text[i + 1] == '\n') ? 2 : 1;
      ++line;
      return true;
    }
    if (i < n && text[i] == '\n') {
      ++i;
      ++line;
      return true;
    }
    return false;
  };

  while (i < n) {
    // At the start of a field.
    if (text[i] == '"') {
      int64_t open_line = line;
      ++i;
      for (;;) {
        if (i >= n) {
          return LineError(open_line, "a quoted field is not closed before the end of the file");
        }
        char c = text[i];
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (c == '\r' || c == '\n') {
          size_t start = i;
          take_newline();
          field.append(text.substr(start, i - start));
        } else {
          field.push_back(c);
          ++i;
        }
        if (field.size() > limits.max_field_bytes) {
          return LineError(open_line, "a field is longer than " +
                                          std::to_string(limits.max_field_bytes) + " bytes");
        }
      }
      // After the closing quote: a separator, a line ending or the end.
      if (i < n && text[i] != ',' && text[i] != '\r' && text[i] != '\n') {
        return LineError(line,
                         "unexpected text after a closing quote (a quote inside a quoted "
                         "field must be doubled: \"\")");
      }
    } else {
      while (i < n && text[i] != ',' && text[i] != '\r' && text[i] != '\n') {
        if (text[i] == '"') {
          return LineError(line,
                           "a quote inside an unquoted field (quote the whole field and "
                           "double the quote: \"5\"\" screen\")");
        }
        field.push_back(text[i]);
        ++i;
        if (field.size() > limits.max_field_bytes) {
          return LineError(
              line, "a field is longer than " + std::to_string(limits.max_field_bytes) + " bytes");
        }
      }
    }
    KEEL_RETURN_IF_ERROR(end_field());
    if (i < n && text[i] == ',') {
      ++i;
      if (i == n) KEEL_RETURN_IF_ERROR(end_field());  // "a,b," ends with an empty field
      continue;
    }
    if (take_newline()) {
      KEEL_RETURN_IF_ERROR(end_row());
      row.line = line;
      continue;
    }
  }
  if (!row.fields.empty()) KEEL_RETURN_IF_ERROR(end_row());
  return rows;
}

}  // namespace keel::store
