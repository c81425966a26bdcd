#include "monitoring/sla_collector.h"

#include <set>
#include <string>

#include "families.h"
#include "server/log.h"

namespace gridledger::monitoring {

namespace {

using internal::AddHistogram;
using internal::AddSample;
using internal::NewFamily;
using internal::Single;
using prometheus::MetricType;
using std::chrono::steady_clock;

int64_t SystemNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(steady_clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

std::string Level(int level) { return std::to_string(level); }

}  // namespace

// Recomputes `cached` when stale: older than `max_age`, from another working day (elapsed days
// change at once, whatever the age), or older than `min_interval` while the projections moved on.
// A failed computation keeps the previous figures, counts an error and logs its cause.
template <typename Health, typename Compute>
void SlaCollector::RefreshIfStale(Cached<Health>& cached, const char* what, int64_t now_us,
                                  uint64_t checkpoint, std::chrono::milliseconds max_age,
                                  std::chrono::milliseconds min_interval, Compute compute) const {
  const steady_clock::time_point started = steady_clock::now();
  if (cached.health) {
    const auto age = started - cached.computed;
    const bool stale =
        age >= max_age ||
        domain::LocalDateOf(now_us) != domain::LocalDateOf(cached.health->evaluated_at_us) ||
        (checkpoint != cached.checkpoint && age >= min_interval);
    if (!stale) return;
  }
  ledger::Result<Health> health = compute();
  if (!health.ok()) {
    ++errors_;
    server::Log(server::LogLevel::kWarning, "metrics: figures not refreshed, previous ones kept",
                {{"figures", what}, {"error", health.status().ToString()}});
    return;
  }
  cached.health = std::move(health).value();
  cached.checkpoint = checkpoint;
  cached.computed = started;
  cached.duration_seconds = Seconds(steady_clock::now() - started);
}

SlaCollector::SlaCollector(const projections::Engine& engine,
                           const domain::WorkingCalendar& calendar,
                           const domain::SlaProfile& profile, std::function<int64_t()> now_us,
                           SlaCollectorOptions options)
    : engine_(engine),
      calendar_(calendar),
      profile_(profile),
      now_us_(now_us ? std::move(now_us) : std::function<int64_t()>(SystemNowUs)),
      options_(std::move(options)) {}

std::vector<prometheus::MetricFamily> SlaCollector::Collect() const {
  std::lock_guard lock(mutex_);
  RefreshLocked();
  std::vector<prometheus::MetricFamily> out;
  if (sla_.health) AddSlaFamilies(*sla_.health, out);
  if (kpi_.health) AddKpiFamilies(*kpi_.health, out);
  out.push_back(Single("gridledger_sla_evaluation_errors_total",
                       "Scans of the projections' states that failed (the previous figures stay)",
                       MetricType::Counter, static_cast<double>(errors_)));
  return out;
}

void SlaCollector::RefreshLocked() const {
  const int64_t now_us = now_us_();
  // Read before the scans: the figures reflect at least this checkpoint.
  const uint64_t checkpoint = engine_.checkpoint();
  RefreshIfStale(sla_, "sla", now_us, checkpoint, options_.sla_max_age, options_.min_interval,
                 [&] { return ComputeSlaHealth(engine_, calendar_, profile_, now_us); });
  // After the SLA figures: their orgs are among those of the KPI figures.
  RefreshIfStale(kpi_, "kpi", now_us, checkpoint, options_.kpi_max_age, options_.kpi_min_interval,
                 [&] { return ComputeKpis(now_us); });
}

ledger::Result<KpiHealth> SlaCollector::ComputeKpis(int64_t now_us) const {
  ledger::Result<std::vector<projections::KpiState>> reports = engine_.KpiStates("kpi/r/");
  if (!reports.ok()) return reports.status();
  // The orgs with KPI figures: those of applications and of reports.
  std::set<std::string> orgs;
  if (sla_.health) orgs.insert(sla_.health->orgs.begin(), sla_.health->orgs.end());
  for (const projections::KpiState& report : *reports) {
    if (!report.org.empty()) orgs.insert(report.org);
  }
  const std::vector<std::string> months = KpiWindowMonths(now_us, options_.kpi_lookback_months);
  KpiHealth health = NewKpiHealth(now_us);
  for (const std::string& org : orgs) {
    std::vector<projections::KpiState> states;
    for (const projections::KpiState& report : *reports) {
      if (report.org == org) states.push_back(report);
    }
    for (const std::string& month : months) {
      ledger::Result<std::vector<projections::KpiState>> bucket =
          engine_.KpiStates(projections::KpiMonthKey(org, month));
      if (!bucket.ok()) return bucket.status();
      for (projections::KpiState& state : *bucket) {
        // The prefix of one key also matches longer keys; keep the bucket itself.
        if (state.org == org && state.month == month) states.push_back(std::move(state));
      }
    }
    AddOrgKpis(states, org, calendar_, profile_, options_.kpi_targets, &health);
  }
  return health;
}

void SlaCollector::AddSlaFamilies(const SlaHealth& health,
                                  std::vector<prometheus::MetricFamily>& out) const {
  auto org = [&](SlaHealth::Org index) -> std::string_view { return health.orgs[index]; };
  auto clock = [](domain::SlaClock name) { return domain::SlaClockName(name); };
  auto customer_class = [](domain::SlaCustomerClass c) { return domain::SlaCustomerClassName(c); };

  auto open =
      NewFamily("gridledger_sla_open_applications",
                "Open applications (accepted, not archived or withdrawn) by stage, customer "
                "class and SLA state (the worst state of their open clocks) now",
                MetricType::Gauge);
  for (const auto& [key, count] : health.open_applications) {
    const auto& [o, stage, c, state] = key;
    AddSample(open,
              {{"org", org(o)},
               {"stage", stage},
               {"customer_class", customer_class(c)},
               {"sla_state", AppSlaStateName(state)}},
              static_cast<double>(count));
  }
  out.push_back(std::move(open));

  auto overdue = NewFamily("gridledger_sla_overdue_applications",
                           "Open applications with an overdue clock now, by the highest escalation "
                           "level of their overdue clocks",
                           MetricType::Gauge);
  for (const auto& [key, count] : health.overdue_applications) {
    const auto& [o, level] = key;
    AddSample(overdue, {{"org", org(o)}, {"level", Level(level)}}, static_cast<double>(count));
  }
  out.push_back(std::move(overdue));

  auto clocks =
      NewFamily("gridledger_sla_open_clocks",
                "Open stage clocks by clock, customer class and SLA state now", MetricType::Gauge);
  for (const auto& [key, count] : health.open_clocks) {
    const auto& [o, name, c, state] = key;
    AddSample(clocks,
              {{"org", org(o)},
               {"clock", clock(name)},
               {"customer_class", customer_class(c)},
               {"sla_state", OpenClockStateName(state)}},
              static_cast<double>(count));
  }
  out.push_back(std::move(clocks));

  auto unloaded = NewFamily("gridledger_sla_open_clock_deadlines_in_unloaded_year",
                            "Open stage clocks whose deadline falls in a calendar year that is not "
                            "loaded, by that year: their state is known, their deadline is not "
                            "until that year's holiday notice is loaded",
                            MetricType::Gauge);
  for (const auto& [year, count] : health.deadlines_in_unloaded_year) {
    AddSample(unloaded, {{"year", std::to_string(year)}}, static_cast<double>(count));
  }
  out.push_back(std::move(unloaded));

  auto overdue_clocks = NewFamily("gridledger_sla_overdue_clocks",
                                  "Overdue stage clocks now by clock and escalation level (what "
                                  "ledgerctl overdue lists)",
                                  MetricType::Gauge);
  for (const auto& [key, count] : health.overdue_clocks) {
    const auto& [o, name, level] = key;
    AddSample(overdue_clocks, {{"org", org(o)}, {"clock", clock(name)}, {"level", Level(level)}},
              static_cast<double>(count));
  }
  out.push_back(std::move(overdue_clocks));

  auto durations = NewFamily("gridledger_sla_stage_duration_workdays",
                             "Working days (pauses excluded) of every stage clock closed by its "
                             "own ending event, over the whole log",
                             MetricType::Histogram);
  for (const auto& [key, histogram] : health.durations) {
    const auto& [name, c] = key;
    AddHistogram(durations, {{"clock", clock(name)}, {"customer_class", customer_class(c)}},
                 kStageDurationBucketsWorkingDays, histogram.cumulative_counts, histogram.count,
                 histogram.sum);
  }
  out.push_back(std::move(durations));

  auto closed = NewFamily("gridledger_sla_closed_clocks",
                          "Stage clocks closed in the current or previous month (of their end "
                          "date), met or missed",
                          MetricType::Gauge);
  for (const auto& [key, count] : health.closed_clocks) {
    const auto& [o, name, met, period] = key;
    AddSample(closed,
              {{"org", org(o)},
               {"clock", clock(name)},
               {"result", met ? "met" : "missed"},
               {"period", PeriodName(period)}},
              static_cast<double>(count));
  }
  out.push_back(std::move(closed));

  out.push_back(Single("gridledger_sla_applications", "Application states scanned",
                       MetricType::Gauge, static_cast<double>(health.applications)));
  out.push_back(Single("gridledger_sla_evaluation_timestamp_seconds",
                       "The time (Unix seconds) at which the SLA figures were evaluated",
                       MetricType::Gauge, static_cast<double>(health.evaluated_at_us) / 1e6));
  out.push_back(Single("gridledger_sla_evaluation_duration_seconds",
                       "How long the last computation of the SLA figures took", MetricType::Gauge,
                       sla_.duration_seconds));
  out.push_back(Single("gridledger_sla_evaluated_checkpoint_position",
                       "The projections' checkpoint the SLA figures reflect (at least)",
                       MetricType::Gauge, static_cast<double>(sla_.checkpoint)));
}

void SlaCollector::AddKpiFamilies(const KpiHealth& health,
                                  std::vector<prometheus::MetricFamily>& out) const {
  auto value = NewFamily("gridledger_kpi_value",
                         "KPI value (0..1) of domain.md's KPI table per org, for the current and "
                         "previous month (quarter for contract_signing); absent when the "
                         "denominator is empty",
                         MetricType::Gauge);
  auto numerator = NewFamily("gridledger_kpi_numerator", "Numerator of the KPI", MetricType::Gauge);
  auto denominator =
      NewFamily("gridledger_kpi_denominator", "Denominator of the KPI", MetricType::Gauge);
  auto undetermined = NewFamily("gridledger_kpi_undetermined",
                                "Items of the KPI in neither term because judging them needs a "
                                "calendar year that is not loaded",
                                MetricType::Gauge);
  for (const KpiFigure& figure : health.figures) {
    const internal::LabelList labels = {
        {"org", figure.org}, {"kpi", figure.kpi}, {"period", PeriodName(figure.period)}};
    if (figure.value) AddSample(value, labels, *figure.value);
    AddSample(numerator, labels, figure.numerator);
    AddSample(denominator, labels, figure.denominator);
    AddSample(undetermined, labels, figure.undetermined);
  }
  out.push_back(std::move(value));
  out.push_back(std::move(numerator));
  out.push_back(std::move(denominator));
  out.push_back(std::move(undetermined));

  auto target = NewFamily("gridledger_kpi_target", "Target of the KPI (0..1)", MetricType::Gauge);
  const projections::KpiTargets& targets = options_.kpi_targets;
  const double target_values[] = {
      targets.timeliness,       targets.change_completion, targets.callback_satisfaction,
      targets.contract_signing, targets.report_on_time,    targets.report_accuracy};
  static_assert(std::size(target_values) == kKpiIds.size());
  for (size_t i = 0; i < kKpiIds.size(); ++i) {
    AddSample(target, {{"kpi", kKpiIds[i]}}, target_values[i]);
  }
  out.push_back(std::move(target));

  auto periods = NewFamily("gridledger_kpi_period_info",
                           "The periods that period=\"current\" and \"previous\" stand for",
                           MetricType::Gauge);
  AddSample(periods, {{"period", "current"}, {"kind", "month"}, {"name", health.current_month}}, 1);
  AddSample(periods, {{"period", "previous"}, {"kind", "month"}, {"name", health.previous_month}},
            1);
  AddSample(periods, {{"period", "current"}, {"kind", "quarter"}, {"name", health.current_quarter}},
            1);
  AddSample(periods,
            {{"period", "previous"}, {"kind", "quarter"}, {"name", health.previous_quarter}}, 1);
  out.push_back(std::move(periods));

  auto callbacks = NewFamily("gridledger_callbacks",
                             "Customer callbacks made in the current or previous month, by result",
                             MetricType::Gauge);
  for (const auto& [key, count] : health.callbacks) {
    const auto& [org, period, result] = key;
    AddSample(callbacks, {{"org", org}, {"period", PeriodName(period)}, {"result", result}},
              static_cast<double>(count));
  }
  out.push_back(std::move(callbacks));

  auto satisfaction = NewFamily("gridledger_callback_satisfaction",
                                "Reached callbacks in the current or previous month, by the "
                                "customer's satisfaction (none: not given)",
                                MetricType::Gauge);
  for (const auto& [key, count] : health.satisfaction) {
    const auto& [org, period, answer] = key;
    AddSample(satisfaction,
              {{"org", org}, {"period", PeriodName(period)}, {"satisfaction", answer}},
              static_cast<double>(count));
  }
  out.push_back(std::move(satisfaction));

  auto urges = NewFamily("gridledger_urges_issued",
                         "Urges (催办/督办) issued on the org's applications in the current or "
                         "previous month, by level",
                         MetricType::Gauge);
  for (const auto& [key, count] : health.urges) {
    const auto& [org, period, level] = key;
    AddSample(urges, {{"org", org}, {"period", PeriodName(period)}, {"level", level}},
              static_cast<double>(count));
  }
  out.push_back(std::move(urges));

  out.push_back(Single("gridledger_kpi_evaluation_timestamp_seconds",
                       "The time (Unix seconds) at which the KPI figures were evaluated",
                       MetricType::Gauge, static_cast<double>(health.evaluated_at_us) / 1e6));
  out.push_back(Single("gridledger_kpi_evaluation_duration_seconds",
                       "How long the last computation of the KPI figures took", MetricType::Gauge,
                       kpi_.duration_seconds));
}

}  // namespace gridledger::monitoring
