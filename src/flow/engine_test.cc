#include "flow/engine.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kDay;
using testing::kHour;
using testing::kSec;

const char kHello[] = R"(
name: hello
steps:
  - id: greet
    agent: echo
    input: {text: "Hello ${input.name}"}
  - id: remember
    set: {greeting: "${steps.greet.text}"}
  - id: note
    action: log.write
    params: {line: "${vars.greeting}"}
)";

TEST(Engine, HelloRunsToCompletionAndJournalsEachStep) {
  FlowFixture f;
  f.AddWorkflow("hello", kHello);
  std::string id = f.Start("hello", {{"name", "Ada"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  json v = f.Show(id);
  ASSERT_EQ(v["steps"].size(), 3u);
  EXPECT_EQ(v["steps"][0]["output"]["text"], "Hello Ada");
  EXPECT_EQ(v["output"]["greeting"], "Hello Ada");
  EXPECT_EQ(v["outbox"][0]["state"], "done");
  EXPECT_EQ(f.log.effects(), 1);
  EXPECT_EQ(f.agents.calls("echo"), 1);
}

TEST(Engine, BadInputIsRefused) {
  FlowFixture f;
  f.AddWorkflow("needs",
                "name: needs\ninput: {required: [email]}\nsteps:\n  - id: a\n    noop: true\n");
  EXPECT_FALSE(f.engine->Start("needs", json::object()).ok());
  EXPECT_FALSE(f.engine->Start("needs", json::array()).ok());
  EXPECT_FALSE(f.engine->Start("nonexistent", json::object()).ok());
  EXPECT_TRUE(f.engine->Start("needs", {{"email", "a@b"}}).ok());
}

TEST(Engine, CompletedStepsNeverRunAgainAfterRestart) {
  FlowFixture f;
  f.AddWorkflow("two", R"(
name: two
steps:
  - id: first
    action: fake_smtp.send
    params: {to: a}
  - id: pause
    wait: 1h
  - id: second
    action: fake_smtp.send
    params: {to: b}
)");
  std::string id = f.Start("two");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "waiting");
  EXPECT_EQ(f.smtp.effects(), 1);
  // A new worker (a restart) picks the run up after the timer; `first` is not sent again.
  f.engine = f.NewEngine("w2");
  f.clock.Advance(kHour);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 2);
}

TEST(Engine, RetriesWithBackoffThenSucceeds) {
  FlowFixture f;
  f.AddWorkflow("flaky", R"(
name: flaky
steps:
  - id: call
    agent: flaky
    input: {fail_times: 3}
    retry: {max_attempts: 5, backoff: 1s, max_backoff: 10s, multiplier: 2, jitter: 0.5}
)");
  std::string id = f.Start("flaky");
  f.Drive(60 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.agents.calls("flaky"), 4);
  json v = f.Show(id);
  EXPECT_EQ(v["steps"][0]["attempts"], 4);
  int attempts = 0;
  for (const auto& t : v["timeline"])
    if (t["kind"] == "step.attempt") ++attempts;
  EXPECT_EQ(attempts, 4);  // every attempt is a ledger entry
}

TEST(Engine, RetriesExhaustedFailTheRun) {
  FlowFixture f;
  f.AddWorkflow("flaky", R"(
name: flaky
steps:
  - id: call
    agent: flaky
    input: {fail_times: 9}
    retry: {max_attempts: 3, backoff: 1s}
)");
  std::string id = f.Start("flaky");
  f.Drive(60 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "failed");
  EXPECT_EQ(f.agents.calls("flaky"), 3);
}

TEST(Engine, BackoffIsExponentialCappedAndJittered) {
  RetryPolicy p;
  p.initial_us = kSec;
  p.max_us = 10 * kSec;
  p.multiplier = 2;
  p.jitter = 0;
  EXPECT_EQ(BackoffUs(p, 1, nullptr), kSec);
  EXPECT_EQ(BackoffUs(p, 3, nullptr), 4 * kSec);
  EXPECT_EQ(BackoffUs(p, 10, nullptr), 10 * kSec);
  p.jitter = 0.5;
  SeededRandom r1(1), r2(1);
  int64_t a = BackoffUs(p, 2, &r1);
  EXPECT_EQ(a, BackoffUs(p, 2, &r2));  // deterministic from the injected randomness
  EXPECT_GE(a, kSec);
  EXPECT_LE(a, 3 * kSec);
}

TEST(Engine, PermanentFailureCompensatesInReverseOrder) {
  FlowFixture f;
  f.AddWorkflow("saga", R"(
name: saga
steps:
  - id: reserve
    action: fake_keyed.reserve
    compensate: release
  - id: charge
    action: fake_keyed.charge
    compensate: refund
  - id: ship
    agent: fail
    input: {message: "no stock"}
compensations:
  - id: release
    action: fake_keyed.release
  - id: refund
    action: fake_keyed.refund
)");
  std::string id = f.Start("saga");
  f.Drive(10 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "failed");
  json v = f.Show(id);
  std::vector<std::string> keys;
  for (const auto& s : v["steps"]) keys.push_back(s["key"]);
  ASSERT_EQ(keys.size(), 5u);
  EXPECT_EQ(keys[2], "ship");
  EXPECT_EQ(keys[3], "comp:charge");  // reverse order
  EXPECT_EQ(keys[4], "comp:reserve");
  EXPECT_EQ(f.keyed.effects(), 4);
  EXPECT_NE(v["error"].get<std::string>().find("no stock"), std::string::npos);
}

TEST(Engine, RetryResumesAFailedRunAtItsFailedStep) {
  FlowFixture f;
  f.AddWorkflow("r", R"(
name: r
steps:
  - id: a
    action: fake_smtp.send
  - id: b
    action: fake_keyed.charge
    params: {_fail: permanent, _fail_times: 1}
  - id: c
    noop: true
)");
  std::string id = f.Start("r");
  f.Drive(5 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "failed");
  ASSERT_TRUE(f.engine->Retry(id).ok());
  f.Drive(5 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 1);  // `a` did not run again
  EXPECT_EQ(f.keyed.effects(), 1);
  EXPECT_FALSE(f.engine->Retry(id).ok());  // only failed runs
}

TEST(Engine, CancelStopsARun) {
  FlowFixture f;
  f.AddWorkflow(
      "w", "name: w\nsteps:\n  - id: a\n    wait: 1d\n  - id: b\n    action: fake_smtp.send\n");
  std::string id = f.Start("w");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_TRUE(f.engine->Cancel(id).ok());
  f.Drive(2 * kDay, kHour);
  EXPECT_EQ(f.Status(id), "canceled");
  EXPECT_EQ(f.smtp.effects(), 0);
  EXPECT_FALSE(f.engine->Cancel(id).ok());
}

}  // namespace
}  // namespace keel::flow

namespace keel::flow {
namespace {

// More runs due than one round takes (batch 2, five runs): a run that keeps making progress
// keeps its place in the queue only for a short while, so every run gets its turn soon.
TEST(Engine, RunsBeyondOneBatchAreNotStarvedByRunsMakingProgress) {
  FlowFixture f;
  std::string y = "name: long\nsteps:\n";
  for (int i = 0; i < 40; ++i) y += "  - id: s" + std::to_string(i) + "\n    noop: true\n";
  f.AddWorkflow("long", y);
  EngineOptions o;
  o.worker_id = "w1";
  o.batch = 2;
  auto engine = std::make_unique<Engine>(f.ws.get(), f.registry(), o);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(f.Start("long"));
  std::set<std::string> started;
  int ticks = 0;
  for (; ticks < 200 && started.size() < ids.size(); ++ticks) {
    f.clock.Advance(10000);  // 10 ms per round
    ASSERT_TRUE(engine->Tick().ok());
    for (const auto& id : ids) {
      if (f.Show(id)["steps"].size() > 0) started.insert(id);
    }
  }
  // Two runs hold the batch for at most the requeue time (50 ms, 5 rounds) before they
  // go to the back of the queue.
  EXPECT_EQ(started.size(), ids.size());
  EXPECT_LE(ticks, 20);
  // And all finish.
  ASSERT_TRUE(engine->RunUntilIdle().ok());
  for (const auto& id : ids) EXPECT_EQ(f.Status(id), "completed");
}

}  // namespace
}  // namespace keel::flow
