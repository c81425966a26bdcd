// The read queries every front door answers (ledgerctl, ledgerd's HTTP API), in one place so both
// give the same JSON: one application's state as of a business or recorded time, the overdue
// clocks at a time, the KPI buckets as of a recorded time, and evidence. (KPI tables: kpi.h
// KpiTable.)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "ledger/ledger.h"
#include "projections/application.h"
#include "projections/engine.h"
#include "projections/report_orgs.h"

namespace gridledger::projections {

// A time argument of a query: "2026-03-10" (the last microsecond of that day in Asia/Shanghai) or
// RFC 3339; nullopt when neither.
std::optional<int64_t> ParseTimeArgument(std::string_view text);
// The same for a recorded time (as_of), where today's bare date means now (its end has not come,
// and what the ledger will know by then is not known yet).
std::optional<int64_t> ParseAsOfArgument(std::string_view text, int64_t now_us);
// Why an as_of after now is refused, for the CLI's and ledgerd's messages.
inline constexpr char kAsOfMustHavePassed[] =
    "what the ledger knew can only be asked for a time that has passed (a bare date means the end "
    "of that day, today's now; leave it out for what it knows now)";

// "XS-2026-000123" or "app/XS-2026-000123" → "app/XS-2026-000123".
std::string AppStream(const std::string& id);

// One application's state and clocks (ToJson plus "evaluated_at", and "as_of_position" with
// as_of). `at_us`: business time (events that occurred by then; evaluated then). `as_of_us`:
// recorded time (only events recorded by then); without `at_us` the view is evaluated at the
// as-of time — what the system showed then. nullopt when the application had no events by then.
ledger::Result<std::optional<nlohmann::json>> AppView(
    const ledger::Ledger& ledger, const std::string& stream, std::optional<int64_t> at_us,
    std::optional<int64_t> as_of_us, int64_t now_us, const domain::WorkingCalendar& calendar,
    const domain::SlaProfile& profile);

// What a front door answers when AppView found nothing: "no events of app/X", and with `timed`
// (an at or as_of asked) "no events of app/X by that time", so a replay of an application not
// yet begun is not read as one that never existed.
std::string AppNotFoundMessage(const std::string& stream, bool timed);

struct OverdueRow {
  std::string stream;
  std::string org;
  ClockView view;
};

// Clocks overdue at `at_us` as they stood at that time — the clocks AppView shows at that business
// time: ends, pauses and starts after it (on its own date too, read from `ledger`) had not
// happened — most escalated first; only those of the applications `orgs` covers. Reads the engine's
// stored states (bring it up to date first). Open clocks that cannot be judged at that time because
// they need a calendar year that is not loaded (state calendar_missing) are not overdue rows, never
// a guess: they go to `undetermined` when given, so that callers can say so.
ledger::Result<std::vector<OverdueRow>> OverdueAt(const ledger::Ledger& ledger,
                                                  const Engine& engine, int64_t at_us,
                                                  const ReportOrgs& orgs,
                                                  const domain::WorkingCalendar& calendar,
                                                  const domain::SlaProfile& profile,
                                                  std::vector<OverdueRow>* undetermined = nullptr);
nlohmann::json OverdueJson(const OverdueRow& row);

// The KPI buckets as they stood when the log ended at `position_max` (with
// Ledger::PositionAt(R): the table as it could be reported at recorded time R, before later
// entries and corrections). Every event up to there is folded again in memory, corrections
// applied as the Engine applies them (kpi.h, REVISIONS), so it reads the log from the start: a
// query for disputes, not dashboards. Memory: the buckets (as Engine::KpiStates) plus at most
// `applications_max` application states (more are folded again from their streams).
inline constexpr size_t kReplayApplicationsMax = 100'000;
ledger::Result<std::vector<KpiState>> KpiStatesAt(const ledger::Ledger& ledger,
                                                  uint64_t position_max,
                                                  size_t applications_max = kReplayApplicationsMax);

// The KPI table (kpi.h KpiTable) of `period` as it could be reported at recorded time `as_of_us`:
// the buckets of KpiStatesAt(Ledger::PositionAt(as_of)), judged at as_of. Adds "as_of" (RFC
// 3339, +08:00) and "as_of_position" to the table.
ledger::Result<nlohmann::json> KpiTableAsOf(const ledger::Ledger& ledger, std::string_view period,
                                            const std::optional<std::string>& org,
                                            const domain::WorkingCalendar& calendar,
                                            const domain::SlaProfile& profile, int64_t as_of_us);

}  // namespace gridledger::projections
