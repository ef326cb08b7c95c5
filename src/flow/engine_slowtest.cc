// The long variant of engine_crashtest.cc (label `slow`): many kills at every named crash
// point, storms of repeated kills, and many random-time kills of a busy worker.
// KEEL_CRASH_ITERATIONS scales the number of iterations (default 10).
#include <gtest/gtest.h>

#include <cstdlib>

#include "flow/testing_crash_scenarios.h"

namespace keel::flow::testing {
namespace {

int Iterations() {
  const char* v = std::getenv("KEEL_CRASH_ITERATIONS");
  int n = v ? std::atoi(v) : 10;
  return n < 1 ? 1 : n;
}

class WorkerPointSlow : public ::testing::TestWithParam<std::string> {};

TEST_P(WorkerPointSlow, ManyHits) {
  for (int hit = 1; hit <= Iterations(); ++hit) {
    RunWorkerPointScenario(GetParam(), hit, 1000 + hit);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST_P(WorkerPointSlow, Storms) {
  for (int i = 0; i < Iterations() / 3 + 1; ++i) {
    RunWorkerPointStorm(GetParam(), 2000 + i);
    if (::testing::Test::HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, WorkerPointSlow, ::testing::ValuesIn(WorkerCrashPoints()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n;
                           for (char c : i.param) n += (c == '.' || c == ':') ? '_' : c;
                           return n;
                         });

TEST(EngineCrashSlow, ApproveKilled) {
  for (int i = 0; i < Iterations() / 2 + 1; ++i) RunApprovalScenario(4, 3000 + i);
}

TEST(EngineCrashSlow, EventSendKilled) {
  for (int i = 0; i < Iterations() / 2 + 1; ++i) RunWebhookScenario(4, 4000 + i);
}

TEST(EngineCrashSlow, RandomKillsOfABusyWorker) {
  for (int i = 0; i < Iterations(); ++i) {
    RunRandomKillScenario(40, 25, 5000 + i);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace keel::flow::testing
