// Civil dates in Asia/Shanghai and the working-day calendar (../shared/domain.md, "Working days").
//
// A working day is Monday–Friday, minus the statutory holidays, plus the make-up working days
// (调休) of the State Council's yearly notice. The calendar is data: one file per year under
// domain/data/calendar/ (format in domain/README.md, "Working-day calendar"). Years that are not
// loaded are UNKNOWN and are never guessed: every query that needs a date of an unloaded year
// answers "calendar missing" with the year, so the caller can report the clock as
// `calendar_missing` and monitoring can ask for the notice.
//
// Thread-safety: Date and WorkingCalendar are immutable values; all const methods may be called
// from any number of threads. Nothing here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace gridledger::domain {

// ISO weekday numbers: Monday = 1 … Sunday = 7.
enum class Weekday : uint8_t {
  kMonday = 1,
  kTuesday,
  kWednesday,
  kThursday,
  kFriday,
  kSaturday,
  kSunday
};

// A proleptic Gregorian calendar date without time or zone, stored as days since 1970-01-01.
// Parse/FromCivil accept years 1..9999 only, so ToString() is always "YYYY-MM-DD".
class Date {
 public:
  static constexpr int kYearMin = 1;
  static constexpr int kYearMax = 9999;

  constexpr Date() = default;  // 1970-01-01
  static constexpr Date FromDaysSinceEpoch(int32_t days) { return Date(days); }
  // nullopt unless year is in [kYearMin, kYearMax] and month/day name a real date (2025-02-29 is
  // not).
  static std::optional<Date> FromCivil(int year, int month, int day);
  // Strictly "YYYY-MM-DD" (10 characters, zero padded); nullopt otherwise.
  static std::optional<Date> Parse(std::string_view text);

  std::string ToString() const;
  constexpr int32_t days_since_epoch() const { return days_; }
  int year() const;
  int month() const;
  int day() const;
  Weekday weekday() const;
  bool IsWeekend() const {
    const Weekday w = weekday();
    return w == Weekday::kSaturday || w == Weekday::kSunday;
  }
  constexpr Date AddDays(int32_t days) const { return Date(days_ + days); }

  friend constexpr auto operator<=>(Date, Date) = default;

 private:
  constexpr explicit Date(int32_t days) : days_(days) {}
  int32_t days_ = 0;
};

// China Standard Time is UTC+8 all year (no daylight saving since 1991).
inline constexpr int32_t kShanghaiUtcOffsetMinutes = 8 * 60;
inline constexpr int64_t kShanghaiUtcOffsetUs =
    int64_t{kShanghaiUtcOffsetMinutes} * 60 * 1000 * 1000;
inline constexpr int64_t kDayUs = int64_t{86400} * 1000 * 1000;

// The calendar date in Asia/Shanghai of a Unix time in microseconds. Defined for every int64 value.
constexpr Date LocalDateOf(int64_t unix_us) {
  // Floor division written so that no intermediate overflows, even at the int64 extremes.
  int64_t days = unix_us / kDayUs;
  int64_t rest_us = unix_us % kDayUs;
  if (rest_us < 0) {
    days -= 1;
    rest_us += kDayUs;
  }
  if (rest_us + kShanghaiUtcOffsetUs >= kDayUs) days += 1;
  return Date::FromDaysSinceEpoch(static_cast<int32_t>(days));
}

// Why a data file (calendar year or SLA profile) was refused.
// `rule` is one of: no_such_directory, no_year_files, bad_file_name, unreadable, too_large,
// malformed_json, unknown_field, missing_field, wrong_type, bad_value, bad_date, year_mismatch,
// reversed_range, range_too_long, duplicate_date, holiday_and_make_up, make_up_not_weekend,
// working_days_mismatch, duplicate_year, years_not_contiguous, too_many_years, internal (a bug).
struct DataFileError {
  std::string file;   // path (or name) of the offending file; the directory for directory errors
  int line = 0;       // 1-based line when known (syntax errors, located values), else 0
  std::string field;  // JSON path such as "off[2].to"; empty for file-level errors
  std::string rule;
  std::string message;  // one readable sentence naming the file, field and what was expected
};

// The answer of a calendar query. Either `value` is set, or the query needed a date of a year that
// is not loaded and `missing_year` names the earliest such year. Callers must check ok().
template <typename T>
struct CalendarAnswer {
  std::optional<T> value;
  int missing_year = 0;

  bool ok() const { return value.has_value(); }
  static CalendarAnswer Missing(int year) { return CalendarAnswer{std::nullopt, year}; }
};

// What was loaded for one year, for status pages and monitoring.
struct CalendarYearInfo {
  int year = 0;
  std::string file;  // the file it came from
  std::string source;  // the notice, e.g. 国务院办公厅关于2026年部分节假日安排的通知
  int32_t working_days = 0;  // computed from the data
  int32_t off_days = 0;      // distinct dates listed as off (including those on weekends)
  int32_t make_up_days = 0;
};

class WorkingCalendar;
using CalendarLoadResult = std::variant<WorkingCalendar, DataFileError>;

// Limits on calendar data. A longer range is a typo (a statutory break is at most ~9 days).
inline constexpr int kCalendarYearsMax = 200;
inline constexpr int kCalendarYearMin = 1900;
inline constexpr int kCalendarYearMax = 9999;
inline constexpr int64_t kCalendarFileBytesMax = 64 * 1024;
inline constexpr int kOffRangeDaysMax = 31;
inline constexpr int kOffRangesMax = 64;
inline constexpr int kMakeUpDaysMax = 64;

class WorkingCalendar {
 public:
  // An empty calendar: every query that needs a date answers missing.
  WorkingCalendar() = default;

  // Loads every "YYYY.json" file of `dir` (other extensions are ignored; a .json file with another
  // name is an error). The years must be contiguous. Errors name the file, and the field or line.
  static CalendarLoadResult Load(const std::string& dir);
  // Same validation for in-memory files: pairs of (file name "YYYY.json", JSON text).
  static CalendarLoadResult FromTexts(
      const std::vector<std::pair<std::string, std::string>>& files);

  // Whether `date` is a working day.
  CalendarAnswer<bool> IsWorkingDay(Date date) const;
  // The number of working days in (from_exclusive, to_inclusive]; 0 when to <= from (no date
  // needed). O(1). Only dates inside the interval must be loaded: from may be the last day of the
  // year before.
  CalendarAnswer<int32_t> WorkingDaysIn(Date from_exclusive, Date to_inclusive) const;
  // The date on which `n` working days have elapsed counting `start` as day 0, i.e. the n-th
  // working day after start (2025-09-26 + 7 = 2025-10-13). n <= 0 answers `start` itself. O(1).
  CalendarAnswer<Date> AddWorkingDays(Date start, int32_t n) const;

  bool empty() const { return years_.empty(); }
  std::optional<int> FirstLoadedYear() const;
  // Monitoring alerts when this approaches the current year (the notice comes each November).
  std::optional<int> LastLoadedYear() const;
  // nullopt when `year` is not loaded.
  std::optional<int32_t> WorkingDaysInYear(int year) const;
  const std::vector<CalendarYearInfo>& years() const { return years_; }

 private:
  // The earliest unloaded year among the dates [lo, …] of a query that needs an unloaded date.
  int MissingYear(Date lo) const;
  bool Covers(Date date) const {
    return !years_.empty() && first_day_ <= date && date <= last_day_;
  }

  std::vector<CalendarYearInfo> years_;
  Date first_day_;  // January 1 of the first loaded year
  Date last_day_;   // December 31 of the last loaded year
  // working_before_[i] = working days among the dates [first_day_, first_day_ + i); size days + 1.
  std::vector<int32_t> working_before_;
  // working_day_offsets_[k] = offset from first_day_ of the (k+1)-th working day.
  std::vector<int32_t> working_day_offsets_;
};

}  // namespace gridledger::domain
