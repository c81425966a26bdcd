// ledgerctl commands that read projections: app, overdue, rebuild (and kpi / evidence).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.h"

namespace gridledger::cli {

// State of one application at business time `at` and/or as known at recorded time `as_of`.
int AppCommand(const DataOptions& options, const std::string& id,
               const std::optional<std::string>& at, const std::optional<std::string>& as_of,
               std::ostream& out);

// Every clock overdue at `at` (default now), optionally of one org, most escalated first.
int OverdueCommand(const DataOptions& options, const std::optional<std::string>& at,
                   const std::optional<std::string>& org, bool table, std::ostream& out);

// The KPI table of a period ("2026-03" or "2026-Q1"), as a table or JSON; with `as_of`, as it
// could be reported at that recorded time (replayed from the log).
int KpiCommand(const DataOptions& options, const std::string& period,
               const std::optional<std::string>& org, const std::optional<std::string>& as_of,
               bool json, std::ostream& out);

// The evaluation evidence (section 7.2) of one application.
int EvidenceCommand(const DataOptions& options, const std::string& id, std::ostream& out);
// `evidence --period P [--org O]`: the period's evaluation evidence (7.2) — coverage of document
// reviews, site inspections and callbacks, and the third-party surveys (EvidenceCoverage).
int EvidenceCoverageCommand(const DataOptions& options, const std::string& period,
                            const std::optional<std::string>& org, std::ostream& out);

// The readable forms of `overdue --table` (rows: projections::OverdueJson objects, `missing`: those
// of the clocks the calendar cannot judge, `at` as shown)
// and of `kpi` (a projections::KpiTable); also used for ledgerd's answers (http_commands.h).
void PrintOverdueTable(const nlohmann::json& rows, const nlohmann::json& missing,
                       std::string_view at, std::ostream& out);
void PrintKpiTable(const nlohmann::json& table, std::ostream& out);
// Never a silent gap in `overdue`: names on stderr the clocks ("stream/clock") the calendar cannot
// judge (load the missing year); nothing when there are none.
void SayCalendarMissing(const std::vector<std::string>& clocks);

// The staff audit of one staff member (actions, sensitive-data accesses and their approval,
// training hours, urges issued).
int StaffCommand(const DataOptions& options, const std::string& staff_id, std::ostream& out);

// Rebuilds every projection from position 1.
int RebuildCommand(const DataOptions& options, std::ostream& out);

}  // namespace gridledger::cli
