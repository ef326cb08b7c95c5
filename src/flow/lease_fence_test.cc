// Lease fencing (store/leases.h): a worker renews only a lease it still holds.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "flow/engine.h"
#include "flow/testing_flow.h"
#include "store/leases.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kSec;

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
  oa.executor = ob.executor = std::make_shared<InlineExecutor>();
  Engine a(f.ws.get(), reg, oa), b(f.ws.get(), reg, ob);
  auto r1 = a.Start("one", json::object());
  auto r2 = a.Start("one", json::object());
  ASSERT_TRUE(r1.ok() && r2.ok());
  int b_io = 0;
  agent.hook = [&] {
    f.clock.Advance(31 * kSec);  // A stalls past its lease
    auto t = b.RunUntilIdle();   // B takes over what A had claimed and is not doing now
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
                    // B takes the lease over after it expired: A may no longer renew it.
                    KEEL_ASSIGN_OR_RETURN(bool taken, store::ClaimLease(txn, id, "B", 250, 500));
                    EXPECT_TRUE(taken);
                    KEEL_ASSIGN_OR_RETURN(bool after, store::RenewLease(txn, id, "A", 600));
                    EXPECT_FALSE(after) << "a lease taken over is not ours any more";
                    return OkStatus();
                  })
                  .ok());
}

}  // namespace
}  // namespace keel::flow
