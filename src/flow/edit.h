// Operator edits at an approval (docs/workflows.md, "Editing at an approval"): an approval
// step may declare one value of the run data that the operator may change when approving
// (`approval: {edit: steps.draft}`); `keel approve ID --edit FILE` replaces that value for
// every later step, so the action after the gate uses what the operator approved.
//
// The rule an edit must follow, so that it can only change what the workflow already has and
// never the shape later steps rely on:
// - the value must exist in the run when the operator decides (the step that makes it ran);
// - an object value takes an object edit with some of its existing keys, each with a value
//   of the same JSON type (integer and fraction are both numbers; a key that is null takes
//   any value); the keys given replace theirs, the others stay;
// - any other value (a string, a number, a list) takes an edit of the same JSON type, which
//   replaces it whole.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "flow/workflow.h"

namespace keel::flow {

// The value `s.edit_path` names in the run data (`steps`: outputs by step id; `vars`), or
// null if it does not exist.
const nlohmann::json* EditTarget(const Step& s, const nlohmann::json& steps,
                                 const nlohmann::json& vars);

// OK if `edit` may replace the value `s` declares, whose value in the run is `current`
// (null: the value does not exist). FailedPrecondition if the step declares no editable
// value or the value does not exist; InvalidArgument naming the offending key or type.
Status CheckEdit(const Step& s, const nlohmann::json* current, const nlohmann::json& edit);

// Checks `edit` as CheckEdit and writes it into the run data.
Status ApplyEdit(const Step& s, const nlohmann::json& edit, nlohmann::json* steps,
                 nlohmann::json* vars);

}  // namespace keel::flow
