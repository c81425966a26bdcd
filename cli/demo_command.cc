#include "demo_command.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <variant>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "domain/event_json.h"
#include "ingest/demo_workload.h"
#include "ingest/ingestor.h"
#include "projections/engine.h"

namespace gridledger::cli {

namespace {

struct Tally {
  uint64_t appended = 0;
  uint64_t duplicates = 0;
  uint64_t violations = 0;
  uint64_t rejected = 0;
};

// The first few rejections are printed with their reason; the rest are only counted.
constexpr uint64_t kRejectionsShownMax = 5;

void ReportRejected(Tally& tally, const std::string& why, const std::string& line) {
  if (++tally.rejected <= kRejectionsShownMax) {
    std::cerr << "ledgerctl: demo event rejected: " << why << "\n  " << line << "\n";
  }
}

}  // namespace

int DemoCommand(const DataOptions& options, uint64_t apps, uint64_t seed, std::ostream& out) {
  auto calendar = domain::WorkingCalendar::Load(options.calendar_dir);
  if (auto* error = std::get_if<domain::DataFileError>(&calendar)) {
    std::cerr << "ledgerctl: " << error->message << "\n";  // (it names the file)
    return kExitFailure;
  }
  // A bulk load of history: appends are not synced one by one; one WAL sync at the end makes the
  // whole load durable before this command reports success.
  ledger::Options ledger_options;
  ledger_options.side_families = projections::SideFamilies();
  ledger_options.sync = false;
  auto opened = ledger::Ledger::Open(options.data_dir, ledger_options);
  if (!opened.ok()) {
    std::cerr << "ledgerctl: " << opened.status().message() << "\n";
    return kExitFailure;
  }
  auto ledger = std::move(opened).value();

  ingest::DemoOptions demo;
  demo.apps = apps;
  demo.seed = seed;
  demo.first_position = ledger->Head() + 1;
  // History up to yesterday: nothing may occur in the future, and today is still going on.
  demo.last_day = std::min(demo.last_day, domain::LocalDateOf(NowUs()).AddDays(-1));
  ingest::DemoWorkload workload(demo, std::get<domain::WorkingCalendar>(calendar));
  ingest::Ingestor ingestor(*ledger);
  const domain::Actor writer = LocalOperator();
  Tally tally;
  ProgressBar bar("loading demo");
  auto started = std::chrono::steady_clock::now();
  for (std::string line; workload.Next(&line);) {
    auto decoded = domain::DecodeClientEvent(line);
    if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
      ReportRejected(tally, error->field + ": " + error->message, line);
      continue;
    }
    std::get<domain::ClientEvent>(decoded).recorded_by = writer;
    auto outcome = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
    if (auto* ok = std::get_if<ingest::IngestOutcome>(&outcome)) {
      ok->appended.duplicate ? ++tally.duplicates : ++tally.appended;
      tally.violations += ok->violations.empty() ? 0 : 1;
    } else {
      ReportRejected(tally, std::get<ingest::IngestError>(outcome).status.ToString(), line);
    }
    if (workload.apps_started() % 64 == 0) bar.Update(workload.apps_started(), apps);
  }
  bar.Finish();
  ledger::Status synced = ledger->SyncWal();
  if (!synced.ok()) {
    std::cerr << "ledgerctl: " << synced.message() << "\n";
    return kExitFailure;
  }
  projections::Engine engine(*ledger);
  ledger::Status caught_up = engine.CatchUp();
  if (!caught_up.ok()) {
    std::cerr << "ledgerctl: projections: " << caught_up.message() << "\n";
    return kExitFailure;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out << nlohmann::ordered_json{{"ok", tally.rejected == 0},
                                {"apps", apps},
                                {"seed", seed},
                                {"appended", tally.appended},
                                {"duplicates", tally.duplicates},
                                {"with_violations", tally.violations},
                                {"rejected", tally.rejected},
                                {"head", ledger->Head()},
                                {"seconds", seconds}}
             .dump()
      << "\n";
  return tally.rejected == 0 ? kExitOk : kExitRejected;
}

}  // namespace gridledger::cli
