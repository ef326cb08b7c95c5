#include "core/json.h"

#include <nlohmann/json.hpp>

namespace keel {

std::string CanonicalJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    std::string m(what);
    m += " is not valid JSON (at byte ";
    m += std::to_string(e.byte);
    m += ")";
    return InvalidArgument(std::move(m));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

Result<Json> ParseJsonObject(std::string_view text, std::string_view what) {
  KEEL_ASSIGN_OR_RETURN(Json j, ParseJson(text, what));
  if (!j.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  return j;
}

}  // namespace keel
