// The expression language of workflows: conditions of branches and approval policies, and
// the "${...}" placeholders in step parameters. The language is documented for workflow
// authors in docs/workflows.md ("Expressions"); this header is the contract for callers.
//
// Safety: an expression is data, never code. There are no loops, no assignments, no user
// functions and no access to anything but the JSON `scope` it is evaluated against; the
// only functions are a fixed whitelist checked when parsing. An expression is at most
// kMaxExprBytes long and nests at most kMaxExprDepth levels; every node is evaluated at most
// once, so evaluation time is linear in the size of the expression and the data it touches.
//
// Thread-safety: an Expr is immutable after ParseExpr; one Expr may be evaluated from many
// threads at once. The free functions keep no state.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace keel::flow {

inline constexpr size_t kMaxExprBytes = 4096;
inline constexpr int kMaxExprDepth = 64;

// An immutable parsed expression. Obtain one from ParseExpr; share it freely.
class Expr {
 public:
  struct Tree;  // the parsed nodes; defined in expr.cc
  Expr(std::string text, std::unique_ptr<const Tree> tree);
  ~Expr();
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  // The source text the expression was parsed from.
  const std::string& text() const { return text_; }
  const Tree& tree() const { return *tree_; }

 private:
  std::string text_;
  std::unique_ptr<const Tree> tree_;
};

// Parses `text`. Errors: InvalidArgument "column N: ..." (N counts bytes from 1) for syntax
// errors, unknown functions or wrong argument counts, an expression longer than kMaxExprBytes,
// or nesting deeper than kMaxExprDepth.
Result<std::shared_ptr<const Expr>> ParseExpr(std::string_view text);

// Evaluates `e` against `scope` (normally an object such as {"input":..., "steps":...}; a
// top-level name `x` reads scope["x"]). Missing fields and out-of-range indexes are null.
// Errors: InvalidArgument "column N: ..." naming the operator whose operands have types it
// does not accept (e.g. `<` between a string and a number, or with null), division or
// modulo by zero, a result that is not a finite number.
Result<nlohmann::json> EvalExpr(const Expr& e, const nlohmann::json& scope);

// Evaluates `e` and returns its truthiness: null, false, 0, "", [] and {} are false,
// everything else is true. Errors: those of EvalExpr.
Result<bool> EvalCondition(const Expr& e, const nlohmann::json& scope);

// Returns the truthiness of a JSON value (the rule of EvalCondition).
bool Truthy(const nlohmann::json& value);

// Replaces every string in `params` (recursively through arrays and object values; object
// keys are left alone) of the form "${expr}" with the value of expr, keeping its JSON type,
// and each "${expr}" inside a longer string with its string rendering (strings as they are,
// null as "", numbers, booleans, arrays and objects as compact JSON). "$${" is a literal
// "${". Errors: InvalidArgument "PATH: column N: ..." where PATH names the parameter
// ("to", "lines[2].text"; empty for a top-level string) and N is the byte column within
// that string.
Result<nlohmann::json> RenderTemplate(const nlohmann::json& params, const nlohmann::json& scope);

// Checks that every placeholder in `params` parses, without evaluating anything: for
// validating a workflow when it is loaded. Errors: as RenderTemplate's syntax errors.
Status ValidateTemplate(const nlohmann::json& params);

}  // namespace keel::flow
