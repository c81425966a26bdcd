// Child processes of the load benchmark (ledgerd, ledgerctl, PostgreSQL's tools): started with
// posix_spawn, stdout and stderr appended to a log file, stopped with a signal and reaped. Taken
// from tests/support/process.h (test support code, which bench/ does not link), without GoogleTest.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace gridledger::bench {

class ChildProcess {
 public:
  // Starts `argv[0]` (a path, not searched in PATH) with `argv`; stdout and stderr are appended
  // to `log_path`.
  ChildProcess(std::vector<std::string> argv, std::string log_path)
      : log_path_(std::move(log_path)) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  // A child still running is killed: a benchmark that gives up must not leave servers behind.
  ~ChildProcess() {
    if (running()) {
      Signal(SIGKILL);
      Wait(std::chrono::seconds(10));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  bool running() const { return pid_ > 0 && !exit_status_; }
  pid_t pid() const { return pid_; }
  void Signal(int signal) {
    if (running()) ::kill(pid_, signal);
  }

  // The exit status (WEXITSTATUS, or 128 + signal) once the child ended within `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polls waitpid
    }
    return exit_status_;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// Runs `argv` to completion (at most `timeout`), output appended to `log_path`. Returns its exit
// status, or nullopt when it could not be started or did not end in time (it is then killed).
inline std::optional<int> RunToCompletion(std::vector<std::string> argv,
                                          const std::string& log_path,
                                          std::chrono::milliseconds timeout) {
  ChildProcess child(std::move(argv), log_path);
  if (!child.started()) return std::nullopt;
  return child.Wait(timeout);
}

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace gridledger::bench
