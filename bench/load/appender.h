// One client connection of the load benchmark, whatever the door: it appends one event and waits
// for the answer (one request outstanding per connection). The driver runs one per thread.
#pragma once

#include <string>

#include "load_events.h"

namespace gridledger::bench {

class Appender {
 public:
  virtual ~Appender() = default;
  // Appends `event` and waits until it is acknowledged as stored (durable). false: refused or
  // failed, with the reason in `*error`.
  virtual bool Append(const LoadEvent& event, std::string* error) = 0;
};

}  // namespace gridledger::bench
