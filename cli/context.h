// What every projection-reading command needs: the ledger opened with the projection families, the
// working calendar, the SLA profile, and a parsed evaluation time.
#pragma once

#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "ledger/ledger.h"

namespace gridledger::cli {

struct DataOptions {
  std::string data_dir;
  std::string calendar_dir;  // directory of YYYY.json year files
  std::string profile_path;  // SLA profile JSON
};

// Defaults: $GRIDLEDGER_CALENDAR_DIR / $GRIDLEDGER_SLA_PROFILE, else the files in the source tree.
std::string DefaultCalendarDir();
std::string DefaultProfilePath();

struct Context {
  std::unique_ptr<ledger::Ledger> ledger;
  domain::WorkingCalendar calendar;
  domain::SlaProfile profile;
};

// Opens everything or prints why not (stderr) and returns nullopt.
std::optional<Context> OpenContext(const DataOptions& options, std::ostream& err);

// "2026-03-10" (the end of that day in Asia/Shanghai) or RFC 3339; nullopt when neither.
int64_t NowUs();

// The input named `file` ("-": stdin), opened into `file_stream`; nullptr (and why, on `err`) when
// it cannot be read.
std::istream* OpenInput(const std::string& file, std::ifstream& file_stream, std::ostream& err,
                        std::ios::openmode mode = std::ios::in);

// A line of only spaces, tabs and carriage returns (skipped in JSON-lines input).
inline bool Blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// A terminal progress bar on stderr for long scans; silent when stderr is not a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  bool terminal_;
  int last_percent_ = -1;
};

}  // namespace gridledger::cli
