// Goal: the single-threaded contract of Ledger::Append and the reads — positions and versions,
// expected versions, idempotent retries and mismatches, reads by stream/position/time, waiting.
// Method: a fresh ledger in a temp dir per test; every expectation is about stored state read back.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>

#include <thread>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

NewEvent MakeEvent(std::string id, std::string type = "Tested", std::string payload = "p") {
  NewEvent event;
  event.event_id = std::move(id);
  event.type = std::move(type);
  event.occurred_at_us = 1'700'000'000'000'000;
  event.occurred_at_offset_minutes = 480;
  event.actor = {"S1", "clerk", "KM.XS"};
  event.payload = std::move(payload);
  return event;
}

AppendRequest Request(std::string stream, std::vector<NewEvent> events,
                      std::optional<int64_t> expected = std::nullopt) {
  return {std::move(stream), expected, std::move(events)};
}

class AppendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.now_us = [this] { return now_us_; };
    auto opened = Ledger::Open(dir_.str(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened).value();
  }
  testing::TempDir dir_;
  int64_t now_us_ = 1'000'000;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(AppendTest, AssignsGaplessPositionsAndPerStreamVersions) {
  auto a = ledger_->Append(Request("app/A", {MakeEvent("a0"), MakeEvent("a1")}));
  auto b = ledger_->Append(Request("app/B", {MakeEvent("b0")}));
  auto c = ledger_->Append(Request("app/A", {MakeEvent("a2")}));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->events[0].position, 1u);
  EXPECT_EQ(a->events[1].position, 2u);
  EXPECT_EQ(a->events[1].version, 1u);
  EXPECT_EQ(b->events[0].position, 3u);
  EXPECT_EQ(b->events[0].version, 0u);
  EXPECT_EQ(c->events[0].position, 4u);
  EXPECT_EQ(c->events[0].version, 2u);
  EXPECT_EQ(ledger_->Head(), 4u);

  auto stream = ledger_->ReadStream("app/A");
  ASSERT_TRUE(stream.ok());
  ASSERT_EQ(stream->size(), 3u);
  EXPECT_EQ((*stream)[2].event_id, "a2");
  EXPECT_EQ((*stream)[2].position, 4u);
  EXPECT_EQ((*stream)[2].actor.org, "KM.XS");
  EXPECT_EQ(ledger_->StreamVersion("app/A").value(), 2);
  EXPECT_EQ(ledger_->StreamVersion("app/none").value(), kNoStream);
}

TEST_F(AppendTest, ChainLinksEachEventToThePreviousOne) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        ledger_->Append(Request("s/" + std::to_string(i % 2), {MakeEvent("e" + std::to_string(i))}))
            .ok());
  }
  auto all = ledger_->ReadFrom(1, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].prev_hash, std::string(32, '\0'));
  for (size_t i = 1; i < all->size(); ++i) EXPECT_EQ((*all)[i].prev_hash, (*all)[i - 1].hash);
  auto verified = ledger_->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->position, 5u);
  EXPECT_EQ(verified->hash_hex, ledger_->HeadDigest().hash_hex);
  // Hashes go out as hex and come back from clients as hex (resume points, digests).
  for (const StoredEvent& event : *all) EXPECT_EQ(FromHex(ToHex(event.hash)), event.hash);
  EXPECT_EQ(FromHex("00ffAb"), std::string("\x00\xff\xab", 3));
  EXPECT_EQ(FromHex(""), std::string());
  for (const char* bad : {"0", "0g", "zz", "a b ", "ab:cd"}) EXPECT_EQ(FromHex(bad), std::nullopt);
}

// A background verification gives up when told to stop (a shutdown does not wait for a scan of
// the whole log): kShutdown, not a verdict on the chain.
TEST_F(AppendTest, AStoppedVerificationIsNoVerdict) {
  ASSERT_TRUE(ledger_->Append(Request("s/0", {MakeEvent("e0")})).ok());
  std::atomic<bool> stop{true};
  auto stopped = ledger_->Verify(stop);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), Code::kShutdown);
  stop = false;
  auto verified = ledger_->Verify(stop);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->position, 1u);
}

TEST_F(AppendTest, ExpectedVersionIsEnforced) {
  ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("a0")}, kNoStream)).ok());
  auto again = ledger_->Append(Request("app/A", {MakeEvent("a1")}, kNoStream));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kVersionConflict);
  EXPECT_EQ(again.status().current_version(), 0);
  auto stale = ledger_->Append(Request("app/A", {MakeEvent("a1")}, 5));
  EXPECT_EQ(stale.status().code(), Code::kVersionConflict);
  auto right = ledger_->Append(Request("app/A", {MakeEvent("a1")}, 0));
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->events[0].version, 1u);
  EXPECT_EQ(ledger_->Head(), 2u);
}

TEST_F(AppendTest, RetryReturnsOriginalPositionsAndWritesNothing) {
  auto first = ledger_->Append(Request("app/A", {MakeEvent("x1"), MakeEvent("x2")}, kNoStream));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(ledger_->Append(Request("app/B", {MakeEvent("y1")})).ok());
  // Same request again, even with a now-stale expected version: a retry, not a conflict.
  auto retry = ledger_->Append(Request("app/A", {MakeEvent("x1"), MakeEvent("x2")}, kNoStream));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->events[0].position, 1u);
  EXPECT_EQ(retry->events[1].position, 2u);
  EXPECT_TRUE(retry->events[0].duplicate);
  EXPECT_TRUE(retry->events[1].duplicate);
  EXPECT_EQ(ledger_->Head(), 3u);
}

TEST_F(AppendTest, SameIdWithDifferentContentIsRejected) {
  ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("x1", "T", "one")})).ok());
  auto other_payload = ledger_->Append(Request("app/A", {MakeEvent("x1", "T", "two")}));
  EXPECT_EQ(other_payload.status().code(), Code::kDuplicateMismatch);
  auto other_stream = ledger_->Append(Request("app/B", {MakeEvent("x1", "T", "one")}));
  EXPECT_EQ(other_stream.status().code(), Code::kDuplicateMismatch);
  auto mixed = ledger_->Append(Request("app/A", {MakeEvent("x1", "T", "one"), MakeEvent("x9")}));
  EXPECT_EQ(mixed.status().code(), Code::kDuplicateMismatch);
  auto new_then_old =
      ledger_->Append(Request("app/A", {MakeEvent("x8"), MakeEvent("x1", "T", "one")}));
  EXPECT_EQ(new_then_old.status().code(), Code::kDuplicateMismatch);
  EXPECT_EQ(ledger_->Head(), 1u);
  EXPECT_EQ(ledger_->StreamVersion("app/B").value(), kNoStream);
}

TEST_F(AppendTest, WhoRecordedAnEventIsStoredButIsNotItsContent) {
  NewEvent imported = MakeEvent("h1");
  imported.imported = true;
  imported.recorded_by = Actor{"D0001", "director", "KM.XS"};
  ASSERT_TRUE(ledger_->Append(Request("app/A", {imported, MakeEvent("h2")})).ok());
  auto first = ledger_->ReadOne(1);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->recorded_by.has_value());
  EXPECT_EQ(*first->recorded_by, (Actor{"D0001", "director", "KM.XS"}));
  EXPECT_EQ(first->actor, (Actor{"S1", "clerk", "KM.XS"}));
  EXPECT_FALSE(ledger_->ReadOne(2)->recorded_by.has_value());
  // The same fact submitted again by someone else is a retry of the same event.
  imported.recorded_by = Actor{"ADM01", "admin", "KM"};
  auto again = ledger_->Append(Request("app/A", {imported}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->events[0].duplicate);
  EXPECT_EQ(ledger_->Head(), 2u);
  EXPECT_EQ(ledger_->ReadOne(1)->recorded_by->id, "D0001");
  EXPECT_TRUE(ledger_->Verify().ok());
}

TEST_F(AppendTest, InvalidRequestsChangeNothing) {
  EXPECT_EQ(ledger_->Append(Request("", {MakeEvent("a")})).status().code(), Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request(std::string("a\0b", 3), {MakeEvent("a")})).status().code(),
            Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request("app/A", {})).status().code(), Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request("app/A", {MakeEvent("d"), MakeEvent("d")})).status().code(),
            Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request("app/A", {MakeEvent("")})).status().code(), Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request("app/A", {MakeEvent("big", "T", std::string(70000, 'x'))}))
                .status()
                .code(),
            Code::kInvalid);
  EXPECT_EQ(ledger_->Append(Request("app/A", {MakeEvent("v")}, -2)).status().code(),
            Code::kInvalid);
  EXPECT_EQ(ledger_->Head(), 0u);
}

TEST_F(AppendTest, ReadsByStreamVersionPositionAndLimit) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("e" + std::to_string(i))})).ok());
  }
  auto tail = ledger_->ReadStream("app/A", 7);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_EQ(tail->front().version, 7u);
  auto page = ledger_->ReadFrom(4, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ(page->front().position, 4u);
  EXPECT_EQ(page->back().position, 6u);
  EXPECT_EQ(ledger_->ReadOne(10)->event_id, "e9");
  EXPECT_EQ(ledger_->ReadOne(11).status().code(), Code::kNotFound);
  EXPECT_EQ(ledger_->ReadOne(0).status().code(), Code::kNotFound);
  EXPECT_EQ(ledger_->DigestAt(10)->hash_hex, ledger_->HeadDigest().hash_hex);
}

// Reads of a stream are confined to its own keys (StreamPrefix and the separator): a stream whose
// id is a prefix of another's, or sorts right next to it, neither shows the other's events nor
// hides its own, whether they sit in table files (after Compact) or in the memtable.
TEST_F(AppendTest, StreamReadsSeeExactlyTheirOwnEventsInTablesAndMemtable) {
  const std::vector<std::string> streams = {"app/A", "app/A1", "app/AB", "app/A\x01", "app/B"};
  std::map<std::string, std::vector<std::string>> ids;
  auto append_round = [&](int round) {
    for (size_t s = 0; s < streams.size(); ++s) {
      for (size_t i = 0; i <= s; ++i) {
        std::string id =
            "r" + std::to_string(round) + "-" + std::to_string(s) + "-" + std::to_string(i);
        ASSERT_TRUE(ledger_->Append(Request(streams[s], {MakeEvent(id)})).ok()) << id;
        ids[streams[s]].push_back(id);
      }
    }
  };
  auto check = [&](const char* where) {
    for (const std::string& stream : streams) {
      auto events = ledger_->ReadStream(stream);
      ASSERT_TRUE(events.ok()) << where << " " << stream;
      std::vector<std::string> read;
      for (const StoredEvent& event : *events) read.push_back(event.event_id);
      EXPECT_EQ(read, ids[stream]) << where << " " << stream;
      auto version = ledger_->StreamVersion(stream);
      ASSERT_TRUE(version.ok());
      EXPECT_EQ(*version, static_cast<int64_t>(ids[stream].size()) - 1) << where << " " << stream;
    }
    EXPECT_EQ(*ledger_->StreamVersion("app/"), kNoStream) << where;
    EXPECT_EQ(*ledger_->StreamVersion("app/A0"), kNoStream) << where;
    EXPECT_TRUE(ledger_->ReadStream("app/AA")->empty()) << where;
  };
  append_round(0);
  check("memtable");
  ASSERT_TRUE(ledger_->Compact().ok());
  check("tables");
  append_round(1);
  check("tables and memtable");
}

// Exported envelopes (StoredEvent::CanonicalEnvelope, `ledgerctl read --envelopes`) are checked
// against their hash without the ledger (CheckEnvelope), and CheckEnvelope takes untrusted bytes:
// seeded mutations (byte flips, truncations, extensions, word swaps) must give a named error or an
// event whose hash matches — never a crash or an exception — and any mutation of the event's
// content must be caught. Deterministic: the seed is in the failure message.
TEST_F(AppendTest, ExportedEnvelopesCheckAndMutatedOnesNeverPassForOthers) {
  NewEvent recorded = MakeEvent("by-import", "Tested", std::string(100, 'p'));
  recorded.imported = true;
  recorded.recorded_by = Actor{"local:root", "admin", "local"};
  ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("plain")})).ok());
  ASSERT_TRUE(ledger_->Append(Request("app/A", {recorded})).ok());
  for (uint64_t position : {1u, 2u}) {
    auto stored = ledger_->ReadOne(position);
    ASSERT_TRUE(stored.ok());
    const std::string bytes = stored->CanonicalEnvelope();
    auto checked = CheckEnvelope(bytes);
    ASSERT_TRUE(checked.ok()) << checked.status().ToString();
    EXPECT_EQ(checked->event_id, stored->event_id);
    EXPECT_EQ(checked->recorded_by.has_value(), stored->recorded_by.has_value());
    EXPECT_EQ(checked->hash, stored->hash);

    std::mt19937_64 random(position);
    for (int round = 0; round < 3000; ++round) {
      std::string mutated = bytes;
      switch (random() % 4) {
        case 0:
          mutated[random() % mutated.size()] ^= static_cast<char>(1 + random() % 255);
          break;
        case 1:
          mutated.resize(random() % mutated.size());
          break;
        case 2:
          mutated.append(8 * (1 + random() % 4), static_cast<char>(random()));
          break;
        default: {  // two words trade places
          const size_t words = mutated.size() / 8;
          const size_t a = 8 * (random() % words);
          const size_t b = 8 * (random() % words);
          if (a != b)
            std::swap_ranges(mutated.begin() + a, mutated.begin() + a + 8, mutated.begin() + b);
        }
      }
      auto result = CheckEnvelope(mutated);
      if (!result.ok()) {
        EXPECT_TRUE(result.status().code() == Code::kInvalid ||
                    result.status().code() == Code::kCorruption)
            << "seed " << position << " round " << round << ": " << result.status().ToString();
        continue;
      }
      // Taken: then it is this very event (a change only where nothing is read, e.g. padding).
      EXPECT_EQ(result->hash, stored->hash) << "seed " << position << " round " << round;
      EXPECT_EQ(result->event_id, stored->event_id) << "seed " << position << " round " << round;
      EXPECT_EQ(result->payload, stored->payload) << "seed " << position << " round " << round;
      EXPECT_EQ(result->position, stored->position) << "seed " << position << " round " << round;
    }
  }
}

TEST_F(AppendTest, PositionAtFindsTheLogAsKnownAtARecordedTime) {
  EXPECT_EQ(ledger_->PositionAt(5).value(), 0u);
  for (int i = 0; i < 6; ++i) {
    now_us_ = 1000 * (i / 2 + 1);  // recorded_at: 1000, 1000, 2000, 2000, 3000, 3000
    ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("e" + std::to_string(i))})).ok());
  }
  EXPECT_EQ(ledger_->PositionAt(999).value(), 0u);
  EXPECT_EQ(ledger_->PositionAt(1000).value(), 2u);
  EXPECT_EQ(ledger_->PositionAt(2500).value(), 4u);
  EXPECT_EQ(ledger_->PositionAt(9999).value(), 6u);
  // A clock that steps back never makes recorded_at decrease.
  now_us_ = 10;
  ASSERT_TRUE(ledger_->Append(Request("app/A", {MakeEvent("late")})).ok());
  EXPECT_EQ(ledger_->ReadOne(7)->recorded_at_us, 3000);
}

TEST_F(AppendTest, WaitForHeadWakesOnAppend) {
  std::thread appender([&] { ASSERT_TRUE(ledger_->Append(Request("s", {MakeEvent("w")})).ok()); });
  uint64_t seen = ledger_->WaitForHeadAbove(0, std::chrono::seconds(30));
  appender.join();
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(ledger_->WaitForHeadAbove(1, std::chrono::milliseconds(1)), 1u);
}

TEST(AppendBusyTest, FullQueueAnswersBusyAndWritesNothing) {
  testing::TempDir dir;
  Options options;
  options.append_queue_requests_max = 2;
  auto ledger = std::move(Ledger::Open(dir.str(), options)).value();
  // Hold the writer inside its first publish. The stager then fills its next commit up to
  // kGroupCommitEventsMax and waits for the writer; requests that no longer fit stay queued.
  std::mutex gate_mutex;
  std::condition_variable gate_cv;
  bool open = false;
  ledger->AddHeadListener([&](uint64_t) {
    std::unique_lock lock(gate_mutex);
    gate_cv.wait(lock, [&] { return open; });
  });
  std::vector<std::thread> appenders;
  auto append = [&](const std::string& prefix, size_t events) {
    appenders.emplace_back([&ledger, prefix, events] {
      std::vector<NewEvent> batch;
      for (size_t i = 0; i < events; ++i) batch.push_back(MakeEvent(prefix + std::to_string(i)));
      auto result = ledger->Append(Request("s/" + prefix, std::move(batch)));
      EXPECT_TRUE(result.ok()) << result.status().ToString();
    });
  };
  append("first", 1);
  while (ledger->Head() < 1) std::this_thread::yield();
  constexpr size_t kFitting = kGroupCommitEventsMax / kAppendEventsMax;  // requests of the max size
  for (size_t i = 0; i < kFitting; ++i) {  // one at a time: the queue holds only two
    append("fit" + std::to_string(i) + "-", kAppendEventsMax);
    while (ledger->Stats().requests_taken < 2 + i) std::this_thread::yield();
  }
  append("queued0-", kAppendEventsMax);
  append("queued1-", kAppendEventsMax);
  while (ledger->QueuedAppends() < 2) std::this_thread::yield();
  auto refused = ledger->Append(Request("s/refused", {MakeEvent("refused")}));
  EXPECT_EQ(refused.status().code(), Code::kBusy);
  {
    std::lock_guard lock(gate_mutex);
    open = true;
  }
  gate_cv.notify_all();
  for (auto& thread : appenders) thread.join();
  EXPECT_EQ(ledger->Head(), 1 + (kFitting + 2) * kAppendEventsMax);
  EXPECT_FALSE(ledger->FindEventId("refused").value().has_value());
  EXPECT_EQ(ledger->StreamVersion("s/refused").value(), kNoStream);
}

}  // namespace
}  // namespace gridledger::ledger
