// Internal to projections/: the building blocks of the stored state formats.
//
// Grammar of every value (all projection codecs use only these):
//   u8       one byte
//   varint   unsigned LEB128, at most 10 bytes
//   svarint  zigzag-encoded signed varint
//   string   varint length, then the bytes
//   double   8 bytes, the IEEE-754 bit pattern, little endian
//   optional u8 0 (absent) or 1, then the value
// Deterministic: equal values give equal bytes. Readers never throw; a malformed input clears ok()
// and every later read returns a default value.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "domain/calendar.h"

namespace gridledger::projections::codec {

inline constexpr size_t kVarintBytesMax = 10;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void U8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void Bool(bool value) { U8(value ? 1 : 0); }
  void Varint(uint64_t value) {
    char bytes[kVarintBytesMax];
    size_t size = 0;
    while (value >= 0x80) {
      bytes[size++] = static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    bytes[size++] = static_cast<char>(value);
    out_.append(bytes, size);
  }
  void Signed(int64_t value) {
    Varint((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63));
  }
  void String(std::string_view text) {
    Varint(text.size());
    out_.append(text);
  }
  void Double(double value) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(bits));
    char bytes[8];
    for (char& byte : bytes) {
      byte = static_cast<char>(bits & 0xff);
      bits >>= 8;
    }
    out_.append(bytes, sizeof(bytes));
  }
  void Date(domain::Date date) { Signed(date.days_since_epoch()); }
  void OptionalDate(const std::optional<domain::Date>& date) {
    Bool(date.has_value());
    if (date) Date(*date);
  }
  void OptionalString(const std::optional<std::string>& text) {
    Bool(text.has_value());
    if (text) String(*text);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool ok() const { return ok_; }
  // True when every byte was read and nothing was malformed.
  bool Done() const { return ok_ && pos_ == bytes_.size(); }
  void Fail() { ok_ = false; }
  size_t remaining() const { return ok_ ? bytes_.size() - pos_ : 0; }

  uint8_t U8() {
    if (!ok_ || pos_ >= bytes_.size()) return Failed<uint8_t>();
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  bool Bool() {
    const uint8_t byte = U8();
    if (byte > 1) return Failed<bool>();
    return byte == 1;
  }
  // An enumerator below `count`.
  template <typename Enum>
  Enum EnumBelow(int count) {
    const uint8_t byte = U8();
    if (byte >= count) return Failed<Enum>();
    return static_cast<Enum>(byte);
  }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!ok_ || pos_ >= bytes_.size()) return Failed<uint64_t>();
      const auto byte = static_cast<uint8_t>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Failed<uint64_t>();
  }
  int64_t Signed() {
    const uint64_t raw = Varint();
    return static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
  }
  int32_t Int32() {
    const int64_t value = Signed();
    if (value < INT32_MIN || value > INT32_MAX) return Failed<int32_t>();
    return static_cast<int32_t>(value);
  }
  uint32_t Uint32() {
    const uint64_t value = Varint();
    if (value > UINT32_MAX) return Failed<uint32_t>();
    return static_cast<uint32_t>(value);
  }
  std::string_view StringView() {
    const uint64_t size = Varint();
    if (!ok_ || size > bytes_.size() - pos_) return Failed<std::string_view>();
    const std::string_view text = bytes_.substr(pos_, size);
    pos_ += size;
    return text;
  }
  std::string String() { return std::string(StringView()); }
  double Double() {
    if (!ok_ || bytes_.size() - pos_ < 8) return Failed<double>();
    uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<uint8_t>(bytes_[pos_ + i]);
    pos_ += 8;
    double value = 0;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  }
  domain::Date Date() { return domain::Date::FromDaysSinceEpoch(Int32()); }
  std::optional<domain::Date> OptionalDate() {
    if (!Bool()) return std::nullopt;
    return Date();
  }
  std::optional<std::string> OptionalString() {
    if (!Bool()) return std::nullopt;
    return String();
  }
  // A list length; fails when the rest could not hold `count` items of at least one byte.
  size_t Count() {
    const uint64_t count = Varint();
    if (count > remaining()) return Failed<size_t>();
    return static_cast<size_t>(count);
  }

 private:
  template <typename T>
  T Failed() {
    ok_ = false;
    return T{};
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace gridledger::projections::codec
