#include "ledger/status.h"

namespace gridledger::ledger {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalid:
      return "invalid";
    case Code::kVersionConflict:
      return "version_conflict";
    case Code::kDuplicateMismatch:
      return "duplicate_mismatch";
    case Code::kBusy:
      return "busy";
    case Code::kNotFound:
      return "not_found";
    case Code::kCorruption:
      return "corruption";
    case Code::kIoError:
      return "io_error";
    case Code::kLocked:
      return "locked";
    case Code::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace gridledger::ledger
