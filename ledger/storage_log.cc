// RocksDB's info log written by the ledger (see storage_log.h).
#include "storage_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

namespace gridledger::ledger {

namespace {

// Some of RocksDB's messages end in a newline; the sinks add their own.
std::string_view Line(std::string_view message) {
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  return message;
}

class StorageLogger : public rocksdb::Logger {
 public:
  StorageLogger(rocksdb::InfoLogLevel level, StorageLogSink sink)
      : rocksdb::Logger(level), sink_(std::move(sink)) {}
  ~StorageLogger() override = default;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char text[1024];
    va_list copy;
    va_copy(copy, ap);
    const int needed = std::vsnprintf(text, sizeof text, format, copy);
    va_end(copy);
    if (needed < 0) return;
    if (static_cast<size_t>(needed) < sizeof text) {
      sink_(level, Line(std::string_view(text, static_cast<size_t>(needed))));
      return;
    }
    std::vector<char> longer(static_cast<size_t>(needed) + 1);
    std::vsnprintf(longer.data(), longer.size(), format, ap);
    sink_(level, Line(std::string_view(longer.data(), static_cast<size_t>(needed))));
  }

 protected:
  rocksdb::Status CloseImpl() override { return rocksdb::Status::OK(); }

 private:
  StorageLogSink sink_;
};

// Appends lines to one file, reopened after it was moved aside; a failed open or write drops the
// line (the disk may be full: exactly when the messages matter, and when nothing may fail).
class FileSink {
 public:
  FileSink(std::string path, size_t bytes_max) : path_(std::move(path)), bytes_max_(bytes_max) {}
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  ~FileSink() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Write(rocksdb::InfoLogLevel level, std::string_view message) {
    std::string line = Now();
    line.append(" ").append(StorageLogLevelName(level)).append(" ").append(message);
    line.push_back('\n');
    std::lock_guard lock(mutex_);
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd_ < 0) return;
      struct stat st {};
      bytes_ = ::fstat(fd_, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
    }
    const ssize_t written = ::write(fd_, line.data(), line.size());
    if (written > 0) bytes_ += static_cast<size_t>(written);
    if (bytes_ > bytes_max_) {
      ::close(fd_);
      fd_ = -1;
      std::rename(path_.c_str(), (path_ + ".old").c_str());
    }
  }

 private:
  static std::string Now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1'000'000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<long long>(micros));
    return text;
  }

  const std::string path_;
  const size_t bytes_max_;
  std::mutex mutex_;
  int fd_ = -1;
  size_t bytes_ = 0;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> MakeStorageLogger(rocksdb::InfoLogLevel level,
                                                   StorageLogSink sink) {
  return std::make_shared<StorageLogger>(level, std::move(sink));
}

StorageLogSink FileStorageLogSink(std::string path, size_t bytes_max) {
  auto sink = std::make_shared<FileSink>(std::move(path), bytes_max);
  return [sink](rocksdb::InfoLogLevel level, std::string_view message) {
    sink->Write(level, message);
  };
}

std::string_view StorageLogLevelName(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      return "debug";
    case rocksdb::InfoLogLevel::INFO_LEVEL:
      return "info";
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return "warning";
    case rocksdb::InfoLogLevel::ERROR_LEVEL:
      return "error";
    case rocksdb::InfoLogLevel::FATAL_LEVEL:
      return "fatal";
    case rocksdb::InfoLogLevel::HEADER_LEVEL:
    case rocksdb::InfoLogLevel::NUM_INFO_LOG_LEVELS:
      break;
  }
  return "header";
}

}  // namespace gridledger::ledger
