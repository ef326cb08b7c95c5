// The `models:` section of keel.yaml: which providers exist, the default one, and prices.
//
//   models:
//     default: offline              # provider used when an agent names none
//     providers:
//       openai:   {kind: openai, model: gpt-4o-mini, api_key_secret: OPENAI_API_KEY}
//       local:    {kind: openai, base_url: "http://127.0.0.1:11434/v1", model: llama3.1,
//                  json_mode: object}
//       claude:   {kind: anthropic, model: claude-sonnet-4-5, api_key_secret: ANTHROPIC_API_KEY}
//     prices:                       # USD per million tokens
//       gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.60}
//
// Provider keys: kind (openai | anthropic | offline), base_url, model, api_key_secret (a
// secret NAME, never the key), timeout_seconds, max_retries, max_retry_wait_seconds,
// json_mode (openai: schema | object | none), anthropic_version.
// `offline` always exists. A missing section means: offline only, no prices.
//
// Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/provider.h"

namespace keel::agents {

struct ProviderConfig {
  std::string name;
  HttpProviderOptions http;  // http.kind is "offline" for the offline provider
};

struct ModelsConfig {
  std::string default_provider = "offline";
  std::vector<ProviderConfig> providers;  // without the implicit offline one
  PriceTable prices;
};

// InvalidArgument naming keel.yaml's line and key on a bad value or unknown key.
Result<ModelsConfig> ParseModelsConfig(const std::string& yaml_text, const std::string& path);

}  // namespace keel::agents
