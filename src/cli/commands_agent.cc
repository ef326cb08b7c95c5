// keel agent list|show|run, keel cost
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agents/agent.h"
#include "agents/config.h"
#include "agents/offline.h"
#include "agents/provider.h"
#include "cli/cli.h"
#include "cli/wiring.h"
#include "core/http.h"
#include "memory/memory.h"
#include "store/model_usage.h"

namespace keel::cli {
namespace {

using nlohmann::json;

// Opens the workspace and builds the agents layer over it (cli/wiring.h): API keys come
// from the workspace vault.
Result<std::unique_ptr<AgentWiring>> Wire(Context* ctx, bool read_only) {
  KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(read_only));
  KEEL_ASSIGN_OR_RETURN(auto w, WireAgents(*ctx, ws.get(), read_only));
  w->ws = std::move(ws);
  return w;
}

std::string Usd(int64_t nano) {
  std::ostringstream s;
  s << "$" << std::fixed << std::setprecision(6) << static_cast<double>(nano) / 1e9;
  return s.str();
}

json ActionJson(const agents::ProposedAction& a) {
  return {{"type", a.type},
          {"params", json::parse(a.params_json)},
          {"requires_approval", a.requires_approval},
          {"approval_reasons", a.approval_reasons}};
}

json LineJson(const store::CostLine& l) {
  return {{"key", l.key},
          {"calls", l.calls},
          {"cached_calls", l.cached_calls},
          {"input_tokens", l.input_tokens},
          {"output_tokens", l.output_tokens},
          {"cost_nanousd", l.cost_nanousd},
          {"cost_usd", static_cast<double>(l.cost_nanousd) / 1e9}};
}

}  // namespace

void RegisterAgentCommands(CLI::App& app, Context* ctx) {
  auto* agent = app.add_subcommand(
      "agent", "Run and inspect agents (built-ins and agents/*.yaml); they propose, never act");
  agent->require_subcommand(1);
  {
    auto* cmd =
        agent->add_subcommand("list", "List the agents with their version and allowed actions");
    auto json_out = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto w, Wire(ctx, true));
      json arr = json::array();
      for (const auto* c : w->runner->List()) {
        arr.push_back({{"name", c->name},
                       {"version", c->version},
                       {"description", c->description},
                       {"actions", c->actions},
                       {"provider", c->provider.empty() ? "(default)" : c->provider},
                       {"origin", c->origin}});
      }
      if (*json_out) {
        std::cout << arr.dump(2) << "\n";
        return OkStatus();
      }
      for (const auto& a : arr) {
        std::string acts;
        for (const auto& x : a["actions"]) acts += (acts.empty() ? "" : ",") + x.get<std::string>();
        std::cout << std::left << std::setw(12) << a["name"].get<std::string>() << " v"
                  << a["version"].get<int>() << "  " << a["description"].get<std::string>()
                  << "\n             actions: " << (acts.empty() ? "none" : acts)
                  << "  provider: " << a["provider"].get<std::string>()
                  << "  from: " << a["origin"].get<std::string>() << "\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd =
        agent->add_subcommand("show", "Show an agent's contract: schemas, budget, memory, actions");
    auto name = std::make_shared<std::string>();
    auto json_out = std::make_shared<bool>(false);
    cmd->add_option("name", *name, "Agent name")->required();
    cmd->add_flag("--json", *json_out, "Print JSON (the contract is always printed as JSON)");
    cmd->callback(Run(ctx, [ctx, name, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto w, Wire(ctx, true));
      const agents::AgentContract* c = w->runner->Find(*name);
      if (c == nullptr) return NotFound("no agent named '" + *name + "' (see `keel agent list`)");
      json j = {{"name", c->name},
                {"version", c->version},
                {"description", c->description},
                {"task", c->task},
                {"provider", c->provider},
                {"model", c->model},
                {"temperature", c->temperature},
                {"input_schema", json::parse(c->input_schema_json)},
                {"output_schema", json::parse(c->output_schema_json)},
                {"untrusted", c->untrusted},
                {"actions", c->actions},
                {"always_approve", c->always_approve},
                {"budget",
                 {{"max_tokens", c->budget.max_tokens},
                  {"max_cost_usd", c->budget.max_cost_usd},
                  {"max_seconds", c->budget.max_seconds},
                  {"max_output_tokens", c->budget.max_output_tokens}}},
                {"memory",
                 {{"subjects", c->memory.subjects}, {"budget_tokens", c->memory.budget_tokens}}},
                {"system", c->system},
                {"prompt", c->prompt},
                {"origin", c->origin}};
      std::cout << j.dump(2) << "\n";
      (void)json_out;  // the contract is structured data: JSON either way
      return OkStatus();
    }));
  }
  {
    auto* cmd = agent->add_subcommand(
        "run",
        "Run agent NAME on --input (offline provider unless configured otherwise); prints "
        "its output and the actions it proposes");
    struct Opts {
      std::string name, input, record, run, step, provider;
      std::vector<std::string> untrusted;
      bool no_cache = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("name", o->name, "Agent name (see `keel agent list`)")->required();
    cmd->add_option("--input", o->input, "Input JSON object, @FILE, or - for standard input")
        ->required();
    cmd->add_option("--record", o->record, "The customer record this is for (cost and memory)");
    cmd->add_option("--run", o->run, "Run id to attribute the cost to");
    cmd->add_option("--step", o->step, "Step id");
    cmd->add_option("--provider", o->provider,
                    "Model provider name from keel.yaml (default: the "
                    "agent's, else models.default, else offline)");
    cmd->add_option("--untrusted", o->untrusted, "Another untrusted input path (JSON pointer)");
    cmd->add_flag("--no-cache", o->no_cache, "Do not answer from the response cache");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(std::string input, TextOrFile(o->input, 16 << 20));
      KEEL_ASSIGN_OR_RETURN(auto w, Wire(ctx, false));
      agents::AgentContext ac;
      ac.record_id = o->record;
      ac.run_id = o->run;
      ac.step_id = o->step;
      ac.provider = o->provider;
      ac.untrusted = o->untrusted;
      ac.use_cache = !o->no_cache;
      KEEL_ASSIGN_OR_RETURN(agents::AgentOutcome out, w->runner->Run(o->name, input, ac));
      json acts = json::array();
      for (const auto& a : out.actions) acts.push_back(ActionJson(a));
      json rejected = json::array();
      for (const auto& r : out.rejected)
        rejected.push_back({{"type", r.type}, {"reason", r.reason}});
      if (o->json) {
        json j = {{"agent", out.agent},
                  {"version", out.version},
                  {"output", json::parse(out.output_json)},
                  {"actions", acts},
                  {"rejected_actions", rejected},
                  {"tainted_fields", out.tainted_fields},
                  {"provider", out.provider},
                  {"model", out.model},
                  {"cached", out.cached},
                  {"model_calls", out.model_calls},
                  {"input_tokens", out.input_tokens},
                  {"output_tokens", out.output_tokens},
                  {"cost_nanousd", out.cost_nanousd},
                  {"artifacts",
                   {{"template", out.template_artifact},
                    {"prompt", out.prompt_artifact},
                    {"response", out.response_artifact},
                    {"output", out.output_artifact}}},
                  {"ledger_seq", out.ledger_seq}};
        if (!out.draft_artifact.empty()) j["artifacts"]["draft"] = out.draft_artifact;
        std::cout << j.dump(2) << "\n";
        return OkStatus();
      }
      std::cout << json::parse(out.output_json).dump(2) << "\n";
      for (const auto& a : out.actions) {
        std::cout << "proposed: " << a.type << (a.requires_approval ? "  [needs approval]" : "")
                  << "  " << a.params_json << "\n";
        for (const auto& r : a.approval_reasons) std::cout << "  why: " << r << "\n";
      }
      for (const auto& r : out.rejected)
        std::cout << "rejected: " << r.type << ": " << r.reason << "\n";
      if (!out.draft_artifact.empty()) std::cout << "draft: " << out.draft_artifact << "\n";
      std::cout << out.provider << "/" << out.model << ": " << out.input_tokens << " in + "
                << out.output_tokens << " out tokens, " << Usd(out.cost_nanousd)
                << (out.cached ? " (cached)" : "") << "; ledger entry " << out.ledger_seq << "\n";
      return OkStatus();
    }));
  }

  auto* cost = app.add_subcommand("cost",
                                  "What model calls cost: totals and by agent, model and record "
                                  "(\"what did this lead cost?\")");
  struct CostOpts {
    std::string record, since, run, agent;
    bool json = false;
  };
  auto co = std::make_shared<CostOpts>();
  cost->add_option("--record", co->record, "Only calls for this customer record");
  cost->add_option("--since", co->since, "Only calls at or after DATE (2026-01-31 or RFC 3339)");
  cost->add_option("--run", co->run, "Only calls of this run");
  cost->add_option("--agent", co->agent, "Only calls of this agent");
  cost->add_flag("--json", co->json, "Print JSON");
  cost->callback(Run(ctx, [ctx, co]() -> Status {
    store::CostQuery q;
    q.record_id = co->record;
    q.run_id = co->run;
    q.agent = co->agent;
    if (!co->since.empty() && !ParseTimeMicros(co->since, &q.since_us)) {
      return InvalidArgument("--since '" + co->since +
                             "' is not a date (want 2026-01-31 or RFC 3339)");
    }
    KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
    KEEL_ASSIGN_OR_RETURN(store::CostReport r, store::QueryCost(*ws, q));
    if (co->json) {
      json j = {{"total", LineJson(r.total)}};
      for (auto [key, lines] :
           {std::pair{"by_agent", &r.by_agent}, std::pair{"by_model", &r.by_model},
            std::pair{"by_record", &r.by_record}}) {
        j[key] = json::array();
        for (const auto& l : *lines) j[key].push_back(LineJson(l));
      }
      std::cout << j.dump(2) << "\n";
      return OkStatus();
    }
    auto print = [](const std::string& label, const store::CostLine& l) {
      std::cout << "  " << std::left << std::setw(28) << (label.empty() ? "(none)" : label)
                << std::right << std::setw(6) << l.calls << " calls " << std::setw(5)
                << l.cached_calls << " cached " << std::setw(10) << l.input_tokens << " in "
                << std::setw(9) << l.output_tokens << " out  " << Usd(l.cost_nanousd) << "\n";
    };
    std::cout << "total\n";
    print("all", r.total);
    if (r.total.calls == 0) return OkStatus();
    std::cout << "by agent\n";
    for (const auto& l : r.by_agent) print(l.key, l);
    std::cout << "by model\n";
    for (const auto& l : r.by_model) print(l.key, l);
    std::cout << "by record\n";
    for (const auto& l : r.by_record) print(l.key, l);
    return OkStatus();
  }));
}

}  // namespace keel::cli
