#include "flow/builtins.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace keel::flow {

bool BuiltinAgents::HasAgent(const std::string& name) const {
  return name == "echo" || name == "flaky" || name == "fail";
}

Outcome BuiltinAgents::Invoke(const std::string& name, const nlohmann::json& input,
                              const CallContext& ctx, nlohmann::json* output) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++calls_[name];
  }
  if (name == "flaky") {
    int times = input.is_object() ? input.value("fail_times", 2) : 2;
    if (ctx.attempt <= times) {
      return Outcome::Failure(ErrorClass::kTransient,
                              "flaky: attempt " + std::to_string(ctx.attempt) + " fails");
    }
  } else if (name == "fail") {
    ErrorClass c = ErrorClass::kPermanent;
    if (input.is_object()) ParseErrorClass(input.value("class", "permanent"), &c);
    return Outcome::Failure(
        c, input.is_object() ? input.value("message", "fail agent") : "fail agent");
  } else if (name != "echo") {
    return Outcome::Failure(ErrorClass::kPermanent, "no agent " + name);
  }
  *output = input;
  return Outcome::Success();
}

int BuiltinAgents::calls(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = calls_.find(name);
  return it == calls_.end() ? 0 : it->second;
}

}  // namespace keel::flow
