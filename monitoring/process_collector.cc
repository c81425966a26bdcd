#include "monitoring/process_collector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "families.h"

namespace gridledger::monitoring {

namespace {

using internal::Single;
using prometheus::MetricType;

// Fields of /proc/self/stat after the command name (which may contain spaces), 1-based as in
// proc(5) minus 2: state is fields[0] (field 3).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(text.substr(close + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// proc(5) field number → value.
double Field(const std::vector<std::string>& fields, size_t number) {
  return std::strtod(fields[number - 3].c_str(), nullptr);
}

// When the system booted (Unix seconds): the epoch of the start time in /proc/self/stat.
double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  const std::vector<std::string> fields = StatFields();
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // Fixed until the next boot: read once, not on every scrape.
  static const double boot_time_seconds = BootTimeSeconds();
  if (fields.size() >= 24 - 2 && ticks > 0) {  // up to field 24 (rss)
    out.push_back(Single("process_cpu_seconds_total", "Total user and system CPU time spent",
                         MetricType::Counter, (Field(fields, 14) + Field(fields, 15)) / ticks));
    out.push_back(
        Single("process_threads", "Threads of the process", MetricType::Gauge, Field(fields, 20)));
    out.push_back(Single("process_start_time_seconds",
                         "Start time of the process since the Unix epoch", MetricType::Gauge,
                         boot_time_seconds + Field(fields, 22) / ticks));
    out.push_back(Single("process_virtual_memory_bytes", "Virtual memory size", MetricType::Gauge,
                         Field(fields, 23)));
    out.push_back(Single("process_resident_memory_bytes", "Resident memory size", MetricType::Gauge,
                         Field(fields, 24) * page_bytes));
  }
  std::error_code error;
  size_t open_fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++open_fds;
  }
  if (!error) {
    out.push_back(Single("process_open_fds", "Open file descriptors", MetricType::Gauge,
                         static_cast<double>(open_fds)));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(Single("process_max_fds", "Maximum number of open file descriptors",
                         MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace gridledger::monitoring
