// PLACEHOLDER until the `flowexpr` branch lands; see expr.h.
#include "flow/expr.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace keel::flow {

struct Expr {
  enum Kind { kLit, kPath, kNot, kAnd, kOr, kCmp } kind = kLit;
  nlohmann::json lit;
  std::vector<nlohmann::json> path;  // string keys or integer indexes
  std::string op;
  std::shared_ptr<const Expr> a, b;
};

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}
  Result<std::shared_ptr<const Expr>> Parse() {
    auto e = Or();
    if (!e.ok()) return e;
    Skip();
    if (i_ != s_.size()) return Err("unexpected '" + std::string(s_.substr(i_, 1)) + "'");
    return e;
  }

 private:
  Status Err(const std::string& m) {
    return InvalidArgument("expression '" + std::string(s_) + "': " + m + " at column " +
                           std::to_string(i_ + 1));
  }
  void Skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(std::string_view t) {
    Skip();
    if (s_.substr(i_, t.size()) != t) return false;
    if (std::isalpha(static_cast<unsigned char>(t[0])) && i_ + t.size() < s_.size() &&
        (std::isalnum(static_cast<unsigned char>(s_[i_ + t.size()])) || s_[i_ + t.size()] == '_'))
      return false;
    i_ += t.size();
    return true;
  }
  Result<std::shared_ptr<const Expr>> Or() {
    KEEL_ASSIGN_OR_RETURN(auto l, And());
    while (Eat("||") || Eat("or")) {
      KEEL_ASSIGN_OR_RETURN(auto r, And());
      auto e = std::make_shared<Expr>();
      e->kind = Expr::kOr;
      e->a = l;
      e->b = r;
      l = e;
    }
    return l;
  }
  Result<std::shared_ptr<const Expr>> And() {
    KEEL_ASSIGN_OR_RETURN(auto l, Not());
    while (Eat("&&") || Eat("and")) {
      KEEL_ASSIGN_OR_RETURN(auto r, Not());
      auto e = std::make_shared<Expr>();
      e->kind = Expr::kAnd;
      e->a = l;
      e->b = r;
      l = e;
    }
    return l;
  }
  Result<std::shared_ptr<const Expr>> Not() {
    if (Eat("not") || (Skip(), i_ < s_.size() && s_[i_] == '!' &&
                                   (i_ + 1 >= s_.size() || s_[i_ + 1] != '=') && (++i_, true))) {
      KEEL_ASSIGN_OR_RETURN(auto x, Not());
      auto e = std::make_shared<Expr>();
      e->kind = Expr::kNot;
      e->a = x;
      return std::shared_ptr<const Expr>(e);
    }
    return Cmp();
  }
  Result<std::shared_ptr<const Expr>> Cmp() {
    KEEL_ASSIGN_OR_RETURN(auto l, Primary());
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (Eat(op)) {
        KEEL_ASSIGN_OR_RETURN(auto r, Primary());
        auto e = std::make_shared<Expr>();
        e->kind = Expr::kCmp;
        e->op = op;
        e->a = l;
        e->b = r;
        return std::shared_ptr<const Expr>(e);
      }
    }
    return l;
  }
  Result<std::shared_ptr<const Expr>> Primary() {
    Skip();
    if (i_ >= s_.size()) return Err("expression ends early");
    auto e = std::make_shared<Expr>();
    char c = s_[i_];
    if (c == '(') {
      ++i_;
      KEEL_ASSIGN_OR_RETURN(auto x, Or());
      if (!Eat(")")) return Err("missing ')'");
      return x;
    }
    if (c == '\'' || c == '"') {
      size_t j = s_.find(c, i_ + 1);
      if (j == std::string_view::npos) return Err("unterminated string");
      e->lit = std::string(s_.substr(i_ + 1, j - i_ - 1));
      i_ = j + 1;
      return std::shared_ptr<const Expr>(e);
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      size_t j = i_ + 1;
      while (j < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[j])) || s_[j] == '.'))
        ++j;
      std::string num(s_.substr(i_, j - i_));
      i_ = j;
      try {
        if (num.find('.') != std::string::npos) {
          e->lit = std::stod(num);
        } else {
          e->lit = std::stoll(num);
        }
      } catch (...) {
        return Err("bad number '" + num + "'");
      }
      return std::shared_ptr<const Expr>(e);
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::string id = Ident();
      if (id == "true" || id == "false") {
        e->lit = id == "true";
        return std::shared_ptr<const Expr>(e);
      }
      if (id == "null") return std::shared_ptr<const Expr>(e);
      e->kind = Expr::kPath;
      e->path.push_back(id);
      for (;;) {
        if (i_ < s_.size() && s_[i_] == '.') {
          ++i_;
          std::string k = Ident();
          if (k.empty()) return Err("expected a field name after '.'");
          e->path.push_back(k);
        } else if (i_ < s_.size() && s_[i_] == '[') {
          size_t j = s_.find(']', i_);
          if (j == std::string_view::npos) return Err("missing ']'");
          std::string in(s_.substr(i_ + 1, j - i_ - 1));
          try {
            e->path.push_back(static_cast<int64_t>(std::stoll(in)));
          } catch (...) {
            return Err("bad index '" + in + "'");
          }
          i_ = j + 1;
        } else {
          break;
        }
      }
      return std::shared_ptr<const Expr>(e);
    }
    return Err("unexpected '" + std::string(1, c) + "'");
  }
  std::string Ident() {
    size_t j = i_;
    while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_')) ++j;
    std::string r(s_.substr(i_, j - i_));
    i_ = j;
    return r;
  }
  std::string_view s_;
  size_t i_ = 0;
};

bool Truthy(const nlohmann::json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

}  // namespace

Result<std::shared_ptr<const Expr>> ParseExpr(std::string_view text) {
  return Parser(text).Parse();
}

Result<nlohmann::json> EvalExpr(const Expr& e, const nlohmann::json& scope) {
  switch (e.kind) {
    case Expr::kLit:
      return e.lit;
    case Expr::kPath: {
      const nlohmann::json* cur = &scope;
      for (const auto& p : e.path) {
        if (p.is_string()) {
          if (!cur->is_object()) return nlohmann::json();
          auto it = cur->find(p.get<std::string>());
          if (it == cur->end()) return nlohmann::json();
          cur = &*it;
        } else {
          int64_t i = p.get<int64_t>();
          if (!cur->is_array() || i < 0 || static_cast<size_t>(i) >= cur->size())
            return nlohmann::json();
          cur = &(*cur)[static_cast<size_t>(i)];
        }
      }
      return *cur;
    }
    case Expr::kNot: {
      KEEL_ASSIGN_OR_RETURN(auto v, EvalExpr(*e.a, scope));
      return nlohmann::json(!Truthy(v));
    }
    case Expr::kAnd: {
      KEEL_ASSIGN_OR_RETURN(auto l, EvalExpr(*e.a, scope));
      if (!Truthy(l)) return nlohmann::json(false);
      KEEL_ASSIGN_OR_RETURN(auto r, EvalExpr(*e.b, scope));
      return nlohmann::json(Truthy(r));
    }
    case Expr::kOr: {
      KEEL_ASSIGN_OR_RETURN(auto l, EvalExpr(*e.a, scope));
      if (Truthy(l)) return nlohmann::json(true);
      KEEL_ASSIGN_OR_RETURN(auto r, EvalExpr(*e.b, scope));
      return nlohmann::json(Truthy(r));
    }
    case Expr::kCmp: {
      KEEL_ASSIGN_OR_RETURN(auto l, EvalExpr(*e.a, scope));
      KEEL_ASSIGN_OR_RETURN(auto r, EvalExpr(*e.b, scope));
      if (e.op == "==") return nlohmann::json(l == r);
      if (e.op == "!=") return nlohmann::json(l != r);
      bool num = l.is_number() && r.is_number();
      bool str = l.is_string() && r.is_string();
      if (!num && !str) return nlohmann::json(false);
      int c = num ? (l.get<double>() < r.get<double>() ? -1 : l.get<double>() > r.get<double>())
                  : l.get<std::string>().compare(r.get<std::string>());
      if (e.op == "<") return nlohmann::json(c < 0);
      if (e.op == "<=") return nlohmann::json(c <= 0);
      if (e.op == ">") return nlohmann::json(c > 0);
      return nlohmann::json(c >= 0);
    }
  }
  return Internal("bad expression node");
}

Result<bool> EvalCondition(const Expr& e, const nlohmann::json& scope) {
  KEEL_ASSIGN_OR_RETURN(auto v, EvalExpr(e, scope));
  return Truthy(v);
}

Result<nlohmann::json> RenderTemplate(const nlohmann::json& params, const nlohmann::json& scope) {
  if (params.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = params.begin(); it != params.end(); ++it) {
      KEEL_ASSIGN_OR_RETURN(out[it.key()], RenderTemplate(it.value(), scope));
    }
    return out;
  }
  if (params.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : params) {
      KEEL_ASSIGN_OR_RETURN(auto r, RenderTemplate(v, scope));
      out.push_back(std::move(r));
    }
    return out;
  }
  if (!params.is_string()) return params;
  const std::string& s = params.get_ref<const std::string&>();
  size_t open = s.find("{{");
  if (open == std::string::npos) return params;
  std::string out;
  size_t pos = 0;
  while (open != std::string::npos) {
    size_t close = s.find("}}", open);
    if (close == std::string::npos) return InvalidArgument("template '" + s + "': missing '}}'");
    KEEL_ASSIGN_OR_RETURN(auto ex, ParseExpr(s.substr(open + 2, close - open - 2)));
    KEEL_ASSIGN_OR_RETURN(auto v, EvalExpr(*ex, scope));
    if (open == 0 && close + 2 == s.size()) return v;  // a whole-value template keeps its type
    out += s.substr(pos, open - pos);
    out += v.is_string() ? v.get<std::string>() : (v.is_null() ? "" : v.dump());
    pos = close + 2;
    open = s.find("{{", pos);
  }
  out += s.substr(pos);
  return nlohmann::json(out);
}

}  // namespace keel::flow
