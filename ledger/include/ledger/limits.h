// Every bound of the ledger, named in one place. Overload is refused, never buffered without bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace gridledger::ledger {

// One append request (one stream, atomically).
inline constexpr size_t kAppendEventsMax = 1000;
inline constexpr size_t kStreamIdBytesMax = 200;
inline constexpr size_t kEventIdBytesMax = 128;
inline constexpr size_t kTypeBytesMax = 64;
inline constexpr size_t kActorFieldBytesMax = 64;
inline constexpr size_t kPayloadBytesMax = 64 * 1024;

// Group commit: requests waiting for the writer, and how much one synced WriteBatch may gather.
inline constexpr size_t kAppendQueueRequestsMax = 4096;
inline constexpr size_t kGroupCommitRequestsMax = 512;
inline constexpr size_t kGroupCommitEventsMax = 4096;
// While the writer syncs one commit, the stager tops up the next one whenever this many events
// have queued (one wake-up per chunk instead of one per request; a large request is a chunk).
inline constexpr size_t kStageTopUpEvents = 8;
// Written group commits whose appenders are still being answered.
inline constexpr size_t kCompletionBatchesMax = 8;
static_assert(kGroupCommitEventsMax >= kAppendEventsMax,
              "a single maximal request must fit in one group commit");

// The stager's cache of stream heads (stream id -> last version). Cleared when full: RocksDB
// holds the truth for every commit but the one being staged (see RememberStreamVersions).
inline constexpr size_t kStreamHeadCacheEntriesMax = 1 << 20;
static_assert(kStreamHeadCacheEntriesMax >= kGroupCommitEventsMax,
              "the cache must hold one commit's streams");

// RocksDB memtables across every column family of the database (DBOptions::db_write_buffer_size):
// past it, the largest memtable is flushed.
inline constexpr size_t kWriteBufferBytesTotalMax = 64 << 20;
// One memtable of a side family (the projections' states). A rebuild writes states without the
// write-ahead log faster than flushes drain them, so memtables and those being flushed were ~60 MiB
// of a 1M-event rebuild's peak; at 16 MiB the peak fell from 265 to 231-238 MiB at the same speed
// (rebuild_bench). At 10M, interleaved runs: 284-285 MiB instead of 289-300, ~4 % slower (more
// level-0 files for the reloads of evicted states to look through).
inline constexpr size_t kSideWriteBufferBytes = 16 << 20;
// Hash buckets of the ids family's memtable (8 bytes each, allocated with every ids memtable).
inline constexpr size_t kIdsMemtableBuckets = 1 << 17;

// RocksDB's block cache, one LRU shared by every column family. Without it each family's table
// factory makes its own 32 MiB cache, so memory grew with the number of families (the ledger's
// five, the projections', the relay's). Index and filter blocks live in it too (half of it is
// their high-priority pool; see FamilyOptions in ledger.cc), so memory does not grow with the log.
inline constexpr size_t kBlockCacheBytesTotal = 32 << 20;

// RocksDB's messages in the data directory's file LOG (storage_log.h): past this size the file is
// moved to LOG.old, so the two hold at most twice this.
inline constexpr size_t kStorageLogBytesMax = 1 << 20;

// After a failed write (a full disk), how often a write tries to resume RocksDB; writes in
// between fail at once.
inline constexpr std::chrono::milliseconds kStorageResumeInterval{1000};

// Reads.
inline constexpr uint64_t kReadLimitMax = 100000;

// Hash chain.
inline constexpr size_t kHashBytes = 32;  // SHA-256

}  // namespace gridledger::ledger
