// Durable append throughput: the ledger's group commit side by side with raw RocksDB synced
// WriteBatches of the same bytes, with 1, 8 and 64 concurrent in-process appenders.
//
// Goal (../shared/design.md, "Targets"): ledger events/s >= 0.6x the raw anchor at every thread
// count. Figures, command and reading: ../BENCHMARKS.md.
//
// Method, for each thread count N, in this order, repeated kRounds times (interleaved, so noise
// from other work on the machine hits both sides alike; the table shows medians). Every run gets a
// fresh directory under $GRIDLEDGER_BENCH_DIR (default /tmp), so both sides sync on the same
// filesystem.
//   1. LedgerAppend (N threads): each thread calls Ledger::Append in a loop; one request = one
//      event with a 300-byte payload, a unique event_id, a stream drawn from kStreamCount
//      application streams, expected_version nullopt. A head listener counts group commits (each
//      is one synced WriteBatch), giving B = events per sync; one stored event value is read back.
//   2. RawOneWriter (the anchor, 1 thread): rocksdb::DB::Write with sync = true in a loop, each
//      WriteBatch holding B events on average (BatchSizer: 4.5 -> 4, 5, 4, 5, ...), each event a
//      Put into "events" of an 8-byte big-endian key and a byte copy of the ledger's stored event
//      value, on a fresh database opened with the ledger's DB options and column families. Same
//      bytes, same events per fsync: what the storage engine does with the ledger's grouping when
//      nothing else is in the way, like design.md's db_bench fillseq reference (batches + sync).
//   3. RawNWriters (N threads, for information): the same synced WriteBatches of B events from N
//      threads at once. RocksDB's group commit merges concurrent writers, so its fsyncs carry more
//      than B events (its measured events per sync, ticker WAL_FILE_SYNCED, is printed).
//   4. LedgerAppendAsync (N appenders on no threads of their own): N closed loops over
//      Ledger::AppendAsync, each issuing its next append from the answer to its previous one, so N
//      requests are always in flight — how ledgerd's front doors drive the ledger. Same events
//      as 1.
//   5. RawOneWriterAsync: the anchor of 4, as 2 with 4's events per sync.
// Blocking threads (1) pay for 64 threads sleeping and waking on two cores once per append; the
// async appenders (4) show what the ledger itself costs next to the same anchor.
// Both anchors write only the event value: the ledger's index entries (streams, ids) and its meta
// head are ledger overhead, counted against it (see the WAL bytes/event columns).
// Rates are events acknowledged as durable per second of wall-clock time (items_per_second).
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ledger/ledger.h"

namespace gridledger::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kThreadCounts[] = {1, 8, 64};
constexpr size_t kPayloadBytes = 300;
// Application streams the appends are spread over. A run appends at most about this many events,
// so most appends go to a stream the writer has not cached yet and it reads the stream head from
// RocksDB, as after a restart.
constexpr uint64_t kStreamCount = 100000;
// Per run. kRounds x 15 runs, with Google Benchmark's iteration probing, take about two minutes;
// five rounds let the median ignore one or two rounds hit by other work on a shared machine.
constexpr double kMinTimeSeconds = 0.5;
constexpr int kRounds = 5;
constexpr double kGoalRatio = 0.6;
constexpr char kDirVariable[] = "GRIDLEDGER_BENCH_DIR";
constexpr char kLedgerName[] = "LedgerAppend";
constexpr char kRawOneWriterName[] = "RawOneWriter";
constexpr char kRawNWritersName[] = "RawNWriters";
constexpr char kLedgerAsyncName[] = "LedgerAppendAsync";
constexpr char kRawOneWriterAsyncName[] = "RawOneWriterAsync";
// The async run's benchmark thread checks the acknowledged count once per this many events, so it
// does not wake once per append itself.
constexpr uint64_t kAsyncWaitEvents = 256;
constexpr char kEventsFamily[] = "events";  // ledger/format.h kEventsFamily

std::string BigEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) bytes[i] = static_cast<char>(value & 0xff);
  return bytes;
}

// Sum of the sizes of the write-ahead log files in `dir`: what a run made durable, as long as no
// WAL file has become obsolete (see TearDownLedger).
uint64_t WalBytes(const fs::path& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".log") bytes += entry.file_size(error);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Realistic appends: unique event ids, many application streams, a few event types, one clerk.

class EventMaker {
 public:
  explicit EventMaker(int thread_index)
      : thread_index_(thread_index), random_state_(0x9e3779b97f4a7c15ULL * (thread_index + 1)) {}

  ledger::AppendRequest Next() {
    static constexpr const char* kTypes[] = {"ApplicationAccepted", "SurveyDispatched",
                                             "SiteSurveyed",        "SchemeReplied",
                                             "FeesSettled",         "DesignReviewed"};
    const uint64_t sequence = sequence_++;
    const uint64_t application = NextRandom() % kStreamCount;
    ledger::AppendRequest request;
    request.stream = Format("app/KM-2026-%06" PRIu64, application);
    ledger::NewEvent event;
    event.event_id =
        Format("KM-2026-%06" PRIu64 "-t%02d-%09" PRIu64, application, thread_index_, sequence);
    event.type = kTypes[sequence % std::size(kTypes)];
    event.occurred_at_us = kMarch2026Us + static_cast<int64_t>(sequence) * 1000;
    event.occurred_at_offset_minutes = 480;
    event.actor = {"S1001", "clerk", "KM.XS"};
    event.payload = Payload(application);
    request.events.push_back(std::move(event));
    return request;
  }

 private:
  static constexpr int64_t kMarch2026Us = 1772409600LL * 1000000;

  template <typename... Args>
  static std::string Format(const char* format, Args... args) {
    char text[512];  // the longest format here, the payload prefix, is ~230 bytes
    int length = std::snprintf(text, sizeof text, format, args...);
    return std::string(text, std::clamp(length, 0, static_cast<int>(sizeof text) - 1));
  }

  // A JSON body like examples/sample-application.jsonl's, padded with a remark to kPayloadBytes.
  static std::string Payload(uint64_t application) {
    static constexpr char kRemark[] =
        "customer asks for energization before the quarter ends; site contact on file; ";
    std::string payload =
        Format("{\"application_id\":\"KM-2026-%06" PRIu64 "\",\"customer_id\":\"C-530102-%06" PRIu64
               "\",\"customer_class\":\"hv_single\",\"business\":\"new_install\",\"voltage_kv\":10,"
               "\"capacity_kva\":800,\"channel\":\"counter\",\"remark\":\"",
               application, application);
    while (payload.size() < kPayloadBytes - 2) payload.append(kRemark);
    payload.resize(kPayloadBytes - 2);
    payload.append("\"}");
    return payload;
  }

  // splitmix64: cheap, and a fixed sequence per thread makes runs repeatable.
  uint64_t NextRandom() {
    uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  const int thread_index_;
  uint64_t random_state_;
  uint64_t sequence_ = 0;
};

// ---------------------------------------------------------------------------------------------
// N appenders without threads: each is a chain of AppendAsync calls, the next issued from the
// ledger's answer to the previous one (on the ledger's completer thread).

class AsyncAppenders {
 public:
  AsyncAppenders(ledger::Ledger* ledger, int count) : ledger_(ledger) {
    for (int i = 0; i < count; ++i) makers_.emplace_back(i);
  }

  ~AsyncAppenders() {
    // Let every chain end at its next answer; the answers refer to this object.
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.wait(lock, [&] { return in_flight_ == 0; });
  }

  void Start() {
    for (size_t i = 0; i < makers_.size(); ++i) Issue(i);
  }

  // Blocks until `events` appends were acknowledged or one failed; returns the failure, if any.
  std::string WaitAcknowledged(uint64_t events) {
    std::unique_lock lock(mutex_);
    wanted_ = events;
    changed_.wait(lock, [&] { return acknowledged_ >= events || !error_.empty(); });
    return error_;
  }

 private:
  void Issue(size_t appender) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || !error_.empty()) return;
      ++in_flight_;
    }
    ledger_->AppendAsync(
        makers_[appender].Next(), [this, appender](ledger::Result<ledger::AppendResult> appended) {
          Answered(appender, appended.ok() ? std::string() : appended.status().ToString());
        });
  }

  void Answered(size_t appender, std::string error) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
      if (error.empty()) {
        ++acknowledged_;
      } else if (error_.empty()) {
        error_ = "append: " + error;
      }
      wake = acknowledged_ == wanted_ || !error.empty() || (stopping_ && in_flight_ == 0);
    }
    if (wake) changed_.notify_all();
    if (error.empty()) Issue(appender);
  }

  ledger::Ledger* const ledger_;
  std::vector<EventMaker> makers_;  // makers_[i] is used by appender i's chain only
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t acknowledged_ = 0;
  uint64_t wanted_ = 0;
  size_t in_flight_ = 0;
  bool stopping_ = false;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// The anchor's database: opened like the ledger's (ledger/ledger.cc, Ledger::Impl::OpenDatabase:
// same DB options, same column families, bloom filter on ids) plus ticker statistics, which the
// ledger does not have, to count WAL syncs. Only "events" is written.

class RawStore {
 public:
  static rocksdb::Status Open(const fs::path& dir, std::unique_ptr<RawStore>* store) {
    auto opened = std::unique_ptr<RawStore>(new RawStore());
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.max_background_jobs = 2;
    options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    options.keep_log_file_num = 3;
    options.statistics = rocksdb::CreateDBStatistics();
    options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
    opened->statistics_ = options.statistics;

    rocksdb::ColumnFamilyOptions with_bloom;
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    with_bloom.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {kEventsFamily, {}},
        {"streams", {}},
        {"ids", with_bloom},
        {"meta", {}},
    };
    rocksdb::DB* db = nullptr;
    rocksdb::Status status =
        rocksdb::DB::Open(options, dir.string(), families, &opened->handles_, &db);
    if (!status.ok()) return status;
    opened->db_.reset(db);
    opened->events_ = opened->handles_[1];
    *store = std::move(opened);
    return status;
  }

  ~RawStore() {
    if (!db_) return;
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  // One synced WriteBatch of `count` events with keys first_key, first_key + 1, ...
  rocksdb::Status WriteSynced(uint64_t first_key, size_t count, const std::string& value) {
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < count; ++i) {
      rocksdb::Status put = batch.Put(events_, BigEndian64(first_key + i), value);
      if (!put.ok()) return put;
    }
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    return db_->Write(write_options, &batch);
  }

  uint64_t Ticker(rocksdb::Tickers ticker) const { return statistics_->getTickerCount(ticker); }

 private:
  RawStore() = default;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned by db_; destroyed before it
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  std::shared_ptr<rocksdb::Statistics> statistics_;
};

// Batch sizes whose running mean is `mean` (4.5 -> 4, 5, 4, 5, ...; never below 1), so the anchor
// copies the ledger's mean group size exactly instead of rounding it.
class BatchSizer {
 public:
  explicit BatchSizer(double mean) : mean_(std::max(mean, 1.0)) {}

  size_t Next() {
    ++writes_;
    const auto target = static_cast<uint64_t>(std::floor(mean_ * static_cast<double>(writes_)));
    const auto count = static_cast<size_t>(target - events_);
    events_ = target;
    return count;
  }

 private:
  const double mean_;
  uint64_t writes_ = 0;
  uint64_t events_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The benchmarks. Google Benchmark runs every thread of a run through the same function; the loop's
// start and stop are barriers, so thread 0 sets up before it and tears down after it while no
// other thread touches the shared members.

// What a LedgerAppend run measured; the raw runs that follow copy its grouping and bytes.
struct LedgerRun {
  uint64_t events = 0;
  uint64_t syncs = 0;
  std::string stored_value;  // one event value exactly as the ledger stored it

  double EventsPerSync() const {
    return syncs == 0 ? 0.0 : static_cast<double>(events) / static_cast<double>(syncs);
  }
};

class AppendBench {
 public:
  explicit AppendBench(fs::path root) : root_(std::move(root)) {}

  void RunLedger(benchmark::State& state) {
    if (state.thread_index() == 0) SetUpLedger(state.threads());
    EventMaker maker(state.thread_index());
    int64_t events = 0;
    std::string error;
    for (auto _ : state) {
      if (!error.empty()) continue;  // drain the iterations; `break` would skip the stop barrier
      if (ledger_ == nullptr) {
        error = setup_error_;
        continue;
      }
      ledger::Result<ledger::AppendResult> appended = ledger_->Append(maker.Next());
      if (!appended.ok()) {
        error = "append: " + appended.status().ToString();
        continue;
      }
      ++events;
    }
    state.SetItemsProcessed(events);
    if (!error.empty()) state.SkipWithError(error.c_str());
    if (state.thread_index() == 0) TearDownLedger(state, RunKey(kLedgerName, state.threads()));
  }

  // One benchmark thread; `appenders` chains of AppendAsync do the appending. One iteration is one
  // acknowledged append.
  void RunLedgerAsync(benchmark::State& state, int appenders) {
    SetUpLedger(appenders);
    std::string error = setup_error_;
    uint64_t events = 0;
    {
      std::optional<AsyncAppenders> chains;
      if (error.empty()) {
        chains.emplace(ledger_.get(), appenders);
        chains->Start();
      }
      const auto last = static_cast<uint64_t>(state.max_iterations);
      for (auto _ : state) {
        if (!error.empty()) continue;
        ++events;
        if (events % kAsyncWaitEvents == 0 || events == last) {
          error = chains->WaitAcknowledged(events);
        }
      }
    }  // the chains end here, before the ledger is closed
    state.SetItemsProcessed(static_cast<int64_t>(events));
    if (!error.empty()) state.SkipWithError(error.c_str());
    TearDownLedger(state, RunKey(kLedgerAsyncName, appenders));
  }

  // `ledger_run`: the ledger run (RunKey) whose grouping and bytes this run copies.
  void RunRaw(benchmark::State& state, const std::string& ledger_run) {
    if (state.thread_index() == 0) SetUpRaw(ledger_run);
    std::optional<BatchSizer> sizer;
    int64_t events = 0;
    std::string error;
    for (auto _ : state) {
      if (!error.empty()) continue;
      if (raw_ == nullptr) {
        error = setup_error_;
        continue;
      }
      if (!sizer) sizer.emplace(raw_events_per_write_);
      const size_t count = sizer->Next();
      rocksdb::Status written =
          raw_->WriteSynced(next_raw_key_.fetch_add(count), count, raw_value_);
      if (!written.ok()) {
        error = "raw write: " + written.ToString();
        continue;
      }
      events += static_cast<int64_t>(count);
    }
    state.SetItemsProcessed(events);
    if (!error.empty()) state.SkipWithError(error.c_str());
    if (state.thread_index() == 0) TearDownRaw(state);
  }

 private:
  fs::path FreshDir(const char* name, int threads) {
    fs::path dir = root_ / (std::string(name) + "-t" + std::to_string(threads) + "-" +
                            std::to_string(++run_count_));
    std::error_code error;
    fs::remove_all(dir, error);
    return dir;
  }

  void SetUpLedger(int threads) {
    setup_error_.clear();
    syncs_.store(0);
    run_dir_ = FreshDir("ledger", threads);
    ledger::Result<std::unique_ptr<ledger::Ledger>> opened =
        ledger::Ledger::Open(run_dir_.string());
    if (!opened.ok()) {
      setup_error_ = "opening the ledger: " + opened.status().ToString();
      return;
    }
    ledger_ = std::move(opened).value();
    // Called on the writer thread after each successful synced group commit.
    ledger_->AddHeadListener([this](uint64_t) { syncs_.fetch_add(1, std::memory_order_relaxed); });
  }

  static std::string RunKey(const char* name, int threads) {
    return std::string(name) + "/" + std::to_string(threads);
  }

  void TearDownLedger(benchmark::State& state, const std::string& key) {
    if (ledger_ == nullptr) return;
    LedgerRun run;
    run.events = ledger_->Head();  // a fresh ledger: every stored event was appended by this run
    run.syncs = syncs_.load();
    ledger_
        ->Scan(1,
               [&](const ledger::EventView& view) {
                 kj::Array<capnp::word> words = capnp::canonicalize(view.envelope());
                 run.stored_value.assign(reinterpret_cast<const char*>(words.asBytes().begin()),
                                         words.asBytes().size());
                 return false;
               })
        .IgnoreError();  // an empty value makes the raw runs report the problem
    // The ledger has no statistics object, so its WAL is measured on disk. That is all of it: a WAL
    // file becomes obsolete only once every column family with data in it has been flushed, and
    // streams and ids stay far below their 64 MiB write buffers within a run.
    const uint64_t wal_bytes = WalBytes(run_dir_);
    ledger_.reset();
    RemoveRunDir();
    state.counters["events_per_sync"] = run.EventsPerSync();
    state.counters["value_bytes"] = static_cast<double>(run.stored_value.size());
    state.counters["wal_bytes_per_event"] = Ratio(wal_bytes, run.events);
    ledger_runs_[key] = std::move(run);
  }

  void SetUpRaw(const std::string& ledger_run) {
    setup_error_.clear();
    auto run = ledger_runs_.find(ledger_run);
    if (run == ledger_runs_.end() || run->second.syncs == 0 || run->second.stored_value.empty()) {
      setup_error_ = "no " + ledger_run +
                     " result: the raw anchors copy its grouping, so do not filter it out";
      return;
    }
    raw_value_ = run->second.stored_value;
    raw_events_per_write_ = run->second.EventsPerSync();
    next_raw_key_.store(1);
    run_dir_ = FreshDir("raw", 0);
    rocksdb::Status opened = RawStore::Open(run_dir_, &raw_);
    if (!opened.ok()) setup_error_ = "opening raw RocksDB: " + opened.ToString();
  }

  void TearDownRaw(benchmark::State& state) {
    if (raw_ == nullptr) return;
    const uint64_t events = next_raw_key_.load() - 1;
    const uint64_t syncs = raw_->Ticker(rocksdb::WAL_FILE_SYNCED);
    const uint64_t wal_bytes = raw_->Ticker(rocksdb::WAL_FILE_BYTES);
    raw_.reset();
    RemoveRunDir();
    state.counters["events_per_write"] = raw_events_per_write_;
    state.counters["events_per_sync"] = Ratio(events, syncs);
    state.counters["value_bytes"] = static_cast<double>(raw_value_.size());
    state.counters["wal_bytes_per_event"] = Ratio(wal_bytes, events);
  }

  static double Ratio(uint64_t numerator, uint64_t denominator) {
    return denominator == 0 ? 0.0
                            : static_cast<double>(numerator) / static_cast<double>(denominator);
  }

  // Also writes back whatever the run left dirty (the memtables flushed at close): otherwise the
  // next run's fsyncs, on the same disk, would wait behind that write-back.
  void RemoveRunDir() {
    std::error_code error;
    fs::remove_all(run_dir_, error);
    ::sync();
  }

  const fs::path root_;
  uint64_t run_count_ = 0;
  std::map<std::string, LedgerRun> ledger_runs_;  // by RunKey; the latest run wins

  // The current run, set up and torn down by thread 0.
  fs::path run_dir_;
  std::string setup_error_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::atomic<uint64_t> syncs_{0};
  std::unique_ptr<RawStore> raw_;
  std::string raw_value_;
  double raw_events_per_write_ = 1.0;
  std::atomic<uint64_t> next_raw_key_{1};
};

// ---------------------------------------------------------------------------------------------
// The side-by-side table: medians over the rounds of what Google Benchmark reported.

class TableReporter : public benchmark::ConsoleReporter {
 public:
  // Colors only on a terminal, so a redirected run (BENCHMARKS.md) is plain text.
  TableReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      // A failed run keeps its place (empty counters), so index i is round i for every name.
      results_[run.run_name.function_name].push_back(run.error_occurred ? benchmark::UserCounters()
                                                                        : run.counters);
    }
  }

  void PrintTable() const {
    std::printf("\nDurable append (acknowledged = fsynced), medians of %d rounds:\n", kRounds);
    std::printf("%7s | %9s %9s %6s %11s %4s | %9s %6s | %15s | %15s | %5s\n", "", "ledger",
                "raw 1 wr", "ratio", "per round", "goal", "raw N wr", "ratio", "events per sync",
                "WAL bytes/event", "value");
    std::printf("%7s | %9s %9s %6s %11s %4s | %9s %6s | %5s %4s %4s | %7s %7s | %5s\n", "threads",
                "events/s", "events/s", "", "min-max", "0.6x", "events/s", "", "ledgr", "1 wr",
                "N wr", "ledger", "raw", "bytes");
    for (int threads : kThreadCounts) {
      const std::string suffix = "/" + std::to_string(threads);
      const auto* ledger = Find(kLedgerName + suffix);
      const auto* one = Find(kRawOneWriterName + suffix);
      const auto* many = Find(kRawNWritersName + suffix);
      if (ledger == nullptr || one == nullptr || many == nullptr) {
        std::printf("%7d | (missing: filtered out or failed)\n", threads);
        continue;
      }
      const double rate = Median(*ledger, kRate);
      const double one_rate = Median(*one, kRate);
      const double many_rate = Median(*many, kRate);
      const double ratio = one_rate > 0 ? rate / one_rate : 0.0;
      const auto [ratio_min, ratio_max] = RoundRatioRange(*ledger, *one);
      std::printf(
          "%7d | %9.0f %9.0f %5.2fx %4.2f-%4.2fx %4s | %9.0f %5.2fx | %5.1f %4.1f %4.0f | %7.0f "
          "%7.0f | %5.0f\n",
          threads, rate, one_rate, ratio, ratio_min, ratio_max,
          ratio >= kGoalRatio ? "met" : "miss", many_rate, many_rate > 0 ? rate / many_rate : 0.0,
          Median(*ledger, "events_per_sync"), Median(*one, "events_per_sync"),
          Median(*many, "events_per_sync"), Median(*ledger, "wal_bytes_per_event"),
          Median(*one, "wal_bytes_per_event"), Median(*ledger, "value_bytes"));
    }
    std::printf("\nAsync appenders: N chains of AppendAsync (N requests in flight), medians:\n");
    std::printf("%9s | %9s %9s %6s %11s %4s | %15s | %15s\n", "", "ledger", "raw 1 wr", "ratio",
                "per round", "goal", "events per sync", "WAL bytes/event");
    std::printf("%9s | %9s %9s %6s %11s %4s | %5s %9s | %7s %7s\n", "appenders", "events/s",
                "events/s", "", "min-max", "0.6x", "ledgr", "1 wr", "ledger", "raw");
    for (int appenders : kThreadCounts) {
      const std::string suffix = "/" + std::to_string(appenders);
      const auto* ledger = Find(kLedgerAsyncName + suffix);
      const auto* one = Find(kRawOneWriterAsyncName + suffix);
      if (ledger == nullptr || one == nullptr) {
        std::printf("%9d | (missing: filtered out or failed)\n", appenders);
        continue;
      }
      const double rate = Median(*ledger, kRate);
      const double one_rate = Median(*one, kRate);
      const double ratio = one_rate > 0 ? rate / one_rate : 0.0;
      const auto [ratio_min, ratio_max] = RoundRatioRange(*ledger, *one);
      std::printf("%9d | %9.0f %9.0f %5.2fx %4.2f-%4.2fx %4s | %5.1f %9.1f | %7.0f %7.0f\n",
                  appenders, rate, one_rate, ratio, ratio_min, ratio_max,
                  ratio >= kGoalRatio ? "met" : "miss", Median(*ledger, "events_per_sync"),
                  Median(*one, "events_per_sync"), Median(*ledger, "wal_bytes_per_event"),
                  Median(*one, "wal_bytes_per_event"));
    }
    std::printf(
        "goal: ledger >= %.1fx raw 1 writer (same bytes, same events per fsync). A wide per-round\n"
        "range means the disk or CPUs were shared with other work during the run.\n",
        kGoalRatio);
  }

 private:
  using Rounds = std::vector<benchmark::UserCounters>;

  const Rounds* Find(const std::string& name) const {
    auto it = results_.find(name);
    return it == results_.end() ? nullptr : &it->second;
  }

  static constexpr char kRate[] = "items_per_second";

  static double Get(const benchmark::UserCounters& counters, const char* name) {
    auto it = counters.find(name);
    return it == counters.end() ? 0.0 : it->second.value;
  }

  // Lowest and highest ledger / anchor ratio over the rounds where both ran.
  static std::pair<double, double> RoundRatioRange(const Rounds& ledger, const Rounds& anchor) {
    double low = 0.0;
    double high = 0.0;
    bool any = false;
    for (size_t round = 0; round < std::min(ledger.size(), anchor.size()); ++round) {
      const double anchor_rate = Get(anchor[round], kRate);
      if (anchor_rate <= 0 || !ledger[round].count(kRate)) continue;
      const double ratio = Get(ledger[round], kRate) / anchor_rate;
      low = any ? std::min(low, ratio) : ratio;
      high = any ? std::max(high, ratio) : ratio;
      any = true;
    }
    return {low, high};
  }

  static double Median(const Rounds& rounds, const char* name) {
    std::vector<double> values;
    for (const auto& counters : rounds) {
      auto it = counters.find(name);
      if (it != counters.end()) values.push_back(it->second.value);
    }
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
  }

  std::map<std::string, Rounds> results_;  // by registered name, one entry per round
};

fs::path MakeRoot() {
  const char* base = std::getenv(kDirVariable);
  std::string pattern =
      (fs::path(base != nullptr && *base != '\0' ? base : "/tmp") / "gridledger-append-XXXXXX")
          .string();
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

// Per round, per thread count: each ledger run first (its raw anchors copy its grouping), then its
// anchors; blocking threads, then async appenders.
void Register(AppendBench* append_bench) {
  auto add = [](const std::string& name, int threads, auto run) {
    benchmark::RegisterBenchmark(name.c_str(), run)
        ->Threads(threads)
        ->UseRealTime()
        ->MinTime(kMinTimeSeconds);
  };
  for (int round = 0; round < kRounds; ++round) {
    for (int threads : kThreadCounts) {
      const std::string suffix = "/" + std::to_string(threads);
      const std::string blocking_run = kLedgerName + suffix;
      add(blocking_run, threads,
          [append_bench](benchmark::State& state) { append_bench->RunLedger(state); });
      auto raw_like_blocking = [append_bench, blocking_run](benchmark::State& state) {
        append_bench->RunRaw(state, blocking_run);
      };
      add(kRawOneWriterName + suffix, 1, raw_like_blocking);
      add(kRawNWritersName + suffix, threads, raw_like_blocking);
      const std::string async_run = kLedgerAsyncName + suffix;
      add(async_run, 1, [append_bench, threads](benchmark::State& state) {
        append_bench->RunLedgerAsync(state, threads);
      });
      add(kRawOneWriterAsyncName + suffix, 1, [append_bench, async_run](benchmark::State& state) {
        append_bench->RunRaw(state, async_run);
      });
    }
  }
}

}  // namespace
}  // namespace gridledger::bench

int main(int argc, char** argv) {
  namespace bench = gridledger::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::filesystem::path root = bench::MakeRoot();
  if (root.empty()) {
    std::fprintf(stderr, "cannot create a directory under $%s (default /tmp)\n",
                 bench::kDirVariable);
    return 1;
  }
  std::printf("data directories under %s\n", root.c_str());

  bench::AppendBench append_bench(root);
  bench::Register(&append_bench);
  bench::TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintTable();
  benchmark::Shutdown();
  std::error_code error;
  std::filesystem::remove_all(root, error);
  return 0;
}
