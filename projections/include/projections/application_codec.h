// Stored form of ApplicationState in the projection store: a compact binary record (grammar in
// projections/byte_codec.h):
//   version:u8 (kApplicationCodecVersion) stream:string org:string
//   facts: business:u8 customer_class:u8 flags:varint (bit i = i-th flag, see the .cc)
//   last_position:varint events_applied:varint revision:varint accepted_date:optional<svarint days>
//   milestones: 4 × optional<days:svarint position:varint> (scheme_replied, fees_settled,
//     contract_signed, completion_passed)
//   clocks: count, then name:u8 attempt:svarint start:svarint end:optional<svarint>
//     start_position:varint end_position:varint stopped_by:optional<u8> pauses:count ×
//     (from:svarint to:optional<svarint> from_position:varint to_position:varint)
//   violations, late_records, urges, corrections, rejected: count, then their fields in
//     declaration order (strings, varints, svarints, optional strings, dates as svarint days); a
//     correction's fields are its JSON text.
//   pauses (the application's): count × (from to from_position to_position) as a clock's.
//   settled: count × (violation as above, by_position:varint by_type:string by_date:svarint).
// Field order is the format: append fields only, and bump kApplicationCodecVersion on any other
// change. Deterministic: equal states give equal bytes, so two rebuilds can be compared byte for
// byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "projections/application.h"

namespace gridledger::projections {

// 1 was MessagePack of a positional JSON array; 2 the binary record above without revision and
// correction fields; 3 without the application's own pauses; 4 without violation dates and
// settled violations; 5 is the record above.
inline constexpr int kApplicationCodecVersion = 5;

std::string EncodeApplication(const ApplicationState& state);
// Appends the encoding to `out` (no allocation when `out` has room).
void EncodeApplicationTo(const ApplicationState& state, std::string& out);
// nullopt when the bytes are not a state of this codec version.
std::optional<ApplicationState> DecodeApplication(std::string_view bytes);

}  // namespace gridledger::projections
