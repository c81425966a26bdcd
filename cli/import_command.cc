#include "import_command.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "ingest/event_codec.h"
#include "ingest/import.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "projections/engine.h"

namespace gridledger::cli {

std::optional<ingest::ImportFormat> ChooseImportFormat(const std::string& file,
                                                       const std::string& format,
                                                       std::ostream& err) {
  if (!format.empty()) {
    auto parsed = ingest::ParseImportFormat(format);
    if (!parsed) err << "ledgerctl: unknown import format \"" << format << "\": jsonl or csv\n";
    return parsed;
  }
  auto by_extension = ingest::ImportFormatOfPath(file);
  if (!by_extension) {
    err << "ledgerctl: cannot tell the format of " << file
        << " by its extension (.jsonl, .ndjson, .csv): give --format jsonl|csv\n";
  }
  return by_extension;
}

namespace {

using json = nlohmann::ordered_json;

// The input's size for the progress bar; 0 when unknown (stdin, a pipe).
uint64_t SizeOf(const std::string& file) {
  std::error_code error;
  if (file == "-" || !std::filesystem::is_regular_file(file, error)) return 0;
  const uintmax_t size = std::filesystem::file_size(file, error);
  return error ? 0 : static_cast<uint64_t>(size);
}

// One line of output. Messages may quote the input, which need not be UTF-8 (a CSV header's
// unknown column is named as written): such bytes are printed as U+FFFD, as ledgerd answers them,
// rather than making dump() throw.
std::string Dumped(const json& line) {
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

json RejectedLine(const ingest::ImportRowOutcome& row) {
  json line = {{"ok", false}, {"line", row.line}};
  if (!row.stream.empty()) line["stream"] = row.stream;
  if (!row.event_id.empty()) line["event_id"] = row.event_id;
  line["error"] = ingest::RejectionJson(*row.rejection);
  return line;
}

// Set by SIGINT or SIGTERM during an import: stop reading, finish and report what was read.
std::atomic<bool> interrupted{false};

void OnInterrupt(int) { interrupted.store(true); }

// Installs OnInterrupt for SIGINT and SIGTERM while it lives, then puts back what was there.
class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    sigemptyset(&action.sa_mask);
    interrupted.store(false);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

json SummaryLine(const ingest::ImportSummary& summary) {
  return {{"ok", summary.ok()},           {"rows", summary.rows},
          {"accepted", summary.accepted}, {"duplicates", summary.duplicates},
          {"rejected", summary.rejected}, {"with_violations", summary.with_violations}};
}

}  // namespace

int ImportCommand(const DataOptions& data, const std::string& file, const std::string& format,
                  std::ostream& out, std::ostream& err) {
  const std::optional<ingest::ImportFormat> chosen = ChooseImportFormat(file, format, err);
  if (!chosen) return kExitRejected;  // a command line to fix
  std::ifstream file_stream;
  std::istream* input = OpenInput(file, file_stream, err, std::ios::binary);
  if (input == nullptr) return kExitFailure;
  std::istream& in = *input;

  ledger::Options options;
  options.side_families = projections::SideFamilies();
  auto opened = ledger::Ledger::Open(data.data_dir, options);
  if (!opened.ok()) {
    out << Dumped(json{{"ok", false}, {"error", ingest::ErrorJson(opened.status())}}) << "\n";
    err << "ledgerctl: " << opened.status().message() << "\n";
    return kExitFailure;
  }
  std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();
  // Projections follow inline: their states land in the same synced batch as the events.
  projections::Engine engine(*ledger);
  ledger::Status attached = engine.Attach();
  if (!attached.ok()) {
    err << "ledgerctl: projections: " << attached.message() << "\n";
    return kExitFailure;
  }

  ingest::Ingestor ingestor(*ledger);
  const domain::Actor importer_id = LocalOperator();
  // Interrupted, it stops reading and still says how far it got, instead of dying silently.
  InterruptGuard interrupt_guard;
  ingest::ImportOptions import_options;
  import_options.stop = &interrupted;
  ingest::Importer importer(
      [&ingestor, &importer_id](domain::ClientEvent event) {
        event.recorded_by = importer_id;
        return ingestor.AppendAsItsActor(std::move(event));
      },
      import_options);
  ProgressBar bar("importing");
  const ingest::ImportSummary summary = importer.Run(
      in, *chosen,
      [&out](const ingest::ImportRowOutcome& row) {
        if (row.rejection) out << Dumped(RejectedLine(row)) << "\n";
      },
      [&bar](const ingest::ImportProgress& progress) {
        bar.Update(progress.bytes_done, progress.bytes_total);
      },
      SizeOf(file));
  bar.Finish();

  if (summary.failure) {
    const ingest::ImportFailure& failure = *summary.failure;
    err << "ledgerctl: " << file << ":" << failure.line << ": " << failure.message << "\n";
    const char* code = failure.rule == "bad_header"    ? "invalid"
                       : failure.rule == "interrupted" ? "interrupted"
                                                       : "io_error";
    json error = {{"code", code}, {"rule", failure.rule}, {"message", failure.message}};
    out << Dumped(json{{"ok", false}, {"line", failure.line}, {"error", std::move(error)}}) << "\n";
  }
  out << Dumped(SummaryLine(summary)) << "\n";
  if (summary.failure && summary.failure->rule != "bad_header") return kExitFailure;
  return summary.ok() ? kExitOk : kExitRejected;
}

}  // namespace gridledger::cli
