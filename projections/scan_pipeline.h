// Internal to projections/: reading the log on one thread while the Engine folds on another.
//
// A long catch-up (a rebuild) spends about a fifth of its time in the ledger's scan (RocksDB
// iteration, Cap'n Proto envelope, EventRecord). ScanPipelined runs that scan on a thread of its
// own, which copies each event into a batch; the calling thread folds the batches in position
// order. At most kScanBatchesMax batches of kScanBatchEventsMax events exist at once, so memory
// stays bounded however long the log is.
//
// Thread-safety: the scanning thread only reads the ledger; `fold` runs on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "projections/application.h"

namespace gridledger::projections {

inline constexpr size_t kScanBatchEventsMax = 4096;
// A batch is handed over once its bytes pass this (one event adds at most a few MiB: payloads
// are at most 1 MiB), which also keeps its offsets far below 2^32.
inline constexpr size_t kScanBatchBytesMax = size_t{1} << 20;
inline constexpr size_t kScanBatchesMax = 4;  // in flight: being filled, queued, being folded

// Events copied out of the scan: the bytes of their strings in one buffer, payloads 8-byte
// aligned so Cap'n Proto reads them in place.
class ScanBatch {
 public:
  void Clear();
  void Add(const EventRecord& record);
  size_t size() const { return events_.size(); }
  bool full() const {
    return events_.size() >= kScanBatchEventsMax || bytes_.size() >= kScanBatchBytesMax;
  }
  // Views into this batch, valid until the next Add or Clear.
  EventRecord At(size_t index) const;
  // Starts loading the bytes of event `index` into the CPU caches.
  void Prefetch(size_t index) const;

 private:
  struct Text {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Event {
    uint64_t position = 0;
    int64_t occurred_at_us = 0;
    int64_t recorded_at_us = 0;
    Text stream, type, actor_id, actor_org, payload;
    Text actor_role;  // of a Corrected only: only corrections are judged by it
    bool imported = false;
    bool opens_stream = false;
  };
  Text Copy(std::string_view text, size_t alignment);
  std::string_view View(Text text) const { return {bytes_.data() + text.offset, text.size}; }

  std::string bytes_;
  std::vector<Event> events_;
};

// Folding is mostly waiting for memory (the state an event changes is rarely in a CPU cache), so
// the folder may look ahead: `ahead(event, step)` is called kAheadEvents[step] events before
// `fold(event)`, for each step from the farthest to the nearest (within a batch only), so that
// each step can start loading what the next one reads.
// The batch's own bytes are loaded kAheadBytesEvents events ahead, before any step reads them.
inline constexpr size_t kAheadBytesEvents = 16;
inline constexpr size_t kAheadSteps = 4;
inline constexpr size_t kAheadEvents[kAheadSteps] = {8, 4, 2, 1};
using Ahead = std::function<void(const EventRecord&, size_t step)>;

// Calls `fold` for every event from `from` to `last` (inclusive) in position order, until it
// returns an error, which is returned; else the scan's status.
ledger::Status ScanPipelined(const ledger::Ledger& ledger, uint64_t from, uint64_t last,
                             const std::function<ledger::Status(const EventRecord&)>& fold,
                             const Ahead& ahead = {});

}  // namespace gridledger::projections
