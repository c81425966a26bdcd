// A minimal synchronous HTTP/1.1 client (Boost.Beast) of ledgerd's HTTP/JSON door, for ledgerctl
// --http, the tests and the benchmarks: one keep-alive connection, one request at a time.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <map>
#include <optional>
#include <string>

namespace gridledger::client {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}

  // Sends one request; reconnects when the server closed the connection. `token` empty = no
  // Authorization header. Returns status 0 when the server could not be reached.
  HttpResponse Request(boost::beast::http::verb verb, const std::string& target,
                       const std::string& token = "", const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    for (int attempt = 0; attempt < 2; ++attempt) {
      boost::beast::error_code error;
      if (!stream_) {
        stream_.emplace(io_);
        boost::asio::ip::tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(host_, std::to_string(port_), error);
        if (!error) stream_->connect(endpoints, error);
        if (error) {
          stream_.reset();
          return {};
        }
      }
      http::request<http::string_body> request(verb, target, 11);
      request.set(http::field::host, host_);
      if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
      if (!body.empty() || verb == http::verb::post) {
        request.set(http::field::content_type, "application/json");
        request.body() = body;
        request.prepare_payload();
      }
      for (const auto& [name, value] : headers) request.set(name, value);  // may replace the above
      http::write(*stream_, request, error);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1u << 30);
      if (!error) http::read(*stream_, buffer_, parser, error);
      if (error) {
        stream_.reset();
        buffer_.clear();
        continue;  // the server closed a kept-alive connection: retry once on a new one
      }
      auto response = parser.release();
      HttpResponse out{static_cast<int>(response.result_int()), response.body(), {}};
      for (const auto& field : response) {
        out.headers[std::string(field.name_string())] = std::string(field.value());
      }
      if (!response.keep_alive()) stream_.reset();
      return out;
    }
    return {};
  }

  HttpResponse Get(const std::string& target, const std::string& token = "") {
    return Request(boost::beast::http::verb::get, target, token);
  }
  HttpResponse Post(const std::string& target, const std::string& token, const std::string& body) {
    return Request(boost::beast::http::verb::post, target, token, body);
  }

 private:
  std::string host_;
  uint16_t port_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace gridledger::client
