// PLACEHOLDER until the `flowexpr` branch lands (it owns this file and replaces it whole):
// the safe expression language over run data. Same signatures as the real one.
//
// Grammar of this placeholder: literals (numbers, 'text', "text", true, false, null), field
// paths (input.lead.score, steps.fetch.items[0]), comparisons (== != < <= > >=), and/or/not
// (also && || !), parentheses. No calls, no assignment, no code execution.
// Templates: a JSON string "{{ expr }}" becomes the expression's value; text around
// "{{ }}" makes it string interpolation.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "core/status.h"

namespace keel::flow {

struct Expr;

Result<std::shared_ptr<const Expr>> ParseExpr(std::string_view text);
Result<nlohmann::json> EvalExpr(const Expr& e, const nlohmann::json& scope);
Result<bool> EvalCondition(const Expr& e, const nlohmann::json& scope);
Result<nlohmann::json> RenderTemplate(const nlohmann::json& params, const nlohmann::json& scope);

}  // namespace keel::flow
