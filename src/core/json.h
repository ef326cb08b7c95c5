// JSON helpers around nlohmann-json. Parsing errors become InvalidArgument with the
// position; nothing here throws.
//
// Canonical JSON (keys sorted, no white space, UTF-8, invalid sequences replaced) is what
// the ledger stores and hashes, and what idempotency keys are derived from.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace keel {

using Json = nlohmann::json;

std::string CanonicalJson(const Json& value);
// Parses `text`; `what` names the input in the error ("--input", "payload of entry 12").
Result<Json> ParseJson(std::string_view text, std::string_view what);
// Parses and requires a JSON object.
Result<Json> ParseJsonObject(std::string_view text, std::string_view what);

}  // namespace keel
