// Starts a real ledgerd on loopback for integration tests: a fresh data directory, a tokens file
// with one principal per role (plus a clerk of another org), ports chosen by the kernel and read
// back from --ready-file. Stop() sends SIGTERM and expects exit 0; Restart() starts it again on the
// same data directory.
#pragma once

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ingest/auth.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace gridledger::testing {

struct TestPrincipal {
  std::string name;  // key in Ledgerd::token()
  ingest::Principal principal;
};

inline std::vector<TestPrincipal> DefaultPrincipals() {
  using ingest::Role;
  return {{"clerk", {"S1001", Role::kClerk, "KM.XS"}},
          {"inspector", {"S2040", Role::kInspector, "KM.XS"}},
          {"inspector2", {"S3003", Role::kInspector, "KM.XS"}},
          {"callback", {"S4100", Role::kCallbackAgent, "KM.XS"}},
          {"director", {"D0001", Role::kDirector, "KM.XS"}},
          {"other_clerk", {"S1900", Role::kClerk, "KM.GD"}},
          {"other_director", {"D0900", Role::kDirector, "KM.GD"}},
          {"chief", {"D0100", Role::kDirector, "KM"}},  // above KM.XS and KM.GD
          {"bureau_clerk", {"S0100", Role::kClerk, "KM"}},  // KM's own unit only
          {"auditor", {"A0001", Role::kAuditor, "KM"}},
          {"reader", {"R0001", Role::kReader, "KM"}},
          {"admin", {"ADM01", Role::kAdmin, "KM"}}};
}

#ifdef SOURCE_DIR
// The events of examples/sample-application.jsonl, in order.
inline std::vector<nlohmann::json> SampleEvents() {
  std::ifstream in(SOURCE_DIR "/examples/sample-application.jsonl");
  std::vector<nlohmann::json> events;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) events.push_back(nlohmann::json::parse(line));
  }
  return events;
}
#endif

// The name of the test principal that is `event`'s actor (a test failure when there is none).
inline std::string PrincipalOf(const nlohmann::json& event) {
  const std::string id = event["actor"]["id"];
  for (const TestPrincipal& p : DefaultPrincipals()) {
    if (p.principal.id == id) return p.name;
  }
  ADD_FAILURE() << "no test principal for actor " << id;
  return "";
}

class Ledgerd {
 public:
  explicit Ledgerd(std::vector<std::string> extra_args = {})
      : Ledgerd(std::move(extra_args), [](const std::string&) {}) {}
  // Calls `prepare(data_dir())` before the first start, e.g. to load data with ledgerctl.
  Ledgerd(std::vector<std::string> extra_args,
          const std::function<void(const std::string& data_dir)>& prepare)
      : extra_args_(std::move(extra_args)) {
    prepare(data_dir());
    tokens_file_ = dir_.str() + "/tokens.jsonl";
    for (const TestPrincipal& p : DefaultPrincipals()) {
      std::string token = ingest::TokenStore::NewToken();
      ledger::Status added =
          ingest::TokenStore::Add(tokens_file_, p.principal, ingest::TokenStore::Sha256Hex(token));
      EXPECT_TRUE(added.ok()) << added.message();
      tokens_[p.name] = token;
    }
    Start();
  }

  // Starts ledgerd and waits until it listens. Test assertions fail when it does not.
  void Start() {
    const std::string ready = ready_file();
    std::remove(ready.c_str());
    std::vector<std::string> argv = {LEDGERD_PATH,  "--data",       data_dir(),    "--tokens",
                                     tokens_file_,  "--http",       "127.0.0.1:0", "--tcp",
                                     "127.0.0.1:0", "--ready-file", ready,         "--backup-dir",
                                     backup_dir()};
    // Warnings and errors only, unless the test asks for another level.
    if (std::find(extra_args_.begin(), extra_args_.end(), "--log-level") == extra_args_.end()) {
      argv.insert(argv.end(), {"--log-level", "warning"});
    }
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<Process>(argv, log_path());
    ASSERT_TRUE(process_->started());
    ASSERT_TRUE(WaitUntil(
        [&] {
          std::ifstream in(ready);
          nlohmann::json info = nlohmann::json::parse(in, nullptr, false);
          if (info.is_discarded() || !process_->running()) return !process_->running();
          http_port_ = PortOf(info["http"].get<std::string>());
          tcp_port_ = PortOf(info["tcp"].get<std::string>());
          if (info.contains("metrics")) metrics_port_ = PortOf(info["metrics"].get<std::string>());
          return true;
        },
        std::chrono::seconds(30)))
        << "ledgerd did not start";
    ASSERT_TRUE(process_->running()) << process_->Log();
  }

  // SIGTERM; returns the exit status (nullopt if it did not exit within 30 s).
  std::optional<int> Stop() {
    process_->Signal(SIGTERM);
    return process_->Wait(std::chrono::seconds(30));
  }
  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(30));
  }
  // SIGHUP: ledgerd reads its tokens file again.
  void ReloadTokens() { process_->Signal(SIGHUP); }
  const std::string& tokens_file() const { return tokens_file_; }

  const std::string& token(const std::string& name) const { return tokens_.at(name); }
  uint16_t http_port() const { return http_port_; }
  uint16_t tcp_port() const { return tcp_port_; }
  uint16_t metrics_port() const { return metrics_port_; }  // 0 unless started with --metrics
  std::string data_dir() const { return dir_.str() + "/data"; }
  std::string backup_dir() const { return dir_.str() + "/backups"; }
  std::string log_path() const { return dir_.str() + "/ledgerd.log"; }
  std::string ready_file() const { return dir_.str() + "/ready.json"; }  // --ready-file
  std::string Log() const { return process_->Log(); }
  Process& process() { return *process_; }

 private:
  static uint16_t PortOf(const std::string& address) {
    return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  TempDir dir_;
  std::vector<std::string> extra_args_;
  std::string tokens_file_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Process> process_;
  uint16_t http_port_ = 0;
  uint16_t tcp_port_ = 0;
  uint16_t metrics_port_ = 0;
};

}  // namespace gridledger::testing
