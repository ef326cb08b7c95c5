// The flow engine's settings from keel.yaml. Only src/cli reads the file; it passes the text
// here and copies the result into EngineOptions.
//
//   events:
//     retention: 7d   # how long received events are kept (docs/workflows.md "Events")
//   effects:
//     concurrency: 16 # agent calls and adapter actions in flight at once, 1..256
//     per_adapter: 8  # of them for one adapter (or one agent), 1..256; an adapter's own
//                     # `adapters.NAME.concurrency` wins (read by src/app/runtime.cc)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "flow/executor.h"

namespace keel::flow {

struct FlowConfig {
  int64_t event_retention_us = 7LL * 24 * 3600 * 1000000;
  EffectLimits effects;  // global and per_lane; lanes are filled by the caller
};

// The bounds of a concurrency setting (effects.*, adapters.NAME.concurrency).
inline constexpr int kMaxConcurrency = 256;

// Reads the `events:` and `effects:` sections of keel.yaml text (absent: the defaults).
// InvalidArgument naming `path`, the line and the field for an unknown key, a bad duration
// (a retention must be between 1 minute and 10 years) or a concurrency outside 1..256.
Result<FlowConfig> ParseFlowConfig(const std::string& yaml_text, const std::string& path);

}  // namespace keel::flow
