// JSON <-> Cap'n Proto mapping of the domain's events (../shared/domain.md, "Event contract").
//
// The ledger stores each event's `data` as the flat-array encoding of the Cap'n Proto struct named after
// its type (domain/schema/events.capnp). This header is the only way JSON enters or leaves that form.
// Thread-safe: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace gridledger::domain {

struct Actor {
  std::string id;
  std::string role;
  std::string org;
};

// An event as a client sends it, decoded and validated against the schema of its type.
struct ClientEvent {
  std::string stream;
  std::string type;
  std::string event_id;
  std::optional<int64_t> expected_version;  // -1 = the stream must not exist yet
  int64_t occurred_at_us = 0;               // Unix time in microseconds (UTC)
  int32_t occurred_at_offset_minutes = 0;   // the UTC offset the client wrote, kept for display
  Actor actor;
  std::string payload;  // the type's Cap'n Proto struct, flat-array (single segment) encoded
  nlohmann::json extra;  // envelope keys outside the contract that callers may use (e.g. "import")
};

// Why a JSON event was refused. `field` is a JSON path such as "data.customer_class" or "occurred_at";
// `rule` is one of: malformed_json, unknown_type, unknown_field, missing_field, wrong_type,
// bad_timestamp, bad_value, bad_stream.
struct DecodeError {
  std::string field;
  std::string rule;
  std::string message;  // one readable sentence naming the field and what was expected
};

template <typename T>
using Decoded = std::variant<T, DecodeError>;

// Parses one JSON event (one line of JSONL, or one element of a batch).
Decoded<ClientEvent> DecodeClientEvent(std::string_view json_text);
Decoded<ClientEvent> DecodeClientEvent(const nlohmann::json& event);

// Renders a stored payload back to the `data` JSON object of the contract (snake_case keys).
Decoded<nlohmann::json> PayloadToJson(std::string_view type, std::string_view payload);

// True when `type` is one of the event types of domain.md.
bool IsKnownType(std::string_view type);

// RFC 3339 helpers used for occurred_at / recorded_at ("2026-03-02T09:15:00+08:00").
// Parse returns nullopt on anything that is not a full date-time with seconds and an offset (or Z).
struct Timestamp {
  int64_t unix_us = 0;
  int32_t offset_minutes = 0;
};
std::optional<Timestamp> ParseTimestamp(std::string_view text);
std::string FormatTimestamp(int64_t unix_us, int32_t offset_minutes);

}  // namespace gridledger::domain
