// ledgerd's Cap'n Proto TCP door as a load client: one gridledger::client::Client connection; a
// unit is one append request carrying its events (server/schema/protocol.capnp, Append.json), and
// several requests may be in flight at once (pipelining), answered in completion order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "appender.h"
#include "client/client.h"

namespace gridledger::bench {

class TcpAppender final : public Appender {
 public:
  static std::unique_ptr<TcpAppender> Connect(uint16_t port, const std::string& token,
                                              std::string* error) {
    client::Options options;
    options.client_name = "load_bench";
    auto connected = client::Client::Connect("127.0.0.1", port, token, options);
    if (!connected.ok()) {
      *error = "TCP connect: " + connected.error().ToString();
      return nullptr;
    }
    return std::unique_ptr<TcpAppender>(new TcpAppender(std::move(connected).value()));
  }

  bool Send(const std::vector<LoadEvent>& events, uint64_t tag, std::string* error) override {
    batch_.resize(events.size());
    for (size_t i = 0; i < events.size(); ++i) batch_[i] = events[i].json;
    auto sent = client_->SendAppend(batch_);
    if (!sent.ok()) {
      *error = "TCP: " + sent.error().ToString();
      return false;
    }
    tags_[*sent] = tag;
    return true;
  }

  bool Receive(std::chrono::steady_clock::time_point deadline, std::vector<Answer>* answers,
               std::string* error) override {
    auto received = client_->ReceiveAnyAppend(deadline);
    if (!received.ok()) {
      *error = "TCP: " + received.error().ToString();
      return false;
    }
    if (!received->has_value()) return true;
    const client::AppendAnswer& answer = **received;
    auto tag = tags_.find(answer.request_id);
    Answer& out = answers->emplace_back(Answer{tag->second, true, ""});
    tags_.erase(tag);
    if (!answer.results.ok()) {
      out.ok = false;
      out.error = "TCP: " + answer.results.error().ToString();
      return true;
    }
    for (const client::AppendResult& result : *answer.results) {
      if (!result.ok()) {
        out.ok = false;
        out.error = "TCP: " + result.error->ToString();
        break;
      }
    }
    return true;
  }

 private:
  explicit TcpAppender(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}

  std::unique_ptr<client::Client> client_;
  std::vector<std::string> batch_;               // the strings keep their capacity between sends
  std::unordered_map<uint64_t, uint64_t> tags_;  // request id -> tag of the requests in flight
};

}  // namespace gridledger::bench
