#include "monitoring/ledger_metrics.h"

#include <string>

namespace gridledger::monitoring {

namespace {

using prometheus::Histogram;

// Seconds: 50 µs (a commit without sync) … 5 s (a disk in trouble).
const Histogram::BucketBoundaries kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
// Requests and events per group commit: powers of two up to the group-commit limits.
const Histogram::BucketBoundaries kRequestBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
const Histogram::BucketBoundaries kEventBuckets = {1,   2,   4,   8,    16,   32,  64,
                                                   128, 256, 512, 1024, 2048, 4096};

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

// One series of `family` per ledger code, labelled result="ok" or the code's name, so every result
// exists from the start and a call finds its counter by index.
void AddPerCode(prometheus::Family<prometheus::Counter>& family,
                std::array<prometheus::Counter*, LedgerMetrics::kCodeCount>& counters) {
  for (size_t i = 0; i < counters.size(); ++i) {
    const auto code = static_cast<ledger::Code>(i);
    const std::string result =
        code == ledger::Code::kOk ? "ok" : std::string(ledger::CodeName(code));
    counters[i] = &family.Add({{"result", result}});
  }
}

}  // namespace

LedgerMetrics::LedgerMetrics(prometheus::Registry& registry) {
  auto& requests = prometheus::BuildCounter()
                       .Name("gridledger_ledger_append_requests_total")
                       .Help(
                           "Append requests answered by the ledger, by result (ok: stored; "
                           "duplicate: a retry of stored events; else the error code)")
                       .Register(registry);
  AddPerCode(requests, append_requests_);
  append_duplicates_ = &requests.Add({{"result", "duplicate"}});
  append_latency_ = &prometheus::BuildHistogram()
                         .Name("gridledger_ledger_append_latency_seconds")
                         .Help(
                             "Time from an append request's arrival at the ledger to its answer "
                             "(durable or refused)")
                         .Register(registry)
                         .Add({}, kLatencyBuckets);

  auto& commits = prometheus::BuildCounter()
                      .Name("gridledger_ledger_group_commits_total")
                      .Help("Group commits (one WriteBatch, one sync) with new events, by result")
                      .Register(registry);
  commits_written_ = &commits.Add({{"result", "written"}});
  commits_failed_ = &commits.Add({{"result", "failed"}});
  commit_requests_ = &prometheus::BuildHistogram()
                          .Name("gridledger_ledger_group_commit_requests")
                          .Help("Append requests per group commit")
                          .Register(registry)
                          .Add({}, kRequestBuckets);
  commit_events_ = &prometheus::BuildHistogram()
                        .Name("gridledger_ledger_group_commit_events")
                        .Help("New events per group commit")
                        .Register(registry)
                        .Add({}, kEventBuckets);
  events_written_ = &prometheus::BuildCounter()
                         .Name("gridledger_ledger_written_events_total")
                         .Help("Events made durable")
                         .Register(registry)
                         .Add({});
  bytes_written_ = &prometheus::BuildCounter()
                        .Name("gridledger_ledger_written_bytes_total")
                        .Help(
                            "Bytes of WriteBatches written by group commits (events, index "
                            "entries, inline projections)")
                        .Register(registry)
                        .Add({});
  sync_latency_ = &prometheus::BuildHistogram()
                       .Name("gridledger_ledger_sync_latency_seconds")
                       .Help(
                           "Time of one group commit's WriteBatch write (with fsync when the "
                           "ledger syncs)")
                       .Register(registry)
                       .Add({}, kLatencyBuckets);

  auto& verifications = prometheus::BuildCounter()
                            .Name("gridledger_ledger_verifications_total")
                            .Help(
                                "Hash-chain verifications (ledgerctl verify via the server, GET "
                                "/v1/verify), by result")
                            .Register(registry);
  AddPerCode(verifications, verifications_);
  verification_failed_ = &prometheus::BuildGauge()
                              .Name("gridledger_ledger_verification_failed")
                              .Help("1 when the last verification of the hash chain failed")
                              .Register(registry)
                              .Add({});
  verification_timestamp_ = &prometheus::BuildGauge()
                                 .Name("gridledger_ledger_verification_timestamp_seconds")
                                 .Help(
                                     "When the last verification ended (Unix seconds; 0: none "
                                     "since start)")
                                 .Register(registry)
                                 .Add({});
}

void LedgerMetrics::OnGroupCommit(const ledger::GroupCommitFigures& figures) {
  if (!figures.written) {
    commits_failed_->Increment();
    return;
  }
  commits_written_->Increment();
  commit_requests_->Observe(static_cast<double>(figures.requests));
  commit_events_->Observe(static_cast<double>(figures.events));
  events_written_->Increment(static_cast<double>(figures.events));
  bytes_written_->Increment(static_cast<double>(figures.bytes));
  sync_latency_->Observe(Seconds(figures.write_latency));
}

void LedgerMetrics::OnAppendAnswered(ledger::Code result, bool duplicate,
                                     std::chrono::nanoseconds latency) {
  const auto index = static_cast<size_t>(result);
  if (duplicate) {
    append_duplicates_->Increment();
  } else if (index < kCodeCount) {
    append_requests_[index]->Increment();
  }
  append_latency_->Observe(Seconds(latency));
}

void LedgerMetrics::OnVerified(const ledger::Status& result, std::chrono::nanoseconds) {
  const auto index = static_cast<size_t>(result.code());
  if (index < kCodeCount) verifications_[index]->Increment();
  verification_failed_->Set(result.ok() ? 0 : 1);
  verification_timestamp_->SetToCurrentTime();
}

}  // namespace gridledger::monitoring
