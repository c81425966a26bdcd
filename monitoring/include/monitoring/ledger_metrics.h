// LedgerMetrics: the ledger's probe (ledger/probe.h) as Prometheus counters and histograms.
//
// Families:
//   gridledger_ledger_append_requests_total{result}   counter: ok, duplicate (a retry), or the
//                                                      ledger's error code (invalid, busy, …)
//   gridledger_ledger_append_latency_seconds           histogram: AppendAsync → answer
//   gridledger_ledger_group_commits_total{result}      counter: written, failed
//   gridledger_ledger_group_commit_requests            histogram: requests per group commit
//   gridledger_ledger_group_commit_events              histogram: new events per group commit
//   gridledger_ledger_written_events_total, gridledger_ledger_written_bytes_total
//   gridledger_ledger_sync_latency_seconds             histogram: the synced WriteBatch write
//   gridledger_ledger_verifications_total{result}      counter: ok, corruption, io_error, …
//   gridledger_ledger_verification_failed              gauge: 1 when the last Verify failed
//   gridledger_ledger_verification_timestamp_seconds   gauge: when the last Verify ended
//
// Every series is created in the constructor, so a call is a few atomic operations on metrics
// found by index: no lookup, no allocation. (prometheus-cpp's Histogram takes an uncontended
// mutex of its own per observation; each histogram here is observed by one ledger thread.)
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>

#include "ledger/probe.h"

namespace gridledger::monitoring {

class LedgerMetrics : public ledger::LedgerProbe {
 public:
  // Adds the families to `registry`, which must outlive this object.
  explicit LedgerMetrics(prometheus::Registry& registry);

  void OnGroupCommit(const ledger::GroupCommitFigures& figures) override;
  void OnAppendAnswered(ledger::Code result, bool duplicate,
                        std::chrono::nanoseconds latency) override;
  void OnVerified(const ledger::Status& result, std::chrono::nanoseconds duration) override;

  // The ledger's codes, kOk..kShutdown.
  static constexpr size_t kCodeCount = static_cast<size_t>(ledger::Code::kShutdown) + 1;

 private:
  std::array<prometheus::Counter*, kCodeCount> append_requests_{};  // by code; kOk = stored
  prometheus::Counter* append_duplicates_ = nullptr;
  prometheus::Histogram* append_latency_ = nullptr;
  prometheus::Counter* commits_written_ = nullptr;
  prometheus::Counter* commits_failed_ = nullptr;
  prometheus::Histogram* commit_requests_ = nullptr;
  prometheus::Histogram* commit_events_ = nullptr;
  prometheus::Counter* events_written_ = nullptr;
  prometheus::Counter* bytes_written_ = nullptr;
  prometheus::Histogram* sync_latency_ = nullptr;
  std::array<prometheus::Counter*, kCodeCount> verifications_{};
  prometheus::Gauge* verification_failed_ = nullptr;
  prometheus::Gauge* verification_timestamp_ = nullptr;
};

}  // namespace gridledger::monitoring
