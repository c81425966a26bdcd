// Standard Cap'n Proto stream framing, shared by ledgerd's TCP front door (server/tcp_server.cc)
// and the client library (client/client.cc): the segment table written before a message, and what
// the first bytes of a receive buffer say about the frame starting there.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>
#include <kj/common.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gridledger::protocol {

static_assert(std::endian::native == std::endian::little, "the framing is little-endian");

inline constexpr size_t kFrameWordBytes = sizeof(capnp::word);

// The segment table of a message with these segments: segment count - 1, then each size in words,
// padded to a whole word. Its size in bytes is `table.size() * sizeof(uint32_t)`.
inline std::vector<uint32_t> SegmentTable(
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  std::vector<uint32_t> table((segments.size() + 2) & ~size_t{1}, 0);
  table[0] = static_cast<uint32_t>(segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) {
    table[i + 1] = static_cast<uint32_t>(segments[i].size());
  }
  return table;
}

struct FramePrefix {
  enum class State { kIncomplete, kComplete, kTooLarge, kMalformed } state = State::kIncomplete;
  size_t bytes = 0;  // the whole frame, once its segment table is in (0 before)
};

// Reads the segment table at `data` (`available` bytes received so far). More than
// `segments_max` segments is malformed; a frame over `frame_bytes_max` is too large.
inline FramePrefix ParseFramePrefix(const kj::byte* data, size_t available, size_t frame_bytes_max,
                                    size_t segments_max) {
  using State = FramePrefix::State;
  auto load = [&](size_t index) {
    uint32_t value = 0;
    std::memcpy(&value, data + index * sizeof(uint32_t), sizeof(value));
    return value;
  };
  if (available < kFrameWordBytes) return {};
  const size_t segments = size_t{load(0)} + 1;
  if (segments > segments_max) return {State::kMalformed, 0};
  const size_t table_bytes = (segments + 2) / 2 * kFrameWordBytes;
  if (available < table_bytes) return {};
  uint64_t bytes = table_bytes;
  for (size_t i = 0; i < segments; ++i) bytes += uint64_t{load(i + 1)} * kFrameWordBytes;
  if (bytes > frame_bytes_max) return {State::kTooLarge, static_cast<size_t>(bytes)};
  if (available < bytes) return {State::kIncomplete, static_cast<size_t>(bytes)};
  return {State::kComplete, static_cast<size_t>(bytes)};
}

}  // namespace gridledger::protocol
