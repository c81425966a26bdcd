// Ledger::Impl, shared by ledger.cc (open, reads, verify) and group_commit.cc (the writer).
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ledger/envelope.capnp.h"
#include "ledger/ledger.h"

namespace gridledger::ledger {

// Bytes as a Cap'n Proto Data field (a view: `bytes` must outlive it).
inline capnp::Data::Reader AsData(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

// The fields an event brings to its envelope (what a client sent, as NewEvent holds it, or as a
// StoredEvent read back holds it: the same member names): type, ids, time, actor, payload, flags.
// Position, stream, version, recorded time and the hashes are the ledger's, set by the caller.
template <typename Event>
void SetEventFields(schema::Envelope::Builder envelope, const Event& event) {
  envelope.setType(event.type);
  envelope.setEventId(event.event_id);
  envelope.setOccurredAtUs(event.occurred_at_us);
  envelope.setOccurredAtOffsetMinutes(event.occurred_at_offset_minutes);
  auto actor = envelope.initActor();
  actor.setId(event.actor.id);
  actor.setRole(event.actor.role);
  actor.setOrg(event.actor.org);
  envelope.setPayload(AsData(event.payload));
  envelope.setImported(event.imported);
  if (event.recorded_by) {
    auto by = envelope.initRecordedBy();
    by.setId(event.recorded_by->id);
    by.setRole(event.recorded_by->role);
    by.setOrg(event.recorded_by->org);
  }
}

// Converts a RocksDB status at the module edge.
Status FromRocks(const rocksdb::Status& status, std::string_view what);

// Decodes a stored value (canonical Envelope) in place when it is word-aligned, else from a copy.
// Throws kj::Exception on malformed bytes when fields are read; callers catch at their edge.
// One stored envelope, read in place when RocksDB's bytes are word-aligned, else from a copy in
// `scratch` (reused across the events of a scan, so a scan allocates nothing per event).
// Not movable: the reader points into the object.
class StoredValue {
 public:
  explicit StoredValue(std::string_view bytes, kj::Array<capnp::word>* scratch = nullptr);
  StoredValue(const StoredValue&) = delete;
  StoredValue& operator=(const StoredValue&) = delete;
  bool well_formed() const { return well_formed_; }
  schema::Envelope::Reader envelope();
  // True when the bytes are exactly the canonical encoding (no stray padding or unused bytes).
  bool canonical() { return reader_->isCanonical(); }

 private:
  bool well_formed_ = false;
  kj::Array<capnp::word> copy_;
  kj::ArrayPtr<const capnp::word> words_;
  kj::ArrayPtr<const capnp::word> segments_[1];
  std::optional<capnp::SegmentArrayMessageReader> reader_;
};

class Ledger::Impl {
 public:
  Impl(std::string dir, Options options) : dir_(std::move(dir)), options_(std::move(options)) {}
  ~Impl();

  Status OpenDatabase();
  Status Recover();
  void StartWriter();

  Result<AppendResult> Append(AppendRequest request);
  void AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done);

  Result<StoredEvent> Get(uint64_t position) const;
  Result<int64_t> StoredStreamVersion(std::string_view stream) const;
  Result<std::optional<uint64_t>> FindEventId(const std::string& event_id) const;
  Result<std::vector<StoredEvent>> ReadStream(const std::string& stream, uint64_t from_version,
                                              uint64_t limit) const;
  Result<std::vector<StoredEvent>> ReadFrom(uint64_t from_position, uint64_t limit) const;
  Status Scan(uint64_t from_position, const std::function<bool(const EventView&)>& visit) const;
  Status ScanStream(const std::string& stream, uint64_t from_version, uint64_t limit,
                    const std::function<bool(const EventView&)>& visit) const;
  // Visits stored values with position in [from_position, head]; stops when visit returns false.
  Status ScanValues(uint64_t from_position,
                    const std::function<bool(uint64_t position, StoredValue& value)>& visit) const;
  // The same over [from_position, last] as of `snapshot` (nullptr: the latest state).
  Status ScanValues(uint64_t from_position, uint64_t last, const rocksdb::Snapshot* snapshot,
                    const std::function<bool(uint64_t position, StoredValue& value)>& visit) const;
  Result<uint64_t> PositionAt(int64_t recorded_at_us) const;

  std::unique_ptr<SideBatch> NewSideBatch();
  Status WriteSide(SideBatch& batch, bool sync);
  Status WriteSideUnlogged(SideBatch& batch);
  Status WriteSideUnloggedInBackground(std::unique_ptr<SideBatch> batch);
  Status FlushSide();
  Result<std::optional<std::string>> GetSide(SideFamily family, std::string_view key) const;
  // Keys starting with `prefix`, from the first >= `from`.
  Status ScanSide(SideFamily family, std::string_view prefix, std::string_view from,
                  const std::function<bool(std::string_view, std::string_view)>& visit) const;
  Status ClearSide(SideFamily family);
  Status SyncWal();
  Status Compact();
  Result<Digest> Backup(const std::string& dest);
  static void RemoveAbandonedStaging(const std::filesystem::path& parent);
  void SetAppendObserver(AppendObserver* observer);
  Result<Digest> Verify(const std::atomic<bool>& stop) const;

  StorageStats Storage() const;
  LedgerProbe* probe() const { return options_.probe; }

  LedgerStats stats() const {
    return {requests_taken_.load(std::memory_order_relaxed),
            group_commits_.load(std::memory_order_relaxed), queued()};
  }
  size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }
  uint64_t head() const { return head_.load(std::memory_order_acquire); }
  Digest HeadDigest() const;
  uint64_t WaitForHeadAbove(uint64_t position, std::chrono::milliseconds timeout) const;
  uint64_t AddHeadListener(std::function<void(uint64_t)> listener);
  void RemoveHeadListener(uint64_t id);

 private:
  struct PendingAppend {
    AppendRequest request;
    std::function<void(Result<AppendResult>)> done;  // called once, on the completer thread
    std::chrono::steady_clock::time_point enqueued;  // for the probe's latency; set with a probe
  };
  // What a group commit has staged but not yet written.
  struct StagedEvent {
    NewEvent event;
    std::string stream;
    uint64_t position;
    uint64_t version;
  };
  struct Staging {
    uint64_t head = 0;
    std::string head_hash;
    int64_t recorded_at_us = 0;
    std::unordered_map<std::string, int64_t> stream_versions;
    std::unordered_map<std::string, StagedEvent> ids;
  };

  // One group commit on its way from the stager to the writer.
  struct Commit {
    std::vector<std::unique_ptr<PendingAppend>> batch;
    std::vector<Result<AppendResult>> results;
    std::shared_ptr<Staging> staging;
    std::shared_ptr<const Staging> previous_staging;  // the overlay this commit replaced
    rocksdb::WriteBatch write_batch;
    std::unique_ptr<SideBatch> side_batch;  // the observer's view of write_batch
    AppendObserver* observer = nullptr;
    uint64_t base_head = 0;   // the staged head this commit was opened on
    size_t requests = 0;      // taken into the commit (staged, or being staged)
    size_t events = 0;        // events of those requests
    uint64_t new_events = 0;  // staged past base_head; 0: nothing to write (retries, errors)
  };
  // Stager thread (group_commit.cc): takes requests, stages them into commits.
  void StagerLoop();
  void OpenCommit();
  bool NextFits(const Commit& commit) const;
  void StageChunk(std::unique_lock<std::mutex>& lock);
  bool OpenCommitSealable() const;
  bool StackedOnFailure() const;
  void SealOpenCommit(std::unique_lock<std::mutex>& lock);
  void RestageFromDurable();
  void FailStacked(std::unique_ptr<Commit> commit, uint64_t durable_head);
  void RememberStreamVersions(const Staging& staging);
  static const StagedEvent* FindStaged(const Staging& staging, const std::string& event_id);
  // Writer thread: writes commits in order.
  void WriterLoop();
  bool WriteCommit(Commit& commit);
  // Gives a written (or failed) commit to the completer, which answers its requests.
  void HandOff(std::unique_ptr<Commit> commit);
  // Completer thread: answers appenders.
  void CompleterLoop();
  Result<AppendResult> Stage(const AppendRequest& request, Staging* staging,
                             rocksdb::WriteBatch* batch);
  Result<AppendResult> StageCatching(const AppendRequest& request, Staging* staging,
                                     rocksdb::WriteBatch* batch);
  Result<std::optional<AppendResult>> FindRetry(const AppendRequest& request,
                                                const Staging& staging) const;
  Result<int64_t> CurrentVersion(const std::string& stream, const Staging& staging);
  void StageEvent(const std::string& stream, const NewEvent& event, uint64_t version,
                  Staging* staging, rocksdb::WriteBatch* batch);
  rocksdb::ColumnFamilyHandle* SideHandle(SideFamily family) const;
  // Waits for the background side write, if any, and forgets it. Returns the failure of a
  // background write not yet told to a writer of the side families; a `writer` (a call that writes
  // them) takes it, so it is told once, while reads and copies meanwhile are all refused with it.
  // REQUIRES: side_order_mutex_ held.
  Status FinishBackgroundSideWrite(bool writer = true) const;
  // For reads and copies (writer false), taking side_order_mutex_ only for it.
  Status AfterBackgroundSideWrite() const;
  // Every write of a batch to RocksDB (commits, side batches). After a write failed with an I/O
  // error RocksDB takes no more writes until it is resumed (a full disk, most often): each write
  // first lets TryResumeStore try, and a write that fails meanwhile says why, naming the first
  // failure.
  Status WriteToStore(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                      std::string_view what);
  // The same gate around any call that changes the store (a write, flush, compaction, WAL sync):
  // runs `change` after TryResumeStore, and an I/O error it returns stops the store as a failed
  // write does. `what` names it in the error; only a write (`is_write`) that goes through shows
  // that the store takes writes again.
  Status ChangeStore(const std::function<rocksdb::Status()>& change, std::string_view what,
                     bool is_write = false);
  // After a failed write: DB::Resume, by one thread at a time and at most once per
  // kStorageResumeInterval; a no-op otherwise.
  void TryResumeStore();
  // Tells the probe (if any) how a request was answered.
  void ReportAnswer(const Result<AppendResult>& result,
                    std::chrono::steady_clock::time_point enqueued) const;
  void ReportRefusal(const Status& refusal, std::chrono::steady_clock::time_point enqueued) const;
  void ReportGroupCommit(const Commit& commit, bool written,
                         std::chrono::nanoseconds write_latency) const;
  void Publish(const Staging& staging);

  const std::string dir_;
  const Options options_;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned by db_; destroyed before it
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> side_handles_;  // Options::side_families, in order

  // A side batch being written on a thread of its own (WriteSideUnloggedInBackground), with an
  // index of what it holds for GetSide meanwhile.
  struct BackgroundSideWrite {
    std::unique_ptr<SideBatch> batch;
    // Per side family: key → value (nullopt: deleted), views into the batch; the last write of
    // a key wins.
    std::vector<std::unordered_map<std::string_view, std::optional<std::string_view>>> keys;
    std::thread thread;
    Status status;  // of the write, once the thread ended
  };
  // Held by every side-family call that writes, flushes, scans or clears, and by the wait for the
  // background write: they happen after it, one at a time.
  mutable std::mutex side_order_mutex_;
  // Guards background_side_ for GetSide; it is set and reset only under side_order_mutex_ too.
  mutable std::mutex side_overlay_mutex_;
  mutable std::unique_ptr<BackgroundSideWrite> background_side_;
  mutable Status
      background_side_failure_;  // under side_order_mutex_; see FinishBackgroundSideWrite

  // One backup at a time (Backup): two would each make a checkpoint of the whole database.
  std::mutex backup_mutex_;

  // Whether a write to RocksDB failed and no write was taken since (WriteToStore).
  std::atomic<bool> store_stopped_{false};
  // Guards the failure that stopped storage and the last attempt to resume it (when, and why it
  // failed). Never held while RocksDB works.
  std::mutex store_resume_mutex_;
  Status store_failure_;
  std::string store_resume_error_;
  std::chrono::steady_clock::time_point store_resume_tried_{};
  // Held by the one thread calling DB::Resume (TryResumeStore).
  std::mutex store_resuming_mutex_;

  // Set by SetAppendObserver; read once per group commit by the writer.
  std::atomic<AppendObserver*> observer_{nullptr};
  // The observer and its view of the batch, for the chunk being staged (stager thread only).
  SideBatch* staging_side_batch_ = nullptr;
  AppendObserver* staging_observer_ = nullptr;

  // mutex_ guards the queue between appenders and the stager (bounded by
  // Options::append_queue_requests_max), the open commit (being staged) and the slot (the commit
  // being written), whether the last written commit failed, and the committed head.
  mutable std::mutex mutex_;
  std::condition_variable stager_cv_;    // queue not empty, slot free, or stopping
  std::condition_variable writer_cv_;    // slot filled, open commit sealable, or stager done
  std::condition_variable observer_cv_;  // a commit's observer stopped being in use
  std::deque<std::unique_ptr<PendingAppend>> queue_;
  size_t queued_events_ = 0;  // events of the requests in queue_
  bool stopping_ = false;
  // The commit being staged. While chunk_in_progress_, the stager adds to it without the lock
  // and nobody else touches it; between chunks whoever seals it holds the lock.
  std::unique_ptr<Commit> open_;
  bool chunk_in_progress_ = false;
  std::unique_ptr<Commit> slot_;
  bool write_failed_ = false;
  AppendObserver* failing_observer_ = nullptr;  // of a stacked commit being failed (unlocked)
  bool stager_done_ = false;
  std::thread stager_;
  std::thread writer_;

  // Staging state: what is staged (durable or being written), the previous commit as an overlay
  // for idempotency checks, and the cache of stream heads as staged. Read by the stager while it
  // stages a chunk, changed only when a commit is opened or sealed (under mutex_, between chunks).
  uint64_t staged_head_ = 0;
  std::string staged_hash_;
  int64_t staged_recorded_at_us_ = 0;
  std::shared_ptr<const Staging> inflight_;

  std::atomic<uint64_t> requests_taken_{0};
  std::atomic<uint64_t> group_commits_{0};

  // Between the writer and the completer; bounded by kCompletionBatchesMax.
  std::mutex completion_mutex_;
  std::condition_variable completion_cv_;
  std::deque<std::unique_ptr<Commit>> completions_;
  bool completer_stopping_ = false;
  std::thread completer_;

  // The durable head, hash and recorded_at: written by the writer under mutex_.
  uint64_t committed_head_ = 0;
  std::string committed_hash_;
  int64_t committed_recorded_at_us_ = 0;
  std::unordered_map<std::string, int64_t> stream_head_cache_;

  // What readers see. head_ is published after each successful sync.
  std::atomic<uint64_t> head_{0};
  mutable std::mutex head_mutex_;
  mutable std::condition_variable head_cv_;
  std::string head_hash_;  // guarded by head_mutex_

  std::mutex listeners_mutex_;
  uint64_t next_listener_id_ = 1;
  std::map<uint64_t, std::function<void(uint64_t)>> listeners_;
};

}  // namespace gridledger::ledger
