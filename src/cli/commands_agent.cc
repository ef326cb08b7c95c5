// keel agent list|show|run, keel cost
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/agents.h"
#include "app/views.h"
#include "cli/cli.h"

namespace keel::cli {
namespace {

using nlohmann::json;

std::string Usd(int64_t nano) {
  std::ostringstream s;
  s << "$" << std::fixed << std::setprecision(6) << static_cast<double>(nano) / 1e9;
  return s.str();
}

// Compact JSON as stored (canonical JSON is this dump of the parsed value).
std::string Compact(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void PrintAgentList(const json& arr) {
  for (const auto& a : arr) {
    std::string acts;
    for (const auto& x : a["actions"]) acts += (acts.empty() ? "" : ",") + x.get<std::string>();
    std::cout << std::left << std::setw(12) << a["name"].get<std::string>() << " v"
              << a["version"].get<int>() << "  " << a["description"].get<std::string>()
              << "\n             actions: " << (acts.empty() ? "none" : acts)
              << "  provider: " << a["provider"].get<std::string>()
              << "  from: " << a["origin"].get<std::string>() << "\n";
  }
}

void PrintOutcome(const json& o) {
  std::cout << o["output"].dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  for (const auto& a : o["actions"]) {
    std::cout << "proposed: " << a["type"].get<std::string>()
              << (a["requires_approval"].get<bool>() ? "  [needs approval]" : "") << "  "
              << Compact(a["params"]) << "\n";
    for (const auto& r : a["approval_reasons"]) {
      std::cout << "  why: " << r.get<std::string>() << "\n";
    }
  }
  for (const auto& r : o["rejected_actions"]) {
    std::cout << "rejected: " << r["type"].get<std::string>() << ": "
              << r["reason"].get<std::string>() << "\n";
  }
  if (o["artifacts"].contains("draft")) {
    std::cout << "draft: " << o["artifacts"]["draft"].get<std::string>() << "\n";
  }
  std::cout << o["provider"].get<std::string>() << "/" << o["model"].get<std::string>() << ": "
            << o["input_tokens"].get<int64_t>() << " in + " << o["output_tokens"].get<int64_t>()
            << " out tokens, " << Usd(o["cost_nanousd"].get<int64_t>())
            << (o["cached"].get<bool>() ? " (cached)" : "") << "; ledger entry "
            << o["ledger_seq"].get<int64_t>() << "\n";
}

void PrintCost(const json& r) {
  auto print = [](const json& l, const char* label) {
    std::string key = label != nullptr ? label : l["key"].get<std::string>();
    std::cout << "  " << std::left << std::setw(28) << (key.empty() ? "(none)" : key) << std::right
              << std::setw(6) << l["calls"].get<int64_t>() << " calls " << std::setw(5)
              << l["cached_calls"].get<int64_t>() << " cached " << std::setw(10)
              << l["input_tokens"].get<int64_t>() << " in " << std::setw(9)
              << l["output_tokens"].get<int64_t>() << " out  "
              << Usd(l["cost_nanousd"].get<int64_t>()) << "\n";
  };
  std::cout << "total\n";
  print(r["total"], "all");
  if (r["total"]["calls"].get<int64_t>() == 0) return;
  for (const char* group : {"agent", "model", "record"}) {
    std::cout << "by " << group << "\n";
    for (const auto& l : r[std::string("by_") + group]) print(l, nullptr);
  }
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
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto list, app::ListAgents(*rt));
      json arr = json::array();
      for (const auto* c : list) arr.push_back(app::views::AgentListing(*c));
      if (*json_out) {
        PrintJson(arr);
      } else {
        PrintAgentList(arr);
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = agent->add_subcommand(
        "show", "Show agent NAME's contract: schemas, budget, memory, actions");
    auto name = std::make_shared<std::string>();
    auto json_out = std::make_shared<bool>(false);
    cmd->add_option("NAME", *name, "Agent name")->required();
    cmd->add_flag("--json", *json_out, "Print JSON (the contract is always printed as JSON)");
    cmd->callback(Run(ctx, [ctx, name]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(const auto* c, app::ShowAgent(*rt, *name));
      // The contract is structured data: JSON with or without --json.
      PrintJson(app::views::AgentContract(*c));
      return OkStatus();
    }));
  }
  {
    auto* cmd = agent->add_subcommand(
        "run",
        "Run agent NAME on --input (offline provider unless configured otherwise); prints "
        "its output and the actions it proposes");
    struct Opts {
      app::RunAgentRequest req;
      std::string input;
      bool no_cache = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("NAME", o->req.agent, "Agent name (see `keel agent list`)")->required();
    cmd->add_option("--input", o->input, "Input JSON object, @FILE, or - for standard input")
        ->required();
    cmd->add_option("--record", o->req.record_id,
                    "The customer record this is for (cost and memory)");
    cmd->add_option("--run", o->req.run_id, "Run id to attribute the cost to");
    cmd->add_option("--step", o->req.step_id, "Step id");
    cmd->add_option("--provider", o->req.provider,
                    "Model provider name from keel.yaml (default: the "
                    "agent's, else models.default, else offline)");
    cmd->add_option("--untrusted", o->req.untrusted, "Another untrusted input path (JSON pointer)");
    cmd->add_flag("--no-cache", o->no_cache, "Do not answer from the response cache");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      app::RunAgentRequest req = o->req;
      KEEL_ASSIGN_OR_RETURN(req.input_json, TextOrFile(o->input, 16 << 20));
      req.use_cache = !o->no_cache;
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(auto out, app::RunAgent(*rt, req));
      json view = app::views::AgentOutcome(out);
      if (o->json) {
        PrintJson(view);
      } else {
        PrintOutcome(view);
      }
      return OkStatus();
    }));
  }

  auto* cost = app.add_subcommand("cost",
                                  "What model calls cost: totals and by agent, model and record "
                                  "(\"what did this lead cost?\")");
  struct CostOpts {
    app::CostRequest req;
    bool json = false;
  };
  auto co = std::make_shared<CostOpts>();
  cost->add_option("--record", co->req.record_id, "Only calls for this customer record");
  cost->add_option("--since", co->req.since,
                   "Only calls at or after DATE (2026-01-31 or RFC 3339)");
  cost->add_option("--run", co->req.run_id, "Only calls of this run");
  cost->add_option("--agent", co->req.agent, "Only calls of this agent");
  cost->add_flag("--json", co->json, "Print JSON");
  cost->callback(Run(ctx, [ctx, co]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
    KEEL_ASSIGN_OR_RETURN(auto r, app::QueryCost(*rt, co->req));
    json view = app::views::CostReport(r);
    if (co->json) {
      PrintJson(view);
    } else {
      PrintCost(view);
    }
    return OkStatus();
  }));
}

}  // namespace keel::cli
