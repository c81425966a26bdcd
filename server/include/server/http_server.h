// HttpServer: ledgerd's HTTP/JSON front door (Boost.Beast), HTTP/1.1 with keep-alive. The
// endpoints, their status codes and bodies are specified in server/openapi.yaml and checked
// against this server by tests/integration/http_test.cc.
//
// Requests are parsed and answered on the io_context's threads; appends never block them (they
// complete through Service::AppendAsync), nor do the records of reads of personal data (Service::
// RecordPersonalDataReadAsync); queries that scan many states (overdue, KPI, evidence, verify,
// import) run on a small pool of their own.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>

#include "server/service.h"

namespace gridledger::server {

class HttpSession;

class HttpServer {
 public:
  // `query_threads`: threads of the pool that runs long queries (overdue, KPI, verify, import).
  HttpServer(boost::asio::io_context& io, Service& service, boost::asio::ip::tcp::endpoint endpoint,
             int query_threads = 2);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Returns the bound port (useful with port 0) or why not.
  std::variant<uint16_t, std::string> Start();

  // Stops accepting; idle connections are closed, busy ones after their current response. Returns
  // at once; the io_context finishes the work.
  void Stop();

  // Open connections now (for metrics).
  size_t connections() const;

 private:
  friend class HttpSession;
  void Accept();
  void Register(HttpSession* session, std::weak_ptr<HttpSession> weak);
  void Unregister(HttpSession* session);

  boost::asio::io_context& io_;
  Service& service_;
  boost::asio::ip::tcp::endpoint endpoint_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::thread_pool queries_;
  mutable std::mutex sessions_mutex_;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;
  bool stopping_ = false;  // under sessions_mutex_
  // Bytes of answers being written to the sessions' sockets (Limits::output_bytes_max).
  std::atomic<size_t> output_bytes_{0};
  // Bytes of request bodies being read or handled (Limits::input_bytes_max): false, and nothing
  // taken, when `bytes` more would pass it.
  bool TryAddInput(size_t bytes);
  std::atomic<size_t> input_bytes_{0};
};

}  // namespace gridledger::server
