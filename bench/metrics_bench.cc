// The cost of metrics: durable append throughput with ledgerd's metrics on (the ledger's probe,
// the /metrics endpoint with every collector, scraped every second) side by side with the same
// appends without them.
//
// Goal (issue 5): with metrics, append throughput >= 0.95x of without. Figures, command and
// reading: ../BENCHMARKS.md, "Metrics cost (issue 5)".
//
// Setup, once: a ledger under $GRIDLEDGER_BENCH_DIR (default /tmp) holding a seeded demo workload
// of $GRIDLEDGER_METRICS_BENCH_APPS applications (default 10 000; `ledgerctl demo`'s generator,
// appended through the Ingestor), its projections caught up. Every scrape then evaluates the SLA
// clocks of all of them, as ledgerd does.
//
// Method, per thread count N, seven rounds, the two sides interleaved (Plain first in even rounds,
// Metrics first in odd ones) so drift and noise hit both alike; the table shows medians:
//   Plain/N    reopen that ledger (sync = true), projections following in the background like
//              ledgerd's; N threads call Ledger::Append in a loop: one 300-byte event per request,
//              a unique event_id, occurred now, stream bench/%06d of 100 000 (not an application,
//              so the SLA and KPI figures stay those of the workload).
//   Metrics/N  the same, with monitoring::Metrics' probe in ledger::Options and a
//              monitoring::MetricsEndpoint (ledger, projections, calendar, SLA profile; default
//              options) on 127.0.0.1, and a scraper thread that GETs /metrics every second, like a
//              Prometheus with scrape_interval: 1s. The appends keep the projections' checkpoint
//              moving, so each scrape recomputes the SLA figures (a scan of every application).
// Rates are events acknowledged as durable per second of wall-clock time (items_per_second).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "domain/calendar.h"
#include "domain/event_json.h"
#include "domain/sla_profile.h"
#include "ingest/demo_workload.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "monitoring/metrics.h"
#include "projections/engine.h"
#include "support/http_client.h"

namespace gridledger::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kThreadCounts[] = {8, 64};
// Fsync-bound rates on a shared machine vary by ±20 % from run to run: seven rounds, and the
// median of the per-round ratios beside the ratio of the medians.
constexpr int kRounds = 7;
// Long enough for a few scrapes per run.
constexpr double kMinTimeSeconds = 3.0;
constexpr std::chrono::seconds kScrapeInterval{1};
constexpr size_t kPayloadBytes = 300;
constexpr uint64_t kStreamCount = 100000;
constexpr uint64_t kDefaultApps = 10000;
constexpr double kGoalRatio = 0.95;
constexpr char kDirVariable[] = "GRIDLEDGER_BENCH_DIR";
constexpr char kAppsVariable[] = "GRIDLEDGER_METRICS_BENCH_APPS";
constexpr char kPlainName[] = "Plain";
constexpr char kMetricsName[] = "Metrics";

// One 300-byte event per request on a stream of its own kind ("bench/"), unique event ids.
class EventMaker {
 public:
  explicit EventMaker(int thread_index)
      : thread_index_(thread_index), random_state_(0x9e3779b97f4a7c15ULL * (thread_index + 1)) {}

  ledger::AppendRequest Next(uint64_t run) {
    char text[96];
    const uint64_t sequence = sequence_++;
    ledger::AppendRequest request;
    std::snprintf(text, sizeof text, "bench/%06" PRIu64, NextRandom() % kStreamCount);
    request.stream = text;
    ledger::NewEvent event;
    std::snprintf(text, sizeof text, "metrics-r%" PRIu64 "-t%02d-%09" PRIu64, run, thread_index_,
                  sequence);
    event.event_id = text;
    event.type = "BenchEvent";
    // Now: an event recorded on a later day than it occurred would add a backdating fact to the
    // KPI buckets, which the KPI figures then re-evaluate at every refresh.
    event.occurred_at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    event.occurred_at_offset_minutes = 480;
    event.actor = {"S1001", "clerk", "KM.XS"};
    event.payload.assign(kPayloadBytes, 'x');
    request.events.push_back(std::move(event));
    return request;
  }

 private:
  uint64_t NextRandom() {
    uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  const int thread_index_;
  uint64_t random_state_;
  uint64_t sequence_ = 0;
};

// GETs /metrics every kScrapeInterval until destroyed; counts scrapes and their time.
class Scraper {
 public:
  explicit Scraper(uint16_t port) : thread_([this, port] { Loop(port); }) {}
  ~Scraper() { Stop(); }
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  // Stops and returns (scrapes, failures, seconds spent scraping).
  struct Totals {
    uint64_t scrapes = 0;
    uint64_t failures = 0;
    double seconds = 0;
  };
  Totals Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return {scrapes_.load(), failures_.load(), seconds_};
  }

 private:
  void Loop(uint16_t port) {
    gridledger::testing::HttpClient client("127.0.0.1", port);
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, kScrapeInterval, [&] { return stopping_; })) {
      lock.unlock();
      const auto started = std::chrono::steady_clock::now();
      const bool ok = client.Get("/metrics").status == 200;
      seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      (ok ? scrapes_ : failures_).fetch_add(1);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mutex_
  std::atomic<uint64_t> scrapes_{0};
  std::atomic<uint64_t> failures_{0};
  double seconds_ = 0;  // written by the scraper thread only; read after it stopped
  std::thread thread_;
};

class MetricsBench {
 public:
  explicit MetricsBench(fs::path root) : root_(std::move(root)) {}

  // Loads the demo workload. Returns an error message, or "" when ready.
  std::string Prepare(uint64_t apps) {
    auto calendar =
        domain::WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
    if (auto* error = std::get_if<domain::DataFileError>(&calendar)) return error->message;
    calendar_ = std::get<domain::WorkingCalendar>(std::move(calendar));
    auto profile = domain::SlaProfile::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) +
                                            "/sla/national-2009.json");
    if (auto* error = std::get_if<domain::DataFileError>(&profile)) return error->message;
    profile_ = std::get<domain::SlaProfile>(std::move(profile));

    ledger::Options options = LedgerOptions();
    options.sync = false;  // a bulk load, synced once at the end
    auto opened = ledger::Ledger::Open(DataDir(), options);
    if (!opened.ok()) return opened.status().ToString();
    std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();
    ingest::DemoOptions demo;
    demo.apps = apps;
    demo.seed = 5;
    // Up to yesterday, like `ledgerctl demo`: the applications of the last weeks are still open.
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    demo.last_day = std::min(demo.last_day, domain::LocalDateOf(now_us).AddDays(-1));
    ingest::DemoWorkload workload(demo, calendar_);
    ingest::Ingestor ingestor(*ledger);
    for (std::string line; workload.Next(&line);) {
      auto decoded = domain::DecodeClientEvent(line);
      if (!std::holds_alternative<domain::ClientEvent>(decoded)) continue;
      ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
    }
    ledger::Status synced = ledger->SyncWal();
    if (!synced.ok()) return synced.ToString();
    projections::Engine engine(*ledger);
    ledger::Status caught_up = engine.CatchUp();
    if (!caught_up.ok()) return caught_up.ToString();
    std::printf("workload: %" PRIu64 " applications, %" PRIu64 " events\n", apps, ledger->Head());
    return "";
  }

  void Run(benchmark::State& state, bool with_metrics) {
    if (state.thread_index() == 0) SetUp(with_metrics);
    EventMaker maker(state.thread_index());
    int64_t events = 0;
    std::string error;
    for (auto _ : state) {
      if (!error.empty()) continue;  // drain the iterations; `break` would skip the stop barrier
      if (ledger_ == nullptr) {
        error = setup_error_;
        continue;
      }
      ledger::Result<ledger::AppendResult> appended = ledger_->Append(maker.Next(run_));
      if (!appended.ok()) {
        error = "append: " + appended.status().ToString();
        continue;
      }
      ++events;
    }
    state.SetItemsProcessed(events);
    if (!error.empty()) state.SkipWithError(error.c_str());
    if (state.thread_index() == 0) TearDown(state);
  }

 private:
  std::string DataDir() const { return (root_ / "data").string(); }

  static ledger::Options LedgerOptions() {
    ledger::Options options;
    options.side_families = projections::SideFamilies();
    return options;
  }

  void SetUp(bool with_metrics) {
    setup_error_.clear();
    ++run_;
    ledger::Options options = LedgerOptions();
    if (with_metrics) {
      metrics_ = std::make_unique<monitoring::Metrics>();
      options.probe = &metrics_->ledger_probe();
    }
    auto opened = ledger::Ledger::Open(DataDir(), options);
    if (!opened.ok()) {
      setup_error_ = "opening the ledger: " + opened.status().ToString();
      return;
    }
    ledger_ = std::move(opened).value();
    engine_ = std::make_unique<projections::Engine>(*ledger_);
    // The previous run's events, folded before the clock starts.
    ledger::Status caught_up = engine_->CatchUp();
    if (!caught_up.ok()) {
      setup_error_ = "projections: " + caught_up.ToString();
      return;
    }
    engine_->StartBackground();
    if (!with_metrics) return;
    monitoring::ScrapeSources sources;
    sources.status.ledger = ledger_.get();
    sources.status.engine = engine_.get();
    sources.status.calendar = &calendar_;
    sources.profile = &profile_;
    auto started = monitoring::MetricsEndpoint::Start(*metrics_, sources, "127.0.0.1:0");
    if (auto* failed = std::get_if<std::string>(&started)) {
      setup_error_ = *failed;
      return;
    }
    endpoint_ = std::move(std::get<std::unique_ptr<monitoring::MetricsEndpoint>>(started));
    scraper_ = std::make_unique<Scraper>(endpoint_->port());
  }

  void TearDown(benchmark::State& state) {
    if (scraper_ != nullptr) {
      const Scraper::Totals totals = scraper_->Stop();
      scraper_.reset();
      state.counters["scrapes"] = static_cast<double>(totals.scrapes);
      state.counters["scrape_failures"] = static_cast<double>(totals.failures);
      state.counters["scrape_ms"] =
          totals.scrapes == 0 ? 0.0 : 1000.0 * totals.seconds / static_cast<double>(totals.scrapes);
    }
    endpoint_.reset();
    if (engine_ != nullptr) engine_->StopBackground();
    engine_.reset();
    ledger_.reset();
    metrics_.reset();  // after the ledger that reported to it
  }

  const fs::path root_;
  domain::WorkingCalendar calendar_;
  domain::SlaProfile profile_;
  uint64_t run_ = 0;

  // The current run, set up and torn down by thread 0.
  std::string setup_error_;
  std::unique_ptr<monitoring::Metrics> metrics_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<projections::Engine> engine_;
  std::unique_ptr<monitoring::MetricsEndpoint> endpoint_;
  std::unique_ptr<Scraper> scraper_;
};

// ---------------------------------------------------------------------------------------------
// The side-by-side table: medians over the rounds.

class TableReporter : public benchmark::ConsoleReporter {
 public:
  TableReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      results_[run.run_name.function_name].push_back(run.error_occurred ? benchmark::UserCounters()
                                                                        : run.counters);
    }
  }

  void PrintTable() const {
    std::printf(
        "\nDurable append with and without metrics (scraped every %llds), medians of %d "
        "rounds:\n",
        static_cast<long long>(kScrapeInterval.count()), kRounds);
    std::printf("%7s | %9s %9s %6s %6s %11s %5s | %7s %9s\n", "", "plain", "metrics", "ratio",
                "paired", "per round", "goal", "scrapes", "scrape");
    std::printf("%7s | %9s %9s %6s %6s %11s %5s | %7s %9s\n", "threads", "events/s", "events/s", "",
                "median", "min-max", "0.95x", "per run", "ms (mean)");
    for (int threads : kThreadCounts) {
      const std::string suffix = "/" + std::to_string(threads);
      const auto* plain = Find(kPlainName + suffix);
      const auto* metrics = Find(kMetricsName + suffix);
      if (plain == nullptr || metrics == nullptr) {
        std::printf("%7d | (missing: filtered out or failed)\n", threads);
        continue;
      }
      const double plain_rate = Median(*plain, kRate);
      const double metrics_rate = Median(*metrics, kRate);
      const double ratio = plain_rate > 0 ? metrics_rate / plain_rate : 0.0;
      const std::vector<double> ratios = RoundRatios(*metrics, *plain);
      const double paired = MedianOf(ratios);
      const double low = ratios.empty() ? 0.0 : *std::min_element(ratios.begin(), ratios.end());
      const double high = ratios.empty() ? 0.0 : *std::max_element(ratios.begin(), ratios.end());
      std::printf("%7d | %9.0f %9.0f %5.3fx %5.3fx %5.3f-%5.3f %5s | %7.1f %9.1f\n", threads,
                  plain_rate, metrics_rate, ratio, paired, low, high,
                  std::min(ratio, paired) >= kGoalRatio ? "met" : "miss",
                  Median(*metrics, "scrapes"), Median(*metrics, "scrape_ms"));
    }
    std::printf(
        "goal: metrics >= %.2fx plain (both the ratio of the medians and the median of the\n"
        "per-round ratios). Each round runs both sides back to back; a wide per-round range means\n"
        "the disk or CPUs were shared with other work during the run.\n",
        kGoalRatio);
  }

 private:
  using Rounds = std::vector<benchmark::UserCounters>;
  static constexpr char kRate[] = "items_per_second";

  const Rounds* Find(const std::string& name) const {
    auto it = results_.find(name);
    return it == results_.end() ? nullptr : &it->second;
  }
  static double Get(const benchmark::UserCounters& counters, const char* name) {
    auto it = counters.find(name);
    return it == counters.end() ? 0.0 : it->second.value;
  }
  // metrics / plain of each round in which both ran.
  static std::vector<double> RoundRatios(const Rounds& metrics, const Rounds& plain) {
    std::vector<double> ratios;
    for (size_t round = 0; round < std::min(metrics.size(), plain.size()); ++round) {
      const double base = Get(plain[round], kRate);
      if (base <= 0 || !metrics[round].count(kRate)) continue;
      ratios.push_back(Get(metrics[round], kRate) / base);
    }
    return ratios;
  }
  static double MedianOf(std::vector<double> values) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
  }
  static double Median(const Rounds& rounds, const char* name) {
    std::vector<double> values;
    for (const auto& counters : rounds) {
      auto it = counters.find(name);
      if (it != counters.end()) values.push_back(it->second.value);
    }
    return MedianOf(std::move(values));
  }

  std::map<std::string, Rounds> results_;
};

fs::path MakeRoot() {
  const char* base = std::getenv(kDirVariable);
  std::string pattern =
      (fs::path(base != nullptr && *base != '\0' ? base : "/tmp") / "gridledger-metrics-XXXXXX")
          .string();
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

void Register(MetricsBench* bench) {
  for (int round = 0; round < kRounds; ++round) {
    for (int threads : kThreadCounts) {
      const std::string suffix = "/" + std::to_string(threads);
      auto add = [&](bool with_metrics) {
        benchmark::RegisterBenchmark(
            ((with_metrics ? kMetricsName : kPlainName) + suffix).c_str(),
            [bench, with_metrics](benchmark::State& state) { bench->Run(state, with_metrics); })
            ->Threads(threads)
            ->UseRealTime()
            ->MinTime(kMinTimeSeconds);
      };
      // Alternate which side goes first, so a trend over the run does not favour one.
      add(round % 2 == 1);
      add(round % 2 == 0);
    }
  }
}

}  // namespace
}  // namespace gridledger::bench

int main(int argc, char** argv) {
  namespace bench = gridledger::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::filesystem::path root = bench::MakeRoot();
  if (root.empty()) {
    std::fprintf(stderr, "cannot create a directory under $%s (default /tmp)\n",
                 bench::kDirVariable);
    return 1;
  }
  const char* apps_text = std::getenv(bench::kAppsVariable);
  const uint64_t apps = apps_text != nullptr && *apps_text != '\0'
                            ? std::strtoull(apps_text, nullptr, 10)
                            : bench::kDefaultApps;
  std::printf("data directory under %s\n", root.c_str());

  int status = 0;
  {
    bench::MetricsBench metrics_bench(root);
    const std::string prepared = metrics_bench.Prepare(apps);
    if (!prepared.empty()) {
      std::fprintf(stderr, "preparing the workload: %s\n", prepared.c_str());
      status = 1;
    } else {
      bench::Register(&metrics_bench);
      bench::TableReporter reporter;
      benchmark::RunSpecifiedBenchmarks(&reporter);
      reporter.PrintTable();
    }
  }
  benchmark::Shutdown();
  std::error_code error;
  std::filesystem::remove_all(root, error);
  return status;
}
