// The staff-audit projection: what each staff member did, for auditors (../shared/domain.md
// "Roles"; job standard 4.3: never disclose important company information without approval).
//
// Per staff id (actor.id): the number of events they appended, by type; their sensitive-data
// accesses (SensitiveDataAccessed; one without an approval by someone else is flagged as a 4.3.4
// risk: disclosure without approval); training hours (TrainingHeld: its hours go to the organizer,
// the actor, and to every attendee, once per person); urges issued (Urged they appended), as
// corrected (a Corrected of one reaches the audit of the person who urged).
//
// KEY: staff-audit/<staff id> (StaffAuditKey). One event touches the actor's state and, for
// TrainingHeld, each attendee's, and for a Corrected of an urge, the urger's (StaffAuditKeysOf).
// Folds take the actor id beside the record (the Engine passes record.actor_id); the
// ledger::StoredEvent / EventView overloads read it themselves. The Engine stores a state split
// into a head and list items under the key (split_state.h).
//
// Thread-safety: values only; nothing here does I/O or reads a clock. Nothing throws.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ledger/event.h"
#include "projections/application.h"

namespace gridledger::projections {

// The clause an access without approval puts at risk.
inline constexpr std::string_view kUnapprovedAccessRisk = "4.3.4";

struct SensitiveAccess {
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  std::string stream;  // staff/<id> it was recorded on
  std::string what;
  std::optional<std::string> approved_by;  // as given; nullopt: none (see Approved)
  bool operator==(const SensitiveAccess&) const = default;
};

// Whether an access by `staff_id` was approved: approved_by names someone, and not `staff_id`
// (job standard 4.3.4 asks for a superior's consent; a blank name or one's own is none). An
// access not approved is a 4.3.4 risk.
bool Approved(const SensitiveAccess& access, std::string_view staff_id);

struct TrainingRecord {
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  std::string topic;
  double hours = 0;
  bool organizer = false;  // the actor of TrainingHeld (else an attendee)
  bool operator==(const TrainingRecord&) const = default;
};

struct UrgeIssued {
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  std::string app;  // app/<id>
  int level = 0;
  std::string to_org;
  std::string to_person;
  bool operator==(const UrgeIssued&) const = default;
};

// A Corrected of one of this person's urges (by anyone allowed to: ingest/auth.cc), with the urge
// as it stands after it. Kept as its own list (the lists only grow; split_state.h), and applied
// to `urges` when shown (ToJson), so the audit says what the application says of the urge.
struct UrgeCorrection {
  uint64_t position = 0;           // of the Corrected
  uint64_t corrects_position = 0;  // of the Urged
  std::string corrected_by;        // the Corrected's actor id
  int64_t occurred_at_us = 0;      // the urge's, as corrected
  int level = 0;
  std::string to_org;
  std::string to_person;
  bool operator==(const UrgeCorrection&) const = default;
};

struct StaffAuditState {
  std::string staff_id;
  uint64_t last_position = 0;
  uint64_t actions_total = 0;
  std::map<std::string, uint64_t, std::less<>> actions_by_type;  // event type → events appended
  std::vector<SensitiveAccess> accesses;
  std::vector<TrainingRecord> trainings;
  double training_hours = 0;  // sum of trainings[].hours
  std::vector<UrgeIssued> urges;
  std::vector<UrgeCorrection> urge_corrections;

  bool operator==(const StaffAuditState&) const = default;
};

std::string StaffAuditKey(std::string_view staff_id);  // "staff-audit/<id>"
std::string KeyOf(const StaffAuditState& state);

// The keys of the states `event` appended by `actor_id` changes: the actor's, for TrainingHeld
// every attendee's, and for a Corrected of an urge the urger's (without duplicates). `app_after`:
// the application with `event` folded (the Engine's), or nullptr for an event of no application.
std::vector<std::string> StaffAuditKeysOf(const EventRecord& event, std::string_view actor_id,
                                          const ApplicationState* app_after = nullptr);
// The same into `keys` (cleared first), reusing its memory.
void StaffAuditKeysOf(const EventRecord& event, std::string_view actor_id,
                      std::vector<std::string>& keys, const ApplicationState* app_after = nullptr);

// Folds the part of `event` (appended by `actor_id`) that concerns state.staff_id, which must be
// set (REQUIRES: !state.staff_id.empty()). `app_after`: the application with `event` folded, as
// for StaffAuditKeysOf; a Corrected of an urge applied there is listed in the urger's
// urge_corrections (without it, it counts as the corrector's action only). Pure and deterministic;
// position order.
void Fold(StaffAuditState& state, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after);
void Fold(StaffAuditState& state, const ledger::StoredEvent& event,
          const ApplicationState* app_after);
void Fold(StaffAuditState& state, const ledger::EventView& event,
          const ApplicationState* app_after);

// Deterministic bytes (MessagePack of ToJson): equal states give equal bytes.
std::string Encode(const StaffAuditState& state);
std::optional<StaffAuditState> DecodeStaffAuditState(std::string_view bytes);
// {staff_id, last_position, actions_total, actions_by_type{}, accesses[{position, occurred_at,
//  occurred_at_us, stream, what, approved_by (null when none), approved, risk (null or "4.3.4")}],
//  unapproved_accesses, trainings[], training_hours, urges[{position, occurred_at, occurred_at_us,
//  app, level, to_org, to_person — as corrected —, corrections[{position, by}]}], urges_issued}.
nlohmann::json ToJson(const StaffAuditState& state);

}  // namespace gridledger::projections
