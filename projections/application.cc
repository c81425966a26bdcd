// The application projection (see projections/application.h).
#include "projections/application.h"

#include <algorithm>
#include <tuple>
#include <variant>

#include "domain/event_json.h"
#include "domain/roles.h"

namespace gridledger::projections {
namespace {

using domain::AppEventType;
using domain::Date;
using domain::SlaClock;

std::string_view AsView(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

// ---- Clock bookkeeping ----

Clock* LatestOpenClock(ApplicationState& state, SlaClock name) {
  Clock* clock = state.LatestClock(name);
  return clock != nullptr && clock->open() ? clock : nullptr;
}

// The application's pauses as they pause `clock`: each clipped to the clock's (start, end], in date
// order, overlapping ones merged (pauses entered out of date order may overlap). Business dates
// decide, not the order of recording (domain.md "Counting"). A pause clipped at the clock's start
// or end takes that event's position, which ClockAsOf reads as when it began or ended.
void RefreshPauses(const ApplicationState& state, Clock& clock) {
  clock.pauses.clear();
  for (PauseInterval pause : state.pauses) {
    if (pause.from < clock.start) {
      pause.from = clock.start;
      pause.from_position = clock.start_position;
    }
    if (clock.end && (!pause.to || *clock.end < *pause.to)) {
      pause.to = clock.end;
      pause.to_position = clock.end_position;
    }
    if (pause.to && !(pause.from < *pause.to)) continue;  // not a day of it inside the clock
    clock.pauses.push_back(pause);
  }
  if (clock.pauses.size() < 2) return;
  std::sort(clock.pauses.begin(), clock.pauses.end(),
            [](const PauseInterval& a, const PauseInterval& b) {
              return std::tie(a.from, a.from_position) < std::tie(b.from, b.from_position);
            });
  std::vector<PauseInterval> merged;
  for (const PauseInterval& pause : clock.pauses) {
    PauseInterval* last = merged.empty() ? nullptr : &merged.back();
    if (last == nullptr || (last->to && !(pause.from < *last->to))) {
      merged.push_back(pause);
    } else if (last->to && (!pause.to || *last->to < *pause.to)) {
      last->to = pause.to;
      last->to_position = pause.to_position;
    }
  }
  clock.pauses = std::move(merged);
}

void RefreshAllPauses(ApplicationState& state) {
  for (Clock& clock : state.clocks) RefreshPauses(state, clock);
}

void OpenClock(ApplicationState& state, SlaClock name, Date date, uint64_t position) {
  Clock clock;
  clock.name = name;
  clock.attempt = 1 + static_cast<int>(std::count_if(
                          state.clocks.begin(), state.clocks.end(),
                          [name](const Clock& existing) { return existing.name == name; }));
  clock.start = date;
  clock.start_position = position;
  RefreshPauses(state, clock);  // a clock started during a pause waits with the others
  state.clocks.push_back(std::move(clock));
}

void EndClock(const ApplicationState& state, Clock& clock, Date date, uint64_t position) {
  clock.end = date;
  clock.end_position = position;
  RefreshPauses(state, clock);
}

void CloseClock(ApplicationState& state, SlaClock name, Date date, uint64_t position) {
  if (Clock* clock = LatestOpenClock(state, name)) EndClock(state, *clock, date, position);
}

// The scheme is replied once: a reply entered after another but dated before it (the first
// reply, entered late) ends the clock on its own date — the one the connection's prerequisites
// and settled violations go by. One dated before the clock's start, or a clock stopped by an
// archive or withdrawal, moves nothing.
void OnSchemeReplied(ApplicationState& state, Date date, uint64_t position) {
  Clock* clock = state.LatestClock(SlaClock::kSchemeReply);
  if (clock != nullptr &&
      (clock->open() || (!clock->stopped_by && date < *clock->end && !(date < clock->start)))) {
    EndClock(state, *clock, date, position);
  }
}

void OnPaused(ApplicationState& state, Date date, uint64_t position) {
  state.pauses.push_back(PauseInterval{date, std::nullopt, position, 0});
  RefreshAllPauses(state);
}

// The workflow rules refuse a resume without a pause; a stored one (an old import) ends nothing.
void OnResumed(ApplicationState& state, Date date, uint64_t position) {
  if (state.pauses.empty() || state.pauses.back().to) return;
  state.pauses.back().to = date;
  state.pauses.back().to_position = position;
  RefreshAllPauses(state);
}

void StopOpenClocks(ApplicationState& state, AppEventType by, Date date, uint64_t position) {
  for (Clock& clock : state.clocks) {
    if (!clock.open()) continue;
    EndClock(state, clock, date, position);
    clock.stopped_by = by;
  }
}

// A prerequisite recorded more than once (or late, dated earlier than one recorded before it)
// happened first on its earliest business date.
void SetEarliest(std::optional<Milestone>& milestone, Date date, uint64_t position) {
  if (!milestone || date < milestone->date) milestone = Milestone{date, position};
}

domain::PrerequisiteDates DatesOf(const ApplicationState& state) {
  auto date = [](const std::optional<Milestone>& m) {
    return m ? std::optional<Date>(m->date) : std::nullopt;
  };
  return {date(state.scheme_replied), date(state.fees_settled), date(state.completion_passed),
          date(state.contract_signed)};
}

// The applicable connection prerequisites that happened, and whether all of them did.
struct Prerequisites {
  std::optional<Date> latest;
  uint64_t latest_position = 0;  // of the (last recorded) prerequisite on that date
  bool all = true;
};

// Those that happened on or before `by` (all of them without it).
Prerequisites ConnectionPrerequisites(const ApplicationState& state,
                                      std::optional<Date> by = std::nullopt) {
  const domain::WorkflowFacts& facts = state.facts;
  Prerequisites out;
  auto take = [&out, by](bool applies, const std::optional<Milestone>& milestone) {
    if (!applies) return;
    if (!milestone || (by && *by < milestone->date)) {
      out.all = false;
      return;
    }
    if (!out.latest || *out.latest < milestone->date ||
        (*out.latest == milestone->date && out.latest_position < milestone->position)) {
      out.latest = milestone->date;
      out.latest_position = milestone->position;
    }
  };
  take(domain::CompletionInspectionRequired(facts), state.completion_passed);
  take(true, state.contract_signed);
  take(domain::FeesApply(facts), state.fees_settled);
  take(domain::SchemeReplyApplies(facts), state.scheme_replied);
  return out;
}

bool HasClock(const ApplicationState& state, SlaClock name) {
  return state.LatestClock(name) != nullptr;
}

// The business date of the step an archive or callback follows: the first connection (new install,
// capacity increase) or the change's execution; nullopt until it is recorded.
std::optional<Date> ConnectedOrExecutedDate(const ApplicationState& state) {
  const SlaClock name =
      domain::IsChange(state.facts) ? SlaClock::kChangeCompletion : SlaClock::kConnection;
  for (const Clock& clock : state.clocks) {
    if (clock.name == name && clock.end && !clock.stopped_by) return clock.end;
  }
  return std::nullopt;
}

// Called after each applied event of a new install / capacity increase.
void MaybeOpenConnection(ApplicationState& state, uint64_t position) {
  if (domain::IsChange(state.facts) || state.facts.closed() || state.facts.meter_connected ||
      HasClock(state, SlaClock::kConnection)) {
    return;
  }
  const Prerequisites prerequisites = ConnectionPrerequisites(state);
  if (prerequisites.all && prerequisites.latest) {
    OpenClock(state, SlaClock::kConnection, *prerequisites.latest, position);
  }
}

// A connection before its prerequisites (a violation) has no clock yet: one opened by the
// connection itself, measured by MeasureConnection.
void OnMeterConnected(ApplicationState& state, Date date, uint64_t position) {
  if (!HasClock(state, SlaClock::kConnection)) {
    OpenClock(state, SlaClock::kConnection, date, position);
  }
  CloseClock(state, SlaClock::kConnection, date, position);
  CloseClock(state, SlaClock::kTotal, date, position);
}

// The connection clock as the prerequisites' first business dates say, whatever order they were
// entered in (domain.md: it starts at the latest of them). Connected (or, while open, now) with
// all of them happened by then: from the latest, named by its event. Connected before one of them
// (a violation): from the latest that had happened by then, or the acceptance, as a clock opened
// by the connection itself (start_position = end_position: it did not run before, ClockAsOf). A
// prerequisite entered late, or a second one dated earlier, measures it again.
void MeasureConnection(ApplicationState& state) {
  Clock* clock = state.LatestClock(SlaClock::kConnection);
  if (clock == nullptr || clock->stopped_by) return;
  const Prerequisites by = ConnectionPrerequisites(state, clock->end);
  if (by.all && by.latest) {
    clock->start = *by.latest;
    clock->start_position = by.latest_position;
  } else if (clock->end) {
    clock->start =
        std::min(by.latest.value_or(state.accepted_date.value_or(*clock->end)), *clock->end);
    clock->start_position = clock->end_position;
  } else {
    return;  // an open clock has all of them: MaybeOpenConnection opened it so
  }
  RefreshPauses(state, *clock);
}

void OnAccepted(ApplicationState& state, const EventRecord& event, Date date) {
  state.org = std::string(event.actor_org);
  state.accepted_date = date;
  if (domain::IsChange(state.facts)) {
    OpenClock(state, SlaClock::kChangeCompletion, date, event.position);
    return;
  }
  OpenClock(state, SlaClock::kTotal, date, event.position);
  if (domain::SchemeReplyApplies(state.facts)) {
    OpenClock(state, SlaClock::kSchemeReply, date, event.position);
  }
}

// Opens a request's clock unless one is already running (a second request changes nothing).
void OnRequest(ApplicationState& state, SlaClock name, Date date, uint64_t position) {
  if (!LatestOpenClock(state, name)) OpenClock(state, name, date, position);
}

// Clock and milestone effects of an applied event; `state.facts` already includes it.
void UpdateClocks(ApplicationState& state, const EventRecord& event,
                  const domain::WorkflowEvent& decoded) {
  const Date date = domain::LocalDateOf(event.occurred_at_us);
  const uint64_t position = event.position;
  bool measure_connection = false;  // a prerequisite or the connection: MeasureConnection
  switch (decoded.type) {
    case AppEventType::kApplicationAccepted:
      OnAccepted(state, event, date);
      break;
    case AppEventType::kSchemeReplied:
      OnSchemeReplied(state, date, position);
      SetEarliest(state.scheme_replied, date, position);
      measure_connection = true;
      break;
    case AppEventType::kFeesSettled:
      SetEarliest(state.fees_settled, date, position);
      measure_connection = true;
      break;
    case AppEventType::kContractSigned:
      SetEarliest(state.contract_signed, date, position);
      measure_connection = true;
      break;
    case AppEventType::kDesignSubmitted:
      OnRequest(state, SlaClock::kDesignReview, date, position);
      break;
    case AppEventType::kDesignReviewed:
      CloseClock(state, SlaClock::kDesignReview, date, position);
      break;
    case AppEventType::kMidInspectionRequested:
      OnRequest(state, SlaClock::kMidInspection, date, position);
      break;
    case AppEventType::kMidInspected:
      CloseClock(state, SlaClock::kMidInspection, date, position);
      break;
    case AppEventType::kCompletionReported:
      OnRequest(state, SlaClock::kCompletionInspection, date, position);
      break;
    case AppEventType::kCompletionInspected:
      CloseClock(state, SlaClock::kCompletionInspection, date, position);
      if (decoded.passed) SetEarliest(state.completion_passed, date, position);
      measure_connection = decoded.passed;
      break;
    case AppEventType::kMeterConnected:
      OnMeterConnected(state, date, position);
      measure_connection = true;
      break;
    case AppEventType::kChangeExecuted:
      CloseClock(state, SlaClock::kChangeCompletion, date, position);
      break;
    case AppEventType::kClockPaused:
      OnPaused(state, date, position);
      break;
    case AppEventType::kClockResumed:
      OnResumed(state, date, position);
      break;
    case AppEventType::kArchived:
    case AppEventType::kWithdrawn:
      StopOpenClocks(state, decoded.type, date, position);
      break;
    default:
      break;
  }
  MaybeOpenConnection(state, position);
  if (measure_connection) MeasureConnection(state);
}

// Settles the standing violations that the applied `decoded` shows were not: the fact they missed
// is recorded now, dated on or before their events (domain::RulesSettledBy). A premature callback
// is settled only by the application's first connection (or change execution), the step it
// missed; `completed_before`: one was folded before this event. (The connection clock follows the
// prerequisites' dates by itself: MeasureConnection.)
void SettleViolations(ApplicationState& state, const EventRecord& event,
                      const domain::WorkflowEvent& decoded, bool completed_before) {
  if (state.violations.empty()) return;  // most applications: nothing to settle
  if ((decoded.type == AppEventType::kMeterConnected ||
       decoded.type == AppEventType::kChangeExecuted) &&
      (completed_before || !ConnectedOrExecutedDate(state))) {
    return;
  }
  const std::vector<std::string_view> rules = domain::RulesSettledBy(decoded);
  if (rules.empty()) return;
  const Date date = domain::LocalDateOf(event.occurred_at_us);
  const auto settles = [&](const ViolationRecord& v) {
    return v.position < event.position && !(v.date < date) &&
           std::find(rules.begin(), rules.end(), v.rule) != rules.end();
  };
  if (std::none_of(state.violations.begin(), state.violations.end(), settles)) return;
  std::vector<ViolationRecord> standing;
  for (ViolationRecord& v : state.violations) {
    if (!settles(v)) {
      standing.push_back(std::move(v));
      continue;
    }
    state.settled.push_back(
        SettledViolation{std::move(v), event.position, std::string(event.type), date});
  }
  state.violations = std::move(standing);
}

void RecordSideFacts(ApplicationState& state, const EventRecord& event,
                     const domain::WorkflowEvent& decoded) {
  // A declared bulk import of a historical record is late by nature, not backdated.
  if (!event.imported &&
      domain::LocalDateOf(event.occurred_at_us) < domain::LocalDateOf(event.recorded_at_us)) {
    state.late_records.push_back(LateRecord{event.position, std::string(event.type),
                                            event.occurred_at_us, event.recorded_at_us});
  }
  if (decoded.type == AppEventType::kUrged) {
    state.urges.push_back(UrgeRecord{event.position, decoded.urge_level, decoded.to_org,
                                     decoded.to_person, decoded.channel, decoded.committed_date,
                                     event.occurred_at_us, std::string(event.actor_id)});
  } else if (decoded.type == AppEventType::kCorrected) {
    std::optional<domain::CorrectionRequest> request = domain::ReadCorrection(event.payload);
    state.corrections.push_back(CorrectionRecord{event.position, decoded.corrects_position,
                                                 decoded.reason,
                                                 request ? request->fields : std::string()});
  }
}

// ---- Evaluation helpers ----

// Paused working days of `clock` counted up to `until` (its end, or T).
domain::CalendarAnswer<int32_t> PausedDays(const Clock& clock,
                                           const domain::WorkingCalendar& calendar, Date until) {
  int32_t total = 0;
  for (const PauseInterval& pause : clock.pauses) {
    const Date to = std::min(pause.to.value_or(until), until);
    auto days = calendar.WorkingDaysIn(pause.from, to);
    if (!days.ok()) return days;
    total += *days.value;
  }
  return {total, 0};
}

ClockState FromSla(domain::SlaState state) {
  switch (state) {
    case domain::SlaState::kOnTrack:
      return ClockState::kOnTrack;
    case domain::SlaState::kWarning:
      return ClockState::kWarning;
    case domain::SlaState::kOverdue:
      return ClockState::kOverdue;
    case domain::SlaState::kPaused:
      return ClockState::kPaused;
    case domain::SlaState::kMet:
      return ClockState::kMet;
    case domain::SlaState::kMissed:
      return ClockState::kMissed;
    case domain::SlaState::kCalendarMissing:
      return ClockState::kCalendarMissing;
  }
  return ClockState::kCalendarMissing;
}

// ---- JSON helpers ----

nlohmann::json DateJson(const std::optional<Date>& date) {
  return date ? nlohmann::json(date->ToString()) : nlohmann::json(nullptr);
}

std::string TimeText(int64_t unix_us) {
  return domain::FormatTimestamp(unix_us, domain::kShanghaiUtcOffsetMinutes);
}

// When each connection prerequisite first happened (its earliest business date, and the event),
// null when it has not: what a connection's violations and its clock's start are judged from.
nlohmann::json PrerequisitesJson(const ApplicationState& state) {
  auto milestone = [](const std::optional<Milestone>& m) {
    return m ? nlohmann::json{{"date", m->date.ToString()}, {"position", m->position}}
             : nlohmann::json(nullptr);
  };
  return {{"scheme_replied", milestone(state.scheme_replied)},
          {"fees_settled", milestone(state.fees_settled)},
          {"contract_signed", milestone(state.contract_signed)},
          {"completion_passed", milestone(state.completion_passed)}};
}

nlohmann::json ClockJson(const Clock& clock, const ClockView& view) {
  nlohmann::json out = {
      {"attempt", view.attempt},
      {"start", view.start.ToString()},
      {"end", DateJson(view.end)},
      {"limit", view.limit_days ? nlohmann::json(*view.limit_days) : nlohmann::json(nullptr)},
      {"elapsed_working_days", ElapsedJson(view)},
      {"paused_working_days", PausedJson(view)},
      {"deadline", DateJson(view.deadline)},
      {"state", ClockStateName(view.state)},
      {"start_position", clock.start_position},
      {"end_position", clock.end ? nlohmann::json(clock.end_position) : nlohmann::json(nullptr)},
  };
  if (view.state == ClockState::kOverdue || view.state == ClockState::kMissed) {
    // Certainly late, counted into a year not loaded: how late is known only from below.
    out["overdue_days"] = view.elapsed_known ? nlohmann::json(view.overdue_days) : nullptr;
    if (!view.elapsed_known) out["overdue_days_at_least"] = view.overdue_days;
  }
  if (view.state == ClockState::kOverdue) out["escalation_level"] = view.escalation_level;
  if (view.missing_year != 0) out["missing_year"] = view.missing_year;
  if (view.deadline_missing_year != 0) out["deadline_missing_year"] = view.deadline_missing_year;
  if (clock.stopped_by) out["stopped_by"] = domain::AppEventTypeName(*clock.stopped_by);
  nlohmann::json pauses = nlohmann::json::array();
  for (const PauseInterval& pause : clock.pauses) {
    pauses.push_back({{"from", pause.from.ToString()}, {"to", DateJson(pause.to)}});
  }
  out["pauses"] = std::move(pauses);
  return out;
}

nlohmann::json ClocksJson(const ApplicationState& state, const domain::WorkingCalendar& calendar,
                          const domain::SlaProfile& profile, int64_t at_unix_us) {
  nlohmann::json clocks = nlohmann::json::object();
  for (int i = 0; i < domain::kSlaClockCount; ++i) {
    const auto name = static_cast<SlaClock>(i);
    nlohmann::json attempts = nlohmann::json::array();
    for (const Clock& clock : state.clocks) {
      if (clock.name != name) continue;
      attempts.push_back(ClockJson(
          clock, Evaluate(clock, calendar, profile, state.facts.customer_class, at_unix_us)));
    }
    // The total clock is folded always, shown only where the profile promises totals.
    if (attempts.empty() || (name == SlaClock::kTotal && !profile.Defines(name))) continue;
    nlohmann::json latest = attempts.back();
    attempts.erase(attempts.size() - 1);
    if (!attempts.empty()) latest["attempts"] = std::move(attempts);
    clocks[std::string(domain::SlaClockName(name))] = std::move(latest);
  }
  return clocks;
}

nlohmann::json RecordsJson(const ApplicationState& state, const domain::WorkingCalendar& calendar,
                           const domain::SlaProfile& profile) {
  nlohmann::json out = {
      {"violations", nlohmann::json::array()}, {"backdated", nlohmann::json::array()},
      {"urges", nlohmann::json::array()},      {"corrections", nlohmann::json::array()},
      {"rejected", nlohmann::json::array()},   {"pauses", nlohmann::json::array()}};
  // The customer-caused pauses as recorded, with the events that began and ended them.
  for (const PauseInterval& p : state.pauses) {
    out["pauses"].push_back({{"from", p.from.ToString()},
                             {"to", DateJson(p.to)},
                             {"from_position", p.from_position},
                             {"to_position", p.to ? nlohmann::json(p.to_position) : nullptr}});
  }
  for (const ViolationRecord& v : state.violations) {
    out["violations"].push_back(
        {{"rule", v.rule}, {"position", v.position}, {"type", v.type}, {"message", v.message}});
  }
  // Settled: the fact a violation missed was entered later, dated on or before its event.
  out["settled_violations"] = nlohmann::json::array();
  for (const SettledViolation& s : state.settled) {
    const ViolationRecord& v = s.violation;
    out["settled_violations"].push_back({{"rule", v.rule},
                                         {"position", v.position},
                                         {"type", v.type},
                                         {"message", v.message},
                                         {"date", v.date.ToString()},
                                         {"settled_by", s.by_position},
                                         {"settled_by_type", s.by_type},
                                         {"settled_by_date", s.by_date.ToString()}});
  }
  for (const BackdatedFlag& flag : Backdated(state, calendar, profile)) {
    nlohmann::json item = {
        {"position", flag.record.position},
        {"type", flag.record.type},
        {"occurred_at", TimeText(flag.record.occurred_at_us)},
        {"recorded_at", TimeText(flag.record.recorded_at_us)},
        {"working_days_late", flag.working_days_late ? nlohmann::json(*flag.working_days_late)
                                                     : nlohmann::json(nullptr)}};
    if (flag.missing_year != 0) item["missing_year"] = flag.missing_year;
    out["backdated"].push_back(std::move(item));
  }
  for (const UrgeRecord& u : state.urges) {
    out["urges"].push_back({{"position", u.position},
                            {"level", u.level},
                            {"to_org", u.to_org},
                            {"to_person", u.to_person},
                            {"channel", u.channel},
                            {"committed_date", u.committed_date ? nlohmann::json(*u.committed_date)
                                                                : nlohmann::json(nullptr)},
                            {"occurred_at", TimeText(u.occurred_at_us)},
                            {"by", u.by}});
  }
  for (const CorrectionRecord& c : state.corrections) {
    nlohmann::json fields = nlohmann::json::parse(c.fields, nullptr, /*allow_exceptions=*/false);
    out["corrections"].push_back(
        {{"position", c.position},
         {"corrects_position", c.corrects_position},
         {"reason", c.reason},
         {"fields", fields.is_discarded() ? nlohmann::json(c.fields) : std::move(fields)}});
  }
  for (const RejectedRecord& r : state.rejected) {
    out["rejected"].push_back(
        {{"position", r.position}, {"type", r.type}, {"rule", r.rule}, {"message", r.message}});
  }
  return out;
}

}  // namespace

// Day counts the calendar could not give are unknown (null), not 0: a calendar_missing clock's
// elapsed days, and its paused days when a pause runs into the unloaded year.
nlohmann::json ElapsedJson(const ClockView& view) {
  if (!view.elapsed_known || view.state == ClockState::kCalendarMissing) return nullptr;
  return view.elapsed_working_days;
}

nlohmann::json PausedJson(const ClockView& view) {
  if (!view.paused_known) return nullptr;
  return view.paused_working_days;
}

EventRecord RecordOf(const ledger::EventView& event) {
  auto envelope = event.envelope();
  return EventRecord{event.position(),
                     event.stream(),
                     event.type(),
                     AsView(envelope.getActor().getId()),
                     AsView(envelope.getActor().getOrg()),
                     envelope.getOccurredAtUs(),
                     envelope.getRecordedAtUs(),
                     event.payload(),
                     envelope.getImported(),
                     event.version() == 0,
                     AsView(envelope.getActor().getRole())};
}

EventRecord RecordOf(const ledger::StoredEvent& event) {
  return EventRecord{event.position,  event.stream,         event.type,           event.actor.id,
                     event.actor.org, event.occurred_at_us, event.recorded_at_us, event.payload,
                     event.imported,  event.version == 0,   event.actor.role};
}

const Clock* ApplicationState::LatestClock(domain::SlaClock name) const {
  for (auto it = clocks.rbegin(); it != clocks.rend(); ++it) {
    if (it->name == name) return &*it;
  }
  return nullptr;
}

void Fold(ApplicationState& state, const EventRecord& event) {
  if (state.stream.empty()) state.stream = std::string(event.stream);
  if (event.stream != state.stream) return;
  state.last_position = event.position;
  auto decoded = domain::DecodeWorkflowEvent(event.type, event.payload);
  if (auto* breach = std::get_if<domain::RuleBreach>(&decoded)) {
    state.rejected.push_back(
        RejectedRecord{event.position, std::string(event.type), breach->rule, breach->message});
    return;
  }
  const domain::WorkflowEvent& workflow_event = std::get<domain::WorkflowEvent>(decoded);
  domain::Verdict verdict = domain::Judge(state.facts, workflow_event);
  if (!verdict.valid()) {
    state.rejected.push_back(RejectedRecord{event.position, std::string(event.type),
                                            verdict.invalid->rule, verdict.invalid->message});
    return;
  }
  const Date date = domain::LocalDateOf(event.occurred_at_us);
  for (domain::RuleBreach& later :
       domain::PrerequisiteDateViolations(state.facts, DatesOf(state), workflow_event.type, date)) {
    verdict.violations.push_back(std::move(later));
  }
  const std::optional<Date> done = ConnectedOrExecutedDate(state);
  if (done) {
    for (domain::RuleBreach& earlier :
         domain::ClosingDateViolations(state.facts, workflow_event.type, *done, date)) {
      verdict.violations.push_back(std::move(earlier));
    }
  }
  for (domain::RuleBreach& violation : verdict.violations) {
    state.violations.push_back(ViolationRecord{std::move(violation.rule), event.position,
                                               std::string(event.type),
                                               std::move(violation.message), date});
  }
  domain::Apply(state.facts, workflow_event);
  ++state.events_applied;
  UpdateClocks(state, event, workflow_event);
  SettleViolations(state, event, workflow_event, /*completed_before=*/done.has_value());
  RecordSideFacts(state, event, workflow_event);
}

void Fold(ApplicationState& state, const ledger::EventView& event) { Fold(state, RecordOf(event)); }

void Fold(ApplicationState& state, const ledger::StoredEvent& event) {
  Fold(state, RecordOf(event));
}

EventFilter OccurredBy(int64_t occurred_at_max_us) {
  return [occurred_at_max_us](const EventRecord& event) {
    return event.occurred_at_us <= occurred_at_max_us;
  };
}

CorrectedStream::CorrectedStream(std::vector<EventRecord> records) : records_(std::move(records)) {
  std::vector<domain::CorrectableEvent> correctable;
  correctable.reserve(records_.size());
  for (const EventRecord& r : records_) {
    correctable.push_back(
        {r.position, r.type, r.payload, r.occurred_at_us, r.recorded_at_us, r.actor_role});
  }
  corrections_ = domain::ApplyCorrections(correctable);
  for (EventRecord& r : records_) {
    auto corrected = corrections_.values.find(r.position);
    if (corrected == corrections_.values.end()) continue;
    r.payload = corrected->second.payload;
    r.occurred_at_us = corrected->second.occurred_at_us;
  }
}

const domain::RuleBreach* CorrectedStream::Refused(uint64_t position) const {
  auto refused = corrections_.refused.find(position);
  return refused == corrections_.refused.end() ? nullptr : &refused->second;
}

namespace {

// A Corrected that does not apply, as Fold() takes an invalid event: listed, nothing of it
// applied (not even as late).
void FoldRefused(ApplicationState& state, const EventRecord& record,
                 const domain::RuleBreach& refused) {
  if (state.stream.empty()) state.stream = std::string(record.stream);
  state.last_position = record.position;
  state.rejected.push_back(
      RejectedRecord{record.position, std::string(record.type), refused.rule, refused.message});
}

}  // namespace

void CorrectedStream::Fold(ApplicationState& state, const EventRecord& record) const {
  const domain::RuleBreach* refused = Refused(record.position);
  if (refused == nullptr || (!state.stream.empty() && record.stream != state.stream)) {
    projections::Fold(state, record);
    return;
  }
  FoldRefused(state, record, *refused);
}

CorrectionCheck CheckCorrection(
    const ApplicationState& app, const EventRecord& record,
    const std::function<ledger::Result<ledger::StoredEvent>(uint64_t)>& read) {
  std::optional<domain::CorrectionRequest> request = domain::ReadCorrection(record.payload);
  if (!request) return CorrectionCheck::kUnknown;
  if (request->corrects_position >= record.position) return CorrectionCheck::kNotItsEvent;
  ledger::Result<ledger::StoredEvent> target = read(request->corrects_position);
  if (!target.ok()) return CorrectionCheck::kUnknown;  // not stored yet, or a read error
  if (target->stream != record.stream) return CorrectionCheck::kNotItsEvent;
  if (target->type == "Corrected") return CorrectionCheck::kUnknown;
  // Refused by ApplyCorrections (correction_role), which the full fold runs.
  if (!domain::MayCorrect(record.actor_role, target->type)) return CorrectionCheck::kUnknown;
  domain::CorrectedValues current{target->payload, target->occurred_at_us};
  for (const CorrectionRecord& earlier : app.corrections) {
    if (earlier.corrects_position != target->position) continue;
    auto again = domain::ApplyCorrection(
        {target->position, target->type, current.payload, current.occurred_at_us,
         target->recorded_at_us, target->actor.role},
        earlier.fields);
    if (!std::holds_alternative<domain::CorrectedValues>(again)) return CorrectionCheck::kUnknown;
    current = std::move(std::get<domain::CorrectedValues>(again));
  }
  const domain::CorrectableEvent before{target->position,       target->type,
                                        current.payload,        current.occurred_at_us,
                                        target->recorded_at_us, target->actor.role};
  auto after = domain::ApplyCorrection(before, request->fields);
  const bool no_fact = std::holds_alternative<domain::CorrectedValues>(after) &&
                       !domain::ChangesFacts(before, std::get<domain::CorrectedValues>(after));
  return no_fact ? CorrectionCheck::kChangesNoFact : CorrectionCheck::kUnknown;
}

std::vector<EventRecord> RecordsBefore(const std::vector<ledger::StoredEvent>& events,
                                       uint64_t position) {
  std::vector<EventRecord> records;
  records.reserve(events.size() + 1);
  for (const ledger::StoredEvent& event : events) {
    if (event.position < position) records.push_back(RecordOf(event));
  }
  return records;
}

ledger::Result<CorrectionFold> FoldCorrection(
    ApplicationState& app, const EventRecord& record,
    const std::function<ledger::Result<ledger::StoredEvent>(uint64_t)>& read_one,
    const std::function<ledger::Result<std::vector<ledger::StoredEvent>>()>& read_stream,
    const std::function<ledger::Status(const EventRecord&, const ApplicationState&)>& refolded) {
  switch (CheckCorrection(app, record, read_one)) {
    case CorrectionCheck::kChangesNoFact:
      projections::Fold(app, record);
      return CorrectionFold::kAsEvent;
    case CorrectionCheck::kNotItsEvent:
      FoldRefused(app, record,
                  domain::CorrectionTargetBreach(
                      domain::ReadCorrection(record.payload)->corrects_position));
      return CorrectionFold::kAsEvent;
    case CorrectionCheck::kUnknown:
      break;
  }
  auto stored = read_stream();
  if (!stored.ok()) return stored.status();
  std::vector<EventRecord> records = RecordsBefore(*stored, record.position);
  records.push_back(record);
  const CorrectedStream corrected(std::move(records));
  if (!corrected.ChangesFacts(record.position)) {
    corrected.Fold(app, record);  // refused, or changing no fact after all (an unreadable event)
    return CorrectionFold::kAsEvent;
  }
  ApplicationState folded;
  folded.revision = corrected.revision();
  for (const EventRecord& event : corrected.records()) {
    corrected.Fold(folded, event);
    if (ledger::Status derived = refolded(event, folded); !derived.ok()) return derived;
  }
  app = std::move(folded);
  return CorrectionFold::kRefolded;
}

ApplicationState FoldStream(const std::vector<ledger::StoredEvent>& events,
                            const EventFilter& keep) {
  std::vector<EventRecord> records;
  records.reserve(events.size());
  for (const ledger::StoredEvent& event : events) records.push_back(RecordOf(event));
  const CorrectedStream corrected(std::move(records));
  ApplicationState state;
  state.revision = corrected.revision();
  for (const EventRecord& record : corrected.records()) {
    if (!keep || keep(record)) corrected.Fold(state, record);
  }
  return state;
}

std::string_view ClockStateName(ClockState state) {
  switch (state) {
    case ClockState::kOnTrack:
      return "on_track";
    case ClockState::kWarning:
      return "warning";
    case ClockState::kOverdue:
      return "overdue";
    case ClockState::kPaused:
      return "paused";
    case ClockState::kMet:
      return "met";
    case ClockState::kMissed:
      return "missed";
    case ClockState::kCalendarMissing:
      return "calendar_missing";
    case ClockState::kNotApplicable:
      return "not_applicable";
    case ClockState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// January 1 of `year`: a deadline that the calendar places in that unloaded year is no earlier.
Date NotBefore(int year) {
  return Date::FromCivil(year, 1, 1).value_or(Date());
}

// December 31 of the last loaded year (or 1970-01-01 for an empty calendar, which answers every
// count as missing anyway).
Date LastLoadedDay(const domain::WorkingCalendar& calendar) {
  const std::optional<int> year = calendar.LastLoadedYear();
  return year ? Date::FromCivil(*year, 12, 31).value_or(Date()) : Date();
}

// The working days a clock counted before the end of the loaded years: its elapsed days are no
// fewer (pauses take only working days of the clock's own). nullopt when it started before the
// first loaded year; 0 when after the last.
std::optional<int32_t> ElapsedAtLeast(const Clock& clock, const domain::WorkingCalendar& calendar,
                                      Date until) {
  const Date last = std::min(until, LastLoadedDay(calendar));
  const auto raw = calendar.WorkingDaysIn(clock.start, last);
  const auto paused = PausedDays(clock, calendar, last);
  if (!raw.ok() || !paused.ok()) return std::nullopt;
  return *raw.value - *paused.value;
}

}  // namespace

ClockDeadline DeadlineOf(const Clock& clock, const domain::WorkingCalendar& calendar,
                         int32_t limit_days, std::optional<Date> until) {
  using Answer = domain::CalendarAnswer<Date>;
  int32_t paused = 0;
  bool moving = false;
  for (const PauseInterval& pause : clock.pauses) {  // in date order, merged
    const Answer so_far = domain::Deadline(calendar, clock.start, limit_days, paused);
    if (!so_far.ok()) return {so_far, moving, NotBefore(so_far.missing_year)};
    const auto late_by = calendar.WorkingDaysIn(*so_far.value, pause.from);
    if (!late_by.ok()) {
      // The pause begins in a year not loaded. A working day after the deadline in the loaded
      // years shows it was late already; otherwise the deadline is that date or a later one.
      const auto late_in_loaded = calendar.WorkingDaysIn(*so_far.value, LastLoadedDay(calendar));
      if (late_in_loaded.ok() && *late_in_loaded.value > 0) break;
      return {Answer::Missing(late_by.missing_year), moving, *so_far.value};
    }
    if (*late_by.value > 0) break;  // already late when this pause began
    if (!pause.to) moving = true;
    if (!pause.to && !until) break;
    const Date to = pause.to && (!until || *pause.to < *until) ? *pause.to : *until;
    const auto days = calendar.WorkingDaysIn(pause.from, to);
    if (!days.ok()) {
      // A counted pause into a year not loaded moves the deadline at least by its working days
      // in the loaded years (those after them may be none).
      const auto loaded = calendar.WorkingDaysIn(pause.from, LastLoadedDay(calendar));
      const Answer earliest =
          loaded.ok() ? domain::Deadline(calendar, clock.start, limit_days, paused + *loaded.value)
                      : Answer::Missing(loaded.missing_year);
      return {Answer::Missing(days.missing_year), moving,
              earliest.ok() ? *earliest.value : NotBefore(earliest.missing_year)};
    }
    paused += *days.value;
  }
  Answer deadline = domain::Deadline(calendar, clock.start, limit_days, paused);
  const std::optional<Date> not_before =
      deadline.ok() ? std::nullopt : std::optional<Date>(NotBefore(deadline.missing_year));
  return {std::move(deadline), moving, not_before};
}

ClockView Evaluate(const Clock& clock, const domain::WorkingCalendar& calendar,
                   const domain::SlaProfile& profile, domain::SlaCustomerClass customer_class,
                   int64_t at_unix_us) {
  ClockView view;
  view.name = clock.name;
  view.attempt = clock.attempt;
  view.start = clock.start;
  view.end = clock.end;
  view.limit_days = profile.LimitDays(clock.name, customer_class);
  const Date until = clock.end.value_or(domain::LocalDateOf(at_unix_us));
  const auto paused = PausedDays(clock, calendar, until);
  const auto raw = calendar.WorkingDaysIn(clock.start, until);
  if (!paused.ok() || !raw.ok()) {
    // Nothing to judge without a limit: not_applicable, whatever the calendar lacks; a clock
    // stopped by a withdrawal or an archive never counts as met, whatever its days (kStopped).
    view.state = clock.stopped_by   ? ClockState::kStopped
                 : !view.limit_days ? ClockState::kNotApplicable
                                    : ClockState::kCalendarMissing;
    view.elapsed_known = false;
    view.missing_year = !raw.ok() ? raw.missing_year : paused.missing_year;
    // Elapsed days are unknown, but when every paused day is known and the deadline lies in a
    // loaded year, the deadline is exact: shown, never guessed.
    view.paused_known = paused.ok();
    if (paused.ok()) view.paused_working_days = *paused.value;
    if (paused.ok() && view.limit_days) {
      const auto deadline = DeadlineOf(clock, calendar, *view.limit_days, until).deadline;
      if (deadline.ok()) view.deadline = deadline.value;
    }
    // Certainly late all the same when the working days of the loaded years alone pass the limit
    // (a year not loaded can only add to them): missed, or overdue by at least so many days at
    // an escalation level at least so high — a fact, not a guess. Paused stays calendar_missing.
    if (view.state == ClockState::kCalendarMissing && view.limit_days) {
      const std::optional<int32_t> least = ElapsedAtLeast(clock, calendar, until);
      if (least && *least > *view.limit_days) {
        const domain::SlaStatus status = profile.Classify(
            domain::ClockReading{*view.limit_days, *least, clock.paused(), !clock.open()});
        if (status.state == domain::SlaState::kMissed ||
            status.state == domain::SlaState::kOverdue) {
          view.state = FromSla(status.state);
          view.overdue_days = status.overdue_days;  // at least (elapsed_known is false)
          view.escalation_level = status.escalation_level;
        }
      }
    }
    return view;
  }
  view.paused_working_days = *paused.value;
  view.elapsed_working_days = *raw.value - view.paused_working_days;
  if (clock.stopped_by) {
    view.state = ClockState::kStopped;
  } else if (!view.limit_days) {
    view.state = ClockState::kNotApplicable;
  }
  if (!view.limit_days) return view;
  const auto deadline = DeadlineOf(clock, calendar, *view.limit_days, until).deadline;
  if (deadline.ok()) {
    view.deadline = deadline.value;
  } else {
    view.deadline_missing_year = deadline.missing_year;
  }
  const domain::SlaStatus status = profile.Classify(domain::ClockReading{
      *view.limit_days, view.elapsed_working_days, clock.paused(), !clock.open()});
  view.overdue_days = status.overdue_days;
  if (clock.stopped_by) return view;
  view.state = FromSla(status.state);
  view.escalation_level = status.escalation_level;
  return view;
}

std::vector<BackdatedFlag> Backdated(const ApplicationState& state,
                                     const domain::WorkingCalendar& calendar,
                                     const domain::SlaProfile& profile) {
  std::vector<BackdatedFlag> flags;
  const int32_t tolerance = profile.backdating_tolerance_working_days();
  for (const LateRecord& record : state.late_records) {
    const auto late = calendar.WorkingDaysIn(domain::LocalDateOf(record.occurred_at_us),
                                             domain::LocalDateOf(record.recorded_at_us));
    if (!late.ok()) {
      flags.push_back(BackdatedFlag{record, std::nullopt, late.missing_year});
    } else if (*late.value > tolerance) {
      flags.push_back(BackdatedFlag{record, late.value, 0});
    }
  }
  return flags;
}

nlohmann::json ToJson(const ApplicationState& state, const domain::WorkingCalendar& calendar,
                      const domain::SlaProfile& profile, int64_t at_unix_us) {
  const domain::WorkflowFacts& facts = state.facts;
  nlohmann::json out = {
      {"stream", state.stream},
      {"org", state.org},
      {"customer_class", facts.accepted
                             ? nlohmann::json(domain::SlaCustomerClassName(facts.customer_class))
                             : nlohmann::json(nullptr)},
      {"business", facts.accepted ? nlohmann::json(domain::BusinessName(facts.business))
                                  : nlohmann::json(nullptr)},
      {"important", facts.important},
      {"three_zero", facts.three_zero},
      {"fees_apply", facts.accepted && domain::FeesApply(facts)},
      {"completion_inspection_required",
       facts.accepted && domain::CompletionInspectionRequired(facts)},
      {"stage", state.stage()},
      {"paused", facts.paused && !facts.closed()},  // archived or withdrawn: nothing waits
      {"accepted_date", DateJson(state.accepted_date)},
      {"prerequisites", PrerequisitesJson(state)},
      {"last_position", state.last_position},
      {"evaluated_at", TimeText(at_unix_us)},
      {"clocks", ClocksJson(state, calendar, profile, at_unix_us)},
  };
  out.update(RecordsJson(state, calendar, profile));
  return out;
}

}  // namespace gridledger::projections
