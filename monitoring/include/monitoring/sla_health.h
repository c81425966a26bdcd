// SLA health and KPI figures as the dashboards show them: pure summaries of the projections'
// states evaluated at a time T, with bounded keys (org, enums, the current and previous period;
// never an application, customer or staff id). The collector (sla_collector.h) turns them into
// Prometheus families; nothing here knows prometheus-cpp.
//
// Definitions (../../shared/domain.md, "SLA states", "KPI table"):
// - An application is open while accepted and neither archived nor withdrawn. Its SLA state is the
//   worst state of its open clocks evaluated at T: overdue > warning > calendar_missing >
//   on_track > paused; "no_open_clock" when none runs (e.g. waiting for the customer's works)
//   or none has a limit for its class.
// - Open clocks are counted per clock name and state; overdue ones also per escalation level
//   (1..3). The overdue clocks are exactly those projections::OverdueAt reports at T.
// - An overdue application counts once, at the highest escalation level of its overdue clocks.
// - Closed clocks (ended by their own event, not stopped by Archived/Withdrawn) give the stage
//   durations in working days (elapsed, pauses excluded), per clock and customer class, over the
//   whole log (cumulative, so Prometheus can take rates of the buckets), and met/missed counts per
//   org for the current and previous month of their end date.
// - KPIs per org: projections::KpiTable for the current and previous month, and for the current
//   and previous quarter for contract_signing (assessed per quarter), as of T.
//
// Thread-safety: values and pure functions. Nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "ledger/status.h"
#include "projections/application.h"
#include "projections/engine.h"
#include "projections/kpi.h"

namespace gridledger::monitoring {

// The SLA state of a whole application (see above).
enum class AppSlaState : uint8_t {
  kOverdue,
  kWarning,
  kCalendarMissing,
  kOnTrack,
  kPaused,
  kNoOpenClock,
};
std::string_view AppSlaStateName(AppSlaState state);  // "overdue", … "no_open_clock"

// The states an open clock can be in at T (projections::ClockState minus the closed ones).
enum class OpenClockState : uint8_t { kOnTrack, kWarning, kOverdue, kPaused, kCalendarMissing };
std::string_view OpenClockStateName(OpenClockState state);

// Upper bounds (working days) of the stage-duration histogram buckets; +Inf is implicit. They
// cover every default limit (3, 5, 7, 8, 20, 45) and the stricter promises of grid companies.
inline constexpr std::array<double, 16> kStageDurationBucketsWorkingDays = {
    0, 1, 2, 3, 4, 5, 7, 8, 10, 15, 20, 30, 45, 60, 90, 120};

// "current" or "previous": the period of a figure relative to T.
enum class Period : uint8_t { kCurrent, kPrevious };
std::string_view PeriodName(Period period);

struct DurationHistogram {
  // counts[i]: observations <= kStageDurationBucketsWorkingDays[i] (cumulative); count: all.
  std::array<uint64_t, kStageDurationBucketsWorkingDays.size()> cumulative_counts{};
  uint64_t count = 0;
  double sum = 0;
  void Observe(int32_t working_days);
};

struct SlaHealth {
  int64_t evaluated_at_us = 0;
  std::string current_month;   // "YYYY-MM" of T (Asia/Shanghai)
  std::string previous_month;  // the month before
  uint64_t applications = 0;   // application states scanned (open or not)

  // Orgs in order of first appearance; the keys below hold indexes into this list.
  std::vector<std::string> orgs;
  using Org = uint32_t;
  using Clock = domain::SlaClock;
  using Class = domain::SlaCustomerClass;

  // (org, stage (domain::StageName, static text), class, state) → open applications
  std::map<std::tuple<Org, std::string_view, Class, AppSlaState>, uint64_t> open_applications;
  // (org, level 1..3) → overdue applications; every org has all three levels (zeros included)
  std::map<std::tuple<Org, int>, uint64_t> overdue_applications;
  // (org, clock, class, state) → open clocks
  std::map<std::tuple<Org, Clock, Class, OpenClockState>, uint64_t> open_clocks;
  // (org, clock, level) → overdue clocks
  std::map<std::tuple<Org, Clock, int>, uint64_t> overdue_clocks;
  // year → open clocks whose deadline falls in that year, which the calendar does not hold: their
  // state is still exact, their deadline unknown (ClockView::deadline_missing_year)
  std::map<int, uint64_t> deadlines_in_unloaded_year;
  // (clock, class) → durations of closed clocks, over the whole log
  std::map<std::tuple<Clock, Class>, DurationHistogram> durations;
  // (org, clock, met?, period) → closed clocks that ended in the current / previous month
  std::map<std::tuple<Org, Clock, bool, Period>, uint64_t> closed_clocks;

  uint64_t OpenApplicationsTotal() const;
  uint64_t OverdueClocksTotal() const;
};

// Folds application states one by one (a scan never holds them all).
class SlaHealthBuilder {
 public:
  // REQUIRES: calendar and profile outlive the builder.
  SlaHealthBuilder(const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                   int64_t at_us);
  void Add(const projections::ApplicationState& state);
  SlaHealth Finish() &&;

 private:
  SlaHealth::Org OrgIndex(const std::string& org);
  void AddClocks(const projections::ApplicationState& state, SlaHealth::Org org,
                 AppSlaState* app_state, int* app_level);

  const domain::WorkingCalendar& calendar_;
  const domain::SlaProfile& profile_;
  SlaHealth health_;
  std::map<std::string, SlaHealth::Org, std::less<>> org_index_;  // org → index (arrival order)
};

// Scans every stored application state of `engine` and evaluates it at `at_us`.
ledger::Result<SlaHealth> ComputeSlaHealth(const projections::Engine& engine,
                                           const domain::WorkingCalendar& calendar,
                                           const domain::SlaProfile& profile, int64_t at_us);

// ---- KPIs ----

// The KPI ids of domain.md, in the order of projections::KpiTable (a test holds them to it).
inline constexpr std::array<std::string_view, 6> kKpiIds = {
    "timeliness",       "change_completion", "callback_satisfaction",
    "contract_signing", "report_on_time",    "report_accuracy"};

struct KpiFigure {
  std::string org;
  std::string_view kpi;  // one of kKpiIds
  Period period = Period::kCurrent;
  std::string period_name;  // "YYYY-MM", or "YYYY-Qn" for contract_signing
  double numerator = 0;
  double denominator = 0;
  std::optional<double> value;  // nullopt when the denominator is empty
  // Items in neither term: they need a calendar year that is not loaded (undetermined_ids).
  double undetermined = 0;
};

// Callback results and satisfaction values, as labels; anything else counts as "other".
inline constexpr std::array<std::string_view, 4> kCallbackResults = {"reached", "no_answer",
                                                                     "refused", "wrong_number"};
inline constexpr std::array<std::string_view, 4> kSatisfactions = {
    "satisfied", "basically_satisfied", "dissatisfied", "none"};

struct KpiHealth {
  int64_t evaluated_at_us = 0;
  std::string current_month, previous_month, current_quarter, previous_quarter;
  std::vector<std::string> orgs;  // sorted
  std::vector<KpiFigure> figures;
  // Every (org, period, label) of the fixed sets above is present (zeros included); "other" only
  // when counted.
  std::map<std::tuple<std::string, Period, std::string_view>, uint64_t> callbacks;  // by result
  // reached callbacks by satisfaction ("none": not given)
  std::map<std::tuple<std::string, Period, std::string_view>, uint64_t> satisfaction;
  std::map<std::tuple<std::string, Period, std::string>, uint64_t> urges;  // by level "1".."3"
};

// An empty KpiHealth evaluated at `at_us` (periods set).
KpiHealth NewKpiHealth(int64_t at_us);
// Adds the figures, callbacks and urges of `org` to `health`, from `states`: the org's buckets (as
// Engine::KpiStates returns them; other orgs' buckets are ignored). Every bucket the periods
// need must be there: the month buckets of KpiWindowMonths and the org's report buckets.
void AddOrgKpis(const std::vector<projections::KpiState>& states, const std::string& org,
                const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                const projections::KpiTargets& targets, KpiHealth* health);
// Evaluates the KPI table of every org found in `states` at `at_us`.
KpiHealth ComputeKpiHealth(const std::vector<projections::KpiState>& states,
                           const domain::WorkingCalendar& calendar,
                           const domain::SlaProfile& profile, int64_t at_us,
                           const projections::KpiTargets& targets = {});

// The months ("YYYY-MM", ascending) whose month buckets the figures at `at_us` read: the previous
// and current quarter, and `lookback_months` before them. Every KPI but change_completion reads
// only the months of its period; change_completion also counts changes accepted earlier whose
// deadline falls in the period, which the lookback covers unless a change stayed paused longer.
std::vector<std::string> KpiWindowMonths(int64_t at_us, int lookback_months);

// The periods of a date: its month and quarter ("YYYY-MM", "YYYY-Qn") and those before them.
struct Periods {
  std::string current_month, previous_month, current_quarter, previous_quarter;
};
Periods PeriodsOf(domain::Date date);

}  // namespace gridledger::monitoring
