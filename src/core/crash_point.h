// Named crash points for durability tests.
//
// KEEL_CRASH_POINT("ledger.append.before_commit") ends the process with SIGKILL when the
// environment variable KEEL_CRASH_AT names that point, as "name" (first hit) or "name:N"
// (the N-th hit). Several points may be given separated by commas. With the variable unset
// a crash point costs one relaxed load of a bool. The list of points is in docs/testing.md.
//
// Thread-safety: safe from any thread.
#pragma once

namespace keel {

// Returns true when KEEL_CRASH_AT is set in the environment (read once per process).
bool CrashPointsEnabled();
// Kills the process if `name` is armed and this is the armed hit.
void MaybeCrash(const char* name);

}  // namespace keel

#define KEEL_CRASH_POINT(name)                                  \
  do {                                                          \
    if (::keel::CrashPointsEnabled()) ::keel::MaybeCrash(name); \
  } while (0)
