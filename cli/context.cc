#include "context.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "domain/event_json.h"
#include "projections/engine.h"

namespace gridledger::cli {

std::string DefaultCalendarDir() {
  const char* env = std::getenv("GRIDLEDGER_CALENDAR_DIR");
  return env != nullptr ? env : std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar";
}

std::string DefaultProfilePath() {
  const char* env = std::getenv("GRIDLEDGER_SLA_PROFILE");
  return env != nullptr ? env : std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/sla/national-2009.json";
}

namespace {
// The message names the file (and the line, when known) itself.
void Report(std::ostream& err, const domain::DataFileError& error) {
  err << "ledgerctl: " << error.message << "\n";
}
}  // namespace

std::optional<Context> OpenContext(const DataOptions& options, std::ostream& err) {
  auto calendar = domain::WorkingCalendar::Load(options.calendar_dir);
  if (auto* error = std::get_if<domain::DataFileError>(&calendar)) {
    Report(err, *error);
    return std::nullopt;
  }
  auto profile = domain::SlaProfile::Load(options.profile_path);
  if (auto* error = std::get_if<domain::DataFileError>(&profile)) {
    Report(err, *error);
    return std::nullopt;
  }
  ledger::Options ledger_options;
  ledger_options.create_if_missing = false;  // these commands read: a mistyped path is an error
  ledger_options.side_families = projections::SideFamilies();
  auto ledger = ledger::Ledger::Open(options.data_dir, ledger_options);
  if (!ledger.ok()) {
    err << "ledgerctl: " << ledger.status().message() << "\n";
    return std::nullopt;
  }
  return Context{std::move(ledger).value(), std::get<domain::WorkingCalendar>(std::move(calendar)),
                 std::get<domain::SlaProfile>(std::move(profile))};
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), terminal_(isatty(STDERR_FILENO) == 1) {}

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!terminal_ || total == 0) return;
  int percent = static_cast<int>(done * 100 / total);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int kWidth = 40;
  int filled = percent * kWidth / 100;
  std::cerr << "\r" << label_ << " [" << std::string(filled, '#')
            << std::string(kWidth - filled, ' ') << "] " << percent << "% " << done << "/" << total
            << std::flush;
}

void ProgressBar::Finish() {
  if (terminal_ && last_percent_ >= 0) std::cerr << "\n";
}

std::istream* OpenInput(const std::string& file, std::ifstream& file_stream, std::ostream& err,
                        std::ios::openmode mode) {
  if (file == "-") return &std::cin;
  file_stream.open(file, mode);
  if (!file_stream) {
    err << "ledgerctl: cannot read " << file << "\n";
    return nullptr;
  }
  return &file_stream;
}

}  // namespace gridledger::cli
