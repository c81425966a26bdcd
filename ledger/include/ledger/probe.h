// LedgerProbe: what the write path and verification report for metrics. The ledger calls it; an
// implementation (monitoring/) turns the calls into counters and histograms. The ledger knows no
// metrics library.
//
// Calls come from the ledger's own threads (writer, completer) and from callers of AppendAsync
// (requests refused at once) and Verify. An implementation must be thread-safe, cheap and
// non-blocking (it runs on the write path once per request and once per group commit), must not
// throw and must not call back into the ledger. Every method has a no-op default.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "ledger/status.h"

namespace gridledger::ledger {

// One group commit as the writer wrote it.
struct GroupCommitFigures {
  bool written = false;  // false: the write failed and nothing of the commit is stored
  size_t requests = 0;   // append requests staged into it (retries and refusals included)
  uint64_t events = 0;   // new events in it
  uint64_t bytes = 0;    // size of its WriteBatch (events, index entries, projections' writes)
  std::chrono::nanoseconds write_latency{0};  // the (synced, with Options::sync) WriteBatch write
};

class LedgerProbe {
 public:
  virtual ~LedgerProbe() = default;

  // Writer thread, after each group commit that carried new events was written or failed.
  virtual void OnGroupCommit(const GroupCommitFigures& /*figures*/) {}
  // An append request was answered with `result` (kOk for stored events and for retries, with
  // `duplicate` set for a retry). `latency`: from AppendAsync to the answer being handed over.
  virtual void OnAppendAnswered(Code /*result*/, bool /*duplicate*/,
                                std::chrono::nanoseconds /*latency*/) {}
  // Verify() finished: ok, or the failure (kCorruption with its position, kIoError).
  virtual void OnVerified(const Status& /*result*/, std::chrono::nanoseconds /*duration*/) {}
};

}  // namespace gridledger::ledger
