// Goal: the application projection folds a work order's events into its workflow state and stage
// clocks, and evaluates the clocks exactly as domain.md "Counting" and "SLA states" define, on the
// real 2026 working-day calendar (Spring Festival 02-15..02-23, make-up days 02-14 and 02-28) and
// the default national-2009 profile.
// Method: append JSON-contract events (encoded by DecodeClientEvent) to a real Ledger in a temp
// directory with an injected recorded_at clock, scan them back, fold them, and check ClockViews and
// the JSON document at chosen evaluation times. Expected dates and day counts are worked out by
// hand in the comments.
#include "projections/application.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "domain/event_json.h"
#include "ledger/ledger.h"
#include "projections/application_codec.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

using domain::Date;
using domain::SlaClock;
using nlohmann::json;

// 10:00 local time on `date` ("YYYY-MM-DD").
int64_t At(const std::string& date) {
  return domain::ParseTimestamp(date + "T10:00:00+08:00")->unix_us;
}

Date D(const std::string& text) { return *Date::Parse(text); }

// The minimum valid `data` of each type used here.
json DefaultData(const std::string& type) {
  static const json kDefaults = {
      {"ApplicationAccepted",
       {{"customer_id", "C1"},
        {"customer_name", "Dianchi Plant"},
        {"customer_class", "hv_single"},
        {"business", "new_install"},
        {"voltage_kv", 10},
        {"capacity_kva", 800},
        {"channel", "counter"},
        {"important", false},
        {"three_zero", false}}},
      {"SurveyDispatched", {{"surveyor", "S2"}}},
      {"SiteSurveyed", {{"findings", "line 12 has capacity"}}},
      {"SchemeReplied", {{"scheme", "10kV single source from Line 12"}}},
      {"FeesSettled", {{"amount_cny", 1280.5}}},
      {"DesignReviewed", {{"result", "pass"}}},
      {"MidInspected", {{"result", "pass"}}},
      {"CompletionInspected", {{"result", "pass"}}},
      {"ContractSigned", {{"contract_id", "HT-1"}}},
      {"MeterConnected", {{"meter_id", "M-1"}}},
      {"ChangeExecuted", {{"summary", "renamed"}}},
      {"ClockPaused", {{"reason", "customer asked to wait for land permit"}}},
      {"Urged", {{"level", 1}, {"to_org", "KM.DS"}, {"to_person", "Li"}, {"channel", "phone"}}},
      {"Withdrawn", {{"reason", "project cancelled"}}},
      {"CallbackMade", {{"agent", "A1"}, {"result", "reached"}, {"satisfaction", "satisfied"}}},
  };
  return kDefaults.contains(type) ? kDefaults.at(type) : json::object();
}

class ApplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger::Options options;
    options.now_us = [this] { return now_us_.load(); };
    auto opened = ledger::Ledger::Open(dir_.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened.value());
    auto calendar = domain::WorkingCalendar::Load(GRIDLEDGER_SOURCE_DATA_DIR "/calendar");
    ASSERT_TRUE(std::holds_alternative<domain::WorkingCalendar>(calendar));
    calendar_ = std::get<domain::WorkingCalendar>(std::move(calendar));
    auto profile = domain::SlaProfile::Load(GRIDLEDGER_SOURCE_DATA_DIR "/sla/national-2009.json");
    ASSERT_TRUE(std::holds_alternative<domain::SlaProfile>(profile));
    profile_ = std::get<domain::SlaProfile>(std::move(profile));
  }

  // Appends one event that occurred at 10:00 on `date`; recorded at the same time unless
  // `recorded_date` is given. `data` entries override the type's defaults. Returns the position.
  uint64_t Append(const std::string& type, const std::string& date, json data = json::object(),
                  const std::string& recorded_date = "", const std::string& stream = "app/KM-1") {
    json merged = DefaultData(type);
    merged.update(data);
    const json event = {{"stream", stream},
                        {"type", type},
                        {"event_id", "e" + std::to_string(++event_count_)},
                        {"occurred_at", date + "T10:00:00+08:00"},
                        {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
                        {"data", merged}};
    auto decoded = domain::DecodeClientEvent(event);
    if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
      ADD_FAILURE() << type << ": " << error->message;
      return 0;
    }
    const domain::ClientEvent& client = std::get<domain::ClientEvent>(decoded);
    now_us_ = At(recorded_date.empty() ? date : recorded_date);
    ledger::AppendRequest request;
    request.stream = client.stream;
    request.events.push_back(ledger::NewEvent{
        client.event_id, client.type, client.occurred_at_us, client.occurred_at_offset_minutes,
        ledger::Actor{client.actor.id, client.actor.role, client.actor.org}, client.payload,
        /*imported=*/false, /*recorded_by=*/std::nullopt});
    auto appended = ledger_->Append(std::move(request));
    if (!appended.ok()) {
      ADD_FAILURE() << appended.status().ToString();
      return 0;
    }
    return appended.value().events[0].position;
  }

  uint64_t Accept(const std::string& date, json data = json::object()) {
    return Append("ApplicationAccepted", date, std::move(data));
  }

  ApplicationState FoldAll() const {
    ApplicationState state;
    ledger_
        ->Scan(1,
               [&state](const ledger::EventView& event) {
                 Fold(state, event);
                 return true;
               })
        .IgnoreError();
    return state;
  }

  ClockView View(const ApplicationState& state, SlaClock name, const std::string& date) const {
    const Clock* clock = state.LatestClock(name);
    EXPECT_NE(clock, nullptr) << domain::SlaClockName(name);
    if (clock == nullptr) return {};
    return Evaluate(*clock, calendar_, profile_, state.facts.customer_class, At(date));
  }

  json Json(const ApplicationState& state, const std::string& date) const {
    return ToJson(state, calendar_, profile_, At(date));
  }

  testing::TempDir dir_;
  std::atomic<int64_t> now_us_{0};
  std::unique_ptr<ledger::Ledger> ledger_;
  domain::WorkingCalendar calendar_;
  domain::SlaProfile profile_;
  int event_count_ = 0;
};

TEST_F(ApplicationTest, HvSingleNewInstallThroughArchiveMeetsEveryClock) {
  Accept("2026-03-02");  // Monday
  Append("SurveyDispatched", "2026-03-03");
  Append("SiteSurveyed", "2026-03-04");
  Append("SchemeReplied", "2026-03-16");  // (03-02, 03-16]: 4 + 5 + 1 = 10 working days
  Append("FeesSettled", "2026-03-17");
  Append("CompletionReported", "2026-04-01");
  Append("CompletionInspected", "2026-04-08");  // 04-02, 04-03, 04-07, 04-08 (04-06 is off)
  const uint64_t contract = Append("ContractSigned", "2026-04-09");
  Append("MeterConnected", "2026-04-14");  // 04-10, 04-13, 04-14
  Append("Archived", "2026-04-15");
  Append("CallbackMade", "2026-04-20");

  const ApplicationState state = FoldAll();
  EXPECT_EQ(state.stream, "app/KM-1");
  EXPECT_EQ(state.org, "KM.XS");
  EXPECT_EQ(state.stage(), "archived");
  EXPECT_TRUE(state.violations.empty());
  EXPECT_TRUE(state.rejected.empty());

  const json doc = Json(state, "2026-05-01");
  EXPECT_EQ(doc["stage"], "archived");
  EXPECT_EQ(doc["customer_class"], "hv_single");
  EXPECT_EQ(doc["business"], "new_install");
  const json& scheme = doc["clocks"]["scheme_reply"];
  EXPECT_EQ(scheme["state"], "met");
  EXPECT_EQ(scheme["start"], "2026-03-02");
  EXPECT_EQ(scheme["end"], "2026-03-16");
  EXPECT_EQ(scheme["limit"], 20);
  EXPECT_EQ(scheme["elapsed_working_days"], 10);
  EXPECT_EQ(scheme["paused_working_days"], 0);
  EXPECT_EQ(scheme["deadline"], "2026-03-30");  // the 20th working day after 03-02
  const json& completion = doc["clocks"]["completion_inspection"];
  EXPECT_EQ(completion["state"], "met");
  EXPECT_EQ(completion["elapsed_working_days"], 4);
  EXPECT_EQ(completion["limit"], 7);
  const json& connection = doc["clocks"]["connection"];
  EXPECT_EQ(connection["state"], "met");
  EXPECT_EQ(connection["start"], "2026-04-09");  // the contract completed the prerequisites
  EXPECT_EQ(connection["start_position"], contract);
  EXPECT_EQ(connection["elapsed_working_days"], 3);
  EXPECT_FALSE(doc["clocks"].contains("design_review"));
  EXPECT_FALSE(doc["clocks"].contains("change_completion"));
  EXPECT_TRUE(doc["violations"].empty());
  EXPECT_TRUE(doc["backdated"].empty());
}

// The whole wait from acceptance to connection is always folded; it is judged only under a
// profile that promises a total (house-strict: 22 working days for hv_single), so swapping the
// profile changes the answer without a refold.
TEST_F(ApplicationTest, ATotalLimitIsJudgedOnlyWhereTheProfilePromisesOne) {
  Accept("2026-03-02");
  Append("SchemeReplied", "2026-03-16");
  Append("FeesSettled", "2026-03-17");
  Append("CompletionReported", "2026-04-01");
  Append("CompletionInspected", "2026-04-08");
  Append("ContractSigned", "2026-04-09");
  const uint64_t connected = Append("MeterConnected", "2026-04-14");
  const ApplicationState state = FoldAll();
  EXPECT_FALSE(Json(state, "2026-05-01")["clocks"].contains("total"));  // national-2009

  auto strict = domain::SlaProfile::Load(GRIDLEDGER_SOURCE_DATA_DIR "/sla/house-strict.json");
  ASSERT_TRUE(std::holds_alternative<domain::SlaProfile>(strict));
  const json doc = ToJson(state, calendar_, std::get<domain::SlaProfile>(strict), At("2026-05-01"));
  const json& total = doc["clocks"]["total"];
  EXPECT_EQ(total["start"], "2026-03-02");
  EXPECT_EQ(total["end"], "2026-04-14");
  EXPECT_EQ(total["end_position"], connected);
  EXPECT_EQ(total["limit"], 22);
  // (03-02, 04-14]: 21 working days in March, 9 in April (04-06 is off).
  EXPECT_EQ(total["elapsed_working_days"], 30);
  EXPECT_EQ(total["state"], "missed");
  EXPECT_EQ(total["overdue_days"], 8);
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["state"], "met");  // 10 of the stricter 15
}

// hv_single scheme reply, 20 working days from Monday 2026-02-02 across the Spring Festival:
// 02-03..06 (4), 02-09..13 (9), Sat 02-14 make-up (10), 02-15..23 off, 02-24..27 (14),
// Sat 02-28 make-up (15), 03-02..06 (20) → deadline 2026-03-06.
TEST_F(ApplicationTest, LateSchemeReplyEscalatesAcrossTheSpringFestival) {
  Accept("2026-02-02");
  ApplicationState state = FoldAll();

  ClockView view = View(state, SlaClock::kSchemeReply, "2026-02-27");
  EXPECT_EQ(view.elapsed_working_days, 14);
  EXPECT_EQ(view.state, ClockState::kOnTrack);
  EXPECT_EQ(view.deadline, D("2026-03-06"));

  view = View(state, SlaClock::kSchemeReply, "2026-03-03");  // 17 >= 80% of 20
  EXPECT_EQ(view.elapsed_working_days, 17);
  EXPECT_EQ(view.state, ClockState::kWarning);

  view = View(state, SlaClock::kSchemeReply, "2026-03-09");  // 21: one day over
  EXPECT_EQ(view.state, ClockState::kOverdue);
  EXPECT_EQ(view.overdue_days, 1);
  EXPECT_EQ(view.escalation_level, 1);

  view = View(state, SlaClock::kSchemeReply, "2026-03-11");  // 23
  EXPECT_EQ(view.overdue_days, 3);
  EXPECT_EQ(view.escalation_level, 2);

  view = View(state, SlaClock::kSchemeReply, "2026-03-16");  // 26
  EXPECT_EQ(view.overdue_days, 6);
  EXPECT_EQ(view.escalation_level, 3);
  const json open = Json(state, "2026-03-16")["clocks"]["scheme_reply"];
  EXPECT_EQ(open["state"], "overdue");
  EXPECT_EQ(open["overdue_days"], 6);
  EXPECT_EQ(open["escalation_level"], 3);
  EXPECT_TRUE(open["end"].is_null());

  Append("SchemeReplied", "2026-03-16");
  state = FoldAll();
  const json closed = Json(state, "2026-06-01")["clocks"]["scheme_reply"];
  EXPECT_EQ(closed["state"], "missed");
  EXPECT_EQ(closed["elapsed_working_days"], 26);
  EXPECT_EQ(closed["overdue_days"], 6);
  EXPECT_EQ(closed["deadline"], "2026-03-06");
}

// lv_nonresidential scheme reply, limit 8 from Monday 2026-03-02 (deadline 03-12 without pause).
// Paused Wed 03-04, resumed Mon 03-09: paused days 03-05, 03-06, 03-09 = 3 → deadline moves to the
// 11th working day, Tue 03-17.
TEST_F(ApplicationTest, CustomerPauseStopsTheClockAndMovesTheDeadline) {
  Accept("2026-03-02", {{"customer_class", "lv_nonresidential"}});
  EXPECT_EQ(View(FoldAll(), SlaClock::kSchemeReply, "2026-03-03").deadline, D("2026-03-12"));

  Append("ClockPaused", "2026-03-04");
  ApplicationState state = FoldAll();
  EXPECT_TRUE(state.facts.paused);
  ClockView view = View(state, SlaClock::kSchemeReply, "2026-03-06");
  EXPECT_EQ(view.state, ClockState::kPaused);
  EXPECT_EQ(view.paused_working_days, 2);
  EXPECT_EQ(view.elapsed_working_days, 2);  // 4 working days in (03-02, 03-06], 2 of them paused
  EXPECT_EQ(view.deadline, D("2026-03-16"));

  Append("DesignSubmitted", "2026-03-05");  // a clock started during the pause starts paused
  Append("ClockResumed", "2026-03-09");
  state = FoldAll();
  const ClockView design = View(state, SlaClock::kDesignReview, "2026-03-10");
  EXPECT_EQ(design.paused_working_days, 2);   // 03-06, 03-09
  EXPECT_EQ(design.elapsed_working_days, 1);  // 03-10
  view = View(state, SlaClock::kSchemeReply, "2026-03-10");
  EXPECT_EQ(view.state, ClockState::kOnTrack);
  EXPECT_EQ(view.paused_working_days, 3);
  EXPECT_EQ(view.elapsed_working_days, 3);
  EXPECT_EQ(view.deadline, D("2026-03-17"));
  const json doc = Json(state, "2026-03-10");
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["pauses"],
            json::parse(R"([{"from":"2026-03-04","to":"2026-03-09"}])"));
}

// The deadline is the date elapsed reaches the limit: a pause begun once the clock was late (a
// working day past that date) does not move it — the date was already missed — though its days
// still do not count as elapsed. A pause begun on the deadline day moves it, as the KPI of changes
// judges it too (kpi.cc, DeadlineOf).
TEST_F(ApplicationTest, APauseBegunAfterTheDeadlineDoesNotMoveIt) {
  // Residential scheme reply, limit 3: accepted Monday 03-02, deadline Thursday 03-05.
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("ClockPaused", "2026-03-09");  // 03-06 and 03-09 are past the deadline
  Append("ClockResumed", "2026-03-13");
  ClockView view = View(FoldAll(), SlaClock::kSchemeReply, "2026-03-20");
  EXPECT_EQ(view.deadline, D("2026-03-05"));
  EXPECT_EQ(view.paused_working_days, 4);    // 03-10 .. 03-13
  EXPECT_EQ(view.elapsed_working_days, 10);  // 14 working days in (03-02, 03-20], 4 paused
  EXPECT_EQ(view.state, ClockState::kOverdue);
  EXPECT_EQ(view.overdue_days, 7);

  Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "residential"}}, "", "app/KM-2");
  Append("ClockPaused", "2026-03-05", json::object(), "", "app/KM-2");
  Append("ClockResumed", "2026-03-09", json::object(), "", "app/KM-2");
  auto events = ledger_->ReadStream("app/KM-2");
  ASSERT_TRUE(events.ok());
  view = View(FoldStream(*events), SlaClock::kSchemeReply, "2026-03-20");
  EXPECT_EQ(view.paused_working_days, 2);     // 03-06, 03-09
  EXPECT_EQ(view.deadline, D("2026-03-09"));  // moved by them
}

TEST_F(ApplicationTest, UrgesAreRecordedButNeverMoveTheDeadline) {
  Accept("2026-02-02");
  const json before = Json(FoldAll(), "2026-03-10")["clocks"];
  const uint64_t urge =
      Append("Urged", "2026-03-09",
             {{"level", 2}, {"to_person", "Wang"}, {"committed_date", "2026-03-20"}});
  Append("Urged", "2026-03-10", {{"level", 3}, {"to_org", "KM"}, {"channel", "meeting"}});
  const ApplicationState state = FoldAll();
  const json doc = Json(state, "2026-03-10");
  EXPECT_EQ(doc["clocks"], before);
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["deadline"], "2026-03-06");
  ASSERT_EQ(doc["urges"].size(), 2u);
  EXPECT_EQ(doc["urges"][0]["position"], urge);
  EXPECT_EQ(doc["urges"][0]["level"], 2);
  EXPECT_EQ(doc["urges"][0]["to_org"], "KM.DS");
  EXPECT_EQ(doc["urges"][0]["to_person"], "Wang");
  EXPECT_EQ(doc["urges"][0]["channel"], "phone");
  EXPECT_EQ(doc["urges"][0]["committed_date"], "2026-03-20");
  EXPECT_EQ(doc["urges"][0]["occurred_at"], "2026-03-09T10:00:00+08:00");
  EXPECT_TRUE(doc["urges"][1]["committed_date"].is_null());
}

TEST_F(ApplicationTest, ClockRunningIntoAnUnloadedYearIsCalendarMissing) {
  Accept("2026-12-10", {{"customer_class", "hv_dual"}});  // limit 45: the deadline lies in 2027
  const ApplicationState state = FoldAll();

  ClockView view = View(state, SlaClock::kSchemeReply, "2026-12-15");
  EXPECT_EQ(view.state, ClockState::kOnTrack);  // 3 of 45 days: exact without 2027
  EXPECT_EQ(view.elapsed_working_days, 3);
  EXPECT_FALSE(view.deadline.has_value());
  EXPECT_EQ(view.deadline_missing_year, 2027);

  view = View(state, SlaClock::kSchemeReply, "2027-01-05");
  EXPECT_EQ(view.state, ClockState::kCalendarMissing);
  EXPECT_EQ(view.missing_year, 2027);
  const json clock = Json(state, "2027-01-05")["clocks"]["scheme_reply"];
  EXPECT_EQ(clock["state"], "calendar_missing");
  EXPECT_EQ(clock["missing_year"], 2027);
}

// What a calendar_missing clock does know is shown, never guessed: a deadline inside the loaded
// years when every paused day is known; elapsed days are unknown (null, not 0).
TEST_F(ApplicationTest, ACalendarMissingClockShowsAKnownDeadlineAndNoElapsedDays) {
  Accept("2026-12-28", {{"customer_class", "residential"}});  // scheme reply: 3 working days
  const json known = Json(FoldAll(), "2027-01-05")["clocks"]["scheme_reply"];
  EXPECT_EQ(known["state"], "calendar_missing");
  EXPECT_EQ(known["deadline"], "2026-12-31");  // 12-29, 12-30, 12-31
  EXPECT_TRUE(known["elapsed_working_days"].is_null());
  EXPECT_EQ(known["paused_working_days"], 0);

  Append("ClockPaused", "2026-12-30");  // still paused in the unloaded year
  const json paused = Json(FoldAll(), "2027-01-05")["clocks"]["scheme_reply"];
  EXPECT_EQ(paused["state"], "calendar_missing");
  EXPECT_TRUE(paused["deadline"].is_null());
  EXPECT_TRUE(paused["paused_working_days"].is_null());
}

TEST_F(ApplicationTest, EventRecordedMoreThanToleranceLateIsBackdated) {
  Accept("2026-03-02");
  // Recorded Thursday 03-05 for Monday 03-02: 3 working days late > tolerance 1.
  const uint64_t late = Append("SurveyDispatched", "2026-03-02", json::object(), "2026-03-05");
  // Recorded Friday 03-06 for Thursday 03-05: 1 working day late, within tolerance.
  Append("SiteSurveyed", "2026-03-05", json::object(), "2026-03-06");
  const ApplicationState state = FoldAll();
  EXPECT_EQ(state.late_records.size(), 2u);
  const json backdated = Json(state, "2026-03-06")["backdated"];
  ASSERT_EQ(backdated.size(), 1u);
  EXPECT_EQ(backdated[0]["position"], late);
  EXPECT_EQ(backdated[0]["type"], "SurveyDispatched");
  EXPECT_EQ(backdated[0]["working_days_late"], 3);
  EXPECT_EQ(backdated[0]["occurred_at"], "2026-03-02T10:00:00+08:00");
  EXPECT_EQ(backdated[0]["recorded_at"], "2026-03-05T10:00:00+08:00");
}

TEST_F(ApplicationTest, FailedCompletionInspectionRestartsTheClock) {
  Accept("2026-03-02");
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-03");
  Append("ContractSigned", "2026-03-04");
  Append("CompletionReported", "2026-03-09");
  Append("CompletionInspected", "2026-03-11", {{"result", "fail"}, {"defects", {"earthing"}}});
  const uint64_t again = Append("CompletionReported", "2026-03-20");
  const ApplicationState state = FoldAll();
  EXPECT_EQ(state.LatestClock(SlaClock::kConnection), nullptr);  // not passed yet
  const json clock = Json(state, "2026-03-24")["clocks"]["completion_inspection"];
  EXPECT_EQ(clock["attempt"], 2);
  EXPECT_EQ(clock["start"], "2026-03-20");
  EXPECT_EQ(clock["start_position"], again);
  EXPECT_EQ(clock["elapsed_working_days"], 2);
  EXPECT_EQ(clock["state"], "on_track");
  ASSERT_EQ(clock["attempts"].size(), 1u);
  EXPECT_EQ(clock["attempts"][0]["attempt"], 1);
  EXPECT_EQ(clock["attempts"][0]["end"], "2026-03-11");
  EXPECT_EQ(clock["attempts"][0]["state"], "met");

  Append("CompletionInspected", "2026-03-25");
  const ApplicationState passed = FoldAll();
  const Clock* connection = passed.LatestClock(SlaClock::kConnection);
  ASSERT_NE(connection, nullptr);
  EXPECT_EQ(connection->start, D("2026-03-25"));
}

TEST_F(ApplicationTest, ConnectionBeforePrerequisitesIsAViolationWithAMeasuredClock) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  const uint64_t connected = Append("MeterConnected", "2026-03-05");
  const ApplicationState state = FoldAll();
  ASSERT_EQ(state.violations.size(), 2u);
  EXPECT_EQ(state.violations[0].rule, "connected_without_contract");
  EXPECT_EQ(state.violations[0].position, connected);
  EXPECT_EQ(state.violations[1].rule, "connected_before_fees");
  const json doc = Json(state, "2026-03-05");
  EXPECT_EQ(doc["violations"][0]["rule"], "connected_without_contract");
  EXPECT_EQ(doc["clocks"]["connection"]["start"], "2026-03-03");
  EXPECT_EQ(doc["clocks"]["connection"]["elapsed_working_days"], 2);
  EXPECT_EQ(doc["stage"], "connected");
}

// A connection measured from a past date (the prerequisites that had happened by a premature
// connection) waited through the customer's pauses since that date like every open clock: they
// are its paused days, and a pause before that date is not.
TEST_F(ApplicationTest, AConnectionMeasuredFromThePastKeepsThePausesSince) {
  Accept("2026-03-02", {{"customer_class", "lv_nonresidential"}});
  Append("ClockPaused", "2026-03-03");
  Append("ClockResumed", "2026-03-04");  // paused 03-04 only: before the scheme reply
  Append("SchemeReplied", "2026-03-05");
  Append("ClockPaused", "2026-03-09");
  Append("ClockResumed", "2026-03-11");  // paused 03-10, 03-11
  Append("MeterConnected", "2026-03-16");
  const json doc = Json(FoldAll(), "2026-03-20");
  const json& clock = doc["clocks"]["connection"];
  // (03-05, 03-16] holds 03-06, 09, 10, 11, 12, 13, 16: 7 working days, 2 of them paused.
  EXPECT_EQ(clock["start"], "2026-03-05");
  EXPECT_EQ(clock["paused_working_days"], 2);
  EXPECT_EQ(clock["elapsed_working_days"], 5);
  EXPECT_EQ(clock["state"], "met");  // 5 ≤ 5 working days (lv_nonresidential)
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["paused_working_days"], 1);
}

// Pauses count by their business dates, not by when they were entered (domain.md "Counting": a
// pause pauses every clock open on its dates, and a clock's paused days lie inside its own
// (start, end]). Each case enters a pause late, as a clerk working from paper would.
TEST_F(ApplicationTest, APauseDatedBeforeAClockStartedIsNotThatClocksPause) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-03");
  Append("ContractSigned", "2026-03-09");  // the connection clock starts 03-09
  Append("ClockPaused", "2026-03-04", json::object(), "2026-03-09");
  Append("ClockResumed", "2026-03-09");
  Append("MeterConnected", "2026-03-13");
  const json doc = Json(FoldAll(), "2026-03-20");
  // (03-09, 03-13]: 10, 11, 12, 13 — 4 working days, none of them paused: 4 > 3.
  EXPECT_EQ(doc["clocks"]["connection"]["paused_working_days"], 0);
  EXPECT_EQ(doc["clocks"]["connection"]["elapsed_working_days"], 4);
  EXPECT_EQ(doc["clocks"]["connection"]["state"], "missed");
  EXPECT_EQ(doc["clocks"]["connection"]["pauses"], json::array());
  // The application's own list keeps the pause as entered.
  ASSERT_EQ(doc["pauses"].size(), 1u);
  EXPECT_EQ(doc["pauses"][0]["from"], "2026-03-04");
  EXPECT_EQ(doc["pauses"][0]["to"], "2026-03-09");
}

TEST_F(ApplicationTest, AClockOpenedInsideAnEarlierOpenPauseCountsOnlyItsOwnDays) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-03");
  Append("ContractSigned", "2026-03-09");
  Append("ClockPaused", "2026-03-04", json::object(), "2026-03-09");
  const json doc = Json(FoldAll(), "2026-03-13");
  // Paused (03-09, 03-13]: 4 of 4 working days; elapsed 0, never below; deadline 03-12 + 4.
  const json& clock = doc["clocks"]["connection"];
  EXPECT_EQ(clock["paused_working_days"], 4);
  EXPECT_EQ(clock["elapsed_working_days"], 0);
  EXPECT_EQ(clock["state"], "paused");
  EXPECT_EQ(clock["deadline"], "2026-03-18");
}

TEST_F(ApplicationTest, APauseEnteredAfterTheClockClosedStillPausedIt) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-09");  // (03-02, 03-09]: 5 working days > 3
  Append("ClockPaused", "2026-03-03", json::object(), "2026-03-09");
  Append("ClockResumed", "2026-03-06", json::object(), "2026-03-09");
  const json doc = Json(FoldAll(), "2026-03-20");
  // Paused (03-03, 03-06]: 04, 05, 06.
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["paused_working_days"], 3);
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["elapsed_working_days"], 2);
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["state"], "met");
}

TEST_F(ApplicationTest, OverlappingPausesEnteredOutOfOrderCountTheirDaysOnce) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("ClockPaused", "2026-03-05");
  Append("ClockResumed", "2026-03-10");
  Append("ClockPaused", "2026-03-03", json::object(), "2026-03-10");
  Append("ClockResumed", "2026-03-06", json::object(), "2026-03-10");
  Append("SchemeReplied", "2026-03-16");
  const json doc = Json(FoldAll(), "2026-03-20");
  // (03-02, 03-16] holds 10 working days; paused (03-03, 03-10] = 04, 05, 06, 09, 10: 5 (the
  // two pauses share 03-06), so elapsed 5 > 3.
  const json& clock = doc["clocks"]["scheme_reply"];
  EXPECT_EQ(clock["paused_working_days"], 5);
  EXPECT_EQ(clock["elapsed_working_days"], 5);
  EXPECT_EQ(clock["pauses"], json::parse(R"([{"from":"2026-03-03","to":"2026-03-10"}])"));
}

// The same for the steps after a connection: an archive and a callback dated before the
// connection are flagged although the connection was recorded first.
TEST_F(ApplicationTest, AnArchiveOrCallbackDatedBeforeTheConnectionIsAViolation) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-03");
  Append("ContractSigned", "2026-03-04");
  Append("MeterConnected", "2026-03-10");
  const uint64_t archived = Append("Archived", "2026-03-05", json::object(), "2026-03-10");
  const uint64_t callback = Append("CallbackMade", "2026-03-04", json::object(), "2026-03-10");
  Append("CallbackMade", "2026-03-10");  // the same day as the connection: after it
  const ApplicationState state = FoldAll();
  ASSERT_EQ(state.violations.size(), 2u);
  EXPECT_EQ(state.violations[0].rule, "archived_before_connection");
  EXPECT_EQ(state.violations[0].position, archived);
  EXPECT_EQ(state.violations[1].rule, "callback_before_connection");
  EXPECT_EQ(state.violations[1].position, callback);
  // As of a date between the two, the application says the same about the archive.
  auto events = ledger_->ReadStream("app/KM-1");
  ASSERT_TRUE(events.ok());
  const ApplicationState then = FoldStream(events.value(), OccurredBy(At("2026-03-06")));
  ASSERT_EQ(then.violations.size(), 2u);
  EXPECT_EQ(then.violations[0].rule, "archived_before_connection");
  EXPECT_EQ(then.violations[1].rule, "callback_before_connection");
}

// The order of facts is their business dates: a contract entered first but dated after the
// connection was not signed before it. The whole log and the state as of a date between the two
// must say the same about the connection.
TEST_F(ApplicationTest, APrerequisiteEnteredFirstButDatedAfterTheConnectionIsAViolation) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-04");
  Append("ContractSigned", "2026-03-20");
  const uint64_t connected = Append("MeterConnected", "2026-03-10");
  const ApplicationState state = FoldAll();
  ASSERT_EQ(state.violations.size(), 1u);
  EXPECT_EQ(state.violations[0].rule, "connected_without_contract");
  EXPECT_EQ(state.violations[0].position, connected);
  // Measured from the fees (03-04), the last prerequisite that had happened: 03-05, 06, 09, 10
  // are 4 working days > 3.
  const json doc = Json(state, "2026-03-25");
  EXPECT_EQ(doc["clocks"]["connection"]["start"], "2026-03-04");
  EXPECT_EQ(doc["clocks"]["connection"]["end"], "2026-03-10");
  EXPECT_EQ(doc["clocks"]["connection"]["elapsed_working_days"], 4);
  EXPECT_EQ(doc["clocks"]["connection"]["state"], "missed");

  auto events = ledger_->ReadStream("app/KM-1");
  ASSERT_TRUE(events.ok());
  const ApplicationState as_of = FoldStream(events.value(), OccurredBy(At("2026-03-15")));
  ASSERT_EQ(as_of.violations.size(), 1u);
  EXPECT_EQ(as_of.violations[0].rule, "connected_without_contract");
  const json then = Json(as_of, "2026-03-15");
  EXPECT_EQ(then["clocks"]["connection"], doc["clocks"]["connection"]);

  // Dated the same day as the connection, it counts as before.
  Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "residential"}}, "", "app/KM-2");
  Append("SchemeReplied", "2026-03-03", json::object(), "", "app/KM-2");
  Append("FeesSettled", "2026-03-04", json::object(), "", "app/KM-2");
  Append("ContractSigned", "2026-03-10", json::object(), "", "app/KM-2");
  Append("MeterConnected", "2026-03-10", json::object(), "", "app/KM-2");
  ApplicationState same_day;
  ASSERT_TRUE(ledger_
                  ->Scan(1,
                         [&](const ledger::EventView& event) {
                           if (event.stream() == "app/KM-2") Fold(same_day, event);
                           return true;
                         })
                  .ok());
  EXPECT_TRUE(same_day.violations.empty()) << same_day.violations[0].message;
}

TEST_F(ApplicationTest, WithdrawalStopsOpenClocks) {
  Accept("2026-03-02");
  Append("Withdrawn", "2026-03-04");
  const ApplicationState state = FoldAll();
  EXPECT_EQ(state.stage(), "withdrawn");
  const json clock = Json(state, "2026-06-01")["clocks"]["scheme_reply"];
  EXPECT_EQ(clock["state"], "stopped");
  EXPECT_EQ(clock["stopped_by"], "Withdrawn");
  EXPECT_EQ(clock["end"], "2026-03-04");
}

TEST_F(ApplicationTest, ChangeOfUseRunsTheChangeCompletionClock) {
  Accept("2026-03-02", {{"business", "change"}, {"change_kind", "rename"}});
  Append("ChangeExecuted", "2026-03-06");
  Append("Archived", "2026-03-09");
  const ApplicationState state = FoldAll();
  const json doc = Json(state, "2026-03-09");
  EXPECT_FALSE(doc["clocks"].contains("scheme_reply"));
  EXPECT_EQ(doc["clocks"]["change_completion"]["state"], "met");
  EXPECT_EQ(doc["clocks"]["change_completion"]["elapsed_working_days"], 4);
  EXPECT_EQ(doc["clocks"]["change_completion"]["limit"], 5);
  EXPECT_TRUE(doc["violations"].empty());
}

TEST_F(ApplicationTest, InvalidEventsInTheLogAreSkippedAndListed) {
  Accept("2026-03-02");
  // The ledger does not judge; a bypassed front door could store these.
  const uint64_t resume = Append("ClockResumed", "2026-03-03");
  Append("ApplicationAccepted", "2026-03-04");
  const ApplicationState state = FoldAll();
  ASSERT_EQ(state.rejected.size(), 2u);
  EXPECT_EQ(state.rejected[0].rule, "resume_without_pause");
  EXPECT_EQ(state.rejected[0].position, resume);
  EXPECT_EQ(state.rejected[1].rule, "already_accepted");
  EXPECT_EQ(state.events_applied, 1u);
}

// The mirror of the test above: a contract entered after the connection but dated before it was
// signed before it, only entered late. The violation is settled (listed with the event that
// settled it, counted nowhere) and the connection is measured from the prerequisites as dated.
// A contract dated after the connection settles nothing; as the system knew it before the late
// entry, the violation stands.
// The same facts give the same verdict whatever order they were entered in: a contract dated
// before the scheme reply was signed before it, also when the reply was entered first.
TEST_F(ApplicationTest, AContractDatedBeforeTheSchemeReplyIsAViolationInEitherOrderOfEntry) {
  const auto fold = [&](const std::string& stream) {
    auto events = ledger_->ReadStream(stream);
    EXPECT_TRUE(events.ok());
    return FoldStream(events.value());
  };
  const json residential = {{"customer_class", "residential"}};
  // The reply entered first, the contract after it but dated before it.
  Append("ApplicationAccepted", "2026-03-02", residential, "", "app/KM-1");
  Append("SchemeReplied", "2026-03-05", json::object(), "", "app/KM-1");
  const uint64_t contract = Append("ContractSigned", "2026-03-04", json::object(), "", "app/KM-1");
  const ApplicationState replied_first = fold("app/KM-1");
  ASSERT_EQ(replied_first.violations.size(), 1u);
  EXPECT_EQ(replied_first.violations[0].rule, "contract_before_scheme_reply");
  EXPECT_EQ(replied_first.violations[0].position, contract);
  EXPECT_NE(replied_first.violations[0].message.find("2026-03-05"), std::string::npos)
      << replied_first.violations[0].message;
  // The contract entered first: the reply dated after it does not settle it.
  Append("ApplicationAccepted", "2026-03-02", residential, "", "app/KM-2");
  Append("ContractSigned", "2026-03-04", json::object(), "", "app/KM-2");
  Append("SchemeReplied", "2026-03-05", json::object(), "", "app/KM-2");
  const ApplicationState signed_first = fold("app/KM-2");
  ASSERT_EQ(signed_first.violations.size(), 1u);
  EXPECT_EQ(signed_first.violations[0].rule, "contract_before_scheme_reply");
  EXPECT_TRUE(signed_first.settled.empty());
  // On the same day: not before.
  Append("ApplicationAccepted", "2026-03-02", residential, "", "app/KM-3");
  Append("SchemeReplied", "2026-03-05", json::object(), "", "app/KM-3");
  Append("ContractSigned", "2026-03-05", json::object(), "", "app/KM-3");
  EXPECT_TRUE(fold("app/KM-3").violations.empty());
}

// The first reply entered late, after another dated later: the scheme_reply clock ends on the
// earlier date, the one the prerequisites and settled violations go by — not missed on a date
// the ledger itself says was not the reply's.
TEST_F(ApplicationTest, ASchemeReplyEnteredLateButDatedEarlierEndsTheClockThere) {
  Accept("2026-03-02", {{"customer_class", "lv_nonresidential"}});
  Append("SchemeReplied", "2026-04-15");  // far past the 8-day limit: missed
  const uint64_t first = Append("SchemeReplied", "2026-03-09", json::object(), "2026-04-16");
  const json doc = Json(FoldAll(), "2026-04-20");
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["end"], "2026-03-09");
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["end_position"], first);
  EXPECT_EQ(doc["clocks"]["scheme_reply"]["state"], "met");
  EXPECT_EQ(doc["prerequisites"]["scheme_replied"]["date"], "2026-03-09");
  // One dated later than the recorded end moves nothing.
  Append("SchemeReplied", "2026-03-20");
  EXPECT_EQ(Json(FoldAll(), "2026-04-20")["clocks"]["scheme_reply"]["end"], "2026-03-09");
}

TEST_F(ApplicationTest, APrerequisiteEnteredLateButDatedBeforeTheConnectionSettlesItsViolation) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-04");
  const uint64_t connected = Append("MeterConnected", "2026-03-10");
  const uint64_t contract = Append("ContractSigned", "2026-03-06", json::object(), "2026-03-12");
  const ApplicationState state = FoldAll();
  EXPECT_TRUE(state.violations.empty()) << state.violations[0].message;
  ASSERT_EQ(state.settled.size(), 1u);
  EXPECT_EQ(state.settled[0].violation.rule, "connected_without_contract");
  EXPECT_EQ(state.settled[0].violation.position, connected);
  EXPECT_EQ(state.settled[0].violation.date, D("2026-03-10"));
  EXPECT_EQ(state.settled[0].by_position, contract);
  EXPECT_EQ(state.settled[0].by_type, "ContractSigned");
  // From the contract (03-06), now the last prerequisite: 03-09, 03-10 are 2 working days <= 3.
  const json doc = Json(state, "2026-03-25");
  EXPECT_EQ(doc["clocks"]["connection"]["start"], "2026-03-06");
  EXPECT_EQ(doc["clocks"]["connection"]["start_position"], contract);  // where its date is from
  EXPECT_EQ(doc["clocks"]["connection"]["elapsed_working_days"], 2);
  EXPECT_EQ(doc["clocks"]["connection"]["state"], "met");
  EXPECT_EQ(doc["prerequisites"]["contract_signed"],
            json({{"date", "2026-03-06"}, {"position", contract}}));
  ASSERT_EQ(doc["settled_violations"].size(), 1u);
  EXPECT_EQ(doc["settled_violations"][0]["rule"], "connected_without_contract");
  EXPECT_EQ(doc["settled_violations"][0]["settled_by"], contract);
  EXPECT_EQ(doc["settled_violations"][0]["settled_by_date"], "2026-03-06");
  EXPECT_EQ(doc["violations"], json::array());
  // The late entry is still backdated (4 working days after it occurred).
  ASSERT_EQ(doc["backdated"].size(), 1u);
  EXPECT_EQ(doc["backdated"][0]["position"], contract);
  // What the system knew before the late entry: the violation, measured from the fees.
  auto events = ledger_->ReadStream("app/KM-1");
  ASSERT_TRUE(events.ok());
  events->pop_back();
  const ApplicationState before = FoldStream(events.value());
  ASSERT_EQ(before.violations.size(), 1u);
  EXPECT_EQ(before.violations[0].rule, "connected_without_contract");
  EXPECT_TRUE(before.settled.empty());
  EXPECT_EQ(Json(before, "2026-03-25")["clocks"]["connection"]["start"], "2026-03-04");
  // The stored form keeps both lists.
  const std::optional<ApplicationState> decoded = DecodeApplication(EncodeApplication(state));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(EncodeApplication(*decoded), EncodeApplication(state));
  EXPECT_EQ(Json(*decoded, "2026-03-25"), doc);

  // Dated after the connection, it settles nothing.
  Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "residential"}}, "", "app/KM-2");
  Append("SchemeReplied", "2026-03-03", json::object(), "", "app/KM-2");
  Append("FeesSettled", "2026-03-04", json::object(), "", "app/KM-2");
  Append("MeterConnected", "2026-03-10", json::object(), "", "app/KM-2");
  Append("ContractSigned", "2026-03-11", json::object(), "2026-03-12", "app/KM-2");
  auto other = ledger_->ReadStream("app/KM-2");
  ASSERT_TRUE(other.ok());
  const ApplicationState unsettled = FoldStream(other.value());
  ASSERT_EQ(unsettled.violations.size(), 1u);
  EXPECT_EQ(unsettled.violations[0].rule, "connected_without_contract");
  EXPECT_TRUE(unsettled.settled.empty());
  // Why: the contract is dated after the connection's day, as the application shows.
  EXPECT_EQ(Json(unsettled, "2026-03-25")["prerequisites"]["contract_signed"]["date"],
            "2026-03-11");
}

// A callback entered before the connection is premature; the connection entered after it but
// dated on or before it settles that: the callback did follow the connection. One dated before
// the connection stays premature.
TEST_F(ApplicationTest, AConnectionEnteredLateButDatedBeforeACallbackSettlesIt) {
  Accept("2026-03-02", {{"customer_class", "residential"}});
  Append("SchemeReplied", "2026-03-03");
  Append("FeesSettled", "2026-03-03");
  Append("ContractSigned", "2026-03-04");
  const uint64_t after = Append("CallbackMade", "2026-03-12");
  const uint64_t before = Append("CallbackMade", "2026-03-09", json::object(), "2026-03-12");
  const uint64_t connected = Append("MeterConnected", "2026-03-10", json::object(), "2026-03-13");
  const ApplicationState state = FoldAll();
  ASSERT_EQ(state.violations.size(), 1u);
  EXPECT_EQ(state.violations[0].rule, "callback_before_connection");
  EXPECT_EQ(state.violations[0].position, before);
  ASSERT_EQ(state.settled.size(), 1u);
  EXPECT_EQ(state.settled[0].violation.rule, "callback_before_connection");
  EXPECT_EQ(state.settled[0].violation.position, after);
  EXPECT_EQ(state.settled[0].by_position, connected);
  EXPECT_EQ(state.settled[0].by_type, "MeterConnected");
  // A second MeterConnected is not the connection the callback followed: it settles nothing.
  Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "residential"}}, "", "app/KM-2");
  Append("SchemeReplied", "2026-03-03", json::object(), "", "app/KM-2");
  Append("FeesSettled", "2026-03-03", json::object(), "", "app/KM-2");
  Append("ContractSigned", "2026-03-04", json::object(), "", "app/KM-2");
  Append("MeterConnected", "2026-03-20", json::object(), "", "app/KM-2");
  Append("CallbackMade", "2026-03-12", json::object(), "2026-03-21", "app/KM-2");
  Append("MeterConnected", "2026-03-10", json::object(), "2026-03-21", "app/KM-2");
  auto other = ledger_->ReadStream("app/KM-2");
  ASSERT_TRUE(other.ok());
  const ApplicationState twice = FoldStream(other.value());
  EXPECT_TRUE(twice.rejected.empty()) << twice.rejected[0].message;  // a fact, stored and folded
  EXPECT_TRUE(twice.settled.empty());
  ASSERT_FALSE(twice.violations.empty());
  EXPECT_EQ(twice.violations[0].rule, "callback_before_connection");
}

// The connection clock is what the prerequisites' (first) dates say, whatever order they were
// entered in: the same facts entered in two orders give the same clock and the same settlement.
// Here an earlier-dated second contract and the late fees arrive after the connection, one way
// round and the other: fees 03-05 are then the last prerequisite, 03-06 .. 03-12 = 5 working days
// > 3, missed.
TEST_F(ApplicationTest, TheConnectionClockDoesNotDependOnTheOrderOfLateEntries) {
  auto enter = [this](const std::string& stream, bool fees_first) {
    Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "residential"}}, "", stream);
    Append("SchemeReplied", "2026-03-03", json::object(), "", stream);
    Append("ContractSigned", "2026-03-09", json::object(), "", stream);
    Append("MeterConnected", "2026-03-12", json::object(), "", stream);  // connected_before_fees
    for (int i = 0; i < 2; ++i) {
      if ((i == 0) == fees_first) {
        Append("FeesSettled", "2026-03-05", json::object(), "2026-03-13", stream);
      } else {
        Append("ContractSigned", "2026-03-04", json::object(), "2026-03-13", stream);
      }
    }
    auto events = ledger_->ReadStream(stream);
    EXPECT_TRUE(events.ok());
    return FoldStream(*events);
  };
  const ApplicationState a = enter("app/KM-A", true);
  const ApplicationState b = enter("app/KM-B", false);
  for (const ApplicationState* state : {&a, &b}) {
    EXPECT_TRUE(state->violations.empty());
    ASSERT_EQ(state->settled.size(), 1u);
    EXPECT_EQ(state->settled[0].violation.rule, "connected_before_fees");
    const json clock = Json(*state, "2026-03-25")["clocks"]["connection"];
    EXPECT_EQ(clock["start"], "2026-03-05") << state->stream;
    EXPECT_EQ(clock["elapsed_working_days"], 5) << state->stream;
    EXPECT_EQ(clock["state"], "missed") << state->stream;
  }
  // A clock opened in time moves too when a prerequisite turns out to have happened earlier: it
  // ran from the last of them as dated (here the completion inspection, 03-06).
  const std::string c = "app/KM-C";
  Append("ApplicationAccepted", "2026-03-02", {{"customer_class", "lv_nonresidential"}}, "", c);
  Append("SchemeReplied", "2026-03-03", json::object(), "", c);
  Append("FeesSettled", "2026-03-04", json::object(), "", c);
  Append("CompletionReported", "2026-03-05", json::object(), "", c);
  Append("CompletionInspected", "2026-03-06", json::object(), "", c);
  Append("ContractSigned", "2026-03-20", json::object(), "", c);  // opens it at 03-20
  const uint64_t earlier = Append("ContractSigned", "2026-03-05", json::object(), "2026-03-21", c);
  Append("MeterConnected", "2026-03-26", json::object(), "", c);
  auto events = ledger_->ReadStream(c);
  ASSERT_TRUE(events.ok());
  const json clock = Json(FoldStream(*events), "2026-04-10")["clocks"]["connection"];
  EXPECT_EQ(clock["start"], "2026-03-06");
  EXPECT_NE(clock["start_position"], earlier);  // the inspection's date is the later one
  EXPECT_EQ(clock["elapsed_working_days"], 14);
  EXPECT_EQ(clock["state"], "missed");
}

TEST_F(ApplicationTest, StateAsOfABusinessTime) {
  Accept("2026-03-02");
  Append("SchemeReplied", "2026-03-16");
  Append("FeesSettled", "2026-03-17");
  auto events = ledger_->ReadStream("app/KM-1");
  ASSERT_TRUE(events.ok());
  const ApplicationState as_of = FoldStream(
      events.value(), OccurredBy(domain::ParseTimestamp("2026-03-10T23:59:59+08:00")->unix_us));
  EXPECT_EQ(as_of.stage(), "accepted");
  EXPECT_EQ(View(as_of, SlaClock::kSchemeReply, "2026-03-10").elapsed_working_days, 6);
  EXPECT_EQ(FoldStream(events.value()).stage(), "scheme_replied");
}

TEST_F(ApplicationTest, FoldIsDeterministic) {
  Accept("2026-02-02", {{"important", true}});
  Append("SchemeReplied", "2026-02-27");
  Append("DesignSubmitted", "2026-03-02");
  Append("ClockPaused", "2026-03-03");
  Append("DesignReviewed", "2026-03-05", {{"result", "fail"}});
  Append("ClockResumed", "2026-03-09");
  Append("DesignSubmitted", "2026-03-10", json::object(), "2026-03-13");
  Append("Urged", "2026-03-12");
  const json first = Json(FoldAll(), "2026-03-20");
  const json second = Json(FoldAll(), "2026-03-20");
  EXPECT_EQ(first, second);
  auto events = ledger_->ReadStream("app/KM-1");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Json(FoldStream(events.value()), "2026-03-20"), first);
  // The resubmission during no pause starts attempt 2 unpaused; attempt 1 kept its pause.
  EXPECT_EQ(first["clocks"]["design_review"]["attempt"], 2);
  EXPECT_EQ(first["clocks"]["design_review"]["attempts"][0]["pauses"][0]["to"], "2026-03-05");
}

TEST_F(ApplicationTest, EventsOfAnotherStreamAreIgnored) {
  Accept("2026-03-02");
  Append("ApplicationAccepted", "2026-03-02", json::object(), "", "app/KM-2");
  const ApplicationState state = FoldAll();
  EXPECT_EQ(state.stream, "app/KM-1");
  EXPECT_TRUE(state.rejected.empty());
  EXPECT_EQ(state.events_applied, 1u);
}

// The declared fees_apply / customer_works survive the stored form, each of its three values
// (not declared, false, true) apart from the other's.
TEST(ApplicationCodec, DeclaredFeesAndCustomerWorksRoundTrip) {
  for (std::optional<bool> fees :
       {std::optional<bool>(), std::optional(false), std::optional(true)}) {
    for (std::optional<bool> works :
         {std::optional<bool>(), std::optional(false), std::optional(true)}) {
      ApplicationState state;
      state.stream = "app/CODEC-1";
      state.facts.accepted = true;
      state.facts.fees_apply = fees;
      state.facts.customer_works = works;
      const std::optional<ApplicationState> decoded = DecodeApplication(EncodeApplication(state));
      ASSERT_TRUE(decoded.has_value());
      EXPECT_EQ(decoded->facts.fees_apply, fees);
      EXPECT_EQ(decoded->facts.customer_works, works);
      EXPECT_EQ(decoded->facts, state.facts);
    }
  }
}

}  // namespace
}  // namespace gridledger::projections
