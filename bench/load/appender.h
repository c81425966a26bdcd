// One client connection of the load benchmark, whatever the door. It sends units — one request
// (ledgerd) or one transaction (PostgreSQL) carrying one or more events — without waiting for their
// answers, and collects the answers as they come; the driver decides how many units it keeps in
// flight. Every event of a unit is acknowledged only once it is stored durably.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "load_events.h"

namespace gridledger::bench {

class Appender {
 public:
  struct Answer {
    uint64_t tag = 0;   // the Send that this answers
    bool ok = false;    // every event of the unit was acknowledged as stored
    std::string error;  // why not, when !ok
  };

  virtual ~Appender() = default;
  // Sends `events` as one unit; its answer comes back from Receive with `tag`. false (with
  // `*error`): the connection failed.
  virtual bool Send(const std::vector<LoadEvent>& events, uint64_t tag, std::string* error) = 0;
  // Waits until `deadline` for the answer of a unit in flight and appends what came to `*answers`
  // (nothing when the deadline passed first). REQUIRES: a unit is in flight. false (with
  // `*error`): the connection failed.
  virtual bool Receive(std::chrono::steady_clock::time_point deadline, std::vector<Answer>* answers,
                       std::string* error) = 0;
};

}  // namespace gridledger::bench
