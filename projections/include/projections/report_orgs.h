// Which applications a report covers (projections/queries.h OverdueAt, evidence.h
// EvidenceCoverage). Values only; nothing here does I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/event_json.h"

namespace gridledger::projections {

// The applications a report (overdue list, a period's evidence) covers: every org's (no `org`),
// an org unit's own, or with `units_below` also those of the units below it (domain::OrgWithin:
// a director's view of its org).
struct ReportOrgs {
  std::optional<std::string> org;
  bool units_below = false;
  bool Covers(std::string_view app_org) const {
    if (!org) return true;
    return units_below ? domain::OrgWithin(app_org, *org) : app_org == *org;
  }
};

}  // namespace gridledger::projections
