// Client: blocking calls with deadlines over Boost.Asio (an io_context per connection, run only
// inside the calls), standard Cap'n Proto stream framing, and a demultiplexer that holds frames
// of other awaited requests aside while one answer is awaited.
#include "client/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <kj/exception.h>

#include <cstring>

#include "protocol/framing.h"

namespace gridledger::client {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kWordBytes = sizeof(capnp::word);
constexpr size_t kReceiveBufferBytes = size_t{256} << 10;
constexpr size_t kFrameSegmentsMax = 512;

using protocol::FramePrefix;

std::string Text(capnp::Text::Reader text) { return {text.begin(), text.size()}; }
std::string Bytes(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

Error FromWire(protocol::Error::Reader error) {
  Error result{Text(error.getCode()),  Text(error.getMessage()),
               Text(error.getField()), Text(error.getRule()),
               std::nullopt,           ""};
  if (error.getHasCurrentVersion()) result.current_version = error.getCurrentVersion();
  return result;
}

Error FromBusy(protocol::Busy::Reader busy) {
  Error result{"busy", Text(busy.getMessage()), "", "", std::nullopt, Text(busy.getLimit())};
  return result;
}

Error ClosedError() { return Error{"io", "the connection is closed", "", "", std::nullopt, ""}; }

Error ProtocolError(std::string message) {
  return Error{"protocol", std::move(message), "", "", std::nullopt, ""};
}

// The refusal carried by a response that is an error or busy frame; nullopt for anything else.
std::optional<Error> Refusal(protocol::Response::Reader response) {
  if (response.isError()) return FromWire(response.getError());
  if (response.isBusy()) return FromBusy(response.getBusy());
  return std::nullopt;
}

// Reads a received frame's Response and hands it to `read`; malformed bytes are a protocol error.
template <typename T>
Result<T> WithResponse(const kj::Array<capnp::word>& frame,
                       const std::function<Result<T>(protocol::Response::Reader)>& read) {
  try {
    capnp::FlatArrayMessageReader reader(frame.asPtr());
    return read(reader.getRoot<protocol::Response>());
  } catch (const kj::Exception& e) {
    return ProtocolError(std::string("malformed response: ") + e.getDescription().cStr());
  }
}

}  // namespace

std::string Error::ToString() const {
  std::string text = code + ": " + message;
  if (!field.empty()) text += " (field " + field + ")";
  if (!rule.empty()) text += " [rule " + rule + "]";
  if (current_version) text += " (current version " + std::to_string(*current_version) + ")";
  if (!limit.empty()) text += " (limit " + limit + ")";
  return text;
}

// ---- envelopes --------------------------------------------------------------------------------

namespace {

capnp::Data::Reader AsData(const std::string& bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

// The protocol version from which servers check afterHash (protocol.capnp).
constexpr uint32_t kAfterHashProtocolVersion = 2;

// Calls read(envelope) on bytes that are a canonical Envelope message; copies misaligned bytes.
template <typename T>
Result<T> WithEnvelope(std::string_view bytes,
                       const std::function<T(ledger::schema::Envelope::Reader)>& read) {
  if (bytes.empty() || bytes.size() % kWordBytes != 0) {
    return ProtocolError("an envelope must be whole words");
  }
  kj::Array<capnp::word> copy;
  const capnp::word* words = reinterpret_cast<const capnp::word*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    copy = kj::heapArray<capnp::word>(bytes.size() / kWordBytes);
    std::memcpy(copy.begin(), bytes.data(), bytes.size());
    words = copy.begin();
  }
  kj::ArrayPtr<const capnp::word> segments[1] = {kj::arrayPtr(words, bytes.size() / kWordBytes)};
  try {
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1));
    return read(reader.getRoot<ledger::schema::Envelope>());
  } catch (const kj::Exception& e) {
    return ProtocolError(std::string("malformed envelope: ") + e.getDescription().cStr());
  }
}

}  // namespace

Result<Event> DecodeEnvelope(std::string_view bytes) {
  return WithEnvelope<Event>(bytes, [](ledger::schema::Envelope::Reader envelope) {
    return Event::FromEnvelope(envelope);
  });
}

Result<std::vector<Event>> EventBatch::DecodeAll() const {
  std::vector<Event> events;
  events.reserve(envelopes_.size());
  for (std::string_view envelope : envelopes_) {
    Result<Event> event = DecodeEnvelope(envelope);
    if (!event.ok()) return event.error();
    events.push_back(std::move(event).value());
  }
  return events;
}

MaybeError EventBatch::ForEach(const std::function<void(const ledger::EventView&)>& visit) const {
  for (std::string_view envelope : envelopes_) {
    Result<bool> visited =
        WithEnvelope<bool>(envelope, [&](ledger::schema::Envelope::Reader reader) {
          visit(ledger::EventView(reader));
          return true;
        });
    if (!visited.ok()) return visited.error();
  }
  return std::nullopt;
}

// ---- the socket -------------------------------------------------------------------------------

struct Client::Socket {
  asio::io_context io;
  tcp::socket socket{io};
  kj::Array<capnp::word> in = kj::heapArray<capnp::word>(kReceiveBufferBytes / kWordBytes);
  size_t begin = 0;  // first received byte not yet returned as a frame
  size_t end = 0;    // end of the received bytes
  // A frame larger than half of `in`, received straight into its own array.
  kj::Array<capnp::word> large;
  size_t large_filled = 0;  // bytes of it received

  kj::byte* bytes() { return reinterpret_cast<kj::byte*>(in.begin()); }
  size_t capacity() const { return in.size() * kWordBytes; }

  // Runs the io_context until `done` is set or `deadline` passes; on timeout cancels whatever is
  // pending and waits for its handler. True when done in time.
  bool RunUntil(const bool& done, Clock::time_point deadline) {
    io.restart();
    while (!done) {
      if (io.run_one_until(deadline) == 0) break;
    }
    if (done) return true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
    io.restart();
    while (!done) io.run_one();
    return false;
  }

  // Makes room for a frame of `frame_bytes` (or, when 0, for any more bytes) after `end`.
  void Reserve(size_t frame_bytes) {
    if (begin > 0) {
      std::memmove(bytes(), bytes() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    size_t wanted = std::max(frame_bytes, end + kWordBytes);
    if (wanted > capacity()) {
      auto bigger = kj::heapArray<capnp::word>((wanted + kWordBytes - 1) / kWordBytes);
      std::memcpy(bigger.begin(), bytes(), end);
      in = kj::mv(bigger);
    }
  }
};

Client::Client(Options options)
    : options_(std::move(options)), socket_(std::make_unique<Socket>()) {}

Client::~Client() {
  boost::system::error_code ignored;
  socket_->socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket_->socket.close(ignored);
}

Error Client::Broken(std::string code, std::string message) {
  broken_ = true;
  boost::system::error_code ignored;
  socket_->socket.close(ignored);
  return Error{std::move(code), std::move(message), "", "", std::nullopt, ""};
}

MaybeError Client::Open(const std::string& host, uint16_t port) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  tcp::resolver resolver(socket_->io);
  bool done = false;
  boost::system::error_code error;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host, std::to_string(port),
                         [&](boost::system::error_code e, tcp::resolver::results_type results) {
                           error = e;
                           endpoints = std::move(results);
                           done = true;
                         });
  if (!socket_->RunUntil(done, deadline)) return Broken("timeout", "resolving " + host);
  if (error) return Broken("io", "resolving " + host + ": " + error.message());
  done = false;
  asio::async_connect(socket_->socket, endpoints,
                      [&](boost::system::error_code e, const tcp::endpoint&) {
                        error = e;
                        done = true;
                      });
  if (!socket_->RunUntil(done, deadline)) {
    return Broken("timeout", "connecting to " + host + ":" + std::to_string(port));
  }
  if (error) {
    return Broken("io",
                  "connecting to " + host + ":" + std::to_string(port) + ": " + error.message());
  }
  socket_->socket.set_option(tcp::no_delay(true), error);
  return std::nullopt;
}

Result<std::unique_ptr<Client>> Client::ConnectWithoutHello(const std::string& host, uint16_t port,
                                                            Options options) {
  std::unique_ptr<Client> client(new Client(std::move(options)));
  if (MaybeError error = client->Open(host, port)) return *error;
  return client;
}

Result<std::unique_ptr<Client>> Client::Connect(const std::string& host, uint16_t port,
                                                const std::string& token, Options options) {
  Result<std::unique_ptr<Client>> client = ConnectWithoutHello(host, port, std::move(options));
  if (!client.ok()) return client;
  if (MaybeError error = (*client)->Hello(token)) return *error;
  return client;
}

MaybeError Client::Hello(const std::string& token) {
  const uint64_t id = NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(id);
  auto hello = request.initHello();
  hello.setToken(token);
  hello.setClientName(options_.client_name);
  hello.setProtocolVersion(protocol::PROTOCOL_VERSION);
  if (MaybeError error = SendRequest(message)) return error;
  held_[id];
  Result<kj::Array<capnp::word>> frame = Await(id, options_.timeout);
  held_.erase(id);
  if (!frame.ok()) {
    Error error = frame.error();
    // The likeliest cause: an address of something else, e.g. ledgerd's HTTP door.
    if (error.code == "protocol") {
      error.message += " (possibly not ledgerd's Cap'n Proto TCP address: its HTTP one is not)";
    }
    return error;
  }
  Result<Welcome> welcome =
      WithResponse<Welcome>(*frame, [](protocol::Response::Reader response) -> Result<Welcome> {
        if (auto refused = Refusal(response)) return *refused;
        if (!response.isWelcome()) return ProtocolError("hello was not answered by welcome");
        auto wire = response.getWelcome();
        auto who = wire.getPrincipal();
        Welcome welcome;
        welcome.principal = {Text(who.getId()), Text(who.getRole()), Text(who.getOrg())};
        welcome.protocol_version = wire.getProtocolVersion();
        welcome.frame_bytes_max = wire.getFrameBytesMax();
        welcome.batch_events_max = wire.getBatchEventsMax();
        welcome.connection_inflight_max = wire.getConnectionInflightMax();
        welcome.read_events_max = wire.getReadEventsMax();
        welcome.credit_max = wire.getCreditMax();
        return welcome;
      });
  if (!welcome.ok()) {
    // The server closes the connection after refusing hello.
    Error error = welcome.error();
    Broken(error.code, error.message);
    return error;
  }
  welcome_ = std::move(welcome).value();
  return std::nullopt;
}

// ---- frames -----------------------------------------------------------------------------------

template <typename Buffers>
MaybeError Client::Write(const Buffers& buffers) {
  if (broken_) return ClosedError();
  bool done = false;
  boost::system::error_code error;
  asio::async_write(socket_->socket, buffers, [&](boost::system::error_code e, size_t) {
    error = e;
    done = true;
  });
  if (!socket_->RunUntil(done, Clock::now() + options_.timeout)) {
    return Broken("timeout", "sending a request");
  }
  if (error) return Broken("io", "sending a request: " + error.message());
  return std::nullopt;
}

MaybeError Client::SendBytes(std::string_view bytes) {
  return Write(asio::buffer(bytes.data(), bytes.size()));
}

MaybeError Client::SendRequest(capnp::MessageBuilder& request) {
  auto segments = request.getSegmentsForOutput();
  const std::vector<uint32_t> table = protocol::SegmentTable(segments);
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(segments.size() + 1);
  buffers.emplace_back(table.data(), table.size() * sizeof(uint32_t));
  for (const auto& segment : segments) {
    buffers.emplace_back(segment.begin(), segment.size() * kWordBytes);
  }
  return Write(buffers);
}

Result<size_t> Client::ReadSome(kj::byte* into, size_t bytes, Clock::time_point deadline) {
  Socket& s = *socket_;
  bool done = false;
  boost::system::error_code error;
  size_t received = 0;
  s.socket.async_read_some(asio::buffer(into, bytes), [&](boost::system::error_code e, size_t n) {
    error = e;
    received = n;
    done = true;
  });
  // A read that timed out took nothing: the connection stays usable. One that completed while
  // being cancelled delivered its bytes, and they are kept.
  if (!s.RunUntil(done, deadline) && error == asio::error::operation_aborted) {
    return Error{"timeout", "no answer from the server in time", "", "", std::nullopt, ""};
  }
  if (error) {
    return Broken("io", error == asio::error::eof ? "the server closed the connection"
                                                  : "receiving: " + error.message());
  }
  return received;
}

Result<kj::Array<capnp::word>> Client::ReadFrame(Clock::time_point deadline) {
  if (broken_) return ClosedError();
  Socket& s = *socket_;
  while (true) {
    if (s.large.size() > 0) {  // a large frame is received in place, without a copy
      const size_t frame_bytes = s.large.size() * kWordBytes;
      if (s.large_filled == frame_bytes) {
        s.large_filled = 0;
        return kj::mv(s.large);
      }
      kj::byte* into = reinterpret_cast<kj::byte*>(s.large.begin()) + s.large_filled;
      Result<size_t> received = ReadSome(into, frame_bytes - s.large_filled, deadline);
      if (!received.ok()) return received.error();
      s.large_filled += *received;
      continue;
    }
    FramePrefix prefix = protocol::ParseFramePrefix(s.bytes() + s.begin, s.end - s.begin,
                                                    options_.frame_bytes_max, kFrameSegmentsMax);
    if (prefix.state == FramePrefix::State::kComplete) {
      auto frame = kj::heapArray<capnp::word>(prefix.bytes / kWordBytes);
      std::memcpy(frame.begin(), s.bytes() + s.begin, prefix.bytes);
      s.begin += prefix.bytes;
      if (s.begin == s.end) s.begin = s.end = 0;
      return frame;
    }
    if (prefix.state != FramePrefix::State::kIncomplete) {
      return Broken("protocol", prefix.state == FramePrefix::State::kTooLarge
                                    ? "a frame from the server is larger than frame_bytes_max"
                                    : "a frame from the server has too many segments");
    }
    if (prefix.bytes > kReceiveBufferBytes / 2) {
      s.large = kj::heapArray<capnp::word>(prefix.bytes / kWordBytes);
      s.large_filled = s.end - s.begin;
      std::memcpy(s.large.begin(), s.bytes() + s.begin, s.large_filled);
      s.begin = s.end = 0;
      continue;
    }
    if (s.end == s.capacity() || prefix.bytes > s.capacity() - s.begin) s.Reserve(prefix.bytes);
    Result<size_t> received = ReadSome(s.bytes() + s.end, s.capacity() - s.end, deadline);
    if (!received.ok()) return received.error();
    s.end += *received;
  }
}

Result<kj::Array<capnp::word>> Client::Await(uint64_t id, std::chrono::milliseconds timeout) {
  auto held = held_.find(id);
  if (held != held_.end() && !held->second.empty()) {
    kj::Array<capnp::word> frame = kj::mv(held->second.front());
    held->second.pop_front();
    return frame;
  }
  return ReadAnswer([id](uint64_t answered) { return answered == id; }, Clock::now() + timeout);
}

Result<kj::Array<capnp::word>> Client::ReadAnswer(const std::function<bool(uint64_t)>& wanted,
                                                  Clock::time_point deadline) {
  while (true) {
    Result<kj::Array<capnp::word>> frame = ReadFrame(deadline);
    if (!frame.ok()) return frame;
    Result<uint64_t> answered = WithResponse<uint64_t>(
        *frame,
        [](protocol::Response::Reader response) -> Result<uint64_t> { return response.getId(); });
    if (!answered.ok()) return Broken("protocol", answered.error().message);
    if (wanted(*answered)) return frame;
    if (*answered == 0) {
      // About the connection, which the server now closes: the reason is the answer to anything.
      Error error = ProtocolError("unexpected frame about the connection");
      Result<bool> read =
          WithResponse<bool>(*frame, [&](protocol::Response::Reader response) -> Result<bool> {
            if (auto refused = Refusal(response)) error = *refused;
            return true;
          });
      if (!read.ok()) error = read.error();
      Broken(error.code, error.message);
      return error;
    }
    auto waiting = held_.find(*answered);
    if (waiting != held_.end()) waiting->second.push_back(std::move(frame).value());
  }
}

Result<kj::Array<capnp::word>> Client::ReceiveFrame(std::optional<uint64_t> id,
                                                    std::chrono::milliseconds timeout) {
  if (!id) return ReadFrame(Clock::now() + timeout);
  held_[*id];
  Result<kj::Array<capnp::word>> frame = Await(*id, timeout);
  if (held_[*id].empty()) held_.erase(*id);
  return frame;
}

// ---- requests ---------------------------------------------------------------------------------

Result<uint64_t> Client::SendAppend(const std::vector<std::string>& events_json) {
  const uint64_t id = NewRequestId();
  // One segment that fits the request (a pointer and the text of each event, a few words of
  // Request), rather than capnp's default first segment of 8 KiB zeroed for every append.
  size_t words = 16;
  for (const std::string& json : events_json) words += 2 + json.size() / kWordBytes;
  capnp::MallocMessageBuilder message(static_cast<unsigned>(words));
  auto request = message.initRoot<protocol::Request>();
  request.setId(id);
  auto json = request.initAppend().initJson(static_cast<unsigned>(events_json.size()));
  for (size_t i = 0; i < events_json.size(); ++i) {
    json.set(static_cast<unsigned>(i), events_json[i]);
  }
  if (MaybeError error = SendRequest(message)) return *error;
  held_[id];
  pending_appends_.insert(id);
  return id;
}

namespace {

// The results carried by the answer to an append request (or the refusal of the whole request).
Result<std::vector<AppendResult>> AppendResults(const kj::Array<capnp::word>& frame) {
  using Results = std::vector<AppendResult>;
  return WithResponse<Results>(frame, [](protocol::Response::Reader response) -> Result<Results> {
    if (auto refused = Refusal(response)) return *refused;
    if (!response.isAppended()) return ProtocolError("append was not answered by appended");
    Results results;
    for (auto item : response.getAppended()) {
      AppendResult result;
      if (item.isError()) {
        result.error = FromWire(item.getError());
      } else {
        auto ok = item.getOk();
        result.position = ok.getPosition();
        result.stream = Text(ok.getStream());
        result.version = ok.getVersion();
        result.duplicate = ok.getDuplicate();
        for (auto rule : ok.getViolations()) result.violations.push_back(Text(rule));
        for (auto message : ok.getViolationMessages()) {
          result.violation_messages.push_back(Text(message));
        }
        for (auto settled : ok.getSettles()) {
          result.settles.push_back(AppendResult::Settled{
              Text(settled.getRule()), settled.getPosition(), Text(settled.getMessage())});
        }
      }
      results.push_back(std::move(result));
    }
    return results;
  });
}

uint64_t AnsweredId(const kj::Array<capnp::word>& frame) {
  Result<uint64_t> id = WithResponse<uint64_t>(
      frame,
      [](protocol::Response::Reader response) -> Result<uint64_t> { return response.getId(); });
  return id.ok() ? *id : 0;  // the frame was parsed once already: it does not fail here
}

}  // namespace

Result<std::vector<AppendResult>> Client::ReceiveAppend(uint64_t request_id) {
  Result<kj::Array<capnp::word>> frame = Await(request_id, options_.timeout);
  held_.erase(request_id);
  pending_appends_.erase(request_id);
  if (!frame.ok()) return frame.error();
  return AppendResults(*frame);
}

Result<std::optional<AppendAnswer>> Client::ReceiveAnyAppend(Clock::time_point deadline) {
  for (uint64_t id : pending_appends_) {
    auto held = held_.find(id);
    if (held == held_.end() || held->second.empty()) continue;
    kj::Array<capnp::word> frame = kj::mv(held->second.front());
    held_.erase(held);
    pending_appends_.erase(id);
    return std::optional<AppendAnswer>(AppendAnswer{id, AppendResults(frame)});
  }
  if (pending_appends_.empty()) return ProtocolError("no append is awaiting its answer");
  Result<kj::Array<capnp::word>> frame = ReadAnswer(
      [this](uint64_t answered) { return pending_appends_.count(answered) > 0; }, deadline);
  if (!frame.ok()) {
    // A read that timed out took nothing: the connection stays usable and the appends pending.
    if (frame.error().code == "timeout" && !broken_) return std::optional<AppendAnswer>();
    return frame.error();
  }
  const uint64_t id = AnsweredId(*frame);
  held_.erase(id);
  pending_appends_.erase(id);
  return std::optional<AppendAnswer>(AppendAnswer{id, AppendResults(*frame)});
}

Result<std::vector<AppendResult>> Client::Append(const std::vector<std::string>& events_json) {
  Result<uint64_t> id = SendAppend(events_json);
  if (!id.ok()) return id.error();
  return ReceiveAppend(*id);
}

Result<uint64_t> Client::TakeEvents(kj::Array<capnp::word> frame, EventBatch& batch,
                                    std::string& last_hash) {
  batch.envelopes_.clear();
  Result<uint64_t> next =
      WithResponse<uint64_t>(frame, [&](protocol::Response::Reader response) -> Result<uint64_t> {
        if (auto refused = Refusal(response)) return *refused;
        if (!response.isEvents()) return ProtocolError("expected an events frame");
        auto events = response.getEvents();
        for (capnp::Data::Reader data : events.getEnvelopes()) {
          batch.envelopes_.emplace_back(reinterpret_cast<const char*>(data.begin()), data.size());
        }
        last_hash = Bytes(events.getLastHash());
        return events.getNext();
      });
  batch.frame_ = kj::mv(frame);  // the heap array does not move: the views stay valid
  return next;
}

Result<ReadPage> Client::AwaitPage(uint64_t id) {
  held_[id];
  Result<kj::Array<capnp::word>> frame = Await(id, options_.timeout);
  held_.erase(id);
  if (!frame.ok()) return frame.error();
  EventBatch batch;
  std::string last_hash;
  Result<uint64_t> next = TakeEvents(std::move(frame).value(), batch, last_hash);
  if (!next.ok()) return next.error();
  Result<std::vector<Event>> events = batch.DecodeAll();
  if (!events.ok()) return events.error();
  return ReadPage{std::move(events).value(), *next, std::move(last_hash)};
}

MaybeError Client::RefuseUncheckedHash(const std::string& after_hash) const {
  if (after_hash.empty() || welcome_.protocol_version >= kAfterHashProtocolVersion) {
    return std::nullopt;
  }
  // An older server would ignore it: the check the caller asked for would not be made.
  return Error{"unsupported",
               "this server speaks protocol " + std::to_string(welcome_.protocol_version) +
                   ", which does not check after_hash (from protocol " +
                   std::to_string(kAfterHashProtocolVersion) + "): upgrade ledgerd",
               "",
               "",
               std::nullopt,
               ""};
}

Result<ReadPage> Client::Read(uint64_t from_position, uint32_t limit,
                              const std::string& approved_by, const std::string& after_hash) {
  const uint64_t id = NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(id);
  auto read = request.initRead();
  read.setApprovedBy(approved_by);
  auto log = read.initLog();
  log.setFromPosition(from_position);
  log.setLimit(limit);
  if (MaybeError unchecked = RefuseUncheckedHash(after_hash)) return *unchecked;
  log.setAfterHash(AsData(after_hash));
  if (MaybeError error = SendRequest(message)) return *error;
  return AwaitPage(id);
}

Result<ReadPage> Client::ReadStream(const std::string& stream, uint64_t from_version,
                                    uint32_t limit, const std::string& approved_by,
                                    const std::string& after_hash) {
  const uint64_t id = NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(id);
  auto outer = request.initRead();
  outer.setApprovedBy(approved_by);
  auto read = outer.initStream();
  read.setStream(stream);
  read.setFromVersion(from_version);
  read.setLimit(limit);
  if (MaybeError unchecked = RefuseUncheckedHash(after_hash)) return *unchecked;
  read.setAfterHash(AsData(after_hash));
  if (MaybeError error = SendRequest(message)) return *error;
  return AwaitPage(id);
}

// ---- subscriptions ----------------------------------------------------------------------------

Result<std::unique_ptr<Subscription>> Client::Subscribe(SubscribeOptions options) {
  // The server grants at most its credit_max: counting more as outstanding would never let the
  // outstanding credit fall to half, and the subscription would stall once the server's ran out.
  if (welcome_.credit_max > 0) options.credit = std::min(options.credit, welcome_.credit_max);
  const uint64_t id = NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(id);
  auto subscribe = request.initSubscribe();
  subscribe.setFromPosition(options.from_position);
  if (MaybeError unchecked = RefuseUncheckedHash(options.after_hash)) return *unchecked;
  subscribe.setAfterHash(AsData(options.after_hash));
  subscribe.setStreamPrefix(options.stream_prefix);
  subscribe.setApprovedBy(options.approved_by);
  auto types = subscribe.initTypes(static_cast<unsigned>(options.types.size()));
  for (size_t i = 0; i < options.types.size(); ++i) {
    types.set(static_cast<unsigned>(i), options.types[i]);
  }
  subscribe.setCredit(options.credit);
  if (MaybeError error = SendRequest(message)) return *error;
  held_[id];  // from now on, frames of the subscription are held for it
  Result<kj::Array<capnp::word>> frame = Await(id, options_.timeout);
  if (!frame.ok()) {
    held_.erase(id);
    return frame.error();
  }
  std::string last_hash;
  Result<uint64_t> head = WithResponse<uint64_t>(
      *frame, [&last_hash](protocol::Response::Reader response) -> Result<uint64_t> {
        if (auto refused = Refusal(response)) return *refused;
        if (!response.isSubscribed()) return ProtocolError("subscribe was not answered");
        last_hash = Bytes(response.getSubscribed().getLastHash());
        return response.getSubscribed().getHead();
      });
  if (!head.ok()) {
    held_.erase(id);
    return head.error();
  }
  auto subscription =
      std::unique_ptr<Subscription>(new Subscription(*this, id, std::move(options), *head));
  subscription->last_hash_ = std::move(last_hash);
  return subscription;
}

Subscription::Subscription(Client& client, uint64_t id, SubscribeOptions options, uint64_t head)
    : client_(client),
      id_(id),
      options_(std::move(options)),
      head_at_start_(head),
      next_position_(std::max<uint64_t>(options_.from_position, 1)),
      outstanding_credit_(options_.credit) {}

Subscription::~Subscription() {
  if (ended_) return;
  client_.held_.erase(id_);  // later frames of it are dropped
  if (client_.broken_) return;
  const uint64_t request_id = client_.NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(request_id);
  request.initCancel().setSubscription(id_);
  client_.SendRequest(message).reset();  // best effort: the connection may be going away
}

MaybeError Subscription::Grant(uint32_t events) {
  if (ended_) return Error{"not_found", "the subscription has ended", "", "", std::nullopt, ""};
  const uint64_t request_id = client_.NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(request_id);
  auto credit = request.initCredit();
  credit.setSubscription(id_);
  credit.setEvents(events);
  if (MaybeError error = client_.SendRequest(message)) return error;
  outstanding_credit_ += events;
  return std::nullopt;
}

Result<SubscriptionFrame> Subscription::Next(std::optional<std::chrono::milliseconds> timeout) {
  if (ended_) return Error{"not_found", "the subscription has ended", "", "", std::nullopt, ""};
  Result<kj::Array<capnp::word>> frame =
      client_.Await(id_, timeout.value_or(client_.options_.timeout));
  if (!frame.ok()) {
    if (frame.error().code != "timeout") ended_ = true;
    return frame.error();
  }
  SubscriptionFrame result;
  Result<std::optional<uint64_t>> checkpoint = WithResponse<std::optional<uint64_t>>(
      *frame, [&result](protocol::Response::Reader response) -> Result<std::optional<uint64_t>> {
        if (!response.isCheckpoint()) return std::optional<uint64_t>();
        result.last_hash = Bytes(response.getCheckpoint().getHash());
        return std::optional(response.getCheckpoint().getPosition());
      });
  if (!checkpoint.ok()) return checkpoint.error();
  if (checkpoint->has_value()) {
    result.kind = SubscriptionFrame::Kind::kCheckpoint;
    next_position_ = **checkpoint + 1;
    result.next_position = next_position_;
    last_hash_ = result.last_hash;
    return result;
  }
  Result<uint64_t> next =
      Client::TakeEvents(std::move(frame).value(), result.events, result.last_hash);
  if (!next.ok()) {
    // An error frame ends the subscription on the server.
    ended_ = true;
    client_.held_.erase(id_);
    return next.error();
  }
  next_position_ = *next;
  result.next_position = *next;
  last_hash_ = result.last_hash;
  outstanding_credit_ -= std::min<uint64_t>(outstanding_credit_, result.events.size());
  if (options_.auto_credit && outstanding_credit_ <= options_.credit / 2) {
    // A connection that broke here fails the next call; this frame is still delivered.
    Grant(static_cast<uint32_t>(options_.credit - outstanding_credit_)).reset();
  }
  return result;
}

MaybeError Subscription::Cancel() {
  if (ended_) return std::nullopt;
  const uint64_t request_id = client_.NewRequestId();
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<protocol::Request>();
  request.setId(request_id);
  request.initCancel().setSubscription(id_);
  if (MaybeError error = client_.SendRequest(message)) return error;
  ended_ = true;
  while (true) {  // frames sent before the cancel arrived come first; `ended` is the last
    Result<kj::Array<capnp::word>> frame = client_.Await(id_, client_.options_.timeout);
    if (!frame.ok()) {
      client_.held_.erase(id_);
      return frame.error();
    }
    Result<bool> ended =
        WithResponse<bool>(*frame, [](protocol::Response::Reader response) -> Result<bool> {
          return response.isEnded() || response.isError();
        });
    if (!ended.ok() || *ended) break;
  }
  client_.held_.erase(id_);
  return std::nullopt;
}

}  // namespace gridledger::client
