#include "flow/cron.h"

#include <date/tz.h>

#include <array>
#include <charconv>
#include <chrono>
#include <string>
#include <vector>

namespace keel::flow {

namespace {

using std::chrono::duration_cast;
using std::chrono::floor;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  const std::array<std::string_view, 12>* names;  // value = index + names_base
  int names_base;
};

constexpr std::array<std::string_view, 12> kMonthNames = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 12> kDayNames = {"SUN", "MON", "TUE", "WED", "THU",
                                                        "FRI", "SAT", "",    "",    "",
                                                        "",    ""};

// Day of week accepts 0-7 (both 0 and 7 are Sunday), folded to 0-6 after parsing.
const FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},
    {"month", 1, 12, &kMonthNames, 1},
    {"day of week", 0, 7, &kDayNames, 0},
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

Result<int> ParseValue(std::string_view text, const FieldSpec& f) {
  if (text.empty()) return InvalidArgument(std::string(f.name) + ": missing value");
  if (f.names) {
    std::string up = Upper(text);
    for (size_t i = 0; i < f.names->size(); ++i) {
      if (!(*f.names)[i].empty() && (*f.names)[i] == up) return static_cast<int>(i) + f.names_base;
    }
  }
  int v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    std::string hint = f.names == &kMonthNames ? " (use 1-12 or JAN-DEC)"
                       : f.names == &kDayNames ? " (use 0-7 or SUN-SAT)"
                                               : "";
    return InvalidArgument(std::string(f.name) + ": '" + std::string(text) +
                           "' is not a number" + hint);
  }
  if (v < f.min || v > f.max) {
    return InvalidArgument(std::string(f.name) + ": " + std::to_string(v) +
                           " is out of range " + std::to_string(f.min) + "-" +
                           std::to_string(f.max));
  }
  return v;
}

// Parses one field ("*/15", "1,15", "MON-FRI", "8-18/2", "5/10") into a bit set.
Result<uint64_t> ParseField(std::string_view field, const FieldSpec& f) {
  uint64_t bits = 0;
  size_t start = 0;
  while (true) {
    size_t comma = field.find(',', start);
    std::string_view item =
        field.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                            : comma - start);
    if (item.empty()) return InvalidArgument(std::string(f.name) + ": empty list item");
    int step = 1;
    size_t slash = item.find('/');
    std::string_view range = item.substr(0, slash);
    bool stepped = slash != std::string_view::npos;
    if (stepped) {
      std::string_view st = item.substr(slash + 1);
      auto r = std::from_chars(st.data(), st.data() + st.size(), step);
      if (st.empty() || r.ec != std::errc() || r.ptr != st.data() + st.size() || step < 1 ||
          step > f.max) {
        return InvalidArgument(std::string(f.name) + ": step '" + std::string(st) +
                               "' must be a number from 1 to " + std::to_string(f.max));
      }
    }
    int lo = 0, hi = 0;
    if (range == "*") {
      lo = f.min;
      hi = f.max;
      if (&f == &kFields[4]) hi = 6;  // '*' in day of week: Sunday once, not twice
    } else {
      size_t dash = range.find('-');
      KEEL_ASSIGN_OR_RETURN(lo, ParseValue(range.substr(0, dash), f));
      if (dash != std::string_view::npos) {
        KEEL_ASSIGN_OR_RETURN(hi, ParseValue(range.substr(dash + 1), f));
        if (hi < lo) {
          return InvalidArgument(std::string(f.name) + ": range '" + std::string(range) +
                                 "' ends before it starts");
        }
      } else {
        hi = stepped ? f.max : lo;  // "5/10" means 5-max/10, as in cronie
      }
    }
    for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << v;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return bits;
}

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2) {
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

// The lowest set bit of `mask` at or above `from`, or -1.
int NextBit(uint64_t mask, int from) {
  if (from >= 64) return -1;
  uint64_t m = mask & (~uint64_t{0} << from);
  return m ? __builtin_ctzll(m) : -1;
}

std::string_view Macro(std::string_view e) {
  if (e == "@hourly") return "0 * * * *";
  if (e == "@daily" || e == "@midnight") return "0 0 * * *";
  if (e == "@weekly") return "0 0 * * 0";
  if (e == "@monthly") return "0 0 1 * *";
  if (e == "@yearly" || e == "@annually") return "0 0 1 1 *";
  return {};
}

Result<const date::time_zone*> LocateZone(std::string_view name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+';
    if (!ok || name.size() > 64) {
      return InvalidArgument("time zone \"" + std::string(name.substr(0, 64)) +
                             "\" is not an IANA zone name like Europe/Paris");
    }
  }
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return InvalidArgument("unknown time zone \"" + std::string(name) +
                           "\" (an IANA name like Europe/Paris or America/New_York, or UTC)");
  }
}

Status ParseFields(std::string_view e, CronSchedule* s) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < e.size()) {
    while (i < e.size() && (e[i] == ' ' || e[i] == '\t')) ++i;
    size_t start = i;
    while (i < e.size() && e[i] != ' ' && e[i] != '\t') ++i;
    if (i > start) fields.push_back(e.substr(start, i - start));
  }
  if (fields.empty()) return InvalidArgument("empty expression");
  if (fields.size() == 1 && fields[0][0] == '@') {
    std::string_view expanded = Macro(fields[0]);
    if (expanded.empty()) {
      return InvalidArgument("unknown macro " + std::string(fields[0]) +
                             " (known: @hourly @daily @midnight @weekly @monthly @yearly "
                             "@annually)");
    }
    return ParseFields(expanded, s);
  }
  if (fields.size() != 5) {
    return InvalidArgument("needs 5 fields (minute hour day-of-month month day-of-week), got " +
                           std::to_string(fields.size()));
  }
  uint64_t bits[5];
  for (int k = 0; k < 5; ++k) {
    KEEL_ASSIGN_OR_RETURN(bits[k], ParseField(fields[k], kFields[k]));
  }
  s->minutes = bits[0];
  s->hours = static_cast<uint32_t>(bits[1]);
  s->days_of_month = static_cast<uint32_t>(bits[2]);
  s->months = static_cast<uint16_t>(bits[3]);
  uint64_t dow = bits[4];
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & 0x7F;  // 7 is Sunday
  s->days_of_week = static_cast<uint8_t>(dow);
  s->dom_star = fields[2][0] == '*';
  s->dow_star = fields[4][0] == '*';

  // Refuse schedules that can never fire, so NextFire always finds a time. When both day
  // fields are restricted, any weekday gives a match every week. Otherwise some allowed day
  // of month must exist in some allowed month; over the 400-year Gregorian cycle every date
  // falls on every weekday, so the weekday field cannot make it impossible.
  if (s->dom_star || s->dow_star) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!(s->months & (1u << m))) continue;
      int max_day = m == 2 ? 29 : DaysIn(2001, m);
      for (int d = 1; d <= max_day; ++d) {
        if (s->days_of_month & (1u << d)) possible = true;
      }
    }
    if (!possible) return InvalidArgument("the schedule can never fire (no such day in the months given)");
  }
  return OkStatus();
}

// Local calendar time, minute resolution.
struct Local {
  int year, month, day, hour, minute;
};

bool DayMatches(const CronSchedule& s, int y, int m, int d) {
  bool dom = s.days_of_month & (1u << d);
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                           date::day{static_cast<unsigned>(d)}};
  unsigned wd = date::weekday{date::sys_days{ymd}}.c_encoding();
  bool dow = s.days_of_week & (1u << wd);
  if (s.dom_star || s.dow_star) return dom && dow;
  return dom || dow;
}

// The first local minute at or after `t` whose fields match, skipping by field (a month,
// a day, an hour at a time) rather than minute by minute. Returns false past `last_year`.
bool NextMatch(const CronSchedule& s, Local t, int last_year, Local* out) {
  while (t.year <= last_year) {
    if (!(s.months & (1u << t.month))) {
      int m = NextBit(s.months, t.month + 1);
      if (m < 0 || m > 12) {
        ++t.year;
        m = NextBit(s.months, 1);
      }
      t = {t.year, m, 1, 0, 0};
      continue;
    }
    if (t.day > DaysIn(t.year, t.month) || !DayMatches(s, t.year, t.month, t.day)) {
      if (t.day >= DaysIn(t.year, t.month)) {
        t = t.month == 12 ? Local{t.year + 1, 1, 1, 0, 0} : Local{t.year, t.month + 1, 1, 0, 0};
      } else {
        t = {t.year, t.month, t.day + 1, 0, 0};
      }
      continue;
    }
    int h = NextBit(s.hours, t.hour);
    if (h < 0 || h > 23) {
      t.hour = 24;  // past the end of the day
    } else {
      if (h != t.hour) t.minute = 0;
      t.hour = h;
      int mi = NextBit(s.minutes, t.minute);
      if (mi >= 0 && mi <= 59) {
        t.minute = mi;
        *out = t;
        return true;
      }
      ++t.hour;
      t.minute = 0;
    }
    if (t.hour >= 24) {  // next day
      t.hour = 0;
      t.minute = 0;
      if (t.day >= DaysIn(t.year, t.month)) {
        t = t.month == 12 ? Local{t.year + 1, 1, 1, 0, 0} : Local{t.year, t.month + 1, 1, 0, 0};
      } else {
        ++t.day;
      }
    }
  }
  return false;
}

// The first and last instants NextFire accepts: years 1 to 9999.
constexpr int64_t kMinMicros = -62135596800LL * 1000000;
constexpr int64_t kMaxMicros = 253402300799LL * 1000000;

}  // namespace

Result<CronSchedule> ParseCron(std::string_view expr, std::string_view time_zone) {
  CronSchedule s;
  s.expr = std::string(expr);
  Status st = ParseFields(expr, &s);
  if (!st.ok()) return InvalidArgument("cron \"" + std::string(expr) + "\": " + st.message());
  s.time_zone = time_zone.empty() ? "UTC" : std::string(time_zone);
  KEEL_ASSIGN_OR_RETURN(s.zone, LocateZone(s.time_zone));
  return s;
}

Result<int64_t> NextFire(const CronSchedule& s, int64_t after_us) {
  if (!s.zone || !s.minutes || !s.hours || !s.days_of_month || !s.months || !s.days_of_week) {
    return InvalidArgument("cron schedule was not made by ParseCron");
  }
  if (after_us < kMinMicros || after_us >= kMaxMicros) {
    return InvalidArgument("time out of range for schedules (years 1-9999)");
  }
  try {
    auto after_s = floor<seconds>(date::sys_time<microseconds>(microseconds(after_us)));
    auto local = floor<minutes>(s.zone->to_local(after_s)) + minutes(1);
    auto local_day = floor<date::days>(local);
    date::year_month_day ymd{local_day};
    auto hm = duration_cast<minutes>(local - local_day).count();
    Local t{static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
            static_cast<int>(static_cast<unsigned>(ymd.day())), static_cast<int>(hm / 60),
            static_cast<int>(hm % 60)};
    int last_year = t.year + 401;  // the Gregorian calendar repeats every 400 years
    // Each pass either returns or moves past one matching local minute that already fired
    // (its first occurrence was not after `after_us`, in the hour repeated when clocks go
    // back); that hour has at most 60 of them, so the bound is never reached in practice.
    for (int pass = 0; pass < 10000; ++pass) {
      Local m;
      if (!NextMatch(s, t, last_year, &m)) break;
      auto lm = date::local_days{date::year{m.year} / m.month / m.day} + std::chrono::hours(m.hour) +
                minutes(m.minute);
      date::local_info info = s.zone->get_info(lm);
      date::sys_seconds fire;
      if (info.result == date::local_info::nonexistent) {
        fire = info.second.begin;  // the first valid instant after the gap
      } else {  // unique, or ambiguous: the first occurrence
        fire = date::sys_seconds{(lm - info.first.offset).time_since_epoch()};
      }
      int64_t fire_us = duration_cast<microseconds>(fire.time_since_epoch()).count();
      if (fire_us > after_us) return fire_us;
      lm += minutes(1);
      auto d = floor<date::days>(lm);
      date::year_month_day next{d};
      auto nhm = duration_cast<minutes>(lm - d).count();
      t = {static_cast<int>(next.year()), static_cast<int>(static_cast<unsigned>(next.month())),
           static_cast<int>(static_cast<unsigned>(next.day())), static_cast<int>(nhm / 60),
           static_cast<int>(nhm % 60)};
    }
    return InvalidArgument("cron \"" + s.expr + "\": no fire time within 400 years");
  } catch (const std::exception& e) {
    return Internal("computing the next fire time of \"" + s.expr + "\" in " + s.time_zone +
                    ": " + e.what());
  }
}

}  // namespace keel::flow
