// Ledger: an append-only, hash-chained, idempotent event log in RocksDB.
//
// Thread-safety: every method may be called from any thread. Appends go through a pipeline of
// three threads: the stager gathers concurrent requests into one WriteBatch (group commit) and
// assigns positions and hashes; the writer writes each batch with one sync, in order, while the
// stager prepares the next; the completer answers appenders. A caller is answered only after the
// sync of its batch returned. Reads go straight to RocksDB and see every acknowledged event.
//
// Errors: see status.h. Nothing throws.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ledger/event.h"
#include "ledger/limits.h"
#include "ledger/probe.h"
#include "ledger/side_store.h"
#include "ledger/status.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace gridledger::ledger {

struct Options {
  // Create the data directory when it does not exist. Default: true.
  bool create_if_missing = true;
  // fsync the write-ahead log before acknowledging. Default: true. Only benchmarks of the
  // non-durable path turn it off: with false, an acknowledged event can be lost on power failure.
  bool sync = true;
  // Requests that may wait for the writer before Append answers kBusy.
  // Default: kAppendQueueRequestsMax (limits.h).
  size_t append_queue_requests_max = kAppendQueueRequestsMax;
  // Streams whose last version the stager keeps in memory before it starts the cache afresh.
  // Default: kStreamHeadCacheEntriesMax. Smaller values cost RocksDB lookups, never correctness.
  size_t stream_head_cache_entries_max = kStreamHeadCacheEntriesMax;
  // Column families owned by higher layers (projections), created when missing. Default: none.
  std::vector<std::string> side_families;
  // Clock for recorded_at (Unix microseconds). Default: the system clock. Tests inject a fixed
  // clock.
  std::function<int64_t()> now_us;
  // Observer of the write path and of Verify, for metrics (probe.h); not owned, must outlive the
  // ledger. Costs one steady-clock read per request and a few virtual calls per group commit.
  // Default: none.
  LedgerProbe* probe = nullptr;
  // RocksDB environment (file system, clock); not owned, must outlive the ledger. Tests inject
  // failing file systems. Default: RocksDB's default environment.
  rocksdb::Env* env = nullptr;
  // Fault injection for tests: called before each group commit's write; returning true fails that
  // write as if RocksDB had refused it with nothing stored (RocksDB itself stops taking writes
  // after a failed one, so only this exercises later commits). Default: none.
  std::function<bool()> fail_write;
  // Where RocksDB's warnings and errors go (e.g. "No space left on device"): called with a level
  // name ("warning", "error", "fatal") and the message, from any thread. Default: appended to
  // the file LOG in the data directory (moved to LOG.old past 1 MiB). Never RocksDB's own
  // writer, which aborts the process when the disk is full (storage_log.h).
  std::function<void(std::string_view level, std::string_view message)> storage_log;
  // For tests: called on the background side write's thread before it writes its batch (see
  // WriteSideUnloggedInBackground), e.g. to hold it while the batch must answer reads. Default:
  // none.
  std::function<void()> before_background_side_write;
};

// Counters of the write path (for metrics and tests).
struct LedgerStats {
  uint64_t requests_taken = 0;  // append requests taken off the queue by the stager, ever
  uint64_t group_commits = 0;   // synced WriteBatches written, ever
  size_t queued = 0;            // requests waiting in the queue now
};

// RocksDB's own estimates, summed over every column family (for metrics).
struct StorageStats {
  uint64_t live_data_bytes = 0;           // rocksdb.estimate-live-data-size
  uint64_t sst_files_bytes = 0;           // rocksdb.total-sst-files-size
  uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
  uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
};

// Checks an envelope handed out by StoredEvent::CanonicalEnvelope, without a ledger: decodes it
// and recomputes its hash from its content, prev_hash and position (chain.h). The event when
// the hash matches. Errors: kInvalid when the bytes are not an envelope; kCorruption when the
// hash does not match its content. (Anyone can make an envelope consistent with its own hash:
// that the event is in a ledger's history is proved against the ledger, whose hash at the
// event's position must be the event's — `ledgerctl verify --events`.)
Result<StoredEvent> CheckEnvelope(std::string_view canonical_bytes);

// Whether `path` is `dir` or lies below it, both resolved as far as they exist (symlinks, "..");
// false when either cannot be resolved. A backup may not lie inside the data directory
// (Ledger::Backup; ledgerd checks its --backup-dir with it at start).
bool PathWithin(const std::string& path, const std::string& dir);

class Ledger {
 public:
  // Opens (or creates) the ledger in `dir`. Checks the format version, recovers head position and
  // hash from meta and checks them against the last stored event.
  // Errors: kLocked when another process holds `dir`; kCorruption on a failed check; kIoError.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& dir, Options options = {});

  // Stops taking appends, answers every queued request, and closes the database.
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Appends `request` atomically. A retry (first event_id already stored) returns the original
  // positions with duplicate = true and writes nothing.
  // Errors: kInvalid, kVersionConflict (current_version() set), kDuplicateMismatch, kBusy,
  // kIoError, kShutdown. On any error nothing of the request is stored.
  Result<AppendResult> Append(AppendRequest request);
  // The same append without waiting: `done` is called exactly once with what Append would have
  // returned — on the calling thread when the request is refused at once (kInvalid, kBusy,
  // kShutdown), otherwise on the ledger's completer thread after the commit is durable or failed.
  // `done` must not block: it delays the answers of every later commit.
  void AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done);

  // Makes every acknowledged append durable (fsync of the write-ahead log). Only needed when the
  // ledger was opened with Options::sync = false, e.g. for a bulk load.
  Status SyncWal();
  // Flushes every family and compacts each into its own layout (compression, filters), rewriting
  // table files written under other settings too — e.g. an events family compressed by an older
  // version. Blocks until done. For after a bulk load; never needed for correctness.
  Status Compact();

  // A copy of the whole data directory (every family, projections included) in `dest`, a
  // directory that must not exist yet (its parents are made), taken while appends go on: what
  // was written before it began, and what is written meanwhile up to some point. It is made and
  // verified (opened, hash chain and indexes checked) in a staging directory of its own beside
  // `dest`, then renamed to `dest`; a failed one leaves nothing. Returns the copy's verified head
  // digest. On the same file system the table files are hard links (a snapshot: no protection
  // against losing the disk); elsewhere they are copied. The copy is a data directory: open it
  // to restore. Errors: kInvalid when something is at `dest`; kBusy while another backup runs;
  // kIoError; kCorruption when the copy does not verify (with Verify's position).
  Result<Digest> Backup(const std::string& dest);

  // Events of `stream` with version >= from_version, at most `limit` of them.
  Result<std::vector<StoredEvent>> ReadStream(const std::string& stream, uint64_t from_version = 0,
                                              uint64_t limit = kReadAll) const;
  // Events with position >= from_position, at most `limit` (clamped to kReadLimitMax).
  Result<std::vector<StoredEvent>> ReadFrom(uint64_t from_position, uint64_t limit) const;
  // One event. kNotFound when position is 0 or past head.
  Result<StoredEvent> ReadOne(uint64_t position) const;
  // Calls `visit` for every event with position in [from_position, head at call time], in order,
  // reading in place; stops early when `visit` returns false. The fast path for replay.
  Status Scan(uint64_t from_position, const std::function<bool(const EventView&)>& visit) const;
  // Calls `visit` for at most `limit` events of `stream` from `from_version` on, in version order,
  // reading each stored envelope in place (ReadStream without decoding into values); stops early
  // when `visit` returns false.
  Status ScanStream(const std::string& stream, uint64_t from_version, uint64_t limit,
                    const std::function<bool(const EventView&)>& visit) const;

  // The position of the event stored under `event_id`, or nullopt.
  Result<std::optional<uint64_t>> FindEventId(const std::string& event_id) const;

  // The last version of `stream`, or kNoStream.
  Result<int64_t> StreamVersion(const std::string& stream) const;

  uint64_t Head() const;
  // Append requests queued for the writer right now (for metrics and tests).
  size_t QueuedAppends() const;
  LedgerStats Stats() const;
  // Reads a few RocksDB properties; cheap (no I/O).
  StorageStats Storage() const;
  Digest HeadDigest() const;
  // The stored hash at `position` (kNotFound past head). Does not re-verify; see Verify.
  Result<Digest> DigestAt(uint64_t position) const;

  // The highest position whose recorded_at <= recorded_at_us (0 when none): the log as the system
  // knew it at that time. recorded_at never decreases with position, so this is a binary search.
  Result<uint64_t> PositionAt(int64_t recorded_at_us) const;

  // Blocks until Head() > position or `timeout` passes; returns the head seen.
  uint64_t WaitForHeadAbove(uint64_t position, std::chrono::milliseconds timeout) const;
  // Calls `listener(head)` on the writer thread after each group commit. The listener must be cheap
  // and must not call Append. Returns an id for RemoveHeadListener.
  uint64_t AddHeadListener(std::function<void(uint64_t head)> listener);
  void RemoveHeadListener(uint64_t id);

  // Recomputes the whole hash chain from position 1 and checks the streams and ids indexes against
  // it. ok and the head digest, or kCorruption: with position() = the first bad position for the
  // chain, without one for an index that does not match.
  Result<Digest> Verify() const;
  // The same, giving up with kShutdown (reported to no probe) as soon as `*stop` is true: for a
  // background verification that must not hold up a shutdown.
  Result<Digest> Verify(const std::atomic<bool>& stop) const;

  // Side families (see side_store.h). `family` indexes Options::side_families.
  std::unique_ptr<SideBatch> NewSideBatch();
  // Writes `batch` atomically; `sync` as in Options::sync. Does not go through the append queue.
  Status WriteSide(SideBatch& batch, bool sync);
  // Writes `batch` atomically without the write-ahead log: cheaper for bulk writes, but a crash
  // loses it unless FlushSide() returned after it. Only for work that starts again from scratch
  // after a crash (a rebuild of the projections).
  Status WriteSideUnlogged(SideBatch& batch);
  // WriteSideUnlogged on a thread of the ledger's, so that the caller goes on meanwhile (a rebuild
  // folds the next events while the last batch goes into the memtables). Takes the batch. Until
  // its write has ended, GetSide answers the keys it holds from it. One at a time: the call first
  // waits for the previous one and, if that failed, returns its error (and writes nothing).
  // Every other side-family call waits for it first and reports its failure the same way: each
  // read or copy (ScanSide, Backup, Compact) until a call that writes the side families (this
  // one, WriteSide, WriteSideUnlogged, FlushSide, ClearSide) has been told. Only for work that
  // starts again from scratch after a crash or an error (a rebuild).
  Status WriteSideUnloggedInBackground(std::unique_ptr<SideBatch> batch);
  // Flushes the memtables of every side family to table files and waits for it: what was written
  // to them before, with or without the write-ahead log, then survives a crash.
  Status FlushSide();
  // The value at `key`, or nullopt.
  Result<std::optional<std::string>> GetSide(SideFamily family, std::string_view key) const;
  // Calls visit(key, value) for keys starting with `prefix`, in key order, until it returns false.
  Status ScanSide(
      SideFamily family, std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const;
  // The same for every key >= `from`, in key order: a long scan taken in parts, each resuming
  // after the last key of the one before (that key + '\0').
  Status ScanSideFrom(
      SideFamily family, std::string_view from,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const;
  // Deletes every key of the family (a rebuild starts from nothing).
  Status ClearSide(SideFamily family);

  // Installs the observer of group commits (nullptr removes it). Takes effect from the next group
  // commit; returns once no commit still refers to the previous observer, which may then be
  // destroyed. REQUIRES: not called from a head listener or an observer callback.
  void SetAppendObserver(AppendObserver* observer);

  static constexpr uint64_t kReadAll = UINT64_MAX;

 private:
  class Impl;
  explicit Ledger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gridledger::ledger
