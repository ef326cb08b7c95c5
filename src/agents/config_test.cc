#include "agents/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "agents/offline.h"
#include "core/json.h"

namespace keel::agents {
namespace {

TEST(ModelsConfig, ParsesProvidersDefaultAndPrices) {
  auto c = ParseModelsConfig(R"(
workspace: {id: ws_1}
models:
  default: local
  providers:
    local: {kind: openai, base_url: "http://127.0.0.1:11434/v1", model: llama3.1, json_mode: object}
    claude: {kind: anthropic, model: claude-x, api_key_secret: ANTHROPIC_API_KEY, timeout_seconds: 30, max_retries: 2}
  prices:
    claude-x: {input_per_mtok: 3, output_per_mtok: 15}
)",
                             "keel.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_provider, "local");
  ASSERT_EQ(c->providers.size(), 2u);
  EXPECT_EQ(c->prices["claude-x"].output_per_mtok, 15);
  for (const auto& p : c->providers) {
    if (p.name == "claude") {
      EXPECT_EQ(p.http.api_key_secret, "ANTHROPIC_API_KEY");
      EXPECT_EQ(p.http.max_timeout_ms, 30000);
      EXPECT_EQ(p.http.max_retries, 2);
    }
  }
  auto none = ParseModelsConfig("workspace: {id: ws_1}\n", "keel.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->default_provider, "offline");
  EXPECT_TRUE(none->providers.empty());
}

TEST(ModelsConfig, RefusesBadValuesWithTheLine) {
  struct Case {
    const char* yaml;
    const char* want;
  };
  for (Case c :
       {Case{"models:\n  default: gpt\n", "does not define"},
        Case{"models:\n  providers:\n    x: {kind: gemini}\n", "kind must be"},
        Case{"models:\n  providers:\n    x: {model: m}\n", "kind is required"},
        Case{"models:\n  providers:\n    x: {kind: openai, api_key: sk-123}\n",
             "unknown key models.providers.x.api_key"},
        Case{"models:\n  providers:\n    x: {kind: openai, base_url: ftp://x}\n", "http://"},
        Case{"models:\n  providers:\n    x: {kind: openai, max_retries: 99}\n", "0..10"},
        Case{"models:\n  prices:\n    m: {input: 1}\n", "unknown key models.prices.m.input"},
        Case{"models:\n  prices:\n    m: {input_per_mtok: -1}\n", "negative"},
        Case{"models:\n  colour: red\n", "unknown key models.colour"}}) {
    auto r = ParseModelsConfig(c.yaml, "keel.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("keel.yaml line"), std::string::npos)
        << r.status().message();
  }
}

TEST(OfflineProvider, ResearchExtractsCitesAndScoresTransparently) {
  auto p = NewOfflineProvider();
  nlohmann::json in = {
      {"record", {{"name", "Jane Doe"}, {"email", "jane@acme-robotics.example"}}},
      {"pages",
       {{{"url", "https://acme-robotics.example/about"},
         {"text",
          "Acme Robotics Ltd is hiring. Jane Doe, CEO of Acme Robotics Ltd, said the budget "
          "is EUR 25,000 and the project starts on March 3, 2026. Call +44 20 7946 0958."}}}}};
  ModelRequest req;
  req.task = "research";
  req.input_json = in.dump();
  auto r1 = p->Complete(req);
  auto r2 = p->Complete(req);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->text, r2->text);  // deterministic
  auto out = nlohmann::json::parse(r1->json);
  std::set<std::string> kinds;
  for (const auto& f : out["facts"]) {
    kinds.insert(f["kind"]);
    EXPECT_EQ(f["source"], "https://acme-robotics.example/about");
    EXPECT_LT(f["span"][0].get<size_t>(), f["span"][1].get<size_t>());
  }
  for (const char* k : {"company", "money", "date", "phone"}) EXPECT_TRUE(kinds.count(k)) << k;
  int sum = 0;
  for (const auto& reason : out["reasons"]) {
    std::string s = reason;
    sum += std::stoi(s.substr(0, s.find(' ')));
  }
  EXPECT_EQ(std::min(sum, 100), out["score"].get<int>());  // the reasons add up to the score
  EXPECT_GE(out["score"].get<int>(), 80);
  EXPECT_NE(out["summary"].get<std::string>().find("Jane Doe"), std::string::npos);

  nlohmann::json poor = {{"record", {{"name", "Bob"}, {"email", "bob@gmail.com"}}}};
  req.input_json = poor.dump();
  auto r3 = p->Complete(req);
  ASSERT_TRUE(r3.ok());
  auto o3 = nlohmann::json::parse(r3->json);
  EXPECT_EQ(o3["score"], 10);  // base 20, free mail -10
  req.task = "poetry";
  EXPECT_EQ(p->Complete(req).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace keel::agents
