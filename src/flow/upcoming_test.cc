// Engine::Upcoming: what remains scheduled when a worker stops because nothing is due now.
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
using testing::kMin;
using testing::kSec;

const UpcomingGroup* Group(const UpcomingWork& u, const std::string& kind) {
  for (const auto& g : u.groups)
    if (g.kind == kind) return &g;
  return nullptr;
}

TEST(Upcoming, NothingScheduledIsEmpty) {
  FlowFixture f;
  auto u = f.engine->Upcoming();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->empty());
  EXPECT_EQ(u->first(), nullptr);
}

TEST(Upcoming, EachKindOfWaitIsCountedWithItsEarliestRun) {
  FlowFixture f;
  f.AddWorkflow("flaky", R"(name: flaky
steps:
  - id: call
    agent: flaky
    input: {fail_times: 3}
    retry: {max_attempts: 5, backoff: 10m, max_backoff: 1h, jitter: 0}
)");
  f.AddWorkflow("nap", "name: nap\nsteps:\n  - id: nap\n    wait: 2h\n");
  f.AddWorkflow("reply", R"(name: reply
steps:
  - id: r
    wait_event: {type: reply, key: k, timeout: 3h}
)");
  f.AddWorkflow("gate", R"(name: gate
steps:
  - id: review
    approval: {summary: "ok?", timeout: 2d, remind_after: 4h}
)");
  // Waits for a person or an event with no deadline: not scheduled.
  f.AddWorkflow("open", R"(name: open
steps:
  - id: review
    approval: {summary: "ok?"}
  - id: r
    wait_event: {type: reply, key: k}
)");
  f.AddWorkflow("daily", R"(name: daily
schedule: {cron: "0 9 * * *", tz: UTC}
steps:
  - id: a
    noop: true
)");
  ASSERT_TRUE(f.engine->SyncSchedules().ok());
  int64_t t0 = f.clock.NowMicros();
  std::string retry = f.Start("flaky");
  std::string nap1 = f.Start("nap");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  f.clock.Advance(kSec);
  f.Start("nap");
  std::string reply = f.Start("reply");
  std::string gate = f.Start("gate");
  f.Start("open");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_EQ(f.Status(retry), "running");  // its next attempt is 10 minutes away

  auto u = f.engine->Upcoming();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->due_now, 0);
  ASSERT_EQ(u->groups.size(), 5u);
  const UpcomingGroup* g = Group(*u, "retry");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->count, 1);
  EXPECT_EQ(g->earliest, retry);
  EXPECT_EQ(g->earliest_us, t0 + 10 * kMin);
  g = Group(*u, "timer");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->count, 2);
  EXPECT_EQ(g->earliest, nap1);  // the first of the two naps
  EXPECT_EQ(g->earliest_us, t0 + 2 * kHour);
  g = Group(*u, "event_timeout");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->earliest, reply);
  g = Group(*u, "approval");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->earliest, gate);
  EXPECT_EQ(g->earliest_us, t0 + kSec + 4 * kHour);  // the reminder comes first
  g = Group(*u, "schedule");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->count, 1);
  EXPECT_EQ(g->earliest, "daily");
  // Earliest first: the retry, then the first nap.
  EXPECT_EQ(u->first()->kind, "retry");
  EXPECT_EQ(u->groups[1].kind, "timer");
  for (size_t i = 1; i < u->groups.size(); ++i)
    EXPECT_LE(u->groups[i - 1].earliest_us, u->groups[i].earliest_us);

  // As time passes, what fired leaves the list.
  f.Drive(3 * kHour, kMin);
  auto later = f.engine->Upcoming();
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(Group(*later, "retry"), nullptr);
  EXPECT_EQ(Group(*later, "timer"), nullptr);
  EXPECT_NE(Group(*later, "approval"), nullptr);
}

TEST(Upcoming, ALeaseHeldPastNowAndRunsHeldByAGlobalPauseAreReported) {
  FlowFixture f;
  f.AddWorkflow("one", "name: one\nsteps:\n  - id: a\n    action: fake_keyed.pay\n");
  std::string id = f.Start("one");
  // A worker claimed the step and died: nobody takes it before its lease ends.
  int64_t until = f.clock.NowMicros() + 5 * kMin;
  ASSERT_TRUE(f.ws->Write([&](store::Txn& txn) -> Status {
                    auto taken =
                        store::ClaimLease(txn, id, "dead-worker", f.clock.NowMicros(), until);
                    if (!taken.ok()) return taken.status();
                    return *taken ? OkStatus() : Internal("lease not taken");
                  })
                  .ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto u = f.engine->Upcoming();
  ASSERT_TRUE(u.ok());
  const UpcomingGroup* g = Group(*u, "lease");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->count, 1);
  EXPECT_EQ(g->earliest, id);
  EXPECT_EQ(g->earliest_us, until);
  EXPECT_EQ(u->due_now, 0);

  // Everything paused: the run is due now and nobody takes it.
  f.clock.Advance(10 * kMin);
  ASSERT_TRUE(f.engine->Pause("global", "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto paused = f.engine->Upcoming();
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(paused->due_now, 1);
  EXPECT_EQ(Group(*paused, "lease"), nullptr);
  EXPECT_FALSE(paused->empty());
  ASSERT_TRUE(f.engine->Resume("global", "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  auto done = f.engine->Upcoming();
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
}

}  // namespace
}  // namespace keel::flow
