// The KPI projection: the assessment table of ../shared/domain.md "KPI table" (seed section 7.1)
// and its "Supporting figures", per org unit and period, each value with the ids behind it.
//
// Split into a pure fold that records dated facts and a query that judges them. Whether a clock was
// met, a deadline, or an event backdated depends on the working calendar and the SLA profile, which
// the query takes: a newly loaded calendar year or a replaced profile needs no refold.
//
// KEYS. The facts are kept in small buckets, each stored under one key:
//   kpi/m/<org>/<YYYY-MM>   month bucket: facts of <org> dated in that month (Asia/Shanghai date of
//                           the event, see KpiState), plus the change applications ACCEPTED that
//                           month (their change_completion clock, replaced by every later event).
//   kpi/r/<report stream>   report bucket: one report/<type>/<period> stream. Its org (actor org of
//                           ReportDue) and month (of due_date) are only known once ReportDue is
//                           folded, and later report events do not name them, hence a key per
//                           stream.
// (The Engine stores each bucket split: a head at the key and its list items under it, see
// split_state.h; KpiState is the whole bucket, as folded in memory and returned by queries.)
// A runner folds an event into each key of KpiKeysOf() (creating missing buckets with
// NewKpiState(key)); Fold() applies only the part of the event that belongs to the bucket.
//
// REVISIONS. A Corrected makes the application's facts what they should have been
// (domain/correction.h), which may move its items between buckets or change them. The buckets are
// append-only, so a correction does not edit them: the runner refolds the application from its
// first event with every correction applied and folds the items again, each carrying the
// application's new revision (ApplicationState::revision), and the Corrected itself leaves a
// KpiRevision in the month bucket of the date it was recorded (never earlier than a bucket holding
// an item it supersedes). KpiTable counts, of each application, only the items of the highest
// revision found for it (items or KpiRevision); readers of raw buckets filter with
// KeepLatestRevisions. Superseded items stay stored, except a change item folded again into the
// same bucket, which is replaced there (changes are kept one per application and bucket).
//
// QUERY. KpiTable() merges buckets: quarters ("YYYY-Qn") merge their three months. It needs every
// bucket of the org (or of all orgs), not only those of the period: a change accepted in January
// may fall due in March, and callback rate / site-inspection coverage join connections of the
// period with callbacks and inspections of any month.
//
// Decisions beyond domain.md (all documented in KpiTable below):
// - An application's facts count toward ApplicationState::org; events the application projection
//   rejected (invalid) count nowhere. Report streams count toward the actor org of ReportDue;
//   TrainingHeld and facts of report/survey/staff streams toward the actor org of the event.
// - Empty denominator: value and met are null, never 100%.
//
// Thread-safety: values only; nothing here does I/O or reads a clock. Nothing throws.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "domain/workflow.h"
#include "projections/application.h"

namespace gridledger::projections {

// ---- Periods ----

// "YYYY-MM" of a date.
std::string MonthOf(domain::Date date);
// The months ("YYYY-MM", ascending) of a period "YYYY-MM" or "YYYY-Qn" (n = 1..4); nullopt when
// the text is neither.
std::optional<std::vector<std::string>> PeriodMonths(std::string_view period);

// ---- Facts kept by the fold ----

// KPI 1: a new install / capacity increase archived (first Archived) in the bucket's month.
struct KpiArchived {
  std::string app;  // stream "app/<id>"
  uint64_t position = 0;
  domain::Business business = domain::Business::kNewInstall;
  domain::SlaCustomerClass customer_class = domain::SlaCustomerClass::kResidential;
  bool connected = false;     // MeterConnected happened before Archived
  std::vector<Clock> clocks;  // every clock instance as Archived left them (all closed)
  // The connection and archive violations flagged on the application by then (rule ids
  // connected_* and archived_*, in order): domain.md counts violations against the KPIs, and these
  // say a time-limited stage was skipped, so the application did not meet its time limits.
  std::vector<std::string> violations;
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiArchived&) const = default;
};

// KPI 2: a change application, in the bucket of its acceptance month.
struct KpiChange {
  std::string app;
  domain::SlaCustomerClass customer_class = domain::SlaCustomerClass::kResidential;
  Clock clock;             // its change_completion clock as of the last folded event
  bool executed = false;   // ChangeExecuted ended the clock
  bool withdrawn = false;  // Withdrawn before execution: never due
  uint32_t revision = 0;   // see REVISIONS
  bool operator==(const KpiChange&) const = default;
};

// KPI 3 and callback rate: a CallbackMade in the bucket's month.
struct KpiCallback {
  std::string app;
  uint64_t position = 0;
  std::string result;        // reached | no_answer | refused | wrong_number
  std::string satisfaction;  // satisfied | basically_satisfied | dissatisfied | "" (not given)
  // Made before the connection (or change execution) it is meant to follow: a violation, so it
  // counts against KPI 3 and covers nothing for the callback rate.
  bool premature = false;
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiCallback&) const = default;
};

// KPI 4: the first MeterConnected of an application, in the bucket's month.
struct KpiConnection {
  std::string app;
  uint64_t position = 0;
  bool contract_before = false;  // a ContractSigned preceded it
  uint32_t revision = 0;         // see REVISIONS
  bool operator==(const KpiConnection&) const = default;
};

// KPI 5: the report of a report bucket.
struct KpiReport {
  std::string report_type;
  std::string period;                          // ReportDue.period
  domain::Date due_date;                       // ReportDue.due_date
  uint64_t due_position = 0;                   // of the (first) ReportDue
  std::optional<domain::Date> submitted_date;  // local date of the first ReportSubmitted
  uint64_t submitted_position = 0;
  uint32_t corrections = 0;   // ReportCorrected events
  uint64_t errors_found = 0;  // their errors_found summed
  bool operator==(const KpiReport&) const = default;
};

// A DocumentReviewed or SiteInspected in the bucket's month.
struct KpiCheck {
  std::string app;
  uint64_t position = 0;
  bool passed = false;    // conclusion == pass
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiCheck&) const = default;
};

// A workflow violation flagged on an event of the bucket's month (domain/workflow.h).
struct KpiViolation {
  std::string app;
  uint64_t position = 0;
  std::string rule;
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiViolation&) const = default;
};

// An event recorded on a later local date than it occurred; the bucket is the month of recorded_at.
// Whether it is backdated (beyond the profile's tolerance) is decided by the query.
struct KpiLate {
  std::string stream;
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  int64_t recorded_at_us = 0;
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiLate&) const = default;
};

// An Urged on an application of the org, or a TrainingHeld by a member of the org.
struct KpiUrge {
  std::string app;
  uint64_t position = 0;
  int level = 0;
  uint32_t revision = 0;  // see REVISIONS
  bool operator==(const KpiUrge&) const = default;
};
struct KpiTraining {
  std::string stream;  // staff/<id>
  uint64_t position = 0;
  double hours = 0;
  uint32_t attendees = 0;
  bool operator==(const KpiTraining&) const = default;
};

// A correction applied to an application (REVISIONS), in the month bucket of the date the
// Corrected was recorded.
struct KpiRevision {
  std::string app;
  uint64_t position = 0;  // of the Corrected
  uint32_t revision = 0;  // the application's revision after it
  bool operator==(const KpiRevision&) const = default;
};

// A violation settled by a fact recorded later (ApplicationState::settled), in the month bucket
// of the date the settling event was recorded (as a KpiRevision: never earlier than a bucket
// holding an item it settles). KpiTable reads the items it settles as if never flagged: the
// connection counts as with a contract before it, the callback is not premature, the violation
// item is dropped.
struct KpiSettled {
  std::string app;
  uint64_t position = 0;  // of the event the violation was flagged on
  domain::Date date;      // that event's business date: the period whose figures it changes
  std::string rule;
  uint64_t by_position = 0;  // of the event that settled it
  uint32_t revision = 0;     // see REVISIONS
  bool operator==(const KpiSettled&) const = default;
};

// One bucket (see KEYS above). A month bucket has org and month set and report_stream empty; a
// report bucket has report_stream set, and org / month once its ReportDue is folded.
struct KpiState {
  std::string org;
  std::string month;  // "YYYY-MM"
  std::string report_stream;
  uint64_t last_position = 0;  // of the last event folded into this bucket

  std::vector<KpiArchived> archived;
  std::vector<KpiChange> changes;  // accepted this month
  std::vector<KpiCallback> callbacks;
  std::vector<KpiConnection> connections;
  std::optional<KpiReport> report;  // report bucket only
  std::vector<KpiCheck> document_reviews;
  std::vector<KpiCheck> site_inspections;
  std::vector<KpiViolation> violations;
  std::vector<KpiLate> late;
  std::vector<KpiUrge> urges;
  std::vector<KpiTraining> trainings;
  std::vector<KpiRevision> revisions;
  std::vector<KpiSettled> settled;

  bool operator==(const KpiState&) const = default;
};

// ---- Keys ----

std::string KpiMonthKey(std::string_view org, std::string_view month);  // kpi/m/<org>/<YYYY-MM>
std::string KpiReportKey(std::string_view report_stream);               // kpi/r/<stream>
std::string KeyOf(const KpiState& state);
// An empty bucket for a key of KpiMonthKey / KpiReportKey; nullopt for any other text.
std::optional<KpiState> NewKpiState(std::string_view key);

// The keys of the buckets `event` changes, without duplicates. `app_after` is the application
// state after folding the event when it is on an app/ stream, else nullptr.
std::vector<std::string> KpiKeysOf(const EventRecord& event, const ApplicationState* app_after);

// Folds the part of `event` that belongs to `state`'s key (nothing when none does). Pure and
// deterministic; events must come in position order.
void Fold(KpiState& state, const EventRecord& event, const ApplicationState* app_after);

// The same in two steps, routing each event once (what a runner over many buckets wants):
// KpiTargetsOf gives the keys of KpiKeysOf, in the same order, each with the parts of the event
// that belong to it; FoldParts(state, event, app_after, target.parts) on the bucket at target.key
// equals Fold(state, event, app_after).
enum KpiPart : uint8_t {
  kKpiPartMonth = 1,      // app facts dated by occurred_at
  kKpiPartChange = 2,     // the change application's clock
  kKpiPartLate = 4,       // recorded on a later day
  kKpiPartReport = 8,     // report stream events
  kKpiPartTraining = 16,  // TrainingHeld
  kKpiPartSettled = 32,   // violations settled by the event (month of recorded_at)
};
struct KpiTarget {
  std::string key;
  uint8_t parts = 0;  // KpiPart bits
};
// Replaces the contents of `targets`.
void KpiTargetsOf(const EventRecord& event, const ApplicationState* app_after,
                  std::vector<KpiTarget>& targets);
void FoldParts(KpiState& state, const EventRecord& event, const ApplicationState* app_after,
               uint8_t parts);

// Every bucket in memory, by key: for tests, rebuilds and small deployments.
struct KpiBook {
  std::map<std::string, KpiState> states;
};
void Fold(KpiBook& book, const EventRecord& event, const ApplicationState* app_after);
std::vector<KpiState> States(const KpiBook& book);

// ---- Encoding ----

// Deterministic bytes (MessagePack of the canonical JSON form): equal states give equal bytes.
std::string Encode(const KpiState& state);
// nullopt when the bytes are not an encoded KpiState.
std::optional<KpiState> DecodeKpiState(std::string_view bytes);
// The canonical JSON form (also the display form): dates "YYYY-MM-DD", times in microseconds.
nlohmann::json ToJson(const KpiState& state);

// ---- Query ----

// Keeps, of each application, only the items of its highest revision among `states` (REVISIONS):
// a bucket holding superseded items is replaced in `states` by a copy without them, kept in
// `copies`. Buckets without superseded items (all, when nothing was corrected) are not copied.
void KeepLatestRevisions(std::vector<const KpiState*>& states, std::deque<KpiState>& copies);
// Reads the items that violations settled later (KpiSettled, among `states`) as if never flagged:
// a connection's contract counts as before it, a callback is not premature, a violation item is
// dropped. Changed buckets are replaced by copies kept in `copies`, as KeepLatestRevisions does
// (call that first, so that only the latest revision's settlements count).
void ApplySettlements(std::vector<const KpiState*>& states, std::deque<KpiState>& copies);

// Targets as fractions (0..1), compared with `value >= target`. Defaults: domain.md KPI table.
struct KpiTargets {
  double timeliness = 1.0;              // Default: 100%
  double change_completion = 1.0;       // Default: 100%
  double callback_satisfaction = 0.95;  // Default: 95%
  double contract_signing = 1.0;        // Default: 100%
  double report_on_time = 1.0;          // Default: 100%
  double report_accuracy = 1.0;         // Default: 100%
};

// The KPI table of `period` ("YYYY-MM" or "YYYY-Qn") for `org` (nullopt: every org merged):
// {period, org, months[], kpis: [{id, name_zh, numerator, denominator, value, target, met,
//   numerator_ids[], denominator_ids[], [undetermined_ids[]], assessed_per, [note],
//   [by_month: [{month, numerator, denominator, value, met}]]}],
//  supporting: {callback_rate, document_review_pass_rate, site_inspection_coverage,
//   backdated_events, urges_issued, training_hours, violations}}.
// A bad period gives {"error": "bad_period", "period": …}.
//
// `value` is numerator ÷ denominator. Items the calendar cannot judge (undetermined_ids) count in
// neither; `met` is true when the target is reached even if all of them fail, false when it is
// missed even if all of them pass, null when they decide it or when there is nothing to judge.
// `met` follows the period each KPI is assessed in (assessed_per): a quarter-assessed KPI in a
// month's table has met null and a `note` (its figure is for information); a month-assessed KPI in
// a quarter's table lists its months (`by_month`) and is met only if every month with something
// to judge met it (false if one did not, null if one is undetermined or none had anything); its
// numerator and denominator are the quarter's pooled.
// Formulas (ids are application streams "app/<id>", or report streams for KPI 5; they are listed
// in bucket key order, then position order within a bucket, whatever the order of `states`):
//  timeliness            new_install / capacity_increase archived in the period; met when it was
//                        connected before Archived, no connection or archive violation is flagged
//                        on it (connected_*: a prerequisite, review or inspection skipped;
//                        domain.md counts violations against the KPIs) and every clock instance is
//                        met or has no limit for its class (a clock stopped by Archived is not
//                        met, even when its days need an unloaded calendar year). Another clock
//                        whose days need an unloaded year is neither met nor missed — unless the
//                        loaded years' days alone pass its limit (missed for certain): the app is
//                        in neither numerator nor denominator but listed in undetermined_ids
//                        (see `met`).
//  change_completion     changes executed in the period (met when the clock is met), plus changes
//                        not executed (open, or archived without execution) whose deadline falls in
//                        the period; with `as_of_us`, only deadlines before as_of's date count (a
//                        deadline still ahead is not yet failed). Withdrawn unexecuted changes are
//                        not due, nor paused ones while the pause moves the deadline: a pause
//                        begun after a working day past the deadline moves nothing. A late change
//                        is counted in its deadline month while open and moves to its execution
//                        month once executed (the literal domain.md rule). A deadline the
//                        calendar cannot place (in an unloaded year, or a pause begun in one
//                        without a loaded working day past it first) is undetermined_ids in the
//                        periods from the earliest month it could fall in (ClockDeadline).
//  callback_satisfaction reached callbacks in the period (one entry per callback, so an app may
//                        appear twice); satisfied or basically_satisfied ones in the numerator. A
//                        reached callback without satisfaction counts as not satisfied, and so
//                        does one made before the connection (change execution) it should follow:
//                        a violation, counted against the KPI (domain.md "violation").
//  contract_signing      first connections in the period; with a ContractSigned before them.
//                        Assessed per quarter: ask for "YYYY-Qn"; a month query gives the month.
//  report_on_time        reports whose due_date is in the period; submitted (first ReportSubmitted,
//                        local date) on or before due_date. With `as_of_us`, a report not yet
//                        submitted whose due_date is not before as_of's date is not yet due.
//  report_accuracy       those reports that were submitted; never corrected (no ReportCorrected).
// Supporting figures:
//  callback_rate             apps connected in the period with a reached callback made after the
//                            connection (any month) ÷
//                            apps connected in the period ("due" = connected).
//  document_review_pass_rate DocumentReviewed in the period with conclusion pass ÷ all of them.
//  site_inspection_coverage  apps connected in the period with ≥1 SiteInspected (any month) ÷
//                            apps connected in the period.
//  backdated_events          events recorded in the period whose occurred_at lies more than the
//                            profile's tolerance working days before recorded_at (declared bulk
//                            imports excluded); {count, positions[], undetermined[]}.
//  urges_issued              Urged on the org's applications in the period: {count, ids[]}.
//  training_hours            TrainingHeld by the org's staff in the period: {hours, sessions,
//                            person_hours (hours × attendees)}.
//  violations                workflow violations flagged in the period: {count, by_rule{},
//  items[]}.
// The KPI table is per org unit: an org's figures are those of the applications and reports of
// that unit itself, and KpiTable does not roll up the units below it. So a table asked for an org
// with no figures of its own while units below it have some would be all null without saying why.
// `below`: the org units below `org` (dot-separated ids: KM is above KM.XS) with buckets in the
// period; `own`: whether `org` has figures of its own there (a change bucket of any earlier month
// counts: its changes may fall due in the period). `refusal` is set exactly when the table would
// be empty for that reason: a message naming the units to ask for instead.
struct KpiOrgUnits {
  std::vector<std::string> below;
  bool own = false;
  // Whether the org or a unit below it has KPI figures in any period: false for a mistyped id
  // (org ids are case-sensitive) or an org with nothing recorded yet.
  bool known = false;
  std::optional<std::string> refusal;
};
KpiOrgUnits KpiOrgUnitsOf(const std::vector<KpiState>& states, std::string_view period,
                          const std::string& org);

// kFiguresOnly: numerators, denominators and values only — `met` is the pooled period's, no
// `by_month` is made (which costs a table per month) and no `basis`: for monitoring, which
// exports the figures.
enum class KpiDetail { kFull, kFiguresOnly };
nlohmann::json KpiTable(const std::vector<KpiState>& states, std::string_view period,
                        const std::optional<std::string>& org,
                        const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                        const KpiTargets& targets = {},
                        std::optional<int64_t> as_of_us = std::nullopt,
                        KpiDetail detail = KpiDetail::kFull);

}  // namespace gridledger::projections
