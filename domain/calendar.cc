// Working-day calendar: year files → validated flags → prefix sums (see domain/calendar.h).
//
// Year file grammar (JSON object, unknown keys rejected):
//   year: int                      must equal the file name's year
//   source: string                 the notice, e.g. 国务院办公厅关于2026年部分节假日安排的通知
//   note: string                   optional
//   working_days: int              optional cross-check of the computed count
//   off: [ {name: string, from: date, to: date} ]            off days, inclusive ranges
//   make_up_work_days: [ date ]                              weekend days that are worked
#include "domain/calendar.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <nlohmann/json.hpp>

namespace gridledger::domain {
namespace {

using nlohmann::json;

// Howard Hinnant's days_from_civil / civil_from_days (public domain), proleptic Gregorian.
constexpr int64_t DaysFromCivil(int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}
static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(2025, 1, 1) == 20089);

struct Civil {
  int year;
  int month;
  int day;
};

constexpr Civil CivilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_index = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * month_index + 2) / 5 + 1);
  const int month = static_cast<int>(month_index < 10 ? month_index + 3 : month_index - 9);
  return Civil{static_cast<int>(year_of_era + era * 400 + (month <= 2 ? 1 : 0)), month, day};
}
static_assert(CivilFromDays(20089).year == 2025 && CivilFromDays(20089).day == 1);

constexpr bool IsLeapYear(int year) {
  return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

constexpr int DaysInMonth(int year, int month) {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// ---- data file helpers --------------------------------------------------------------------------

int LineAtByte(std::string_view text, size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + byte, '\n'));
}

// Best effort: the line of the `occurrence`-th appearance of the JSON string `value`; 0 if absent.
int LineOfString(std::string_view text, std::string_view value, int occurrence = 1) {
  const std::string needle = "\"" + std::string(value) + "\"";
  size_t at = std::string_view::npos;
  size_t from = 0;
  for (int i = 0; i < occurrence; ++i) {
    at = text.find(needle, from);
    if (at == std::string_view::npos) return 0;
    from = at + 1;
  }
  return LineAtByte(text, at);
}

struct FileContext {
  std::string file;
  std::string_view text;

  DataFileError Error(std::string field, std::string rule, const std::string& what,
                      int line = 0) const {
    std::string message = file;
    if (line > 0) message += ":" + std::to_string(line);
    if (!field.empty()) message += ": " + field;
    message += ": " + what;
    return DataFileError{file, line, std::move(field), std::move(rule), std::move(message)};
  }
};

std::optional<DataFileError> CheckKeys(const FileContext& context, const json& object,
                                       std::string_view path,
                                       std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::string field = path.empty() ? key : std::string(path) + "." + key;
      return context.Error(field, "unknown_field", "is not a known key of this file format",
                           LineOfString(context.text, key));
    }
  }
  return std::nullopt;
}

struct YearData {
  std::string file;
  int year = 0;
  std::string source;
  std::optional<int32_t> expected_working_days;
  int32_t working_days = 0;   // computed
  std::vector<Date> off;      // distinct, all in `year`
  std::vector<Date> make_up;  // distinct, all in `year`, weekends, not off
};

// Reads `value` (at JSON path `field`) as a date of `year`; `occurrence` locates it for the line.
std::variant<Date, DataFileError> YearDate(const FileContext& context, const json& value,
                                           const std::string& field, int year) {
  if (!value.is_string()) {
    return context.Error(field, "wrong_type", "must be a date string \"YYYY-MM-DD\"");
  }
  const std::string& text = value.get_ref<const std::string&>();
  const std::optional<Date> date = Date::Parse(text);
  if (!date) {
    return context.Error(field, "bad_date", "\"" + text + "\" is not a real date YYYY-MM-DD",
                         LineOfString(context.text, text));
  }
  if (date->year() != year) {
    return context.Error(field, "year_mismatch",
                         text + " is outside the file's year " + std::to_string(year),
                         LineOfString(context.text, text));
  }
  return *date;
}

// Marks `date` in `seen` (indexed by day of year); errors if it was already there.
std::optional<DataFileError> MarkOnce(const FileContext& context, std::array<uint8_t, 366>& seen,
                                      Date date, int year, const std::string& field) {
  const int day_of_year = date.days_since_epoch() - static_cast<int32_t>(DaysFromCivil(year, 1, 1));
  if (seen[day_of_year] != 0) {
    const std::string text = date.ToString();
    return context.Error(field, "duplicate_date", text + " is listed more than once",
                         LineOfString(context.text, text, 2));
  }
  seen[day_of_year] = 1;
  return std::nullopt;
}

std::optional<DataFileError> ParseOffRanges(const FileContext& context, const json& off,
                                            YearData& data, std::array<uint8_t, 366>& seen) {
  if (!off.is_array()) return context.Error("off", "wrong_type", "must be an array of ranges");
  if (off.size() > static_cast<size_t>(kOffRangesMax)) {
    return context.Error("off", "bad_value",
                         "has more than " + std::to_string(kOffRangesMax) + " ranges");
  }
  for (size_t i = 0; i < off.size(); ++i) {
    const std::string path = "off[" + std::to_string(i) + "]";
    const json& range = off[i];
    if (!range.is_object()) {
      return context.Error(path, "wrong_type", "must be an object {name, from, to}");
    }
    if (auto error = CheckKeys(context, range, path, {"name", "from", "to"})) return error;
    for (const char* key : {"name", "from", "to"}) {
      if (!range.contains(key)) {
        return context.Error(path + "." + key, "missing_field", "is required");
      }
    }
    if (!range["name"].is_string() || range["name"].get_ref<const std::string&>().empty()) {
      return context.Error(path + ".name", "wrong_type", "must be a non-empty string");
    }
    auto from = YearDate(context, range["from"], path + ".from", data.year);
    if (auto* error = std::get_if<DataFileError>(&from)) return *error;
    auto to = YearDate(context, range["to"], path + ".to", data.year);
    if (auto* error = std::get_if<DataFileError>(&to)) return *error;
    const Date first = std::get<Date>(from);
    const Date last = std::get<Date>(to);
    if (last < first) {
      return context.Error(path, "reversed_range", "\"to\" is before \"from\"",
                           LineOfString(context.text, first.ToString()));
    }
    if (last.days_since_epoch() - first.days_since_epoch() + 1 > kOffRangeDaysMax) {
      return context.Error(path, "range_too_long",
                           "spans more than " + std::to_string(kOffRangeDaysMax) + " days",
                           LineOfString(context.text, first.ToString()));
    }
    for (Date date = first; date <= last; date = date.AddDays(1)) {
      if (auto error = MarkOnce(context, seen, date, data.year, path)) return error;
      data.off.push_back(date);
    }
  }
  return std::nullopt;
}

std::optional<DataFileError> ParseMakeUpDays(const FileContext& context, const json& days,
                                             YearData& data, std::array<uint8_t, 366>& seen) {
  if (!days.is_array()) {
    return context.Error("make_up_work_days", "wrong_type", "must be an array of dates");
  }
  if (days.size() > static_cast<size_t>(kMakeUpDaysMax)) {
    return context.Error("make_up_work_days", "bad_value",
                         "has more than " + std::to_string(kMakeUpDaysMax) + " dates");
  }
  for (size_t i = 0; i < days.size(); ++i) {
    const std::string path = "make_up_work_days[" + std::to_string(i) + "]";
    auto parsed = YearDate(context, days[i], path, data.year);
    if (auto* error = std::get_if<DataFileError>(&parsed)) return *error;
    const Date date = std::get<Date>(parsed);
    const std::string text = date.ToString();
    if (std::find(data.off.begin(), data.off.end(), date) != data.off.end()) {
      return context.Error(path, "holiday_and_make_up",
                           text + " is listed both as off and as worked",
                           LineOfString(context.text, text, 2));
    }
    if (!date.IsWeekend()) {
      return context.Error(
          path, "make_up_not_weekend",
          text + " is a weekday; a make-up working day must be a Saturday or Sunday",
          LineOfString(context.text, text));
    }
    if (auto error = MarkOnce(context, seen, date, data.year, path)) return error;
    data.make_up.push_back(date);
  }
  return std::nullopt;
}

std::optional<DataFileError> ParseHeader(const FileContext& context, const json& root,
                                         int file_year, YearData& data) {
  if (auto error =
          CheckKeys(context, root, "",
                    {"year", "source", "note", "working_days", "off", "make_up_work_days"})) {
    return error;
  }
  for (const char* key : {"year", "source", "off", "make_up_work_days"}) {
    if (!root.contains(key)) return context.Error(key, "missing_field", "is required");
  }
  if (!root["year"].is_number_integer()) {
    return context.Error("year", "wrong_type", "must be an integer");
  }
  if (root["year"].get<int64_t>() != file_year) {
    return context.Error(
        "year", "year_mismatch",
        "is " + root["year"].dump() + " but the file name says " + std::to_string(file_year));
  }
  data.year = file_year;
  if (!root["source"].is_string() || root["source"].get_ref<const std::string&>().empty()) {
    return context.Error("source", "wrong_type", "must name the notice (non-empty string)");
  }
  data.source = root["source"].get<std::string>();
  if (root.contains("note") && !root["note"].is_string()) {
    return context.Error("note", "wrong_type", "must be a string");
  }
  if (root.contains("working_days")) {
    const json& count = root["working_days"];
    if (!count.is_number_integer() || count.get<int64_t>() < 0 || count.get<int64_t>() > 366) {
      return context.Error("working_days", "wrong_type", "must be an integer in [0, 366]");
    }
    data.expected_working_days = count.get<int32_t>();
  }
  return std::nullopt;
}

std::optional<int> YearFromFileName(const std::string& file) {
  const std::string name = std::filesystem::path(file).filename().string();
  if (name.size() != 9 || name.substr(4) != ".json") return std::nullopt;
  int year = 0;
  for (int i = 0; i < 4; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    year = year * 10 + (name[i] - '0');
  }
  if (year < kCalendarYearMin || year > kCalendarYearMax) return std::nullopt;
  return year;
}

// Monday–Friday of the year, minus the off days that fall on weekdays, plus the make-up days.
int32_t CountWorkingDays(const YearData& data) {
  const Date first = *Date::FromCivil(data.year, 1, 1);
  const Date last = *Date::FromCivil(data.year, 12, 31);
  int32_t count = 0;
  for (Date date = first; date <= last; date = date.AddDays(1)) count += date.IsWeekend() ? 0 : 1;
  for (Date date : data.off) count -= date.IsWeekend() ? 0 : 1;
  return count + static_cast<int32_t>(data.make_up.size());
}

std::variant<YearData, DataFileError> ParseYearFile(const std::string& file,
                                                    std::string_view text) {
  const FileContext context{file, text};
  const std::optional<int> file_year = YearFromFileName(file);
  if (!file_year) {
    return context.Error("", "bad_file_name",
                         "a calendar year file must be named YYYY.json with YYYY in [" +
                             std::to_string(kCalendarYearMin) + ", " +
                             std::to_string(kCalendarYearMax) + "]");
  }
  if (static_cast<int64_t>(text.size()) > kCalendarFileBytesMax) {
    return context.Error("", "too_large",
                         "exceeds " + std::to_string(kCalendarFileBytesMax) + " bytes");
  }
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {  // the library's only way to report a position
    return context.Error("", "malformed_json", e.what(), LineAtByte(text, e.byte));
  }
  if (!root.is_object()) return context.Error("", "wrong_type", "must be a JSON object");
  YearData data;
  data.file = file;
  std::array<uint8_t, 366> seen{};
  if (auto error = ParseHeader(context, root, *file_year, data)) return *error;
  if (auto error = ParseOffRanges(context, root["off"], data, seen)) return *error;
  if (auto error = ParseMakeUpDays(context, root["make_up_work_days"], data, seen)) return *error;
  data.working_days = CountWorkingDays(data);
  if (data.expected_working_days && *data.expected_working_days != data.working_days) {
    return context.Error("working_days", "working_days_mismatch",
                         "says " + std::to_string(*data.expected_working_days) +
                             " but the listed days give " + std::to_string(data.working_days),
                         LineOfString(text, "working_days"));
  }
  return data;
}

// The sorted years must be distinct and contiguous, so that "loaded" is one interval of dates.
std::optional<DataFileError> CheckYearSet(const std::vector<YearData>& years) {
  for (size_t i = 1; i < years.size(); ++i) {
    if (years[i].year == years[i - 1].year) {
      return DataFileError{years[i].file, 0, "year", "duplicate_year",
                           years[i].file + ": year " + std::to_string(years[i].year) +
                               " is also given by " + years[i - 1].file};
    }
    if (years[i].year != years[i - 1].year + 1) {
      return DataFileError{years[i].file, 0, "year", "years_not_contiguous",
                           years[i].file + ": years must be contiguous, but " +
                               std::to_string(years[i - 1].year + 1) + " is missing before " +
                               std::to_string(years[i].year)};
    }
  }
  return std::nullopt;
}

std::variant<std::string, DataFileError> ReadFile(const std::filesystem::path& path) {
  const std::string file = path.string();
  const FileContext context{file, {}};
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return context.Error("", "unreadable", ec.message());
  if (size > static_cast<uintmax_t>(kCalendarFileBytesMax)) {
    return context.Error("", "too_large",
                         "exceeds " + std::to_string(kCalendarFileBytesMax) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return context.Error("", "unreadable", "could not be opened");
  std::string contents(static_cast<size_t>(size), '\0');
  in.read(contents.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) {
    return context.Error("", "unreadable", "could not be read completely");
  }
  return contents;
}

}  // namespace

// ---- Date ---------------------------------------------------------------------------------------

std::optional<Date> Date::FromCivil(int year, int month, int day) {
  if (year < kYearMin || year > kYearMax || month < 1 || month > 12) return std::nullopt;
  if (day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
  return Date(static_cast<int32_t>(DaysFromCivil(year, month, day)));
}

std::optional<Date> Date::Parse(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto number = [&](size_t at, size_t length) -> int {
    int value = 0;
    for (size_t i = at; i < at + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const int year = number(0, 4);
  const int month = number(5, 2);
  const int day = number(8, 2);
  if (year < 0 || month < 0 || day < 0) return std::nullopt;
  return FromCivil(year, month, day);
}

std::string Date::ToString() const {
  const Civil civil = CivilFromDays(days_);
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02d", civil.year, civil.month, civil.day);
  return buffer;
}

int Date::year() const { return CivilFromDays(days_).year; }
int Date::month() const { return CivilFromDays(days_).month; }
int Date::day() const { return CivilFromDays(days_).day; }

Weekday Date::weekday() const {
  // 1970-01-01 was a Thursday (ISO 4).
  const int64_t monday_based = ((int64_t{days_} % 7) + 7 + 3) % 7;
  return static_cast<Weekday>(monday_based + 1);
}

// ---- WorkingCalendar ----------------------------------------------------------------------------

CalendarLoadResult WorkingCalendar::Load(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    return DataFileError{dir, 0, "", "no_such_directory",
                         dir + ": cannot list the calendar directory: " + ec.message()};
  }
  std::vector<std::filesystem::path> paths;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && it->path().extension() == ".json") paths.push_back(it->path());
    if (paths.size() > static_cast<size_t>(kCalendarYearsMax)) break;  // refused in FromTexts
  }
  if (ec) {
    return DataFileError{dir, 0, "", "unreadable", dir + ": listing failed: " + ec.message()};
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& path : paths) {
    auto read = ReadFile(path);
    if (auto* error = std::get_if<DataFileError>(&read)) return *error;
    files.emplace_back(path.string(), std::move(std::get<std::string>(read)));
  }
  if (files.empty()) {
    return DataFileError{dir, 0, "", "no_year_files",
                         dir + ": no calendar year file (YYYY.json) found"};
  }
  return FromTexts(files);
}

CalendarLoadResult WorkingCalendar::FromTexts(
    const std::vector<std::pair<std::string, std::string>>& files) {
  if (files.empty()) {
    return DataFileError{"", 0, "", "no_year_files", "no calendar year file given"};
  }
  if (files.size() > static_cast<size_t>(kCalendarYearsMax)) {
    return DataFileError{files.front().first, 0, "", "too_many_years",
                         "more than " + std::to_string(kCalendarYearsMax) + " calendar years"};
  }
  std::vector<YearData> years;
  for (const auto& [file, text] : files) {
    auto parsed = ParseYearFile(file, text);
    if (auto* error = std::get_if<DataFileError>(&parsed)) return *error;
    years.push_back(std::move(std::get<YearData>(parsed)));
  }
  std::sort(years.begin(), years.end(),
            [](const YearData& a, const YearData& b) { return a.year < b.year; });
  if (auto error = CheckYearSet(years)) return *error;

  WorkingCalendar calendar;
  calendar.first_day_ = *Date::FromCivil(years.front().year, 1, 1);
  calendar.last_day_ = *Date::FromCivil(years.back().year, 12, 31);
  const int32_t day_count =
      calendar.last_day_.days_since_epoch() - calendar.first_day_.days_since_epoch() + 1;
  std::vector<uint8_t> working(day_count);
  for (int32_t i = 0; i < day_count; ++i) {
    working[i] = calendar.first_day_.AddDays(i).IsWeekend() ? 0 : 1;
  }
  auto offset = [&](Date date) {
    return date.days_since_epoch() - calendar.first_day_.days_since_epoch();
  };
  for (const YearData& year : years) {
    for (Date date : year.off) working[offset(date)] = 0;
    for (Date date : year.make_up) working[offset(date)] = 1;
  }
  calendar.working_before_.resize(day_count + 1);
  for (int32_t i = 0; i < day_count; ++i) {
    calendar.working_before_[i + 1] = calendar.working_before_[i] + working[i];
    if (working[i] != 0) calendar.working_day_offsets_.push_back(i);
  }
  for (const YearData& year : years) {
    const int32_t begin = offset(*Date::FromCivil(year.year, 1, 1));
    const int32_t end = offset(*Date::FromCivil(year.year, 12, 31)) + 1;
    const int32_t count = calendar.working_before_[end] - calendar.working_before_[begin];
    // Each year's count depends on its own file only; ParseYearFile computed it the same way.
    if (count != year.working_days) {
      return DataFileError{year.file, 0, "", "internal",
                           year.file + ": prefix sums disagree with the per-year count"};
    }
    calendar.years_.push_back(CalendarYearInfo{year.year, year.file, year.source, count,
                                               static_cast<int32_t>(year.off.size()),
                                               static_cast<int32_t>(year.make_up.size())});
  }
  return calendar;
}

int WorkingCalendar::MissingYear(Date lo) const {
  // Either some date before the first loaded day is needed (lo is the earliest), or lo is covered
  // and the interval runs past the last loaded day, so the year after it is the earliest missing
  // one.
  if (Covers(lo)) return years_.back().year + 1;
  return lo.year();
}

CalendarAnswer<bool> WorkingCalendar::IsWorkingDay(Date date) const {
  if (!Covers(date)) return CalendarAnswer<bool>::Missing(MissingYear(date));
  const int32_t i = date.days_since_epoch() - first_day_.days_since_epoch();
  return {working_before_[i + 1] != working_before_[i], 0};
}

CalendarAnswer<int32_t> WorkingCalendar::WorkingDaysIn(Date from_exclusive,
                                                       Date to_inclusive) const {
  if (to_inclusive <= from_exclusive) return {0, 0};
  const Date lo = from_exclusive.AddDays(1);
  if (!Covers(lo) || !Covers(to_inclusive)) {
    return CalendarAnswer<int32_t>::Missing(MissingYear(lo));
  }
  const int32_t base = first_day_.days_since_epoch();
  return {working_before_[to_inclusive.days_since_epoch() - base + 1] -
              working_before_[lo.days_since_epoch() - base],
          0};
}

CalendarAnswer<Date> WorkingCalendar::AddWorkingDays(Date start, int32_t n) const {
  if (n <= 0) return {start, 0};
  const Date lo = start.AddDays(1);
  if (!Covers(lo)) return CalendarAnswer<Date>::Missing(MissingYear(lo));
  // Working days before lo, plus n: the index of the n-th working day on or after lo.
  const int64_t index =
      int64_t{working_before_[lo.days_since_epoch() - first_day_.days_since_epoch()]} + n - 1;
  if (index >= static_cast<int64_t>(working_day_offsets_.size())) {
    return CalendarAnswer<Date>::Missing(years_.back().year + 1);
  }
  return {first_day_.AddDays(working_day_offsets_[index]), 0};
}

std::optional<int> WorkingCalendar::FirstLoadedYear() const {
  if (years_.empty()) return std::nullopt;
  return years_.front().year;
}

std::optional<int> WorkingCalendar::LastLoadedYear() const {
  if (years_.empty()) return std::nullopt;
  return years_.back().year;
}

std::optional<int32_t> WorkingCalendar::WorkingDaysInYear(int year) const {
  for (const CalendarYearInfo& info : years_) {
    if (info.year == year) return info.working_days;
  }
  return std::nullopt;
}

}  // namespace gridledger::domain
