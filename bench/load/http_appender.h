// ledgerd's HTTP door as a load client: one keep-alive HTTP/1.1 connection, POST /v1/events with
// one event per request and one request in flight (the driver's one-outstanding runs only). Leaner
// than tests/support/http_client.h (no resolver, no header map, the request head built once): the
// clients share the machine's cores with the server, so the less they spend, the more the figures
// say about the server.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "appender.h"

namespace gridledger::bench {

class HttpAppender final : public Appender {
 public:
  // Connects to 127.0.0.1:`port`; nullptr with `*error` set when it cannot.
  static std::unique_ptr<HttpAppender> Connect(uint16_t port, const std::string& token,
                                               std::string* error) {
    auto appender = std::unique_ptr<HttpAppender>(new HttpAppender(token));
    boost::system::error_code code;
    appender->socket_.connect({boost::asio::ip::make_address_v4("127.0.0.1"), port}, code);
    if (!code) appender->socket_.set_option(boost::asio::ip::tcp::no_delay(true), code);
    if (code) {
      *error = "HTTP connect: " + code.message();
      return nullptr;
    }
    return appender;
  }

  bool Send(const std::vector<LoadEvent>& events, uint64_t tag, std::string* error) override {
    if (events.size() != 1 || in_flight_) {
      *error = "HTTP: this client sends one event per request, one request at a time";
      return false;
    }
    const LoadEvent& event = events.front();
    const std::string length = std::to_string(event.json.size()) + "\r\n\r\n";
    const std::array<boost::asio::const_buffer, 3> request = {
        boost::asio::buffer(head_), boost::asio::buffer(length), boost::asio::buffer(event.json)};
    boost::system::error_code code;
    boost::asio::write(socket_, request, code);
    if (code) {
      *error = "HTTP: " + code.message();
      return false;
    }
    in_flight_ = true;
    tag_ = tag;
    return true;
  }

  // Waits for the answer whatever the deadline: with one request in flight the driver has
  // nothing else to do.
  bool Receive(std::chrono::steady_clock::time_point, std::vector<Answer>* answers,
               std::string* error) override {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kResponseBytesMax);
    boost::system::error_code code;
    http::read(socket_, buffer_, parser, code);
    in_flight_ = false;
    if (code) {
      *error = "HTTP: " + code.message();
      return false;
    }
    const auto& response = parser.get();
    // An answer to one event: {"ok":true,"position":…} (server/openapi.json, Appended).
    Answer& answer = answers->emplace_back(Answer{tag_, true, ""});
    if (response.result_int() != 200 || response.body().find("\"ok\":true") == std::string::npos) {
      answer.ok = false;
      answer.error = "HTTP " + std::to_string(response.result_int()) + ": " + response.body();
    }
    return true;
  }

 private:
  // An Appended answer is ~100 bytes; an error names a field and a rule.
  static constexpr uint64_t kResponseBytesMax = 64 * 1024;

  explicit HttpAppender(const std::string& token)
      : socket_(io_),
        head_("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
              "\r\nContent-Type: application/json\r\nContent-Length: ") {}

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::string head_;  // everything up to the Content-Length value
  bool in_flight_ = false;
  uint64_t tag_ = 0;  // of the request in flight
};

}  // namespace gridledger::bench
