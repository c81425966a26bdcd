// Bulk import: a JSONL or CSV file of client events (formats and column mapping: ingest/IMPORT.md)
// validated row by row and appended through an injected append function (Ingestor::Append, or
// the server's permission-checking wrapper of it).
//
//   rows of one stream       → appended one at a time, in file order
//   rows of different streams → appended concurrently, up to streams_in_flight_max at once, so the
//                               ledger's group commit puts many of them into one synced batch
//   memory                   → bounded by rows_buffered_max rows of at most kImportRowBytesMax,
//                               whatever the file size: the input is streamed
//   a retried import         → appends nothing: event_ids are idempotency keys, so every row
//                               already stored comes back as a duplicate with its original position
//   the "import" flag        → set on every row that does not set it (declared historical records
//                               are not flagged as backdated); see IMPORT.md for why and what else
//
// A rejected row (undecodable, or refused by the append) is reported with its line number and
// reason; nothing of it is stored, and the import goes on. The later rows of its stream are held
// back (rule held_back), not appended: judged without it they could be stored with violations
// they do not have, or refused once an Archived got in, so that the fixed file never converged.
//
// Global positions follow file order only with streams_in_flight_max = 1: concurrent streams
// interleave in the ledger in whatever order their appends complete.
//
// Thread-safety: one Run at a time per Importer. The append function is called from worker threads,
// concurrently for different streams; it must be thread-safe. The callbacks are called on the
// thread that called Run. Nothing throws, except what the append function or a callback throws:
// that is passed on to Run's caller after the workers stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/event_json.h"
#include "ingest/ingestor.h"
#include "ledger/limits.h"

namespace gridledger::ingest {

// Streams with an append in flight at once (one worker thread each). Default of
// ImportOptions::streams_in_flight_max.
inline constexpr size_t kImportStreamsInFlightMax = 32;
// Rows read but not yet reported: queued behind their stream's earlier rows, being appended, or
// done but behind an earlier line. Reading pauses while the window is full. Default of
// ImportOptions::rows_buffered_max.
inline constexpr size_t kImportRowsBufferedMax = 4096;
// One JSONL line or CSV record; longer ones are rejected (and skipped without being buffered).
inline constexpr size_t kImportRowBytesMax = domain::kEventJsonBytesMax;
// Columns of a CSV file.
inline constexpr size_t kCsvColumnsMax = 256;
// An append answered kBusy (the ledger's queue is full) is retried this often, backing off from
// kImportBusyBackoffUsMin and doubling, before the row is reported as refused with kBusy.
inline constexpr int kImportBusyRetriesMax = 10;
inline constexpr int64_t kImportBusyBackoffUsMin = 1000;
static_assert(kImportStreamsInFlightMax <= kImportRowsBufferedMax,
              "every stream in flight needs a buffered row");
static_assert(kImportStreamsInFlightMax <= ledger::kAppendQueueRequestsMax,
              "one import alone must never fill the ledger's append queue");

enum class ImportFormat { kJsonl, kCsv };

// "jsonl" or "csv"; nullopt otherwise.
std::optional<ImportFormat> ParseImportFormat(std::string_view name);
// By the file name's extension, case-insensitive: .jsonl, .ndjson → kJsonl; .csv → kCsv.
std::optional<ImportFormat> ImportFormatOfPath(std::string_view path);

// One row of an import file as the Importer reads it: a JSONL line, or a CSV record (a quoted
// field may hold line breaks), as the bytes [begin, end) of the file with its line break, and the
// physical line (from 1) it starts on. A CSV file's first row is its header.
struct ImportRowSpan {
  size_t begin = 0;
  size_t end = 0;
  uint64_t line = 0;
};
// Every row of `body`, in order: for cutting a file into smaller imports of whole rows.
std::vector<ImportRowSpan> ImportRowSpans(std::string_view body, ImportFormat format);

// Appends one decoded event: Ingestor::Append, or a wrapper that also checks who may append it.
using AppendFunction =
    std::function<std::variant<IngestOutcome, IngestError>(domain::ClientEvent event)>;

// Why a row was not stored: it did not decode (field, rule, message; CSV structure errors have
// rule malformed_csv), or the append refused it (a ledger status, or a workflow rule).
using Rejection = std::variant<domain::DecodeError, IngestError>;

// The error body of a rejection, as every front door prints it (ingest/event_codec.h ErrorJson):
// {"code":"invalid","field":…,"rule":…,"message":…} for a decode error,
// {"code":"invalid","rule":…,"message":…} for a workflow rule, {"code":"forbidden","message":…}
// when the principal may not append the event, {"code":…,"message":…} otherwise.
nlohmann::ordered_json RejectionJson(const Rejection& rejection);

// The answer for one stored event (appended now, or a duplicate), as every front door prints it:
// {"ok":true,"position","stream","version","duplicate"}, with "violations":[{rule,message}] and
// "settles":[{rule,position,message}] when there are any.
nlohmann::ordered_json AppendedJson(const std::string& stream, const IngestOutcome& outcome);

// What became of one row. Exactly one of `stored` and `rejection` is set.
struct ImportRowOutcome {
  uint64_t line = 0;                    // the physical line (from 1) on which the row starts
  std::string stream;                   // "" when the row did not decode
  std::string event_id;                 // "" when the row did not decode
  std::optional<IngestOutcome> stored;  // appended, or a duplicate (stored->appended.duplicate)
  std::optional<Rejection> rejection;

  bool duplicate() const { return stored && stored->appended.duplicate; }
};

// The input could not be read to its end: a CSV header that cannot be mapped (rule bad_header),
// or an I/O error (rule read_error). Rows after `line` were not read.
struct ImportFailure {
  uint64_t line = 0;
  std::string rule;
  std::string message;
};

// rows = accepted + duplicates + rejected.
struct ImportSummary {
  uint64_t rows = 0;             // non-blank rows read (the CSV header is not a row)
  uint64_t accepted = 0;         // newly stored
  uint64_t duplicates = 0;       // already stored under their event_id: nothing appended
  uint64_t rejected = 0;         // not stored
  uint64_t with_violations = 0;  // rows stored (now or before) with workflow violations
  std::optional<ImportFailure> failure;

  bool ok() const { return rejected == 0 && !failure; }
};

struct ImportProgress {
  uint64_t rows = 0;         // rows reported so far
  uint64_t bytes_done = 0;   // input bytes up to the end of the last reported row
  uint64_t bytes_total = 0;  // as given to Run; 0 when unknown
};

using ImportRowCallback = std::function<void(const ImportRowOutcome& row)>;
using ImportProgressCallback = std::function<void(const ImportProgress& progress)>;

struct ImportOptions {
  // Streams appended concurrently. 1 appends every row in file order, so global positions follow
  // the file (needed when rows refer to positions, e.g. Corrected.corrects_position).
  // Default: kImportStreamsInFlightMax. REQUIRES: 1..kImportStreamsInFlightMax.
  size_t streams_in_flight_max = kImportStreamsInFlightMax;
  // Bound of the rows buffered (see kImportRowsBufferedMax). Default: kImportRowsBufferedMax.
  // REQUIRES: >= 1.
  size_t rows_buffered_max = kImportRowsBufferedMax;
  // When the input is one piece of a larger file (ledgerctl --http sends a large file in several
  // requests, each CSV piece with the header): the line its first line after a CSV header (JSONL:
  // its first line) has in that file. Every line reported — a row's line and the lines its
  // messages name — is then the file's, as importing the whole file would report it. 0: the
  // input's own lines. Default: 0.
  uint64_t first_line = 0;
  // When set and it becomes true (a signal handler of ledgerctl), no further row is read: the
  // rows read are appended and reported, and the summary's failure (rule interrupted) names the
  // last line read. Default: none.
  const std::atomic<bool>* stop = nullptr;
};

class Importer {
 public:
  explicit Importer(AppendFunction append, ImportOptions options = {});

  // Reads `in` to its end in `format` and appends every row that decodes. `on_row` (may be
  // empty) receives every row's outcome in line order; `on_progress` (may be empty) is called
  // every few hundred rows and once at the end. `bytes_total`: the input's size for progress, or 0.
  // Returns when every row read has been reported.
  ImportSummary Run(std::istream& in, ImportFormat format, const ImportRowCallback& on_row = {},
                    const ImportProgressCallback& on_progress = {}, uint64_t bytes_total = 0);

 private:
  AppendFunction append_;
  ImportOptions options_;
};

}  // namespace gridledger::ingest
