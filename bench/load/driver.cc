#include "driver.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "load_events.h"

namespace gridledger::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A client gives up after this many refused units in a row, and when a connection fails.
constexpr int kConsecutiveFailuresMax = 100;
// How long a client waits for an answer when it has nothing else to do before it gives up.
constexpr auto kAnswerTimeout = std::chrono::seconds(30);

struct Window {
  Clock::time_point start;          // every client starts sending here
  Clock::time_point measure_start;  // end of the warm-up
  Clock::time_point end;            // no new sends from here on
};

struct ClientTally {
  std::vector<int64_t> latency_ns;  // of the events acknowledged in the measured window
  uint64_t acknowledged = 0;        // events, in the whole run
  uint64_t failures = 0;
  std::string first_failure;
  Clock::time_point last_done;
};

// One client thread: its connection, its events and its units in flight.
class ClientLoop {
 public:
  ClientLoop(Appender& appender, LoadEventMaker& maker, const LoadSpec& spec, const Window& window,
             ClientTally& tally)
      : appender_(appender),
        maker_(maker),
        spec_(spec),
        window_(window),
        tally_(tally),
        unit_(static_cast<size_t>(spec.events_per_unit)),
        started_(static_cast<size_t>(spec.units_in_flight)) {
    for (int tag = spec.units_in_flight - 1; tag >= 0; --tag) free_tags_.push_back(tag);
  }

  // A new unit whenever one is answered, up to units_in_flight; latency from the send.
  void ClosedLoop() {
    std::this_thread::sleep_until(window_.start);
    while (!stopped_) {
      while (!stopped_ && !free_tags_.empty() && Clock::now() < window_.end) Send(Clock::now());
      if (InFlight() == 0) break;
      Collect(Clock::now() + kAnswerTimeout, /*open_loop=*/false, /*last_chance=*/true);
    }
  }

  // Client i of n sends its units at start + (i / n + k) * interval, k = 0, 1, …: together `rate`
  // events/s, evenly spread. A unit due while units_in_flight are outstanding is sent as soon as
  // one is answered, and its latency still runs from when it was due. An event counts when its
  // scheduled time lies in the measured window.
  void OpenLoop() {
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(spec_.clients * spec_.events_per_unit / spec_.rate));
    Clock::time_point scheduled = window_.start + interval * maker_.client() / spec_.clients;
    while (!stopped_) {
      if (scheduled < window_.end && !free_tags_.empty()) {
        if (Clock::now() >= scheduled) {
          Send(scheduled);
          scheduled += interval;
        } else if (InFlight() == 0) {
          std::this_thread::sleep_until(scheduled);
        } else {
          Collect(scheduled, /*open_loop=*/true, /*last_chance=*/false);
        }
        continue;
      }
      if (InFlight() == 0) break;
      Collect(Clock::now() + kAnswerTimeout, /*open_loop=*/true, /*last_chance=*/true);
    }
  }

 private:
  size_t InFlight() const { return started_.size() - free_tags_.size(); }

  // `start`: when the unit was sent (closed loop) or due (open loop); its latency runs from there.
  void Send(Clock::time_point start) {
    for (LoadEvent& event : unit_) event = maker_.Next();
    const uint64_t tag = free_tags_.back();
    free_tags_.pop_back();
    started_[tag] = start;
    std::string error;
    if (!appender_.Send(unit_, tag, &error)) Fail(error);
  }

  // Takes the answers that come until `deadline`; `last_chance`: none by then is a failure.
  void Collect(Clock::time_point deadline, bool open_loop, bool last_chance) {
    answers_.clear();
    std::string error;
    if (!appender_.Receive(deadline, &answers_, &error)) return Fail(error);
    if (answers_.empty() && last_chance) return Fail("no answer within the answer timeout");
    const Clock::time_point done = Clock::now();
    for (const Appender::Answer& answer : answers_) {
      const Clock::time_point start = started_[answer.tag];
      free_tags_.push_back(answer.tag);
      if (!answer.ok) {
        if (tally_.failures++ == 0) tally_.first_failure = answer.error;
        if (++failures_in_row_ >= kConsecutiveFailuresMax) stopped_ = true;
        continue;
      }
      failures_in_row_ = 0;
      tally_.acknowledged += unit_.size();
      const bool measured = open_loop ? start >= window_.measure_start
                                      : done >= window_.measure_start && done < window_.end;
      if (!measured) continue;
      tally_.latency_ns.insert(tally_.latency_ns.end(), unit_.size(), (done - start).count());
      tally_.last_done = done;
    }
  }

  // The connection failed: what is in flight is lost, and the client stops.
  void Fail(const std::string& error) {
    if (tally_.failures == 0) tally_.first_failure = error;
    tally_.failures += std::max<size_t>(1, InFlight());
    stopped_ = true;
  }

  Appender& appender_;
  LoadEventMaker& maker_;
  const LoadSpec& spec_;
  const Window& window_;
  ClientTally& tally_;
  std::vector<LoadEvent> unit_;             // the events of the unit being sent
  std::vector<Clock::time_point> started_;  // by tag: when the unit in flight started
  std::vector<uint64_t> free_tags_;         // tags of no unit in flight
  std::vector<Appender::Answer> answers_;
  int failures_in_row_ = 0;
  bool stopped_ = false;
};

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
    result.acknowledged += tally.acknowledged;
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
      ClientLoop loop(*appenders[client], makers[client], spec, window, tallies[client]);
      if (spec.rate > 0) {
        loop.OpenLoop();
      } else {
        loop.ClosedLoop();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return Summarize(spec, window, tallies);
}

}  // namespace gridledger::bench
