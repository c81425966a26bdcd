// Goal: acknowledged means durable. A process appending from several threads is killed with
// SIGKILL at random moments; after every kill, each event it reported as acknowledged is stored at
// the reported position and the hash chain verifies.
// Method: ≥ 20 cycles of fork/exec crash_appender with a pipe on its stdout; the parent reads
// acknowledgements until a random count (seeded, printed) is reached, then kills the child
// mid-stream — it is still appending and syncing — and checks the data directory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

struct Ack {
  uint64_t position;
  std::string event_id;
};

// Starts the child; returns its pid and the read end of its stdout.
std::pair<pid_t, FILE*> StartChild(const std::string& dir, const std::string& prefix) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(CRASH_APPENDER_PATH, CRASH_APPENDER_PATH, dir.c_str(), prefix.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

TEST(CrashTest, AcknowledgedEventsSurviveSigkill) {
  constexpr int kCycles = 24;
  const unsigned seed = std::random_device{}();
  std::printf("crash test seed %u\n", seed);
  std::mt19937 random(seed);
  testing::TempDir dir;
  std::vector<Ack> acknowledged;

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    auto [pid, out] = StartChild(dir.str(), "c" + std::to_string(cycle));
    ASSERT_GT(pid, 0);
    ASSERT_NE(out, nullptr);
    const int kill_after = std::uniform_int_distribution<int>(1, 400)(random);
    char position_text[32];
    char id[128];
    int read = 0;
    while (read < kill_after && std::fscanf(out, "%31s %127s", position_text, id) == 2) {
      acknowledged.push_back({std::stoull(position_text), id});
      ++read;
    }
    kill(pid, SIGKILL);
    // Acknowledgements already in the pipe were acknowledged too.
    while (std::fscanf(out, "%31s %127s", position_text, id) == 2) {
      acknowledged.push_back({std::stoull(position_text), id});
    }
    std::fclose(out);
    int wait_status = 0;
    ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wait_status)) << "child ended on its own in cycle " << cycle;
    ASSERT_EQ(read, kill_after) << "child stopped acknowledging in cycle " << cycle;

    auto ledger = Ledger::Open(dir.str());
    ASSERT_TRUE(ledger.ok()) << "cycle " << cycle << ": " << ledger.status().ToString();
    for (const Ack& ack : acknowledged) {
      auto event = (*ledger)->ReadOne(ack.position);
      ASSERT_TRUE(event.ok()) << "acknowledged position " << ack.position << " lost";
      ASSERT_EQ(event->event_id, ack.event_id);
    }
    auto verified = (*ledger)->Verify();
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  }
  EXPECT_GE(acknowledged.size(), static_cast<size_t>(kCycles));
}

}  // namespace
}  // namespace gridledger::ledger
