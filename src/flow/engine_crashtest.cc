// Crash tests of the workflow engine with real processes (label `crash`): a real `keel
// worker` is SIGKILLed at each named crash point (a few hits each) and at random moments,
// restarted, and checked (flow/testing_crash_scenarios.h, docs/testing.md).
#include <gtest/gtest.h>

#include "flow/testing_crash_scenarios.h"

namespace keel::flow::testing {
namespace {

class WorkerPoint : public ::testing::TestWithParam<std::string> {};

TEST_P(WorkerPoint, KilledAtFirstHitsThenRestarted) {
  for (int hit = 1; hit <= 3; ++hit) {
    RunWorkerPointScenario(GetParam(), hit, /*seed=*/hit);
    if (::testing::Test::HasFailure()) return;  // one report per point is enough
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, WorkerPoint, ::testing::ValuesIn(WorkerCrashPoints()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n;
                           for (char c : i.param) n += (c == '.' || c == ':') ? '_' : c;
                           return n;
                         });

TEST(EngineCrash, StormOfKillsInTheAmbiguousWindow) {
  RunWorkerPointStorm("send.after_io_before_record", 11);
}

TEST(EngineCrash, ApproveKilledAfterTheDecisionCommitted) { RunApprovalScenario(2, 1); }

TEST(EngineCrash, EventSendKilledWhileDeduplicating) { RunWebhookScenario(2, 1); }

TEST(EngineCrash, RandomKillsOfABusyWorker) { RunRandomKillScenario(12, 6, 42); }

}  // namespace
}  // namespace keel::flow::testing
