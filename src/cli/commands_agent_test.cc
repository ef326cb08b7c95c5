// `keel agent` and `keel cost` as a user runs them (the real binary, offline provider).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/testing_util.h"

namespace keel::cli {
namespace {

using keel::testing::RunKeel;
using nlohmann::json;

TEST(AgentCli, ListRunCostAndErrors) {
  keel::testing::TempDir tmp;
  std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  auto list = RunKeel({"-w", ws, "agent", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<std::string> names;
  for (const auto& a : json::parse(list.out)) names.push_back(a["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"accountant", "drafting", "outreach", "research"}));

  std::string input = R"({"record":{"name":"Jane Doe","email":"jane@acme-robotics.example"},
    "pages":[{"url":"https://acme-robotics.example","text":"Jane Doe, CEO of Acme Robotics Ltd. Budget EUR 20,000."}]})";
  auto run = RunKeel(
      {"-w", ws, "agent", "run", "research", "--record", "rec_1", "--json", "--input", input});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json j = json::parse(run.out);
  EXPECT_EQ(j["provider"], "offline");
  EXPECT_GT(j["output"]["score"].get<int>(), 50);
  EXPECT_FALSE(j["output"]["facts"].empty());
  // The first run remembered its facts about rec_1, which the second run recalls: a new
  // prompt. The third sees the same memory (nothing new was learned): a cache hit.
  auto again = RunKeel(
      {"-w", ws, "agent", "run", "research", "--record", "rec_1", "--json", "--input", input});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_FALSE(json::parse(again.out)["cached"]);
  auto third = RunKeel(
      {"-w", ws, "agent", "run", "research", "--record", "rec_1", "--json", "--input", input});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_TRUE(json::parse(third.out)["cached"]);

  auto cost = RunKeel({"-w", ws, "cost", "--record", "rec_1", "--json"});
  ASSERT_EQ(cost.exit_code, 0) << cost.err;
  json c = json::parse(cost.out);
  EXPECT_EQ(c["total"]["calls"], 3);
  EXPECT_EQ(c["total"]["cached_calls"], 1);
  EXPECT_EQ(c["by_agent"][0]["key"], "research");
  EXPECT_EQ(
      json::parse(
          RunKeel({"-w", ws, "cost", "--record", "rec_other", "--json"}).out)["total"]["calls"],
      0);
  EXPECT_EQ(
      json::parse(
          RunKeel({"-w", ws, "cost", "--since", "2999-01-01", "--json"}).out)["total"]["calls"],
      0);

  auto ledger = RunKeel({"-w", ws, "ledger", "--json"});
  EXPECT_NE(ledger.out.find("gen_ai.usage.input_tokens"), std::string::npos) << ledger.err;

  auto unknown = RunKeel({"-w", ws, "agent", "run", "nope", "--input", "{}"});
  EXPECT_EQ(unknown.exit_code, 66);
  EXPECT_NE(unknown.err.find("no agent named 'nope'"), std::string::npos);
  auto bad = RunKeel({"-w", ws, "agent", "run", "research", "--input", "{not json"});
  EXPECT_EQ(bad.exit_code, 65);
  auto schema = RunKeel({"-w", ws, "agent", "run", "research", "--input", R"({"pages":[]})"});
  EXPECT_EQ(schema.exit_code, 65);
  EXPECT_NE(schema.err.find("required property 'record'"), std::string::npos) << schema.err;
  auto since = RunKeel({"-w", ws, "cost", "--since", "last tuesday"});
  EXPECT_EQ(since.exit_code, 65);
  auto noinput = RunKeel({"-w", ws, "agent", "run", "research"});
  EXPECT_EQ(noinput.exit_code, 64);
}

}  // namespace
}  // namespace keel::cli
