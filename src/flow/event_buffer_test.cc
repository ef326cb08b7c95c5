// Buffered events (docs/workflows.md "Events"): an event that arrives before a run reaches
// its wait_event step is kept and taken then, exactly once per run, never by a run started
// after it, and purged after the retention. All on the simulated clock.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flow/config.h"
#include "flow/engine.h"
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

// The run works for an hour (a timer standing in for slow steps), then waits for the reply.
constexpr char kLate[] = R"(
name: late
steps:
  - id: work
    wait: 1h
  - id: reply
    wait_event: {type: reply, key: "${input.lead}", timeout: 30d}
  - id: thank
    action: fake_smtp.thank
)";

// Waits twice for the same (type, key).
constexpr char kTwice[] = R"(
name: twice
steps:
  - id: first
    wait_event: {type: reply, key: "${input.lead}"}
  - id: second
    wait_event: {type: reply, key: "${input.lead}"}
)";

int Kind(FlowFixture& f, const std::string& run, const std::string& kind) {
  int n = 0;
  json v = f.Show(run);  // the range below must not outlive it
  for (const auto& t : v["timeline"]) n += t["kind"] == kind;
  return n;
}

TEST(EventBuffer, AnEventBeforeTheWaitIsDeliveredWhenTheRunGetsThere) {
  FlowFixture f;
  f.AddWorkflow("late", kLate);
  std::string id = f.Start("late", {{"lead", "L1"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.clock.Advance(kHour - kSec);  // the reply comes one second before the run waits for it
  auto r = f.engine->SendEvent("reply", "L1", "m1", {{"text", "yes"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->delivered, 0);
  EXPECT_EQ(f.Status(id), "waiting");  // still on its timer
  f.Drive(2 * kSec, kSec);
  EXPECT_EQ(f.Status(id), "completed");
  json v = f.Show(id);
  EXPECT_EQ(v["steps"][1]["output"]["event"]["text"], "yes");
  EXPECT_EQ(v["steps"][1]["output"]["id"], "m1");
  EXPECT_EQ(Kind(f, id, "event.delivered"), 1);
  EXPECT_EQ(Kind(f, id, "event.waiting"), 0);  // it never had to wait
  EXPECT_EQ(f.smtp.effects(), 1);
}

TEST(EventBuffer, ADuplicateIdIsDeliveredOnce) {
  FlowFixture f;
  f.AddWorkflow("twice", kTwice);
  f.AddWorkflow("late", kLate);
  std::string tw = f.Start("twice", {{"lead", "L1"}});
  std::string lt = f.Start("late", {{"lead", "L1"}});
  // Three deliveries of the same webhook before anyone waits.
  for (int i = 0; i < 3; ++i) {
    auto r = f.engine->SendEvent("reply", "L1", "m1", {{"n", i}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->duplicate, i > 0);
    EXPECT_EQ(r->delivered, 0);
  }
  f.Drive(2 * kHour, kMin);
  // `twice` took m1 at its first wait and still waits at its second: the copies are not
  // new events.
  EXPECT_EQ(f.Status(tw), "waiting");
  json v = f.Show(tw);
  ASSERT_EQ(v["steps"].size(), 1u);
  EXPECT_EQ(v["steps"][0]["output"]["event"]["n"], 0);
  EXPECT_EQ(f.Status(lt), "completed");
  EXPECT_EQ(f.smtp.effects(), 1);
  // A new event reaches the second wait (the only run still waiting).
  auto r = f.engine->SendEvent("reply", "L1", "m2", {{"n", 9}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->delivered, 1);
  EXPECT_EQ(f.Status(tw), "running");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(tw), "completed");
  EXPECT_EQ(f.Show(tw)["steps"][1]["output"]["id"], "m2");
}

TEST(EventBuffer, ARunTakesBufferedEventsInArrivalOrderOncePerRun) {
  FlowFixture f;
  f.AddWorkflow("twice", kTwice);
  std::string id = f.Start("twice", {{"lead", "L1"}});  // not advanced yet
  ASSERT_TRUE(f.engine->SendEvent("reply", "L1", "b-second", {{"n", 1}}).ok());
  f.clock.Advance(kSec);
  ASSERT_TRUE(f.engine->SendEvent("reply", "L1", "a-third", {{"n", 2}}).ok());
  ASSERT_TRUE(f.engine->SendEvent("reply", "L2", "other-key", {{"n", 3}}).ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  json v = f.Show(id);
  EXPECT_EQ(v["steps"][0]["output"]["id"], "b-second");  // by arrival, not by id
  EXPECT_EQ(v["steps"][1]["output"]["id"], "a-third");
}

TEST(EventBuffer, AnEventOlderThanTheRunIsNotDelivered) {
  FlowFixture f;
  f.AddWorkflow("twice", kTwice);
  ASSERT_TRUE(f.engine->SendEvent("reply", "L1", "last-month", {{"old", true}}).ok());
  f.clock.Advance(kSec);
  std::string id = f.Start("twice", {{"lead", "L1"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "waiting");
  EXPECT_EQ(f.Show(id)["steps"].size(), 0u);
  // An event at the very instant the run started counts as after it.
  f.clock.Advance(kSec);
  std::string same = f.Start("twice", {{"lead", "L9"}});
  ASSERT_TRUE(f.engine->SendEvent("reply", "L9", "same-instant", json::object()).ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Show(same)["steps"][0]["output"]["id"], "same-instant");
}

TEST(EventBuffer, EventsExpireAfterTheRetentionAndArePurgedOnTheLedger) {
  FlowFixture f;
  f.AddWorkflow("slow", R"(
name: slow
steps:
  - id: work
    wait: 8d
  - id: reply
    wait_event: {type: reply, key: "${input.lead}"}
)");
  std::string id = f.Start("slow", {{"lead", "L1"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_TRUE(f.engine->SendEvent("reply", "L1", "m1", json::object()).ok());
  f.clock.Advance(kDay);
  ASSERT_TRUE(f.engine->SendEvent("reply", "L2", "m2", json::object()).ok());
  // Within the retention nothing goes.
  auto p = f.engine->PurgeExpiredEvents();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 0);
  f.Drive(8 * kDay, kHour);            // m1 is 9 days old when the run reaches its wait
  EXPECT_EQ(f.Status(id), "waiting");  // an expired event is not delivered, purged or not
  p = f.engine->PurgeExpiredEvents();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 2);  // m1 and m2 (8 days old)
  store::LedgerQuery q;
  q.kind = "event.purged";
  auto entries = f.ws->QueryLedger(q);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_NE((*entries)[0].payload.find("\"events\":2"), std::string::npos);
  p = f.engine->PurgeExpiredEvents();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 0);
  // The id is forgotten with the event: the same id now is a new event (dedupe window).
  auto r = f.engine->SendEvent("reply", "L1", "m1", json::object());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->duplicate);
  EXPECT_EQ(r->delivered, 1);
}

TEST(EventBuffer, TwoRunsEachGetTheEvent) {
  FlowFixture f;
  f.AddWorkflow("late", kLate);
  f.AddWorkflow("twice", kTwice);
  std::string a = f.Start("late", {{"lead", "L1"}});
  f.clock.Advance(kMin);
  std::string b = f.Start("late", {{"lead", "L1"}});
  std::string waiting = f.Start("twice", {{"lead", "L1"}});
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto r = f.engine->SendEvent("reply", "L1", "m1", {{"text", "yes"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->delivered, 1);  // `twice` was waiting already
  f.Drive(2 * kHour, kMin);
  EXPECT_EQ(f.Status(a), "completed");
  EXPECT_EQ(f.Status(b), "completed");
  EXPECT_EQ(f.Show(a)["steps"][1]["output"]["id"], "m1");
  EXPECT_EQ(f.Show(b)["steps"][1]["output"]["id"], "m1");
  EXPECT_EQ(f.smtp.effects(), 2);
  // ... but each run only once: `twice` waits at its second step.
  EXPECT_EQ(f.Status(waiting), "waiting");
  EXPECT_EQ(f.Show(waiting)["steps"].size(), 1u);
}

TEST(EventBuffer, RetentionComesFromKeelYaml) {
  auto d = ParseFlowConfig("workspace: {id: x}\n", "keel.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->event_retention_us, 7 * kDay);
  auto c = ParseFlowConfig("events:\n  retention: 36h\n", "keel.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->event_retention_us, 36 * kHour);
  for (const char* bad : {"events:\n  retention: soon\n", "events:\n  retention: 10s\n",
                          "events:\n  keep: 3d\n", "events: 7d\n", "events:\n  retention: [1]\n"}) {
    auto b = ParseFlowConfig(bad, "keel.yaml");
    EXPECT_FALSE(b.ok()) << bad;
    if (!b.ok()) {
      EXPECT_NE(b.status().message().find("keel.yaml line"), std::string::npos);
    }
  }
  // A shorter retention applies to delivery, not only to the purge.
  FlowFixture f;
  f.AddWorkflow("late", kLate);
  EngineOptions o;
  o.worker_id = "w9";
  o.executor = std::make_shared<InlineExecutor>();
  o.event_retention_us = 30 * kMin;
  Engine e(f.ws.get(), f.registry(), o);
  auto id = e.Start("late", {{"lead", "L1"}});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(e.RunUntilIdle().ok());
  ASSERT_TRUE(e.SendEvent("reply", "L1", "m1", json::object()).ok());
  f.clock.Advance(kHour);
  ASSERT_TRUE(e.RunUntilIdle().ok());
  EXPECT_EQ(f.Status(*id), "waiting");
}

}  // namespace
}  // namespace keel::flow
