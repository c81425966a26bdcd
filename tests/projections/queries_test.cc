// Goal: the overdue list at a time T (OverdueAt, from the engine's stored states) names exactly the
// clocks that the application's own view at T (AppView: the events that occurred by T, folded)
// shows overdue — also at times inside a day on which a clock ends, and for a connection measured
// from an earlier date than the MeterConnected that opened it.
// Method: a real ledger and engine; hand-made applications on the 2026 calendar (March has no
// holidays) and the national-2009 profile; both queries at chosen times. Expected states are worked
// out in the comments.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>
#include <variant>

#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "projections/engine.h"
#include "projections/queries.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

class OverdueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger::Options options;
    options.side_families = SideFamilies();
    auto opened = ledger::Ledger::Open(dir_.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened).value();
    auto calendar = domain::WorkingCalendar::Load(GRIDLEDGER_SOURCE_DATA_DIR "/calendar");
    ASSERT_TRUE(std::holds_alternative<domain::WorkingCalendar>(calendar));
    calendar_ = std::get<domain::WorkingCalendar>(std::move(calendar));
    auto profile = domain::SlaProfile::Load(GRIDLEDGER_SOURCE_DATA_DIR "/sla/national-2009.json");
    ASSERT_TRUE(std::holds_alternative<domain::SlaProfile>(profile));
    profile_ = std::get<domain::SlaProfile>(std::move(profile));
  }

  // `when` is "2026-MM-DDTHH:MM".
  void Add(const std::string& stream, const std::string& type, const std::string& when, json data) {
    const json event = {{"stream", stream},
                        {"type", type},
                        {"event_id", "e" + std::to_string(++events_)},
                        {"occurred_at", when + ":00+08:00"},
                        {"actor", {{"id", "S1"}, {"role", "clerk"}, {"org", "KM.XS"}}},
                        {"data", std::move(data)}};
    auto decoded = domain::DecodeClientEvent(event);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded))
        << std::get<domain::DecodeError>(decoded).message;
    auto appended =
        ledger_->Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))));
    ASSERT_TRUE(appended.ok()) << appended.status().ToString();
    streams_.insert(stream);
  }

  static json Accepted(const std::string& customer_class) {
    return {
        {"customer_id", "C1"},       {"customer_name", "甲"}, {"customer_class", customer_class},
        {"business", "new_install"}, {"voltage_kv", 10},      {"capacity_kva", 800},
        {"channel", "counter"},      {"important", false},    {"three_zero", false}};
  }

  using Overdue = std::set<std::tuple<std::string, std::string, int>>;  // stream, clock, days

  Overdue FromOverdueAt(const std::string& when) {
    const int64_t at = *ParseTimeArgument(when + ":00+08:00");
    Engine engine(*ledger_);
    EXPECT_TRUE(engine.CatchUp().ok());
    auto rows = OverdueAt(*ledger_, engine, at, ReportOrgs{}, calendar_, profile_);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    Overdue overdue;
    for (const OverdueRow& row : *rows) {
      overdue.emplace(row.stream, domain::SlaClockName(row.view.name), row.view.overdue_days);
    }
    return overdue;
  }

  Overdue FromAppViews(const std::string& when) {
    const int64_t at = *ParseTimeArgument(when + ":00+08:00");
    Overdue overdue;
    for (const std::string& stream : streams_) {
      auto view = AppView(*ledger_, stream, at, std::nullopt, at, calendar_, profile_);
      EXPECT_TRUE(view.ok());
      if (!view.ok() || !*view) continue;
      for (const auto& [name, clock] : (**view)["clocks"].items()) {
        if (clock["state"] == "overdue") {
          overdue.emplace(stream, name, clock["overdue_days"].get<int>());
        }
      }
    }
    return overdue;
  }

  testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  domain::WorkingCalendar calendar_;
  domain::SlaProfile profile_;
  std::set<std::string> streams_;
  int events_ = 0;
};

TEST_F(OverdueTest, TheOverdueListAtATimeIsWhatEachApplicationShowsThen) {
  // R1 (residential, scheme reply 3 days): accepted 03-02, replied 03-16 at 17:00. In the
  // morning of 03-16 the clock is still open: (03-02, 03-16] = 10 working days, 7 overdue.
  Add("app/R1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("residential"));
  Add("app/R1", "SchemeReplied", "2026-03-16T17:00", {{"scheme", "s"}});
  // H1 (hv_single, connection 7 days): contract 03-04, then connected 03-30 without fees or a
  // completion inspection (violations): the connection is measured from 03-04, but before 03-30
  // it had not started — nothing was pending then but the prerequisites.
  Add("app/H1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("hv_single"));
  Add("app/H1", "SchemeReplied", "2026-03-03T10:00", {{"scheme", "s"}});
  Add("app/H1", "ContractSigned", "2026-03-04T10:00", {{"contract_id", "HT-1"}});
  Add("app/H1", "MeterConnected", "2026-03-30T10:00", {{"meter_id", "M-1"}});
  // P1 (residential): accepted 03-02, paused 03-03 at 16:00 (customer), never resumed: in the
  // morning of 03-03 one working day had passed and nothing was paused.
  Add("app/P1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("residential"));
  Add("app/P1", "ClockPaused", "2026-03-03T16:00", {{"reason", "customer asked to wait"}});

  const Overdue morning = FromAppViews("2026-03-16T09:00");
  EXPECT_TRUE(morning.contains({"app/R1", "scheme_reply", 7}));
  EXPECT_EQ(FromOverdueAt("2026-03-16T09:00"), morning);
  const Overdue evening = FromAppViews("2026-03-16T18:00");
  EXPECT_FALSE(evening.contains({"app/R1", "scheme_reply", 7}));
  EXPECT_EQ(FromOverdueAt("2026-03-16T18:00"), evening);
  for (const char* when : {"2026-03-03T09:00", "2026-03-03T17:00", "2026-03-20T12:00",
                           "2026-03-30T09:00", "2026-03-30T11:00", "2026-04-15T12:00"}) {
    EXPECT_EQ(FromOverdueAt(when), FromAppViews(when)) << when;
  }
  for (const auto& [stream, clock, days] : FromOverdueAt("2026-03-20T12:00")) {
    EXPECT_FALSE(stream == "app/H1" && clock == "connection") << days;
  }
}

// S1: connected 03-20 without a contract, then a contract dated 03-04 entered: the connection
// ran from 03-04 (the last prerequisite, as dated), so at 03-12 it was overdue (connection limit 3:
// 03-05 .. 03-12 are 6 working days) in the overdue list as in the application's view then.
TEST_F(OverdueTest, ASettledConnectionWasOverdueWhereItsApplicationSaysSo) {
  Add("app/S1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("residential"));
  Add("app/S1", "SchemeReplied", "2026-03-03T10:00", {{"scheme", "s"}});
  Add("app/S1", "FeesSettled", "2026-03-03T10:00", {{"amount_cny", 1}});
  Add("app/S1", "MeterConnected", "2026-03-20T10:00", {{"meter_id", "M-1"}});
  Add("app/S1", "ContractSigned", "2026-03-04T10:00", {{"contract_id", "HT-1"}});
  const Overdue then = FromAppViews("2026-03-12T12:00");
  EXPECT_TRUE(then.contains({"app/S1", "connection", 3}));
  EXPECT_EQ(FromOverdueAt("2026-03-12T12:00"), then);
}

// A clock that needs a calendar year that is not loaded (2024 here) is not overdue — and not
// left out silently either: it is handed back as undetermined.
TEST_F(OverdueTest, ClocksTheCalendarCannotJudgeAreNamedNotDropped) {
  Add("app/Y1", "ApplicationAccepted", "2024-12-20T10:00", Accepted("residential"));
  Add("app/R1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("residential"));
  const int64_t at = *ParseTimeArgument("2026-03-16T12:00:00+08:00");
  Engine engine(*ledger_);
  ASSERT_TRUE(engine.CatchUp().ok());
  std::vector<OverdueRow> undetermined;
  auto rows = OverdueAt(*ledger_, engine, at, ReportOrgs{}, calendar_, profile_, &undetermined);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().stream, "app/R1");
  ASSERT_EQ(undetermined.size(), 1u);
  EXPECT_EQ(undetermined.front().stream, "app/Y1");
  EXPECT_EQ(undetermined.front().view.state, ClockState::kCalendarMissing);
}

// Asked for a time before an application was accepted, the view says there is none yet, not an
// empty application.
TEST_F(OverdueTest, AnApplicationBeforeItsAcceptanceIsNotFound) {
  Add("app/R1", "ApplicationAccepted", "2026-03-02T10:00", Accepted("residential"));
  const int64_t before = *ParseTimeArgument("2026-03-01T12:00:00+08:00");
  auto view = AppView(*ledger_, "app/R1", before, std::nullopt, before, calendar_, profile_);
  ASSERT_TRUE(view.ok());
  EXPECT_FALSE(view->has_value()) << (*view)->dump();
  const int64_t after = *ParseTimeArgument("2026-03-02T12:00:00+08:00");
  auto then = AppView(*ledger_, "app/R1", after, std::nullopt, after, calendar_, profile_);
  ASSERT_TRUE(then.ok() && then->has_value());
  EXPECT_EQ((**then)["stream"], "app/R1");
}

}  // namespace
}  // namespace gridledger::projections
