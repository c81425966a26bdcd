// SlaCollector: the SLA-health and KPI families (sla_health.h), computed at scrape time from the
// projections' stored states evaluated at "now", so they move as working-day time passes even when
// no event arrives.
//
// Cost: one scan of every application state (decode + evaluation of each clock) and four KPI
// tables per org over the KPI buckets of recent months (see kpi_lookback_months). A scrape reuses
// the last figures while they are fresh: SLA figures are recomputed when older than sla_max_age, or
// when the projections moved on and they are older than min_interval; KPI figures likewise with
// kpi_max_age and kpi_min_interval. Concurrent scrapes share one computation. A failed scan keeps
// the previous figures, counts an error and logs its cause (a warning).
//
// Families (every label is an org or a closed set; never an application, customer or staff id):
//   gridledger_sla_open_applications{org,stage,customer_class,sla_state}      gauge
//   gridledger_sla_overdue_applications{org,level}                            gauge
//   gridledger_sla_open_clocks{org,clock,customer_class,sla_state}            gauge
//   gridledger_sla_overdue_clocks{org,clock,level}                            gauge
//   gridledger_sla_stage_duration_workdays{clock,customer_class}          histogram
//   gridledger_sla_closed_clocks{org,clock,result,period}                     gauge
//   gridledger_sla_applications, gridledger_sla_evaluation_timestamp_seconds,
//   gridledger_sla_evaluation_duration_seconds, gridledger_sla_evaluated_checkpoint_position,
//   gridledger_sla_evaluation_errors_total
//   gridledger_kpi_value / _numerator / _denominator{org,kpi,period}          gauge
//   gridledger_kpi_target{kpi}, gridledger_kpi_period_info{period,kind,name}  gauge
//   gridledger_callbacks{org,period,result}                                   gauge
//   gridledger_callback_satisfaction{org,period,satisfaction}                 gauge
//   gridledger_urges_issued{org,period,level}                                 gauge
//   gridledger_kpi_evaluation_timestamp_seconds, gridledger_kpi_evaluation_duration_seconds
//
// Thread-safety: Collect may be called from any number of threads.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "monitoring/sla_health.h"
#include "projections/engine.h"
#include "projections/kpi.h"

namespace gridledger::monitoring {

struct SlaCollectorOptions {
  // SLA figures older than this are recomputed at the next scrape. Default: 10 s.
  std::chrono::milliseconds sla_max_age{10'000};
  // When the projections' checkpoint moved, SLA figures older than this are recomputed, so new
  // events show up at the next scrape; the bound on how often a busy ledger pays for a scan.
  // Default: 1 s.
  std::chrono::milliseconds min_interval{1'000};
  // KPI figures older than this are recomputed; when the checkpoint moved, those older than
  // kpi_min_interval. Defaults: 60 s and 10 s.
  std::chrono::milliseconds kpi_max_age{60'000};
  std::chrono::milliseconds kpi_min_interval{10'000};
  // Months before the previous quarter whose KPI buckets are read too (KpiWindowMonths): bounds
  // the cost and memory of a KPI refresh by the recent log, not the whole history. Default: 6.
  int kpi_lookback_months = 6;
  projections::KpiTargets kpi_targets;
};

class SlaCollector : public prometheus::Collectable {
 public:
  // REQUIRES: engine, calendar and profile outlive the collector. `now_us`: the business clock
  // (Unix microseconds); default the system clock.
  SlaCollector(const projections::Engine& engine, const domain::WorkingCalendar& calendar,
               const domain::SlaProfile& profile, std::function<int64_t()> now_us = {},
               SlaCollectorOptions options = {});

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // The last figures of one kind (SLA or KPI) and what they reflect.
  template <typename Health>
  struct Cached {
    std::optional<Health> health;
    std::chrono::steady_clock::time_point computed;  // when their computation started
    uint64_t checkpoint = 0;      // the projections' checkpoint read before it (reflected at least)
    double duration_seconds = 0;  // how long it took
  };

  void RefreshLocked() const;
  // Recomputes `cached` with `compute` when stale (see the cost note above); `what` names the
  // figures in the log line of a failure.
  template <typename Health, typename Compute>
  void RefreshIfStale(Cached<Health>& cached, const char* what, int64_t now_us, uint64_t checkpoint,
                      std::chrono::milliseconds max_age, std::chrono::milliseconds min_interval,
                      Compute compute) const;
  // Reads the report buckets and, per org, the month buckets of the window, one org at a time.
  ledger::Result<KpiHealth> ComputeKpis(int64_t now_us) const;
  void AddSlaFamilies(const SlaHealth& health, std::vector<prometheus::MetricFamily>& out) const;
  void AddKpiFamilies(const KpiHealth& health, std::vector<prometheus::MetricFamily>& out) const;

  const projections::Engine& engine_;
  const domain::WorkingCalendar& calendar_;
  const domain::SlaProfile& profile_;
  const std::function<int64_t()> now_us_;
  const SlaCollectorOptions options_;

  mutable std::mutex mutex_;  // guards everything below; held during a refresh
  mutable Cached<SlaHealth> sla_;
  mutable Cached<KpiHealth> kpi_;
  mutable uint64_t errors_ = 0;
};

}  // namespace gridledger::monitoring
