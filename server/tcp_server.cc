// TcpServer: accept loop, per-connection sessions (framing, hello, append, read, subscriptions),
// and the ledger head notification that wakes live subscriptions. See tcp_server.h for the bounds.
#include "server/tcp_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/event_json.h"
#include "ledger/limits.h"
#include "protocol/framing.h"
#include "server/log.h"
#include "server/protocol.capnp.h"

namespace gridledger::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using Words = kj::ArrayPtr<const capnp::word>;

namespace {

constexpr size_t kWordBytes = sizeof(capnp::word);
// A connection's receive buffer starts (and shrinks back to) this size; it grows to hold one frame.
constexpr size_t kReceiveBufferBytes = size_t{64} << 10;
// Frames gathered into one socket write.
constexpr size_t kWriteFramesMax = 64;
// Bytes of an events frame besides its envelopes (Response struct, list pointers, segment table),
// and per envelope (its list pointer): how the frame builder keeps a frame under frame_bytes_max.
constexpr size_t kEventsFrameOverheadBytes = 1024;
constexpr size_t kEnvelopeOverheadBytes = 8;
// How long the accept loop waits after a failed accept (out of descriptors) before trying again.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Types a subscription may filter on (domain.md has about forty).
constexpr size_t kSubscriptionTypesMax = 256;
static_assert(kReceiveBufferBytes % kWordBytes == 0);

// An error as the protocol carries it (the ServiceError body's fields).
struct WireError {
  std::string code;
  std::string message;
  std::string field;
  std::string rule;
  std::optional<int64_t> current_version;
};

// address:port of the socket's peer, for the log ("" once it is gone).
std::string PeerOf(const tcp::socket& socket) {
  boost::system::error_code error;
  const tcp::endpoint endpoint = socket.remote_endpoint(error);
  return error ? std::string()
               : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

WireError FromServiceError(const ServiceError& error) {
  const nlohmann::ordered_json& body = error.error;
  auto text = [&](const char* key) {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  WireError wire{text("code"), text("message"), text("field"), text("rule"), std::nullopt};
  auto version = body.find("current_version");
  if (version != body.end() && version->is_number_integer()) {
    wire.current_version = version->get<int64_t>();
  }
  if (wire.code.empty()) wire.code = "internal";
  return wire;
}

void FillError(protocol::Error::Builder builder, const WireError& error) {
  builder.setCode(error.code);
  builder.setMessage(error.message);
  builder.setField(error.field);
  builder.setRule(error.rule);
  if (error.current_version) {
    builder.setHasCurrentVersion(true);
    builder.setCurrentVersion(*error.current_version);
  }
}

std::string_view View(capnp::Text::Reader text) { return {text.begin(), text.size()}; }
std::string_view View(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}
capnp::Data::Reader AsData(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

// The fields of a resume point as this protocol names them (protocol.capnp).
const ResumeFields kLogResumeFields{"fromPosition", "afterHash"};
const ResumeFields kStreamResumeFields{"fromVersion", "afterHash"};

// The stored bytes of an envelope read in place. The ledger stores envelopes canonically
// (ledger/FORMAT.md): one segment, the root pointer at word 0, the struct right after it and every
// object it points to after that, without gaps. So the stored bytes are the root pointer word just
// before the struct's data section plus the message's total size, and an events frame can carry
// them as they are. The root pointer is checked; anything else is re-encoded canonically into
// `fallback`. TODO(perf): ask ledger/ for EventView::bytes() and drop this.
Words StoredEnvelopeWords(ledger::schema::Envelope::Reader envelope,
                          kj::Array<capnp::word>& fallback) {
  capnp::AnyStruct::Reader any(envelope);
  kj::ArrayPtr<const kj::byte> data = any.getDataSection();
  if (data.size() > 0 && data.size() % kWordBytes == 0) {
    const capnp::word* root = reinterpret_cast<const capnp::word*>(data.begin()) - 1;
    uint64_t pointer = 0;
    std::memcpy(&pointer, root, sizeof(pointer));
    // A struct pointer (kind 0) with offset 0 and this struct's section sizes.
    const uint64_t expected = (uint64_t{data.size() / kWordBytes} << 32) |
                              (uint64_t{any.getPointerSection().size()} << 48);
    if (pointer == expected) return {root, 1 + envelope.totalSize().wordCount};
  }
  fallback = any.canonicalize();
  return fallback.asPtr();
}

// Gathers envelopes into one events frame, within a byte budget and an event count.
class EventsFrame {
 public:
  EventsFrame(size_t frame_bytes_max, size_t events_max)
      : message_(std::make_unique<capnp::MallocMessageBuilder>()),
        bytes_budget_(frame_bytes_max > kEventsFrameOverheadBytes
                          ? frame_bytes_max - kEventsFrameOverheadBytes
                          : 0),
        events_max_(events_max) {}

  // False (and nothing added) when the envelope would break a bound; the first one always fits,
  // so a frame makes progress even when one event is larger than the budget.
  bool Add(Words envelope) {
    size_t bytes = envelope.size() * kWordBytes + kEnvelopeOverheadBytes;
    if (!envelopes_.empty() && (bytes_ + bytes > bytes_budget_ || full())) return false;
    capnp::Data::Reader data(reinterpret_cast<const kj::byte*>(envelope.begin()),
                             envelope.size() * kWordBytes);
    envelopes_.push_back(message_->getOrphanage().newOrphanCopy(data));
    bytes_ += bytes;
    return true;
  }
  bool full() const { return envelopes_.size() >= events_max_; }
  size_t count() const { return envelopes_.size(); }

  // `last_hash`: the raw hash of the event at next - 1 (log reads and subscriptions), or "".
  std::unique_ptr<capnp::MallocMessageBuilder> Finish(uint64_t id, uint64_t next,
                                                      std::string_view last_hash = {}) {
    auto response = message_->initRoot<protocol::Response>();
    response.setId(id);
    auto events = response.initEvents();
    auto list = events.initEnvelopes(static_cast<unsigned>(envelopes_.size()));
    for (size_t i = 0; i < envelopes_.size(); ++i) {
      list.adopt(static_cast<unsigned>(i), kj::mv(envelopes_[i]));
    }
    events.setNext(next);
    if (!last_hash.empty()) events.setLastHash(AsData(last_hash));
    envelopes_.clear();
    return std::move(message_);
  }

 private:
  std::unique_ptr<capnp::MallocMessageBuilder> message_;
  std::vector<capnp::Orphan<capnp::Data>> envelopes_;
  size_t bytes_ = 0;
  const size_t bytes_budget_;
  const size_t events_max_;
};

// The first segment of a reply: enough for every reply but events frames and large appended
// lists, which grow more segments as needed. (capnp's default, 8 KiB zeroed per message, was paid
// for every one-event append answer.)
constexpr unsigned kReplyFirstSegmentWords = 128;
// Words of an appended list per event: an AppendResult and its Appended or Error, and the stream.
constexpr unsigned kAppendedWordsPerEvent = 48;

// A Response under construction.
struct Reply {
  explicit Reply(uint64_t id, unsigned first_segment_words = kReplyFirstSegmentWords)
      : message(std::make_unique<capnp::MallocMessageBuilder>(first_segment_words)),
        root(message->initRoot<protocol::Response>()) {
    root.setId(id);
  }
  std::unique_ptr<capnp::MallocMessageBuilder> message;
  protocol::Response::Builder root;
};

// One frame on its way to a socket: the message, and the segment table written before it.
struct OutFrame {
  std::unique_ptr<capnp::MallocMessageBuilder> message;
  std::vector<uint32_t> table;  // segment count - 1, then each size in words; padded to a word
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments;
  size_t bytes = 0;
  uint64_t subscription = 0;  // non-zero: a frame of this subscription
};

OutFrame Seal(std::unique_ptr<capnp::MallocMessageBuilder> message, uint64_t subscription) {
  OutFrame frame;
  frame.segments = message->getSegmentsForOutput();
  frame.table = protocol::SegmentTable(frame.segments);
  frame.bytes = frame.table.size() * sizeof(uint32_t);
  for (const auto& segment : frame.segments) frame.bytes += segment.size() * kWordBytes;
  frame.message = std::move(message);
  frame.subscription = subscription;
  return frame;
}

// Appends the buffers that write `frame` (its segment table, then its segments) to `buffers`.
void AddBuffers(const OutFrame& frame, std::vector<asio::const_buffer>& buffers) {
  buffers.emplace_back(frame.table.data(), frame.table.size() * sizeof(uint32_t));
  for (Words segment : frame.segments) {
    buffers.emplace_back(segment.begin(), segment.size() * kWordBytes);
  }
}

using protocol::FramePrefix;

void RaiseTo(std::atomic<size_t>& peak, size_t value) {
  size_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

class TcpSession;

struct TcpServer::Shared : std::enable_shared_from_this<TcpServer::Shared> {
  Shared(asio::io_context& io_context, Service& service_ref)
      : io(io_context),
        service(service_ref),
        limits(service_ref.limits()),
        acceptor(asio::make_strand(io_context)),
        accept_retry(acceptor.get_executor()) {}

  void Accept();
  void Refuse(tcp::socket socket, const char* limit);
  void Register(const std::shared_ptr<TcpSession>& session);
  void Forget(const TcpSession* session);
  // Live subscriptions waiting for the head to move, or for room in the output queue
  // (output_bytes_max); woken by the next group commit or when the queue shrinks below it.
  void Wait(const std::shared_ptr<TcpSession>& session);
  void OnHead();  // on the ledger's writer thread: only posts
  void WakeWaiters();

  void AddOutput(size_t bytes, bool subscription) {
    RaiseTo(output_bytes_peak, output_bytes.fetch_add(bytes) + bytes);
    if (subscription) {
      RaiseTo(subscription_output_bytes_peak, subscription_output_bytes.fetch_add(bytes) + bytes);
    }
  }
  void RemoveOutput(size_t bytes, bool subscription) {
    const size_t before = output_bytes.fetch_sub(bytes);
    if (subscription) subscription_output_bytes.fetch_sub(bytes);
    // Subscriptions that waited for room (Pump) go on once the queue is below the limit again.
    if (before >= limits.output_bytes_max && before - bytes < limits.output_bytes_max) OnHead();
  }
  // Receive buffers beyond each connection's first kReceiveBufferBytes (input_bytes_max).
  bool TryAddInput(size_t bytes) {
    if (input_bytes.fetch_add(bytes) + bytes > limits.input_bytes_max) {
      input_bytes.fetch_sub(bytes);
      return false;
    }
    RaiseTo(input_bytes_peak, input_bytes.load());
    return true;
  }
  // Answer bytes queued for all connections reached limits.output_bytes_max.
  bool OutputFull() const { return output_bytes.load() >= limits.output_bytes_max; }

  asio::io_context& io;
  Service& service;
  const Limits limits;
  tcp::acceptor acceptor;           // used on its own strand only
  asio::steady_timer accept_retry;  // on the acceptor's strand
  std::atomic<bool> stopping{false};
  std::atomic<bool> wake_posted{false};

  std::mutex mutex;  // guards sessions and waiting
  std::unordered_map<const TcpSession*, std::weak_ptr<TcpSession>> sessions;
  std::vector<std::weak_ptr<TcpSession>> waiting;

  std::atomic<size_t> connections{0};
  std::atomic<size_t> subscriptions{0};
  std::atomic<size_t> subscriptions_without_credit{0};
  std::atomic<size_t> output_bytes{0};
  std::atomic<size_t> output_bytes_peak{0};
  std::atomic<size_t> input_bytes{0};
  std::atomic<size_t> input_bytes_peak{0};
  std::atomic<size_t> subscription_output_bytes{0};
  std::atomic<size_t> subscription_output_bytes_peak{0};
  std::atomic<uint64_t> frames_received{0};
  std::atomic<uint64_t> frames_sent{0};
  std::atomic<uint64_t> subscription_events_sent{0};
  std::atomic<uint64_t> checkpoints_sent{0};
  std::atomic<uint64_t> busy_sent{0};
  std::atomic<uint64_t> connections_refused{0};

  // Live subscriptions' progress, read by Stats() from any thread.
  struct Cursor {
    std::string subscriber;
    std::atomic<uint64_t> next{1};
  };
  std::mutex cursors_mutex;
  std::unordered_map<const Cursor*, std::shared_ptr<Cursor>> cursors;
};

// One connection. Every method runs on the session's strand except Shutdown() and
// PostHeadMoved(), which post to it.
class TcpSession : public std::enable_shared_from_this<TcpSession> {
 public:
  TcpSession(std::shared_ptr<TcpServer::Shared> shared, tcp::socket socket, std::string address)
      : address_(std::move(address)),
        peer_(PeerOf(socket)),
        shared_(std::move(shared)),
        service_(shared_->service),
        limits_(shared_->limits),
        executor_(socket.get_executor()),
        socket_(std::move(socket)),
        timer_(executor_),
        write_timer_(executor_),
        in_(kj::heapArray<capnp::word>(kReceiveBufferBytes / kWordBytes)) {}
  ~TcpSession() {
    // Only when the io_context was destroyed with this session's handlers still queued.
    if (!closed_) service_.RemoveConnection(address_);
  }

  void Start() {
    asio::post(executor_, [self = shared_from_this()] {
      self->ArmTimer(std::chrono::seconds(self->limits_.tcp_hello_timeout_seconds),
                     [](TcpSession& session) {
        if (session.principal_) return;
        session.SendError(0, "unauthenticated",
                          "no hello within " +
                              std::to_string(session.limits_.tcp_hello_timeout_seconds) +
                              " s (tcp_hello_timeout_seconds)");
        session.Drain();
      });
      self->ReadMore();
    });
  }
  void Shutdown() {
    asio::post(executor_, [self = shared_from_this()] { self->Drain(kServerStopping); });
  }
  void PostHeadMoved() {
    asio::post(executor_, [self = shared_from_this()] { self->OnHeadMoved(); });
  }

 private:
  struct Subscription {
    uint64_t id = 0;
    uint64_t next = 1;  // the next position to examine
    uint64_t credit = 0;
    std::string stream_prefix;
    std::vector<std::string> types;
    uint64_t skipped = 0;       // examined and filtered out since the last frame
    std::string last_hash;      // raw hash of the event at next - 1 ("" before any was examined)
    bool frame_queued = false;  // a frame of it is not yet on the socket
    bool waiting_head = false;
    bool without_credit = false;                        // counted in subscriptions_without_credit
    std::shared_ptr<TcpServer::Shared::Cursor> cursor;  // registered in shared_->cursors
  };

  // One append request: its events are appended one stream-chain at a time.
  struct PendingAppend {
    uint64_t id = 0;
    std::vector<domain::ClientEvent> events;
    std::vector<std::string> streams;
    std::vector<size_t> next_in_stream;  // the next event of the same stream, or npos
    std::vector<std::variant<std::monostate, ingest::IngestOutcome, WireError>> results;
    size_t remaining = 0;
  };
  static constexpr size_t kNone = static_cast<size_t>(-1);

  // The answer to one event of an append, on its way from the completer thread to the strand.
  struct Answered {
    std::shared_ptr<PendingAppend> pending;
    size_t index = 0;
    AppendAnswer answer;
  };

  // ---- reading -----------------------------------------------------------------------------

  kj::byte* InBytes() { return reinterpret_cast<kj::byte*>(in_.begin()); }
  size_t InCapacity() const { return in_.size() * kWordBytes; }

  // Makes room after in_end_ for at least `frame_bytes` from in_begin_ (frames start on words).
  // Room beyond kReceiveBufferBytes comes from the door's input_bytes_max: false when that is used
  // up (the buffer then holds what it held, moved to its start).
  bool ReserveReceive(size_t frame_bytes) {
    if (in_begin_ > 0 && (in_end_ == InCapacity() || in_begin_ + frame_bytes > InCapacity())) {
      std::memmove(InBytes(), InBytes() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    size_t wanted = std::max(frame_bytes, in_end_ + kWordBytes);
    if (wanted > InCapacity()) {
      size_t words = (wanted + kWordBytes - 1) / kWordBytes;
      const size_t extra = words * kWordBytes - kReceiveBufferBytes;
      if (!shared_->TryAddInput(extra - in_extra_)) return false;
      auto bigger = kj::heapArray<capnp::word>(words);
      std::memcpy(bigger.begin(), InBytes(), in_end_);
      in_ = kj::mv(bigger);
      in_extra_ = extra;
    }
    return true;
  }

  void ReleaseReceive() {
    shared_->input_bytes.fetch_sub(in_extra_);
    in_extra_ = 0;
  }

  // A frame that would take the door's receive buffers past input_bytes_max: the connection is
  // told so and closes (the rest of the frame is read and dropped), instead of the server holding
  // whatever many clients start sending and never finish.
  void RefuseInput() {
    Log(LogLevel::kWarning, "tcp input budget used up: closing",
        {{"peer", peer_},
         {"principal", principal_ ? principal_->id : std::string()},
         {"input_bytes_max", limits_.input_bytes_max}});
    SendBusy(0, "input_bytes_max",
             "the requests being received on all connections reached input_bytes_max; this "
             "connection closes: send the request again later");
    Drain();
  }

  void ReadMore() {
    if (reading_ || closed_ || peer_closed_) return;
    if (draining_) {
      in_begin_ = in_end_ = 0;  // input after the end is read only to be discarded
    } else if (read_paused_) {
      return;
    }
    if (in_end_ == InCapacity() && !ReserveReceive(in_end_ - in_begin_ + kWordBytes)) {
      RefuseInput();
      return;
    }
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(InBytes() + in_end_, InCapacity() - in_end_),
        [self = shared_from_this()](boost::system::error_code error, size_t bytes) {
          self->OnRead(error, bytes);
        });
  }

  void OnRead(boost::system::error_code error, size_t bytes) {
    reading_ = false;
    if (closed_) return;
    if (error) {
      peer_closed_ = true;
      if (error != asio::error::eof && error != asio::error::operation_aborted) {
        LogConnectionError("tcp read failed", error);
      }
      // End of input: answer what is in flight, then close. Anything else: the peer is gone.
      if (error == asio::error::eof && !draining_) {
        Drain();
      } else {
        Close();
      }
      return;
    }
    if (draining_) {
      ReadMore();
      return;
    }
    in_end_ += bytes;
    ProcessFrames();
  }

  void ProcessFrames() {
    while (!draining_ && !closed_) {
      if (out_bytes_ + held_bytes_ > limits_.frame_bytes_max) {
        read_paused_ = true;  // resumed by OnWritten
        return;
      }
      FramePrefix prefix =
          protocol::ParseFramePrefix(InBytes() + in_begin_, in_end_ - in_begin_,
                                     limits_.frame_bytes_max, kTcpFrameSegmentsMax);
      if (prefix.state == FramePrefix::State::kIncomplete) {
        if (!principal_ && prefix.bytes > kReceiveBufferBytes) {
          // A hello is small: a larger first frame would take room from input_bytes_max for
          // someone who has not said who they are.
          SendError(0, "unauthenticated",
                    "the first frame must be a hello (at most " +
                        std::to_string(kReceiveBufferBytes) + " bytes), not a frame of " +
                        std::to_string(prefix.bytes) + " bytes");
          Drain();
          return;
        }
        if (prefix.bytes > InCapacity() - in_begin_ && !ReserveReceive(prefix.bytes)) {
          RefuseInput();
          return;
        }
        break;
      }
      if (prefix.state != FramePrefix::State::kComplete) {
        bool too_large = prefix.state == FramePrefix::State::kTooLarge;
        SendError(0, "invalid",
                  too_large ? "frame of " + std::to_string(prefix.bytes) +
                                  " bytes is larger than frame_bytes_max (" +
                                  std::to_string(limits_.frame_bytes_max) + ")"
                            : "frame has too many segments",
                  "", too_large ? "frame_too_large" : "malformed_frame");
        Drain();
        return;
      }
      HandleFrame(Words(reinterpret_cast<const capnp::word*>(InBytes() + in_begin_),
                        prefix.bytes / kWordBytes));
      in_begin_ += prefix.bytes;
    }
    if (in_begin_ == in_end_) {
      in_begin_ = in_end_ = 0;
      if (InCapacity() > kReceiveBufferBytes) {
        in_ = kj::heapArray<capnp::word>(kReceiveBufferBytes / kWordBytes);
        ReleaseReceive();
      }
    }
    ReadMore();
  }

  void HandleFrame(Words words) {
    shared_->frames_received.fetch_add(1, std::memory_order_relaxed);
    last_activity_ = std::chrono::steady_clock::now();
    try {
      capnp::FlatArrayMessageReader reader(words);
      HandleRequest(reader.getRoot<protocol::Request>());
    } catch (const kj::Exception& e) {
      // Every field is read before anything is done, so a malformed frame changes nothing.
      SendError(0, "invalid", std::string("malformed frame: ") + e.getDescription().cStr(), "",
                "malformed_frame");
      Drain();
    }
  }

  void HandleRequest(protocol::Request::Reader request) {
    const uint64_t id = request.getId();
    if (!principal_) {
      if (request.which() != protocol::Request::HELLO) {
        SendError(id, "unauthenticated", "the first request must be hello with a bearer token");
        Drain();
        return;
      }
      HandleHello(id, request.getHello());
      return;
    }
    if (!StillAuthenticated(id)) return;
    switch (request.which()) {
      case protocol::Request::HELLO:
        SendError(id, "invalid", "already authenticated", "hello");
        return;
      case protocol::Request::APPEND:
        HandleAppend(id, request.getAppend());
        return;
      case protocol::Request::READ:
        HandleRead(id, request.getRead());
        return;
      case protocol::Request::SUBSCRIBE:
        HandleSubscribe(id, request.getSubscribe());
        return;
      case protocol::Request::CREDIT:
        HandleCredit(id, request.getCredit());
        return;
      case protocol::Request::CANCEL:
        HandleCancel(id, request.getCancel());
        return;
    }
    SendError(id, "invalid", "unknown request (newer protocol?)");
  }

  // Whether the connection's token is still valid. The tokens are read again on SIGHUP (a token
  // revoked, or given another role or org): then the token is checked anew, and a connection
  // whose token no longer stands for its principal is told so (`id`: the request being refused, 0
  // for none), its subscriptions end and it closes.
  bool StillAuthenticated(uint64_t id) {
    const uint64_t generation = service_.tokens_generation();
    if (generation == tokens_generation_) return true;
    if (service_.Authenticate(token_) == principal_) {
      tokens_generation_ = generation;
      return true;
    }
    SendError(
        id, "unauthenticated",
        "the token of this connection was revoked or changed; connect again with a valid one");
    Drain(kTokenRevoked);
    return false;
  }

  void HandleHello(uint64_t id, protocol::Hello::Reader hello) {
    std::string_view token = View(hello.getToken());
    std::optional<ingest::Principal> principal;
    if (!token.empty() && token.size() <= ingest::kTokenBytesMax) {
      principal = service_.Authenticate(token);
    }
    if (!principal) {
      SendError(id, "unauthenticated", token.empty() ? "no bearer token" : "unknown token");
      Drain();
      return;
    }
    principal_ = std::move(principal);
    token_ = token;
    tokens_generation_ = service_.tokens_generation();
    ArmIdleTimer(std::chrono::seconds(limits_.tcp_idle_timeout_seconds));
    Reply reply(id);
    auto welcome = reply.root.initWelcome();
    auto who = welcome.initPrincipal();
    who.setId(principal_->id);
    who.setRole(std::string(ingest::RoleName(principal_->role)));
    who.setOrg(principal_->org);
    welcome.setProtocolVersion(protocol::PROTOCOL_VERSION);
    welcome.setFrameBytesMax(limits_.frame_bytes_max);
    welcome.setBatchEventsMax(static_cast<uint32_t>(limits_.batch_events_max));
    welcome.setConnectionInflightMax(static_cast<uint32_t>(limits_.connection_inflight_max));
    welcome.setReadEventsMax(static_cast<uint32_t>(limits_.read_events_max));
    welcome.setCreditMax(limits_.subscription_credit_max);
    Send(std::move(reply.message));
  }

  // ---- appends -----------------------------------------------------------------------------

  void HandleAppend(uint64_t id, protocol::Append::Reader append) {
    auto texts = append.getJson();
    if (texts.size() == 0 || texts.size() > limits_.batch_events_max) {
      SendError(id, "invalid",
                "an append carries 1 to " + std::to_string(limits_.batch_events_max) +
                    " events, not " + std::to_string(texts.size()),
                "json", "batch_events_max");
      return;
    }
    if (inflight_ >= limits_.connection_inflight_max) {
      SendBusy(id, "connection_inflight_max", "too many requests in flight on this connection");
      return;
    }
    auto pending = std::make_shared<PendingAppend>();
    pending->id = id;
    const size_t count = texts.size();
    pending->events.resize(count);
    pending->streams.resize(count);
    pending->next_in_stream.assign(count, kNone);
    pending->results.resize(count);
    // Events of one stream are chained; a request of one event (the common case) needs no map.
    std::unordered_map<std::string, size_t> last_of_stream;
    std::vector<size_t> heads;
    heads.reserve(count);
    std::optional<size_t> first_bad;  // the first event that does not decode
    for (size_t i = 0; i < count; ++i) {
      auto decoded = domain::DecodeClientEvent(View(texts[static_cast<unsigned>(i)]));
      if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
        service_.ReportRejectedInput(*error);
        pending->results[i] = FromServiceError(FromDecodeError(*error));
        if (!first_bad) first_bad = i;
        continue;
      }
      pending->events[i] = std::move(std::get<domain::ClientEvent>(decoded));
      pending->streams[i] = pending->events[i].stream;
      ++pending->remaining;
      if (count == 1) {
        heads.push_back(i);
        continue;
      }
      auto [it, first] = last_of_stream.try_emplace(pending->streams[i], i);
      if (first) {
        heads.push_back(i);
      } else {
        pending->next_in_stream[it->second] = i;
        it->second = i;
      }
    }
    if (first_bad) {
      // Bad input changes nothing: a batch holding an event that does not decode is refused whole.
      for (size_t i = 0; i < count; ++i) {
        if (!pending->streams[i].empty()) {
          pending->results[i] = FromServiceError(NotAppendedWithBadBatch(*first_bad));
        }
      }
      pending->remaining = 0;
    }
    if (pending->remaining == 0) {
      SendAppended(*pending);
      return;
    }
    // Taken whole or refused whole by appends_inflight_max: nothing of the batch half-stored.
    if (auto busy = service_.AdmitBatch(pending->remaining)) {
      for (size_t i = 0; i < count; ++i) pending->results[i] = FromServiceError(*busy);
      SendAppended(*pending);
      return;
    }
    ++inflight_;
    ++appends_pending_;
    for (size_t index : heads) StartAppend(pending, index);
  }

  void StartAppend(const std::shared_ptr<PendingAppend>& pending, size_t index) {
    // The answer may come on the ledger's completer thread (or at once, on this one): either way
    // it is handled on the strand.
    service_.AppendAsync(
        *principal_, std::move(pending->events[index]),
        [self = shared_from_this(), pending, index](AppendAnswer answer) {
          self->HandOver(Answered{pending, index, std::move(answer)});
        },
        /*admitted=*/true);
  }

  // Any thread. The completer answers a whole group commit at once, often several appends of one
  // connection (pipelining): they are queued here and handled by one post to the strand, not one
  // post each.
  void HandOver(Answered answered) {
    bool first = false;
    {
      std::lock_guard lock(answered_mutex_);
      first = answered_.empty();
      answered_.push_back(std::move(answered));
    }
    if (first) asio::post(executor_, [self = shared_from_this()] { self->OnAnswered(); });
  }

  void OnAnswered() {
    std::vector<Answered> answered;
    {
      std::lock_guard lock(answered_mutex_);
      answered.swap(answered_);
    }
    // The answers go out together, in as few socket writes as the frames allow.
    corked_ = true;
    for (Answered& item : answered) OnAppended(item.pending, item.index, std::move(item.answer));
    corked_ = false;
    WriteMore();
  }

  void OnAppended(const std::shared_ptr<PendingAppend>& pending, size_t index,
                  AppendAnswer answer) {
    if (auto* outcome = std::get_if<ingest::IngestOutcome>(&answer)) {
      pending->results[index] = std::move(*outcome);
    } else {
      pending->results[index] = FromServiceError(std::get<ServiceError>(answer));
    }
    if (pending->next_in_stream[index] != kNone) {
      StartAppend(pending, pending->next_in_stream[index]);
    }
    if (--pending->remaining > 0) return;
    --inflight_;
    --appends_pending_;
    SendAppended(*pending);
    CloseIfDrained();
  }

  void SendAppended(const PendingAppend& pending) {
    Reply reply(pending.id,
                kReplyFirstSegmentWords +
                    kAppendedWordsPerEvent * static_cast<unsigned>(pending.results.size()));
    auto list = reply.root.initAppended(static_cast<unsigned>(pending.results.size()));
    for (size_t i = 0; i < pending.results.size(); ++i) {
      auto item = list[static_cast<unsigned>(i)];
      if (const auto* error = std::get_if<WireError>(&pending.results[i])) {
        FillError(item.initError(), *error);
        continue;
      }
      const auto& outcome = std::get<ingest::IngestOutcome>(pending.results[i]);
      auto ok = item.initOk();
      ok.setPosition(outcome.appended.position);
      ok.setStream(pending.streams[i]);
      ok.setVersion(outcome.appended.version);
      ok.setDuplicate(outcome.appended.duplicate);
      const auto count = static_cast<unsigned>(outcome.violations.size());
      auto violations = ok.initViolations(count);
      auto messages = ok.initViolationMessages(count);
      for (unsigned v = 0; v < count; ++v) {
        violations.set(v, outcome.violations[v].rule);
        messages.set(v, outcome.violations[v].message);
      }
      if (!outcome.settles.empty()) {
        auto settles = ok.initSettles(static_cast<unsigned>(outcome.settles.size()));
        for (unsigned s = 0; s < settles.size(); ++s) {
          settles[s].setRule(outcome.settles[s].rule);
          settles[s].setPosition(outcome.settles[s].position);
          settles[s].setMessage(outcome.settles[s].message);
        }
      }
    }
    Send(std::move(reply.message));
  }

  // ---- reads -------------------------------------------------------------------------------

  void HandleRead(uint64_t id, protocol::Read::Reader read) {
    const bool log = read.which() == protocol::Read::LOG;
    if (!log && (read.getStream().getStream().size() == 0 ||
                 read.getStream().getStream().size() > ledger::kStreamIdBytesMax)) {
      SendError(id, "invalid", "stream must be 1 to 200 bytes", "stream", "bad_stream");
      return;
    }
    // The whole log: its readers. One stream: also an application's own org (CheckStreamRead).
    auto refused = log ? service_.CheckAccess(*principal_, ingest::Access::kReadLog)
                       : service_.CheckStreamRead(*principal_, read.getStream().getStream());
    if (refused) {
      SendError(id, FromServiceError(*refused));
      return;
    }
    auto page_size = [&](uint32_t limit) {
      return limit == 0 ? limits_.read_events_max
                        : std::min<size_t>(limit, limits_.read_events_max);
    };
    if (shared_->OutputFull()) {
      SendBusy(id, "output_bytes_max",
               "the answers queued for all connections reached output_bytes_max; retry later");
      return;
    }
    const std::string approved_by = read.getApprovedBy();
    if (read.which() == protocol::Read::LOG) {
      ReadLog(id, read.getLog().getFromPosition(), View(read.getLog().getAfterHash()),
              page_size(read.getLog().getLimit()), approved_by);
      return;
    }
    auto stream = read.getStream();
    ReadStream(id, stream.getStream(), stream.getFromVersion(), View(stream.getAfterHash()),
               page_size(stream.getLimit()), approved_by);
  }

  void ReadLog(uint64_t id, uint64_t from_position, std::string_view after_hash, size_t limit,
               const std::string& approved_by) {
    const uint64_t from = std::max<uint64_t>(from_position, 1);
    auto resume = CheckResumePoint(service_.ledger(), from, after_hash, kLogResumeFields);
    if (auto* refused = std::get_if<ServiceError>(&resume)) {
      SendError(id, FromServiceError(*refused));
      return;
    }
    uint64_t next = from;
    bool personal = false;
    std::string last_hash = std::get<std::string>(std::move(resume));  // at next - 1
    EventsFrame frame(limits_.frame_bytes_max, limit);
    kj::Array<capnp::word> fallback;
    ledger::Status status = service_.ledger().Scan(next, [&](const ledger::EventView& view) {
      if (!frame.Add(StoredEnvelopeWords(view.envelope(), fallback))) return false;
      personal = personal || Service::HoldsPersonalData(view.stream());
      next = view.position() + 1;
      last_hash.assign(View(view.envelope().getHash()));
      return !frame.full();
    });
    if (!status.ok()) {
      SendError(id, FromServiceError(FromStatus(status)));
      return;
    }
    if (!personal) {
      Send(frame.Finish(id, next, last_hash));
      return;
    }
    SendOnceRecorded(id, Service::LogReadWhat(from, next - 1), approved_by,
                     frame.Finish(id, next, last_hash));
  }

  void ReadStream(uint64_t id, const std::string& stream, uint64_t from_version,
                  std::string_view after_hash, size_t limit, const std::string& approved_by) {
    auto resume = CheckStreamResumePoint(service_.ledger(), stream, from_version, after_hash,
                                         kStreamResumeFields);
    if (auto* refused = std::get_if<ServiceError>(&resume)) {
      SendError(id, FromServiceError(*refused));
      return;
    }
    uint64_t next = from_version;
    std::string last_hash = std::get<std::string>(std::move(resume));  // of version next - 1
    EventsFrame frame(limits_.frame_bytes_max, limit);
    kj::Array<capnp::word> fallback;
    // The stored envelopes as they are, like read.log (re-encoding them could drop a field).
    ledger::Status status = service_.ledger().ScanStream(
        stream, from_version, limit, [&](const ledger::EventView& view) {
          if (!frame.Add(StoredEnvelopeWords(view.envelope(), fallback))) return false;
          next = view.version() + 1;
          last_hash.assign(View(view.envelope().getHash()));
          return true;
        });
    if (!status.ok()) {
      SendError(id, FromServiceError(FromStatus(status)));
      return;
    }
    if (next > from_version && Service::HoldsPersonalData(stream)) {
      SendOnceRecorded(id, stream, approved_by, frame.Finish(id, next, last_hash));
      return;
    }
    Send(frame.Finish(id, next, last_hash));
  }

  // A read of personal data is answered only once it is recorded (a durable append), and refused
  // when it cannot be. The record is appended without blocking this I/O thread: the answer waits
  // as an append does, counted in flight.
  void SendOnceRecorded(uint64_t id, std::string_view what, const std::string& approved_by,
                        std::unique_ptr<capnp::MallocMessageBuilder> answer) {
    if (inflight_ >= limits_.connection_inflight_max) {
      SendBusy(id, "connection_inflight_max", "too many requests in flight on this connection");
      return;
    }
    ++inflight_;
    ++appends_pending_;
    // A held answer counts as output: reading pauses past frame_bytes_max of both together, so
    // a client pipelining such reads cannot make the server hold answers without bound.
    const size_t bytes = capnp::computeSerializedSizeInWords(*answer) * sizeof(capnp::word);
    held_bytes_ += bytes;
    shared_->AddOutput(bytes, false);
    // Shared: the callback is a std::function, which must be copyable.
    auto pending =
        std::make_shared<std::unique_ptr<capnp::MallocMessageBuilder>>(std::move(answer));
    service_.RecordPersonalDataReadAsync(
        *principal_, what, approved_by,
        [self = shared_from_this(), id, pending, bytes](std::optional<ServiceError> refusal) {
          asio::post(self->executor_,
                     [self, id, pending, bytes, refusal = std::move(refusal)]() mutable {
                       --self->inflight_;
                       --self->appends_pending_;
                       self->held_bytes_ -= bytes;
                       self->shared_->RemoveOutput(bytes, false);
                       if (refusal) {
                         self->SendError(id, FromServiceError(*refusal));
                       } else {
                         self->Send(std::move(*pending));
                       }
                       self->CloseIfDrained();
                     });
        });
  }

  // True, with the refusal sent, when the read of personal data could not be recorded (then it
  // must not be answered).
  bool Refused(uint64_t id, const std::optional<ServiceError>& refusal) {
    if (!refusal) return false;
    SendError(id, FromServiceError(*refusal));
    return true;
  }

  // ---- subscriptions -----------------------------------------------------------------------

  void HandleSubscribe(uint64_t id, protocol::Subscribe::Reader request) {
    if (auto refused = service_.CheckAccess(*principal_, ingest::Access::kSubscribe)) {
      SendError(id, FromServiceError(*refused));
      return;
    }
    Subscription subscription;
    subscription.id = id;
    subscription.next = std::max<uint64_t>(request.getFromPosition(), 1);
    auto resume = CheckResumePoint(service_.ledger(), subscription.next,
                                   View(request.getAfterHash()), kLogResumeFields);
    if (auto* refused = std::get_if<ServiceError>(&resume)) {
      SendError(id, FromServiceError(*refused));
      return;
    }
    subscription.last_hash = std::get<std::string>(std::move(resume));
    subscription.credit = std::min(request.getCredit(), limits_.subscription_credit_max);
    subscription.stream_prefix = request.getStreamPrefix();
    if (subscription.stream_prefix.size() > ledger::kStreamIdBytesMax) {
      SendError(id, "invalid", "streamPrefix is longer than a stream id", "streamPrefix",
                "bad_value");
      return;
    }
    auto types = request.getTypes();
    if (types.size() > kSubscriptionTypesMax) {
      SendError(id, "invalid", "too many types", "types", "bad_value");
      return;
    }
    for (auto type : types) {
      subscription.types.emplace_back(View(type));
      // Known types only: a misspelt one would match nothing, silently, and the names go into
      // the reader's record of the subscription.
      if (!domain::IsKnownType(subscription.types.back())) {
        SendError(id, "invalid", "unknown event type " + subscription.types.back(), "types",
                  "bad_value");
        return;
      }
    }
    if (id == 0 || subscriptions_.count(id) > 0 || starting_.count(id) > 0) {
      SendError(id, "invalid", "subscription id is 0 or already in use", "id", "bad_value");
      return;
    }
    if (inflight_ >= limits_.connection_inflight_max) {
      SendBusy(id, "connection_inflight_max", "too many requests in flight on this connection");
      return;
    }
    if (const char* limit = service_.TryAddSubscriber(address_)) {
      SendBusy(id, limit,
               std::string_view(limit) == "subscribers_max"
                   ? "too many subscriptions"
                   : "too many subscriptions from this client address");
      return;
    }
    ++inflight_;
    if (!Service::MayDeliverPersonalData(subscription.stream_prefix, subscription.types)) {
      StartSubscription(std::move(subscription));
      return;
    }
    // It may deliver personal data: it starts once that is recorded (a durable append, made
    // without blocking this I/O thread; counted as pending so that a drain waits for it).
    starting_.insert(id);
    ++appends_pending_;
    auto starting = std::make_shared<Subscription>(std::move(subscription));
    service_.RecordPersonalDataReadAsync(
        *principal_,
        Service::SubscriptionWhat(starting->next, starting->stream_prefix, starting->types),
        request.getApprovedBy().cStr(),
        [self = shared_from_this(), starting](std::optional<ServiceError> refusal) {
          asio::post(self->executor_, [self, starting, refusal = std::move(refusal)]() mutable {
            self->starting_.erase(starting->id);
            --self->appends_pending_;
            // Stopped meanwhile: it is not started (a drain ends subscriptions), though its
            // record stays — a conservative record of an access that was then refused.
            if (refusal || self->draining_ || self->closed_) {
              --self->inflight_;
              self->service_.RemoveSubscriber(self->address_);
              if (refusal) {
                self->SendError(starting->id, FromServiceError(*refusal));
              } else if (!self->closed_) {
                self->SendError(starting->id, "shutdown",
                                "ledgerd is shutting down; subscribe to the restarted server");
              }
            } else {
              self->StartSubscription(std::move(*starting));
            }
            self->CloseIfDrained();
          });
        });
  }

  // REQUIRES: counted in inflight_ and in the service's subscribers.
  void StartSubscription(Subscription subscription) {
    const uint64_t id = subscription.id;
    shared_->subscriptions.fetch_add(1);
    subscription.cursor = std::make_shared<TcpServer::Shared::Cursor>();
    subscription.cursor->subscriber = principal_->id;
    subscription.cursor->next.store(subscription.next);
    {
      std::lock_guard lock(shared_->cursors_mutex);
      shared_->cursors.emplace(subscription.cursor.get(), subscription.cursor);
    }
    Reply reply(id);
    auto subscribed = reply.root.initSubscribed();
    subscribed.setHead(service_.ledger().Head());
    subscribed.setLastHash(AsData(subscription.last_hash));  // to resume with until a frame
    subscriptions_.emplace(id, std::move(subscription));
    Send(std::move(reply.message));
    Pump(id);
  }

  void HandleCredit(uint64_t id, protocol::Credit::Reader credit) {
    auto it = subscriptions_.find(credit.getSubscription());
    if (it == subscriptions_.end()) {
      SendError(id, "not_found", "no such subscription", "subscription");
      return;
    }
    Subscription& subscription = it->second;
    subscription.credit = std::min<uint64_t>(subscription.credit + credit.getEvents(),
                                             limits_.subscription_credit_max);
    if (subscription.credit > 0) SetWithoutCredit(subscription, false);
    Pump(subscription.id);
  }

  void HandleCancel(uint64_t id, protocol::Cancel::Reader cancel) {
    const uint64_t subscription = cancel.getSubscription();
    if (subscriptions_.count(subscription) == 0) {
      SendError(id, "not_found", "no such subscription", "subscription");
      return;
    }
    EndSubscription(subscription);
    Reply reply(subscription);
    reply.root.setEnded();
    Send(std::move(reply.message));
  }

  void SetWithoutCredit(Subscription& subscription, bool without) {
    if (subscription.without_credit == without) return;
    subscription.without_credit = without;
    if (without) {
      shared_->subscriptions_without_credit.fetch_add(1);
    } else {
      shared_->subscriptions_without_credit.fetch_sub(1);
    }
  }

  void EndSubscription(uint64_t id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    SetWithoutCredit(it->second, false);
    if (it->second.cursor) {
      std::lock_guard lock(shared_->cursors_mutex);
      shared_->cursors.erase(it->second.cursor.get());
    }
    subscriptions_.erase(it);
    --inflight_;
    shared_->subscriptions.fetch_sub(1);
    service_.RemoveSubscriber(address_);
  }

  bool Matches(const Subscription& subscription, const ledger::EventView& view) const {
    if (!view.stream().starts_with(subscription.stream_prefix)) return false;
    if (subscription.types.empty()) return true;
    std::string_view type = view.type();
    return std::find(subscription.types.begin(), subscription.types.end(), type) !=
           subscription.types.end();
  }

  // Sends the subscription's next frame when it may: credit left, no frame of it still queued,
  // and something to say. Reads at most one frame's events, or subscription_checkpoint_every
  // filtered-out events, per call.
  void Pump(uint64_t id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end() || draining_ || closed_) return;
    if (!StillAuthenticated(0)) return;
    Subscription& subscription = it->second;
    subscription.waiting_head = false;
    if (subscription.frame_queued) return;
    if (subscription.credit == 0) {
      SetWithoutCredit(subscription, true);
      return;
    }
    if (subscription.next > service_.ledger().Head()) {
      WaitForHead(subscription);
      return;
    }
    if (shared_->OutputFull()) {
      WaitForHead(subscription);  // woken when the output queue shrinks (RemoveOutput)
      return;
    }
    size_t events_max = static_cast<size_t>(
        std::min<uint64_t>(subscription.credit, limits_.subscription_frame_events_max));
    EventsFrame frame(limits_.frame_bytes_max, events_max);
    uint64_t examined = subscription.next - 1;
    kj::Array<capnp::word> fallback;
    ledger::Status status =
        service_.ledger().Scan(subscription.next, [&](const ledger::EventView& view) {
          const bool matched = Matches(subscription, view);
          if (matched && !frame.Add(StoredEnvelopeWords(view.envelope(), fallback))) return false;
          examined = view.position();
          subscription.last_hash.assign(View(view.envelope().getHash()));
          return matched ? !frame.full()
                         : ++subscription.skipped < limits_.subscription_checkpoint_every;
        });
    if (!status.ok()) {
      SendError(id, FromServiceError(FromStatus(status)));
      EndSubscription(id);
      return;
    }
    subscription.next = examined + 1;
    subscription.cursor->next.store(subscription.next, std::memory_order_relaxed);
    SendSubscriptionFrame(subscription, frame);
  }

  void SendSubscriptionFrame(Subscription& subscription, EventsFrame& frame) {
    if (frame.count() > 0) {
      subscription.credit -= frame.count();
      subscription.skipped = 0;
      subscription.frame_queued = true;
      shared_->subscription_events_sent.fetch_add(frame.count(), std::memory_order_relaxed);
      Send(frame.Finish(subscription.id, subscription.next, subscription.last_hash),
           subscription.id);
      return;
    }
    // After subscription_checkpoint_every skipped events, and when the scan reached the head
    // having skipped some: without it a sparse subscriber could not tell it has caught up (nor
    // save its progress past its last match).
    if (subscription.skipped > 0) {
      subscription.skipped = 0;
      subscription.frame_queued = true;
      shared_->checkpoints_sent.fetch_add(1, std::memory_order_relaxed);
      Reply reply(subscription.id);
      auto checkpoint = reply.root.initCheckpoint();
      checkpoint.setPosition(subscription.next - 1);
      checkpoint.setHash(AsData(subscription.last_hash));
      Send(std::move(reply.message), subscription.id);
      return;
    }
    // Everything up to the head was examined: wait for the next commit.
    WaitForHead(subscription);
  }

  void WaitForHead(Subscription& subscription) {
    subscription.waiting_head = true;
    if (!waiting_registered_) {
      waiting_registered_ = true;
      shared_->Wait(shared_from_this());
    }
    // A commit (or room in the output queue) between the caller's look and the registration
    // would not wake us.
    if (service_.ledger().Head() >= subscription.next && !shared_->OutputFull()) {
      asio::post(executor_, [self = shared_from_this(), id = subscription.id] { self->Pump(id); });
    }
  }

  void OnHeadMoved() {
    waiting_registered_ = false;
    std::vector<uint64_t> waiting;
    for (const auto& [id, subscription] : subscriptions_) {
      if (subscription.waiting_head) waiting.push_back(id);
    }
    for (uint64_t id : waiting) Pump(id);
  }

  // ---- writing -----------------------------------------------------------------------------

  void Send(std::unique_ptr<capnp::MallocMessageBuilder> message, uint64_t subscription = 0) {
    if (closed_) return;
    OutFrame frame = Seal(std::move(message), subscription);
    out_bytes_ += frame.bytes;
    if (subscription != 0) out_subscription_bytes_ += frame.bytes;
    shared_->AddOutput(frame.bytes, subscription != 0);
    shared_->frames_sent.fetch_add(1, std::memory_order_relaxed);
    out_.push_back(std::move(frame));
    if (!corked_) WriteMore();
  }

  void SendError(uint64_t id, std::string code, std::string message, std::string field = "",
                 std::string rule = "") {
    SendError(id, WireError{std::move(code), std::move(message), std::move(field), std::move(rule),
                            std::nullopt});
  }
  void SendError(uint64_t id, const WireError& error) {
    // What ends a connection — a refused or revoked token, no hello, a malformed or oversized
    // frame — is logged with the peer, so a security officer can see who tried.
    if (id == 0 || error.code == "unauthenticated") {
      Log(LogLevel::kInfo, "tcp connection refused",
          {{"peer", peer_},
           {"principal", principal_ ? principal_->id : std::string()},
           {"code", error.code},
           {"rule", error.rule},
           {"message", error.message}});
    }
    Reply reply(id);
    FillError(reply.root.initError(), error);
    Send(std::move(reply.message));
  }

  void SendBusy(uint64_t id, const char* limit, const char* why) {
    shared_->busy_sent.fetch_add(1, std::memory_order_relaxed);
    Reply reply(id);
    auto busy = reply.root.initBusy();
    busy.setLimit(limit);
    busy.setMessage(why);
    Send(std::move(reply.message));
  }

  void WriteMore() {
    if (writing_frames_ > 0 || out_.empty() || closed_) return;
    write_buffers_.clear();
    writing_frames_ = std::min(out_.size(), kWriteFramesMax);
    for (size_t i = 0; i < writing_frames_; ++i) {
      AddBuffers(out_[i], write_buffers_);
    }
    asio::async_write(socket_, write_buffers_,
                      [self = shared_from_this()](boost::system::error_code error, size_t) {
                        self->OnWritten(error);
                      });
    // A client that stops reading holds its queued answers (and the server's output budget):
    // not for longer than this.
    write_timer_.expires_after(std::chrono::seconds(limits_.tcp_write_timeout_seconds));
    write_timer_.async_wait([self = shared_from_this(),
                             write = ++writes_started_](boost::system::error_code error) {
      if (error || self->closed_ || self->writing_frames_ == 0 || write != self->writes_started_) {
        return;
      }
      Log(LogLevel::kWarning, "tcp write stalled: closing",
          {{"peer", self->peer_},
           {"principal", self->principal_ ? self->principal_->id : std::string()},
           {"queued_bytes", self->out_bytes_},
           {"seconds", self->limits_.tcp_write_timeout_seconds}});
      self->Close();
    });
  }

  // A connection that ends other than by the client closing it (reset, broken pipe, …). With
  // requests in flight their answers are lost: a warning operators should see; else information.
  void LogConnectionError(std::string_view what, const boost::system::error_code& error) const {
    Log(inflight_ > 0 ? LogLevel::kWarning : LogLevel::kInfo, what,
        {{"error", error.message()},
         {"peer", peer_},
         {"principal", principal_ ? principal_->id : std::string()},
         {"requests_in_flight", inflight_}});
  }

  void OnWritten(boost::system::error_code error) {
    const size_t written = writing_frames_;
    writing_frames_ = 0;
    write_timer_.cancel();
    if (closed_) {
      out_.clear();
      return;
    }
    if (error) {
      if (error != asio::error::operation_aborted) LogConnectionError("tcp write failed", error);
      Close();
      return;
    }
    last_activity_ = std::chrono::steady_clock::now();
    std::vector<uint64_t> pumps;
    for (size_t i = 0; i < written; ++i) {
      OutFrame& frame = out_.front();
      out_bytes_ -= frame.bytes;
      if (frame.subscription != 0) out_subscription_bytes_ -= frame.bytes;
      shared_->RemoveOutput(frame.bytes, frame.subscription != 0);
      if (frame.subscription != 0) {
        auto it = subscriptions_.find(frame.subscription);
        if (it != subscriptions_.end()) it->second.frame_queued = false;
        pumps.push_back(frame.subscription);
      }
      out_.pop_front();
    }
    for (uint64_t id : pumps) Pump(id);
    if (read_paused_ && out_bytes_ + held_bytes_ <= limits_.frame_bytes_max) {
      read_paused_ = false;
      ProcessFrames();
    }
    WriteMore();
    CloseIfDrained();
  }

  // ---- closing -----------------------------------------------------------------------------

  template <typename OnExpiry>
  void ArmTimer(std::chrono::steady_clock::duration after, OnExpiry on_expiry) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), on_expiry](boost::system::error_code error) {
      if (!error && !self->closed_) on_expiry(*self);
    });
  }

  // After hello, timer_ watches for an idle connection (Limits::tcp_idle_timeout_seconds): one
  // that received no request and wrote no answer for that long, with nothing in flight, is told
  // so with a busy frame (id 0) and closed. A live subscription is in flight: a subscriber waiting
  // for new events is never idle.
  void ArmIdleTimer(std::chrono::steady_clock::duration after) {
    ArmTimer(after, [](TcpSession& session) { session.OnIdleTimer(); });
  }
  void OnIdleTimer() {
    if (draining_) return;
    const std::chrono::seconds timeout(limits_.tcp_idle_timeout_seconds);
    const auto quiet = std::chrono::steady_clock::now() - last_activity_;
    const bool busy = inflight_ > 0 || appends_pending_ > 0 || !out_.empty() || writing_frames_ > 0;
    if (busy || quiet < timeout) {
      ArmIdleTimer(busy ? std::chrono::steady_clock::duration(timeout) : timeout - quiet);
      return;
    }
    Log(LogLevel::kInfo, "tcp connection idle: closing",
        {{"peer", peer_},
         {"principal", principal_ ? principal_->id : std::string()},
         {"seconds", limits_.tcp_idle_timeout_seconds}});
    Reply reply(0);
    auto busy_frame = reply.root.initBusy();
    busy_frame.setLimit("tcp_idle_timeout_seconds");
    busy_frame.setMessage("no request for " + std::to_string(limits_.tcp_idle_timeout_seconds) +
                          " s and nothing in flight: the connection is closed; connect again");
    Send(std::move(reply.message));
    Drain();
  }

  // Why a connection stops serving, as its subscriptions are told: the server stops, its token
  // was revoked, or the connection itself ends (the peer closed it, or sent a malformed frame).
  enum DrainReason { kConnectionEnding, kServerStopping, kTokenRevoked };

  // No more requests: end the subscriptions, answer the appends in flight, write what is queued,
  // then close (or after kTcpDrainTimeout, whatever the peer does).
  void Drain(DrainReason reason = kConnectionEnding) {
    if (draining_ || closed_) return;
    draining_ = true;
    // Each subscriber is told why its subscription ends, after the frames already queued for it,
    // and where to pick up.
    while (!subscriptions_.empty()) {
      const auto& [id, subscription] = *subscriptions_.begin();
      const std::string from = std::to_string(subscription.next) +
                               (subscription.last_hash.empty()
                                    ? std::string()
                                    : " (afterHash " + ledger::ToHex(subscription.last_hash) + ")");
      switch (reason) {
        case kServerStopping:
          SendError(id, "shutdown",
                    "ledgerd is shutting down; subscribe again from position " + from +
                        " once it is back");
          break;
        case kTokenRevoked:
          SendError(id, "unauthenticated",
                    "the token of this connection was revoked; with a valid one, subscribe "
                    "again from position " +
                        from);
          break;
        case kConnectionEnding:
          SendError(id, "invalid",
                    "the connection is closing; subscribe again from position " + from);
          break;
      }
      EndSubscription(id);
    }
    ArmTimer(kTcpDrainTimeout, [](TcpSession& session) { session.Close(); });
    CloseIfDrained();
  }

  void CloseIfDrained() {
    if (!draining_ || closed_ || appends_pending_ > 0 || !out_.empty() || writing_frames_ > 0) {
      return;
    }
    if (peer_closed_) {
      Close();
      return;
    }
    // Closing with unread input would reset the connection and could destroy the answers not yet
    // read by the peer; so say "no more" and read until the peer closes too.
    if (!sent_fin_) {
      sent_fin_ = true;
      boost::system::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      ArmTimer(kTcpLingerTimeout, [](TcpSession& session) { session.Close(); });
    }
    ReadMore();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    write_timer_.cancel();
    while (!subscriptions_.empty()) EndSubscription(subscriptions_.begin()->first);
    boost::system::error_code ignored;
    socket_.close(ignored);
    shared_->RemoveOutput(out_bytes_ - out_subscription_bytes_, false);
    shared_->RemoveOutput(out_subscription_bytes_, true);
    out_bytes_ = out_subscription_bytes_ = 0;
    ReleaseReceive();
    if (writing_frames_ == 0) out_.clear();  // else OnWritten clears, once the buffers are free
    shared_->connections.fetch_sub(1);
    service_.RemoveConnection(address_);
    shared_->Forget(this);
  }

  const std::string address_;  // Service::AddressKey of the peer, as admitted
  const std::string peer_;     // address:port of the peer, for the log
  const std::shared_ptr<TcpServer::Shared> shared_;
  Service& service_;
  const Limits& limits_;
  const asio::any_io_executor executor_;  // the connection's strand
  tcp::socket socket_;
  asio::steady_timer timer_;  // hello timeout, then idle timeout, then drain timeout
  // When the last request was received or the last answer written (for the idle timeout).
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  asio::steady_timer write_timer_;  // tcp_write_timeout_seconds of the write in progress
  uint64_t writes_started_ = 0;     // tells the write a write_timer_ expiry was armed for

  std::optional<ingest::Principal> principal_;
  std::string token_;               // the hello's, to check again when the tokens change
  uint64_t tokens_generation_ = 0;  // Service::tokens_generation() when it was last checked
  size_t inflight_ = 0;             // appends and recorded reads in flight + live subscriptions
  size_t appends_pending_ = 0;      // appends, and reads waiting for their record, not yet answered
  std::map<uint64_t, Subscription> subscriptions_;
  bool waiting_registered_ = false;

  kj::Array<capnp::word> in_;  // received bytes; frames start on word boundaries
  size_t in_extra_ = 0;        // of in_'s bytes, those beyond kReceiveBufferBytes (TryAddInput)
  size_t in_begin_ = 0;        // first byte not yet handled
  size_t in_end_ = 0;          // end of the received bytes
  bool reading_ = false;
  bool read_paused_ = false;  // too many answers wait for the socket
  bool peer_closed_ = false;
  bool draining_ = false;
  bool sent_fin_ = false;
  bool closed_ = false;

  std::mutex answered_mutex_;
  std::vector<Answered> answered_;  // guarded by answered_mutex_; drained by OnAnswered

  std::deque<OutFrame> out_;
  bool corked_ = false;  // OnAnswered is queueing frames: it writes them when done
  size_t out_bytes_ = 0;
  size_t held_bytes_ = 0;        // answers to reads waiting for their record (SendOnceRecorded)
  std::set<uint64_t> starting_;  // subscriptions waiting for their record to start
  size_t out_subscription_bytes_ = 0;
  size_t writing_frames_ = 0;  // frames at the front of out_ being written
  std::vector<asio::const_buffer> write_buffers_;
};

// ---- TcpServer::Shared ------------------------------------------------------------------------

void TcpServer::Shared::Accept() {
  acceptor.async_accept(
      asio::make_strand(io),
      [self = shared_from_this()](boost::system::error_code error, tcp::socket socket) {
        if (error == asio::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!error && !self->stopping.load()) {
          boost::system::error_code ignored;
          std::string address = Service::AddressKey(socket.remote_endpoint(ignored).address());
          if (const char* refused = self->service.TryAddConnection(address)) {
            self->Refuse(std::move(socket), refused);
          } else {
            self->connections.fetch_add(1);
            auto session =
                std::make_shared<TcpSession>(self, std::move(socket), std::move(address));
            self->Register(session);
            session->Start();
          }
        }
        if (error) {
          // Out of descriptors or memory: retrying at once would spin; retry a little later.
          Log(LogLevel::kWarning, "tcp accept failed", {{"error", error.message()}});
          self->accept_retry.expires_after(kAcceptRetryDelay);
          self->accept_retry.async_wait([self](boost::system::error_code waited) {
            if (!waited) self->Accept();
          });
          return;
        }
        self->Accept();
      });
}

namespace {

// A connection over a connection limit: it gets a busy frame naming it, then the same lingering
// close as a session (see TcpSession::CloseIfDrained), so the frame is not lost to a reset.
struct Refusal : std::enable_shared_from_this<Refusal> {
  explicit Refusal(tcp::socket accepted)
      : socket(std::move(accepted)), timer(socket.get_executor()) {}

  void Start(const char* limit) {
    Log(LogLevel::kDebug, "tcp connection refused", {{"peer", PeerOf(socket)}, {"reason", limit}});
    Reply reply(0);
    auto busy = reply.root.initBusy();
    busy.setLimit(limit);
    busy.setMessage(std::string_view(limit) == "connections_per_address_max"
                        ? "too many connections from this client address; retry later"
                        : "too many connections; retry later");
    frame = Seal(std::move(reply.message), 0);
    AddBuffers(frame, buffers);
    timer.expires_after(kTcpDrainTimeout);
    timer.async_wait([self = shared_from_this()](boost::system::error_code error) {
      if (!error) self->Close();
    });
    asio::async_write(socket, buffers,
                      [self = shared_from_this()](boost::system::error_code error, size_t) {
                        if (error) return self->Close();
                        boost::system::error_code ignored;
                        self->socket.shutdown(tcp::socket::shutdown_send, ignored);
                        self->Discard();
                      });
  }
  void Discard() {
    socket.async_read_some(asio::buffer(discarded),
                           [self = shared_from_this()](boost::system::error_code error, size_t) {
                             if (error) return self->Close();
                             self->Discard();
                           });
  }
  void Close() {
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
  }

  tcp::socket socket;
  asio::steady_timer timer;
  OutFrame frame;
  std::vector<asio::const_buffer> buffers;
  std::array<char, 4096> discarded;
};

}  // namespace

void TcpServer::Shared::Refuse(tcp::socket socket, const char* limit) {
  connections_refused.fetch_add(1);
  std::make_shared<Refusal>(std::move(socket))->Start(limit);
}

void TcpServer::Shared::Register(const std::shared_ptr<TcpSession>& session) {
  {
    std::lock_guard lock(mutex);
    sessions.emplace(session.get(), session);
  }
  if (stopping.load()) session->Shutdown();
}

void TcpServer::Shared::Forget(const TcpSession* session) {
  std::lock_guard lock(mutex);
  sessions.erase(session);
}

void TcpServer::Shared::Wait(const std::shared_ptr<TcpSession>& session) {
  std::lock_guard lock(mutex);
  // A session registers once per wake-up, but one that closes stays listed until the next commit:
  // drop those before the list outgrows the live sessions.
  if (waiting.size() >= 2 * sessions.size() + 16) {
    std::erase_if(waiting, [](const std::weak_ptr<TcpSession>& weak) { return weak.expired(); });
  }
  waiting.push_back(session);
}

void TcpServer::Shared::OnHead() {
  if (wake_posted.exchange(true)) return;
  asio::post(io, [self = shared_from_this()] { self->WakeWaiters(); });
}

void TcpServer::Shared::WakeWaiters() {
  wake_posted.store(false);
  std::vector<std::weak_ptr<TcpSession>> woken;
  {
    std::lock_guard lock(mutex);
    woken.swap(waiting);
  }
  for (const auto& weak : woken) {
    if (auto session = weak.lock()) session->PostHeadMoved();
  }
}

// ---- TcpServer --------------------------------------------------------------------------------

TcpServer::TcpServer(asio::io_context& io, Service& service, tcp::endpoint endpoint)
    : shared_(std::make_shared<Shared>(io, service)), endpoint_(std::move(endpoint)) {}

TcpServer::~TcpServer() {
  Stop();
  if (head_listener_) shared_->service.ledger().RemoveHeadListener(*head_listener_);
}

std::variant<uint16_t, std::string> TcpServer::Start() {
  boost::system::error_code error;
  tcp::acceptor& acceptor = shared_->acceptor;
  acceptor.open(endpoint_.protocol(), error);
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint_, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return "cannot listen on " + endpoint_.address().to_string() + ":" +
           std::to_string(endpoint_.port()) + ": " + error.message();
  }
  uint16_t port = acceptor.local_endpoint(error).port();
  // The listener runs on the ledger's writer thread: it only posts. ~TcpServer removes it before
  // releasing shared_, so the raw pointer never outlives the state.
  Shared* shared = shared_.get();
  head_listener_ =
      shared_->service.ledger().AddHeadListener([shared](uint64_t) { shared->OnHead(); });
  asio::post(acceptor.get_executor(), [shared = shared_] { shared->Accept(); });
  return port;
}

void TcpServer::Stop() {
  if (shared_->stopping.exchange(true)) return;
  asio::post(shared_->acceptor.get_executor(), [shared = shared_] {
    boost::system::error_code ignored;
    shared->acceptor.close(ignored);
    shared->accept_retry.cancel();
  });
  std::vector<std::shared_ptr<TcpSession>> sessions;
  {
    std::lock_guard lock(shared_->mutex);
    for (const auto& [raw, weak] : shared_->sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->Shutdown();
}

TcpStats TcpServer::Stats() const {
  const Shared& s = *shared_;
  TcpStats stats;
  stats.connections = s.connections.load();
  stats.subscriptions = s.subscriptions.load();
  stats.subscriptions_without_credit = s.subscriptions_without_credit.load();
  stats.output_bytes = s.output_bytes.load();
  stats.output_bytes_peak = s.output_bytes_peak.load();
  stats.input_bytes = s.input_bytes.load();
  stats.input_bytes_peak = s.input_bytes_peak.load();
  stats.subscription_output_bytes_peak = s.subscription_output_bytes_peak.load();
  stats.frames_received = s.frames_received.load();
  stats.frames_sent = s.frames_sent.load();
  stats.subscription_events_sent = s.subscription_events_sent.load();
  stats.checkpoints_sent = s.checkpoints_sent.load();
  stats.busy_sent = s.busy_sent.load();
  stats.connections_refused = s.connections_refused.load();
  {
    std::lock_guard lock(shared_->cursors_mutex);
    for (const auto& [key, cursor] : shared_->cursors) {
      const uint64_t next = cursor->next.load(std::memory_order_relaxed);
      auto [it, added] = stats.subscriber_next_positions.emplace(cursor->subscriber, next);
      if (!added) it->second = std::min(it->second, next);
    }
  }
  return stats;
}

}  // namespace gridledger::server
