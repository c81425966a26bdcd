// Status and Result<T>: expected failures of the ledger as values. Nothing in ledger/ throws across
// its public API; RocksDB, Cap'n Proto and OpenSSL errors are converted at the module edge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace gridledger::ledger {

// The closed set of failure kinds a caller may act on.
enum class Code {
  kOk = 0,
  kInvalid,  // the request is malformed (bad stream id, empty batch, oversized payload, ...)
  kVersionConflict,    // expected_version does not match the stream's current version
  kDuplicateMismatch,  // an event_id already stored with different content
  kBusy,               // the append queue is full; retry later (backpressure, nothing was written)
  kNotFound,
  kCorruption,  // stored bytes fail a check (hash chain, decoding, meta/head agreement)
  kIoError,     // the storage engine failed; nothing of the request is durable
  kLocked,      // the data directory is held by another process
  kShutdown,    // the ledger is closing and takes no more appends
};

// Stable lower_snake name of a code, used in JSON errors ("version_conflict", ...).
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // For kVersionConflict: the stream's current version (-1 when the stream does not exist).
  std::optional<int64_t> current_version() const { return current_version_; }
  Status& WithCurrentVersion(int64_t version) {
    current_version_ = version;
    return *this;
  }
  // For kCorruption found by Verify: the first position that failed.
  std::optional<uint64_t> position() const { return position_; }
  Status& WithPosition(uint64_t position) {
    position_ = position;
    return *this;
  }

  std::string ToString() const;

  // Ignoring a status on purpose must be visible in the code.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::optional<int64_t> current_version_;
  std::optional<uint64_t> position_;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace gridledger::ledger
