#include "agents/config.h"

#include <yaml-cpp/yaml.h>

#include <set>

namespace keel::agents {
namespace {

std::string At(const std::string& path, const YAML::Node& n) {
  return path + " line " + std::to_string(n.Mark().line + 1);
}

}  // namespace

Result<ModelsConfig> ParseModelsConfig(const std::string& text, const std::string& path) {
  ModelsConfig cfg;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["models"]) return cfg;
    YAML::Node m = root["models"];
    if (!m.IsMap()) return InvalidArgument(At(path, m) + ": models must be a mapping");
    for (const auto& kv : m) {
      std::string k = kv.first.as<std::string>();
      if (k != "default" && k != "providers" && k != "prices") {
        return InvalidArgument(At(path, kv.first) + ": unknown key models." + k +
                               " (want default, providers, prices)");
      }
    }
    if (m["providers"]) {
      if (!m["providers"].IsMap()) {
        return InvalidArgument(At(path, m["providers"]) + ": models.providers must be a mapping");
      }
      static const std::set<std::string> kKeys = {"kind",
                                                  "base_url",
                                                  "model",
                                                  "api_key_secret",
                                                  "timeout_seconds",
                                                  "max_retries",
                                                  "max_retry_wait_seconds",
                                                  "json_mode",
                                                  "anthropic_version"};
      for (const auto& p : m["providers"]) {
        ProviderConfig pc;
        pc.name = p.first.as<std::string>();
        const YAML::Node& v = p.second;
        if (!v.IsMap())
          return InvalidArgument(At(path, v) + ": models.providers." + pc.name +
                                 " must be a mapping");
        for (const auto& kv : v) {
          std::string k = kv.first.as<std::string>();
          if (kKeys.count(k) == 0) {
            return InvalidArgument(At(path, kv.first) + ": unknown key models.providers." +
                                   pc.name + "." + k);
          }
        }
        if (!v["kind"])
          return InvalidArgument(At(path, v) + ": models.providers." + pc.name +
                                 ".kind is required");
        pc.http.kind = v["kind"].as<std::string>();
        if (pc.http.kind != "openai" && pc.http.kind != "anthropic" && pc.http.kind != "offline") {
          return InvalidArgument(At(path, v["kind"]) + ": models.providers." + pc.name +
                                 ".kind must be openai, anthropic or offline, not '" +
                                 pc.http.kind + "'");
        }
        if (v["base_url"]) pc.http.base_url = v["base_url"].as<std::string>();
        if (!pc.http.base_url.empty() && pc.http.base_url.rfind("http://", 0) != 0 &&
            pc.http.base_url.rfind("https://", 0) != 0) {
          return InvalidArgument(At(path, v["base_url"]) +
                                 ": base_url must start with http:// or https://");
        }
        if (v["model"]) pc.http.model = v["model"].as<std::string>();
        if (v["api_key_secret"]) pc.http.api_key_secret = v["api_key_secret"].as<std::string>();
        if (v["timeout_seconds"]) {
          int64_t t = v["timeout_seconds"].as<int64_t>();
          if (t < 1)
            return InvalidArgument(At(path, v["timeout_seconds"]) +
                                   ": timeout_seconds must be at least 1");
          pc.http.max_timeout_ms = t * 1000;
        }
        if (v["max_retries"]) {
          pc.http.max_retries = v["max_retries"].as<int>();
          if (pc.http.max_retries < 0 || pc.http.max_retries > 10) {
            return InvalidArgument(At(path, v["max_retries"]) +
                                   ": max_retries must be within 0..10");
          }
        }
        if (v["max_retry_wait_seconds"]) {
          pc.http.max_retry_wait_ms = v["max_retry_wait_seconds"].as<int64_t>() * 1000;
        }
        if (v["json_mode"]) pc.http.json_mode = v["json_mode"].as<std::string>();
        if (pc.http.json_mode != "schema" && pc.http.json_mode != "object" &&
            pc.http.json_mode != "none") {
          return InvalidArgument(At(path, v["json_mode"]) +
                                 ": json_mode must be schema, object or none");
        }
        if (v["anthropic_version"])
          pc.http.anthropic_version = v["anthropic_version"].as<std::string>();
        cfg.providers.push_back(std::move(pc));
      }
    }
    if (m["default"]) {
      cfg.default_provider = m["default"].as<std::string>();
      bool known = cfg.default_provider == "offline";
      for (const auto& p : cfg.providers) known = known || p.name == cfg.default_provider;
      if (!known) {
        return InvalidArgument(At(path, m["default"]) + ": models.default names provider '" +
                               cfg.default_provider + "', which models.providers does not define");
      }
    }
    if (m["prices"]) {
      if (!m["prices"].IsMap())
        return InvalidArgument(At(path, m["prices"]) + ": models.prices must be a mapping");
      for (const auto& p : m["prices"]) {
        std::string model = p.first.as<std::string>();
        ModelPrice price;
        for (const auto& kv : p.second) {
          std::string k = kv.first.as<std::string>();
          double d = kv.second.as<double>();
          if (d < 0) return InvalidArgument(At(path, kv.second) + ": a price must not be negative");
          if (k == "input_per_mtok") {
            price.input_per_mtok = d;
          } else if (k == "output_per_mtok") {
            price.output_per_mtok = d;
          } else {
            return InvalidArgument(At(path, kv.first) + ": unknown key models.prices." + model +
                                   "." + k + " (want input_per_mtok, output_per_mtok)");
          }
        }
        cfg.prices[model] = price;
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + " line " + std::to_string(e.mark.line + 1) +
                           ": models: " + e.msg);
  }
  return cfg;
}

}  // namespace keel::agents
