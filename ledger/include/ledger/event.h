// The values that go into and come out of the ledger.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/envelope.capnp.h"

namespace gridledger::ledger {

struct Actor {
  std::string id;
  std::string role;
  std::string org;

  bool operator==(const Actor&) const = default;
};

// One event as an appender hands it over. The ledger adds position, version, recorded_at and
// hashes.
struct NewEvent {
  std::string event_id;  // idempotency key, unique forever
  std::string type;
  int64_t occurred_at_us = 0;
  int32_t occurred_at_offset_minutes = 0;
  Actor actor;
  std::string payload;    // opaque bytes
  bool imported = false;  // a bulk import of a historical record, declared by the appender
  // Who submitted the event when that may not be `actor`: the principal behind a bulk import
  // (rows keep their original actors), or the user of ledgerctl writing to a data directory
  // itself. Not part of the event's content for idempotency: the same fact submitted again by
  // someone else is the same event (nothing is appended).
  std::optional<Actor> recorded_by;
};

// Expected version of a stream: the version of its last event, or kNoStream when it must not exist.
inline constexpr int64_t kNoStream = -1;

// Append one or more events to one stream, atomically: all are stored or none is.
struct AppendRequest {
  std::string stream;
  std::optional<int64_t> expected_version;  // nullopt: append whatever the current version is
  std::vector<NewEvent> events;
};

struct AppendedEvent {
  uint64_t position = 0;
  uint64_t version = 0;
  bool duplicate = false;  // true when this event_id was already stored with the same content
};

struct AppendResult {
  std::vector<AppendedEvent> events;  // one per request event, in request order
};

// An event as stored, decoded into owned values.
struct StoredEvent {
  uint64_t position = 0;
  std::string stream;
  uint64_t version = 0;
  std::string type;
  std::string event_id;
  int64_t occurred_at_us = 0;
  int32_t occurred_at_offset_minutes = 0;
  int64_t recorded_at_us = 0;
  Actor actor;
  std::string payload;
  bool imported = false;
  std::optional<Actor> recorded_by;
  std::string prev_hash;  // 32 raw bytes
  std::string hash;       // 32 raw bytes

  static StoredEvent FromEnvelope(schema::Envelope::Reader envelope);
  // The event's envelope in canonical Cap'n Proto form (one segment, no segment table), hash
  // included: what `ledgerctl read --envelopes` hands out, so that CheckEnvelope can recompute
  // the event's hash without the ledger.
  std::string CanonicalEnvelope() const;
};

// A stored event read in place; valid only for the duration of the callback that receives it.
class EventView {
 public:
  explicit EventView(schema::Envelope::Reader envelope) : envelope_(envelope) {}
  uint64_t position() const { return envelope_.getPosition(); }
  std::string_view stream() const { return AsView(envelope_.getStream()); }
  uint64_t version() const { return envelope_.getVersion(); }
  std::string_view type() const { return AsView(envelope_.getType()); }
  std::string_view payload() const {
    auto data = envelope_.getPayload();
    return {reinterpret_cast<const char*>(data.begin()), data.size()};
  }
  schema::Envelope::Reader envelope() const { return envelope_; }

 private:
  static std::string_view AsView(capnp::Text::Reader text) { return {text.begin(), text.size()}; }
  schema::Envelope::Reader envelope_;
};

// Lower-case hex of raw bytes (hashes in JSON and digests).
std::string ToHex(std::string_view bytes);
// The bytes of hex text (either case), or nullopt when it is not pairs of hex digits.
std::optional<std::string> FromHex(std::string_view hex);

// (position, hash): a commitment that history up to `position` is what it is. Hex-encoded hash.
struct Digest {
  uint64_t position = 0;
  std::string hash_hex;
};

}  // namespace gridledger::ledger
