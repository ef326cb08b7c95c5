// PLACEHOLDER until the `flowexpr` branch lands (it owns this file and replaces it whole):
// five-field cron expressions ("m h dom mon dow") with a time zone. This placeholder knows
// only UTC; the real one follows the zone's rules, including daylight-saving changes.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace keel::flow {

struct CronSchedule {
  std::bitset<60> minute;
  std::bitset<24> hour;
  std::bitset<32> dom;
  std::bitset<13> month;
  std::bitset<7> dow;
  std::string tz;
};

Result<CronSchedule> ParseCron(std::string_view expr, std::string_view tz);
// The first fire time strictly after `after_us` (microseconds since the epoch).
Result<int64_t> NextFire(const CronSchedule& s, int64_t after_us);

}  // namespace keel::flow
