// The KPI projection (see projections/include/projections/kpi.h).
#include "projections/kpi.h"
#include "json_util.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <iterator>
#include <set>
#include <tuple>
#include <unordered_map>
#include <variant>

#include "domain/event_json.h"
#include "domain/payload.h"

namespace gridledger::projections {
namespace {

using domain::AppEventType;
using domain::Date;
using domain::SlaClock;
using nlohmann::json;

constexpr std::string_view kMonthPrefix = "kpi/m/";
constexpr std::string_view kReportPrefix = "kpi/r/";
// Slack of `numerator >= target * denominator`, so that 19/20 meets 0.95 despite binary rounding.
constexpr double kTargetEpsilon = 1e-9;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool AllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string MonthText(int year, int month) {
  if (year >= 0 && year <= 9999 && month >= 1 && month <= 12) {  // the common case, no printf
    const char text[7] = {static_cast<char>('0' + year / 1000),
                          static_cast<char>('0' + year / 100 % 10),
                          static_cast<char>('0' + year / 10 % 10),
                          static_cast<char>('0' + year % 10),
                          '-',
                          static_cast<char>('0' + month / 10),
                          static_cast<char>('0' + month % 10)};
    return std::string(text, sizeof(text));
  }
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d", year, month);
  return buffer;
}

std::string MonthOfUs(int64_t unix_us) { return MonthOf(domain::LocalDateOf(unix_us)); }

namespace ev = domain::events;
using domain::EnumName;
using domain::TextOf;

// ---- Routing: which bucket receives which part of an event ----

// Each member names the bucket of one kind of fact, or is empty when the event has none.
struct Routes {
  std::string month;     // app facts dated by occurred_at (KpiArchived, callbacks, …)
  std::string change;    // the change application's bucket (acceptance month)
  std::string late;      // month of recorded_at
  std::string report;    // report bucket
  std::string training;  // month bucket of the organizer's org
  std::string settled;   // month of recorded_at, when the event settled violations
};

// True when the application projection applied `event` (it was not rejected as invalid).
bool AppliedByApp(const ApplicationState& app, const EventRecord& event) {
  return app.last_position == event.position &&
         (app.rejected.empty() || app.rejected.back().position != event.position);
}

bool HasViolationAt(const ApplicationState& app, uint64_t position) {
  return std::any_of(app.violations.begin(), app.violations.end(),
                     [position](const ViolationRecord& v) { return v.position == position; });
}

// Whether the event at `position` settled violations (they are appended as settled).
bool SettledAt(const ApplicationState& app, uint64_t position) {
  return !app.settled.empty() && app.settled.back().by_position == position;
}

bool IsFirstConnection(const ApplicationState& app, uint64_t position) {
  const Clock* clock = app.LatestClock(SlaClock::kConnection);
  return clock != nullptr && clock->end_position == position && !clock->stopped_by;
}

bool ContributesMonthFact(const ApplicationState& app, AppEventType type, uint64_t position) {
  switch (type) {
    case AppEventType::kArchived:
    case AppEventType::kCallbackMade:
    case AppEventType::kDocumentReviewed:
    case AppEventType::kSiteInspected:
    case AppEventType::kUrged:
    case AppEventType::kCorrected:
      return true;
    case AppEventType::kMeterConnected:
      return IsFirstConnection(app, position) || HasViolationAt(app, position);
    default:
      return HasViolationAt(app, position);
  }
}

bool TouchesChangeClock(AppEventType type) {
  switch (type) {
    case AppEventType::kApplicationAccepted:
    case AppEventType::kClockPaused:
    case AppEventType::kClockResumed:
    case AppEventType::kChangeExecuted:
    case AppEventType::kArchived:
    case AppEventType::kWithdrawn:
      return true;
    default:
      return false;
  }
}

// Recorded on a later day than it occurred, and not a declared bulk import of history.
bool IsLate(const EventRecord& event) {
  return !event.imported &&
         domain::LocalDateOf(event.occurred_at_us) < domain::LocalDateOf(event.recorded_at_us);
}

void RouteAppEvent(const EventRecord& event, const ApplicationState& app, Routes& routes) {
  if (app.org.empty() || !AppliedByApp(app, event)) return;
  const auto type = domain::ParseAppEventType(event.type);
  if (!type) return;
  if (ContributesMonthFact(app, *type, event.position)) {
    // A correction's revision marker goes to the month it was recorded in: no later than any
    // month holding an item it supersedes, so a window of months up to now that holds one of
    // them holds the marker too (REVISIONS).
    const int64_t dated_us =
        *type == AppEventType::kCorrected ? event.recorded_at_us : event.occurred_at_us;
    routes.month = KpiMonthKey(app.org, MonthOfUs(dated_us));
  }
  if (domain::IsChange(app.facts) && app.accepted_date && TouchesChangeClock(*type)) {
    routes.change = KpiMonthKey(app.org, MonthOf(*app.accepted_date));
  }
  if (IsLate(event)) routes.late = KpiMonthKey(app.org, MonthOfUs(event.recorded_at_us));
  // Like a revision marker: recorded after the items it settles, so never in an earlier month.
  if (SettledAt(app, event.position)) {
    routes.settled = KpiMonthKey(app.org, MonthOfUs(event.recorded_at_us));
  }
}

Routes RouteOf(const EventRecord& event, const ApplicationState* app_after) {
  Routes routes;
  if (StartsWith(event.stream, "app/")) {
    if (app_after != nullptr) RouteAppEvent(event, *app_after, routes);
    return routes;
  }
  if (event.actor_org.empty()) return routes;
  if (StartsWith(event.stream, "report/") && domain::StreamKindOfType(event.type) == "report") {
    routes.report = KpiReportKey(event.stream);
  }
  if (StartsWith(event.stream, "staff/") && event.type == "TrainingHeld") {
    routes.training = KpiMonthKey(event.actor_org, MonthOfUs(event.occurred_at_us));
  }
  if (IsLate(event)) routes.late = KpiMonthKey(event.actor_org, MonthOfUs(event.recorded_at_us));
  return routes;
}

// ---- Folding the parts ----

// The violations that say the application did not go through its time-limited stages before it
// was connected or archived (a prerequisite or a required review/inspection skipped, archived
// unconnected). Others are counted where they belong (a callback before connection counts against
// KPI 3, see FoldCallback; a contract before the scheme reply still precedes the connection, KPI
// 4).
bool CountsAgainstTimeliness(std::string_view rule) {
  return rule.starts_with("connected_") || rule.starts_with("archived_");
}

void FoldArchived(KpiState& state, const EventRecord& event, const ApplicationState& app) {
  if (domain::IsChange(app.facts)) return;
  KpiArchived archived;
  archived.app = app.stream;
  archived.position = event.position;
  archived.business = app.facts.business;
  archived.customer_class = app.facts.customer_class;
  archived.connected = app.facts.meter_connected;
  archived.clocks = app.clocks;
  for (const ViolationRecord& violation : app.violations) {
    if (CountsAgainstTimeliness(violation.rule)) archived.violations.push_back(violation.rule);
  }
  archived.revision = app.revision;
  state.archived.push_back(std::move(archived));
}

// The workflow rules (callback_before_*) that flag a callback made before the connection or
// change execution it should follow; one test for the fold and for settlements.
bool IsPrematureCallbackRule(std::string_view rule) { return rule.starts_with("callback_before_"); }

void FoldCallback(KpiState& state, const EventRecord& event, const ApplicationState& app) {
  KpiCallback callback;
  callback.app = app.stream;
  callback.position = event.position;
  callback.revision = app.revision;
  // Workflow rules flag a callback made before the connection (change execution) it follows.
  callback.premature =
      std::any_of(app.violations.begin(), app.violations.end(), [&](const ViolationRecord& v) {
        return v.position == event.position && IsPrematureCallbackRule(v.rule);
      });
  const bool read =
      domain::ReadPayload<ev::CallbackMade>(event.payload, [&](ev::CallbackMade::Reader root) {
        if (!domain::ReadsWhole(root)) return false;  // as the evidence projection reads it
        callback.result = *EnumName(root.getResult());
        if (root.getHasSatisfaction()) callback.satisfaction = *EnumName(root.getSatisfaction());
        return true;
      });
  if (read) state.callbacks.push_back(std::move(callback));
}

// DocumentReviewed and SiteInspected: whether the check passed; nullopt when the payload does
// not read. (A fold that reads another payload field of an app event must have
// domain::ChangesFacts see a correction of it too: otherwise such a Corrected is recorded and
// nothing is folded again.)
template <typename Check>
std::optional<bool> CheckPassed(const EventRecord& event) {
  std::optional<bool> passed;
  domain::ReadPayload<Check>(event.payload, [&](typename Check::Reader root) {
    if (!domain::ReadsWhole(root)) return false;  // as the evidence projection reads it
    passed = root.getConclusion() == ev::Result::PASS;
    return true;
  });
  return passed;
}

template <typename Check>
void FoldCheck(std::vector<KpiCheck>& checks, const EventRecord& event,
               const ApplicationState& app) {
  std::optional<bool> passed = CheckPassed<Check>(event);
  if (passed) checks.push_back(KpiCheck{app.stream, event.position, *passed, app.revision});
}

void FoldMonthFacts(KpiState& state, const EventRecord& event, const ApplicationState& app) {
  const auto type = domain::ParseAppEventType(event.type);
  switch (*type) {
    case AppEventType::kArchived:
      FoldArchived(state, event, app);
      break;
    case AppEventType::kCallbackMade:
      FoldCallback(state, event, app);
      break;
    case AppEventType::kDocumentReviewed:
      FoldCheck<ev::DocumentReviewed>(state.document_reviews, event, app);
      break;
    case AppEventType::kSiteInspected:
      FoldCheck<ev::SiteInspected>(state.site_inspections, event, app);
      break;
    case AppEventType::kUrged:
      if (!app.urges.empty() && app.urges.back().position == event.position) {
        state.urges.push_back(
            KpiUrge{app.stream, event.position, app.urges.back().level, app.revision});
      }
      break;
    case AppEventType::kMeterConnected:
      if (IsFirstConnection(app, event.position)) {
        // "With a contract signed before connection": the connection's own judgement, which
        // compares business dates too (a contract entered first but dated later is not before).
        const bool without_contract =
            std::any_of(app.violations.begin(), app.violations.end(), [&](const auto& v) {
              return v.position == event.position && v.rule == "connected_without_contract";
            });
        state.connections.push_back(
            KpiConnection{app.stream, event.position, !without_contract, app.revision});
      }
      break;
    case AppEventType::kCorrected:
      state.revisions.push_back(KpiRevision{app.stream, event.position, app.revision});
      break;
    default:
      break;
  }
  for (const ViolationRecord& violation : app.violations) {
    if (violation.position != event.position) continue;
    state.violations.push_back(
        KpiViolation{app.stream, event.position, violation.rule, app.revision});
  }
}

// The violations the event settled (appended last to ApplicationState::settled), in their order.
void FoldSettled(KpiState& state, const EventRecord& event, const ApplicationState& app) {
  auto first = app.settled.end();
  while (first != app.settled.begin() && std::prev(first)->by_position == event.position) --first;
  for (auto it = first; it != app.settled.end(); ++it) {
    state.settled.push_back(KpiSettled{app.stream, it->violation.position, it->violation.date,
                                       it->violation.rule, it->by_position, app.revision});
  }
}

void FoldChange(KpiState& state, const ApplicationState& app) {
  const Clock* clock = app.LatestClock(SlaClock::kChangeCompletion);
  if (clock == nullptr) return;
  KpiChange change;
  change.app = app.stream;
  change.customer_class = app.facts.customer_class;
  change.clock = *clock;
  change.executed = app.facts.change_executed && !clock->stopped_by;
  change.withdrawn = app.facts.withdrawn && !change.executed;
  change.revision = app.revision;
  auto it = std::find_if(state.changes.begin(), state.changes.end(),
                         [&app](const KpiChange& existing) { return existing.app == app.stream; });
  if (it == state.changes.end()) {
    state.changes.push_back(std::move(change));
  } else {
    *it = std::move(change);
  }
}

void FoldReportDue(KpiReport& report, KpiState& state, const EventRecord& event) {
  if (report.due_position != 0) return;  // the first ReportDue fixes org and due date
  std::optional<Date> due;
  std::string report_type;
  std::string period;
  const bool read =
      domain::ReadPayload<ev::ReportDue>(event.payload, [&](ev::ReportDue::Reader root) {
        due = Date::Parse(TextOf(root.getDueDate()));
        report_type = TextOf(root.getReportType());
        period = TextOf(root.getPeriod());
        return due.has_value();
      });
  if (!read) return;  // nothing changes for a payload that does not read
  report.report_type = std::move(report_type);
  report.period = std::move(period);
  report.due_date = *due;
  report.due_position = event.position;
  state.org = std::string(event.actor_org);
  state.month = MonthOf(*due);
}

void FoldReport(KpiState& state, const EventRecord& event) {
  if (!state.report) state.report = KpiReport{};
  KpiReport& report = *state.report;
  if (event.type == "ReportDue") {
    FoldReportDue(report, state, event);
  } else if (event.type == "ReportSubmitted") {
    if (report.submitted_position == 0) {
      report.submitted_date = domain::LocalDateOf(event.occurred_at_us);
      report.submitted_position = event.position;
    }
  } else if (event.type == "ReportCorrected") {
    ++report.corrections;
    domain::ReadPayload<ev::ReportCorrected>(event.payload, [&](ev::ReportCorrected::Reader root) {
      report.errors_found += root.getErrorsFound();
      return true;
    });
  }
}

void FoldTraining(KpiState& state, const EventRecord& event) {
  domain::ReadPayload<ev::TrainingHeld>(event.payload, [&](ev::TrainingHeld::Reader root) {
    if (!domain::ReadsWhole(root)) return false;
    state.trainings.push_back(KpiTraining{std::string(event.stream), event.position,
                                          root.getHours(), root.getAttendees().size()});
    return true;
  });
}

// ---- Canonical JSON form ----

json DateJson(const std::optional<Date>& date) {
  return date ? json(date->ToString()) : json(nullptr);
}

json ClockToJson(const Clock& clock) {
  json pauses = json::array();
  for (const PauseInterval& pause : clock.pauses) {
    pauses.push_back({{"from", pause.from.ToString()},
                      {"to", DateJson(pause.to)},
                      {"from_position", pause.from_position},
                      {"to_position", pause.to_position}});
  }
  return {{"name", domain::SlaClockName(clock.name)},
          {"attempt", clock.attempt},
          {"start", clock.start.ToString()},
          {"end", DateJson(clock.end)},
          {"start_position", clock.start_position},
          {"end_position", clock.end_position},
          {"stopped_by",
           clock.stopped_by ? json(domain::AppEventTypeName(*clock.stopped_by)) : json(nullptr)},
          {"pauses", std::move(pauses)}};
}

json ArchivedToJson(const KpiArchived& a) {
  return {{"app", a.app},
          {"position", a.position},
          {"business", domain::BusinessName(a.business)},
          {"customer_class", domain::SlaCustomerClassName(a.customer_class)},
          {"connected", a.connected},
          {"clocks", ArrayOf(a.clocks, ClockToJson)},
          {"violations", a.violations},
          {"revision", a.revision}};
}

json ChangeToJson(const KpiChange& c) {
  return {{"app", c.app},
          {"customer_class", domain::SlaCustomerClassName(c.customer_class)},
          {"clock", ClockToJson(c.clock)},
          {"executed", c.executed},
          {"withdrawn", c.withdrawn},
          {"revision", c.revision}};
}

json ReportToJson(const KpiReport& r) {
  return {{"report_type", r.report_type},
          {"period", r.period},
          {"due_date", r.due_date.ToString()},
          {"due_position", r.due_position},
          {"submitted_date", DateJson(r.submitted_date)},
          {"submitted_position", r.submitted_position},
          {"corrections", r.corrections},
          {"errors_found", r.errors_found}};
}

json CheckToJson(const KpiCheck& c) {
  return {{"app", c.app}, {"position", c.position}, {"passed", c.passed}, {"revision", c.revision}};
}

}  // namespace

// ---- Periods and keys ----

std::string MonthOf(Date date) { return MonthText(date.year(), date.month()); }

std::optional<std::vector<std::string>> PeriodMonths(std::string_view period) {
  if (period.size() != 7 || period[4] != '-' || !AllDigits(period.substr(0, 4))) {
    return std::nullopt;
  }
  const int year = std::stoi(std::string(period.substr(0, 4)));
  if (year < 1) return std::nullopt;
  if (period[5] == 'Q') {
    const char quarter = period[6];
    if (quarter < '1' || quarter > '4') return std::nullopt;
    const int first = (quarter - '1') * 3 + 1;
    return std::vector<std::string>{MonthText(year, first), MonthText(year, first + 1),
                                    MonthText(year, first + 2)};
  }
  if (!AllDigits(period.substr(5, 2))) return std::nullopt;
  const int month = std::stoi(std::string(period.substr(5, 2)));
  if (month < 1 || month > 12) return std::nullopt;
  return std::vector<std::string>{MonthText(year, month)};
}

std::string KpiMonthKey(std::string_view org, std::string_view month) {
  std::string key(kMonthPrefix);
  key.append(org).append("/").append(month);
  return key;
}

std::string KpiReportKey(std::string_view report_stream) {
  return std::string(kReportPrefix) + std::string(report_stream);
}

std::string KeyOf(const KpiState& state) {
  if (!state.report_stream.empty()) return KpiReportKey(state.report_stream);
  return KpiMonthKey(state.org, state.month);
}

std::optional<KpiState> NewKpiState(std::string_view key) {
  KpiState state;
  if (StartsWith(key, kReportPrefix)) {
    state.report_stream = std::string(key.substr(kReportPrefix.size()));
    if (!StartsWith(state.report_stream, "report/")) return std::nullopt;
    return state;
  }
  if (!StartsWith(key, kMonthPrefix)) return std::nullopt;
  const std::string_view rest = key.substr(kMonthPrefix.size());
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const auto months = PeriodMonths(rest.substr(slash + 1));
  if (!months || months->size() != 1 || (*months)[0] != rest.substr(slash + 1)) {
    return std::nullopt;
  }
  state.org = std::string(rest.substr(0, slash));
  state.month = (*months)[0];
  return state;
}

std::vector<std::string> KpiKeysOf(const EventRecord& event, const ApplicationState* app_after) {
  std::vector<KpiTarget> targets;
  KpiTargetsOf(event, app_after, targets);
  std::vector<std::string> keys;
  keys.reserve(targets.size());
  for (KpiTarget& target : targets) keys.push_back(std::move(target.key));
  return keys;
}

void KpiTargetsOf(const EventRecord& event, const ApplicationState* app_after,
                  std::vector<KpiTarget>& targets) {
  targets.clear();
  Routes routes = RouteOf(event, app_after);
  // The one list of routes and the parts they carry (KpiKeysOf and Fold go through here too).
  const std::pair<std::string*, uint8_t> parts[] = {
      {&routes.month, kKpiPartMonth},       {&routes.change, kKpiPartChange},
      {&routes.late, kKpiPartLate},         {&routes.report, kKpiPartReport},
      {&routes.training, kKpiPartTraining}, {&routes.settled, kKpiPartSettled}};
  for (const auto& [key, part] : parts) {
    if (key->empty()) continue;
    auto same = std::find_if(targets.begin(), targets.end(),
                             [key = key](const KpiTarget& target) { return target.key == *key; });
    if (same != targets.end()) {
      same->parts |= part;
    } else {
      targets.push_back(KpiTarget{std::move(*key), part});
    }
  }
}

void FoldParts(KpiState& state, const EventRecord& event, const ApplicationState* app_after,
               uint8_t parts) {
  if ((parts & kKpiPartMonth) != 0) FoldMonthFacts(state, event, *app_after);
  if ((parts & kKpiPartChange) != 0) FoldChange(state, *app_after);
  if ((parts & kKpiPartLate) != 0) {
    state.late.push_back(KpiLate{std::string(event.stream), event.position, event.occurred_at_us,
                                 event.recorded_at_us,
                                 app_after != nullptr ? app_after->revision : 0});
  }
  if ((parts & kKpiPartReport) != 0) FoldReport(state, event);
  if ((parts & kKpiPartTraining) != 0) FoldTraining(state, event);
  if ((parts & kKpiPartSettled) != 0) FoldSettled(state, event, *app_after);
  // A correction folds an application's earlier events again (REVISIONS): never backwards.
  if (parts != 0) state.last_position = std::max(state.last_position, event.position);
}

void Fold(KpiState& state, const EventRecord& event, const ApplicationState* app_after) {
  std::vector<KpiTarget> targets;
  KpiTargetsOf(event, app_after, targets);
  const std::string key = KeyOf(state);
  auto mine = std::find_if(targets.begin(), targets.end(),
                           [&key](const KpiTarget& target) { return target.key == key; });
  FoldParts(state, event, app_after, mine == targets.end() ? 0 : mine->parts);
}

void Fold(KpiBook& book, const EventRecord& event, const ApplicationState* app_after) {
  for (const std::string& key : KpiKeysOf(event, app_after)) {
    auto it = book.states.find(key);
    if (it == book.states.end()) {
      std::optional<KpiState> fresh = NewKpiState(key);
      if (!fresh) continue;  // an org id with characters a key cannot carry; see KpiMonthKey
      it = book.states.emplace(key, std::move(*fresh)).first;
    }
    Fold(it->second, event, app_after);
  }
}

std::vector<KpiState> States(const KpiBook& book) {
  std::vector<KpiState> states;
  states.reserve(book.states.size());
  for (const auto& [key, state] : book.states) states.push_back(state);
  return states;
}

}  // namespace gridledger::projections

namespace gridledger::projections {

json ToJson(const KpiState& state) {
  json out = {
      {"org", state.org},
      {"month", state.month},
      {"report_stream", state.report_stream},
      {"last_position", state.last_position},
      {"archived", ArrayOf(state.archived, ArchivedToJson)},
      {"changes", ArrayOf(state.changes, ChangeToJson)},
      {"callbacks", ArrayOf(state.callbacks,
                            [](const KpiCallback& c) -> json {
                              return {{"app", c.app},
                                      {"position", c.position},
                                      {"result", c.result},
                                      {"satisfaction", c.satisfaction},
                                      {"premature", c.premature},
                                      {"revision", c.revision}};
                            })},
      {"connections", ArrayOf(state.connections,
                              [](const KpiConnection& c) -> json {
                                return {{"app", c.app},
                                        {"position", c.position},
                                        {"contract_before", c.contract_before},
                                        {"revision", c.revision}};
                              })},
      {"report", state.report ? ReportToJson(*state.report) : json(nullptr)},
      {"document_reviews", ArrayOf(state.document_reviews, CheckToJson)},
      {"site_inspections", ArrayOf(state.site_inspections, CheckToJson)},
  };
  out["violations"] = ArrayOf(state.violations, [](const KpiViolation& v) -> json {
    return {{"app", v.app}, {"position", v.position}, {"rule", v.rule}, {"revision", v.revision}};
  });
  out["late"] = ArrayOf(state.late, [](const KpiLate& l) -> json {
    return {{"stream", l.stream},
            {"position", l.position},
            {"occurred_at_us", l.occurred_at_us},
            {"recorded_at_us", l.recorded_at_us},
            {"revision", l.revision}};
  });
  out["urges"] = ArrayOf(state.urges, [](const KpiUrge& u) -> json {
    return {{"app", u.app}, {"position", u.position}, {"level", u.level}, {"revision", u.revision}};
  });
  out["trainings"] = ArrayOf(state.trainings, [](const KpiTraining& t) -> json {
    return {{"stream", t.stream},
            {"position", t.position},
            {"hours", t.hours},
            {"attendees", t.attendees}};
  });
  out["revisions"] = ArrayOf(state.revisions, [](const KpiRevision& r) -> json {
    return {{"app", r.app}, {"position", r.position}, {"revision", r.revision}};
  });
  out["settled"] = ArrayOf(state.settled, [](const KpiSettled& v) -> json {
    return {{"app", v.app},   {"position", v.position},      {"date", v.date.ToString()},
            {"rule", v.rule}, {"settled_by", v.by_position}, {"revision", v.revision}};
  });
  return out;
}

}  // namespace gridledger::projections

// ---- Query ----

namespace gridledger::projections {
namespace {

using nlohmann::json;

struct Scope {
  std::set<std::string> months;
  std::optional<std::string> org;

  bool OrgMatches(const KpiState& state) const { return !org || state.org == *org; }
  bool InPeriod(const KpiState& state) const {
    return OrgMatches(state) && months.count(state.month) > 0;
  }
  bool InPeriod(domain::Date date) const { return months.count(MonthOf(date)) > 0; }
  // Whether the period's last month is `date`'s month or later.
  bool Reaches(domain::Date date) const {
    return !months.empty() && *months.rbegin() >= MonthOf(date);
  }
};

struct Ratio {
  std::vector<std::string> numerator_ids;
  std::vector<std::string> denominator_ids;
  std::vector<std::string> undetermined_ids;

  void Add(const std::string& id, bool in_numerator) {
    denominator_ids.push_back(id);
    if (in_numerator) numerator_ids.push_back(id);
  }
  // An item the calendar cannot judge: in neither the numerator nor the denominator (never a
  // guess either way), listed on its own.
  void AddUndetermined(const std::string& id) { undetermined_ids.push_back(id); }
};

json RatioJson(const Ratio& ratio) {
  const size_t denominator = ratio.denominator_ids.size();
  const size_t numerator = ratio.numerator_ids.size();
  return {{"numerator", numerator},
          {"denominator", denominator},
          {"value",
           denominator == 0 ? json(nullptr) : json(static_cast<double>(numerator) / denominator)},
          {"numerator_ids", ratio.numerator_ids},
          {"denominator_ids", ratio.denominator_ids}};
}

json KpiJson(std::string_view id, std::string_view name_zh, const Ratio& ratio, double target,
             std::string_view assessed_per) {
  json out = {{"id", id}, {"name_zh", name_zh}};
  out.update(RatioJson(ratio));
  out["target"] = target;
  // Met when the target is reached even if every undetermined item fails, not met when it is
  // missed even if every one passes; otherwise (or with nothing to judge) null.
  const double numerator = static_cast<double>(ratio.numerator_ids.size());
  const double undetermined = static_cast<double>(ratio.undetermined_ids.size());
  const double all = static_cast<double>(ratio.denominator_ids.size()) + undetermined;
  if (all == 0) {
    out["met"] = nullptr;
  } else if (numerator + kTargetEpsilon >= target * all) {
    out["met"] = true;
  } else if (numerator + undetermined + kTargetEpsilon < target * all) {
    out["met"] = false;
  } else {
    out["met"] = nullptr;
  }
  if (!ratio.undetermined_ids.empty()) out["undetermined_ids"] = ratio.undetermined_ids;
  out["assessed_per"] = assessed_per;
  return out;
}

// `met` as the standard assesses each KPI. A quarter-assessed KPI in a month's table: the figure is
// for information, met null. A month-assessed KPI in a quarter's table: its pooled figure, each
// month's under `by_month`, and met only if every month with something to judge met it (false if
// one did not; null while one is undetermined or none had anything).
void AssessPerPeriod(json& kpis, const std::vector<std::string>& months,
                     const std::function<json(const std::string&)>& month_table) {
  const bool quarter = months.size() > 1;
  std::vector<json> by_month;
  for (json& kpi : kpis) {
    const bool monthly = kpi.at("assessed_per") == "month";
    if (!quarter) {
      if (!monthly) {
        kpi["met"] = nullptr;
        kpi["note"] = "assessed per quarter: a month's figure is for information";
      }
      continue;
    }
    if (!monthly) continue;
    if (by_month.empty()) {
      for (const std::string& month : months) by_month.push_back(month_table(month));
    }
    json breakdown = json::array();
    bool any_false = false;
    bool any_null = false;
    bool any_true = false;
    for (size_t i = 0; i < months.size(); ++i) {
      for (const json& other : by_month[i].at("kpis")) {
        if (other.at("id") != kpi.at("id")) continue;
        breakdown.push_back({{"month", months[i]},
                             {"numerator", other.at("numerator")},
                             {"denominator", other.at("denominator")},
                             {"value", other.at("value")},
                             {"met", other.at("met")}});
        const json& met = other.at("met");
        const bool judged = other.at("denominator") != 0 || other.contains("undetermined_ids");
        if (met.is_boolean()) {
          (met.get<bool>() ? any_true : any_false) = true;
        } else if (judged) {
          any_null = true;
        }
      }
    }
    kpi["by_month"] = std::move(breakdown);
    kpi["met"] = any_false ? json(false) : (any_null || !any_true ? json(nullptr) : json(true));
  }
}

enum class Judgement { kMet, kNotMet, kUndetermined };

Judgement JudgeArchived(const KpiArchived& archived, const domain::WorkingCalendar& calendar,
                        const domain::SlaProfile& profile) {
  if (!archived.connected || !archived.violations.empty()) return Judgement::kNotMet;
  bool undetermined = false;
  for (const Clock& clock : archived.clocks) {
    if (!profile.LimitDays(clock.name, archived.customer_class)) continue;  // a "–" cell
    // Every clock of an archived application is closed, so the evaluation time is irrelevant.
    const ClockView view = Evaluate(clock, calendar, profile, archived.customer_class, 0);
    if (view.state == ClockState::kMet) continue;
    if (view.state != ClockState::kCalendarMissing) return Judgement::kNotMet;
    undetermined = true;
  }
  return undetermined ? Judgement::kUndetermined : Judgement::kMet;
}

Ratio Timeliness(const std::vector<const KpiState*>& states, const Scope& scope,
                 const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile) {
  Ratio ratio;
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiArchived& archived : state->archived) {
      const Judgement judgement = JudgeArchived(archived, calendar, profile);
      if (judgement == Judgement::kUndetermined) {
        ratio.AddUndetermined(archived.app);
      } else {
        ratio.Add(archived.app, judgement == Judgement::kMet);
      }
    }
  }
  return ratio;
}

void JudgeChange(const KpiChange& change, const Scope& scope,
                 const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                 std::optional<int64_t> as_of_us, Ratio& ratio) {
  if (change.executed) {
    if (!change.clock.end || !scope.InPeriod(*change.clock.end)) return;
    const ClockView view = Evaluate(change.clock, calendar, profile, change.customer_class, 0);
    if (view.state == ClockState::kCalendarMissing) {
      ratio.AddUndetermined(change.app);
    } else {
      ratio.Add(change.app, view.state == ClockState::kMet);
    }
    return;
  }
  if (change.withdrawn) return;
  const auto limit = profile.LimitDays(SlaClock::kChangeCompletion, change.customer_class);
  if (!limit) return;
  // An open pause that moves the deadline: not due while it lasts (ClockDeadline).
  const ClockDeadline due = DeadlineOf(change.clock, calendar, *limit, std::nullopt);
  if (due.moving) return;
  const domain::CalendarAnswer<domain::Date>& deadline = due.deadline;
  if (!deadline.ok()) {
    // The deadline may lie in the period only when the period reaches the earliest date it can
    // have (a pause begun in an unloaded year may leave it in the last loaded month).
    if (scope.Reaches(*due.not_before)) ratio.AddUndetermined(change.app);
    return;
  }
  if (!scope.InPeriod(*deadline.value)) return;
  if (as_of_us && !(*deadline.value < domain::LocalDateOf(*as_of_us))) return;  // not yet late
  ratio.Add(change.app, false);
}

Ratio ChangeCompletion(const std::vector<const KpiState*>& states, const Scope& scope,
                       const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile,
                       std::optional<int64_t> as_of_us) {
  Ratio ratio;
  for (const KpiState* state : states) {
    if (!scope.OrgMatches(*state) || !state->report_stream.empty()) continue;
    for (const KpiChange& change : state->changes) {
      JudgeChange(change, scope, calendar, profile, as_of_us, ratio);
    }
  }
  return ratio;
}

Ratio CallbackSatisfaction(const std::vector<const KpiState*>& states, const Scope& scope) {
  Ratio ratio;
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiCallback& callback : state->callbacks) {
      if (callback.result != "reached") continue;
      ratio.Add(callback.app,
                !callback.premature && (callback.satisfaction == "satisfied" ||
                                        callback.satisfaction == "basically_satisfied"));
    }
  }
  return ratio;
}

Ratio ContractSigning(const std::vector<const KpiState*>& states, const Scope& scope) {
  Ratio ratio;
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiConnection& connection : state->connections) {
      ratio.Add(connection.app, connection.contract_before);
    }
  }
  return ratio;
}

// report_on_time and report_accuracy.
// With `as_of_us`, a report not submitted whose due date is not yet past is not yet late (as
// change_completion's open changes).
std::pair<Ratio, Ratio> Reports(const std::vector<const KpiState*>& states, const Scope& scope,
                                std::optional<int64_t> as_of_us) {
  std::pair<Ratio, Ratio> ratios;
  for (const KpiState* state : states) {
    if (state->report_stream.empty() || !state->report || state->report->due_position == 0 ||
        !scope.InPeriod(*state)) {
      continue;
    }
    const KpiReport& report = *state->report;
    const bool submitted = report.submitted_date.has_value();
    if (!submitted && as_of_us && !(report.due_date < domain::LocalDateOf(*as_of_us))) continue;
    ratios.first.Add(state->report_stream, submitted && *report.submitted_date <= report.due_date);
    if (submitted) ratios.second.Add(state->report_stream, report.corrections == 0);
  }
  return ratios;
}

// ---- Supporting figures ----

// Apps connected in the period, and those of them found in `covered`.
Ratio ConnectedCoverage(const std::vector<const KpiState*>& states, const Scope& scope,
                        const std::set<std::string>& covered) {
  Ratio ratio;
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiConnection& connection : state->connections) {
      ratio.Add(connection.app, covered.count(connection.app) > 0);
    }
  }
  return ratio;
}

std::set<std::string> AppsWith(const std::vector<const KpiState*>& states, const Scope& scope,
                               bool callbacks) {
  std::set<std::string> apps;
  for (const KpiState* state : states) {
    if (!scope.OrgMatches(*state)) continue;
    if (callbacks) {
      for (const KpiCallback& c : state->callbacks) {
        if (c.result == "reached" && !c.premature) apps.insert(c.app);
      }
    } else {
      for (const KpiCheck& check : state->site_inspections) apps.insert(check.app);
    }
  }
  return apps;
}

json BackdatedJson(const std::vector<const KpiState*>& states, const Scope& scope,
                   const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile) {
  json positions = json::array();
  json undetermined = json::array();
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiLate& late : state->late) {
      const auto days = calendar.WorkingDaysIn(domain::LocalDateOf(late.occurred_at_us),
                                               domain::LocalDateOf(late.recorded_at_us));
      if (!days.ok()) {
        undetermined.push_back(late.position);
      } else if (*days.value > profile.backdating_tolerance_working_days()) {
        positions.push_back(late.position);
      }
    }
  }
  return {{"count", positions.size()}, {"positions", positions}, {"undetermined", undetermined}};
}

json ActivityJson(const std::vector<const KpiState*>& states, const Scope& scope) {
  json urge_ids = json::array();
  json urge_items = json::array();
  json training_items = json::array();
  double hours = 0;
  double person_hours = 0;
  size_t sessions = 0;
  json by_rule = json::object();
  json items = json::array();
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiUrge& urge : state->urges) {
      urge_ids.push_back(urge.app);
      urge_items.push_back({{"app", urge.app}, {"position", urge.position}, {"level", urge.level}});
    }
    for (const KpiTraining& training : state->trainings) {
      hours += training.hours;
      person_hours += training.hours * training.attendees;
      ++sessions;
      training_items.push_back({{"stream", training.stream},
                                {"position", training.position},
                                {"hours", training.hours},
                                {"attendees", training.attendees}});
    }
    for (const KpiViolation& v : state->violations) {
      by_rule[v.rule] = by_rule.value(v.rule, 0) + 1;
      items.push_back({{"app", v.app}, {"position", v.position}, {"rule", v.rule}});
    }
  }
  return {{"urges_issued", {{"count", urge_ids.size()}, {"ids", urge_ids}, {"items", urge_items}}},
          {"training_hours",
           {{"hours", hours},
            {"sessions", sessions},
            {"person_hours", person_hours},
            {"items", training_items}}},
          {"violations", {{"count", items.size()}, {"by_rule", by_rule}, {"items", items}}}};
}

// The violations on events of the period settled later (ApplySettlements read the period's items
// without them), whenever the settling event was recorded: what changed the period's figures.
json SettledJson(const std::vector<const KpiState*>& states, const Scope& scope) {
  json items = json::array();
  for (const KpiState* state : states) {
    if (!scope.OrgMatches(*state)) continue;
    for (const KpiSettled& v : state->settled) {
      if (!scope.InPeriod(v.date)) continue;
      items.push_back({{"app", v.app},
                       {"position", v.position},
                       {"date", v.date.ToString()},
                       {"rule", v.rule},
                       {"settled_by", v.by_position}});
    }
  }
  return {{"count", items.size()}, {"items", std::move(items)}};
}

json DocumentReviewPassRate(const std::vector<const KpiState*>& states, const Scope& scope) {
  Ratio ratio;
  json items = json::array();  // each review: the ids above repeat an application per review
  for (const KpiState* state : states) {
    if (!scope.InPeriod(*state)) continue;
    for (const KpiCheck& check : state->document_reviews) {
      ratio.Add(check.app, check.passed);
      items.push_back({{"app", check.app}, {"position", check.position}, {"passed", check.passed}});
    }
  }
  json out = RatioJson(ratio);
  out["items"] = std::move(items);
  return out;
}

json Supporting(const std::vector<const KpiState*>& states, const Scope& scope,
                const domain::WorkingCalendar& calendar, const domain::SlaProfile& profile) {
  json out = {
      {"callback_rate", RatioJson(ConnectedCoverage(states, scope, AppsWith(states, scope, true)))},
      {"document_review_pass_rate", DocumentReviewPassRate(states, scope)},
      {"site_inspection_coverage",
       RatioJson(ConnectedCoverage(states, scope, AppsWith(states, scope, false)))},
      {"backdated_events", BackdatedJson(states, scope, calendar, profile)},
  };
  out.update(ActivityJson(states, scope));
  out["settled_violations"] = SettledJson(states, scope);
  return out;
}

std::vector<const KpiState*> SortedByKey(const std::vector<KpiState>& states) {
  std::vector<std::pair<std::string, const KpiState*>> keyed;
  keyed.reserve(states.size());
  for (const KpiState& state : states) keyed.emplace_back(KeyOf(state), &state);
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const KpiState*> sorted;
  for (const auto& [key, state] : keyed) sorted.push_back(state);
  return sorted;
}

}  // namespace

namespace {

// Calls `visit(items, app_of)` for every list of `state` whose items belong to an application;
// `app_of(item)` is the item's application stream.
template <typename State, typename Visit>
void ForEachApplicationList(State& state, const Visit& visit) {
  const auto app = [](const auto& item) { return std::string_view(item.app); };
  visit(state.archived, app);
  visit(state.changes, app);
  visit(state.callbacks, app);
  visit(state.connections, app);
  visit(state.document_reviews, app);
  visit(state.site_inspections, app);
  visit(state.violations, app);
  visit(state.urges, app);
  visit(state.revisions, app);
  visit(state.settled, app);
  visit(state.late, [](const KpiLate& late) { return std::string_view(late.stream); });
}

}  // namespace

void KeepLatestRevisions(std::vector<const KpiState*>& states, std::deque<KpiState>& copies) {
  std::unordered_map<std::string_view, uint32_t> latest;
  for (const KpiState* state : states) {
    ForEachApplicationList(*state, [&latest](const auto& items, const auto& app_of) {
      for (const auto& item : items) {
        if (item.revision == 0) continue;
        uint32_t& seen = latest[app_of(item)];
        seen = std::max(seen, item.revision);
      }
    });
  }
  if (latest.empty()) return;
  const auto stale = [&latest](std::string_view app, uint32_t revision) {
    auto it = latest.find(app);
    return it != latest.end() && revision < it->second;
  };
  for (const KpiState*& state : states) {
    bool has_stale = false;
    ForEachApplicationList(*state, [&](const auto& items, const auto& app_of) {
      for (const auto& item : items) has_stale = has_stale || stale(app_of(item), item.revision);
    });
    if (!has_stale) continue;
    KpiState& copy = copies.emplace_back(*state);
    ForEachApplicationList(copy, [&stale](auto& items, const auto& app_of) {
      std::erase_if(items, [&](const auto& item) { return stale(app_of(item), item.revision); });
    });
    state = &copy;
  }
}

void ApplySettlements(std::vector<const KpiState*>& states, std::deque<KpiState>& copies) {
  std::set<std::tuple<std::string_view, uint64_t, std::string_view>> settled;
  for (const KpiState* state : states) {
    for (const KpiSettled& item : state->settled)
      settled.emplace(item.app, item.position, item.rule);
  }
  if (settled.empty()) return;
  const auto is = [&settled](std::string_view app, uint64_t position, std::string_view rule) {
    return settled.contains({app, position, rule});
  };
  const auto contract = [&is](const KpiConnection& c) {
    return !c.contract_before && is(c.app, c.position, "connected_without_contract");
  };
  const auto callback = [&settled](const KpiCallback& c) {
    if (!c.premature) return false;
    for (auto it = settled.lower_bound({c.app, c.position, std::string_view()});
         it != settled.end() && std::get<0>(*it) == c.app && std::get<1>(*it) == c.position; ++it) {
      if (IsPrematureCallbackRule(std::get<2>(*it))) return true;
    }
    return false;
  };
  const auto violation = [&is](const KpiViolation& v) { return is(v.app, v.position, v.rule); };
  for (const KpiState*& state : states) {
    if (std::none_of(state->connections.begin(), state->connections.end(), contract) &&
        std::none_of(state->callbacks.begin(), state->callbacks.end(), callback) &&
        std::none_of(state->violations.begin(), state->violations.end(), violation)) {
      continue;
    }
    KpiState& copy = copies.emplace_back(*state);
    for (KpiConnection& c : copy.connections) c.contract_before = c.contract_before || contract(c);
    for (KpiCallback& c : copy.callbacks) c.premature = c.premature && !callback(c);
    std::erase_if(copy.violations, violation);
    state = &copy;
  }
}

KpiOrgUnits KpiOrgUnitsOf(const std::vector<KpiState>& states, std::string_view period,
                          const std::string& org) {
  KpiOrgUnits units;
  const std::vector<std::string> months = PeriodMonths(period).value_or(std::vector<std::string>{});
  if (months.empty()) return units;
  std::set<std::string> below;
  for (const KpiState& state : states) {
    if (!units.known && domain::OrgWithin(state.org, org)) units.known = true;
    const bool in_period = std::find(months.begin(), months.end(), state.month) != months.end();
    const bool earlier_changes = !state.changes.empty() && state.month < months.front();
    if (!in_period && !earlier_changes) continue;
    if (state.org == org) {
      units.own = true;
    } else if (in_period && domain::OrgWithin(state.org, org)) {
      below.insert(state.org);
    }
  }
  units.below.assign(below.begin(), below.end());
  if (units.own || units.below.empty()) return units;
  std::string listed;
  for (const std::string& unit : units.below) listed += (listed.empty() ? "" : ", ") + unit;
  units.refusal = "KPI tables are per org unit and org " + org +
                  " has no KPI figures of its own in " + std::string(period) +
                  "; the org units below it with figures are " + listed +
                  ": ask for each of them (org=" + units.below.front() + ")";
  return units;
}

json KpiTable(const std::vector<KpiState>& states, std::string_view period,
              const std::optional<std::string>& org, const domain::WorkingCalendar& calendar,
              const domain::SlaProfile& profile, const KpiTargets& targets,
              std::optional<int64_t> as_of_us, KpiDetail detail) {
  const auto months = PeriodMonths(period);
  if (!months) return {{"error", "bad_period"}, {"period", period}};
  Scope scope;
  scope.months.insert(months->begin(), months->end());
  scope.org = org;
  std::vector<const KpiState*> sorted = SortedByKey(states);
  std::deque<KpiState> corrected_copies;
  KeepLatestRevisions(sorted, corrected_copies);
  ApplySettlements(sorted, corrected_copies);
  const auto [on_time, accuracy] = Reports(sorted, scope, as_of_us);
  json kpis = json::array();
  kpis.push_back(KpiJson("timeliness", "业扩报装时限达标率",
                         Timeliness(sorted, scope, calendar, profile), targets.timeliness,
                         "month"));
  kpis.push_back(KpiJson("change_completion", "客户变更用电业务完成率",
                         ChangeCompletion(sorted, scope, calendar, profile, as_of_us),
                         targets.change_completion, "month"));
  kpis.push_back(KpiJson("callback_satisfaction", "客户回访满意率",
                         CallbackSatisfaction(sorted, scope), targets.callback_satisfaction,
                         "month"));
  kpis.push_back(KpiJson("contract_signing", "供用电合同签定率", ContractSigning(sorted, scope),
                         targets.contract_signing, "quarter"));
  kpis.push_back(
      KpiJson("report_on_time", "报表按时上报率", on_time, targets.report_on_time, "month"));
  kpis.push_back(
      KpiJson("report_accuracy", "数据准确率", accuracy, targets.report_accuracy, "month"));
  if (detail == KpiDetail::kFull) {
    AssessPerPeriod(kpis, *months, [&](const std::string& month) {
      return KpiTable(states, month, org, calendar, profile, targets, as_of_us,
                      KpiDetail::kFiguresOnly);
    });
  }
  json table = {{"period", period},
                {"org", org ? json(*org) : json(nullptr)},
                {"months", *months},
                {"kpis", std::move(kpis)},
                {"supporting", Supporting(sorted, scope, calendar, profile)}};
  if (detail == KpiDetail::kFull) {
    // What the figures were judged by: the same events give other figures under another profile
    // or calendar, so a reported table names them (an auditor reproducing it needs both). Not in
    // the per-month tables made for by_month, nor monitoring's, which keep only figures.
    const std::optional<int> first_year = calendar.FirstLoadedYear();
    const std::optional<int> last_year = calendar.LastLoadedYear();
    table["basis"] = {{"sla_profile", {{"name", profile.name()}, {"source", profile.source()}}},
                      {"calendar",
                       {{"first_year", first_year ? json(*first_year) : json(nullptr)},
                        {"last_year", last_year ? json(*last_year) : json(nullptr)}}}};
  }
  return table;
}

}  // namespace gridledger::projections
