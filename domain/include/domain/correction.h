// Corrections: `Corrected` {corrects_position, reason, fields{}} is the only way to fix a mistake
// in a stored event (../shared/domain.md, "Event contract"). The stored event never changes; every
// reader that folds an application applies the corrections among its events, so the state, the
// clocks, the KPIs and the evidence read as if the event had been entered right.
//
// Rules (decisions beyond domain.md):
// - `fields` names `data` keys of the corrected event's type with their new values, and/or
//   "occurred_at" (RFC 3339) for when it happened. Nothing else can be corrected: stream, type,
//   actor, event_id and recorded_at are what the ledger witnessed, not what staff entered
//   (rule correction_field).
// - Keys not named keep their values; null removes an optional key. The result must be a valid
//   `data` of the type, checked as a new event's is (rule correction_value, naming the key), and
//   occurred_at must not lie after the corrected event's recorded_at by more than
//   kFutureToleranceUs (rule correction_value).
// - A Corrected cannot itself be corrected: correct the original event again (rule
//   correction_of_correction). Later corrections of one event apply on top of earlier ones.
// - The corrected event must be an earlier event of the same application (rule correction_target,
//   judged by the ingestor, which knows the stream's positions).
// - Only a role that may record the corrected event's type may correct it (domain/roles.h; rule
//   correction_role): a clerk cannot turn the inspection or callback that judged her work, or a
//   director's urge, into another. Judged by ApplyCorrections too, so a correction stored past a
//   front door without the rule (before it existed, or by a tool without a token) does not count.
// - The application's events before it, with the correction applied, must still be valid by the
//   workflow rules (rule correction_invalid, e.g. business new_install → change after a
//   SchemeReplied). Violations may appear or go: they are facts about the corrected data. Judged
//   by ApplyCorrections, so the ingestor and every fold refuse the same corrections (also ones
//   stored before this rule, or past a bypassed front door).
//
// Thread-safety: pure functions. Nothing throws.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/event_json.h"
#include "domain/workflow.h"

namespace gridledger::domain {

// How far an occurred_at may lie after the time it is recorded (clients' clocks drift): the
// ingestor's bound on new events, and a corrected occurred_at's on the corrected event's
// recorded_at.
inline constexpr int64_t kFutureToleranceUs = int64_t{5} * 60 * 1000 * 1000;

// One stored event as corrections see it: views into the caller's storage.
struct CorrectableEvent {
  uint64_t position = 0;
  std::string_view type;
  std::string_view payload;
  int64_t occurred_at_us = 0;
  int64_t recorded_at_us = 0;
  std::string_view actor_role = {};  // "" when not known: correction_role is not judged
};

// What a correction leaves of an event: its payload and occurred_at as corrected.
struct CorrectedValues {
  std::string payload;
  int64_t occurred_at_us = 0;
  bool operator==(const CorrectedValues&) const = default;
};

// The Corrected payload's fields: {corrects_position, reason, fields (compact JSON text)}.
struct CorrectionRequest {
  uint64_t corrects_position = 0;
  std::string reason;
  std::string fields;  // a JSON object
};
// nullopt when `payload` is not a readable Corrected.
std::optional<CorrectionRequest> ReadCorrection(std::string_view payload);

// The refusal (correction_value) of a correction that would leave the `type` event at `position`
// not valid, as `error` (naming "data.<key>") says: said of Corrected.fields.<key>.
RuleBreach CorrectedValueBreach(const DecodeError& error, std::string_view type, uint64_t position);

// Applies `fields` (a JSON object as text) to `target` as it stands (after earlier corrections).
// Errors: correction_of_correction, correction_field, correction_value.
std::variant<CorrectedValues, RuleBreach> ApplyCorrection(const CorrectableEvent& target,
                                                          std::string_view fields);

// Whether a correction changes what the workflow rules and the projections read of the event:
// its time, its workflow fields (DecodeWorkflowEvent), or anything of a document review, site
// inspection or callback (the KPI and evidence projections read their payloads). A customer's
// name or capacity, say, does not: such a correction is recorded, and nothing is folded again.
bool ChangesFacts(const CorrectableEvent& before, const CorrectedValues& after);

// Why a Corrected naming `corrects_position` is refused when that is not an earlier event of its
// application (rule correction_target).
RuleBreach CorrectionTargetBreach(uint64_t corrects_position);

// Every correction among one application's events, applied in position order.
struct AppliedCorrections {
  // The final values of each corrected event, by its position.
  std::map<uint64_t, CorrectedValues> values;
  // Corrected events that could not be applied (a bypassed front door, an old import), by their
  // position, with the rule: correction_target, correction_role, correction_invalid, or one of
  // ApplyCorrection's.
  std::map<uint64_t, RuleBreach> refused;
  uint32_t applied = 0;  // Corrected events applied
  // The applied ones that change facts (ChangesFacts); the others only fix what no fold reads.
  std::set<uint64_t> changing_facts;
};
// `events`: one stream's events in position order (a prefix of it is fine). A Corrected applies
// to an earlier event in `events`; one naming anything else is refused (correction_target).
AppliedCorrections ApplyCorrections(const std::vector<CorrectableEvent>& events);

}  // namespace gridledger::domain
