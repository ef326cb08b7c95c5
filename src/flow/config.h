// The flow engine's settings from keel.yaml. Only src/cli reads the file; it passes the text
// here and copies the result into EngineOptions.
//
//   events:
//     retention: 7d   # how long received events are kept (docs/workflows.md "Events")
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace keel::flow {

struct FlowConfig {
  int64_t event_retention_us = 7LL * 24 * 3600 * 1000000;
};

// Reads the `events:` section of keel.yaml text (absent: the defaults). InvalidArgument
// naming `path`, the line and the field for an unknown key or a bad duration (a retention
// must be between 1 minute and 10 years).
Result<FlowConfig> ParseFlowConfig(const std::string& yaml_text, const std::string& path);

}  // namespace keel::flow
