// Agent contracts (YAML parsing and checks), the runner's registry and the outline of one
// Run; the jobs of a Run are AgentRun's (agents/agent_run.h).
#include "agents/agent.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agents/agent_run.h"
#include "agents/json_schema.h"
#include "agents/prompt_template.h"
#include "agents/taint.h"
#include "core/json.h"
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
  const AgentContract* c = Find(name);
  if (c == nullptr) {
    std::string known;
    for (const auto& [n, k] : contracts_) known += (known.empty() ? "" : ", ") + n;
    return NotFound("no agent named '" + name + "' (known: " + known + ")");
  }
  AgentRun run(ws_, opts_, *c, ctx);
  KEEL_RETURN_IF_ERROR(run.Prepare(input_json));
  KEEL_ASSIGN_OR_RETURN(Json output, run.CallModel());
  run.ReviewOutput(&output);
  KEEL_RETURN_IF_ERROR(run.Record(output));
  return run.TakeOutcome();
}

}  // namespace keel::agents
