// Goal: the working-day calendar answers exactly as the State Council notices for 2025 and 2026
// say, never guesses an unloaded year, refuses bad data files, and its O(1) prefix-sum answers
// equal a naive day-by-day count. Method: load the shipped files from GRIDLEDGER_SOURCE_DATA_DIR;
// check every holiday block's edges and every make-up day by hand-written tables; compare
// WorkingDaysIn/AddWorkingDays against naive loops over seeded random pairs covering 2025–2026;
// write broken year files under a temp dir.
#include "domain/calendar.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace gridledger::domain {
namespace {

Date D(const char* text) {
  const std::optional<Date> date = Date::Parse(text);
  EXPECT_TRUE(date.has_value()) << text;
  return date.value_or(Date());
}

std::string CalendarDir() { return std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar"; }

const WorkingCalendar& Shipped() {
  static const WorkingCalendar calendar = [] {
    CalendarLoadResult result = WorkingCalendar::Load(CalendarDir());
    if (auto* error = std::get_if<DataFileError>(&result)) {
      ADD_FAILURE() << error->message;
      return WorkingCalendar();
    }
    return std::get<WorkingCalendar>(std::move(result));
  }();
  return calendar;
}

bool Working(Date date) {
  const CalendarAnswer<bool> answer = Shipped().IsWorkingDay(date);
  EXPECT_TRUE(answer.ok()) << date.ToString();
  return answer.value.value_or(false);
}

// ---- Date -------------------------------------------------------------------------------------

TEST(CalendarDate, ParsesAndFormatsRoundTrip) {
  for (const char* text :
       {"1970-01-01", "2025-02-28", "2024-02-29", "2026-12-31", "0001-01-01", "9999-12-31"}) {
    const std::optional<Date> date = Date::Parse(text);
    ASSERT_TRUE(date.has_value()) << text;
    EXPECT_EQ(date->ToString(), text);
  }
  EXPECT_EQ(D("1970-01-01").days_since_epoch(), 0);
  EXPECT_EQ(D("2025-01-01").days_since_epoch(), 20089);
  EXPECT_EQ(D("2025-10-13").year(), 2025);
  EXPECT_EQ(D("2025-10-13").month(), 10);
  EXPECT_EQ(D("2025-10-13").day(), 13);
}

TEST(CalendarDate, RejectsMalformedAndUnrealDates) {
  for (const char* text : {"", "2025-1-01", "2025/01/01", "2025-02-29", "2100-02-29", "2025-13-01",
                           "2025-00-10", "2025-04-31", "0000-01-01", "2025-01-01T00:00",
                           "２０２５-01-01", " 2025-01-01", "2025-01-0a"}) {
    EXPECT_FALSE(Date::Parse(text).has_value()) << text;
  }
}

TEST(CalendarDate, ComparesAndKnowsWeekdays) {
  EXPECT_LT(D("2025-12-31"), D("2026-01-01"));
  EXPECT_EQ(D("2026-01-01"), D("2025-12-31").AddDays(1));
  EXPECT_EQ(D("1970-01-01").weekday(), Weekday::kThursday);
  EXPECT_EQ(D("2025-01-01").weekday(), Weekday::kWednesday);
  EXPECT_EQ(D("2025-10-13").weekday(), Weekday::kMonday);
  EXPECT_EQ(D("2026-02-14").weekday(), Weekday::kSaturday);
  EXPECT_EQ(D("1969-12-28").weekday(), Weekday::kSunday);
  EXPECT_TRUE(D("2025-09-28").IsWeekend());
  EXPECT_FALSE(D("2025-09-26").IsWeekend());
}

TEST(CalendarDate, LocalDateOfSwitchesAtShanghaiMidnight) {
  // 2025-12-31T15:59:59Z is 23:59:59 in Shanghai; one second later it is 2026-01-01 00:00:00.
  const int64_t second_us = 1000 * 1000;
  const int64_t before_us =
      (int64_t{D("2025-12-31").days_since_epoch()} * 86400 + 15 * 3600 + 59 * 60 + 59) * second_us;
  EXPECT_EQ(LocalDateOf(before_us), D("2025-12-31"));
  EXPECT_EQ(LocalDateOf(before_us + second_us), D("2026-01-01"));
  EXPECT_EQ(LocalDateOf(before_us + second_us - 1), D("2025-12-31"));
  // Before 1970 (negative times) floors the same way.
  EXPECT_EQ(LocalDateOf(-8 * 3600 * second_us), D("1970-01-01"));
  EXPECT_EQ(LocalDateOf(-8 * 3600 * second_us - 1), D("1969-12-31"));
  // The extremes do not overflow.
  EXPECT_LT(LocalDateOf(INT64_MIN), LocalDateOf(INT64_MAX));
}

// ---- shipped data -----------------------------------------------------------------------------

TEST(CalendarShipped, LoadsBothYearsWith248WorkingDays) {
  const WorkingCalendar& calendar = Shipped();
  EXPECT_EQ(calendar.FirstLoadedYear(), 2025);
  EXPECT_EQ(calendar.LastLoadedYear(), 2026);
  EXPECT_EQ(calendar.WorkingDaysInYear(2025), 248);
  EXPECT_EQ(calendar.WorkingDaysInYear(2026), 248);
  EXPECT_EQ(calendar.WorkingDaysInYear(2027), std::nullopt);
  // The same count through the query API: (Dec 31 of the previous year, Dec 31].
  EXPECT_EQ(calendar.WorkingDaysIn(D("2024-12-31"), D("2025-12-31")).value, 248);
  EXPECT_EQ(calendar.WorkingDaysIn(D("2025-12-31"), D("2026-12-31")).value, 248);
  ASSERT_EQ(calendar.years().size(), 2u);
  EXPECT_NE(calendar.years()[1].source.find("2026年部分节假日安排"), std::string::npos);
}

struct OffBlock {
  const char* first;
  const char* last;
};

// domain.md "Working days": the off blocks of the two notices.
const OffBlock kOffBlocks[] = {
    {"2025-01-01", "2025-01-01"}, {"2025-01-28", "2025-02-04"}, {"2025-04-04", "2025-04-06"},
    {"2025-05-01", "2025-05-05"}, {"2025-05-31", "2025-06-02"}, {"2025-10-01", "2025-10-08"},
    {"2026-01-01", "2026-01-03"}, {"2026-02-15", "2026-02-23"}, {"2026-04-04", "2026-04-06"},
    {"2026-05-01", "2026-05-05"}, {"2026-06-19", "2026-06-21"}, {"2026-09-25", "2026-09-27"},
    {"2026-10-01", "2026-10-07"},
};

const char* const kMakeUpDays[] = {"2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28",
                                   "2025-10-11", "2026-01-04", "2026-02-14", "2026-02-28",
                                   "2026-05-09", "2026-09-20", "2026-10-10"};

bool IsMakeUp(Date date) {
  for (const char* text : kMakeUpDays) {
    if (D(text) == date) return true;
  }
  return false;
}

TEST(CalendarShipped, EveryHolidayBlockEdge) {
  for (const OffBlock& block : kOffBlocks) {
    SCOPED_TRACE(std::string(block.first) + ".." + block.last);
    const Date first = D(block.first);
    const Date last = D(block.last);
    for (Date date = first; date <= last; date = date.AddDays(1)) {
      EXPECT_FALSE(Working(date)) << date.ToString();
    }
    // The neighbours work unless they are a weekend that is not a make-up day. 2025-12-31 and
    // 2026-01-01 are in different blocks' neighbourhoods but both years are loaded.
    for (Date neighbour : {first.AddDays(-1), last.AddDays(1)}) {
      if (neighbour.year() < 2025 || neighbour.year() > 2026) continue;
      const bool expected = !neighbour.IsWeekend() || IsMakeUp(neighbour);
      EXPECT_EQ(Working(neighbour), expected) << neighbour.ToString();
    }
  }
}

TEST(CalendarShipped, EveryMakeUpDayIsWorkedAndIsAWeekend) {
  for (const char* text : kMakeUpDays) {
    EXPECT_TRUE(D(text).IsWeekend()) << text;
    EXPECT_TRUE(Working(D(text))) << text;
  }
}

TEST(CalendarShipped, CheckCaseSeptember26PlusSevenIsOctober13) {
  const CalendarAnswer<Date> answer = Shipped().AddWorkingDays(D("2025-09-26"), 7);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(*answer.value, D("2025-10-13"));
  EXPECT_EQ(Shipped().WorkingDaysIn(D("2025-09-26"), D("2025-10-13")).value, 7);
  EXPECT_EQ(Shipped().AddWorkingDays(D("2025-09-26"), 0).value, D("2025-09-26"));
  EXPECT_EQ(Shipped().AddWorkingDays(D("2025-09-26"), 1).value, D("2025-09-28"));
  // From a holiday, day 1 is the first working day after it.
  EXPECT_EQ(Shipped().AddWorkingDays(D("2025-10-01"), 1).value, D("2025-10-09"));
  // Across the year boundary.
  EXPECT_EQ(Shipped().AddWorkingDays(D("2025-12-31"), 1).value, D("2026-01-04"));
}

TEST(CalendarShipped, EmptyAndReversedIntervalsCountZero) {
  EXPECT_EQ(Shipped().WorkingDaysIn(D("2025-03-03"), D("2025-03-03")).value, 0);
  EXPECT_EQ(Shipped().WorkingDaysIn(D("2025-03-05"), D("2025-03-03")).value, 0);
  EXPECT_EQ(Shipped().WorkingDaysIn(D("2030-03-05"), D("2030-03-03")).value, 0);
}

// Property: the prefix sums agree with a day-by-day loop for random pairs over 2025–2026, and
// AddWorkingDays inverts WorkingDaysIn.
TEST(CalendarShipped, PrefixSumsMatchNaiveLoopOnRandomPairs) {
  const WorkingCalendar& calendar = Shipped();
  const Date first = D("2025-01-01");
  const Date last = D("2026-12-31");
  const int32_t span = last.days_since_epoch() - first.days_since_epoch();
  std::mt19937 random(20250926);
  std::uniform_int_distribution<int32_t> offset(-1, span);  // from may be 2024-12-31
  for (int trial = 0; trial < 20000; ++trial) {
    Date from = first.AddDays(offset(random));
    Date to = first.AddDays(offset(random));
    if (to < from) std::swap(from, to);
    if (to < first) continue;
    int32_t naive = 0;
    for (Date date = from.AddDays(1); date <= to; date = date.AddDays(1)) {
      naive += *calendar.IsWorkingDay(date).value ? 1 : 0;
    }
    const CalendarAnswer<int32_t> fast = calendar.WorkingDaysIn(from, to);
    ASSERT_TRUE(fast.ok()) << from.ToString() << " " << to.ToString();
    ASSERT_EQ(*fast.value, naive) << from.ToString() << " " << to.ToString();

    const CalendarAnswer<Date> added = calendar.AddWorkingDays(from, naive);
    ASSERT_TRUE(added.ok());
    ASSERT_LE(*added.value, to);
    ASSERT_EQ(calendar.WorkingDaysIn(from, *added.value).value, naive);
    if (naive > 0) {
      ASSERT_TRUE(*calendar.IsWorkingDay(*added.value).value) << added.value->ToString();
    }
  }
}

// ---- never guess ------------------------------------------------------------------------------

TEST(CalendarMissing, UnloadedYearsAreReportedNotGuessed) {
  const WorkingCalendar& calendar = Shipped();
  EXPECT_FALSE(calendar.IsWorkingDay(D("2027-01-04")).ok());
  EXPECT_EQ(calendar.IsWorkingDay(D("2027-01-04")).missing_year, 2027);
  EXPECT_EQ(calendar.IsWorkingDay(D("2024-12-31")).missing_year, 2024);

  // A span crossing into 2027.
  const CalendarAnswer<int32_t> crossing = calendar.WorkingDaysIn(D("2026-12-20"), D("2027-01-05"));
  EXPECT_FALSE(crossing.ok());
  EXPECT_EQ(crossing.missing_year, 2027);
  // A span starting in 2024 (the exclusive start alone may be unloaded, the next day may not).
  EXPECT_EQ(calendar.WorkingDaysIn(D("2024-12-30"), D("2025-01-05")).missing_year, 2024);
  EXPECT_TRUE(calendar.WorkingDaysIn(D("2024-12-31"), D("2025-01-05")).ok());
  // Up to the last loaded day is fine; one more is not.
  EXPECT_TRUE(calendar.WorkingDaysIn(D("2026-12-01"), D("2026-12-31")).ok());
  EXPECT_EQ(calendar.WorkingDaysIn(D("2026-12-01"), D("2027-01-01")).missing_year, 2027);

  // A deadline that runs past the last loaded working day.
  const CalendarAnswer<Date> late = calendar.AddWorkingDays(D("2026-12-20"), 20);
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(late.missing_year, 2027);
  EXPECT_EQ(calendar.AddWorkingDays(D("2026-12-31"), 1).missing_year, 2027);
  EXPECT_EQ(calendar.AddWorkingDays(D("2023-06-01"), 1).missing_year, 2023);
}

TEST(CalendarMissing, EmptyCalendarKnowsNothing) {
  const WorkingCalendar empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.LastLoadedYear(), std::nullopt);
  EXPECT_EQ(empty.IsWorkingDay(D("2025-03-03")).missing_year, 2025);
  EXPECT_EQ(empty.WorkingDaysIn(D("2025-03-03"), D("2025-03-10")).missing_year, 2025);
  EXPECT_EQ(empty.AddWorkingDays(D("2025-03-03"), 3).missing_year, 2025);
}

// ---- bad data files ---------------------------------------------------------------------------

class CalendarBadData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gridledger-calendar-test-" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  // Loads the temp dir and returns the error (fails the test if it loaded).
  DataFileError LoadError() {
    CalendarLoadResult result = WorkingCalendar::Load(dir_.string());
    if (std::holds_alternative<WorkingCalendar>(result)) {
      ADD_FAILURE() << "the calendar loaded";
      return {};
    }
    return std::get<DataFileError>(result);
  }

  static std::string Year2025(const std::string& off, const std::string& make_up,
                              const std::string& extra = "") {
    return "{\n  \"year\": 2025,\n  \"source\": \"test notice\",\n" + extra + "  \"off\": [" + off +
           "],\n  \"make_up_work_days\": [" + make_up + "]\n}\n";
  }

  std::filesystem::path dir_;
};

TEST_F(CalendarBadData, AGoodMinimalFileLoads) {
  Write("2025.json",
        Year2025(R"({"name": "x", "from": "2025-01-01", "to": "2025-01-01"})", R"("2025-01-26")"));
  Write("README.txt", "not a year file, ignored");
  CalendarLoadResult result = WorkingCalendar::Load(dir_.string());
  ASSERT_TRUE(std::holds_alternative<WorkingCalendar>(result));
  // 261 weekdays − 1 off weekday + 1 make-up day.
  EXPECT_EQ(std::get<WorkingCalendar>(result).WorkingDaysInYear(2025), 261);
}

TEST_F(CalendarBadData, MissingDirectoryAndEmptyDirectory) {
  CalendarLoadResult result = WorkingCalendar::Load((dir_ / "nope").string());
  ASSERT_TRUE(std::holds_alternative<DataFileError>(result));
  EXPECT_EQ(std::get<DataFileError>(result).rule, "no_such_directory");
  EXPECT_EQ(LoadError().rule, "no_year_files");
}

TEST_F(CalendarBadData, SyntaxErrorNamesFileAndLine) {
  Write("2025.json", "{\n  \"year\": 2025,\n  \"source\": \"x\"\n  \"off\": []\n}\n");
  const DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "malformed_json");
  EXPECT_EQ(error.line, 4);
  EXPECT_NE(error.file.find("2025.json"), std::string::npos);
  EXPECT_NE(error.message.find("2025.json:4"), std::string::npos) << error.message;
}

TEST_F(CalendarBadData, YearMustMatchFileNameAndDates) {
  Write("2026.json", Year2025("", ""));
  DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "year_mismatch");
  EXPECT_EQ(error.field, "year");

  std::filesystem::remove(dir_ / "2026.json");
  Write("2025.json", Year2025(R"({"name": "x", "from": "2026-01-01", "to": "2026-01-01"})", ""));
  error = LoadError();
  EXPECT_EQ(error.rule, "year_mismatch");
  EXPECT_EQ(error.field, "off[0].from");
  EXPECT_EQ(error.line, 4);
}

TEST_F(CalendarBadData, DatesMustBeReal) {
  Write("2025.json", Year2025(R"({"name": "x", "from": "2025-02-29", "to": "2025-03-01"})", ""));
  const DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "bad_date");
  EXPECT_EQ(error.field, "off[0].from");
  EXPECT_NE(error.message.find("2025-02-29"), std::string::npos);
}

TEST_F(CalendarBadData, DayCannotBeBothOffAndMakeUp) {
  Write("2025.json",
        Year2025(R"({"name": "x", "from": "2025-01-25", "to": "2025-01-26"})", R"("2025-01-26")"));
  const DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "holiday_and_make_up");
  EXPECT_EQ(error.field, "make_up_work_days[0]");
}

TEST_F(CalendarBadData, MakeUpDayMustBeAWeekend) {
  Write("2025.json", Year2025("", R"("2025-01-27")"));
  const DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "make_up_not_weekend");
  EXPECT_EQ(error.line, 5);
}

TEST_F(CalendarBadData, RangesMustBeOrderedShortAndDistinct) {
  Write("2025.json", Year2025(R"({"name": "x", "from": "2025-01-05", "to": "2025-01-01"})", ""));
  EXPECT_EQ(LoadError().rule, "reversed_range");
  Write("2025.json", Year2025(R"({"name": "x", "from": "2025-01-01", "to": "2025-03-01"})", ""));
  EXPECT_EQ(LoadError().rule, "range_too_long");
  Write("2025.json", Year2025(R"({"name": "x", "from": "2025-01-01", "to": "2025-01-03"},
                                 {"name": "y", "from": "2025-01-03", "to": "2025-01-04"})",
                              ""));
  EXPECT_EQ(LoadError().rule, "duplicate_date");
}

TEST_F(CalendarBadData, SchemaErrorsNameTheField) {
  Write("2025.json", "{\"year\": 2025, \"source\": \"x\", \"off\": []}");
  DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "missing_field");
  EXPECT_EQ(error.field, "make_up_work_days");

  Write("2025.json", Year2025("", "", "  \"holidays\": [],\n"));
  error = LoadError();
  EXPECT_EQ(error.rule, "unknown_field");
  EXPECT_EQ(error.field, "holidays");
  EXPECT_EQ(error.line, 4);

  Write("2025.json", Year2025(R"({"name": "x", "from": 20250101, "to": "2025-01-01"})", ""));
  error = LoadError();
  EXPECT_EQ(error.rule, "wrong_type");
  EXPECT_EQ(error.field, "off[0].from");

  Write("2025.json", Year2025("", "", "  \"working_days\": 250,\n"));
  error = LoadError();
  EXPECT_EQ(error.rule, "working_days_mismatch");
  EXPECT_NE(error.message.find("261"), std::string::npos) << error.message;
}

TEST_F(CalendarBadData, FileNamesAndYearSetsAreChecked) {
  Write("calendar-2025.json", Year2025("", ""));
  EXPECT_EQ(LoadError().rule, "bad_file_name");
  std::filesystem::remove(dir_ / "calendar-2025.json");

  Write("2025.json", Year2025("", ""));
  std::string text_2027 = Year2025("", "");
  text_2027.replace(text_2027.find("2025"), 4, "2027");
  Write("2027.json", text_2027);
  const DataFileError error = LoadError();
  EXPECT_EQ(error.rule, "years_not_contiguous");
  EXPECT_NE(error.message.find("2026"), std::string::npos);

  CalendarLoadResult twice = WorkingCalendar::FromTexts(
      {{"2025.json", Year2025("", "")}, {"other/2025.json", Year2025("", "")}});
  ASSERT_TRUE(std::holds_alternative<DataFileError>(twice));
  EXPECT_EQ(std::get<DataFileError>(twice).rule, "duplicate_year");
}

}  // namespace
}  // namespace gridledger::domain
