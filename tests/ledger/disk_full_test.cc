// Goal (design.md, reliability rules): "Disk full: appends fail with an error, nothing is
// half-written, service resumes when space returns" — and the process survives it.
// Method: a real full disk: the ledger on a tmpfs of 8 MiB (mounting needs CAP_SYS_ADMIN; the
// test is skipped without it), appends of 1 KiB events until one fails; then the error, the
// stored head and the chain are checked while the disk is still full; the tmpfs is grown (space
// returns), appends are retried until taken (with a deadline), and the chain, the positions and a
// reopened ledger are checked. Before the ledger wrote RocksDB's messages itself, the first
// warning after the disk filled aborted the process (storage_log.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

using ::testing::HasSubstr;

// A tmpfs mounted at `path` for the life of the object. (Not in a mount namespace of its own:
// unshare moves only the calling thread, and RocksDB's background threads, started by earlier
// tests of the same process, would write beside the mount. A crash leaves the mount behind.)
class SmallTmpfs {
 public:
  SmallTmpfs(std::filesystem::path path, const std::string& size) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::filesystem::path& path() const { return path_; }
  bool Resize(const std::string& size) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
  std::string error_;
};

AppendRequest OneEvent(int i) {
  NewEvent event;
  event.event_id = "disk-full-" + std::to_string(i);
  event.type = "Noted";
  event.occurred_at_us = 1'767'225'600'000'000;
  event.actor = {"S1001", "clerk", "KM"};
  event.payload = std::string(1024, static_cast<char>('a' + i % 26));
  AppendRequest request;
  request.stream = "s/" + std::to_string(i % 50);
  request.events.push_back(std::move(event));
  return request;
}

TEST(DiskFullTest, AppendsFailWhileTheDiskIsFullAndResumeOnceSpaceReturns) {
  testing::TempDir dir;
  SmallTmpfs disk(dir.path() / "disk", "8m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk.error();
  const std::string data = (disk.path() / "ledger").string();

  std::mutex messages_mutex;
  std::vector<std::string> messages;
  Options options;
  options.storage_log = [&](std::string_view level, std::string_view message) {
    std::lock_guard lock(messages_mutex);
    messages.push_back(std::string(level) + ": " + std::string(message));
  };
  uint64_t acknowledged = 0;
  {
    auto ledger = std::move(Ledger::Open(data, options)).value();
    Status failure;
    int next = 0;
    for (;; ++next) {
      ASSERT_LT(next, 100000) << "8 MiB never filled up";
      auto appended = ledger->Append(OneEvent(next));
      if (!appended.ok()) {
        failure = appended.status();
        break;
      }
      ASSERT_EQ(appended->events.front().position, acknowledged + 1);
      ++acknowledged;
    }
    EXPECT_EQ(failure.code(), Code::kIoError);
    EXPECT_THAT(failure.message(), HasSubstr("No space left on device"));
    ASSERT_GT(acknowledged, 1000u);

    // Still full: a write fails with an error that says why, and nothing was stored.
    auto refused = ledger->Append(OneEvent(next));
    ASSERT_FALSE(refused.ok());
    EXPECT_THAT(refused.status().message(), HasSubstr("No space left on device"));
    EXPECT_EQ(ledger->Head(), acknowledged);
    auto last = ledger->ReadOne(acknowledged);
    ASSERT_TRUE(last.ok()) << last.status().ToString();
    EXPECT_EQ(last->event_id, "disk-full-" + std::to_string(next - 1));
    auto verified = ledger->Verify();
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->position, acknowledged);

    // Space returns: the same event is taken once RocksDB writes again, at the next position.
    // (RocksDB clears the error only with the memtable budget free, 64 MiB, and looks every 5 s.)
    ASSERT_TRUE(disk.Resize("256m"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    Result<AppendResult> taken = Status(Code::kIoError, "not tried");
    while (!(taken = ledger->Append(OneEvent(next))).ok()) {
      // Every refusal meanwhile names the cause, also after failed attempts to resume.
      ASSERT_THAT(taken.status().message(), HasSubstr("No space left on device"));
      if (std::chrono::steady_clock::now() >= deadline) {
        std::lock_guard lock(messages_mutex);
        for (const std::string& message : messages) std::printf("storage: %s\n", message.c_str());
        FAIL() << "appends did not resume: " << taken.status().ToString();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(taken->events.front().position, acknowledged + 1);
    EXPECT_FALSE(taken->events.front().duplicate);
    ++acknowledged;
    for (int i = next + 1; i < next + 200; ++i) {
      auto appended = ledger->Append(OneEvent(i));
      ASSERT_TRUE(appended.ok()) << appended.status().ToString();
      ASSERT_EQ(appended->events.front().position, ++acknowledged);
    }
    verified = ledger->Verify();
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->position, acknowledged);
  }
  {
    std::lock_guard lock(messages_mutex);
    const bool said = std::any_of(messages.begin(), messages.end(), [](const std::string& m) {
      return m.find("No space left on device") != std::string::npos;
    });
    EXPECT_TRUE(said) << "RocksDB's messages did not reach Options::storage_log";
  }

  auto reopened = Ledger::Open(data);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->Head(), acknowledged);
  auto verified = (*reopened)->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->position, acknowledged);
}

}  // namespace
}  // namespace gridledger::ledger
