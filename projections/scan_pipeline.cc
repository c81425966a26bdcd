// Reading the log on one thread while folding on another (see scan_pipeline.h).
#include "scan_pipeline.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "ledger/assert.h"

namespace gridledger::projections {

static_assert(kScanBatchBytesMax < (uint64_t{1} << 31), "offsets of a batch must fit 32 bits");

void ScanBatch::Clear() {
  bytes_.clear();
  events_.clear();
}

ScanBatch::Text ScanBatch::Copy(std::string_view text, size_t alignment) {
  while (bytes_.size() % alignment != 0) bytes_.push_back('\0');
  const Text copied{static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(text.size())};
  bytes_.append(text);
  return copied;
}

void ScanBatch::Add(const EventRecord& record) {
  if (bytes_.capacity() < kScanBatchBytesMax) bytes_.reserve(kScanBatchBytesMax + (1 << 16));
  Event event;
  event.position = record.position;
  event.occurred_at_us = record.occurred_at_us;
  event.recorded_at_us = record.recorded_at_us;
  event.imported = record.imported;
  event.opens_stream = record.opens_stream;
  event.payload = Copy(record.payload, 8);  // Cap'n Proto reads aligned words in place
  event.stream = Copy(record.stream, 1);
  event.type = Copy(record.type, 1);
  event.actor_id = Copy(record.actor_id, 1);
  event.actor_org = Copy(record.actor_org, 1);
  // Read only of a Corrected (who may correct what, domain/roles.h); other events skip the copy.
  if (record.type == "Corrected") event.actor_role = Copy(record.actor_role, 1);
  LEDGER_ASSERT(bytes_.size() < (uint64_t{1} << 32));
  events_.push_back(event);
}

EventRecord ScanBatch::At(size_t index) const {
  const Event& event = events_[index];
  return EventRecord{event.position,       View(event.stream),    View(event.type),
                     View(event.actor_id), View(event.actor_org), event.occurred_at_us,
                     event.recorded_at_us, View(event.payload),   event.imported,
                     event.opens_stream,   View(event.actor_role)};
}

void ScanBatch::Prefetch(size_t index) const {
  const Event& event = events_[index];
  // An event's bytes are contiguous, payload first (Add).
  const char* first = bytes_.data() + event.payload.offset;
  const char* end = bytes_.data() + event.actor_org.offset + event.actor_org.size;
  constexpr size_t kLine = 64;
  constexpr size_t kLinesMax = 16;  // a larger payload is read as it is folded
  for (size_t line = 0; line < kLinesMax && first + line * kLine < end; ++line) {
    __builtin_prefetch(first + line * kLine);
  }
}

namespace {

// Batches between the scanning thread and the folding thread; every batch is always in exactly
// one place: free, filled (queued), or held by one of the threads.
class BatchQueue {
 public:
  BatchQueue() {
    for (size_t i = 0; i < kScanBatchesMax; ++i) free_.push_back(std::make_unique<ScanBatch>());
  }

  // Scanner: a free batch, or nullptr once the folder stopped.
  std::unique_ptr<ScanBatch> TakeFree() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stopped_ || !free_.empty(); });
    if (stopped_) return nullptr;
    auto batch = std::move(free_.front());
    free_.pop_front();
    return batch;
  }
  void PutFilled(std::unique_ptr<ScanBatch> batch) {
    std::lock_guard lock(mutex_);
    filled_.push_back(std::move(batch));
    cv_.notify_all();
  }
  void FinishScan(ledger::Status status) {
    std::lock_guard lock(mutex_);
    scan_status_ = std::move(status);
    scan_done_ = true;
    cv_.notify_all();
  }

  // Folder: the next filled batch, or nullptr when the scan is done and all were taken.
  std::unique_ptr<ScanBatch> TakeFilled() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return scan_done_ || !filled_.empty(); });
    if (filled_.empty()) return nullptr;
    auto batch = std::move(filled_.front());
    filled_.pop_front();
    return batch;
  }
  void PutFree(std::unique_ptr<ScanBatch> batch) {
    batch->Clear();
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(batch));
    cv_.notify_all();
  }
  void Stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    cv_.notify_all();
  }
  ledger::Status scan_status() {
    std::lock_guard lock(mutex_);
    return scan_status_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<ScanBatch>> free_;
  std::deque<std::unique_ptr<ScanBatch>> filled_;
  bool stopped_ = false;
  bool scan_done_ = false;
  ledger::Status scan_status_;
};

}  // namespace

ledger::Status ScanPipelined(const ledger::Ledger& ledger, uint64_t from, uint64_t last,
                             const std::function<ledger::Status(const EventRecord&)>& fold,
                             const Ahead& ahead) {
  BatchQueue queue;
  std::thread scanner([&] {
    std::unique_ptr<ScanBatch> batch;
    ledger::Status scanned = ledger.Scan(from, [&](const ledger::EventView& event) {
      if (event.position() > last) return false;
      if (batch == nullptr && (batch = queue.TakeFree()) == nullptr) return false;
      batch->Add(RecordOf(event));
      if (batch->full()) queue.PutFilled(std::move(batch));
      return true;
    });
    if (batch != nullptr && batch->size() > 0) queue.PutFilled(std::move(batch));
    queue.FinishScan(std::move(scanned));
  });
  ledger::Status failure;
  while (failure.ok()) {
    std::unique_ptr<ScanBatch> batch = queue.TakeFilled();
    if (batch == nullptr) break;
    const size_t size = batch->size();
    for (size_t i = 0; i < size && failure.ok(); ++i) {
      // The scanner wrote the batch on another core: start reading it before the steps do.
      if (i + kAheadBytesEvents < size) batch->Prefetch(i + kAheadBytesEvents);
      for (size_t step = 0; ahead && step < kAheadSteps; ++step) {
        if (i + kAheadEvents[step] < size) ahead(batch->At(i + kAheadEvents[step]), step);
      }
      failure = fold(batch->At(i));
    }
    queue.PutFree(std::move(batch));
  }
  queue.Stop();  // a scanner waiting for a free batch gives up
  scanner.join();
  if (!failure.ok()) return failure;
  return queue.scan_status();
}

}  // namespace gridledger::projections
