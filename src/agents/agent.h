// Agents: named, replaceable workers with contracts. The flow engine calls AgentRunner::Run;
// the CLI calls it for `keel agent run`.
//
// A contract (AgentContract) declares the input schema, the output schema, the prompt template
// (stored as a versioned artifact the first time it is used), a budget (tokens, money, time),
// the memory it may read, which input paths are untrusted, and the action types it may
// propose. Agents never act: an output's "actions" are proposals; the workflow's policy
// decides. Built-in agents: research, drafting, outreach, accountant (agents/builtin.cc);
// operators add more as agents/*.yaml in the workspace (docs/agents.md, "Contracts").
//
// One Run:
//   validate the input -> render the prompt (untrusted values as fenced data blocks) ->
//   the response cache (temperature 0) or the provider -> artifacts for prompt and response
//   and a `model.call` ledger entry with gen_ai.* attributes, tokens and cost -> validate the
//   output (once more with the validation error appended if invalid) -> taint the output ->
//   filter and mark the proposed actions -> `agent.run` ledger entry.
//
// Errors (the codes map onto the flow engine's taxonomy):
//   NotFound            no agent of that name (permanent)
//   InvalidArgument     the input does not match the input schema; the provider refused the
//                       request as malformed (permanent)
//   Unavailable         the provider is down, rate limiting, or cut the connection (transient)
//   DeadlineExceeded    the provider did not answer in time, or the time budget ran out
//                       (in doubt; transient)
//   FailedPrecondition  needs a human: the output was still invalid after one retry, the
//                       token or money budget is spent, the key is missing or refused
// A failure after a model call still leaves its `model.call` entry and an `agent.failed` entry.
//
// Ownership: the runner borrows the Workspace, the providers and the optional Memory; they
// must outlive it. Thread-safety: Register before concurrent use; Run may be called from
// several threads (the Workspace serialises writes).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/provider.h"
#include "core/status.h"

namespace keel::store {
class Workspace;
}
namespace keel::memory {
class Memory;
}

namespace keel::agents {

struct AgentBudget {
  int64_t max_tokens = 20000;        // input + output tokens over all attempts of one run
  double max_cost_usd = 0.50;        // over all attempts of one run
  int64_t max_seconds = 120;         // wall time of one run (monotonic clock)
  int64_t max_output_tokens = 2000;  // per model call
};

struct MemoryAccess {
  // Subjects the agent may read: "record" (the context's record) is the only one today.
  std::vector<std::string> subjects;
  std::string query;  // the recall query (a template over the input); empty: the agent's name
  int64_t budget_tokens = 0;  // 0: no memory is read
  // Writing: a JSON pointer to an output array of facts ({kind, value, text, source, span,
  // confidence}) to remember about the context's record, or empty. Each fact must cite one of
  // the raw pages of `sources` (by url, or "pages/N"); that page is stored as a raw-text
  // artifact and the fact points to it with its span. Facts citing anything else (recalled
  // memory, the model's own words) are dropped: keel never learns from text it generated.
  std::string remember;
  std::string sources = "/pages";  // input array of {url, text}: the raw text facts cite
  // A JSON pointer to an output array naming the recalled facts the agent used (fact ids or
  // their texts); the retrieval is marked with them (memory hit/miss stats), or empty.
  std::string used;
};

struct AgentContract {
  std::string name;  // [a-z][a-z0-9_-]*
  int version = 1;
  std::string description;
  std::string task;      // the offline provider's rule ("research", ...); default: name
  std::string provider;  // a provider name from keel.yaml; empty: the default provider
  std::string model;     // empty: the provider's default model
  double temperature = 0;
  std::string input_schema_json = "{}";
  std::string output_schema_json = "{}";
  std::string system;  // the instructions (trusted: written by the operator or keel)
  std::string prompt;  // the user-message template, {{var}} over the input
  std::vector<std::string> untrusted;  // JSON pointers into the input ("/pages", "/emails/*/body")
  AgentBudget budget;
  MemoryAccess memory;
  std::vector<std::string> actions;         // action types it may propose
  std::vector<std::string> always_approve;  // action types that always need an approval
  std::string draft_field;                  // an output string stored as a versioned draft artifact
  std::string origin = "builtin";           // "builtin" or the YAML file it was loaded from
};

// Parses one agent definition (YAML text; JSON is YAML too). `origin` names it in errors.
// InvalidArgument naming the field on any problem (bad schema, unknown key, bad name).
Result<AgentContract> ParseAgentYaml(const std::string& yaml_text, const std::string& origin);

struct AgentContext {
  std::string run_id;
  std::string step_id;
  std::string record_id;  // the customer record this work is for: cost and memory attribution
  std::string actor = "operator";      // who asked (ledger actor of the agent.run entry)
  std::vector<std::string> untrusted;  // more untrusted input paths (e.g. a form's fields)
  std::string provider;                // overrides the contract's provider (CLI --provider)
  bool use_cache = true;
};

struct ProposedAction {
  std::string type;
  std::string params_json;  // canonical JSON object (the model's fields, approval keys removed)
  bool requires_approval = false;
  std::vector<std::string> approval_reasons;  // "recipient from untrusted text: /actions/0/to"
};

struct RejectedAction {
  std::string type;
  std::string reason;
};

struct AgentOutcome {
  std::string agent;
  int version = 0;
  std::string output_json;  // canonical; "actions" removed (see `actions`)
  std::vector<ProposedAction> actions;
  std::vector<RejectedAction> rejected;
  std::vector<std::string> tainted_fields;  // JSON pointers into output_json
  std::string provider, model;
  std::string template_artifact, prompt_artifact, response_artifact, output_artifact;
  std::string draft_artifact;
  std::string retrieval_id;  // memory retrieval used (marked from `memory.used` when set)
  std::vector<std::string> used_facts;        // recalled facts the output says it used
  std::vector<std::string> remembered_facts;  // fact ids written or merged (`memory.remember`)
  int facts_dropped = 0;  // output facts not remembered: no raw source, or outside its text
  int model_calls = 0;
  bool cached = false;  // every call of this run was answered from the cache
  int64_t input_tokens = 0, output_tokens = 0, cost_nanousd = 0;
  int64_t ledger_seq = 0;  // the agent.run entry
};

// Model prices from keel.yaml (models.prices), USD per million tokens.
struct ModelPrice {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
};
using PriceTable = std::map<std::string, ModelPrice>;
// nano-USD for the given tokens; `known` false when the model has no price (cost 0).
int64_t CostNanoUsd(const PriceTable& prices, const std::string& model, int64_t input_tokens,
                    int64_t output_tokens, bool* known = nullptr);

struct AgentRunnerOptions {
  std::map<std::string, ModelProvider*> providers;  // by name; not owned
  std::string default_provider = "offline";
  PriceTable prices;
  memory::Memory* memory = nullptr;  // not owned; null: agents read no memory
};

class AgentRunner {
 public:
  AgentRunner(store::Workspace* ws, AgentRunnerOptions options);
  ~AgentRunner();

  // Adds or replaces (same name) a contract. InvalidArgument for a bad contract.
  Status Register(const AgentContract& contract);
  // Registers the built-ins, then agents/*.yaml from the workspace folder (which override
  // built-ins of the same name). InvalidArgument names the file on a bad definition.
  Status RegisterBuiltinsAndWorkspaceAgents();
  const AgentContract* Find(const std::string& name) const;
  std::vector<const AgentContract*> List() const;  // by name

  Result<AgentOutcome> Run(const std::string& name, const std::string& input_json,
                           const AgentContext& ctx);

 private:
  store::Workspace* ws_;
  AgentRunnerOptions opts_;
  std::map<std::string, AgentContract> contracts_;
};

// The built-in contracts (research, drafting, outreach, accountant).
std::vector<AgentContract> BuiltinAgents();

}  // namespace keel::agents
