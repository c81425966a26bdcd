#include "monitoring/metrics.h"

#include <netdb.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "monitoring/process_collector.h"

namespace gridledger::monitoring {

namespace {

// How often the stopping endpoint pokes its listener (see ~MetricsEndpoint).
constexpr std::chrono::milliseconds kWakeInterval{20};

// The host to connect to for reaching a listener bound to `address` ("host:port").
std::string WakeHost(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Opens and closes one TCP connection to host:port; failures are of no interest.
void Poke(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  const int fd = ::socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd >= 0) {
    ::connect(fd, found->ai_addr, found->ai_addrlen);
    ::close(fd);
  }
  ::freeaddrinfo(found);
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      ledger_(std::make_unique<LedgerMetrics>(*registry_)),
      server_(std::make_unique<ServerMetrics>(*registry_)) {}

Metrics::~Metrics() = default;

std::variant<std::unique_ptr<MetricsEndpoint>, std::string> MetricsEndpoint::Start(
    const Metrics& metrics, const ScrapeSources& sources, const std::string& address) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->collectables_.push_back(metrics.registry());
  endpoint->collectables_.push_back(std::make_shared<StatusCollector>(sources.status));
  endpoint->collectables_.push_back(std::make_shared<ProcessCollector>());
  if (sources.status.engine != nullptr && sources.status.calendar != nullptr &&
      sources.profile != nullptr) {
    endpoint->collectables_.push_back(
        std::make_shared<SlaCollector>(*sources.status.engine, *sources.status.calendar,
                                       *sources.profile, std::function<int64_t()>(), sources.sla));
  }
  try {
    // civetweb (inside prometheus-cpp) reports a failed bind by throwing: converted here.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return "cannot serve metrics on " + address + ": " + e.what();
  }
  for (const auto& collectable : endpoint->collectables_) {
    endpoint->exposer_->RegisterCollectable(collectable);
  }
  const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  if (ports.empty()) return "cannot serve metrics on " + address + ": no listening port";
  endpoint->port_ = static_cast<uint16_t>(ports.front());
  endpoint->wake_host_ = WakeHost(address);
  return endpoint;
}

// civetweb's listener thread polls its sockets with a 2 s timeout and sees the stop flag only
// between polls, so a plain Exposer destruction takes up to 2 s. Connections to the listener while
// it stops end each poll at once.
MetricsEndpoint::~MetricsEndpoint() {
  if (exposer_ == nullptr) return;
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load()) {
      Poke(wake_host_, port_);
      std::this_thread::sleep_for(kWakeInterval);  // the poke interval, not a wait for a state
    }
  });
  exposer_.reset();
  stopped.store(true);
  waker.join();
}

}  // namespace gridledger::monitoring
