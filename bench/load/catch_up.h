// The catch-up part of the load benchmark: fill a ledgerd to N events over TCP (batches, several
// connections), then one subscriber reads from position 1 to the head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gridledger::bench {

// The log's head, as a subscription sees it when it starts (0 with `*error` set on failure).
uint64_t LedgerHead(uint16_t tcp_port, const std::string& reader_token, std::string* error);

// Appends events (load_events.h, door letter 'C') over `clerk_tokens.size()` TCP connections in
// batches until the log's head reaches `target_events`. `head` is the head before. Returns the
// new head, 0 with `*error` set on failure.
uint64_t FillLedger(uint16_t tcp_port, const std::vector<std::string>& clerk_tokens, uint64_t head,
                    uint64_t target_events, std::string* error);

struct CatchUpRead {
  uint64_t events = 0;
  uint64_t envelope_bytes = 0;
  double seconds = 0;
};

// One TCP subscription from position 1 (every stream, every type, the server's largest credit)
// until the head at subscription time; times from the subscribe request to the last event.
CatchUpRead ReadLedger(uint16_t tcp_port, const std::string& reader_token, std::string* error);

}  // namespace gridledger::bench
