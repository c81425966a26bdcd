// On-disk key layout. The grammar and its rationale are in ledger/FORMAT.md; keep the two in step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gridledger::ledger::format {

// Bumped on any incompatible change of keys or values; Open refuses other versions.
inline constexpr uint32_t kFormatVersion = 1;

inline constexpr char kEventsFamily[] = "events";
inline constexpr char kStreamsFamily[] = "streams";
inline constexpr char kIdsFamily[] = "ids";
inline constexpr char kMetaFamily[] = "meta";

inline constexpr char kMetaFormatVersionKey[] = "format_version";
inline constexpr char kMetaHeadKey[] = "head";

// A stream id never contains this byte, so stream keys sort by stream, then version.
inline constexpr char kStreamSeparator = '\0';

inline void PutBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}

inline uint64_t GetBigEndian64(std::string_view in) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(in[i]);
  return value;
}

// events: position (8 bytes, big-endian)
inline std::string EventKey(uint64_t position) {
  std::string key;
  key.reserve(8);
  PutBigEndian64(&key, position);
  return key;
}

// streams: stream id, 0x00, version (8 bytes, big-endian)
inline std::string StreamKey(std::string_view stream, uint64_t version) {
  std::string key;
  key.reserve(stream.size() + 9);
  key.append(stream);
  key.push_back(kStreamSeparator);
  PutBigEndian64(&key, version);
  return key;
}

inline std::string StreamPrefix(std::string_view stream) {
  std::string prefix(stream);
  prefix.push_back(kStreamSeparator);
  return prefix;
}

// meta/head value: position (8 bytes, big-endian) followed by the 32-byte hash at that position.
inline std::string HeadValue(uint64_t position, std::string_view hash) {
  std::string value;
  value.reserve(8 + hash.size());
  PutBigEndian64(&value, position);
  value.append(hash);
  return value;
}

}  // namespace gridledger::ledger::format
