#include "app/runtime.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "adapters/log.h"
#include "agents/agent.h"
#include "agents/config.h"
#include "agents/offline.h"
#include "agents/provider.h"
#include "core/http.h"
#include "core/json.h"
#include "flow/builtins.h"
#include "flow/config.h"
#include "flow/engine.h"
#include "memory/memory.h"
#include "store/vault.h"
#include "store/workspace.h"

namespace keel::app {

using nlohmann::json;

const char* AdapterModeName(AdapterMode m) {
  return m == AdapterMode::kLive ? "live" : "sandbox";
}

// The flow engine's view of agents: the engine's deterministic agents (echo, flaky, fail)
// and every registered agent contract. Errors map to the engine's taxonomy: Unavailable ->
// transient, DeadlineExceeded -> in_doubt, FailedPrecondition -> needs_human, anything
// else -> permanent. The output is the agent's output plus `actions` (each with
// requires_approval and reasons), `requires_approval` (any action needs it), the taint
// report, the artifacts it wrote and its cost, so a workflow can gate on them.
class FlowAgents final : public flow::AgentInvoker {
 public:
  explicit FlowAgents(agents::AgentRunner* runner) : runner_(runner) {}
  bool HasAgent(const std::string& name) const override {
    return builtins_.HasAgent(name) || runner_->Find(name) != nullptr;
  }
  Outcome Invoke(const std::string& name, const json& input, const flow::CallContext& ctx,
                 json* output) override;

 private:
  agents::AgentRunner* runner_;
  flow::BuiltinAgents builtins_;
};

Outcome FlowAgents::Invoke(const std::string& name, const json& input, const flow::CallContext& ctx,
                           json* output) {
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
      case StatusCode::kUnavailable:
        c = ErrorClass::kTransient;
        break;
      case StatusCode::kDeadlineExceeded:
        c = ErrorClass::kInDoubt;
        break;
      case StatusCode::kFailedPrecondition:
        c = ErrorClass::kNeedsHuman;
        break;
      default:
        c = ErrorClass::kPermanent;
        break;
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

Result<std::string> LocateWorkspace(const std::string& flag, const std::string& env_value,
                                    const std::string& cwd) {
  return store::Workspace::Find(flag, env_value, cwd);
}

namespace {

// What keel.yaml says of one adapter.
struct AdapterFileSettings {
  std::optional<AdapterMode> mode;
  int concurrency = 0;  // 0: effects.per_adapter
};

// keel.yaml `adapters:` — {NAME: {mode: sandbox|live, concurrency: N}}. Adapters not named
// take the defaults. InvalidArgument names the line for an unknown adapter or key, a bad
// mode or a concurrency outside 1..flow::kMaxConcurrency.
Result<std::map<std::string, AdapterFileSettings>> ParseAdapterSettings(
    const std::string& text, const std::string& path,
    const std::map<std::string, AdapterEntry>& known) {
  std::map<std::string, AdapterFileSettings> out;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap() || !root["adapters"]) return out;
  const YAML::Node& section = root["adapters"];
  auto where = [&](const YAML::Node& n) {
    return path + " line " + std::to_string(n.Mark().line + 1) + ": ";
  };
  if (section.IsNull()) return out;
  if (!section.IsMap()) return InvalidArgument(where(section) + "adapters must be a map");
  for (const auto& kv : section) {
    std::string name = kv.first.as<std::string>();
    if (!known.count(name)) {
      std::string list;
      for (const auto& [n, e] : known) list += (list.empty() ? "" : ", ") + n;
      return InvalidArgument(where(kv.first) + "no adapter named '" + name +
                             "' (adapters: " + list + ")");
    }
    if (!kv.second.IsMap()) {
      return InvalidArgument(where(kv.second) + "adapters." + name + " must be a map");
    }
    AdapterFileSettings& set = out[name];
    for (const auto& f : kv.second) {
      std::string key = f.first.as<std::string>();
      if (key == "concurrency") {
        int v = 0;
        if (!f.second.IsScalar() || !YAML::convert<int>::decode(f.second, v) || v < 1 ||
            v > flow::kMaxConcurrency) {
          return InvalidArgument(where(f.second) + "adapters." + name +
                                 ".concurrency: want a whole number 1.." +
                                 std::to_string(flow::kMaxConcurrency));
        }
        set.concurrency = v;
        continue;
      }
      if (key != "mode") {
        return InvalidArgument(where(f.first) + "unknown key adapters." + name + "." + key +
                               " (known: mode, concurrency)");
      }
      std::string v = f.second.IsScalar() ? f.second.as<std::string>() : "";
      if (v != "sandbox" && v != "live") {
        return InvalidArgument(where(f.second) + "adapters." + name +
                               ".mode must be sandbox or live, not '" + v + "'");
      }
      set.mode = v == "live" ? AdapterMode::kLive : AdapterMode::kSandbox;
    }
  }
  return out;
}

}  // namespace

Runtime::Runtime(RuntimeOptions opts) : opts_(std::move(opts)) {}
Runtime::~Runtime() {
  // The engine borrows the agents and adapters; it goes first.
  engine_.reset();
  worker_lock_.reset();  // releases the worker lock
}

bool Runtime::TakeWorkerLock() {
  if (worker_lock_ != nullptr) return true;
  auto lock = LockFile(opts_.env.fs, JoinPath(ws_->dir(), ".worker.lock"), LockMode::kExclusive,
                       LockWait::kNoWait);
  if (!lock.ok() || *lock == nullptr) return false;
  worker_lock_ = std::move(*lock);
  return true;
}

bool Runtime::WorkerLockHeldElsewhere() {
  // This Runtime's own lock is left out.
  if (worker_lock_ != nullptr) return false;
  auto probe = opts_.env.fs->OpenLockFile(JoinPath(ws_->dir(), ".worker.lock"), /*create=*/false);
  if (!probe.ok()) return false;  // no worker ever ran here
  // Each handle is its own lock holder, so this also sees a lock held by this process's
  // own worker Runtime. The probe's shared lock, if taken, goes with the handle.
  auto taken = (*probe)->TryLock(LockMode::kShared);
  return taken.ok() && !*taken;
}

Result<std::unique_ptr<Runtime>> Runtime::Open(RuntimeOptions opts) {
  std::unique_ptr<Runtime> rt(new Runtime(std::move(opts)));
  const std::string cfg_path = JoinPath(AbsolutePath(rt->opts_.workspace_dir), "keel.yaml");
  store::WorkspaceOpenOptions wo;
  wo.read_only = rt->opts_.read_only;
  if (rt->opts_.env.fs->Exists(cfg_path)) {
    KEEL_ASSIGN_OR_RETURN(rt->config_text_, rt->opts_.env.fs->ReadFile(cfg_path, 1 << 20));
    wo.config_text = rt->config_text_;
  }
  // Open reports a missing folder or keel.yaml with its own hint.
  KEEL_ASSIGN_OR_RETURN(rt->ws_,
                        store::Workspace::Open(rt->opts_.workspace_dir, wo, rt->opts_.env));
  rt->config_text_ = rt->ws_->config_text();
  KEEL_RETURN_IF_ERROR(rt->BuildAdapters());
  return rt;
}

Status Runtime::BuildAdapters() {
  auto add = [&](std::unique_ptr<flow::ActionAdapter> a, bool can_go_live, bool test_only) {
    AdapterEntry e;
    e.adapter = a.get();
    e.can_go_live = can_go_live;
    e.test_only = test_only;
    adapters_[a->name()] = e;
    owned_adapters_.push_back(std::move(a));
  };
  // The real adapters. (Email, payments, web fetch, forms and publishing join here.)
  add(std::make_unique<adapters::LogAdapter>(), false, false);
  for (const auto& f : opts_.test_adapters) add(f.make(opts_.env), f.can_go_live, true);
  return ReloadAdapterModes();
}

Status Runtime::ReloadAdapterModes() {
  KEEL_ASSIGN_OR_RETURN(auto file_modes,
                        ParseAdapterSettings(config_text_, ws_->config_path(), adapters_));
  const bool ws_live = ws_->config().mode == "live";
  for (auto& [name, e] : adapters_) {
    // The adapter's own switch: the latest switch on the ledger, else keel.yaml's
    // `adapters.NAME.mode`, else sandbox.
    e.requested = AdapterMode::kSandbox;
    e.mode_source = "default";
    e.concurrency = 0;
    if (auto it = file_modes.find(name); it != file_modes.end()) {
      if (it->second.mode) {
        e.requested = *it->second.mode;
        e.mode_source = "keel.yaml";
      }
      e.concurrency = it->second.concurrency;
    }
    store::LedgerQuery q;
    q.subject = "adapter:" + name;
    q.kind = "adapter.mode";
    q.newest_first = true;
    q.limit = 1;
    KEEL_ASSIGN_OR_RETURN(auto entries, ws_->QueryLedger(q));
    if (!entries.empty()) {
      auto p = ParseJson(entries[0].payload, "adapter.mode payload");
      if (p.ok() && p->is_object()) {
        e.requested = p->value("mode", "") == "live" ? AdapterMode::kLive : AdapterMode::kSandbox;
        e.mode_source = "ledger";
      }
    }
    if (!e.can_go_live) e.requested = AdapterMode::kSandbox;
    // The workspace's `mode:` is the master switch: live only when both say live.
    e.mode =
        ws_live && e.requested == AdapterMode::kLive ? AdapterMode::kLive : AdapterMode::kSandbox;
  }
  return OkStatus();
}

Result<store::Vault*> Runtime::vault() {
  if (!vault_) {
    // Only callers that use the vault see a bad `vault:` section; other commands still run.
    KEEL_ASSIGN_OR_RETURN(store::VaultOptions o,
                          store::ParseVaultConfig(config_text_, ws_->config_path()));
    if (!opts_.vault_passphrase.empty()) o.passphrase = opts_.vault_passphrase;
    vault_ = std::make_unique<store::Vault>(ws_.get(), std::move(o));
  }
  return vault_.get();
}

memory::Memory& Runtime::memory() {
  if (!memory_) memory_ = std::make_unique<memory::Memory>(ws_.get());
  return *memory_;
}

Result<agents::AgentRunner*> Runtime::agents() {
  if (agents_) return agents_.get();
  KEEL_ASSIGN_OR_RETURN(agents::ModelsConfig cfg,
                        agents::ParseModelsConfig(config_text_, ws_->config_path()));
  KEEL_ASSIGN_OR_RETURN(store::Vault * vault, this->vault());
  const bool read_only = opts_.read_only;
  agents::SecretSource secrets = [vault,
                                  read_only](const std::string& name) -> Result<std::string> {
    if (read_only) {
      return FailedPrecondition("secret '" + name + "' cannot be used by a read-only command");
    }
    store::SecretUse use;
    use.actor = "system";
    use.purpose = "model provider API key";
    KEEL_ASSIGN_OR_RETURN(store::SecretValue v, vault->GetSecret(name, use));
    return std::string(v.Reveal());
  };
  agents::AgentRunnerOptions o;
  o.default_provider = cfg.default_provider;
  o.prices = cfg.prices;
  providers_.push_back(agents::NewOfflineProvider());
  o.providers["offline"] = providers_.back().get();
  http_ = NewCurlHttpClient();
  for (const auto& p : cfg.providers) {
    if (p.http.kind == "offline") {
      o.providers[p.name] = o.providers["offline"];
      continue;
    }
    KEEL_ASSIGN_OR_RETURN(auto prov,
                          agents::NewHttpProvider(p.http, http_.get(), opts_.env.clock, secrets));
    o.providers[p.name] = prov.get();
    providers_.push_back(std::move(prov));
  }
  if (!read_only) o.memory = &memory();
  agents_ = std::make_unique<agents::AgentRunner>(ws_.get(), o);
  KEEL_RETURN_IF_ERROR(agents_->RegisterBuiltinsAndWorkspaceAgents());
  return agents_.get();
}

Status Runtime::SyncReads() {
  return ws_->SyncReads();
}

Result<flow::Engine*> Runtime::engine(const EngineSettings& settings) {
  if (engine_) return engine_.get();
  KEEL_ASSIGN_OR_RETURN(agents::AgentRunner * runner, agents());
  flow_agents_ = std::make_unique<FlowAgents>(runner);
  flow::Registry reg;
  reg.agents = flow_agents_.get();
  for (const auto& [name, e] : adapters_) reg.adapters[name] = e.adapter;
  KEEL_ASSIGN_OR_RETURN(flow::FlowConfig fc,
                        flow::ParseFlowConfig(config_text_, ws_->config_path()));
  flow::EngineOptions o;
  o.event_retention_us = fc.event_retention_us;
  o.effects = fc.effects;
  for (const auto& [name, e] : adapters_) {
    if (e.concurrency > 0) o.effects.lanes["adapter:" + name] = e.concurrency;
  }
  o.batch = settings.batch;
  o.worker_id = settings.worker_id;
  if (settings.lease_us > 0) o.lease_us = settings.lease_us;
  engine_ = std::make_unique<flow::Engine>(ws_.get(), reg, o);
  return engine_.get();
}

}  // namespace keel::app
