// Child process of crash_test.cc: opens the ledger in argv[1] and appends forever from several
// threads, writing "position event_id\n" to stdout after each acknowledged append. The parent kills
// it with SIGKILL at a moment of its choosing. Event ids start with argv[2] so cycles never
// collide.
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_appender DIR ID_PREFIX\n");
    return 2;
  }
  auto opened = gridledger::ledger::Ledger::Open(argv[1]);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto ledger = std::move(opened).value();
  std::mutex out_mutex;
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (long i = 0;; ++i) {
        gridledger::ledger::NewEvent event;
        event.event_id = std::string(argv[2]) + "-" + std::to_string(t) + "-" + std::to_string(i);
        event.type = "CrashTested";
        event.actor = {"S1", "clerk", "ORG"};
        event.payload = std::string(300, static_cast<char>('a' + t));
        auto result = ledger->Append({"app/" + std::to_string(t), std::nullopt, {event}});
        if (!result.ok()) {
          std::fprintf(stderr, "append: %s\n", result.status().ToString().c_str());
          _exit(1);
        }
        std::lock_guard lock(out_mutex);
        std::string line = std::to_string(result->events[0].position) + " " + event.event_id + "\n";
        // write(2), unbuffered: an acknowledgement reaches the parent before the next append.
        if (write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
}
