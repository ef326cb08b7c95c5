// Tamper detection (issue "Durability rules", goal G11): single-byte flips of keel.db and of
// artifact files at seeded random positions, and structural edits that bypass the triggers.
// Every edit that changes what the workspace stores must be reported by verify; flips that
// land in free space or unused bytes change nothing and may pass. The long variant with
// 1,000+ mutations is tamper_slowtest.cc.
#include <gtest/gtest.h>

#include "core/testing_util.h"
#include "store/sqlite/testing_tamper.h"

namespace keel::testing {
namespace {

std::string Misses(const TamperCounts& t) {
  std::string s;
  for (size_t i = 0; i < t.misses.size() && i < 20; ++i) s += "  " + t.misses[i] + "\n";
  return s;
}

TEST(Tamper, EveryContentChangingByteFlipIsDetected) {
  TempDir tmp;
  SimulatedClock clock;
  Env env;
  env.clock = &clock;
  // Enough entries that the ledger outweighs the (empty) tables of the other layers.
  BuildTamperWorkspace(tmp.Sub("pristine"), env, 600);
  TamperCounts t = RunByteFlips(tmp.Sub("pristine"), tmp.Sub("trial"), 300, 20260101);
  std::printf(
      "byte flips: %d trials, %d changed content (%d detected), %d unchanged (%d "
      "detected anyway)\n",
      t.trials, t.changed, t.detected_changed, t.unchanged, t.detected_unchanged);
  EXPECT_EQ(t.detected_changed, t.changed) << Misses(t);
  EXPECT_GT(t.changed, t.trials / 4);  // the campaign must actually hit stored content
}

TEST(Tamper, EveryStructuralMutationIsDetected) {
  TempDir tmp;
  SimulatedClock clock;
  Env env;
  env.clock = &clock;
  BuildTamperWorkspace(tmp.Sub("pristine"), env, 120);
  TamperCounts t = RunStructuralMutations(tmp.Sub("pristine"), tmp.Sub("trial"), 50, 7);
  std::printf("structural mutations: %d trials, %d detected\n", t.trials, t.detected_changed);
  EXPECT_EQ(t.detected_changed, t.trials) << Misses(t);
}

}  // namespace
}  // namespace keel::testing
