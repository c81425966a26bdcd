// A real ledgerd for the load benchmark, like tests/support/ledgerd.h: its own data directory,
// ports chosen by the kernel (port 0) and read back from --ready-file, warnings-only logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.h"

namespace gridledger::bench {

class LedgerdProcess {
 public:
  // Starts `ledgerd` on `data_dir` (created when missing) with `tokens_file`; its log goes to
  // <run_dir>/<name>.log. nullptr with `*error` set when it does not listen within 60 s.
  static std::unique_ptr<LedgerdProcess> Start(const std::string& ledgerd,
                                               const std::filesystem::path& data_dir,
                                               const std::filesystem::path& tokens_file,
                                               const std::filesystem::path& run_dir,
                                               const std::string& name, std::string* error) {
    const std::filesystem::path ready = run_dir / (name + "-ready.json");
    const std::filesystem::path log = run_dir / (name + ".log");
    std::filesystem::remove(ready);
    std::unique_ptr<LedgerdProcess> ledgerd_process(new LedgerdProcess(
        {ledgerd, "--data", data_dir, "--tokens", tokens_file, "--http", "127.0.0.1:0", "--tcp",
         "127.0.0.1:0", "--ready-file", ready, "--log-level", "warning"},
        log));
    ChildProcess& child = ledgerd_process->child_;
    const bool listening =
        child.started() &&
        WaitUntil([&] { return !child.running() || ledgerd_process->ReadPorts(ready); },
                  std::chrono::seconds(60));
    if (!listening || !child.running()) {
      *error = "ledgerd did not start (see " + log.string() + "):\n" + child.Log();
      return nullptr;
    }
    return ledgerd_process;
  }

  // SIGTERM, then waits for ledgerd's drain; false with `*error` unless it exits 0 within 30 s.
  bool Stop(std::string* error) {
    child_.Signal(SIGTERM);
    std::optional<int> status = child_.Wait(std::chrono::seconds(30));
    if (status == 0) return true;
    *error = "ledgerd did not stop cleanly (" +
             (status ? "exit " + std::to_string(*status) : std::string("still running")) + ")";
    return false;
  }

  uint16_t http_port() const { return http_port_; }
  uint16_t tcp_port() const { return tcp_port_; }
  pid_t pid() const { return child_.pid(); }

 private:
  LedgerdProcess(std::vector<std::string> argv, const std::filesystem::path& log)
      : child_(std::move(argv), log) {}

  // {"http":"127.0.0.1:P","tcp":"127.0.0.1:Q","pid":…}, written once ledgerd listens.
  bool ReadPorts(const std::filesystem::path& ready) {
    std::ifstream in(ready);
    nlohmann::json info = nlohmann::json::parse(in, nullptr, false);
    if (info.is_discarded() || !info.contains("http") || !info.contains("tcp")) return false;
    http_port_ = PortOf(info["http"].get<std::string>());
    tcp_port_ = PortOf(info["tcp"].get<std::string>());
    return true;
  }
  static uint16_t PortOf(const std::string& address) {
    return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  ChildProcess child_;
  uint16_t http_port_ = 0;
  uint16_t tcp_port_ = 0;
};

}  // namespace gridledger::bench
