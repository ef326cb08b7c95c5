// The long tamper campaign (goal G11): 1,000 byte flips plus 250 structural mutations, all
// of which must be detected when they change stored content. See tamper_test.cc.
#include <gtest/gtest.h>

#include "core/testing_util.h"
#include "store/sqlite/testing_tamper.h"
#include "store/state.h"
#include "store/testing_state_tamper.h"

namespace keel::testing {
namespace {

TEST(TamperSlow, ThousandsOfMutations) {
  TempDir tmp;
  SimulatedClock clock;
  Env env;
  env.clock = &clock;
  BuildTamperWorkspace(tmp.Sub("pristine"), env, 400);
  TamperCounts flips = RunByteFlips(tmp.Sub("pristine"), tmp.Sub("trial"), 1000, 424242);
  TamperCounts structural = RunStructuralMutations(tmp.Sub("pristine"), tmp.Sub("trial"), 250, 99);
  std::printf(
      "byte flips: %d trials, %d changed content (%d detected), %d unchanged (%d "
      "detected anyway); structural: %d trials, %d detected\n",
      flips.trials, flips.changed, flips.detected_changed, flips.unchanged,
      flips.detected_unchanged, structural.trials, structural.detected_changed);
  EXPECT_EQ(flips.detected_changed, flips.changed);
  EXPECT_EQ(structural.detected_changed, structural.trials);
  for (const auto& m : flips.misses) ADD_FAILURE() << "undetected: " << m;
  for (const auto& m : structural.misses) ADD_FAILURE() << "undetected: " << m;
}

// The long variant of StateTamper.SeededRandomEditsAreAllReported: thousands of seeded
// random edits of the state tables, each reported with its table.
TEST(TamperSlow, ThousandsOfStateTableEdits) {
  TempDir tmp;
  auto r = store::testing::RunStateTamperTrials(tmp.Sub("ws"), 77, 3000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("state tamper: %d edits applied, %d refused by constraints, %zu tables\n", r->applied,
              r->refused, r->tables.size());
  EXPECT_GE(r->applied, 2000);
  EXPECT_EQ(r->tables.size(), store::StateTables().size());
  for (const auto& m : r->missed) ADD_FAILURE() << "undetected: " << m;
}

}  // namespace
}  // namespace keel::testing
