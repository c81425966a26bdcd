// ledgerctl's commands. Each returns the process exit code: 0 success, 1 failure of the command
// itself (storage, corruption), 2 when input was rejected.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/event_json.h"
#include "ledger/event.h"
#include "ledger/ledger.h"

namespace gridledger::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitRejected = 2;

struct ReadOptions {
  std::optional<std::string> stream;
  uint64_t from_version = 0;
  std::optional<uint64_t> from_position;
  uint64_t limit = 1000;
  // Each line also carries "envelope": the stored envelope, base64 (see `check`).
  bool envelopes = false;
};

// A stored event as `read` prints it: StoredEventToJson, plus the base64 canonical envelope when
// `envelope`.
nlohmann::ordered_json ReadLine(const ledger::StoredEvent& event, bool envelope);

// Says on `err` that a page of `shown` events (--limit) is not all there is, and where the next
// one starts: `next` is a version for a stream read, else a position. A page is not to be taken
// for the whole log, on a data directory or through ledgerd.
void SayMoreFollow(std::ostream& err, uint64_t shown, const ReadOptions& options, uint64_t next);

// `ledgerctl check FILE`: lines printed by `read --envelopes` (from whatever ledger), checked
// without a ledger: each envelope hashes to its hash, and the line says what the envelope holds.
// Prints one verdict per line and a summary; exit 0 when all hold, 1 when one does not, 2 when a
// line is not such a line.
int CheckCommand(const std::string& file, std::ostream& out);

// Who writes when ledgerctl works on a data directory itself (append, import, demo): no token
// says, so the operating-system account does — `local:<user>` (effective user; `local:uid-N`
// without a name), role admin (filesystem access to the directory is an administrator's power),
// org `local`. Stored with each event as recorded_by, so the log says which local account wrote
// events under other actors' names. It is what the process was told, not proof: whoever can
// write the directory can write anything there.
domain::Actor LocalOperator();

// A read of personal data (events of app/ streams and what is made of them) on a data directory is
// recorded as ledgerd records its readers' (server/service.cc): a SensitiveDataAccessed of
// LocalOperator() on staff/<its id>, `what` naming what was read. The caller shows the data only
// when this returns true; false: it could not be recorded (why, on stderr).
bool RecordLocalRead(ledger::Ledger& ledger, std::string_view what);

int Append(const std::string& data_dir, const std::string& file, std::ostream& out);
int Read(const std::string& data_dir, const ReadOptions& options, std::ostream& out);
// The readable table of `history` (non-empty `events` of one stream).
void PrintHistory(const std::string& stream, const std::vector<ledger::StoredEvent>& events,
                  std::ostream& out);
int History(const std::string& data_dir, const std::string& stream, std::ostream& out);
// Recomputes the chain; with `digest` ("POSITION:HASH", as `digest` prints them joined), also
// checks that the verified hash at POSITION is HASH: history up to it is what it was when the
// digest was handed out. With `projections`, also compares the stored projections with a fresh
// fold of the log (projections::CheckProjections, in a scratch copy beside the data directory)
// and adds "projections" {ok, checkpoint, states, differences, first} to the answer; exit 1 when
// a state differs.
int Verify(const std::string& data_dir, const std::string& digest, std::ostream& out,
           const std::string& events_file = "", bool projections = false);
// After a verified chain: whether each event of `events_file` (lines of `read --envelopes`, e.g.
// handed out for a dispute) passes `check` — its fields and envelope are what its hash stands
// for — and has the hash this ledger holds at its position: then each is in its history,
// unchanged. `stored_hash(position)`: the ledger's hash there (hex), or nullopt beyond its head.
// Adds "events" {checked, matching, mismatches} to `answer` (and the verdict to "ok"), prints it;
// exit 0 when all match, 1 when one does not, 2 when the file is not such lines.
int PrintEventsVerdict(nlohmann::ordered_json& answer, const std::string& events_file,
                       const std::function<std::optional<std::string>(uint64_t)>& stored_hash,
                       std::ostream& out);
// A --digest argument POSITION:HASH (hash lowercased); nullopt, said on stderr, when malformed.
std::optional<ledger::Digest> ParseDigestArgument(const std::string& digest);
// After a verified chain: whether `handed_out` is the digest of history up to its position, given
// the hash stored there (nullopt: none, `why_none` says why). Adds "digest" to `answer` (and its
// verdict to "ok"), prints it; exit 0 when it matches, else 1.
int PrintDigestVerdict(nlohmann::ordered_json& answer, const ledger::Digest& handed_out,
                       const std::optional<std::string>& stored_hash, std::string_view why_none,
                       std::ostream& out);
int DigestCommand(const std::string& data_dir, std::optional<uint64_t> at, std::ostream& out);

// `ledgerctl backup DEST`: a verified copy of the data directory in DEST (a new directory; see
// Ledger::Backup). Prints {"ok", "backup", "head", "hash"}: the copy's verified head digest.
int BackupCommand(const std::string& data_dir, const std::string& dest, std::ostream& out);

}  // namespace gridledger::cli
