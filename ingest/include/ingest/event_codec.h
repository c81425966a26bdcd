// The bridge between the domain's JSON contract and the ledger's envelopes, used by every front
// door (ledgerctl, ledgerd): a decoded client event becomes an AppendRequest; a stored event
// becomes the JSON clients read back (envelope fields plus `data`).
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <vector>

#include "domain/calendar.h"
#include "domain/correction.h"
#include "domain/event_json.h"
#include "domain/workflow.h"
#include "ledger/event.h"
#include "ledger/status.h"

namespace gridledger::ingest {

// Business time is shown in the center's zone, Asia/Shanghai (UTC+8, no daylight saving).
inline constexpr int32_t kLocalOffsetMinutes = domain::kShanghaiUtcOffsetMinutes;

// One client event as a one-event append to its stream.
ledger::AppendRequest ToAppendRequest(domain::ClientEvent event);

// The record of a read of personal data (`what`, e.g. "app/XS-2026-000123") by `reader`:
// SensitiveDataAccessed on staff/<reader id>, occurred now, with `approved_by` when not empty and a
// random event id. An error only for an id that cannot name a staff stream.
domain::Decoded<domain::ClientEvent> PersonalDataReadEvent(const domain::Actor& reader,
                                                           std::string_view what,
                                                           std::string_view approved_by,
                                                           int64_t now_us);

// One stream's stored events as corrections see them (domain/correction.h; views into `events`).
std::vector<domain::CorrectableEvent> Correctable(const std::vector<ledger::StoredEvent>& events);

// {"position", "stream", "version", "type", "event_id", "occurred_at", "recorded_at", "actor",
//  "data", "prev_hash", "hash"}. A payload that no longer decodes is shown as
//  "data": null with "data_error" naming why — reads never fail on one bad payload.
nlohmann::ordered_json StoredEventToJson(const ledger::StoredEvent& event);

// {"ok": false, "error": {"code", "message", ...}} bodies, shared by CLI and server.
nlohmann::ordered_json ErrorJson(const domain::DecodeError& error);
nlohmann::ordered_json ErrorJson(const ledger::Status& status);
// A workflow rule's refusal: {"code":"invalid","field":…,"rule":…,"message":…}; the field is the
// event's occurred_at, data (a Corrected) or type (a step that may not come now).
nlohmann::ordered_json ErrorJson(const ledger::Status& status, const domain::RuleBreach& rule);

}  // namespace gridledger::ingest
