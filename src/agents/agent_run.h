// AgentRun: one AgentRunner::Run, split by job. Internal to agents/ (not for other layers).
//
// The jobs, in the order Run calls them (agent.h, "One Run"):
//   Prepare      the contract side: the input against its schema, the provider and model,
//                the taint set, recalled memory, the prompt template artifact and the
//                rendered messages (agent_run.cc);
//   CallModel    the model calls with the response cache, budgets, the `model.call` entries
//                and the output checked against its schema, retried once (model_call.cc);
//   ReviewOutput the proposed actions against the contract and the taint rules, and the
//                tainted output fields (output_review.cc);
//   Record       the `agent.run` entry with the output and draft artifacts and the memory it
//                wrote or used (output_review.cc).
// A step's error is returned as is; CallModel's failures after a model call are recorded
// first as `agent.failed` (Fail), exactly as the contract in agent.h says.
//
// Ownership: borrows the Workspace, the options and the contract (the runner's), and the
// context; all outlive the run. Thread-safety: one thread; one object per Run.
#pragma once

#include <nlohmann/json.hpp>  // an internal header: members hold JSON by value
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/agent.h"
#include "agents/taint.h"
#include "core/json.h"

namespace keel::agents {

// The string at `key` of a JSON object, or "" when missing or not a string.
std::string JsonStr(const Json& j, const char* key);

class AgentRun {
 public:
  AgentRun(store::Workspace* ws, const AgentRunnerOptions& opts, const AgentContract& contract,
           const AgentContext& ctx);

  // Errors: InvalidArgument (input or untrusted path), FailedPrecondition (no such provider),
  // and whatever recalling memory or writing the template artifact returns.
  Status Prepare(const std::string& input_json);
  // The model's output, valid against the output schema. Errors after a model call are
  // recorded as `agent.failed` first.
  Result<Json> CallModel();
  // Moves "actions" out of `output` into the outcome (accepted or rejected), marks tainted
  // output fields and sets the outcome's output_json.
  void ReviewOutput(Json* output);
  // The `agent.run` entry (and the memory the output writes or used).
  Status Record(const Json& output);

  AgentOutcome TakeOutcome() { return std::move(out_); }

 private:
  // One model call: from the response cache or the provider, recorded as `model.call`.
  Result<ModelResponse> CallOnce(const ModelRequest& req, int attempt);
  // Records `agent.failed` for `s` (best effort) and returns `s`.
  Status Fail(const Status& s);

  store::Workspace* ws_;
  const AgentRunnerOptions& opts_;
  const AgentContract& c_;
  const AgentContext& ctx_;
  const std::string actor_;
  const int64_t start_us_;

  Json input_;
  Json out_schema_;
  ModelProvider* provider_ = nullptr;
  std::string model_;
  TaintSet taint_;
  std::optional<TrustedValues> trusted_;  // set by Prepare, from the input with memory
  bool saw_tainted_ = false;
  std::vector<std::pair<std::string, std::string>> recalled_;  // (id, text) of recalled facts
  std::vector<ChatMessage> messages_;
  int64_t tokens_used_ = 0;
  AgentOutcome out_;
};

}  // namespace keel::agents
