// The load driver: N client threads, each with its own connection (an Appender) and its own events.
// A client sends units of `events_per_unit` events (one request or transaction each) and keeps up
// to `units_in_flight` of them outstanding, either closed-loop (a new unit as soon as one is
// answered: the door's peak) or open-loop (units on a fixed schedule, together `rate` events/s;
// latency is measured from the scheduled send time, so a slow answer that delays later sends is
// counted in full — no coordinated omission). Latency is per event: each event of a unit counts
// with its unit's latency.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "appender.h"

namespace gridledger::bench {

// Opens client `client`'s connection; nullptr with `*error` set when it cannot.
using AppenderFactory = std::function<std::unique_ptr<Appender>(int client, std::string* error)>;

struct LoadSpec {
  char door = 'T';  // first letter of the streams' door tag (load_events.h)
  int run = 0;      // keeps the streams of successive runs apart
  int clients = 64;
  // Sent but not measured, so connections, caches and the server's threads are warm.
  std::chrono::milliseconds warmup{1000};
  std::chrono::milliseconds measured{5000};
  // Open loop: events/s offered by all clients together. 0 = closed loop.
  double rate = 0;
  int events_per_unit = 1;  // events in one request (ledgerd) or transaction (PostgreSQL)
  int units_in_flight = 1;  // units a client keeps outstanding at most
};

struct LoadResult {
  std::string error;    // set when the run could not be made (a connection failed)
  uint64_t events = 0;  // acknowledged within the measured window
  double seconds = 0;   // the measured window
  double events_per_second = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  uint64_t acknowledged = 0;  // events acknowledged in the whole run, warm-up and tail included
  uint64_t failures = 0;      // units refused or failed in the measured window and warm-up
  std::string first_failure;  // why the first of them failed
};

LoadResult RunLoad(const LoadSpec& spec, const AppenderFactory& connect);

}  // namespace gridledger::bench
