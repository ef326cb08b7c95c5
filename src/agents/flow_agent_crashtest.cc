// An agent step killed in its at-least-once window (label `crash`): the model answered, the
// worker died before the step's result committed. The restarted worker calls the agent
// again; the repeat must be answered by the response cache (temperature 0, identical
// prompt), so the provider is billed once, and the step completes once. The ledger shows
// the repeat as a cache hit (docs/workflows.md "Agent steps").
//
// The worker is this test binary re-run as a child process (`--gtest_filter` on the Child
// test below, which does nothing unless the parent set KEEL_AGENT_CRASH_WS), so that a
// counting provider can be wired in and SIGKILLed by a named crash point.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "agents/agent.h"
#include "core/env.h"
#include "core/json.h"
#include "core/testing_util.h"
#include "flow/engine.h"
#include "store/ledger.h"
#include "store/model_usage.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::agents {
namespace {

using nlohmann::json;

// Bills every call: one line per Complete, appended and fsynced before it returns, so the
// count survives a SIGKILL (as a provider's invoice would).
class CountingProvider final : public ModelProvider {
 public:
  explicit CountingProvider(std::string file) : file_(std::move(file)) {}
  std::string name() const override { return "counting"; }
  std::string default_model() const override { return "count-1"; }
  Result<ModelResponse> Complete(const ModelRequest& r) override {
    int fd = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return Unavailable("cannot open the billing file");
    std::string line = "billed " + std::to_string(r.max_tokens) + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) return Unavailable("cannot write the billing file");
    ModelResponse out;
    out.provider = "counting";
    out.model = "count-1";
    json j = {{"answer", "42"}};
    out.text = j.dump();
    out.json = CanonicalJson(j);
    out.finish_reason = "stop";
    out.input_tokens = 100;
    out.output_tokens = 10;
    return out;
  }

 private:
  std::string file_;
};

// The flow engine's view of the runner (as cli/wiring.cc FlowAgents, reduced).
class RunnerInvoker final : public flow::AgentInvoker {
 public:
  explicit RunnerInvoker(AgentRunner* r) : r_(r) {}
  bool HasAgent(const std::string& name) const override { return r_->Find(name) != nullptr; }
  Outcome Invoke(const std::string& name, const json& input, const flow::CallContext& ctx,
                 json* output) override {
    AgentContext actx;
    actx.run_id = ctx.run_id;
    actx.step_id = ctx.step_key;
    actx.actor = "workflow";
    auto res = r_->Run(name, CanonicalJson(input), actx);
    if (!res.ok()) return Outcome::Failure(ErrorClass::kPermanent, res.status().message());
    *output = json::parse(res->output_json);
    return Outcome::Success();
  }

 private:
  AgentRunner* r_;
};

AgentContract Thinker() {
  AgentContract c;
  c.name = "thinker";
  c.task = "think";
  c.provider = "counting";
  c.temperature = 0;
  c.system = "You answer questions.";
  c.prompt = "Think about {{topic}}.";
  c.input_schema_json = R"({"type":"object","properties":{"topic":{"type":"string"}}})";
  c.output_schema_json = R"({"type":"object","properties":{"answer":{"type":"string"}}})";
  return c;
}

constexpr char kFlow[] = R"(
name: think
steps:
  - id: think
    agent: thinker
    input: {topic: "${input.topic}"}
  - id: keep
    set: {answer: "${steps.think.answer}"}
)";

// Everything a worker process needs, on a workspace folder.
struct Worker {
  std::unique_ptr<store::Workspace> ws;
  CountingProvider provider;
  std::unique_ptr<AgentRunner> runner;
  std::unique_ptr<RunnerInvoker> invoker;
  std::unique_ptr<flow::Engine> engine;
  Worker(const std::string& dir, const std::string& billing) : provider(billing) {
    auto w = store::Workspace::Open(dir, store::WorkspaceOpenOptions{}, Env{});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    ws = std::move(w).value();
    AgentRunnerOptions o;
    o.providers["counting"] = &provider;
    o.default_provider = "counting";
    runner = std::make_unique<AgentRunner>(ws.get(), o);
    EXPECT_TRUE(runner->Register(Thinker()).ok());
    invoker = std::make_unique<RunnerInvoker>(runner.get());
    flow::Registry reg;
    reg.agents = invoker.get();
    flow::EngineOptions eo;
    eo.worker_id = "primary";  // a restarted worker takes its own leases back at once
    engine = std::make_unique<flow::Engine>(ws.get(), reg, eo);
  }
};

TEST(AgentStepCrash, Child) {
  const char* dir = std::getenv("KEEL_AGENT_CRASH_WS");
  if (dir == nullptr) GTEST_SKIP() << "runs only as the worker of KilledBetweenModelAndJournal";
  Worker w(dir, std::string(dir) + "/billing.log");
  auto r = w.engine->RunUntilIdle();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

int Lines(const std::string& path) {
  std::ifstream in(path);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) ++n;
  return n;
}

TEST(AgentStepCrash, KilledBetweenModelAndJournalIsNotBilledTwice) {
  keel::testing::TempDir tmp;
  std::string dir = tmp.Sub("ws");
  ASSERT_TRUE(store::Workspace::Init(dir, store::InitOptions{}, Env{}).ok());
  keel::testing::WriteFile(dir + "/think.yaml", kFlow);
  std::string run;
  {
    Worker w(dir, dir + "/billing.log");
    auto id = w.engine->Start(dir + "/think.yaml", {{"topic", "pricing"}});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    run = *id;
  }
  std::string self = "/proc/self/exe";
  char buf[4096];
  ssize_t n = ::readlink(self.c_str(), buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  std::string exe(buf, static_cast<size_t>(n));
  std::vector<std::string> args = {"--gtest_filter=AgentStepCrash.Child"};
  // The agent step's outcome is written (phase C) but not committed: the model was called
  // and its model.call entry (with the cache row) committed before.
  auto killed = keel::testing::RunProcess(
      exe, args, "",
      {{"KEEL_AGENT_CRASH_WS", dir}, {"KEEL_CRASH_AT", "send.after_record_before_commit"}});
  ASSERT_EQ(killed.exit_code, -9) << killed.out << killed.err;
  ASSERT_EQ(Lines(dir + "/billing.log"), 1);
  auto again = keel::testing::RunProcess(exe, args, "", {{"KEEL_AGENT_CRASH_WS", dir}});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;

  // Billed once: the provider saw one call.
  EXPECT_EQ(Lines(dir + "/billing.log"), 1);
  auto ws = store::Workspace::Open(dir, store::WorkspaceOpenOptions{}, Env{});
  ASSERT_TRUE(ws.ok());
  auto row = store::GetRun(**ws, run);
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ((*row)->status, "completed");
  EXPECT_NE((*row)->output.find("42"), std::string::npos);
  // The step completed once, on its second attempt.
  auto j = store::GetJournal(**ws, run, "think");
  ASSERT_TRUE(j.ok() && *j);
  EXPECT_EQ((*j)->status, "completed");
  EXPECT_EQ((*j)->attempts, 2);
  // The ledger shows both model calls of the step, the second a cache hit that cost nothing.
  store::LedgerQuery q;
  q.run_id = run;
  auto entries = (*ws)->QueryLedger(q);
  ASSERT_TRUE(entries.ok());
  int started = 0, completed = 0;
  std::vector<json> calls;
  for (const auto& e : *entries) {
    if (e.kind == "step.started" && e.step_id == "think") ++started;
    if (e.kind == "step.completed" && e.step_id == "think") ++completed;
    if (e.kind == "model.call") calls.push_back(json::parse(e.payload));
  }
  EXPECT_EQ(started, 2);
  EXPECT_EQ(completed, 1);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["keel.cache_hit"], false);
  EXPECT_EQ(calls[1]["keel.cache_hit"], true);
  EXPECT_EQ(calls[0]["keel.prompt_hash"], calls[1]["keel.prompt_hash"]);
  EXPECT_EQ(calls[1]["gen_ai.usage.input_tokens"], 0);
  store::CostQuery cq;
  cq.run_id = run;
  auto mc = store::ListModelCalls(**ws, cq, 10);
  ASSERT_TRUE(mc.ok());
  ASSERT_EQ(mc->size(), 2u);
  int billed = 0;
  for (const auto& c : *mc) billed += c.cached ? 0 : 1;
  EXPECT_EQ(billed, 1);
}

}  // namespace
}  // namespace keel::agents
