// RocksDB's diagnostic messages (its info log), written by the ledger instead of by RocksDB.
//
// RocksDB's own info log writes the file LOG in the data directory through the same file writer
// as its tables, and the RocksDB of Debian 12 (7.8.3, built with assertions) aborts the process
// when that writer is used again after a failed write — which is what a full disk does: the first
// warning after the disk filled up killed the process instead of failing appends with an error
// (design.md: "Disk full: appends fail with an error … service resumes when space returns").
// This logger never fails: a line it cannot write is dropped.
#pragma once

#include <rocksdb/env.h>

#include <cstdarg>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace gridledger::ledger {

// Where each message goes: a level (RocksDB's) and the formatted text, without a newline.
using StorageLogSink = std::function<void(rocksdb::InfoLogLevel level, std::string_view message)>;

// A RocksDB logger at `level` (messages below it are dropped) that hands every message to `sink`.
// Thread-safe if `sink` is: RocksDB logs from its background threads too.
std::shared_ptr<rocksdb::Logger> MakeStorageLogger(rocksdb::InfoLogLevel level,
                                                   StorageLogSink sink);

// A sink appending one line per message (UTC time, level, text) to the file at `path`, which it
// moves to `path`.old once it holds more than `bytes_max` bytes. Write errors drop the line.
StorageLogSink FileStorageLogSink(std::string path, size_t bytes_max);

// The name of a RocksDB log level ("debug", "info", "warning", "error", "fatal", "header").
std::string_view StorageLogLevelName(rocksdb::InfoLogLevel level);

}  // namespace gridledger::ledger
