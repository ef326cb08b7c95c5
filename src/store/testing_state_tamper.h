// Test support: seeded random edits of the state tables behind keel's back (update a
// covered column, insert a row, delete a row), each followed by keel verify, which must
// name the edited table. Used by the default suite (hundreds of trials, state_test.cc) and
// the long variant (tamper_slowtest.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace keel::store::testing {

struct StateTamperResult {
  int applied = 0;                  // edits SQLite accepted (others broke a constraint)
  int refused = 0;                  // edits a CHECK or UNIQUE constraint refused
  std::vector<std::string> missed;  // edits verify did not report, described
  std::vector<std::string> tables;  // tables edited at least once
};

// Copies the newest schema fixture (rows in every table) into `dir`, then runs `trials`
// random edits from `seed`, restoring the database before each.
Result<StateTamperResult> RunStateTamperTrials(const std::string& dir, uint64_t seed, int trials);

}  // namespace keel::store::testing
