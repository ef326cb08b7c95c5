// The effect executor (flow/executor.h) and the engine on it: limits hold, a slow effect does
// not stall other runs, and an engine with effects in flight records them or leaves them as a
// crash would.
#include "flow/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "flow/engine.h"
#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kSec;

// Counts how many functions run at once, overall and per lane.
struct Gauge {
  std::mutex mu;
  int now = 0, peak = 0;
  std::map<std::string, int> lane_now, lane_peak;
  void Enter(const std::string& lane) {
    std::lock_guard<std::mutex> l(mu);
    peak = std::max(peak, ++now);
    lane_peak[lane] = std::max(lane_peak[lane], ++lane_now[lane]);
  }
  void Leave(const std::string& lane) {
    std::lock_guard<std::mutex> l(mu);
    --now;
    --lane_now[lane];
  }
};

TEST(Executor, PoolHoldsTheGlobalAndPerLaneLimits) {
  Gauge g;
  std::atomic<int> ran{0};
  {
    EffectLimits lim;
    lim.global = 4;
    lim.per_lane = 3;
    lim.lanes["adapter:one"] = 1;
    auto pool = NewThreadPoolExecutor(lim);
    EXPECT_FALSE(pool->RunsInline());
    for (int i = 0; i < 30; ++i) {
      std::string lane = i % 3 == 0 ? "adapter:one" : (i % 3 == 1 ? "adapter:two" : "agent:x");
      pool->Submit(lane, [&, lane] {
        g.Enter(lane);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        g.Leave(lane);
        ++ran;
      });
    }
    for (int i = 0; i < 400 && ran.load() < 30; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(ran.load(), 30);
  EXPECT_LE(g.peak, 4);
  EXPECT_GE(g.peak, 2);  // it does run several at once
  EXPECT_EQ(g.lane_peak["adapter:one"], 1);
  EXPECT_LE(g.lane_peak["adapter:two"], 3);
  EXPECT_LE(g.lane_peak["agent:x"], 3);
}

TEST(Executor, AFullLaneDoesNotHoldBackOtherLanes) {
  EffectLimits lim;
  lim.global = 4;
  lim.per_lane = 1;
  auto pool = NewThreadPoolExecutor(lim);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, other_ran = false;
  pool->Submit("adapter:slow", [&] {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return release; });
  });
  pool->Submit("adapter:slow", [] {});  // queued behind the first: its lane is full
  pool->Submit("adapter:fast", [&] {
    std::lock_guard<std::mutex> l(mu);
    other_ran = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    EXPECT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return other_ran; }));
    release = true;
  }
  cv.notify_all();
}

TEST(Executor, DestroyingThePoolWaitsForRunningAndDropsQueued) {
  std::atomic<int> started{0}, finished{0};
  {
    EffectLimits lim;
    lim.global = 1;
    auto pool = NewThreadPoolExecutor(lim);
    for (int i = 0; i < 5; ++i) {
      pool->Submit("l", [&] {
        ++started;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ++finished;
      });
    }
    while (started.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(started.load(), finished.load());  // nothing was cut off midway
  EXPECT_LT(started.load(), 5);                // what never started never will
}

TEST(Executor, InlineRunsBeforeSubmitReturns) {
  InlineExecutor in;
  bool ran = false;
  in.Submit("x", [&] { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(in.RunsInline());
}

// An adapter whose calls block until released, and that measures how many run at once.
class GateAdapter final : public ActionAdapter {
 public:
  std::string name() const override { return "gate"; }
  std::vector<std::string> actions() const override { return {"call"}; }
  bool honours_idempotency_key() const override { return true; }
  Outcome Perform(const std::string&, const std::string&, const json&, const CallContext&,
                  json* out) override {
    gauge.Enter("gate");
    std::unique_lock<std::mutex> l(mu_);
    ++calls_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    l.unlock();
    gauge.Leave("gate");
    *out = json::object();
    return Outcome::Success();
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `n` calls have begun (false after 10 s).
  bool WaitCalls(int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return calls_ >= n; });
  }
  int calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  Gauge gauge;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int calls_ = 0;
};

constexpr const char* kGated = "name: gated\nsteps:\n  - id: call\n    action: gate.call\n";
constexpr const char* kQuick =
    "name: quick\nsteps:\n  - id: a\n    noop: true\n  - id: b\n    action: log.write\n"
    "  - id: c\n    noop: true\n";

TEST(EffectsInFlight, ASlowEffectDoesNotStallOtherRuns) {
  FlowFixture f;
  GateAdapter gate;
  f.AddWorkflow("gated", kGated);
  f.AddWorkflow("quick", kQuick);
  Registry reg = f.registry();
  reg.adapters["gate"] = &gate;
  EngineOptions o;
  o.worker_id = "w";
  Engine e(f.ws.get(), reg, o);  // the default: a thread pool
  std::string slow = *e.Start("gated", json::object());
  ASSERT_TRUE(e.Tick().ok());
  ASSERT_TRUE(gate.WaitCalls(1));
  std::string quick = *e.Start("quick", json::object());
  for (int i = 0; i < 200 && f.Status(quick) != "completed"; ++i) {
    auto t = e.Tick();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    if (!t->progressed()) e.Sleep(10000);
  }
  EXPECT_EQ(f.Status(quick), "completed");
  EXPECT_EQ(f.Status(slow), "running");
  EXPECT_EQ(e.InFlight(), 1);
  // In flight, the run is due only when its lease ends: no round takes it again.
  auto row = store::GetRun(*f.ws, slow);
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ((*row)->due_us, (*row)->lease_until_us);
  gate.Open();
  ASSERT_TRUE(e.RunUntilIdle().ok());
  EXPECT_EQ(f.Status(slow), "completed");
  EXPECT_EQ(gate.calls(), 1);
  EXPECT_EQ(e.InFlight(), 0);
}

TEST(EffectsInFlight, ALaneRunsAtItsLimitAndEveryRunCompletes) {
  FlowFixture f;
  GateAdapter gate;
  f.AddWorkflow("gated", kGated);
  Registry reg = f.registry();
  reg.adapters["gate"] = &gate;
  EngineOptions o;
  o.batch = 4;
  o.effects.global = 8;
  o.effects.lanes["adapter:gate"] = 2;
  Engine e(f.ws.get(), reg, o);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(e.Start("gated", json::object()).ok());
  // Rounds claim at most the limit plus one batch; the rest wait, due, for room.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e.Tick().ok());
  ASSERT_TRUE(gate.WaitCalls(2));
  EXPECT_LE(e.InFlight(), 2 + 4);
  gate.Open();
  ASSERT_TRUE(e.RunUntilIdle().ok());
  auto counts = store::CountRuns(*f.ws);
  ASSERT_TRUE(counts.ok());
  for (const auto& [status, n] : *counts) EXPECT_EQ(status, "completed") << n;
  EXPECT_EQ(gate.calls(), 12);
  EXPECT_EQ(gate.gauge.lane_peak["gate"], 2);
}

TEST(EffectsInFlight, DrainRecordsWhatIsInFlight) {
  FlowFixture f;
  GateAdapter gate;
  f.AddWorkflow("gated", kGated);
  Registry reg = f.registry();
  reg.adapters["gate"] = &gate;
  Engine e(f.ws.get(), reg, EngineOptions{});
  std::string id = *e.Start("gated", json::object());
  ASSERT_TRUE(e.Tick().ok());
  ASSERT_TRUE(gate.WaitCalls(1));
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gate.Open();
  });
  ASSERT_TRUE(e.Drain().ok());
  opener.join();
  EXPECT_EQ(e.InFlight(), 0);
  auto ob = store::GetOutbox(*f.ws, ActionToken(id, "call"));
  ASSERT_TRUE(ob.ok() && *ob);
  EXPECT_EQ((*ob)->state, "done");
}

// A worker restarting under its id takes back at once the runs its previous life had in
// flight (their due time is the lease's end): the keyed effect is retried with its token.
TEST(EffectsInFlight, ARestartUnderTheSameIdTakesItsRunsBackAtOnce) {
  FlowFixture f;
  GateAdapter gate;
  f.AddWorkflow("gated", kGated);
  Registry reg = f.registry();
  reg.adapters["gate"] = &gate;
  EngineOptions o;
  o.worker_id = "primary";
  o.lease_us = 300 * kSec;
  std::string id;
  {
    Engine e(f.ws.get(), reg, o);
    id = *e.Start("gated", json::object());
    ASSERT_TRUE(e.Tick().ok());
    ASSERT_TRUE(gate.WaitCalls(1));
    gate.Open();  // the call ends; the engine goes before it records the outcome
  }
  ASSERT_EQ(f.Status(id), "running");
  o.executor = std::make_shared<InlineExecutor>();
  Engine again(f.ws.get(), reg, o);
  ASSERT_TRUE(again.RunUntilIdle().ok());  // no clock advance: not after the lease ends
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(gate.calls(), 2);  // retried with the same token (the adapter dedupes by it)
}

// flow/engine.h: an API thread may start runs, send events, decide and pause while a worker
// ticks (the Workspace serialises their transactions with the worker's; reads use their
// own connections).
TEST(EffectsInFlight, OperatorCallsFromAnotherThreadWhileTheWorkerTicks) {
  FlowFixture f;
  f.AddWorkflow("quick", kQuick);
  f.AddWorkflow("waiter",
                "name: waiter\nsteps:\n  - id: w\n    wait_event: {type: go, key: "
                "\"${input.k}\"}\n  - id: after\n    action: log.write\n");
  Engine e(f.ws.get(), f.registry(), EngineOptions{});
  std::atomic<bool> stop{false};
  std::vector<std::string> started;
  std::thread api([&] {
    for (int i = 0; i < 40; ++i) {
      auto q = e.Start("quick", json::object());
      auto w = e.Start("waiter", json{{"k", std::to_string(i)}});
      ASSERT_TRUE(q.ok() && w.ok());
      started.push_back(*q);
      started.push_back(*w);
      ASSERT_TRUE(
          e.SendEvent("go", std::to_string(i), "ev" + std::to_string(i), json::object()).ok());
      if (i == 20) {
        ASSERT_TRUE(e.Pause("adapter", "log").ok());
      }
      if (i == 25) {
        ASSERT_TRUE(e.Resume("adapter", "log").ok());
      }
      ASSERT_TRUE(store::ListRuns(*f.ws, "", 20, {}).ok());
    }
    stop = true;
  });
  while (!stop.load()) {
    auto t = e.Tick();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    if (!t->progressed()) e.Sleep(1000);
  }
  api.join();
  ASSERT_TRUE(e.RunUntilIdle().ok());
  for (const auto& id : started) EXPECT_EQ(f.Status(id), "completed") << id;
}

}  // namespace
}  // namespace keel::flow
