#include "monitoring/status_collector.h"

#include <algorithm>

#include "families.h"

namespace gridledger::monitoring {

namespace {

using internal::Single;
using prometheus::MetricType;

template <typename T>
double D(T value) {
  return static_cast<double>(value);
}

}  // namespace

std::vector<prometheus::MetricFamily> StatusCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  AddLedger(out);
  if (const server::Service* service = sources_.service) {
    out.push_back(Single("gridledger_service_appends_inflight",
                         "Appends accepted by the Service and not yet answered", MetricType::Gauge,
                         D(service->appends_inflight())));
    out.push_back(Single("gridledger_service_draining", "1 while ledgerd drains for shutdown",
                         MetricType::Gauge, service->draining() ? 1 : 0));
  }
  AddTcp(out);
  AddHttp(out);
  AddRelay(out);
  AddCalendar(out);
  return out;
}

void StatusCollector::AddLedger(std::vector<prometheus::MetricFamily>& out) const {
  const ledger::Ledger* ledger = sources_.ledger;
  if (ledger == nullptr) return;
  const uint64_t head = ledger->Head();
  out.push_back(Single("gridledger_ledger_head_position",
                       "Position of the last durable event (the log's length)", MetricType::Gauge,
                       D(head)));
  out.push_back(Single("gridledger_ledger_append_queue_requests",
                       "Append requests waiting for the ledger's writer", MetricType::Gauge,
                       D(ledger->QueuedAppends())));
  const ledger::StorageStats storage = ledger->Storage();
  out.push_back(Single("gridledger_rocksdb_live_data_bytes",
                       "RocksDB's estimate of live data, all column families", MetricType::Gauge,
                       D(storage.live_data_bytes)));
  out.push_back(Single("gridledger_rocksdb_sst_files_bytes", "Size of all SST files",
                       MetricType::Gauge, D(storage.sst_files_bytes)));
  out.push_back(Single("gridledger_rocksdb_pending_compaction_bytes",
                       "RocksDB's estimate of bytes compaction still has to rewrite",
                       MetricType::Gauge, D(storage.pending_compaction_bytes)));
  out.push_back(Single("gridledger_rocksdb_memtable_bytes", "Size of all memtables",
                       MetricType::Gauge, D(storage.memtable_bytes)));

  const projections::Engine* engine = sources_.engine;
  if (engine == nullptr) return;
  // Read after the head: the checkpoint never passes the head, so the lag is never negative.
  const uint64_t checkpoint = engine->checkpoint();
  out.push_back(Single("gridledger_projection_checkpoint_position",
                       "Last position folded into the projections", MetricType::Gauge,
                       D(checkpoint)));
  out.push_back(Single("gridledger_projection_lag_events",
                       "Events stored but not yet folded into the projections", MetricType::Gauge,
                       D(head - std::min(head, checkpoint))));
  out.push_back(Single("gridledger_projection_healthy",
                       "0 when the projections' background catch-up met an error",
                       MetricType::Gauge, engine->BackgroundStatus().ok() ? 1 : 0));
}

void StatusCollector::AddHttp(std::vector<prometheus::MetricFamily>& out) const {
  if (sources_.http == nullptr) return;
  out.push_back(Single("gridledger_http_connections",
                       "Open HTTP connections (idle keep-alive ones included; with the TCP door's "
                       "they count against --connections-max)",
                       MetricType::Gauge, D(sources_.http->connections())));
}

void StatusCollector::AddTcp(std::vector<prometheus::MetricFamily>& out) const {
  if (sources_.tcp == nullptr) return;
  const server::TcpStats stats = sources_.tcp->Stats();
  out.push_back(Single("gridledger_tcp_connections", "Open TCP sessions", MetricType::Gauge,
                       D(stats.connections)));
  out.push_back(Single("gridledger_tcp_subscriptions", "Live subscriptions", MetricType::Gauge,
                       D(stats.subscriptions)));
  // Lag per subscriber: events committed that its slowest subscription has not examined yet. The
  // label is the subscriber's principal id — subscriptions are for downstream systems (readers,
  // auditors), a short fixed list, never customers or clerks.
  prometheus::MetricFamily lag = internal::NewFamily(
      "gridledger_subscription_lag_events",
      "Events committed that the subscriber's slowest live subscription has not reached",
      MetricType::Gauge);
  if (sources_.ledger != nullptr) {
    const uint64_t head = sources_.ledger->Head();
    for (const auto& [subscriber, next] : stats.subscriber_next_positions) {
      internal::AddSample(lag, {{"subscriber", subscriber}},
                          D(head + 1 - std::min(head + 1, next)));
    }
  }
  out.push_back(std::move(lag));
  out.push_back(Single("gridledger_tcp_subscriptions_without_credit",
                       "Subscriptions stalled because their client granted no more credit (the "
                       "subscriber falls behind)",
                       MetricType::Gauge, D(stats.subscriptions_without_credit)));
  out.push_back(Single("gridledger_tcp_output_bytes",
                       "Bytes of answers waiting for, or being written to, sockets",
                       MetricType::Gauge, D(stats.output_bytes)));
  out.push_back(Single("gridledger_tcp_frames_received_total", "Frames received",
                       MetricType::Counter, D(stats.frames_received)));
  out.push_back(Single("gridledger_tcp_frames_sent_total", "Frames sent", MetricType::Counter,
                       D(stats.frames_sent)));
  out.push_back(Single("gridledger_tcp_subscription_events_sent_total",
                       "Events sent to subscribers", MetricType::Counter,
                       D(stats.subscription_events_sent)));
  out.push_back(Single("gridledger_tcp_checkpoints_sent_total",
                       "Checkpoint frames sent to subscribers", MetricType::Counter,
                       D(stats.checkpoints_sent)));
  out.push_back(Single("gridledger_tcp_busy_sent_total", "Busy answers sent (a limit was reached)",
                       MetricType::Counter, D(stats.busy_sent)));
  out.push_back(Single("gridledger_tcp_connections_refused_total",
                       "Connections refused over connections_max", MetricType::Counter,
                       D(stats.connections_refused)));
}

void StatusCollector::AddRelay(std::vector<prometheus::MetricFamily>& out) const {
  out.push_back(Single("gridledger_relay_enabled", "1 when the JetStream relay is configured",
                       MetricType::Gauge, sources_.relay != nullptr ? 1 : 0));
  if (sources_.relay == nullptr) return;
  const server::RelayStatus status = sources_.relay->status();
  out.push_back(Single("gridledger_relay_running", "1 while the relay thread runs",
                       MetricType::Gauge, status.running ? 1 : 0));
  out.push_back(Single("gridledger_relay_connected", "1 while the relay is connected to NATS",
                       MetricType::Gauge, status.connected ? 1 : 0));
  out.push_back(Single("gridledger_relay_relayed_position",
                       "Last position known to be stored in the JetStream stream",
                       MetricType::Gauge, D(status.relayed_position)));
  out.push_back(Single("gridledger_relay_lag_events", "Events not yet relayed (head - relayed)",
                       MetricType::Gauge, D(status.lag)));
  out.push_back(Single("gridledger_relay_published_total",
                       "Messages the broker acknowledged since the relay started",
                       MetricType::Counter, D(status.published)));
  out.push_back(Single("gridledger_relay_errors_total",
                       "Errors the relay met and retried since it started (broker unreachable, "
                       "publish refused, history mismatch); the last is in ledgerd's log",
                       MetricType::Counter, D(status.errors)));
  out.push_back(Single("gridledger_relay_resyncs_total",
                       "Times the relay re-read its resume point from the stream",
                       MetricType::Counter, D(status.resyncs)));
}

void StatusCollector::AddCalendar(std::vector<prometheus::MetricFamily>& out) const {
  const domain::WorkingCalendar* calendar = sources_.calendar;
  if (calendar == nullptr) return;
  if (auto first = calendar->FirstLoadedYear()) {
    out.push_back(Single("gridledger_calendar_first_loaded_year",
                         "First year of the loaded working-day calendar", MetricType::Gauge,
                         *first));
  }
  if (auto last = calendar->LastLoadedYear()) {
    out.push_back(Single("gridledger_calendar_last_loaded_year",
                         "Last year of the loaded working-day calendar; clocks that need a later "
                         "year turn calendar_missing",
                         MetricType::Gauge, *last));
  }
}

}  // namespace gridledger::monitoring
