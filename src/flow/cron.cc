#include "flow/cron.h"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"

namespace keel::flow {

namespace {

using std::chrono::duration_cast;
using std::chrono::floor;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A POSIX TZ rule as found at the end of TZif files: "CET-1CEST,M3.5.0,M10.5.0/3",
// "<+0530>-5:30", "EST5EDT,M3.2.0,M11.1.0", "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1".
class PosixRule {
 public:
  // Returns false if `text` is not a rule this parser understands.
  bool Parse(std::string_view text) {
    p_ = text;
    if (!Name() || !Offset(&std_)) return false;
    std_ = -std_;  // POSIX offsets count west of Greenwich; UTC offsets count east
    if (p_.empty()) return true;
    if (!Name()) return false;
    has_dst_ = true;
    dst_ = std_ + seconds(3600);
    if (!p_.empty() && p_[0] != ',') {
      if (!Offset(&dst_)) return false;
      dst_ = -dst_;
    }
    // A DST name without a rule leaves the rule implementation-defined: refuse.
    if (p_.empty() || p_[0] != ',') return false;
    p_.remove_prefix(1);
    if (!Date(&start_) || !Take(',') || !Date(&end_)) return false;
    return p_.empty();
  }

  seconds OffsetAt(date::sys_seconds t) const {
    if (!has_dst_) return std_;
    int y = static_cast<int>(date::year_month_day{floor<date::days>(t + std_)}.year());
    date::sys_seconds begin = Transition(y, start_, std_);
    date::sys_seconds end = Transition(y, end_, dst_);
    bool dst = begin < end ? (t >= begin && t < end) : (t < end || t >= begin);
    return dst ? dst_ : std_;
  }

 private:
  struct When {
    char kind = 'M';  // 'M' month.week.day, 'J' 1-365 without Feb 29, 'N' 0-365 with it
    int month = 0, week = 0, weekday = 0, day = 0;
    seconds time = seconds(7200);
  };

  bool Take(char c) {
    if (p_.empty() || p_[0] != c) return false;
    p_.remove_prefix(1);
    return true;
  }
  bool Number(int* out, int max) {
    size_t n = 0;
    int v = 0;
    while (n < p_.size() && p_[n] >= '0' && p_[n] <= '9' && n < 4) v = v * 10 + (p_[n++] - '0');
    if (n == 0 || v > max) return false;
    p_.remove_prefix(n);
    *out = v;
    return true;
  }
  bool Name() {
    size_t n = 0;
    if (Take('<')) {
      while (n < p_.size() && p_[n] != '>') ++n;
      if (n == p_.size()) return false;
      p_.remove_prefix(n + 1);
      return true;
    }
    while (n < p_.size() && ((p_[n] >= 'A' && p_[n] <= 'Z') || (p_[n] >= 'a' && p_[n] <= 'z'))) {
      ++n;
    }
    if (n < 3) return false;
    p_.remove_prefix(n);
    return true;
  }
  // [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 allows that much for transition times).
  bool Offset(seconds* out) {
    int sign = 1;
    if (Take('-'))
      sign = -1;
    else
      Take('+');
    int h = 0, m = 0, sec = 0;
    if (!Number(&h, 167)) return false;
    if (Take(':')) {
      if (!Number(&m, 59)) return false;
      if (Take(':') && !Number(&sec, 59)) return false;
    }
    *out = seconds(sign * (h * 3600 + m * 60 + sec));
    return true;
  }
  bool Date(When* w) {
    if (Take('M')) {
      w->kind = 'M';
      if (!Number(&w->month, 12) || w->month < 1 || !Take('.') || !Number(&w->week, 5) ||
          w->week < 1 || !Take('.') || !Number(&w->weekday, 6)) {
        return false;
      }
    } else if (Take('J')) {
      w->kind = 'J';
      if (!Number(&w->day, 365) || w->day < 1) return false;
    } else {
      w->kind = 'N';
      if (!Number(&w->day, 365)) return false;
    }
    if (Take('/')) return Offset(&w->time);
    return true;
  }

  // The instant of transition `w` in year `y`, given in local time of offset `before`.
  static date::sys_seconds Transition(int y, const When& w, seconds before) {
    date::sys_days day;
    if (w.kind == 'M') {
      auto ym = date::year{y} / w.month;
      auto wd = date::weekday{static_cast<unsigned>(w.weekday)};
      if (w.week == 5) {
        day = date::sys_days{ym / wd[date::last]};
      } else {
        day = date::sys_days{ym / wd[static_cast<unsigned>(w.week)]};
      }
    } else {
      day = date::sys_days{date::year{y} / 1 / 1} + date::days(w.day);
      if (w.kind == 'J') {
        day -= date::days(1);
        if (date::year{y}.is_leap() && w.day >= 60) day += date::days(1);
      }
    }
    return day + w.time - before;
  }

  std::string_view p_;
  seconds std_{0}, dst_{0};
  bool has_dst_ = false;
  When start_, end_;
};

}  // namespace

// A time zone read from its TZif file (RFC 8536): the UTC offsets it lists, each in force
// from a transition on, and the POSIX TZ rule the file ends with. Zone files list explicit
// transitions only up to 2037 and leave every later year to that rule, so times from the
// last listed transition on are resolved with the rule (summer time keeps working after
// 2037).
struct CronZone {
  std::vector<int64_t> transitions;  // UTC seconds, ascending
  std::vector<uint8_t> types;        // the offset index in force from transitions[i] on
  std::vector<int32_t> offsets;      // UTC offsets in seconds, by index; offsets[0] before
                                     // the first transition (RFC 8536, 3.2)
  std::optional<PosixRule> rule;     // absent if the file has no rule this parser reads
  date::sys_seconds rule_from;       // the last listed transition (the rule's start)

  seconds OffsetAt(date::sys_seconds t) const {
    if (rule && t >= rule_from) return rule->OffsetAt(t);
    int64_t s = t.time_since_epoch().count();
    auto it = std::upper_bound(transitions.begin(), transitions.end(), s);
    if (it == transitions.begin()) return seconds(offsets[0]);
    return seconds(offsets[types[static_cast<size_t>(it - transitions.begin()) - 1]]);
  }

  // The UTC instant at which local time `l` fires: the first occurrence of a local time
  // that happens twice, or the first valid instant after a gap for one that does not exist.
  date::sys_seconds Resolve(date::local_seconds l) const {
    date::sys_seconds guess{l.time_since_epoch()};
    // Offsets in force well before and after (transitions are never a day apart).
    seconds a = OffsetAt(guess - date::days(1)), b = OffsetAt(guess + date::days(1));
    date::sys_seconds ca = guess - a, cb = guess - b;
    bool va = OffsetAt(ca) == a, vb = OffsetAt(cb) == b;
    if (va && vb) return std::min(ca, cb);  // unique (a == b), or twice: the first
    if (va) return ca;
    if (vb) return cb;
    // In a gap (clocks went forward from a to b): the transition lies in (cb, ca]; find the
    // first second with the new offset.
    date::sys_seconds lo = std::min(ca, cb), hi = std::max(ca, cb);
    while (hi - lo > seconds(1)) {
      date::sys_seconds mid = lo + (hi - lo) / 2;
      if (OffsetAt(mid) == a)
        lo = mid;
      else
        hi = mid;
    }
    return hi;
  }
};

namespace {

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  const std::array<std::string_view, 12>* names;  // value = index + names_base
  int names_base;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 12> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI",
                                                        "SAT", "",    "",    "",    "",    ""};

// Day of week accepts 0-7 (both 0 and 7 are Sunday), folded to 0-6 after parsing.
const FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0},        {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},  {"month", 1, 12, &kMonthNames, 1},
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
    return InvalidArgument(std::string(f.name) + ": '" + std::string(text) + "' is not a number" +
                           hint);
  }
  if (v < f.min || v > f.max) {
    return InvalidArgument(std::string(f.name) + ": " + std::to_string(v) + " is out of range " +
                           std::to_string(f.min) + "-" + std::to_string(f.max));
  }
  return v;
}

// Parses one field ("*/15", "1,15", "MON-FRI", "8-18/2", "5/10") into a bit set.
Result<uint64_t> ParseField(std::string_view field, const FieldSpec& f) {
  uint64_t bits = 0;
  size_t start = 0;
  while (true) {
    size_t comma = field.find(',', start);
    std::string_view item = field.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
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

// A TZif file (RFC 8536) read front to back; every read is bounds-checked.
class TzifReader {
 public:
  explicit TzifReader(std::string_view d) : d_(d) {}
  bool Skip(uint64_t n) {
    if (n > d_.size() - pos_) return false;
    pos_ += static_cast<size_t>(n);
    return true;
  }
  bool Int(int bytes, int64_t* out) {
    if (static_cast<size_t>(bytes) > d_.size() - pos_) return false;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(d_[pos_++]);
    // Sign-extend the big-endian two's complement value.
    if (bytes < 8 && (v >> (bytes * 8 - 1)) != 0) v |= ~uint64_t{0} << (bytes * 8);
    *out = static_cast<int64_t>(v);
    return true;
  }
  std::string_view Rest() const { return d_.substr(pos_); }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version = 0;
  int64_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
};

bool ReadHeader(TzifReader* r, TzifHeader* h) {
  std::string_view rest = r->Rest();
  if (rest.size() < 44 || rest.compare(0, 4, "TZif") != 0) return false;
  h->version = rest[4];
  int64_t* counts[] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                       &h->timecnt, &h->typecnt,  &h->charcnt};
  if (!r->Skip(20)) return false;
  for (int64_t* c : counts) {
    if (!r->Int(4, c) || *c < 0) return false;
  }
  return true;
}

// The bytes of a data block after its header, with `time_bytes` per transition time.
uint64_t BlockSize(const TzifHeader& h, int time_bytes) {
  return static_cast<uint64_t>(h.timecnt) * (time_bytes + 1) +
         static_cast<uint64_t>(h.typecnt) * 6 + static_cast<uint64_t>(h.charcnt) +
         static_cast<uint64_t>(h.leapcnt) * (time_bytes + 4) + static_cast<uint64_t>(h.isstdcnt) +
         static_cast<uint64_t>(h.isutcnt);
}

// Parses a TZif file into `z`; the reason when it is damaged.
Status ParseTzif(std::string_view data, CronZone* z) {
  TzifReader r(data);
  TzifHeader h;
  if (!ReadHeader(&r, &h)) return DataLoss("no TZif header");
  int time_bytes = 4;
  if (h.version >= '2') {
    // Version 2+ repeats the data with 64-bit times after the version 1 block: skip that.
    if (!r.Skip(BlockSize(h, 4)) || !ReadHeader(&r, &h)) {
      return DataLoss("the version 1 data block is cut short");
    }
    time_bytes = 8;
  }
  if (h.typecnt < 1 || h.typecnt > 256 || h.charcnt < 1 ||
      (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) || (h.isutcnt != 0 && h.isutcnt != h.typecnt)) {
    return DataLoss("impossible counts in the header");
  }
  if (h.leapcnt != 0) {
    return InvalidArgument(
        "leap-second zones (right/...) are not supported; use the zone's own "
        "name");
  }
  if (BlockSize(h, time_bytes) > r.Rest().size()) return DataLoss("the data block is cut short");
  int64_t v = 0;
  for (int64_t i = 0; i < h.timecnt; ++i) {
    if (!r.Int(time_bytes, &v)) return DataLoss("cut short");
    if (!z->transitions.empty() && v <= z->transitions.back()) {
      return DataLoss("transition times are not in ascending order");
    }
    z->transitions.push_back(v);
  }
  for (int64_t i = 0; i < h.timecnt; ++i) {
    if (!r.Int(1, &v)) return DataLoss("cut short");
    uint8_t type = static_cast<uint8_t>(v);
    if (type >= h.typecnt)
      return DataLoss("a transition names a local time type that is not there");
    z->types.push_back(type);
  }
  for (int64_t i = 0; i < h.typecnt; ++i) {
    int64_t utoff = 0, isdst = 0, desig = 0;
    if (!r.Int(4, &utoff) || !r.Int(1, &isdst) || !r.Int(1, &desig)) return DataLoss("cut short");
    // RFC 8536: offsets within (-25 h, 26 h).
    if (utoff <= -25 * 3600 || utoff >= 26 * 3600 || (isdst & 0xff) > 1 ||
        (desig & 0xff) >= h.charcnt) {
      return DataLoss("a local time type is out of range");
    }
    z->offsets.push_back(static_cast<int32_t>(utoff));
  }
  if (!r.Skip(static_cast<uint64_t>(h.charcnt + h.isstdcnt + h.isutcnt))) {
    return DataLoss("cut short");
  }
  if (!z->transitions.empty()) {
    // The rule takes over at the last transition that changes the offset: zic also lists
    // transitions that change nothing (one at the end of 32-bit time, 2038-01-19).
    size_t i = z->transitions.size() - 1;
    while (i > 0 && z->offsets[z->types[i]] == z->offsets[z->types[i - 1]]) --i;
    z->rule_from = date::sys_seconds(seconds(z->transitions[i]));
  }
  if (time_bytes == 8) {
    // The footer: "\n<POSIX TZ rule>\n", the rule possibly empty.
    std::string_view f = r.Rest();
    size_t end = f.size() >= 2 ? f.find('\n', 1) : std::string_view::npos;
    if (f.empty() || f[0] != '\n' || end == std::string_view::npos) {
      return DataLoss("no footer after the data block");
    }
    PosixRule rule;
    // A rule this parser cannot read: the listed transitions only, as before 2037.
    if (end > 1 && rule.Parse(f.substr(1, end - 1))) {
      z->rule = rule;
      if (z->transitions.empty()) z->rule_from = date::sys_seconds::min();
    }
  }
  return OkStatus();
}

Status CheckZoneName(const std::string& name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+';
    if (!ok || name.size() > 64 || name.find("..") != std::string::npos || name.empty() ||
        name[0] == '/') {
      return InvalidArgument("time zone \"" + name.substr(0, 64) +
                             "\" is not an IANA zone name like Europe/Paris");
    }
  }
  return OkStatus();
}

Status UnknownZone(const std::string& name) {
  return InvalidArgument("unknown time zone \"" + name +
                         "\" (an IANA name like Europe/Paris or America/New_York, or UTC)");
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
    if (!possible)
      return InvalidArgument("the schedule can never fire (no such day in the months given)");
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

ZoneDb::ZoneDb(FileSystem* fs, std::string root) : fs_(fs), root_(std::move(root)) {}
ZoneDb::~ZoneDb() = default;

Result<std::shared_ptr<const CronZone>> ZoneDb::Locate(const std::string& name) {
  KEEL_RETURN_IF_ERROR(CheckZoneName(name));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = zones_.find(name);
  if (it != zones_.end()) return it->second;
  auto zone = std::make_shared<CronZone>();
  // Not zones to schedule in: the copies under posix/ and right/ (leap seconds) and the
  // placeholders Factory and posixrules.
  if (name.rfind("posix/", 0) == 0 || name.rfind("right/", 0) == 0 || name == "Factory" ||
      name == "posixrules") {
    return UnknownZone(name);
  }
  if (name == "UTC") {
    zone->offsets = {0};  // needs no file: a schedule without a zone works anywhere
  } else {
    const std::string path = JoinPath(root_, name);
    auto data = fs_->ReadFile(path, kMaxZoneFileBytes);
    if (!data.ok()) {
      // Missing, a folder ("Europe") or far too large: not a zone.
      StatusCode code = data.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) {
        return UnknownZone(name);
      }
      return data.status().WithContext("reading time zone " + name);
    }
    // The zone folder holds other files too (zone.tab, leapseconds): not zones.
    if (data->compare(0, 4, "TZif") != 0) return UnknownZone(name);
    if (Status st = ParseTzif(*data, zone.get()); !st.ok()) {
      if (st.code() == StatusCode::kInvalidArgument) {
        return InvalidArgument("time zone \"" + name + "\": " + st.message());
      }
      return DataLoss("time zone file " + path + " is damaged: " + st.message() +
                      " (reinstall the tzdata package)");
    }
  }
  zones_.emplace(name, zone);
  return std::shared_ptr<const CronZone>(std::move(zone));
}

ZoneDb* SystemZoneDb() {
  static ZoneDb* db = new ZoneDb(DefaultFileSystem());
  return db;
}

Result<CronSchedule> ParseCron(std::string_view expr, std::string_view time_zone, ZoneDb* zones) {
  CronSchedule s;
  s.expr = std::string(expr);
  Status st = ParseFields(expr, &s);
  if (!st.ok()) return InvalidArgument("cron \"" + std::string(expr) + "\": " + st.message());
  s.time_zone = time_zone.empty() ? "UTC" : std::string(time_zone);
  KEEL_ASSIGN_OR_RETURN(s.zone, zones->Locate(s.time_zone));
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
    auto local = floor<minutes>(date::local_seconds{
                     (after_s + s.zone->OffsetAt(after_s)).time_since_epoch()}) +
                 minutes(1);
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
      auto lm = date::local_days{date::year{m.year} / m.month / m.day} +
                std::chrono::hours(m.hour) + minutes(m.minute);
      date::sys_seconds fire = s.zone->Resolve(date::local_seconds{lm});
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
    return Internal("computing the next fire time of \"" + s.expr + "\" in " + s.time_zone + ": " +
                    e.what());
  }
}

}  // namespace keel::flow
