// JSON <-> Cap'n Proto mapping of the domain's events (../shared/domain.md, "Event contract").
//
// The ledger stores each event's `data` as the flat-array encoding of the Cap'n Proto struct named
// after its type (domain/schema/events.capnp). This header is the only way JSON enters or leaves
// that form. Thread-safe: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace gridledger::domain {

// Bounds on what a client event may hold. Anything larger is refused (rule bad_value or
// malformed_json), so one event can never exhaust memory or the stack.
inline constexpr size_t kEventJsonBytesMax = 1 << 20;  // one JSON event as text
inline constexpr int kJsonDepthMax = 16;               // nesting of objects/arrays in one event
inline constexpr size_t kTextBytesMax = 8192;          // one Text field or list element
inline constexpr size_t kListItemsMax = 256;           // elements of one list field
inline constexpr size_t kIdBytesMax = 64;              // a stream segment, actor.id, actor.org
inline constexpr size_t kEventIdBytesMax = 128;        // event_id
// An encoded payload: the ledger's own bound (ledger::kPayloadBytesMax, checked where both meet,
// in ingest/), so that a payload too large is refused here, naming `data`, and not by the ledger.
inline constexpr size_t kPayloadBytesMax = 64 * 1024;
static_assert(kTextBytesMax * 8 <= kPayloadBytesMax, "a few maximal texts must fit a payload");

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
  std::string payload;   // the type's Cap'n Proto struct, flat-array (single segment) encoded
  nlohmann::json extra;  // envelope keys outside the contract that callers may use (e.g. "import")
  // Who submits the event when that may not be `actor` (an importer: rows keep their own actors;
  // ledgerctl on a data directory). Set by the server from the authenticated principal or by
  // ledgerctl; never decoded from a client's JSON.
  std::optional<Actor> recorded_by;
};

// Why a JSON event was refused. `field` is a JSON path such as "data.customer_class" or
// "occurred_at"; `rule` is one of: malformed_json, unknown_type, unknown_field, missing_field,
// wrong_type, bad_timestamp, bad_value, bad_stream. List elements are addressed as
// "data.defects[2]", nested objects as "data.items[0].present". `field` is "" when the whole text
// is at fault (malformed_json).
struct DecodeError {
  std::string field;
  std::string rule;
  std::string message;  // one readable sentence naming the field and what was expected
};

template <typename T>
using Decoded = std::variant<T, DecodeError>;

// Parses one JSON event (one line of JSONL, or one element of a batch).
// Envelope: stream, type, event_id (1..128 printable ASCII, no space), expected_version (optional
// integer >= -1), occurred_at (RFC 3339), actor {id, role, org}, data (object), and the optional
// "import": true|false of bulk imports, which is copied to `extra`. `extra` is always an object.
// The text form also refuses duplicate keys, nesting deeper than kJsonDepthMax and texts longer
// than kEventJsonBytesMax (malformed_json); the parsed form refuses nesting deeper than
// kJsonDepthMax (it cannot see duplicate keys: parse with ParseClientJson).
// The payload is deterministic: equal `data` gives equal bytes (fields are written in schema order
// and the message is copied compactly into one segment).
Decoded<ClientEvent> DecodeClientEvent(std::string_view json_text);
// An actor id (or org, or one segment of a stream id): 1 to 64 of [A-Za-z0-9._:-].
bool IsActorId(std::string_view text);
// An org unit id as a report asks for it: an actor id whose dot-separated parts are all non-empty
// (KM.XS; not "KM.", ".KM" or "KM..XS", which no org unit can be).
bool IsOrgUnitId(std::string_view text);
// Whether org unit `org` is `top` or below it: org ids are dot-separated paths, so KM.XS and
// KM.XS.OPS are within KM, and KMX is not.
bool OrgWithin(std::string_view org, std::string_view top);
// Why a line or row whose bytes are not UTF-8 is refused: Chinese Windows tools save GBK by
// default, and the fix is to convert the file, not to look for a JSON or CSV error.
inline constexpr char kNotUtf8Text[] =
    "the text is not UTF-8 (save the file as UTF-8; GBK/GB18030 exports must be converted)";
Decoded<ClientEvent> DecodeClientEvent(const nlohmann::json& event);
// Text overloads: without them a std::string or string literal would be ambiguous, since
// nlohmann::json converts implicitly from strings. Both parse the text, like the string_view form.
inline Decoded<ClientEvent> DecodeClientEvent(const std::string& json_text) {
  return DecodeClientEvent(std::string_view(json_text));
}
inline Decoded<ClientEvent> DecodeClientEvent(const char* json_text) {
  return DecodeClientEvent(std::string_view(json_text));
}

// Parses client JSON text with the checks every door applies: nesting of at most `depth_max`
// levels, no key twice in one object (malformed_json otherwise, naming the key). For texts that
// are not one event, e.g. an HTTP batch (an array of events: kJsonDepthMax + 1).
Decoded<nlohmann::json> ParseClientJson(std::string_view text, int depth_max);

// Renders a stored payload back to the `data` JSON object of the contract (snake_case keys).
// Optional fields that were not given are omitted. Errors: unknown_type (field "type"); bad_value
// (field "payload") when the bytes are not a valid flat-array message of that type.
Decoded<nlohmann::json> PayloadToJson(std::string_view type, std::string_view payload);
// The inverse: encodes a `data` object as the payload of `type`, with the checks of a client
// event's `data` (errors name "data.<key>"), into the same deterministic bytes.
Decoded<std::string> PayloadFromJson(std::string_view type, const nlohmann::json& data);

// Rules between the fields of an ApplicationAccepted's `data` that the front door applies to a
// new acceptance, and to an acceptance as a new correction would leave it (the ingestor): a
// change_kind exactly for business change, three_zero only for a low-voltage class, voltage_kv
// above 0. Not part of PayloadFromJson: a correction stored before these rules still applies as
// it did (what the folds make of stored events does not change). Errors name "data.<key>".
std::optional<DecodeError> CheckAcceptanceRules(const nlohmann::json& data);

// True when `type` is one of the event types of domain.md.
bool IsKnownType(std::string_view type);

// Every event type, in schema (registry) order.
std::vector<std::string> KnownTypes();

// The stream kind a type is appended to: "app", "report", "survey" or "staff"; "" when unknown.
std::string_view StreamKindOfType(std::string_view type);

// The JSON value one `data` key of an event type takes, for tools that build `data` from flat
// text (the CSV importer): a JSON string (text or enum name), true/false, or anything else
// (numbers, lists, objects, and texts holding a JSON object).
enum class DataValueKind { kString, kBool, kOther };
struct DataField {
  std::string key;  // as in the JSON event, e.g. "customer_class"
  DataValueKind kind;
};
// The `data` keys of `type` in schema order (presence companions are not keys); empty when the
// type is unknown.
std::vector<DataField> DataFieldsOf(std::string_view type);

// True for "YYYY-MM-DD" naming a real calendar date (year 0001..9999), as used by due_date.
bool IsCalendarDate(std::string_view text);

// RFC 3339 helpers used for occurred_at / recorded_at ("2026-03-02T09:15:00+08:00").
// Parse returns nullopt on anything that is not a full date-time with seconds and an offset (or Z):
// upper-case 'T' and 'Z' only, seconds 00..59 (no leap second), 1..6 fraction digits, offsets up to
// ±23:59. Format always writes "±HH:MM" (so UTC is "+00:00"), and ".ffffff" only when the
// microseconds are not zero: "2026-03-02T09:15:00+08:00", "2026-03-02T01:15:00.250000+00:00".
struct Timestamp {
  int64_t unix_us = 0;
  int32_t offset_minutes = 0;
};
std::optional<Timestamp> ParseTimestamp(std::string_view text);
std::string FormatTimestamp(int64_t unix_us, int32_t offset_minutes);

}  // namespace gridledger::domain
