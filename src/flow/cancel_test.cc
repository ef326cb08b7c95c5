// Cancel (docs/workflows.md "Cancel"): the saga of a canceled run, its waits, approvals and
// outbox rows, and what the operator sees while and after it runs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flow/engine.h"
#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kDay;
using testing::kHour;
using testing::kSec;

// Three steps with compensations; the third fails once (transient) and has its retry
// scheduled an hour later, so a cancel finds two completed steps and one pending outbox row.
constexpr char kThree[] = R"(
name: three
steps:
  - id: reserve
    action: fake_keyed.reserve
    compensate: release
  - id: charge
    action: fake_keyed.charge
    compensate: refund
  - id: ship
    action: fake_keyed.ship
    params: {_fail: transient, _fail_times: 1}
    retry: {max_attempts: 5, backoff: 1h}
    compensate: unship
compensations:
  - id: release
    action: fake_keyed.release
  - id: refund
    action: fake_keyed.refund
  - id: unship
    action: fake_smtp.unship
)";

std::vector<std::string> LedgerKinds(FlowFixture& f, const std::string& run) {
  std::vector<std::string> out;
  json v = f.Show(run);  // the range below must not outlive it
  for (const auto& t : v["timeline"]) out.push_back(t["kind"]);
  return out;
}

int Count(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<int>(std::count(v.begin(), v.end(), x));
}

TEST(Cancel, RunsTheCompensationsOfCompletedStepsInReverseOrderOnce) {
  FlowFixture f;
  f.AddWorkflow("three", kThree);
  std::string id = f.Start("three");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_EQ(f.Status(id), "running");  // `ship` has a retry due in an hour
  ASSERT_EQ(f.keyed.effects(), 2);

  CancelResult res;
  ASSERT_TRUE(f.engine->Cancel(id, "operator", &res).ok());
  EXPECT_EQ(res.compensations, 2);
  EXPECT_EQ(res.actions_canceled, 1);  // the scheduled retry of `ship`
  json v = f.Show(id);
  EXPECT_EQ(v["status"], "running");  // compensating
  EXPECT_EQ(v["canceling"], true);
  // A second cancel while the saga runs is refused, not applied twice.
  Status again = f.engine->Cancel(id);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already being canceled"), std::string::npos);

  f.Drive(3 * kHour, kHour / 2);  // well past the retry `ship` had scheduled
  EXPECT_EQ(f.Status(id), "canceled");
  v = f.Show(id);
  EXPECT_FALSE(v.contains("canceling"));
  std::vector<std::string> keys;
  for (const auto& s : v["steps"]) keys.push_back(s["key"]);
  ASSERT_EQ(keys, (std::vector<std::string>{"reserve", "charge", "comp:charge", "comp:reserve"}));
  // Each compensation once, the canceled retry never, the uncompleted step's compensation never.
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:charge")), 1);
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:reserve")), 1);
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "ship")), 0);
  EXPECT_EQ(f.keyed.effects(), 4);
  EXPECT_EQ(f.smtp.calls(), 0);
  for (const auto& o : v["outbox"]) {
    if (o["step"] == "ship") {
      EXPECT_EQ(o["state"], "failed");
    }
  }
  auto kinds = LedgerKinds(f, id);
  EXPECT_EQ(Count(kinds, "run.cancel_requested"), 1);
  EXPECT_EQ(Count(kinds, "action.canceled"), 1);
  EXPECT_EQ(Count(kinds, "run.compensating"), 1);
  EXPECT_EQ(Count(kinds, "run.canceled"), 1);
  EXPECT_EQ(Count(kinds, "run.failed"), 0);
  EXPECT_EQ(v["error"], "canceled by operator");
  // More time changes nothing: the canceled retry is never performed.
  f.Drive(2 * kDay, kHour);
  EXPECT_EQ(f.keyed.effects(), 4);
  EXPECT_EQ(f.engine->Cancel(id).code(), StatusCode::kFailedPrecondition);
}

TEST(Cancel, WhileWaitingOnAnApprovalCancelsTheApproval) {
  FlowFixture f;
  f.AddWorkflow("gate", R"(
name: gate
steps:
  - id: reserve
    action: fake_keyed.reserve
    compensate: release
  - id: ok
    approval: {summary: "ship it?", timeout: 2d, default: approve}
  - id: send
    action: fake_smtp.send
compensations:
  - id: release
    action: fake_keyed.release
)");
  std::string id = f.Start("gate");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_EQ(f.Status(id), "waiting");
  auto pending = f.Pending();
  ASSERT_EQ(pending.size(), 1u);
  CancelResult res;
  ASSERT_TRUE(f.engine->Cancel(id, "operator", &res).ok());
  EXPECT_EQ(res.approvals_canceled, 1);
  EXPECT_TRUE(f.Pending().empty());  // `keel approvals` no longer lists it
  auto a = store::GetApproval(*f.ws, pending[0].id);
  ASSERT_TRUE(a.ok() && *a);
  EXPECT_EQ((*a)->status, "canceled");
  // Deciding it now is refused; its timeout (with a default decision) never fires.
  Status d = f.engine->Decide(pending[0].id, true, nullptr, "");
  EXPECT_EQ(d.code(), StatusCode::kFailedPrecondition);
  f.Drive(3 * kDay, kHour);
  EXPECT_EQ(f.Status(id), "canceled");
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:reserve")), 1);
  EXPECT_EQ(f.smtp.calls(), 0);
}

TEST(Cancel, WhileWaitingForAnEventOrATimerEndsTheWait) {
  FlowFixture f;
  f.AddWorkflow("reply", R"(
name: reply
steps:
  - id: wait
    wait_event: {type: reply, key: "${input.lead}"}
  - id: send
    action: fake_smtp.send
)");
  f.AddWorkflow(
      "nap", "name: nap\nsteps:\n  - id: a\n    wait: 1h\n  - id: b\n    action: fake_smtp.send\n");
  std::string r = f.Start("reply", {{"lead", "L1"}});
  std::string n = f.Start("nap");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  CancelResult res;
  ASSERT_TRUE(f.engine->Cancel(r, "operator", &res).ok());
  EXPECT_EQ(res.compensations, 0);
  ASSERT_TRUE(f.engine->Cancel(n).ok());
  EXPECT_EQ(f.Status(r), "canceled");  // nothing to compensate: canceled at once
  EXPECT_EQ(f.Status(n), "canceled");
  auto ev = f.engine->SendEvent("reply", "L1", "m1", json::object());
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->delivered, 0);
  f.Drive(2 * kHour, kHour / 4);
  EXPECT_EQ(f.smtp.calls(), 0);
  json v = f.Show(r);
  EXPECT_FALSE(v.contains("event"));
  EXPECT_FALSE(v.contains("waiting_for"));
}

TEST(Cancel, OfAFinishedOrUnknownRunIsRefused) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: a\n    action: fake_keyed.pay\n");
  std::string id = f.Start("one");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_EQ(f.Status(id), "completed");
  Status s = f.engine->Cancel(id);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("already completed"), std::string::npos) << s.message();
  EXPECT_EQ(f.Status(id), "completed");
  EXPECT_EQ(f.engine->Cancel("run_nope").code(), StatusCode::kNotFound);
  // Nothing was written for the refused cancel.
  json shown = f.Show(id);
  for (const auto& t : shown["timeline"]) EXPECT_NE(t["kind"], "run.cancel_requested");
}

TEST(Cancel, AFailingCompensationFailsTheRunAndRetryResumesTheSaga) {
  FlowFixture f;
  f.AddWorkflow("s", R"(
name: s
steps:
  - id: reserve
    action: fake_keyed.reserve
    compensate: release
  - id: charge
    action: fake_keyed.charge
    compensate: refund
  - id: hold
    wait: 1d
compensations:
  - id: release
    action: fake_keyed.release
  - id: refund
    action: fake_keyed.refund
    params: {_fail: permanent, _fail_times: 1}
)");
  std::string id = f.Start("s");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_TRUE(f.engine->Cancel(id).ok());
  f.Drive(kHour, kHour / 4);
  // The operator must see it: the run is failed, not canceled, and says why.
  EXPECT_EQ(f.Status(id), "failed");
  json v = f.Show(id);
  std::string err = v["error"];
  EXPECT_NE(err.find("canceled by operator"), std::string::npos) << err;
  EXPECT_NE(err.find("compensation comp:charge failed"), std::string::npos) << err;
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:reserve")), 0);  // the saga stopped
  // Retry resumes the saga at the failed compensation; the forward steps never run again.
  ASSERT_TRUE(f.engine->Retry(id).ok());
  f.Drive(2 * kDay, kHour);
  EXPECT_EQ(f.Status(id), "canceled");
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:charge")), 1);
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "comp:reserve")), 1);
  EXPECT_EQ(f.keyed.effects_for(ActionToken(id, "charge")), 1);
  // `hold` never resumed: its wait never completed.
  json shown = f.Show(id);
  for (const auto& t : shown["timeline"]) {
    EXPECT_FALSE(t["kind"] == "step.completed" && t.value("step", "") == "hold") << t.dump();
  }
}

// An adapter whose peer call is interrupted by the operator's cancel (from another
// process, in real life): the result comes back after the run was canceled.
class CancelDuringIo final : public ActionAdapter {
 public:
  CancelDuringIo(CountingAdapter* inner, Engine** engine) : inner_(inner), engine_(engine) {}
  std::string name() const override { return inner_->name(); }
  bool honours_idempotency_key() const override { return inner_->honours_idempotency_key(); }
  std::vector<std::string> actions() const override { return inner_->actions(); }
  Outcome Perform(const std::string& token, const std::string& action, const json& params,
                  const CallContext& ctx, json* result) override {
    if (action == "charge") {
      EXPECT_TRUE((*engine_)->Cancel(ctx.run_id).ok());
    }
    return inner_->Perform(token, action, params, ctx, result);
  }

 private:
  CountingAdapter* inner_;
  Engine** engine_;
};

TEST(Cancel, AnAttemptInFlightIsPutToTheOperatorAndItsResultDropped) {
  FlowFixture f;
  f.AddWorkflow("s", R"(
name: s
steps:
  - id: reserve
    action: fake_keyed.reserve
    compensate: release
  - id: charge
    action: fake_smtp.charge
    compensate: refund
compensations:
  - id: release
    action: fake_keyed.release
  - id: refund
    action: fake_keyed.refund
)");
  Engine* eng = nullptr;
  CancelDuringIo smtp(&f.smtp, &eng);
  Registry reg = f.registry();
  reg.adapters["fake_smtp"] = &smtp;
  EngineOptions o;
  o.worker_id = "w2";
  o.executor = std::make_shared<InlineExecutor>();
  Engine engine(f.ws.get(), reg, o);
  eng = &engine;
  auto id = engine.Start("s", json::object());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine.RunUntilIdle().ok());
  EXPECT_EQ(f.Status(*id), "canceled");
  EXPECT_EQ(f.smtp.effects(), 1);  // it happened, but the run had been canceled
  // Only `reserve` had completed: only its compensation ran. The charge is put to the
  // operator, since nobody recorded its outcome.
  EXPECT_EQ(f.keyed.effects_for(ActionToken(*id, "comp:reserve")), 1);
  EXPECT_EQ(f.keyed.effects_for(ActionToken(*id, "comp:charge")), 0);
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].kind, "uncertain");
  EXPECT_EQ(items[0].step_key, "charge");
  json v = f.Show(*id);
  for (const auto& s : v["steps"]) EXPECT_NE(s["key"], "charge");  // never journaled
  // The operator confirms it happened; the run stays canceled.
  ASSERT_TRUE(engine.Decide(items[0].id, true, nullptr, "").ok());
  ASSERT_TRUE(engine.RunUntilIdle().ok());
  EXPECT_EQ(f.Status(*id), "canceled");
}

TEST(Cancel, ReachesTheChildRunsOfSubflows) {
  FlowFixture f;
  f.AddWorkflow("child", R"(
name: child
steps:
  - id: book
    action: fake_keyed.book
    compensate: unbook
  - id: nap
    wait: 1d
compensations:
  - id: unbook
    action: fake_keyed.unbook
)");
  f.AddWorkflow("parent", "name: parent\nsteps:\n  - id: sub\n    subflow: child\n");
  std::string id = f.Start("parent");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto runs = store::ListRuns(*f.ws, "", 10);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  std::string child = (*runs)[0].id == id ? (*runs)[1].id : (*runs)[0].id;
  CancelResult res;
  ASSERT_TRUE(f.engine->Cancel(id, "operator", &res).ok());
  ASSERT_EQ(res.children, std::vector<std::string>{child});
  f.Drive(kHour, kHour / 4);
  EXPECT_EQ(f.Status(id), "canceled");
  EXPECT_EQ(f.Status(child), "canceled");
  EXPECT_EQ(f.keyed.effects_for(ActionToken(child, "comp:book")), 1);
}

}  // namespace
}  // namespace keel::flow
