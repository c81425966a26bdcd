// Goal: the scrape-time collectors expose bounded label sets (orgs and closed enums, never an
// application, customer or staff id), values equal to an in-memory computation over the same
// states, SLA gauges that move with the clock and pick up new events, and a /metrics endpoint that
// serves it all over HTTP.
// Method: a seeded demo workload in a real ledger; the collectors' families are compared with
// sla_health.h computed directly (itself checked against the projections in sla_health_test.cc),
// with the ledger's and engine's own figures, and with fixed bounds derived from the enums.
#include <gtest/gtest.h>

#include <ctime>

#include <regex>
#include <set>

#include "demo_ledger.h"
#include "family_lookup.h"
#include "monitoring/metrics.h"
#include "monitoring/process_collector.h"
#include "monitoring/sla_collector.h"
#include "monitoring/status_collector.h"
#include "support/http_client.h"

namespace gridledger::monitoring {
namespace {

using testing::At;
using testing::DemoLedger;
using testing::DemoLedgerSuite;
using testing::Families;
using testing::FindFamily;
using testing::kEvaluatedAt;
using testing::LabelsOf;
using testing::Sum;

class CollectorsTest : public DemoLedgerSuite {
 protected:
  static SlaCollector NewCollector(std::function<int64_t()> now, SlaCollectorOptions options = {}) {
    return SlaCollector(demo_->engine(), demo_->calendar(), demo_->profile(), std::move(now),
                        std::move(options));
  }
};

// The label names each SLA family may carry, and the values each label may take.
const std::map<std::string, std::set<std::string>> kFamilyLabels = {
    {"gridledger_sla_open_applications", {"org", "stage", "customer_class", "sla_state"}},
    {"gridledger_sla_overdue_applications", {"org", "level"}},
    {"gridledger_sla_open_clocks", {"org", "clock", "customer_class", "sla_state"}},
    {"gridledger_sla_overdue_clocks", {"org", "clock", "level"}},
    {"gridledger_sla_stage_duration_workdays", {"clock", "customer_class"}},
    {"gridledger_sla_closed_clocks", {"org", "clock", "result", "period"}},
    {"gridledger_kpi_value", {"org", "kpi", "period"}},
    {"gridledger_kpi_numerator", {"org", "kpi", "period"}},
    {"gridledger_kpi_denominator", {"org", "kpi", "period"}},
    {"gridledger_kpi_undetermined", {"org", "kpi", "period"}},
    {"gridledger_kpi_target", {"kpi"}},
    {"gridledger_kpi_period_info", {"period", "kind", "name"}},
    {"gridledger_callbacks", {"org", "period", "result"}},
    {"gridledger_callback_satisfaction", {"org", "period", "satisfaction"}},
    {"gridledger_urges_issued", {"org", "period", "level"}},
};

const std::map<std::string, std::set<std::string>> kLabelValues = {
    {"org", {"KM.XS", "KM.WH", "KM.GD", "KM.PL"}},
    {"stage",
     {"accepted", "survey_dispatched", "surveyed", "scheme_replied", "design_review",
      "mid_inspection", "completion_inspection", "completion_passed", "connected",
      "change_executed"}},
    {"customer_class", {"residential", "lv_nonresidential", "hv_single", "hv_dual"}},
    {"sla_state",
     {"on_track", "warning", "overdue", "paused", "calendar_missing", "no_open_clock"}},
    {"level", {"1", "2", "3", "other"}},
    {"clock",
     {"scheme_reply", "design_review", "mid_inspection", "completion_inspection", "connection",
      "change_completion"}},
    {"result", {"met", "missed", "reached", "no_answer", "refused", "wrong_number", "other"}},
    {"period", {"current", "previous"}},
    {"kpi",
     {"timeliness", "change_completion", "callback_satisfaction", "contract_signing",
      "report_on_time", "report_accuracy"}},
    {"kind", {"month", "quarter"}},
    {"satisfaction", {"satisfied", "basically_satisfied", "dissatisfied", "none", "other"}},
};

TEST_F(CollectorsTest, SlaLabelsAreBoundedSets) {
  const Families families = NewCollector([] { return kEvaluatedAt; }).Collect();
  // An application, customer or staff id never appears, whatever the label.
  const std::regex id_like(R"(app/|[A-Z]+-\d{4}-\d{6}|^C-|^[SDAR]\d{4})");
  size_t series = 0;
  for (const auto& family : families) {
    auto allowed = kFamilyLabels.find(family.name);
    if (allowed == kFamilyLabels.end()) {
      for (const auto& metric : family.metric) EXPECT_TRUE(metric.label.empty()) << family.name;
      continue;
    }
    for (const auto& metric : family.metric) {
      ++series;
      for (const auto& [name, value] : LabelsOf(metric)) {
        EXPECT_TRUE(allowed->second.count(name)) << family.name << " has label " << name;
        EXPECT_FALSE(std::regex_search(value, id_like)) << family.name << " " << value;
        auto values = kLabelValues.find(name);
        if (values != kLabelValues.end()) {
          EXPECT_TRUE(values->second.count(value)) << family.name << " " << name << "=" << value;
        }
      }
    }
  }
  EXPECT_TRUE(FindFamily(families, "gridledger_sla_open_applications") != nullptr);
  // Bounded by the enums: e.g. open applications ≤ 4 orgs × 10 stages × 4 classes × 6 states.
  EXPECT_LE(FindFamily(families, "gridledger_sla_open_applications")->metric.size(), 960u);
  EXPECT_GT(series, 100u);
  EXPECT_LT(series, 3000u);
}

TEST_F(CollectorsTest, SlaValuesEqualTheDirectComputation) {
  const Families families = NewCollector([] { return kEvaluatedAt; }).Collect();
  auto health =
      ComputeSlaHealth(demo_->engine(), demo_->calendar(), demo_->profile(), kEvaluatedAt);
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(Sum(families, "gridledger_sla_open_applications"),
            static_cast<double>(health->OpenApplicationsTotal()));
  EXPECT_EQ(Sum(families, "gridledger_sla_overdue_clocks"),
            static_cast<double>(health->OverdueClocksTotal()));
  for (const auto& [key, count] : health->overdue_applications) {
    const auto& [org, level] = key;
    EXPECT_EQ(Sum(families, "gridledger_sla_overdue_applications",
                  {{"org", health->orgs[org]}, {"level", std::to_string(level)}}),
              static_cast<double>(count));
  }
  for (const auto& [key, histogram] : health->durations) {
    const auto& [clock, customer_class] = key;
    EXPECT_EQ(Sum(families, "gridledger_sla_stage_duration_workdays",
                  {{"clock", std::string(domain::SlaClockName(clock))},
                   {"customer_class", std::string(domain::SlaCustomerClassName(customer_class))}}),
              static_cast<double>(histogram.count));
  }
  EXPECT_EQ(Sum(families, "gridledger_sla_evaluation_timestamp_seconds"), kEvaluatedAt / 1e6);
  EXPECT_EQ(Sum(families, "gridledger_sla_evaluated_checkpoint_position"),
            static_cast<double>(demo_->ledger().Head()));
}

TEST_F(CollectorsTest, KpiValuesOfTheRecentWindowEqualThoseOverTheWholeLog) {
  const Families families = NewCollector([] { return kEvaluatedAt; }).Collect();
  auto states = demo_->engine().KpiStates();
  ASSERT_TRUE(states.ok());
  const KpiHealth health =
      ComputeKpiHealth(*states, demo_->calendar(), demo_->profile(), kEvaluatedAt);
  ASSERT_FALSE(health.figures.empty());
  for (const KpiFigure& figure : health.figures) {
    const testing::LabelMap labels = {{"org", figure.org},
                                      {"kpi", std::string(figure.kpi)},
                                      {"period", std::string(PeriodName(figure.period))}};
    EXPECT_EQ(Sum(families, "gridledger_kpi_numerator", labels), figure.numerator);
    EXPECT_EQ(Sum(families, "gridledger_kpi_denominator", labels), figure.denominator);
    EXPECT_EQ(Sum(families, "gridledger_kpi_undetermined", labels), figure.undetermined);
    EXPECT_EQ(Sum(families, "gridledger_kpi_value", labels), figure.value)
        << figure.org << " " << figure.kpi;
  }
  EXPECT_EQ(Sum(families, "gridledger_kpi_period_info",
                {{"period", "previous"}, {"kind", "month"}, {"name", "2026-06"}}),
            1);
}

TEST_F(CollectorsTest, SlaGaugesFollowTheClockWithoutEvents) {
  int64_t now = kEvaluatedAt;
  SlaCollectorOptions options;
  options.sla_max_age = std::chrono::milliseconds(0);  // recompute at every scrape
  SlaCollector collector = NewCollector([&now] { return now; }, options);
  const double overdue_before = *Sum(collector.Collect(), "gridledger_sla_overdue_clocks");
  now = At("2026-07-31T12:00:00+08:00");
  const double overdue_after = *Sum(collector.Collect(), "gridledger_sla_overdue_clocks");
  EXPECT_GT(overdue_after, overdue_before);
}

TEST_F(CollectorsTest, FreshFiguresAreReusedUntilStaleOrTheProjectionsMove) {
  DemoLedger ledger(0, 0, domain::Date());
  int64_t now = At("2026-03-02T10:00:00+08:00");
  SlaCollectorOptions options;
  options.sla_max_age = std::chrono::hours(1);
  options.min_interval = std::chrono::milliseconds(0);
  SlaCollector collector(
      ledger.engine(), ledger.calendar(), ledger.profile(), [&now] { return now; }, options);
  auto evaluated = [&] {
    return *Sum(collector.Collect(), "gridledger_sla_evaluation_timestamp_seconds");
  };
  const double first = evaluated();
  now += 60'000'000;  // a minute later, same day, nothing new: reused
  EXPECT_EQ(evaluated(), first);
  ASSERT_TRUE(ledger.Append(
      R"({"stream":"app/MON-2026-000002","type":"ApplicationAccepted","event_id":"mon-2",)"
      R"("occurred_at":"2026-03-02T09:00:00+08:00","actor":{"id":"S1001","role":"clerk",)"
      R"("org":"KM.XS"},"data":{"customer_id":"C-2","customer_name":"n","customer_class":)"
      R"("residential","business":"new_install","voltage_kv":0.4,"capacity_kva":8,"channel":)"
      R"("counter","important":false,"three_zero":false}})"));
  ledger.CatchUp();
  const Families families = collector.Collect();  // the projections moved: recomputed
  EXPECT_GT(*Sum(families, "gridledger_sla_evaluation_timestamp_seconds"), first);
  EXPECT_EQ(Sum(families, "gridledger_sla_open_applications"), 1);
  const double second = evaluated();
  now = At("2026-03-03T10:00:00+08:00");  // a new working day: recomputed whatever the age
  EXPECT_GT(evaluated(), second);
}

TEST_F(CollectorsTest, StatusReadsTheLedgerEngineAndCalendar) {
  StatusSources sources;
  sources.ledger = &demo_->ledger();
  sources.engine = &demo_->engine();
  sources.calendar = &demo_->calendar();
  const Families families = StatusCollector(sources).Collect();
  const double head = static_cast<double>(demo_->ledger().Head());
  EXPECT_EQ(Sum(families, "gridledger_ledger_head_position"), head);
  EXPECT_EQ(Sum(families, "gridledger_projection_checkpoint_position"), head);
  EXPECT_EQ(Sum(families, "gridledger_projection_lag_events"), 0);
  EXPECT_EQ(Sum(families, "gridledger_projection_healthy"), 1);
  EXPECT_EQ(Sum(families, "gridledger_calendar_first_loaded_year"), 2025);
  EXPECT_EQ(Sum(families, "gridledger_calendar_last_loaded_year"), 2026);
  EXPECT_EQ(Sum(families, "gridledger_relay_enabled"), 0);
  EXPECT_EQ(FindFamily(families, "gridledger_relay_lag_events"), nullptr);
  EXPECT_EQ(FindFamily(families, "gridledger_tcp_connections"), nullptr);
  EXPECT_GT(*Sum(families, "gridledger_rocksdb_live_data_bytes") +
                *Sum(families, "gridledger_rocksdb_memtable_bytes"),
            0);
}

TEST(ProcessCollectorTest, ReportsThisProcess) {
  // The kernel counts CPU time in 10 ms ticks: a test process that has just started may have
  // none yet. Use 50 ms of CPU first (std::clock is this process's CPU time).
  volatile uint64_t spin = 0;
  while (std::clock() < CLOCKS_PER_SEC / 20) spin = spin + 1;
  const Families families = ProcessCollector().Collect();
  EXPECT_GT(Sum(families, "process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_GT(Sum(families, "process_cpu_seconds_total").value_or(0), 0);
  EXPECT_GT(Sum(families, "process_open_fds").value_or(0), 2);
  EXPECT_GT(Sum(families, "process_max_fds").value_or(0), 2);
  EXPECT_GT(Sum(families, "process_threads").value_or(0), 0);
  EXPECT_GT(Sum(families, "process_start_time_seconds").value_or(0), 1.7e9);
}

TEST_F(CollectorsTest, EndpointServesEveryFamilyOverHttp) {
  Metrics metrics;
  ScrapeSources sources;
  sources.status.ledger = &demo_->ledger();
  sources.status.engine = &demo_->engine();
  sources.status.calendar = &demo_->calendar();
  sources.profile = &demo_->profile();
  auto started = MetricsEndpoint::Start(metrics, sources, "127.0.0.1:0");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<MetricsEndpoint>>(started))
      << std::get<std::string>(started);
  auto& endpoint = std::get<std::unique_ptr<MetricsEndpoint>>(started);
  ASSERT_NE(endpoint->port(), 0);
  gridledger::testing::HttpClient client("127.0.0.1", endpoint->port());
  auto response = client.Get("/metrics");
  ASSERT_EQ(response.status, 200);
  for (const char* name : {"gridledger_ledger_append_requests_total", "gridledger_appends_total",
                           "gridledger_ledger_head_position", "gridledger_sla_open_applications",
                           "gridledger_kpi_numerator", "process_resident_memory_bytes"}) {
    EXPECT_NE(response.body.find(std::string("\n") + name), std::string::npos) << name;
  }
  // The port is taken now: a second endpoint on it says so instead of throwing.
  auto again =
      MetricsEndpoint::Start(metrics, sources, "127.0.0.1:" + std::to_string(endpoint->port()));
  ASSERT_TRUE(std::holds_alternative<std::string>(again));
  EXPECT_NE(std::get<std::string>(again).find("cannot serve metrics"), std::string::npos);
}

}  // namespace
}  // namespace gridledger::monitoring
