// Goal: a correction (domain/correction.h) replaces exactly the fields it names, refuses what it
// cannot correct with a rule naming why, and composes with earlier corrections of the same event.
// Method: payloads built from the contract's JSON (event_json.h), corrections applied to them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "domain/correction.h"
#include "domain/event_json.h"

namespace gridledger::domain {
namespace {

using json = nlohmann::json;

const json kAccepted = {
    {"customer_id", "C1"},       {"customer_name", "甲"}, {"customer_class", "residential"},
    {"business", "new_install"}, {"voltage_kv", 0.22},    {"capacity_kva", 8},
    {"channel", "counter"},      {"important", false},    {"three_zero", false}};
constexpr int64_t kOccurredUs = 1'772'414'100'000'000;  // 2026-03-02T09:15:00+08:00
constexpr int64_t kRecordedUs = kOccurredUs + 3'600'000'000;

std::string Payload(std::string_view type, const json& data) {
  Decoded<std::string> payload = PayloadFromJson(type, data);
  EXPECT_TRUE(std::holds_alternative<std::string>(payload))
      << std::get<DecodeError>(payload).message;
  return std::get<std::string>(payload);
}

// The Corrected payload correcting `position` with `fields`.
std::string Correction(uint64_t position, const json& fields) {
  return Payload("Corrected",
                 {{"corrects_position", position}, {"reason", "typo"}, {"fields", fields}});
}

json DataOf(std::string_view type, const std::string& payload) {
  Decoded<json> data = PayloadToJson(type, payload);
  EXPECT_TRUE(std::holds_alternative<json>(data));
  return std::get<json>(data);
}

class CorrectionTest : public ::testing::Test {
 protected:
  CorrectableEvent Accepted() const {
    return {1, "ApplicationAccepted", accepted_, kOccurredUs, kRecordedUs, "clerk"};
  }
  std::variant<CorrectedValues, RuleBreach> Apply(const json& fields) const {
    return ApplyCorrection(Accepted(), fields.dump());
  }
  std::string Refusal(const json& fields) const {
    auto applied = Apply(fields);
    if (!std::holds_alternative<RuleBreach>(applied)) return "(applied)";
    return std::get<RuleBreach>(applied).rule;
  }
  const std::string accepted_ = Payload("ApplicationAccepted", kAccepted);
};

TEST_F(CorrectionTest, ReplacesTheNamedFieldsAndKeepsTheOthers) {
  auto applied = Apply({{"customer_class", "hv_single"}, {"capacity_kva", 630}});
  ASSERT_TRUE(std::holds_alternative<CorrectedValues>(applied));
  const CorrectedValues& values = std::get<CorrectedValues>(applied);
  json expected = kAccepted;
  expected["customer_class"] = "hv_single";
  expected["capacity_kva"] = 630;
  EXPECT_EQ(DataOf("ApplicationAccepted", values.payload), expected);
  EXPECT_EQ(values.occurred_at_us, kOccurredUs);
  // The same bytes as the event entered right in the first place.
  EXPECT_EQ(values.payload, Payload("ApplicationAccepted", expected));
}

TEST_F(CorrectionTest, CorrectsWhenItHappened) {
  auto applied = Apply({{"occurred_at", "2026-02-27T16:00:00+08:00"}});
  ASSERT_TRUE(std::holds_alternative<CorrectedValues>(applied));
  EXPECT_EQ(std::get<CorrectedValues>(applied).occurred_at_us,
            ParseTimestamp("2026-02-27T16:00:00+08:00")->unix_us);
  EXPECT_EQ(std::get<CorrectedValues>(applied).payload, accepted_);
}

TEST_F(CorrectionTest, RefusesWhatItCannotCorrect) {
  EXPECT_EQ(Refusal(json::object()), "correction_field");
  EXPECT_EQ(Refusal({{"actor", "S2"}}), "correction_field");  // witnessed, not entered
  EXPECT_EQ(Refusal({{"recorded_at", "2026-03-01T00:00:00+08:00"}}), "correction_field");
  EXPECT_EQ(Refusal({{"meter_id", "M1"}}), "correction_field");  // another type's field
  EXPECT_EQ(Refusal({{"customer_class", "villa"}}), "correction_value");
  EXPECT_EQ(Refusal({{"capacity_kva", "big"}}), "correction_value");
  EXPECT_EQ(Refusal({{"customer_id", nullptr}}), "correction_value");  // required
  EXPECT_EQ(Refusal({{"occurred_at", "yesterday"}}), "correction_value");
  // After it was recorded (beyond the clock tolerance): it cannot have happened then.
  EXPECT_EQ(Refusal({{"occurred_at", "2026-03-02T11:00:00+08:00"}}), "correction_value");
  auto refused = Apply({{"customer_class", "villa"}});
  EXPECT_NE(std::get<RuleBreach>(refused).message.find("Corrected.fields.customer_class"),
            std::string::npos)
      << std::get<RuleBreach>(refused).message;

  const std::string correction = Correction(1, {{"capacity_kva", 9}});
  auto of_correction = ApplyCorrection(
      {2, "Corrected", correction, kOccurredUs, kRecordedUs, "clerk"}, R"({"reason":"x"})");
  ASSERT_TRUE(std::holds_alternative<RuleBreach>(of_correction));
  EXPECT_EQ(std::get<RuleBreach>(of_correction).rule, "correction_of_correction");
}

TEST_F(CorrectionTest, LaterCorrectionsApplyOnTopOfEarlierOnes) {
  const std::string first = Correction(1, {{"capacity_kva", 50}, {"customer_name", "乙"}});
  const std::string second = Correction(1, {{"capacity_kva", 80}});
  const std::string stray = Correction(7, {{"capacity_kva", 1}});  // not an earlier event
  const std::string early = Correction(9, {{"capacity_kva", 1}});  // names a later event
  const std::string scheme = Payload("SchemeReplied", {{"scheme", "s"}});
  const std::vector<CorrectableEvent> events = {
      Accepted(),
      {2, "Corrected", first, kOccurredUs, kRecordedUs, "clerk"},
      {3, "Corrected", stray, kOccurredUs, kRecordedUs, "clerk"},
      {4, "Corrected", second, kOccurredUs, kRecordedUs, "clerk"},
      {5, "Corrected", early, kOccurredUs, kRecordedUs, "clerk"},
      {9, "SchemeReplied", scheme, kOccurredUs, kRecordedUs, "clerk"},
  };
  const AppliedCorrections applied = ApplyCorrections(events);
  EXPECT_EQ(applied.applied, 2u);
  ASSERT_EQ(applied.values.size(), 1u);
  json expected = kAccepted;
  expected["capacity_kva"] = 80;
  expected["customer_name"] = "乙";
  EXPECT_EQ(DataOf("ApplicationAccepted", applied.values.at(1).payload), expected);
  ASSERT_EQ(applied.refused.size(), 2u);
  EXPECT_EQ(applied.refused.at(3).rule, "correction_target");
  EXPECT_EQ(applied.refused.at(5).rule, "correction_target");
}

// The front door's rules between an acceptance's fields (CheckAcceptanceRules) came after
// corrections were stored: a stored correction to business change without a change kind still
// applies as it did, so what the folds make of stored events does not change. (A new one is
// refused by the ingestor.)
TEST_F(CorrectionTest, ACorrectionStoredBeforeTheAcceptanceRulesStillApplies) {
  const std::string to_change = Correction(1, {{"business", "change"}});
  const AppliedCorrections applied = ApplyCorrections({
      Accepted(),
      {2, "Corrected", to_change, kOccurredUs, kRecordedUs, "clerk"},
  });
  EXPECT_TRUE(applied.refused.empty()) << applied.refused.begin()->second.message;
  EXPECT_EQ(applied.applied, 1u);
  EXPECT_EQ(DataOf("ApplicationAccepted", applied.values.at(1).payload)["business"], "change");
}

// Judged where every reader applies corrections, not only at the front door: a correction stored
// before the rule (or past a bypassed door) that breaks the application is not applied.
TEST_F(CorrectionTest, ACorrectionThatMakesAnEarlierEventInvalidIsNotApplied) {
  const std::string scheme = Payload("SchemeReplied", {{"scheme", "s"}});
  const std::string to_change = Correction(1, {{"business", "change"}, {"change_kind", "rename"}});
  const std::string capacity = Correction(1, {{"capacity_kva", 9}});
  const AppliedCorrections applied = ApplyCorrections({
      Accepted(),
      {2, "SchemeReplied", scheme, kOccurredUs, kRecordedUs, "clerk"},
      {3, "Corrected", to_change, kOccurredUs, kRecordedUs,
       "clerk"},  // SchemeReplied is not a change's
      {4, "Corrected", capacity, kOccurredUs, kRecordedUs, "clerk"},
  });
  ASSERT_EQ(applied.refused.size(), 1u);
  EXPECT_EQ(applied.refused.at(3).rule, "correction_invalid");
  EXPECT_NE(applied.refused.at(3).message.find("SchemeReplied at position 2"), std::string::npos)
      << applied.refused.at(3).message;
  EXPECT_EQ(applied.applied, 1u);
  EXPECT_EQ(DataOf("ApplicationAccepted", applied.values.at(1).payload)["business"], "new_install");
}

// The date rules hold for events as corrected: a correction may not move a resume before its
// pause (the pause would vanish from the clocks) nor an inspection before the report it answers.
TEST_F(CorrectionTest, ACorrectionThatBreaksADateRuleIsNotApplied) {
  const int64_t day = 86'400'000'000;
  const int64_t recorded = kOccurredUs + 30 * day;  // every event entered on 04-01
  const std::string empty = Payload("ClockResumed", json::object());
  const std::string paused = Payload("ClockPaused", {{"reason", "customer"}});
  const std::string inspected = Payload("CompletionInspected", {{"result", "pass"}});
  const AppliedCorrections applied = ApplyCorrections({
      Accepted(),
      {2, "ClockPaused", paused, kOccurredUs + 2 * day, recorded, "clerk"},
      {3, "ClockResumed", empty, kOccurredUs + 8 * day, recorded, "clerk"},
      {4, "CompletionReported", Payload("CompletionReported", json::object()),
       kOccurredUs + 10 * day, recorded, "clerk"},
      {5, "CompletionInspected", inspected, kOccurredUs + 11 * day, recorded, "inspector"},
      {6, "Corrected", Correction(3, {{"occurred_at", "2026-03-03T10:00:00+08:00"}}), recorded,
       recorded, "director"},  // resumed 03-03, the pause began 03-04
      {7, "Corrected", Correction(5, {{"occurred_at", "2026-03-11T10:00:00+08:00"}}), recorded,
       recorded, "director"},  // inspected 03-11, reported 03-12
      {8, "Corrected", Correction(5, {{"occurred_at", "2026-03-12T15:00:00+08:00"}}), recorded,
       recorded, "director"},  // the same day as the report: fine
  });
  ASSERT_EQ(applied.refused.size(), 2u);
  EXPECT_EQ(applied.refused.at(6).rule, "correction_invalid");
  EXPECT_NE(applied.refused.at(6).message.find("resume_before_pause"), std::string::npos)
      << applied.refused.at(6).message;
  EXPECT_EQ(applied.refused.at(7).rule, "correction_invalid");
  EXPECT_NE(applied.refused.at(7).message.find("result_before_request"), std::string::npos)
      << applied.refused.at(7).message;
  EXPECT_EQ(applied.applied, 1u);
}

// What the folds read changes with the time or the workflow fields, or with anything of a check or
// callback; a customer's name or capacity changes nothing folded.
TEST_F(CorrectionTest, OnlySomeCorrectionsChangeFacts) {
  auto changes = [this](const json& fields) {
    auto applied = Apply(fields);
    EXPECT_TRUE(std::holds_alternative<CorrectedValues>(applied)) << fields.dump();
    return ChangesFacts(Accepted(), std::get<CorrectedValues>(applied));
  };
  EXPECT_FALSE(changes({{"customer_name", "乙"}, {"capacity_kva", 9}}));
  EXPECT_TRUE(changes({{"customer_class", "hv_single"}}));
  EXPECT_TRUE(changes({{"three_zero", true}}));
  EXPECT_TRUE(changes({{"occurred_at", "2026-03-01T09:00:00+08:00"}}));
  const std::string callback = Payload("CallbackMade", {{"agent", "S4100"},
                                                        {"result", "reached"},
                                                        {"satisfaction", "satisfied"},
                                                        {"complaints", json::array()},
                                                        {"comment", "ok"}});
  const CorrectableEvent made{5,           "CallbackMade", callback,
                              kOccurredUs, kRecordedUs,    "callback_agent"};
  auto comment = ApplyCorrection(made, R"({"comment":"fine"})");
  ASSERT_TRUE(std::holds_alternative<CorrectedValues>(comment));
  EXPECT_TRUE(ChangesFacts(made, std::get<CorrectedValues>(comment)));  // evidence shows it

  const std::string name = Correction(1, {{"customer_name", "乙"}});
  const std::string cls = Correction(1, {{"customer_class", "hv_dual"}});
  const AppliedCorrections applied =
      ApplyCorrections({Accepted(),
                        {2, "Corrected", name, kOccurredUs, kRecordedUs, "clerk"},
                        {3, "Corrected", cls, kOccurredUs, kRecordedUs, "clerk"}});
  EXPECT_EQ(applied.applied, 2u);
  EXPECT_EQ(applied.changing_facts, std::set<uint64_t>{3});
}

// Who may correct what is who may record it (domain/roles.h): a clerk's correction of the
// inspection that judged her work is refused, also when stored past a front door without the
// rule; the inspector's own, and a director's, apply; a caller that does not know the role
// ("") is not judged by it.
TEST_F(CorrectionTest, OnlyARoleThatRecordsAnEventCorrectsIt) {
  const std::string failed = Payload("CompletionInspected", {{"result", "fail"}});
  const std::string to_pass = Correction(3, {{"result", "pass"}});
  for (const auto& [role, applies] :
       std::vector<std::pair<std::string, bool>>{{"clerk", false},
                                                 {"callback_agent", false},
                                                 {"inspector", true},
                                                 {"director", true},
                                                 {"", true}}) {
    const AppliedCorrections applied = ApplyCorrections({
        Accepted(),
        {2, "CompletionReported", Payload("CompletionReported", json::object()), kOccurredUs,
         kRecordedUs, "clerk"},
        {3, "CompletionInspected", failed, kOccurredUs, kRecordedUs, "inspector"},
        {4, "Corrected", to_pass, kOccurredUs, kRecordedUs, role},
    });
    EXPECT_EQ(applied.applied, applies ? 1u : 0u) << role;
    if (applies) continue;
    ASSERT_TRUE(applied.refused.contains(4)) << role;
    EXPECT_EQ(applied.refused.at(4).rule, "correction_role") << role;
    EXPECT_NE(applied.refused.at(4).message.find("inspector and director"), std::string::npos)
        << applied.refused.at(4).message;
    EXPECT_FALSE(applied.values.contains(3)) << role;
  }
}

}  // namespace
}  // namespace gridledger::domain
