// Goal: under concurrent appends the ledger keeps its promises — exactly one winner per expected
// version of a stream, and global positions gapless and in commit order.
// Method: many threads race on one stream with expected versions (each retries with the version it
// read after losing); then the stored stream and log are checked event by event.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

constexpr int kThreads = 16;
constexpr int kWinsPerThread = 25;

NewEvent Event(const std::string& id) {
  NewEvent event;
  event.event_id = id;
  event.type = "Raced";
  event.actor = {"S1", "clerk", "ORG"};
  event.payload = id;
  return event;
}

TEST(ConcurrencyTest, ExactlyOneWinnerPerVersionAndGaplessPositions) {
  testing::TempDir dir;
  auto ledger = std::move(Ledger::Open(dir.str())).value();
  std::atomic<int> conflicts{0};
  std::mutex winners_mutex;
  std::map<uint64_t, std::string> winner_by_version;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int won = 0, attempt = 0; won < kWinsPerThread; ++attempt) {
        int64_t current = ledger->StreamVersion("app/race").value();
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(attempt);
        auto result = ledger->Append({"app/race", current, {Event(id)}});
        if (!result.ok()) {
          ASSERT_EQ(result.status().code(), Code::kVersionConflict) << result.status().ToString();
          ++conflicts;
          continue;
        }
        std::lock_guard lock(winners_mutex);
        auto [it, inserted] = winner_by_version.emplace(result->events[0].version, id);
        ASSERT_TRUE(inserted) << "two winners for version " << result->events[0].version;
        EXPECT_EQ(result->events[0].version, static_cast<uint64_t>(current + 1));
        ++won;
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const uint64_t total = kThreads * kWinsPerThread;
  EXPECT_GT(conflicts.load(), 0) << "the race never happened; the test proves nothing";
  ASSERT_EQ(winner_by_version.size(), total);
  auto stream = ledger->ReadStream("app/race");
  ASSERT_TRUE(stream.ok());
  ASSERT_EQ(stream->size(), total);
  for (uint64_t v = 0; v < total; ++v) {
    EXPECT_EQ((*stream)[v].version, v);
    EXPECT_EQ((*stream)[v].position, v + 1);
    EXPECT_EQ((*stream)[v].event_id, winner_by_version[v]);
  }
  EXPECT_TRUE(ledger->Verify().ok());
}

class ManyStreamsTest : public ::testing::TestWithParam<size_t> {};

// Parameter: the stream-head cache size. 2 forces the stager to start its cache afresh on almost
// every commit while the previous commit is still being written.
TEST_P(ManyStreamsTest, PositionsAreGaplessAndVersionsNeverRepeat) {
  testing::TempDir dir;
  Options options;
  options.stream_head_cache_entries_max = GetParam();
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  constexpr int kPerThread = 200;
  std::mutex positions_mutex;
  std::set<uint64_t> positions;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t last = 0;
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = std::to_string(t) + "/" + std::to_string(i);
        auto result = ledger->Append({"s/" + std::to_string(t), std::nullopt, {Event(id)}});
        ASSERT_TRUE(result.ok()) << result.status().ToString();
        uint64_t position = result->events[0].position;
        EXPECT_GT(position, last) << "one appender saw its positions go backwards";
        EXPECT_EQ(result->events[0].version, static_cast<uint64_t>(i));
        last = position;
        std::lock_guard lock(positions_mutex);
        positions.insert(position);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(positions.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*positions.begin(), 1u);
  EXPECT_EQ(*positions.rbegin(), static_cast<uint64_t>(kThreads * kPerThread));
  uint64_t expected = 1;
  Status scanned = ledger->Scan(1, [&](const EventView& view) {
    EXPECT_EQ(view.position(), expected++);
    return true;
  });
  EXPECT_TRUE(scanned.ok());
  EXPECT_EQ(expected, static_cast<uint64_t>(kThreads * kPerThread) + 1);
  for (int t = 0; t < kThreads; ++t) {
    auto stream = ledger->ReadStream("s/" + std::to_string(t));
    ASSERT_TRUE(stream.ok());
    ASSERT_EQ(stream->size(), static_cast<size_t>(kPerThread));
    for (size_t v = 0; v < stream->size(); ++v) EXPECT_EQ((*stream)[v].version, v);
  }
}

// Many appenders share two streams without expected versions, so consecutive commits, one still
// being written while the next is staged, touch the same streams.
TEST_P(ManyStreamsTest, SharedStreamsGetEveryVersionExactlyOnce) {
  testing::TempDir dir;
  Options options;
  options.stream_head_cache_entries_max = GetParam();
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  constexpr int kPerThread = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "shared-" + std::to_string(t) + "-" + std::to_string(i);
        auto result = ledger->Append({"s/" + std::to_string(i % 2), std::nullopt, {Event(id)}});
        ASSERT_TRUE(result.ok()) << result.status().ToString();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int s = 0; s < 2; ++s) {
    auto stream = ledger->ReadStream("s/" + std::to_string(s));
    ASSERT_TRUE(stream.ok());
    ASSERT_EQ(stream->size(), static_cast<size_t>(kThreads * kPerThread / 2));
    for (size_t v = 0; v < stream->size(); ++v) ASSERT_EQ((*stream)[v].version, v);
  }
  EXPECT_EQ(ledger->Head(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_TRUE(ledger->Verify().ok());
}

INSTANTIATE_TEST_SUITE_P(CacheSizes, ManyStreamsTest,
                         ::testing::Values(kStreamHeadCacheEntriesMax, size_t{2}));

}  // namespace
}  // namespace gridledger::ledger
