#include "flow/config.h"

#include <yaml-cpp/yaml.h>

#include "flow/workflow.h"

namespace keel::flow {
namespace {

std::string At(const std::string& path, const YAML::Node& n) {
  return path + " line " + std::to_string(n.Mark().line + 1);
}

}  // namespace

Result<int> ParseConcurrency(const YAML::Node& n, const std::string& path,
                             const std::string& field) {
  int v = 0;
  if (!n.IsScalar() || !YAML::convert<int>::decode(n, v) || v < 1 || v > kMaxConcurrency) {
    return InvalidArgument(At(path, n) + ": " + field + ": want a whole number 1.." +
                           std::to_string(kMaxConcurrency));
  }
  return v;
}

Result<FlowConfig> ParseFlowConfig(const std::string& text, const std::string& path) {
  FlowConfig cfg;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return cfg;
    if (YAML::Node fx = root["effects"]) {
      if (!fx.IsMap()) return InvalidArgument(At(path, fx) + ": effects must be a mapping");
      for (const auto& kv : fx) {
        std::string k = kv.first.as<std::string>();
        int* field = k == "concurrency"   ? &cfg.effects.global
                     : k == "per_adapter" ? &cfg.effects.per_lane
                                          : nullptr;
        if (field == nullptr) {
          return InvalidArgument(At(path, kv.first) + ": unknown key effects." + k +
                                 " (want concurrency, per_adapter)");
        }
        KEEL_ASSIGN_OR_RETURN(*field, ParseConcurrency(kv.second, path, "effects." + k));
      }
    }
    if (!root["events"]) return cfg;
    YAML::Node ev = root["events"];
    if (!ev.IsMap()) return InvalidArgument(At(path, ev) + ": events must be a mapping");
    for (const auto& kv : ev) {
      std::string k = kv.first.as<std::string>();
      if (k != "retention") {
        return InvalidArgument(At(path, kv.first) + ": unknown key events." + k +
                               " (want retention)");
      }
    }
    if (YAML::Node r = ev["retention"]) {
      if (!r.IsScalar()) return InvalidArgument(At(path, r) + ": events.retention: not a duration");
      auto d = ParseDuration(r.as<std::string>());
      if (!d.ok())
        return InvalidArgument(At(path, r) + ": events.retention: " + d.status().message());
      constexpr int64_t kMinute = 60LL * 1000000, kTenYears = 3650LL * 24 * 3600 * 1000000;
      if (*d < kMinute || *d > kTenYears) {
        return InvalidArgument(At(path, r) + ": events.retention: must be between 1m and 3650d");
      }
      cfg.event_retention_us = *d;
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return cfg;
}

}  // namespace keel::flow
