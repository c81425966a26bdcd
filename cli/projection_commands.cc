#include "projection_commands.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "projections/application.h"
#include "projections/engine.h"
#include "projections/kpi.h"

namespace gridledger::cli {

namespace {

using nlohmann::json;

int Fail(std::ostream& out, const std::string& code, const std::string& message, int exit_code) {
  out << json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}}.dump() << "\n";
  std::cerr << "ledgerctl: " << message << "\n";
  return exit_code;
}

std::string AppStream(const std::string& id) { return id.starts_with("app/") ? id : "app/" + id; }

std::string TimeText(int64_t unix_us) {
  return domain::FormatTimestamp(unix_us, ingest::kLocalOffsetMinutes);
}

// The clock as it stood at date `day`: later ends, stops and pauses had not happened yet.
std::optional<projections::Clock> ClockAsOf(const projections::Clock& clock, domain::Date day) {
  if (clock.start > day) return std::nullopt;
  projections::Clock at = clock;
  if (at.end && *at.end > day) {
    at.end.reset();
    at.end_position = 0;
    at.stopped_by.reset();
  }
  std::erase_if(at.pauses, [&](const projections::PauseInterval& p) { return p.from > day; });
  for (auto& pause : at.pauses) {
    if (pause.to && *pause.to > day) {
      pause.to.reset();
      pause.to_position = 0;
    }
  }
  return at;
}

struct OverdueRow {
  std::string stream;
  std::string org;
  projections::ClockView view;
};

void PrintOverdueTable(const std::vector<OverdueRow>& rows, int64_t at_us, std::ostream& out) {
  out << rows.size() << " overdue clocks at " << TimeText(at_us) << "\n";
  out << std::left << std::setw(24) << "application" << std::setw(10) << "org" << std::setw(23)
      << "clock" << std::setw(12) << "start" << std::setw(12) << "deadline" << std::setw(9)
      << "elapsed" << std::setw(7) << "limit" << std::setw(9) << "overdue"
      << "level\n";
  for (const OverdueRow& row : rows) {
    out << std::left << std::setw(24) << row.stream << std::setw(10) << row.org << std::setw(23)
        << domain::SlaClockName(row.view.name) << std::setw(12) << row.view.start.ToString()
        << std::setw(12) << (row.view.deadline ? row.view.deadline->ToString() : "?")
        << std::setw(9) << row.view.elapsed_working_days << std::setw(7)
        << row.view.limit_days.value_or(0) << std::setw(9) << row.view.overdue_days
        << row.view.escalation_level << "\n";
  }
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

}  // namespace

int AppCommand(const DataOptions& options, const std::string& id,
               const std::optional<std::string>& at, const std::optional<std::string>& as_of,
               std::ostream& out) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return kExitFailure;
  std::optional<int64_t> at_us = at ? ParseTimeArgument(*at) : std::optional<int64_t>(NowUs());
  // Plain values, not std::optional: GCC 12 warns falsely (-Wmaybe-uninitialized) otherwise.
  int64_t as_of_us = 0;
  if (as_of) {
    std::optional<int64_t> parsed = ParseTimeArgument(*as_of);
    if (!parsed) at_us.reset();
    as_of_us = parsed.value_or(0);
  }
  if (!at_us) {
    return Fail(out, "invalid", "--at / --as-of take YYYY-MM-DD or RFC 3339", kExitRejected);
  }
  const std::string stream = AppStream(id);
  auto events = context->ledger->ReadStream(stream);
  if (!events.ok()) return Fail(out, "io_error", events.status().message(), kExitFailure);
  uint64_t position_max = context->ledger->Head();
  if (as_of) {
    auto position = context->ledger->PositionAt(as_of_us);
    if (!position.ok()) return Fail(out, "io_error", position.status().message(), kExitFailure);
    position_max = *position;
  }
  std::erase_if(*events, [&](const auto& event) { return event.position > position_max; });
  if (events->empty()) {
    return Fail(out, "not_found", "no events of " + stream + " at that time", kExitRejected);
  }
  // Without --at, an as-of view is evaluated at the as-of time: what the system showed then.
  int64_t evaluate_at = at ? *at_us : (as_of ? as_of_us : *at_us);
  projections::ApplicationState state =
      projections::FoldStream(*events, projections::OccurredBy(evaluate_at));
  json shown = projections::ToJson(state, context->calendar, context->profile, evaluate_at);
  shown["evaluated_at"] = TimeText(evaluate_at);
  if (as_of) shown["as_of_position"] = position_max;
  out << shown.dump() << "\n";
  return kExitOk;
}

int OverdueCommand(const DataOptions& options, const std::optional<std::string>& at,
                   const std::optional<std::string>& org, bool table, std::ostream& out) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return kExitFailure;
  std::optional<int64_t> at_us = at ? ParseTimeArgument(*at) : std::optional<int64_t>(NowUs());
  if (!at_us) return Fail(out, "invalid", "--at takes YYYY-MM-DD or RFC 3339", kExitRejected);
  projections::Engine engine(*context->ledger);
  ProgressBar bar("catching up");
  ledger::Status caught_up =
      engine.CatchUp([&](uint64_t done, uint64_t head) { bar.Update(done, head); });
  bar.Finish();
  if (!caught_up.ok()) return Fail(out, "io_error", caught_up.message(), kExitFailure);

  const domain::Date day = domain::LocalDateOf(*at_us);
  std::vector<OverdueRow> rows;
  ledger::Status scanned = engine.ForEachApplication([&](const projections::ApplicationState& s) {
    if (org && s.org != *org) return true;
    for (const projections::Clock& clock : s.clocks) {
      std::optional<projections::Clock> then = ClockAsOf(clock, day);
      if (!then || !then->open()) continue;
      projections::ClockView view = projections::Evaluate(
          *then, context->calendar, context->profile, s.facts.customer_class, *at_us);
      if (view.state == projections::ClockState::kOverdue) rows.push_back({s.stream, s.org, view});
    }
    return true;
  });
  if (!scanned.ok()) return Fail(out, "io_error", scanned.message(), kExitFailure);
  std::stable_sort(rows.begin(), rows.end(), [](const OverdueRow& a, const OverdueRow& b) {
    return std::tie(b.view.escalation_level, b.view.overdue_days) <
           std::tie(a.view.escalation_level, a.view.overdue_days);
  });
  if (table) {
    PrintOverdueTable(rows, *at_us, out);
  } else {
    for (const OverdueRow& row : rows) out << OverdueJson(row).dump() << "\n";
  }
  return kExitOk;
}

namespace {

// Opens the context and brings the projections up to the head.
std::optional<Context> OpenCaughtUp(const DataOptions& options,
                                    std::unique_ptr<projections::Engine>* engine) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return std::nullopt;
  *engine = std::make_unique<projections::Engine>(*context->ledger);
  ProgressBar bar("catching up");
  ledger::Status caught_up =
      (*engine)->CatchUp([&](uint64_t done, uint64_t head) { bar.Update(done, head); });
  bar.Finish();
  if (!caught_up.ok()) {
    std::cerr << "ledgerctl: projections: " << caught_up.message() << "\n";
    return std::nullopt;
  }
  return context;
}

std::string Percent(const json& value) {
  if (!value.is_number()) return "—";
  std::ostringstream text;
  text << std::fixed << std::setprecision(1) << value.get<double>() * 100 << "%";
  return text.str();
}

void PrintKpiTable(const json& table, std::ostream& out) {
  out << "KPI " << table.value("period", "") << "  org "
      << (table["org"].is_string() ? table["org"].get<std::string>() : "all") << "\n";
  out << std::left << std::setw(24) << "id" << std::setw(12) << "numerator" << std::setw(14)
      << "denominator" << std::setw(9) << "value" << std::setw(9) << "target"
      << "met\n";
  for (const json& kpi : table["kpis"]) {
    std::string met = kpi["met"].is_boolean() ? (kpi["met"].get<bool>() ? "yes" : "NO") : "—";
    out << std::left << std::setw(24) << kpi["id"].get<std::string>() << std::setw(12)
        << kpi["numerator"].dump() << std::setw(14) << kpi["denominator"].dump() << std::setw(9)
        << Percent(kpi["value"]) << std::setw(9) << Percent(kpi["target"]) << met << "  "
        << kpi.value("name_zh", "") << "\n";
  }
}

}  // namespace

int KpiCommand(const DataOptions& options, const std::string& period,
               const std::optional<std::string>& org, bool as_json, std::ostream& out) {
  std::unique_ptr<projections::Engine> engine;
  std::optional<Context> context = OpenCaughtUp(options, &engine);
  if (!context) return kExitFailure;
  if (!projections::PeriodMonths(period)) {
    return Fail(out, "invalid", "--period takes YYYY-MM or YYYY-Qn, not " + period, kExitRejected);
  }
  auto states = engine->KpiStates();
  if (!states.ok()) return Fail(out, "io_error", states.status().message(), kExitFailure);
  json table =
      projections::KpiTable(*states, period, org, context->calendar, context->profile, {}, NowUs());
  if (as_json) {
    out << table.dump() << "\n";
  } else {
    PrintKpiTable(table, out);
  }
  return kExitOk;
}

int EvidenceCommand(const DataOptions& options, const std::string& id, std::ostream& out) {
  std::unique_ptr<projections::Engine> engine;
  std::optional<Context> context = OpenCaughtUp(options, &engine);
  if (!context) return kExitFailure;
  auto evidence = engine->Evidence(AppStream(id));
  if (!evidence.ok()) return Fail(out, "io_error", evidence.status().message(), kExitFailure);
  if (!evidence->has_value()) {
    return Fail(out, "not_found", "no evidence recorded for " + AppStream(id), kExitRejected);
  }
  out << projections::ToJson(**evidence).dump() << "\n";
  return kExitOk;
}

int RebuildCommand(const DataOptions& options, std::ostream& out) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return kExitFailure;
  projections::Engine engine(*context->ledger);
  ProgressBar bar("rebuilding");
  auto started = std::chrono::steady_clock::now();
  ledger::Status rebuilt =
      engine.Rebuild([&](uint64_t done, uint64_t head) { bar.Update(done, head); });
  bar.Finish();
  if (!rebuilt.ok()) return Fail(out, "io_error", rebuilt.message(), kExitFailure);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out << json{{"ok", true},
              {"checkpoint", engine.checkpoint()},
              {"seconds", seconds},
              {"events_per_second", seconds > 0 ? engine.checkpoint() / seconds : 0.0}}
             .dump()
      << "\n";
  return kExitOk;
}

}  // namespace gridledger::cli
