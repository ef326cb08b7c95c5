#include "cli/wiring.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "agents/config.h"
#include "agents/offline.h"
#include "core/json.h"

namespace keel::cli {

using nlohmann::json;

Result<std::unique_ptr<AgentWiring>> WireAgents(const Context& ctx, store::Workspace* ws,
                                                bool read_only) {
  auto w = std::make_unique<AgentWiring>();
  KEEL_ASSIGN_OR_RETURN(agents::ModelsConfig cfg,
                        agents::ParseModelsConfig(ws->config_text(), ws->config_path()));
  KEEL_ASSIGN_OR_RETURN(store::VaultOptions vopts,
                        store::ParseVaultConfig(ws->config_text(), ws->config_path()));
  if (const char* p = std::getenv("KEEL_VAULT_PASSPHRASE")) vopts.passphrase = p;
  w->vault = std::make_unique<store::Vault>(ws, vopts);
  store::Vault* vault = w->vault.get();
  agents::SecretSource secrets = [vault, read_only](const std::string& name)
      -> Result<std::string> {
    store::SecretUse use;
    use.actor = "system";
    use.purpose = "model provider API key";
    if (read_only) {
      return FailedPrecondition("secret '" + name + "' cannot be used by a read-only command");
    }
    KEEL_ASSIGN_OR_RETURN(store::SecretValue v, vault->GetSecret(name, use));
    return std::string(v.Reveal());
  };

  agents::AgentRunnerOptions o;
  o.default_provider = cfg.default_provider;
  o.prices = cfg.prices;
  w->owned.push_back(agents::NewOfflineProvider());
  o.providers["offline"] = w->owned.back().get();
  w->http = NewCurlHttpClient();
  for (const auto& p : cfg.providers) {
    if (p.http.kind == "offline") {
      o.providers[p.name] = o.providers["offline"];
      continue;
    }
    KEEL_ASSIGN_OR_RETURN(auto prov,
                          agents::NewHttpProvider(p.http, w->http.get(), ctx.env.clock, secrets));
    o.providers[p.name] = prov.get();
    w->owned.push_back(std::move(prov));
  }
  if (!read_only) {
    w->memory = std::make_unique<memory::Memory>(ws);
    o.memory = w->memory.get();
  }
  w->runner = std::make_unique<agents::AgentRunner>(ws, o);
  KEEL_RETURN_IF_ERROR(w->runner->RegisterBuiltinsAndWorkspaceAgents());
  return w;
}

bool FlowAgents::HasAgent(const std::string& name) const {
  return builtins_.HasAgent(name) || runner_->Find(name) != nullptr;
}

Outcome FlowAgents::Invoke(const std::string& name, const json& input,
                           const flow::CallContext& ctx, json* output) {
  if (runner_->Find(name) == nullptr) return builtins_.Invoke(name, input, ctx, output);
  agents::AgentContext actx;
  actx.run_id = ctx.run_id;
  actx.step_id = ctx.step_key;
  actx.actor = "workflow";
  // Cost and memory are attributed to the record the step works on, when the input names it.
  for (const char* k : {"record_id", "lead_id"}) {
    if (input.is_object() && input.contains(k) && input[k].is_string()) {
      actx.record_id = input[k].get<std::string>();
      break;
    }
  }
  auto r = runner_->Run(name, CanonicalJson(input), actx);
  if (!r.ok()) {
    const Status& s = r.status();
    ErrorClass c = ErrorClass::kPermanent;
    switch (s.code()) {
      case StatusCode::kUnavailable: c = ErrorClass::kTransient; break;
      case StatusCode::kDeadlineExceeded: c = ErrorClass::kInDoubt; break;
      case StatusCode::kFailedPrecondition: c = ErrorClass::kNeedsHuman; break;
      default: c = ErrorClass::kPermanent; break;
    }
    return Outcome::Failure(c, s.message());
  }
  json out = json::parse(r->output_json, nullptr, false);
  if (!out.is_object()) out = json::object();
  json actions = json::array();
  bool any_approval = false;
  for (const auto& a : r->actions) {
    json params = json::parse(a.params_json, nullptr, false);
    actions.push_back({{"type", a.type},
                       {"params", params.is_discarded() ? json::object() : params},
                       {"requires_approval", a.requires_approval},
                       {"approval_reasons", a.approval_reasons}});
    any_approval = any_approval || a.requires_approval;
  }
  out["actions"] = actions;
  out["requires_approval"] = any_approval;
  out["tainted_fields"] = r->tainted_fields;
  if (!r->draft_artifact.empty()) out["draft_artifact"] = r->draft_artifact;
  if (!r->output_artifact.empty()) out["output_artifact"] = r->output_artifact;
  out["cost_usd"] = static_cast<double>(r->cost_nanousd) / 1e9;
  *output = std::move(out);
  return Outcome::Success();
}

}  // namespace keel::cli
