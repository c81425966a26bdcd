#include "projections/queries.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/event_json.h"

namespace gridledger::projections {

using nlohmann::json;

std::optional<int64_t> ParseTimeArgument(std::string_view text) {
  if (auto date = domain::Date::Parse(text)) {
    return (int64_t{date->days_since_epoch()} + 1) * domain::kDayUs - domain::kShanghaiUtcOffsetUs -
           1;
  }
  if (auto timestamp = domain::ParseTimestamp(text)) return timestamp->unix_us;
  return std::nullopt;
}

std::optional<int64_t> ParseAsOfArgument(std::string_view text, int64_t now_us) {
  // Today's date, whose end has not come: what the ledger knows so far today, that is now.
  if (auto date = domain::Date::Parse(text); date && *date == domain::LocalDateOf(now_us)) {
    return std::min(ParseTimeArgument(text).value(), now_us);
  }
  return ParseTimeArgument(text);
}

std::string AppStream(const std::string& id) { return id.starts_with("app/") ? id : "app/" + id; }

namespace {

// Whether the event at a position occurred after the query's time T. Asked only of events on T's
// own date (the stored clocks know dates, not times), so it reads few events; memoized. A read
// that fails answers false and is kept in status() for the caller to report.
class OccurredAfter {
 public:
  OccurredAfter(const ledger::Ledger& ledger, int64_t at_us) : ledger_(ledger), at_us_(at_us) {}
  // The application asked about next: an event whose occurred_at it corrected is judged by the
  // corrected time, as its clocks are.
  void UseCorrectionsOf(const ApplicationState& state) {
    corrected_.clear();
    for (const CorrectionRecord& c : state.corrections) {
      json fields = json::parse(c.fields, nullptr, /*allow_exceptions=*/false);
      if (!fields.is_object() || !fields.contains("occurred_at")) continue;
      if (!fields["occurred_at"].is_string()) continue;
      auto when = domain::ParseTimestamp(fields["occurred_at"].get<std::string>());
      if (when) corrected_[c.corrects_position] = when->unix_us;  // later corrections win
    }
  }
  bool operator()(uint64_t position) {
    if (auto corrected = corrected_.find(position); corrected != corrected_.end()) {
      return corrected->second > at_us_;
    }
    if (auto known = known_.find(position); known != known_.end()) return known->second;
    auto event = ledger_.ReadOne(position);
    if (!event.ok()) {
      if (status_.ok()) status_ = event.status();
      return false;
    }
    return known_[position] = event->occurred_at_us > at_us_;
  }
  const ledger::Status& status() const { return status_; }

 private:
  const ledger::Ledger& ledger_;
  const int64_t at_us_;
  std::map<uint64_t, bool> known_;
  std::map<uint64_t, int64_t> corrected_;  // position → corrected occurred_at (one application)
  ledger::Status status_;
};

// The clock as it stood at time T (of date `day`): later starts, ends, stops and pauses had not
// happened yet — what the application folded from the events that occurred by T shows (AppView).
// A clock opened by its own closing event (a connection before its prerequisites, measured from
// an earlier date) did not exist before that event.
std::optional<Clock> ClockAsOf(const Clock& clock, domain::Date day, OccurredAfter& after) {
  // Whether what happened on `date` at `position` had not happened by T.
  auto later = [&](domain::Date date, uint64_t position) {
    if (day < date) return true;
    if (date < day || position == 0) return false;
    return after(position);
  };
  const bool opened_by_its_end = clock.end && clock.start_position == clock.end_position;
  if (opened_by_its_end ? later(*clock.end, clock.end_position)
                        : later(clock.start, clock.start_position)) {
    return std::nullopt;
  }
  Clock at = clock;
  if (at.end && later(*at.end, at.end_position)) {
    at.end.reset();
    at.end_position = 0;
    at.stopped_by.reset();
  }
  std::erase_if(at.pauses,
                [&](const PauseInterval& pause) { return later(pause.from, pause.from_position); });
  for (PauseInterval& pause : at.pauses) {
    if (pause.to && later(*pause.to, pause.to_position)) {
      pause.to.reset();
      pause.to_position = 0;
    }
  }
  return at;
}

}  // namespace

std::string AppNotFoundMessage(const std::string& stream, bool timed) {
  return "no events of " + stream + (timed ? " by that time" : "");
}

ledger::Result<std::optional<json>> AppView(const ledger::Ledger& ledger, const std::string& stream,
                                            std::optional<int64_t> at_us,
                                            std::optional<int64_t> as_of_us, int64_t now_us,
                                            const domain::WorkingCalendar& calendar,
                                            const domain::SlaProfile& profile) {
  auto events = ledger.ReadStream(stream);
  if (!events.ok()) return events.status();
  uint64_t position_max = ledger.Head();
  if (as_of_us) {
    auto position = ledger.PositionAt(*as_of_us);
    if (!position.ok()) return position.status();
    position_max = *position;
  }
  std::erase_if(*events, [&](const auto& event) { return event.position > position_max; });
  if (events->empty()) return std::optional<json>();
  const int64_t evaluate_at = at_us ? *at_us : (as_of_us ? *as_of_us : now_us);
  ApplicationState state = FoldStream(*events, OccurredBy(evaluate_at));
  // Nothing of it had occurred by then (asked before its acceptance): no application yet, not an
  // empty one.
  if (state.stream.empty()) return std::optional<json>();
  json shown = ToJson(state, calendar, profile, evaluate_at);
  shown["evaluated_at"] = domain::FormatTimestamp(evaluate_at, domain::kShanghaiUtcOffsetMinutes);
  if (as_of_us) shown["as_of_position"] = position_max;
  return std::optional<json>(std::move(shown));
}

ledger::Result<std::vector<OverdueRow>> OverdueAt(const ledger::Ledger& ledger,
                                                  const Engine& engine, int64_t at_us,
                                                  const ReportOrgs& orgs,
                                                  const domain::WorkingCalendar& calendar,
                                                  const domain::SlaProfile& profile,
                                                  std::vector<OverdueRow>* undetermined) {
  const domain::Date day = domain::LocalDateOf(at_us);
  OccurredAfter after(ledger, at_us);
  std::vector<OverdueRow> rows;
  ledger::Status scanned = engine.ForEachApplication([&](const ApplicationState& s) {
    if (!orgs.Covers(s.org)) return true;
    after.UseCorrectionsOf(s);
    for (const Clock& clock : s.clocks) {
      std::optional<Clock> then = ClockAsOf(clock, day, after);
      if (!then || !then->open()) continue;
      ClockView view = Evaluate(*then, calendar, profile, s.facts.customer_class, at_us);
      if (view.state == ClockState::kOverdue) rows.push_back({s.stream, s.org, view});
      if (view.state == ClockState::kCalendarMissing && undetermined != nullptr) {
        undetermined->push_back({s.stream, s.org, view});
      }
    }
    return after.status().ok();
  });
  if (!scanned.ok()) return scanned;
  if (!after.status().ok()) return after.status();
  std::stable_sort(rows.begin(), rows.end(), [](const OverdueRow& a, const OverdueRow& b) {
    return std::tie(b.view.escalation_level, b.view.overdue_days) <
           std::tie(a.view.escalation_level, a.view.overdue_days);
  });
  return rows;
}

json OverdueJson(const OverdueRow& row) {
  json out = {{"stream", row.stream},
              {"org", row.org},
              {"clock", domain::SlaClockName(row.view.name)},
              {"attempt", row.view.attempt},
              {"start", row.view.start.ToString()},
              {"deadline", row.view.deadline ? json(row.view.deadline->ToString()) : json(nullptr)},
              {"elapsed_working_days", ElapsedJson(row.view)},
              {"paused_working_days", PausedJson(row.view)},
              {"limit", row.view.limit_days.value_or(0)},
              {"overdue_days", row.view.overdue_days},
              {"escalation_level", row.view.escalation_level},
              {"state", ClockStateName(row.view.state)}};
  // Not judged: how late it is is unknown (null), not 0 days at level 0.
  if (row.view.state == ClockState::kCalendarMissing) {
    out["overdue_days"] = nullptr;
    out["escalation_level"] = nullptr;
  } else if (!row.view.elapsed_known) {
    // Overdue for certain, counted into a year not loaded: known from below (the level too).
    out["overdue_days"] = nullptr;
    out["overdue_days_at_least"] = row.view.overdue_days;
  }
  if (row.view.missing_year != 0) out["missing_year"] = row.view.missing_year;
  return out;
}

ledger::Result<std::vector<KpiState>> KpiStatesAt(const ledger::Ledger& ledger,
                                                  uint64_t position_max, size_t applications_max) {
  KpiBook book;
  std::unordered_map<std::string, ApplicationState> applications;
  ledger::Status failure;
  // The application of `record` (version `version` of its stream) as folded up to the event
  // before it.
  auto application = [&](const EventRecord& record, uint64_t version) -> ApplicationState* {
    auto cached = applications.find(std::string(record.stream));
    if (cached != applications.end()) return &cached->second;
    if (applications.size() >= applications_max) applications.clear();
    ApplicationState& state = applications[std::string(record.stream)];
    if (version == 0) return &state;  // the stream's first event: nothing before it to read
    auto events = ledger.ReadStream(std::string(record.stream));
    if (!events.ok()) {
      failure = events.status();
      return nullptr;
    }
    const CorrectedStream corrected(RecordsBefore(*events, record.position));
    state.revision = corrected.revision();
    for (const EventRecord& event : corrected.records()) corrected.Fold(state, event);
    return &state;
  };
  ledger::Status scanned = ledger.Scan(1, [&](const ledger::EventView& view) {
    if (view.position() > position_max) return false;
    const EventRecord record = RecordOf(view);
    ApplicationState* app = nullptr;
    if (record.stream.starts_with("app/")) {
      app = application(record, view.version());
      if (app == nullptr) return false;
      if (record.type != "Corrected") {
        Fold(*app, record);
      } else {
        // As Engine::FoldCorrection: a refold folds the record's KPI parts with the others.
        auto folded = FoldCorrection(
            *app, record, [&ledger](uint64_t position) { return ledger.ReadOne(position); },
            [&] { return ledger.ReadStream(std::string(record.stream)); },
            [&book](const EventRecord& event, const ApplicationState& after) {
              Fold(book, event, &after);
              return ledger::Status::Ok();
            });
        if (!folded.ok()) {
          failure = folded.status();
          return false;
        }
        if (*folded == CorrectionFold::kRefolded) return true;
      }
    }
    Fold(book, record, app);
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (!failure.ok()) return failure;
  return States(book);
}

ledger::Result<json> KpiTableAsOf(const ledger::Ledger& ledger, std::string_view period,
                                  const std::optional<std::string>& org,
                                  const domain::WorkingCalendar& calendar,
                                  const domain::SlaProfile& profile, int64_t as_of_us) {
  auto position = ledger.PositionAt(as_of_us);
  if (!position.ok()) return position.status();
  auto states = KpiStatesAt(ledger, *position);
  if (!states.ok()) return states.status();
  json table = KpiTable(*states, period, org, calendar, profile, {}, as_of_us);
  if (!table.contains("error")) {
    table["as_of"] = domain::FormatTimestamp(as_of_us, domain::kShanghaiUtcOffsetMinutes);
    table["as_of_position"] = *position;
  }
  return table;
}

}  // namespace gridledger::projections
