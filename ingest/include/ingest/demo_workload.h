// A seeded, realistic demo workload: the event log of a power-supply bureau's business expansion
// (../shared/domain.md) as JSON lines in the client contract, ready for `ledgerctl import`,
// benchmarks and demos.
//
// What it produces, in occurred_at order across all streams (like the real log):
// - app/<prefix>-<year>-<seq>: one application each — new installs, capacity increases and changes
//   of every customer class, important HV customers (design review + mid inspection), three_zero
//   LV, late steps with urges, customer-caused pauses, failed reviews/inspections with
//   resubmission, withdrawals, a few deliberate workflow VIOLATIONS (never INVALID events, see
//   domain/workflow.h), document reviews, site inspections, callbacks and corrections;
// - report/<report_type>.<org>/<period>: monthly and quarterly reports per org (ReportDue,
//   ReportSubmitted, sometimes ReportCorrected). The org is part of the type segment because a
//   report stream holds one report;
// - survey/<YYYY>-Q<n>: one ThirdPartySurveyRecorded per org and quarter;
// - staff/<id>: TrainingHeld (on the director's stream) and SensitiveDataAccessed.
//
// Every event carries "import": true (historical records, so they are not flagged as backdated),
// a unique event_id derived from the seed, and expected_version = the stream's version before it
// (-1 for the first event). Corrected.corrects_position assumes the output is appended in order to
// a ledger whose next position is DemoOptions::first_position. Stream names depend on the options,
// not the seed: to load two runs into one ledger, give them different app_id_prefix and orgs.
//
// Memory is O(applications in progress), not O(events): applications start in acceptance order and
// a priority queue holds only those still open, each with its short plan of steps.
//
// Thread-safety: a DemoWorkload is a single-threaded cursor. Nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "domain/calendar.h"

namespace gridledger::ingest {

struct DemoOptions {
  // Seeds every random choice; equal seed and options give byte-identical output. Default: 1.
  uint64_t seed = 1;
  // Applications accepted between first_day and last_day, spread over the working days.
  // Default: 1000 (about 12 events each, plus a few hundred report/survey/staff events a month).
  uint64_t apps = 1000;
  // The period of the log. Nothing is emitted after last_day, so applications accepted near its end
  // stay open. Days outside the loaded calendar get no events. Default: 2025-01-02 .. 2026-12-31.
  domain::Date first_day = domain::Date::FromDaysSinceEpoch(20090);  // 2025-01-02
  domain::Date last_day = domain::Date::FromDaysSinceEpoch(20818);   // 2026-12-31
  // Org units (Kunming districts) that accept applications; each has its own staff. 1..99 orgs.
  std::vector<std::string> orgs = {"KM.XS", "KM.WH", "KM.GD", "KM.PL"};
  // Application ids are "<prefix>-<year>-<6-digit sequence>". Default: "KM".
  std::string app_id_prefix = "KM";
  // The position the first emitted event will get in the target ledger. Default: 1 (empty ledger).
  uint64_t first_position = 1;
  // Also emit report, survey and staff events. Default: true.
  bool background = true;
  // The share of closed applications corrected afterwards (Corrected of the acceptance: customer
  // name, capacity, or the acceptance time a day earlier). Default: 0.006.
  double correction_rate = 0.006;
};

class DemoWorkload {
 public:
  // REQUIRES: `calendar` outlives this object and covers [first_day, last_day] (uncovered days get
  // no events); first_day <= last_day; 1 <= orgs.size() <= 99.
  DemoWorkload(DemoOptions options, const domain::WorkingCalendar& calendar);
  ~DemoWorkload();
  DemoWorkload(const DemoWorkload&) = delete;
  DemoWorkload& operator=(const DemoWorkload&) = delete;

  // Writes the next event as one JSON line (no trailing newline) into `json_line`, replacing its
  // contents. Returns false, leaving `json_line` untouched, when the workload is exhausted.
  bool Next(std::string* json_line);

  uint64_t events_emitted() const;
  // Applications accepted so far.
  uint64_t apps_started() const;
  // Processes (open applications and report/staff batches) waiting in the queue right now: the
  // generator's memory is proportional to this.
  size_t processes_queued() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gridledger::ingest
