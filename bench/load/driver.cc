#include "driver.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "load_events.h"

namespace gridledger::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A thread gives up after this many failures in a row (a broken connection fails every call).
constexpr int kConsecutiveFailuresMax = 100;

struct Window {
  Clock::time_point start;          // every client starts sending here
  Clock::time_point measure_start;  // end of the warm-up
  Clock::time_point end;            // no new sends from here on
};

struct ClientTally {
  std::vector<int64_t> latency_ns;  // of the events acknowledged in the measured window
  uint64_t failures = 0;
  std::string first_failure;
  Clock::time_point last_done;
};

// Returns false when the thread should stop (too many failures in a row).
bool Send(Appender& appender, const LoadEvent& event, ClientTally& tally, int& failures_in_row,
          bool* ok) {
  std::string error;
  *ok = appender.Append(event, &error);
  if (*ok) {
    failures_in_row = 0;
    return true;
  }
  if (tally.failures++ == 0) tally.first_failure = error;
  return ++failures_in_row < kConsecutiveFailuresMax;
}

void ClosedLoop(Appender& appender, LoadEventMaker& maker, const Window& window,
                ClientTally& tally) {
  std::this_thread::sleep_until(window.start);
  int failures_in_row = 0;
  while (true) {
    const LoadEvent& event = maker.Next();
    const Clock::time_point sent = Clock::now();
    if (sent >= window.end) break;
    bool ok = false;
    const bool go_on = Send(appender, event, tally, failures_in_row, &ok);
    const Clock::time_point done = Clock::now();
    if (ok && done >= window.measure_start && done < window.end) {
      tally.latency_ns.push_back((done - sent).count());
    }
    if (!go_on) break;
  }
}

// Client i of n sends at start + (i / n + k) * interval, k = 0, 1, …: together `rate` events/s,
// evenly spread. An event counts when its scheduled time lies in the measured window.
void OpenLoop(Appender& appender, LoadEventMaker& maker, const Window& window, int clients,
              double rate, ClientTally& tally) {
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(clients / rate));
  Clock::time_point scheduled = window.start + interval * maker.client() / clients;
  int failures_in_row = 0;
  for (; scheduled < window.end; scheduled += interval) {
    const LoadEvent& event = maker.Next();
    std::this_thread::sleep_until(scheduled);
    bool ok = false;
    const bool go_on = Send(appender, event, tally, failures_in_row, &ok);
    const Clock::time_point done = Clock::now();
    if (ok && scheduled >= window.measure_start) {
      tally.latency_ns.push_back((done - scheduled).count());
      tally.last_done = done;
    }
    if (!go_on) break;
  }
}

double Percentile(const std::vector<int64_t>& sorted_ns, double fraction) {
  if (sorted_ns.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(fraction * sorted_ns.size()));
  return sorted_ns[std::clamp<size_t>(rank, 1, sorted_ns.size()) - 1] / 1e6;
}

LoadResult Summarize(const LoadSpec& spec, const Window& window,
                     std::vector<ClientTally>& tallies) {
  LoadResult result;
  std::vector<int64_t> latency_ns;
  Clock::time_point last_done = window.end;
  for (ClientTally& tally : tallies) {
    latency_ns.insert(latency_ns.end(), tally.latency_ns.begin(), tally.latency_ns.end());
    if (tally.failures > 0 && result.failures == 0) result.first_failure = tally.first_failure;
    result.failures += tally.failures;
    last_done = std::max(last_done, tally.last_done);
  }
  std::sort(latency_ns.begin(), latency_ns.end());
  result.events = latency_ns.size();
  // Open loop: when the server falls behind, the events scheduled in the window are answered
  // after it ends; the rate is then over the time they really took.
  const Clock::time_point rate_end = spec.rate > 0 ? last_done : window.end;
  result.seconds = std::chrono::duration<double>(rate_end - window.measure_start).count();
  result.events_per_second = result.events / result.seconds;
  result.p50_ms = Percentile(latency_ns, 0.50);
  result.p99_ms = Percentile(latency_ns, 0.99);
  result.p999_ms = Percentile(latency_ns, 0.999);
  result.max_ms = latency_ns.empty() ? 0 : latency_ns.back() / 1e6;
  return result;
}

}  // namespace

LoadResult RunLoad(const LoadSpec& spec, const AppenderFactory& connect) {
  std::vector<std::unique_ptr<Appender>> appenders;
  std::vector<LoadEventMaker> makers;
  for (int client = 0; client < spec.clients; ++client) {
    std::string error;
    appenders.push_back(connect(client, &error));
    if (appenders.back() == nullptr) {
      LoadResult failed;
      failed.error = error;
      return failed;
    }
    makers.emplace_back(spec.door, spec.run, client);
  }
  Window window;
  window.start = Clock::now() + std::chrono::milliseconds(100);  // every thread is waiting by then
  window.measure_start = window.start + spec.warmup;
  window.end = window.measure_start + spec.measured;
  std::vector<ClientTally> tallies(spec.clients);
  std::vector<std::thread> threads;
  for (int client = 0; client < spec.clients; ++client) {
    threads.emplace_back([&, client] {
      if (spec.rate > 0) {
        OpenLoop(*appenders[client], makers[client], window, spec.clients, spec.rate,
                 tallies[client]);
      } else {
        ClosedLoop(*appenders[client], makers[client], window, tallies[client]);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return Summarize(spec, window, tallies);
}

}  // namespace gridledger::bench
