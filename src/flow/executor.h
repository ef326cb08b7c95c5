// Where the engine's effects (agent calls and adapter actions) run: off the worker thread, so
// that a model or SMTP call of 20 s never stalls the steps of other runs.
//
// An executor only runs functions; what may run is decided by the engine before it submits
// (the outbox row and lease of every effect are durable first: flow/engine.h). Tests inject
// InlineExecutor, which runs each function inside Submit, so a round performs and records its
// effects in the same Tick as before and simulated-clock tests stay deterministic.
//
// Thread-safety: Submit may be called from any thread. Ownership: an executor owns its
// threads; destroying it waits for the functions already running and drops those still
// queued (they never start), so their effects are not performed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace keel::flow {

// How many effects run at once: `global` in all, and at most `per_lane` (or the lane's own
// entry in `lanes`) of one lane. The engine's lanes are "adapter:NAME" and "agent:NAME".
// keel.yaml `effects:` and `adapters.NAME.concurrency` (flow/config.h).
struct EffectLimits {
  int global = 16;
  int per_lane = 8;
  std::map<std::string, int> lanes;
  int LaneLimit(const std::string& lane) const;
};

class EffectExecutor {
 public:
  virtual ~EffectExecutor() = default;
  // Runs `fn` once, when fewer than the limits run; in submission order within what the
  // limits allow. `fn` must not throw.
  virtual void Submit(const std::string& lane, std::function<void()> fn) = 0;
  // True if Submit runs `fn` before it returns: then no limit applies (nothing runs at once).
  virtual bool RunsInline() const { return false; }
};

// Runs every function at once on the calling thread (tests; simulated clocks).
class InlineExecutor final : public EffectExecutor {
 public:
  void Submit(const std::string& /*lane*/, std::function<void()> fn) override { fn(); }
  bool RunsInline() const override { return true; }
};

// A pool of at most `limits.global` threads, started as work arrives. A queued function whose
// lane is full waits while functions of other lanes behind it run.
std::unique_ptr<EffectExecutor> NewThreadPoolExecutor(EffectLimits limits);

}  // namespace keel::flow
