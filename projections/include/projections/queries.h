// The read queries every front door answers (ledgerctl, ledgerd's HTTP API), in one place so both
// give the same JSON: one application's state as of a business or recorded time, the overdue
// clocks at a time, and evidence. (KPI tables: kpi.h KpiTable.)
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

namespace gridledger::projections {

// A time argument of a query: "2026-03-10" (the last microsecond of that day in Asia/Shanghai) or
// RFC 3339; nullopt when neither.
std::optional<int64_t> ParseTimeArgument(std::string_view text);

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

struct OverdueRow {
  std::string stream;
  std::string org;
  ClockView view;
};

// Clocks overdue at `at_us` as they stood at that time — the clocks AppView shows at that business
// time: ends, pauses and starts after it (on its own date too, read from `ledger`) had not
// happened — most escalated first; only `org`'s when given. Reads the engine's stored states
// (bring it up to date first). Open clocks that cannot be judged at that time because they need a
// calendar year that is not loaded (state calendar_missing) are not overdue rows, never a guess:
// they go to `undetermined` when given, so that callers can say so.
ledger::Result<std::vector<OverdueRow>> OverdueAt(
    const ledger::Ledger& ledger, const Engine& engine, int64_t at_us,
    const std::optional<std::string>& org, const domain::WorkingCalendar& calendar,
    const domain::SlaProfile& profile, std::vector<OverdueRow>* undetermined = nullptr);
nlohmann::json OverdueJson(const OverdueRow& row);

}  // namespace gridledger::projections
