// Built-in agents that need no network: what example workflows, tests and crash tests run
// against. Every one counts its calls.
//   echo   returns its input
//   flaky  fails with `transient` while the attempt number <= input.fail_times, then echoes
//   fail   always fails with the class named by input.class (default permanent)
// (The counting fake adapters are test code: flow/testing_adapters.h.)
//
// Thread-safety: all methods are safe to call from several threads.
#pragma once

#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "flow/interfaces.h"

namespace keel::flow {

class BuiltinAgents final : public AgentInvoker {
 public:
  bool HasAgent(const std::string& name) const override;
  Outcome Invoke(const std::string& name, const nlohmann::json& input, const CallContext& ctx,
                 nlohmann::json* output) override;
  // Calls per agent name (every attempt counts).
  int calls(const std::string& name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> calls_;
};

}  // namespace keel::flow
