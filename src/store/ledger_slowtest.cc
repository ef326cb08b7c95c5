// The long variant of ledger_crashtest.cc (label "slow", `scripts/test --all`): thousands
// of SIGKILLs of a real `keel debug append`, each followed by the full check.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/testing_util.h"
#include "store/testing_ledger_check.h"

namespace keel::store {
namespace {

using namespace keel::store::testing;

uint64_t Seed(uint64_t fallback) {
  const char* s = std::getenv("KEEL_CRASH_SEED");
  return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 10) : fallback;
}

TEST(LedgerCrashSlow, TwoThousandKills) {
  keel::testing::TempDir tmp;
  KillLoopOptions o;
  o.kills = 2000;
  o.seed = Seed(4242);
  o.min_delay_ms = 5;
  o.max_delay_ms = 80;
  EXPECT_GT(RunKillLoop(tmp.Sub("ws"), o), 2000);
}

TEST(LedgerCrashSlow, FiveHundredKillsWithArtifactsAndBatches) {
  keel::testing::TempDir tmp;
  KillLoopOptions o;
  o.kills = 500;
  o.seed = Seed(99);
  o.artifacts = true;
  o.batch = 4;
  o.min_delay_ms = 5;
  o.max_delay_ms = 80;
  EXPECT_GT(RunKillLoop(tmp.Sub("ws"), o), 500);
}

}  // namespace
}  // namespace keel::store
