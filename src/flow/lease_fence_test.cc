// Lease fencing and worker presence (flow/worker_presence.h, store/leases.h).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "flow/engine.h"
#include "flow/testing_flow.h"
#include "flow/worker_presence.h"
#include "store/leases.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;

constexpr int64_t kSec = 1000000;

// An echo agent that counts calls per step key and can run a hook inside a call (to play
// what another worker does while this one is stalled).
class HookAgent final : public AgentInvoker {
 public:
  bool HasAgent(const std::string& name) const override { return name == "echo"; }
  Outcome Invoke(const std::string&, const json& input, const CallContext& ctx,
                 json* output) override {
    ++calls[ctx.run_id + " " + ctx.step_key];
    order.push_back(ctx.run_id);
    if (hook) {
      auto h = std::move(hook);
      hook = nullptr;
      h();
    }
    *output = input;
    return Outcome::Success();
  }
  std::map<std::string, int> calls;
  std::vector<std::string> order;
  std::function<void()> hook;
};

// Worker A claims two runs' agent steps in one round and stalls in the first call past its
// lease. Worker B takes the second run over and completes the step. When A goes on, it
// must not call the agent for the second run again: its lease is lost, not free for taking.
TEST(LeaseFence, StalledWorkerDoesNotRedoAStepTakenOverAndFinished) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: call\n    agent: echo\n");
  HookAgent agent;
  Registry reg;
  reg.agents = &agent;
  EngineOptions oa, ob;
  oa.worker_id = "A";
  ob.worker_id = "B";
  oa.lease_us = ob.lease_us = 30 * kSec;
  Engine a(f.ws.get(), reg, oa), b(f.ws.get(), reg, ob);
  auto r1 = a.Start("one", json::object());
  auto r2 = a.Start("one", json::object());
  ASSERT_TRUE(r1.ok() && r2.ok());
  int b_io = 0;
  agent.hook = [&] {
    f.clock.Advance(31 * kSec);  // A stalls past its lease
    auto t = b.RunUntilIdle();    // B takes over what A had claimed and is not doing now
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    b_io = 1;
  };
  auto t = a.Tick();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(b_io, 1);
  ASSERT_TRUE(a.RunUntilIdle().ok());
  ASSERT_TRUE(b.RunUntilIdle().ok());
  EXPECT_EQ(f.Status(*r1), "completed");
  EXPECT_EQ(f.Status(*r2), "completed");
  // The run A was executing when it stalled ran twice (A, then B after the takeover: the
  // agent contract allows that); the run A had not started yet ran exactly once, by B.
  ASSERT_FALSE(agent.order.empty());
  std::string first = agent.order[0];
  std::string second = first == *r1 ? *r2 : *r1;
  EXPECT_EQ(agent.calls[first + " call"], 2);
  EXPECT_EQ(agent.calls[second + " call"], 1) << "a stalled worker redid a step taken over";
}

TEST(LeaseFence, RenewLeaseOnlyWhileOwned) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: call\n    agent: echo\n");
  std::string id = f.Start("one");
  ASSERT_TRUE(f.ws->Write([&](store::Txn& txn) -> Status {
                    KEEL_ASSIGN_OR_RETURN(bool got, store::ClaimLease(txn, id, "A", 0, 100));
                    EXPECT_TRUE(got);
                    KEEL_ASSIGN_OR_RETURN(bool mine, store::RenewLease(txn, id, "A", 200));
                    EXPECT_TRUE(mine);
                    KEEL_ASSIGN_OR_RETURN(bool theirs, store::RenewLease(txn, id, "B", 300));
                    EXPECT_FALSE(theirs);
                    KEEL_ASSIGN_OR_RETURN(int64_t n, store::ReleaseLeasesOf(txn, "A"));
                    EXPECT_EQ(n, 1);
                    KEEL_ASSIGN_OR_RETURN(bool after, store::RenewLease(txn, id, "A", 400));
                    EXPECT_FALSE(after) << "a released lease is not ours any more";
                    return OkStatus();
                  })
                  .ok());
}

TEST(WorkerPresence, LiveWorkerIsNotGoneDeadOneIs) {
  FlowFixture f;
  auto me = WorkerPresence::Announce(f.dir(), "wrk_me");
  ASSERT_TRUE(me.ok()) << me.status().ToString();
  // Our own lock is held: another open file description cannot take it.
  EXPECT_FALSE(WorkerPresence::IsGone(f.dir(), "wrk_me"));
  EXPECT_FALSE(WorkerPresence::IsGone(f.dir(), "wrk_never_announced"));
  EXPECT_FALSE(WorkerPresence::IsGone(f.dir(), "../etc"));
  EXPECT_FALSE(WorkerPresence::Announce(f.dir(), "a/b").ok());
  // A child process announces itself and dies without cleaning up (SIGKILL-like _exit).
  pid_t pid = ::fork();
  if (pid == 0) {
    auto p = WorkerPresence::Announce(f.dir(), "wrk_child");
    if (!p.ok()) ::_exit(1);
    p->release();  // never unlock or unlink: as if killed
    ::_exit(0);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(WorkerPresence::IsGone(f.dir(), "wrk_child"));
  EXPECT_FALSE(WorkerPresence::IsGone(f.dir(), "wrk_child")) << "the stale file is removed";
}

TEST(WorkerPresence, ReclaimFreesOnlyLeasesOfGoneWorkers) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: call\n    agent: echo\n");
  std::string dead_run = f.Start("one"), live_run = f.Start("one"), unknown_run = f.Start("one");
  auto live = WorkerPresence::Announce(f.dir(), "wrk_live");
  ASSERT_TRUE(live.ok());
  pid_t pid = ::fork();
  if (pid == 0) {
    auto p = WorkerPresence::Announce(f.dir(), "wrk_dead");
    if (p.ok()) p->release();
    ::_exit(0);
  }
  ::waitpid(pid, nullptr, 0);
  int64_t until = f.clock.NowMicros() + 300 * kSec;
  ASSERT_TRUE(f.ws->Write([&](store::Txn& txn) -> Status {
                    KEEL_RETURN_IF_ERROR(store::ClaimLease(txn, dead_run, "wrk_dead", 0, until).status());
                    KEEL_RETURN_IF_ERROR(store::ClaimLease(txn, live_run, "wrk_live", 0, until).status());
                    return store::ClaimLease(txn, unknown_run, "wrk_elsewhere", 0, until).status();
                  })
                  .ok());
  auto freed = ReclaimLeasesOfGoneWorkers(*f.ws, "wrk_me");
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(*freed, 1);
  auto due = store::DueRuns(*f.ws, f.clock.NowMicros(), f.clock.NowMicros(), 10);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(*due, std::vector<std::string>{dead_run});
  store::LedgerQuery q;
  q.kind = "lease.reclaimed";
  auto entries = f.ws->QueryLedger(q);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].subject, "wrk_dead");
}

}  // namespace
}  // namespace keel::flow
