#include "server_commands.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "context.h"
#include "domain/event_json.h"
#include "ingest/event_codec.h"

namespace gridledger::cli {

namespace {

using nlohmann::json;

// Lines sent per append request, at most: fewer round trips than one per line, and a refused
// request costs little to report. Lowered to the batch limit the server announces.
constexpr size_t kLinesPerRequestMax = 100;

json ErrorJson(const client::Error& error) {
  json body = {{"code", error.code}, {"message", error.message}};
  if (!error.field.empty()) body["field"] = error.field;
  if (!error.rule.empty()) body["rule"] = error.rule;
  if (error.current_version) body["current_version"] = *error.current_version;
  return body;
}

// A request the server refused (bad input, no right to it) is rejected input, exit 2; anything
// else (connection, server trouble) is a failure, exit 1.
int ExitOf(const client::Error& error) {
  return error.code == "invalid" || error.code == "forbidden" || error.code == "unauthenticated" ||
                 error.code == "not_found"
             ? kExitRejected
             : kExitFailure;
}

// nullptr, said on stderr, with `*exit_code` set, when the server cannot be reached or refuses
// the token.
std::unique_ptr<client::Client> Connect(const RemoteOptions& remote, int* exit_code) {
  *exit_code = kExitFailure;
  auto endpoint = SplitHostPort(remote.server, "--server");
  if (!endpoint) return nullptr;
  client::Options options;
  options.client_name = "ledgerctl";
  auto connected =
      client::Client::Connect(endpoint->first, endpoint->second, remote.token, options);
  if (!connected.ok()) {
    std::cerr << "ledgerctl: " << remote.server << ": " << connected.error().ToString() << "\n";
    *exit_code = ExitOf(connected.error());
    return nullptr;
  }
  return std::move(connected).value();
}

}  // namespace

std::optional<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address,
                                                              std::string_view flag) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    std::cerr << "ledgerctl: " << flag << " takes HOST:PORT, not " << address << "\n";
    return std::nullopt;
  }
  uint32_t port = 0;
  const char* begin = address.data() + colon + 1;
  const char* end = address.data() + address.size();
  if (std::from_chars(begin, end, port).ptr != end || port == 0 || port > 65535) {
    std::cerr << "ledgerctl: bad port in " << flag << " " << address << "\n";
    return std::nullopt;
  }
  return std::pair(address.substr(0, colon), static_cast<uint16_t>(port));
}

int RemoteAppend(const RemoteOptions& remote, const std::string& file, std::ostream& out) {
  std::ifstream file_stream;
  std::istream* input = OpenInput(file, file_stream, std::cerr);
  if (input == nullptr) return kExitFailure;
  std::istream& in = *input;
  int refused = kExitFailure;
  auto connection = Connect(remote, &refused);
  if (!connection) return refused;
  bool any_rejected = false;
  std::vector<std::string> lines;
  std::vector<uint64_t> line_numbers;
  // The first line of the request during which the connection failed (0 while it holds).
  uint64_t lost_at = 0;
  // Sends the lines gathered and prints their results; a lost connection sets lost_at.
  auto flush = [&] {
    if (lines.empty()) return;
    auto results = connection->Append(lines);
    if (!results.ok()) {
      // The whole request was refused (or the connection failed): report every line with it.
      for (uint64_t number : line_numbers) {
        out << json{{"ok", false}, {"line", number}, {"error", ErrorJson(results.error())}}.dump()
            << "\n";
      }
      any_rejected = true;
      if (results.error().code == "io" || results.error().code == "protocol") {
        lost_at = line_numbers.front();
      }
      lines.clear();
      line_numbers.clear();
      return;
    }
    for (size_t i = 0; i < results->size(); ++i) {
      const client::AppendResult& result = (*results)[i];
      if (!result.ok()) {
        any_rejected = true;
        out << json{{"ok", false}, {"line", line_numbers[i]}, {"error", ErrorJson(*result.error)}}
                   .dump()
            << "\n";
        continue;
      }
      json shown = {{"ok", true},
                    {"position", result.position},
                    {"stream", result.stream},
                    {"version", result.version},
                    {"duplicate", result.duplicate}};
      if (!result.violations.empty()) {
        json violations = json::array();
        for (size_t v = 0; v < result.violations.size(); ++v) {
          violations.push_back(
              {{"rule", result.violations[v]},
               {"message", v < result.violation_messages.size() ? result.violation_messages[v]
                                                                : std::string()}});
        }
        shown["violations"] = std::move(violations);
      }
      if (!result.settles.empty()) {
        json settles = json::array();
        for (const auto& settled : result.settles) {
          settles.push_back({{"rule", settled.rule},
                             {"position", settled.position},
                             {"message", settled.message}});
        }
        shown["settles"] = std::move(settles);
      }
      out << shown.dump() << "\n";
    }
    lines.clear();
    line_numbers.clear();
  };
  const uint32_t server_max = connection->welcome().batch_events_max;
  const size_t lines_per_request =
      server_max == 0 ? kLinesPerRequestMax : std::min<size_t>(kLinesPerRequestMax, server_max);
  std::string line;
  uint64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (Blank(line)) continue;
    if (lost_at != 0) {
      // Still one result line per input: the lines after a lost connection were not sent.
      out << json{{"ok", false},
                  {"line", number},
                  {"error",
                   {{"code", "not_sent"},
                    {"message",
                     "not sent: the connection failed at line " + std::to_string(lost_at)}}}}
                 .dump()
          << "\n";
      continue;
    }
    // A line that does not decode is reported here, as a local append reports it: the server
    // refuses a whole batch holding one, which would take the good lines around it along.
    domain::Decoded<domain::ClientEvent> decoded = domain::DecodeClientEvent(line);
    if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
      // The lines before it are answered first: results stay in input order.
      flush();
      any_rejected = true;
      out << json{{"ok", false}, {"line", number}, {"error", ingest::ErrorJson(*error)}}.dump()
          << "\n";
      continue;
    }
    lines.push_back(line);
    line_numbers.push_back(number);
    if (lines.size() == lines_per_request) flush();
  }
  flush();
  if (lost_at != 0) {
    std::cerr << "ledgerctl: the connection to " << remote.server << " failed at line " << lost_at
              << ": the lines from there on may not be stored (those of that request) or were "
                 "not sent. Appending the same input again is safe: what was stored is answered "
                 "as a duplicate.\n";
    return kExitFailure;
  }
  return any_rejected ? kExitRejected : kExitOk;
}

int RemoteRead(const RemoteOptions& remote, const ReadOptions& options, std::ostream& out) {
  int refused = kExitFailure;
  auto connection = Connect(remote, &refused);
  if (!connection) return refused;
  uint64_t remaining = options.limit;
  uint64_t next = options.stream ? options.from_version : options.from_position.value_or(1);
  while (remaining > 0) {
    // The last page asks for one event more than is shown: when it comes, more follow, and that
    // is said as on a data directory (a page is not taken for the whole log).
    const uint64_t wanted = std::min<uint64_t>(remaining, 1000);
    const auto page = static_cast<uint32_t>(wanted == remaining ? wanted + 1 : wanted);
    auto read = options.stream
                    ? connection->ReadStream(*options.stream, next, page, remote.approved_by)
                    : connection->Read(next, page, remote.approved_by);
    if (!read.ok()) {
      std::cerr << "ledgerctl: " << read.error().ToString() << "\n";
      return ExitOf(read.error());
    }
    const size_t shown = std::min<size_t>(read->events.size(), wanted);
    for (size_t i = 0; i < shown; ++i) {
      out << ReadLine(read->events[i], options.envelopes).dump() << "\n";
    }
    if (read->events.size() > wanted) {
      const client::Event& following = read->events[wanted];
      SayMoreFollow(std::cerr, options.limit, options,
                    options.stream ? following.version : following.position);
      break;
    }
    if (read->events.empty()) break;
    remaining -= shown;
    next = read->next;
  }
  return kExitOk;
}

int RemoteHistory(const RemoteOptions& remote, const std::string& stream, std::ostream& out) {
  int refused = kExitFailure;
  auto connection = Connect(remote, &refused);
  if (!connection) return refused;
  std::vector<ledger::StoredEvent> events;
  uint64_t next = 0;
  for (;;) {
    auto read = connection->ReadStream(stream, next, 0, remote.approved_by);
    if (!read.ok()) {
      std::cerr << "ledgerctl: " << read.error().ToString() << "\n";
      return ExitOf(read.error());
    }
    if (read->events.empty()) break;
    for (auto& event : read->events) events.push_back(std::move(event));
    next = read->next;
  }
  if (events.empty()) {
    out << "stream " << stream << " has no events\n";
    return kExitRejected;
  }
  PrintHistory(stream, events, out);
  return kExitOk;
}

int RemoteSubscribe(const RemoteOptions& remote, const SubscribeCommandOptions& options,
                    std::ostream& out) {
  int refused = kExitFailure;
  auto connection = Connect(remote, &refused);
  if (!connection) return refused;
  client::SubscribeOptions subscribe;
  subscribe.from_position = options.from_position;
  if (options.after_hash) {
    // Also when empty: an unset shell variable must not switch the check off.
    std::optional<std::string> hash = ledger::FromHex(*options.after_hash);
    if (!hash || hash->size() != ledger::kHashBytes) {
      std::cerr << "ledgerctl: --after-hash takes the 64 hex digits of an event's hash, not \""
                << *options.after_hash << "\"\n";
      return kExitRejected;
    }
    subscribe.after_hash = std::move(*hash);
  }
  subscribe.stream_prefix = options.stream_prefix;
  subscribe.types = options.types;
  subscribe.approved_by = remote.approved_by;
  auto subscription = connection->Subscribe(subscribe);
  if (!subscription.ok()) {
    std::cerr << "ledgerctl: " << subscription.error().ToString() << "\n";
    return ExitOf(subscription.error());
  }
  const uint64_t stop_after = (*subscription)->head_at_start();
  uint64_t checkpoint_shown = 0;  // never printed lower than an earlier one
  // Every position below `next` was examined and what matched printed; `hash`: the raw hash of
  // the event at next - 1, to resume with.
  auto checkpoint = [&](uint64_t next, const std::string& hash) {
    if (!options.checkpoints || next <= checkpoint_shown) return;
    checkpoint_shown = next;
    json line{{"checkpoint", next}};
    if (!hash.empty()) line["hash"] = ledger::ToHex(hash);  // none before position 1
    out << line.dump() << "\n";
  };
  auto resume_with = [&] {
    return " (resume with --from " + std::to_string((*subscription)->next_position()) +
           ((*subscription)->last_hash().empty()
                ? std::string()
                : " --after-hash " + ledger::ToHex((*subscription)->last_hash())) +
           ")";
  };
  for (;;) {
    if (!options.follow && (*subscription)->next_position() > stop_after) break;
    auto frame = (*subscription)->Next();
    if (!frame.ok()) {
      if (frame.error().code == "timeout") continue;
      // Every event before next_position() was printed: that is where to resume.
      std::cerr << "ledgerctl: " << frame.error().ToString() << resume_with() << "\n";
      return ExitOf(frame.error());  // a revoked token: 2; the server stopping or gone: 1
    }
    for (size_t i = 0; i < frame->events.size(); ++i) {
      auto event = frame->events.Decode(i);
      if (!event.ok()) {
        std::cerr << "ledgerctl: " << event.error().ToString() << "\n";
        return kExitFailure;
      }
      if (!options.follow && event->position > stop_after) {
        // Not shown: every position before it was examined.
        checkpoint(event->position, event->prev_hash);
        return kExitOk;
      }
      out << ingest::StoredEventToJson(*event).dump() << "\n";
    }
    if (frame->kind == client::SubscriptionFrame::Kind::kCheckpoint) {
      checkpoint(frame->next_position, frame->last_hash);
    }
    out.flush();
  }
  // Past the head of the start: everything received was shown.
  checkpoint((*subscription)->next_position(), (*subscription)->last_hash());
  return kExitOk;
}

}  // namespace gridledger::cli
