// ledgerd's Cap'n Proto TCP door as a load client: one gridledger::client::Client connection, one
// append frame with one event per request, one request outstanding (no pipelining, like the HTTP
// and PostgreSQL clients).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
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

  bool Append(const LoadEvent& event, std::string* error) override {
    batch_[0] = event.json;
    auto answered = client_->Append(batch_);
    if (!answered.ok()) {
      *error = "TCP: " + answered.error().ToString();
      return false;
    }
    if (answered->size() != 1 || !answered->front().ok()) {
      *error = answered->size() != 1 ? "TCP: " + std::to_string(answered->size()) + " results"
                                     : "TCP: " + answered->front().error->ToString();
      return false;
    }
    return true;
  }

 private:
  explicit TcpAppender(std::unique_ptr<client::Client> client)
      : client_(std::move(client)), batch_(1) {}

  std::unique_ptr<client::Client> client_;
  std::vector<std::string> batch_;  // one event; its string keeps its capacity between calls
};

}  // namespace gridledger::bench
