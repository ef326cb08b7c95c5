// The counting fake adapters (test code only: linked into the test programs and the test
// binary keel-testbin, never into the shipped keel):
//   `fake_keyed` like a payment API: an effect per token, repeats with the token are deduped
//   `fake_smtp`  like SMTP: every Perform is an effect; it cannot deduplicate
// (tests also register one as `log` to count what the sandbox adapter was asked to do).
// All offer the same fixed list of actions, kFakeActions (what the example workflows,
// tests, benchmarks and crash scenarios name); any other action is refused when a workflow
// is loaded (ActionAdapter::actions).
// Fault knobs in the params of any action: "_fail": CLASS with "_fail_times": N (fail the
// first N attempts), "_in_doubt_after_send": true (perform the effect, then report
// in_doubt: the ambiguous window of a dropped connection).
//
// When constructed with an effects file, each effect is also appended to that file as one
// line "<adapter> <token> <action>" (fsynced), so a test can count effects across SIGKILLs.
//
// Thread-safety: all methods are safe to call from several threads.
#pragma once

#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "flow/interfaces.h"

namespace keel::flow {

// The actions every CountingAdapter offers: verbs of the channels the fakes stand in for
// (mail, payments, bookings, shipping, publishing). One list for all fakes, so a test picks
// whichever adapter has the dedupe behaviour it needs without declaring actions.
inline constexpr std::string_view kFakeActions[] = {
    "apologize", "book",    "charge", "confirm", "draft",  "notify",  "nudge",
    "pay",       "publish", "refund", "release", "report", "reserve", "send",
    "ship",      "thank",   "unbook", "unship",  "write"};

class CountingAdapter final : public ActionAdapter {
 public:
  CountingAdapter(std::string name, bool honours_key, std::string effects_file = "");
  std::string name() const override { return name_; }
  bool honours_idempotency_key() const override { return honours_key_; }
  std::vector<std::string> actions() const override {
    return {std::begin(kFakeActions), std::end(kFakeActions)};
  }
  // Makes every Perform take `micros` of `clock`'s time (a slow peer), so tests can reach
  // code that only runs during long batches (lease renewal) without depending on load.
  void set_delay(Clock* clock, int64_t micros) {
    delay_clock_ = clock;
    delay_us_ = micros;
  }
  Outcome Perform(const std::string& token, const std::string& action, const nlohmann::json& params,
                  const CallContext& ctx, nlohmann::json* result) override;
  // Effects that happened (for a keyed adapter, at most one per token).
  int effects() const;
  int effects_for(const std::string& token) const;
  int calls() const;

 private:
  void LoadFile();
  Clock* delay_clock_ = nullptr;
  int64_t delay_us_ = 0;
  std::string name_;
  bool honours_key_;
  std::string file_;
  mutable std::mutex mu_;
  std::map<std::string, int> per_token_;
  int effects_ = 0;
  int calls_ = 0;
  bool loaded_ = false;
};

}  // namespace keel::flow
