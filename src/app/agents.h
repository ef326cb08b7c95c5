// Application services for agents and what their model calls cost (docs/agents.md). Every
// face calls these; the agents come from the Runtime (built-ins and agents/*.yaml, with model
// providers from keel.yaml `models:` and API keys from the vault). Agents propose, never act.
//
// Thread-safety: as the Runtime (one thread at a time per Runtime).
// Errors: InvalidArgument (a bad `models:` section or agent file, bad input JSON or input
// failing the agent's schema, a bad --since), NotFound (no agent of that name, with what to
// run to list them), the agent runner's and the store's errors otherwise.
#pragma once

#include <string>
#include <vector>

#include "agents/agent.h"
#include "app/runtime.h"
#include "core/status.h"
#include "store/model_usage.h"

namespace keel::app {

// Every agent by name. The pointers live as long as the Runtime.
Result<std::vector<const agents::AgentContract*>> ListAgents(Runtime& rt);
Result<const agents::AgentContract*> ShowAgent(Runtime& rt, const std::string& name);

struct RunAgentRequest {
  std::string agent;
  std::string input_json;  // a JSON object, checked against the agent's input schema
  std::string record_id;   // the customer record (cost and memory attribution)
  std::string run_id, step_id;
  std::string provider;                // overrides the agent's provider
  std::vector<std::string> untrusted;  // more untrusted input paths (JSON pointers)
  bool use_cache = true;
};
// Needs a writable Runtime: the run is recorded on the ledger with its artifacts.
Result<agents::AgentOutcome> RunAgent(Runtime& rt, const RunAgentRequest& req);

struct CostRequest {
  std::string record_id, run_id, agent;  // empty: all
  std::string since;                     // a date (2026-01-31) or RFC 3339 time; parsed here
};
Result<store::CostReport> QueryCost(Runtime& rt, const CostRequest& req);

}  // namespace keel::app
