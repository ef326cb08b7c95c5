#include "flow/cron.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "core/random.h"
#include "core/testing_util.h"

namespace keel::flow {
namespace {

int64_t T(const std::string& rfc3339) {
  int64_t t = 0;
  EXPECT_TRUE(ParseTimeMicros(rfc3339, &t)) << rfc3339;
  return t;
}

// "2026-03-29T01:00:00Z" (drops the microseconds FormatTimeMicros prints).
std::string Utc(int64_t micros) {
  std::string s = FormatTimeMicros(micros);
  return s.substr(0, 19) + "Z";
}

CronSchedule Parse(const std::string& expr, const std::string& zone = "UTC") {
  auto s = ParseCron(expr, zone);
  EXPECT_TRUE(s.ok()) << expr << " " << zone << ": " << s.status().ToString();
  return s.ok() ? *s : CronSchedule{};
}

// The next `n` fire times after `after`, as UTC strings.
std::vector<std::string> Fires(const std::string& expr, const std::string& zone,
                               const std::string& after, int n) {
  CronSchedule s = Parse(expr, zone);
  std::vector<std::string> out;
  int64_t t = T(after);
  for (int i = 0; i < n; ++i) {
    auto next = NextFire(s, t);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok()) break;
    EXPECT_GT(*next, t);
    out.push_back(Utc(*next));
    t = *next;
  }
  return out;
}

std::string ParseError(const std::string& expr, const std::string& zone = "UTC") {
  auto s = ParseCron(expr, zone);
  if (s.ok()) return "";
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  return s.status().message();
}

using V = std::vector<std::string>;

TEST(Cron, BasicFields) {
  EXPECT_EQ(Fires("0 9 * * MON-FRI", "UTC", "2026-01-02T08:00:00Z", 3),
            (V{"2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"}));
  EXPECT_EQ(Fires("*/20 8-18/5 * * *", "UTC", "2026-01-01T12:50:00Z", 5),
            (V{"2026-01-01T13:00:00Z", "2026-01-01T13:20:00Z", "2026-01-01T13:40:00Z",
               "2026-01-01T18:00:00Z", "2026-01-01T18:20:00Z"}));
  EXPECT_EQ(Fires("5/20 0 * * *", "UTC", "2026-01-01T00:00:00Z", 4),
            (V{"2026-01-01T00:05:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:45:00Z",
               "2026-01-02T00:05:00Z"}));
  EXPECT_EQ(Fires("0 0 1,15 jan,Jul *", "UTC", "2026-01-10T00:00:00Z", 4),
            (V{"2026-01-15T00:00:00Z", "2026-07-01T00:00:00Z", "2026-07-15T00:00:00Z",
               "2027-01-01T00:00:00Z"}));
  // 7 and 0 are both Sunday; 2026-01-04 is a Sunday.
  EXPECT_EQ(Fires("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", 1), V{"2026-01-04T00:00:00Z"});
  EXPECT_EQ(Fires("0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", 1), V{"2026-01-04T00:00:00Z"});
  EXPECT_EQ(Fires("0 0 * * 5-7", "UTC", "2026-01-01T00:00:00Z", 4),
            (V{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
               "2026-01-09T00:00:00Z"}));
}

TEST(Cron, StrictlyAfter) {
  CronSchedule s = Parse("0 9 * * *");
  EXPECT_EQ(Utc(*NextFire(s, T("2026-01-01T09:00:00Z"))), "2026-01-02T09:00:00Z");
  EXPECT_EQ(Utc(*NextFire(s, T("2026-01-01T08:59:59.999999Z"))), "2026-01-01T09:00:00Z");
  EXPECT_EQ(Utc(*NextFire(s, T("2026-01-01T09:00:00.000001Z"))), "2026-01-02T09:00:00Z");
}

TEST(Cron, Macros) {
  const std::string after = "2026-05-17T10:30:00Z";  // a Sunday
  EXPECT_EQ(Fires("@hourly", "UTC", after, 1), V{"2026-05-17T11:00:00Z"});
  EXPECT_EQ(Fires("@daily", "UTC", after, 1), V{"2026-05-18T00:00:00Z"});
  EXPECT_EQ(Fires("@midnight", "UTC", after, 1), V{"2026-05-18T00:00:00Z"});
  EXPECT_EQ(Fires("@weekly", "UTC", after, 1), V{"2026-05-24T00:00:00Z"});
  EXPECT_EQ(Fires("@monthly", "UTC", after, 1), V{"2026-06-01T00:00:00Z"});
  EXPECT_EQ(Fires("@yearly", "UTC", after, 1), V{"2027-01-01T00:00:00Z"});
  EXPECT_EQ(Fires("@annually", "UTC", after, 1), V{"2027-01-01T00:00:00Z"});
  EXPECT_EQ(Parse("@daily", "Europe/Paris").expr, "@daily");
}

TEST(Cron, VixieDayRule) {
  // Both day fields restricted: either matches. 2026-02-01 is a Sunday.
  EXPECT_EQ(Fires("0 0 1 * MON", "UTC", "2026-01-31T12:00:00Z", 3),
            (V{"2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"}));
  // A field starting with '*' is not a restriction for this rule: both must match
  // (odd days that are Mondays).
  EXPECT_EQ(Fires("0 0 */2 * MON", "UTC", "2026-01-31T12:00:00Z", 2),
            (V{"2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z"}));
  EXPECT_EQ(Fires("0 0 13 * */7", "UTC", "2026-01-01T00:00:00Z", 1),
            V{"2026-09-13T00:00:00Z"});  // the 13th that is a Sunday
}

TEST(Cron, LeapYearsAndMonthEnds) {
  EXPECT_EQ(Fires("0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z", 2),
            (V{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}));
  // 2100 is not a leap year.
  EXPECT_EQ(Fires("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1), V{"2104-02-29T00:00:00Z"});
  // 29 February that is a Sunday: 2032, then 2060.
  EXPECT_EQ(Fires("0 0 29 2 SUN-SUN/1 ", "UTC", "2026-01-01T00:00:00Z", 3),
            (V{"2026-02-01T00:00:00Z", "2026-02-08T00:00:00Z", "2026-02-15T00:00:00Z"}))
      << "both restricted: Sundays or the 29th";
  EXPECT_EQ(Fires("0 0 29 2 */7", "UTC", "2026-01-01T00:00:00Z", 2),
            (V{"2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z"}));
  // The 31st skips the months without one.
  EXPECT_EQ(Fires("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 3),
            (V{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"}));
  EXPECT_EQ(Fires("0 0 30 * *", "UTC", "2026-01-30T00:00:00Z", 2),
            (V{"2026-03-30T00:00:00Z", "2026-04-30T00:00:00Z"}));
  EXPECT_EQ(Fires("59 23 28-31 2 *", "UTC", "2026-02-28T00:00:00Z", 2),
            (V{"2026-02-28T23:59:00Z", "2027-02-28T23:59:00Z"}));
}

TEST(Cron, EveryMinuteAcrossYearBoundary) {
  CronSchedule s = Parse("* * * * *");
  int64_t t = T("2026-12-31T23:00:00Z");
  for (int i = 1; i <= 120; ++i) {
    auto next = NextFire(s, t);
    ASSERT_TRUE(next.ok());
    ASSERT_EQ(*next, T("2026-12-31T23:00:00Z") + int64_t{i} * 60000000) << i;
    t = *next;
  }
  EXPECT_EQ(Utc(t), "2027-01-01T01:00:00Z");
  // The same in a zone whose new year is at 23:00 UTC.
  EXPECT_EQ(Fires("* * * * *", "Europe/Paris", "2026-12-31T22:58:30Z", 3),
            (V{"2026-12-31T22:59:00Z", "2026-12-31T23:00:00Z", "2026-12-31T23:01:00Z"}));
  EXPECT_EQ(Fires("0 0 1 1 *", "Europe/Paris", "2026-06-01T00:00:00Z", 1),
            V{"2026-12-31T23:00:00Z"});
}

TEST(Cron, TimeZones) {
  // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
  EXPECT_EQ(Fires("0 9 * * *", "Europe/Paris", "2026-01-15T00:00:00Z", 1),
            V{"2026-01-15T08:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "Europe/Paris", "2026-07-15T00:00:00Z", 1),
            V{"2026-07-15T07:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "America/New_York", "2026-01-15T00:00:00Z", 1),
            V{"2026-01-15T14:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "Asia/Kolkata", "2026-01-15T00:00:00Z", 1),
            V{"2026-01-15T03:30:00Z"});
  // The weekday is the local one: Monday 08:00 in Auckland is Sunday evening in UTC.
  EXPECT_EQ(Fires("0 8 * * MON", "Pacific/Auckland", "2026-01-01T00:00:00Z", 1),
            V{"2026-01-04T19:00:00Z"});
  EXPECT_EQ(Parse("0 9 * * *", "").time_zone, "UTC");
  // Far from today the zone's rules still apply (summer time in 2040 and 2100).
  EXPECT_EQ(Fires("0 9 * * *", "Europe/Paris", "2040-07-15T00:00:00Z", 1),
            V{"2040-07-15T07:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "America/New_York", "2100-07-15T00:00:00Z", 1),
            V{"2100-07-15T13:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "America/New_York", "2100-12-15T00:00:00Z", 1),
            V{"2100-12-15T14:00:00Z"});
  EXPECT_EQ(Fires("0 12 * * *", "Australia/Sydney", "2045-01-15T00:00:00Z", 1),
            V{"2045-01-15T01:00:00Z"});  // southern summer: +11
  EXPECT_EQ(Fires("0 12 * * *", "Australia/Sydney", "2045-07-15T00:00:00Z", 1),
            V{"2045-07-15T02:00:00Z"});
  EXPECT_EQ(Fires("0 9 * * *", "Asia/Kolkata", "2060-01-15T00:00:00Z", 1),
            V{"2060-01-15T03:30:00Z"});
  // The daylight-saving rules below hold after 2037 too (2040-03-25 and 2040-10-28).
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Paris", "2040-03-24T12:00:00Z", 2),
            (V{"2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z"}));
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Paris", "2040-10-27T12:00:00Z", 2),
            (V{"2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z"}));
}

// Spring forward in Paris: on 2026-03-29 local time jumps from 02:00 CET to 03:00 CEST
// (01:00 UTC), so 02:00-02:59 does not exist that night.
TEST(Cron, SpringForwardParis) {
  // A time inside the gap fires once, at the first instant after it (03:00 CEST).
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 3),
            (V{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"}));
  // 03:00 itself is unaffected and fires at the same instant.
  EXPECT_EQ(Fires("0 3 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 1),
            V{"2026-03-29T01:00:00Z"});
  // Every 15 minutes: the four slots in the gap collapse into one fire at 03:00.
  EXPECT_EQ(Fires("*/15 * * * *", "Europe/Paris", "2026-03-29T00:30:00Z", 4),
            (V{"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z",
               "2026-03-29T01:30:00Z"}));
  // An hourly job runs at 01:00 CET then 03:00 CEST: one real hour apart.
  EXPECT_EQ(Fires("0 * * * *", "Europe/Paris", "2026-03-28T23:30:00Z", 3),
            (V{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}));
}

// Fall back in Paris: on 2026-10-25 local time goes from 03:00 CEST back to 02:00 CET
// (01:00 UTC), so 02:00-02:59 happens twice; only the first occurrence fires.
TEST(Cron, FallBackParis) {
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 3),
            (V{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"}));
  // Asked from inside the second occurrence, it does not fire again that night.
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Paris", "2026-10-25T01:10:00Z", 1),
            V{"2026-10-26T01:30:00Z"});
  EXPECT_EQ(Fires("*/30 * * * *", "Europe/Paris", "2026-10-25T01:10:00Z", 2),
            (V{"2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z"}));
  // Hourly: 02:00 CEST, then 03:00 CET; the repeated 02:00 CET does not fire.
  EXPECT_EQ(Fires("0 * * * *", "Europe/Paris", "2026-10-24T23:30:00Z", 3),
            (V{"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}));
}

// New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST
// (06:00 UTC), repeating 01:00-01:59.
TEST(Cron, DaylightSavingNewYork) {
  EXPECT_EQ(Fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            (V{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}));
  EXPECT_EQ(Fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            (V{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}));
  EXPECT_EQ(Fires("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", 1),
            V{"2026-11-02T06:30:00Z"});
  // Every minute through the spring-forward gap: 01:59 EST, then 03:00 EDT.
  EXPECT_EQ(Fires("* * * * *", "America/New_York", "2026-03-08T06:58:00Z", 3),
            (V{"2026-03-08T06:59:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:01:00Z"}));
}

// A year of daily fires in each zone: exactly one per local day, none lost or doubled
// across both daylight-saving changes; in 2045 too, past the zone files' listed transitions.
TEST(Cron, OneFirePerDayThroughAYear) {
  for (int year : {2026, 2045})
    for (const char* zone : {"Europe/Paris", "America/New_York", "Australia/Sydney"}) {
      for (const char* expr : {"30 2 * * *", "0 0 * * *", "59 23 * * *", "30 1 * * *"}) {
        CronSchedule s = Parse(expr, zone);
        int64_t t = T(std::to_string(year) + "-01-01T12:00:00Z");
        int count = 0;
        int64_t prev = 0;
        while (true) {
          auto next = NextFire(s, t);
          ASSERT_TRUE(next.ok());
          if (*next >= T(std::to_string(year + 1) + "-01-01T12:00:00Z")) break;
          if (prev) {
            ASSERT_GT(*next - prev, int64_t{22} * 3600 * 1000000) << zone << " " << expr;
            ASSERT_LT(*next - prev, int64_t{26} * 3600 * 1000000) << zone << " " << expr;
          }
          prev = *next;
          t = *next;
          ++count;
        }
        EXPECT_EQ(count, 365) << zone << " " << expr << " " << year;
      }
    }
}

TEST(Cron, BadExpressions) {
  EXPECT_EQ(ParseError("61 * * * *"), "cron \"61 * * * *\": minute: 61 is out of range 0-59");
  EXPECT_EQ(ParseError("0 24 * * *"), "cron \"0 24 * * *\": hour: 24 is out of range 0-23");
  EXPECT_EQ(ParseError("0 0 0 * *"), "cron \"0 0 0 * *\": day of month: 0 is out of range 1-31");
  EXPECT_EQ(ParseError("0 0 * 13 *"), "cron \"0 0 * 13 *\": month: 13 is out of range 1-12");
  EXPECT_EQ(ParseError("0 0 * * 8"), "cron \"0 0 * * 8\": day of week: 8 is out of range 0-7");
  EXPECT_EQ(ParseError("0 0 * * FOO"),
            "cron \"0 0 * * FOO\": day of week: 'FOO' is not a number (use 0-7 or SUN-SAT)");
  EXPECT_EQ(ParseError("0 0 * JANUARY *"),
            "cron \"0 0 * JANUARY *\": month: 'JANUARY' is not a number (use 1-12 or JAN-DEC)");
  EXPECT_EQ(ParseError("MON 0 * * *"), "cron \"MON 0 * * *\": minute: 'MON' is not a number");
  EXPECT_EQ(ParseError("* * * * * *"),
            "cron \"* * * * * *\": needs 5 fields (minute hour day-of-month month "
            "day-of-week), got 6");
  EXPECT_EQ(ParseError("* * * *"),
            "cron \"* * * *\": needs 5 fields (minute hour day-of-month month day-of-week), "
            "got 4");
  EXPECT_EQ(ParseError(""), "cron \"\": empty expression");
  EXPECT_EQ(ParseError("   "), "cron \"   \": empty expression");
  EXPECT_EQ(ParseError("*/0 * * * *"),
            "cron \"*/0 * * * *\": minute: step '0' must be a number from 1 to 59");
  EXPECT_EQ(ParseError("*/ * * * *"),
            "cron \"*/ * * * *\": minute: step '' must be a number from 1 to 59");
  EXPECT_EQ(ParseError("5-1 * * * *"),
            "cron \"5-1 * * * *\": minute: range '5-1' ends before it starts");
  EXPECT_EQ(ParseError("1,,2 * * * *"), "cron \"1,,2 * * * *\": minute: empty list item");
  EXPECT_EQ(ParseError("- * * * *"), "cron \"- * * * *\": minute: missing value");
  EXPECT_EQ(ParseError("0 0 L * *"), "cron \"0 0 L * *\": day of month: 'L' is not a number");
  EXPECT_EQ(ParseError("0 0 ? * *"), "cron \"0 0 ? * *\": day of month: '?' is not a number");
  EXPECT_EQ(ParseError("0 0 * * 1#2"),
            "cron \"0 0 * * 1#2\": day of week: '1#2' is not a number (use 0-7 or SUN-SAT)");
  EXPECT_EQ(ParseError("-1 * * * *"), "cron \"-1 * * * *\": minute: missing value");
  EXPECT_EQ(ParseError("99999999999 * * * *"),
            "cron \"99999999999 * * * *\": minute: '99999999999' is not a number");
  EXPECT_EQ(ParseError("@reboot"),
            "cron \"@reboot\": unknown macro @reboot (known: @hourly @daily @midnight @weekly "
            "@monthly @yearly @annually)");
  EXPECT_EQ(ParseError("0 0 30 2 *"),
            "cron \"0 0 30 2 *\": the schedule can never fire (no such day in the months given)");
  EXPECT_EQ(ParseError("0 0 31 4,6,9,11 *"),
            "cron \"0 0 31 4,6,9,11 *\": the schedule can never fire (no such day in the "
            "months given)");
  // With both day fields restricted, the weekday alone makes it possible.
  EXPECT_EQ(ParseError("0 0 30 2 MON"), "");
}

TEST(Cron, BadTimeZones) {
  for (const char* zone : {"Mars/Olympus", "Europe/Pariss", "europe/paris", "../../etc/passwd",
                           "Europe/Paris\n", "/usr/share/zoneinfo/UTC", "CET+1", " UTC"}) {
    auto s = ParseCron("0 9 * * *", zone);
    ASSERT_FALSE(s.ok()) << zone;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << zone;
    EXPECT_NE(s.status().message().find("time zone"), std::string::npos) << s.status().message();
  }
  EXPECT_EQ(ParseCron("0 9 * * *", "Mars/Olympus").status().message(),
            "unknown time zone \"Mars/Olympus\" (an IANA name like Europe/Paris or "
            "America/New_York, or UTC)");
  for (const char* zone : {"UTC", "Etc/UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"}) {
    EXPECT_TRUE(ParseCron("0 9 * * *", zone).ok()) << zone;
  }
}

TEST(Cron, NextFireRejectsBadInput) {
  EXPECT_EQ(NextFire(CronSchedule{}, 0).status().code(), StatusCode::kInvalidArgument);
  CronSchedule s = Parse("* * * * *");
  EXPECT_EQ(NextFire(s, INT64_MAX).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NextFire(s, INT64_MIN).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Utc(*NextFire(s, -1)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Utc(*NextFire(s, T("1969-12-31T23:58:30Z"))), "1969-12-31T23:59:00Z");
}

// Checks NextFire against a minute-by-minute scan over random UTC schedules.
TEST(Cron, MatchesBruteForce) {
  using namespace std::chrono;
  SeededRandom rnd(99);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rnd.Next64() % (hi - lo + 1)); };
  auto field = [&](int lo, int hi, bool allow_star) {
    switch (pick(0, 3)) {
      case 0:
        if (allow_star) return std::string("*");
        [[fallthrough]];
      case 1:
        return std::to_string(pick(lo, hi));
      case 2: {
        int a = pick(lo, hi), b = pick(a, hi);
        return std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(pick(1, 5));
      }
      default:
        return "*/" + std::to_string(pick(1, 7));
    }
  };
  int checked = 0;
  for (int i = 0; i < 150; ++i) {
    std::string expr = field(0, 59, true) + " " + field(0, 23, true) + " " + field(1, 28, true) +
                       " " + field(1, 12, true) + " " + field(0, 6, true);
    auto s = ParseCron(expr, "UTC");
    ASSERT_TRUE(s.ok()) << expr;
    int64_t after = T("2026-01-01T00:00:00Z") +
                    static_cast<int64_t>(rnd.Next64() % 400) * 86400000000LL +
                    static_cast<int64_t>(rnd.Next64() % 86400) * 1000000;
    auto next = NextFire(*s, after);
    ASSERT_TRUE(next.ok()) << expr;
    // Scan up to 40 days, minute by minute.
    int64_t m = (after / 60000000 + 1) * 60000000;
    int64_t found = -1;
    for (int k = 0; k < 40 * 1440; ++k, m += 60000000) {
      sys_seconds ss{seconds(m / 1000000)};
      auto day = floor<days>(ss);
      year_month_day ymd{day};
      hh_mm_ss hms{ss - day};
      unsigned wd = weekday{day}.c_encoding();
      bool dom = s->days_of_month & (1u << static_cast<unsigned>(ymd.day()));
      bool dow = s->days_of_week & (1u << wd);
      bool day_ok = (s->dom_star || s->dow_star) ? (dom && dow) : (dom || dow);
      if ((s->months & (1u << static_cast<unsigned>(ymd.month()))) && day_ok &&
          (s->hours & (1u << hms.hours().count())) &&
          (s->minutes & (uint64_t{1} << hms.minutes().count()))) {
        found = m;
        break;
      }
    }
    if (found >= 0) {
      EXPECT_EQ(Utc(*next), Utc(found)) << expr << " after " << Utc(after);
      ++checked;
    } else {
      EXPECT_GT(*next, m - 60000000) << expr;
    }
  }
  EXPECT_GT(checked, 50);
}

// NextFire skips by field: even the rarest schedules take microseconds, not a scan.
TEST(Cron, NextFireIsFast) {
  CronSchedule rare = Parse("0 0 29 2 */7", "Europe/Paris");  // 29 February on a Sunday
  CronSchedule yearly = Parse("@yearly", "America/New_York");
  auto start = std::chrono::steady_clock::now();
  int64_t t = T("2026-01-01T00:00:00Z");
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(NextFire(rare, t).ok());
    auto y = NextFire(yearly, t);
    ASSERT_TRUE(y.ok());
    t = *y;
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(ms, 2000.0) << "4000 NextFire calls took " << ms << " ms";
}

// ---- zone files through the FileSystem seam ----------------------------------------------

// A FileSystem that records the files read through it.
class RecordingFs final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p, int m) override {
    return base_->NewWritableFile(p, m);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& p, int m) override {
    return base_->NewAppendableFile(p, m);
  }
  Result<std::string> ReadFile(const std::string& p, uint64_t max) override {
    reads.push_back(p);
    return base_->ReadFile(p, max);
  }
  bool Exists(const std::string& p) override { return base_->Exists(p); }
  Result<uint64_t> FileSize(const std::string& p) override { return base_->FileSize(p); }
  Status Rename(const std::string& a, const std::string& b) override { return base_->Rename(a, b); }
  Status SyncDir(const std::string& d) override { return base_->SyncDir(d); }
  Status CreateDirs(const std::string& d, int m) override { return base_->CreateDirs(d, m); }
  Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  Status RemoveTree(const std::string& p) override { return base_->RemoveTree(p); }
  Result<std::vector<std::string>> ListDir(const std::string& d) override {
    return base_->ListDir(d);
  }
  Result<int> Mode(const std::string& p) override { return base_->Mode(p); }
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& p) override {
    return base_->NewSequentialFile(p);
  }
  Status SyncFile(const std::string& p) override { return base_->SyncFile(p); }
  Result<std::unique_ptr<FileLock>> OpenLockFile(const std::string& p, bool create,
                                                 int m) override {
    return base_->OpenLockFile(p, create, m);
  }

  std::vector<std::string> reads;

 private:
  FileSystem* base_ = DefaultFileSystem();
};

std::string BigEndian(int64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// A version 2 zone file (RFC 8536): local time types with `offsets` (seconds east of UTC),
// `transitions` (UTC second, type index) and the POSIX TZ `footer`.
std::string Tzif(const std::vector<int32_t>& offsets,
                 const std::vector<std::pair<int64_t, int>>& transitions,
                 const std::string& footer) {
  auto block = [&](int time_bytes) {
    std::string b = "TZif2" + std::string(15, '\0');
    for (int64_t count :
         {int64_t{0}, int64_t{0}, int64_t{0}, static_cast<int64_t>(transitions.size()),
          static_cast<int64_t>(offsets.size()), int64_t{4}}) {
      b += BigEndian(count, 4);
    }
    for (const auto& t : transitions) b += BigEndian(t.first, time_bytes);
    for (const auto& t : transitions) b += static_cast<char>(t.second);
    for (int32_t o : offsets) b += BigEndian(o, 4) + std::string(2, '\0');
    return b + std::string("TST", 4);
  };
  return block(4) + block(8) + "\n" + footer + "\n";
}

// Zones are read from the ZoneDb's folder through its FileSystem, never past it: a zone
// that exists only in a test's folder works, and every read is seen by the seam.
TEST(CronZones, ReadThroughTheInjectedFileSystem) {
  keel::testing::TempDir tmp;
  RecordingFs fs;
  ASSERT_TRUE(fs.CreateDirs(tmp.Sub("Test"), kPrivateDirMode).ok());
  // India: +05:30 all year, no transitions, only the footer rule.
  keel::testing::WriteFile(tmp.Sub("Test/Kolkata"), Tzif({19800}, {}, "IST-5:30"));
  // +01:00, then +02:00 from 2030 on, with no rule: the last listed offset stays.
  keel::testing::WriteFile(tmp.Sub("Test/Jump"),
                           Tzif({3600, 7200}, {{T("2030-01-01T00:00:00Z") / 1000000, 1}}, ""));
  ZoneDb zones(&fs, tmp.path());

  auto s = ParseCron("0 9 * * *", "Test/Kolkata", &zones);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Utc(*NextFire(*s, T("2026-01-01T00:00:00Z"))), "2026-01-01T03:30:00Z");
  EXPECT_EQ(Utc(*NextFire(*s, T("2045-07-01T00:00:00Z"))), "2045-07-01T03:30:00Z");
  s = ParseCron("0 9 * * *", "Test/Jump", &zones);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Utc(*NextFire(*s, T("2029-06-01T00:00:00Z"))), "2029-06-01T08:00:00Z");
  EXPECT_EQ(Utc(*NextFire(*s, T("2031-06-01T00:00:00Z"))), "2031-06-01T07:00:00Z");
  EXPECT_EQ(fs.reads, (std::vector<std::string>{tmp.Sub("Test/Kolkata"), tmp.Sub("Test/Jump")}));

  // Read once per ZoneDb; UTC needs no file at all.
  ASSERT_TRUE(ParseCron("0 9 * * *", "Test/Jump", &zones).ok());
  ASSERT_TRUE(ParseCron("0 9 * * *", "UTC", &zones).ok());
  ASSERT_TRUE(ParseCron("0 9 * * *", "", &zones).ok());
  EXPECT_EQ(fs.reads.size(), 2u);
  // The system's zones are not in this folder.
  EXPECT_EQ(ParseCron("0 9 * * *", "Europe/Paris", &zones).status().code(),
            StatusCode::kInvalidArgument);

  // A real zone file copied into the folder behaves as the system's (summer time in 2040,
  // past its listed transitions, from the footer).
  ASSERT_TRUE(fs.CreateDirs(tmp.Sub("Europe"), kPrivateDirMode).ok());
  auto paris = DefaultFileSystem()->ReadFile(JoinPath(kSystemZoneInfo, "Europe/Paris"));
  ASSERT_TRUE(paris.ok());
  keel::testing::WriteFile(tmp.Sub("Europe/Paris"), *paris);
  for (const char* after :
       {"2026-03-29T00:00:00Z", "2040-03-25T00:30:00Z", "2040-10-28T00:30:00Z"}) {
    auto mine = ParseCron("30 2 * * *", "Europe/Paris", &zones);
    ASSERT_TRUE(mine.ok()) << mine.status().ToString();
    EXPECT_EQ(Utc(*NextFire(*mine, T(after))),
              Utc(*NextFire(Parse("30 2 * * *", "Europe/Paris"), T(after))))
        << after;
  }
}

// A missing zone, a folder or a file that is not a zone file is an unknown zone
// (InvalidArgument); a damaged zone file is DataLoss naming the file, and is read again
// once repaired.
TEST(CronZones, MissingAndDamagedZoneFiles) {
  keel::testing::TempDir tmp;
  FileSystem* fs = DefaultFileSystem();
  ASSERT_TRUE(fs->CreateDirs(tmp.Sub("Test")).ok());
  ZoneDb zones(fs, tmp.path());
  const std::string unknown =
      "unknown time zone \"Test/None\" (an IANA name like Europe/Paris or America/New_York, "
      "or UTC)";
  EXPECT_EQ(ParseCron("0 9 * * *", "Test/None", &zones).status().message(), unknown);
  EXPECT_EQ(ParseCron("0 9 * * *", "Test", &zones).status().code(), StatusCode::kInvalidArgument);
  keel::testing::WriteFile(tmp.Sub("Test/Table"), "# a zone.tab, not a zone\n");
  EXPECT_EQ(ParseCron("0 9 * * *", "Test/Table", &zones).status().code(),
            StatusCode::kInvalidArgument);

  const std::string good = Tzif({3600, 7200}, {{1900000000, 1}}, "CET-1");
  struct Damage {
    const char* what;
    std::string bytes;
  };
  std::string bad_type = good;
  // The one transition's type index (right after the 64-bit block's header and time).
  size_t v2 = good.find("TZif2", 4);
  bad_type[v2 + 44 + 8] = 7;
  std::string no_footer = good.substr(0, good.rfind("CET-1") - 1);
  for (const Damage& d : {Damage{"cut in the header", good.substr(0, 30)},
                          Damage{"cut in the data", good.substr(0, v2 + 50)},
                          Damage{"bad type index", bad_type}, Damage{"no footer", no_footer}}) {
    SCOPED_TRACE(d.what);
    keel::testing::WriteFile(tmp.Sub("Test/Bad"), d.bytes);
    auto s = ParseCron("0 9 * * *", "Test/Bad", &zones);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
    EXPECT_NE(s.status().message().find("time zone file " + tmp.Sub("Test/Bad") + " is damaged"),
              std::string::npos)
        << s.status().message();
  }
  keel::testing::WriteFile(tmp.Sub("Test/Bad"), good);
  EXPECT_TRUE(ParseCron("0 9 * * *", "Test/Bad", &zones).ok());
}

}  // namespace
}  // namespace keel::flow
