// The hash chain: hash = SHA-256(prev_hash || position (8 bytes, big-endian) || canonical envelope
// bytes with the hash field unset).
#pragma once

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

// The stored bytes of an envelope: its canonical Cap'n Proto encoding (one segment, no table).
std::string EncodeCanonical(schema::Envelope::Reader envelope);

}  // namespace gridledger::ledger::chain
