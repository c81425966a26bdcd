// Goal: Ledger::Backup makes a copy of the data directory that is a ledger of its own — every
// event acknowledged before the backup began, the chain and indexes whole, the projections' side
// states too (also those written without the write-ahead log) — while appends go on; and it
// never writes into an existing directory.
// Method: appends before and during the backup (4 threads), a side state written unlogged, then
// the copy opened as a ledger: head, chain, events, side state, and an append that continues it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

AppendRequest OneEvent(const std::string& stream, const std::string& id) {
  NewEvent event;
  event.event_id = id;
  event.type = "Tested";
  event.occurred_at_us = 1'700'000'000'000'000;
  event.actor = {"S1", "clerk", "KM.XS"};
  event.payload = std::string(200, 'x');
  return {stream, std::nullopt, {std::move(event)}};
}

TEST(BackupTest, TheCopyIsAWholeLedgerOfTheMomentWhileAppendsGoOn) {
  testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const std::string copy = (dir.path() / "backup").string();
  Options options;
  options.side_families = {"proj.test"};
  auto ledger = std::move(Ledger::Open(data, options)).value();
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(
        ledger->Append(OneEvent("app/" + std::to_string(i % 20), "before-" + std::to_string(i)))
            .ok());
  }
  auto side = ledger->NewSideBatch();
  side->Put(0, "state/1", "unlogged state");
  ASSERT_TRUE(ledger->WriteSideUnlogged(*side).ok());
  const uint64_t before = ledger->Head();

  std::atomic<bool> stop{false};
  std::atomic<int> appended_during{0};
  std::vector<std::thread> appenders;
  for (int t = 0; t < 4; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        auto done = ledger->Append(OneEvent(
            "app/t" + std::to_string(t), "during-" + std::to_string(t) + "-" + std::to_string(i)));
        if (!done.ok()) {
          ADD_FAILURE() << done.status().ToString();
          return;
        }
        appended_during.fetch_add(1);
      }
    });
  }
  auto backed_up = ledger->Backup(copy);
  stop = true;
  for (std::thread& appender : appenders) appender.join();
  ASSERT_TRUE(backed_up.ok()) << backed_up.status().ToString();
  EXPECT_GE(backed_up->position, before);
  EXPECT_GT(appended_during.load(), 0);

  // Never into an existing directory.
  auto again = ledger->Backup(copy);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kInvalid);
  const uint64_t head = ledger->Head();
  ledger.reset();

  auto restored = Ledger::Open(copy, options);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ((*restored)->Head(), backed_up->position);
  auto verified = (*restored)->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->hash_hex, backed_up->hash_hex);
  auto first = (*restored)->ReadOne(1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->event_id, "before-0");
  auto state = (*restored)->GetSide(0, "state/1");
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ(**state, "unlogged state");
  auto next = (*restored)->Append(OneEvent("app/0", "after-restore"));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->events.front().position, backed_up->position + 1);
  // The original went on independently of its copy.
  auto original = Ledger::Open(data, options);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ((*original)->Head(), head);
  EXPECT_TRUE((*original)->Verify().ok());
}

// A backup touches nothing but its own new directory: not a neighbour RocksDB would stage a
// checkpoint in ("<dest>.tmp", emptied first), not a symlink in the way; a trailing slash names
// the same directory; a failed one leaves nothing behind.
TEST(BackupTest, ABackupTouchesNothingButItsOwnNewDirectory) {
  namespace fs = std::filesystem;
  testing::TempDir dir;
  auto ledger = std::move(Ledger::Open((dir.path() / "data").string())).value();
  ASSERT_TRUE(ledger->Append(OneEvent("app/1", "e1")).ok());
  const fs::path backups = dir.path() / "backups";
  fs::create_directories(backups / "b1.tmp");
  std::ofstream(backups / "b1.tmp" / "notes.txt") << "keep me";

  auto first = ledger->Backup((backups / "b1").string() + "/");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(fs::exists(backups / "b1" / "CURRENT"));
  EXPECT_TRUE(fs::exists(backups / "b1.tmp" / "notes.txt"));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(backups)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b1", "b1.tmp"})) << "a staging directory was left";

  fs::create_directory_symlink(dir.path() / "elsewhere", backups / "link");
  auto through_link = ledger->Backup((backups / "link").string());
  EXPECT_EQ(through_link.status().code(), Code::kInvalid) << through_link.status().ToString();
  EXPECT_FALSE(fs::exists(dir.path() / "elsewhere"));

  auto inside = ledger->Backup((dir.path() / "data" / "copy").string());
  EXPECT_EQ(inside.status().code(), Code::kInvalid) << inside.status().ToString();
  EXPECT_FALSE(fs::exists(dir.path() / "data" / "copy"));

  // The staging directory of a backup whose process died is removed by the next one beside it.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const fs::path abandoned = backups / (".b9.partial-" + std::to_string(dead) + "-0");
  fs::create_directories(abandoned / "copy");
  std::ofstream(abandoned / "copy" / "000009.sst") << "half a copy";
  auto next = ledger->Backup((backups / "b3").string());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_FALSE(fs::exists(abandoned));

  std::ofstream(backups / "a-file") << "x";
  auto under_file = ledger->Backup((backups / "a-file" / "b2").string());
  EXPECT_FALSE(under_file.ok());
  EXPECT_EQ(under_file.status().code(), Code::kIoError) << under_file.status().ToString();
  // b1, b1.tmp, link, b3, a-file
  EXPECT_EQ(std::distance(fs::directory_iterator(backups), fs::directory_iterator()), 5);
}

}  // namespace
}  // namespace gridledger::ledger
