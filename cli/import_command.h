// ledgerctl import: bulk import of a JSONL or CSV file of events (ingest/IMPORT.md) through the
// front door's rules (Ingestor::Append), many streams at once.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "context.h"
#include "ingest/import.h"

namespace gridledger::cli {

// `format` ("jsonl", "csv") or, when empty, the format of `file` by its extension; nullopt, said
// on `err`, when neither tells.
std::optional<ingest::ImportFormat> ChooseImportFormat(const std::string& file,
                                                       const std::string& format,
                                                       std::ostream& err);

// Imports `file` ("-" = stdin) into the embedded ledger of `data.data_dir`, keeping the
// projections current. `format`: "jsonl", "csv", or "" to tell by the file's extension (.jsonl,
// .ndjson, .csv). Prints to `out` one JSON line per rejected row,
//   {"ok":false,"line":L,"stream":S,"event_id":E,"error":{"code":…,"rule":…,"message":…}}
// (stream and event_id when the row decoded), a line {"ok":false,"line":L,"error":{…}} when the
// input could not be read to its end (rule bad_header or read_error), and last the summary
//   {"ok":true|false,"rows":…,"accepted":…,"duplicates":…,"rejected":…,"with_violations":…}.
// Messages for people and the progress bar (on a terminal) go to `err` / stderr.
// Exit: 0 when nothing was rejected, 2 when rows or the CSV header were rejected, 1 when the
// command itself failed (unknown format, unreadable file, storage).
int ImportCommand(const DataOptions& data, const std::string& file, const std::string& format,
                  std::ostream& out, std::ostream& err);

}  // namespace gridledger::cli
