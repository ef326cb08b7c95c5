// Wiring: the one place that builds the layers from a workspace's configuration and connects
// them — vault -> model providers -> agents (with memory) -> the flow engine's AgentInvoker.
// Only src/cli reads configuration (docs/architecture.md); every class below takes its
// dependencies through its constructor.
//
// Ownership: AgentWiring owns everything it builds; destroy it after the engine using it.
#pragma once

#include <memory>
#include <vector>

#include "agents/agent.h"
#include "agents/provider.h"
#include "cli/cli.h"
#include "core/http.h"
#include "flow/builtins.h"
#include "flow/interfaces.h"
#include "memory/memory.h"
#include "store/vault.h"

namespace keel::cli {

struct AgentWiring {
  std::unique_ptr<store::Workspace> ws;  // null when the caller passed its own workspace
  std::unique_ptr<store::Vault> vault;
  std::unique_ptr<HttpClient> http;
  std::vector<std::unique_ptr<agents::ModelProvider>> owned;
  std::unique_ptr<memory::Memory> memory;
  std::unique_ptr<agents::AgentRunner> runner;
};

// Builds the agents layer over `ws` (not owned). API keys are read from the workspace vault
// (keel.yaml `vault:`; $KEEL_VAULT_PASSPHRASE for a passphrase vault) when a provider call
// needs them; a missing secret is a NotFound naming it, never its value.
Result<std::unique_ptr<AgentWiring>> WireAgents(const Context& ctx, store::Workspace* ws,
                                                bool read_only);

// The flow engine's view of agents: the engine's test agents (echo, flaky, fail) and every
// registered agent contract. Errors map to the engine's taxonomy: Unavailable -> transient,
// DeadlineExceeded -> in_doubt, InvalidArgument/NotFound -> permanent,
// FailedPrecondition -> needs_human. The output is the agent's output plus `actions` (each
// with requires_approval and reasons), `requires_approval` (any action needs it) and the
// artifacts it wrote, so a workflow can gate on them.
class FlowAgents final : public flow::AgentInvoker {
 public:
  explicit FlowAgents(agents::AgentRunner* runner) : runner_(runner) {}
  bool HasAgent(const std::string& name) const override;
  Outcome Invoke(const std::string& name, const nlohmann::json& input,
                 const flow::CallContext& ctx, nlohmann::json* output) override;

 private:
  agents::AgentRunner* runner_;
  flow::BuiltinAgents builtins_;
};

}  // namespace keel::cli
