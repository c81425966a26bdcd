// Relay: publishes every event of the ledger, in position order, exactly once, to a NATS JetStream
// stream, and keeps doing so across its own restarts and broker outages.
//
// Message of the event at position P (see server/README.md, "JetStream relay"):
//   subject  <subject_prefix>.<stream kind>.<type>   ("gridledger.app.ApplicationAccepted"); the
//            stream kind is the part of the stream id before the first '/' (SubjectOf below)
//   headers  Nats-Msg-Id: P            (the broker's de-duplication key)
//            Nats-Expected-Stream: <stream_name>
//            Nats-Expected-Last-Sequence: <sequence the broker must hold last>
//            GridLedger-Stream, GridLedger-Version, GridLedger-Event-Id, GridLedger-Hash (hex)
//   body     the stored event as compact JSON, the same object GET /v1/events returns for it
//            (ingest::StoredEventToJson)
//
// Exactly once, in order. The JetStream stream itself is the authority on what was relayed: on
// start and after every reconnect or failed publish the relay reads the stream's last message and
// resumes after the position in its Nats-Msg-Id (checking that its GridLedger-Hash is the ledger's
// hash there). Every publish carries Nats-Expected-Last-Sequence = the stream sequence that holds
// the previous position, so the broker stores position P only directly after position P - 1:
// a stale or repeated publish (a crashed relay's in-flight message, a retry after a lost ack, a
// message buffered across a reconnect) is refused, not stored twice or out of order. This does not
// depend on the duplicate window; Nats-Msg-Id de-duplication is only a second line of defence.
//
// Checkpoint: the last position the broker acknowledged, stored in a side family of the ledger
// (key "checkpoint/<stream_name>", value: position and stream sequence, 8-byte big-endian each),
// written after every acknowledged batch. It is used when the stream holds no relayed message
// (purged or expired) and for status while the broker is unreachable; when the stream's last
// position disagrees with it, the stream wins.
//
// Threads: the relay runs on its own thread. It never blocks appends: it only reads the ledger and
// waits on its head (WaitForHeadAbove). Start, Stop and status may be called from any thread.
// Nothing throws.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ledger/ledger.h"

namespace gridledger::server {

// The side family holding the relay's checkpoint. ledgerd opens the ledger with
// projections::SideFamilies() followed by this one (AddRelaySideFamily).
inline constexpr std::string_view kRelaySideFamily = "relay";

// Appends kRelaySideFamily to `side_families` (ledger::Options::side_families) and returns its
// index, the value for RelayOptions::checkpoint_family.
inline ledger::SideFamily AddRelaySideFamily(std::vector<std::string>& side_families) {
  side_families.emplace_back(kRelaySideFamily);
  return side_families.size() - 1;
}

// The largest RelayOptions::inflight_events_max: bounds the messages (and their acknowledgements)
// the relay holds at once.
inline constexpr size_t kRelayInflightEventsMax = 65536;
// How many messages without a GridLedger position (published by someone else onto the stream's
// subjects) the relay steps back over when it looks for the last position in the stream.
inline constexpr uint64_t kRelayForeignMessagesScannedMax = 1000;

inline constexpr ledger::SideFamily kNoSideFamily = std::numeric_limits<ledger::SideFamily>::max();

struct RelayOptions {
  // NATS server URL(s), comma-separated. Default: nats://127.0.0.1:4222.
  std::string url = "nats://127.0.0.1:4222";
  // JetStream stream. Created when missing: subjects "<subject_prefix>.>", file storage, limits
  // retention, no size or age limit, `duplicate_window`. An existing stream is used as it is.
  // Default: "GRIDLEDGER".
  std::string stream_name = "GRIDLEDGER";
  // First subject token. Default: "gridledger".
  std::string subject_prefix = "gridledger";
  // The broker's de-duplication window for a stream the relay creates. Correctness does not depend
  // on it (see above); it only lets the broker absorb a blind retry. Default: 2 minutes.
  std::chrono::milliseconds duplicate_window{std::chrono::minutes(2)};
  // Messages published and not yet acknowledged, at most (1..kRelayInflightEventsMax). More
  // pipelines more over a slow link; each costs one event's JSON in memory. Default: 1024.
  size_t inflight_events_max = 1024;
  // Wait before retrying after an error (broker unreachable, publish refused), doubled on every
  // consecutive error up to the max. The min is also the NATS client's reconnect interval.
  // Default: 100 ms .. 5 s.
  std::chrono::milliseconds retry_backoff_min{100};
  std::chrono::milliseconds retry_backoff_max{5000};
  // JetStream API requests (stream info, get message, create stream). Default: 2 s.
  std::chrono::milliseconds request_timeout{2000};
  // How long a batch may wait for its acknowledgements before the relay gives up on it and
  // re-reads the stream. Default: 5 s.
  std::chrono::milliseconds ack_timeout{5000};
  // The longest the relay thread sleeps between checks of the connection and of Stop: it bounds
  // how quickly Stop returns. Default: 100 ms.
  std::chrono::milliseconds poll_interval{100};
  // Side family of the checkpoint (see AddRelaySideFamily). Required.
  ledger::SideFamily checkpoint_family = kNoSideFamily;
  // Told, on the relay thread, what an operator must know (ledgerd logs it): `trouble` true for an
  // error — each new one at once, the same one again at most once per report_interval with how
  // often it recurred meanwhile — and for losing the broker; false for connecting and for
  // working again after errors. Default: nobody is told (status() still says it all).
  std::function<void(bool trouble, const std::string& message)> report;
  std::chrono::milliseconds report_interval{std::chrono::minutes(1)};
};

struct RelayStatus {
  bool running = false;
  bool connected = false;
  // The last position known to be in the stream: acknowledged by the broker or read back from it;
  // until the first read since Start (confirmed = false), the checkpoint.
  uint64_t relayed_position = 0;
  bool confirmed = false;
  uint64_t head = 0;       // the ledger's head when the status was taken
  uint64_t lag = 0;        // head - relayed_position
  uint64_t published = 0;  // messages acknowledged since Start
  uint64_t resyncs = 0;    // times the resume point was read from the stream since Start
  // The last error met (broker unreachable, publish refused, history mismatch, ...); empty when
  // none yet. An error is retried after a backoff; it stays here until the next one.
  std::string last_error;
  // Errors met since Start. An unreachable broker counts once per backoff while it stays so
  // (retry_backoff_min doubling up to retry_backoff_max), as a failed attempt that is retried.
  uint64_t errors = 0;
};

// `<prefix>.<stream kind>.<type>`. Characters that NATS does not allow in a subject token (".",
// "*", ">", whitespace and control bytes) and any other byte outside [A-Za-z0-9_-] become '_';
// an empty token becomes "_".
std::string SubjectOf(std::string_view prefix, std::string_view stream, std::string_view type);

// `url` (one NATS URL or a comma-separated list) as it may be shown in logs and answers: the
// password of each URL's user info, or a token standing alone there, becomes "***"
// ("nats://alice:***@host:4222", "nats://***@host:4222"). The user info runs to the URL's last
// '@', as the NATS client reads it. Anything else is kept.
std::string UrlWithoutSecrets(std::string_view url);

class Relay {
 public:
  // REQUIRES: `ledger` outlives the relay and was opened with options.checkpoint_family among its
  // side families.
  Relay(ledger::Ledger& ledger, RelayOptions options);
  // Stops the relay.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Checks the options and starts the relay thread. Connecting is the thread's job: an
  // unreachable broker is retried, not an error here.
  // Errors: kInvalid (bad options), kIoError (checkpoint unreadable), kBusy (already started).
  ledger::Status Start();
  // Stops the thread and closes the connection; returns within about poll_interval, also during a
  // broker outage. Messages in flight are abandoned: the next start finds out from the stream
  // whether they were stored. Idempotent.
  void Stop();

  RelayStatus status() const;
  // Blocks until relayed_position >= position, confirmed by the broker, or `timeout` passes; true
  // when reached.
  bool WaitForRelayed(uint64_t position, std::chrono::milliseconds timeout) const;

 private:
  class Session;
  struct Cursor;
  struct StreamEnd;

  void Run();
  // Reads the stream's end and sets `cursor` to the resume point (see relay.cc).
  ledger::Status Synchronize(Session& session, Cursor& cursor);
  // Publishes the next events after `cursor` (at most inflight_events_max) and checkpoints them.
  ledger::Status RelayBatch(Session& session, Cursor& cursor);
  // Called on the relay thread only.
  ledger::Status WriteCheckpoint(uint64_t position, uint64_t stream_sequence, bool sync);

  bool Stopping() const;
  // Publishes the session Stop must close; false (and nothing published) when stopping.
  bool Attach(Session* session);
  bool SetConnected(bool connected);  // returns `connected`
  void SetRelayed(uint64_t position, uint64_t published);
  // An error met and retried: in status() (last_error, errors) and, RecordError only, reported.
  void CountError(const std::string& error);
  void RecordError(const std::string& error);
  void Report(bool trouble, const std::string& message) const;
  void WaitForStop(std::chrono::milliseconds timeout);
  // Sleeps `backoff` (cut short by Stop) and doubles it up to retry_backoff_max.
  void Backoff(std::chrono::milliseconds& backoff);

  ledger::Ledger& ledger_;
  const RelayOptions options_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_cv_;  // relayed position moved, or stopping
  RelayStatus status_;                          // guarded by mutex_ (head and lag filled on read)
  bool stopping_ = false;                       // guarded by mutex_
  // The stored checkpoint: set by Start, then owned by the relay thread.
  uint64_t checkpoint_ = 0;
  uint64_t checkpoint_sequence_ = 0;
  Session* session_ = nullptr;  // guarded by mutex_; owned by the relay thread, closed by Stop
  std::thread thread_;
  // What was last reported (relay thread only; see RelayOptions::report).
  std::string reported_error_;
  std::chrono::steady_clock::time_point reported_at_;
  uint64_t unreported_repeats_ = 0;
  uint64_t errors_since_working_ = 0;
  std::optional<bool> reported_connected_;
};

}  // namespace gridledger::server
