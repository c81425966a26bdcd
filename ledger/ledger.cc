// Ledger: open and recovery, reads, verification. The write path is in group_commit.cc.
#include "ledger/ledger.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "chain.h"
#include "format.h"
#include "impl.h"
#include "ledger/assert.h"
#include "ledger/limits.h"
#include "storage_log.h"

namespace gridledger::ledger {

namespace {

std::string_view ToView(const rocksdb::Slice& slice) { return {slice.data(), slice.size()}; }

std::string BytesOf(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

bool IsLockError(const rocksdb::Status& status) {
  return status.IsIOError() &&
         (status.ToString().find("lock") != std::string::npos ||
          status.ToString().find("Resource temporarily") != std::string::npos);
}

constexpr double kSideMemtableBloomRatio = 0.01;

// `point_lookups`: the family is read by exact key (ids; streams' version 0; the projections'
// states), so bloom filters, on disk and in the memtable, answer "absent" without searching.
// `memtable_bloom_ratio`: the memtable bloom's share of the family's write buffer. It is allocated
// whole with every memtable, so it is kept small on the many side families.
rocksdb::ColumnFamilyOptions FamilyOptions(const std::shared_ptr<rocksdb::Cache>& block_cache,
                                           bool point_lookups, bool uncompressed = false,
                                           double memtable_bloom_ratio = 0.1) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache;
  if (uncompressed) {
    // Replays and subscriptions read the events family end to end, and block decompression was
    // at the top of their profiles; disk is the cheaper resource here. Existing compressed files
    // stay readable; compactions rewrite them uncompressed.
    options.compression = rocksdb::kNoCompression;
  }
  if (point_lookups) {
    // ids is read by exact key on every append (idempotency), projection states on every fold
    // of an evicted application; a bloom filter answers "absent" without touching data blocks.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    // Recent keys live in the memtable; a whole-key bloom there answers misses without a search.
    options.memtable_prefix_bloom_size_ratio = memtable_bloom_ratio;
    options.memtable_whole_key_filtering = true;
  }
  // Index and filter blocks live in the block cache, partitioned (a small pinned top level, 4 KiB
  // partitions loaded as needed), instead of whole in every open table file's reader: those grew
  // with the log, ~6 bytes per event (60 MiB at 10M events, most of it the events index and the
  // ids and streams filters), outside any bound. Rebuild at 10M: peak RSS 312 → 223 MiB at the
  // same speed (rebuild_bench, ../BENCHMARKS.md). Files written before keep their one-level
  // index; it is cached the same way.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = point_lookups;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

// ids is only ever read by exact key (the idempotency lookup of every append), so its memtable is
// a hash table of short sorted lists rather than one skiplist: an append's id is random, and a
// skiplist insert walked ~20 levels of cache misses on the writer's critical path (the writer's
// largest item with streams' inserts). The whole key is the hash prefix. Flushes sort the
// memtable once, in the background.
rocksdb::ColumnFamilyOptions IdsFamilyOptions(const std::shared_ptr<rocksdb::Cache>& block_cache) {
  rocksdb::ColumnFamilyOptions options = FamilyOptions(block_cache, true);
  options.prefix_extractor.reset(rocksdb::NewNoopTransform());
  options.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(kIdsMemtableBuckets));
  return options;
}

}  // namespace

Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
  if (status.IsCorruption())
    return {Code::kCorruption, std::string(what) + ": " + status.ToString()};
  if (status.IsNotFound()) return {Code::kNotFound, std::string(what) + ": " + status.ToString()};
  return {Code::kIoError, std::string(what) + ": " + status.ToString()};
}

StoredValue::StoredValue(std::string_view bytes, kj::Array<capnp::word>* scratch) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return;
  size_t word_count = bytes.size() / sizeof(capnp::word);
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words_ = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), word_count);
  } else {
    kj::Array<capnp::word>& buffer = scratch != nullptr ? *scratch : copy_;
    if (buffer.size() < word_count) buffer = kj::heapArray<capnp::word>(word_count * 2);
    memcpy(buffer.begin(), bytes.data(), bytes.size());
    words_ = buffer.slice(0, word_count).asConst();
  }
  segments_[0] = words_;
  reader_.emplace(kj::arrayPtr(segments_, 1));
  well_formed_ = true;
}

schema::Envelope::Reader StoredValue::envelope() { return reader_->getRoot<schema::Envelope>(); }

StoredEvent StoredEvent::FromEnvelope(schema::Envelope::Reader envelope) {
  StoredEvent event;
  event.position = envelope.getPosition();
  event.stream = envelope.getStream();
  event.version = envelope.getVersion();
  event.type = envelope.getType();
  event.event_id = envelope.getEventId();
  event.occurred_at_us = envelope.getOccurredAtUs();
  event.occurred_at_offset_minutes = envelope.getOccurredAtOffsetMinutes();
  event.recorded_at_us = envelope.getRecordedAtUs();
  auto actor = envelope.getActor();
  event.actor = {actor.getId(), actor.getRole(), actor.getOrg()};
  event.payload = BytesOf(envelope.getPayload());
  event.imported = envelope.getImported();
  if (envelope.hasRecordedBy()) {
    auto by = envelope.getRecordedBy();
    event.recorded_by = Actor{by.getId(), by.getRole(), by.getOrg()};
  }
  event.prev_hash = BytesOf(envelope.getPrevHash());
  event.hash = BytesOf(envelope.getHash());
  return event;
}

std::string StoredEvent::CanonicalEnvelope() const {
  capnp::MallocMessageBuilder message(64 + payload.size() / sizeof(capnp::word));
  auto envelope = message.initRoot<schema::Envelope>();
  envelope.setPosition(position);
  envelope.setStream(stream);
  envelope.setVersion(version);
  SetEventFields(envelope, *this);
  envelope.setRecordedAtUs(recorded_at_us);
  envelope.setPrevHash(AsData(prev_hash));
  envelope.setHash(AsData(hash));
  kj::Array<capnp::word> canonical = capnp::canonicalize(envelope.asReader());
  return {reinterpret_cast<const char*>(canonical.asBytes().begin()), canonical.asBytes().size()};
}

Result<StoredEvent> CheckEnvelope(std::string_view canonical_bytes) {
  if (canonical_bytes.empty() || canonical_bytes.size() % sizeof(capnp::word) != 0) {
    return Status(Code::kInvalid, "an envelope is a whole number of 8-byte words");
  }
  try {
    kj::Array<capnp::word> words =
        kj::heapArray<capnp::word>(canonical_bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), canonical_bytes.data(), canonical_bytes.size());
    // Canonical: one segment, no segment table (as the ledger stores envelopes).
    kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1));
    auto envelope = reader.getRoot<schema::Envelope>();
    StoredEvent event = StoredEvent::FromEnvelope(envelope);
    if (chain::ComputeHash(envelope) != event.hash) {
      return Status(Code::kCorruption, "position " + std::to_string(event.position) +
                                           ": the hash does not match the envelope's content")
          .WithPosition(event.position);
    }
    return event;
  } catch (const kj::Exception& e) {
    return Status(Code::kInvalid, std::string("not an envelope: ") + e.getDescription().cStr());
  }
}

// ---------------------------------------------------------------------------------------------
// Open and recovery

Ledger::Impl::~Impl() {
  {
    std::lock_guard order(side_order_mutex_);
    FinishBackgroundSideWrite().IgnoreError();  // a rebuild left unfinished starts again anyway
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stager_cv_.notify_all();
  if (stager_.joinable()) stager_.join();  // then the writer drains the last commit and stops
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(completion_mutex_);
    completer_stopping_ = true;
  }
  completion_cv_.notify_all();
  if (completer_.joinable()) completer_.join();
  if (db_) {
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
}

Status Ledger::Impl::OpenDatabase() {
  if (options_.create_if_missing) {
    // RocksDB creates the last path component only; a data directory may be nested (data/demo).
    std::error_code error;
    std::filesystem::create_directories(dir_, error);
    if (error) return {Code::kIoError, "creating " + dir_ + ": " + error.message()};
  } else if (std::error_code error;
             !std::filesystem::exists(std::filesystem::path(dir_) / "CURRENT", error)) {
    return {Code::kNotFound, "no ledger in " + dir_ + " (a data directory holds a file CURRENT)"};
  }
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing;
  // A family a caller names that an existing ledger lacks (a side family added since) is made.
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // One cap on memtable memory across all column families (the ledger's and the projections'),
  // so memory stays bounded however many families a caller adds. Default per family would be
  // 64 MiB × up to 2 memtables each.
  db_options.db_write_buffer_size = kWriteBufferBytesTotalMax;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  // RocksDB's messages are written by the ledger, not by RocksDB's own info log (storage_log.h).
  StorageLogSink storage_log;
  if (options_.storage_log) {
    storage_log = [forward = options_.storage_log](rocksdb::InfoLogLevel level,
                                                   std::string_view message) {
      forward(StorageLogLevelName(level), message);
    };
  } else {
    storage_log = FileStorageLogSink(dir_ + "/LOG", kStorageLogBytesMax);
  }
  db_options.info_log = MakeStorageLogger(db_options.info_log_level, std::move(storage_log));
  if (options_.env != nullptr) db_options.env = options_.env;
  // Required by the hash memtable of ids; the ledger has one writer thread anyway.
  db_options.allow_concurrent_memtable_write = false;

  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytesTotal);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, FamilyOptions(cache, false)},
      {format::kEventsFamily, FamilyOptions(cache, false, true)},
      // Whole-key blooms: "is there a version 0 of this stream" (StoredStreamVersion) is asked
      // for every new application and is almost always answered "no".
      {format::kStreamsFamily, FamilyOptions(cache, true, false, kSideMemtableBloomRatio)},
      {format::kIdsFamily, IdsFamilyOptions(cache)},
      {format::kMetaFamily, FamilyOptions(cache, false)},
  };
  // Side families uncompressed: a rebuild at 10M events spent ~9 % of its CPU in Snappy, packing
  // states on flush and compaction and unpacking them on every reload, to save 0.3 of 4.0 GiB
  // (rebuild_bench, 10M events: 58.6–64.6 CPU-s uncompressed, 67.6–67.8 Snappy, 64.5–65.2 LZ4).
  auto side_options = FamilyOptions(cache, true, /*uncompressed=*/true, kSideMemtableBloomRatio);
  side_options.write_buffer_size = kSideWriteBufferBytes;
  for (const std::string& name : options_.side_families) families.emplace_back(name, side_options);
  // RocksDB refuses to open a database without naming every family it holds, so families that a
  // higher layer created earlier are opened too, even when this caller does not use them.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, dir_, &existing).ok()) {
    for (const std::string& name : existing) {
      bool known = std::any_of(families.begin(), families.end(),
                               [&](const auto& family) { return family.name == name; });
      if (!known) families.emplace_back(name, side_options);
    }
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(db_options, dir_, families, &handles_, &db);
  if (status.IsIOError() && status.ToString().find("Permission denied") != std::string::npos) {
    // Not "held by another process": RocksDB words a lock file it may not create like a lock.
    return {Code::kIoError, "data directory " + dir_ +
                                " cannot be opened by this user, even to read (the ledger takes a "
                                "lock file and writes its own log there; read a copy you may "
                                "write): " +
                                status.ToString()};
  }
  if (IsLockError(status)) {
    return {Code::kLocked,
            "data directory " + dir_ +
                " is held by another process (is ledgerd running on it? then ask it: ledgerctl "
                "--server TCP_ADDR for append, read, history and subscribe, ledgerctl --http "
                "HTTP_ADDR for app, overdue, kpi, evidence, staff, verify, digest, import and "
                "backup)"};
  }
  if (!status.ok()) return FromRocks(status, "opening " + dir_);
  db_.reset(db);
  events_ = handles_[1];
  streams_ = handles_[2];
  ids_ = handles_[3];
  meta_ = handles_[4];
  side_handles_.assign(handles_.begin() + 5,
                       handles_.begin() + 5 + static_cast<long>(options_.side_families.size()));
  return Status::Ok();
}

Status Ledger::Impl::Recover() {
  std::string version;
  rocksdb::Status status = db_->Get({}, meta_, format::kMetaFormatVersionKey, &version);
  std::string expected = std::to_string(format::kFormatVersion);
  if (status.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> any(db_->NewIterator({}, events_));
    any->SeekToFirst();
    if (any->Valid()) return {Code::kCorruption, "events stored but no format version in meta"};
    rocksdb::WriteOptions sync;
    sync.sync = true;
    Status put = FromRocks(db_->Put(sync, meta_, format::kMetaFormatVersionKey, expected),
                           "writing format version");
    if (!put.ok()) return put;
  } else if (!status.ok()) {
    return FromRocks(status, "reading format version");
  } else if (version != expected) {
    return {Code::kCorruption,
            "data format version " + version + ", this build reads version " + expected};
  }

  std::string head_value;
  status = db_->Get({}, meta_, format::kMetaHeadKey, &head_value);
  uint64_t head = 0;
  std::string head_hash = chain::GenesisHash();
  if (status.ok()) {
    if (head_value.size() != 8 + kHashBytes) return {Code::kCorruption, "meta head has bad size"};
    head = format::GetBigEndian64(head_value);
    head_hash = head_value.substr(8);
  } else if (!status.IsNotFound()) {
    return FromRocks(status, "reading head");
  }

  // The last stored event must be the one meta names: both are written in the same batch.
  std::unique_ptr<rocksdb::Iterator> last(db_->NewIterator({}, events_));
  last->SeekToLast();
  if (!last->status().ok()) return FromRocks(last->status(), "seeking last event");
  uint64_t last_position = last->Valid() ? format::GetBigEndian64(ToView(last->key())) : 0;
  if (last_position != head) {
    return Status(Code::kCorruption, "meta head is " + std::to_string(head) +
                                         " but the last stored event is at " +
                                         std::to_string(last_position))
        .WithPosition(std::min(head, last_position) + 1);
  }
  int64_t recorded_at_us = 0;
  if (head > 0) {
    try {
      StoredValue value(ToView(last->value()));
      if (!value.well_formed()) throw std::runtime_error("bad size");
      auto envelope = value.envelope();
      if (envelope.getPosition() != head || BytesOf(envelope.getHash()) != head_hash) {
        return Status(Code::kCorruption, "the last stored event does not match meta head")
            .WithPosition(head);
      }
      recorded_at_us = envelope.getRecordedAtUs();
    } catch (const std::exception& e) {
      return Status(Code::kCorruption, std::string("last event undecodable: ") + e.what())
          .WithPosition(head);
    } catch (const kj::Exception& e) {
      return Status(Code::kCorruption,
                    std::string("last event undecodable: ") + e.getDescription().cStr())
          .WithPosition(head);
    }
  }
  committed_head_ = head;
  committed_hash_ = head_hash;
  committed_recorded_at_us_ = recorded_at_us;
  head_.store(head, std::memory_order_release);
  std::lock_guard lock(head_mutex_);
  head_hash_ = head_hash;
  return Status::Ok();
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& dir, Options options) {
  if (!options.now_us) {
    options.now_us = [] {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  auto impl = std::make_unique<Impl>(dir, std::move(options));
  Status status = impl->OpenDatabase();
  if (!status.ok()) return status;
  status = impl->Recover();
  if (!status.ok()) return status;
  impl->StartWriter();
  return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() = default;

// ---------------------------------------------------------------------------------------------
// Reads

namespace {

// An event the head or a stream's index says is there, but the events family lacks: the store
// was damaged (a lost file, an edit by hand), not a request for something that never was.
Status MissingEvent(uint64_t position) {
  return Status(Code::kCorruption, "position " + std::to_string(position) +
                                       " is missing from the store although the ledger holds "
                                       "it: the data directory was damaged (ledgerctl verify)")
      .WithPosition(position);
}

}  // namespace

Result<StoredEvent> Ledger::Impl::Get(uint64_t position) const {
  if (position == 0 || position > head()) {
    return Status(Code::kNotFound, "no event at position " + std::to_string(position));
  }
  rocksdb::PinnableSlice value;
  rocksdb::Status status = db_->Get({}, events_, format::EventKey(position), &value);
  if (status.IsNotFound()) return MissingEvent(position);
  if (!status.ok()) return FromRocks(status, "reading position " + std::to_string(position));
  try {
    StoredValue stored(ToView(value));
    if (!stored.well_formed()) throw std::runtime_error("value size is not whole words");
    return StoredEvent::FromEnvelope(stored.envelope());
  } catch (const std::exception& e) {
    return Status(Code::kCorruption, "position " + std::to_string(position) + ": " + e.what())
        .WithPosition(position);
  } catch (const kj::Exception& e) {
    return Status(Code::kCorruption,
                  "position " + std::to_string(position) + ": " + e.getDescription().cStr())
        .WithPosition(position);
  }
}

Result<std::optional<uint64_t>> Ledger::Impl::FindEventId(const std::string& event_id) const {
  std::string position;
  rocksdb::Status status = db_->Get({}, ids_, event_id, &position);
  if (status.IsNotFound()) return std::optional<uint64_t>();
  if (!status.ok()) return FromRocks(status, "looking up event_id");
  if (position.size() != 8) return Status(Code::kCorruption, "ids entry has bad size");
  return std::optional<uint64_t>(format::GetBigEndian64(position));
}

Result<int64_t> Ledger::Impl::StoredStreamVersion(std::string_view stream) const {
  // Versions are gapless from 0, so a stream exists iff its version 0 does. Most streams asked
  // about are new (an application's first event): the blooms answer that without the iterator.
  rocksdb::PinnableSlice first;
  rocksdb::Status found = db_->Get({}, streams_, format::StreamKey(stream, 0), &first);
  if (found.IsNotFound()) return kNoStream;
  if (!found.ok()) return FromRocks(found, "reading stream head");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, streams_));
  std::string prefix = format::StreamPrefix(stream);
  it->SeekForPrev(format::StreamKey(stream, UINT64_MAX));
  if (!it->status().ok()) return FromRocks(it->status(), "reading stream head");
  if (!it->Valid() || !it->key().starts_with(prefix)) return kNoStream;
  return static_cast<int64_t>(format::GetBigEndian64(ToView(it->key()).substr(prefix.size())));
}

Result<std::vector<StoredEvent>> Ledger::Impl::ReadStream(const std::string& stream,
                                                          uint64_t from_version,
                                                          uint64_t limit) const {
  std::vector<StoredEvent> events;
  Status status = ScanStream(stream, from_version, limit, [&](const EventView& view) {
    events.push_back(StoredEvent::FromEnvelope(view.envelope()));
    return true;
  });
  if (!status.ok()) return status;
  return events;
}

Status Ledger::Impl::ScanStream(const std::string& stream, uint64_t from_version, uint64_t limit,
                                const std::function<bool(const EventView&)>& visit) const {
  std::string prefix = format::StreamPrefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, streams_));
  uint64_t visited = 0;
  for (it->Seek(format::StreamKey(stream, from_version));
       it->Valid() && it->key().starts_with(prefix) && visited < limit; it->Next(), ++visited) {
    const uint64_t position = format::GetBigEndian64(ToView(it->value()));
    rocksdb::PinnableSlice value;
    rocksdb::Status read = db_->Get({}, events_, format::EventKey(position), &value);
    if (read.IsNotFound()) return MissingEvent(position);
    if (!read.ok()) return FromRocks(read, "reading position " + std::to_string(position));
    try {
      StoredValue stored(ToView(value));
      if (!stored.well_formed()) {
        return Status(Code::kCorruption,
                      "position " + std::to_string(position) + ": value size is not whole words")
            .WithPosition(position);
      }
      if (!visit(EventView(stored.envelope()))) return Status::Ok();
    } catch (const kj::Exception& e) {
      return Status(Code::kCorruption,
                    "position " + std::to_string(position) + ": " + e.getDescription().cStr())
          .WithPosition(position);
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading stream " + stream);
  return Status::Ok();
}

Result<std::vector<StoredEvent>> Ledger::Impl::ReadFrom(uint64_t from_position,
                                                        uint64_t limit) const {
  std::vector<StoredEvent> events;
  limit = std::min(limit, kReadLimitMax);
  Status status = Scan(from_position, [&](const EventView& view) {
    events.push_back(StoredEvent::FromEnvelope(view.envelope()));
    return events.size() < limit;
  });
  if (!status.ok()) return status;
  return events;
}

Status Ledger::Impl::ScanValues(
    uint64_t from_position,
    const std::function<bool(uint64_t position, StoredValue& value)>& visit) const {
  return ScanValues(from_position, head(), nullptr, visit);
}

Status Ledger::Impl::ScanValues(
    uint64_t from_position, uint64_t last, const rocksdb::Snapshot* snapshot,
    const std::function<bool(uint64_t position, StoredValue& value)>& visit) const {
  if (from_position == 0) from_position = 1;
  if (from_position > last) return Status::Ok();
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot;
  read_options.readahead_size = 2 << 20;
  // A scan reads each block once, in order: caching them would only push out the blocks that
  // point reads come back to (ids, streams, the projections' states a rebuild reloads).
  read_options.fill_cache = false;
  std::string upper = format::EventKey(last + 1);
  rocksdb::Slice upper_slice(upper);
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, events_));
  uint64_t expected = from_position;
  kj::Array<capnp::word> scratch;  // reused for values RocksDB hands out unaligned
  // Each check says what it found, so that whoever looks at a damaged store knows what to look
  // for (an event lost, one moved or copied, bytes cut short or damaged).
  auto bad = [&expected](const std::string& what) {
    return Status(Code::kCorruption, "position " + std::to_string(expected) + ": " + what)
        .WithPosition(expected);
  };
  for (it->Seek(format::EventKey(from_position)); it->Valid(); it->Next(), ++expected) {
    try {
      StoredValue stored(ToView(it->value()), &scratch);
      const uint64_t key = format::GetBigEndian64(ToView(it->key()));
      if (key != expected) {
        return bad("missing: the next event stored is at position " + std::to_string(key));
      }
      if (!stored.well_formed()) {
        return bad("the stored value is not a whole number of 8-byte words (cut short or damaged)");
      }
      if (stored.envelope().getPosition() != expected) {
        return bad("holds the event of position " +
                   std::to_string(stored.envelope().getPosition()) + " (moved or copied here)");
      }
      if (!visit(expected, stored)) return Status::Ok();
    } catch (const kj::Exception& e) {
      return bad(std::string("the stored envelope does not decode (damaged bytes): ") +
                 e.getDescription().cStr());
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning events");
  if (expected <= last) {
    return Status(Code::kCorruption, "events end at " + std::to_string(expected - 1) +
                                         " but head is " + std::to_string(last))
        .WithPosition(expected);
  }
  return Status::Ok();
}

Status Ledger::Impl::Scan(uint64_t from_position,
                          const std::function<bool(const EventView&)>& visit) const {
  return ScanValues(from_position, [&](uint64_t, StoredValue& value) {
    return visit(EventView(value.envelope()));
  });
}

Result<uint64_t> Ledger::Impl::PositionAt(int64_t recorded_at_us) const {
  // Invariant: recorded_at(low) <= T < recorded_at(high + 1) once the loop ends.
  uint64_t low = 0;
  uint64_t high = head();
  while (low < high) {
    uint64_t middle = low + (high - low + 1) / 2;
    Result<StoredEvent> event = Get(middle);
    if (!event.ok()) return event.status();
    if (event->recorded_at_us <= recorded_at_us) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

Result<Digest> Ledger::Impl::Verify(const std::atomic<bool>& stop) const {
  // One consistent state: the head stored with it, its events and their index entries (a group
  // commit writes all of them in one batch), whatever is appended meanwhile.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions at_snapshot;
  at_snapshot.snapshot = snapshot.snapshot();
  std::string head_value;
  rocksdb::Status head_read = db_->Get(at_snapshot, meta_, format::kMetaHeadKey, &head_value);
  if (!head_read.ok() && !head_read.IsNotFound()) return FromRocks(head_read, "reading the head");
  if (head_read.ok() && head_value.size() < 8) {
    return Status(Code::kCorruption, "meta head has bad size");
  }
  const uint64_t last = head_read.ok() ? format::GetBigEndian64(head_value) : 0;
  std::string running = chain::GenesisHash();
  uint64_t checked = 0;
  chain::EntrySetDigest expected_streams;
  chain::EntrySetDigest expected_ids;
  Status failure = Status::Ok();
  auto fail = [&](uint64_t position, const std::string& why) {
    failure = Status(Code::kCorruption, "position " + std::to_string(position) + ": " + why)
                  .WithPosition(position);
    return false;
  };
  Status scanned =
      ScanValues(1, last, snapshot.snapshot(), [&](uint64_t position, StoredValue& value) {
        if (stop.load(std::memory_order_relaxed)) {
          failure = Status(Code::kShutdown,
                           "verification stopped at position " + std::to_string(position));
          return false;
        }
        // Canonical bytes have no slack: a changed padding byte, invisible to the decoded value, is
        // still caught here.
        if (!value.canonical()) return fail(position, "stored bytes are not canonical");
        auto envelope = value.envelope();
        if (BytesOf(envelope.getPrevHash()) != running) return fail(position, "prev_hash mismatch");
        std::string computed = chain::ComputeHash(envelope);
        if (computed != BytesOf(envelope.getHash())) return fail(position, "hash mismatch");
        // The indexes are outside the chain: an entry pointing elsewhere would serve another event
        // as this stream's history, or answer a retry with another event's position. What they
        // should hold, from the chained events; compared with what they hold below.
        const auto stream = envelope.getStream();
        const auto event_id = envelope.getEventId();
        std::string position_bytes;
        format::PutBigEndian64(&position_bytes, position);
        expected_streams.Add(format::StreamKey(std::string_view(stream.begin(), stream.size()),
                                               envelope.getVersion()),
                             position_bytes);
        expected_ids.Add(std::string_view(event_id.begin(), event_id.size()), position_bytes);
        running = std::move(computed);
        checked = position;
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (!failure.ok()) return failure;
  // Each index holds exactly the entries of the chained events, read in one sequential pass
  // each (looking every event's entries up instead cost ~100x the chain's own check).
  for (auto [family, name, expected] : {std::tuple{streams_, "streams", &expected_streams},
                                        std::tuple{ids_, "ids", &expected_ids}}) {
    rocksdb::ReadOptions options = at_snapshot;
    options.total_order_seek = true;  // the ids memtable is a hash: see FORMAT.md
    options.fill_cache = false;
    options.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, family));
    uint64_t entries = 0;
    chain::EntrySetDigest stored;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (stop.load(std::memory_order_relaxed)) {
        return Status(Code::kShutdown,
                      std::string("verification stopped in the ") + name + " index");
      }
      ++entries;
      stored.Add(ToView(it->key()), ToView(it->value()));
    }
    if (!it->status().ok()) return FromRocks(it->status(), std::string("reading ") + name);
    if (entries != checked) {
      return Status(Code::kCorruption, std::string("the ") + name + " index holds " +
                                           std::to_string(entries) + " entries for " +
                                           std::to_string(checked) + " events");
    }
    if (!(stored == *expected)) {
      return Status(Code::kCorruption,
                    std::string("the ") + name +
                        " index does not match the events: an entry was changed (it points at "
                        "another event, or names another key)");
    }
  }
  return Digest{checked, ToHex(running)};
}

StorageStats Ledger::Impl::Storage() const {
  auto property = [&](const std::string& name) {
    uint64_t value = 0;
    // A property RocksDB cannot compute right now reads as 0; these are estimates for metrics.
    if (!db_->GetAggregatedIntProperty(name, &value)) value = 0;
    return value;
  };
  StorageStats stats;
  stats.live_data_bytes = property(rocksdb::DB::Properties::kEstimateLiveDataSize);
  stats.sst_files_bytes = property(rocksdb::DB::Properties::kTotalSstFilesSize);
  stats.pending_compaction_bytes =
      property(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  stats.memtable_bytes = property(rocksdb::DB::Properties::kCurSizeAllMemTables);
  return stats;
}

Digest Ledger::Impl::HeadDigest() const {
  std::lock_guard lock(head_mutex_);
  return {head(), ToHex(head_hash_)};
}

uint64_t Ledger::Impl::WaitForHeadAbove(uint64_t position,
                                        std::chrono::milliseconds timeout) const {
  std::unique_lock lock(head_mutex_);
  head_cv_.wait_for(lock, timeout, [&] { return head() > position; });
  return head();
}

uint64_t Ledger::Impl::AddHeadListener(std::function<void(uint64_t)> listener) {
  std::lock_guard lock(listeners_mutex_);
  uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Ledger::Impl::RemoveHeadListener(uint64_t id) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.erase(id);
}

// ---------------------------------------------------------------------------------------------
// Side families

SideBatch::SideBatch(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* const* families,
                     size_t family_count)
    : batch_(batch), families_(families), family_count_(family_count) {
  if (batch_ == nullptr) {
    owned_ = std::make_unique<rocksdb::WriteBatch>();
    batch_ = owned_.get();
  }
}
SideBatch::~SideBatch() = default;

void SideBatch::Put(SideFamily family, std::string_view key, std::string_view value) {
  LEDGER_ASSERT(family < family_count_);
  batch_
      ->Put(families_[family], rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(value.data(), value.size()))
      .PermitUncheckedError();
}

void SideBatch::Delete(SideFamily family, std::string_view key) {
  LEDGER_ASSERT(family < family_count_);
  batch_->Delete(families_[family], rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
}

size_t SideBatch::ApproximateBytes() const { return batch_->GetDataSize(); }

void SideBatch::Clear() { batch_->Clear(); }

rocksdb::ColumnFamilyHandle* Ledger::Impl::SideHandle(SideFamily family) const {
  LEDGER_ASSERT(family < side_handles_.size());
  return side_handles_[family];
}

std::unique_ptr<SideBatch> Ledger::Impl::NewSideBatch() {
  return std::make_unique<SideBatch>(nullptr, side_handles_.data(), side_handles_.size());
}

Status Ledger::Impl::WriteToStore(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                                  std::string_view what) {
  return ChangeStore([&] { return db_->Write(options, batch); }, what, /*is_write=*/true);
}

Status Ledger::Impl::ChangeStore(const std::function<rocksdb::Status()>& change,
                                 std::string_view what, bool is_write) {
  TryResumeStore();
  const rocksdb::Status status = change();
  if (status.ok()) {
    // A write taken: RocksDB writes again (resumed here, or by itself from a full disk). A flush
    // or WAL sync that went through does not show that.
    if (is_write && store_stopped_.load()) {
      std::lock_guard lock(store_resume_mutex_);
      store_stopped_.store(false);
    }
    return Status::Ok();
  }
  Status written = FromRocks(status, what);
  // An I/O error (no space among them) stops RocksDB's writes until it is resumed; until then
  // every write fails at once with the same error.
  if (!status.IsIOError()) return written;
  std::lock_guard lock(store_resume_mutex_);
  if (!store_stopped_.load()) {
    store_failure_ = written;
    store_resume_error_.clear();
    store_resume_tried_ = std::chrono::steady_clock::now();
    store_stopped_.store(true);
    return written;
  }
  std::string message =
      "storage takes no writes since a write failed (" + store_failure_.message() + "); ";
  if (store_resume_error_.empty()) {
    message +=
        "writes resume by themselves once storage can write again (a full disk: once "
        "space is freed)";
  } else {
    message += "resuming failed (" + store_resume_error_ +
               "): tried again every second; if the cause is gone and this stays, restart";
  }
  return {store_failure_.code(), std::move(message)};
}

void Ledger::Impl::TryResumeStore() {
  if (!store_stopped_.load()) return;
  // One thread resumes; the others write on (and fail at once while RocksDB is stopped).
  std::unique_lock resuming(store_resuming_mutex_, std::try_to_lock);
  if (!resuming.owns_lock()) return;
  {
    std::lock_guard lock(store_resume_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!store_stopped_.load() || now - store_resume_tried_ < kStorageResumeInterval) return;
    store_resume_tried_ = now;
  }
  // Flushes the memtables and starts a new write-ahead log. Busy while RocksDB recovers by
  // itself (from a full disk it does, once space is free); an error while the cause lasts, and
  // for good after a fatal one (a failed write-ahead-log sync: RocksDB is not to be trusted with
  // more writes until it is opened again).
  const rocksdb::Status resumed = db_->Resume();
  std::lock_guard lock(store_resume_mutex_);
  if (resumed.ok()) {
    store_stopped_.store(false);
    store_resume_error_.clear();
  } else {
    store_resume_error_ = resumed.IsBusy() ? std::string() : resumed.ToString();
  }
}

Status Ledger::Impl::WriteSide(SideBatch& batch, bool sync) {
  std::lock_guard order(side_order_mutex_);
  if (Status before = FinishBackgroundSideWrite(); !before.ok()) return before;
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  return WriteToStore(write_options, batch.batch(), "writing side families");
}

namespace {

rocksdb::WriteOptions Unlogged() {
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  return write_options;
}

// Indexes a side batch's writes by family (BackgroundSideWrite::keys).
class SideBatchIndexer : public rocksdb::WriteBatch::Handler {
 public:
  using Keys = std::vector<std::unordered_map<std::string_view, std::optional<std::string_view>>>;
  SideBatchIndexer(const std::vector<rocksdb::ColumnFamilyHandle*>& handles, Keys& keys)
      : keys_(keys) {
    keys_.resize(handles.size());
    for (SideFamily family = 0; family < handles.size(); ++family) {
      family_of_id_[handles[family]->GetID()] = family;
    }
  }
  rocksdb::Status PutCF(uint32_t id, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    return Note(id, key, std::string_view(value.data(), value.size()));
  }
  rocksdb::Status DeleteCF(uint32_t id, const rocksdb::Slice& key) override {
    return Note(id, key, std::nullopt);
  }

 private:
  rocksdb::Status Note(uint32_t id, const rocksdb::Slice& key,
                       std::optional<std::string_view> value) {
    auto family = family_of_id_.find(id);
    if (family == family_of_id_.end()) {
      return rocksdb::Status::InvalidArgument("a side batch wrote outside the side families");
    }
    keys_[family->second][std::string_view(key.data(), key.size())] = value;
    return rocksdb::Status::OK();
  }
  Keys& keys_;
  std::unordered_map<uint32_t, SideFamily> family_of_id_;
};

}  // namespace

Status Ledger::Impl::WriteSideUnlogged(SideBatch& batch) {
  std::lock_guard order(side_order_mutex_);
  if (Status before = FinishBackgroundSideWrite(); !before.ok()) return before;
  return WriteToStore(Unlogged(), batch.batch(), "writing side families");
}

Status Ledger::Impl::WriteSideUnloggedInBackground(std::unique_ptr<SideBatch> batch) {
  std::lock_guard order(side_order_mutex_);
  if (Status before = FinishBackgroundSideWrite(); !before.ok()) return before;
  auto write = std::make_unique<BackgroundSideWrite>();
  write->batch = std::move(batch);
  SideBatchIndexer indexer(side_handles_, write->keys);
  Status indexed = FromRocks(write->batch->batch()->Iterate(&indexer), "indexing a side batch");
  if (!indexed.ok()) return indexed;
  BackgroundSideWrite* running = write.get();
  {
    std::lock_guard overlay(side_overlay_mutex_);
    background_side_ = std::move(write);
  }
  // Only RocksDB's Write reads the batch on that thread; GetSide reads the same bytes here.
  running->thread = std::thread([this, running] {
    if (options_.before_background_side_write) options_.before_background_side_write();
    running->status = WriteToStore(Unlogged(), running->batch->batch(), "writing side families");
  });
  return Status::Ok();
}

Status Ledger::Impl::AfterBackgroundSideWrite() const {
  std::lock_guard order(side_order_mutex_);
  return FinishBackgroundSideWrite(/*writer=*/false);
}

Status Ledger::Impl::FinishBackgroundSideWrite(bool writer) const {
  BackgroundSideWrite* running = background_side_.get();  // changed only under side_order_mutex_
  if (running != nullptr) {
    running->thread.join();
    std::unique_ptr<BackgroundSideWrite> done;
    {
      std::lock_guard overlay(side_overlay_mutex_);
      done = std::move(background_side_);
    }
    if (!done->status.ok()) background_side_failure_ = done->status;
  }
  // The states of a failed write are lost: every read or copy of the side families is refused
  // until the one writing them (a rebuild) has been told, and starts again.
  Status failure = background_side_failure_;
  if (writer) background_side_failure_ = Status::Ok();
  return failure;
}

Status Ledger::Impl::FlushSide() {
  std::lock_guard order(side_order_mutex_);
  if (Status before = FinishBackgroundSideWrite(); !before.ok()) return before;
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  return ChangeStore([&] { return db_->Flush(flush_options, side_handles_); },
                     "flushing side families");
}

Status Ledger::Impl::Compact() {
  // After the background write, but without holding up other side writes (a relay checkpoint)
  // for the whole scan.
  if (Status before = AfterBackgroundSideWrite(); !before.ok()) return before;
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  Status flushed = ChangeStore([&] { return db_->Flush(flush_options, handles_); }, "flushing");
  if (!flushed.ok()) return flushed;
  rocksdb::CompactRangeOptions compact_options;
  // Files already at the last level are rewritten as well, or they would keep the layout they
  // were written with.
  compact_options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    Status compacted =
        ChangeStore([&] { return db_->CompactRange(compact_options, handle, nullptr, nullptr); },
                    "compacting " + handle->GetName());
    if (!compacted.ok()) return compacted;
  }
  return Status::Ok();
}

bool PathWithin(const std::string& path, const std::string& dir) {
  std::error_code error;
  const std::filesystem::path outer = std::filesystem::weakly_canonical(dir, error);
  if (error) return false;
  const std::filesystem::path inner = std::filesystem::weakly_canonical(path, error);
  return !error &&
         std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

Result<Digest> Ledger::Impl::Backup(const std::string& dest_text) {
  namespace fs = std::filesystem;
  // "/backups/b1/" names b1 too (its parent is /backups, not the backup itself).
  fs::path dest = fs::path(dest_text).lexically_normal();
  if (!dest.has_filename()) dest = dest.parent_path();
  if (dest.empty() || dest.filename() == "." || dest.filename() == "..") {
    return Status(Code::kInvalid, "backup directory " + dest_text + " names no new directory");
  }
  std::unique_lock single(backup_mutex_, std::try_to_lock);
  if (!single.owns_lock()) {
    return Status(Code::kBusy, "a backup is being made already; try again when it is done");
  }
  std::error_code error;
  // Anything at the path (a symlink too, even a dangling one) is in the way.
  const fs::file_type at_dest = fs::symlink_status(dest, error).type();
  if (at_dest == fs::file_type::none) {
    return Status(Code::kIoError, "looking at " + dest.string() + ": " + error.message());
  }
  if (at_dest != fs::file_type::not_found) {
    return Status(Code::kInvalid, "backup directory " + dest.string() +
                                      " already exists: a backup goes to a new directory");
  }
  if (PathWithin(dest.string(), dir_)) {
    return Status(Code::kInvalid,
                  "backup directory " + dest.string() + " lies inside the data directory " + dir_);
  }
  const fs::path parent = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  fs::create_directories(parent, error);
  if (error) return Status(Code::kIoError, "creating " + parent.string() + ": " + error.message());
  RemoveAbandonedStaging(parent);
  // The copy is made and verified in a directory of our own beside `dest` (RocksDB stages its
  // checkpoint in "<dir>.tmp" and empties whatever is there first: never a name someone else
  // uses), then renamed to `dest` only once it verifies, and removed otherwise.
  fs::path staging;
  for (int attempt = 0; staging.empty(); ++attempt) {
    if (attempt == 100) {
      return Status(Code::kIoError, "cannot make a staging directory in " + parent.string());
    }
    fs::path candidate = parent / ("." + dest.filename().string() + ".partial-" +
                                   std::to_string(::getpid()) + "-" + std::to_string(attempt));
    if (fs::create_directory(candidate, error)) staging = candidate;
    if (error) {
      return Status(Code::kIoError, "creating " + candidate.string() + ": " + error.message());
    }
  }
  // The cause with its code and, for a copy that does not verify, the position where its chain
  // breaks (as Verify names it), after `what` went wrong.
  auto fail = [&](const Status& cause, std::string_view what = "") {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    Status answer(cause.code(),
                  std::string(what) + cause.message() + " (this backup left nothing behind)");
    if (cause.position()) answer.WithPosition(*cause.position());
    return answer;
  };
  const fs::path copy = staging / "copy";
  // The rebuild's batch being written in the background reaches the memtable first.
  if (Status before = AfterBackgroundSideWrite(); !before.ok()) return fail(before);
  rocksdb::Checkpoint* raw = nullptr;
  Status made = FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "starting a backup");
  if (!made.ok()) return fail(made);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Flushes every family first (0: always), so that states written without the write-ahead log
  // before the backup are in the copy too; what is written through the log while it is taken is
  // in the copy's log files.
  Status copied = FromRocks(checkpoint->CreateCheckpoint(copy.string(), /*log_size_for_flush=*/0),
                            "backing up to " + dest.string());
  if (!copied.ok()) return fail(copied);
  Result<Digest> verified = Status(Code::kIoError, "not verified");
  {
    // Opening the copy recovers its log into it (it then needs no more of that work).
    Options copy_options;
    copy_options.create_if_missing = false;
    auto opened = Ledger::Open(copy.string(), copy_options);
    if (!opened.ok()) return fail(opened.status(), "the backup does not open: ");
    verified = (*opened)->Verify();
  }
  if (!verified.ok()) return fail(verified.status(), "the backup does not verify: ");
  // RENAME_NOREPLACE: `dest` made by someone else meanwhile is not replaced (a file system without
  // it: checked just before instead).
  int renamed = ::renameat2(AT_FDCWD, copy.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE);
  if (renamed != 0 && errno == EINVAL) {
    errno = fs::symlink_status(dest, error).type() == fs::file_type::not_found ? 0 : EEXIST;
    if (errno == 0) renamed = ::rename(copy.c_str(), dest.c_str());
  }
  if (renamed != 0) {
    const int why = errno;
    return fail(why == EEXIST ? Status(Code::kInvalid, "backup directory " + dest.string() +
                                                           " was made by someone else meanwhile")
                              : Status(Code::kIoError, "moving the backup to " + dest.string() +
                                                           ": " + std::strerror(why)));
  }
  fs::remove_all(staging, error);  // empty by now; a leftover is harmless
  // The new name survives a power loss (the copy's own files were synced as they were made).
  if (const int parent_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      parent_fd >= 0) {
    ::fsync(parent_fd);
    ::close(parent_fd);
  }
  return verified;
}

// Staging directories of backups whose process died (".NAME.partial-PID-N", PID not running) hold
// hard links to table files, so they are removed when the next backup starts beside them.
void Ledger::Impl::RemoveAbandonedStaging(const std::filesystem::path& parent) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(parent, error)) {
    const std::string name = entry.path().filename().string();
    const size_t mark = name.rfind(".partial-");
    if (name.empty() || name.front() != '.' || mark == std::string::npos) continue;
    const std::string rest = name.substr(mark + 9);  // PID-N
    const size_t dash = rest.find('-');
    pid_t pid = 0;
    if (dash == std::string::npos ||
        std::from_chars(rest.data(), rest.data() + dash, pid).ptr != rest.data() + dash) {
      continue;  // not "<digits>-…": not ours
    }
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
}

Result<std::optional<std::string>> Ledger::Impl::GetSide(SideFamily family,
                                                         std::string_view key) const {
  {
    // A key of the batch being written in the background is answered from the batch: it may not
    // have reached the memtable yet. A key not in it is not changed by it.
    std::lock_guard overlay(side_overlay_mutex_);
    if (background_side_ != nullptr) {
      LEDGER_ASSERT(family < background_side_->keys.size());
      const auto& keys = background_side_->keys[family];
      if (auto written = keys.find(key); written != keys.end()) {
        if (!written->second) return std::optional<std::string>();
        return std::optional<std::string>(std::string(*written->second));
      }
    }
  }
  std::string value;
  rocksdb::Status status =
      db_->Get({}, SideHandle(family), rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return FromRocks(status, "reading side family");
  return std::optional<std::string>(std::move(value));
}

Status Ledger::Impl::ScanSide(
    SideFamily family, std::string_view prefix, std::string_view from,
    const std::function<bool(std::string_view, std::string_view)>& visit) const {
  // After the background write, but without holding up other side writes (a relay checkpoint)
  // for the whole scan.
  if (Status before = AfterBackgroundSideWrite(); !before.ok()) return before;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, SideHandle(family)));
  rocksdb::Slice prefix_slice(prefix.data(), prefix.size());
  const std::string_view start = std::max(prefix, from);
  for (it->Seek(rocksdb::Slice(start.data(), start.size()));
       it->Valid() && it->key().starts_with(prefix_slice); it->Next()) {
    if (!visit(ToView(it->key()), ToView(it->value()))) break;
  }
  return FromRocks(it->status(), "scanning side family");
}

Status Ledger::Impl::SyncWal() {
  return ChangeStore([&] { return db_->FlushWAL(/*sync=*/true); }, "syncing WAL");
}

Status Ledger::Impl::ClearSide(SideFamily family) {
  std::lock_guard order(side_order_mutex_);
  if (Status before = FinishBackgroundSideWrite(); !before.ok()) return before;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, SideHandle(family)));
  it->SeekToFirst();
  if (!it->Valid()) return FromRocks(it->status(), "clearing side family");
  std::string first = it->key().ToString();
  it->SeekToLast();
  std::string last = it->key().ToString() + '\0';  // DeleteRange's end is exclusive
  rocksdb::WriteBatch batch;
  Status ranged =
      FromRocks(batch.DeleteRange(SideHandle(family), first, last), "clearing side family");
  if (!ranged.ok()) return ranged;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return WriteToStore(sync, &batch, "clearing side family");
}

// ---------------------------------------------------------------------------------------------
// Public facade

Result<AppendResult> Ledger::Append(AppendRequest request) {
  return impl_->Append(std::move(request));
}
void Ledger::AppendAsync(AppendRequest request, std::function<void(Result<AppendResult>)> done) {
  impl_->AppendAsync(std::move(request), std::move(done));
}
Result<std::vector<StoredEvent>> Ledger::ReadStream(const std::string& stream,
                                                    uint64_t from_version, uint64_t limit) const {
  return impl_->ReadStream(stream, from_version, limit);
}
Result<std::vector<StoredEvent>> Ledger::ReadFrom(uint64_t from_position, uint64_t limit) const {
  return impl_->ReadFrom(from_position, limit);
}
Result<StoredEvent> Ledger::ReadOne(uint64_t position) const { return impl_->Get(position); }
Status Ledger::Scan(uint64_t from_position,
                    const std::function<bool(const EventView&)>& visit) const {
  return impl_->Scan(from_position, visit);
}
Status Ledger::ScanStream(const std::string& stream, uint64_t from_version, uint64_t limit,
                          const std::function<bool(const EventView&)>& visit) const {
  return impl_->ScanStream(stream, from_version, limit, visit);
}
Result<int64_t> Ledger::StreamVersion(const std::string& stream) const {
  return impl_->StoredStreamVersion(stream);
}
Result<std::optional<uint64_t>> Ledger::FindEventId(const std::string& event_id) const {
  return impl_->FindEventId(event_id);
}
uint64_t Ledger::Head() const { return impl_->head(); }
size_t Ledger::QueuedAppends() const { return impl_->queued(); }
LedgerStats Ledger::Stats() const { return impl_->stats(); }
Digest Ledger::HeadDigest() const { return impl_->HeadDigest(); }
Result<Digest> Ledger::DigestAt(uint64_t position) const {
  Result<StoredEvent> event = impl_->Get(position);
  if (!event.ok()) return event.status();
  return Digest{position, ToHex(event->hash)};
}
Result<uint64_t> Ledger::PositionAt(int64_t recorded_at_us) const {
  return impl_->PositionAt(recorded_at_us);
}
uint64_t Ledger::WaitForHeadAbove(uint64_t position, std::chrono::milliseconds timeout) const {
  return impl_->WaitForHeadAbove(position, timeout);
}
uint64_t Ledger::AddHeadListener(std::function<void(uint64_t)> listener) {
  return impl_->AddHeadListener(std::move(listener));
}
void Ledger::RemoveHeadListener(uint64_t id) { impl_->RemoveHeadListener(id); }
Result<Digest> Ledger::Verify() const {
  const std::atomic<bool> never{false};
  return Verify(never);
}
Result<Digest> Ledger::Verify(const std::atomic<bool>& stop) const {
  const auto started = std::chrono::steady_clock::now();
  Result<Digest> verified = impl_->Verify(stop);
  LedgerProbe* probe = impl_->probe();
  if (probe != nullptr && verified.status().code() != Code::kShutdown) {
    probe->OnVerified(verified.status(), std::chrono::steady_clock::now() - started);
  }
  return verified;
}
StorageStats Ledger::Storage() const { return impl_->Storage(); }
std::unique_ptr<SideBatch> Ledger::NewSideBatch() { return impl_->NewSideBatch(); }
Status Ledger::WriteSide(SideBatch& batch, bool sync) { return impl_->WriteSide(batch, sync); }
Status Ledger::WriteSideUnlogged(SideBatch& batch) { return impl_->WriteSideUnlogged(batch); }
Status Ledger::WriteSideUnloggedInBackground(std::unique_ptr<SideBatch> batch) {
  return impl_->WriteSideUnloggedInBackground(std::move(batch));
}
Status Ledger::FlushSide() { return impl_->FlushSide(); }
Status Ledger::Compact() { return impl_->Compact(); }
Result<Digest> Ledger::Backup(const std::string& dest) { return impl_->Backup(dest); }
Result<std::optional<std::string>> Ledger::GetSide(SideFamily family, std::string_view key) const {
  return impl_->GetSide(family, key);
}
Status Ledger::ScanSide(
    SideFamily family, std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& visit) const {
  return impl_->ScanSide(family, prefix, prefix, visit);
}
Status Ledger::ScanSideFrom(
    SideFamily family, std::string_view from,
    const std::function<bool(std::string_view key, std::string_view value)>& visit) const {
  return impl_->ScanSide(family, "", from, visit);
}
Status Ledger::ClearSide(SideFamily family) { return impl_->ClearSide(family); }
void Ledger::SetAppendObserver(AppendObserver* observer) { impl_->SetAppendObserver(observer); }
Status Ledger::SyncWal() { return impl_->SyncWal(); }

}  // namespace gridledger::ledger
