// Goal: SLA limits come from a replaceable profile file and every clock is classified exactly at
// the boundaries of domain.md ("SLA states"), with deadlines counted on the working-day calendar.
// Method: load the shipped profiles from GRIDLEDGER_SOURCE_DATA_DIR and compare with domain.md's
// table; walk the limit-20 clock through each state boundary; mutate a valid profile text one field
// at a time and check each error names the field and rule.
#include "domain/sla_profile.h"

#include <gtest/gtest.h>

#include <string>

namespace gridledger::domain {
namespace {

std::string SlaDir() { return std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/sla"; }

SlaProfile LoadOrFail(const std::string& path) {
  SlaProfileResult result = SlaProfile::Load(path);
  if (auto* error = std::get_if<DataFileError>(&result)) {
    ADD_FAILURE() << error->message;
    return SlaProfile();
  }
  return std::get<SlaProfile>(std::move(result));
}

Date D(const char* text) { return Date::Parse(text).value(); }

TEST(SlaProfileShipped, NationalProfileMatchesArticle14Table) {
  const SlaProfile profile = LoadOrFail(SlaDir() + "/national-2009.json");
  EXPECT_EQ(profile.name(), "national-2009");
  EXPECT_NE(profile.source().find("供电监管办法"), std::string::npos);

  struct Row {
    const char* clock;
    std::optional<int32_t> days[4];  // residential, lv_nonresidential, hv_single, hv_dual
  };
  const Row table[] = {
      {"scheme_reply", {3, 8, 20, 45}},
      {"design_review", {std::nullopt, 8, 20, 20}},
      {"mid_inspection", {std::nullopt, 3, 5, 5}},
      {"completion_inspection", {std::nullopt, 5, 7, 7}},
      {"connection", {3, 5, 7, 7}},
      {"change_completion", {5, 5, 5, 5}},
  };
  const char* classes[] = {"residential", "lv_nonresidential", "hv_single", "hv_dual"};
  for (const Row& row : table) {
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(profile.LimitDays(row.clock, classes[k]), row.days[k])
          << row.clock << " × " << classes[k];
    }
  }
  EXPECT_EQ(profile.LimitDays(SlaClock::kSchemeReply, SlaCustomerClass::kHvDual), 45);
  EXPECT_EQ(profile.LimitDays("scheme_reply", "industrial"), std::nullopt);
  EXPECT_EQ(profile.LimitDays("survey", "residential"), std::nullopt);

  EXPECT_EQ(profile.thresholds().escalation_overdue_days_min, (std::array<int32_t, 3>{1, 3, 6}));
  EXPECT_EQ(profile.thresholds().warning_remaining_days_max, 1);
  EXPECT_EQ(profile.thresholds().warning_elapsed_percent_min, 80);
  EXPECT_EQ(profile.backdating_tolerance_working_days(), 1);
}

TEST(SlaProfileShipped, StrictHouseProfileReplacesSchemeReplyLimits) {
  const SlaProfile profile = LoadOrFail(SlaDir() + "/house-strict.json");
  EXPECT_EQ(profile.name(), "house-strict");
  EXPECT_EQ(profile.LimitDays("scheme_reply", "residential"), 3);
  EXPECT_EQ(profile.LimitDays("scheme_reply", "lv_nonresidential"), 7);
  EXPECT_EQ(profile.LimitDays("scheme_reply", "hv_single"), 15);
  EXPECT_EQ(profile.LimitDays("scheme_reply", "hv_dual"), 30);
  EXPECT_EQ(profile.LimitDays("design_review", "residential"), std::nullopt);
  // Totals from acceptance to connection (domain.md: 6/22/32 for LV / HV single / HV dual).
  EXPECT_TRUE(profile.Defines(SlaClock::kTotal));
  EXPECT_EQ(profile.LimitDays("total", "residential"), 6);
  EXPECT_EQ(profile.LimitDays("total", "lv_nonresidential"), 6);
  EXPECT_EQ(profile.LimitDays("total", "hv_single"), 22);
  EXPECT_EQ(profile.LimitDays("total", "hv_dual"), 32);
}

// The total row is optional: the national profile has none, so no class has a total limit.
TEST(SlaProfileShipped, NationalProfileHasNoTotalLimit) {
  const SlaProfile profile = LoadOrFail(SlaDir() + "/national-2009.json");
  EXPECT_FALSE(profile.Defines(SlaClock::kTotal));
  EXPECT_EQ(profile.LimitDays(SlaClock::kTotal, SlaCustomerClass::kHvSingle), std::nullopt);
  EXPECT_TRUE(profile.Defines(SlaClock::kSchemeReply));
}

TEST(SlaProfileNames, RoundTrip) {
  for (int i = 0; i < kSlaClockCount; ++i) {
    const auto clock = static_cast<SlaClock>(i);
    EXPECT_EQ(ParseSlaClock(SlaClockName(clock)), clock);
  }
  for (int i = 0; i < kSlaCustomerClassCount; ++i) {
    const auto customer_class = static_cast<SlaCustomerClass>(i);
    EXPECT_EQ(ParseSlaCustomerClass(SlaCustomerClassName(customer_class)), customer_class);
  }
  EXPECT_EQ(SlaStateName(SlaState::kCalendarMissing), "calendar_missing");
  EXPECT_EQ(SlaStateName(SlaState::kOnTrack), "on_track");
}

// ---- classification ---------------------------------------------------------------------------

SlaStatus Open(int32_t limit, int32_t elapsed) {
  return ClassifyClock({.limit_days = limit, .elapsed_working_days = elapsed}, SlaThresholds());
}

TEST(SlaProfileClassify, LimitTwentyBoundaries) {
  EXPECT_EQ(Open(20, 0).state, SlaState::kOnTrack);
  EXPECT_EQ(Open(20, 15).state, SlaState::kOnTrack);
  EXPECT_EQ(Open(20, 16).state, SlaState::kWarning);  // 80 % of the limit
  EXPECT_EQ(Open(20, 19).state, SlaState::kWarning);
  EXPECT_EQ(Open(20, 20).state, SlaState::kWarning);  // limit − elapsed = 0 <= 1

  const SlaStatus one = Open(20, 21);
  EXPECT_EQ(one.state, SlaState::kOverdue);
  EXPECT_EQ(one.overdue_days, 1);
  EXPECT_EQ(one.escalation_level, 1);
  EXPECT_EQ(Open(20, 22).escalation_level, 1);
  EXPECT_EQ(Open(20, 23).escalation_level, 2);
  EXPECT_EQ(Open(20, 25).escalation_level, 2);
  const SlaStatus three = Open(20, 26);
  EXPECT_EQ(three.escalation_level, 3);
  EXPECT_EQ(three.overdue_days, 6);
  EXPECT_EQ(Open(20, 400).escalation_level, 3);
  EXPECT_EQ(Open(20, 20).escalation_level, 0);
}

TEST(SlaProfileClassify, ShortLimitsWarnByRemainingDays) {
  // Limit 3: 2 elapsed leaves 1 day → warning; 1 elapsed leaves 2 and is 33 % → on track.
  EXPECT_EQ(Open(3, 1).state, SlaState::kOnTrack);
  EXPECT_EQ(Open(3, 2).state, SlaState::kWarning);
  // Limit 45: 35 is < 80 % (36) and leaves 10 → on track; 36 → warning.
  EXPECT_EQ(Open(45, 35).state, SlaState::kOnTrack);
  EXPECT_EQ(Open(45, 36).state, SlaState::kWarning);
}

TEST(SlaProfileClassify, ClosedAndPausedClocks) {
  SlaThresholds thresholds;
  EXPECT_EQ(
      ClassifyClock({.limit_days = 20, .elapsed_working_days = 20, .closed = true}, thresholds)
          .state,
      SlaState::kMet);
  const SlaStatus missed =
      ClassifyClock({.limit_days = 20, .elapsed_working_days = 21, .closed = true}, thresholds);
  EXPECT_EQ(missed.state, SlaState::kMissed);
  EXPECT_EQ(missed.overdue_days, 1);
  EXPECT_EQ(missed.escalation_level, 0);
  // Closed wins over a stale paused flag.
  EXPECT_EQ(
      ClassifyClock({.limit_days = 20, .elapsed_working_days = 3, .paused = true, .closed = true},
                    thresholds)
          .state,
      SlaState::kMet);
  const SlaStatus paused =
      ClassifyClock({.limit_days = 20, .elapsed_working_days = 25, .paused = true}, thresholds);
  EXPECT_EQ(paused.state, SlaState::kPaused);
  EXPECT_EQ(paused.overdue_days, 5);
  EXPECT_EQ(paused.escalation_level, 0);
}

TEST(SlaProfileClassify, ThresholdsComeFromTheProfile) {
  SlaThresholds thresholds;
  thresholds.escalation_overdue_days_min = {2, 4, 10};
  thresholds.warning_remaining_days_max = 0;
  thresholds.warning_elapsed_percent_min = 90;
  auto classify = [&](int32_t elapsed) {
    return ClassifyClock({.limit_days = 20, .elapsed_working_days = elapsed}, thresholds);
  };
  EXPECT_EQ(classify(17).state, SlaState::kOnTrack);
  EXPECT_EQ(classify(18).state, SlaState::kWarning);
  EXPECT_EQ(classify(21).escalation_level, 0);  // overdue, below the first level
  EXPECT_EQ(classify(21).state, SlaState::kOverdue);
  EXPECT_EQ(classify(22).escalation_level, 1);
  EXPECT_EQ(classify(24).escalation_level, 2);
  EXPECT_EQ(classify(30).escalation_level, 3);
}

// ---- deadlines on the calendar ----------------------------------------------------------------

TEST(SlaProfileDeadline, CountsWorkingDaysAndPauses) {
  CalendarLoadResult loaded =
      WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
  ASSERT_TRUE(std::holds_alternative<WorkingCalendar>(loaded));
  const WorkingCalendar& calendar = std::get<WorkingCalendar>(loaded);

  EXPECT_EQ(Deadline(calendar, D("2025-09-26"), 7, 0).value, D("2025-10-13"));
  EXPECT_EQ(Deadline(calendar, D("2025-09-26"), 5, 2).value, D("2025-10-13"));
  EXPECT_EQ(ElapsedWorkingDays(calendar, D("2025-09-26"), D("2025-10-13"), 2).value, 5);
  const CalendarAnswer<Date> missing = Deadline(calendar, D("2026-12-01"), 45, 0);
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(missing.missing_year, 2027);
  EXPECT_EQ(ElapsedWorkingDays(calendar, D("2026-12-01"), D("2027-01-08"), 0).missing_year, 2027);
}

// ---- profile load errors ----------------------------------------------------------------------

const char kValidProfile[] = R"({
  "profile": "test",
  "source": "unit test",
  "limits_working_days": {
    "scheme_reply": {"residential": 3, "lv_nonresidential": 8, "hv_single": 20, "hv_dual": 45},
    "design_review": {"residential": null, "lv_nonresidential": 8, "hv_single": 20, "hv_dual": 20},
    "mid_inspection": {"residential": null, "lv_nonresidential": 3, "hv_single": 5, "hv_dual": 5},
    "completion_inspection": {"residential": null, "lv_nonresidential": 5, "hv_single": 7, "hv_dual": 7},
    "connection": {"residential": 3, "lv_nonresidential": 5, "hv_single": 7, "hv_dual": 7},
    "change_completion": {"residential": 5, "lv_nonresidential": 5, "hv_single": 5, "hv_dual": 5}
  },
  "escalation": {"level_overdue_days_min": [1, 3, 6]},
  "warning": {"remaining_days_max": 1, "elapsed_percent_min": 80},
  "backdating_tolerance_working_days": 1
}
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

DataFileError ParseError(const std::string& text) {
  SlaProfileResult result = SlaProfile::Parse(text, "test.json");
  if (std::holds_alternative<SlaProfile>(result)) {
    ADD_FAILURE() << "the profile parsed";
    return {};
  }
  return std::get<DataFileError>(result);
}

TEST(SlaProfileLoad, ValidTextParses) {
  SlaProfileResult result = SlaProfile::Parse(kValidProfile);
  ASSERT_TRUE(std::holds_alternative<SlaProfile>(result))
      << std::get<DataFileError>(result).message;
  EXPECT_EQ(std::get<SlaProfile>(result).LimitDays("connection", "residential"), 3);
}

TEST(SlaProfileLoad, ErrorsNameTheFieldAndRule) {
  struct Case {
    std::string from;
    std::string to;
    std::string field;
    std::string rule;
    int line;
  };
  const Case cases[] = {
      {R"("hv_dual": 45})", R"("hv_dual": -1})", "limits_working_days.scheme_reply.hv_dual",
       "bad_value", 5},
      {R"("hv_dual": 45})", R"("hv_dual": "45"})", "limits_working_days.scheme_reply.hv_dual",
       "wrong_type", 5},
      {R"("hv_dual": 45})", R"("hv_dual": 400})", "limits_working_days.scheme_reply.hv_dual",
       "bad_value", 5},
      {R"(, "hv_dual": 45})", "}", "limits_working_days.scheme_reply.hv_dual", "missing_field", 0},
      {R"("hv_dual": 45})", R"("hv_dual": 45, "industrial": 9})",
       "limits_working_days.scheme_reply.industrial", "unknown_field", 5},
      {R"("connection")", R"("connect")", "limits_working_days.connect", "unknown_field", 9},
      {"[1, 3, 6]", "[1, 6, 3]", "escalation.level_overdue_days_min[2]", "bad_value", 12},
      {"[1, 3, 6]", "[0, 3, 6]", "escalation.level_overdue_days_min[0]", "bad_value", 12},
      {"[1, 3, 6]", "[1, 3]", "escalation.level_overdue_days_min", "wrong_type", 12},
      {R"("elapsed_percent_min": 80)", R"("elapsed_percent_min": 180)",
       "warning.elapsed_percent_min", "bad_value", 13},
      {R"("backdating_tolerance_working_days": 1)", R"("backdating_tolerance_working_days": 1.5)",
       "backdating_tolerance_working_days", "wrong_type", 14},
      {R"("source": "unit test")", R"("source": "")", "source", "wrong_type", 3},
      {R"("profile": "test",)", "", "profile", "missing_field", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.to);
    const DataFileError error = ParseError(Replace(kValidProfile, c.from, c.to));
    EXPECT_EQ(error.field, c.field);
    EXPECT_EQ(error.rule, c.rule);
    EXPECT_EQ(error.line, c.line);
    EXPECT_EQ(error.file, "test.json");
    EXPECT_NE(error.message.find(c.field), std::string::npos) << error.message;
  }
}

TEST(SlaProfileLoad, SyntaxErrorsAndMissingFiles) {
  DataFileError error =
      ParseError(Replace(kValidProfile, R"("source": "unit test",)", R"("source": "unit test")"));
  EXPECT_EQ(error.rule, "malformed_json");
  EXPECT_EQ(error.line, 4);
  EXPECT_EQ(ParseError("[]").rule, "wrong_type");

  SlaProfileResult result = SlaProfile::Load(SlaDir() + "/does-not-exist.json");
  ASSERT_TRUE(std::holds_alternative<DataFileError>(result));
  EXPECT_EQ(std::get<DataFileError>(result).rule, "unreadable");
  EXPECT_NE(std::get<DataFileError>(result).message.find("does-not-exist.json"), std::string::npos);
}

}  // namespace
}  // namespace gridledger::domain
