#include "server/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "ingest/import.h"
#include "projections/kpi.h"
#include "projections/queries.h"
#include "projections/staff_audit.h"
#include "server/log.h"

namespace gridledger::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// After a refusal sent before the request's body was read, the body still arriving is read and
// dropped for at most this long before the connection closes: closing with unread input resets
// the connection, and the client could lose the answer that says why.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kLingerReadBytes = 4096;
// How long a report query waits for the projections to reach the ledger's head, so a client
// reads its own writes; after that it answers from the projections as they are.
constexpr std::chrono::milliseconds kProjectionWait{2000};
// The request line and headers of one HTTP request, at most (431 beyond).
constexpr uint32_t kHttpHeaderBytesMax = 16 * 1024;
// Rejected rows listed in an import's answer (all are counted).
constexpr size_t kImportErrorsListedMax = 1000;

http::status StatusOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUnauthenticated:
      return http::status::unauthorized;
    case ErrorKind::kForbidden:
      return http::status::forbidden;
    case ErrorKind::kInvalid:
      return http::status::bad_request;
    case ErrorKind::kConflict:
    case ErrorKind::kDuplicateMismatch:
      return http::status::conflict;
    case ErrorKind::kBusy:
    case ErrorKind::kUnavailable:
      return http::status::service_unavailable;
    case ErrorKind::kNotFound:
      return http::status::not_found;
    case ErrorKind::kInternal:
      break;
  }
  return http::status::internal_server_error;
}

// The status of an answer about several items (the events of a batch, the rows of an import),
// which lists every item's outcome in its body. A 4xx answer means the request changed nothing
// (design.md), so one that stored some items and refused others is 207 Multi-Status; one that
// stored nothing answers with its first refusal's status. An item already stored (a retry's
// duplicate) counts as stored, as in a 200: a retry of a request answers as the request did, and
// a client that lost the first answer is not told that items it had stored were not.
http::status ItemsStatus(const std::optional<ServiceError>& first_refusal, bool stored_any) {
  if (!first_refusal) return http::status::ok;
  return stored_any ? http::status::multi_status : StatusOf(first_refusal->kind);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of a path segment or query value ('+' is a space only in queries).
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::map<std::string, std::string> query;
};

std::optional<Target> ParseTarget(std::string_view target) {
  Target parsed;
  size_t question = target.find('?');
  auto path = PercentDecode(target.substr(0, question), false);
  if (!path) return std::nullopt;
  parsed.path = std::move(*path);
  if (question == std::string_view::npos) return parsed;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    parsed.query[*key] = *value;
  }
  return parsed;
}

std::optional<uint64_t> ParseCount(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// What a position in a query is (ParseCount's bounds).
constexpr char kPositionText[] = "a position: a whole number from 1, at most 19 digits";

ServiceError BadParameter(const std::string& name, const std::string& expected) {
  return InvalidField(name, "bad_value", "query parameter " + name + " must be " + expected);
}

// A backup's directory name under --backup-dir: one path component, no dot first.
constexpr size_t kBackupNameBytesMax = 100;
bool ValidBackupName(std::string_view name) {
  if (name.empty() || name.size() > kBackupNameBytesMax || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// gridledger-20261129T101500Z: when no name is given.
std::string DefaultBackupName(int64_t now_us) {
  const std::time_t seconds = static_cast<std::time_t>(now_us / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char name[40];
  std::strftime(name, sizeof name, "gridledger-%Y%m%dT%H%M%SZ", &utc);
  return name;
}

// Bodies can echo client bytes (a path, a field name) that are not UTF-8: those are replaced, so
// an answer can always be written.
template <typename Json>
std::string Dump(const Json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ordered_json ErrorBody(const ServiceError& error) {
  return {{"ok", false}, {"error", error.error}};
}

}  // namespace

// One HTTP/1.1 connection: read a request, answer it, repeat while keep-alive.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `counted`: the connection from `address` was admitted by Service::TryAddConnection (and is
  // released here).
  HttpSession(tcp::socket socket, HttpServer& server, bool counted, std::string address)
      : stream_(std::move(socket)),
        server_(server),
        service_(server.service_),
        counted_(counted),
        address_(std::move(address)) {}

  ~HttpSession() {
    ReleaseInput();
    server_.Unregister(this);
    if (counted_) service_.RemoveConnection(address_);
  }

  void Start() {
    server_.Register(this, weak_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // From HttpServer::Stop: close when idle; a busy session closes after its response.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->stream_.close();
      }
    });
  }

  // The client's address, "" once the socket is gone.
  std::string Peer() {
    beast::error_code error;
    const tcp::endpoint endpoint = stream_.socket().remote_endpoint(error);
    return error ? std::string()
                 : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  // Refuses the connection with 503 (over `limit`, a connection limit) and closes it.
  void RefuseAndClose(const char* limit) {
    closing_ = true;
    busy_ = true;
    auto response =
        std::make_shared<http::response<http::string_body>>(http::status::service_unavailable, 11);
    response->set(http::field::content_type, "application/json");
    response->set(http::field::retry_after, "1");
    response->keep_alive(false);
    Log(LogLevel::kDebug, "http connection refused",
        {{"peer", Peer()}, {"reason", limit}, {"status", 503}});
    response->body() = Dump(ErrorBody(BusyLimit(limit, "too many connections; retry later")));
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                      });
  }

 private:
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  void Read() {
    request_ = {};  // the previous request's body, answered
    header_checked_ = false;
    header_principal_.reset();
    ReleaseInput();
    if (closing_) return;
    parser_.emplace();
    // The body's limit is set once its headers are judged (OnHeader): a Content-Length over it
    // would otherwise fail the header before the token is looked at. (Not boost::none: Beast
    // 1.74 compares a Content-Length with an empty limit as over it.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(kHttpHeaderBytesMax);
    // Slow-loris protection (Limits): the line and headers within http_header_timeout_seconds,
    // the body within http_body_timeout_seconds more; else the connection is closed.
    stream_.expires_after(std::chrono::seconds(service_.limits().http_header_timeout_seconds));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code error, size_t) { self->OnHeader(error); });
  }

  void OnHeader(beast::error_code error) {
    if (error) return OnRead(error);
    stream_.expires_after(std::chrono::seconds(service_.limits().http_body_timeout_seconds));
    // curl and libcurl ask before sending a body over 1 MiB (an import) and wait a second for
    // this answer when none comes.
    const auto& header = parser_->get();
    const bool body_follows = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    // Every body needs a known token (only /v1/ takes bodies): without one the request is answered
    // from its headers alone (401 for /v1/, else 404 / 405), its body is never read, and it takes
    // no room from input_bytes_max.
    if (body_follows) {
      header_principal_ = BearerPrincipal(header);
      header_checked_ = true;
    }
    const bool unknown = body_follows && !header_principal_;
    // Then the size: a Content-Length over http_body_bytes_max is refused from the headers (a
    // chunked body is held to it as it is read).
    const size_t body_max = service_.limits().http_body_bytes_max;
    const bool too_large = !unknown && !parser_->chunked() &&
                           parser_->content_length().value_or(0) > body_max;
    // Bodies being read hold their room from the start (their Content-Length; a chunked one may
    // grow to http_body_bytes_max): together they stay under input_bytes_max.
    const size_t body_bytes = !body_follows ? 0
                              : parser_->chunked()
                                  ? body_max
                                  : static_cast<size_t>(parser_->content_length().value_or(0));
    const bool room = unknown || too_large || server_.TryAddInput(body_bytes);
    if (unknown || too_large || !room) {
      request_started_ = std::chrono::steady_clock::now();
      request_ = parser_->release();
      target_ = Target{};
      principal_id_.clear();
      keep_alive_ = false;
      linger_ = true;
      version_ = header.version();
      busy_ = true;
      if (unknown) {
        Route();  // answers why, from the headers
      } else if (too_large) {
        Respond(http::status::payload_too_large, BodyTooLarge());
      } else {
        Fail(BusyLimit("input_bytes_max",
                       "the request bodies being received on all connections reached "
                       "input_bytes_max; send this one again later"));
      }
      return;
    }
    input_reserved_ = body_bytes;
    parser_->body_limit(body_max);
    if (header.version() == 11 && beast::iequals(header[http::field::expect], "100-continue")) {
      // Asked before the body (curl does for an import): with a known token, "go on".
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                        header.version());
      http::async_write(stream_, *interim,
                        [self = shared_from_this(), interim](beast::error_code error, size_t) {
                          if (error) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  ordered_json BodyTooLarge() const {
    return ErrorBody(InvalidField("body", "http_body_bytes_max",
                                  "request body larger than " +
                                      std::to_string(service_.limits().http_body_bytes_max) +
                                      " bytes (ledgerd --http-body-bytes-max)"));
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code error, size_t) { self->OnRead(error); });
  }

  void OnRead(beast::error_code error) {
    request_started_ = std::chrono::steady_clock::now();
    request_ = {};
    target_ = Target{};
    principal_id_.clear();
    if (error == beast::error::timeout && parser_ && parser_->got_some()) {
      // A request under way ran out of time (the stream has closed the socket, so no answer can
      // be sent): said here, so that a slow link is told from a crash. A connection kept alive
      // that simply sent nothing more is not worth a line.
      const bool body = parser_->is_header_done();
      Log(LogLevel::kInfo, "http request timed out",
          {{"address", address_},  // the socket, and with it the port, is gone
           {"waiting_for", body ? "body" : "headers"},
           {"limit", body ? "http_body_timeout_seconds" : "http_header_timeout_seconds"},
           {"seconds", body ? service_.limits().http_body_timeout_seconds
                            : service_.limits().http_header_timeout_seconds}});
    }
    if (error == http::error::end_of_stream || error == net::error::operation_aborted ||
        error == beast::error::timeout || error == net::error::eof) {
      return Close();
    }
    if (error) {
      // A request we cannot parse (oversized body or header, bad syntax): answer and close.
      keep_alive_ = false;
      version_ = 11;
      busy_ = true;
      // Named like every refusal of input: the part of the request at fault and the limit or
      // rule it broke.
      if (error == http::error::body_limit) {  // a chunked body grew past it
        linger_ = true;  // the rest of it is dropped for a while, so the client reads the answer
        return Respond(http::status::payload_too_large, BodyTooLarge());
      }
      if (error == http::error::header_limit) {
        return Respond(http::status::request_header_fields_too_large,
                       ErrorBody(InvalidField("headers", "header_bytes_max",
                                              "request headers larger than " +
                                                  std::to_string(kHttpHeaderBytesMax) + " bytes")));
      }
      return Respond(http::status::bad_request,
                     ErrorBody(InvalidField("request", "http_syntax",
                                            "malformed HTTP request: " + error.message())));
    }
    request_ = parser_->release();
    keep_alive_ = request_.keep_alive();
    version_ = request_.version();
    busy_ = true;
    Route();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    ReleaseInput();  // what is still read is dropped, not held
    if (!linger_) return;
    linger_ = false;
    buffer_.clear();
    buffer_.shrink_to_fit();
    stream_.expires_after(kLingerTimeout);
    linger_bytes_ = std::make_unique<char[]>(kLingerReadBytes);
    Discard();
  }

  void ReleaseInput() {
    server_.input_bytes_ -= input_reserved_;
    input_reserved_ = 0;
  }

  // Reads and drops input until the peer closes or kLingerTimeout passes (Close).
  void Discard() {
    stream_.async_read_some(net::buffer(linger_bytes_.get(), kLingerReadBytes),
                            [self = shared_from_this()](beast::error_code error, size_t) {
                              if (!error) self->Discard();
                            });
  }

  void Respond(http::status status, const ordered_json& body) { Respond(status, Dump(body)); }

  void Respond(http::status status, std::string body) {
    // One line per answer at debug level, refusals included: what was asked, by whom, how it was
    // answered and how long that took.
    if (LogEnabled(LogLevel::kDebug)) {
      ordered_json fields = {
          {"method", std::string(request_.method_string())},
          {"path", target_.path.empty() ? std::string(request_.target()) : target_.path},
          {"status", static_cast<unsigned>(status)},
          {"ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           request_started_)
                     .count()},
          {"peer", Peer()}};
      if (!principal_id_.empty()) fields["principal"] = principal_id_;
      Log(LogLevel::kDebug, "http request", std::move(fields));
    }
    auto response = std::make_shared<Response>(status, version_);
    response->set(http::field::server, "ledgerd");
    response->set(http::field::content_type, "application/json");
    if (status == http::status::unauthorized) {
      response->set(http::field::www_authenticate, "Bearer");
    }
    if (status == http::status::service_unavailable) response->set(http::field::retry_after, "1");
    if (status == http::status::method_not_allowed) response->set(http::field::allow, allow_);
    response->keep_alive(keep_alive_ && !closing_);
    response->body() = std::move(body);
    response->body().push_back('\n');
    response->prepare_payload();
    const size_t bytes = response->body().size();
    server_.output_bytes_ += bytes;
    http::async_write(
        stream_, *response,
        [self = shared_from_this(), response, bytes](beast::error_code error, size_t) {
          self->server_.output_bytes_ -= bytes;
          self->busy_ = false;
          if (error || !response->keep_alive()) return self->Close();
          self->Read();
        });
  }

  void Fail(const ServiceError& error) { Respond(StatusOf(error.kind), ErrorBody(error)); }

  // Runs `work` on the query pool and answers from this session's executor. The guard keeps the
  // io_context running meanwhile: at shutdown, run() would otherwise return while the work is on
  // the pool, and the answer would never be sent.
  void OffLoad(std::function<std::pair<http::status, std::string>()> work) {
    net::post(server_.queries_, [self = shared_from_this(), work = std::move(work),
                                 guard = net::make_work_guard(stream_.get_executor())]() mutable {
      auto [status, body] = work();
      net::post(self->stream_.get_executor(), [self, status, body = std::move(body)]() mutable {
        self->Respond(status, std::move(body));
      });
      guard.reset();
    });
  }

  // A read of personal data is answered (with `body`) only once it is recorded — a durable
  // append, made without blocking this I/O thread — and refused when it cannot be.
  void RespondOnceRecorded(const ingest::Principal& principal, std::string_view what,
                           std::string body) {
    // A held answer counts as output (output_bytes_max) until Respond counts it again.
    const size_t held = body.size();
    server_.output_bytes_ += held;
    service_.RecordPersonalDataReadAsync(
        principal, what, Header("X-Approved-By"),
        [self = shared_from_this(), held,
         body = std::move(body)](std::optional<ServiceError> refusal) mutable {
          net::post(self->stream_.get_executor(),
                    [self, held, body = std::move(body), refusal = std::move(refusal)]() mutable {
                      self->server_.output_bytes_ -= held;
                      if (refusal) return self->Fail(*refusal);
                      self->Respond(http::status::ok, std::move(body));
                    });
        });
  }

  static std::pair<http::status, std::string> Answer(const ordered_json& body) {
    return {http::status::ok, Dump(body)};
  }
  static std::pair<http::status, std::string> Answer(const json& body) {
    return {http::status::ok, Dump(body)};
  }
  static std::pair<http::status, std::string> Answer(const ServiceError& error) {
    return {StatusOf(error.kind), Dump(ErrorBody(error))};
  }

  // The principal of the Authorization header's bearer token; nullopt when there is none or the
  // token is unknown.
  std::optional<ingest::Principal> BearerPrincipal(const http::request_header<>& header) {
    constexpr std::string_view kBearer = "Bearer ";
    const auto field = header[http::field::authorization];
    const std::string_view value(field.data(), field.size());
    if (!value.starts_with(kBearer)) return std::nullopt;
    return service_.Authenticate(value.substr(kBearer.size()));
  }

  std::optional<ingest::Principal> Authenticated() {
    // A request with a body had its token looked up by OnHeader (not again: each lookup of an
    // unknown token counts as a refusal).
    if (header_checked_ && header_principal_) {
      principal_id_ = header_principal_->id;
      return header_principal_;
    }
    if (request_.find(http::field::authorization) == request_.end()) {
      Fail(MakeError(ErrorKind::kUnauthenticated, "unauthenticated",
                     "missing Authorization: Bearer <token>"));
      return std::nullopt;
    }
    std::optional<ingest::Principal> principal =
        header_checked_ ? std::nullopt : BearerPrincipal(request_.base());
    if (principal) principal_id_ = principal->id;
    if (!principal) {
      Fail(MakeError(ErrorKind::kUnauthenticated, "unauthenticated", "unknown bearer token"));
    }
    return principal;
  }

  bool Allowed(const ingest::Principal& principal, ingest::Access access,
               std::string_view org = "") {
    if (auto refused = service_.CheckAccess(principal, access, org)) {
      Fail(*refused);
      return false;
    }
    return true;
  }

  std::string Header(std::string_view name) const {
    auto found = request_.find(beast::string_view(name.data(), name.size()));
    return found == request_.end() ? std::string() : std::string(found->value());
  }

  void Route() {
    auto target = ParseTarget(std::string_view(request_.target().data(), request_.target().size()));
    if (!target) {
      return Fail(MakeError(ErrorKind::kInvalid, "invalid", "malformed request target"));
    }
    target_ = std::move(*target);
    const std::string& path = target_.path;
    const http::verb verb = request_.method();
    if (path == "/healthz") {
      if (verb != http::verb::get) return MethodNotAllowed("GET");
      // Not ok once a verification of the hash chain failed: the store was damaged, and what
      // it serves cannot be trusted until an administrator has looked.
      const std::optional<Service::ChainCheck> chain = service_.chain_check();
      ordered_json health = {{"ok", !chain || chain->ok},
                             {"head", service_.ledger().Head()},
                             {"projections", service_.engine().checkpoint()},
                             {"draining", service_.draining()}};
      if (chain) {
        health["chain"] = chain->ok ? ordered_json{{"verified", true}, {"head", chain->head}}
                                    : ordered_json{{"verified", false}, {"error", chain->error}};
      }
      return Respond(chain && !chain->ok ? http::status::service_unavailable : http::status::ok,
                     health);
    }
    if (!path.starts_with("/v1/")) return NotFound();
    auto principal = Authenticated();
    if (!principal) return;
    // Clients that do not read their answers hold at most output_bytes_max of the server's
    // memory, however many they are: past it, reads are refused before any work is done.
    if (verb == http::verb::get &&
        server_.output_bytes_.load() >= service_.limits().output_bytes_max) {
      return Fail(BusyLimit("output_bytes_max",
                            "the answers being written to all connections reached "
                            "output_bytes_max; retry later"));
    }
    if (path == "/v1/events") {
      if (verb == http::verb::post) return PostEvents(*principal);
      if (verb == http::verb::get) return GetEvents(*principal);
      return MethodNotAllowed("GET, POST");
    }
    if (path == "/v1/import" || path == "/v1/backup") {
      if (verb != http::verb::post) return MethodNotAllowed("POST");
      return path == "/v1/import" ? PostImport(*principal) : PostBackup(*principal);
    }
    // Every other endpoint is read with GET; a path that is none of them is 404 whatever the
    // method, so a known path with a wrong method is told which one it takes.
    if (verb != http::verb::get) {
      if (IsGetEndpoint(path)) return MethodNotAllowed("GET");
      return NotFound();
    }
    if (path.starts_with("/v1/streams/")) {
      return GetStream(*principal, path.substr(std::string_view("/v1/streams/").size()));
    }
    if (path.starts_with("/v1/apps/")) {
      return GetApp(*principal, path.substr(std::string_view("/v1/apps/").size()));
    }
    if (path.starts_with("/v1/evidence/")) {
      return GetEvidence(*principal, path.substr(std::string_view("/v1/evidence/").size()));
    }
    if (path.starts_with("/v1/staff/")) {
      return GetStaff(*principal, path.substr(std::string_view("/v1/staff/").size()));
    }
    if (path == "/v1/evidence") return GetEvidenceCoverage(*principal);
    if (path == "/v1/overdue") return GetOverdue(*principal);
    if (path == "/v1/kpi") return GetKpi(*principal);
    if (path == "/v1/verify") return GetVerify(*principal);
    if (path == "/v1/digest") return GetDigest(*principal);
    NotFound();
  }

  static bool IsGetEndpoint(const std::string& path) {
    for (std::string_view prefix : {"/v1/streams/", "/v1/apps/", "/v1/evidence/", "/v1/staff/"}) {
      if (path.starts_with(prefix)) return true;
    }
    for (std::string_view exact :
         {"/v1/evidence", "/v1/overdue", "/v1/kpi", "/v1/verify", "/v1/digest"}) {
      if (path == exact) return true;
    }
    return false;
  }

  void NotFound() {
    Fail(MakeError(ErrorKind::kNotFound, "not_found", "no such endpoint: " + target_.path));
  }
  // 405 with the methods the path takes (RFC 9110: Allow is required on a 405).
  void MethodNotAllowed(std::string allow) {
    allow_ = std::move(allow);
    Respond(http::status::method_not_allowed,
            ErrorBody(MakeError(ErrorKind::kInvalid, "method_not_allowed",
                                std::string(request_.method_string()) + " is not allowed on " +
                                    target_.path + "; it takes " + allow_)));
  }

  // ---- POST /v1/events: one event (an object) or a batch (an array), appended in order.

  struct Batch {
    bool single = false;
    std::vector<std::variant<domain::ClientEvent, domain::DecodeError>> events;
    std::vector<ordered_json> results;
    std::optional<ServiceError> first_error;
    bool stored_any = false;  // an event stored, now or before (a retry's duplicate)
  };

  void PostEvents(const ingest::Principal& principal) {
    // The same checks as every other door: no key twice, bounded nesting (one level more for the
    // array of a batch; each event is held to kJsonDepthMax when it is decoded).
    auto parsed = domain::ParseClientJson(request_.body(), domain::kJsonDepthMax + 1);
    if (auto* error = std::get_if<domain::DecodeError>(&parsed)) {
      service_.ReportRejectedInput(*error);
      return Fail(FromDecodeError(*error));
    }
    const json& body = std::get<json>(parsed);
    auto batch = std::make_shared<Batch>();
    if (body.is_object()) {
      batch->single = true;
      batch->events.push_back(domain::DecodeClientEvent(body));
    } else if (body.is_array()) {
      if (body.empty() || body.size() > service_.limits().batch_events_max) {
        // The rule is the limit's name, as the TCP door says it.
        return Fail(InvalidField("body", "batch_events_max",
                                 "a batch holds 1 to " +
                                     std::to_string(service_.limits().batch_events_max) +
                                     " events, not " + std::to_string(body.size())));
      }
      for (const json& element : body) batch->events.push_back(domain::DecodeClientEvent(element));
      // Bad input changes nothing: a batch holding an event that does not decode is refused whole.
      auto bad = std::find_if(batch->events.begin(), batch->events.end(), [](const auto& event) {
        return std::holds_alternative<domain::DecodeError>(event);
      });
      if (bad != batch->events.end()) {
        const ServiceError not_appended =
            NotAppendedWithBadBatch(static_cast<size_t>(bad - batch->events.begin()));
        for (auto& event : batch->events) {
          if (auto* error = std::get_if<domain::DecodeError>(&event)) {
            service_.ReportRejectedInput(*error);
            Record(*batch, FromDecodeError(*error));
          } else {
            Record(*batch, not_appended);
          }
        }
        return FinishBatch(*batch);
      }
    } else {
      return Fail(InvalidField("body", "wrong_type",
                               "the body must be one event (an object) or a batch (an array)"));
    }
    // Taken whole or refused whole (503) by appends_inflight_max: nothing half-stored.
    const size_t events = static_cast<size_t>(std::count_if(
        batch->events.begin(), batch->events.end(),
        [](const auto& event) { return std::holds_alternative<domain::ClientEvent>(event); }));
    if (auto busy = service_.AdmitBatch(events)) {
      for (size_t i = 0; i < batch->events.size(); ++i) Record(*batch, *busy);
      return FinishBatch(*batch);
    }
    AppendNext(principal, std::move(batch));
  }

  void AppendNext(const ingest::Principal& principal, std::shared_ptr<Batch> batch) {
    while (batch->results.size() < batch->events.size()) {
      auto& next = batch->events[batch->results.size()];
      if (auto* error = std::get_if<domain::DecodeError>(&next)) {
        service_.ReportRejectedInput(*error);
        ServiceError refused = FromDecodeError(*error);
        Record(*batch, refused);
        continue;
      }
      domain::ClientEvent event = std::move(std::get<domain::ClientEvent>(next));
      std::string stream = event.stream;
      service_.AppendAsync(
          principal, std::move(event),
          [self = shared_from_this(), principal, batch,
           stream = std::move(stream)](AppendAnswer answer) mutable {
            net::post(self->stream_.get_executor(),
                      [self, principal = std::move(principal), batch, stream = std::move(stream),
                       answer = std::move(answer)]() mutable {
                        if (auto* outcome = std::get_if<ingest::IngestOutcome>(&answer)) {
                          batch->stored_any = true;
                          batch->results.push_back(ingest::AppendedJson(stream, *outcome));
                        } else {
                          self->Record(*batch, std::get<ServiceError>(answer));
                        }
                        self->AppendNext(principal, std::move(batch));
                      });
          },
          /*admitted=*/true);
      return;
    }
    FinishBatch(*batch);
  }

  void Record(Batch& batch, const ServiceError& error) {
    ordered_json result = ErrorBody(error);
    if (!batch.single) result["index"] = batch.results.size();
    batch.results.push_back(std::move(result));
    if (!batch.first_error) batch.first_error = error;
  }

  void FinishBatch(Batch& batch) {
    const http::status status = ItemsStatus(batch.first_error, batch.stored_any);
    if (batch.single) return Respond(status, batch.results.front());
    ordered_json body = {{"ok", !batch.first_error.has_value()}, {"results", batch.results}};
    Respond(status, body);
  }

  // ---- reads of the log

  void GetEvents(const ingest::Principal& principal) {
    if (!Allowed(principal, ingest::Access::kReadLog)) return;
    uint64_t from = 1;
    uint64_t limit = 1000;
    if (auto it = target_.query.find("from"); it != target_.query.end()) {
      auto parsed = ParseCount(it->second);
      if (!parsed || *parsed == 0) return Fail(BadParameter("from", kPositionText));
      from = *parsed;
    }
    std::optional<std::string> after_hash = AfterHashParameter();
    if (!after_hash) return;
    auto resume = CheckResumePoint(service_.ledger(), from, *after_hash,
                                   {.from = "from", .after_hash = "after_hash"});
    if (auto* refused = std::get_if<ServiceError>(&resume)) return Fail(std::move(*refused));
    // A page holds at most read_events_max events, as over TCP: a larger limit is clamped (not
    // refused), and `next` tells where to go on.
    const uint64_t max = service_.limits().read_events_max;
    limit = std::min(limit, max);
    if (auto it = target_.query.find("limit"); it != target_.query.end()) {
      auto parsed = ParseCount(it->second);
      if (!parsed || *parsed == 0) return Fail(BadParameter("limit", "a whole number from 1"));
      limit = std::min(*parsed, max);
    }
    Page page(service_.limits().frame_bytes_max, limit);
    ledger::Status scanned = service_.ledger().Scan(
        from, [&page](const ledger::EventView& event) { return page.Add(event); });
    if (!scanned.ok()) return Fail(FromStatus(scanned));
    const uint64_t next = page.empty() ? from : page.last.position + 1;
    const bool personal = page.personal;
    const uint64_t last = page.last.position;
    std::string body = "{\"events\":" + page.Array() + ",\"next\":" + std::to_string(next) +
                       ",\"head\":" + std::to_string(service_.ledger().Head()) + "}";
    if (!personal) return Respond(http::status::ok, std::move(body));
    RespondOnceRecorded(principal, Service::LogReadWhat(from, last), std::move(body));
  }

  // A page of events read in place, rendered as JSON text one by one (once: the page is its
  // text): at most `limit` events and, past the first, at most `bytes_max` bytes of them (as a
  // TCP frame), so one answer never holds more than that however large the events are.
  struct Page {
    Page(size_t bytes_max, uint64_t limit) : bytes_max(bytes_max), limit(limit) {}
    bool empty() const { return count == 0; }
    // Adds `event` unless the page is full; false when the page is full (stop reading).
    bool Add(const ledger::EventView& event) {
      if (count >= limit) return false;
      ledger::StoredEvent stored = ledger::StoredEvent::FromEnvelope(event.envelope());
      const std::string rendered = Dump(ingest::StoredEventToJson(stored));
      if (count > 0 && events.size() + rendered.size() > bytes_max) return false;
      if (count > 0) events += ',';
      events += rendered;
      ++count;
      personal = personal || Service::HoldsPersonalData(stored.stream);
      last = std::move(stored);
      return count < limit;
    }
    // The events as a JSON array.
    std::string Array() const { return "[" + events + "]"; }
    const size_t bytes_max;
    const uint64_t limit;
    std::string events;  // rendered, comma-separated
    uint64_t count = 0;
    bool personal = false;
    ledger::StoredEvent last;  // the last event added
  };

  // The raw bytes of the after_hash parameter ("" when absent), or nullopt with the refusal sent.
  std::optional<std::string> AfterHashParameter() {
    auto it = target_.query.find("after_hash");
    if (it == target_.query.end()) return std::string();
    std::optional<std::string> bytes = ledger::FromHex(it->second);
    if (!bytes || bytes->size() != ledger::kHashBytes) {
      Fail(BadParameter("after_hash", "the 64 hex digits of an event's hash"));
      return std::nullopt;
    }
    return bytes;
  }

  void GetStream(const ingest::Principal& principal, std::string stream) {
    if (auto refused = service_.CheckStreamRead(principal, stream)) return Fail(*refused);
    uint64_t from_version = 0;
    uint64_t limit = service_.limits().read_events_max;
    if (auto it = target_.query.find("from_version"); it != target_.query.end()) {
      auto parsed = ParseCount(it->second);
      if (!parsed) return Fail(BadParameter("from_version", "a version >= 0"));
      from_version = *parsed;
    }
    if (auto it = target_.query.find("limit"); it != target_.query.end()) {
      auto parsed = ParseCount(it->second);
      if (!parsed || *parsed == 0) return Fail(BadParameter("limit", "a whole number from 1"));
      limit = std::min(*parsed, limit);  // clamped to read_events_max, as GET /v1/events
    }
    std::optional<std::string> after_hash = AfterHashParameter();
    if (!after_hash) return;
    auto resume = CheckStreamResumePoint(service_.ledger(), stream, from_version, *after_hash,
                                         {.from = "from_version", .after_hash = "after_hash"});
    if (auto* refused = std::get_if<ServiceError>(&resume)) return Fail(std::move(*refused));
    Page page(service_.limits().frame_bytes_max, limit);
    ledger::Status scanned = service_.ledger().ScanStream(
        stream, from_version, limit,
        [&page](const ledger::EventView& event) { return page.Add(event); });
    if (!scanned.ok()) return Fail(FromStatus(scanned));
    if (page.empty() && from_version == 0) {
      return Fail(MakeError(ErrorKind::kNotFound, "not_found", "no stream " + stream));
    }
    const bool empty = page.empty();
    const uint64_t next_version = empty ? from_version : page.last.version + 1;
    std::string body = "{\"stream\":" + Dump(ordered_json(stream)) + ",\"events\":" + page.Array() +
                       ",\"next_version\":" + std::to_string(next_version) + "}";
    // An application's events carry the customer's personal data.
    if (empty || !Service::HoldsPersonalData(stream)) {
      return Respond(http::status::ok, std::move(body));
    }
    RespondOnceRecorded(principal, stream, std::move(body));
  }

  // ---- projections

  std::optional<std::optional<int64_t>> TimeParameter(const std::string& name) {
    auto it = target_.query.find(name);
    if (it == target_.query.end()) return std::optional<int64_t>();
    auto parsed = name == "as_of" ? projections::ParseAsOfArgument(it->second, service_.NowUs())
                                  : projections::ParseTimeArgument(it->second);
    if (!parsed) {
      // "…T10:00:00+08:00" sent unescaped arrives with a space for its '+'.
      const bool plus_as_space = it->second.find(' ') != std::string::npos;
      Fail(BadParameter(name, std::string("YYYY-MM-DD or an RFC 3339 time") +
                                  (plus_as_space ? " (a '+' in a query is written %2B)" : "")));
      return std::nullopt;
    }
    return parsed;
  }

  void GetApp(const ingest::Principal& principal, const std::string& id) {
    auto at = TimeParameter("at");
    if (!at) return;
    auto as_of = TimeParameter("as_of");
    if (!as_of) return;
    // A role that may not read applications at all is refused before anything is read, so the
    // answer does not tell whether the application exists.
    if (!Allowed(principal, ingest::Access::kReadApplication, principal.org)) return;
    if (*as_of && **as_of > service_.NowUs()) return Fail(AsOfInFuture());
    const std::string stream = projections::AppStream(id);
    auto view = projections::AppView(service_.ledger(), stream, *at, *as_of, service_.NowUs(),
                                     service_.calendar(), service_.profile());
    if (!view.ok()) return Fail(FromStatus(view.status()));
    if (!view->has_value()) {
      return Fail(MakeError(ErrorKind::kNotFound, "not_found",
                            projections::AppNotFoundMessage(stream, *at || *as_of)));
    }
    const json& shown = **view;
    if (auto refused = service_.CheckApplicationRead(principal, shown.value("org", ""))) {
      return Fail(*refused);
    }
    RespondOnceRecorded(principal, stream, Dump(shown));
  }

  void GetEvidence(const ingest::Principal& principal, const std::string& id) {
    if (!Allowed(principal, ingest::Access::kReadApplication, principal.org)) return;
    const std::string stream = projections::AppStream(id);
    std::string approved_by = Header("X-Approved-By");
    Service& service = service_;
    OffLoad([&service, principal, stream, approved_by]() -> std::pair<http::status, std::string> {
      service.engine().WaitForCheckpoint(service.ledger().Head(), kProjectionWait);
      auto app = service.engine().Application(stream);
      if (!app.ok()) return Answer(FromStatus(app.status()));
      auto evidence = service.engine().Evidence(stream);
      if (!evidence.ok()) return Answer(FromStatus(evidence.status()));
      if (!app->has_value() && !evidence->has_value()) {
        return Answer(MakeError(ErrorKind::kNotFound, "not_found", "no application " + stream));
      }
      std::string org = app->has_value() ? (*app)->org : "";
      if (auto refused = service.CheckApplicationRead(principal, org)) return Answer(*refused);
      if (!evidence->has_value()) {
        return Answer(
            MakeError(ErrorKind::kNotFound, "not_found", "no evidence recorded for " + stream));
      }
      if (auto refused = service.RecordPersonalDataRead(principal, stream, approved_by)) {
        return Answer(*refused);
      }
      return Answer(projections::ToJson(**evidence));
    });
  }

  // ---- GET /v1/evidence?period=P[&org=O]: the evaluation evidence of a period (7.2): coverage
  // of document reviews, site inspections and callbacks, and the third-party surveys.
  void GetEvidenceCoverage(const ingest::Principal& principal) {
    auto period = target_.query.find("period");
    if (period == target_.query.end() || !projections::PeriodMonths(period->second)) {
      return Fail(BadParameter("period", "YYYY-MM or YYYY-Qn"));
    }
    const std::optional<projections::ReportOrgs> orgs = ReportScope(principal);
    if (!orgs) return;
    Service& service = service_;
    OffLoad([&service, period = period->second,
             orgs = *orgs]() -> std::pair<http::status, std::string> {
      service.engine().WaitForCheckpoint(service.ledger().Head(), kProjectionWait);
      auto states = service.engine().EvidenceStates();
      if (!states.ok()) return Answer(FromStatus(states.status()));
      return Answer(projections::EvidenceCoverage(*states, period, orgs));
    });
  }

  // The staff audit: what the staff/ streams and every application's events say of one staff
  // member, so it is read as they are, by the log's readers (auditor, reader) — by that staff
  // member (one's own record holds one's own actions, and a clerk disputing her assessment needs
  // to see it) and by the directors who head them (domain.md: a director sees all of its org;
  // job standard 4.2.1: it gives the assessment opinions).
  void GetStaff(const ingest::Principal& principal, const std::string& staff_id) {
    if (principal.id != staff_id && !service_.HeadsStaff(principal, staff_id) &&
        !Allowed(principal, ingest::Access::kReadLog)) {
      return;
    }
    if (!domain::IsActorId(staff_id)) {
      return Fail(BadParameter("id", "a staff id: 1 to 64 of [A-Za-z0-9._:-]"));
    }
    Service& service = service_;
    OffLoad([&service, staff_id]() -> std::pair<http::status, std::string> {
      service.engine().WaitForCheckpoint(service.ledger().Head(), kProjectionWait);
      auto audit = service.engine().StaffAudit(staff_id);
      if (!audit.ok()) return Answer(FromStatus(audit.status()));
      if (!audit->has_value()) {
        return Answer(
            MakeError(ErrorKind::kNotFound, "not_found", "no action of staff " + staff_id));
      }
      return Answer(projections::ToJson(**audit));
    });
  }

  // What a report asked by `principal` covers (ReportOrg), once it may read it (nullopt after
  // answering otherwise). The units below the org are in it for a director (its units) and for a
  // principal who may read every org; others (a clerk of KM) get their own unit only.
  std::optional<projections::ReportOrgs> ReportScope(const ingest::Principal& principal) {
    auto report_org = ReportOrg(principal);
    if (!report_org) return std::nullopt;
    if (!Allowed(principal, ingest::Access::kReadReports, report_org->value_or(""))) {
      return std::nullopt;
    }
    return projections::ReportOrgs{
        *report_org, ingest::ReachesOrgsBelow(principal.role, ingest::Access::kReadReports) ||
                         !ingest::CheckAccess(principal, ingest::Access::kReadReports, "")};
  }

  // The org a report (overdue list, KPI table, a period's evidence) is about: the one asked for;
  // with none, all orgs, or the principal's own org when it may see only that (a director's "my
  // KPI table"). An org given empty or malformed is refused (400 org): it would match no org and
  // answer an empty list or an all-null table as if they were some org's. nullopt after
  // answering.
  std::optional<std::optional<std::string>> ReportOrg(const ingest::Principal& principal) {
    auto it = target_.query.find("org");
    if (it != target_.query.end()) {
      if (!domain::IsOrgUnitId(it->second)) {
        Fail(BadParameter("org",
                          "an org unit id: 1 to 64 of [A-Za-z0-9._:-] in non-empty dot-separated "
                          "parts, e.g. KM.XS"));
        return std::nullopt;
      }
      return std::optional<std::string>(it->second);
    }
    if (ingest::CheckAccess(principal, ingest::Access::kReadReports, "")) {
      return std::optional<std::string>(principal.org);
    }
    return std::optional<std::string>();
  }

  void GetOverdue(const ingest::Principal& principal) {
    auto at = TimeParameter("at");
    if (!at) return;
    const std::optional<projections::ReportOrgs> orgs = ReportScope(principal);
    if (!orgs) return;
    Service& service = service_;
    int64_t at_us = at->value_or(service_.NowUs());
    OffLoad([&service, at_us, orgs = *orgs]() -> std::pair<http::status, std::string> {
      service.engine().WaitForCheckpoint(service.ledger().Head(), kProjectionWait);
      std::vector<projections::OverdueRow> undetermined;
      auto rows = projections::OverdueAt(service.ledger(), service.engine(), at_us, orgs,
                                         service.calendar(), service.profile(), &undetermined);
      if (!rows.ok()) return Answer(FromStatus(rows.status()));
      const std::optional<std::string>& org = orgs.org;
      json list = json::array();
      for (const auto& row : *rows) list.push_back(projections::OverdueJson(row));
      json missing = json::array();
      for (const auto& row : undetermined) missing.push_back(projections::OverdueJson(row));
      return Answer(json{{"at", domain::FormatTimestamp(at_us, domain::kShanghaiUtcOffsetMinutes)},
                         {"org", org ? json(*org) : json(nullptr)},
                         {"count", rows->size()},
                         {"overdue", std::move(list)},
                         {"calendar_missing", std::move(missing)}});
    });
  }

  void GetKpi(const ingest::Principal& principal) {
    auto period = target_.query.find("period");
    if (period == target_.query.end() || !projections::PeriodMonths(period->second)) {
      return Fail(BadParameter("period", "YYYY-MM or YYYY-Qn"));
    }
    auto as_of = TimeParameter("as_of");
    if (!as_of) return;
    const std::optional<projections::ReportOrgs> orgs = ReportScope(principal);
    if (!orgs) return;
    const std::optional<std::string>& org = orgs->org;
    const bool tree = orgs->units_below;
    Service& service = service_;
    OffLoad([&service, period = period->second, org, as_of = *as_of,
             tree]() -> std::pair<http::status, std::string> {
      service.engine().WaitForCheckpoint(service.ledger().Head(), kProjectionWait);
      auto states = service.engine().KpiStates();
      if (!states.ok()) return Answer(FromStatus(states.status()));
      // Judged on the buckets as they are now, also for as_of: org units come and go rarely.
      // (Units below are named only to a principal who may read them.)
      const projections::KpiOrgUnits units = tree && org
                                                 ? projections::KpiOrgUnitsOf(*states, period, *org)
                                                 : projections::KpiOrgUnits{};
      if (units.refusal) {
        ServiceError refusal = InvalidField("org", "kpi_per_org_unit", *units.refusal);
        refusal.error["org_units"] = units.below;
        return Answer(refusal);
      }
      json table;
      if (as_of) {
        auto replayed = service.KpiTableAsOf(period, org, *as_of);
        if (auto* error = std::get_if<ServiceError>(&replayed)) return Answer(*error);
        table = std::get<nlohmann::json>(std::move(replayed));
      } else {
        table = projections::KpiTable(*states, period, org, service.calendar(), service.profile(),
                                      {}, service.NowUs());
      }
      if (!units.below.empty()) table["org_units_below"] = units.below;
      return Answer(table);
    });
  }

  void GetVerify(const ingest::Principal& principal) {
    if (!Allowed(principal, ingest::Access::kVerify)) return;
    Service& service = service_;
    OffLoad([&service]() -> std::pair<http::status, std::string> {
      auto digest = service.ledger().Verify();
      if (!digest.ok()) return Answer(FromStatus(digest.status()));
      return Answer(
          ordered_json{{"ok", true}, {"head", digest->position}, {"hash", digest->hash_hex}});
    });
  }

  void GetDigest(const ingest::Principal& principal) {
    // Also the log's readers': they see every event's hash anyway, and find by digests where
    // their copy parted from a restored ledger (ingest/auth.h).
    if (!Allowed(principal, ingest::Access::kDigest)) return;
    ledger::Digest digest = service_.ledger().HeadDigest();
    if (auto it = target_.query.find("at"); it != target_.query.end()) {
      auto position = ParseCount(it->second);
      if (!position || *position == 0) return Fail(BadParameter("at", kPositionText));
      auto at = service_.ledger().DigestAt(*position);
      if (!at.ok()) return Fail(FromStatus(at.status()));
      digest = *at;
    }
    Respond(http::status::ok,
            ordered_json{{"position", digest.position}, {"hash", digest.hash_hex}});
  }

  // ---- POST /v1/backup?name=N: a verified copy of the ledger in --backup-dir/N (Ledger::Backup).

  void PostBackup(const ingest::Principal& principal) {
    if (!Allowed(principal, ingest::Access::kBackup)) return;
    if (service_.backup_dir().empty()) {
      return Fail(MakeError(ErrorKind::kNotFound, "not_found",
                            "backups over HTTP are off: ledgerd was started without --backup-dir"));
    }
    std::string name = DefaultBackupName(service_.NowUs());
    if (auto it = target_.query.find("name"); it != target_.query.end()) name = it->second;
    if (!ValidBackupName(name)) {
      return Fail(BadParameter("name", "1.." + std::to_string(kBackupNameBytesMax) +
                                           " of A-Z a-z 0-9 . _ -, not starting with a dot"));
    }
    Service& service = service_;
    OffLoad([&service, dest = service_.backup_dir() + "/" + name,
             who = principal.id]() -> std::pair<http::status, std::string> {
      auto backed_up = service.ledger().Backup(dest);
      // The one input to a backup is its name, so an invalid backup is a bad name: most often one
      // used before (a backup goes to a new directory).
      if (!backed_up.ok() && backed_up.status().code() == ledger::Code::kInvalid) {
        return Answer(InvalidField("name", "new_directory", backed_up.status().message()));
      }
      if (!backed_up.ok()) return Answer(FromStatus(backed_up.status()));
      Log(LogLevel::kInfo, "backup", {{"to", dest}, {"head", backed_up->position}, {"by", who}});
      return Answer(ordered_json{{"ok", true},
                                 {"backup", dest},
                                 {"head", backed_up->position},
                                 {"hash", backed_up->hash_hex}});
    });
  }

  // ---- POST /v1/import?format=jsonl|csv: the body is the file.

  void PostImport(const ingest::Principal& principal) {
    // Admission only: each row is checked against the org of its own actor (AppendImported).
    if (!Allowed(principal, ingest::Access::kImport, principal.org)) return;
    std::string format = "jsonl";
    if (auto it = target_.query.find("format"); it != target_.query.end()) format = it->second;
    if (format != "jsonl" && format != "csv") return Fail(BadParameter("format", "jsonl or csv"));
    // A piece of a larger file (ledgerctl --http): lines are reported as the file's.
    ingest::ImportOptions options;
    if (auto it = target_.query.find("first_line"); it != target_.query.end()) {
      auto parsed = ParseCount(it->second);
      if (!parsed || *parsed == 0) {
        return Fail(BadParameter("first_line", "a line number: a whole number from 1"));
      }
      options.first_line = *parsed;
    }
    Service& service = service_;
    OffLoad([&service, principal, format, options,
             body = std::move(request_.body())]() mutable -> std::pair<http::status, std::string> {
      return RunImport(service, principal, format, options, std::move(body));
    });
  }

  static std::pair<http::status, std::string> RunImport(Service& service,
                                                        const ingest::Principal& principal,
                                                        const std::string& format,
                                                        const ingest::ImportOptions& options,
                                                        std::string body);

  beast::tcp_stream stream_;
  HttpServer& server_;
  Service& service_;
  beast::flat_buffer buffer_;
  bool linger_ = false;                   // Close: read and drop the unread body first
  std::unique_ptr<char[]> linger_bytes_;  // where it is dropped
  size_t input_reserved_ = 0;             // of the server's input_bytes_, this request's body
  // The bearer token's principal as OnHeader looked it up (for a request with a body).
  bool header_checked_ = false;
  std::optional<ingest::Principal> header_principal_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Target target_;
  std::chrono::steady_clock::time_point request_started_;  // for the request's log line
  std::string principal_id_;  // of the request being answered, once authenticated
  std::string allow_;         // the methods of a 405's path (its Allow header)
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool busy_ = false;     // a request is being answered
  bool closing_ = false;  // the server is stopping
  const bool counted_;
  const std::string address_;  // Service::AddressKey of the peer, as admitted
};

std::pair<http::status, std::string> HttpSession::RunImport(Service& service,
                                                            const ingest::Principal& principal,
                                                            const std::string& format,
                                                            const ingest::ImportOptions& options,
                                                            std::string body) {
  std::istringstream input(std::move(body));
  ordered_json errors = ordered_json::array();
  std::optional<ServiceError> first_refusal;
  ingest::Importer importer(
      [&service, &principal](domain::ClientEvent event) -> ingest::IngestAnswer {
        AppendAnswer answer = service.AppendImported(principal, std::move(event));
        if (auto* outcome = std::get_if<ingest::IngestOutcome>(&answer)) return *outcome;
        const ServiceError& error = std::get<ServiceError>(answer);
        ledger::Code code = ledger::Code::kInvalid;
        if (error.kind == ErrorKind::kBusy) code = ledger::Code::kBusy;
        if (error.kind == ErrorKind::kConflict) code = ledger::Code::kVersionConflict;
        if (error.kind == ErrorKind::kDuplicateMismatch) code = ledger::Code::kDuplicateMismatch;
        if (error.kind == ErrorKind::kUnavailable) code = ledger::Code::kShutdown;
        if (error.kind == ErrorKind::kInternal) code = ledger::Code::kIoError;
        ingest::IngestError refused{ledger::Status(code, error.error.value("message", "")),
                                    std::nullopt, error.kind == ErrorKind::kForbidden};
        // A row's refusal carries what a single append's does (a conflict's current_version).
        if (auto version = error.error.find("current_version"); version != error.error.end()) {
          refused.status.WithCurrentVersion(version->get<int64_t>());
        }
        if (auto position = error.error.find("position"); position != error.error.end()) {
          refused.status.WithPosition(position->get<uint64_t>());
        }
        if (error.error.contains("rule")) {
          refused.rule = domain::RuleBreach{error.error["rule"].get<std::string>(),
                                            error.error.value("message", "")};
        }
        return refused;
      },
      options);
  ingest::ImportSummary summary = importer.Run(
      input, format == "csv" ? ingest::ImportFormat::kCsv : ingest::ImportFormat::kJsonl,
      [&](const ingest::ImportRowOutcome& row) {
        if (!row.rejection) return;
        // Counted as every front door counts events that do not decode (refusals of the append
        // are counted by the Service).
        if (const auto* undecoded = std::get_if<domain::DecodeError>(&*row.rejection)) {
          service.ReportRejectedInput(*undecoded);
        }
        if (!first_refusal) {
          const auto* refused = std::get_if<ingest::IngestError>(&*row.rejection);
          first_refusal = refused != nullptr
                              ? FromIngestError(*refused)
                              : FromDecodeError(std::get<domain::DecodeError>(*row.rejection));
        }
        if (errors.size() >= kImportErrorsListedMax) return;
        ordered_json error = ingest::RejectionJson(*row.rejection);
        if (auto* refused = std::get_if<ingest::IngestError>(&*row.rejection);
            refused && refused->forbidden) {
          error = {{"code", "forbidden"}, {"message", refused->status.message()}};
        }
        ordered_json listed = {{"line", row.line}};
        if (!row.stream.empty()) listed["stream"] = row.stream;
        if (!row.event_id.empty()) listed["event_id"] = row.event_id;
        listed["error"] = std::move(error);
        errors.push_back(std::move(listed));
      });
  // The summary ledgerctl import prints (IMPORT.md), with the rejected rows listed.
  ordered_json answer = {
      {"ok", summary.ok()},           {"rows", summary.rows},
      {"accepted", summary.accepted}, {"duplicates", summary.duplicates},
      {"rejected", summary.rejected}, {"with_violations", summary.with_violations},
      {"errors", std::move(errors)}};
  if (summary.failure) {
    answer["failure"] = {{"line", summary.failure->line},
                         {"rule", summary.failure->rule},
                         {"message", summary.failure->message}};
  }
  // A failure of the input as a whole (a bad CSV header) refuses it as invalid.
  if (summary.failure && !first_refusal) first_refusal = ServiceError{ErrorKind::kInvalid, {}};
  if (summary.failure && summary.failure->rule == "bad_header") {
    service.ReportRejectedInput(domain::DecodeError{"", "bad_header", summary.failure->message});
  }
  return {ItemsStatus(first_refusal, summary.accepted + summary.duplicates > 0), Dump(answer)};
}

HttpServer::HttpServer(net::io_context& io, Service& service, tcp::endpoint endpoint,
                       int query_threads)
    : io_(io),
      service_(service),
      endpoint_(std::move(endpoint)),
      acceptor_(net::make_strand(io)),
      queries_(static_cast<size_t>(query_threads)) {}

HttpServer::~HttpServer() {
  Stop();
  queries_.join();
}

std::variant<uint16_t, std::string> HttpServer::Start() {
  beast::error_code error;
  acceptor_.open(endpoint_.protocol(), error);
  if (!error) acceptor_.set_option(net::socket_base::reuse_address(true), error);
  if (!error) acceptor_.bind(endpoint_, error);
  if (!error) acceptor_.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    return "cannot listen for HTTP on " + endpoint_.address().to_string() + ":" +
           std::to_string(endpoint_.port()) + ": " + error.message();
  }
  uint16_t port = acceptor_.local_endpoint().port();
  Accept();
  return port;
}

void HttpServer::Accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code error,
                                                       tcp::socket socket) {
    if (error) {
      if (error == net::error::operation_aborted) return;
      Log(LogLevel::kWarning, "http accept failed", {{"error", error.message()}});
    } else {
      beast::error_code ignored;
      std::string address = Service::AddressKey(socket.remote_endpoint(ignored).address());
      if (const char* refused = service_.TryAddConnection(address)) {
        // Over a connection limit: answered 503 and closed.
        std::make_shared<HttpSession>(std::move(socket), *this, false, std::move(address))
            ->RefuseAndClose(refused);
      } else {
        std::make_shared<HttpSession>(std::move(socket), *this, true, std::move(address))->Start();
      }
    }
    {
      std::lock_guard lock(sessions_mutex_);
      if (stopping_) return;
    }
    Accept();
  });
}

void HttpServer::Register(HttpSession* session, std::weak_ptr<HttpSession> weak) {
  std::lock_guard lock(sessions_mutex_);
  sessions_[session] = std::move(weak);
  if (stopping_) {
    if (auto live = sessions_[session].lock()) live->Shutdown();
  }
}

bool HttpServer::TryAddInput(size_t bytes) {
  if (input_bytes_.fetch_add(bytes) + bytes > service_.limits().input_bytes_max) {
    input_bytes_.fetch_sub(bytes);
    return false;
  }
  return true;
}

size_t HttpServer::connections() const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.size();
}

void HttpServer::Unregister(HttpSession* session) {
  std::lock_guard lock(sessions_mutex_);
  sessions_.erase(session);
}

void HttpServer::Stop() {
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    std::lock_guard lock(sessions_mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [pointer, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& session : live) session->Shutdown();
}

}  // namespace gridledger::server
