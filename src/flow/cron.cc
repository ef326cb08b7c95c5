// PLACEHOLDER until the `flowexpr` branch lands; see cron.h.
#include "flow/cron.h"

#include <ctime>
#include <sstream>
#include <vector>

namespace keel::flow {
namespace {

template <size_t N>
Status ParseField(const std::string& f, int lo, int hi, std::bitset<N>* out) {
  std::stringstream ss(f);
  std::string part;
  while (std::getline(ss, part, ',')) {
    int step = 1;
    auto slash = part.find('/');
    if (slash != std::string::npos) {
      try {
        step = std::stoi(part.substr(slash + 1));
      } catch (...) {
        return InvalidArgument("cron field '" + f + "': bad step");
      }
      if (step <= 0) return InvalidArgument("cron field '" + f + "': bad step");
      part = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (part != "*") {
      try {
        auto dash = part.find('-');
        a = std::stoi(part.substr(0, dash));
        b = dash == std::string::npos ? (slash == std::string::npos ? a : hi)
                                      : std::stoi(part.substr(dash + 1));
      } catch (...) {
        return InvalidArgument("cron field '" + f + "': not a number");
      }
    }
    if (a < lo || b > hi || a > b) {
      return InvalidArgument("cron field '" + f + "': out of range " + std::to_string(lo) + "-" +
                             std::to_string(hi));
    }
    for (int v = a; v <= b; v += step) out->set(static_cast<size_t>(v));
  }
  return OkStatus();
}

}  // namespace

Result<CronSchedule> ParseCron(std::string_view expr, std::string_view tz) {
  if (!tz.empty() && tz != "UTC" && tz != "Etc/UTC") {
    return InvalidArgument("time zone '" + std::string(tz) + "' is not supported yet (UTC only)");
  }
  std::stringstream ss{std::string(expr)};
  std::vector<std::string> f;
  std::string w;
  while (ss >> w) f.push_back(w);
  if (f.size() != 5) {
    return InvalidArgument("cron expression '" + std::string(expr) + "' needs 5 fields");
  }
  CronSchedule s;
  s.tz = tz.empty() ? "UTC" : std::string(tz);
  KEEL_RETURN_IF_ERROR(ParseField(f[0], 0, 59, &s.minute));
  KEEL_RETURN_IF_ERROR(ParseField(f[1], 0, 23, &s.hour));
  KEEL_RETURN_IF_ERROR(ParseField(f[2], 1, 31, &s.dom));
  KEEL_RETURN_IF_ERROR(ParseField(f[3], 1, 12, &s.month));
  std::bitset<8> dow;
  KEEL_RETURN_IF_ERROR(ParseField(f[4], 0, 7, &dow));
  for (int i = 0; i < 7; ++i) s.dow[static_cast<size_t>(i)] = dow[static_cast<size_t>(i)];
  if (dow[7]) s.dow[0] = true;
  return s;
}

Result<int64_t> NextFire(const CronSchedule& s, int64_t after_us) {
  int64_t t = (after_us / 60000000 + 1) * 60;  // next whole minute, in seconds
  for (int i = 0; i < 366 * 24 * 60; ++i, t += 60) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    if (s.minute[static_cast<size_t>(tm.tm_min)] && s.hour[static_cast<size_t>(tm.tm_hour)] &&
        s.dom[static_cast<size_t>(tm.tm_mday)] && s.month[static_cast<size_t>(tm.tm_mon + 1)] &&
        s.dow[static_cast<size_t>(tm.tm_wday)]) {
      return t * 1000000;
    }
  }
  return InvalidArgument("cron schedule never fires within a year");
}

}  // namespace keel::flow
