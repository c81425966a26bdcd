#include "projection_commands.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "domain/event_json.h"
#include "ingest/auth.h"
#include "ingest/event_codec.h"
#include "projections/application.h"
#include "projections/engine.h"
#include "projections/kpi.h"
#include "projections/queries.h"

namespace gridledger::cli {

namespace {

using nlohmann::json;

int Fail(std::ostream& out, const std::string& code, const std::string& message, int exit_code) {
  out << json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}}.dump() << "\n";
  std::cerr << "ledgerctl: " << message << "\n";
  return exit_code;
}

std::string TimeText(int64_t unix_us) {
  return domain::FormatTimestamp(unix_us, ingest::kLocalOffsetMinutes);
}

// What the ledger will know later is not known yet: --as-of is a time that has passed.
std::string AsOfInFuture(const std::string& as_of) {
  return "--as-of " + as_of + " lies in the future: " + projections::kAsOfMustHavePassed;
}

}  // namespace

void PrintOverdueTable(const json& rows, const json& missing, std::string_view at,
                       std::ostream& out) {
  out << rows.size() << " overdue clocks at " << at << "\n";
  out << std::left << std::setw(24) << "application" << std::setw(10) << "org" << std::setw(23)
      << "clock" << std::setw(12) << "start" << std::setw(12) << "deadline" << std::setw(9)
      << "elapsed" << std::setw(7) << "limit" << std::setw(9) << "overdue"
      << "level\n";
  for (const json& row : rows) {  // projections::OverdueJson
    const json& deadline = row.at("deadline");
    out << std::left << std::setw(24) << row.at("stream").get<std::string>() << std::setw(10)
        << row.at("org").get<std::string>() << std::setw(23) << row.at("clock").get<std::string>()
        << std::setw(12) << row.at("start").get<std::string>() << std::setw(12)
        << (deadline.is_string() ? deadline.get<std::string>() : "?") << std::setw(9)
        << row.at("elapsed_working_days").dump() << std::setw(7) << row.at("limit").dump()
        << std::setw(9)
        << (row.contains("overdue_days_at_least")  // a year not loaded: known from below
                ? ">=" + row.at("overdue_days_at_least").dump()
                : row.at("overdue_days").dump())
        << (row.contains("overdue_days_at_least") ? ">=" : "")
        << row.at("escalation_level").dump() << "\n";
  }
  if (missing.empty()) return;
  // Never a silent gap: a clock the calendar cannot judge may be late too.
  out << "\n"
      << missing.size() << " open clocks cannot be judged at " << at
      << ": they need a working-day calendar year that is not loaded (calendar_missing)\n";
  out << std::left << std::setw(24) << "application" << std::setw(10) << "org" << std::setw(23)
      << "clock" << std::setw(12) << "start" << std::setw(12) << "deadline" << std::setw(7)
      << "limit"
      << "missing year\n";
  for (const json& row : missing) {
    const json& deadline = row.at("deadline");
    out << std::left << std::setw(24) << row.at("stream").get<std::string>() << std::setw(10)
        << row.at("org").get<std::string>() << std::setw(23) << row.at("clock").get<std::string>()
        << std::setw(12) << row.at("start").get<std::string>() << std::setw(12)
        << (deadline.is_string() ? deadline.get<std::string>() : "?") << std::setw(7)
        << row.at("limit").dump() << row.value("missing_year", json(nullptr)).dump() << "\n";
  }
}

void SayCalendarMissing(const std::vector<std::string>& clocks) {
  if (clocks.empty()) return;
  std::cerr << "ledgerctl: " << clocks.size()
            << " open clock(s) cannot be judged: they need a working-day calendar year that is "
               "not loaded (state calendar_missing):";
  for (size_t i = 0; i < clocks.size() && i < 20; ++i) std::cerr << " " << clocks[i];
  std::cerr << (clocks.size() > 20 ? " ...\n" : "\n");
}

int AppCommand(const DataOptions& options, const std::string& id,
               const std::optional<std::string>& at, const std::optional<std::string>& as_of,
               std::ostream& out) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return kExitFailure;
  std::optional<int64_t> at_us =
      at ? projections::ParseTimeArgument(*at) : std::optional<int64_t>(NowUs());
  // Plain values, not std::optional: GCC 12 warns falsely (-Wmaybe-uninitialized) otherwise.
  int64_t as_of_us = 0;
  if (as_of) {
    std::optional<int64_t> parsed = projections::ParseAsOfArgument(*as_of, NowUs());
    if (!parsed) at_us.reset();
    as_of_us = parsed.value_or(0);
  }
  if (!at_us) {
    const bool bad_at = at && !projections::ParseTimeArgument(*at);
    return Fail(out, "invalid",
                (bad_at ? "--at" : "--as-of") + std::string(" takes YYYY-MM-DD or RFC 3339, not ") +
                    (bad_at ? *at : *as_of),
                kExitRejected);
  }
  if (as_of && as_of_us > NowUs()) return Fail(out, "invalid", AsOfInFuture(*as_of), kExitRejected);
  const std::string stream = projections::AppStream(id);
  auto shown = projections::AppView(*context->ledger, stream, at ? at_us : std::nullopt,
                                    as_of ? std::optional<int64_t>(as_of_us) : std::nullopt, *at_us,
                                    context->calendar, context->profile);
  if (!shown.ok()) return Fail(out, "io_error", shown.status().message(), kExitFailure);
  if (!shown->has_value()) {
    return Fail(out, "not_found", projections::AppNotFoundMessage(stream, at || as_of),
                kExitRejected);
  }
  if (!RecordLocalRead(*context->ledger, stream)) return kExitFailure;
  out << (*shown)->dump() << "\n";
  return kExitOk;
}

int OverdueCommand(const DataOptions& options, const std::optional<std::string>& at,
                   const std::optional<std::string>& org, bool table, std::ostream& out) {
  std::optional<Context> context = OpenContext(options, std::cerr);
  if (!context) return kExitFailure;
  std::optional<int64_t> at_us =
      at ? projections::ParseTimeArgument(*at) : std::optional<int64_t>(NowUs());
  if (!at_us) return Fail(out, "invalid", "--at takes YYYY-MM-DD or RFC 3339", kExitRejected);
  projections::Engine engine(*context->ledger);
  ProgressBar bar("catching up");
  ledger::Status caught_up =
      engine.CatchUp([&](uint64_t done, uint64_t head) { bar.Update(done, head); });
  bar.Finish();
  if (!caught_up.ok()) return Fail(out, "io_error", caught_up.message(), kExitFailure);

  std::vector<projections::OverdueRow> undetermined;
  // An org's list holds the late steps of the org units below it too, as a director's does from
  // ledgerd (the data directory's reader may read every org).
  auto rows = projections::OverdueAt(*context->ledger, engine, *at_us,
                                     projections::ReportOrgs{org, /*units_below=*/true},
                                     context->calendar, context->profile, &undetermined);
  if (!rows.ok()) return Fail(out, "io_error", rows.status().message(), kExitFailure);
  json listed = json::array();
  for (const auto& row : *rows) listed.push_back(projections::OverdueJson(row));
  json missing = json::array();
  for (const auto& row : undetermined) missing.push_back(projections::OverdueJson(row));
  if (table) {
    PrintOverdueTable(listed, missing, TimeText(*at_us), out);
  } else {
    // Clocks the calendar cannot judge follow the overdue ones, with state calendar_missing.
    for (const json& row : listed) out << row.dump() << "\n";
    for (const json& row : missing) out << row.dump() << "\n";
  }
  // Never a silent gap: clocks the calendar cannot judge are named (load the missing year).
  std::vector<std::string> clocks;
  for (const auto& row : undetermined) {
    clocks.push_back(row.stream + "/" + std::string(domain::SlaClockName(row.view.name)));
  }
  SayCalendarMissing(clocks);
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

// To a tenth of a percent; a value short of 1 never shows as 100.0 % (beside a "NO" for a 100 %
// target), but as 99.9 %.
std::string Percent(const json& value) {
  if (!value.is_number()) return "—";
  const double percent = value.get<double>() * 100;
  std::ostringstream text;
  text << std::fixed << std::setprecision(1) << (percent < 100 && percent >= 99.95 ? 99.9 : percent)
       << "%";
  return text.str();
}

// `text` padded with spaces to `width` columns, counting characters, not bytes ("—" is one).
std::string Column(const std::string& text, size_t width) {
  const size_t characters = static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
  return text + std::string(width > characters ? width - characters : 1, ' ');
}

}  // namespace

// The supporting figures, one line each (their ids are in the JSON form).
void PrintSupporting(const json& table, std::ostream& out) {
  const json& supporting = table.value("supporting", json::object());
  if (!supporting.is_object() || supporting.empty()) return;
  out << "supporting (ids with --json)\n";
  auto ratio = [&](const char* key) {
    const json& r = supporting.value(key, json::object());
    if (!r.contains("numerator")) return;
    out << "  " << Column(key, 28) << Column(r.at("numerator").dump(), 12)
        << Column(r.at("denominator").dump(), 14) << Percent(r.at("value")) << "\n";
  };
  ratio("callback_rate");
  ratio("site_inspection_coverage");
  ratio("document_review_pass_rate");
  auto count = [&](const char* key, const char* label, const std::string& detail = "") {
    const json& figure = supporting.value(key, json::object());
    if (!figure.contains("count")) return;
    const json& n = figure.at("count");
    out << "  " << Column(label, 28) << n.dump() << (n == 0 ? "" : detail) << "\n";
  };
  std::string rules;
  // (A named copy: items() of a temporary's temporary would read freed memory.)
  const json by_rule =
      supporting.value("violations", json::object()).value("by_rule", json::object());
  for (const auto& [rule, n] : by_rule.items()) {
    rules += (rules.empty() ? "  (" : ", ") + rule + " " + n.dump();
  }
  if (!rules.empty()) rules += ")";
  count("violations", "violations", rules);
  count("settled_violations", "settled violations", "  (entered late, dated before: not counted)");
  count("backdated_events", "backdated events");
  count("urges_issued", "urges issued");
  const json& training = supporting.value("training_hours", json::object());
  if (training.contains("sessions")) {
    std::ostringstream hours;
    hours << training.at("sessions").dump() << " sessions, " << training.at("hours").dump()
          << " h, " << training.at("person_hours").dump() << " person-hours";
    out << "  " << Column("training", 28) << hours.str() << "\n";
  }
}

void PrintKpiTable(const json& table, std::ostream& out) {
  const json& org = table.at("org");
  out << "KPI " << table.value("period", "") << "  org "
      << (org.is_string() ? org.get<std::string>() : "all");
  if (table.contains("as_of")) {
    out << "  as of " << table.at("as_of").get<std::string>() << " (position "
        << table.at("as_of_position").dump() << ")";
  }
  out << "\n";
  // What the figures were judged by (another profile or calendar gives other figures).
  if (const auto basis = table.find("basis"); basis != table.end() && basis->is_object()) {
    const json profile = basis->value("sla_profile", json::object());
    const json calendar = basis->value("calendar", json::object());
    out << "judged by SLA profile " << profile.value("name", "?") << " ("
        << profile.value("source", "?") << "), working-day calendar "
        << calendar.value("first_year", json()).dump() << "–"
        << calendar.value("last_year", json()).dump() << "\n";
  }
  out << Column("id", 24) << Column("numerator", 12) << Column("denominator", 14)
      << Column("value", 9) << Column("target", 9) << Column("met", 5) << "name\n";
  for (const json& kpi : table.at("kpis")) {
    const json& met_value = kpi.at("met");
    std::string met = met_value.is_boolean() ? (met_value.get<bool>() ? "yes" : "NO") : "—";
    std::string name = kpi.value("name_zh", "");
    // A KPI the standard assesses per quarter: its figure for a month is for information.
    if (kpi.value("assessed_per", "") == "quarter" &&
        table.value("period", "").find('Q') == std::string::npos) {
      name += " (assessed per quarter)";
    }
    out << Column(kpi.at("id").get<std::string>(), 24) << Column(kpi.at("numerator").dump(), 12)
        << Column(kpi.at("denominator").dump(), 14) << Column(Percent(kpi.at("value")), 9)
        << Column(Percent(kpi.at("target")), 9) << Column(met, 5) << name << "\n";
    // Never a silent gap: what the calendar cannot judge is named, not left out of the count.
    if (auto missing = kpi.find("undetermined_ids"); missing != kpi.end() && !missing->empty()) {
      std::string ids;
      for (const json& id : *missing) ids += (ids.empty() ? "" : ", ") + id.get<std::string>();
      out << "    " << missing->size()
          << " not judged: a working-day calendar year they need is not loaded "
             "(calendar_missing): "
          << ids << "\n";
    }
    // A month-assessed KPI in a quarter: met only if each month was; the months under it.
    if (auto months = kpi.find("by_month"); months != kpi.end()) {
      std::string line = "    by month:";
      for (const json& month : *months) {
        const json& month_met = month.at("met");
        line += " " + month.at("month").get<std::string>() + " " + Percent(month.at("value"));
        if (month_met.is_boolean()) line += month_met.get<bool>() ? " yes" : " NO";
        line += ",";
      }
      line.pop_back();
      out << line << "\n";
    }
  }
  PrintSupporting(table, out);
}

int KpiCommand(const DataOptions& options, const std::string& period,
               const std::optional<std::string>& org, const std::optional<std::string>& as_of,
               bool as_json, std::ostream& out) {
  if (!projections::PeriodMonths(period)) {
    return Fail(out, "invalid", "--period takes YYYY-MM or YYYY-Qn, not " + period, kExitRejected);
  }
  const std::optional<int64_t> as_of_us =
      as_of ? projections::ParseAsOfArgument(*as_of, NowUs()) : std::nullopt;
  if (as_of && !as_of_us) {
    return Fail(out, "invalid", "--as-of takes YYYY-MM-DD or RFC 3339, not " + *as_of,
                kExitRejected);
  }
  if (as_of_us && *as_of_us > NowUs()) {
    return Fail(out, "invalid", AsOfInFuture(*as_of), kExitRejected);
  }
  json table;
  if (as_of_us) {
    // Replayed from the log: the stored projections hold only the present.
    std::optional<Context> context = OpenContext(options, std::cerr);
    if (!context) return kExitFailure;
    auto replayed = projections::KpiTableAsOf(*context->ledger, period, org, context->calendar,
                                              context->profile, *as_of_us);
    if (!replayed.ok()) return Fail(out, "io_error", replayed.status().message(), kExitFailure);
    table = std::move(replayed).value();
  } else {
    std::unique_ptr<projections::Engine> engine;
    std::optional<Context> context = OpenCaughtUp(options, &engine);
    if (!context) return kExitFailure;
    auto states = engine->KpiStates();
    if (!states.ok()) return Fail(out, "io_error", states.status().message(), kExitFailure);
    // Per org unit, as ledgerd answers: a parent org without figures of its own is refused,
    // naming its units, rather than shown as an all-null table.
    std::vector<std::string> below;
    if (org) {
      projections::KpiOrgUnits units = projections::KpiOrgUnitsOf(*states, period, *org);
      if (units.refusal) return Fail(out, "kpi_per_org_unit", *units.refusal, kExitRejected);
      if (!units.known) {
        std::cerr << "ledgerctl: no KPI figures of org " << *org
                  << " or any unit below it in any period: is the id right? (org ids are "
                     "case-sensitive, e.g. KM.XS)\n";
      }
      below = std::move(units.below);
    }
    table = projections::KpiTable(*states, period, org, context->calendar, context->profile, {},
                                  NowUs());
    if (!below.empty()) table["org_units_below"] = below;
  }
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
  auto evidence = engine->Evidence(projections::AppStream(id));
  if (!evidence.ok()) return Fail(out, "io_error", evidence.status().message(), kExitFailure);
  if (!evidence->has_value()) {
    // As GET /v1/evidence says it: an application that does not exist is not one without evidence.
    auto app = engine->Application(projections::AppStream(id));
    if (!app.ok()) return Fail(out, "io_error", app.status().message(), kExitFailure);
    return Fail(out, "not_found",
                (app->has_value() ? "no evidence recorded for " : "no application ") +
                    projections::AppStream(id),
                kExitRejected);
  }
  if (!RecordLocalRead(*context->ledger, projections::AppStream(id))) return kExitFailure;
  out << projections::ToJson(**evidence).dump() << "\n";
  return kExitOk;
}

int EvidenceCoverageCommand(const DataOptions& options, const std::string& period,
                            const std::optional<std::string>& org, std::ostream& out) {
  if (!projections::PeriodMonths(period)) {
    return Fail(out, "invalid", "--period takes YYYY-MM or YYYY-Qn, not " + period, kExitRejected);
  }
  std::unique_ptr<projections::Engine> engine;
  std::optional<Context> context = OpenCaughtUp(options, &engine);
  if (!context) return kExitFailure;
  auto states = engine->EvidenceStates();
  if (!states.ok()) return Fail(out, "io_error", states.status().message(), kExitFailure);
  // The applications of the org and of the units below it, as ledgerd counts a director's.
  out << projections::EvidenceCoverage(*states, period,
                                       projections::ReportOrgs{org, /*units_below=*/true})
             .dump()
      << "\n";
  return kExitOk;
}

int StaffCommand(const DataOptions& options, const std::string& staff_id, std::ostream& out) {
  std::unique_ptr<projections::Engine> engine;
  std::optional<Context> context = OpenCaughtUp(options, &engine);
  if (!context) return kExitFailure;
  auto audit = engine->StaffAudit(staff_id);
  if (!audit.ok()) return Fail(out, "io_error", audit.status().message(), kExitFailure);
  if (!audit->has_value()) {
    return Fail(out, "not_found", "no action of staff " + staff_id, kExitRejected);
  }
  out << projections::ToJson(**audit).dump() << "\n";
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
