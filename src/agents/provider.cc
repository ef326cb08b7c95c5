#include "agents/provider.h"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace keel::agents {
namespace {

using nlohmann::json;

std::string Shorten(std::string s, size_t n = 300) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

bool Retryable(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504 ||
         status == 529;
}

// The provider's own explanation from an error body, if it has the usual shape
// ({"error": {"message": ...}} for both protocols), else the start of the body.
std::string ProviderMessage(const std::string& body) {
  try {
    json j = json::parse(body);
    if (j.is_object() && j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        return Shorten(e["message"].get<std::string>());
      }
      if (e.is_string()) return Shorten(e.get<std::string>());
    }
  } catch (const std::exception&) {
  }
  return Shorten(body, 200);
}

// What one protocol adds to the shared retry loop.
class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string Url(const std::string& base) const = 0;
  virtual Status AddAuth(HttpHeaders* headers, const std::string& key) const = 0;
  virtual Result<json> Body(const ModelRequest& req, const std::string& model) const = 0;
  virtual Result<ModelResponse> Parse(const json& body, const ModelRequest& req) const = 0;
};

class OpenAiProtocol final : public Protocol {
 public:
  explicit OpenAiProtocol(std::string json_mode) : json_mode_(std::move(json_mode)) {}
  std::string Url(const std::string& base) const override { return base + "/chat/completions"; }
  Status AddAuth(HttpHeaders* h, const std::string& key) const override {
    if (!key.empty()) h->emplace_back("Authorization", "Bearer " + key);
    return OkStatus();
  }
  Result<json> Body(const ModelRequest& req, const std::string& model) const override {
    json msgs = json::array();
    for (const auto& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    if (!req.output_schema_json.empty() && json_mode_ == "none" && !msgs.empty()) {
      msgs.back()["content"] = msgs.back()["content"].get<std::string>() +
                               "\n\nReply with one JSON object matching this JSON schema:\n" +
                               req.output_schema_json;
    }
    json b = {{"model", model},
              {"messages", msgs},
              {"temperature", req.temperature},
              {"max_tokens", req.max_tokens}};
    if (!req.output_schema_json.empty()) {
      if (json_mode_ == "schema") {
        KEEL_ASSIGN_OR_RETURN(Json schema, ParseJson(req.output_schema_json, "output schema"));
        b["response_format"] = {{"type", "json_schema"},
                                {"json_schema", {{"name", "output"}, {"schema", schema}}}};
      } else if (json_mode_ == "object") {
        b["response_format"] = {{"type", "json_object"}};
      }
    }
    if (!req.tools.empty()) {
      json tools = json::array();
      for (const auto& t : req.tools) {
        KEEL_ASSIGN_OR_RETURN(Json params, ParseJson(t.parameters_json, "tool " + t.name));
        tools.push_back(
            {{"type", "function"},
             {"function",
              {{"name", t.name}, {"description", t.description}, {"parameters", params}}}});
      }
      b["tools"] = tools;
    }
    return b;
  }
  Result<ModelResponse> Parse(const json& b, const ModelRequest& req) const override {
    ModelResponse r;
    if (!b.is_object() || !b.contains("choices") || !b["choices"].is_array() ||
        b["choices"].empty() || !b["choices"][0].is_object()) {
      return Unavailable("the response has no choices[0]");
    }
    const json& choice = b["choices"][0];
    const json& msg = choice.value("message", json::object());
    if (msg.contains("content") && msg["content"].is_string()) r.text = msg["content"];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      r.finish_reason = choice["finish_reason"];
    }
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
      for (const json& tc : msg["tool_calls"]) {
        if (!tc.is_object() || !tc.contains("function")) continue;
        ToolCall call;
        call.id = tc.value("id", "");
        const json& fn = tc["function"];
        call.name = fn.value("name", "");
        std::string args = fn.contains("arguments") && fn["arguments"].is_string()
                               ? fn["arguments"].get<std::string>()
                               : "{}";
        auto parsed = ParseJson(args, "tool call arguments");
        if (!parsed.ok())
          return Unavailable("tool call '" + call.name + "' has malformed arguments");
        call.arguments_json = CanonicalJson(*parsed);
        r.tool_calls.push_back(std::move(call));
      }
    }
    if (b.contains("usage") && b["usage"].is_object()) {
      r.input_tokens = b["usage"].value("prompt_tokens", int64_t{0});
      r.output_tokens = b["usage"].value("completion_tokens", int64_t{0});
    }
    r.model = b.value("model", "");
    if (!req.output_schema_json.empty()) r.json = ExtractJsonObject(r.text);
    return r;
  }

 private:
  std::string json_mode_;
};

class AnthropicProtocol final : public Protocol {
 public:
  explicit AnthropicProtocol(std::string version) : version_(std::move(version)) {}
  std::string Url(const std::string& base) const override { return base + "/v1/messages"; }
  Status AddAuth(HttpHeaders* h, const std::string& key) const override {
    if (!key.empty()) h->emplace_back("x-api-key", key);
    h->emplace_back("anthropic-version", version_);
    return OkStatus();
  }
  Result<json> Body(const ModelRequest& req, const std::string& model) const override {
    std::string system;
    json msgs = json::array();
    for (const auto& m : req.messages) {
      if (m.role == "system") {
        system += (system.empty() ? "" : "\n\n") + m.content;
      } else {
        msgs.push_back({{"role", m.role}, {"content", m.content}});
      }
    }
    if (!req.output_schema_json.empty()) {
      system += (system.empty() ? "" : "\n\n") +
                std::string(
                    "Reply with one JSON object, and nothing else, matching this JSON "
                    "schema:\n") +
                req.output_schema_json;
    }
    json b = {{"model", model},
              {"messages", msgs},
              {"temperature", req.temperature},
              {"max_tokens", req.max_tokens}};
    if (!system.empty()) b["system"] = system;
    if (!req.tools.empty()) {
      json tools = json::array();
      for (const auto& t : req.tools) {
        KEEL_ASSIGN_OR_RETURN(Json params, ParseJson(t.parameters_json, "tool " + t.name));
        tools.push_back(
            {{"name", t.name}, {"description", t.description}, {"input_schema", params}});
      }
      b["tools"] = tools;
    }
    return b;
  }
  Result<ModelResponse> Parse(const json& b, const ModelRequest& req) const override {
    ModelResponse r;
    if (!b.is_object() || !b.contains("content") || !b["content"].is_array()) {
      return Unavailable("the response has no content array");
    }
    for (const json& block : b["content"]) {
      if (!block.is_object()) continue;
      std::string type = block.value("type", "");
      if (type == "text" && block.contains("text") && block["text"].is_string()) {
        r.text += block["text"].get<std::string>();
      } else if (type == "tool_use") {
        ToolCall call;
        call.id = block.value("id", "");
        call.name = block.value("name", "");
        call.arguments_json = CanonicalJson(block.value("input", json::object()));
        r.tool_calls.push_back(std::move(call));
      }
    }
    if (b.contains("stop_reason") && b["stop_reason"].is_string())
      r.finish_reason = b["stop_reason"];
    if (b.contains("usage") && b["usage"].is_object()) {
      r.input_tokens = b["usage"].value("input_tokens", int64_t{0});
      r.output_tokens = b["usage"].value("output_tokens", int64_t{0});
    }
    r.model = b.value("model", "");
    if (!req.output_schema_json.empty()) r.json = ExtractJsonObject(r.text);
    return r;
  }

 private:
  std::string version_;
};

class HttpProvider final : public ModelProvider {
 public:
  HttpProvider(HttpProviderOptions o, std::unique_ptr<Protocol> p, HttpClient* http, Clock* clock,
               SecretSource secrets)
      : o_(std::move(o)),
        p_(std::move(p)),
        http_(http),
        clock_(clock),
        secrets_(std::move(secrets)) {}

  std::string name() const override { return o_.kind; }
  std::string default_model() const override { return o_.model; }

  Result<ModelResponse> Complete(const ModelRequest& req) override {
    std::string model = req.model.empty() ? o_.model : req.model;
    std::string url = p_->Url(o_.base_url);
    std::string where = o_.kind + " provider at " + UrlForMessages(url);
    if (model.empty())
      return InvalidArgument(where + ": no model named (set models.providers.*.model)");
    std::string key;
    if (!o_.api_key_secret.empty()) {
      if (!secrets_)
        return FailedPrecondition(where + ": no secret store to read the API key from");
      auto k = secrets_(o_.api_key_secret);
      if (!k.ok()) {
        return FailedPrecondition(where + ": the API key secret '" + o_.api_key_secret +
                                  "' is not available: " + k.status().message());
      }
      key = *k;
    }
    // Anything below may echo the key back; every message passes through Redact.
    Result<ModelResponse> r = Attempt(req, model, url, where, key);
    if (!r.ok()) return Status(r.status().code(), Redact(r.status().message(), key));
    r->raw_body = Redact(std::move(r->raw_body), key);
    return r;
  }

 private:
  Result<ModelResponse> Attempt(const ModelRequest& req, const std::string& model,
                                const std::string& url, const std::string& where,
                                const std::string& key) {
    KEEL_ASSIGN_OR_RETURN(json body, p_->Body(req, model));
    HttpRequest hr;
    hr.method = "POST";
    hr.url = url;
    hr.body = body.dump();
    hr.timeout_ms =
        o_.max_timeout_ms > 0 ? std::min(req.timeout_ms, o_.max_timeout_ms) : req.timeout_ms;
    hr.headers.emplace_back("Content-Type", "application/json");
    hr.headers.emplace_back("Accept", "application/json");
    KEEL_RETURN_IF_ERROR(p_->AddAuth(&hr.headers, key));

    int64_t backoff = o_.backoff_initial_ms;
    Status last;
    for (int attempt = 1;; ++attempt) {
      Result<HttpResponse> resp = http_->Send(hr);
      int64_t wait_ms = backoff;
      if (!resp.ok()) {
        if (resp.status().code() != StatusCode::kUnavailable) {
          return Status(resp.status().code(), o_.kind + " provider: " + resp.status().message());
        }
        last = Unavailable(o_.kind + " provider: " + resp.status().message());
      } else if (resp->status >= 200 && resp->status < 300) {
        json parsed;
        try {
          parsed = json::parse(resp->body);
        } catch (const std::exception&) {
          return Unavailable(where + ": the response is not valid JSON (HTTP " +
                             std::to_string(resp->status) + ", " +
                             std::to_string(resp->body.size()) +
                             " bytes: " + Shorten(resp->body, 80) + ")");
        }
        auto out = p_->Parse(parsed, req);
        if (!out.ok()) {
          return Status(out.status().code(),
                        where + ": malformed response: " + out.status().message());
        }
        out->provider = o_.kind;
        if (out->model.empty()) out->model = model;
        out->raw_body = std::move(resp->body);
        out->attempts = attempt;
        return out;
      } else if (resp->status == 401 || resp->status == 403) {
        return FailedPrecondition(
            where + ": HTTP " + std::to_string(resp->status) +
            (o_.api_key_secret.empty()
                 ? std::string(": the endpoint wants an API key; set api_key_secret")
                 : ": the API key in secret '" + o_.api_key_secret + "' was refused") +
            " (provider said: " + ProviderMessage(resp->body) + ")");
      } else if (Retryable(resp->status)) {
        last = Unavailable(where + ": HTTP " + std::to_string(resp->status) + " after " +
                           std::to_string(attempt) +
                           " attempt(s) (provider said: " + ProviderMessage(resp->body) + ")");
        int64_t ra = 0;
        if (ParseRetryAfter(resp->Header("retry-after"), clock_->NowMicros(), &ra)) {
          if (ra > o_.max_retry_wait_ms) {
            return Unavailable(where + ": HTTP " + std::to_string(resp->status) +
                               ", asked to retry after " + std::to_string(ra / 1000) +
                               " s, longer than the limit of " +
                               std::to_string(o_.max_retry_wait_ms / 1000) + " s");
          }
          wait_ms = ra;
        }
      } else {
        // 400, 404, 413, 422...: the request itself is wrong; repeating it cannot help.
        return InvalidArgument(
            where + ": HTTP " + std::to_string(resp->status) +
            ": the request was refused (provider said: " + ProviderMessage(resp->body) + ")");
      }
      if (attempt > o_.max_retries) return last;
      clock_->SleepMicros(wait_ms * 1000);
      backoff *= 2;
    }
  }

  HttpProviderOptions o_;
  std::unique_ptr<Protocol> p_;
  HttpClient* http_;
  Clock* clock_;
  SecretSource secrets_;
};

}  // namespace

Result<std::unique_ptr<ModelProvider>> NewHttpProvider(const HttpProviderOptions& in,
                                                       HttpClient* http, Clock* clock,
                                                       SecretSource secrets) {
  HttpProviderOptions o = in;
  std::unique_ptr<Protocol> p;
  if (o.kind == "openai") {
    if (o.base_url.empty()) o.base_url = "https://api.openai.com/v1";
    if (o.json_mode != "schema" && o.json_mode != "object" && o.json_mode != "none") {
      return InvalidArgument("json_mode must be schema, object or none, not '" + o.json_mode + "'");
    }
    p = std::make_unique<OpenAiProtocol>(o.json_mode);
  } else if (o.kind == "anthropic") {
    if (o.base_url.empty()) o.base_url = "https://api.anthropic.com";
    p = std::make_unique<AnthropicProtocol>(o.anthropic_version);
  } else {
    return InvalidArgument("unknown provider kind '" + o.kind + "' (want openai or anthropic)");
  }
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  if (o.max_retries < 0) return InvalidArgument("max_retries must not be negative");
  return std::unique_ptr<ModelProvider>(
      new HttpProvider(std::move(o), std::move(p), http, clock, std::move(secrets)));
}

bool ParseRetryAfter(const std::string& value, int64_t now_us, int64_t* wait_ms) {
  if (value.empty()) return false;
  bool digits = true;
  for (char c : value) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    if (value.size() > 9) return false;
    *wait_ms = std::stoll(value) * 1000;
    return true;
  }
  std::tm tm{};
  const char* end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return false;
  int64_t at_us = static_cast<int64_t>(timegm(&tm)) * 1000000;
  *wait_ms = at_us > now_us ? (at_us - now_us + 999) / 1000 : 0;
  return true;
}

std::string Redact(std::string text, const std::string& secret) {
  if (secret.size() < 4) return text;
  for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
    text.replace(pos, secret.size(), "[redacted]");
    pos += 10;
  }
  return text;
}

std::string ExtractJsonObject(const std::string& text) {
  auto try_parse = [](std::string_view s) -> std::string {
    try {
      json j = json::parse(s.begin(), s.end());
      if (j.is_object()) return CanonicalJson(j);
    } catch (const std::exception&) {
    }
    return "";
  };
  if (auto s = try_parse(text); !s.empty()) return s;
  auto fence = text.find("```");
  if (fence != std::string::npos) {
    auto start = text.find('\n', fence);
    auto close = start == std::string::npos ? start : text.find("```", start);
    if (close != std::string::npos) {
      if (auto s = try_parse(std::string_view(text).substr(start + 1, close - start - 1));
          !s.empty())
        return s;
    }
  }
  auto a = text.find('{');
  auto b = text.rfind('}');
  if (a != std::string::npos && b != std::string::npos && b > a) {
    return try_parse(std::string_view(text).substr(a, b - a + 1));
  }
  return "";
}

}  // namespace keel::agents
