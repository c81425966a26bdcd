// relay_driver: a stand-in for ledgerd in relay_test. It opens a ledger data directory with the
// projections' side families plus the relay's, appends the seeded demo workload (paced, so the
// relay has work while the test kills things) and runs the JetStream relay. Once every event is
// appended and relayed it stops the relay and exits 0.
//
// It may be killed at any moment and started again on the same directory: it appends one event at
// a time and waits for each, so the ledger always holds a prefix of the workload, and a restart
// skips that prefix.
//
// Every --status-every-ms it replaces --status (write + rename) with one JSON object:
// {"total","head","relayed","lag","connected","published","resyncs","last_error","done"}.
//
// Usage: relay_driver --data DIR --nats URL --status FILE [--apps N] [--seed N]
//        [--events-per-second N] [--duplicate-window-ms N] [--inflight N] [--status-every-ms N]
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "domain/event_json.h"
#include "ingest/demo_workload.h"
#include "ingest/event_codec.h"
#include "projections/engine.h"
#include "server/relay.h"

namespace gridledger {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Flags {
  std::string data_dir;
  std::string nats_url;
  std::string status_path;
  uint64_t apps = 1000;
  uint64_t seed = 7;
  uint64_t events_per_second = 0;  // 0: as fast as the ledger takes them
  uint64_t duplicate_window_ms = 120'000;
  uint64_t inflight = 1024;
  uint64_t status_every_ms = 20;
};

bool ParseFlags(int argc, char** argv, Flags& flags) {
  std::map<std::string, std::string> values;
  for (int i = 1; i + 1 < argc; i += 2) values[argv[i]] = argv[i + 1];
  if (argc % 2 != 1) return false;
  auto text = [&](const char* name, std::string& out) {
    if (auto it = values.find(name); it != values.end()) out = it->second;
  };
  bool numbers_ok = true;
  auto number = [&](const char* name, uint64_t& out) {
    auto it = values.find(name);
    if (it == values.end()) return;
    const std::string& text = it->second;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    numbers_ok = numbers_ok && error == std::errc() && end == text.data() + text.size();
  };
  text("--data", flags.data_dir);
  text("--nats", flags.nats_url);
  text("--status", flags.status_path);
  number("--apps", flags.apps);
  number("--seed", flags.seed);
  number("--events-per-second", flags.events_per_second);
  number("--duplicate-window-ms", flags.duplicate_window_ms);
  number("--inflight", flags.inflight);
  number("--status-every-ms", flags.status_every_ms);
  return numbers_ok && !flags.data_dir.empty() && !flags.nats_url.empty() &&
         !flags.status_path.empty();
}

ingest::DemoOptions DemoOptionsOf(const Flags& flags) {
  ingest::DemoOptions demo;
  demo.apps = flags.apps;
  demo.seed = flags.seed;
  demo.first_position = 1;  // the whole workload goes into one fresh ledger, over several runs
  // Nothing may occur in the future: history up to yesterday (as ledgerctl demo does).
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  demo.last_day = std::min(demo.last_day, domain::LocalDateOf(now_us).AddDays(-1));
  return demo;
}

// Writes the status file every `every` until Stop, and once more on Stop.
class StatusWriter {
 public:
  StatusWriter(const server::Relay& relay, std::string path, uint64_t total,
               std::chrono::milliseconds every)
      : relay_(relay), path_(std::move(path)), total_(total) {
    thread_ = std::thread([this, every] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        lock.unlock();
        Write(false);
        lock.lock();
        cv_.wait_for(lock, every, [&] { return stop_; });
      }
    });
  }
  ~StatusWriter() { Stop(false); }

  void Stop(bool done) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Write(done);
  }

 private:
  void Write(bool done) {
    server::RelayStatus status = relay_.status();
    if (status.last_error != last_error_) {
      last_error_ = status.last_error;
      std::cerr << "relay_driver: relay error: " << last_error_ << "\n";
    }
    nlohmann::ordered_json json = {{"total", total_},
                                   {"head", status.head},
                                   {"relayed", status.relayed_position},
                                   {"lag", status.lag},
                                   {"connected", status.connected},
                                   {"published", status.published},
                                   {"resyncs", status.resyncs},
                                   {"last_error", status.last_error},
                                   {"done", done}};
    const std::string temp = path_ + ".tmp";
    {
      std::ofstream out(temp, std::ios::trunc);
      out << json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    }
    std::error_code ignored;
    std::filesystem::rename(temp, path_, ignored);
  }

  const server::Relay& relay_;
  const std::string path_;
  const uint64_t total_;
  std::string last_error_;  // the last one printed
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Appends the workload's events after the first `skip`, paced at `events_per_second`. Plain ledger
// appends with the workload's expected versions: the relay does not care about workflow rules.
bool AppendWorkload(ledger::Ledger& ledger, ingest::DemoWorkload& workload, uint64_t skip,
                    uint64_t events_per_second) {
  const auto started = std::chrono::steady_clock::now();
  uint64_t index = 0;
  uint64_t appended = 0;
  for (std::string line; workload.Next(&line); ++index) {
    if (index < skip) continue;
    if (events_per_second > 0) {
      // Pacing, not waiting for a condition: the test wants appends spread over time.
      std::this_thread::sleep_until(
          started + std::chrono::microseconds(appended * 1'000'000 / events_per_second));
    }
    auto decoded = domain::DecodeClientEvent(line);
    if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
      std::cerr << "relay_driver: event " << index << ": " << error->message << "\n";
      return false;
    }
    auto result =
        ledger.Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))));
    if (!result.ok()) {
      std::cerr << "relay_driver: event " << index << " refused: " << result.status().ToString()
                << "\n";
      return false;
    }
    ++appended;
  }
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, flags)) {
    std::cerr << "usage: relay_driver --data DIR --nats URL --status FILE [--apps N] [--seed N] "
                 "[--events-per-second N] [--duplicate-window-ms N] [--inflight N]\n";
    return kExitUsage;
  }
  auto calendar =
      domain::WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
  if (auto* error = std::get_if<domain::DataFileError>(&calendar)) {
    std::cerr << "relay_driver: calendar: " << error->message << "\n";
    return kExitFailure;
  }
  const auto& working_calendar = std::get<domain::WorkingCalendar>(calendar);
  uint64_t total = 0;
  {
    ingest::DemoWorkload counter(DemoOptionsOf(flags), working_calendar);
    for (std::string line; counter.Next(&line);) ++total;
  }

  ledger::Options ledger_options;
  ledger_options.side_families = projections::SideFamilies();
  server::RelayOptions relay_options;
  relay_options.checkpoint_family = server::AddRelaySideFamily(ledger_options.side_families);
  auto opened = ledger::Ledger::Open(flags.data_dir, ledger_options);
  if (!opened.ok()) {
    std::cerr << "relay_driver: " << opened.status().ToString() << "\n";
    return kExitFailure;
  }
  std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();

  relay_options.url = flags.nats_url;
  relay_options.duplicate_window = std::chrono::milliseconds(flags.duplicate_window_ms);
  relay_options.inflight_events_max = flags.inflight;
  relay_options.retry_backoff_min = std::chrono::milliseconds(20);
  relay_options.retry_backoff_max = std::chrono::milliseconds(200);
  relay_options.request_timeout = std::chrono::milliseconds(1000);
  relay_options.ack_timeout = std::chrono::milliseconds(2000);
  server::Relay relay(*ledger, relay_options);
  if (ledger::Status started = relay.Start(); !started.ok()) {
    std::cerr << "relay_driver: relay: " << started.ToString() << "\n";
    return kExitFailure;
  }
  StatusWriter status(relay, flags.status_path, total,
                      std::chrono::milliseconds(flags.status_every_ms));

  ingest::DemoWorkload workload(DemoOptionsOf(flags), working_calendar);
  if (!AppendWorkload(*ledger, workload, ledger->Head(), flags.events_per_second)) {
    return kExitFailure;
  }
  // Until the broker has every event; the test kills the driver if that never happens.
  const auto relay_started = std::chrono::steady_clock::now();
  while (!relay.WaitForRelayed(ledger->Head(), std::chrono::seconds(1))) {
  }
  const double drain_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - relay_started).count();
  relay.Stop();
  status.Stop(/*done=*/true);
  server::RelayStatus final_status = relay.status();
  std::cout << nlohmann::ordered_json{{"head", ledger->Head()},
                                      {"relayed", final_status.relayed_position},
                                      {"published", final_status.published},
                                      {"resyncs", final_status.resyncs},
                                      {"last_error", final_status.last_error},
                                      {"drain_seconds", drain_seconds}}
                   .dump()
            << "\n";
  return kExitOk;
}

}  // namespace
}  // namespace gridledger

int main(int argc, char** argv) { return gridledger::Main(argc, argv); }
