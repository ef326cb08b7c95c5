// Crash tests of the workflow engine with real processes (label `crash`): a real `keel
// worker` is SIGKILLed at each named crash point (a few hits each) and at random moments,
// restarted, and checked (flow/testing_crash_scenarios.h, docs/testing.md).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flow/testing_crash_scenarios.h"

namespace keel::flow::testing {
namespace {

class WorkerPoint : public ::testing::TestWithParam<std::string> {};

// Hits spread over a scenario's I/O (12 actions: keyed ones first, SMTP-like ones later),
// so that both kinds of channel are killed in the send.* windows.
std::vector<int> Hits(const std::string& point) {
  if (point.rfind("send.", 0) == 0 || point.rfind("outbox.", 0) == 0) return {1, 4, 8};
  return {1, 2, 3};
}

TEST_P(WorkerPoint, KilledAtFirstHitsThenRestarted) {
  for (int hit : Hits(GetParam())) {
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

TEST(EngineCrash, ApproveKilledAfterTheDecisionCommitted) {
  RunApprovalScenario(2, 1);
}

TEST(EngineCrash, EventSendKilledWhileDeduplicating) {
  RunWebhookScenario(2, 1);
}

// A crash in the middle of the compensations of a canceled run: between two of them, in
// the ambiguous window of one, and after its outcome was written but not committed.
TEST(EngineCrash, CancelSagaResumesWithoutRunningACompensationTwice) {
  for (const char* point :
       {"compensation.mid", "send.after_io_before_record", "send.after_record_before_commit"}) {
    for (int hit : {1, 2, 3}) {
      RunCancelSagaScenario(point, hit, /*seed=*/hit);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(EngineCrash, RandomKillsOfABusyWorker) {
  RunRandomKillScenario(12, 6, 42);
}

TEST(EngineCrash, KilledWithSeveralEffectsInFlight) {
  RunInFlightKillScenario(8, 5);
}

}  // namespace
}  // namespace keel::flow::testing
