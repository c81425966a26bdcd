// The hash chain: hash = SHA-256(prev_hash || position (8 bytes, big-endian) || canonical envelope
// bytes with the hash field unset).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <capnp/message.h>

#include "ledger/envelope.capnp.h"

namespace gridledger::ledger::chain {

// 32 zero bytes: the prev_hash of position 1.
const std::string& GenesisHash();

// The hash of `envelope` given its prev_hash and position fields. `envelope`'s hash field is
// ignored.
std::string ComputeHash(schema::Envelope::Reader envelope);
// The same for an envelope whose hash field is not set yet (the write path): no copy is needed.
// REQUIRES: !envelope.hasHash().
std::string ComputeHashOfUnhashed(schema::Envelope::Reader envelope);

// An order-independent digest of a set of (key, value) entries, such as an index: the sum mod
// 2^256 of SHA-256(key size || key || value) over them (a multiset hash). Two sets give equal
// digests when they hold the same entries; changing, adding or removing one changes it.
class EntrySetDigest {
 public:
  void Add(std::string_view key, std::string_view value);
  bool operator==(const EntrySetDigest&) const = default;

 private:
  std::array<uint64_t, 4> sum_{};
};

// The stored bytes of an envelope: its canonical Cap'n Proto encoding (one segment, no table).
std::string EncodeCanonical(schema::Envelope::Reader envelope);

}  // namespace gridledger::ledger::chain
