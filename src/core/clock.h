// Clock: the only source of time in keel. Nothing else calls system_clock::now().
//
// Wall time (microseconds since the Unix epoch) is what deadlines, ledger entries and
// schedules are stored in; monotonic time is what waits are measured in, so that a wall
// clock jump (NTP, a laptop waking, DST) cannot make a wait fire early or twice.
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace keel {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since 1970-01-01T00:00:00Z.
  virtual int64_t NowMicros() = 0;
  // Microseconds from an arbitrary origin; never goes backwards.
  virtual int64_t MonotonicMicros() = 0;
  // Blocks the caller for up to `micros` of this clock's time. The simulated clock returns
  // immediately after advancing itself, so code that sleeps still terminates in tests.
  virtual void SleepMicros(int64_t micros) = 0;
};

// The real clock. A process-wide instance is returned by SystemClock().
class RealClock final : public Clock {
 public:
  int64_t NowMicros() override;
  int64_t MonotonicMicros() override;
  void SleepMicros(int64_t micros) override;
};
Clock* SystemClock();

// A clock that moves only when told. Wall time can jump in both directions (to test clock
// changes); monotonic time only moves forward, by the amount given to Advance().
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(int64_t start_micros = 1767225600000000)  // 2026-01-01T00:00:00Z
      : wall_(start_micros) {}
  int64_t NowMicros() override;
  int64_t MonotonicMicros() override;
  // Advances both wall and monotonic time.
  void SleepMicros(int64_t micros) override { Advance(micros); }
  void Advance(int64_t micros);
  // Moves only the wall clock (NTP step, DST is not a wall jump in UTC; a suspended laptop
  // moves both: use Advance for that). May be negative.
  void JumpWall(int64_t micros);
  void SetWall(int64_t micros);

 private:
  std::mutex mu_;
  int64_t wall_;
  int64_t mono_ = 0;
};

// RFC 3339 UTC with microseconds: "2026-01-01T00:00:00.000000Z".
std::string FormatTimeMicros(int64_t micros);
// Parses RFC 3339 ("2026-01-01T10:00:00Z", "...+02:00", fractional seconds optional) or a
// plain date ("2026-01-01", taken as midnight UTC). Returns false on any other input.
bool ParseTimeMicros(const std::string& text, int64_t* micros);

}  // namespace keel
