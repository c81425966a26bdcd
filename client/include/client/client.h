// The C++ client of ledgerd's Cap'n Proto TCP protocol (server/schema/protocol.capnp, described in
// server/README.md "TCP protocol"). Used by ledgerctl, the tests and the load benchmarks.
//
//   auto client = Client::Connect("127.0.0.1", 7070, token);    // hello → welcome
//   auto results = (*client)->Append({event_json});              // one result per event
//   auto page = (*client)->Read(1);                              // stored events by position
//   auto sub = (*client)->Subscribe(SubscribeOptions());         // catch up, then follow live
//   auto frame = (*sub)->Next();                                 // credit is topped up
//
// Blocking calls with a deadline (Options::timeout); nothing throws. A Client is one connection and
// is not thread-safe: use one per thread (they are cheap; 64 concurrent Clients are 64 sockets).
// Pipelining: SendAppend() several requests, then ReceiveAppend() each, or ReceiveAnyAppend() in
// the order the server answers them.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "ledger/event.h"
#include "server/protocol.capnp.h"

namespace gridledger::client {

// Why a call failed. `code` is the server's error code ("unauthenticated", "forbidden", "invalid",
// "version_conflict", "duplicate_mismatch", "busy", "not_found", "shutdown" — ledgerd is stopping:
// reconnect to the restarted one —, a storage failure: "io_error", "corruption", or "internal"
// for an error the server could not name) or one
// of the client's own: "io" (cannot connect, connection lost), "timeout", "protocol" (the server
// sent something this client does not understand), "unsupported" (an after_hash given to a server
// too old to check it; nothing was sent). After "io" and "protocol" errors, and
// "timeout" errors of writes, the connection is closed and every later call fails with "io".
struct Error {
  std::string code;
  std::string message;
  std::string field;                       // the JSON field at fault, "" when none
  std::string rule;                        // the rule broken, "" when none
  std::optional<int64_t> current_version;  // version_conflict: the stream's version
  // For busy: the server limit that was reached (server/limits.h names).
  std::string limit;

  std::string ToString() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : value_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return std::get<Error>(value_); }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> value_;
};

// nullopt = success.
using MaybeError = std::optional<Error>;

struct Options {
  std::string client_name = "gridledger-client";
  // Deadline of each blocking call (connect, one request's answer, one Next()). Default: 30 s.
  std::chrono::milliseconds timeout{30'000};
  // Largest frame accepted from the server. Must be at least the server's frame_bytes_max.
  // Default: 64 MiB.
  size_t frame_bytes_max = size_t{64} << 20;
};

struct Principal {
  std::string id;
  std::string role;
  std::string org;
};

struct Welcome {
  Principal principal;
  uint32_t protocol_version = 0;
  uint64_t frame_bytes_max = 0;
  uint32_t batch_events_max = 0;
  uint32_t connection_inflight_max = 0;
  uint32_t read_events_max = 0;
  uint32_t credit_max = 0;
};

// The answer for one appended event.
struct AppendResult {
  std::optional<Error> error;  // set when the event was refused; then nothing of it was stored
  uint64_t position = 0;
  std::string stream;
  uint64_t version = 0;
  bool duplicate = false;                       // a retry of a stored event_id
  std::vector<std::string> violations;          // workflow rule ids (stored and flagged)
  std::vector<std::string> violation_messages;  // what each says (empty from an older server)
  struct Settled {
    std::string rule;
    uint64_t position = 0;  // of the earlier event the violation was flagged on
    std::string message;
  };
  std::vector<Settled> settles;  // violations of earlier events this one settles

  bool ok() const { return !error.has_value(); }
};

// The answer to one append request, as ReceiveAnyAppend returns it: one result per event, or the
// refusal of the whole request (invalid batch, busy).
struct AppendAnswer {
  uint64_t request_id = 0;
  Result<std::vector<AppendResult>> results;
};

// A stored event, decoded from its envelope.
using Event = ledger::StoredEvent;

// Decodes one stored envelope (canonical Envelope bytes, as in events frames). Errors: "protocol".
Result<Event> DecodeEnvelope(std::string_view bytes);

struct ReadPage {
  std::vector<Event> events;
  uint64_t next = 0;  // log reads: the position to continue from; stream reads: the version
  // The raw hash of the event before `next` (log reads: at position next - 1, "" when next is 1;
  // stream reads: at version next - 1, "" when next is 0), to pass as after_hash with next.
  std::string last_hash;
};

// Events of one frame, kept as the server sent them (stored envelopes); decode what you need.
class EventBatch {
 public:
  EventBatch() = default;
  size_t size() const { return envelopes_.size(); }
  bool empty() const { return envelopes_.empty(); }
  // The stored envelope bytes of event i.
  std::string_view envelope(size_t i) const { return envelopes_[i]; }
  Result<Event> Decode(size_t i) const { return DecodeEnvelope(envelopes_[i]); }
  Result<std::vector<Event>> DecodeAll() const;
  // Calls visit for each event read in place (no copies); stops at the first malformed one.
  MaybeError ForEach(const std::function<void(const ledger::EventView&)>& visit) const;

 private:
  friend class Client;
  kj::Array<capnp::word> frame_;             // owns the bytes envelopes_ point into
  std::vector<std::string_view> envelopes_;  // word-aligned, whole words
};

struct SubscribeOptions {
  uint64_t from_position = 1;
  std::string stream_prefix;       // "" = every stream
  std::vector<std::string> types;  // empty = every type
  // Events the server may send before the client grants more. With auto_credit, Next() grants
  // more whenever half of it was consumed, so at most `credit` events are ever in flight. At most
  // the server's credit_max (welcome): more is lowered to it.
  uint32_t credit = 16384;
  bool auto_credit = true;
  // As Client::Read's: a subscription that can match `app/` streams is recorded when it starts.
  std::string approved_by;
  // As Client::Read's: the raw hash of the event at from_position - 1 as this client holds it
  // (Subscription::last_hash() of the subscription resumed); "" = not checked.
  std::string after_hash;
};

struct SubscriptionFrame {
  enum class Kind {
    kEvents,      // events matched the filter
    kCheckpoint,  // the filter skipped events (many, or up to the head): nothing matched up to
                  // next_position - 1
  };
  Kind kind = Kind::kEvents;
  EventBatch events;
  // Every position below this was examined: resume a subscription from here.
  uint64_t next_position = 0;
  // The raw hash of the event at next_position - 1: the after_hash of that resumption.
  std::string last_hash;
};

class Client;

// A live subscription on a Client's connection. Destroying it cancels it (without waiting).
// REQUIRES: the Client outlives it.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // The next frame, waiting up to `timeout` (default: Options::timeout). A "timeout" error here
  // does not break the connection: call Next() again.
  Result<SubscriptionFrame> Next(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Grants the server `events` more events (only needed without auto_credit).
  MaybeError Grant(uint32_t events);
  // Ends the subscription and waits until the server confirms; frames still in flight are dropped.
  MaybeError Cancel();

  uint64_t id() const { return id_; }
  uint64_t head_at_start() const { return head_at_start_; }
  // Where a new subscription would resume after everything received so far, and the hash to
  // resume with (SubscribeOptions::after_hash): of the event at next_position() - 1, "" at 1.
  uint64_t next_position() const { return next_position_; }
  const std::string& last_hash() const { return last_hash_; }

 private:
  friend class Client;
  Subscription(Client& client, uint64_t id, SubscribeOptions options, uint64_t head);

  Client& client_;
  const uint64_t id_;
  const SubscribeOptions options_;
  uint64_t head_at_start_ = 0;
  uint64_t next_position_ = 0;
  std::string last_hash_;
  uint64_t outstanding_credit_ = 0;  // granted and not yet used
  bool ended_ = false;
};

class Client {
 public:
  // Connects, says hello with `token` and waits for the welcome. Errors: "io", "timeout",
  // "unauthenticated" (no or unknown token), "busy" (the server is at connections_max).
  static Result<std::unique_ptr<Client>> Connect(const std::string& host, uint16_t port,
                                                 const std::string& token, Options options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Welcome& welcome() const { return welcome_; }

  // Appends JSON events (domain.md "Event contract"): one result per event, in order. The call
  // fails as a whole only when the request was refused (invalid batch, busy) or the connection
  // failed; then it is not known which events were stored unless the error came from the server.
  Result<std::vector<AppendResult>> Append(const std::vector<std::string>& events_json);
  // Pipelining: send now (returns the request id), receive later, in any order.
  Result<uint64_t> SendAppend(const std::vector<std::string>& events_json);
  Result<std::vector<AppendResult>> ReceiveAppend(uint64_t request_id);
  // Pipelining in completion order: the answer to whichever append sent with SendAppend (and not
  // yet received) comes first, waiting until `deadline`. nullopt when none came by then; that is
  // not an error, the connection stays usable. Errors: "protocol" when no append is pending, and
  // transport errors.
  Result<std::optional<AppendAnswer>> ReceiveAnyAppend(
      std::chrono::steady_clock::time_point deadline);

  // Stored events with position >= from_position; limit 0 = the server's page size.
  // `approved_by`: who approved the read, when it shows personal data (events of `app/` streams):
  // the server records such a read as a SensitiveDataAccessed event of this client's principal
  // first, and refuses the read when it cannot (protocol.capnp, Read.approvedBy).
  // `after_hash`: the raw hash of the event at from_position - 1 as this client holds it (the
  // last_hash of the page before); the server refuses the read ("invalid", rule "forked") when
  // its own event there has another hash — the client's copy came from another history, e.g. this
  // ledger before it was restored from an older backup. "" = not checked.
  Result<ReadPage> Read(uint64_t from_position, uint32_t limit = 0,
                        const std::string& approved_by = "", const std::string& after_hash = "");
  // Events of `stream` with version >= from_version; `approved_by` as for Read. A from_version
  // past the stream's last version + 1 is refused ("invalid", rule "beyond_head"); `after_hash`,
  // the raw hash of version from_version - 1 as this client holds it, as for Read.
  Result<ReadPage> ReadStream(const std::string& stream, uint64_t from_version = 0,
                              uint32_t limit = 0, const std::string& approved_by = "",
                              const std::string& after_hash = "");

  // Starts a subscription and waits for the server to accept it. Errors: "forbidden", "busy",
  // "invalid", transport errors.
  Result<std::unique_ptr<Subscription>> Subscribe(SubscribeOptions options);

  // Low level, for tests and tools: sends `request` (its id set by the caller) / any bytes.
  MaybeError SendRequest(capnp::MessageBuilder& request);
  MaybeError SendBytes(std::string_view bytes);
  // The next frame answering `id` (or, with id nullopt, the next frame of any id), as its bytes.
  Result<kj::Array<capnp::word>> ReceiveFrame(std::optional<uint64_t> id,
                                              std::chrono::milliseconds timeout);
  uint64_t NewRequestId() { return next_id_++; }
  bool broken() const { return broken_; }

  // Opens a connection without saying hello (tests of unauthenticated requests).
  static Result<std::unique_ptr<Client>> ConnectWithoutHello(const std::string& host, uint16_t port,
                                                             Options options = {});

 private:
  friend class Subscription;
  struct Socket;
  explicit Client(Options options);

  MaybeError Open(const std::string& host, uint16_t port);
  MaybeError Hello(const std::string& token);
  // Waits for the next frame answering `id`, holding frames for other awaited ids aside.
  Result<kj::Array<capnp::word>> Await(uint64_t id, std::chrono::milliseconds timeout);
  // Reads frames until one answers an id `wanted` accepts, holding frames for other awaited ids
  // aside, until `deadline`.
  Result<kj::Array<capnp::word>> ReadAnswer(const std::function<bool(uint64_t)>& wanted,
                                            std::chrono::steady_clock::time_point deadline);
  // Reads what is there (at least one byte) into `into`, waiting until `deadline`.
  Result<size_t> ReadSome(kj::byte* into, size_t bytes,
                          std::chrono::steady_clock::time_point deadline);
  // Reads one frame from the socket into an owned, word-aligned array, waiting until `deadline`.
  Result<kj::Array<capnp::word>> ReadFrame(std::chrono::steady_clock::time_point deadline);
  // Writes all of an Asio buffer sequence within the call timeout (defined in client.cc).
  template <typename Buffers>
  MaybeError Write(const Buffers& buffers);
  Error Broken(std::string code, std::string message);
  // An "unsupported" error when `after_hash` is given and the server would not check it.
  MaybeError RefuseUncheckedHash(const std::string& after_hash) const;
  // Moves a received events frame into `batch`; returns the frame's `next` (and its lastHash in
  // `last_hash`).
  static Result<uint64_t> TakeEvents(kj::Array<capnp::word> frame, EventBatch& batch,
                                     std::string& last_hash);
  Result<ReadPage> AwaitPage(uint64_t id);

  const Options options_;
  std::unique_ptr<Socket> socket_;
  Welcome welcome_;
  uint64_t next_id_ = 1;
  bool broken_ = false;
  // Frames that arrived for awaited ids (pending appends, live subscriptions) while another
  // answer was awaited. Bounded by what the caller pipelines and by subscription credit.
  // Present keys are the awaited ids; frames for any other id are dropped.
  std::map<uint64_t, std::deque<kj::Array<capnp::word>>> held_;
  // Appends sent with SendAppend whose answers were not yet received (each also a key of held_).
  std::set<uint64_t> pending_appends_;
};

}  // namespace gridledger::client
