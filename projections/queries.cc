#include "projections/queries.h"

#include <algorithm>
#include <tuple>

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

std::string AppStream(const std::string& id) { return id.starts_with("app/") ? id : "app/" + id; }

namespace {

// The clock as it stood at date `day`: later ends, stops and pauses had not happened yet.
std::optional<Clock> ClockAsOf(const Clock& clock, domain::Date day) {
  if (clock.start > day) return std::nullopt;
  Clock at = clock;
  if (at.end && *at.end > day) {
    at.end.reset();
    at.end_position = 0;
    at.stopped_by.reset();
  }
  std::erase_if(at.pauses, [&](const PauseInterval& p) { return p.from > day; });
  for (auto& pause : at.pauses) {
    if (pause.to && *pause.to > day) {
      pause.to.reset();
      pause.to_position = 0;
    }
  }
  return at;
}

}  // namespace

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
  json shown = ToJson(state, calendar, profile, evaluate_at);
  shown["evaluated_at"] = domain::FormatTimestamp(evaluate_at, domain::kShanghaiUtcOffsetMinutes);
  if (as_of_us) shown["as_of_position"] = position_max;
  return std::optional<json>(std::move(shown));
}

ledger::Result<std::vector<OverdueRow>> OverdueAt(const Engine& engine, int64_t at_us,
                                                  const std::optional<std::string>& org,
                                                  const domain::WorkingCalendar& calendar,
                                                  const domain::SlaProfile& profile) {
  const domain::Date day = domain::LocalDateOf(at_us);
  std::vector<OverdueRow> rows;
  ledger::Status scanned = engine.ForEachApplication([&](const ApplicationState& s) {
    if (org && s.org != *org) return true;
    for (const Clock& clock : s.clocks) {
      std::optional<Clock> then = ClockAsOf(clock, day);
      if (!then || !then->open()) continue;
      ClockView view = Evaluate(*then, calendar, profile, s.facts.customer_class, at_us);
      if (view.state == ClockState::kOverdue) rows.push_back({s.stream, s.org, view});
    }
    return true;
  });
  if (!scanned.ok()) return scanned;
  std::stable_sort(rows.begin(), rows.end(), [](const OverdueRow& a, const OverdueRow& b) {
    return std::tie(b.view.escalation_level, b.view.overdue_days) <
           std::tie(a.view.escalation_level, a.view.overdue_days);
  });
  return rows;
}

json OverdueJson(const OverdueRow& row) {
  return {{"stream", row.stream},
          {"org", row.org},
          {"clock", domain::SlaClockName(row.view.name)},
          {"attempt", row.view.attempt},
          {"start", row.view.start.ToString()},
          {"deadline", row.view.deadline ? json(row.view.deadline->ToString()) : json(nullptr)},
          {"elapsed_working_days", row.view.elapsed_working_days},
          {"paused_working_days", row.view.paused_working_days},
          {"limit", row.view.limit_days.value_or(0)},
          {"overdue_days", row.view.overdue_days},
          {"escalation_level", row.view.escalation_level}};
}

}  // namespace gridledger::projections
