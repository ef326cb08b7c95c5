// The HTTP model providers against a real loopback server (cpp-httplib) that speaks each
// protocol, including its error responses, a malformed body, a cut connection and a slow
// response. Waits between retries go through a SimulatedClock, so nothing sleeps.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agents/provider.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/testing_util.h"

namespace keel::agents {
namespace {

using nlohmann::json;

constexpr char kKey[] = "sk-canary-7f3a9e2b1c4d";

struct Seen {
  std::string path, body, authorization, x_api_key, anthropic_version;
};

// A loopback server whose answers are scripted per request number.
class FakeServer {
 public:
  using Handler = std::function<void(int n, const httplib::Request&, httplib::Response&)>;
  explicit FakeServer(Handler h) : handler_(std::move(h)) {
    auto fn = [this](const httplib::Request& req, httplib::Response& res) {
      int n;
      {
        std::lock_guard<std::mutex> l(mu_);
        seen_.push_back({req.path, req.body, req.get_header_value("Authorization"),
                         req.get_header_value("x-api-key"),
                         req.get_header_value("anthropic-version")});
        n = static_cast<int>(seen_.size());
      }
      handler_(n, req, res);
    };
    server_.Post("/v1/chat/completions", fn);
    server_.Post("/v1/messages", fn);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  int count() { return static_cast<int>(seen().size()); }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

json OpenAiOk(const std::string& content) {
  return {{"id", "chatcmpl-1"},
          {"model", "gpt-test"},
          {"choices",
           {{{"index", 0},
             {"message", {{"role", "assistant"}, {"content", content}}},
             {"finish_reason", "stop"}}}},
          {"usage", {{"prompt_tokens", 120}, {"completion_tokens", 30}}}};
}

json AnthropicOk(const std::string& text) {
  return {{"id", "msg_1"},
          {"type", "message"},
          {"role", "assistant"},
          {"model", "claude-test"},
          {"content", {{{"type", "text"}, {"text", text}}}},
          {"stop_reason", "end_turn"},
          {"usage", {{"input_tokens", 200}, {"output_tokens", 40}}}};
}

struct Harness {
  SimulatedClock clock;
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  std::unique_ptr<ModelProvider> provider;
  int secret_reads = 0;
  Harness(const std::string& kind, const std::string& base, int max_retries = 3,
          std::string secret_name = "MODEL_KEY") {
    HttpProviderOptions o;
    o.kind = kind;
    o.base_url = kind == "openai" ? base + "/v1" : base;
    o.model = kind == "openai" ? "gpt-test" : "claude-test";
    o.api_key_secret = secret_name;
    o.max_retries = max_retries;
    auto p =
        NewHttpProvider(o, http.get(), &clock, [this](const std::string& n) -> Result<std::string> {
          ++secret_reads;
          if (n == "MODEL_KEY") return std::string(kKey);
          return NotFound("no secret named " + n);
        });
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    provider = std::move(p).value();
  }
};

ModelRequest JsonRequest() {
  ModelRequest r;
  r.messages = {{"system", "You extract facts."}, {"user", "Extract from: ACME"}};
  r.output_schema_json = R"({"type":"object","required":["company"]})";
  r.timeout_ms = 5000;
  return r;
}

void ExpectNoKey(const Status& s) {
  EXPECT_EQ(s.message().find(kKey), std::string::npos) << s.message();
  EXPECT_EQ(s.ToString().find(kKey), std::string::npos);
}

TEST(OpenAiProvider, JsonOutputToolCallsAndKeyInBearerHeader) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    json body = OpenAiOk("```json\n{\"company\": \"ACME\"}\n```");
    body["choices"][0]["message"]["tool_calls"] = {
        {{"id", "call_1"},
         {"type", "function"},
         {"function", {{"name", "lookup"}, {"arguments", "{\"q\": \"acme\"}"}}}}};
    res.set_content(body.dump(), "application/json");
  });
  Harness h("openai", srv.base());
  ModelRequest req = JsonRequest();
  req.tools.push_back({"lookup", "Look a company up", R"({"type":"object"})"});
  auto r = h.provider->Complete(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->json, R"({"company":"ACME"})");
  EXPECT_EQ(r->provider, "openai");
  EXPECT_EQ(r->model, "gpt-test");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->input_tokens, 120);
  EXPECT_EQ(r->output_tokens, 30);
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].name, "lookup");
  EXPECT_EQ(r->tool_calls[0].arguments_json, R"({"q":"acme"})");
  auto seen = srv.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].authorization, std::string("Bearer ") + kKey);
  json sent = json::parse(seen[0].body);
  EXPECT_EQ(sent["model"], "gpt-test");
  EXPECT_EQ(sent["response_format"]["type"], "json_schema");
  EXPECT_EQ(sent["response_format"]["json_schema"]["schema"]["required"][0], "company");
  EXPECT_EQ(sent["tools"][0]["function"]["name"], "lookup");
  EXPECT_EQ(sent["messages"][0]["role"], "system");
  EXPECT_EQ(r->raw_body.find(kKey), std::string::npos);
}

TEST(OpenAiProvider, UnauthorizedIsClearAndNeverEchoesTheKey) {
  FakeServer srv([](int, const httplib::Request& req, httplib::Response& res) {
    // Like real vendors, echo (part of) the key back in the error.
    res.status = 401;
    res.set_content(json({{"error",
                           {{"message", "Incorrect API key provided: " +
                                            req.get_header_value("Authorization")}}}})
                        .dump(),
                    "application/json");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("HTTP 401"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("MODEL_KEY"), std::string::npos);
  EXPECT_NE(r.status().message().find("Incorrect API key"), std::string::npos);
  ExpectNoKey(r.status());
  EXPECT_EQ(srv.count(), 1);  // a refused key is not retried
}

TEST(OpenAiProvider, BadRequestIsPermanentAndNotRetried) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"max_tokens is too large"}})", "application/json");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_tokens is too large"), std::string::npos);
  EXPECT_EQ(srv.count(), 1);
}

TEST(OpenAiProvider, TooManyRequestsHonoursRetryAfterSeconds) {
  FakeServer srv([](int n, const httplib::Request&, httplib::Response& res) {
    if (n == 1) {
      res.status = 429;
      res.set_header("Retry-After", "7");
      res.set_content(R"({"error":{"message":"rate limited"}})", "application/json");
      return;
    }
    res.set_content(OpenAiOk(R"({"company":"ACME"})").dump(), "application/json");
  });
  Harness h("openai", srv.base());
  int64_t before = h.clock.MonotonicMicros();
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(h.clock.MonotonicMicros() - before, 7 * 1000000);
  EXPECT_EQ(srv.count(), 2);
}

TEST(OpenAiProvider, RetryAfterHttpDate) {
  SimulatedClock probe;
  FakeServer srv([&](int n, const httplib::Request&, httplib::Response& res) {
    if (n == 1) {
      res.status = 503;
      // SimulatedClock starts at 2026-01-01T00:00:00Z: ask for 30 s later.
      res.set_header("Retry-After", "Thu, 01 Jan 2026 00:00:30 GMT");
      return;
    }
    res.set_content(OpenAiOk(R"({"company":"ACME"})").dump(), "application/json");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(h.clock.MonotonicMicros(), 30 * 1000000);
}

TEST(OpenAiProvider, ServerErrorsBackOffThenGiveUpAsUnavailable) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content(R"({"error":{"message":"internal"}})", "application/json");
  });
  Harness h("openai", srv.base(), /*max_retries=*/3);
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("HTTP 500 after 4 attempt(s)"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(srv.count(), 4);
  EXPECT_EQ(h.clock.MonotonicMicros(), (1 + 2 + 4) * 1000000);  // exponential backoff
  ExpectNoKey(r.status());
}

TEST(OpenAiProvider, RetryAfterBeyondTheLimitStopsRetrying) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "86400");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("retry after 86400 s"), std::string::npos);
  EXPECT_EQ(srv.count(), 1);
}

TEST(OpenAiProvider, MalformedJsonIsUnavailable) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>502 Bad Gateway from a proxy", "text/html");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);
}

TEST(OpenAiProvider, WellFormedJsonOfTheWrongShapeIsUnavailable) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object":"list","data":[]})", "application/json");
  });
  Harness h("openai", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no choices[0]"), std::string::npos);
}

TEST(OpenAiProvider, CutConnectionIsRetriedThenUnavailable) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    // Promise 1000 bytes, send 10, drop the connection.
    res.set_content_provider(1000, "application/json", [](size_t, size_t, httplib::DataSink& sink) {
      sink.write("{\"choices\"", 10);
      return false;
    });
  });
  Harness h("openai", srv.base(), /*max_retries=*/1);
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("cut"), std::string::npos) << r.status().message();
  EXPECT_EQ(srv.count(), 2);
  ExpectNoKey(r.status());
}

TEST(OpenAiProvider, ConnectionRefusedIsUnavailable) {
  std::string base;
  {
    FakeServer srv([](int, const httplib::Request&, httplib::Response&) {});
    base = srv.base();
  }  // the port is closed now
  Harness h("openai", base, /*max_retries=*/0);
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(OpenAiProvider, SlowResponseTimesOutAsDeadlineExceeded) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content(OpenAiOk("{}").dump(), "application/json");
  });
  Harness h("openai", srv.base());
  ModelRequest req = JsonRequest();
  req.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto r = h.provider->Complete(req);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(took, std::chrono::milliseconds(1400));
  EXPECT_EQ(srv.count(), 1);  // in doubt: not blindly repeated
}

TEST(OpenAiProvider, MissingSecretFailsBeforeAnyRequest) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response&) {});
  Harness h("openai", srv.base(), 3, "NO_SUCH_SECRET");
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("NO_SUCH_SECRET"), std::string::npos);
  EXPECT_EQ(srv.count(), 0);
}

TEST(OpenAiProvider, LocalServerWithoutKeySendsNoAuthorization) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    res.set_content(OpenAiOk(R"({"company":"ACME"})").dump(), "application/json");
  });
  Harness h("openai", srv.base(), 3, "");
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(srv.seen()[0].authorization, "");
  EXPECT_EQ(h.secret_reads, 0);
}

TEST(AnthropicProvider, MessagesApiWithKeyHeaderSystemAndToolUse) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    json body = AnthropicOk("{\"company\":\"ACME\"}");
    body["content"].push_back(
        {{"type", "tool_use"}, {"id", "toolu_1"}, {"name", "lookup"}, {"input", {{"q", "acme"}}}});
    body["stop_reason"] = "tool_use";
    res.set_content(body.dump(), "application/json");
  });
  Harness h("anthropic", srv.base());
  ModelRequest req = JsonRequest();
  req.tools.push_back({"lookup", "Look a company up", R"({"type":"object"})"});
  auto r = h.provider->Complete(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->provider, "anthropic");
  EXPECT_EQ(r->json, R"({"company":"ACME"})");
  EXPECT_EQ(r->finish_reason, "tool_use");
  EXPECT_EQ(r->input_tokens, 200);
  EXPECT_EQ(r->output_tokens, 40);
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].arguments_json, R"({"q":"acme"})");
  auto seen = srv.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/messages");
  EXPECT_EQ(seen[0].x_api_key, kKey);
  EXPECT_EQ(seen[0].authorization, "");
  EXPECT_EQ(seen[0].anthropic_version, "2023-06-01");
  json sent = json::parse(seen[0].body);
  EXPECT_EQ(sent["messages"].size(), 1u);  // the system message moved to "system"
  EXPECT_NE(sent["system"].get<std::string>().find("You extract facts."), std::string::npos);
  EXPECT_NE(sent["system"].get<std::string>().find("JSON schema"), std::string::npos);
  EXPECT_EQ(sent["tools"][0]["input_schema"]["type"], "object");
}

TEST(AnthropicProvider, OverloadedIsRetried) {
  FakeServer srv([](int n, const httplib::Request&, httplib::Response& res) {
    if (n < 3) {
      res.status = 529;
      res.set_content(
          R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
          "application/json");
      return;
    }
    res.set_content(AnthropicOk("{\"company\":\"ACME\"}").dump(), "application/json");
  });
  Harness h("anthropic", srv.base());
  auto r = h.provider->Complete(JsonRequest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 3);
}

TEST(AnthropicProvider, ErrorsAreClassifiedAndScrubbed) {
  struct Case {
    int status;
    StatusCode want;
  };
  for (Case c :
       {Case{401, StatusCode::kFailedPrecondition}, Case{403, StatusCode::kFailedPrecondition},
        Case{400, StatusCode::kInvalidArgument}, Case{500, StatusCode::kUnavailable},
        Case{503, StatusCode::kUnavailable}}) {
    FakeServer srv([&](int, const httplib::Request& req, httplib::Response& res) {
      res.status = c.status;
      res.set_content(
          json({{"type", "error"},
                {"error",
                 {{"type", "x"}, {"message", "bad key " + req.get_header_value("x-api-key")}}}})
              .dump(),
          "application/json");
    });
    Harness h("anthropic", srv.base(), /*max_retries=*/1);
    auto r = h.provider->Complete(JsonRequest());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.want) << c.status << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("HTTP " + std::to_string(c.status)), std::string::npos);
    EXPECT_NE(r.status().message().find("[redacted]"), std::string::npos) << r.status().message();
    ExpectNoKey(r.status());
  }
}

// End to end: `keel agent run` with keel.yaml pointing at a loopback OpenAI-compatible server,
// the key from the environment's secret, the price table, and `keel cost`.
TEST(CliWithProvider, AgentRunThroughAConfiguredEndpointAndCost) {
  FakeServer srv([](int, const httplib::Request&, httplib::Response& res) {
    json out = {{"decision", "send"},
                {"reason", "due"},
                {"step", 0},
                {"actions",
                 {{{"type", "send_email"},
                   {"to", "mallory@evil.example"},
                   {"subject", "x"},
                   {"body", "y"}}}}};
    json body = OpenAiOk(out.dump());
    body["usage"] = {{"prompt_tokens", 2000}, {"completion_tokens", 1000}};
    res.set_content(body.dump(), "application/json");
  });
  keel::testing::TempDir tmp;
  std::string ws = tmp.Sub("ws");
  ASSERT_EQ(keel::testing::RunKeel({"init", ws}).exit_code, 0);
  std::string cfg = keel::testing::ReadFileOrDie(ws + "/keel.yaml");
  cfg += "models:\n  default: fake\n  providers:\n    fake: {kind: openai, base_url: \"" +
         srv.base() +
         "/v1\", model: gpt-test, api_key_secret: FAKE_KEY, max_retries: 0}\n  prices:\n"
         "    gpt-test: {input_per_mtok: 1.0, output_per_mtok: 2.0}\n";
  keel::testing::WriteFile(ws + "/keel.yaml", cfg);
  std::string input =
      R"({"record":{"email":"jane@acme.example"},"sequence":[{"subject":"Hi","body":"Hello"}]})";
  auto no_key = keel::testing::RunKeel({"-w", ws, "agent", "run", "outreach", "--input", input});
  EXPECT_EQ(no_key.exit_code, 1) << no_key.err;
  EXPECT_NE(no_key.err.find("FAKE_KEY"), std::string::npos) << no_key.err;
  // The key goes into the workspace vault through standard input, as an operator would.
  auto set =
      keel::testing::RunKeel({"-w", ws, "secret", "set", "FAKE_KEY"}, std::string(kKey) + "\n");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  auto r = keel::testing::RunKeel(
      {"-w", ws, "agent", "run", "outreach", "--record", "rec_9", "--json", "--input", input});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["provider"], "openai");
  ASSERT_EQ(j["actions"].size(), 1u);
  EXPECT_TRUE(j["actions"][0]["requires_approval"]);  // the model invented the recipient
  EXPECT_EQ(j["cost_nanousd"], 4000000);              // 2000 * $1 + 1000 * $2 per million = $0.004
  EXPECT_EQ(srv.seen()[0].authorization, std::string("Bearer ") + kKey);
  auto cost = keel::testing::RunKeel({"-w", ws, "cost", "--record", "rec_9", "--json"});
  ASSERT_EQ(cost.exit_code, 0) << cost.err;
  EXPECT_EQ(json::parse(cost.out)["total"]["cost_nanousd"], 4000000);
  // The key is nowhere in plain text in the workspace: not in keel.yaml, the database (the
  // vault holds it encrypted) or any artifact.
  auto grep = keel::testing::RunProcess("/bin/grep", {"-r", "-l", kKey, ws});
  EXPECT_EQ(grep.exit_code, 1) << grep.out;
}

TEST(RetryAfter, Parsing) {
  int64_t ms = -1;
  EXPECT_TRUE(ParseRetryAfter("0", 0, &ms));
  EXPECT_EQ(ms, 0);
  EXPECT_TRUE(ParseRetryAfter("120", 0, &ms));
  EXPECT_EQ(ms, 120000);
  int64_t now = 1767225600000000;  // 2026-01-01T00:00:00Z
  EXPECT_TRUE(ParseRetryAfter("Thu, 01 Jan 2026 00:01:00 GMT", now, &ms));
  EXPECT_EQ(ms, 60000);
  EXPECT_TRUE(ParseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now, &ms));
  EXPECT_EQ(ms, 0);  // in the past: retry now
  EXPECT_FALSE(ParseRetryAfter("", now, &ms));
  EXPECT_FALSE(ParseRetryAfter("soon", now, &ms));
  EXPECT_FALSE(ParseRetryAfter("-5", now, &ms));
  EXPECT_FALSE(ParseRetryAfter("99999999999999", now, &ms));
}

}  // namespace
}  // namespace keel::agents
