#include "flow/expr.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::flow {

using nlohmann::json;

namespace {

// Deeper operator trees (long chains like a and b and c ...) are refused so that evaluating
// and destroying a tree never recurses more than this, whatever the caller's stack size.
constexpr int kMaxTreeDepth = 256;

enum class Kind : uint8_t { kLiteral, kName, kMember, kIndex, kList, kUnary, kBinary, kCall };

enum class Op : uint8_t {
  kNone,
  kNeg,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
};

enum class Fn : uint8_t {
  kNone,
  kLen,
  kLower,
  kUpper,
  kTrim,
  kContains,
  kStartsWith,
  kEndsWith,
  kDefault,
  kString,
  kNumber,
};

struct FnInfo {
  std::string_view name;
  Fn fn;
  int arity;
};
constexpr FnInfo kFunctions[] = {
    {"len", Fn::kLen, 1},
    {"lower", Fn::kLower, 1},
    {"upper", Fn::kUpper, 1},
    {"trim", Fn::kTrim, 1},
    {"contains", Fn::kContains, 2},
    {"starts_with", Fn::kStartsWith, 2},
    {"ends_with", Fn::kEndsWith, 2},
    {"default", Fn::kDefault, 2},
    {"string", Fn::kString, 1},
    {"number", Fn::kNumber, 1},
};

std::string_view OpText(Op op) {
  switch (op) {
    case Op::kNeg:
      return "-";
    case Op::kNot:
      return "not";
    case Op::kAnd:
      return "and";
    case Op::kOr:
      return "or";
    case Op::kEq:
      return "==";
    case Op::kNe:
      return "!=";
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kIn:
      return "in";
    case Op::kNotIn:
      return "not in";
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kMod:
      return "%";
    case Op::kNone:
      break;
  }
  return "?";
}

}  // namespace

struct Node {
  Kind kind = Kind::kLiteral;
  Op op = Op::kNone;
  Fn fn = Fn::kNone;
  int column = 1;
  int depth = 1;
  json literal;      // kLiteral
  std::string name;  // kName, kMember; the function name for kCall
  std::vector<int> kids;
};

struct Expr::Tree {
  std::vector<Node> nodes;  // children before parents; no recursion needed to destroy
  int root = -1;
};

Expr::Expr(std::string text, std::unique_ptr<const Tree> tree)
    : text_(std::move(text)), tree_(std::move(tree)) {}
Expr::~Expr() = default;

namespace {

Status ErrorAt(int column, std::string_view what) {
  return InvalidArgument("column " + std::to_string(column) + ": " + std::string(what));
}

// ---------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t {
  kEnd,
  kNumber,
  kString,
  kIdent,
  kTrue,
  kFalse,
  kNull,
  kAnd,
  kOr,
  kNot,
  kIn,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
};

struct Token {
  Tok tok = Tok::kEnd;
  int column = 1;
  std::string text;  // identifier name or decoded string
  json number;
};

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || IsDigit(c);
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

Status Lex(std::string_view s, std::vector<Token>* out) {
  size_t i = 0;
  auto col = [](size_t pos) { return static_cast<int>(pos) + 1; };
  while (true) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    Token t;
    t.column = col(i);
    if (i >= s.size()) {
      out->push_back(std::move(t));
      return OkStatus();
    }
    char c = s[i];
    char n = i + 1 < s.size() ? s[i + 1] : '\0';
    if (IsDigit(c)) {
      size_t start = i;
      bool is_float = false;
      while (i < s.size() && IsDigit(s[i])) ++i;
      if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
        is_float = true;
        ++i;
        while (i < s.size() && IsDigit(s[i])) ++i;
      }
      if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        if (j >= s.size() || !IsDigit(s[j])) return ErrorAt(col(i), "malformed number exponent");
        while (j < s.size() && IsDigit(s[j])) ++j;
        i = j;
        is_float = true;
      }
      if (i < s.size() && IsIdentStart(s[i])) {
        return ErrorAt(col(i), "unexpected character after number");
      }
      std::string_view digits = s.substr(start, i - start);
      int64_t iv = 0;
      auto r = std::from_chars(digits.data(), digits.data() + digits.size(), iv);
      if (!is_float && r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
        t.number = iv;
      } else {
        double dv = 0;
        auto rd = std::from_chars(digits.data(), digits.data() + digits.size(), dv);
        if (rd.ec != std::errc() || !std::isfinite(dv)) {
          return ErrorAt(t.column, "number out of range");
        }
        t.number = dv;
      }
      t.tok = Tok::kNumber;
      out->push_back(std::move(t));
      continue;
    }
    if (IsIdentStart(c)) {
      size_t start = i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      std::string_view w = s.substr(start, i - start);
      t.text = std::string(w);
      if (w == "true")
        t.tok = Tok::kTrue;
      else if (w == "false")
        t.tok = Tok::kFalse;
      else if (w == "null")
        t.tok = Tok::kNull;
      else if (w == "and")
        t.tok = Tok::kAnd;
      else if (w == "or")
        t.tok = Tok::kOr;
      else if (w == "not")
        t.tok = Tok::kNot;
      else if (w == "in")
        t.tok = Tok::kIn;
      else
        t.tok = Tok::kIdent;
      out->push_back(std::move(t));
      continue;
    }
    if (c == '\'' || c == '"') {
      char quote = c;
      ++i;
      while (true) {
        if (i >= s.size()) return ErrorAt(t.column, "unterminated string");
        char d = s[i];
        if (d == quote) {
          ++i;
          break;
        }
        if (d != '\\') {
          t.text.push_back(d);
          ++i;
          continue;
        }
        if (i + 1 >= s.size()) return ErrorAt(t.column, "unterminated string");
        char e = s[i + 1];
        switch (e) {
          case '\\':
            t.text.push_back('\\');
            break;
          case '\'':
            t.text.push_back('\'');
            break;
          case '"':
            t.text.push_back('"');
            break;
          case 'n':
            t.text.push_back('\n');
            break;
          case 't':
            t.text.push_back('\t');
            break;
          case 'r':
            t.text.push_back('\r');
            break;
          case 'u': {
            uint32_t cp = 0;
            if (i + 6 > s.size()) return ErrorAt(col(i), "\\u needs four hex digits");
            for (size_t k = i + 2; k < i + 6; ++k) {
              char h = s[k];
              int v = IsDigit(h)               ? h - '0'
                      : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                      : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                               : -1;
              if (v < 0) return ErrorAt(col(i), "\\u needs four hex digits");
              cp = cp * 16 + static_cast<uint32_t>(v);
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) {
              return ErrorAt(col(i), "\\u escapes of surrogates are not supported");
            }
            AppendUtf8(&t.text, cp);
            i += 4;
            break;
          }
          default:
            return ErrorAt(col(i), "unknown escape \\" + std::string(1, e));
        }
        i += 2;
      }
      t.tok = Tok::kString;
      out->push_back(std::move(t));
      continue;
    }
    auto two = [&](Tok tok) {
      t.tok = tok;
      i += 2;
    };
    auto one = [&](Tok tok) {
      t.tok = tok;
      i += 1;
    };
    switch (c) {
      case '(':
        one(Tok::kLParen);
        break;
      case ')':
        one(Tok::kRParen);
        break;
      case '[':
        one(Tok::kLBracket);
        break;
      case ']':
        one(Tok::kRBracket);
        break;
      case ',':
        one(Tok::kComma);
        break;
      case '.':
        one(Tok::kDot);
        break;
      case '+':
        one(Tok::kPlus);
        break;
      case '-':
        one(Tok::kMinus);
        break;
      case '*':
        one(Tok::kStar);
        break;
      case '/':
        one(Tok::kSlash);
        break;
      case '%':
        one(Tok::kPercent);
        break;
      case '=':
        if (n != '=') return ErrorAt(t.column, "'=' is not an operator; use '==' to compare");
        two(Tok::kEq);
        break;
      case '!':
        if (n == '=')
          two(Tok::kNe);
        else
          one(Tok::kNot);
        break;
      case '<':
        if (n == '=')
          two(Tok::kLe);
        else
          one(Tok::kLt);
        break;
      case '>':
        if (n == '=')
          two(Tok::kGe);
        else
          one(Tok::kGt);
        break;
      case '&':
        if (n != '&') return ErrorAt(t.column, "'&' is not an operator; use 'and' or '&&'");
        two(Tok::kAnd);
        break;
      case '|':
        if (n != '|') return ErrorAt(t.column, "'|' is not an operator; use 'or' or '||'");
        two(Tok::kOr);
        break;
      default: {
        unsigned char u = static_cast<unsigned char>(c);
        std::string shown =
            (u >= 0x20 && u < 0x7F) ? "'" + std::string(1, c) + "'" : "byte 0x" + [u] {
              const char* hex = "0123456789abcdef";
              return std::string{hex[u >> 4], hex[u & 15]};
            }();
        return ErrorAt(t.column, "unexpected character " + shown);
      }
    }
    out->push_back(std::move(t));
  }
}

std::string_view TokName(const Token& t) {
  switch (t.tok) {
    case Tok::kEnd:
      return "end of expression";
    case Tok::kNumber:
      return "a number";
    case Tok::kString:
      return "a string";
    case Tok::kIdent:
      return "a name";
    case Tok::kRParen:
      return "')'";
    case Tok::kRBracket:
      return "']'";
    case Tok::kComma:
      return "','";
    case Tok::kDot:
      return "'.'";
    default:
      return "an operator";
  }
}

// ---------------------------------------------------------------------------------------
// Parser: recursive descent, one function per precedence level (lowest first):
//   or, and, not, comparison (non-associative), + -, * / %, unary -, postfix . [] (), primary.

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Result<Expr::Tree> Parse() {
    KEEL_ASSIGN_OR_RETURN(int root, ParseOr());
    if (Peek().tok != Tok::kEnd) {
      return ErrorAt(Peek().column, "unexpected " + std::string(TokName(Peek())) +
                                        "; expected an operator or the end");
    }
    tree_.root = root;
    return std::move(tree_);
  }

 private:
  // Counts nesting (parentheses, brackets, calls, unary operators) so that hostile input
  // cannot recurse the parser deeper than kMaxExprDepth levels.
  class Nest {
   public:
    explicit Nest(Parser* p) : p_(p) { ++p_->depth_; }
    ~Nest() { --p_->depth_; }
    Status Check(int column) const {
      if (p_->depth_ > kMaxExprDepth) {
        return ErrorAt(column, "nested too deeply (limit " + std::to_string(kMaxExprDepth) + ")");
      }
      return OkStatus();
    }

   private:
    Parser* p_;
  };

  const Token& Peek(size_t ahead = 0) const {
    size_t k = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[k];
  }
  Token Take() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }

  Result<int> Add(Node n) {
    int depth = 1;
    for (int k : n.kids) depth = std::max(depth, tree_.nodes[k].depth + 1);
    if (depth > kMaxTreeDepth) {
      return ErrorAt(n.column, "expression too complex (more than " +
                                   std::to_string(kMaxTreeDepth) + " operators deep); split it");
    }
    n.depth = depth;
    tree_.nodes.push_back(std::move(n));
    return static_cast<int>(tree_.nodes.size() - 1);
  }
  Result<int> Binary(Op op, int column, int a, int b) {
    Node n;
    n.kind = Kind::kBinary;
    n.op = op;
    n.column = column;
    n.kids = {a, b};
    return Add(std::move(n));
  }

  Status Expect(Tok tok, std::string_view what) {
    if (Peek().tok != tok) {
      return ErrorAt(Peek().column,
                     "expected " + std::string(what) + ", found " + std::string(TokName(Peek())));
    }
    Take();
    return OkStatus();
  }

  Result<int> ParseOr() {
    KEEL_ASSIGN_OR_RETURN(int left, ParseAnd());
    while (Peek().tok == Tok::kOr) {
      int column = Take().column;
      KEEL_ASSIGN_OR_RETURN(int right, ParseAnd());
      KEEL_ASSIGN_OR_RETURN(left, Binary(Op::kOr, column, left, right));
    }
    return left;
  }

  Result<int> ParseAnd() {
    KEEL_ASSIGN_OR_RETURN(int left, ParseNot());
    while (Peek().tok == Tok::kAnd) {
      int column = Take().column;
      KEEL_ASSIGN_OR_RETURN(int right, ParseNot());
      KEEL_ASSIGN_OR_RETURN(left, Binary(Op::kAnd, column, left, right));
    }
    return left;
  }

  Result<int> ParseNot() {
    if (Peek().tok != Tok::kNot) return ParseComparison();
    int column = Take().column;
    Nest nest(this);
    KEEL_RETURN_IF_ERROR(nest.Check(column));
    KEEL_ASSIGN_OR_RETURN(int operand, ParseNot());
    Node n;
    n.kind = Kind::kUnary;
    n.op = Op::kNot;
    n.column = column;
    n.kids = {operand};
    return Add(std::move(n));
  }

  std::optional<Op> ComparisonOp() const {
    switch (Peek().tok) {
      case Tok::kEq:
        return Op::kEq;
      case Tok::kNe:
        return Op::kNe;
      case Tok::kLt:
        return Op::kLt;
      case Tok::kLe:
        return Op::kLe;
      case Tok::kGt:
        return Op::kGt;
      case Tok::kGe:
        return Op::kGe;
      case Tok::kIn:
        return Op::kIn;
      case Tok::kNot:
        if (Peek(1).tok == Tok::kIn) return Op::kNotIn;
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  Result<int> ParseComparison() {
    KEEL_ASSIGN_OR_RETURN(int left, ParseAdditive());
    std::optional<Op> op = ComparisonOp();
    if (!op) return left;
    int column = Take().column;
    if (*op == Op::kNotIn) Take();
    KEEL_ASSIGN_OR_RETURN(int right, ParseAdditive());
    if (ComparisonOp()) {
      return ErrorAt(Peek().column, "comparisons cannot be chained; join them with 'and'");
    }
    return Binary(*op, column, left, right);
  }

  Result<int> ParseAdditive() {
    KEEL_ASSIGN_OR_RETURN(int left, ParseMultiplicative());
    while (Peek().tok == Tok::kPlus || Peek().tok == Tok::kMinus) {
      Token t = Take();
      KEEL_ASSIGN_OR_RETURN(int right, ParseMultiplicative());
      KEEL_ASSIGN_OR_RETURN(
          left, Binary(t.tok == Tok::kPlus ? Op::kAdd : Op::kSub, t.column, left, right));
    }
    return left;
  }

  Result<int> ParseMultiplicative() {
    KEEL_ASSIGN_OR_RETURN(int left, ParseUnary());
    while (Peek().tok == Tok::kStar || Peek().tok == Tok::kSlash || Peek().tok == Tok::kPercent) {
      Token t = Take();
      Op op = t.tok == Tok::kStar ? Op::kMul : t.tok == Tok::kSlash ? Op::kDiv : Op::kMod;
      KEEL_ASSIGN_OR_RETURN(int right, ParseUnary());
      KEEL_ASSIGN_OR_RETURN(left, Binary(op, t.column, left, right));
    }
    return left;
  }

  Result<int> ParseUnary() {
    if (Peek().tok != Tok::kMinus) return ParsePostfix();
    int column = Take().column;
    Nest nest(this);
    KEEL_RETURN_IF_ERROR(nest.Check(column));
    KEEL_ASSIGN_OR_RETURN(int operand, ParseUnary());
    Node n;
    n.kind = Kind::kUnary;
    n.op = Op::kNeg;
    n.column = column;
    n.kids = {operand};
    return Add(std::move(n));
  }

  Result<int> ParsePostfix() {
    KEEL_ASSIGN_OR_RETURN(int base, ParsePrimary());
    while (true) {
      if (Peek().tok == Tok::kDot) {
        int column = Take().column;
        const Token& name = Peek();
        // After a dot any word is a field name, keywords included (`x.in`, `x.null`).
        bool word = name.tok == Tok::kIdent || name.tok == Tok::kTrue || name.tok == Tok::kFalse ||
                    name.tok == Tok::kNull || name.tok == Tok::kAnd || name.tok == Tok::kOr ||
                    name.tok == Tok::kNot || name.tok == Tok::kIn;
        if (!word) {
          return ErrorAt(name.column, "expected a field name after '.', found " +
                                          std::string(TokName(name)) +
                                          " (use [\"...\"] for other keys, [0] for indexes)");
        }
        Node n;
        n.kind = Kind::kMember;
        n.column = column;
        n.name = Take().text;
        n.kids = {base};
        KEEL_ASSIGN_OR_RETURN(base, Add(std::move(n)));
      } else if (Peek().tok == Tok::kLBracket) {
        int column = Take().column;
        Nest nest(this);
        KEEL_RETURN_IF_ERROR(nest.Check(column));
        KEEL_ASSIGN_OR_RETURN(int index, ParseOr());
        KEEL_RETURN_IF_ERROR(Expect(Tok::kRBracket, "']'"));
        Node n;
        n.kind = Kind::kIndex;
        n.column = column;
        n.kids = {base, index};
        KEEL_ASSIGN_OR_RETURN(base, Add(std::move(n)));
      } else if (Peek().tok == Tok::kLParen) {
        return ErrorAt(Peek().column, "only the built-in functions can be called");
      } else {
        return base;
      }
    }
  }

  Result<int> ParsePrimary() {
    const Token& t = Peek();
    Node n;
    n.column = t.column;
    switch (t.tok) {
      case Tok::kNumber:
        n.literal = t.number;
        Take();
        return Add(std::move(n));
      case Tok::kString:
        n.literal = t.text;
        Take();
        return Add(std::move(n));
      case Tok::kTrue:
      case Tok::kFalse:
        n.literal = t.tok == Tok::kTrue;
        Take();
        return Add(std::move(n));
      case Tok::kNull:
        n.literal = nullptr;
        Take();
        return Add(std::move(n));
      case Tok::kLParen: {
        Take();
        Nest nest(this);
        KEEL_RETURN_IF_ERROR(nest.Check(n.column));
        KEEL_ASSIGN_OR_RETURN(int inner, ParseOr());
        KEEL_RETURN_IF_ERROR(Expect(Tok::kRParen, "')'"));
        return inner;
      }
      case Tok::kLBracket: {
        Take();
        Nest nest(this);
        KEEL_RETURN_IF_ERROR(nest.Check(n.column));
        n.kind = Kind::kList;
        if (Peek().tok != Tok::kRBracket) {
          while (true) {
            KEEL_ASSIGN_OR_RETURN(int item, ParseOr());
            n.kids.push_back(item);
            if (Peek().tok != Tok::kComma) break;
            Take();
          }
        }
        KEEL_RETURN_IF_ERROR(Expect(Tok::kRBracket, "',' or ']'"));
        return Add(std::move(n));
      }
      case Tok::kIdent: {
        Token name = Take();
        if (Peek().tok != Tok::kLParen) {
          n.kind = Kind::kName;
          n.name = name.text;
          return Add(std::move(n));
        }
        const FnInfo* info = nullptr;
        for (const FnInfo& f : kFunctions) {
          if (f.name == name.text) info = &f;
        }
        if (!info) {
          return ErrorAt(name.column, "unknown function '" + name.text +
                                          "' (known: len, lower, upper, trim, contains, "
                                          "starts_with, ends_with, default, string, number)");
        }
        Take();  // (
        Nest nest(this);
        KEEL_RETURN_IF_ERROR(nest.Check(n.column));
        n.kind = Kind::kCall;
        n.fn = info->fn;
        n.name = name.text;
        if (Peek().tok != Tok::kRParen) {
          while (true) {
            KEEL_ASSIGN_OR_RETURN(int arg, ParseOr());
            n.kids.push_back(arg);
            if (Peek().tok != Tok::kComma) break;
            Take();
          }
        }
        KEEL_RETURN_IF_ERROR(Expect(Tok::kRParen, "',' or ')'"));
        if (static_cast<int>(n.kids.size()) != info->arity) {
          return ErrorAt(name.column, name.text + "() takes " + std::to_string(info->arity) +
                                          (info->arity == 1 ? " argument" : " arguments") +
                                          ", got " + std::to_string(n.kids.size()));
        }
        return Add(std::move(n));
      }
      case Tok::kEnd:
        return ErrorAt(t.column, "unexpected end of expression");
      default:
        return ErrorAt(t.column, "unexpected " + std::string(TokName(t)) + "; expected a value");
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  Expr::Tree tree_;
};

// ---------------------------------------------------------------------------------------
// Evaluation

const json& NullJson() {
  static const json kNull;
  return kNull;
}

// A value borrowed from the scope (no copy for `input.lead.score`) or owned (computed).
struct Val {
  const json* ref = nullptr;
  json own;
  const json& get() const { return ref ? *ref : own; }
  static Val Borrow(const json& j) { return Val{&j, json()}; }
  static Val Own(json j) { return Val{nullptr, std::move(j)}; }
};

std::string_view TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "list";
    case json::value_t::object:
      return "object";
    default:
      return "value";
  }
}

bool IsInt(const json& j) {
  if (j.is_number_unsigned()) {
    return j.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  return j.is_number_integer();
}

Status TypeError(const Node& n, const json& a, const json& b) {
  return ErrorAt(n.column, "'" + std::string(OpText(n.op)) + "' cannot take " +
                               std::string(TypeName(a)) + " and " + std::string(TypeName(b)));
}

Result<json> FiniteNumber(const Node& n, double v) {
  if (!std::isfinite(v))
    return ErrorAt(n.column,
                   "result of '" + std::string(OpText(n.op)) + "' is not a finite number");
  return json(v);
}

Result<json> Arithmetic(const Node& n, const json& a, const json& b) {
  if (!a.is_number() || !b.is_number()) return TypeError(n, a, b);
  if (IsInt(a) && IsInt(b)) {
    int64_t x = a.get<int64_t>(), y = b.get<int64_t>(), r = 0;
    switch (n.op) {
      case Op::kAdd:
        if (!__builtin_add_overflow(x, y, &r)) return json(r);
        break;
      case Op::kSub:
        if (!__builtin_sub_overflow(x, y, &r)) return json(r);
        break;
      case Op::kMul:
        if (!__builtin_mul_overflow(x, y, &r)) return json(r);
        break;
      case Op::kDiv:
        if (y == 0) return ErrorAt(n.column, "division by zero");
        if (y != -1 && x % y == 0) return json(x / y);
        if (y == -1 && x != std::numeric_limits<int64_t>::min()) return json(-x);
        break;
      case Op::kMod:
        if (y == 0) return ErrorAt(n.column, "modulo by zero");
        if (y == -1) return json(int64_t{0});
        return json(x % y);
      default:
        break;
    }
  } else if (n.op == Op::kMod) {
    return ErrorAt(n.column, "'%' needs whole numbers");
  }
  double x = a.get<double>(), y = b.get<double>();
  switch (n.op) {
    case Op::kAdd:
      return FiniteNumber(n, x + y);
    case Op::kSub:
      return FiniteNumber(n, x - y);
    case Op::kMul:
      return FiniteNumber(n, x * y);
    case Op::kDiv:
      if (y == 0) return ErrorAt(n.column, "division by zero");
      return FiniteNumber(n, x / y);
    default:
      return Internal("unexpected arithmetic operator");
  }
}

Result<bool> Membership(const Node& n, const json& item, const json& container) {
  if (container.is_array()) {
    for (const json& e : container) {
      if (e == item) return true;
    }
    return false;
  }
  if (container.is_string() && item.is_string()) {
    return container.get_ref<const std::string&>().find(item.get_ref<const std::string&>()) !=
           std::string::npos;
  }
  if (container.is_object() && item.is_string()) {
    return container.contains(item.get_ref<const std::string&>());
  }
  return TypeError(n, item, container);
}

std::string AsciiCase(std::string s, bool upper) {
  for (char& c : s) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

size_t Utf8Length(const std::string& s) {
  size_t count = 0;
  for (unsigned char c : s) count += (c & 0xC0) != 0x80;
  return count;
}

std::string Render(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

class Evaluator {
 public:
  Evaluator(const Expr::Tree& tree, const json& scope) : tree_(tree), scope_(scope) {}

  Result<Val> Eval(int index) {
    const Node& n = tree_.nodes[index];
    switch (n.kind) {
      case Kind::kLiteral:
        return Val::Borrow(n.literal);
      case Kind::kName: {
        if (!scope_.is_object()) return Val::Borrow(NullJson());
        auto it = scope_.find(n.name);
        return Val::Borrow(it == scope_.end() ? NullJson() : *it);
      }
      case Kind::kMember: {
        KEEL_ASSIGN_OR_RETURN(Val base, Eval(n.kids[0]));
        return Child(base, n.name);
      }
      case Kind::kIndex:
        return EvalIndex(n);
      case Kind::kList: {
        json list = json::array();
        for (int k : n.kids) {
          KEEL_ASSIGN_OR_RETURN(Val v, Eval(k));
          list.push_back(v.get());
        }
        return Val::Own(std::move(list));
      }
      case Kind::kUnary: {
        KEEL_ASSIGN_OR_RETURN(Val v, Eval(n.kids[0]));
        const json& x = v.get();
        if (n.op == Op::kNot) return Val::Own(!Truthy(x));
        if (!x.is_number()) {
          return ErrorAt(n.column, "unary '-' cannot take " + std::string(TypeName(x)));
        }
        if (IsInt(x) && x.get<int64_t>() != std::numeric_limits<int64_t>::min()) {
          return Val::Own(-x.get<int64_t>());
        }
        return Val::Own(-x.get<double>());
      }
      case Kind::kBinary:
        return EvalBinary(n);
      case Kind::kCall:
        return EvalCall(n);
    }
    return Internal("unknown expression node");
  }

 private:
  static Val Child(const Val& base, const std::string& key) {
    const json& b = base.get();
    if (!b.is_object()) return Val::Borrow(NullJson());
    auto it = b.find(key);
    if (it == b.end()) return Val::Borrow(NullJson());
    if (base.ref) return Val::Borrow(*it);
    return Val::Own(*it);
  }

  Result<Val> EvalIndex(const Node& n) {
    KEEL_ASSIGN_OR_RETURN(Val base, Eval(n.kids[0]));
    KEEL_ASSIGN_OR_RETURN(Val key, Eval(n.kids[1]));
    const json& k = key.get();
    if (k.is_null()) return Val::Borrow(NullJson());
    if (k.is_string()) return Child(base, k.get<std::string>());
    bool whole =
        IsInt(k) || (k.is_number_float() && std::floor(k.get<double>()) == k.get<double>() &&
                     std::fabs(k.get<double>()) < 9e15);
    if (!whole) {
      return ErrorAt(n.column, "an index must be a string or a whole number, not " +
                                   std::string(k.is_number() ? "a fraction" : TypeName(k)));
    }
    const json& b = base.get();
    if (!b.is_array()) return Val::Borrow(NullJson());
    int64_t i = k.is_number_float() ? static_cast<int64_t>(k.get<double>()) : k.get<int64_t>();
    if (i < 0 || static_cast<uint64_t>(i) >= b.size()) return Val::Borrow(NullJson());
    if (base.ref) return Val::Borrow((*base.ref)[static_cast<size_t>(i)]);
    return Val::Own(b[static_cast<size_t>(i)]);
  }

  Result<Val> EvalBinary(const Node& n) {
    if (n.op == Op::kAnd || n.op == Op::kOr) {
      KEEL_ASSIGN_OR_RETURN(Val a, Eval(n.kids[0]));
      bool left = Truthy(a.get());
      if (n.op == Op::kAnd && !left) return Val::Own(false);
      if (n.op == Op::kOr && left) return Val::Own(true);
      KEEL_ASSIGN_OR_RETURN(Val b, Eval(n.kids[1]));
      return Val::Own(Truthy(b.get()));
    }
    KEEL_ASSIGN_OR_RETURN(Val va, Eval(n.kids[0]));
    KEEL_ASSIGN_OR_RETURN(Val vb, Eval(n.kids[1]));
    const json& a = va.get();
    const json& b = vb.get();
    switch (n.op) {
      case Op::kEq:
        return Val::Own(a == b);
      case Op::kNe:
        return Val::Own(a != b);
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        bool numbers = a.is_number() && b.is_number();
        bool strings = a.is_string() && b.is_string();
        if (!numbers && !strings) return TypeError(n, a, b);
        bool r = n.op == Op::kLt   ? a < b
                 : n.op == Op::kLe ? a <= b
                 : n.op == Op::kGt ? a > b
                                   : a >= b;
        return Val::Own(r);
      }
      case Op::kIn:
      case Op::kNotIn: {
        KEEL_ASSIGN_OR_RETURN(bool found, Membership(n, a, b));
        return Val::Own(n.op == Op::kIn ? found : !found);
      }
      default: {
        KEEL_ASSIGN_OR_RETURN(json r, Arithmetic(n, a, b));
        return Val::Own(std::move(r));
      }
    }
  }

  Status ArgError(const Node& n, std::string_view expected, const json& got) {
    return ErrorAt(n.column, n.name + "() needs " + std::string(expected) + ", got " +
                                 std::string(TypeName(got)));
  }

  Result<Val> EvalCall(const Node& n) {
    KEEL_ASSIGN_OR_RETURN(Val a, Eval(n.kids[0]));
    const json& x = a.get();
    switch (n.fn) {
      case Fn::kLen:
        if (x.is_null()) return Val::Own(0);
        if (x.is_string()) return Val::Own(Utf8Length(x.get_ref<const std::string&>()));
        if (x.is_array() || x.is_object()) return Val::Own(x.size());
        return ArgError(n, "a string, list or object", x);
      case Fn::kLower:
      case Fn::kUpper:
      case Fn::kTrim: {
        if (!x.is_string()) return ArgError(n, "a string", x);
        std::string s = x.get<std::string>();
        if (n.fn == Fn::kTrim) {
          size_t b = s.find_first_not_of(" \t\r\n");
          size_t e = s.find_last_not_of(" \t\r\n");
          return Val::Own(b == std::string::npos ? std::string() : s.substr(b, e - b + 1));
        }
        return Val::Own(AsciiCase(std::move(s), n.fn == Fn::kUpper));
      }
      case Fn::kString:
        return Val::Own(Render(x));
      case Fn::kNumber: {
        if (x.is_number()) return a;
        if (!x.is_string()) return ArgError(n, "a string or number", x);
        json parsed = json::parse(x.get_ref<const std::string&>(), nullptr, false);
        if (!parsed.is_number()) {
          return ErrorAt(n.column, "number() cannot read \"" + x.get<std::string>().substr(0, 40) +
                                       "\" as a number");
        }
        return Val::Own(std::move(parsed));
      }
      case Fn::kDefault: {
        if (!x.is_null()) return a;
        return Eval(n.kids[1]);
      }
      case Fn::kContains:
      case Fn::kStartsWith:
      case Fn::kEndsWith: {
        KEEL_ASSIGN_OR_RETURN(Val b, Eval(n.kids[1]));
        const json& y = b.get();
        if (n.fn == Fn::kContains) {
          Node as_in = n;
          as_in.op = Op::kIn;
          KEEL_ASSIGN_OR_RETURN(bool found, Membership(as_in, y, x));
          return Val::Own(found);
        }
        if (!x.is_string() || !y.is_string()) {
          return ErrorAt(n.column, n.name + "() needs two strings, got " +
                                       std::string(TypeName(x)) + " and " +
                                       std::string(TypeName(y)));
        }
        const std::string& s = x.get_ref<const std::string&>();
        const std::string& p = y.get_ref<const std::string&>();
        if (p.size() > s.size()) return Val::Own(false);
        if (n.fn == Fn::kStartsWith) return Val::Own(s.compare(0, p.size(), p) == 0);
        return Val::Own(s.compare(s.size() - p.size(), p.size(), p) == 0);
      }
      case Fn::kNone:
        break;
    }
    return Internal("unknown function");
  }

  const Expr::Tree& tree_;
  const json& scope_;
};

// ---------------------------------------------------------------------------------------
// Templates

// Finds the '}' closing a placeholder whose expression starts at `from`; quotes inside the
// expression may contain '}'. Returns npos when unterminated.
size_t FindClose(std::string_view s, size_t from) {
  char quote = 0;
  for (size_t i = from; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '}') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Re-bases "column N: ..." of an error in an expression that starts at byte `offset` of the
// template string, and prefixes the parameter path.
Status InTemplate(const Status& s, std::string_view path, size_t offset) {
  std::string msg = s.message();
  constexpr std::string_view kCol = "column ";
  if (msg.rfind(kCol, 0) == 0) {
    size_t colon = msg.find(':');
    int column = std::atoi(msg.substr(kCol.size(), colon - kCol.size()).c_str());
    msg = "column " + std::to_string(column + static_cast<int>(offset)) + msg.substr(colon);
  }
  if (!path.empty()) msg = std::string(path) + ": " + msg;
  return Status(s.code(), msg);
}

// Renders (or, with scope == nullptr, only checks) one template string.
Result<json> RenderString(const std::string& s, const json* scope, const std::string& path) {
  // One placeholder spanning the whole string keeps the value's JSON type.
  if (s.size() >= 3 && s.compare(0, 2, "${") == 0 && FindClose(s, 2) == s.size() - 1) {
    auto parsed = ParseExpr(std::string_view(s).substr(2, s.size() - 3));
    if (!parsed.ok()) return InTemplate(parsed.status(), path, 2);
    if (!scope) return json();
    auto value = EvalExpr(**parsed, *scope);
    if (!value.ok()) return InTemplate(value.status(), path, 2);
    return std::move(value).value();
  }
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t dollar = s.find('$', i);
    if (dollar == std::string::npos) {
      out.append(s, i, std::string::npos);
      break;
    }
    out.append(s, i, dollar - i);
    if (s.compare(dollar, 3, "$${") == 0) {
      out += "${";
      i = dollar + 3;
      continue;
    }
    if (s.compare(dollar, 2, "${") != 0) {
      out.push_back('$');
      i = dollar + 1;
      continue;
    }
    size_t close = FindClose(s, dollar + 2);
    if (close == std::string::npos) {
      return InTemplate(ErrorAt(1, "'${' without a closing '}'"), path, dollar);
    }
    auto parsed = ParseExpr(std::string_view(s).substr(dollar + 2, close - dollar - 2));
    if (!parsed.ok()) return InTemplate(parsed.status(), path, dollar + 2);
    if (scope) {
      auto value = EvalExpr(**parsed, *scope);
      if (!value.ok()) return InTemplate(value.status(), path, dollar + 2);
      out += Render(*value);
    }
    i = close + 1;
  }
  return json(std::move(out));
}

Result<json> RenderValue(const json& v, const json* scope, const std::string& path) {
  if (v.is_string()) return RenderString(v.get_ref<const std::string&>(), scope, path);
  if (v.is_array()) {
    json out = json::array();
    for (size_t i = 0; i < v.size(); ++i) {
      KEEL_ASSIGN_OR_RETURN(json item,
                            RenderValue(v[i], scope, path + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(item));
    }
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      KEEL_ASSIGN_OR_RETURN(
          json item,
          RenderValue(it.value(), scope, path.empty() ? it.key() : path + "." + it.key()));
      out[it.key()] = std::move(item);
    }
    return out;
  }
  return v;
}

}  // namespace

bool Truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return false;
    case json::value_t::boolean:
      return v.get<bool>();
    case json::value_t::number_integer:
      return v.get<int64_t>() != 0;
    case json::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    case json::value_t::number_float:
      return v.get<double>() != 0;
    case json::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object:
      return !v.empty();
    default:
      return false;
  }
}

Result<std::shared_ptr<const Expr>> ParseExpr(std::string_view text) {
  if (text.size() > kMaxExprBytes) {
    return ErrorAt(static_cast<int>(kMaxExprBytes) + 1,
                   "expression longer than " + std::to_string(kMaxExprBytes) + " bytes");
  }
  try {
    std::vector<Token> toks;
    KEEL_RETURN_IF_ERROR(Lex(text, &toks));
    Parser parser(std::move(toks));
    KEEL_ASSIGN_OR_RETURN(Expr::Tree tree, parser.Parse());
    return std::shared_ptr<const Expr>(std::make_shared<Expr>(
        std::string(text), std::make_unique<const Expr::Tree>(std::move(tree))));
  } catch (const std::exception& e) {
    return Internal(std::string("parsing expression: ") + e.what());
  }
}

Result<json> EvalExpr(const Expr& e, const json& scope) {
  try {
    Evaluator ev(e.tree(), scope);
    KEEL_ASSIGN_OR_RETURN(Val v, ev.Eval(e.tree().root));
    if (v.ref) return *v.ref;
    return std::move(v.own);
  } catch (const std::exception& ex) {
    return Internal(std::string("evaluating expression: ") + ex.what());
  }
}

Result<bool> EvalCondition(const Expr& e, const json& scope) {
  KEEL_ASSIGN_OR_RETURN(json v, EvalExpr(e, scope));
  return Truthy(v);
}

Result<json> RenderTemplate(const json& params, const json& scope) {
  try {
    return RenderValue(params, &scope, "");
  } catch (const std::exception& ex) {
    return Internal(std::string("rendering template: ") + ex.what());
  }
}

Status ValidateTemplate(const json& params) {
  try {
    auto r = RenderValue(params, nullptr, "");
    return r.ok() ? OkStatus() : r.status();
  } catch (const std::exception& ex) {
    return Internal(std::string("checking template: ") + ex.what());
  }
}

}  // namespace keel::flow
