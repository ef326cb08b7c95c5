// AgentRun::CallModel: the model calls of one run, with the response cache, the budgets, the
// accounting (`model.call` entries, model_calls rows, cost) and the output's schema check
// with one retry; see agent_run.h.
#include <algorithm>
#include <cmath>

#include "agents/agent_run.h"
#include "agents/json_schema.h"
#include "core/hash.h"
#include "store/artifacts.h"
#include "store/model_usage.h"
#include "store/workspace.h"

namespace keel::agents {
namespace {

using nlohmann::json;

json ResponseToJson(const ModelResponse& r) {
  json calls = json::array();
  for (const auto& c : r.tool_calls) {
    calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", json::parse(c.arguments_json)}});
  }
  return {{"provider", r.provider},
          {"model", r.model},
          {"text", r.text},
          {"json", r.json},
          {"tool_calls", calls},
          {"finish_reason", r.finish_reason},
          {"usage", {{"input_tokens", r.input_tokens}, {"output_tokens", r.output_tokens}}},
          {"raw_body", r.raw_body}};
}

ModelResponse ResponseFromJson(const json& j) {
  ModelResponse r;
  r.provider = JsonStr(j, "provider");
  r.model = JsonStr(j, "model");
  r.text = JsonStr(j, "text");
  r.json = JsonStr(j, "json");
  r.finish_reason = JsonStr(j, "finish_reason");
  if (j.contains("usage")) {
    r.input_tokens = j["usage"].value("input_tokens", int64_t{0});
    r.output_tokens = j["usage"].value("output_tokens", int64_t{0});
  }
  if (j.contains("tool_calls") && j["tool_calls"].is_array()) {
    for (const json& c : j["tool_calls"]) {
      r.tool_calls.push_back({JsonStr(c, "id"), JsonStr(c, "name"),
                              CanonicalJson(c.value("arguments", json::object()))});
    }
  }
  r.raw_body = JsonStr(j, "raw_body");
  return r;
}

int64_t EstimateTokens(const std::string& s) {
  return static_cast<int64_t>((s.size() + 3) / 4);
}

}  // namespace

Result<json> AgentRun::CallModel() {
  const AgentContract& c = c_;
  Clock* clock = ws_->env().clock;
  json output;
  out_.cached = true;  // until a call reaches the provider
  for (int attempt = 0; attempt < 2; ++attempt) {
    int64_t elapsed_ms = (clock->MonotonicMicros() - start_us_) / 1000;
    int64_t remaining_ms = c.budget.max_seconds * 1000 - elapsed_ms;
    if (remaining_ms <= 0) {
      return Fail(DeadlineExceeded("agent " + c.name + " ran out of its time budget of " +
                                   std::to_string(c.budget.max_seconds) + " s"));
    }
    int64_t prompt_tokens = 0;
    for (const auto& m : messages_) prompt_tokens += EstimateTokens(m.content);
    int64_t max_out =
        std::min(c.budget.max_output_tokens, c.budget.max_tokens - tokens_used_ - prompt_tokens);
    if (max_out <= 0) {
      return Fail(FailedPrecondition(
          "agent " + c.name + ": the token budget of " + std::to_string(c.budget.max_tokens) +
          " is spent (prompt needs about " + std::to_string(prompt_tokens) + ")"));
    }
    ModelRequest req;
    req.model = model_;
    req.messages = messages_;
    req.temperature = c.temperature;
    req.max_tokens = max_out;
    req.output_schema_json = c.output_schema_json;
    req.timeout_ms = remaining_ms;
    req.task = c.task.empty() ? c.name : c.task;
    req.input_json = CanonicalJson(input_);
    KEEL_ASSIGN_OR_RETURN(ModelResponse resp, CallOnce(req, attempt));

    if (out_.cost_nanousd > static_cast<int64_t>(std::llround(c.budget.max_cost_usd * 1e9))) {
      return Fail(FailedPrecondition("agent " + c.name + ": the money budget of $" +
                                     std::to_string(c.budget.max_cost_usd) + " is spent"));
    }
    if (tokens_used_ > c.budget.max_tokens) {
      return Fail(FailedPrecondition("agent " + c.name + ": used " + std::to_string(tokens_used_) +
                                     " tokens, over its budget of " +
                                     std::to_string(c.budget.max_tokens)));
    }

    std::string text = !resp.json.empty() ? resp.json : ExtractJsonObject(resp.text);
    Status valid;
    if (text.empty()) {
      valid = InvalidArgument("the reply is not a JSON object");
    } else {
      output = json::parse(text);
      valid = ValidateJson(out_schema_, output);
    }
    if (valid.ok()) break;
    if (attempt == 1) {
      return Fail(FailedPrecondition(
          "agent " + c.name +
          ": the model's output is still invalid after a retry: " + valid.message()));
    }
    messages_.push_back({"assistant", resp.text.substr(0, 20000)});
    messages_.push_back(
        {"user", "Your reply did not match the required output schema: " + valid.message() +
                     "\nReply again with only the corrected JSON object."});
  }
  return output;
}

Result<ModelResponse> AgentRun::CallOnce(const ModelRequest& req, int attempt) {
  const AgentContract& c = c_;
  json msgs = json::array();
  for (const auto& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  json prompt_doc = {{"provider", provider_->name()},
                     {"model", model_},
                     {"messages", msgs},
                     {"temperature", req.temperature},
                     {"max_tokens", req.max_tokens},
                     {"output_schema", out_schema_},
                     {"task", req.task},
                     {"input", input_}};
  std::string prompt_text = CanonicalJson(prompt_doc);
  std::string prompt_hash = Sha256Hex(prompt_text);

  ModelResponse resp;
  bool cached = false;
  const bool cacheable = ctx_.use_cache && req.temperature == 0;
  if (cacheable) {
    KEEL_ASSIGN_OR_RETURN(auto hit, store::LookupResponseCache(*ws_, prompt_hash));
    if (hit) {
      auto body = store::GetArtifact(*ws_, hit->response_artifact);
      if (body.ok()) {
        auto j = ParseJson(*body, "cached response");
        if (j.ok()) {
          resp = ResponseFromJson(*j);
          cached = true;
        }
      }
    }
  }
  if (!cached) {
    out_.cached = false;
    auto r = provider_->Complete(req);
    if (!r.ok()) return Fail(r.status().WithContext("agent " + c.name));
    resp = std::move(r).value();
  }
  ++out_.model_calls;
  bool price_known = false;
  int64_t cost = cached ? 0
                        : CostNanoUsd(opts_.prices, resp.model.empty() ? model_ : resp.model,
                                      resp.input_tokens, resp.output_tokens, &price_known);
  if (!price_known && !cached)
    cost = CostNanoUsd(opts_.prices, model_, resp.input_tokens, resp.output_tokens, &price_known);
  std::string response_text = ResponseToJson(resp).dump(2) + "\n";

  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    store::PutArtifactOptions po;
    po.media_type = "application/json; keel-origin=keel";
    po.name = "agent/" + c.name + "/prompt";
    po.actor = actor_;
    po.run_id = ctx_.run_id;
    po.step_id = ctx_.step_id;
    KEEL_ASSIGN_OR_RETURN(auto pinfo, store::PutArtifact(txn, prompt_text, po));
    po.media_type = "application/json; keel-origin=model";
    po.name = "agent/" + c.name + "/response";
    KEEL_ASSIGN_OR_RETURN(auto rinfo, store::PutArtifact(txn, response_text, po));
    out_.prompt_artifact = pinfo.hash;
    out_.response_artifact = rinfo.hash;
    json payload = {
        {"gen_ai.operation.name", "chat"},
        {"gen_ai.provider.name", resp.provider.empty() ? provider_->name() : resp.provider},
        {"gen_ai.request.model", model_},
        {"gen_ai.response.model", resp.model},
        {"gen_ai.request.temperature", req.temperature},
        {"gen_ai.request.max_tokens", req.max_tokens},
        {"gen_ai.usage.input_tokens", cached ? 0 : resp.input_tokens},
        {"gen_ai.usage.output_tokens", cached ? 0 : resp.output_tokens},
        {"gen_ai.response.finish_reasons", json::array({resp.finish_reason})},
        {"keel.agent", c.name},
        {"keel.agent.version", c.version},
        {"keel.attempt", attempt + 1},
        {"keel.cache_hit", cached},
        {"keel.cost_nanousd", cost},
        {"keel.price_known", cached || price_known},
        {"keel.prompt_hash", prompt_hash},
        {"keel.http_attempts", resp.attempts}};
    KEEL_ASSIGN_OR_RETURN(auto e, txn.Append({actor_,
                                              "model.call",
                                              ctx_.record_id,
                                              ctx_.run_id,
                                              ctx_.step_id,
                                              CanonicalJson(payload),
                                              {pinfo.hash, rinfo.hash}}));
    store::ModelCall mc;
    mc.id = NewId("mc", txn.now_us(), ws_->env().random);
    mc.run_id = ctx_.run_id;
    mc.step_id = ctx_.step_id;
    mc.agent = c.name;
    mc.record_id = ctx_.record_id;
    mc.provider = resp.provider.empty() ? provider_->name() : resp.provider;
    mc.model = model_;
    mc.input_tokens = cached ? 0 : resp.input_tokens;
    mc.output_tokens = cached ? 0 : resp.output_tokens;
    mc.cost_nanousd = cost;
    mc.cached = cached;
    mc.finish_reason = resp.finish_reason;
    mc.prompt_hash = prompt_hash;
    mc.prompt_artifact = pinfo.hash;
    mc.response_artifact = rinfo.hash;
    mc.ledger_seq = e.seq;
    KEEL_RETURN_IF_ERROR(store::InsertModelCall(txn, mc));
    if (cached) return store::CountCacheHit(txn, prompt_hash);
    if (cacheable) {
      store::CachedResponse cr;
      cr.prompt_hash = prompt_hash;
      cr.response_artifact = rinfo.hash;
      cr.provider = mc.provider;
      cr.model = model_;
      cr.input_tokens = resp.input_tokens;
      cr.output_tokens = resp.output_tokens;
      return store::PutResponseCache(txn, cr);
    }
    return OkStatus();
  }));
  if (!cached) {
    tokens_used_ += resp.input_tokens + resp.output_tokens;
    out_.input_tokens += resp.input_tokens;
    out_.output_tokens += resp.output_tokens;
    out_.cost_nanousd += cost;
  }
  return resp;
}

}  // namespace keel::agents
