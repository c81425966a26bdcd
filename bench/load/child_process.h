// Child processes of the load benchmark (ledgerd, ledgerctl, PostgreSQL's tools): the tests'
// Process (tests/support/process.h: posix_spawn, output appended to a log file, stopped with a
// signal and reaped; it needs no GoogleTest), plus running a tool to completion.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace gridledger::bench {

using ChildProcess = testing::Process;
using testing::WaitUntil;

// Runs `argv` to completion (at most `timeout`), output appended to `log_path`. Returns its exit
// status, or nullopt when it could not be started or did not end in time (it is then killed).
inline std::optional<int> RunToCompletion(std::vector<std::string> argv,
                                          const std::string& log_path,
                                          std::chrono::milliseconds timeout) {
  ChildProcess child(std::move(argv), log_path);
  if (!child.started()) return std::nullopt;
  return child.Wait(timeout);
}

}  // namespace gridledger::bench
