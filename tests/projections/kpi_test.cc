// Goal: the KPI projection gives each KPI of domain.md's table the numerator, denominator and ids
// that the formulas give by hand, keeps orgs apart, merges quarters, reports an empty denominator
// as null, and stores its buckets losslessly.
// Method: a hand-built March 2026 of org KM.XS (plus a February app, an April archive and a second
// org), each event encoded from contract JSON with domain::DecodeClientEvent and folded first into
// its application state, then into a KpiBook. Expected values are worked out in the comments from
// the 2026 calendar (March has no holidays; 04-04..04-06 are off) and the national-2009 profile
// (residential: scheme_reply 3, connection 3; change_completion 5), not by calling the code.
#include "projections/kpi.h"

#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "domain/event_json.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

domain::WorkingCalendar LoadCalendar() {
  auto loaded =
      domain::WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
  EXPECT_TRUE(std::holds_alternative<domain::WorkingCalendar>(loaded));
  return std::get<domain::WorkingCalendar>(loaded);
}

domain::SlaProfile LoadProfile() {
  auto loaded =
      domain::SlaProfile::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/sla/national-2009.json");
  EXPECT_TRUE(std::holds_alternative<domain::SlaProfile>(loaded));
  return std::get<domain::SlaProfile>(loaded);
}

// An event with owned storage, so that EventRecord views stay valid.
struct OwnedEvent {
  uint64_t position = 0;
  std::string stream, type, org, payload;
  int64_t occurred_at_us = 0, recorded_at_us = 0;

  EventRecord Record() const {
    return EventRecord{.position = position,
                       .stream = stream,
                       .type = type,
                       .actor_id = "S1",
                       .actor_org = org,
                       .occurred_at_us = occurred_at_us,
                       .recorded_at_us = recorded_at_us,
                       .payload = payload,
                       .imported = false};
  }
};

// Appends events in call order (positions from 1), folding each into its application state and
// into a KpiBook the way a runner does.
class Month {
 public:
  // `day` is "MM-DD" in 2026 (or a whole "YYYY-MM-DD") at 10:00 Shanghai time; `recorded_day`
  // likewise (default: same).
  void Add(const std::string& stream, const std::string& type, const std::string& day,
           json data = json::object(), const std::string& org = "KM.XS",
           const std::string& recorded_day = "") {
    const json event = {{"stream", stream},
                        {"type", type},
                        {"event_id", "e" + std::to_string(events_.size() + 1)},
                        {"occurred_at", Date(day) + "T10:00:00+08:00"},
                        {"actor", {{"id", "S1"}, {"role", "clerk"}, {"org", org}}},
                        {"data", std::move(data)}};
    auto decoded = domain::DecodeClientEvent(event);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded))
        << std::get<domain::DecodeError>(decoded).message;
    const auto& client = std::get<domain::ClientEvent>(decoded);
    OwnedEvent& owned = events_.emplace_back();
    owned.position = events_.size();
    owned.stream = stream;
    owned.type = type;
    owned.org = org;
    owned.payload = client.payload;
    owned.occurred_at_us = client.occurred_at_us;
    owned.recorded_at_us =
        recorded_day.empty()
            ? client.occurred_at_us
            : domain::ParseTimestamp(Date(recorded_day) + "T10:00:00+08:00")->unix_us;
    const EventRecord record = owned.Record();
    const ApplicationState* app = nullptr;
    if (stream.rfind("app/", 0) == 0) {
      Fold(apps_[stream], record);
      app = &apps_[stream];
    }
    apps_after_.push_back(app == nullptr ? std::nullopt : std::optional(*app));
    Fold(book_, record, app);
  }

  uint64_t last_position() const { return events_.size(); }
  const KpiBook& book() const { return book_; }
  const std::deque<OwnedEvent>& events() const { return events_; }
  const std::vector<std::optional<ApplicationState>>& apps_after() const { return apps_after_; }
  const ApplicationState& app(const std::string& stream) { return apps_[stream]; }

 private:
  static std::string Date(const std::string& day) { return day.size() == 5 ? "2026-" + day : day; }

  std::deque<OwnedEvent> events_;
  std::vector<std::optional<ApplicationState>> apps_after_;
  std::map<std::string, ApplicationState> apps_;
  KpiBook book_;
};

json Accepted(const std::string& business = "new_install") {
  json data = {
      {"customer_id", "C1"},  {"customer_name", "某公司"}, {"customer_class", "residential"},
      {"business", business}, {"voltage_kv", 0.4},         {"capacity_kva", 8},
      {"channel", "counter"}, {"important", false},        {"three_zero", false}};
  if (business == "change") data["change_kind"] = "rename";
  return data;
}

// A residential new install through to archive, with scheme/fees/contract on one day.
void Residential(Month& m, const std::string& app, const std::string& accepted,
                 const std::string& replied, const std::string& connected,
                 const std::string& archived, const std::string& org = "KM.XS") {
  m.Add(app, "ApplicationAccepted", accepted, Accepted(), org);
  m.Add(app, "SchemeReplied", replied, {{"scheme", "0.4kV from transformer 3"}}, org);
  m.Add(app, "FeesSettled", replied, {{"amount_cny", 100}}, org);
  m.Add(app, "ContractSigned", replied, {{"contract_id", "HT-" + app}}, org);
  m.Add(app, "MeterConnected", connected, {{"meter_id", "M-" + app}}, org);
  if (!archived.empty()) m.Add(app, "Archived", archived, json::object(), org);
}

json Callback(const std::string& result, const std::string& satisfaction = "") {
  json data = {{"agent", "A7"}, {"result", result}};
  if (!satisfaction.empty()) data["satisfaction"] = satisfaction;
  return data;
}

json Report(const std::string& type, const std::string& due) {
  return {{"report_type", type}, {"period", "2026-02"}, {"due_date", due}};
}

class KpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A5 (February): everything on consecutive working days → met, connected with a contract.
    Residential(m_, "app/A5", "02-02", "02-03", "02-04", "02-05");
    // A1: scheme 03-02 → 03-04 (2 ≤ 3), connection 03-05 → 03-09 (2 ≤ 3): met.
    m_.Add("app/A1", "ApplicationAccepted", "03-02", Accepted());
    m_.Add("app/A1", "DocumentReviewed", "03-03",
           {{"reviewer", "I1"},
            {"items", {{{"item", "id_card"}, {"present", true}, {"correct", true}}}},
            {"conclusion", "pass"}});
    m_.Add("app/A1", "SchemeReplied", "03-04", {{"scheme", "s"}});
    m_.Add("app/A1", "FeesSettled", "03-04", {{"amount_cny", 100}});
    m_.Add("app/A1", "ContractSigned", "03-05", {{"contract_id", "HT-A1"}});
    m_.Add("app/A1", "MeterConnected", "03-09", {{"meter_id", "M-A1"}});
    m_.Add("app/A1", "SiteInspected", "03-09",
           {{"inspector", "I1"}, {"items", {"meter"}}, {"conclusion", "pass"}});
    // Recorded one working day late: within the tolerance of 1, not backdated.
    m_.Add("app/A1", "Archived", "03-10", json::object(), "KM.XS", "03-11");
    m_.Add("app/A1", "CallbackMade", "03-12", Callback("reached", "satisfied"));
    // A2: scheme 03-02 → 03-10 is 6 working days > 3: missed. Its Archived (03-12) is recorded
    // 03-18: 4 working days late > 1, backdated.
    m_.Add("app/A2", "ApplicationAccepted", "03-02", Accepted());
    m_.Add("app/A2", "DocumentReviewed", "03-03",
           {{"reviewer", "I1"}, {"items", json::array()}, {"conclusion", "fail"}});
    m_.Add("app/A2", "SchemeReplied", "03-10", {{"scheme", "s"}});
    m_.Add("app/A2", "FeesSettled", "03-10", {{"amount_cny", 100}});
    m_.Add("app/A2", "ContractSigned", "03-10", {{"contract_id", "HT-A2"}});
    m_.Add("app/A2", "MeterConnected", "03-11", {{"meter_id", "M-A2"}});
    m_.Add("app/A2", "Archived", "03-12", json::object(), "KM.XS", "03-18");
    backdated_position_ = m_.last_position();
    m_.Add("app/A2", "CallbackMade", "03-13", Callback("no_answer"));
    m_.Add("app/A2", "CallbackMade", "03-13", Callback("reached", "dissatisfied"));
    // A3: connected in March (03-27), archived in April: met, in Q2's timeliness.
    Residential(m_, "app/A3", "03-25", "03-26", "03-27", "04-01");
    // A4: connected 03-05 without a contract (violation connected_without_contract), not archived.
    m_.Add("app/A4", "ApplicationAccepted", "03-02", Accepted());
    m_.Add("app/A4", "SchemeReplied", "03-03", {{"scheme", "s"}});
    m_.Add("app/A4", "FeesSettled", "03-03", {{"amount_cny", 100}});
    m_.Add("app/A4", "MeterConnected", "03-05", {{"meter_id", "M-A4"}});
    AddChanges();
    AddReports();
    // Another org: one met archive in March.
    Residential(m_, "app/G1", "03-02", "03-03", "03-04", "03-05", "KM.GD");
    // Training by S9 of KM.XS: 2.5 hours, 3 attendees.
    m_.Add("staff/S9", "TrainingHeld", "03-10",
           {{"topic", "业扩时限"}, {"attendees", {"S1", "S2", "S9"}}, {"hours", 2.5}});
  }

  void AddChanges() {
    // C1: accepted 03-02, executed 03-06 (4 ≤ 5): met; reached, basically satisfied.
    m_.Add("app/C1", "ApplicationAccepted", "03-02", Accepted("change"));
    m_.Add("app/C1", "ChangeExecuted", "03-06", {{"summary", "renamed"}});
    m_.Add("app/C1", "CallbackMade", "03-09", Callback("reached", "basically_satisfied"));
    // C2: accepted 03-02, executed 03-16 (10 > 5): missed, due in March.
    m_.Add("app/C2", "ApplicationAccepted", "03-02", Accepted("change"));
    m_.Add("app/C2", "ChangeExecuted", "03-16", {{"summary", "renamed"}});
    // C3: accepted 03-23, open: deadline 03-30, due in March and not met; urged 03-27.
    m_.Add("app/C3", "ApplicationAccepted", "03-23", Accepted("change"));
    m_.Add("app/C3", "Urged", "03-27",
           {{"level", 1}, {"to_org", "KM.XS.OPS"}, {"to_person", "W5"}, {"channel", "phone"}});
    // C4: accepted 03-30, open: deadline 04-07 (04-04..06 off), due in April.
    m_.Add("app/C4", "ApplicationAccepted", "03-30", Accepted("change"));
    // C5: withdrawn: never due.
    m_.Add("app/C5", "ApplicationAccepted", "03-02", Accepted("change"));
    m_.Add("app/C5", "Withdrawn", "03-03", {{"reason", "customer cancelled"}});
  }

  void AddReports() {
    // R1 due 03-05, submitted 03-05: on time, never corrected.
    m_.Add("report/monthly_stats/2026-02", "ReportDue", "03-01",
           Report("monthly_stats", "2026-03-05"));
    m_.Add("report/monthly_stats/2026-02", "ReportSubmitted", "03-05");
    // R2 due 03-10, submitted 03-11 (late), then corrected.
    m_.Add("report/fees/2026-02", "ReportDue", "03-01", Report("fees", "2026-03-10"));
    m_.Add("report/fees/2026-02", "ReportSubmitted", "03-11", json::object(), "KM.XS.DIR");
    m_.Add("report/fees/2026-02", "ReportCorrected", "03-12", {{"errors_found", 2}});
    // R3 due 03-20, never submitted. R4 due in April.
    m_.Add("report/sla/2026-02", "ReportDue", "03-01", Report("sla", "2026-03-20"));
    m_.Add("report/x/2026-03", "ReportDue", "03-01", Report("x", "2026-04-05"));
  }

  json Table(const std::string& period, std::optional<std::string> org = "KM.XS",
             std::optional<int64_t> as_of_us = std::nullopt) {
    return KpiTable(States(m_.book()), period, org, calendar_, profile_, KpiTargets{}, as_of_us);
  }

  static const json& Kpi(const json& table, const std::string& id) {
    for (const json& kpi : table.at("kpis")) {
      if (kpi.at("id") == id) return kpi;
    }
    static const json kNone;
    ADD_FAILURE() << "no kpi " << id;
    return kNone;
  }

  static void ExpectRatio(const json& kpi, std::vector<std::string> numerator_ids,
                          std::vector<std::string> denominator_ids) {
    EXPECT_EQ(kpi.at("numerator_ids"), json(numerator_ids)) << kpi.dump();
    EXPECT_EQ(kpi.at("denominator_ids"), json(denominator_ids)) << kpi.dump();
    EXPECT_EQ(kpi.at("numerator"), numerator_ids.size());
    EXPECT_EQ(kpi.at("denominator"), denominator_ids.size());
    EXPECT_DOUBLE_EQ(kpi.at("value").get<double>(),
                     static_cast<double>(numerator_ids.size()) / denominator_ids.size());
  }

  Month m_;
  uint64_t backdated_position_ = 0;
  domain::WorkingCalendar calendar_ = LoadCalendar();
  domain::SlaProfile profile_ = LoadProfile();
};

TEST_F(KpiTest, TimelinessCountsArchivedAppsWithEveryClockMet) {
  const json kpi = Kpi(Table("2026-03"), "timeliness");
  ExpectRatio(kpi, {"app/A1"}, {"app/A1", "app/A2"});
  EXPECT_EQ(kpi.at("name_zh"), "业扩报装时限达标率");
  EXPECT_EQ(kpi.at("met"), false);
  EXPECT_DOUBLE_EQ(kpi.at("target").get<double>(), 1.0);
}

// A table names what it was judged by: the same events give other figures under another SLA
// profile or calendar, and an auditor reproducing a reported table needs both.
TEST_F(KpiTest, ATableNamesTheProfileAndCalendarItWasJudgedBy) {
  const json basis = Table("2026-03").at("basis");
  EXPECT_EQ(basis.at("sla_profile").at("name"), profile_.name());
  EXPECT_EQ(basis.at("sla_profile").at("source"), profile_.source());
  EXPECT_FALSE(profile_.source().empty());
  EXPECT_EQ(basis.at("calendar").at("first_year"), *calendar_.FirstLoadedYear());
  EXPECT_EQ(basis.at("calendar").at("last_year"), *calendar_.LastLoadedYear());
}

// domain.md counts violations against the KPIs: an application connected before its fees were
// settled met every clock it had, and still did not meet its time limits.
TEST_F(KpiTest, AViolationFlaggedOnAnArchivedAppFailsItsTimeliness) {
  Residential(m_, "app/M1", "05-11", "05-12", "05-13", "05-14");
  m_.Add("app/M2", "ApplicationAccepted", "05-11", Accepted());
  m_.Add("app/M2", "SchemeReplied", "05-12", {{"scheme", "s"}});
  m_.Add("app/M2", "ContractSigned", "05-12", {{"contract_id", "HT-M2"}});
  m_.Add("app/M2", "MeterConnected", "05-13", {{"meter_id", "M-M2"}});
  m_.Add("app/M2", "Archived", "05-14");
  ASSERT_EQ(m_.app("app/M2").violations.size(), 1u);
  EXPECT_EQ(m_.app("app/M2").violations[0].rule, "connected_before_fees");
  const json kpi = Kpi(Table("2026-05"), "timeliness");
  ExpectRatio(kpi, {"app/M1"}, {"app/M1", "app/M2"});
}

TEST_F(KpiTest, ChangeCompletionCountsExecutedAndOpenChangesDueInThePeriod) {
  ExpectRatio(Kpi(Table("2026-03"), "change_completion"), {"app/C1"},
              {"app/C1", "app/C2", "app/C3"});
  // C4's deadline is 04-07: due in April (not executed, so not met).
  ExpectRatio(Kpi(Table("2026-04"), "change_completion"), {}, {"app/C4"});
}

// A paused change is not due while its deadline moves with the pause — unless it was already
// late when the pause began.
TEST_F(KpiTest, APausedChangeAlreadyLateIsDueAtItsDeadline) {
  // C6: accepted 06-01, deadline 06-08; paused 06-15 and still paused: late, due in June.
  m_.Add("app/C6", "ApplicationAccepted", "06-01", Accepted("change"));
  m_.Add("app/C6", "ClockPaused", "06-15", {{"reason", "customer_request"}, {"note", "away"}});
  // C7: accepted 06-22, paused the next day with days to spare: not due while paused.
  m_.Add("app/C7", "ApplicationAccepted", "06-22", Accepted("change"));
  m_.Add("app/C7", "ClockPaused", "06-23", {{"reason", "customer_request"}, {"note", "away"}});
  // C8: like C6, and resumed 07-15: the late pause moved nothing, still due in June.
  m_.Add("app/C8", "ApplicationAccepted", "06-01", Accepted("change"));
  m_.Add("app/C8", "ClockPaused", "06-15", {{"reason", "customer_request"}, {"note", "away"}});
  m_.Add("app/C8", "ClockResumed", "07-15");
  // C9: accepted Friday 06-05, deadline Friday 06-12, paused Saturday 06-13: no working day had
  // gone by past the deadline, so the pause counts and the change is not due while it lasts.
  m_.Add("app/C9", "ApplicationAccepted", "06-05", Accepted("change"));
  m_.Add("app/C9", "ClockPaused", "06-13", {{"reason", "customer_request"}, {"note", "away"}});
  ExpectRatio(Kpi(Table("2026-06"), "change_completion"), {}, {"app/C6", "app/C8"});
  EXPECT_TRUE(Kpi(Table("2026-07"), "change_completion").at("value").is_null());
}

TEST_F(KpiTest, ChangeCompletionAsOfADateSkipsDeadlinesStillAhead) {
  // On 03-25 C3's deadline (03-30) is still ahead: not yet due.
  const int64_t as_of = domain::ParseTimestamp("2026-03-25T12:00:00+08:00")->unix_us;
  ExpectRatio(Kpi(Table("2026-03", "KM.XS", as_of), "change_completion"), {"app/C1"},
              {"app/C1", "app/C2"});
}

TEST_F(KpiTest, CallbackSatisfactionCountsReachedCallbacks) {
  const json kpi = Kpi(Table("2026-03"), "callback_satisfaction");
  // Bucket order is position order: A1 (satisfied), A2 (dissatisfied; no_answer not counted),
  // C1 (basically satisfied). 2/3 < 95%.
  ExpectRatio(kpi, {"app/A1", "app/C1"}, {"app/A1", "app/A2", "app/C1"});
  EXPECT_EQ(kpi.at("met"), false);
  EXPECT_DOUBLE_EQ(kpi.at("target").get<double>(), 0.95);
}

// A callback before the connection it should follow is a violation, counted against KPI 3: a
// reached, satisfied one is in the denominator and not in the numerator, and it does not cover
// the application for the callback rate; the real callback after the connection does.
TEST_F(KpiTest, ACallbackBeforeTheConnectionCountsAgainstSatisfaction) {
  m_.Add("app/P1", "ApplicationAccepted", "03-02", Accepted());
  m_.Add("app/P1", "CallbackMade", "03-03", Callback("reached", "satisfied"));
  m_.Add("app/P1", "SchemeReplied", "03-03", {{"scheme", "s"}});
  m_.Add("app/P1", "FeesSettled", "03-03", {{"amount_cny", 100}});
  m_.Add("app/P1", "ContractSigned", "03-04", {{"contract_id", "HT-P1"}});
  m_.Add("app/P1", "MeterConnected", "03-05", {{"meter_id", "M-P1"}});
  const json early = Table("2026-03");
  // (P1's events come after the fixture's: last in position order.)
  ExpectRatio(Kpi(early, "callback_satisfaction"), {"app/A1", "app/C1"},
              {"app/A1", "app/A2", "app/C1", "app/P1"});
  EXPECT_EQ(early["supporting"]["callback_rate"]["numerator_ids"], json({"app/A1", "app/A2"}));
  EXPECT_EQ(early["supporting"]["violations"]["by_rule"]["callback_before_connection"], 1);

  m_.Add("app/P1", "CallbackMade", "03-06", Callback("reached", "satisfied"));
  const json after = Table("2026-03");
  ExpectRatio(Kpi(after, "callback_satisfaction"), {"app/A1", "app/C1", "app/P1"},
              {"app/A1", "app/A2", "app/C1", "app/P1", "app/P1"});
  EXPECT_EQ(after["supporting"]["callback_rate"]["numerator_ids"],
            json({"app/A1", "app/A2", "app/P1"}));
}

TEST_F(KpiTest, ContractSigningCountsConnectionsWithAContractBefore) {
  ExpectRatio(Kpi(Table("2026-03"), "contract_signing"), {"app/A1", "app/A2", "app/A3"},
              {"app/A1", "app/A2", "app/A3", "app/A4"});
}

TEST_F(KpiTest, AContractDatedAfterTheConnectionIsNotBeforeIt) {
  // L1: the contract is entered first but dated 03-20; the meter was connected 03-10.
  m_.Add("app/L1", "ApplicationAccepted", "03-02", Accepted());
  m_.Add("app/L1", "SchemeReplied", "03-03", {{"scheme", "s"}});
  m_.Add("app/L1", "FeesSettled", "03-03", {{"amount_cny", 100}});
  m_.Add("app/L1", "ContractSigned", "03-20", {{"contract_id", "HT-L1"}});
  m_.Add("app/L1", "MeterConnected", "03-10", {{"meter_id", "M-L1"}});
  ExpectRatio(Kpi(Table("2026-03"), "contract_signing"), {"app/A1", "app/A2", "app/A3"},
              {"app/A1", "app/A2", "app/A3", "app/A4", "app/L1"});
}

// The mirror: a contract entered after the connection but dated before it settles the violation
// (application_test.cc), so the connection counts as with a contract before it, and March (the
// month whose figures it changed) lists the settlement instead of the violation, although the
// contract was entered in April.
TEST_F(KpiTest, AContractEnteredLateButDatedBeforeTheConnectionCountsAsBeforeIt) {
  m_.Add("app/L2", "ApplicationAccepted", "03-02", Accepted());
  m_.Add("app/L2", "SchemeReplied", "03-03", {{"scheme", "s"}});
  m_.Add("app/L2", "FeesSettled", "03-03", {{"amount_cny", 100}});
  m_.Add("app/L2", "MeterConnected", "03-10", {{"meter_id", "M-L2"}});
  const json before = Table("2026-03");
  ExpectRatio(Kpi(before, "contract_signing"), {"app/A1", "app/A2", "app/A3"},
              {"app/A1", "app/A2", "app/A3", "app/A4", "app/L2"});
  EXPECT_EQ(before["supporting"]["violations"]["by_rule"]["connected_without_contract"], 2);

  m_.Add("app/L2", "ContractSigned", "03-09", {{"contract_id", "HT-L2"}}, "KM.XS", "04-02");
  const json after = Table("2026-03");
  ExpectRatio(Kpi(after, "contract_signing"), {"app/A1", "app/A2", "app/A3", "app/L2"},
              {"app/A1", "app/A2", "app/A3", "app/A4", "app/L2"});
  EXPECT_EQ(after["supporting"]["violations"]["by_rule"]["connected_without_contract"], 1);
  ASSERT_EQ(after["supporting"]["settled_violations"]["count"], 1);
  EXPECT_EQ(after["supporting"]["settled_violations"]["items"][0],
            json({{"app", "app/L2"},
                  {"position", m_.last_position() - 1},
                  {"date", "2026-03-10"},
                  {"rule", "connected_without_contract"},
                  {"settled_by", m_.last_position()}}));
  EXPECT_EQ(Table("2026-04")["supporting"]["settled_violations"]["count"], 0);
  // The stored buckets keep the settlement.
  for (const KpiState& state : States(m_.book())) {
    if (state.settled.empty()) continue;
    EXPECT_EQ(DecodeKpiState(Encode(state)), state);
  }
}

// A callback entered before the connection, which is entered later but dated before the callback,
// is not premature: it counts for satisfaction and covers the application for the callback rate.
TEST_F(KpiTest, AConnectionEnteredLateButDatedBeforeACallbackMakesItCount) {
  m_.Add("app/P2", "ApplicationAccepted", "03-02", Accepted());
  m_.Add("app/P2", "SchemeReplied", "03-03", {{"scheme", "s"}});
  m_.Add("app/P2", "FeesSettled", "03-03", {{"amount_cny", 100}});
  m_.Add("app/P2", "ContractSigned", "03-04", {{"contract_id", "HT-P2"}});
  m_.Add("app/P2", "CallbackMade", "03-12", Callback("reached", "satisfied"));
  ExpectRatio(Kpi(Table("2026-03"), "callback_satisfaction"), {"app/A1", "app/C1"},
              {"app/A1", "app/A2", "app/C1", "app/P2"});
  m_.Add("app/P2", "MeterConnected", "03-10", {{"meter_id", "M-P2"}}, "KM.XS", "03-13");
  const json after = Table("2026-03");
  ExpectRatio(Kpi(after, "callback_satisfaction"), {"app/A1", "app/C1", "app/P2"},
              {"app/A1", "app/A2", "app/C1", "app/P2"});
  EXPECT_EQ(after["supporting"]["callback_rate"]["numerator_ids"],
            json({"app/A1", "app/A2", "app/P2"}));
  EXPECT_FALSE(after["supporting"]["violations"]["by_rule"].contains("callback_before_connection"));
  EXPECT_EQ(after["supporting"]["settled_violations"]["count"], 1);
}

TEST_F(KpiTest, ReportsCountTowardTheOrgOfReportDueByDueMonth) {
  const json table = Table("2026-03");
  // Buckets sort by key: fees (R2) < monthly_stats (R1) < sla (R3). R2 was submitted by another
  // org's actor and still counts for KM.XS.
  ExpectRatio(Kpi(table, "report_on_time"), {"report/monthly_stats/2026-02"},
              {"report/fees/2026-02", "report/monthly_stats/2026-02", "report/sla/2026-02"});
  ExpectRatio(Kpi(table, "report_accuracy"), {"report/monthly_stats/2026-02"},
              {"report/fees/2026-02", "report/monthly_stats/2026-02"});
}

TEST_F(KpiTest, ReportsNotYetDueAreNotLate) {
  // On 03-15 R3 (due 03-20, not submitted) is not yet late; R2 (due 03-10, submitted late) is.
  const int64_t as_of = domain::ParseTimestamp("2026-03-15T12:00:00+08:00")->unix_us;
  const json table = Table("2026-03", "KM.XS", as_of);
  ExpectRatio(Kpi(table, "report_on_time"), {"report/monthly_stats/2026-02"},
              {"report/fees/2026-02", "report/monthly_stats/2026-02"});
  // On 03-21 it is.
  const int64_t later = domain::ParseTimestamp("2026-03-21T09:00:00+08:00")->unix_us;
  ExpectRatio(Kpi(Table("2026-03", "KM.XS", later), "report_on_time"),
              {"report/monthly_stats/2026-02"},
              {"report/fees/2026-02", "report/monthly_stats/2026-02", "report/sla/2026-02"});
}

// Only 2025 and 2026 are loaded: a clock that runs into 2027 cannot be judged, and the KPI says
// so instead of counting it either way.
TEST_F(KpiTest, ItemsTheCalendarCannotJudgeAreInNeitherTermAndMayLeaveMetOpen) {
  // U1: scheme reply 2026-12-30 → 2027-01-04 needs 2027's calendar; archived in January 2027.
  Residential(m_, "app/U1", "12-30", "2027-01-04", "2027-01-05", "2027-01-06");
  // U2: every clock in December 2026 (met), archived in January 2027.
  Residential(m_, "app/U2", "12-01", "12-02", "12-03", "2027-01-04");
  json kpi = Kpi(Table("2027-01"), "timeliness");
  ExpectRatio(kpi, {"app/U2"}, {"app/U2"});
  EXPECT_EQ(kpi.at("undetermined_ids"), json({"app/U1"})) << kpi.dump();
  // 1 of 2 or 2 of 2 met: the target of 100% depends on U1.
  EXPECT_TRUE(kpi.at("met").is_null()) << kpi.dump();

  // U3: scheme reply 12-01 → 12-10 (7 > 3 working days): missed. Now 100% is out of reach.
  Residential(m_, "app/U3", "12-01", "12-10", "12-11", "2027-01-05");
  kpi = Kpi(Table("2027-01"), "timeliness");
  ExpectRatio(kpi, {"app/U2"}, {"app/U2", "app/U3"});
  EXPECT_EQ(kpi.at("undetermined_ids"), json({"app/U1"})) << kpi.dump();
  EXPECT_EQ(kpi.at("met"), false) << kpi.dump();
}

// A clock stopped by the archive never counts as met, whatever its days: the application fails
// KPI 1 even when counting those days needs a year the calendar lacks (it was left undetermined).
TEST_F(KpiTest, AClockStoppedByTheArchiveFailsEvenWhenItsDaysNeedAnUnloadedYear) {
  json accepted = Accepted();
  accepted["customer_class"] = "lv_nonresidential";
  m_.Add("app/S1", "ApplicationAccepted", "12-01", accepted);
  m_.Add("app/S1", "SchemeReplied", "12-03", {{"scheme", "s"}, {"customer_works", false}});
  m_.Add("app/S1", "FeesSettled", "12-04", {{"amount_cny", 100}});
  m_.Add("app/S1", "ContractSigned", "12-07", {{"contract_id", "HT-S1"}});
  m_.Add("app/S1", "DesignSubmitted", "12-08");
  m_.Add("app/S1", "MeterConnected", "12-08", {{"meter_id", "M-S1"}});
  m_.Add("app/S1", "Archived", "2027-01-05");  // stops the design review opened 12-08
  const json kpi = Kpi(Table("2027-01"), "timeliness");
  ExpectRatio(kpi, {}, {"app/S1"});
  EXPECT_FALSE(kpi.contains("undetermined_ids")) << kpi.dump();
  EXPECT_EQ(kpi.at("met"), false) << kpi.dump();

  const ApplicationState& app = m_.app("app/S1");
  auto stopped = std::find_if(app.clocks.begin(), app.clocks.end(), [](const Clock& clock) {
    return clock.name == domain::SlaClock::kDesignReview;
  });
  ASSERT_NE(stopped, app.clocks.end());
  const ClockView view =
      Evaluate(*stopped, calendar_, profile_, domain::SlaCustomerClass::kLvNonResidential, 0);
  EXPECT_EQ(view.state, ClockState::kStopped);
  EXPECT_TRUE(ElapsedJson(view).is_null());  // its days are not known, only that it failed
  EXPECT_EQ(view.missing_year, 2027);
}

// A change still open, paused in a year the calendar lacks: when a working day of the loaded
// years already lay past its deadline, it was late before the pause and counts as missed in its
// deadline's month; when none did, it may be due in the last loaded month and is undetermined
// there. A pause that runs into such a year moves the deadline at least by its days in the loaded
// years, so the change may still be due in the last loaded month: undetermined there too. None
// drops out of change_completion.
TEST_F(KpiTest, AChangePausedInAnUnloadedYearStaysInChangeCompletion) {
  // C17: accepted 12-15, deadline 12-22 (5 working days); paused 2027-01-05, still open.
  m_.Add("app/C17", "ApplicationAccepted", "12-15", Accepted("change"));
  m_.Add("app/C17", "ClockPaused", "2027-01-05", {{"reason", "customer_request"}, {"note", "n"}});
  // C18: accepted 12-24, deadline 12-31 (12-25, 12-28 .. 12-31); paused 2027-01-04, still open.
  m_.Add("app/C18", "ApplicationAccepted", "12-24", Accepted("change"));
  m_.Add("app/C18", "ClockPaused", "2027-01-04", {{"reason", "customer_request"}, {"note", "n"}});
  // C19: accepted 12-22, deadline 12-29; paused 12-29 (counts: not late yet) to 2027-01-01. Its
  // pause moves the deadline by 12-30 and 12-31 at least (to 12-31), and by 01-01 if that is a
  // working day, which only 2027's calendar can say.
  m_.Add("app/C19", "ApplicationAccepted", "12-22", Accepted("change"));
  m_.Add("app/C19", "ClockPaused", "12-29", {{"reason", "customer_request"}, {"note", "n"}});
  m_.Add("app/C19", "ClockResumed", "2027-01-01");
  const json december = Kpi(Table("2026-12"), "change_completion");
  ExpectRatio(december, {}, {"app/C17"});
  EXPECT_EQ(december.at("undetermined_ids"), json({"app/C18", "app/C19"})) << december.dump();
  EXPECT_EQ(december.at("met"), false) << december.dump();
  // Neither can be due before its deadline as it stood before the pause.
  const json november = Kpi(Table("2026-11"), "change_completion");
  EXPECT_EQ(november.at("denominator"), 0) << november.dump();
  EXPECT_FALSE(november.contains("undetermined_ids")) << november.dump();
}

// Certainly late though counted into a year not loaded: the working days of the loaded years alone
// pass the limit, and those of 2027 can only add to them. The KPIs count such items as failed (not
// undetermined), and the clocks say missed / overdue, how late known only from below.
TEST_F(KpiTest, ItemsCertainlyLateCountEvenWhenTheirDaysNeedAnUnloadedYear) {
  // C20: accepted 12-18 (deadline 12-25), executed 2027-01-05: 9 working days by 12-31 (> 5).
  m_.Add("app/C20", "ApplicationAccepted", "12-18", Accepted("change"));
  m_.Add("app/C20", "ChangeExecuted", "2027-01-05", {{"summary", "renamed"}});
  // C21: accepted 12-18 too, still open on 2027-01-05.
  m_.Add("app/C21", "ApplicationAccepted", "12-18", Accepted("change"));
  // L1: scheme reply 12-14 → 2027-01-04: 13 working days by 12-31 (> 3); archived 2027-01-06.
  Residential(m_, "app/L1", "12-14", "2027-01-04", "2027-01-05", "2027-01-06");
  const json january = Table("2027-01");
  const json change = Kpi(january, "change_completion");
  ExpectRatio(change, {}, {"app/C20"});
  EXPECT_FALSE(change.contains("undetermined_ids")) << change.dump();
  EXPECT_EQ(change.at("met"), false);
  const json timeliness = Kpi(january, "timeliness");
  ExpectRatio(timeliness, {}, {"app/L1"});
  EXPECT_FALSE(timeliness.contains("undetermined_ids")) << timeliness.dump();

  const int64_t at = domain::ParseTimestamp("2027-01-05T18:00:00+08:00")->unix_us;
  const json scheme = ToJson(m_.app("app/L1"), calendar_, profile_, at)["clocks"]["scheme_reply"];
  EXPECT_EQ(scheme.at("state"), "missed") << scheme.dump();
  EXPECT_TRUE(scheme.at("elapsed_working_days").is_null());
  EXPECT_TRUE(scheme.at("overdue_days").is_null());
  EXPECT_EQ(scheme.at("overdue_days_at_least"), 13 - 3);
  const json open = ToJson(m_.app("app/C21"), calendar_, profile_, at)["clocks"]["change_completion"];
  EXPECT_EQ(open.at("state"), "overdue") << open.dump();
  EXPECT_EQ(open.at("overdue_days_at_least"), 9 - 5);
  EXPECT_EQ(open.at("escalation_level"), 2);  // 4 days over: level 2 at least
  // C22: accepted 12-14, paused 12-21 to 12-28: 13 working days by 12-31 less 5 paused = 8 (> 5).
  m_.Add("app/C22", "ApplicationAccepted", "12-14", Accepted("change"));
  m_.Add("app/C22", "ClockPaused", "12-21", {{"reason", "customer_request"}, {"note", "n"}});
  m_.Add("app/C22", "ClockResumed", "12-28");
  const json paused_before =
      ToJson(m_.app("app/C22"), calendar_, profile_, at)["clocks"]["change_completion"];
  EXPECT_EQ(paused_before.at("state"), "overdue") << paused_before.dump();
  EXPECT_EQ(paused_before.at("overdue_days_at_least"), 8 - 5);
  // A clock not late by the loaded years' days alone stays calendar_missing (U1 above).
}

TEST_F(KpiTest, SupportingFigures) {
  const json supporting = Table("2026-03").at("supporting");
  // Connected in March: A1, A2, A3, A4; reached callbacks: A1, A2; site inspected: A1.
  EXPECT_EQ(supporting["callback_rate"]["numerator_ids"], json({"app/A1", "app/A2"}));
  EXPECT_EQ(supporting["callback_rate"]["denominator"], 4);
  EXPECT_EQ(supporting["site_inspection_coverage"]["numerator_ids"], json({"app/A1"}));
  EXPECT_EQ(supporting["document_review_pass_rate"]["numerator_ids"], json({"app/A1"}));
  EXPECT_EQ(supporting["document_review_pass_rate"]["denominator"], 2);
  EXPECT_EQ(supporting["backdated_events"]["positions"], json({backdated_position_}));
  EXPECT_EQ(supporting["urges_issued"]["ids"], json({"app/C3"}));
  EXPECT_DOUBLE_EQ(supporting["training_hours"]["hours"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(supporting["training_hours"]["person_hours"].get<double>(), 7.5);
  // Each figure's items name the events behind it, by position: an urge, a review, a training.
  ASSERT_EQ(supporting["urges_issued"]["items"].size(), 1u);
  EXPECT_EQ(supporting["urges_issued"]["items"][0]["app"], "app/C3");
  EXPECT_GT(supporting["urges_issued"]["items"][0]["position"].get<uint64_t>(), 0u);
  ASSERT_EQ(supporting["document_review_pass_rate"]["items"].size(), 2u);
  EXPECT_NE(supporting["document_review_pass_rate"]["items"][0]["position"],
            supporting["document_review_pass_rate"]["items"][1]["position"]);
  ASSERT_EQ(supporting["training_hours"]["items"].size(), 1u);
  EXPECT_EQ(supporting["training_hours"]["items"][0]["attendees"], 3);
  EXPECT_EQ(supporting["violations"]["count"], 1);
  EXPECT_EQ(supporting["violations"]["by_rule"]["connected_without_contract"], 1);
  EXPECT_EQ(supporting["violations"]["items"][0]["app"], "app/A4");
}

TEST_F(KpiTest, EmptyDenominatorGivesNullNotFullMarks) {
  const json table = Table("2026-04", "KM.GD");
  for (const json& kpi : table.at("kpis")) {
    EXPECT_EQ(kpi.at("denominator"), 0) << kpi.dump();
    EXPECT_TRUE(kpi.at("value").is_null()) << kpi.dump();
    EXPECT_TRUE(kpi.at("met").is_null()) << kpi.dump();
  }
  EXPECT_TRUE(table["supporting"]["callback_rate"]["value"].is_null());
}

TEST_F(KpiTest, QuarterMergesItsMonths) {
  const json q1 = Table("2026-Q1");
  EXPECT_EQ(q1.at("months"), json({"2026-01", "2026-02", "2026-03"}));
  // February bucket first: A5 (met), then March's A1 (met) and A2 (missed).
  ExpectRatio(Kpi(q1, "timeliness"), {"app/A5", "app/A1"}, {"app/A5", "app/A1", "app/A2"});
  ExpectRatio(Kpi(q1, "contract_signing"), {"app/A5", "app/A1", "app/A2", "app/A3"},
              {"app/A5", "app/A1", "app/A2", "app/A3", "app/A4"});
  ExpectRatio(Kpi(Table("2026-Q2"), "timeliness"), {"app/A3"}, {"app/A3"});
  EXPECT_EQ(Table("2026-Q5").at("error"), "bad_period");
}

// Each KPI is met or not per the period the standard assesses it in: a month's contract signing
// is for information; a quarter's timeliness is met only if each of its months was, and shows
// them.
TEST_F(KpiTest, MetFollowsThePeriodEachKpiIsAssessedIn) {
  const json march_signing = Kpi(Table("2026-03"), "contract_signing");
  EXPECT_TRUE(march_signing.at("met").is_null());
  EXPECT_EQ(march_signing.at("denominator"), 4);  // the figure itself is still there
  EXPECT_TRUE(march_signing.contains("note"));
  EXPECT_EQ(Kpi(Table("2026-Q1"), "contract_signing").at("met"), false);  // 4 of 5

  const json q1 = Kpi(Table("2026-Q1"), "timeliness");
  ASSERT_EQ(q1.at("by_month").size(), 3u);
  EXPECT_EQ(q1["by_month"][0], json::parse(R"({"month":"2026-01","numerator":0,"denominator":0,
                                               "value":null,"met":null})"));
  EXPECT_EQ(q1["by_month"][1]["met"], true);   // A5
  EXPECT_EQ(q1["by_month"][2]["met"], false);  // A1 met, A2 missed
  EXPECT_EQ(q1.at("met"), false);              // although 2 of 3 pooled
  // Months without callbacks leave met to the one that has them (March).
  const json callbacks = Kpi(Table("2026-Q1"), "callback_satisfaction");
  EXPECT_EQ(callbacks.at("met"), Kpi(Table("2026-03"), "callback_satisfaction").at("met"));
  EXPECT_FALSE(Kpi(Table("2026-03"), "timeliness").contains("by_month"));
}

// A KPI table is per org unit: a parent org with no figures of its own is told which units below
// it to ask for; one with figures of its own (a change accepted earlier and due now counts) is
// not; dots bound the units (KMX is not below KM).
TEST_F(KpiTest, AParentOrgWithoutFiguresOfItsOwnNamesItsUnits) {
  KpiOrgUnits units = KpiOrgUnitsOf(States(m_.book()), "2026-03", "KM");
  EXPECT_FALSE(units.own);
  EXPECT_EQ(units.below, (std::vector<std::string>{"KM.GD", "KM.XS"}));
  ASSERT_TRUE(units.refusal.has_value());
  EXPECT_NE(units.refusal->find("org=KM.GD"), std::string::npos) << *units.refusal;

  units = KpiOrgUnitsOf(States(m_.book()), "2026-03", "KM.XS");
  EXPECT_TRUE(units.own);
  EXPECT_FALSE(units.refusal.has_value());
  EXPECT_TRUE(KpiOrgUnitsOf(States(m_.book()), "2026-03", "KMX").below.empty());
  // Known: the org or a unit below it has figures in some period (a mistyped id has none).
  EXPECT_TRUE(units.known);
  EXPECT_TRUE(KpiOrgUnitsOf(States(m_.book()), "2025-01", "KM").known);
  EXPECT_FALSE(KpiOrgUnitsOf(States(m_.book()), "2026-03", "KMX").known);
  EXPECT_FALSE(KpiOrgUnitsOf(States(m_.book()), "2026-03", "km.xs").known);

  // KM's own change, accepted in February, falls due in March: KM has a figure there.
  m_.Add("app/K1", "ApplicationAccepted", "02-26", Accepted("change"), "KM");
  units = KpiOrgUnitsOf(States(m_.book()), "2026-03", "KM");
  EXPECT_TRUE(units.own);
  EXPECT_FALSE(units.refusal.has_value());
  EXPECT_EQ(Kpi(Table("2026-03", "KM"), "change_completion").at("denominator"), 1);
}

TEST_F(KpiTest, OrgsAreSeparate) {
  ExpectRatio(Kpi(Table("2026-03", "KM.GD"), "timeliness"), {"app/G1"}, {"app/G1"});
  // All orgs merged; ids follow bucket key order (kpi/m/KM.GD/… before kpi/m/KM.XS/…).
  ExpectRatio(Kpi(Table("2026-03", std::nullopt), "timeliness"), {"app/G1", "app/A1"},
              {"app/G1", "app/A1", "app/A2"});
}

TEST_F(KpiTest, EncodeDecodeRoundTripsEveryBucket) {
  ASSERT_FALSE(m_.book().states.empty());
  for (const auto& [key, state] : m_.book().states) {
    EXPECT_EQ(KeyOf(state), key);
    const std::string bytes = Encode(state);
    const std::optional<KpiState> decoded = DecodeKpiState(bytes);
    ASSERT_TRUE(decoded.has_value()) << key;
    EXPECT_EQ(*decoded, state) << key;
    EXPECT_EQ(Encode(*decoded), bytes) << key;
  }
  EXPECT_FALSE(DecodeKpiState("not msgpack").has_value());
}

TEST_F(KpiTest, KeyedFoldThroughStorageEqualsInMemoryBook) {
  // A runner's way: per event, load each key's bucket from bytes, fold, store bytes.
  std::map<std::string, std::string> store;
  for (size_t i = 0; i < m_.events().size(); ++i) {
    const EventRecord record = m_.events()[i].Record();
    const ApplicationState* app = m_.apps_after()[i] ? &*m_.apps_after()[i] : nullptr;
    for (const std::string& key : KpiKeysOf(record, app)) {
      auto it = store.find(key);
      std::optional<KpiState> state =
          it == store.end() ? NewKpiState(key) : DecodeKpiState(it->second);
      ASSERT_TRUE(state.has_value()) << key;
      Fold(*state, record, app);
      store[key] = Encode(*state);
    }
  }
  ASSERT_EQ(store.size(), m_.book().states.size());
  for (const auto& [key, state] : m_.book().states) EXPECT_EQ(store[key], Encode(state)) << key;
}

TEST(KpiKeys, KeysAndPeriods) {
  EXPECT_EQ(KpiMonthKey("KM.XS", "2026-03"), "kpi/m/KM.XS/2026-03");
  EXPECT_EQ(KpiReportKey("report/fees/2026-02"), "kpi/r/report/fees/2026-02");
  EXPECT_EQ(NewKpiState("kpi/m/KM.XS/2026-03")->org, "KM.XS");
  EXPECT_FALSE(NewKpiState("kpi/m/KM.XS/2026-13").has_value());
  EXPECT_FALSE(NewKpiState("other").has_value());
  EXPECT_EQ(PeriodMonths("2026-Q4").value(),
            (std::vector<std::string>{"2026-10", "2026-11", "2026-12"}));
  EXPECT_FALSE(PeriodMonths("2026-3").has_value());
}

}  // namespace
}  // namespace gridledger::projections
