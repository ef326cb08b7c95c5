#include "adapters/log.h"

#include <nlohmann/json.hpp>

namespace keel::adapters {

std::vector<std::string> LogAdapter::actions() const {
  return {"book",    "charge",  "confirm", "notify", "nudge", "pay",    "publish", "refund",
          "release", "reserve", "send",    "ship",   "thank", "unbook", "write"};
}

Outcome LogAdapter::Perform(const std::string& token, const std::string& action,
                            const nlohmann::json& /*params*/, const flow::CallContext& /*ctx*/,
                            nlohmann::json* result) {
  *result = {{"adapter", "log"}, {"action", action}, {"token", token}, {"logged", true}};
  return Outcome::Success();
}

}  // namespace keel::adapters
