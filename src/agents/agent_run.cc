// AgentRun's contract side (Prepare) and its failure record; see agent_run.h.
#include "agents/agent_run.h"

#include <algorithm>

#include "agents/json_schema.h"
#include "agents/prompt_template.h"
#include "core/hash.h"
#include "memory/memory.h"
#include "store/artifacts.h"
#include "store/workspace.h"

namespace keel::agents {

using nlohmann::json;

std::string JsonStr(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

AgentRun::AgentRun(store::Workspace* ws, const AgentRunnerOptions& opts,
                   const AgentContract& contract, const AgentContext& ctx)
    : ws_(ws),
      opts_(opts),
      c_(contract),
      ctx_(ctx),
      actor_("agent:" + contract.name),
      start_us_(ws->env().clock->MonotonicMicros()) {}

Status AgentRun::Prepare(const std::string& input_json) {
  const AgentContract& c = c_;
  KEEL_ASSIGN_OR_RETURN(input_, ParseJsonObject(input_json, "the input of agent " + c.name));
  KEEL_ASSIGN_OR_RETURN(json in_schema, ParseJson(c.input_schema_json, "input schema"));
  KEEL_ASSIGN_OR_RETURN(out_schema_, ParseJson(c.output_schema_json, "output schema"));
  if (Status s = ValidateJson(in_schema, input_); !s.ok()) {
    return InvalidArgument("the input of agent " + c.name +
                           " does not match its schema: " + s.message());
  }
  std::string provider_name = !ctx_.provider.empty() ? ctx_.provider
                              : !c.provider.empty()  ? c.provider
                                                     : opts_.default_provider;
  auto pit = opts_.providers.find(provider_name);
  if (pit == opts_.providers.end() || pit->second == nullptr) {
    return FailedPrecondition("agent " + c.name + " wants model provider '" + provider_name +
                              "', which is not configured (models.providers in keel.yaml)");
  }
  provider_ = pit->second;
  model_ = !c.model.empty() ? c.model : provider_->default_model();

  taint_ = TaintSet(c.untrusted);
  for (const auto& p : ctx_.untrusted) {
    if (p.empty() || p[0] != '/')
      return InvalidArgument("untrusted path '" + p + "' must start with '/'");
    taint_.Add(p);
  }

  out_.agent = c.name;
  out_.version = c.version;
  out_.provider = provider_->name();
  out_.model = model_;

  // Memory: facts come from outside text, so they are quoted data like any page.
  if (opts_.memory != nullptr && c.memory.budget_tokens > 0 && !ctx_.record_id.empty() &&
      std::find(c.memory.subjects.begin(), c.memory.subjects.end(), "record") !=
          c.memory.subjects.end()) {
    memory::RecallQuery q;
    if (!c.memory.query.empty()) {
      KEEL_ASSIGN_OR_RETURN(q.query, RenderTemplate(c.memory.query, input_, TaintSet()));
    }
    q.subject = ctx_.record_id;
    q.budget_tokens = c.memory.budget_tokens;
    q.agent = c.name;
    q.run_id = ctx_.run_id;
    q.step_id = ctx_.step_id;
    KEEL_ASSIGN_OR_RETURN(memory::RecallResult rr, opts_.memory->Recall(q));
    json facts = json::array();
    for (const auto& sf : rr.facts) {
      recalled_.emplace_back(sf.fact.id, sf.fact.text);
      facts.push_back({{"id", sf.fact.id},
                       {"text", sf.fact.text},
                       {"confidence", sf.fact.confidence},
                       {"source", sf.fact.provenance.artifact}});
    }
    input_["memory"] = facts;
    taint_.Add("/memory");
    out_.retrieval_id = rr.retrieval_id;
  }

  // The template, as a versioned artifact (a new version only when its text changes).
  json tmpl = {
      {"agent", c.name}, {"version", c.version}, {"system", c.system}, {"prompt", c.prompt}};
  std::string tmpl_text = tmpl.dump(2) + "\n";
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    store::LedgerQuery lq;
    lq.kind = "agent.template";
    lq.subject = actor_;
    lq.newest_first = true;
    lq.limit = 1;
    KEEL_ASSIGN_OR_RETURN(auto prev, ws_->QueryLedger(lq));
    std::string parent;
    if (!prev.empty()) {
      auto p = ParseJson(prev[0].payload, "agent.template entry");
      if (p.ok()) parent = JsonStr(*p, "artifact");
    }
    store::PutArtifactOptions po;
    po.media_type = "application/json; keel-origin=keel";
    po.name = "agent/" + c.name + "/prompt-template";
    po.parent = parent == Sha256Hex(tmpl_text) ? "" : parent;
    po.actor = actor_;
    KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, tmpl_text, po));
    out_.template_artifact = info.hash;
    if (parent != info.hash) {
      json payload = {{"agent", c.name}, {"version", c.version}, {"artifact", info.hash}};
      if (!po.parent.empty()) payload["parent"] = po.parent;
      KEEL_RETURN_IF_ERROR(
          txn.Append(
                 {actor_, "agent.template", actor_, "", "", CanonicalJson(payload), {info.hash}})
              .status());
    }
    return OkStatus();
  }));

  trusted_.emplace(input_, taint_);
  saw_tainted_ = trusted_->any_tainted();
  KEEL_ASSIGN_OR_RETURN(std::string user, RenderTemplate(c.prompt, input_, taint_));
  messages_ = {{"system", (c.system.empty() ? "" : c.system + "\n\n") + kDataBlockRule},
               {"user", user}};
  return OkStatus();
}

Status AgentRun::Fail(const Status& s) {
  json payload = {{"agent", c_.name},
                  {"code", std::string(StatusCodeName(s.code()))},
                  {"error", s.message().substr(0, 2000)},
                  {"model_calls", out_.model_calls}};
  Status w = ws_->Write([&](store::Txn& txn) {
    return txn
        .Append({actor_,
                 "agent.failed",
                 ctx_.record_id,
                 ctx_.run_id,
                 ctx_.step_id,
                 CanonicalJson(payload),
                 {}})
        .status();
  });
  w.IgnoreError();  // the original error is what the caller needs to see
  return s;
}

}  // namespace keel::agents
