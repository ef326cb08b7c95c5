// A small JSON-schema subset for agent contracts: type (string, number, integer, boolean,
// object, array, null, or a list of them), required, properties, additionalProperties
// (false only), enum, minimum, maximum, items, maxLength, minLength, maxItems.
// Unknown keywords are ignored (so richer schemas still load), which keeps this a
// validator for the subset, not a claim of full conformance.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "core/json.h"
#include "core/status.h"

namespace keel::agents {

// OkStatus, or InvalidArgument naming the first failing value by JSON pointer
// ("/score: 140 is greater than the maximum 100").
Status ValidateJson(const Json& schema, const Json& value);

// InvalidArgument if `schema` uses the subset's keywords wrongly (a type that is not a type
// name, "required" that is not a list of strings...). Checked when a contract is loaded.
Status CheckSchema(const Json& schema);

}  // namespace keel::agents
