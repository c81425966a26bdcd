// Who records each event type (../shared/domain.md "Roles"; job standard 7.2: the reviews,
// inspections and callbacks that assess the clerks are not recorded by them). ingest/auth.h judges
// appends by it; domain/correction.h judges corrections by it (only a role that may record a type
// may correct an event of it), so the front door and every fold refuse the same corrections.
//
// Thread-safety: constants and pure functions. Nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace gridledger::domain {

// The roles an actor may carry, in this order (bit i of a RoleBits is kRoleNames[i]).
inline constexpr std::array<std::string_view, 7> kRoleNames = {
    "clerk", "inspector", "callback_agent", "director", "auditor", "reader", "admin"};
using RoleBits = uint8_t;
inline constexpr RoleBits kAllRoles = (1u << kRoleNames.size()) - 1;
// The bit of `role`; 0 for a name that is not a role.
RoleBits RoleBit(std::string_view role);
// "inspector and director", "clerk, inspector and director"; "no role" for 0.
std::string RoleList(RoleBits roles);

struct RecordingRule {
  std::string_view type;
  RoleBits roles;                 // who may record it
  std::string_view why_reserved;  // why the others may not: said when one tries
};
// The rule of `type`; nullptr for SensitiveDataAccessed (each role records its own reads, and
// only its own: ingest/auth.cc) and for names that are not types.
const RecordingRule* RecordingRuleOf(std::string_view type);
// Whether `role` may record events of `type` by its rule (false without one).
bool RoleRecords(std::string_view role, std::string_view type);
// Whether `role` may correct an event of `type` (domain/correction.h, rule correction_role): it
// records that type, or the type has no rule, or the role is not known ("": not judged).
bool MayCorrect(std::string_view role, std::string_view type);

}  // namespace gridledger::domain
