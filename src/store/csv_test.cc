#include "store/csv.h"

#include <gtest/gtest.h>

namespace keel::store {
namespace {

std::vector<std::vector<std::string>> Fields(const std::vector<CsvRow>& rows) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : rows) out.push_back(r.fields);
  return out;
}

std::vector<CsvRow> MustParse(std::string_view text, const CsvLimits& limits = {}) {
  auto r = ParseCsv(text, limits);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<CsvRow>{};
}

std::string ErrorOf(std::string_view text, const CsvLimits& limits = {}) {
  auto r = ParseCsv(text, limits);
  EXPECT_FALSE(r.ok()) << "expected an error for: " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

using Rows = std::vector<std::vector<std::string>>;

TEST(Csv, SimpleRowsAndLineNumbers) {
  auto rows = MustParse("a,b,c\n1,2,3\n");
  EXPECT_EQ(Fields(rows), (Rows{{"a", "b", "c"}, {"1", "2", "3"}}));
  EXPECT_EQ(rows[0].line, 1);
  EXPECT_EQ(rows[1].line, 2);
}

TEST(Csv, CrlfLoneCrAndNoFinalNewline) {
  EXPECT_EQ(Fields(MustParse("a,b\r\n1,2\r\n")), (Rows{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(Fields(MustParse("a,b\r1,2")), (Rows{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(Fields(MustParse("a,b\n1,2")), (Rows{{"a", "b"}, {"1", "2"}}));
}

TEST(Csv, QuotesEscapedQuotesAndEmbeddedNewlines) {
  auto rows = MustParse("h1,h2\n\"a,b\",\"say \"\"hi\"\"\"\n\"line1\r\nline2\",x\nlast,row\n");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1].fields, (std::vector<std::string>{"a,b", "say \"hi\""}));
  EXPECT_EQ(rows[2].fields, (std::vector<std::string>{"line1\r\nline2", "x"}));
  EXPECT_EQ(rows[2].line, 3);
  // The row after a two-line field starts on physical line 5.
  EXPECT_EQ(rows[3].line, 5);
}

TEST(Csv, EmptyFieldsAndQuotedEmpty) {
  EXPECT_EQ(Fields(MustParse("a,,c\n,,\n\"\",x,\"\"\n")),
            (Rows{{"a", "", "c"}, {"", "", ""}, {"", "x", ""}}));
  EXPECT_EQ(Fields(MustParse("a,b,")), (Rows{{"a", "b", ""}}));
}

TEST(Csv, BlankLinesSkippedButCounted) {
  auto rows = MustParse("a\n\n\r\nb\n\n");
  EXPECT_EQ(Fields(rows), (Rows{{"a"}, {"b"}}));
  EXPECT_EQ(rows[1].line, 4);
  EXPECT_TRUE(MustParse("").empty());
}

TEST(Csv, Utf8BomDroppedAndUtf8Kept) {
  auto rows = MustParse(
      "\xEF\xBB\xBF"
      "email,name\nx@example.com,Am\xC3\xA9lie\n");
  EXPECT_EQ(rows[0].fields[0], "email");
  EXPECT_EQ(rows[1].fields[1], "Am\xC3\xA9lie");
}

TEST(Csv, UnbalancedQuotesReportTheLine) {
  EXPECT_EQ(ErrorOf("a,b\n1,\"open\n2,3\n"),
            "line 2: a quoted field is not closed before the end of the file");
  EXPECT_NE(ErrorOf("a,b\n\"x\"y,1\n").find("line 2: unexpected text after a closing quote"),
            std::string::npos);
  EXPECT_NE(ErrorOf("a,b\n1,2\nfive\"inch,1\n").find("line 3: a quote inside an unquoted field"),
            std::string::npos);
}

TEST(Csv, NulBytesRefused) {
  std::string text("a,b\n1,2\nx\0y,3\n", 14);
  EXPECT_NE(ErrorOf(text).find("line 3: contains a NUL byte"), std::string::npos);
}

TEST(Csv, WrongEncodingsRefused) {
  // Latin-1 "é" (0xE9) on line 2.
  EXPECT_NE(ErrorOf("name\nAm\xE9lie\n").find("line 2: contains bytes that are not UTF-8"),
            std::string::npos);
  // UTF-16 LE with a byte-order mark.
  EXPECT_NE(ErrorOf(std::string("\xFF\xFEn\0a\0", 6)).find("UTF-16"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string("\xFF\xFE\0\0n\0\0\0", 8)).find("UTF-32"), std::string::npos);
  // Overlong encoding of '/', a surrogate, and a truncated sequence.
  ErrorOf("a\n\xC0\xAF\n");
  ErrorOf("a\n\xED\xA0\x80\n");
  ErrorOf("a\n\xE2\x82");
}

TEST(Csv, Limits) {
  CsvLimits l;
  l.max_field_bytes = 10;
  EXPECT_NE(ErrorOf("a\n" + std::string(11, 'x') + "\n", l).find("line 2: a field is longer"),
            std::string::npos);
  EXPECT_NE(ErrorOf("a\n\"" + std::string(11, 'x') + "\"\n", l).find("line 2"), std::string::npos);
  MustParse("a\n" + std::string(10, 'x') + "\n", l);

  CsvLimits f;
  f.max_fields = 3;
  EXPECT_NE(ErrorOf("a,b,c,d\n", f).find("line 1: more than 3 fields"), std::string::npos);

  CsvLimits r;
  r.max_rows = 2;
  EXPECT_NE(ErrorOf("a\nb\nc\n", r).find("line 3: more than 2 rows"), std::string::npos);

  CsvLimits b;
  b.max_bytes = 5;
  EXPECT_NE(ErrorOf("abcdef", b).find("over the limit"), std::string::npos);
}

TEST(Csv, HugeFieldUnderDefaultLimitIsRefusedCleanly) {
  std::string huge = "a\n\"" + std::string(1024 * 1024, 'x') + "\"\n";
  EXPECT_NE(ErrorOf(huge).find("longer than"), std::string::npos);
}

TEST(Csv, Utf8Validator) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // U+1F600
  size_t off = 99;
  EXPECT_FALSE(IsValidUtf8("ab\xF5\x80\x80\x80", &off));
  EXPECT_EQ(off, 2u);
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

}  // namespace
}  // namespace keel::store
