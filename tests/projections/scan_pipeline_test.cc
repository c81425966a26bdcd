// Goal: the pipelined scan (projections/scan_pipeline.h) hands the folder every event in position
// order with its fields intact, and stops cleanly — no hang, the folder's error returned — when
// the folder fails while the scanner is blocked on a full set of batches.
// Method: a real ledger holding more events than kScanBatchesMax batches can carry at once,
// appended in batches of one request each (unsynced); the fold checks each record it receives.
#include "scan_pipeline.h"

#include <gtest/gtest.h>

#include <vector>

#include "projections/engine.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

// More than every batch in flight can carry, so the scanner must wait for the folder.
constexpr uint64_t kEventsPerRequest = 500;
constexpr uint64_t kEvents =
    (kScanBatchesMax * kScanBatchEventsMax / kEventsPerRequest + 2) * kEventsPerRequest;

std::unique_ptr<ledger::Ledger> LedgerWithEvents(const std::string& dir) {
  ledger::Options options;
  options.side_families = SideFamilies();
  options.sync = false;
  auto ledger = std::move(ledger::Ledger::Open(dir, options)).value();
  for (uint64_t first = 0; first < kEvents; first += kEventsPerRequest) {
    ledger::AppendRequest request;
    request.stream = "staff/S" + std::to_string(first);
    for (uint64_t i = first; i < first + kEventsPerRequest; ++i) {
      ledger::NewEvent event;
      event.event_id = "e" + std::to_string(i);
      event.type = "Test";
      event.occurred_at_us = static_cast<int64_t>(i);
      event.actor.id = "A" + std::to_string(i % 7);
      event.payload = std::string(8 * (1 + i % 5), static_cast<char>('a' + i % 26));
      request.events.push_back(std::move(event));
    }
    EXPECT_TRUE(ledger->Append(std::move(request)).ok());
  }
  EXPECT_EQ(ledger->Head(), kEvents);
  return ledger;
}

TEST(ScanPipelineTest, FoldsEveryEventInOrderWithItsFields) {
  testing::TempDir dir;
  auto ledger = LedgerWithEvents(dir.str());
  uint64_t expected = 1;
  ledger::Status folded =
      ScanPipelined(*ledger, 1, kEvents, [&](const EventRecord& record) -> ledger::Status {
        const uint64_t i = expected - 1;
        EXPECT_EQ(record.position, expected);
        EXPECT_EQ(record.occurred_at_us, static_cast<int64_t>(i));
        EXPECT_EQ(record.actor_id, "A" + std::to_string(i % 7));
        EXPECT_EQ(record.payload, std::string(8 * (1 + i % 5), static_cast<char>('a' + i % 26)));
        EXPECT_EQ(reinterpret_cast<uintptr_t>(record.payload.data()) % 8, 0u);
        ++expected;
        return ledger::Status::Ok();
      });
  EXPECT_TRUE(folded.ok()) << folded.ToString();
  EXPECT_EQ(expected, kEvents + 1);
}

TEST(ScanPipelineTest, StopsAtTheLastPositionAsked) {
  testing::TempDir dir;
  auto ledger = LedgerWithEvents(dir.str());
  uint64_t seen = 0;
  ledger::Status folded = ScanPipelined(*ledger, 101, 5000, [&](const EventRecord& record) {
    EXPECT_EQ(record.position, 101 + seen);
    ++seen;
    return ledger::Status::Ok();
  });
  EXPECT_TRUE(folded.ok());
  EXPECT_EQ(seen, 4900u);
}

TEST(ScanPipelineTest, AFoldErrorStopsTheScanAndIsReturned) {
  testing::TempDir dir;
  auto ledger = LedgerWithEvents(dir.str());
  uint64_t seen = 0;
  ledger::Status folded = ScanPipelined(*ledger, 1, kEvents, [&](const EventRecord& record) {
    ++seen;
    if (record.position == 3) return ledger::Status(ledger::Code::kCorruption, "bad state");
    return ledger::Status::Ok();
  });
  EXPECT_EQ(folded.code(), ledger::Code::kCorruption);
  EXPECT_EQ(seen, 3u);
}

TEST(ScanPipelineTest, TheFolderSeesEachEventAheadAtEveryStepsDistance) {
  testing::TempDir dir;
  auto ledger = LedgerWithEvents(dir.str());
  uint64_t folded_last = 0;  // position of the last folded event
  std::vector<uint64_t> ahead_calls(kAheadSteps, 0);
  std::vector<uint64_t> last_ahead(kAheadSteps, 0);
  ledger::Status folded = ScanPipelined(
      *ledger, 1, kEvents,
      [&](const EventRecord& record) {
        EXPECT_EQ(record.position, folded_last + 1);
        folded_last = record.position;
        return ledger::Status::Ok();
      },
      [&](const EventRecord& record, size_t step) {
        ASSERT_LT(step, kAheadSteps);
        // Exactly kAheadEvents[step] events before it is folded, each event at most once per step.
        EXPECT_EQ(record.position, folded_last + 1 + kAheadEvents[step]) << "step " << step;
        EXPECT_GT(record.position, last_ahead[step]);
        last_ahead[step] = record.position;
        ++ahead_calls[step];
      });
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded_last, kEvents);
  for (size_t step = 0; step < kAheadSteps; ++step) {
    // Every event but the first few of each batch (more than one batch is scanned).
    EXPECT_GT(ahead_calls[step], kEvents - kAheadEvents[step] * (kEvents / 100)) << step;
    EXPECT_LT(ahead_calls[step], kEvents) << step;
  }
}

}  // namespace
}  // namespace gridledger::projections
