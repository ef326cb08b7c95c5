// The engine's crash scenarios (linked only into tests), shared by the default crash suite
// (engine_crashtest.cc: a few kills per point) and the long one (engine_slowtest.cc: many).
//
// Every scenario works on a fresh workspace through the real `keel` binary: it starts runs
// of workflows whose steps use the counting fakes (fake_keyed honours the idempotency key,
// fake_smtp cannot), SIGKILLs a process at a named crash point (or at a random moment),
// restarts workers until nothing is due, checks the invariants (CrashHarness), then acts as
// a careful operator (confirms an uncertain send that the effects file shows happened,
// rejects and retries one that did not, approves gates) and checks that every run ends and
// every effect happened exactly once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::flow::testing {

// The crash points a worker passes through (docs/testing.md has the list with places).
const std::vector<std::string>& WorkerCrashPoints();
// Points hit by operator commands: `keel approve` and `keel event send`.
const std::vector<std::string>& OperatorCrashPoints();

// Kills a worker at `point`:`hit`, settles, checks. Returns false (after recording gtest
// failures) if the point was never reached at hit 1 (a point that does not exist).
bool RunWorkerPointScenario(const std::string& point, int hit, uint64_t seed);
// Repeated kills at `point` (hits from [2, 6]; [1, 5] for points passed once per round after
// a commit) until a worker finishes on its own.
void RunWorkerPointStorm(const std::string& point, uint64_t seed);
// `keel approve` killed after its decision committed; `keel event send` killed while the
// event id is being deduplicated (inside the transaction).
void RunApprovalScenario(int runs, uint64_t seed);
void RunWebhookScenario(int runs, uint64_t seed);
// Runs waiting at an approval gate after three completed steps with compensations (two on
// the key-honouring channel, one on the SMTP-like one) are canceled with `keel run cancel`;
// the worker running their compensations is killed at `point`:`hit`, restarted, and the
// operator settles uncertain compensations (confirm, or reject and `keel run retry`). Every
// run must end `canceled` with each compensation performed and journaled exactly once.
void RunCancelSagaScenario(const std::string& point, int hit, uint64_t seed);
// A busy worker (`runs` pipeline runs) SIGKILLed at random moments until it finishes.
void RunRandomKillScenario(int runs, int max_kills, uint64_t seed);
// A worker whose fake effects each take a while, SIGKILLed at random moments while several
// of them are in flight on the effect executor (flow/executor.h). Asserts that some kill
// caught at least two effects in flight, then the same final state as the other scenarios:
// no keyed effect twice, every unknown outcome an operator item.
void RunInFlightKillScenario(int pipelines, uint64_t seed);

}  // namespace keel::flow::testing
