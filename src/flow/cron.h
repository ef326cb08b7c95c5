// Cron schedules with a time zone: when a scheduled workflow fires. The rules for workflow
// authors (fields, names, @macros, the day rule, daylight-saving changes) are in
// docs/workflows.md ("Schedules"); this header is the contract for callers.
//
// Time zones come from the system's IANA database: a ZoneDb reads the compiled zone files
// (TZif, RFC 8536) under /usr/share/zoneinfo through the FileSystem seam, so a test can give
// it its own files; nothing is downloaded. "UTC" needs no file. The zone files list
// transitions up to 2037; later times follow the rule each file ends with (its POSIX TZ
// footer), so summer time keeps working after 2037. Daylight-saving rules:
//  - a local time that does not exist (skipped when clocks go forward) fires once, at the
//    first instant after the gap (02:30 on the spring-forward night fires at 03:00);
//  - a local time that happens twice (clocks go back) fires once, at its first occurrence.
//
// Thread-safety: CronSchedule is a value; ParseCron and NextFire may be called from any
// thread; a ZoneDb loads each zone once, under its own lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/fs.h"
#include "core/status.h"

namespace keel::flow {

// A time zone read from its zone file (its offsets and transitions, and its rule for the
// years after the last listed transition); defined in cron.cc.
struct CronZone;

inline constexpr char kSystemZoneInfo[] = "/usr/share/zoneinfo";
// Zone files are a few kilobytes; anything this large is not one.
inline constexpr uint64_t kMaxZoneFileBytes = 1 << 20;

// The time zones of one zone folder, each read once and kept for the life of the ZoneDb.
// Ownership: borrows `fs`, which must outlive it. Thread-safety: Locate may be called from
// any thread.
class ZoneDb {
 public:
  explicit ZoneDb(FileSystem* fs, std::string root = kSystemZoneInfo);
  ~ZoneDb();
  ZoneDb(const ZoneDb&) = delete;
  ZoneDb& operator=(const ZoneDb&) = delete;

  // The zone `name` ("Europe/Paris"), read from <root>/<name> on first use.
  // Errors: InvalidArgument for a name that is not a zone (characters outside an IANA
  // name, "..", no such file, a folder, a file that is not a zone file such as zone.tab, a
  // leap-second zone); DataLoss naming the file when a zone file is damaged (cut short,
  // counts or offsets out of range); a read error keeps its code, with the zone named.
  // Errors are not remembered: a repaired file is read again.
  Result<std::shared_ptr<const CronZone>> Locate(const std::string& name);

 private:
  FileSystem* fs_;
  std::string root_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const CronZone>> zones_;
};

// The process's ZoneDb over the real file system and /usr/share/zoneinfo.
ZoneDb* SystemZoneDb();

struct CronSchedule {
  std::string expr;            // the expression as given ("0 9 * * MON-FRI", "@daily")
  std::string time_zone;       // the IANA zone name ("Europe/Paris"; "UTC" when none was given)
  uint64_t minutes = 0;        // bit m set: fires at minute m (0-59)
  uint32_t hours = 0;          // bit h: hour h (0-23)
  uint32_t days_of_month = 0;  // bit d: day d (1-31)
  uint16_t months = 0;         // bit m: month m (1-12)
  uint8_t days_of_week = 0;    // bit w: weekday w (0 = Sunday ... 6 = Saturday)
  // Whether the day-of-month / day-of-week field began with '*'. When neither did, a day
  // matches if EITHER field matches (the Vixie cron rule); otherwise both must match.
  bool dom_star = true;
  bool dow_star = true;
  // Shared by copies of the schedule and the ZoneDb that read it.
  std::shared_ptr<const CronZone> zone;
};

// Parses a 5-field cron expression (minute hour day-of-month month day-of-week) with lists
// (1,15), ranges (MON-FRI), steps (*/15, 8-18/2, 5/10), names (JAN-DEC, SUN-SAT, any case;
// 7 is Sunday too) or one of @hourly @daily @midnight @weekly @monthly @yearly @annually.
// `time_zone` is an IANA name looked up in `zones`; empty means UTC.
// Errors: InvalidArgument naming the field and the value ("cron \"61 * * * *\": minute: 61
// is out of range 0-59"), a wrong field count, a schedule that can never fire (30 February),
// or an unknown time zone; ZoneDb::Locate's errors for the zone.
Result<CronSchedule> ParseCron(std::string_view expr, std::string_view time_zone,
                               ZoneDb* zones = SystemZoneDb());

// The first fire time strictly after `after_us` (UTC microseconds), in UTC microseconds
// (always a whole second, normally a whole minute). Cost: a few dozen steps, never a scan
// minute by minute. Errors: InvalidArgument if `s` was not made by ParseCron or `after_us`
// is outside the years 1-9999.
Result<int64_t> NextFire(const CronSchedule& s, int64_t after_us);

}  // namespace keel::flow
