// TcpServer: ledgerd's Cap'n Proto TCP front door (schema/protocol.capnp, server/README.md "TCP
// protocol"). One session per connection: hello with a bearer token, then pipelined append, read,
// subscribe, credit and cancel requests, each answered by Response frames matched by id.
//
// Every buffer is bounded (limits.h): a frame larger than frame_bytes_max is refused and the
// connection closed; at most connection_inflight_max requests (appends being processed and live
// subscriptions) per connection, more are answered busy; a connection stops reading requests while
// more than frame_bytes_max bytes of answers wait for its socket; a subscription holds at most one
// frame that is not yet on the socket, and sends events only against the credit its client granted.
//
// Threading: handlers of one connection run on that connection's strand, on whatever threads run
// the io_context. Appends never block an I/O thread: they go through Service::AppendAsync and come
// back to the strand. Reads and subscription catch-up read the ledger on the strand, a bounded
// amount per step (one page, one frame, or subscription_checkpoint_every skipped events).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "server/service.h"

namespace gridledger::server {

// How long a closing connection (Stop(), or after a fatal error frame) may take to drain its last
// answers to a client that does not read them before it is closed anyway.
inline constexpr std::chrono::seconds kTcpDrainTimeout{5};
// How long a connection that said its last word (half-closed) waits for the peer to close before
// closing anyway: closing while the peer still sends would reset the connection, and a reset can
// destroy answers the peer has not read yet.
inline constexpr std::chrono::seconds kTcpLingerTimeout{1};
static_assert(kTcpLingerTimeout <= kTcpDrainTimeout);
// Segments of one incoming frame; a client has no reason to send more than a handful.
inline constexpr size_t kTcpFrameSegmentsMax = 64;

// Counters of the TCP front door, for metrics and tests. Gauges say "now"; counters count since
// construction.
struct TcpStats {
  size_t connections = 0;    // gauge: open sessions
  size_t subscriptions = 0;  // gauge: live subscriptions
  // gauge: subscriptions that stopped sending because their client granted no more credit
  size_t subscriptions_without_credit = 0;
  size_t output_bytes = 0;  // gauge: bytes of answers waiting for (or being written to) sockets
  size_t output_bytes_peak = 0;  // the largest output_bytes seen
  // gauge: receive-buffer bytes beyond each connection's first 64 KiB (frames being received),
  // bounded by input_bytes_max; and the largest seen
  size_t input_bytes = 0;
  size_t input_bytes_peak = 0;
  // The largest number of bytes of subscription frames not yet on the socket, over every session
  // at one moment; bounded by one frame per subscription whatever the consumers do.
  size_t subscription_output_bytes_peak = 0;
  uint64_t frames_received = 0;
  uint64_t frames_sent = 0;
  uint64_t subscription_events_sent = 0;
  uint64_t checkpoints_sent = 0;
  uint64_t busy_sent = 0;
  uint64_t connections_refused = 0;  // over connections_max
  // Per subscriber (the principal id of a live subscription; readers are downstream systems, so
  // the set is small): the lowest next position among its subscriptions. Lag = head + 1 - this.
  std::map<std::string, uint64_t> subscriber_next_positions;
};

class TcpServer {
 public:
  // `io` runs the sessions (any number of threads); `service` must outlive the server and every
  // handler still queued on `io`. Nothing happens before Start().
  TcpServer(boost::asio::io_context& io, Service& service, boost::asio::ip::tcp::endpoint endpoint);
  // Stops (if Stop() was not called) and detaches from the ledger's head notifications. Sessions
  // still open keep a reference to the shared state and close as the io_context runs them.
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // Binds, listens and starts accepting. Returns the bound port (useful with port 0), or why the
  // endpoint could not be bound.
  std::variant<uint16_t, std::string> Start();

  // Stops accepting, ends every subscription, stops reading requests, and closes each connection
  // once its in-flight appends are answered and its answers written (or after kTcpDrainTimeout).
  // Returns at once; io_context::run() returns when nothing else keeps it busy. Thread-safe.
  void Stop();

  TcpStats Stats() const;

  struct Shared;  // state the sessions share with the server (defined in tcp_server.cc)

 private:
  std::shared_ptr<Shared> shared_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::optional<uint64_t> head_listener_;  // the ledger's head listener, once started
};

}  // namespace gridledger::server
