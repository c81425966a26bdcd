// A minimal synchronous HTTP/1.1 client (Boost.Beast) of ledgerd's HTTP/JSON door, for ledgerctl
// --http, the tests and the benchmarks: one keep-alive connection, one request at a time.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
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

  // Sends one request and waits for its answer (each step at most `timeout`). A request on a
  // kept-alive connection the server has closed meanwhile is sent again once on a new one; on a
  // fresh connection it is not. When writing fails, the answer the server sent before closing
  // (e.g. 413 for a body over its limit) is still read and returned. `token` empty = no
  // Authorization header. Returns status 0 when no answer came.
  HttpResponse Request(boost::beast::http::verb verb, const std::string& target,
                       const std::string& token = "", const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    for (int attempt = 0; attempt < 2; ++attempt) {
      boost::beast::error_code error;
      const bool reused = stream_.has_value();
      if (!stream_) {
        stream_.emplace(io_);
        boost::asio::ip::tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(host_, std::to_string(port_), error);
        stream_->expires_after(timeout_);
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
      stream_->expires_after(timeout_);
      boost::beast::error_code write_error;
      http::write(*stream_, request, write_error);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1u << 30);
      stream_->expires_after(timeout_);
      http::read(*stream_, buffer_, parser, error);
      if (error) {
        stream_.reset();
        buffer_.clear();
        // The server closed a kept-alive connection before this request: send it again.
        if (reused) continue;
        return {};
      }
      auto response = parser.release();
      HttpResponse out{static_cast<int>(response.result_int()), response.body(), {}};
      for (const auto& field : response) {
        out.headers[std::string(field.name_string())] = std::string(field.value());
      }
      if (write_error || !response.keep_alive()) stream_.reset();
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
  std::chrono::seconds timeout_{120};  // a projection read or an import may take a while
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace gridledger::client
