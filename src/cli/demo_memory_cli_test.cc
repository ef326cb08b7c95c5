// The flagship flow and memory, run as the real binary on the bundled sample data: the research
// step's facts land in memory with their provenance (the raw page artifact and span, the
// research agent, its run and step), the draft step recalls them and marks what it used, and
// running the flow again for a lead adds no duplicate facts.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/testing_util.h"

namespace keel {
namespace {

using keel::testing::ProcessResult;
using keel::testing::RunKeel;
using keel::testing::TempDir;
using nlohmann::json;

struct Demo {
  TempDir tmp;
  std::string dir = tmp.Sub("demo");
  ProcessResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--workspace", dir});
    return RunKeel(args);
  }
  json Json(std::vector<std::string> args) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }
  // Fact id -> number of sources, per lead.
  std::map<std::string, size_t> Sources(const std::string& lead) {
    std::map<std::string, size_t> out;
    for (const auto& f : Json({"facts", lead, "--json"})) {
      out[f["id"].get<std::string>()] = f["provenance"]["sources"].size();
    }
    return out;
  }
};

TEST(DemoMemory, ResearchFactsLandInMemoryWithProvenanceAndDraftsRecallThem) {
  Demo d;
  auto r =
      RunKeel({"demo", "--dir", d.dir, "--data", std::string(KEEL_SOURCE_DIR) + "/examples/data"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json leads = d.Json({"record", "list", "lead", "--json"});
  ASSERT_EQ(leads.size(), 12u);

  for (const auto& lead : leads) {
    std::string id = lead["id"];
    json facts = d.Json({"facts", id, "--json"});
    ASSERT_GE(facts.size(), 2u) << id << " has too few facts";
    bool email = false;
    for (const auto& f : facts) {
      const json& p = f["provenance"];
      EXPECT_EQ(f["subject"], id);
      EXPECT_EQ(p["agent"], "research");
      EXPECT_EQ(p["run_id"].get<std::string>().rfind("run_", 0), 0u) << p.dump();
      EXPECT_EQ(p["step_id"], "research");
      ASSERT_EQ(p["artifact"].get<std::string>().size(), 64u) << p.dump();
      // The span points into the raw page: the artifact's bytes there hold the fact's evidence.
      auto page = d.Run({"artifact", "get", p["artifact"]});
      ASSERT_EQ(page.exit_code, 0) << page.err;
      int64_t b = p["span"][0], e = p["span"][1];
      ASSERT_TRUE(b >= 0 && b < e && e <= static_cast<int64_t>(page.out.size())) << p.dump();
      if (f["key"] == "email") {
        email = true;
        EXPECT_EQ(page.out.substr(b, e - b), f["value"].get<std::string>());
        EXPECT_EQ(f["value"], lead["fields"]["email"]);
      }
    }
    EXPECT_TRUE(email) << id << ": the lead's e-mail address was not remembered";
  }

  // The page is outside text, never text keel generated: the model response is refused as a
  // source, the page is not.
  std::string lead0 = leads[0]["id"];
  json f0 = d.Json({"facts", lead0, "--json"})[0];
  auto ok = d.Run({"memory", "extract", f0["provenance"]["artifact"], "--subject", lead0});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;

  // Recall finds them with their provenance.
  json rec = d.Json({"recall", leads[0]["fields"]["email"], "--subject", lead0, "--json"});
  ASSERT_GE(rec["facts"].size(), 1u);
  EXPECT_EQ(rec["facts"][0]["provenance"]["agent"], "research");
  EXPECT_EQ(rec["facts"][0]["provenance"]["step_id"], "research");

  // The drafting agent recalled memory for every lead and used what it recalled: every one of
  // its retrievals is a hit.
  json stats = d.Json({"memory", "stats", "--json"});
  bool drafting = false;
  for (const auto& a : stats["by_agent"]) {
    if (a["name"] != "drafting") continue;
    drafting = true;
    EXPECT_EQ(a["retrievals"], 12);
    EXPECT_EQ(a["hits"], 12);
    EXPECT_GE(a["facts_used"].get<int>(), 12);
  }
  EXPECT_TRUE(drafting) << stats.dump();
  auto used = d.Json({"ledger", "--kind", "memory.used", "--json"});
  EXPECT_EQ(used.size(), 12u);

  // Running the flow again for a lead (the same page) writes no new fact and no new source.
  auto before = d.Sources(lead0);
  json data = leads[0]["fields"];
  json input = {{"lead_id", lead0},
                {"record", data},
                {"pages", json::array()},
                {"recipient", {{"name", data.value("name", "x")}}}};
  // The same page text as the demo's run: read it back from the artifact the facts cite.
  auto page = d.Run({"artifact", "get", f0["provenance"]["artifact"]});
  input["pages"].push_back({{"url", "form:" + lead0}, {"text", page.out}});
  auto run = d.Run({"run", "flagship", "--input", input.dump()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto work = d.Run({"worker", "--until-idle"});
  ASSERT_EQ(work.exit_code, 0) << work.err;
  EXPECT_EQ(d.Sources(lead0), before);
  // A second page repeating a fact (the e-mail) merges into the same fact: one more source.
  input["pages"] = json::array({{{"url", "https://example.org/team"},
                                 {"text", "Contact: " + data.value("email", "") + "\n"}}});
  ASSERT_EQ(d.Run({"run", "flagship", "--input", input.dump()}).exit_code, 0);
  ASSERT_EQ(d.Run({"worker", "--until-idle"}).exit_code, 0);
  auto after = d.Sources(lead0);
  EXPECT_EQ(after.size(), before.size());
  size_t more = 0;
  for (const auto& [id, n] : after) more += n - before[id];
  EXPECT_EQ(more, 1u);
}

}  // namespace
}  // namespace keel
