// Wiring of ledgerd's metrics, in two steps so that each object lives exactly as long as what it
// observes (see server/ledgerd.cc, "Metrics"):
//
//   Metrics          the registry and the push-style probes. Created before the ledger (the ledger
//                    takes its probe in ledger::Options) and destroyed after it.
//   MetricsEndpoint  the HTTP exposer (GET /metrics, Prometheus text format) and the scrape-time
//                    collectors (SLA health and KPIs, ledgerd's status, process). Created once
//                    every part it reads runs, destroyed before any of them: its destructor
//                    returns when no scrape is running any more.
//
// Metric names and labels: monitoring/README.md.
#pragma once

#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "monitoring/ledger_metrics.h"
#include "monitoring/server_metrics.h"
#include "monitoring/sla_collector.h"
#include "monitoring/status_collector.h"

namespace prometheus {
class Exposer;
}

namespace gridledger::monitoring {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  ledger::LedgerProbe& ledger_probe() { return *ledger_; }
  server::ServerProbe& server_probe() { return *server_; }
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<LedgerMetrics> ledger_;
  std::unique_ptr<ServerMetrics> server_;
};

// What the scrape-time collectors read (not owned; see StatusSources), plus what the SLA figures
// need. engine, calendar and profile are required for the SLA collector; without them it is left
// out.
struct ScrapeSources {
  StatusSources status;
  const domain::SlaProfile* profile = nullptr;
  SlaCollectorOptions sla;
};

class MetricsEndpoint {
 public:
  // Serves `metrics` and the collectors at http://<address>/metrics; `address` is "host:port"
  // (port 0: any free port, see port()). `metrics` must outlive the endpoint.
  // Errors (as text): the address cannot be bound.
  static std::variant<std::unique_ptr<MetricsEndpoint>, std::string> Start(
      const Metrics& metrics, const ScrapeSources& sources, const std::string& address);
  // Stops serving; returns once no scrape runs.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  uint16_t port() const { return port_; }

 private:
  MetricsEndpoint() = default;

  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // reset first, by the destructor
  uint16_t port_ = 0;
  std::string wake_host_;  // where the destructor connects to wake the listener
};

}  // namespace gridledger::monitoring
