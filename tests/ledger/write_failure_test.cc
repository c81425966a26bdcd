// Goal: when a group commit's write fails, no appender is told "stored" for an event that is not,
// the chain has no gap, and commits staged on top of the failed one fail too instead of being
// written over it.
// Method: (1) RocksDB's real write path on a file system whose write-ahead-log syncs start
// failing, 64 appenders in closed loops, then a reopen on the plain file system and a check of
// every answer against what is stored (RocksDB refuses every write after the first failure);
// (2) injected failures of every seventh commit that RocksDB would have taken, so that later
// commits are written: stored == acknowledged, versions gapless, observer order kept.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

// Fails three WAL syncs after the first `syncs_before_failure`. (RocksDB stops taking writes after
// the first failure, so later commits fail either way; the point is what the ledger answered.)
class FailingWalSyncs : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingWalSyncs(int syncs_before_failure)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), remaining_(syncs_before_failure) {}
  static const char* kClassName() { return "FailingWalSyncs"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus status = target()->NewWritableFile(name, options, file, debug);
    if (status.ok() && name.ends_with(".log")) {
      *file = std::make_unique<WalFile>(std::move(*file), this);
    }
    return status;
  }

  int failed() const { return failed_.load(); }
  // The next three syncs fail (and the ones after them succeed).
  void FailNextSyncs() { remaining_.store(0); }

 private:
  class WalFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    WalFile(std::unique_ptr<rocksdb::FSWritableFile> file, FailingWalSyncs* fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
      if (fs_->NextSyncFails()) return rocksdb::IOStatus::IOError("injected WAL sync failure");
      return target()->Sync(options, debug);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      if (fs_->NextSyncFails()) return rocksdb::IOStatus::IOError("injected WAL sync failure");
      return target()->Fsync(options, debug);
    }

   private:
    FailingWalSyncs* fs_;
  };

  bool NextSyncFails() {
    int n = remaining_.fetch_sub(1);
    if (n > 0 || n < -2) return false;
    failed_.fetch_add(1);
    return true;
  }

  std::atomic<int> remaining_;
  std::atomic<int> failed_{0};
};

NewEvent MakeEvent(std::string id) {
  NewEvent event;
  event.event_id = std::move(id);
  event.type = "Tested";
  event.occurred_at_us = 1'700'000'000'000'000;
  event.actor = {"S1", "clerk", "KM.XS"};
  event.payload = std::string(300, 'x');
  return event;
}

// What `appenders` threads, each appending `each` one-event requests to `streams` shared streams,
// were told: the positions acknowledged, and how many appends were refused (every refusal must be
// kIoError) and of those how many because the commit below them failed.
struct Answers {
  std::map<std::string, uint64_t> acknowledged;  // event_id -> position
  int refused = 0;
  int stacked = 0;
};

Answers AppendConcurrently(Ledger& ledger, int appenders, int each, int streams) {
  Answers answers;
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < appenders; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        std::string id = "e-" + std::to_string(t) + "-" + std::to_string(i);
        // Streams shared by all appenders: versions depend on one another across commits.
        auto answer =
            ledger.Append({"app/" + std::to_string(t % streams), std::nullopt, {MakeEvent(id)}});
        std::lock_guard lock(mutex);
        if (answer.ok()) {
          answers.acknowledged[id] = answer->events[0].position;
          continue;
        }
        ++answers.refused;
        EXPECT_EQ(answer.status().code(), Code::kIoError) << answer.status().ToString();
        if (answer.status().message().find("earlier group commit failed") != std::string::npos) {
          ++answers.stacked;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return answers;
}

TEST(WriteFailureTest, NoAcknowledgedEventIsLostAndNothingIsStackedOnAFailedCommit) {
  constexpr int kAppenders = 64;
  constexpr int kAppendsEach = 60;
  testing::TempDir dir;
  auto fs = std::make_shared<FailingWalSyncs>(30);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);

  Answers answers;
  {
    Options options;
    options.env = env.get();
    auto opened = Ledger::Open(dir.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    answers = AppendConcurrently(**opened, kAppenders, kAppendsEach, 8);
  }
  const auto& acknowledged = answers.acknowledged;
  ASSERT_GT(fs->failed(), 0) << "no sync failed: the test did not exercise a failed commit";
  ASSERT_GT(answers.refused, 0);
  ASSERT_GT(answers.stacked, 0) << "no commit was staged on top of a failed one";
  ASSERT_FALSE(acknowledged.empty());

  auto reopened = Ledger::Open(dir.str());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  std::unique_ptr<Ledger> ledger = std::move(reopened).value();
  auto digest = ledger->Verify();
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  for (const auto& [id, position] : acknowledged) {
    ASSERT_LE(position, ledger->Head()) << id;
    auto stored = ledger->ReadOne(position);
    ASSERT_TRUE(stored.ok()) << id << " at " << position << ": " << stored.status().ToString();
    EXPECT_EQ(stored->event_id, id) << "position " << position;
  }
  // Every stored event is in its stream at its version, with versions gapless per stream.
  std::map<std::string, uint64_t> next_version;
  auto all = ledger->ReadFrom(1, ledger->Head());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), ledger->Head());
  for (const StoredEvent& event : *all) {
    EXPECT_EQ(event.version, next_version[event.stream]++) << "position " << event.position;
  }
}

// Checks the AppendObserver contract: events are staged at consecutive positions, except that
// after a failed commit staging restarts right after the last written position, and only once
// every commit staged past it was reported failed.
class OrderCheckingObserver : public AppendObserver {
 public:
  void OnStaged(const EventView& event, SideBatch&) override {
    std::lock_guard lock(mutex_);
    const uint64_t position = event.position();
    if (position != last_staged_ + 1) {
      if (position != last_written_ + 1 || failed_through_ < last_staged_) {
        violations_.push_back("staged " + std::to_string(position) + " after staging " +
                              std::to_string(last_staged_) + " with " +
                              std::to_string(last_written_) + " written and failures reported " +
                              "through " + std::to_string(failed_through_));
      }
    }
    last_staged_ = position;
    staged_cv_.notify_all();
  }
  void OnGroupCommitted(bool written, uint64_t last_position) override {
    std::lock_guard lock(mutex_);
    if (written) {
      if (last_position <= last_written_) violations_.push_back("written out of order");
      last_written_ = last_position;
    } else {
      failed_through_ = std::max(failed_through_, last_position);
      ++failures_;
    }
  }
  std::vector<std::string> violations() {
    std::lock_guard lock(mutex_);
    return violations_;
  }
  int failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  // Waits until an event is staged after the last one staged now, or `timeout` passes.
  void WaitForMoreStaged(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const uint64_t staged = last_staged_;
    staged_cv_.wait_for(lock, timeout, [&] { return last_staged_ != staged; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable staged_cv_;
  uint64_t last_staged_ = 0;
  uint64_t last_written_ = 0;
  uint64_t failed_through_ = 0;
  int failures_ = 0;
  std::vector<std::string> violations_;
};

// A write the ledger sees fail while RocksDB goes on taking later ones (injected: nothing of the
// failed commit is stored). The commit staged on top of it must fail too, and staging restart
// from the durable head: every stored event was acknowledged, every acknowledged one is stored,
// versions stay gapless, and the observer hears of each failure before events are staged again
// at the same positions.
TEST(WriteFailureTest, CommitsAfterARefusedWriteContinueFromTheDurableHead) {
  constexpr int kAppenders = 16;
  constexpr int kAppendsEach = 50;
  testing::TempDir dir;
  std::atomic<int> writes{0};
  OrderCheckingObserver observer;
  Answers answers;
  {
    Options options;
    // Every seventh group commit fails, and takes until the next commit has events staged on
    // top of it (or 100 ms, when no appender is left to send any), as a slow write would.
    options.fail_write = [&writes, &observer] {
      if (++writes % 7 != 0) return false;
      observer.WaitForMoreStaged(std::chrono::milliseconds(100));
      return true;
    };
    auto opened = Ledger::Open(dir.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    (*opened)->SetAppendObserver(&observer);
    answers = AppendConcurrently(**opened, kAppenders, kAppendsEach, 4);
    (*opened)->SetAppendObserver(nullptr);
  }
  const auto& acknowledged = answers.acknowledged;
  EXPECT_TRUE(observer.violations().empty()) << observer.violations().front();
  ASSERT_GT(observer.failures(), 0);
  ASSERT_GT(answers.stacked, 0) << "no commit was staged on top of a failed one";
  ASSERT_GT(acknowledged.size(), kAppenders * kAppendsEach / 2);

  auto reopened = Ledger::Open(dir.str());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  std::unique_ptr<Ledger> ledger = std::move(reopened).value();
  auto digest = ledger->Verify();
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(ledger->Head(), acknowledged.size()) << "stored events that were not acknowledged";
  std::map<std::string, uint64_t> next_version;
  auto all = ledger->ReadFrom(1, ledger->Head());
  ASSERT_TRUE(all.ok());
  for (const StoredEvent& event : *all) {
    EXPECT_EQ(event.version, next_version[event.stream]++) << "position " << event.position;
    auto it = acknowledged.find(event.event_id);
    ASSERT_NE(it, acknowledged.end()) << event.event_id << " stored but refused";
    EXPECT_EQ(it->second, event.position) << event.event_id;
  }
}

// One appender, one append at a time: the append after a refused write finds nothing staged on
// top of the failed commit, so it is stored at once, at the position the failed one had — not
// refused with "an earlier group commit failed" (a failure it never took part in).
TEST(WriteFailureTest, TheFirstAppendAfterARefusedOneIsStored) {
  testing::TempDir dir;
  std::atomic<bool> fail{false};
  Options options;
  options.fail_write = [&fail] { return fail.load(); };
  auto opened = Ledger::Open(dir.str(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Ledger& ledger = **opened;
  ASSERT_TRUE(ledger.Append({"app/1", kNoStream, {MakeEvent("first")}}).ok());

  fail = true;
  auto refused = ledger.Append({"app/1", 0, {MakeEvent("refused")}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kIoError);
  fail = false;

  for (const char* id : {"after-1", "after-2"}) {
    auto stored = ledger.Append({"app/1", std::nullopt, {MakeEvent(id)}});
    ASSERT_TRUE(stored.ok()) << id << ": " << stored.status().ToString();
  }
  auto events = ledger.ReadStream("app/1", 0, 10);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[1].event_id, "after-1");
  EXPECT_EQ((*events)[1].position, 2u);
  EXPECT_EQ((*events)[1].version, 1u);
  EXPECT_EQ((*events)[2].event_id, "after-2");
  ASSERT_TRUE(ledger.Verify().ok());
}

// A failed WAL sync is fatal to RocksDB (unlike a full disk, it does not recover from it by
// itself, and Resume refuses): appends fail with an error that says so, and after a restart the
// chain goes on whole.
TEST(WriteFailureTest, AFailedWalSyncStopsWritesUntilARestartAndTheErrorSaysSo) {
  testing::TempDir dir;
  auto fs = std::make_shared<FailingWalSyncs>(1'000'000);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    Options options;
    options.env = env.get();
    auto opened = Ledger::Open(dir.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Ledger& ledger = **opened;
    ASSERT_TRUE(ledger.Append({"app/1", kNoStream, {MakeEvent("first")}}).ok());
    fs->FailNextSyncs();
    auto refused = ledger.Append({"app/1", 0, {MakeEvent("second")}});
    ASSERT_FALSE(refused.ok());
    EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("injected WAL sync failure"));
    // Once an attempt to resume failed (at most a second later), the error says so.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto again = ledger.Append({"app/1", 0, {MakeEvent("second")}});
      ASSERT_FALSE(again.ok()) << "RocksDB took a write after a failed WAL sync";
      EXPECT_EQ(again.status().code(), Code::kIoError);
      EXPECT_THAT(again.status().message(), ::testing::HasSubstr("injected WAL sync failure"));
      if (again.status().message().find("restart") != std::string::npos) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << again.status().ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(ledger.Head(), 1u);
  }
  auto reopened = Ledger::Open(dir.str());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Ledger& ledger = **reopened;
  // The refused event may be stored after all (written, then its sync failed): a retry with the
  // same event_id gets its position either way.
  EXPECT_GE(ledger.Head(), 1u);
  EXPECT_LE(ledger.Head(), 2u);
  auto second = ledger.Append({"app/1", 0, {MakeEvent("second")}});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->events[0].position, 2u);
  auto digest = ledger.Verify();
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(digest->position, 2u);
}

// Refuses to create table files for want of space while `failing` is set: a flush (or compaction)
// fails, which stops RocksDB's writes until it is resumed. (Other I/O errors of a flush are fatal
// to RocksDB, like a failed WAL sync; retryable ones do not stop writes.)
class FailingTableFiles : public rocksdb::FileSystemWrapper {
 public:
  FailingTableFiles() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  static const char* kClassName() { return "FailingTableFiles"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    if (failing.load() && name.ends_with(".sst")) {
      return rocksdb::IOStatus::NoSpace("injected table file failure");
    }
    return target()->NewWritableFile(name, options, file, debug);
  }
  std::atomic<bool> failing{false};
};

// A ledger with one side family ("tested") on FailingTableFiles.
struct FailingTablesLedger {
  void Open() {
    Options options;
    options.env = env.get();
    options.side_families = {"tested"};
    auto opened = Ledger::Open(dir.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger = std::move(opened).value();
  }
  testing::TempDir dir;
  std::shared_ptr<FailingTableFiles> fs = std::make_shared<FailingTableFiles>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::unique_ptr<Ledger> ledger;
};

// A flush that fails stops the store: appends are refused with the cause, nothing is stored, and
// once the cause is gone the ledger resumes RocksDB by itself (DB::Resume) and appends continue
// at the next position.
TEST(WriteFailureTest, AFailedFlushStopsAppendsUntilTheLedgerResumesTheStore) {
  FailingTablesLedger opened;
  ASSERT_NO_FATAL_FAILURE(opened.Open());
  Ledger& ledger = *opened.ledger;
  FailingTableFiles* fs = opened.fs.get();
  ASSERT_TRUE(ledger.Append({"app/1", kNoStream, {MakeEvent("first")}}).ok());
  auto side = ledger.NewSideBatch();
  side->Put(0, "key", "value");
  ASSERT_TRUE(ledger.WriteSide(*side, /*sync=*/false).ok());

  fs->failing.store(true);
  Status flushed = ledger.FlushSide();
  ASSERT_FALSE(flushed.ok());
  EXPECT_EQ(flushed.code(), Code::kIoError);
  EXPECT_THAT(flushed.message(), ::testing::HasSubstr("injected table file failure"));
  auto refused = ledger.Append({"app/1", 0, {MakeEvent("second")}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kIoError);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("injected table file failure"));
  // The flush itself stopped the store (not the append that met RocksDB's error after it).
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("flushing side families"));
  EXPECT_EQ(ledger.Head(), 1u);

  fs->failing.store(false);
  // Resuming is tried at most once a second, by the next write: retry until one is taken.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Result<AppendResult> second = Status(Code::kIoError, "not tried");
  while (!(second = ledger.Append({"app/1", 0, {MakeEvent("second")}})).ok()) {
    EXPECT_EQ(second.status().code(), Code::kIoError) << second.status().ToString();
    EXPECT_EQ(ledger.Head(), 1u);
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << second.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(second->events[0].position, 2u);
  EXPECT_TRUE(ledger.FlushSide().ok());
  auto value = ledger.GetSide(0, "key");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->value_or(""), "value");
  auto digest = ledger.Verify();
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(digest->position, 2u);
}

// States lost with a failed background side write (a rebuild's) are not hidden: every read of the
// side families is refused with that failure until a call that writes them (the rebuild) was told.
TEST(WriteFailureTest, AFailedBackgroundSideWriteRefusesReadsUntilItsWriterIsTold) {
  FailingTablesLedger opened;
  ASSERT_NO_FATAL_FAILURE(opened.Open());
  Ledger& ledger = *opened.ledger;
  FailingTableFiles* fs = opened.fs.get();
  auto before = ledger.NewSideBatch();
  before->Put(0, "kept", "1");
  ASSERT_TRUE(ledger.WriteSide(*before, /*sync=*/false).ok());
  fs->failing.store(true);
  ASSERT_FALSE(ledger.FlushSide().ok());  // the store stops taking writes

  auto lost = ledger.NewSideBatch();
  lost->Put(0, "lost", "1");
  ASSERT_TRUE(ledger.WriteSideUnloggedInBackground(std::move(lost)).ok());  // fails on its thread
  auto scan = [&] {
    return ledger.ScanSide(0, "", [](std::string_view, std::string_view) { return true; });
  };
  for (int read = 0; read < 2; ++read) {  // every read, not only the first
    Status scanned = scan();
    EXPECT_EQ(scanned.code(), Code::kIoError) << read << ": " << scanned.ToString();
  }
  auto next = ledger.NewSideBatch();
  next->Put(0, "next", "1");
  EXPECT_EQ(ledger.WriteSideUnlogged(*next).code(), Code::kIoError);  // the writer is told

  fs->failing.store(false);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ledger.WriteSide(*next, /*sync=*/false).ok()) {  // once the store resumed
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(scan().ok());
  EXPECT_FALSE(ledger.GetSide(0, "lost")->has_value());
  EXPECT_TRUE(ledger.GetSide(0, "kept")->has_value());
}

// Two requests staged into one commit, the second judged against the first (a version conflict
// and a changed retry of its event_id), then the commit's write fails: nothing of the first is
// stored, so neither judgement is a fact — both are told to retry, not "conflict".
TEST(WriteFailureTest, JudgementsAgainstAFailedCommitAreNotAnswersToKeep) {
  testing::TempDir dir;
  std::mutex mutex;
  std::condition_variable cv;
  int writes = 0;
  bool release = false;
  Options options;
  options.fail_write = [&] {
    std::unique_lock lock(mutex);
    const int write = ++writes;
    cv.notify_all();
    if (write == 1) cv.wait(lock, [&] { return release; });  // hold commit A: B gathers
    return write == 2;                                       // commit B fails
  };
  auto opened = Ledger::Open(dir.str(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Ledger& ledger = **opened;

  std::promise<Result<AppendResult>> a;
  ledger.AppendAsync({"app/A", kNoStream, {MakeEvent("a")}},
                     [&](Result<AppendResult> r) { a.set_value(std::move(r)); });
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return writes == 1; });  // A is being written
  }
  std::promise<Result<AppendResult>> first, conflict, mismatch;
  ledger.AppendAsync({"app/1", kNoStream, {MakeEvent("x")}},
                     [&](Result<AppendResult> r) { first.set_value(std::move(r)); });
  ledger.AppendAsync({"app/1", kNoStream, {MakeEvent("y")}},
                     [&](Result<AppendResult> r) { conflict.set_value(std::move(r)); });
  NewEvent changed = MakeEvent("x");
  changed.payload = "something else";
  ledger.AppendAsync({"app/2", std::nullopt, {changed}},
                     [&](Result<AppendResult> r) { mismatch.set_value(std::move(r)); });
  // The three wait in the queue while A is written (too few for a chunk of their own) and are
  // staged together into B once it is.
  ASSERT_EQ(ledger.QueuedAppends(), 3u);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(a.get_future().get().ok());
  for (auto* answer : {&first, &conflict, &mismatch}) {
    Result<AppendResult> result = answer->get_future().get();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), Code::kIoError) << result.status().ToString();
  }
  EXPECT_EQ(ledger.Head(), 1u);
}

}  // namespace
}  // namespace gridledger::ledger
