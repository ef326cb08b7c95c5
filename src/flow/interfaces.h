// The two seams through which the flow engine acts: agents (model-backed or deterministic
// workers that turn an input into an output) and adapters (the outside world: email,
// payments, publishing). The wiring code (cli, tests) registers implementations at start-up;
// the engine never includes an agent or adapter header.
//
// Every failure is classified with the shared taxonomy (core/outcome.h), which is what the
// engine's retry, compensation and uncertainty rules are written against.
//
// Ownership: the engine does not own registered objects; they must outlive it.
// Thread-safety: the engine calls Invoke/Perform from its effect executor's threads
// (flow/executor.h), several at once, for different steps: implementations must be
// thread-safe. HasAgent and the other queries may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/outcome.h"

namespace keel::flow {

// What the engine tells an agent or adapter about the call it is making.
struct CallContext {
  std::string run_id;
  std::string step_key;  // unique within the run ("send#2" inside a loop)
  int attempt = 1;       // 1 for the first attempt
  int64_t now_us = 0;
};

class AgentInvoker {
 public:
  virtual ~AgentInvoker() = default;
  // True if this invoker serves the agent `name` (checked when a workflow is loaded).
  virtual bool HasAgent(const std::string& name) const = 0;
  // Runs agent `name` on `input`; on success writes the output to `*output`.
  virtual Outcome Invoke(const std::string& name, const nlohmann::json& input,
                         const CallContext& ctx, nlohmann::json* output) = 0;
};

class ActionAdapter {
 public:
  virtual ~ActionAdapter() = default;
  virtual std::string name() const = 0;
  // True if the channel deduplicates by the idempotency token (a payment API with an
  // Idempotency-Key): a retry with the same token cannot act twice. False for SMTP-like
  // channels: an attempt whose outcome is unknown is never repeated without the operator.
  virtual bool honours_idempotency_key() const = 0;
  // The actions this adapter performs (the ACTION of `action: ADAPTER.ACTION`), in any
  // order. Engine::Check refuses a workflow that names any other, so a typo
  // (`fake_smtp.snd`) is an error when the workflow is loaded, not a run that fails (or,
  // with a lenient peer, acts) later. Must not change while an engine uses the adapter.
  virtual std::vector<std::string> actions() const = 0;
  // Performs `action` with `params`. `token` is stable across attempts of the same step.
  virtual Outcome Perform(const std::string& token, const std::string& action,
                          const nlohmann::json& params, const CallContext& ctx,
                          nlohmann::json* result) = 0;
};

// What an engine is given at start-up.
struct Registry {
  AgentInvoker* agents = nullptr;
  std::map<std::string, ActionAdapter*> adapters;
};

}  // namespace keel::flow
