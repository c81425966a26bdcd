// Structured logs: one JSON object per line on stderr,
//   {"ts":"2026-11-28T15:02:03.123456+00:00","level":"info","msg":"listening","http":"127.0.0.1:8080"}
// Thread-safe; lines from different threads never interleave.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gridledger::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default: kInfo. Set once by main() before threads start.
void SetLogLevel(LogLevel level);
// "debug", "info", "warning", "error".
std::optional<LogLevel> ParseLogLevel(std::string_view name);

void Log(LogLevel level, std::string_view message, nlohmann::ordered_json fields = {});
// Whether lines of `level` are written (to skip building fields that would be dropped).
bool LogEnabled(LogLevel level);

}  // namespace gridledger::server
