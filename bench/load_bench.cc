// Load over the front doors: ledgerd's Cap'n Proto TCP door and its HTTP/JSON door, side by side
// with a PostgreSQL 15 events table fed the same events by the same number of clients, in the same
// run on the same machine; then a catch-up subscription of 1M events next to PostgreSQL streaming
// the same number of rows to one client.
//
// Goals (issue 4, ../shared/design.md "Targets"): over TCP >= 10x PostgreSQL's appends/s with 64
// clients; p99 <= 2 ms at half of the peak load; catch-up >= 1M events/s to one reader. Figures,
// command and reading: ../BENCHMARKS.md.
//
// Method (every process is started here, on fresh directories under $GRIDLEDGER_BENCH_DIR,
// default /tmp, so every side syncs to the same filesystem):
//   set-up   a tokens file with one clerk per client connection (the actor of every event is its
//            connection's principal) and a reader (for the subscription); ledgerd (port 0,
//            --ready-file); a throwaway PostgreSQL 15 cluster (initdb, pg_ctl; fsync=on,
//            synchronous_commit=on, everything else default) with the events table of
//            load/postgres.h. Events: load/load_events.h — each opens a new application
//            (ApplicationAccepted, expected_version -1) with a 300-byte data object.
//   modes    how each client sends (same 64 clients, same events; K = --inflight, default 32):
//              S  one event per request, one request outstanding (the earlier table, information)
//              P  pipelined (the main comparison): K events in flight per client, each its own
//                 request and individually acknowledged once durable. ledgerd: K append requests
//                 of one event each on the connection; PostgreSQL: libpq pipeline mode, one
//                 INSERT + sync per event = one synchronous commit per event, K in flight.
//              B  batched (information): K events per request, one outstanding. ledgerd: one
//                 append frame of K events; PostgreSQL: one transaction of K INSERTs.
//   peak     closed loop: 64 client threads, each with its own connection, for 1 s of warm-up
//            and 5 s measured; per round every mode and within it PostgreSQL, TCP, HTTP (mode S
//            only) interleaved, 3 rounds (so noise from other work on the machine hits every
//            side alike); medians. Acknowledged = fsynced on every side. After every run,
//            PostgreSQL's CHECKPOINT and sync(2) write back what it left dirty (RunOne says why).
//   half     open loop at half of each door's median peak, modes S and P: every client sends on a
//            fixed schedule (at most K units outstanding in mode P), latency per event from the
//            scheduled send time (a late answer delays later sends and that delay is counted: no
//            coordinated omission).
//   catch-up a ledger of 1M load events ($GRIDLEDGER_BENCH_DIR/gridledger-load-catchup-1000000,
//            filled over TCP by the first run — batches of 400, 8 connections, not timed — and
//            reused by later runs) is served by a fresh ledgerd; one subscriber reads from
//            position 1 to the head. PostgreSQL's table is brought to the same row count — topped
//            up with copies of its rows (INSERT … SELECT) or cut to its first rows by position
//            (DELETE), then VACUUM ANALYZE — and one client reads it in position order with
//            COPY … TO STDOUT. 3 reads each, alternating, medians. Neither
//            reader decodes what it receives.
//
// A plain main() rather than Google Benchmark: every run here needs external servers started,
// filled and compared across doors, and the measurements are wall-clock windows over 64 threads
// with latency percentiles, which Google Benchmark's iteration model does not express.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "domain/event_json.h"
#include "ingest/auth.h"
#include "load/catch_up.h"
#include "load/driver.h"
#include "load/http_appender.h"
#include "load/ledgerd_process.h"
#include "load/postgres.h"
#include "load/tcp_appender.h"

namespace gridledger::bench {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kDirVariable[] = "GRIDLEDGER_BENCH_DIR";
constexpr char kLedgerdVariable[] = "GRIDLEDGER_LEDGERD";
constexpr double kGoalTcpOverPostgres = 10.0;
constexpr double kGoalHalfPeakP99Ms = 2.0;
constexpr double kGoalCatchUpEventsPerSecond = 1e6;
constexpr int kRoundsMax = 8;     // runs stay unique in the stream names (RunNumber)
constexpr int kInflightMax = 64;  // ledgerd's default connection_inflight_max

struct Flags {
  int clients = 64;
  int rounds = 3;
  int inflight = 32;  // K: events in flight per client in mode P, events per unit in mode B
  double warmup_seconds = 1;
  double measured_seconds = 5;
  uint64_t catch_up_events = 1'000'000;
  int catch_up_reads = 3;
  // For exploring and profiling: which doors (letters P, T, H) and modes (S, P, B) run, the
  // fraction of each peak the open-loop runs offer, and --catch-up-events=0 to skip the catch-up.
  std::string doors = "PTH";
  std::string modes = "SPB";
  double load_fraction = 0.5;
  bool keep = false;  // keep the run directory (logs, data) instead of removing it
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : arg.substr(equals + 1);
    if (name == "--clients") {
      flags->clients = std::atoi(value.c_str());
    } else if (name == "--rounds") {
      flags->rounds = std::atoi(value.c_str());
    } else if (name == "--inflight") {
      flags->inflight = std::atoi(value.c_str());
    } else if (name == "--modes") {
      flags->modes = value;
    } else if (name == "--warmup") {
      flags->warmup_seconds = std::atof(value.c_str());
    } else if (name == "--seconds") {
      flags->measured_seconds = std::atof(value.c_str());
    } else if (name == "--catch-up-events") {
      flags->catch_up_events = std::strtoull(value.c_str(), nullptr, 10);
    } else if (name == "--catch-up-reads") {
      flags->catch_up_reads = std::atoi(value.c_str());
    } else if (name == "--doors") {
      flags->doors = value;
    } else if (name == "--load-fraction") {
      flags->load_fraction = std::atof(value.c_str());
    } else if (name == "--keep") {
      flags->keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: load_bench [--clients=64] [--rounds=3] [--warmup=1] [--seconds=5]\n"
                   "                  [--inflight=32] [--modes=SPB] [--doors=PTH]\n"
                   "                  [--catch-up-events=1000000] [--catch-up-reads=3]\n"
                   "                  [--load-fraction=0.5] [--keep]\n");
      return false;
    }
  }
  return flags->clients >= 1 && flags->clients <= 100 && flags->rounds >= 1 &&
         flags->rounds <= kRoundsMax && flags->measured_seconds > 0 && flags->catch_up_reads >= 1 &&
         flags->load_fraction > 0 && !flags->doors.empty() &&
         flags->doors.find_first_not_of("PTH") == std::string::npos && !flags->modes.empty() &&
         flags->modes.find_first_not_of("SPB") == std::string::npos && flags->inflight >= 1 &&
         flags->inflight <= kInflightMax;
}

// ---------------------------------------------------------------------------------------------
// Set-up

struct Tokens {
  std::vector<std::string> clerks;  // clerk i = ClerkId(i), for client connection i
  std::string reader;               // may subscribe
};

bool WriteTokens(const fs::path& file, int clients, Tokens* tokens, std::string* error) {
  auto add = [&](const ingest::Principal& principal) {
    std::string token = ingest::TokenStore::NewToken();
    ledger::Status added =
        ingest::TokenStore::Add(file, principal, ingest::TokenStore::Sha256Hex(token));
    if (!added.ok()) *error = "tokens file: " + added.message();
    return added.ok() ? token : "";
  };
  for (int client = 0; client < clients; ++client) {
    tokens->clerks.push_back(add({ClerkId(client), ingest::Role::kClerk, kClerkOrg}));
    if (tokens->clerks.back().empty()) return false;
  }
  tokens->reader = add({"R0001", ingest::Role::kReader, "KM"});
  return !tokens->reader.empty();
}

fs::path BaseDir() {
  const char* base = std::getenv(kDirVariable);
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

// The run directory; PostgreSQL's tools run as user postgres, which must be able to enter it.
fs::path MakeRunDir() {
  std::string pattern = (BaseDir() / "gridledger-load-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  ::chmod(pattern.c_str(), 0711);
  return pattern;
}

std::string LedgerdPath() {
  const char* path = std::getenv(kLedgerdVariable);
  return path != nullptr && *path != '\0' ? path : LEDGERD_PATH;
}

// Our events must be valid, or every figure below measures refusals.
bool CheckEventShape(std::string* error) {
  LoadEventMaker maker('T', 0, 0);
  const LoadEvent& event = maker.Next();
  auto decoded = domain::DecodeClientEvent(event.json);
  if (auto* refused = std::get_if<domain::DecodeError>(&decoded)) {
    *error = "the benchmark's event is invalid: " + refused->field + ": " + refused->message +
             "\n  " + event.json;
    return false;
  }
  std::printf(
      "events:     ApplicationAccepted of a new stream each; JSON event %zu bytes, data "
      "%zu bytes\n",
      event.json.size(), event.data_json.size());
  return true;
}

// ---------------------------------------------------------------------------------------------
// Peak and half-peak runs

enum Door { kPostgres, kTcp, kHttp, kDoorCount };
constexpr const char* kDoorNames[kDoorCount] = {"PostgreSQL", "ledgerd TCP", "ledgerd HTTP"};
constexpr char kDoorLetters[kDoorCount] = {'P', 'T', 'H'};

// How the clients send (see the top of this file).
enum Mode { kSingle, kPipelined, kBatched, kModeCount };
constexpr char kModeLetters[kModeCount] = {'S', 'P', 'B'};

bool Runs(const Flags& flags, Door door) {
  return flags.doors.find(kDoorLetters[door]) != std::string::npos;
}
bool Runs(const Flags& flags, Mode mode) {
  return flags.modes.find(kModeLetters[mode]) != std::string::npos;
}
// The HTTP client sends one event per request, one at a time: mode S only.
bool Runs(const Flags& flags, Mode mode, Door door) {
  return Runs(flags, mode) && Runs(flags, door) && (door != kHttp || mode == kSingle);
}

int EventsPerUnit(const Flags& flags, Mode mode) { return mode == kBatched ? flags.inflight : 1; }
int UnitsInFlight(const Flags& flags, Mode mode) { return mode == kPipelined ? flags.inflight : 1; }

// What one client keeps outstanding, as the tables say it.
std::string Describe(const Flags& flags, Mode mode, Door door) {
  const std::string k = std::to_string(flags.inflight);
  switch (mode) {
    case kSingle:
      return "1 event per request, 1 outstanding";
    case kPipelined:
      return door == kPostgres ? "pipeline, " + k + " autocommit INSERTs in flight"
                               : k + " one-event requests in flight";
    default:
      return door == kPostgres ? "1 transaction of " + k + " INSERTs outstanding"
                               : "1 append frame of " + k + " events outstanding";
  }
}

struct Servers {
  LedgerdProcess* ledgerd;
  PostgresCluster* postgres;
  const Tokens* tokens;
};

AppenderFactory Connector(Door door, const Servers& servers) {
  switch (door) {
    case kPostgres:
      return [conninfo = servers.postgres->conninfo()](int, std::string* error) {
        return std::unique_ptr<Appender>(PostgresAppender::Connect(conninfo, error));
      };
    case kTcp:
      return [&servers](int client, std::string* error) {
        return std::unique_ptr<Appender>(TcpAppender::Connect(
            servers.ledgerd->tcp_port(), servers.tokens->clerks[client], error));
      };
    default:
      return [&servers](int client, std::string* error) {
        return std::unique_ptr<Appender>(HttpAppender::Connect(
            servers.ledgerd->http_port(), servers.tokens->clerks[client], error));
      };
  }
}

void PrintRun(const std::string& what, Mode mode, Door door, const LoadResult& result) {
  std::printf("%-9s %c %-12s %9.0f events/s  p50 %6.2f  p99 %7.2f  p999 %7.2f  max %7.2f ms",
              what.c_str(), kModeLetters[mode], kDoorNames[door], result.events_per_second,
              result.p50_ms, result.p99_ms, result.p999_ms, result.max_ms);
  if (result.failures > 0) {
    std::printf("  %llu FAILED, first: %s", static_cast<unsigned long long>(result.failures),
                result.first_failure.c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// Distinct for every run of a door, so no run appends to another's streams (load_events.h).
int RunNumber(Mode mode, int round) { return mode * 10 + round; }

LoadSpec Spec(const Flags& flags, Mode mode, Door door, int round, double rate) {
  LoadSpec spec;
  spec.door = kDoorLetters[door];
  spec.run = RunNumber(mode, round);
  spec.clients = flags.clients;
  spec.warmup = milliseconds(static_cast<int64_t>(flags.warmup_seconds * 1000));
  spec.measured = milliseconds(static_cast<int64_t>(flags.measured_seconds * 1000));
  spec.rate = rate;
  spec.events_per_unit = EventsPerUnit(flags, mode);
  spec.units_in_flight = UnitsInFlight(flags, mode);
  return spec;
}

// rounds[r][mode][door]
using RoundResults = std::array<std::array<LoadResult, kDoorCount>, kModeCount>;
using Rounds = std::vector<RoundResults>;

// One run of one door, then a settle: PostgreSQL's CHECKPOINT and sync(2) write back what the run
// left dirty, so that its write-back does not land in the next door's window. (PostgreSQL writes
// table pages to the page cache and leaves them there; the kernel writes them back ~30 s later,
// which stalled ledgerd's fsyncs by 100+ ms in whichever run came then.) Both systems' deferred
// writes are thus kept out of every measured window; see BENCHMARKS.md for what that leaves out.
bool RunOne(const Flags& flags, const Servers& servers, Mode mode, Door door, int round,
            double rate, const std::string& label, LoadResult* result, std::string* error) {
  // PostgreSQL's commits per acknowledged event show how its clients commit: 1 in modes S and P,
  // 1/K in mode B.
  const uint64_t commits_before = door == kPostgres ? servers.postgres->Commits(error) : 0;
  if (!error->empty()) return false;
  *result = RunLoad(Spec(flags, mode, door, round, rate), Connector(door, servers));
  if (!result->error.empty()) {
    *error = std::string(kDoorNames[door]) + ": " + result->error;
    return false;
  }
  PrintRun(label, mode, door, *result);
  if (door == kPostgres) {
    const uint64_t commits = servers.postgres->Commits(error) - commits_before;
    if (!error->empty()) return false;
    std::printf("          %llu commits for %llu acknowledged events: %.3f per event\n",
                static_cast<unsigned long long>(commits),
                static_cast<unsigned long long>(result->acknowledged),
                static_cast<double>(commits) / std::max<uint64_t>(1, result->acknowledged));
  }
  if (!servers.postgres->Checkpoint(error)) return false;
  ::sync();
  return true;
}

bool RunPeaks(const Flags& flags, const Servers& servers, Rounds* rounds, std::string* error) {
  for (int round = 0; round < flags.rounds; ++round) {
    rounds->emplace_back();
    for (Mode mode : {kSingle, kPipelined, kBatched}) {
      for (Door door : {kPostgres, kTcp, kHttp}) {
        if (Runs(flags, mode, door) &&
            !RunOne(flags, servers, mode, door, round, 0, "peak " + std::to_string(round + 1),
                    &rounds->back()[mode][door], error)) {
          return false;
        }
      }
    }
  }
  return true;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0 : n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The median over rounds of one figure of one door in one mode.
template <typename Figure>
double MedianOf(const Rounds& rounds, Mode mode, Door door, Figure figure) {
  std::vector<double> values;
  for (const auto& round : rounds) values.push_back(figure(round[mode][door]));
  return Median(values);
}

double MedianPeak(const Rounds& rounds, Mode mode, Door door) {
  return MedianOf(rounds, mode, door, [](const LoadResult& r) { return r.events_per_second; });
}

// The open-loop runs of modes S and P at `load_fraction` of each door's median peak;
// results[mode][door].
bool RunHalfPeaks(const Flags& flags, const Servers& servers, const Rounds& rounds,
                  RoundResults* results, std::string* error) {
  for (Mode mode : {kSingle, kPipelined}) {
    for (Door door : {kPostgres, kTcp, kHttp}) {
      if (!Runs(flags, mode, door)) continue;
      const double rate = MedianPeak(rounds, mode, door) * flags.load_fraction;
      if (!RunOne(flags, servers, mode, door, flags.rounds, rate, "half", &(*results)[mode][door],
                  error)) {
        return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Catch-up

struct CatchUpFigures {
  uint64_t events = 0;  // in the ledger and rows in the table
  double ledger_events_per_second = 0;
  double ledger_bytes_per_event = 0;
  double postgres_rows_per_second = 0;
};

// The catch-up ledger: $GRIDLEDGER_BENCH_DIR/gridledger-load-catchup-N, holding N load events
// (door letter 'C') appended over TCP by a ledgerd of this benchmark. Filling goes at the server's
// append rate (minutes for 1M events), so, like rebuild_bench's data, the directory is kept and
// reused while its marker file <dir>.complete exists. Delete both after a storage format change.
bool PrepareCatchUpLedger(const Flags& flags, const fs::path& run_dir, const Tokens& tokens,
                          fs::path* dir, std::string* error) {
  *dir = BaseDir() / ("gridledger-load-catchup-" + std::to_string(flags.catch_up_events));
  const fs::path marker = dir->string() + ".complete";
  if (fs::exists(marker)) {
    std::printf("catch-up   reusing %s (filled by an earlier run)\n", dir->c_str());
    return true;
  }
  const auto started = std::chrono::steady_clock::now();
  std::error_code ignored;
  fs::remove_all(*dir, ignored);
  auto ledgerd = LedgerdProcess::Start(LedgerdPath(), *dir, run_dir / "tokens.jsonl", run_dir,
                                       "ledgerd-fill", error);
  if (ledgerd == nullptr) return false;
  const uint64_t head = LedgerHead(ledgerd->tcp_port(), tokens.reader, error);
  if (!error->empty() ||
      FillLedger(ledgerd->tcp_port(), tokens.clerks, head, flags.catch_up_events, error) == 0 ||
      !ledgerd->Stop(error)) {
    return false;
  }
  std::ofstream(marker) << flags.catch_up_events << "\n";
  std::printf("catch-up   filled %s with %llu events over TCP in %.0f s (set-up, not timed)\n",
              dir->c_str(), static_cast<unsigned long long>(flags.catch_up_events),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return true;
}

// Reads of the catch-up ledger by one subscriber and of as many PostgreSQL rows by one COPY,
// alternating; figures are medians.
bool ReadBoth(const Flags& flags, uint16_t tcp_port, const std::string& reader_token,
              PostgresCluster& postgres, CatchUpFigures* figures, std::string* error) {
  std::vector<double> ledger_rates, postgres_rates;
  for (int read = 0; read < flags.catch_up_reads; ++read) {
    const CatchUpRead ledger_read = ReadLedger(tcp_port, reader_token, error);
    if (!error->empty()) return false;
    const auto started = std::chrono::steady_clock::now();
    const uint64_t rows_read = postgres.ReadAll(error);
    const double postgres_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!error->empty()) return false;
    ledger_rates.push_back(ledger_read.events / ledger_read.seconds);
    postgres_rates.push_back(rows_read / postgres_seconds);
    figures->ledger_bytes_per_event =
        static_cast<double>(ledger_read.envelope_bytes) / std::max<uint64_t>(1, ledger_read.events);
    std::printf(
        "catch-up   read %d: ledgerd TCP subscription %llu events in %.3f s (%.0f/s), "
        "PostgreSQL COPY %llu rows in %.3f s (%.0f/s)\n",
        read + 1, static_cast<unsigned long long>(ledger_read.events), ledger_read.seconds,
        ledger_rates.back(), static_cast<unsigned long long>(rows_read), postgres_seconds,
        postgres_rates.back());
    std::fflush(stdout);
  }
  figures->ledger_events_per_second = Median(ledger_rates);
  figures->postgres_rows_per_second = Median(postgres_rates);
  return true;
}

bool RunCatchUp(const Flags& flags, const fs::path& run_dir, const Tokens& tokens,
                PostgresCluster& postgres, CatchUpFigures* figures, std::string* error) {
  fs::path dir;
  if (!PrepareCatchUpLedger(flags, run_dir, tokens, &dir, error)) return false;
  auto ledgerd = LedgerdProcess::Start(LedgerdPath(), dir, run_dir / "tokens.jsonl", run_dir,
                                       "ledgerd-catch-up", error);
  if (ledgerd == nullptr) return false;
  figures->events = LedgerHead(ledgerd->tcp_port(), tokens.reader, error);
  if (figures->events == 0) return false;
  const uint64_t rows = postgres.FillTo(figures->events, error);
  if (rows != figures->events) {
    if (error->empty()) *error = "the PostgreSQL table holds " + std::to_string(rows) + " rows";
    return false;
  }
  std::printf(
      "catch-up   ledger %llu events (ledgerd pid %d), PostgreSQL table brought to %llu "
      "rows\n",
      static_cast<unsigned long long>(figures->events), static_cast<int>(ledgerd->pid()),
      static_cast<unsigned long long>(rows));
  std::fflush(stdout);
  return ReadBoth(flags, ledgerd->tcp_port(), tokens.reader, postgres, figures, error) &&
         ledgerd->Stop(error);
}

// ---------------------------------------------------------------------------------------------
// Report

const char* Met(bool met) { return met ? "met" : "MISSED"; }

constexpr const char* kModeTitles[kModeCount] = {
    "S: one event per request, one request outstanding per client (information)",
    "P: pipelined, every event its own request and its own durable acknowledgement (the goal)",
    "B: batched, one request or transaction of K events outstanding per client (information)"};

void PrintPeakTable(const Flags& flags, const Rounds& rounds, Mode mode) {
  std::printf("\nPeak %s\n%d clients, K = %d, closed loop, median of %d rounds of %.0f s\n",
              kModeTitles[mode], flags.clients, flags.inflight, flags.rounds,
              flags.measured_seconds);
  std::printf(
      "door         | per client                                |  events/s  p50 ms  p99 ms "
      "p999 ms | vs PostgreSQL  per-round | goal\n");
  for (Door door : {kPostgres, kTcp, kHttp}) {
    if (!Runs(flags, mode, door)) continue;
    auto median = [&](double LoadResult::*field) {
      return MedianOf(rounds, mode, door, [field](const LoadResult& r) { return r.*field; });
    };
    std::printf("%-12s | %-41s | %9.0f %7.2f %7.2f %7.2f | ", kDoorNames[door],
                Describe(flags, mode, door).c_str(), median(&LoadResult::events_per_second),
                median(&LoadResult::p50_ms), median(&LoadResult::p99_ms),
                median(&LoadResult::p999_ms));
    if (!Runs(flags, mode, kPostgres)) {
      std::printf("%24s | -\n", "-");
      continue;
    }
    std::vector<double> ratios;
    for (const auto& round : rounds) {
      ratios.push_back(round[mode][door].events_per_second /
                       round[mode][kPostgres].events_per_second);
    }
    const double ratio = Median(ratios);
    std::printf("%8.2fx  %5.2f-%5.2fx | ", ratio, *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()));
    if (door == kTcp && mode == kPipelined) {
      std::printf(">= %.0fx PostgreSQL: %s\n", kGoalTcpOverPostgres,
                  Met(ratio >= kGoalTcpOverPostgres));
    } else {
      std::printf("%s\n", door == kPostgres ? "(anchor)" : "-");
    }
  }
}

void PrintHalfTable(const Flags& flags, const Rounds& rounds, const RoundResults& half, Mode mode) {
  std::printf(
      "\n%.0f%% of peak, mode %c: open loop at %.0f%% of each door's median peak, latency per "
      "event from the scheduled send\n",
      flags.load_fraction * 100, kModeLetters[mode], flags.load_fraction * 100);
  std::printf("door         | offered/s achieved/s  p50 ms  p99 ms p999 ms  max ms | goal\n");
  for (Door door : {kPostgres, kTcp, kHttp}) {
    if (!Runs(flags, mode, door)) continue;
    const LoadResult& r = half[mode][door];
    std::printf("%-12s | %9.0f %10.0f %7.2f %7.2f %7.2f %7.2f | ", kDoorNames[door],
                MedianPeak(rounds, mode, door) * flags.load_fraction, r.events_per_second, r.p50_ms,
                r.p99_ms, r.p999_ms, r.max_ms);
    if (door == kTcp && mode == kPipelined && flags.load_fraction == 0.5) {
      std::printf("p99 <= %.0f ms: %s\n", kGoalHalfPeakP99Ms, Met(r.p99_ms <= kGoalHalfPeakP99Ms));
    } else {
      std::printf("-\n");
    }
  }
}

void PrintCatchUpTable(const Flags& flags, const CatchUpFigures& figures) {
  std::printf(
      "\nCatch-up: one reader from position 1 to the head, %llu events, median of %d "
      "reads\n",
      static_cast<unsigned long long>(figures.events), flags.catch_up_reads);
  std::printf("reader                               |   events/s | vs PostgreSQL | goal\n");
  std::printf("ledgerd TCP subscription (%4.0f B/ev) | %10.0f | %12.2fx | >= 1M/s: %s\n",
              figures.ledger_bytes_per_event, figures.ledger_events_per_second,
              figures.ledger_events_per_second / figures.postgres_rows_per_second,
              Met(figures.ledger_events_per_second >= kGoalCatchUpEventsPerSecond));
  std::printf("PostgreSQL COPY ... ORDER BY position | %10.0f | %12.2fx | (anchor)\n",
              figures.postgres_rows_per_second, 1.0);
}

// ---------------------------------------------------------------------------------------------

int Run(const Flags& flags, const fs::path& run_dir) {
  std::string error;
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "load_bench: %s\n", why.c_str());
    return 1;
  };
  Tokens tokens;
  if (!CheckEventShape(&error) ||
      !WriteTokens(run_dir / "tokens.jsonl", flags.clients, &tokens, &error)) {
    return fail(error);
  }
  auto postgres = PostgresCluster::Start(run_dir, &error);
  if (postgres == nullptr || !postgres->CreateEventsTable(&error)) return fail(error);
  auto ledgerd = LedgerdProcess::Start(LedgerdPath(), run_dir / "ledger", run_dir / "tokens.jsonl",
                                       run_dir, "ledgerd", &error);
  if (ledgerd == nullptr) return fail(error);
  std::printf(
      "servers:    ledgerd %s (pid %d), PostgreSQL %s (fsync=on, synchronous_commit=on)\n"
      "run dir:    %s\n\n",
      LedgerdPath().c_str(), static_cast<int>(ledgerd->pid()), postgres->version().c_str(),
      run_dir.c_str());
  std::fflush(stdout);
  const Servers servers{ledgerd.get(), postgres.get(), &tokens};
  Rounds rounds;
  RoundResults half;
  CatchUpFigures catch_up;
  if (!RunPeaks(flags, servers, &rounds, &error) ||
      !RunHalfPeaks(flags, servers, rounds, &half, &error)) {
    return fail(error);
  }
  // Every event opens a new application, so the ledger's projection caches grow with the run.
  const uint64_t head = LedgerHead(ledgerd->tcp_port(), tokens.reader, &error);
  std::printf("ledger:     %llu events appended over TCP and HTTP in this run\n",
              static_cast<unsigned long long>(head));
  if (!ledgerd->Stop(&error) ||
      (flags.catch_up_events > 0 &&
       !RunCatchUp(flags, run_dir, tokens, *postgres, &catch_up, &error))) {
    return fail(error);
  }
  for (Mode mode : {kSingle, kPipelined, kBatched}) {
    if (Runs(flags, mode)) PrintPeakTable(flags, rounds, mode);
  }
  for (Mode mode : {kSingle, kPipelined}) {
    if (Runs(flags, mode)) PrintHalfTable(flags, rounds, half, mode);
  }
  if (flags.catch_up_events > 0) PrintCatchUpTable(flags, catch_up);
  return 0;
}

}  // namespace
}  // namespace gridledger::bench

int main(int argc, char** argv) {
  using namespace gridledger::bench;
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  const fs::path run_dir = MakeRunDir();
  if (run_dir.empty()) {
    std::fprintf(stderr, "load_bench: cannot create a directory under $%s\n", kDirVariable);
    return 1;
  }
  const int status = Run(flags, run_dir);
  if (!flags.keep && status == 0) {
    std::error_code ignored;
    fs::remove_all(run_dir, ignored);
  } else {
    std::printf("kept:       %s\n", run_dir.c_str());
  }
  return status;
}
