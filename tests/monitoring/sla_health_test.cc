// Goal: the SLA-health and KPI figures the dashboards show equal what the rest of the system
// reports for the same data — overdue clocks as projections::OverdueAt lists them, open
// applications and their SLA state as an independent count over ToJson views, KPIs as
// projections::KpiTable computes them over every bucket — and SLA figures move as working-day time
// passes with no new event.
// Method: a seeded demo workload (a few hundred applications, stopped mid-2026 so many are open)
// in a real ledger; the figures evaluated at fixed times are compared with those computations.
// One hand-made application checks states, levels and durations on known dates.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "demo_ledger.h"
#include "monitoring/sla_health.h"
#include "projections/queries.h"

namespace gridledger::monitoring {
namespace {

using testing::At;
using testing::DemoLedger;
using testing::DemoLedgerSuite;
using testing::kEvaluatedAt;

class SlaHealthTest : public DemoLedgerSuite {
 protected:
  static SlaHealth Health(int64_t at_us) {
    auto health = ComputeSlaHealth(demo_->engine(), demo_->calendar(), demo_->profile(), at_us);
    EXPECT_TRUE(health.ok()) << health.status().ToString();
    return std::move(health).value();
  }
};

TEST_F(SlaHealthTest, OverdueClocksAreThoseOverdueAtLists) {
  const SlaHealth health = Health(kEvaluatedAt);
  auto rows =
      projections::OverdueAt(demo_->ledger(), demo_->engine(), kEvaluatedAt,
                             projections::ReportOrgs{}, demo_->calendar(), demo_->profile());
  ASSERT_TRUE(rows.ok());
  ASSERT_FALSE(rows->empty()) << "the workload should leave overdue clocks at this time";

  std::map<std::tuple<std::string, domain::SlaClock, int>, uint64_t> expected;
  for (const auto& row : *rows) ++expected[{row.org, row.view.name, row.view.escalation_level}];
  std::map<std::tuple<std::string, domain::SlaClock, int>, uint64_t> actual;
  for (const auto& [key, count] : health.overdue_clocks) {
    const auto& [org, clock, level] = key;
    actual[{health.orgs[org], clock, level}] += count;
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(health.OverdueClocksTotal(), rows->size());

  // An overdue application counts once, at the highest level of its overdue clocks.
  std::map<std::string, std::pair<std::string, int>> by_stream;
  for (const auto& row : *rows) {
    auto& [org, level] = by_stream[row.stream];
    org = row.org;
    level = std::max(level, row.view.escalation_level);
  }
  std::map<std::pair<std::string, int>, uint64_t> expected_apps;
  for (const auto& [stream, org_level] : by_stream) ++expected_apps[org_level];
  for (const auto& [key, count] : health.overdue_applications) {
    const auto& [org, level] = key;
    const std::pair<std::string, int> org_level(health.orgs[org], level);
    EXPECT_EQ(count, expected_apps[org_level]) << health.orgs[org] << " level " << level;
  }
}

// The worst state of the open clocks in an application's JSON view, computed from the view.
std::string WorstOpenState(const nlohmann::json& view) {
  static const std::vector<std::string> kOrder = {"overdue", "warning", "calendar_missing",
                                                  "on_track", "paused"};
  size_t worst = kOrder.size();
  for (const auto& [name, clock] : view["clocks"].items()) {
    if (!clock["end"].is_null() || clock.contains("stopped_by")) continue;
    auto it = std::find(kOrder.begin(), kOrder.end(), clock["state"].get<std::string>());
    if (it != kOrder.end()) worst = std::min(worst, static_cast<size_t>(it - kOrder.begin()));
  }
  return worst == kOrder.size() ? "no_open_clock" : kOrder[worst];
}

TEST_F(SlaHealthTest, OpenApplicationsMatchAnIndependentCount) {
  const SlaHealth health = Health(kEvaluatedAt);
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> expected;
  uint64_t scanned = 0;
  ASSERT_TRUE(demo_->engine()
                  .ForEachApplication([&](const projections::ApplicationState& state) {
                    ++scanned;
                    if (!state.facts.accepted || state.facts.closed()) return true;
                    nlohmann::json view = projections::ToJson(state, demo_->calendar(),
                                                              demo_->profile(), kEvaluatedAt);
                    ++expected[{state.org, std::string(state.stage()),
                                view["customer_class"].get<std::string>(), WorstOpenState(view)}];
                    return true;
                  })
                  .ok());
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> actual;
  for (const auto& [key, count] : health.open_applications) {
    const auto& [org, stage, customer_class, state] = key;
    actual[{health.orgs[org], std::string(stage),
            std::string(domain::SlaCustomerClassName(customer_class)),
            std::string(AppSlaStateName(state))}] += count;
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(health.applications, scanned);
  std::set<std::string> states;
  for (const auto& [key, count] : actual) states.insert(std::get<3>(key));
  EXPECT_TRUE(states.count("overdue") && states.count("on_track"))
      << "the workload should leave open applications in several states";
}

TEST_F(SlaHealthTest, FiguresMoveAsWorkingDaysPassWithoutEvents) {
  const SlaHealth now = Health(kEvaluatedAt);
  const SlaHealth later = Health(At("2026-07-31T12:00:00+08:00"));
  EXPECT_EQ(later.OpenApplicationsTotal(), now.OpenApplicationsTotal());
  EXPECT_GT(later.OverdueClocksTotal(), now.OverdueClocksTotal());
  uint64_t level3_now = 0;
  uint64_t level3_later = 0;
  for (const auto& [key, count] : now.overdue_applications) {
    if (std::get<1>(key) == 3) level3_now += count;
  }
  for (const auto& [key, count] : later.overdue_applications) {
    if (std::get<1>(key) == 3) level3_later += count;
  }
  EXPECT_GT(level3_later, level3_now);
}

TEST_F(SlaHealthTest, EveryOrgHasEveryEscalationLevel) {
  const SlaHealth health = Health(kEvaluatedAt);
  EXPECT_EQ(health.orgs.size(), 4u);  // the demo's default orgs
  EXPECT_EQ(health.overdue_applications.size(),
            health.orgs.size() * static_cast<size_t>(domain::kEscalationLevels));
}

TEST_F(SlaHealthTest, KpiFiguresEqualTheKpiTableOverEveryBucket) {
  auto states = demo_->engine().KpiStates();
  ASSERT_TRUE(states.ok());
  // June 2026 is the last month of the workload: the previous month at this time.
  const KpiHealth health =
      ComputeKpiHealth(*states, demo_->calendar(), demo_->profile(), kEvaluatedAt);
  EXPECT_EQ(health.current_month, "2026-07");
  EXPECT_EQ(health.previous_month, "2026-06");
  EXPECT_EQ(health.current_quarter, "2026-Q3");
  EXPECT_EQ(health.previous_quarter, "2026-Q2");
  size_t with_value = 0;
  for (const KpiFigure& figure : health.figures) {
    nlohmann::json table =
        projections::KpiTable(*states, figure.period_name, figure.org, demo_->calendar(),
                              demo_->profile(), {}, kEvaluatedAt);
    const nlohmann::json* kpi = nullptr;
    for (const auto& entry : table["kpis"]) {
      if (entry["id"] == figure.kpi) kpi = &entry;
    }
    ASSERT_NE(kpi, nullptr) << figure.kpi;
    EXPECT_EQ(figure.numerator, (*kpi)["numerator"].get<double>()) << figure.kpi;
    EXPECT_EQ(figure.denominator, (*kpi)["denominator"].get<double>()) << figure.kpi;
    EXPECT_EQ(figure.value.has_value(), (*kpi)["value"].is_number()) << figure.kpi;
    if (figure.value) {
      EXPECT_DOUBLE_EQ(*figure.value, (*kpi)["value"].get<double>()) << figure.kpi;
      ++with_value;
    }
  }
  // 4 orgs × 6 KPIs × 2 periods, each with its period kind.
  EXPECT_EQ(health.figures.size(), 4u * 6 * 2);
  EXPECT_GT(with_value, 20u);
}

// /metrics exports the KPIs under the ids of kKpiIds: a KPI the table gains or renames must be
// added there too, or it would be left out of the metrics without a word.
TEST_F(SlaHealthTest, EveryKpiOfTheTableIsExported) {
  auto states = demo_->engine().KpiStates();
  ASSERT_TRUE(states.ok());
  const nlohmann::json table = projections::KpiTable(*states, "2026-Q2", std::nullopt,
                                                     demo_->calendar(), demo_->profile());
  std::vector<std::string> ids;
  for (const auto& kpi : table.at("kpis")) ids.push_back(kpi.at("id").get<std::string>());
  EXPECT_EQ(ids, std::vector<std::string>(kKpiIds.begin(), kKpiIds.end()));
}

TEST_F(SlaHealthTest, CallbackAndUrgeCountsAgreeWithTheKpiTable) {
  auto states = demo_->engine().KpiStates();
  ASSERT_TRUE(states.ok());
  const KpiHealth health =
      ComputeKpiHealth(*states, demo_->calendar(), demo_->profile(), kEvaluatedAt);
  uint64_t reached_total = 0;
  for (const std::string& org : health.orgs) {
    nlohmann::json table = projections::KpiTable(*states, "2026-06", org, demo_->calendar(),
                                                 demo_->profile(), {}, kEvaluatedAt);
    double numerator = 0;
    double denominator = 0;
    for (const auto& kpi : table["kpis"]) {
      if (kpi["id"] == "callback_satisfaction") {
        numerator = kpi["numerator"].get<double>();
        denominator = kpi["denominator"].get<double>();
      }
    }
    const auto count = [&](std::string_view satisfaction) {
      return health.satisfaction.at({org, Period::kPrevious, satisfaction});
    };
    EXPECT_EQ(count("satisfied") + count("basically_satisfied"), numerator) << org;
    EXPECT_EQ(health.callbacks.at({org, Period::kPrevious, "reached"}), denominator) << org;
    reached_total += health.callbacks.at({org, Period::kPrevious, "reached"});
    uint64_t urges = 0;
    for (const auto& [key, n] : health.urges) {
      if (std::get<0>(key) == org && std::get<1>(key) == Period::kPrevious) urges += n;
    }
    EXPECT_EQ(urges, table["supporting"]["urges_issued"]["count"].get<uint64_t>()) << org;
  }
  EXPECT_GT(reached_total, 0u);
}

TEST(KpiWindowTest, CoversThePreviousQuarterAndTheLookback) {
  const auto months = KpiWindowMonths(At("2026-02-10T12:00:00+08:00"), 2);
  // Q1 2026 and Q4 2025, plus two months before October.
  const std::vector<std::string> expected = {"2025-08", "2025-09", "2025-10", "2025-11",
                                             "2025-12", "2026-01", "2026-02"};
  EXPECT_EQ(months, expected);
}

TEST(PeriodsTest, CrossYearBoundaries) {
  const Periods periods = PeriodsOf(*domain::Date::FromCivil(2026, 1, 15));
  EXPECT_EQ(periods.current_month, "2026-01");
  EXPECT_EQ(periods.previous_month, "2025-12");
  EXPECT_EQ(periods.current_quarter, "2026-Q1");
  EXPECT_EQ(periods.previous_quarter, "2025-Q4");
}

// ---- One application on known dates (2026-03-02 is a Monday; no holiday until April) ----

std::string Event(const std::string& type, int version, const std::string& occurred_at,
                  const std::string& data) {
  return R"({"stream":"app/MON-2026-000001","type":")" + type + R"(","event_id":"mon-)" + type +
         R"(","expected_version":)" + std::to_string(version) + R"(,"occurred_at":")" +
         occurred_at + R"(","actor":{"id":"S1001","role":"clerk","org":"KM.XS"},"data":)" + data +
         "}";
}

const char kAccepted[] =
    R"({"customer_id":"C-1","customer_name":"n","customer_class":"residential",)"
    R"("business":"new_install","voltage_kv":0.4,"capacity_kva":8,"channel":"counter",)"
    R"("important":false,"three_zero":false})";

SlaHealth EvaluateOne(DemoLedger& ledger, const std::string& at) {
  auto health = ComputeSlaHealth(ledger.engine(), ledger.calendar(), ledger.profile(), At(at));
  EXPECT_TRUE(health.ok());
  return std::move(health).value();
}

TEST(SlaHealthOneApplicationTest, StatesAndLevelsFollowTheWorkingDays) {
  DemoLedger ledger(0, 0, domain::Date());
  ASSERT_TRUE(
      ledger.Append(Event("ApplicationAccepted", -1, "2026-03-02T09:00:00+08:00", kAccepted)));
  ledger.CatchUp();
  // Residential scheme reply: 3 working days. (elapsed → state, level)
  const std::pair<const char*, std::pair<OpenClockState, int>> expected[] = {
      {"2026-03-03T12:00:00+08:00", {OpenClockState::kOnTrack, 0}},   // 1 day
      {"2026-03-04T12:00:00+08:00", {OpenClockState::kWarning, 0}},   // 2: one day left
      {"2026-03-05T12:00:00+08:00", {OpenClockState::kWarning, 0}},   // 3: on the limit
      {"2026-03-06T12:00:00+08:00", {OpenClockState::kOverdue, 1}},   // 4: 1 day over
      {"2026-03-08T12:00:00+08:00", {OpenClockState::kOverdue, 1}},   // Sunday: still 4
      {"2026-03-11T12:00:00+08:00", {OpenClockState::kOverdue, 2}},   // 7: 4 days over
      {"2026-03-13T12:00:00+08:00", {OpenClockState::kOverdue, 3}}};  // 9: 6 days over
  for (const auto& [at, state_level] : expected) {
    const SlaHealth health = EvaluateOne(ledger, at);
    ASSERT_EQ(health.open_clocks.size(), 1u) << at;
    const auto& [key, count] = *health.open_clocks.begin();
    EXPECT_EQ(std::get<1>(key), domain::SlaClock::kSchemeReply);
    EXPECT_EQ(std::get<3>(key), state_level.first) << at;
    EXPECT_EQ(count, 1u);
    ASSERT_EQ(health.open_applications.size(), 1u);
    EXPECT_EQ(std::get<1>(health.open_applications.begin()->first), "accepted");
    uint64_t overdue_at_level = 0;
    for (const auto& [org_level, n] : health.overdue_applications) {
      if (n > 0) overdue_at_level = static_cast<uint64_t>(std::get<1>(org_level));
    }
    EXPECT_EQ(overdue_at_level, static_cast<uint64_t>(state_level.second)) << at;
  }
}

// A 45-working-day clock started on 2026-11-02 ends in 2027 (20 working days left in November, 23
// in December), which the calendar does not hold: its state is known (on track), its deadline is
// not, and the figure says which year is missing — weeks before any clock turns calendar_missing.
TEST(SlaHealthOneApplicationTest, DeadlinesInAnUnloadedYearAreCountedByYear) {
  DemoLedger ledger(0, 0, domain::Date());
  std::string accepted = kAccepted;
  accepted.replace(accepted.find("residential"), std::string("residential").size(), "hv_dual");
  ASSERT_TRUE(
      ledger.Append(Event("ApplicationAccepted", -1, "2026-11-02T09:00:00+08:00", accepted)));
  ledger.CatchUp();
  const SlaHealth in_november = EvaluateOne(ledger, "2026-11-03T12:00:00+08:00");
  ASSERT_EQ(in_november.deadlines_in_unloaded_year.size(), 1u);
  EXPECT_EQ(in_november.deadlines_in_unloaded_year.begin()->first, 2027);
  EXPECT_EQ(in_november.deadlines_in_unloaded_year.begin()->second, 1u);
  ASSERT_EQ(in_november.open_clocks.size(), 1u);
  EXPECT_EQ(std::get<3>(in_november.open_clocks.begin()->first), OpenClockState::kOnTrack);
}

TEST(SlaHealthOneApplicationTest, ClosedClocksGiveDurationsAndMetMissed) {
  DemoLedger ledger(0, 0, domain::Date());
  ASSERT_TRUE(
      ledger.Append(Event("ApplicationAccepted", -1, "2026-03-02T09:00:00+08:00", kAccepted)));
  ASSERT_TRUE(ledger.Append(Event("SchemeReplied", 0, "2026-03-04T10:00:00+08:00",
                                  R"({"scheme":"LV from the nearby box"})")));
  ledger.CatchUp();
  const SlaHealth health = EvaluateOne(ledger, "2026-04-10T12:00:00+08:00");
  const auto found = health.durations.find(
      {domain::SlaClock::kSchemeReply, domain::SlaCustomerClass::kResidential});
  ASSERT_NE(found, health.durations.end());
  const DurationHistogram& histogram = found->second;
  EXPECT_EQ(histogram.count, 1u);
  EXPECT_EQ(histogram.sum, 2);                    // Tuesday and Wednesday
  EXPECT_EQ(histogram.cumulative_counts[1], 0u);  // <= 1 day
  EXPECT_EQ(histogram.cumulative_counts[2], 1u);  // <= 2 days
  EXPECT_EQ(histogram.cumulative_counts.back(), 1u);
  // Ended in March: the previous month at 2026-04-10.
  ASSERT_EQ(health.closed_clocks.size(), 1u);
  const auto& [key, count] = *health.closed_clocks.begin();
  EXPECT_TRUE(std::get<2>(key));  // met
  EXPECT_EQ(std::get<3>(key), Period::kPrevious);
  EXPECT_EQ(count, 1u);
  // Waiting for the connection prerequisites: open, but no clock runs.
  ASSERT_EQ(health.open_applications.size(), 1u);
  EXPECT_EQ(std::get<3>(health.open_applications.begin()->first), AppSlaState::kNoOpenClock);
}

// An archived application whose clocks need 2027 (not loaded) is in neither term of January's
// timeliness: the figure says so instead of dropping it.
TEST(KpiHealthOneBucketTest, UndeterminedItemsAreCounted) {
  DemoLedger ledger(0, 0, domain::Date());  // for the calendar and profile
  projections::KpiState bucket = *projections::NewKpiState("kpi/m/KM.XS/2027-01");
  projections::KpiArchived archived;
  archived.app = "app/KM-1";
  archived.position = 9;
  archived.connected = true;
  projections::Clock scheme;
  scheme.name = domain::SlaClock::kSchemeReply;
  scheme.start = *domain::Date::Parse("2026-12-30");
  scheme.end = *domain::Date::Parse("2027-01-05");
  archived.clocks.push_back(scheme);
  bucket.archived.push_back(archived);
  KpiHealth health = NewKpiHealth(At("2027-01-20T12:00:00+08:00"));
  AddOrgKpis({bucket}, "KM.XS", ledger.calendar(), ledger.profile(), {}, &health);
  bool found = false;
  for (const KpiFigure& figure : health.figures) {
    if (figure.kpi != "timeliness" || figure.period != Period::kCurrent) continue;
    found = true;
    EXPECT_EQ(figure.undetermined, 1);
    EXPECT_EQ(figure.denominator, 0);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace gridledger::monitoring
