#include "core/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

namespace keel {

int64_t RealClock::NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t RealClock::MonotonicMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

void RealClock::SleepMicros(int64_t micros) {
  if (micros > 0) std::this_thread::sleep_for(std::chrono::microseconds(micros));
}

Clock* SystemClock() {
  static RealClock clock;
  return &clock;
}

int64_t SimulatedClock::NowMicros() {
  std::lock_guard<std::mutex> l(mu_);
  return wall_;
}

int64_t SimulatedClock::MonotonicMicros() {
  std::lock_guard<std::mutex> l(mu_);
  return mono_;
}

void SimulatedClock::Advance(int64_t micros) {
  if (micros <= 0) return;
  std::lock_guard<std::mutex> l(mu_);
  wall_ += micros;
  mono_ += micros;
}

void SimulatedClock::JumpWall(int64_t micros) {
  std::lock_guard<std::mutex> l(mu_);
  wall_ += micros;
}

void SimulatedClock::SetWall(int64_t micros) {
  std::lock_guard<std::mutex> l(mu_);
  wall_ = micros;
}

std::string FormatTimeMicros(int64_t micros) {
  int64_t secs = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

bool ParseTimeMicros(const std::string& text, int64_t* micros) {
  int y, mo, d, h = 0, mi = 0, s = 0;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return false;
  size_t pos = 10;
  int64_t frac = 0;
  int64_t offset_secs = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return false;
    int m = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &mi, &s, &m) != 3 || m != 8)
      return false;
    pos += 1 + 8;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      int digits = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (digits < 6) frac = frac * 10 + (text[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return false;
      for (int i = digits; i < 6; ++i) frac *= 10;
    }
    if (pos >= text.size()) return false;
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      int oh, om, k = 0;
      if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
        return false;
      offset_secs = (oh * 3600 + om * 60) * (text[pos] == '+' ? 1 : -1);
      pos += 6;
    } else {
      return false;
    }
    if (pos != text.size()) return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  // Days from civil (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
  int yy = y - (mo <= 2);
  int era = (yy >= 0 ? yy : yy - 399) / 400;
  unsigned yoe = static_cast<unsigned>(yy - era * 400);
  unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_secs;
  *micros = secs * 1000000 + frac;
  return true;
}

}  // namespace keel
