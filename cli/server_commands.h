// ledgerctl against a running ledgerd (--server HOST:PORT --token T), over the Cap'n Proto TCP
// protocol (client/): append, read, history and subscribe. Output is the same as the embedded
// commands' (commands.h), so scripts work either way.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.h"

namespace gridledger::cli {

struct RemoteOptions {
  std::string server;  // host:port of ledgerd's TCP front door
  std::string http;    // host:port of its HTTP/JSON door (http_commands.h)
  std::string token;   // bearer token
  // Who approved reading personal data; recorded by ledgerd with each read of application
  // events (SensitiveDataAccessed). Empty: no approval.
  std::string approved_by;
};

// HOST:PORT split into its host and port; nullopt, said on stderr naming `flag`, when malformed.
std::optional<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address,
                                                              std::string_view flag);

int RemoteAppend(const RemoteOptions& remote, const std::string& file, std::ostream& out);
int RemoteRead(const RemoteOptions& remote, const ReadOptions& options, std::ostream& out);
int RemoteHistory(const RemoteOptions& remote, const std::string& stream, std::ostream& out);

struct SubscribeCommandOptions {
  uint64_t from_position = 1;
  // The hash (hex) of the event at from_position - 1 as the reader holds it: the server refuses
  // the subscription (rule forked) when its own event there differs. nullopt = not checked.
  std::optional<std::string> after_hash;
  std::string stream_prefix;
  std::vector<std::string> types;
  bool follow = false;  // keep following live events after catching up (until interrupted)
  // Also print {"checkpoint":N,"hash":H} lines: every position below N was examined (resume with
  // --from N --after-hash H), for a sparse filter's reader that must save its place between
  // matching events.
  bool checkpoints = false;
};
// Prints matching events as JSON lines from a position: up to the head at the start, or live.
int RemoteSubscribe(const RemoteOptions& remote, const SubscribeCommandOptions& options,
                    std::ostream& out);

}  // namespace gridledger::cli
