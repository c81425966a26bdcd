#include "monitoring/sla_health.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <set>

namespace gridledger::monitoring {

namespace {

using projections::ClockState;

std::optional<OpenClockState> OpenStateOf(ClockState state) {
  switch (state) {
    case ClockState::kOnTrack:
      return OpenClockState::kOnTrack;
    case ClockState::kWarning:
      return OpenClockState::kWarning;
    case ClockState::kOverdue:
      return OpenClockState::kOverdue;
    case ClockState::kPaused:
      return OpenClockState::kPaused;
    case ClockState::kCalendarMissing:
      return OpenClockState::kCalendarMissing;
    case ClockState::kMet:
    case ClockState::kMissed:
    case ClockState::kNotApplicable:
    case ClockState::kStopped:
      break;
  }
  return std::nullopt;
}

// Lower is worse: the application's state is the minimum over its open clocks.
AppSlaState AppStateOf(OpenClockState state) {
  switch (state) {
    case OpenClockState::kOverdue:
      return AppSlaState::kOverdue;
    case OpenClockState::kWarning:
      return AppSlaState::kWarning;
    case OpenClockState::kCalendarMissing:
      return AppSlaState::kCalendarMissing;
    case OpenClockState::kOnTrack:
      return AppSlaState::kOnTrack;
    case OpenClockState::kPaused:
      return AppSlaState::kPaused;
  }
  return AppSlaState::kNoOpenClock;
}

std::string MonthText(int year, int month) {
  char text[32];  // room for any int, so the compiler sees no truncation
  std::snprintf(text, sizeof text, "%04d-%02d", year, month);
  return text;
}

std::string QuarterText(int year, int month) {
  char text[32];  // room for any int, so the compiler sees no truncation
  std::snprintf(text, sizeof text, "%04d-Q%d", year, (month - 1) / 3 + 1);
  return text;
}

// The first day of the month of `date`.
domain::Date MonthStart(domain::Date date) { return date.AddDays(1 - date.day()); }

std::string_view Bounded(std::string_view value, const auto& allowed) {
  for (std::string_view known : allowed) {
    if (known == value) return known;
  }
  return "other";
}

}  // namespace

std::string_view AppSlaStateName(AppSlaState state) {
  switch (state) {
    case AppSlaState::kOverdue:
      return "overdue";
    case AppSlaState::kWarning:
      return "warning";
    case AppSlaState::kCalendarMissing:
      return "calendar_missing";
    case AppSlaState::kOnTrack:
      return "on_track";
    case AppSlaState::kPaused:
      return "paused";
    case AppSlaState::kNoOpenClock:
      return "no_open_clock";
  }
  return "unknown";
}

std::string_view OpenClockStateName(OpenClockState state) {
  switch (state) {
    case OpenClockState::kOnTrack:
      return "on_track";
    case OpenClockState::kWarning:
      return "warning";
    case OpenClockState::kOverdue:
      return "overdue";
    case OpenClockState::kPaused:
      return "paused";
    case OpenClockState::kCalendarMissing:
      return "calendar_missing";
  }
  return "unknown";
}

std::string_view PeriodName(Period period) {
  return period == Period::kCurrent ? "current" : "previous";
}

Periods PeriodsOf(domain::Date date) {
  Periods periods;
  periods.current_month = MonthText(date.year(), date.month());
  periods.current_quarter = QuarterText(date.year(), date.month());
  const domain::Date last_month = MonthStart(date).AddDays(-1);
  periods.previous_month = MonthText(last_month.year(), last_month.month());
  const int quarter_first_month = (date.month() - 1) / 3 * 3 + 1;
  const domain::Date quarter_start = *domain::Date::FromCivil(date.year(), quarter_first_month, 1);
  const domain::Date last_quarter = quarter_start.AddDays(-1);
  periods.previous_quarter = QuarterText(last_quarter.year(), last_quarter.month());
  return periods;
}

void DurationHistogram::Observe(int32_t working_days) {
  for (size_t i = 0; i < kStageDurationBucketsWorkingDays.size(); ++i) {
    if (working_days <= kStageDurationBucketsWorkingDays[i]) ++cumulative_counts[i];
  }
  ++count;
  sum += working_days;
}

uint64_t SlaHealth::OpenApplicationsTotal() const {
  uint64_t total = 0;
  for (const auto& [key, count] : open_applications) total += count;
  return total;
}

uint64_t SlaHealth::OverdueClocksTotal() const {
  uint64_t total = 0;
  for (const auto& [key, count] : overdue_clocks) total += count;
  return total;
}

// ---------------------------------------------------------------------------------------------

SlaHealthBuilder::SlaHealthBuilder(const domain::WorkingCalendar& calendar,
                                   const domain::SlaProfile& profile, int64_t at_us)
    : calendar_(calendar), profile_(profile) {
  health_.evaluated_at_us = at_us;
  Periods periods = PeriodsOf(domain::LocalDateOf(at_us));
  health_.current_month = std::move(periods.current_month);
  health_.previous_month = std::move(periods.previous_month);
}

SlaHealth::Org SlaHealthBuilder::OrgIndex(const std::string& org) {
  auto it = org_index_.find(org);
  if (it != org_index_.end()) return it->second;
  const auto index = static_cast<SlaHealth::Org>(health_.orgs.size());
  health_.orgs.push_back(org);
  org_index_.emplace(org, index);
  for (int level = 1; level <= domain::kEscalationLevels; ++level) {
    health_.overdue_applications[{index, level}] = 0;
  }
  return index;
}

void SlaHealthBuilder::Add(const projections::ApplicationState& state) {
  ++health_.applications;
  if (!state.facts.accepted) return;  // only rejected events folded: not an application yet
  const SlaHealth::Org org = OrgIndex(state.org);
  AppSlaState app_state = AppSlaState::kNoOpenClock;
  int app_level = 0;
  AddClocks(state, org, &app_state, &app_level);
  if (state.facts.closed()) return;
  ++health_.open_applications[{org, state.stage(), state.facts.customer_class, app_state}];
  if (app_state == AppSlaState::kOverdue && app_level >= 1) {
    ++health_.overdue_applications[{org, std::min(app_level, domain::kEscalationLevels)}];
  }
}

void SlaHealthBuilder::AddClocks(const projections::ApplicationState& state, SlaHealth::Org org,
                                 AppSlaState* app_state, int* app_level) {
  const domain::SlaCustomerClass customer_class = state.facts.customer_class;
  for (const projections::Clock& clock : state.clocks) {
    if (clock.stopped_by) continue;  // never ran to its own end: neither open nor a duration
    const projections::ClockView view =
        projections::Evaluate(clock, calendar_, profile_, customer_class, health_.evaluated_at_us);
    if (clock.open()) {
      std::optional<OpenClockState> open_state = OpenStateOf(view.state);
      if (!open_state) continue;  // no limit for this class
      ++health_.open_clocks[{org, clock.name, customer_class, *open_state}];
      if (view.deadline_missing_year != 0) {
        ++health_.deadlines_in_unloaded_year[view.deadline_missing_year];
      }
      *app_state = std::min(*app_state, AppStateOf(*open_state));
      if (view.state == ClockState::kOverdue) {
        ++health_.overdue_clocks[{org, clock.name, view.escalation_level}];
        *app_level = std::max(*app_level, view.escalation_level);
      }
      continue;
    }
    if (view.state != ClockState::kMet && view.state != ClockState::kMissed) continue;
    // A clock missed for certain but counted into a year not loaded has no known duration.
    if (view.elapsed_known) {
      health_.durations[{clock.name, customer_class}].Observe(view.elapsed_working_days);
    }
    const std::string month = projections::MonthOf(*clock.end);
    const bool met = view.state == ClockState::kMet;
    if (month == health_.current_month) {
      ++health_.closed_clocks[{org, clock.name, met, Period::kCurrent}];
    } else if (month == health_.previous_month) {
      ++health_.closed_clocks[{org, clock.name, met, Period::kPrevious}];
    }
  }
}

SlaHealth SlaHealthBuilder::Finish() && { return std::move(health_); }

ledger::Result<SlaHealth> ComputeSlaHealth(const projections::Engine& engine,
                                           const domain::WorkingCalendar& calendar,
                                           const domain::SlaProfile& profile, int64_t at_us) {
  SlaHealthBuilder builder(calendar, profile, at_us);
  ledger::Status scanned = engine.ForEachApplication([&](const projections::ApplicationState& s) {
    builder.Add(s);
    return true;
  });
  if (!scanned.ok()) return scanned;
  return std::move(builder).Finish();
}

// ---------------------------------------------------------------------------------------------
// KPIs

namespace {

void AddTableFigures(const nlohmann::json& table, const std::string& org, Period period,
                     const std::string& period_name, bool quarter, KpiHealth* health) {
  const auto kpis = table.find("kpis");
  if (kpis == table.end() || !kpis->is_array()) return;
  for (const nlohmann::json& kpi : *kpis) {
    const std::string id = kpi.value("id", "");
    if ((kpi.value("assessed_per", "") == "quarter") != quarter) continue;
    auto known = std::find(kKpiIds.begin(), kKpiIds.end(), id);
    if (known == kKpiIds.end()) continue;
    KpiFigure figure;
    figure.org = org;
    figure.kpi = *known;
    figure.period = period;
    figure.period_name = period_name;
    figure.numerator = kpi.value("numerator", 0.0);
    figure.denominator = kpi.value("denominator", 0.0);
    if (auto ids = kpi.find("undetermined_ids"); ids != kpi.end() && ids->is_array()) {
      figure.undetermined = static_cast<double>(ids->size());
    }
    const auto value = kpi.find("value");
    if (value != kpi.end() && value->is_number()) figure.value = value->get<double>();
    health->figures.push_back(std::move(figure));
  }
}

void CountBucket(const projections::KpiState& state, const std::string& org, Period period,
                 KpiHealth* health) {
  for (const projections::KpiCallback& callback : state.callbacks) {
    ++health->callbacks[{org, period, Bounded(callback.result, kCallbackResults)}];
    if (callback.result != "reached") continue;
    std::string_view satisfaction = callback.satisfaction;
    if (satisfaction.empty()) satisfaction = "none";
    ++health->satisfaction[{org, period, Bounded(satisfaction, kSatisfactions)}];
  }
  for (const projections::KpiUrge& urge : state.urges) {
    const bool known = urge.level >= 1 && urge.level <= domain::kEscalationLevels;
    ++health->urges[{org, period, known ? std::to_string(urge.level) : "other"}];
  }
}

}  // namespace

KpiHealth NewKpiHealth(int64_t at_us) {
  KpiHealth health;
  health.evaluated_at_us = at_us;
  Periods periods = PeriodsOf(domain::LocalDateOf(at_us));
  health.current_month = std::move(periods.current_month);
  health.previous_month = std::move(periods.previous_month);
  health.current_quarter = std::move(periods.current_quarter);
  health.previous_quarter = std::move(periods.previous_quarter);
  return health;
}

void AddOrgKpis(const std::vector<projections::KpiState>& states, const std::string& org,
                const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                const projections::KpiTargets& targets, KpiHealth* health) {
  auto at = std::lower_bound(health->orgs.begin(), health->orgs.end(), org);
  if (at != health->orgs.end() && *at == org) return;  // already added
  health->orgs.insert(at, org);
  for (Period period : {Period::kCurrent, Period::kPrevious}) {
    for (std::string_view result : kCallbackResults) health->callbacks[{org, period, result}] = 0;
    for (std::string_view value : kSatisfactions) health->satisfaction[{org, period, value}] = 0;
    for (int level = 1; level <= domain::kEscalationLevels; ++level) {
      health->urges[{org, period, std::to_string(level)}] = 0;
    }
  }
  const std::optional<std::string> scope = org;
  const int64_t at_us = health->evaluated_at_us;
  const std::tuple<Period, std::string, bool> periods[] = {
      {Period::kCurrent, health->current_month, false},
      {Period::kPrevious, health->previous_month, false},
      {Period::kCurrent, health->current_quarter, true},
      {Period::kPrevious, health->previous_quarter, true}};
  for (const auto& [period, name, quarter] : periods) {
    AddTableFigures(projections::KpiTable(states, name, scope, calendar, profile, targets, at_us,
                                          projections::KpiDetail::kFiguresOnly),
                    org, period, name, quarter, health);
  }
  // Callbacks and urges from the month buckets (report buckets hold neither), of each
  // application only its latest revision, as KpiTable counts them.
  std::vector<const projections::KpiState*> current;
  for (const projections::KpiState& state : states) current.push_back(&state);
  std::deque<projections::KpiState> copies;
  projections::KeepLatestRevisions(current, copies);
  for (const projections::KpiState* state : current) {
    if (!state->report_stream.empty() || state->org != org) continue;
    if (state->month == health->current_month) {
      CountBucket(*state, org, Period::kCurrent, health);
    } else if (state->month == health->previous_month) {
      CountBucket(*state, org, Period::kPrevious, health);
    }
  }
}

KpiHealth ComputeKpiHealth(const std::vector<projections::KpiState>& states,
                           const domain::WorkingCalendar& calendar,
                           const domain::SlaProfile& profile, int64_t at_us,
                           const projections::KpiTargets& targets) {
  KpiHealth health = NewKpiHealth(at_us);
  std::set<std::string> orgs;
  for (const projections::KpiState& state : states) {
    if (!state.org.empty()) orgs.insert(state.org);
  }
  for (const std::string& org : orgs) AddOrgKpis(states, org, calendar, profile, targets, &health);
  return health;
}

std::vector<std::string> KpiWindowMonths(int64_t at_us, int lookback_months) {
  const domain::Date today = domain::LocalDateOf(at_us);
  const int quarter_first_month = (today.month() - 1) / 3 * 3 + 1;
  // Months since year 0, from the previous quarter's first month minus the lookback.
  const int last = today.year() * 12 + (today.month() - 1);
  const int first =
      today.year() * 12 + (quarter_first_month - 1) - 3 - std::max(0, lookback_months);
  std::vector<std::string> months;
  for (int m = std::max(first, 0); m <= last; ++m) months.push_back(MonthText(m / 12, m % 12 + 1));
  return months;
}

}  // namespace gridledger::monitoring
