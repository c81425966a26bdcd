// The JetStream relay (relay.h). Two halves:
// - Relay::Session owns everything of libnats (connection, JetStream context, the inbox where the
//   broker's acknowledgements arrive) and knows the wire: how a stored event becomes a message,
//   how the stream's last relayed position is read back, how a batch is published and acknowledged;
// - Relay runs the loop on its own thread: connect, find the resume point, read the ledger,
//   publish, checkpoint, back off on errors, sleep on the ledger's head when caught up.
//
// libnats never calls into the relay: acknowledgements are read from a synchronous subscription and
// reconnects are noticed through the connection's statistics, so no library thread can call into a
// Relay that is already gone (the one callback it needs, for connecting in the background, is a
// stateless no-op).
//
// TODO(perf): ~35-39k events/s to a local broker on 2 cores; perf's top samples are libnats'
// per-message locking and thread wake-ups (one per publish and per acknowledgement), not JSON.
#include "server/relay.h"

#include <nats/nats.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "ingest/event_codec.h"
#include "ledger/assert.h"

namespace gridledger::server {

namespace {

using ledger::Code;
using ledger::Status;

constexpr char kMsgIdHeader[] = "Nats-Msg-Id";
constexpr char kExpectedStreamHeader[] = "Nats-Expected-Stream";
constexpr char kExpectedLastSequenceHeader[] = "Nats-Expected-Last-Sequence";
constexpr char kExpectedLastMsgIdHeader[] = "Nats-Expected-Last-Msg-Id";
constexpr char kStreamHeader[] = "GridLedger-Stream";
constexpr char kVersionHeader[] = "GridLedger-Version";
constexpr char kEventIdHeader[] = "GridLedger-Event-Id";
constexpr char kHashHeader[] = "GridLedger-Hash";

constexpr std::string_view kCheckpointKeyPrefix = "checkpoint/";
constexpr size_t kCheckpointBytes = 16;  // position, stream sequence: big-endian u64 each

// Acknowledgements the inbox may hold beyond one batch's (stale ones of abandoned batches).
constexpr int kStaleAcksMax = 1024;
constexpr int kAckBytesMax = 1024;

Status BrokerError(std::string message) { return {Code::kIoError, std::move(message)}; }

// "what: <status text> (<the library's detail>)".
std::string NatsError(std::string_view what, natsStatus status) {
  std::string text(what);
  text += ": ";
  text += natsStatus_GetText(status);
  const char* detail = nats_GetLastError(nullptr);
  if (detail != nullptr && *detail != '\0') {
    text += " (";
    text += detail;
    text += ")";
  }
  return text;
}

std::optional<uint64_t> ParseDecimal(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string Token(std::string_view text) {
  if (text.empty()) return "_";
  std::string token(text);
  for (char& c : token) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  return token;
}

// A header value must not break the header block: control bytes and '%' are percent-encoded.
std::string HeaderValue(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string value;
  value.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || c == '%') {
      value += '%';
      value += kHex[byte >> 4];
      value += kHex[byte & 0xf];
    } else {
      value += c;
    }
  }
  return value;
}

void PutBigEndian64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

uint64_t GetBigEndian64(std::string_view bytes) {
  LEDGER_ASSERT(bytes.size() >= 8);
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

std::string CheckpointKey(const RelayOptions& options) {
  return std::string(kCheckpointKeyPrefix) + options.stream_name;
}

int64_t Milliseconds(std::chrono::milliseconds duration) { return duration.count(); }

struct MsgDeleter {
  void operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* info) const { jsStreamInfo_Destroy(info); }
};
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, StreamInfoDeleter>;

// Stateless, so that the library may call it at any time, also after the relay is gone.
void IgnoreConnected(natsConnection* /*connection*/, void* /*closure*/) {}

std::string_view Header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

}  // namespace

std::string SubjectOf(std::string_view prefix, std::string_view stream, std::string_view type) {
  std::string_view kind = stream.substr(0, stream.find('/'));
  std::string subject(prefix);
  subject += '.';
  subject += Token(kind);
  subject += '.';
  subject += Token(type);
  return subject;
}

// ---------------------------------------------------------------------------------------------
// Session: one NATS connection and what the relay does over it.

// Where the relay stands in the stream: `position` is the last position stored there (as far as
// the relay knows), at stream sequence `stream_sequence`, which is also the stream's last sequence.
struct Relay::Cursor {
  uint64_t position = 0;
  uint64_t stream_sequence = 0;
};

// The end of the stream as read back from the broker.
struct Relay::StreamEnd {
  uint64_t last_sequence = 0;        // 0: the stream never held a message
  std::optional<uint64_t> position;  // of the last relayed message, if the stream holds one
  std::string hash_hex;              // its GridLedger-Hash
};

class Relay::Session {
 public:
  static ledger::Result<std::unique_ptr<Session>> Connect(const RelayOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool Connected() const {
    return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
  }
  bool Closed() const { return natsConnection_IsClosed(connection_); }
  uint64_t Reconnects();
  // Thread-safe: releases every blocking call of the relay thread on this session.
  void Close() { natsConnection_Close(connection_); }

  // Creates the stream when missing, then finds its last relayed message.
  ledger::Result<StreamEnd> ReadStreamEnd();
  // Publishes `events` (the positions right after cursor.position) and waits for every
  // acknowledgement; advances `cursor` only when all were stored where expected.
  Status Publish(const std::vector<ledger::StoredEvent>& events, Cursor& cursor);

 private:
  explicit Session(const RelayOptions& options) : options_(options) {}
  Status Open();
  ledger::Result<StreamInfoPtr> StreamInfo();
  Status FindLastPosition(const jsStreamState& state, StreamEnd& end);
  // `after_own`: the message before it in the stream must be the previous position.
  Status PublishOne(const ledger::StoredEvent& event, const std::string& reply_prefix,
                    uint64_t expected_last_sequence, bool after_own);
  // Gives up when the connection drops or reconnects (`reconnects`: the count at publishing).
  Status CollectAcks(const std::vector<ledger::StoredEvent>& events, const Cursor& cursor,
                     uint64_t attempt, uint64_t reconnects);
  Status CheckAck(natsMsg* ack, uint64_t position, uint64_t expected_sequence) const;

  const RelayOptions& options_;
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* acks_ = nullptr;  // "<inbox_>.<attempt>.<position>"
  natsStatistics* statistics_ = nullptr;
  std::string inbox_;
  uint64_t attempt_ = 0;  // numbers batches, so acks of an abandoned batch are recognized
};

ledger::Result<std::unique_ptr<Relay::Session>> Relay::Session::Connect(
    const RelayOptions& options) {
  std::unique_ptr<Session> session(new Session(options));
  Status opened = session->Open();
  if (!opened.ok()) return opened;
  return session;
}

std::string UrlWithoutSecrets(std::string_view url) {
  std::string shown;
  for (size_t begin = 0; begin <= url.size();) {
    const size_t comma = std::min(url.find(',', begin), url.size());
    std::string_view one = url.substr(begin, comma - begin);
    const size_t scheme = one.find("://");
    const size_t authority = scheme == std::string_view::npos ? 0 : scheme + 3;
    // As the NATS client reads it: the user info runs to the last '@' (a password or token may
    // hold '/' — base64 does — and '@').
    const size_t at = one.rfind('@');
    if (at != std::string_view::npos && at >= authority) {
      const std::string_view user_info = one.substr(authority, at - authority);
      const size_t colon = user_info.find(':');
      shown.append(one.substr(0, authority));
      if (colon != std::string_view::npos) shown.append(user_info.substr(0, colon + 1));
      shown.append("***").append(one.substr(at));
    } else {
      shown.append(one);
    }
    if (comma < url.size()) shown += ',';
    begin = comma + 1;
  }
  return shown;
}

Status Relay::Session::Open() {
  natsOptions* nats_options = nullptr;
  natsStatus s = natsOptions_Create(&nats_options);
  if (s == NATS_OK) s = natsOptions_SetURL(nats_options, options_.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(nats_options, "gridledger-relay");
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(nats_options, Milliseconds(options_.request_timeout));
  // Reconnect for ever, every retry_backoff_min; fail requests at once on a disconnect.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(nats_options, -1);
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectWait(nats_options, Milliseconds(options_.retry_backoff_min));
  }
  if (s == NATS_OK) s = natsOptions_SetFailRequestsOnDisconnect(nats_options, true);
  // A broker that is down at start is retried in the background like a lost connection. Without a
  // connected callback natsConnection_Connect would retry in the caller's thread, for ever.
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(nats_options, true, IgnoreConnected, nullptr);
  }
  if (s == NATS_OK) {
    s = natsConnection_Connect(&connection_, nats_options);
    if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;
  }
  natsOptions_Destroy(nats_options);
  if (s != NATS_OK) {
    return BrokerError(NatsError("connecting to " + UrlWithoutSecrets(options_.url), s));
  }

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Milliseconds(options_.request_timeout);
  s = natsConnection_JetStream(&js_, connection_, &js_options);
  natsInbox* inbox = nullptr;
  if (s == NATS_OK) s = natsInbox_Create(&inbox);
  if (s == NATS_OK) {
    inbox_ = inbox;
    s = natsConnection_SubscribeSync(&acks_, connection_, (inbox_ + ".>").c_str());
  }
  natsInbox_Destroy(inbox);
  const int acks_max = static_cast<int>(options_.inflight_events_max) + kStaleAcksMax;
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(acks_, acks_max, acks_max * kAckBytesMax);
  if (s == NATS_OK) s = natsStatistics_Create(&statistics_);
  if (s != NATS_OK) return BrokerError(NatsError("setting up the JetStream session", s));
  return Status::Ok();
}

Relay::Session::~Session() {
  natsSubscription_Destroy(acks_);
  jsCtx_Destroy(js_);
  natsConnection_Destroy(connection_);  // closes it first
  natsStatistics_Destroy(statistics_);
}

uint64_t Relay::Session::Reconnects() {
  uint64_t reconnects = 0;
  if (natsConnection_GetStats(connection_, statistics_) == NATS_OK) {
    natsStatistics_GetCounts(statistics_, nullptr, nullptr, nullptr, nullptr, &reconnects);
  }
  return reconnects;
}

ledger::Result<StreamInfoPtr> Relay::Session::StreamInfo() {
  const char* name = options_.stream_name.c_str();
  jsStreamInfo* info = nullptr;
  jsErrCode error_code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, js_, name, nullptr, &error_code);
  if (s == NATS_NOT_FOUND || error_code == JSStreamNotFoundErr) {
    const std::string subjects = options_.subject_prefix + ".>";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name;
    config.Subjects = subject_list;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Retention = js_LimitsPolicy;
    config.Duplicates = Milliseconds(options_.duplicate_window) * 1000 * 1000;  // nanoseconds
    s = js_AddStream(&info, js_, &config, nullptr, &error_code);
    if (s != NATS_OK) return BrokerError(NatsError("creating stream " + options_.stream_name, s));
  } else if (s != NATS_OK) {
    return BrokerError(NatsError("reading stream info of " + options_.stream_name, s));
  }
  return StreamInfoPtr(info);
}

ledger::Result<Relay::StreamEnd> Relay::Session::ReadStreamEnd() {
  auto info = StreamInfo();
  if (!info.ok()) return info.status();
  StreamEnd end;
  end.last_sequence = (*info)->State.LastSeq;
  Status found = FindLastPosition((*info)->State, end);
  if (!found.ok()) return found;
  return end;
}

// Steps back from the last sequence over deleted and foreign messages to the last message that
// carries a position (Nats-Msg-Id) and a GridLedger-Hash.
Status Relay::Session::FindLastPosition(const jsStreamState& state, StreamEnd& end) {
  if (state.Msgs == 0) return Status::Ok();
  const char* name = options_.stream_name.c_str();
  uint64_t scanned = 0;
  for (uint64_t sequence = state.LastSeq; sequence >= std::max<uint64_t>(state.FirstSeq, 1);
       --sequence) {
    if (++scanned > kRelayForeignMessagesScannedMax) {
      return BrokerError("stream " + options_.stream_name +
                         " holds no relayed message in its last " +
                         std::to_string(kRelayForeignMessagesScannedMax) + " sequences");
    }
    natsMsg* raw = nullptr;
    jsErrCode error_code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetMsg(&raw, js_, name, sequence, nullptr, &error_code);
    MsgPtr msg(raw);
    if (s == NATS_NOT_FOUND || error_code == JSNoMessageFoundErr) continue;  // deleted
    if (s != NATS_OK) {
      return BrokerError(NatsError(
          "reading message " + std::to_string(sequence) + " of stream " + options_.stream_name, s));
    }
    std::optional<uint64_t> position = ParseDecimal(Header(msg.get(), kMsgIdHeader));
    std::string_view hash = Header(msg.get(), kHashHeader);
    if (position && *position > 0 && !hash.empty()) {
      end.position = position;
      end.hash_hex = std::string(hash);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status Relay::Session::Publish(const std::vector<ledger::StoredEvent>& events, Cursor& cursor) {
  LEDGER_ASSERT(!events.empty() && events.size() <= options_.inflight_events_max);
  LEDGER_ASSERT(events.front().position == cursor.position + 1);
  const uint64_t attempt = ++attempt_;
  const uint64_t reconnects = Reconnects();
  const std::string reply_prefix = inbox_ + "." + std::to_string(attempt) + ".";
  for (size_t i = 0; i < events.size(); ++i) {
    LEDGER_ASSERT(events[i].position == cursor.position + 1 + i);
    Status published =
        PublishOne(events[i], reply_prefix, cursor.stream_sequence + i, /*after_own=*/i > 0);
    if (!published.ok()) return published;
  }
  Status acked = CollectAcks(events, cursor, attempt, reconnects);
  if (!acked.ok()) return acked;
  cursor.position += events.size();
  cursor.stream_sequence += events.size();
  return Status::Ok();
}

Status Relay::Session::PublishOne(const ledger::StoredEvent& event, const std::string& reply_prefix,
                                  uint64_t expected_last_sequence, bool after_own) {
  const std::string subject = SubjectOf(options_.subject_prefix, event.stream, event.type);
  const std::string position = std::to_string(event.position);
  const std::string reply = reply_prefix + position;
  // Invalid UTF-8 in a stream id or actor field is replaced rather than failing the relay.
  const std::string body = ingest::StoredEventToJson(event).dump(
      -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), reply.c_str(), body.data(),
                                static_cast<int>(body.size()));
  MsgPtr msg(raw);
  auto set = [&](const char* key, const std::string& value) {
    if (s == NATS_OK) s = natsMsgHeader_Set(msg.get(), key, value.c_str());
  };
  set(kMsgIdHeader, position);
  set(kExpectedStreamHeader, options_.stream_name);
  // Always sent, also as "0" for the first message of an empty stream: the broker stores this
  // message only directly after the one that holds the previous position.
  set(kExpectedLastSequenceHeader, std::to_string(expected_last_sequence));
  // Within a batch, the message before must also be the previous position itself: a message
  // published by someone else between two of ours takes the sequence the next one expects, and
  // the sequence check alone would then refuse one message and store the rest after the gap.
  // (The first of a batch follows whatever the stream ended with when it was read, foreign
  // messages included: the sequence check covers it.)
  if (after_own) set(kExpectedLastMsgIdHeader, std::to_string(event.position - 1));
  set(kStreamHeader, HeaderValue(event.stream));
  set(kVersionHeader, std::to_string(event.version));
  set(kEventIdHeader, HeaderValue(event.event_id));
  set(kHashHeader, ledger::ToHex(event.hash));
  if (s == NATS_OK) s = natsConnection_PublishMsg(connection_, msg.get());
  if (s != NATS_OK) return BrokerError(NatsError("publishing position " + position, s));
  return Status::Ok();
}

Status Relay::Session::CollectAcks(const std::vector<ledger::StoredEvent>& events,
                                   const Cursor& cursor, uint64_t attempt, uint64_t reconnects) {
  const std::string reply_prefix = inbox_ + "." + std::to_string(attempt) + ".";
  const auto deadline = std::chrono::steady_clock::now() + options_.ack_timeout;
  std::vector<bool> acked(events.size(), false);
  size_t acked_count = 0;
  while (acked_count < events.size()) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      return BrokerError("no acknowledgement of " + std::to_string(events.size() - acked_count) +
                         " of " + std::to_string(events.size()) + " messages within " +
                         std::to_string(options_.ack_timeout.count()) + " ms");
    }
    // Acks lost with a connection never come: give up on the batch as soon as it drops.
    if (!Connected() || Reconnects() != reconnects) {
      return BrokerError("connection lost with " + std::to_string(events.size() - acked_count) +
                         " of " + std::to_string(events.size()) + " messages unacknowledged");
    }
    natsMsg* raw = nullptr;
    natsStatus s =
        natsSubscription_NextMsg(&raw, acks_, std::min(remaining, options_.poll_interval).count());
    MsgPtr ack(raw);
    if (s == NATS_TIMEOUT) continue;
    if (s == NATS_NO_RESPONDERS) {
      return BrokerError("no JetStream stream listens on " + options_.subject_prefix + ".>");
    }
    if (s != NATS_OK) return BrokerError(NatsError("waiting for acknowledgements", s));
    std::string_view subject = natsMsg_GetSubject(ack.get());
    if (!subject.starts_with(reply_prefix)) continue;  // of an abandoned batch
    std::optional<uint64_t> position = ParseDecimal(subject.substr(reply_prefix.size()));
    if (!position || *position <= cursor.position || *position > events.back().position) continue;
    const size_t index = *position - cursor.position - 1;
    if (acked[index]) continue;
    Status checked = CheckAck(ack.get(), *position, cursor.stream_sequence + index + 1);
    if (!checked.ok()) return checked;
    acked[index] = true;
    ++acked_count;
  }
  return Status::Ok();
}

// A positive acknowledgement names our stream and the sequence right after the previous
// position's. A duplicate (the broker already held this Nats-Msg-Id) is fine only at that same
// sequence; anything else means the relay's idea of the stream is stale and it must re-read it.
Status Relay::Session::CheckAck(natsMsg* ack, uint64_t position, uint64_t expected_sequence) const {
  const char* data = natsMsg_GetData(ack);
  const auto json = nlohmann::json::parse(data, data + natsMsg_GetDataLength(ack), nullptr,
                                          /*allow_exceptions=*/false);
  const std::string what = "position " + std::to_string(position) + ": ";
  if (json.is_discarded() || !json.is_object()) return BrokerError(what + "unreadable ack");
  if (auto error = json.find("error"); error != json.end()) {
    return BrokerError(what + "refused by the broker: " + error->dump());
  }
  auto stream = json.find("stream");
  auto sequence = json.find("seq");
  if (stream == json.end() || !stream->is_string() || *stream != options_.stream_name ||
      sequence == json.end() || !sequence->is_number_unsigned()) {
    return BrokerError(what + "unexpected ack " + json.dump());
  }
  if (sequence->get<uint64_t>() != expected_sequence) {
    return BrokerError(what + "stored at stream sequence " + sequence->dump() + ", expected " +
                       std::to_string(expected_sequence));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Relay

Relay::Relay(ledger::Ledger& ledger, RelayOptions options)
    : ledger_(ledger), options_(std::move(options)) {}

Relay::~Relay() { Stop(); }

Status Relay::Start() {
  if (options_.checkpoint_family == kNoSideFamily) {
    return {Code::kInvalid, "relay: checkpoint_family is not set"};
  }
  if (options_.inflight_events_max == 0 || options_.inflight_events_max > kRelayInflightEventsMax) {
    return {Code::kInvalid,
            "relay: inflight_events_max must be 1.." + std::to_string(kRelayInflightEventsMax)};
  }
  if (options_.stream_name.empty() || options_.subject_prefix.empty() ||
      options_.retry_backoff_min.count() <= 0 ||
      options_.retry_backoff_max < options_.retry_backoff_min ||
      options_.request_timeout.count() <= 0 || options_.ack_timeout.count() <= 0 ||
      options_.poll_interval.count() <= 0 || options_.duplicate_window.count() <= 0) {
    return {Code::kInvalid, "relay: empty names or non-positive durations in the options"};
  }
  auto stored = ledger_.GetSide(options_.checkpoint_family, CheckpointKey(options_));
  if (!stored.ok()) return stored.status();
  uint64_t checkpoint = 0;
  if (stored->has_value()) {
    if ((*stored)->size() != kCheckpointBytes) {
      return {Code::kCorruption, "relay: checkpoint of " + options_.stream_name + " has " +
                                     std::to_string((*stored)->size()) + " bytes"};
    }
    checkpoint = GetBigEndian64(**stored);
  }
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return {Code::kBusy, "relay: already started"};
  status_ = RelayStatus{};
  status_.running = true;
  status_.relayed_position = checkpoint;
  checkpoint_ = checkpoint;  // before the thread starts, which owns it from then on
  checkpoint_sequence_ = stored->has_value() ? GetBigEndian64((*stored)->substr(8)) : 0;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Relay::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    if (session_ != nullptr) session_->Close();
  }
  changed_cv_.notify_all();
  thread_.join();
  std::lock_guard lock(mutex_);
  status_.running = false;
  status_.connected = false;
}

RelayStatus Relay::status() const {
  const uint64_t head = ledger_.Head();
  std::lock_guard lock(mutex_);
  RelayStatus status = status_;
  status.head = head;
  status.lag = head > status.relayed_position ? head - status.relayed_position : 0;
  return status;
}

bool Relay::WaitForRelayed(uint64_t position, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_cv_.wait_for(
      lock, timeout, [&] { return status_.confirmed && status_.relayed_position >= position; });
}

void Relay::Run() {
  std::chrono::milliseconds backoff = options_.retry_backoff_min;
  std::unique_ptr<Session> session;
  Cursor cursor;
  bool synchronized = false;  // cursor was read from the stream on this connection
  uint64_t reconnects_seen = 0;
  // While the broker is unreachable: when the outage is next counted as an error.
  std::chrono::steady_clock::time_point unreachable_count_due;
  while (!Stopping()) {
    if (session == nullptr || session->Closed()) {
      Attach(nullptr);
      session.reset();
      auto connected = Session::Connect(options_);
      if (!connected.ok()) {
        RecordError(connected.status().message());
        Backoff(backoff);
        continue;
      }
      session = std::move(connected).value();
      if (!Attach(session.get())) break;  // Stop came first
      reconnects_seen = session->Reconnects();
      synchronized = false;
    }
    if (!SetConnected(session->Connected())) {
      // The client reconnects by itself; whatever was in flight is judged after the reconnect.
      synchronized = false;
      // Until then nothing is relayed: an error like a failed connect or publish, counted once
      // per backoff as those are retried, so the count keeps rising through an outage (the relay
      // alerts send operators to it). SetConnected has said it; the log is not flooded. The
      // check for the reconnect stays at poll_interval, so relaying resumes without a backoff's
      // delay.
      if (const auto now = std::chrono::steady_clock::now(); now >= unreachable_count_due) {
        CountError("NATS " + UrlWithoutSecrets(options_.url) +
                   " unreachable; the client keeps reconnecting");
        unreachable_count_due = now + backoff;
        backoff = std::min(backoff * 2, options_.retry_backoff_max);
      }
      WaitForStop(options_.poll_interval);
      continue;
    }
    if (uint64_t reconnects = session->Reconnects(); reconnects != reconnects_seen) {
      reconnects_seen = reconnects;
      synchronized = false;
    }
    Status step = Status::Ok();
    const uint64_t errors_before = errors_since_working_;
    if (!synchronized) {
      step = Synchronize(*session, cursor);
      synchronized = step.ok();
    } else if (ledger_.Head() <= cursor.position) {
      ledger_.WaitForHeadAbove(cursor.position, options_.poll_interval);
      continue;
    } else {
      step = RelayBatch(*session, cursor);
      synchronized = step.ok();
    }
    // A step that went through without an error after errors (a failed checkpoint write is one,
    // though the step goes on): relaying works again.
    if (step.ok() && errors_before > 0 && errors_since_working_ == errors_before) {
      Report(false, "relay working again: relayed up to position " +
                        std::to_string(cursor.position) + " after " +
                        std::to_string(errors_before) + " error(s)");
      errors_since_working_ = 0;
      reported_error_.clear();
      unreported_repeats_ = 0;
    }
    if (!step.ok()) {
      if (Stopping()) break;
      RecordError(step.message());
      Backoff(backoff);
      continue;
    }
    backoff = options_.retry_backoff_min;
  }
  Attach(nullptr);
  session.reset();
  // Make the last checkpoint durable (it was written without sync).
  if (checkpoint_ != 0) {
    Status written = WriteCheckpoint(checkpoint_, checkpoint_sequence_, true);
    if (!written.ok()) RecordError("checkpoint: " + written.message());
  }
}

// The resume point: the last position in the stream, checked against the ledger; when the stream
// holds none, the checkpoint (stream purged or expired) or 0 (a stream that never held a message
// gets the whole log).
Status Relay::Synchronize(Session& session, Cursor& cursor) {
  auto end = session.ReadStreamEnd();
  if (!end.ok()) return end.status();
  const uint64_t checkpoint = checkpoint_;
  {
    std::lock_guard lock(mutex_);
    ++status_.resyncs;
  }
  uint64_t resume = 0;
  if (end->position) {
    resume = *end->position;
    if (resume > ledger_.Head()) {
      return {Code::kCorruption, "stream " + options_.stream_name + " holds position " +
                                     std::to_string(resume) + " beyond the ledger's head " +
                                     std::to_string(ledger_.Head())};
    }
    auto digest = ledger_.DigestAt(resume);
    if (!digest.ok()) return digest.status();
    if (digest->hash_hex != end->hash_hex) {
      return {Code::kCorruption, "stream " + options_.stream_name +
                                     " holds a different event at position " +
                                     std::to_string(resume) + " (hash " + end->hash_hex + ")"};
    }
    if (resume < checkpoint) {
      // Not an error of the relay's (someone purged or trimmed the stream), but to be known.
      Report(true, "relay: stream " + options_.stream_name + " ends at position " +
                       std::to_string(resume) + " below the checkpoint " +
                       std::to_string(checkpoint) + ": republishing from there");
    }
  } else if (end->last_sequence > 0) {
    resume = std::min(checkpoint, ledger_.Head());
  } else if (checkpoint > 0) {
    Report(true, "relay: stream " + options_.stream_name +
                     " never held a message but the checkpoint is " + std::to_string(checkpoint) +
                     ": publishing the whole log");
  }
  cursor = Cursor{resume, end->last_sequence};
  SetRelayed(resume, 0);
  if (resume != checkpoint_ || end->last_sequence != checkpoint_sequence_) {
    Status written = WriteCheckpoint(resume, end->last_sequence, false);
    if (!written.ok()) RecordError("checkpoint: " + written.message());
  }
  return Status::Ok();
}

Status Relay::RelayBatch(Session& session, Cursor& cursor) {
  const uint64_t head = ledger_.Head();
  LEDGER_ASSERT(head > cursor.position);
  const uint64_t count = std::min<uint64_t>(head - cursor.position, options_.inflight_events_max);
  auto events = ledger_.ReadFrom(cursor.position + 1, count);
  if (!events.ok()) return events.status();
  if (events->empty() || events->front().position != cursor.position + 1) {
    return {Code::kCorruption, "ledger read from position " + std::to_string(cursor.position + 1) +
                                   " returned no such event"};
  }
  Status published = session.Publish(*events, cursor);
  if (!published.ok()) return published;
  SetRelayed(cursor.position, events->size());
  // Not synced: the WAL reaches the disk with the next synced append, and a lost checkpoint only
  // costs a re-read of the stream (see relay.h).
  Status written = WriteCheckpoint(cursor.position, cursor.stream_sequence, false);
  if (!written.ok()) RecordError("checkpoint: " + written.message());
  return Status::Ok();
}

Status Relay::WriteCheckpoint(uint64_t position, uint64_t stream_sequence, bool sync) {
  std::string value;
  PutBigEndian64(value, position);
  PutBigEndian64(value, stream_sequence);
  LEDGER_ASSERT(value.size() == kCheckpointBytes);
  std::unique_ptr<ledger::SideBatch> batch = ledger_.NewSideBatch();
  batch->Put(options_.checkpoint_family, CheckpointKey(options_), value);
  Status written = ledger_.WriteSide(*batch, sync);
  if (written.ok()) {
    checkpoint_ = position;
    checkpoint_sequence_ = stream_sequence;
  }
  return written;
}

bool Relay::Stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool Relay::Attach(Session* session) {
  std::lock_guard lock(mutex_);
  if (session != nullptr && stopping_) return false;
  session_ = session;
  return true;
}

bool Relay::SetConnected(bool connected) {
  {
    std::lock_guard lock(mutex_);
    status_.connected = connected;
  }
  if (reported_connected_ != connected) {
    std::string message =
        connected ? "relay connected to NATS " + UrlWithoutSecrets(options_.url)
                  : (reported_connected_.value_or(false) ? "relay lost its connection to NATS "
                                                         : "relay cannot reach NATS ") +
                        UrlWithoutSecrets(options_.url) +
                        "; it keeps trying and resumes where it stopped";
    Report(!connected, message);
    reported_connected_ = connected;
  }
  return connected;
}

void Relay::SetRelayed(uint64_t position, uint64_t published) {
  {
    std::lock_guard lock(mutex_);
    status_.relayed_position = position;
    status_.confirmed = true;
    status_.published += published;
  }
  changed_cv_.notify_all();
}

void Relay::CountError(const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    status_.last_error = error;
    ++status_.errors;
  }
  ++errors_since_working_;
}

void Relay::RecordError(const std::string& error) {
  CountError(error);
  const auto now = std::chrono::steady_clock::now();
  if (error == reported_error_ && now - reported_at_ < options_.report_interval) {
    ++unreported_repeats_;
    return;
  }
  std::string message = "relay error (retried): " + error;
  if (error == reported_error_ && unreported_repeats_ > 0) {
    message += " (again " + std::to_string(unreported_repeats_) + " time(s) since last said)";
  }
  Report(true, message);
  reported_error_ = error;
  reported_at_ = now;
  unreported_repeats_ = 0;
}

void Relay::Report(bool trouble, const std::string& message) const {
  if (options_.report) options_.report(trouble, message);
}

void Relay::WaitForStop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_cv_.wait_for(lock, timeout, [&] { return stopping_; });
}

void Relay::Backoff(std::chrono::milliseconds& backoff) {
  WaitForStop(backoff);
  backoff = std::min(backoff * 2, options_.retry_backoff_max);
}

}  // namespace gridledger::server
