// ledgerd: GridLedger's server. Wires the ledger, the projections, the front doors (HTTP/JSON and
// Cap'n Proto TCP) and the JetStream relay; see server/README.md.
//
// Config: flags, or the same names in a TOML/INI file given with --config (flags win).
// SIGTERM/SIGINT: stop accepting, answer every append in flight, stop the relay and the
// projections, sync the WAL, exit 0. A restart resumes where it stopped: the ledger, the
// projections' checkpoint and the relay's checkpoint are all in the data directory.
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "ingest/auth.h"
#include "ledger/ledger.h"
#include "monitoring/metrics.h"
#include "projections/engine.h"
#include "server/http_server.h"
#include "server/limits.h"
#include "server/log.h"
#include "server/relay.h"
#include "server/service.h"
#include "server/tcp_server.h"

namespace {

using namespace gridledger;
using server::Log;
using server::LogLevel;
namespace net = boost::asio;

// How long the drain waits for connections to finish their last answers before closing them.
constexpr std::chrono::seconds kDrainTimeout{10};

struct Config {
  std::string data_dir;
  std::string http = "127.0.0.1:8080";
  std::string tcp = "127.0.0.1:7070";
  std::string metrics;  // served by the monitoring exposer (issue 5); empty = off
  std::string tokens_file;
  std::string calendar_dir = std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar";
  std::string profile_path = std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/sla/national-2009.json";
  std::string nats_url;  // empty = no relay
  std::string nats_stream = "GRIDLEDGER";
  std::string ready_file;
  std::string backup_dir;  // empty = POST /v1/backup off
  std::string log_level = "info";
  int io_threads = 2;
  // The hash chain is verified in the background when ledgerd starts and then every this many
  // hours (0: only on request), so the verification gauge and its alert speak without anyone
  // asking, also after a restart.
  double verify_every_hours = 24;
  server::Limits limits;
};

// Verifies the chain at start and every `every` until stopped. Results reach the metrics through
// the ledger's probe; failures are logged. A stop cuts a verification short.
class BackgroundVerifier {
 public:
  using Report = std::function<void(server::Service::ChainCheck)>;
  BackgroundVerifier(const ledger::Ledger& ledger, std::chrono::duration<double> every,
                     Report report)
      : ledger_(ledger), every_(every), report_(std::move(report)) {
    if (every_.count() > 0) thread_ = std::thread([this] { Run(); });
  }
  ~BackgroundVerifier() { Stop(); }
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    for (;;) {
      auto verified = ledger_.Verify(stop_);
      if (stop_) return;
      if (verified.ok()) {
        Log(LogLevel::kInfo, "hash chain verified",
            {{"head", verified->position}, {"hash", verified->hash_hex}});
        report_({true, verified->position, ""});
      } else {
        Log(LogLevel::kError, "hash chain verification failed",
            {{"error", verified.status().message()}});
        report_({false, 0, verified.status().message()});
      }
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, every_, [&] { return stop_.load(); })) return;
    }
  }

  const ledger::Ledger& ledger_;
  const std::chrono::duration<double> every_;
  const Report report_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::optional<net::ip::tcp::endpoint> ParseEndpoint(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code error;
  net::ip::address address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, error);
  if (error) return std::nullopt;
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  unsigned long port = std::stoul(port_text);
  if (port > 65535) return std::nullopt;
  return net::ip::tcp::endpoint(address, static_cast<uint16_t>(port));
}

std::string EndpointText(const net::ip::tcp::endpoint& endpoint, uint16_t port) {
  return endpoint.address().to_string() + ":" + std::to_string(port);
}

void AddOptions(CLI::App& app, Config& config) {
  app.set_config("--config", "", "a TOML/INI file with any of these options (flags win)");
  // A misspelt key would otherwise leave its default in force without a word.
  app.allow_config_extras(false);
  app.add_option("--data", config.data_dir, "data directory (created when missing)")->required();
  app.add_option("--http", config.http, "HTTP/JSON address (host:port; port 0 = any)")
      ->capture_default_str();
  app.add_option("--tcp", config.tcp, "Cap'n Proto TCP address (host:port; empty = off)")
      ->capture_default_str();
  app.add_option("--metrics", config.metrics, "Prometheus metrics address (host:port)");
  app.add_option("--tokens", config.tokens_file, "bearer tokens file (ledgerctl token add)")
      ->required();
  app.add_option("--calendar", config.calendar_dir, "directory of working-day calendar years")
      ->capture_default_str();
  app.add_option("--profile", config.profile_path, "SLA time-limit profile (JSON)")
      ->capture_default_str();
  app.add_option("--nats", config.nats_url, "NATS URL of the JetStream relay (empty = off)");
  app.add_option("--nats-stream", config.nats_stream, "JetStream stream of the relay")
      ->capture_default_str();
  app.add_option(
      "--ready-file", config.ready_file,
      "write {\"http\":…,\"tcp\":…,\"metrics\":…,\"nats\":…,\"pid\":…} here once listening (what is "
      "off is left out), removed at exit (for scripts and tests)");
  app.add_option("--backup-dir", config.backup_dir,
                 "where POST /v1/backup (role admin) writes verified copies of the ledger, each "
                 "in a new directory (empty = off); best on another disk");
  app.add_option("--log-level", config.log_level, "debug, info, warning or error")
      ->capture_default_str();
  app.add_option("--verify-every-hours", config.verify_every_hours,
                 "verify the hash chain at start and then this often (0 = only on request)")
      ->check(CLI::Range(0.0, 24.0 * 366))
      ->capture_default_str();
  app.add_option("--io-threads", config.io_threads, "threads serving connections")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  server::Limits& limits = config.limits;
  app.add_option("--connections-max", limits.connections_max, "open connections, HTTP and TCP")
      ->capture_default_str();
  app.add_option("--connections-per-address-max", limits.connections_per_address_max,
                 "of them, from one client address")
      ->capture_default_str();
  app.add_option("--frame-bytes-max", limits.frame_bytes_max,
                 "largest TCP frame and read page (HTTP: of rendered events)")
      ->capture_default_str();
  app.add_option("--http-body-bytes-max", limits.http_body_bytes_max, "largest HTTP body")
      ->capture_default_str();
  app.add_option("--batch-events-max", limits.batch_events_max, "events per append batch")
      ->capture_default_str();
  app.add_option("--connection-inflight-max", limits.connection_inflight_max,
                 "requests in progress per TCP connection")
      ->capture_default_str();
  app.add_option("--appends-inflight-max", limits.appends_inflight_max,
                 "appends in progress in the server")
      ->capture_default_str();
  app.add_option("--subscribers-max", limits.subscribers_max, "live subscriptions")
      ->capture_default_str();
  app.add_option("--subscribers-per-address-max", limits.subscribers_per_address_max,
                 "of them, from one client address")
      ->capture_default_str();
  app.add_option("--read-events-max", limits.read_events_max, "events per read page")
      ->capture_default_str();
  app.add_option("--output-bytes-max", limits.output_bytes_max,
                 "answer bytes queued for one door's connections together (HTTP, TCP)")
      ->capture_default_str();
  app.add_option("--input-bytes-max", limits.input_bytes_max,
                 "request bytes being received on one door's connections together")
      ->capture_default_str();
  app.add_option("--tcp-write-timeout", limits.tcp_write_timeout_seconds,
                 "seconds a TCP socket may take a write before its connection is closed")
      ->capture_default_str();
  app.add_option("--tcp-idle-timeout", limits.tcp_idle_timeout_seconds,
                 "seconds a TCP connection with nothing in flight may send no request")
      ->capture_default_str();
  app.add_option("--tcp-hello-timeout", limits.tcp_hello_timeout_seconds,
                 "seconds a new TCP connection has to say hello")
      ->capture_default_str();
  app.add_option("--http-header-timeout", limits.http_header_timeout_seconds,
                 "seconds an HTTP request's line and headers may take (also how long a kept-alive "
                 "connection may wait for its next request)")
      ->capture_default_str();
  app.add_option("--http-body-timeout", limits.http_body_timeout_seconds,
                 "seconds an HTTP request's body may take after its headers")
      ->capture_default_str();
  app.add_option("--subscription-credit-max", limits.subscription_credit_max,
                 "events a subscriber may grant in credit at once")
      ->capture_default_str();
  app.add_option("--subscription-frame-events-max", limits.subscription_frame_events_max,
                 "events per subscription frame")
      ->capture_default_str();
  app.add_option("--subscription-checkpoint-every", limits.subscription_checkpoint_every,
                 "events a subscription's filter may skip before a checkpoint frame")
      ->capture_default_str();
}

// Limits that cannot work together: a reason, or nullopt.
std::optional<std::string> CheckLimits(const server::Limits& limits) {
  const std::pair<const char*, size_t> positive[] = {
      {"--connections-max", limits.connections_max},
      {"--connections-per-address-max", limits.connections_per_address_max},
      {"--frame-bytes-max", limits.frame_bytes_max},
      {"--http-body-bytes-max", limits.http_body_bytes_max},
      {"--batch-events-max", limits.batch_events_max},
      {"--connection-inflight-max", limits.connection_inflight_max},
      {"--appends-inflight-max", limits.appends_inflight_max},
      {"--subscribers-max", limits.subscribers_max},
      {"--subscribers-per-address-max", limits.subscribers_per_address_max},
      {"--read-events-max", limits.read_events_max},
      {"--output-bytes-max", limits.output_bytes_max},
      {"--input-bytes-max", limits.input_bytes_max},
      {"--tcp-write-timeout", limits.tcp_write_timeout_seconds},
      {"--tcp-idle-timeout", limits.tcp_idle_timeout_seconds},
      {"--tcp-hello-timeout", limits.tcp_hello_timeout_seconds},
      {"--http-header-timeout", limits.http_header_timeout_seconds},
      {"--http-body-timeout", limits.http_body_timeout_seconds},
      {"--subscription-credit-max", limits.subscription_credit_max},
      {"--subscription-frame-events-max", limits.subscription_frame_events_max},
      {"--subscription-checkpoint-every", limits.subscription_checkpoint_every}};
  for (const auto& [flag, value] : positive) {
    if (value == 0) return std::string(flag) + " must be at least 1";
  }
  // The TCP door starts the events of a batch together (one per stream at a time): a batch larger
  // than the appends the server takes at once would be refused busy on an idle server.
  if (limits.batch_events_max > limits.appends_inflight_max) {
    return "--batch-events-max (" + std::to_string(limits.batch_events_max) +
           ") must not exceed --appends-inflight-max (" +
           std::to_string(limits.appends_inflight_max) +
           "): a batch's events are appended together, so a larger one would be refused busy";
  }
  // A read page or subscription frame is queued whole: the queue must hold one.
  if (limits.output_bytes_max < limits.frame_bytes_max) {
    return "--output-bytes-max (" + std::to_string(limits.output_bytes_max) +
           ") must be at least --frame-bytes-max (" + std::to_string(limits.frame_bytes_max) + ")";
  }
  // A request of the largest size allowed must be receivable while nothing else is.
  if (limits.input_bytes_max < std::max(limits.frame_bytes_max, limits.http_body_bytes_max)) {
    return "--input-bytes-max (" + std::to_string(limits.input_bytes_max) +
           ") must be at least --frame-bytes-max and --http-body-bytes-max (" +
           std::to_string(std::max(limits.frame_bytes_max, limits.http_body_bytes_max)) + ")";
  }
  return std::nullopt;
}

int Fail(const std::string& message, nlohmann::ordered_json fields = {}) {
  Log(LogLevel::kError, message, std::move(fields));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The data directory, backups and logs of reads hold customers' personal data: what ledgerd
  // creates is its user's alone (0700 directories, 0600 files), whatever the shell's umask.
  ::umask(077);
  // SIGHUP reloads the tokens once serving (below); until then its default action would kill a
  // ledgerd that is still opening or rebuilding.
  std::signal(SIGHUP, SIG_IGN);
  CLI::App app{"ledgerd — GridLedger's server: HTTP/JSON and Cap'n Proto TCP front doors"};
  Config config;
  AddOptions(app, config);
  CLI11_PARSE(app, argc, argv);
  auto level = server::ParseLogLevel(config.log_level);
  if (!level) return Fail("unknown --log-level", {{"value", config.log_level}});
  server::SetLogLevel(*level);

  if (auto wrong = CheckLimits(config.limits)) return Fail(*wrong);
  // Backups go beside the data, never inside it (the ledger refuses each one there): said at
  // start rather than at every backup.
  if (!config.backup_dir.empty() && ledger::PathWithin(config.backup_dir, config.data_dir)) {
    return Fail("--backup-dir lies inside --data: backups go to a directory of their own",
                {{"backup_dir", config.backup_dir}, {"data", config.data_dir}});
  }

  auto http_endpoint = ParseEndpoint(config.http);
  if (!http_endpoint) return Fail("--http takes host:port", {{"value", config.http}});
  std::optional<net::ip::tcp::endpoint> tcp_endpoint;
  if (!config.tcp.empty()) {
    tcp_endpoint = ParseEndpoint(config.tcp);
    if (!tcp_endpoint) return Fail("--tcp takes host:port", {{"value", config.tcp}});
  }

  auto tokens = ingest::TokenStore::Load(config.tokens_file);
  if (!tokens.ok()) return Fail("cannot load tokens", {{"error", tokens.status().message()}});
  auto calendar = domain::WorkingCalendar::Load(config.calendar_dir);
  if (auto* error = std::get_if<domain::DataFileError>(&calendar)) {
    return Fail("cannot load the calendar", {{"file", error->file}, {"error", error->message}});
  }
  auto profile = domain::SlaProfile::Load(config.profile_path);
  if (auto* error = std::get_if<domain::DataFileError>(&profile)) {
    return Fail("cannot load the SLA profile", {{"file", error->file}, {"error", error->message}});
  }

  ledger::Options ledger_options;
  ledger_options.side_families = projections::SideFamilies();
  const ledger::SideFamily relay_family = server::AddRelaySideFamily(ledger_options.side_families);
  // RocksDB's warnings and errors (a full disk, a failed flush) in ledgerd's own log.
  ledger_options.storage_log = [](std::string_view level, std::string_view message) {
    Log(level == "warning" ? LogLevel::kWarning : LogLevel::kError, "storage",
        {{"rocksdb", std::string(message)}});
  };

  // ---- Metrics, part 1 (issue 5; monitoring/README.md): the probes, before the ledger that
  // reports to them, so they outlive it.
  std::unique_ptr<monitoring::Metrics> metrics;
  if (!config.metrics.empty()) {
    metrics = std::make_unique<monitoring::Metrics>();
    ledger_options.probe = &metrics->ledger_probe();
  }
  // ---- end of metrics, part 1

  // The ready file, once written, goes when ledgerd is gone: this is destroyed after the ledger
  // (declared before it), so a script that waits for the file to disappear never finds the data
  // directory still locked. A file left behind would name a stale pid and ports.
  struct ReadyFileRemover {
    const std::string& path;
    ~ReadyFileRemover() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } ready_file_remover{config.ready_file};

  auto opened = ledger::Ledger::Open(config.data_dir, ledger_options);
  if (!opened.ok() && opened.status().code() == ledger::Code::kLocked) {
    // The ledger's own message points ledgerctl users at a running ledgerd; here the holder is
    // another ledgerd or a ledgerctl command working on the directory (import, rebuild, demo).
    return Fail("cannot open the ledger",
                {{"error", "data directory " + config.data_dir +
                               " is held by another process: another ledgerd, or a ledgerctl "
                               "command working on it (import, rebuild, demo, …); stop it or "
                               "let it finish first"}});
  }
  if (!opened.ok()) return Fail("cannot open the ledger", {{"error", opened.status().message()}});
  std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();
  Log(LogLevel::kInfo, "ledger open", {{"data", config.data_dir}, {"head", ledger->Head()}});

  projections::Engine engine(*ledger);
  if (engine.NeedsRebuild()) {
    // Derived data: the log holds everything they are made of.
    Log(LogLevel::kWarning, "projections cannot be caught up on: rebuilding them",
        {{"why", engine.CatchUp().message()}});
    const auto rebuild_started = std::chrono::steady_clock::now();
    ledger::Status rebuilt = engine.Rebuild();
    if (!rebuilt.ok()) return Fail("projections cannot be rebuilt", {{"error", rebuilt.message()}});
    Log(LogLevel::kInfo, "projections rebuilt",
        {{"checkpoint", engine.checkpoint()},
         {"seconds",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - rebuild_started)
              .count()}});
  }
  auto catch_up_started = std::chrono::steady_clock::now();
  ledger::Status caught_up = engine.CatchUp();
  if (!caught_up.ok()) return Fail("projections cannot catch up", {{"error", caught_up.message()}});
  Log(LogLevel::kInfo, "projections caught up",
      {{"checkpoint", engine.checkpoint()},
       {"seconds",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - catch_up_started)
            .count()}});
  engine.StartBackground();
  server::Service service({*ledger,
                           engine,
                           std::get<domain::WorkingCalendar>(calendar),
                           std::get<domain::SlaProfile>(profile),
                           std::move(tokens).value(),
                           config.limits,
                           {},
                           config.backup_dir});
  BackgroundVerifier verifier(
      *ledger, std::chrono::duration<double>(config.verify_every_hours * 3600.0),
      [&service](server::Service::ChainCheck check) { service.SetChainCheck(std::move(check)); });

  net::io_context io(config.io_threads);
  server::HttpServer http(io, service, *http_endpoint);
  auto http_port = http.Start();
  if (auto* error = std::get_if<std::string>(&http_port)) return Fail(*error);
  std::unique_ptr<server::TcpServer> tcp;
  std::optional<uint16_t> tcp_port;
  if (tcp_endpoint) {
    tcp = std::make_unique<server::TcpServer>(io, service, *tcp_endpoint);
    auto started = tcp->Start();
    if (auto* error = std::get_if<std::string>(&started)) return Fail(*error);
    tcp_port = std::get<uint16_t>(started);
  }
  std::unique_ptr<server::Relay> relay;
  if (!config.nats_url.empty()) {
    server::RelayOptions relay_options;
    relay_options.url = config.nats_url;
    relay_options.stream_name = config.nats_stream;
    relay_options.checkpoint_family = relay_family;
    relay_options.report = [](bool trouble, const std::string& message) {
      server::Log(trouble ? server::LogLevel::kWarning : server::LogLevel::kInfo, message);
    };
    relay = std::make_unique<server::Relay>(*ledger, relay_options);
    ledger::Status started = relay->Start();
    if (!started.ok()) return Fail("cannot start the relay", {{"error", started.message()}});
  }

  nlohmann::ordered_json listening = {
      {"http", EndpointText(*http_endpoint, std::get<uint16_t>(http_port))}};
  if (tcp_port) listening["tcp"] = EndpointText(*tcp_endpoint, *tcp_port);
  if (relay) listening["nats"] = server::UrlWithoutSecrets(config.nats_url);

  // ---- Metrics, part 2: the scrape endpoint, after everything it reads (so it stops first).
  std::unique_ptr<monitoring::MetricsEndpoint> metrics_endpoint;
  if (metrics) {
    service.SetProbe(&metrics->server_probe());
    monitoring::ScrapeSources sources;
    sources.status = {.ledger = ledger.get(),
                      .engine = &engine,
                      .service = &service,
                      .tcp = tcp.get(),
                      .http = &http,
                      .relay = relay.get(),
                      .calendar = &std::get<domain::WorkingCalendar>(calendar)};
    sources.profile = &std::get<domain::SlaProfile>(profile);
    auto endpoint = monitoring::MetricsEndpoint::Start(*metrics, sources, config.metrics);
    if (auto* error = std::get_if<std::string>(&endpoint)) return Fail(*error);
    metrics_endpoint = std::move(std::get<std::unique_ptr<monitoring::MetricsEndpoint>>(endpoint));
    const std::string host = config.metrics.substr(0, config.metrics.rfind(':'));
    listening["metrics"] = host + ":" + std::to_string(metrics_endpoint->port());
  }
  // ---- end of metrics, part 2

  listening["pid"] = ::getpid();
  Log(LogLevel::kInfo, "listening", listening);
  if (!config.ready_file.empty()) {
    std::string temporary = config.ready_file + ".tmp";
    std::ofstream(temporary) << listening.dump() << "\n";
    std::rename(temporary.c_str(), config.ready_file.c_str());
  }

  // SIGHUP: the tokens file is read again (after ledgerctl token add / remove). A file that does
  // not load is logged and changes nothing: the tokens held stay in force.
  net::signal_set reload(net::make_strand(io), SIGHUP);
  std::atomic<bool> stopping{false};  // no wait is armed again once the drain began
  std::function<void()> await_reload = [&] {
    reload.async_wait([&](const boost::system::error_code& error, int) {
      if (error || stopping.load()) return;
      auto reloaded = ingest::TokenStore::Load(config.tokens_file);
      if (reloaded.ok()) {
        const size_t count = reloaded->size();
        service.ReplaceTokens(std::move(reloaded).value());
        // Said, since an administrator who just added next year's calendar may expect more.
        Log(LogLevel::kInfo, "tokens reloaded",
            {{"tokens", config.tokens_file},
             {"count", count},
             {"note", "only the tokens: the calendar and the SLA profile are read at start"}});
      } else {
        Log(LogLevel::kError, "tokens not reloaded: the tokens held stay in force",
            {{"tokens", config.tokens_file}, {"error", reloaded.status().message()}});
      }
      await_reload();
    });
  };
  await_reload();

  // Shutdown: the signal handler starts the drain on a thread of its own, so the I/O threads keep
  // answering the appends in flight while it waits for them. An append in the ledger's pipeline
  // is no work of the io_context's: without this guard, run() could return once the acceptors
  // and idle connections are closed, and the answer to a stored append would be posted to a
  // stopped io_context. It is released once every append in flight has been answered.
  auto appends_may_answer = net::make_work_guard(io);
  std::promise<void> drained;
  std::thread drainer;
  net::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& error, int signal) {
    if (error) return;
    Log(LogLevel::kInfo, "draining", {{"signal", signal}});
    // A pending wait would keep the io_context from running out of work once drained.
    stopping.store(true);
    net::post(reload.get_executor(), [&] { reload.cancel(); });
    drainer = std::thread([&] {
      http.Stop();
      if (tcp) tcp->Stop();
      service.BeginDrain();
      service.WaitIdle();  // every answer is posted to its connection's executor
      appends_may_answer.reset();
      drained.set_value();
    });
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < config.io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  std::thread watchdog;
  std::future<void> drained_future = drained.get_future();
  watchdog = std::thread([&] {
    drained_future.wait();
    // Connections finish writing their last answers; any still open after the timeout are cut.
    auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    while (!io.stopped() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polls io.stopped()
    }
    io.stop();
  });
  io.run();
  for (auto& thread : threads) thread.join();
  watchdog.join();
  if (drainer.joinable()) drainer.join();
  verifier.Stop();
  if (relay) relay->Stop();
  engine.StopBackground();
  ledger::Status synced = ledger->SyncWal();
  if (!synced.ok()) return Fail("final WAL sync failed", {{"error", synced.message()}});
  Log(LogLevel::kInfo, "stopped", {{"head", ledger->Head()}, {"projections", engine.checkpoint()}});
  return 0;
}
