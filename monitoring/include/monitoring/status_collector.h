// StatusCollector: ledgerd's internals read at scrape time from the public status of each part —
// the ledger (head, queue, RocksDB estimates), the projections (checkpoint, lag), the Service
// (appends in flight), the TCP front door (TcpServer::Stats), the JetStream relay
// (Relay::status) and the working-day calendar (loaded years). Cheap: no scan, no I/O.
//
// Families:
//   gridledger_ledger_head_position, gridledger_ledger_append_queue_requests
//   gridledger_rocksdb_live_data_bytes, _sst_files_bytes, _pending_compaction_bytes,
//   _memtable_bytes
//   gridledger_projection_checkpoint_position, gridledger_projection_lag_events,
//   gridledger_projection_healthy
//   gridledger_service_appends_inflight, gridledger_service_draining
//   gridledger_tcp_* (connections, subscriptions, subscriptions_without_credit, output_bytes and
//   counters of frames, subscription events, checkpoints, busy answers, refused connections)
//   gridledger_relay_* (enabled, running, connected, relayed_position, lag_events,
//   published_total, resyncs_total)
//   gridledger_calendar_first_loaded_year, gridledger_calendar_last_loaded_year
//
// Thread-safety: Collect may be called from any number of threads; the parts are thread-safe.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "domain/calendar.h"
#include "ledger/ledger.h"
#include "projections/engine.h"
#include "server/http_server.h"
#include "server/relay.h"
#include "server/service.h"
#include "server/tcp_server.h"

namespace gridledger::monitoring {

// What the collector reads; nullptr for a part that is not running (its families are left out,
// except gridledger_relay_enabled). Not owned: each must outlive the collector's last Collect.
struct StatusSources {
  const ledger::Ledger* ledger = nullptr;
  const projections::Engine* engine = nullptr;
  const server::Service* service = nullptr;
  const server::TcpServer* tcp = nullptr;
  const server::HttpServer* http = nullptr;
  const server::Relay* relay = nullptr;
  const domain::WorkingCalendar* calendar = nullptr;
};

class StatusCollector : public prometheus::Collectable {
 public:
  explicit StatusCollector(StatusSources sources) : sources_(sources) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void AddLedger(std::vector<prometheus::MetricFamily>& out) const;
  void AddTcp(std::vector<prometheus::MetricFamily>& out) const;
  void AddHttp(std::vector<prometheus::MetricFamily>& out) const;
  void AddRelay(std::vector<prometheus::MetricFamily>& out) const;
  void AddCalendar(std::vector<prometheus::MetricFamily>& out) const;

  const StatusSources sources_;
};

}  // namespace gridledger::monitoring
