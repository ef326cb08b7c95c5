#include "flow/expr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/random.h"

namespace keel::flow {
namespace {

using nlohmann::json;

json Scope() {
  return json::parse(R"({
    "input": {"lead": {"score": 72, "name": "Ada", "email": "ada@example.com",
                       "tags": ["vip", "eu"], "amount": 1250.5},
              "items": [10, 20, 30], "empty": "", "zero": 0, "none": null,
              "key with space": "yes", "big": 9223372036854775807},
    "steps": {"research": {"output": {"score": 0.8, "ok": true}},
              "send-email": {"output": {"id": "m1"}}}
  })");
}

// Evaluates `text` against Scope(); fails the test on any error.
json Eval(const std::string& text, const json& scope = Scope()) {
  auto e = ParseExpr(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().ToString();
  if (!e.ok()) return json("<parse error>");
  auto v = EvalExpr(**e, scope);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  if (!v.ok()) return json("<eval error>");
  return *v;
}

// Returns the error message of parsing or evaluating `text` ("" if it succeeded).
std::string Error(const std::string& text, const json& scope = Scope()) {
  auto e = ParseExpr(text);
  if (!e.ok()) {
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << text;
    return e.status().message();
  }
  auto v = EvalExpr(**e, scope);
  if (!v.ok()) {
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << text;
    return v.status().message();
  }
  return "";
}

TEST(Expr, Literals) {
  EXPECT_EQ(Eval("42"), json(42));
  EXPECT_EQ(Eval("-7"), json(-7));
  EXPECT_EQ(Eval("2.5"), json(2.5));
  EXPECT_EQ(Eval("1e3"), json(1000.0));
  EXPECT_EQ(Eval("'single'"), json("single"));
  EXPECT_EQ(Eval("\"double\""), json("double"));
  EXPECT_EQ(Eval(R"('it\'s \"q\" \\ \n\u00e9')"), json("it's \"q\" \\ \n\xC3\xA9"));
  EXPECT_EQ(Eval("true"), json(true));
  EXPECT_EQ(Eval("false"), json(false));
  EXPECT_EQ(Eval("null"), json(nullptr));
  EXPECT_EQ(Eval("[]"), json::array());
  EXPECT_EQ(Eval("[1, 'a', [true]]"), json::parse(R"([1, "a", [true]])"));
  EXPECT_EQ(Eval("99999999999999999999"), json(1e20));  // too big for int64: a float
}

TEST(Expr, FieldAccess) {
  EXPECT_EQ(Eval("input.lead.score"), json(72));
  EXPECT_EQ(Eval("steps.research.output.score"), json(0.8));
  EXPECT_EQ(Eval("input[\"key with space\"]"), json("yes"));
  EXPECT_EQ(Eval("steps['send-email'].output.id"), json("m1"));
  EXPECT_EQ(Eval("input.items[0]"), json(10));
  EXPECT_EQ(Eval("input.items[2]"), json(30));
  EXPECT_EQ(Eval("input.items[1 + 1]"), json(30));
  EXPECT_EQ(Eval("input.lead.tags[1]"), json("eu"));
  EXPECT_EQ(Eval("input.lead"), Scope()["input"]["lead"]);
  EXPECT_EQ(Eval("[5, 6, 7][1]"), json(6));
  EXPECT_NE(Error("{'a': 1}"), "");  // no object literals
}

TEST(Expr, MissingIsNull) {
  EXPECT_EQ(Eval("nothing"), json(nullptr));
  EXPECT_EQ(Eval("input.lead.missing"), json(nullptr));
  EXPECT_EQ(Eval("input.lead.missing.deeper.still"), json(nullptr));
  EXPECT_EQ(Eval("input.lead.score.x"), json(nullptr));  // field of a number
  EXPECT_EQ(Eval("input.items[3]"), json(nullptr));
  EXPECT_EQ(Eval("input.items[-1]"), json(nullptr));
  EXPECT_EQ(Eval("input.lead[0]"), json(nullptr));  // index of an object
  EXPECT_EQ(Eval("input.items['x']"), json(nullptr));
  EXPECT_EQ(Eval("input.items[input.nope]"), json(nullptr));
  EXPECT_EQ(Eval("x.y", json::array()), json(nullptr));  // scope that is not an object
  EXPECT_EQ(Eval("input.nope == null"), json(true));
  EXPECT_EQ(Eval("input.none == null"), json(true));
}

TEST(Expr, KeywordsAsFieldNames) {
  json scope = json::parse(R"({"x": {"in": 1, "null": 2, "and": 3, "true": 4}})");
  EXPECT_EQ(Eval("x.in + x.null + x.and + x.true", scope), json(10));
}

TEST(Expr, Comparisons) {
  EXPECT_EQ(Eval("input.lead.score > 50"), json(true));
  EXPECT_EQ(Eval("input.lead.score >= 72"), json(true));
  EXPECT_EQ(Eval("input.lead.score < 72"), json(false));
  EXPECT_EQ(Eval("input.lead.score <= 71.9"), json(false));
  EXPECT_EQ(Eval("1 == 1.0"), json(true));
  EXPECT_EQ(Eval("'abc' < 'abd'"), json(true));
  EXPECT_EQ(Eval("'B' < 'a'"), json(true));  // byte order
  EXPECT_EQ(Eval("input.lead.name == 'Ada'"), json(true));
  EXPECT_EQ(Eval("input.lead.name != 'Ada'"), json(false));
  // == and != work across types: different types are simply not equal.
  EXPECT_EQ(Eval("1 == '1'"), json(false));
  EXPECT_EQ(Eval("1 != '1'"), json(true));
  EXPECT_EQ(Eval("null == false"), json(false));
  EXPECT_EQ(Eval("[1, 2] == [1, 2]"), json(true));
  EXPECT_EQ(Eval("input.lead.tags == ['vip', 'eu']"), json(true));
  EXPECT_EQ(Eval("input.big > 9223372036854775806"), json(true));
}

TEST(Expr, OrderingAcrossTypesIsAnError) {
  // A missing amount must not silently skip an approval gate: it is an error, not false.
  EXPECT_EQ(Error("input.lead.missing > 1000"), "column 20: '>' cannot take null and number");
  EXPECT_EQ(Error("'10' < 9"), "column 6: '<' cannot take string and number");
  EXPECT_EQ(Error("true >= false"), "column 6: '>=' cannot take boolean and boolean");
  EXPECT_EQ(Error("[1] < [2]"), "column 5: '<' cannot take list and list");
  // The guard pattern works thanks to short-circuit evaluation.
  EXPECT_EQ(Eval("input.lead.missing != null and input.lead.missing > 1000"), json(false));
}

TEST(Expr, Logic) {
  EXPECT_EQ(Eval("true and false"), json(false));
  EXPECT_EQ(Eval("true && true"), json(true));
  EXPECT_EQ(Eval("false or true"), json(true));
  EXPECT_EQ(Eval("false || false"), json(false));
  EXPECT_EQ(Eval("not true"), json(false));
  EXPECT_EQ(Eval("!false"), json(true));
  EXPECT_EQ(Eval("not not 1"), json(true));
  EXPECT_EQ(Eval("not input.lead.score > 80"), json(true));  // not binds looser than >
  EXPECT_EQ(Eval("true or false and false"), json(true));    // and binds tighter than or
  EXPECT_EQ(Eval("(true or false) and false"), json(false));
  // Operands use truthiness; the result is a boolean.
  EXPECT_EQ(Eval("input.lead.name and input.items"), json(true));
  EXPECT_EQ(Eval("input.empty or input.zero or input.none or []"), json(false));
  // Short circuit: the right side is not evaluated, so its error never happens.
  EXPECT_EQ(Eval("false and 1 / 0"), json(false));
  EXPECT_EQ(Eval("true or 1 / 0"), json(true));
}

TEST(Expr, Membership) {
  EXPECT_EQ(Eval("'vip' in input.lead.tags"), json(true));
  EXPECT_EQ(Eval("'us' in input.lead.tags"), json(false));
  EXPECT_EQ(Eval("'us' not in input.lead.tags"), json(true));
  EXPECT_EQ(Eval("20 in input.items"), json(true));
  EXPECT_EQ(Eval("20.0 in input.items"), json(true));
  EXPECT_EQ(Eval("'example.com' in input.lead.email"), json(true));  // substring
  EXPECT_EQ(Eval("'lead' in input"), json(true));                    // object key
  EXPECT_EQ(Eval("contains(input.lead.tags, 'eu')"), json(true));
  EXPECT_EQ(Eval("contains('abc', 'bc')"), json(true));
  EXPECT_EQ(Error("1 in 'abc'"), "column 3: 'in' cannot take number and string");
  EXPECT_EQ(Error("'a' in input.nope"), "column 5: 'in' cannot take string and null");
}

TEST(Expr, Arithmetic) {
  EXPECT_EQ(Eval("1 + 2 * 3"), json(7));
  EXPECT_EQ(Eval("(1 + 2) * 3"), json(9));
  EXPECT_EQ(Eval("10 - 2 - 3"), json(5));  // left associative
  EXPECT_EQ(Eval("10 / 4"), json(2.5));
  EXPECT_EQ(Eval("10 / 5"), json(2));
  EXPECT_EQ(Eval("7 % 3"), json(1));
  EXPECT_EQ(Eval("-input.lead.score"), json(-72));
  EXPECT_EQ(Eval("- -3"), json(3));
  EXPECT_EQ(Eval("input.lead.amount * 2"), json(2501.0));
  EXPECT_EQ(Eval("input.big + 1"), json(9223372036854775808.0));  // overflow: a float
  EXPECT_EQ(Error("1 / 0"), "column 3: division by zero");
  EXPECT_EQ(Error("1.5 / 0.0"), "column 5: division by zero");
  EXPECT_EQ(Error("5 % 0"), "column 3: modulo by zero");
  EXPECT_EQ(Error("5.5 % 2"), "column 5: '%' needs whole numbers");
  EXPECT_EQ(Error("'a' + 'b'"), "column 5: '+' cannot take string and string");
  EXPECT_EQ(Error("input.none * 2"), "column 12: '*' cannot take null and number");
  EXPECT_EQ(Error("-'x'"), "column 1: unary '-' cannot take string");
  EXPECT_EQ(Error("1e308 * 10"), "column 7: result of '*' is not a finite number");
}

TEST(Expr, Functions) {
  EXPECT_EQ(Eval("len(input.items)"), json(3));
  EXPECT_EQ(Eval("len('h\u00e9')"), json(2));  // code points, not bytes
  EXPECT_EQ(Eval("len(input.lead)"), json(5));
  EXPECT_EQ(Eval("len(input.nope)"), json(0));
  EXPECT_EQ(Eval("lower('MiXeD')"), json("mixed"));
  EXPECT_EQ(Eval("upper(input.lead.name)"), json("ADA"));
  EXPECT_EQ(Eval("trim('  x y \n')"), json("x y"));
  EXPECT_EQ(Eval("starts_with(input.lead.email, 'ada@')"), json(true));
  EXPECT_EQ(Eval("ends_with(input.lead.email, '.org')"), json(false));
  EXPECT_EQ(Eval("default(input.nope, 'fallback')"), json("fallback"));
  EXPECT_EQ(Eval("default(input.zero, 5)"), json(0));
  EXPECT_EQ(Eval("default(input.lead, 1).name"), json("Ada"));
  EXPECT_EQ(Eval("string(12) == '12'"), json(true));
  EXPECT_EQ(Eval("number('12.5') + 1"), json(13.5));
  EXPECT_EQ(Error("len(5)"), "column 1: len() needs a string, list or object, got number");
  EXPECT_EQ(Error("number('12abc')"), "column 1: number() cannot read \"12abc\" as a number");
  EXPECT_EQ(Error("lower(null)"), "column 1: lower() needs a string, got null");
  EXPECT_EQ(Error("starts_with(1, 'a')"),
            "column 1: starts_with() needs two strings, got number and string");
}

TEST(Expr, SyntaxErrorsNameTheColumn) {
  EXPECT_EQ(Error(""), "column 1: unexpected end of expression");
  EXPECT_EQ(Error("1 +"), "column 4: unexpected end of expression");
  EXPECT_EQ(Error("a = 1"), "column 3: '=' is not an operator; use '==' to compare");
  EXPECT_EQ(Error("a & b"), "column 3: '&' is not an operator; use 'and' or '&&'");
  EXPECT_EQ(Error("(1 + 2"), "column 7: expected ')', found end of expression");
  EXPECT_EQ(Error("'abc"), "column 1: unterminated string");
  EXPECT_EQ(Error("a.1"),
            "column 3: expected a field name after '.', found a number (use "
            "[\"...\"] for other keys, [0] for indexes)");
  EXPECT_EQ(Error("1 < 2 < 3"), "column 7: comparisons cannot be chained; join them with 'and'");
  EXPECT_EQ(Error("system('rm -rf /')"),
            "column 1: unknown function 'system' (known: len, lower, upper, trim, contains, "
            "starts_with, ends_with, default, string, number)");
  EXPECT_EQ(Error("len(1, 2)"), "column 1: len() takes 1 argument, got 2");
  EXPECT_EQ(Error("input.x(1)"), "column 8: only the built-in functions can be called");
  EXPECT_EQ(Error("a b"), "column 3: unexpected a name; expected an operator or the end");
  EXPECT_EQ(Error("1 # 2"), "column 3: unexpected character '#'");
  EXPECT_EQ(Error("\x01"), "column 1: unexpected character byte 0x01");
  EXPECT_EQ(Error("12abc"), "column 3: unexpected character after number");
  EXPECT_EQ(Error("'\\q'"), "column 2: unknown escape \\q");
  EXPECT_EQ(Error("'\\ud800'"), "column 2: \\u escapes of surrogates are not supported");
  EXPECT_EQ(Error("1e"), "column 2: malformed number exponent");
  EXPECT_EQ(Error("[1, 2"), "column 6: expected ',' or ']', found end of expression");
  EXPECT_EQ(Error("input.items[1.5]"),
            "column 12: an index must be a string or a whole number, not a fraction");
  EXPECT_EQ(Error("input.items[true]"),
            "column 12: an index must be a string or a whole number, not boolean");
}

TEST(Expr, Limits) {
  // Length.
  std::string long_text(kMaxExprBytes, ' ');
  long_text[0] = '1';
  EXPECT_EQ(Eval(long_text), json(1));
  EXPECT_EQ(Error(long_text + " "), "column 4097: expression longer than 4096 bytes");
  // Nesting: 64 levels pass, 65 do not, whichever way they nest.
  auto nested = [](int n, const std::string& open, const std::string& close) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += "1";
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  EXPECT_EQ(Eval(nested(64, "(", ")")), json(1));
  EXPECT_EQ(Error(nested(65, "(", ")")), "column 65: nested too deeply (limit 64)");
  EXPECT_EQ(Eval(nested(64, "[", "]")), Eval(nested(64, "[", "]")));
  EXPECT_NE(Error(nested(65, "[", "]")), "");
  EXPECT_NE(Error(nested(65, "-", "")), "");
  EXPECT_NE(Error(nested(65, "not ", "")), "");
  EXPECT_NE(Error(nested(65, "len(", ")")), "");
  EXPECT_NE(Error(nested(65, "x[", "]")), "");
  EXPECT_NE(Error(nested(2000, "(", ")")), "");  // fails fast, without deep recursion
  // Long operator chains are fine up to 256 deep, then refused rather than recursing.
  std::string chain = "1";
  for (int i = 0; i < 200; ++i) chain += "+1";
  EXPECT_EQ(Eval(chain), json(201));
  std::string longer = "1";
  for (int i = 0; i < 1000; ++i) longer += "+1";
  EXPECT_NE(Error(longer).find("too complex"), std::string::npos);
  std::string fields = "input";
  for (int i = 0; i < 300; ++i) fields += ".a";
  EXPECT_NE(Error(fields).find("too complex"), std::string::npos);
}

TEST(Expr, Condition) {
  auto cond = [](const std::string& text) {
    auto e = ParseExpr(text);
    EXPECT_TRUE(e.ok());
    auto r = EvalCondition(**e, Scope());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  };
  EXPECT_TRUE(cond("input.lead.score > 50 and 'vip' in input.lead.tags"));
  EXPECT_FALSE(cond("input.lead.score > 80"));
  EXPECT_FALSE(cond("input.none"));
  EXPECT_FALSE(cond("input.empty"));
  EXPECT_FALSE(cond("input.zero"));
  EXPECT_FALSE(cond("[]"));
  EXPECT_TRUE(cond("input.items"));
  EXPECT_TRUE(cond("'0'"));  // a non-empty string is true, whatever it says
  EXPECT_TRUE(cond("steps.research.output.ok"));
  auto e = ParseExpr("1 / 0");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(EvalCondition(**e, Scope()).ok());
}

TEST(Expr, SharedAcrossThreads) {
  auto e = ParseExpr("input.lead.score * 2 + len(input.items) > 100 and 'vip' in input.lead.tags");
  ASSERT_TRUE(e.ok());
  std::shared_ptr<const Expr> expr = *e;
  json scope = Scope();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto r = EvalCondition(*expr, scope);
        if (r.ok() && *r) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 8000);
  EXPECT_EQ(expr->text(),
            "input.lead.score * 2 + len(input.items) > 100 and 'vip' in input.lead.tags");
}

// Builds a random expression from the grammar (with random mistakes mixed in when
// `sloppy`), so that many inputs parse and reach the evaluator.
std::string RandomExpr(Random& rnd, int depth, bool sloppy) {
  static const char* kLeaves[] = {"input",
                                  "input.lead.score",
                                  "input.items",
                                  "input.none",
                                  "steps.research.output",
                                  "input.lead.tags",
                                  "0",
                                  "1",
                                  "-3",
                                  "2.5",
                                  "1e308",
                                  "'x'",
                                  "\"vip\"",
                                  "''",
                                  "null",
                                  "true",
                                  "false",
                                  "[]",
                                  "9223372036854775807",
                                  "input.big"};
  static const char* kBinary[] = {" + ",  " - ",  " * ",      " / ",  " % ",
                                  " == ", " != ", " < ",      " >= ", " and ",
                                  " or ", " in ", " not in ", " && ", " || "};
  static const char* kJunk[] = {"(", ")", "[", "]", ",", ".", "'", "\\", "=", "&", "#", "$"};
  auto pick = [&](size_t n) { return static_cast<size_t>(rnd.Next64() % n); };
  std::string out;
  if (depth <= 0 || pick(3) == 0) {
    out = kLeaves[pick(std::size(kLeaves))];
  } else {
    switch (pick(7)) {
      case 0:
      case 1:
        out = RandomExpr(rnd, depth - 1, sloppy) + kBinary[pick(std::size(kBinary))] +
              RandomExpr(rnd, depth - 1, sloppy);
        break;
      case 2:
        out = "(" + RandomExpr(rnd, depth - 1, sloppy) + ")";
        break;
      case 3:
        out = (pick(2) ? "not " : "-") + RandomExpr(rnd, depth - 1, sloppy);
        break;
      case 4:
        out = RandomExpr(rnd, depth - 1, sloppy) + "[" + RandomExpr(rnd, depth - 1, sloppy) + "]";
        break;
      case 5: {
        static const char* kFns[] = {"len(",    "lower(",  "default(",    "contains(",
                                     "number(", "string(", "starts_with("};
        const char* fn = kFns[pick(std::size(kFns))];
        bool two = std::string(fn) == "default(" || std::string(fn) == "contains(" ||
                   std::string(fn) == "starts_with(";
        out = std::string(fn) + RandomExpr(rnd, depth - 1, sloppy) +
              (two ? ", " + RandomExpr(rnd, depth - 1, sloppy) : "") + ")";
        break;
      }
      default:
        out = "[" + RandomExpr(rnd, depth - 1, sloppy) + ", " + RandomExpr(rnd, depth - 1, sloppy) +
              "]";
    }
  }
  if (sloppy && pick(8) == 0) out.insert(pick(out.size() + 1), kJunk[pick(std::size(kJunk))]);
  return out;
}

// Random input never crashes, hangs or throws: it parses (and evaluates) or returns
// InvalidArgument "column N: ...". A third of the inputs are random bytes, the rest random
// expressions from the grammar, some with mistakes mixed in.
TEST(Expr, RandomGarbageNeverCrashes) {
  SeededRandom rnd(4242);
  json scope = Scope();
  int parsed = 0, evaluated = 0, eval_errors = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string text;
    if (i % 3 == 0) {
      size_t len = rnd.Next64() % 40;
      for (size_t k = 0; k < len; ++k) text.push_back(static_cast<char>(rnd.Next64() % 256));
    } else {
      text = RandomExpr(rnd, 5, i % 3 == 2);
    }
    auto e = ParseExpr(text);
    if (!e.ok()) {
      ASSERT_EQ(e.status().code(), StatusCode::kInvalidArgument) << text;
      ASSERT_EQ(e.status().message().rfind("column ", 0), 0u) << e.status().message();
      continue;
    }
    ++parsed;
    auto v = EvalExpr(**e, scope);
    if (v.ok()) {
      ++evaluated;
      (void)v->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      ++eval_errors;
      ASSERT_EQ(v.status().code(), StatusCode::kInvalidArgument)
          << text << ": " << v.status().ToString();
      ASSERT_EQ(v.status().message().rfind("column ", 0), 0u) << v.status().message();
    }
    auto r = RenderTemplate(json("${" + text + "} and ${" + text + "}"), scope);
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
  // The generator must exercise both the evaluator's results and its errors.
  EXPECT_GT(parsed, 2000);
  EXPECT_GT(evaluated, 1000);
  EXPECT_GT(eval_errors, 500);
}

TEST(Template, WholeStringKeepsType) {
  json params = json::parse(R"({
    "score": "${input.lead.score}",
    "tags": "${input.lead.tags}",
    "ok": "${steps.research.output.ok}",
    "missing": "${input.nope}",
    "nested": {"list": ["${input.items[1]}", 3, true, null]}
  })");
  auto r = RenderTemplate(params, Scope());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["score"], json(72));
  EXPECT_EQ((*r)["tags"], json::parse(R"(["vip", "eu"])"));
  EXPECT_EQ((*r)["ok"], json(true));
  EXPECT_EQ((*r)["missing"], json(nullptr));
  EXPECT_EQ((*r)["nested"], json::parse(R"({"list": [20, 3, true, null]})"));
}

TEST(Template, InterpolationRendersStrings) {
  json params = json::parse(R"({
    "subject": "Hello ${input.lead.name}, score ${input.lead.score}",
    "body": "${input.lead.tags} / ${input.nope} / ${1 / 2} / ${true}",
    "brace": "${'}' + ''}",
    "literal": "costs $5, written $${x}",
    "quote": "${input.lead.name == 'Ada' and '}' == '}'}!",
    "${input.lead.name}": "keys are left alone"
  })");
  json scope = Scope();
  auto r = RenderTemplate(params, scope);
  ASSERT_FALSE(r.ok());  // '}' + '' is string concatenation, which is not supported
  params.erase("brace");
  r = RenderTemplate(params, scope);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["subject"], json("Hello Ada, score 72"));
  EXPECT_EQ((*r)["body"], json(R"(["vip","eu"] /  / 0.5 / true)"));
  EXPECT_EQ((*r)["literal"], json("costs $5, written ${x}"));
  EXPECT_EQ((*r)["quote"], json("true!"));
  EXPECT_EQ((*r)["${input.lead.name}"], json("keys are left alone"));
  EXPECT_EQ(*RenderTemplate(json("${'a}b'}"), scope), json("a}b"));
  EXPECT_EQ(*RenderTemplate(json(42), scope), json(42));
  EXPECT_EQ(*RenderTemplate(json("no placeholders"), scope), json("no placeholders"));
}

TEST(Template, ErrorsNameParameterAndColumn) {
  json scope = Scope();
  auto r = RenderTemplate(json::parse(R"({"to": {"lines": ["ok", "x ${1 +}"]}})"), scope);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "to.lines[1]: column 8: unexpected end of expression");
  r = RenderTemplate(json::parse(R"({"n": "${input.lead.name > 3}"})"), scope);
  EXPECT_EQ(r.status().message(), "n: column 19: '>' cannot take string and number");
  r = RenderTemplate(json::parse(R"({"n": "abc ${input"})"), scope);
  EXPECT_EQ(r.status().message(), "n: column 5: '${' without a closing '}'");
  r = RenderTemplate(json("${}"), scope);
  EXPECT_EQ(r.status().message(), "column 3: unexpected end of expression");

  EXPECT_TRUE(ValidateTemplate(json::parse(R"({"a": "${input.x > 3}", "b": [1, "${y}"]})")).ok());
  Status s = ValidateTemplate(json::parse(R"({"a": ["${nope(1)}"]})"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("a[0]: column 3: unknown function 'nope'", 0), 0u) << s.message();
}

}  // namespace
}  // namespace keel::flow
