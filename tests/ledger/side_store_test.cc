// Goal: side families carry derived state durably and atomically with the events — an observer's
// writes land in the same group commit, survive reopen, and can be scanned, read and cleared.
// Method: a counting observer writes one key per staged event; the test reads them back.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

class CountingObserver : public AppendObserver {
 public:
  void OnStaged(const EventView& event, SideBatch& batch) override {
    batch.Put(0, "seen/" + std::to_string(event.position()), std::string(event.type()));
    batch.Put(0, "checkpoint", std::to_string(event.position()));
    ++staged;
  }
  void OnGroupCommitted(bool written, uint64_t last_position) override {
    written ? ++commits : ++failures;
    last = last_position;
  }
  uint64_t last = 0;
  int staged = 0;
  int commits = 0;
  int failures = 0;
};

NewEvent Event(const std::string& id) {
  NewEvent event;
  event.event_id = id;
  event.type = "Observed";
  event.actor = {"S1", "clerk", "ORG"};
  return event;
}

TEST(SideStoreTest, ObserverWritesLandWithTheEventsAndSurviveReopen) {
  testing::TempDir dir;
  Options options;
  options.side_families = {"proj.test"};
  {
    auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
    CountingObserver observer;
    ledger->SetAppendObserver(&observer);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(ledger->Append({"s", std::nullopt, {Event("e" + std::to_string(i))}}).ok());
    }
    // A retry stages nothing.
    ASSERT_TRUE(ledger->Append({"s", std::nullopt, {Event("e0")}}).ok());
    ledger->SetAppendObserver(nullptr);
    EXPECT_EQ(observer.staged, 5);
    EXPECT_EQ(observer.commits, 5);
    EXPECT_EQ(observer.failures, 0);
    EXPECT_EQ(observer.last, 5u);
  }
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  EXPECT_EQ(ledger->GetSide(0, "checkpoint").value(), std::optional<std::string>("5"));
  std::map<std::string, std::string> seen;
  ASSERT_TRUE(ledger
                  ->ScanSide(0, "seen/",
                             [&](std::string_view key, std::string_view value) {
                               seen.emplace(key, value);
                               return true;
                             })
                  .ok());
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen["seen/3"], "Observed");
  ASSERT_TRUE(ledger->ClearSide(0).ok());
  EXPECT_FALSE(ledger->GetSide(0, "checkpoint").value().has_value());
  EXPECT_FALSE(ledger->GetSide(0, "seen/5").value().has_value());
}

TEST(SideStoreTest, OwnedSideBatchWritesAtomically) {
  testing::TempDir dir;
  Options options;
  options.side_families = {"a", "b"};
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  auto batch = ledger->NewSideBatch();
  batch->Put(0, "k", "in a");
  batch->Put(1, "k", "in b");
  batch->Delete(1, "absent");
  ASSERT_TRUE(ledger->WriteSide(*batch, true).ok());
  EXPECT_EQ(ledger->GetSide(0, "k").value(), std::optional<std::string>("in a"));
  EXPECT_EQ(ledger->GetSide(1, "k").value(), std::optional<std::string>("in b"));
  EXPECT_EQ(ledger->Head(), 0u) << "side writes are not events";
}

// A batch written in the background answers reads of its keys until it has reached the store
// (held here before its write, so only the batch can answer), the last write of a key winning;
// keys it does not hold come from the store; the next side write waits for it.
TEST(SideStoreTest, ABackgroundWriteAnswersReadsOfItsKeysUntilItIsWritten) {
  testing::TempDir dir;
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;
  bool release = false;
  Options options;
  options.side_families = {"a", "b"};
  options.before_background_side_write = [&] {
    std::unique_lock lock(mutex);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  auto before = ledger->NewSideBatch();
  before->Put(0, "kept", "stored");
  before->Put(1, "gone", "stored");
  ASSERT_TRUE(ledger->WriteSideUnlogged(*before).ok());

  auto batch = ledger->NewSideBatch();
  batch->Put(0, "new", "first");
  batch->Put(0, "new", "second");
  batch->Delete(1, "gone");
  ASSERT_TRUE(ledger->WriteSideUnloggedInBackground(std::move(batch)).ok());
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return started; });
  }
  EXPECT_EQ(ledger->GetSide(0, "new").value(), std::optional<std::string>("second"));
  EXPECT_EQ(ledger->GetSide(1, "gone").value(), std::nullopt);
  EXPECT_EQ(ledger->GetSide(0, "kept").value(), std::optional<std::string>("stored"));
  EXPECT_EQ(ledger->GetSide(1, "new").value(), std::nullopt) << "another family's key";

  // A synchronous write waits for the background one: its value wins.
  std::thread writer([&] {
    auto after = ledger->NewSideBatch();
    after->Put(0, "new", "third");
    EXPECT_TRUE(ledger->WriteSideUnlogged(*after).ok());
  });
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  writer.join();
  EXPECT_EQ(ledger->GetSide(0, "new").value(), std::optional<std::string>("third"));
  EXPECT_EQ(ledger->GetSide(1, "gone").value(), std::nullopt);
}

}  // namespace
}  // namespace gridledger::ledger

namespace gridledger::ledger {
namespace {

TEST(SideStoreTest, OpensWithoutNamingFamiliesCreatedEarlier) {
  testing::TempDir dir;
  Options with_side;
  with_side.side_families = {"proj.x"};
  {
    auto ledger = std::move(Ledger::Open(dir.str(), with_side)).value();
    auto batch = ledger->NewSideBatch();
    batch->Put(0, "k", "v");
    ASSERT_TRUE(ledger->WriteSide(*batch, true).ok());
  }
  // A caller that knows nothing of projections (e.g. `ledgerctl verify`) still opens the ledger.
  auto plain = Ledger::Open(dir.str());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  plain = Result<std::unique_ptr<Ledger>>(Status(Code::kNotFound, "closed"));
  auto again = std::move(Ledger::Open(dir.str(), with_side)).value();
  EXPECT_EQ(again->GetSide(0, "k").value(), std::optional<std::string>("v"));
}

}  // namespace
}  // namespace gridledger::ledger
