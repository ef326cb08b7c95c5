// Model providers: one interface, three implementations.
//
//   offline    (the default) no network, no key, deterministic; rule-based work chosen by
//              the request's `task` over its structured `input` (agents/offline.h).
//   openai     any OpenAI-compatible chat-completions endpoint: OpenAI, Ollama, llama.cpp's
//              server, vLLM (base_url configurable). JSON output, tool calls.
//   anthropic  Anthropic's Messages API.
//
// The HTTP providers retry 429 and 5xx (and cut connections) up to `max_retries` times,
// honouring Retry-After (seconds or an HTTP-date) and otherwise backing off exponentially;
// waits go through the injected Clock, so tests with a SimulatedClock never sleep.
//
// Errors returned by Complete (codes map onto the flow engine's taxonomy):
//   Unavailable        transient: 429/5xx after the retries, a cut connection, a response
//                      that is not the protocol's JSON (a proxy's error page)
//   DeadlineExceeded   no complete response within the request's timeout (in doubt)
//   InvalidArgument    the provider refused the request as malformed (HTTP 400/404/422)
//   FailedPrecondition the key is missing or refused (401/403): a human must fix the config
// API keys come from the injected SecretSource at call time. They are sent only in the
// provider's auth header and are scrubbed from every message and stored body: they never
// reach the ledger, an artifact, a log or an error text.
//
// Thread-safety: providers are safe to call from several threads if their HttpClient is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/http.h"
#include "core/status.h"

namespace keel::agents {

// name -> secret value. NotFound if there is no such secret. Wired to the workspace vault
// by the CLI; tests pass a lambda.
using SecretSource = std::function<Result<std::string>(const std::string& name)>;

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json;  // a JSON schema object
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments_json;  // canonical JSON object
};

struct ModelRequest {
  std::string model;  // empty: the provider's configured default
  std::vector<ChatMessage> messages;
  double temperature = 0;
  int64_t max_tokens = 1024;
  std::string output_schema_json;  // non-empty: ask for one JSON object matching it
  std::vector<ToolSpec> tools;
  int64_t timeout_ms = 60000;
  // For the offline provider (and scripted test providers): what to do, and the structured,
  // already validated input. HTTP providers send neither; the prompt carries the input.
  std::string task;
  std::string input_json;
};

struct ModelResponse {
  std::string provider;  // gen_ai.provider.name: "offline", "openai", "anthropic"
  std::string model;     // the model that answered
  std::string text;
  std::string json;  // canonical JSON parsed from text when an output schema was asked; else ""
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // "stop", "length", "tool_calls", ... (provider's words)
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::string raw_body;  // the provider's response body, with any key scrubbed
  int attempts = 1;      // HTTP attempts made (retries + 1)
};

class ModelProvider {
 public:
  virtual ~ModelProvider() = default;
  // gen_ai.provider.name of this provider ("offline", "openai", "anthropic", ...).
  virtual std::string name() const = 0;
  // The model used when a request names none.
  virtual std::string default_model() const = 0;
  virtual Result<ModelResponse> Complete(const ModelRequest& request) = 0;
};

struct HttpProviderOptions {
  std::string kind;            // "openai" | "anthropic"
  std::string base_url;        // default: the vendor's public endpoint
  std::string model;           // default model
  std::string api_key_secret;  // secret name; empty: send no key (local servers)
  int max_retries = 3;
  int64_t backoff_initial_ms = 1000;   // doubled per retry when there is no Retry-After
  int64_t max_retry_wait_ms = 120000;  // a longer Retry-After ends the retries
  // openai only: "schema" (response_format json_schema), "object" (json_object), "none"
  // (the schema goes into the prompt only; for servers without response_format).
  std::string json_mode = "schema";
  std::string anthropic_version = "2023-06-01";
  int64_t max_timeout_ms = 0;  // caps each request's timeout; 0: the request decides
};

// InvalidArgument for an unknown kind. `http`, `clock` must outlive the provider.
Result<std::unique_ptr<ModelProvider>> NewHttpProvider(const HttpProviderOptions& options,
                                                       HttpClient* http, Clock* clock,
                                                       SecretSource secrets);

// Parses a Retry-After value: delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015
// 07:28:00 GMT"), relative to `now_us`. Returns false if absent or malformed; a date in the
// past gives 0.
bool ParseRetryAfter(const std::string& value, int64_t now_us, int64_t* wait_ms);

// Replaces every occurrence of `secret` (if at least 4 bytes) in `text` with "[redacted]".
std::string Redact(std::string text, const std::string& secret);

// Extracts one JSON object from model text: the whole text, or a ```json fenced block, or
// the span from the first '{' to the last '}'. Returns canonical JSON, or "" if none parses.
std::string ExtractJsonObject(const std::string& text);

}  // namespace keel::agents
