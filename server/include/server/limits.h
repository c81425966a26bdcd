// Every limit of ledgerd, in one place. Each queue and buffer of the server is bounded by one of
// these; when a limit is reached the request is refused (HTTP 503 / a busy frame), never queued.
// ledgerd's config file and flags can override each (see server/README.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace gridledger::server {

struct Limits {
  // Open client connections over HTTP and TCP together; further connections are closed at once.
  size_t connections_max = 1024;
  // Of them, from one client address: so that one client (a broken tool, or a flood of idle or
  // slow connections) cannot take every slot and lock everyone else out.
  size_t connections_per_address_max = 256;
  // Largest Cap'n Proto frame (TCP), and the events of one read page (TCP read frames; HTTP
  // /v1/events and /v1/streams bodies, as rendered JSON, past their first event), in bytes.
  size_t frame_bytes_max = size_t{4} << 20;
  // Largest HTTP request body, in bytes.
  size_t http_body_bytes_max = size_t{8} << 20;
  // Events in one append batch (HTTP array or TCP append frame).
  size_t batch_events_max = 1000;
  // Requests of one TCP connection being processed at once (pipelining depth); more → busy frame.
  size_t connection_inflight_max = 64;
  // Appends being processed by the server at once; more → 503 / busy.
  size_t appends_inflight_max = 4096;
  // Live subscriptions at once.
  size_t subscribers_max = 256;
  // Of them, from one client address (counted as connections_per_address_max counts): a
  // subscription waiting for credit holds its slot for as long as its client likes, so one client
  // must not be able to take them all.
  size_t subscribers_per_address_max = 64;
  // Events a subscriber may grant in credit at once, and events per subscription frame.
  uint32_t subscription_credit_max = 1u << 20;
  size_t subscription_frame_events_max = 4096;
  // A checkpoint frame is sent after this many events were skipped by a subscription's filter (and
  // whenever a scan reaches the head having skipped some).
  uint64_t subscription_checkpoint_every = 10'000;
  // Events per page of GET /v1/events, GET /v1/streams and TCP read.
  size_t read_events_max = 10'000;
  // Answer bytes queued for one door's connections together (TCP: read pages, subscription
  // frames, answers not yet taken by their clients' sockets; HTTP: answers being written). Past
  // it a read is answered busy (503 over HTTP) and subscriptions wait for the queue to shrink:
  // clients that do not read cannot make the server hold more.
  size_t output_bytes_max = size_t{64} << 20;
  // Request bytes being received on one door's connections together beyond a small buffer each
  // (TCP: frames larger than 64 KiB not yet whole; HTTP: bodies being read). A request that would
  // pass it is refused busy (503 / a busy frame, then the connection closes): clients that start
  // large requests and never finish them cannot make the server hold more.
  size_t input_bytes_max = size_t{64} << 20;
  // Seconds a TCP socket may take to accept a write of queued answers: a client that stops reading
  // is closed after it, and its queued answers (counted in output_bytes_max) are freed.
  uint32_t tcp_write_timeout_seconds = 60;
  // Seconds a TCP connection may stay idle after hello — no request received, nothing in flight
  // (no append or read being answered, no live subscription), no answer waiting for its socket —
  // before it is closed with a busy frame naming this limit: a forgotten or stuck client does not
  // hold its connection slot for ever. A subscription waiting for new events is not idle.
  uint32_t tcp_idle_timeout_seconds = 300;
  // Seconds a TCP connection has to send its hello; then it is closed with an error frame (id 0).
  uint32_t tcp_hello_timeout_seconds = 10;
  // Seconds an HTTP request's line and headers may take to arrive, from the connection or from
  // the previous answer (so also how long a kept-alive connection may wait for its next request);
  // then the connection is closed. Slow-loris protection.
  uint32_t http_header_timeout_seconds = 10;
  // Seconds an HTTP request's body may take after its headers; then the connection is closed.
  // An 8 MiB import needs 140 KB/s to arrive within the default.
  uint32_t http_body_timeout_seconds = 60;
};

}  // namespace gridledger::server
