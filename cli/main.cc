// ledgerctl: the command line of GridLedger. See cli/README.md.
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  using namespace gridledger::cli;
  CLI::App app{"ledgerctl — GridLedger's command line: append, read, verify and replay history"};
  app.require_subcommand(1);
  std::string data_dir;
  app.add_option("--data", data_dir, "data directory of an embedded ledger")
      ->required()
      ->envname("GRIDLEDGER_DATA");

  std::string append_file = "-";
  auto* append = app.add_subcommand("append", "append JSON events, one per line (- = stdin)");
  append->add_option("file", append_file, "JSONL file of events");

  ReadOptions read_options;
  uint64_t from_position = 0;
  auto* read = app.add_subcommand("read", "print stored events as JSON lines");
  auto* stream_option = read->add_option("--stream", read_options.stream, "one stream's events");
  read->add_option("--from-version", read_options.from_version, "first version (with --stream)")
      ->needs(stream_option);
  auto* from_option = read->add_option("--from", from_position, "first global position");
  read->add_option("--limit", read_options.limit, "at most this many events")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000}));
  stream_option->excludes(from_option);

  std::string history_stream;
  auto* history = app.add_subcommand("history", "a readable table of one stream's events");
  history->add_option("stream", history_stream, "stream id, e.g. app/KM-2026-000123")->required();

  auto* verify = app.add_subcommand("verify", "recompute the hash chain from position 1");

  std::optional<uint64_t> digest_at;
  auto* digest = app.add_subcommand("digest", "print (position, hash) of the head or of --at P");
  digest->add_option("--at", digest_at, "position");

  CLI11_PARSE(app, argc, argv);

  if (*append) return Append(data_dir, append_file, std::cout);
  if (*read) {
    if (*from_option) read_options.from_position = from_position;
    return Read(data_dir, read_options, std::cout);
  }
  if (*history) return History(data_dir, history_stream, std::cout);
  if (*verify) return Verify(data_dir, std::cout);
  if (*digest) return DigestCommand(data_dir, digest_at, std::cout);
  return kExitFailure;
}
