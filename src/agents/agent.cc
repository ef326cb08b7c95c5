#include "agents/agent.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agents/json_schema.h"
#include "agents/prompt_template.h"
#include "agents/taint.h"
#include "core/hash.h"
#include "core/json.h"
#include "memory/memory.h"
#include "store/artifacts.h"
#include "store/model_usage.h"
#include "store/workspace.h"

namespace keel::agents {
namespace {

using nlohmann::json;

// ---- YAML -> JSON -------------------------------------------------------------------------

json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& x : n) a.push_back(YamlToJson(x));
      return a;
    }
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      if (!s.empty() && s.find_first_not_of("-0123456789") == std::string::npos &&
          s.find('-', 1) == std::string::npos && s != "-") {
        try {
          return std::stoll(s);
        } catch (const std::exception&) {
        }
      }
      if (!s.empty() && s.find_first_not_of("-+0123456789.eE") == std::string::npos) {
        try {
          size_t used = 0;
          double d = std::stod(s, &used);
          if (used == s.size()) return d;
        } catch (const std::exception&) {
        }
      }
      return s;
    }
    default:
      return nullptr;
  }
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64 || !(n[0] >= 'a' && n[0] <= 'z')) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

Result<std::vector<std::string>> StringList(const json& v, const std::string& what) {
  std::vector<std::string> out;
  if (!v.is_array()) return InvalidArgument(what + " must be a list of strings");
  for (const json& x : v) {
    if (!x.is_string()) return InvalidArgument(what + " must be a list of strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

Status CheckContract(const AgentContract& c) {
  if (!ValidName(c.name)) {
    return InvalidArgument("agent name '" + c.name + "' must match [a-z][a-z0-9_-]* (at most 64)");
  }
  for (const auto* s : {&c.input_schema_json, &c.output_schema_json}) {
    KEEL_ASSIGN_OR_RETURN(Json schema, ParseJson(*s, "schema of agent " + c.name));
    auto st = CheckSchema(schema);
    if (!st.ok()) return st.WithContext("agent " + c.name);
  }
  for (const auto& p : c.untrusted) {
    if (p.empty() || p[0] != '/') {
      return InvalidArgument("agent " + c.name + ": untrusted path '" + p +
                             "' must be a JSON pointer starting with '/'");
    }
  }
  if (c.temperature < 0 || c.temperature > 2) {
    return InvalidArgument("agent " + c.name + ": temperature must be within [0, 2]");
  }
  if (c.budget.max_tokens <= 0 || c.budget.max_seconds <= 0 || c.budget.max_cost_usd < 0 ||
      c.budget.max_output_tokens <= 0) {
    return InvalidArgument("agent " + c.name + ": budget values must be positive");
  }
  for (const auto& s : c.memory.subjects) {
    if (s != "record") {
      return InvalidArgument("agent " + c.name + ": memory subject '" + s +
                             "' is not supported (use: record)");
    }
  }
  for (const auto* p : {&c.memory.remember, &c.memory.sources, &c.memory.used}) {
    if (!p->empty() && (*p)[0] != '/') {
      return InvalidArgument("agent " + c.name + ": memory path '" + *p +
                             "' must be a JSON pointer starting with '/'");
    }
  }
  // A template that does not parse is caught now, not at the first run.
  TaintSet none;
  std::string t = c.prompt;
  size_t open = t.find("{{");
  while (open != std::string::npos) {
    if (t.compare(open, 4, "{{{{") == 0) {
      open = t.find("{{", open + 4);
      continue;
    }
    if (t.find("}}", open + 2) == std::string::npos) {
      return InvalidArgument("agent " + c.name + ": prompt has an unclosed '{{'");
    }
    open = t.find("{{", t.find("}}", open + 2) + 2);
  }
  return OkStatus();
}

// ---- accounting ---------------------------------------------------------------------------

std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

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
  r.provider = Str(j, "provider");
  r.model = Str(j, "model");
  r.text = Str(j, "text");
  r.json = Str(j, "json");
  r.finish_reason = Str(j, "finish_reason");
  if (j.contains("usage")) {
    r.input_tokens = j["usage"].value("input_tokens", int64_t{0});
    r.output_tokens = j["usage"].value("output_tokens", int64_t{0});
  }
  if (j.contains("tool_calls") && j["tool_calls"].is_array()) {
    for (const json& c : j["tool_calls"]) {
      r.tool_calls.push_back(
          {Str(c, "id"), Str(c, "name"), CanonicalJson(c.value("arguments", json::object()))});
    }
  }
  r.raw_body = Str(j, "raw_body");
  return r;
}

// ---- actions ------------------------------------------------------------------------------

const std::set<std::string>& RecipientKeys() {
  static const std::set<std::string> k = {"to",      "recipient", "recipients", "email",
                                          "cc",      "bcc",       "reply_to",   "phone",
                                          "account", "iban",      "payee"};
  return k;
}
const std::set<std::string>& AmountKeys() {
  static const std::set<std::string> k = {"amount",     "total",    "price",    "amount_cents",
                                          "unit_price", "subtotal", "discount", "currency"};
  return k;
}
const std::set<std::string>& LinkKeys() {
  static const std::set<std::string> k = {"url", "link", "links", "href", "payment_link"};
  return k;
}
const std::set<std::string>& ApprovalKeys() {
  static const std::set<std::string> k = {"requires_approval", "approved",          "approval",
                                          "skip_approval",     "approval_required", "auto_approve"};
  return k;
}

// Walks the leaves of an action's params with the nearest object key above each leaf.
template <typename Fn>
void WalkParams(const json& v, const std::string& path, const std::string& key, const Fn& fn) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      WalkParams(it.value(), path + "/" + it.key(), it.key(), fn);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) WalkParams(v[i], path + "/" + std::to_string(i), key, fn);
  } else {
    fn(path, key, v);
  }
}

void ReviewAction(const AgentContract& c, const TrustedValues& trusted, bool saw_tainted,
                  const json& params, const std::string& base, ProposedAction* a) {
  const std::string origin = saw_tainted
                                 ? "comes from untrusted text or is not in the trusted input"
                                 : "is not in the trusted input";
  if (std::find(c.always_approve.begin(), c.always_approve.end(), a->type) !=
      c.always_approve.end()) {
    a->approval_reasons.push_back("'" + a->type + "' always needs an approval (contract)");
  }
  WalkParams(params, base, "", [&](const std::string& path, const std::string& key, const json& v) {
    if (RecipientKeys().count(key) != 0 && !trusted.Contains(v)) {
      a->approval_reasons.push_back("recipient " + path + " " + origin);
    } else if (AmountKeys().count(key) != 0 && !trusted.Contains(v)) {
      a->approval_reasons.push_back("amount " + path + " " + origin);
    } else if (LinkKeys().count(key) != 0 && v.is_string() && !trusted.Contains(v) &&
               !trusted.ContainsText(v.get<std::string>())) {
      a->approval_reasons.push_back("link " + path + " " + origin);
    }
    if (v.is_string()) {
      for (const auto& link : FindLinks(v.get<std::string>())) {
        if (!trusted.ContainsText(link)) {
          a->approval_reasons.push_back("link " + link.substr(0, 100) + " in " + path + " " +
                                        origin);
        }
      }
    }
  });
  a->requires_approval = !a->approval_reasons.empty();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

int64_t EstimateTokens(const std::string& s) {
  return static_cast<int64_t>((s.size() + 3) / 4);
}

// The value at a JSON pointer, or null when the pointer is malformed or points nowhere.
const json* AtPointer(const json& doc, const std::string& pointer) {
  try {
    json::json_pointer ptr(pointer);
    return doc.contains(ptr) ? &doc.at(ptr) : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Writes the output facts named by `memory.remember` into memory, each citing the raw input
// page it was read from (stored as a raw-text artifact) with its span (docs/agents.md,
// "Memory"). A fact whose source is not one of the input pages, whose page is text keel
// generated, or that cannot be located in its page is dropped: memory learns only from outside
// text, never from the model's own words or from recalled facts.
Status RememberOutputFacts(store::Txn& txn, memory::Memory* mem, const AgentContract& c,
                           const AgentContext& ctx, const std::string& actor, const json& input,
                           const json& output, AgentOutcome* out) {
  const json* facts = AtPointer(output, c.memory.remember);
  if (facts == nullptr || !facts->is_array() || facts->empty()) return OkStatus();
  const json* pages = AtPointer(input, c.memory.sources);
  std::map<std::string, size_t> page_of;  // url or "pages/N" -> index
  if (pages != nullptr && pages->is_array()) {
    for (size_t i = 0; i < pages->size(); ++i) {
      if (!(*pages)[i].is_object()) continue;
      page_of["pages/" + std::to_string(i)] = i;
      std::string url = Str((*pages)[i], "url");
      if (!url.empty()) page_of.emplace(url, i);
    }
  }
  std::map<size_t, std::string> artifact_of;  // page index -> raw-text artifact ("" = refused)
  for (const json& f : *facts) {
    if (!f.is_object()) {
      ++out->facts_dropped;
      continue;
    }
    auto it = page_of.find(Str(f, "source"));
    std::string page = it == page_of.end() ? "" : Str((*pages)[it->second], "text");
    std::string kind = Str(f, "kind");
    std::string value = Str(f, "value");
    std::string text = Str(f, "text");
    if (text.empty() && !value.empty()) text = (kind.empty() ? "fact" : kind) + ": " + value;
    if (page.empty() || text.empty()) {
      ++out->facts_dropped;
      continue;
    }
    // The span must lie within the page; without one, the value must occur in it.
    int64_t b = -1, e = -1;
    const json& span = f.contains("span") ? f["span"] : json();
    if (span.is_array() && span.size() == 2 && span[0].is_number_integer() &&
        span[1].is_number_integer()) {
      b = span[0].get<int64_t>();
      e = span[1].get<int64_t>();
    }
    if (b < 0 || e <= b || static_cast<uint64_t>(e) > page.size()) {
      size_t at = value.empty() ? std::string::npos : page.find(value);
      if (at == std::string::npos) {
        ++out->facts_dropped;
        continue;
      }
      b = static_cast<int64_t>(at);
      e = static_cast<int64_t>(at + value.size());
    }
    auto art = artifact_of.find(it->second);
    if (art == artifact_of.end()) {
      store::PutArtifactOptions po;
      po.media_type = "text/plain; charset=utf-8";
      po.name = "page " + Str((*pages)[it->second], "url").substr(0, 200);
      po.actor = actor;
      po.run_id = ctx.run_id;
      po.step_id = ctx.step_id;
      KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, page, po));
      // Identical bytes may already be stored as text keel generated: never learn from it.
      KEEL_ASSIGN_OR_RETURN(auto origin, mem->ArtifactOrigin(info.hash));
      art = artifact_of.emplace(it->second, origin ? "" : info.hash).first;
    }
    if (art->second.empty()) {
      ++out->facts_dropped;
      continue;
    }
    memory::NewFact nf;
    nf.subject = ctx.record_id;
    nf.text = text.substr(0, memory::kMaxFactTextBytes);
    nf.key = kind;
    nf.value = value;
    nf.confidence = f.contains("confidence") && f["confidence"].is_number()
                        ? std::clamp(f["confidence"].get<double>(), 0.0, 1.0)
                        : 0.5;
    nf.source_artifact = art->second;
    nf.span_begin = b;
    nf.span_end = e;
    nf.by = {c.name, ctx.run_id, ctx.step_id};
    // The run's subject is usually a record, but a workflow may work for something that is
    // none (an event key, a topic): what the agent read is remembered either way.
    nf.free_subject = true;
    auto r = mem->Remember(txn, nf);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kInvalidArgument) return r.status();
      ++out->facts_dropped;
      continue;
    }
    out->remembered_facts.push_back(r->fact_id);
  }
  return OkStatus();
}

// The recalled facts an output names in `memory.used` (by id, or by text: a model may quote
// the fact rather than its id; a text cut short by the model matches as a prefix).
std::vector<std::string> UsedFacts(
    const json& output, const std::string& pointer,
    const std::vector<std::pair<std::string, std::string>>& recalled) {
  std::vector<std::string> ids;
  const json* used = AtPointer(output, pointer);
  if (used == nullptr || !used->is_array()) return ids;
  for (const json& u : *used) {
    if (!u.is_string()) continue;
    std::string s = u.get<std::string>();
    if (s.empty()) continue;
    for (const auto& [id, text] : recalled) {
      if (s == id || text.compare(0, s.size(), s) == 0) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

}  // namespace

int64_t CostNanoUsd(const PriceTable& prices, const std::string& model, int64_t in, int64_t out,
                    bool* known) {
  auto it = prices.find(model);
  if (known != nullptr) *known = it != prices.end();
  if (it == prices.end()) return 0;
  // USD per million tokens = nano-USD per 1000 tokens... i.e. tokens * price * 1000 nano-USD.
  double nano = static_cast<double>(in) * it->second.input_per_mtok * 1000.0 +
                static_cast<double>(out) * it->second.output_per_mtok * 1000.0;
  return static_cast<int64_t>(std::llround(nano));
}

Result<AgentContract> ParseAgentYaml(const std::string& text, const std::string& origin) {
  json j;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return InvalidArgument(origin + ": an agent definition must be a mapping");
    j = YamlToJson(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(origin + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  static const std::set<std::string> kKeys = {
      "name",        "version",      "description",   "task",           "provider",   "model",
      "temperature", "input_schema", "output_schema", "system",         "prompt",     "untrusted",
      "budget",      "memory",       "actions",       "always_approve", "draft_field"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (kKeys.count(it.key()) == 0) {
      return InvalidArgument(origin + ": unknown key '" + it.key() + "'");
    }
  }
  AgentContract c;
  c.origin = origin;
  try {
    auto str = [&](const char* k, std::string* out) -> Status {
      if (!j.contains(k)) return OkStatus();
      if (!j[k].is_string()) return InvalidArgument(origin + ": " + k + " must be a string");
      *out = j[k].get<std::string>();
      return OkStatus();
    };
    KEEL_RETURN_IF_ERROR(str("name", &c.name));
    if (c.name.empty()) return InvalidArgument(origin + ": name is required");
    KEEL_RETURN_IF_ERROR(str("description", &c.description));
    KEEL_RETURN_IF_ERROR(str("task", &c.task));
    KEEL_RETURN_IF_ERROR(str("provider", &c.provider));
    KEEL_RETURN_IF_ERROR(str("model", &c.model));
    KEEL_RETURN_IF_ERROR(str("system", &c.system));
    KEEL_RETURN_IF_ERROR(str("prompt", &c.prompt));
    KEEL_RETURN_IF_ERROR(str("draft_field", &c.draft_field));
    if (j.contains("version")) {
      if (!j["version"].is_number_integer() || j["version"].get<int64_t>() < 1) {
        return InvalidArgument(origin + ": version must be a positive integer");
      }
      c.version = j["version"].get<int>();
    }
    if (j.contains("temperature")) {
      if (!j["temperature"].is_number())
        return InvalidArgument(origin + ": temperature must be a number");
      c.temperature = j["temperature"].get<double>();
    }
    if (j.contains("input_schema")) c.input_schema_json = CanonicalJson(j["input_schema"]);
    if (j.contains("output_schema")) c.output_schema_json = CanonicalJson(j["output_schema"]);
    if (j.contains("untrusted")) {
      KEEL_ASSIGN_OR_RETURN(c.untrusted, StringList(j["untrusted"], origin + ": untrusted"));
    }
    if (j.contains("actions")) {
      KEEL_ASSIGN_OR_RETURN(c.actions, StringList(j["actions"], origin + ": actions"));
    }
    if (j.contains("always_approve")) {
      KEEL_ASSIGN_OR_RETURN(c.always_approve,
                            StringList(j["always_approve"], origin + ": always_approve"));
    }
    if (j.contains("budget")) {
      const json& b = j["budget"];
      if (!b.is_object()) return InvalidArgument(origin + ": budget must be a mapping");
      for (auto it = b.begin(); it != b.end(); ++it) {
        const std::string& k = it.key();
        if (!it.value().is_number())
          return InvalidArgument(origin + ": budget." + k + " must be a number");
        if (k == "max_tokens") {
          c.budget.max_tokens = it.value().get<int64_t>();
        } else if (k == "max_cost_usd") {
          c.budget.max_cost_usd = it.value().get<double>();
        } else if (k == "max_seconds") {
          c.budget.max_seconds = it.value().get<int64_t>();
        } else if (k == "max_output_tokens") {
          c.budget.max_output_tokens = it.value().get<int64_t>();
        } else {
          return InvalidArgument(origin + ": unknown key budget." + k);
        }
      }
    }
    if (j.contains("memory")) {
      const json& m = j["memory"];
      if (!m.is_object()) return InvalidArgument(origin + ": memory must be a mapping");
      for (auto it = m.begin(); it != m.end(); ++it) {
        if (it.key() == "subjects") {
          KEEL_ASSIGN_OR_RETURN(c.memory.subjects,
                                StringList(it.value(), origin + ": memory.subjects"));
        } else if (it.key() == "query" && it.value().is_string()) {
          c.memory.query = it.value().get<std::string>();
        } else if (it.key() == "budget_tokens" && it.value().is_number_integer()) {
          c.memory.budget_tokens = it.value().get<int64_t>();
        } else if (it.key() == "remember" && it.value().is_string()) {
          c.memory.remember = it.value().get<std::string>();
        } else if (it.key() == "sources" && it.value().is_string()) {
          c.memory.sources = it.value().get<std::string>();
        } else if (it.key() == "used" && it.value().is_string()) {
          c.memory.used = it.value().get<std::string>();
        } else {
          return InvalidArgument(origin + ": bad or unknown key memory." + it.key());
        }
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgument(origin + ": " + e.what());
  }
  auto s = CheckContract(c);
  if (!s.ok()) return s.WithContext(origin);
  return c;
}

AgentRunner::AgentRunner(store::Workspace* ws, AgentRunnerOptions options)
    : ws_(ws), opts_(std::move(options)) {}
AgentRunner::~AgentRunner() = default;

Status AgentRunner::Register(const AgentContract& c) {
  KEEL_RETURN_IF_ERROR(CheckContract(c));
  contracts_[c.name] = c;
  return OkStatus();
}

Status AgentRunner::RegisterBuiltinsAndWorkspaceAgents() {
  for (const auto& c : BuiltinAgents()) KEEL_RETURN_IF_ERROR(Register(c));
  FileSystem* fs = ws_->env().fs;
  std::string dir = JoinPath(ws_->dir(), "agents");
  if (!fs->Exists(dir)) return OkStatus();
  KEEL_ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (n.size() < 6 || (n.substr(n.size() - 5) != ".yaml" && n.substr(n.size() - 4) != ".yml"))
      continue;
    std::string path = JoinPath(dir, n);
    KEEL_ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 1 << 20));
    KEEL_ASSIGN_OR_RETURN(AgentContract c, ParseAgentYaml(text, "agents/" + n));
    KEEL_RETURN_IF_ERROR(Register(c));
  }
  return OkStatus();
}

const AgentContract* AgentRunner::Find(const std::string& name) const {
  auto it = contracts_.find(name);
  return it == contracts_.end() ? nullptr : &it->second;
}

std::vector<const AgentContract*> AgentRunner::List() const {
  std::vector<const AgentContract*> out;
  for (const auto& [n, c] : contracts_) out.push_back(&c);
  return out;
}

Result<AgentOutcome> AgentRunner::Run(const std::string& name, const std::string& input_json,
                                      const AgentContext& ctx) {
  const AgentContract* cp = Find(name);
  if (cp == nullptr) {
    std::string known;
    for (const auto& [n, c] : contracts_) known += (known.empty() ? "" : ", ") + n;
    return NotFound("no agent named '" + name + "' (known: " + known + ")");
  }
  const AgentContract& c = *cp;
  Clock* clock = ws_->env().clock;
  const int64_t start_us = clock->MonotonicMicros();
  const std::string actor = "agent:" + c.name;

  KEEL_ASSIGN_OR_RETURN(json input, ParseJsonObject(input_json, "the input of agent " + c.name));
  KEEL_ASSIGN_OR_RETURN(json in_schema, ParseJson(c.input_schema_json, "input schema"));
  KEEL_ASSIGN_OR_RETURN(json out_schema, ParseJson(c.output_schema_json, "output schema"));
  if (Status s = ValidateJson(in_schema, input); !s.ok()) {
    return InvalidArgument("the input of agent " + c.name +
                           " does not match its schema: " + s.message());
  }
  std::string provider_name = !ctx.provider.empty() ? ctx.provider
                              : !c.provider.empty() ? c.provider
                                                    : opts_.default_provider;
  auto pit = opts_.providers.find(provider_name);
  if (pit == opts_.providers.end() || pit->second == nullptr) {
    return FailedPrecondition("agent " + c.name + " wants model provider '" + provider_name +
                              "', which is not configured (models.providers in keel.yaml)");
  }
  ModelProvider* provider = pit->second;
  std::string model = !c.model.empty() ? c.model : provider->default_model();

  TaintSet taint(c.untrusted);
  for (const auto& p : ctx.untrusted) {
    if (p.empty() || p[0] != '/')
      return InvalidArgument("untrusted path '" + p + "' must start with '/'");
    taint.Add(p);
  }

  AgentOutcome out;
  out.agent = c.name;
  out.version = c.version;
  out.provider = provider->name();
  out.model = model;

  // Memory: facts come from outside text, so they are quoted data like any page.
  std::vector<std::pair<std::string, std::string>> recalled;  // (id, text) of recalled facts
  if (opts_.memory != nullptr && c.memory.budget_tokens > 0 && !ctx.record_id.empty() &&
      std::find(c.memory.subjects.begin(), c.memory.subjects.end(), "record") !=
          c.memory.subjects.end()) {
    memory::RecallQuery q;
    if (!c.memory.query.empty()) {
      KEEL_ASSIGN_OR_RETURN(q.query, RenderTemplate(c.memory.query, input, TaintSet()));
    }
    q.subject = ctx.record_id;
    q.budget_tokens = c.memory.budget_tokens;
    q.agent = c.name;
    q.run_id = ctx.run_id;
    q.step_id = ctx.step_id;
    KEEL_ASSIGN_OR_RETURN(memory::RecallResult rr, opts_.memory->Recall(q));
    json facts = json::array();
    for (const auto& sf : rr.facts) {
      recalled.emplace_back(sf.fact.id, sf.fact.text);
      facts.push_back({{"id", sf.fact.id},
                       {"text", sf.fact.text},
                       {"confidence", sf.fact.confidence},
                       {"source", sf.fact.provenance.artifact}});
    }
    input["memory"] = facts;
    taint.Add("/memory");
    out.retrieval_id = rr.retrieval_id;
  }

  // The template, as a versioned artifact (a new version only when its text changes).
  json tmpl = {
      {"agent", c.name}, {"version", c.version}, {"system", c.system}, {"prompt", c.prompt}};
  std::string tmpl_text = tmpl.dump(2) + "\n";
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    store::LedgerQuery lq;
    lq.kind = "agent.template";
    lq.subject = actor;
    lq.newest_first = true;
    lq.limit = 1;
    KEEL_ASSIGN_OR_RETURN(auto prev, ws_->QueryLedger(lq));
    std::string parent;
    if (!prev.empty()) {
      auto p = ParseJson(prev[0].payload, "agent.template entry");
      if (p.ok()) parent = Str(*p, "artifact");
    }
    store::PutArtifactOptions po;
    po.media_type = "application/json; keel-origin=keel";
    po.name = "agent/" + c.name + "/prompt-template";
    po.parent = parent == Sha256Hex(tmpl_text) ? "" : parent;
    po.actor = actor;
    KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, tmpl_text, po));
    out.template_artifact = info.hash;
    if (parent != info.hash) {
      json payload = {{"agent", c.name}, {"version", c.version}, {"artifact", info.hash}};
      if (!po.parent.empty()) payload["parent"] = po.parent;
      KEEL_RETURN_IF_ERROR(
          txn.Append({actor, "agent.template", actor, "", "", CanonicalJson(payload), {info.hash}})
              .status());
    }
    return OkStatus();
  }));

  TrustedValues trusted(input, taint);
  const bool saw_tainted = trusted.any_tainted();
  KEEL_ASSIGN_OR_RETURN(std::string user, RenderTemplate(c.prompt, input, taint));
  std::vector<ChatMessage> messages = {
      {"system", (c.system.empty() ? "" : c.system + "\n\n") + kDataBlockRule}, {"user", user}};

  auto fail = [&](const Status& s) -> Status {
    json payload = {{"agent", c.name},
                    {"code", std::string(StatusCodeName(s.code()))},
                    {"error", s.message().substr(0, 2000)},
                    {"model_calls", out.model_calls}};
    Status w = ws_->Write([&](store::Txn& txn) {
      return txn
          .Append({actor,
                   "agent.failed",
                   ctx.record_id,
                   ctx.run_id,
                   ctx.step_id,
                   CanonicalJson(payload),
                   {}})
          .status();
    });
    w.IgnoreError();  // the original error is what the caller needs to see
    return s;
  };

  json output;
  int64_t tokens_used = 0;
  bool all_cached = true;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int64_t elapsed_ms = (clock->MonotonicMicros() - start_us) / 1000;
    int64_t remaining_ms = c.budget.max_seconds * 1000 - elapsed_ms;
    if (remaining_ms <= 0) {
      return fail(DeadlineExceeded("agent " + c.name + " ran out of its time budget of " +
                                   std::to_string(c.budget.max_seconds) + " s"));
    }
    int64_t prompt_tokens = 0;
    for (const auto& m : messages) prompt_tokens += EstimateTokens(m.content);
    int64_t max_out =
        std::min(c.budget.max_output_tokens, c.budget.max_tokens - tokens_used - prompt_tokens);
    if (max_out <= 0) {
      return fail(FailedPrecondition(
          "agent " + c.name + ": the token budget of " + std::to_string(c.budget.max_tokens) +
          " is spent (prompt needs about " + std::to_string(prompt_tokens) + ")"));
    }
    ModelRequest req;
    req.model = model;
    req.messages = messages;
    req.temperature = c.temperature;
    req.max_tokens = max_out;
    req.output_schema_json = c.output_schema_json;
    req.timeout_ms = remaining_ms;
    req.task = c.task.empty() ? c.name : c.task;
    req.input_json = CanonicalJson(input);

    json msgs = json::array();
    for (const auto& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    json prompt_doc = {{"provider", provider->name()},
                       {"model", model},
                       {"messages", msgs},
                       {"temperature", req.temperature},
                       {"max_tokens", req.max_tokens},
                       {"output_schema", out_schema},
                       {"task", req.task},
                       {"input", input}};
    std::string prompt_text = CanonicalJson(prompt_doc);
    std::string prompt_hash = Sha256Hex(prompt_text);

    ModelResponse resp;
    bool cached = false;
    const bool cacheable = ctx.use_cache && req.temperature == 0;
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
      all_cached = false;
      auto r = provider->Complete(req);
      if (!r.ok()) return fail(r.status().WithContext("agent " + c.name));
      resp = std::move(r).value();
    }
    ++out.model_calls;
    bool price_known = false;
    int64_t cost = cached ? 0
                          : CostNanoUsd(opts_.prices, resp.model.empty() ? model : resp.model,
                                        resp.input_tokens, resp.output_tokens, &price_known);
    if (!price_known && !cached)
      cost = CostNanoUsd(opts_.prices, model, resp.input_tokens, resp.output_tokens, &price_known);
    std::string response_text = ResponseToJson(resp).dump(2) + "\n";

    KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
      store::PutArtifactOptions po;
      po.media_type = "application/json; keel-origin=keel";
      po.name = "agent/" + c.name + "/prompt";
      po.actor = actor;
      po.run_id = ctx.run_id;
      po.step_id = ctx.step_id;
      KEEL_ASSIGN_OR_RETURN(auto pinfo, store::PutArtifact(txn, prompt_text, po));
      po.media_type = "application/json; keel-origin=model";
      po.name = "agent/" + c.name + "/response";
      KEEL_ASSIGN_OR_RETURN(auto rinfo, store::PutArtifact(txn, response_text, po));
      out.prompt_artifact = pinfo.hash;
      out.response_artifact = rinfo.hash;
      json payload = {
          {"gen_ai.operation.name", "chat"},
          {"gen_ai.provider.name", resp.provider.empty() ? provider->name() : resp.provider},
          {"gen_ai.request.model", model},
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
      KEEL_ASSIGN_OR_RETURN(auto e, txn.Append({actor,
                                                "model.call",
                                                ctx.record_id,
                                                ctx.run_id,
                                                ctx.step_id,
                                                CanonicalJson(payload),
                                                {pinfo.hash, rinfo.hash}}));
      store::ModelCall mc;
      mc.id = NewId("mc", txn.now_us(), ws_->env().random);
      mc.run_id = ctx.run_id;
      mc.step_id = ctx.step_id;
      mc.agent = c.name;
      mc.record_id = ctx.record_id;
      mc.provider = resp.provider.empty() ? provider->name() : resp.provider;
      mc.model = model;
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
        cr.model = model;
        cr.input_tokens = resp.input_tokens;
        cr.output_tokens = resp.output_tokens;
        return store::PutResponseCache(txn, cr);
      }
      return OkStatus();
    }));
    if (!cached) {
      tokens_used += resp.input_tokens + resp.output_tokens;
      out.input_tokens += resp.input_tokens;
      out.output_tokens += resp.output_tokens;
      out.cost_nanousd += cost;
    }
    if (out.cost_nanousd > static_cast<int64_t>(std::llround(c.budget.max_cost_usd * 1e9))) {
      return fail(FailedPrecondition("agent " + c.name + ": the money budget of $" +
                                     std::to_string(c.budget.max_cost_usd) + " is spent"));
    }
    if (tokens_used > c.budget.max_tokens) {
      return fail(FailedPrecondition("agent " + c.name + ": used " + std::to_string(tokens_used) +
                                     " tokens, over its budget of " +
                                     std::to_string(c.budget.max_tokens)));
    }

    std::string text = !resp.json.empty() ? resp.json : ExtractJsonObject(resp.text);
    Status valid;
    if (text.empty()) {
      valid = InvalidArgument("the reply is not a JSON object");
    } else {
      output = json::parse(text);
      valid = ValidateJson(out_schema, output);
    }
    if (valid.ok()) break;
    if (attempt == 1) {
      return fail(FailedPrecondition(
          "agent " + c.name +
          ": the model's output is still invalid after a retry: " + valid.message()));
    }
    messages.push_back({"assistant", resp.text.substr(0, 20000)});
    messages.push_back(
        {"user", "Your reply did not match the required output schema: " + valid.message() +
                     "\nReply again with only the corrected JSON object."});
  }
  out.cached = all_cached;

  // Proposed actions: the contract's whitelist, then taint review.
  json actions = output.contains("actions") ? output["actions"] : json::array();
  output.erase("actions");
  if (!actions.is_array()) actions = json::array({actions});
  for (size_t i = 0; i < actions.size(); ++i) {
    const json& a = actions[i];
    std::string type = a.is_object() ? Str(a, "type") : "";
    if (type.empty()) {
      out.rejected.push_back(
          {"", "actions/" + std::to_string(i) + " is not an object with a type"});
      continue;
    }
    if (std::find(c.actions.begin(), c.actions.end(), type) == c.actions.end()) {
      out.rejected.push_back({type, "agent " + c.name + " may not propose '" + type +
                                        "' (allowed: " + Join(c.actions) + ")"});
      continue;
    }
    json params = a;
    params.erase("type");
    for (const auto& k : ApprovalKeys()) params.erase(k);  // the model cannot waive approval
    ProposedAction pa;
    pa.type = type;
    pa.params_json = CanonicalJson(params);
    ReviewAction(c, trusted, saw_tainted, params, "/actions/" + std::to_string(i), &pa);
    out.actions.push_back(std::move(pa));
  }
  out.tainted_fields = TaintedOutputPaths(output, trusted, saw_tainted);
  out.output_json = CanonicalJson(output);

  // The agent.run entry, with the output (and a draft) as artifacts.
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    store::PutArtifactOptions po;
    po.media_type = "application/json; keel-origin=agent";
    po.name = "agent/" + c.name + "/output";
    po.actor = actor;
    po.run_id = ctx.run_id;
    po.step_id = ctx.step_id;
    json doc = output;
    json acts = json::array();
    for (const auto& a : out.actions) {
      acts.push_back({{"type", a.type},
                      {"params", json::parse(a.params_json)},
                      {"requires_approval", a.requires_approval},
                      {"approval_reasons", a.approval_reasons}});
    }
    doc["actions"] = acts;
    KEEL_ASSIGN_OR_RETURN(auto oinfo, store::PutArtifact(txn, doc.dump(2) + "\n", po));
    out.output_artifact = oinfo.hash;
    std::vector<std::string> arts = {out.template_artifact, out.prompt_artifact,
                                     out.response_artifact, oinfo.hash};
    if (!c.draft_field.empty() && output.contains(c.draft_field) &&
        output[c.draft_field].is_string()) {
      std::string parent = input.contains("parent_draft") && input["parent_draft"].is_string()
                               ? input["parent_draft"].get<std::string>()
                               : "";
      if (!parent.empty() && !IsDigestHex(parent)) {
        return InvalidArgument("parent_draft '" + parent.substr(0, 80) +
                               "' is not an artifact address");
      }
      po.media_type = "text/plain; keel-origin=agent";
      po.name = "agent/" + c.name + "/draft";
      po.parent = parent;
      KEEL_ASSIGN_OR_RETURN(auto dinfo,
                            store::PutArtifact(txn, output[c.draft_field].get<std::string>(), po));
      out.draft_artifact = dinfo.hash;
      arts.push_back(dinfo.hash);
    }
    json summary = json::array();
    for (const auto& a : out.actions) {
      summary.push_back({{"type", a.type},
                         {"requires_approval", a.requires_approval},
                         {"reasons", a.approval_reasons.size()}});
    }
    json rejected = json::array();
    for (const auto& r : out.rejected) rejected.push_back({{"type", r.type}, {"reason", r.reason}});
    json tainted = json::array();
    for (size_t i = 0; i < out.tainted_fields.size() && i < 50; ++i)
      tainted.push_back(out.tainted_fields[i]);
    json payload = {{"agent", c.name},
                    {"version", c.version},
                    {"requested_by", ctx.actor},
                    {"gen_ai.provider.name", out.provider},
                    {"gen_ai.request.model", model},
                    {"model_calls", out.model_calls},
                    {"cached", out.cached},
                    {"gen_ai.usage.input_tokens", out.input_tokens},
                    {"gen_ai.usage.output_tokens", out.output_tokens},
                    {"keel.cost_nanousd", out.cost_nanousd},
                    {"actions", summary},
                    {"rejected_actions", rejected},
                    {"tainted_fields", tainted}};
    if (opts_.memory != nullptr && !ctx.record_id.empty() && !c.memory.remember.empty()) {
      KEEL_RETURN_IF_ERROR(
          RememberOutputFacts(txn, opts_.memory, c, ctx, actor, input, output, &out));
      payload["facts_remembered"] = out.remembered_facts;
      payload["facts_dropped"] = out.facts_dropped;
    }
    if (!out.retrieval_id.empty()) {
      payload["retrieval_id"] = out.retrieval_id;
      if (!c.memory.used.empty()) {
        out.used_facts = UsedFacts(output, c.memory.used, recalled);
        KEEL_RETURN_IF_ERROR(opts_.memory->MarkUsed(txn, out.retrieval_id, out.used_facts));
        payload["facts_used"] = out.used_facts;
      }
    }
    KEEL_ASSIGN_OR_RETURN(auto e, txn.Append({actor, "agent.run", ctx.record_id, ctx.run_id,
                                              ctx.step_id, CanonicalJson(payload), arts}));
    out.ledger_seq = e.seq;
    return OkStatus();
  }));
  return out;
}

}  // namespace keel::agents
