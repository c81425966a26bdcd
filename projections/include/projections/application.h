// The application projection: the state of one work order (stream app/<id>) folded from its events,
// with every stage clock and its SLA state (../shared/domain.md, "Time limits", "Counting",
// "SLA states").
//
// Fold() is pure and deterministic: the same events in the same order give an equal state, and
// nothing here does I/O or reads a clock. Evaluation against a working calendar and an SLA profile
// at a time T is separate (Evaluate, ToJson), so a newly loaded calendar year or a replaced profile
// needs no refold.
//
// "State as of a business time T": fold only the events with occurred_at <= T (FoldStream with
// OccurredBy(T)) and evaluate at T. "As the system knew it at recorded time R": fold the events up
// to ledger::Ledger::PositionAt(R).
//
// Clocks (domain.md table; each restart is a new instance with the next attempt number):
//   scheme_reply           ApplicationAccepted (not three_zero, not change) → SchemeReplied
//   design_review          DesignSubmitted → DesignReviewed (a fail ends it; resubmission restarts)
//   mid_inspection         MidInspectionRequested → MidInspected (likewise)
//   completion_inspection  CompletionReported → CompletionInspected (likewise)
//   connection             the event completing the applicable prerequisites (completion passed,
//                          contract signed, fees settled, scheme replied — see domain/workflow.h),
//                          dated at the latest of their dates → MeterConnected. A MeterConnected
//                          without a running connection clock (a violation) gets an instance
//                          started at the latest prerequisite that did happen (or the acceptance)
//                          and ended at once.
//   change_completion      ApplicationAccepted (change) → ChangeExecuted
//   total                  ApplicationAccepted (not change) → MeterConnected: the whole wait,
//   judged
//                          only by profiles that promise a total (SlaProfile::Defines), and not
//                          shown by ToJson otherwise
// A violation is settled when the fact it missed is recorded later but dated on or before its
// event (domain::RulesSettledBy): it moves from `violations` to `settled`, and a connection
// measured without that prerequisite is measured again from the prerequisites as dated. A
// customer-caused pause (ClockPaused → ClockResumed) pauses every clock open on its dates; a clock
// opened while paused starts paused. By business dates, not by the order of recording: a pause
// entered late pauses the clocks that were open on its dates, even one closed since, and never
// counts days before a clock started or after it ended (Clock::pauses is the application's pauses
// clipped to the clock, in date order, overlaps merged). Archived or Withdrawn stop every clock
// still open: such a clock is `stopped` (its ending event never happened; it never counts as met).
// Urged never moves anything.
//
// Events that the workflow rules call invalid (domain/workflow.h) should never be stored; if one is
// (an old import, a bypassed front door), the fold skips it and lists it in `rejected`, so replay
// stays deterministic and the anomaly stays visible.
//
// Thread-safety: values only; concurrent use of distinct states is safe. Nothing throws.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "domain/correction.h"
#include "domain/sla_profile.h"
#include "domain/workflow.h"
#include "ledger/event.h"
#include "ledger/status.h"

namespace gridledger::projections {

// One event as the fold needs it; views into the caller's storage, valid for the call only.
struct EventRecord {
  uint64_t position = 0;
  std::string_view stream;
  std::string_view type;
  std::string_view actor_id;
  std::string_view actor_org;
  int64_t occurred_at_us = 0;
  int64_t recorded_at_us = 0;
  std::string_view payload;
  bool imported = false;      // declared a bulk import of a historical record: never backdated
  bool opens_stream = false;  // known to be its stream's first event (version 0)
  std::string_view actor_role = {};  // who may correct what goes by it (domain/roles.h)
};
EventRecord RecordOf(const ledger::EventView& event);
EventRecord RecordOf(const ledger::StoredEvent& event);

// A customer-caused pause of one clock: working days in (from, to] do not count.
struct PauseInterval {
  domain::Date from;
  std::optional<domain::Date> to;  // nullopt while still paused
  uint64_t from_position = 0;
  uint64_t to_position = 0;  // 0 while still paused
  bool operator==(const PauseInterval&) const = default;
};

// One instance of a stage clock.
struct Clock {
  domain::SlaClock name = domain::SlaClock::kSchemeReply;
  int attempt = 1;  // 1 for the first instance of this name, 2 after the first restart, …
  domain::Date start;
  std::optional<domain::Date> end;  // nullopt while open
  uint64_t start_position = 0;
  uint64_t end_position = 0;  // 0 while open
  // Set when Archived or Withdrawn ended the clock instead of its own ending event.
  std::optional<domain::AppEventType> stopped_by;
  std::vector<PauseInterval> pauses;

  bool open() const { return !end.has_value(); }
  bool paused() const { return open() && !pauses.empty() && !pauses.back().to.has_value(); }
  bool operator==(const Clock&) const = default;
};

struct ViolationRecord {
  std::string rule;  // domain/workflow.h violation table
  uint64_t position = 0;
  std::string type;
  std::string message;
  domain::Date date;  // the business date of the event at `position`
};

// A violation settled by a fact recorded after it but dated on or before its event
// (domain::RulesSettledBy): the fact was not missing, only entered late.
struct SettledViolation {
  ViolationRecord violation;
  uint64_t by_position = 0;  // the event that settled it
  std::string by_type;
  domain::Date by_date;
};

// An event recorded on a later local date than it occurred: a backdating candidate. Whether it is
// flagged depends on the calendar and the profile's tolerance, so Backdated() decides.
struct LateRecord {
  uint64_t position = 0;
  std::string type;
  int64_t occurred_at_us = 0;
  int64_t recorded_at_us = 0;
};

struct UrgeRecord {
  uint64_t position = 0;
  int level = 0;
  std::string to_org;
  std::string to_person;
  std::string channel;
  std::optional<std::string> committed_date;  // "YYYY-MM-DD"; never moves a deadline
  int64_t occurred_at_us = 0;
  std::string by;  // the actor id of the Urged: whose staff audit lists it as issued
};

// A Corrected applied to this application (domain/correction.h).
struct CorrectionRecord {
  uint64_t position = 0;
  uint64_t corrects_position = 0;
  std::string reason;
  std::string fields;  // Corrected.fields: a JSON object as text
};

// A stored event the fold did not apply (invalid by the workflow rules, or undecodable).
struct RejectedRecord {
  uint64_t position = 0;
  std::string type;
  std::string rule;
  std::string message;
};

// When a connection prerequisite first happened.
struct Milestone {
  domain::Date date;
  uint64_t position = 0;
};

struct ApplicationState {
  std::string stream;  // set by the first folded event; events of other streams are ignored
  std::string org;     // actor.org of ApplicationAccepted
  domain::WorkflowFacts facts;  // customer class, business, flags (domain/workflow.h)
  uint64_t last_position = 0;   // of the last folded event (applied or rejected)
  uint64_t events_applied = 0;
  // How many corrections that change facts the events folded into this state carry
  // (CorrectedStream::revision()): the KPI items made from it carry it too, so a correction's
  // refold supersedes the items of the fold before it (see kpi.h, REVISIONS).
  uint32_t revision = 0;
  std::optional<domain::Date> accepted_date;

  std::optional<Milestone> scheme_replied;
  std::optional<Milestone> fees_settled;
  std::optional<Milestone> contract_signed;
  std::optional<Milestone> completion_passed;

  std::vector<Clock> clocks;  // in the order they started; the latest instance of a name is last
  // The customer-caused pauses (ClockPaused, closed by the next ClockResumed) in the order
  // recorded; only the last may be open. Each clock's `pauses` are these, clipped to it.
  std::vector<PauseInterval> pauses;
  std::vector<ViolationRecord> violations;  // standing: not settled
  // Violations settled later, in the order settled; they count nowhere (KPIs read `violations`).
  std::vector<SettledViolation> settled;
  std::vector<LateRecord> late_records;
  std::vector<UrgeRecord> urges;
  // Corrections applied: the state is folded from the events as corrected (CorrectedStream).
  std::vector<CorrectionRecord> corrections;
  std::vector<RejectedRecord> rejected;

  std::string_view stage() const { return domain::StageName(facts); }
  // The latest instance of a clock, or nullptr when it never started.
  const Clock* LatestClock(domain::SlaClock name) const;
  Clock* LatestClock(domain::SlaClock name) {
    return const_cast<Clock*>(std::as_const(*this).LatestClock(name));
  }
};

// Folds one event into `state`. Pure and deterministic; events must come in position order.
void Fold(ApplicationState& state, const EventRecord& event);
void Fold(ApplicationState& state, const ledger::EventView& event);
void Fold(ApplicationState& state, const ledger::StoredEvent& event);

// One application's events with the corrections among them applied (domain/correction.h): a
// corrected event's record carries its corrected payload and occurred_at, everything else is the
// record given. Folding records() from an empty state with Fold() below is the application as
// corrected, and what the Engine stores.
class CorrectedStream {
 public:
  // `records`: one stream's events in position order (views that must outlive this object).
  explicit CorrectedStream(std::vector<EventRecord> records);
  CorrectedStream(const CorrectedStream&) = delete;
  CorrectedStream& operator=(const CorrectedStream&) = delete;

  const std::vector<EventRecord>& records() const { return records_; }
  uint32_t applied() const { return corrections_.applied; }
  // The applied corrections that change facts (domain::ChangesFacts): an application folded
  // from these records has this revision (ApplicationState::revision).
  uint32_t revision() const { return static_cast<uint32_t>(corrections_.changing_facts.size()); }
  // Whether the Corrected at `position` was applied and changes facts.
  bool ChangesFacts(uint64_t position) const {
    return corrections_.changing_facts.contains(position);
  }
  // Why the Corrected at `position` was not applied, or nullptr when it was (or is no Corrected).
  const domain::RuleBreach* Refused(uint64_t position) const;
  // Folds one of records() into `state`; a Corrected that was not applied is listed in
  // `rejected`, not in `corrections`.
  void Fold(ApplicationState& state, const EventRecord& record) const;

 private:
  domain::AppliedCorrections corrections_;  // owns the corrected payloads records_ view
  std::vector<EventRecord> records_;
};

// What can be told of the Corrected `record` from the one event it corrects (`read(position)`), as
// the corrections already in `app` left it, without the application's other events:
//   kChangesNoFact  it applies and changes no fact (domain::ChangesFacts is false): fold it as any
//                   event, nothing is folded again;
//   kNotItsEvent    it names an event of another application, or none before it: fold it as
//                   rejected with domain::CorrectionTargetBreach;
//   kUnknown        anything else (it changes facts, would be refused otherwise, or the event
//                   cannot be read): a CorrectedStream of the application's events decides.
// A CorrectedStream always agrees with the first two answers.
enum class CorrectionCheck : uint8_t { kChangesNoFact, kNotItsEvent, kUnknown };
CorrectionCheck CheckCorrection(
    const ApplicationState& app, const EventRecord& record,
    const std::function<ledger::Result<ledger::StoredEvent>(uint64_t)>& read);

// The events of one stream before `position`, as records (views into `events`).
std::vector<EventRecord> RecordsBefore(const std::vector<ledger::StoredEvent>& events,
                                       uint64_t position);

// How FoldCorrection folded a Corrected.
enum class CorrectionFold : uint8_t {
  kAsEvent,   // as one event: fold its derived projections as for any event
  kRefolded,  // the whole application again: `refolded` was called for every event of it
};
// Folds the Corrected `record` into `app` (the application folded up to the event before it), as
// every runner does (Engine, KpiStatesAt), so that inline folding, catch-up, rebuilds and replays
// agree:
// - one that changes no fact, or that does not apply, is folded as one event (kAsEvent);
// - one that changes facts folds the application again from its first event, as corrected, at its
//   next revision: `app` is replaced, and `refolded(event, app_after)` is called for each of its
//   events, the Corrected last, to fold the derived projections again (kRefolded).
// `read_one` reads a stored event by position (CheckCorrection); `read_stream` the application's
// stored events, read only when the corrected event alone cannot decide. Errors of the reads and
// of `refolded` are returned; `app` is then unchanged.
ledger::Result<CorrectionFold> FoldCorrection(
    ApplicationState& app, const EventRecord& record,
    const std::function<ledger::Result<ledger::StoredEvent>(uint64_t)>& read_one,
    const std::function<ledger::Result<std::vector<ledger::StoredEvent>>()>& read_stream,
    const std::function<ledger::Status(const EventRecord&, const ApplicationState&)>& refolded);

// Which events a fold takes; an empty filter takes all.
using EventFilter = std::function<bool(const EventRecord&)>;
// Events that occurred (business time) at or before `occurred_at_max_us`.
EventFilter OccurredBy(int64_t occurred_at_max_us);
// Folds the events of one stream (in the order given), as corrected (CorrectedStream: the
// corrections among all of `events` apply, whatever `keep` says of the Corrected events), that
// pass `keep` (which sees corrected records).
ApplicationState FoldStream(const std::vector<ledger::StoredEvent>& events,
                            const EventFilter& keep = {});

// A clock's deadline (domain.md "Counting"): the date on which its elapsed working days reach
// `limit_days`, moved later by the working days of each pause that began before the clock was
// late. A pause begun once a working day past that date had gone by moves nothing (elapsed had
// already passed the limit: a date missed stays missed), nor do later ones. An open pause that
// counts moves it by its days up to `until` (none without `until`) and sets `moving`: the
// deadline moves on while it lasts. `deadline.missing_year` when the calendar cannot say; then
// `not_before` is a date the deadline cannot precede: January 1 of that year when the count
// itself runs into it; for a pause that begins in it, the deadline before that pause (at the end
// of the loaded years); for a pause that runs into it, the deadline moved by the pause's working
// days in the loaded years.
struct ClockDeadline {
  domain::CalendarAnswer<domain::Date> deadline;
  bool moving = false;
  std::optional<domain::Date> not_before;  // set exactly when !deadline.ok()
};
ClockDeadline DeadlineOf(const Clock& clock, const domain::WorkingCalendar& calendar,
                         int32_t limit_days, std::optional<domain::Date> until);

// The SLA state of a clock, domain.md "SLA states", plus:
//   not_applicable   the profile has no limit for this clock and class (a "–" cell)
//   calendar_missing elapsed or paused days need a year that is not loaded (never guessed)
//   stopped          Archived / Withdrawn ended the clock before its own ending event
enum class ClockState : uint8_t {
  kOnTrack,
  kWarning,
  kOverdue,
  kPaused,
  kMet,
  kMissed,
  kCalendarMissing,
  kNotApplicable,
  kStopped,
};
std::string_view ClockStateName(ClockState state);  // "on_track", … "stopped"

struct ClockView {
  domain::SlaClock name = domain::SlaClock::kSchemeReply;
  int attempt = 1;
  domain::Date start;
  std::optional<domain::Date> end;
  std::optional<int32_t> limit_days;  // nullopt: not applicable
  int32_t elapsed_working_days = 0;   // working days in (start, end or T] minus paused days
  bool elapsed_known = true;  // false when that needs a year the calendar lacks
  int32_t paused_working_days = 0;
  bool paused_known = true;  // false when a pause runs into a year the calendar lacks
  // The date elapsed reaches the limit, moved later by paused days. nullopt when not applicable,
  // or when it lies in an unloaded year (then deadline_missing_year names it; the state is still
  // exact, since elapsed is known). A calendar_missing clock has one when all its paused days are
  // known and the deadline lies in a loaded year; its elapsed days are unknown (JSON null).
  std::optional<domain::Date> deadline;
  int deadline_missing_year = 0;
  ClockState state = ClockState::kOnTrack;
  int32_t overdue_days = 0;  // elapsed − limit when overdue or missed
  int escalation_level = 0;  // 1..3 when overdue
  int missing_year = 0;      // when a day count needs unloaded years: the first of them
};

// A clock's day counts in JSON: null when the calendar could not give them — the elapsed days of
// a calendar_missing clock (or a stopped one) counted into the unloaded year, and its paused days
// when a pause runs into it — not 0.
nlohmann::json ElapsedJson(const ClockView& view);
nlohmann::json PausedJson(const ClockView& view);

// Evaluates `clock` at `at_unix_us` (its Asia/Shanghai date is T). An open clock counts to T and an
// open pause to T; a closed clock ignores T.
ClockView Evaluate(const Clock& clock, const domain::WorkingCalendar& calendar,
                   const domain::SlaProfile& profile, domain::SlaCustomerClass customer_class,
                   int64_t at_unix_us);

// A backdated event: occurred_at more than the profile's tolerance working days before
// recorded_at. working_days_late is nullopt (and missing_year set) when counting needs an unloaded
// year; such records are listed so an auditor sees them.
// Bulk imports declare themselves ("import": true, kept in the envelope) and are never recorded as
// late, so they are not flagged.
struct BackdatedFlag {
  LateRecord record;
  std::optional<int32_t> working_days_late;
  int missing_year = 0;
};
std::vector<BackdatedFlag> Backdated(const ApplicationState& state,
                                     const domain::WorkingCalendar& calendar,
                                     const domain::SlaProfile& profile);

// The state as JSON, evaluated at `at_unix_us`:
// {stream, org, customer_class, business, important, three_zero, stage, paused, last_position,
//  clocks: {<name>: {attempt, start, end, limit, elapsed_working_days, paused_working_days,
//                    deadline, state, [overdue_days, escalation_level], [missing_year],
//                    [deadline_missing_year], start_position, end_position, pauses[],
//                    [stopped_by], [attempts: [earlier instances, oldest first]]}},
//  violations[], backdated[], urges[], corrections[{position, corrects_position, reason,
//  fields}], rejected[]}.
// Dates are "YYYY-MM-DD", times RFC 3339 in +08:00, absent values null.
nlohmann::json ToJson(const ApplicationState& state, const domain::WorkingCalendar& calendar,
                      const domain::SlaProfile& profile, int64_t at_unix_us);

}  // namespace gridledger::projections
