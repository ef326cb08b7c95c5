// The duplicated-side-effect situations users of other engines report, one test each, and
// the time and operator-boundary rules (approvals, events, pause, timers under clock jumps).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flow/engine.h"
#include "flow/interfaces.h"
#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kDay;
using testing::kHour;
using testing::kMin;
using testing::kSec;

// Inngest #3069-style: a crash in the middle of a loop must not re-send the items already
// sent (the loop is not re-run from the top).
TEST(PeerDuplicates, RetryAfterCrashMidLoopSendsEachItemOnce) {
  FlowFixture f;
  f.AddWorkflow("loop", R"(
name: loop
steps:
  - id: each
    foreach: input.to
    as: who
    do:
      - id: send
        action: fake_smtp.send
        params: {to: "${who}"}
      - id: breathe
        wait: 1m
)");
  std::string id = f.Start("loop", {{"to", json::array({"a", "b", "c", "d"})}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.clock.Advance(kMin);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());  // a and b sent
  EXPECT_EQ(f.smtp.effects(), 2);
  f.engine = f.NewEngine("after-crash");  // the worker restarts
  for (int i = 0; i < 10; ++i) {
    f.clock.Advance(kMin);
    ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  }
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 4);
  for (const char* k : {"send#0", "send#1", "send#2", "send#3"}) {
    EXPECT_EQ(f.smtp.effects_for(ActionToken(id, k)), 1) << k;
  }
}

// LangGraph #7780-style: an approval inside a loop; resuming after each decision must not
// re-run the effects before it, and no approval in the loop is skipped.
TEST(PeerDuplicates, ApprovalInsideLoopNeverSkippedNorRepeatsEffects) {
  FlowFixture f;
  f.AddWorkflow("loopgate", R"(
name: loopgate
steps:
  - id: each
    foreach: input.items
    do:
      - id: draft
        action: fake_keyed.draft
        params: {item: "${item}"}
      - id: ok
        approval: {summary: "send ${item}?"}
      - id: send
        action: fake_smtp.send
        params: {item: "${item}"}
)");
  std::string id = f.Start("loopgate", {{"items", json::array({1, 2, 3})}});
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(f.engine->RunUntilIdle().ok());
    auto pending = f.Pending();
    ASSERT_EQ(pending.size(), 1u) << "round " << round;
    EXPECT_EQ(pending[0].summary, "send " + std::to_string(round + 1) + "?");
    ASSERT_TRUE(f.engine->Decide(pending[0].id, true, nullptr, "").ok());
  }
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.keyed.effects(), 3);
  EXPECT_EQ(f.smtp.effects(), 3);
}

// Windmill #2639-style: an approval inside a branch is not bypassed.
TEST(PeerDuplicates, ApprovalInsideBranchIsNotSkipped) {
  FlowFixture f;
  f.AddWorkflow("br", R"(
name: br
steps:
  - id: big
    if: "input.amount > 100"
    then:
      - id: gate
        approval: {summary: "pay ${input.amount}?", timeout: 1d, default: reject}
    else:
      - id: small
        noop: true
  - id: pay
    action: fake_keyed.pay
)");
  std::string id = f.Start("br", {{"amount", 500}});
  f.Drive(2 * kHour, kHour);
  EXPECT_EQ(f.Status(id), "waiting");
  EXPECT_EQ(f.keyed.effects(), 0);
  f.Drive(2 * kDay, kHour);  // the default decision (reject) at the timeout
  EXPECT_EQ(f.Status(id), "failed");
  EXPECT_EQ(f.keyed.effects(), 0);
  std::string small = f.Start("br", {{"amount", 5}});
  f.Drive(kSec, kSec);
  EXPECT_EQ(f.Status(small), "completed");
}

// Hatchet #1022-style: the first worker's lease expires while it is still alive; the second
// worker must not repeat the effect on a channel that cannot dedupe, and must reuse the
// token on one that can.
class SlowAdapter final : public ActionAdapter {
 public:
  SlowAdapter(ActionAdapter* inner, SimulatedClock* clock, int64_t stall)
      : inner_(inner), clock_(clock), stall_(stall) {}
  std::string name() const override { return inner_->name(); }
  bool honours_idempotency_key() const override { return inner_->honours_idempotency_key(); }
  std::vector<std::string> actions() const override { return inner_->actions(); }
  Outcome Perform(const std::string& token, const std::string& action, const json& params,
                  const CallContext& ctx, json* result) override {
    Outcome o = inner_->Perform(token, action, params, ctx, result);
    if (hook) hook();  // another worker runs while this one is "stuck" after sending
    clock_->Advance(stall_);
    return o;
  }
  std::function<void()> hook;

 private:
  ActionAdapter* inner_;
  SimulatedClock* clock_;
  int64_t stall_;
};

TEST(PeerDuplicates, LeaseExpiryWhileFirstWorkerAliveNeverResendsUnkeyed) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: send\n    action: fake_smtp.send\n");
  std::string id = f.Start("one");
  SlowAdapter slow(&f.smtp, &f.clock, 0);
  Registry reg = f.registry();
  reg.adapters["fake_smtp"] = &slow;
  EngineOptions o1;
  o1.worker_id = "A";
  o1.lease_us = 30 * kSec;
  o1.executor = std::make_shared<InlineExecutor>();
  Engine a(f.ws.get(), reg, o1);
  auto b = f.NewEngine("B", 30 * kSec);
  bool b_ran_during_lease = false;
  slow.hook = [&] {
    // While A's lease is live, B finds nothing to do.
    auto t = b->Tick();
    ASSERT_TRUE(t.ok());
    b_ran_during_lease = t->io > 0;
    // A stalls past its lease; B takes over.
    f.clock.Advance(31 * kSec);
    ASSERT_TRUE(b->RunUntilIdle().ok());
  };
  ASSERT_TRUE(a.Tick().ok());
  EXPECT_FALSE(b_ran_during_lease);
  EXPECT_EQ(f.smtp.effects(), 1);  // never re-sent
  auto pending = f.Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].kind, "uncertain");  // surfaced to the operator with evidence
  EXPECT_NE(pending[0].context.find(ActionToken(id, "send")), std::string::npos);
  EXPECT_EQ(f.Status(id), "waiting");
  // The operator confirms it was delivered: the run completes without another send.
  ASSERT_TRUE(f.engine->Decide(pending[0].id, true, nullptr, "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 1);
}

TEST(PeerDuplicates, LeaseExpiryOnKeyedChannelRetriesWithSameToken) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: pay\n    action: fake_keyed.pay\n");
  std::string id = f.Start("one");
  SlowAdapter slow(&f.keyed, &f.clock, 0);
  Registry reg = f.registry();
  reg.adapters["fake_keyed"] = &slow;
  EngineOptions o1;
  o1.worker_id = "A";
  o1.lease_us = 30 * kSec;
  o1.executor = std::make_shared<InlineExecutor>();
  Engine a(f.ws.get(), reg, o1);
  auto b = f.NewEngine("B", 30 * kSec);
  slow.hook = [&] {
    f.clock.Advance(31 * kSec);
    ASSERT_TRUE(b->RunUntilIdle().ok());
  };
  ASSERT_TRUE(a.Tick().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.keyed.calls(), 2);    // B retried ...
  EXPECT_EQ(f.keyed.effects(), 1);  // ... with the same token: one charge
  EXPECT_TRUE(f.Pending().empty());
}

// The ambiguous window reported by the adapter itself (sent, then the connection dropped).
TEST(PeerDuplicates, InDoubtOnUnkeyedChannelBecomesUncertainNotResent) {
  FlowFixture f;
  f.AddWorkflow("one",
                "name: one\nsteps:\n  - id: send\n    action: fake_smtp.send\n    params: "
                "{_in_doubt_after_send: true}\n");
  std::string id = f.Start("one");
  f.Drive(kHour, kMin);
  EXPECT_EQ(f.smtp.effects(), 1);
  auto pending = f.Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].kind, "uncertain");
  ASSERT_TRUE(f.engine->Decide(pending[0].id, false, nullptr, "bounced").ok());
  f.Drive(kMin, kMin);
  EXPECT_EQ(f.Status(id), "failed");
  EXPECT_EQ(f.smtp.effects(), 1);
}

TEST(PeerDuplicates, InDoubtOnKeyedChannelRetriesWithSameKey) {
  FlowFixture f;
  f.AddWorkflow("one",
                "name: one\nsteps:\n  - id: pay\n    action: fake_keyed.pay\n    params: "
                "{_in_doubt_after_send: true}\n");
  std::string id = f.Start("one");
  f.Drive(kHour, kMin);
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.keyed.calls(), 2);
  EXPECT_EQ(f.keyed.effects(), 1);
}

// n8n #31837-style: the same event delivered several times is delivered once.
TEST(PeerDuplicates, DuplicateEventDeliveredOnce) {
  FlowFixture f;
  f.AddWorkflow("reply", R"(
name: reply
steps:
  - id: wait
    wait_event: {type: reply, key: "${input.lead}", timeout: 3d}
  - id: thank
    action: fake_smtp.send
)");
  std::string a = f.Start("reply", {{"lead", "L1"}});
  std::string b = f.Start("reply", {{"lead", "L2"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  for (int i = 0; i < 3; ++i) {
    auto r = f.engine->SendEvent("reply", "L1", "evt-1", {{"text", "yes"}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->duplicate, i > 0);
    EXPECT_EQ(r->delivered, i == 0 ? 1 : 0);
    ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  }
  EXPECT_EQ(f.Status(a), "completed");
  EXPECT_EQ(f.Status(b), "waiting");
  EXPECT_EQ(f.smtp.effects(), 1);
  EXPECT_EQ(f.Show(a)["steps"][0]["output"]["event"]["text"], "yes");
}

TEST(Events, TimeoutTakesTheNamedBranch) {
  FlowFixture f;
  f.AddWorkflow("reply", R"(
name: reply
steps:
  - id: wait
    wait_event: {type: reply, key: "${input.lead}", timeout: 3d}
    on_timeout:
      - id: nudge
        action: fake_smtp.nudge
  - id: done
    noop: true
)");
  std::string id = f.Start("reply", {{"lead", "L1"}});
  f.Drive(2 * kDay, kHour);
  EXPECT_EQ(f.Status(id), "waiting");
  f.Drive(2 * kDay, kHour);
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 1);
  // An event after the timeout reaches nobody.
  auto r = f.engine->SendEvent("reply", "L1", "late", json::object());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->delivered, 0);
}

TEST(Approvals, PolicyReminderEditAndReject) {
  FlowFixture f;
  f.AddWorkflow("pay", R"(
name: pay
steps:
  - id: terms
    set: {payment: {amount: "${input.amount}", to: "${input.to}"}}
  - id: gate
    approval:
      when: "input.amount > 1000"
      summary: "Pay ${input.amount} to ${input.to}"
      recommend: approve
      context: {to: "${input.to}"}
      timeout: 2d
      remind_after: 1d
      default: reject
      edit: vars.payment
  - id: pay
    action: fake_keyed.pay
    params: {amount: "${vars.payment.amount}"}
)");
  std::string small = f.Start("pay", {{"amount", 10}, {"to", "x"}});
  std::string big = f.Start("pay", {{"amount", 5000}, {"to", "y"}});
  f.Drive(kSec, kSec);
  EXPECT_EQ(f.Status(small), "completed");  // below the policy: no gate
  EXPECT_EQ(f.Status(big), "waiting");
  auto pending = f.Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].summary, "Pay 5000 to y");
  EXPECT_NE(pending[0].context.find("\"to\":\"y\""), std::string::npos);
  f.Drive(kDay + kHour, kHour);
  json v = f.Show(big);
  bool reminded = false;
  for (const auto& t : v["timeline"])
    if (t["kind"] == "approval.reminder") reminded = true;
  EXPECT_TRUE(reminded);
  json edit = {{"amount", 4000}};
  ASSERT_TRUE(f.engine->Decide(pending[0].id, true, &edit, "").ok());
  EXPECT_FALSE(f.engine->Decide(pending[0].id, false, nullptr, "late").ok());  // decided
  EXPECT_FALSE(f.engine->Decide("apv_nope", true, nullptr, "").ok());
  f.Drive(kSec, kSec);
  EXPECT_EQ(f.Status(big), "completed");
  EXPECT_EQ(f.Show(big)["steps"][1]["output"]["edit"]["amount"], 4000);
  // The payment went out with the approved amount, not the requested one.
  auto ob = store::ListOutbox(*f.ws, big, "");
  ASSERT_TRUE(ob.ok() && ob->size() == 1u);
  EXPECT_EQ(json::parse((*ob)[0].params)["amount"], 4000);
  std::string rej = f.Start("pay", {{"amount", 9000}, {"to", "z"}});
  f.Drive(kSec, kSec);
  ASSERT_EQ(f.Pending().size(), 1u);
  ASSERT_TRUE(f.engine->Decide(f.Pending()[0].id, false, nullptr, "too much").ok());
  f.Drive(kSec, kSec);
  EXPECT_EQ(f.Status(rej), "failed");
  EXPECT_EQ(f.keyed.effects(), 2);
}

TEST(Pause, EachScopeHoldsWorkAndResumeContinues) {
  FlowFixture f;
  f.AddWorkflow("p", R"(
name: p
steps:
  - id: think
    agent: echo
  - id: send
    action: fake_smtp.send
)");
  for (const auto& [scope, name] : std::vector<std::pair<std::string, std::string>>{
           {"global", ""}, {"workflow", "p"}, {"agent", "echo"}, {"adapter", "fake_smtp"}}) {
    ASSERT_TRUE(f.engine->Pause(scope, name).ok()) << scope;
    std::string id = f.Start("p");
    f.Drive(kHour, kMin);
    EXPECT_NE(f.Status(id), "completed") << scope;
    // A restart while paused changes nothing.
    f.engine = f.NewEngine("restarted");
    f.Drive(kHour, kMin);
    EXPECT_NE(f.Status(id), "completed") << scope;
    ASSERT_TRUE(f.engine->Resume(scope, name).ok());
    f.Drive(kMin, kMin);
    EXPECT_EQ(f.Status(id), "completed") << scope;
  }
  EXPECT_EQ(f.smtp.effects(), 4);
  EXPECT_FALSE(f.engine->Pause("planet", "x").ok());
  EXPECT_FALSE(f.engine->Pause("agent", "").ok());
  // Names that do not exist are refused, not paused; so is resuming what is not paused.
  EXPECT_EQ(f.engine->Pause("adapter", "fake_smpt").code(), StatusCode::kNotFound);
  EXPECT_EQ(f.engine->Pause("agent", "ecko").code(), StatusCode::kNotFound);
  EXPECT_EQ(f.engine->Pause("workflow", "q").code(), StatusCode::kNotFound);
  EXPECT_EQ(f.engine->Resume("adapter", "fake_smtp").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.engine->Resume("global", "").code(), StatusCode::kFailedPrecondition);
  auto led = f.ws->QueryLedger(store::LedgerQuery{"", "flow.*", "", "", 0, 0, 0, 0, false});
  ASSERT_TRUE(led.ok());
  EXPECT_EQ(led->size(), 8u);  // every switch is a ledger entry
}

// Timers: no double fire, no early fire, no lost fire under clock jumps.
TEST(Timers, WallClockJumpsNeitherFireEarlyNorTwiceNorNever) {
  FlowFixture f;
  f.AddWorkflow(
      "t", "name: t\nsteps:\n  - id: w\n    wait: 2h\n  - id: send\n    action: fake_smtp.send\n");
  std::string fwd = f.Start("t");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.clock.JumpWall(kHour);  // NTP steps forward an hour: not due yet (monotonic says 0)
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(fwd), "waiting");
  f.clock.JumpWall(-2 * kHour);  // then back two hours
  f.clock.Advance(2 * kHour - kSec);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(fwd), "waiting");  // not early
  f.clock.Advance(kSec);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(fwd), "completed");  // not late, not never
  EXPECT_EQ(f.smtp.effects(), 1);
  // A laptop sleeping a day: both clocks move; fires once.
  std::string sleepy = f.Start("t");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.clock.Advance(kDay);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(sleepy), "completed");
  EXPECT_EQ(f.smtp.effects(), 2);
  // After a restart (new process: monotonic origin unknown) the wall deadline rules.
  std::string restarted = f.Start("t");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.engine = f.NewEngine("w9");
  f.clock.Advance(kHour);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(restarted), "waiting");
  f.clock.Advance(kHour);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(restarted), "completed");
  EXPECT_EQ(f.smtp.effects(), 3);
}

TEST(Timers, AWeekOfRetriesTimersAndSchedulesInSimulatedTime) {
  FlowFixture f;
  f.AddWorkflow("daily", R"(
name: daily
schedule: {cron: "0 9 * * *", tz: UTC}
steps:
  - id: report
    action: fake_keyed.report
  - id: cool
    wait: 3h
  - id: flaky
    agent: flaky
    input: {fail_times: 2}
    retry: {max_attempts: 5, backoff: 10m}
)");
  ASSERT_TRUE(f.engine->SyncSchedules().ok());
  f.Drive(7 * kDay, 10 * kMin);
  auto runs = store::ListRuns(*f.ws, "", 100);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 7u);  // one per day, never twice
  for (const auto& r : *runs) EXPECT_EQ(r.status, "completed") << r.id;
  EXPECT_EQ(f.keyed.effects(), 7);
  EXPECT_EQ(f.agents.calls("flaky"), 21);
}

TEST(Versions, AChangedWorkflowFileDoesNotChangeARunInFlight) {
  FlowFixture f;
  f.AddWorkflow(
      "v", "name: v\nsteps:\n  - id: w\n    wait: 1h\n  - id: a\n    action: fake_smtp.send\n");
  std::string id = f.Start("v");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.AddWorkflow(
      "v", "name: v\nsteps:\n  - id: w\n    wait: 1h\n  - id: b\n    action: fake_keyed.report\n");
  f.engine = f.NewEngine("new-build");
  f.clock.Advance(kHour);
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.smtp.effects(), 1);
  EXPECT_EQ(f.keyed.effects(), 0);
}

TEST(Subflows, ChildResultFlowsToParent) {
  FlowFixture f;
  f.AddWorkflow("child", "name: child\nsteps:\n  - id: c\n    set: {answer: \"${input.q}\"}\n");
  f.AddWorkflow("parent", R"(
name: parent
steps:
  - id: ask
    subflow: child
    input: {q: 42}
  - id: use
    set: {got: "${steps.ask.output.answer}"}
)");
  std::string id = f.Start("parent");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.Show(id)["output"]["got"], 42);
}

// Records, at each effect, whether every commit of the workspace so far was durable.
class DurabilityWitness final : public ActionAdapter {
 public:
  explicit DurabilityWitness(store::Workspace* ws) : ws_(ws) {}
  std::string name() const override { return "witness"; }
  bool honours_idempotency_key() const override { return true; }
  std::vector<std::string> actions() const override { return {"do"}; }
  Outcome Perform(const std::string&, const std::string&, const json&, const CallContext&,
                  json* result) override {
    ++calls;
    if (ws_->durable_commits() != ws_->pipelined_commits()) ++early;
    *result = json::object();
    return Outcome::Success();
  }
  int calls = 0, early = 0;

 private:
  store::Workspace* ws_;
};

// A worker round is a pipelined commit: Tick may return before it is durable, but no
// effect starts before the round that wrote its outbox row is durable, and RunUntilIdle
// returns with everything durable. Ten runs of noop, noop, effect, noop.
TEST(Pipelining, NoEffectBeforeItsRoundIsDurable) {
  FlowFixture f;
  DurabilityWitness witness(f.ws.get());
  Registry reg = f.registry();
  reg.adapters["witness"] = &witness;
  // Inline: the witness checks that every commit so far is durable when an effect starts,
  // which holds only when no later round commits meanwhile; on the thread pool later rounds
  // do. The order (commit, WaitDurable, then submit) is the same code for both executors.
  EngineOptions o;
  o.executor = std::make_shared<InlineExecutor>();
  f.engine = std::make_unique<Engine>(f.ws.get(), reg, o);
  f.AddWorkflow("w", R"(
name: w
steps:
  - id: a
    noop: true
  - id: b
    noop: true
  - id: act
    action: witness.do
  - id: c
    noop: true
)");
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(f.Start("w"));
  auto steps = f.engine->RunUntilIdle();
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  EXPECT_EQ(witness.calls, 10);
  EXPECT_EQ(witness.early, 0);
  EXPECT_GT(f.ws->pipelined_commits(), 0u);
  EXPECT_EQ(f.ws->durable_commits(), f.ws->pipelined_commits());
  for (const auto& id : ids) EXPECT_EQ(f.Status(id), "completed");
}

}  // namespace
}  // namespace keel::flow
