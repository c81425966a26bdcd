// ledgerd's HTTP/JSON front door, against a real ledgerd process on loopback.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "domain/event_json.h"
#include "format.h"
#include "support/http_client.h"
#include "support/ledgerd.h"
#include "support/loopback.h"

namespace gridledger::testing {
namespace {

using nlohmann::json;
namespace http = boost::beast::http;

// Now as RFC 3339 at +08:00 (a '+' to escape in a query): an as_of that has just passed.
std::string NowText() {
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return domain::FormatTimestamp(now_us, 8 * 60);
}

// `text` with its '+' escaped for a query.
std::string InQuery(std::string text) {
  for (size_t at = text.find('+'); at != std::string::npos; at = text.find('+', at)) {
    text.replace(at, 1, "%2B");
  }
  return text;
}

json Body(const HttpResponse& response) {
  json body = json::parse(response.body, nullptr, false);
  EXPECT_FALSE(body.is_discarded()) << response.body;
  return body;
}

// One answer read from a socket of our own.
http::response<http::string_body> ReadAnswer(boost::asio::ip::tcp::socket& socket) {
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  boost::beast::error_code error;
  http::read(socket, buffer, response, error);
  EXPECT_FALSE(error) << error.message();
  return response;
}

// Sends `bytes` as they are on a new connection and reads one answer: for requests HttpClient
// would not make (declared lengths without their bodies, chunked bodies, bad tokens).
http::response<http::string_body> RawExchange(uint16_t port, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(socket, boost::asio::buffer(bytes));
  return ReadAnswer(socket);
}

// Archiving the application `accepted` accepts, the next day: stored, with the violation
// archived_before_connection (it was never connected).
json ArchivedRightAway(const json& accepted, const std::string& event_id) {
  return {{"stream", accepted["stream"]},
          {"type", "Archived"},
          {"event_id", event_id},
          {"expected_version", 0},
          {"occurred_at", "2026-03-03T09:00:00+08:00"},
          {"actor", accepted["actor"]},
          {"data", json::object()}};
}

class HttpTest : public ::testing::Test {
 protected:
  HttpTest() : client_("127.0.0.1", server_.http_port()) {}

  uint64_t Head() { return Body(client_.Get("/healthz"))["head"].get<uint64_t>(); }

  HttpResponse Post(const json& event, const std::string& principal) {
    return client_.Post("/v1/events", server_.token(principal), event.dump());
  }

  // Appends the sample application, each event by its own actor.
  void AppendSample() {
    for (const json& event : SampleEvents()) {
      HttpResponse response = Post(event, PrincipalOf(event));
      ASSERT_EQ(response.status, 200) << event.dump() << " → " << response.body;
    }
  }

  Ledgerd server_;
  HttpClient client_;
};

TEST_F(HttpTest, HealthzNeedsNoToken) {
  HttpResponse response = client_.Get("/healthz");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["head"], 0);
  EXPECT_EQ(Body(response)["ok"], true);
}

// Slow-loris: a client that sends a request's headers a byte at a time holds its connection for
// the header deadline (10 s), not for the minute a body may take; the others are served meanwhile.
TEST_F(HttpTest, HeadersSentTooSlowlyCloseTheConnection) {
  const int fd = testing::ConnectLoopback(server_.http_port());
  ASSERT_GE(fd, 0);
  const timeval wait{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  const std::string partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (size_t sent = 0;
       !closed && std::chrono::steady_clock::now() - start < std::chrono::seconds(30);) {
    if (sent < partial.size()) ::send(fd, partial.data() + sent++, 1, MSG_NOSIGNAL);
    char byte;
    closed = ::recv(fd, &byte, 1, 0) == 0;  // times out after 1 s while the server waits
    EXPECT_EQ(client_.Get("/healthz").status, 200);
  }
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(HttpTest, AppendsReturnPositionsAndARetryChangesNothing) {
  std::vector<json> events = SampleEvents();
  HttpResponse first = Post(events[0], "clerk");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Body(first)["position"], 1);
  EXPECT_EQ(Body(first)["version"], 0);
  EXPECT_EQ(Body(first)["duplicate"], false);

  HttpResponse retry = Post(events[0], "clerk");
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(Body(retry)["position"], 1);
  EXPECT_EQ(Body(retry)["duplicate"], true);
  EXPECT_EQ(Head(), 1u);

  json changed = events[0];
  changed["data"]["capacity_kva"] = 999;
  HttpResponse mismatch = Post(changed, "clerk");
  EXPECT_EQ(mismatch.status, 409) << mismatch.body;
  EXPECT_EQ(Body(mismatch)["error"]["code"], "duplicate_mismatch");
  EXPECT_EQ(Head(), 1u);
}

// "import": true exempts an event from the backdated flag, so declaring it takes the import right
// (a director for its own org), on a live append as on /v1/import: a clerk cannot hide a late
// entry by declaring it history.
TEST_F(HttpTest, DeclaringAnImportOnALiveAppendNeedsTheImportRight) {
  json late = SampleEvents()[0];
  late["import"] = true;
  HttpResponse refused = Post(late, "clerk");
  ASSERT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(Body(refused)["error"]["message"].get<std::string>().find("import"), std::string::npos)
      << refused.body;
  EXPECT_EQ(Head(), 0u);

  late.erase("import");
  ASSERT_EQ(Post(late, "clerk").status, 200);
  const json due = {
      {"stream", "report/monthly_stats/2026-02"},
      {"type", "ReportDue"},
      {"event_id", "due-1"},
      {"occurred_at", "2026-03-01T10:00:00+08:00"},
      {"actor", {{"id", "D0001"}, {"role", "director"}, {"org", "KM.XS"}}},
      {"data",
       {{"report_type", "monthly_stats"}, {"period", "2026-02"}, {"due_date", "2026-03-05"}}},
      {"import", true}};
  HttpResponse director = Post(due, "director");
  ASSERT_EQ(director.status, 200) << director.body;
  HttpResponse stored = client_.Get("/v1/events?from=2&limit=1", server_.token("auditor"));
  ASSERT_EQ(stored.status, 200) << stored.body;
  EXPECT_EQ(Body(stored)["events"][0]["import"], true) << stored.body;
}

TEST_F(HttpTest, ConflictCarriesTheCurrentVersion) {
  std::vector<json> events = SampleEvents();
  ASSERT_EQ(Post(events[0], "clerk").status, 200);
  json stale = events[1];
  stale["expected_version"] = 5;
  HttpResponse response = Post(stale, "clerk");
  ASSERT_EQ(response.status, 409) << response.body;
  EXPECT_EQ(Body(response)["error"]["code"], "version_conflict");
  EXPECT_EQ(Body(response)["error"]["current_version"], 0);
  EXPECT_EQ(Head(), 1u);
}

TEST_F(HttpTest, InvalidInputNamesTheFieldOrTheRuleAndStoresNothing) {
  std::vector<json> events = SampleEvents();
  json missing = events[0];
  missing["data"].erase("customer_class");
  HttpResponse response = Post(missing, "clerk");
  ASSERT_EQ(response.status, 400) << response.body;
  EXPECT_EQ(Body(response)["error"]["field"], "data.customer_class");
  EXPECT_EQ(Body(response)["error"]["rule"], "missing_field");

  HttpResponse malformed = client_.Post("/v1/events", server_.token("clerk"), "{\"stream\":");
  ASSERT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_EQ(Body(malformed)["error"]["rule"], "malformed_json");

  // Neither an event nor a batch of 1 to batch-events-max events.
  for (const char* body : {"[]", "null", "42"}) {
    HttpResponse refused = client_.Post("/v1/events", server_.token("clerk"), body);
    ASSERT_EQ(refused.status, 400) << body << " → " << refused.body;
    EXPECT_EQ(Body(refused)["error"]["field"], "body") << refused.body;
    EXPECT_EQ(Body(refused)["error"]["rule"],
              std::string(body) == "[]" ? "batch_events_max" : "wrong_type")
        << refused.body;
  }

  // A workflow rule: the scheme cannot be replied before the application was accepted.
  json early = events[3];
  early.erase("expected_version");
  HttpResponse refused = Post(early, "clerk");
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(Body(refused)["error"]["code"], "invalid");
  EXPECT_TRUE(Body(refused)["error"].contains("rule")) << refused.body;
  EXPECT_EQ(Head(), 0u);
}

TEST_F(HttpTest, ABatchIsAppendedInOrderWithOneResultPerEvent) {
  std::vector<json> events = SampleEvents();
  json batch = json::array({events[0], events[1]});
  HttpResponse response = client_.Post("/v1/events", server_.token("clerk"), batch.dump());
  ASSERT_EQ(response.status, 200) << response.body;
  json body = Body(response);
  ASSERT_EQ(body["results"].size(), 2u);
  EXPECT_EQ(body["results"][0]["position"], 1);
  EXPECT_EQ(body["results"][1]["position"], 2);

  // An element that does not decode is reported at its index, and nothing of the batch is
  // appended (bad input changes nothing): the valid element says why it was not.
  json mixed = json::array({events[2], json{{"stream", "app/X"}}});
  HttpResponse refused = client_.Post("/v1/events", server_.token("inspector"), mixed.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(Body(refused)["results"][0]["ok"], false) << refused.body;
  EXPECT_NE(Body(refused)["results"][0]["error"]["message"].get<std::string>().find("index 1"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(Body(refused)["results"][1]["index"], 1);
  EXPECT_EQ(Head(), 2u);
  // Decodable events are judged and answered one by one: the inspector's own is stored, the
  // clerk's step (another's name) is refused. Something was stored, so the answer is not a 4xx
  // (which means nothing changed) but 207 Multi-Status.
  json clerks = events[5];
  clerks.erase("expected_version");
  json judged = json::array({events[2], clerks});
  HttpResponse partly = client_.Post("/v1/events", server_.token("inspector"), judged.dump());
  EXPECT_EQ(partly.status, 207) << partly.body;
  EXPECT_EQ(Body(partly)["ok"], false) << partly.body;
  EXPECT_EQ(Body(partly)["results"][0]["ok"], true) << partly.body;
  EXPECT_EQ(Body(partly)["results"][1]["ok"], false) << partly.body;
  EXPECT_EQ(Body(partly)["results"][1]["error"]["code"], "forbidden") << partly.body;
  EXPECT_EQ(Head(), 3u);
  // Sent again, the first event is a retry (stored before, duplicate) and the second is refused
  // again: the answer is the first one's, 207, as a duplicate is stored (a client that lost the
  // first answer must not read that its first event was not stored).
  HttpResponse again = client_.Post("/v1/events", server_.token("inspector"), judged.dump());
  EXPECT_EQ(again.status, 207) << again.body;
  EXPECT_EQ(Body(again)["results"][0]["duplicate"], true) << again.body;
  EXPECT_EQ(Head(), 3u);
}

// Every endpoint refuses a missing token, an unknown token, a role without the right and another
// org, and nothing is written by any refused request.
TEST_F(HttpTest, EveryEndpointRefusesWithoutTheRightToken) {
  AppendSample();
  const uint64_t head = Head();
  const std::string own_app = "/v1/apps/XS-2026-000123";
  struct Case {
    http::verb verb;
    std::string target;
    std::string token_name;  // "" = no token, "bad" = unknown token
    int status;
    std::string body;
  };
  json new_app = SampleEvents()[0];
  new_app["stream"] = "app/XS-2026-999999";
  new_app["event_id"] = "refusal-test-1";
  json other_org_app = new_app;
  other_org_app["actor"] = {{"id", "S1900"}, {"role", "clerk"}, {"org", "KM.GD"}};
  json next_step = SampleEvents()[1];
  next_step["event_id"] = "refusal-test-2";
  next_step.erase("expected_version");
  next_step["actor"] = {{"id", "S1900"}, {"role", "clerk"}, {"org", "KM.GD"}};
  std::string jsonl = new_app.dump() + "\n";
  std::vector<Case> cases = {
      {http::verb::post, "/v1/events", "", 401, new_app.dump()},
      {http::verb::post, "/v1/events", "bad", 401, new_app.dump()},
      {http::verb::post, "/v1/events", "auditor", 403, new_app.dump()},  // actor is the clerk
      {http::verb::post, "/v1/events", "inspector", 403, new_app.dump()},
      // An auditor claiming to be the auditor still may not write.
      {http::verb::post, "/v1/events", "reader", 403, new_app.dump()},
      // Another org's clerk writing in its own name to this org's application.
      {http::verb::post, "/v1/events", "other_clerk", 403, next_step.dump()},
      {http::verb::post, "/v1/import", "", 401, jsonl},
      {http::verb::post, "/v1/import", "bad", 401, jsonl},
      {http::verb::post, "/v1/import", "clerk", 403, jsonl},
      {http::verb::post, "/v1/import", "other_director", 403, jsonl},  // the row is refused
      {http::verb::get, "/v1/events?from=1", "", 401, ""},
      {http::verb::get, "/v1/events?from=1", "bad", 401, ""},
      {http::verb::get, "/v1/events?from=1", "clerk", 403, ""},
      {http::verb::get, "/v1/streams/app/XS-2026-000123", "", 401, ""},
      {http::verb::get, "/v1/streams/app/XS-2026-000123", "bad", 401, ""},
      // Another org's application stream (its own org's directors and clerks read it: below).
      {http::verb::get, "/v1/streams/app/XS-2026-000123", "other_director", 403, ""},
      {http::verb::get, "/v1/streams/app/XS-2026-000123", "other_clerk", 403, ""},
      {http::verb::get, "/v1/streams/report/none/2026-01", "director", 403, ""},
      {http::verb::get, own_app, "", 401, ""},
      {http::verb::get, own_app, "bad", 401, ""},
      {http::verb::get, own_app, "reader", 403, ""},
      {http::verb::get, own_app, "other_clerk", 403, ""},
      // Refused before anything is read: the same answer whether the application exists or not.
      {http::verb::get, "/v1/apps/XS-2026-NOSUCH", "reader", 403, ""},
      {http::verb::get, "/v1/evidence/XS-2026-NOSUCH", "reader", 403, ""},
      {http::verb::get, "/v1/evidence/XS-2026-000123", "", 401, ""},
      {http::verb::get, "/v1/evidence/XS-2026-000123", "bad", 401, ""},
      {http::verb::get, "/v1/evidence/XS-2026-000123", "reader", 403, ""},
      {http::verb::get, "/v1/evidence/XS-2026-000123", "other_director", 403, ""},
      {http::verb::get, "/v1/overdue", "", 401, ""},
      {http::verb::get, "/v1/overdue", "bad", 401, ""},
      {http::verb::get, "/v1/overdue", "reader", 403, ""},
      {http::verb::get, "/v1/overdue?org=KM.XS", "other_director", 403, ""},
      {http::verb::get, "/v1/overdue?org=KM", "director", 403, ""},  // a wider org
      {http::verb::get, "/v1/kpi?period=2026-Q1", "", 401, ""},
      {http::verb::get, "/v1/kpi?period=2026-Q1", "bad", 401, ""},
      {http::verb::get, "/v1/kpi?period=2026-Q1", "reader", 403, ""},
      {http::verb::get, "/v1/kpi?period=2026-Q1&org=KM.XS", "other_clerk", 403, ""},
      {http::verb::get, "/v1/staff/S1001", "", 401, ""},
      {http::verb::get, "/v1/staff/S1001", "bad", 401, ""},
      {http::verb::get, "/v1/staff/S1001", "other_director", 403, ""},  // not its org's
      {http::verb::get, "/v1/staff/S2040", "clerk", 403, ""},           // another's (hers: below)
      {http::verb::get, "/v1/staff/S1001", "admin", 403, ""},  // tokens and profiles, not audits
      {http::verb::get, "/v1/staff/S1%00X", "auditor", 400, ""},
      // Not opened yet: not found at once for an org-bound reader (it may be another org's next).
      {http::verb::get, "/v1/streams/app/XS-2026-NOSUCH", "director", 404, ""},
      {http::verb::get, "/v1/verify", "", 401, ""},
      {http::verb::get, "/v1/verify", "bad", 401, ""},
      {http::verb::get, "/v1/verify", "clerk", 403, ""},
      {http::verb::get, "/v1/digest", "", 401, ""},
      {http::verb::get, "/v1/digest", "bad", 401, ""},
      {http::verb::get, "/v1/digest", "clerk", 403, ""},  // readers of the log may: below
      {http::verb::post, "/v1/backup?name=refused", "", 401, ""},
      {http::verb::post, "/v1/backup?name=refused", "bad", 401, ""},
      {http::verb::post, "/v1/backup?name=refused", "auditor", 403, ""},  // administration's
      {http::verb::post, "/v1/backup?name=refused", "director", 403, ""},
      {http::verb::post, "/v1/backup?name=..%2Fout", "admin", 400, ""},
      {http::verb::post, "/v1/backup?name=a%2F..%2F..%2Fout", "admin", 400, ""},
  };
  for (const Case& c : cases) {
    std::string token = c.token_name.empty()    ? ""
                        : c.token_name == "bad" ? std::string(64, 'f')
                                                : server_.token(c.token_name);
    HttpResponse response = client_.Request(c.verb, c.target, token, c.body);
    EXPECT_EQ(response.status, c.status)
        << c.target << " as '" << c.token_name << "' → " << response.body;
    json body = Body(response);
    EXPECT_EQ(body["ok"], false) << c.target;
    // A read of another org's application is refused without saying which org it belongs to.
    if (c.token_name.starts_with("other_") && c.status == 403 &&
        (c.target.starts_with("/v1/apps/") || c.target.starts_with("/v1/evidence/") ||
         c.target.starts_with("/v1/streams/app/"))) {
      EXPECT_EQ(response.body.find("KM.XS"), std::string::npos)
          << c.target << " → " << response.body;
    }
    EXPECT_EQ(Head(), head) << c.target << " as '" << c.token_name << "' wrote something";
  }
  EXPECT_FALSE(std::filesystem::exists(server_.backup_dir() + "/refused"));
  EXPECT_FALSE(
      std::filesystem::exists(std::filesystem::path(server_.backup_dir()).parent_path() / "out"));
  // The other org's director may read its own org's (empty) reports.
  EXPECT_EQ(client_.Get("/v1/kpi?period=2026-Q1&org=KM.GD", server_.token("other_director")).status,
            200);
  // A staff member reads her own audit (what she did), as an auditor sees it.
  HttpResponse own = client_.Get("/v1/staff/S1001", server_.token("clerk"));
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(Body(own), Body(client_.Get("/v1/staff/S1001", server_.token("auditor"))));
  EXPECT_EQ(Body(own)["staff_id"], "S1001");
  // And her director, who heads her org.
  HttpResponse headed = client_.Get("/v1/staff/S1001", server_.token("director"));
  ASSERT_EQ(headed.status, 200) << headed.body;
  EXPECT_EQ(Body(headed), Body(own));
}

TEST_F(HttpTest, ReadsOfPersonalDataAreRecorded) {
  AppendSample();
  const uint64_t head = Head();
  HttpResponse app = client_.Get("/v1/apps/XS-2026-000123?at=2026-05-31", server_.token("clerk"));
  ASSERT_EQ(app.status, 200) << app.body;
  EXPECT_EQ(Body(app)["stage"], "archived");
  EXPECT_EQ(Head(), head + 1);
  HttpResponse staff = client_.Get("/v1/streams/staff/S1001", server_.token("auditor"));
  ASSERT_EQ(staff.status, 200) << staff.body;
  json last = Body(staff)["events"].back();
  EXPECT_EQ(last["type"], "SensitiveDataAccessed");
  EXPECT_EQ(last["data"]["what"], "app/XS-2026-000123");
  EXPECT_FALSE(last["data"].contains("approved_by"));

  // Approved by the clerk's director: recorded with the approver.
  HttpResponse approved = client_.Request(http::verb::get, "/v1/evidence/XS-2026-000123",
                                          server_.token("clerk"), "", {{"X-Approved-By", "D0001"}});
  ASSERT_EQ(approved.status, 200) << approved.body;
  staff = client_.Get("/v1/streams/staff/S1001", server_.token("auditor"));
  EXPECT_EQ(Body(staff)["events"].back()["data"]["approved_by"], "D0001");
  // Approval is a superior's (4.3.4): not one's own, not a peer's, not another org's director,
  // not a word. Refused, the read is not answered and nothing is recorded.
  // Each refusal says its real reason: a director naming itself is not "unknown here".
  const uint64_t before_refusals = Head();
  for (const auto& [reader, approver, reason] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"director", "D0001", "nobody approves their own read"},
           {"chief", "D0100", "nobody approves their own read"},
           {"clerk", "S2040", "whose role is inspector, not director"},
           {"clerk", "D0900", "a director of org KM.GD, which is neither the reader's org KM.XS"},
           {"clerk", "同意", "who holds no token here"}}) {
    HttpResponse refused =
        client_.Request(http::verb::get, "/v1/evidence/XS-2026-000123", server_.token(reader), "",
                        {{"X-Approved-By", approver}});
    EXPECT_EQ(refused.status, 400) << reader << " " << approver << ": " << refused.body;
    EXPECT_EQ(Body(refused)["error"]["rule"], "approver_not_superior") << refused.body;
    EXPECT_NE(Body(refused)["error"]["message"].get<std::string>().find(reason), std::string::npos)
        << refused.body;
  }
  EXPECT_EQ(Head(), before_refusals);
  // A director's superior is a director of an org above his own.
  ASSERT_EQ(client_
                .Request(http::verb::get, "/v1/evidence/XS-2026-000123", server_.token("director"),
                         "", {{"X-Approved-By", "D0100"}})
                .status,
            200);

  // A page of the log that shows application events is recorded before it is answered; a page
  // without any (here: the staff stream's own records, at the end of the log) is not.
  const std::string auditor = server_.token("auditor");
  uint64_t before = Head();
  HttpResponse log = client_.Request(http::verb::get, "/v1/events?from=1&limit=2", auditor, "",
                                     {{"X-Approved-By", "D0100"}});
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_EQ(Head(), before + 1);
  json recorded = Body(client_.Get("/v1/streams/staff/A0001", auditor))["events"].back();
  EXPECT_EQ(recorded["type"], "SensitiveDataAccessed");
  EXPECT_EQ(recorded["data"]["what"], "log positions 1..2");
  EXPECT_EQ(recorded["data"]["approved_by"], "D0100");
  before = Head();
  HttpResponse tail = client_.Get("/v1/events?from=" + std::to_string(before), auditor);
  ASSERT_EQ(tail.status, 200) << tail.body;
  ASSERT_EQ(Body(tail)["events"].size(), 1u);
  EXPECT_EQ(Head(), before) << "a page without application events was recorded";
}

TEST_F(HttpTest, ReadsAndProjectionsAnswer) {
  AppendSample();
  const std::string auditor = server_.token("auditor");
  // An application's stream: the whole log's readers, and the application's own org; each read
  // is recorded (SensitiveDataAccessed by the reader) before it is answered.
  for (const char* principal : {"auditor", "director", "clerk"}) {
    const uint64_t before = Head();
    HttpResponse stream = client_.Get("/v1/streams/app/XS-2026-000123", server_.token(principal));
    ASSERT_EQ(stream.status, 200) << principal << ": " << stream.body;
    EXPECT_EQ(Body(stream)["events"].size(), SampleEvents().size()) << principal;
    EXPECT_EQ(Head(), before + 1) << principal;
  }
  // A position past head + 1 was never handed out by this ledger: refused, not an empty page.
  HttpResponse past = client_.Get("/v1/events?from=" + std::to_string(Head() + 2), auditor);
  ASSERT_EQ(past.status, 400) << past.body;
  EXPECT_EQ(Body(past)["error"]["rule"], "beyond_head") << past.body;
  EXPECT_EQ(Body(past)["error"]["field"], "from") << past.body;
  HttpResponse at_head = client_.Get("/v1/events?from=" + std::to_string(Head() + 1), auditor);
  ASSERT_EQ(at_head.status, 200) << at_head.body;
  EXPECT_TRUE(Body(at_head)["events"].empty());
  // Resuming after an event the reader holds: answered when this ledger's event there has the
  // same hash, refused (rule forked) when it has another — the reader's copy is of another history.
  HttpResponse first = client_.Get("/v1/events?from=1&limit=2", auditor);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string held = Body(first)["events"][1]["hash"];
  HttpResponse resumed = client_.Get("/v1/events?from=3&limit=1&after_hash=" + held, auditor);
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(Body(resumed)["events"][0]["prev_hash"], held);
  std::string other = held;
  other[0] = other[0] == '0' ? '1' : '0';
  const uint64_t before_forked = Head();
  HttpResponse forked = client_.Get("/v1/events?from=3&after_hash=" + other, auditor);
  ASSERT_EQ(forked.status, 400) << forked.body;
  EXPECT_EQ(Body(forked)["error"]["rule"], "forked") << forked.body;
  EXPECT_EQ(Body(forked)["error"]["field"], "after_hash") << forked.body;
  EXPECT_EQ(Head(), before_forked) << "a refused read was recorded";
  for (const std::string& bad : {std::string("xyz"), held.substr(2), held + "00"}) {
    HttpResponse malformed = client_.Get("/v1/events?from=3&after_hash=" + bad, auditor);
    ASSERT_EQ(malformed.status, 400) << bad << ": " << malformed.body;
    EXPECT_EQ(Body(malformed)["error"]["rule"], "bad_value") << malformed.body;
    EXPECT_EQ(Body(malformed)["error"]["field"], "after_hash") << malformed.body;
  }
  // A reader finds where its copy parted by this ledger's hashes, which it may ask for.
  HttpResponse digest_2 = client_.Get("/v1/digest?at=2", server_.token("reader"));
  ASSERT_EQ(digest_2.status, 200) << digest_2.body;
  EXPECT_EQ(Body(digest_2)["hash"], held);
  // One stream by version: past its last version + 1 refused, and a hash checked as for the log.
  const std::string app = "/v1/streams/app/XS-2026-000123";
  HttpResponse first_version = client_.Get(app + "?limit=1", auditor);
  ASSERT_EQ(first_version.status, 200) << first_version.body;
  const std::string version_0 = Body(first_version)["events"][0]["hash"];
  HttpResponse next_version =
      client_.Get(app + "?from_version=1&limit=1&after_hash=" + version_0, auditor);
  ASSERT_EQ(next_version.status, 200) << next_version.body;
  EXPECT_EQ(Body(next_version)["events"][0]["version"], 1) << next_version.body;
  HttpResponse stream_forked = client_.Get(app + "?from_version=1&after_hash=" + held, auditor);
  ASSERT_EQ(stream_forked.status, 400) << stream_forked.body;
  EXPECT_EQ(Body(stream_forked)["error"]["rule"], "forked") << stream_forked.body;
  HttpResponse past_stream =
      client_.Get(app + "?from_version=" + std::to_string(SampleEvents().size() + 1), auditor);
  ASSERT_EQ(past_stream.status, 400) << past_stream.body;
  EXPECT_EQ(Body(past_stream)["error"]["rule"], "beyond_head") << past_stream.body;
  EXPECT_EQ(Body(past_stream)["error"]["field"], "from_version") << past_stream.body;
  HttpResponse events = client_.Get("/v1/events?from=2&limit=3", auditor);
  ASSERT_EQ(events.status, 200) << events.body;
  ASSERT_EQ(Body(events)["events"].size(), 3u);
  EXPECT_EQ(Body(events)["events"][0]["position"], 2);
  EXPECT_EQ(Body(events)["next"], 5);

  HttpResponse as_of =
      client_.Get("/v1/apps/XS-2026-000123?at=2026-03-20&as_of=" + InQuery(NowText()), auditor);
  ASSERT_EQ(as_of.status, 200) << as_of.body;
  EXPECT_EQ(Body(as_of)["clocks"]["scheme_reply"]["state"], "met");
  // Before its first event, it is an application not begun by then, not one that never existed.
  HttpResponse not_yet = client_.Get("/v1/apps/XS-2026-000123?at=2026-01-01", auditor);
  ASSERT_EQ(not_yet.status, 404) << not_yet.body;
  EXPECT_EQ(Body(not_yet)["error"]["message"], "no events of app/XS-2026-000123 by that time");
  EXPECT_EQ(Body(client_.Get("/v1/apps/XS-2026-999999", auditor))["error"]["message"],
            "no events of app/XS-2026-999999");

  HttpResponse kpi = client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS", auditor);
  ASSERT_EQ(kpi.status, 200) << kpi.body;
  // A director who names no org is answered about its own (not refused for asking about all).
  for (const std::string report :
       {"/v1/kpi?period=2026-Q2", "/v1/overdue?at=2026-03-31", "/v1/evidence?period=2026-Q2"}) {
    HttpResponse own = client_.Get(report, server_.token("director"));
    ASSERT_EQ(own.status, 200) << report << ": " << own.body;
    EXPECT_EQ(Body(own)["org"], "KM.XS") << report << ": " << own.body;
  }
  EXPECT_EQ(
      Body(client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS", server_.token("director")))["kpis"],
      Body(kpi)["kpis"]);
  // The period's evidence: the sample was connected in Q2 and its customer reached by a callback.
  const json evidence = Body(client_.Get("/v1/evidence?period=2026-Q2&org=KM.XS", auditor));
  EXPECT_EQ(evidence["callback"]["covered"], 1) << evidence.dump();
  EXPECT_EQ(evidence["callback"]["of"], 1) << evidence.dump();
  EXPECT_EQ(evidence["callback"]["covered_ids"], json::array({"app/XS-2026-000123"}));
  EXPECT_EQ(client_.Get("/v1/evidence?period=2026-13", auditor).status, 400);
  bool found_timeliness = false;
  const json table = Body(kpi);
  for (const json& row : table["kpis"]) {
    if (row["id"] == "timeliness") {
      found_timeliness = true;
      EXPECT_EQ(row["denominator"], 1) << row.dump();
    }
  }
  EXPECT_TRUE(found_timeliness) << kpi.body;
  // Replayed to now, after everything: the same table, with where it stops. Not to the future.
  HttpResponse future =
      client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS&as_of=2099-01-01T00:00:00%2B08:00", auditor);
  EXPECT_EQ(future.status, 400);
  EXPECT_EQ(Body(future)["error"]["field"], "as_of") << future.body;
  EXPECT_EQ(Body(future)["error"]["rule"], "not_in_future") << future.body;
  // Today's date is now, not the end of today.
  const std::string today = NowText().substr(0, 10);
  EXPECT_EQ(client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS&as_of=" + today, auditor).status, 200);
  // Nor an application as the ledger will know it.
  HttpResponse future_app =
      client_.Get("/v1/apps/XS-2026-000123?as_of=2099-01-01T00:00:00%2B08:00", auditor);
  EXPECT_EQ(future_app.status, 400) << future_app.body;
  EXPECT_EQ(Body(future_app)["error"]["rule"], "not_in_future") << future_app.body;
  const std::string now = InQuery(NowText());
  HttpResponse replayed = client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS&as_of=" + now, auditor);
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  json replayed_table = Body(replayed);
  EXPECT_EQ(replayed_table["as_of_position"], Head());
  replayed_table.erase("as_of");
  replayed_table.erase("as_of_position");
  EXPECT_EQ(replayed_table["kpis"], table["kpis"]);
  // Before anything was recorded: nothing to count.
  HttpResponse before = client_.Get("/v1/kpi?period=2026-Q2&as_of=2000-01-01", auditor);
  ASSERT_EQ(before.status, 200) << before.body;
  for (const json& row : Body(before)["kpis"]) EXPECT_EQ(row["denominator"], 0) << row.dump();
  EXPECT_EQ(client_.Get("/v1/kpi?period=2026-Q2&as_of=yesterday", auditor).status, 400);

  HttpResponse overdue = client_.Get("/v1/overdue?at=2026-03-10", auditor);
  ASSERT_EQ(overdue.status, 200) << overdue.body;
  EXPECT_EQ(Body(overdue)["count"], Body(overdue)["overdue"].size());

  HttpResponse verify = client_.Get("/v1/verify", auditor);
  ASSERT_EQ(verify.status, 200) << verify.body;
  HttpResponse digest = client_.Get("/v1/digest", auditor);
  ASSERT_EQ(digest.status, 200) << digest.body;
  EXPECT_EQ(Body(verify)["hash"], Body(digest)["hash"]);
  EXPECT_EQ(client_.Get("/v1/digest?at=999999", auditor).status, 404);
  EXPECT_EQ(client_.Get("/v1/kpi?period=2026-13", auditor).status, 400);
  EXPECT_EQ(client_.Get("/v1/apps/XS-0000?at=yesterday", auditor).status, 400);
  HttpResponse unescaped = client_.Get("/v1/apps/XS-0000?at=2026-03-02T10:00:00+08:00", auditor);
  EXPECT_EQ(unescaped.status, 400);
  EXPECT_NE(unescaped.body.find("%2B"), std::string::npos) << unescaped.body;
  EXPECT_EQ(client_.Get("/v1/apps/NOPE-1", auditor).status, 404);
  EXPECT_EQ(client_.Get("/v1/nothing", auditor).status, 404);
}

// A director heads its org and the units below it (KM above KM.XS): it approves their reads, so
// it reads their applications, overdue steps and evidence too. KPI tables are per org unit: one
// for KM, which has no figures of its own, is refused naming the units below that have some.
TEST_F(HttpTest, ADirectorReadsTheOrgsBelowItsOwn) {
  AppendSample();
  json late = SampleEvents().front();
  late["stream"] = "app/XS-2026-LATE";
  late["event_id"] = "late-1";
  ASSERT_EQ(Post(late, "clerk").status, 200);
  const std::string chief = server_.token("chief");  // director of KM

  HttpResponse app = client_.Get("/v1/apps/XS-2026-000123?at=2026-03-10", chief);
  EXPECT_EQ(app.status, 200) << app.body;
  EXPECT_EQ(client_.Get("/v1/streams/app/XS-2026-000123", chief).status, 200);
  EXPECT_EQ(client_.Get("/v1/evidence/XS-2026-000123", chief).status, 200);

  HttpResponse overdue = client_.Get("/v1/overdue?at=2026-06-30", chief);
  ASSERT_EQ(overdue.status, 200) << overdue.body;
  EXPECT_EQ(Body(overdue)["org"], "KM");
  std::set<std::string> late_streams;
  const json listed = Body(overdue);  // held: a temporary's member would dangle in the loop
  for (const json& row : listed["overdue"]) late_streams.insert(row["stream"].get<std::string>());
  EXPECT_TRUE(late_streams.contains("app/XS-2026-LATE")) << overdue.body;
  // The same list as the unit's own, asked for by name.
  HttpResponse unit = client_.Get("/v1/overdue?at=2026-06-30&org=KM.XS", chief);
  ASSERT_EQ(unit.status, 200) << unit.body;
  EXPECT_EQ(Body(unit)["overdue"], Body(overdue)["overdue"]);
  EXPECT_EQ(
      client_.Get("/v1/overdue?at=2026-06-30&org=KM.XS", server_.token("other_director")).status,
      403);
  // A clerk of KM reads KM's own reports, not those of the units below it (it may not read their
  // applications either).
  const std::string bureau_clerk = server_.token("bureau_clerk");
  HttpResponse own = client_.Get("/v1/overdue?at=2026-06-30", bureau_clerk);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(Body(own)["org"], "KM");
  EXPECT_EQ(Body(own)["overdue"], json::array()) << own.body;
  EXPECT_EQ(client_.Get("/v1/apps/XS-2026-000123", bureau_clerk).status, 403);
  const json clerk_evidence = Body(client_.Get("/v1/evidence?period=2026-Q2", bureau_clerk));
  EXPECT_EQ(clerk_evidence["callback"]["covered_ids"], json::array()) << clerk_evidence.dump();
  HttpResponse clerk_kpi = client_.Get("/v1/kpi?period=2026-Q2", bureau_clerk);
  EXPECT_EQ(clerk_kpi.status, 200) << clerk_kpi.body;  // KM's own (empty) table, no units named
  EXPECT_EQ(clerk_kpi.body.find("KM.XS"), std::string::npos) << clerk_kpi.body;

  const json evidence = Body(client_.Get("/v1/evidence?period=2026-Q2", chief));
  EXPECT_EQ(evidence["org"], "KM") << evidence.dump();
  EXPECT_EQ(evidence["callback"]["covered_ids"], json::array({"app/XS-2026-000123"}))
      << evidence.dump();

  HttpResponse kpi = client_.Get("/v1/kpi?period=2026-Q2", chief);
  ASSERT_EQ(kpi.status, 400) << kpi.body;
  EXPECT_EQ(Body(kpi)["error"]["field"], "org") << kpi.body;
  EXPECT_EQ(Body(kpi)["error"]["rule"], "kpi_per_org_unit") << kpi.body;
  EXPECT_EQ(Body(kpi)["error"]["org_units"], json::array({"KM.XS"})) << kpi.body;
  EXPECT_NE(Body(kpi)["error"]["message"].get<std::string>().find("per org unit"),
            std::string::npos)
      << kpi.body;
  HttpResponse unit_kpi = client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS", chief);
  ASSERT_EQ(unit_kpi.status, 200) << unit_kpi.body;
  EXPECT_EQ(Body(unit_kpi)["kpis"], Body(client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS",
                                                     server_.token("auditor")))["kpis"]);
}

// org= given empty or malformed matches no org: an empty list or an all-null table would read as
// that org's. Refused, naming the parameter.
TEST_F(HttpTest, AnEmptyOrMalformedOrgIsRefused) {
  AppendSample();
  const std::string auditor = server_.token("auditor");
  for (const std::string report :
       {"/v1/kpi?period=2026-Q1", "/v1/overdue?at=2026-03-31", "/v1/evidence?period=2026-Q1"}) {
    for (const std::string org :
         {"&org=", "&org=KM%20XS", "&org=KM/XS", "&org=KM.", "&org=KM..XS"}) {
      HttpResponse refused = client_.Get(report + org, auditor);
      EXPECT_EQ(refused.status, 400) << report << org << ": " << refused.body;
      EXPECT_EQ(Body(refused)["error"]["field"], "org") << report << org << ": " << refused.body;
    }
    EXPECT_EQ(client_.Get(report + "&org=KM.XS", auditor).status, 200) << report;
  }
}

// A contract entered after the connection but dated before it settles connected_without_contract:
// the answer names the connection it settles (the sample application with its contract, 04-27,
// entered after its connection, 04-29), and the application lists it as settled.
TEST_F(HttpTest, ALateContractIsAnsweredWithTheViolationItSettles) {
  std::vector<json> events = SampleEvents();
  const auto contract = std::find_if(events.begin(), events.end(),
                                     [](const json& e) { return e["type"] == "ContractSigned"; });
  ASSERT_NE(contract, events.end());
  std::iter_swap(contract, contract + 1);  // MeterConnected first
  ASSERT_EQ((contract + 1)->at("type"), "ContractSigned");
  json answer;
  for (json& event : events) {
    if (event["type"] == "Corrected") break;  // the sample's correction names a position
    event.erase("expected_version");
    HttpResponse response = Post(event, PrincipalOf(event));
    ASSERT_EQ(response.status, 200) << event.dump() << " → " << response.body;
    if (event["type"] == "ContractSigned") answer = Body(response);
  }
  ASSERT_EQ(answer["settles"].size(), 1u) << answer.dump();
  EXPECT_EQ(answer["settles"][0]["rule"], "connected_without_contract");
  const uint64_t connected = answer["position"].get<uint64_t>() - 1;
  EXPECT_EQ(answer["settles"][0]["position"], connected);
  const json app = Body(client_.Get("/v1/apps/XS-2026-000123", server_.token("director")));
  ASSERT_EQ(app["settled_violations"].size(), 1u) << app.dump();
  EXPECT_EQ(app["settled_violations"][0]["position"], connected);
  EXPECT_EQ(app["violations"], json::array()) << app.dump();
}

// The import summary is the one ledgerctl import prints (IMPORT.md): it also counts the rows
// stored with workflow violations.
TEST_F(HttpTest, AnImportCountsTheRowsStoredWithViolations) {
  json accepted = SampleEvents().front();
  accepted["stream"] = "app/XS-2026-VIOLATED";
  accepted["event_id"] = "violated-accepted";
  const std::string file =
      accepted.dump() + "\n" + ArchivedRightAway(accepted, "violated-archived").dump() + "\n";
  HttpResponse imported = client_.Post("/v1/import?format=jsonl", server_.token("director"), file);
  ASSERT_EQ(imported.status, 200) << imported.body;
  EXPECT_EQ(Body(imported)["accepted"], 2) << imported.body;
  EXPECT_EQ(Body(imported)["with_violations"], 1) << imported.body;
}

// Error bodies carry what README.md promises: a row refused for a version conflict carries
// current_version as a single append's 409 does; a path that exists but not with this method is
// 405 with Allow, and only a path that does not exist is 404.
TEST_F(HttpTest, ErrorsCarryWhatTheirStatusPromises) {
  AppendSample();
  json stale = SampleEvents()[1];
  stale["event_id"] = "stale-row";
  stale["expected_version"] = 0;  // the stream is far past version 0
  HttpResponse single = Post(stale, PrincipalOf(stale));
  ASSERT_EQ(single.status, 409) << single.body;
  const json current_version = Body(single)["error"]["current_version"];
  ASSERT_TRUE(current_version.is_number()) << single.body;
  HttpResponse imported =
      client_.Post("/v1/import?format=jsonl", server_.token("director"), stale.dump() + "\n");
  ASSERT_EQ(imported.status, 409) << imported.body;
  const json row = Body(imported)["errors"].at(0)["error"];
  EXPECT_EQ(row["code"], "version_conflict") << imported.body;
  EXPECT_EQ(row["current_version"], current_version) << imported.body;

  json unknown = SampleEvents()[0];
  unknown["type"] = "ApplicationAcepted";
  HttpResponse typo = Post(unknown, "clerk");
  ASSERT_EQ(typo.status, 400) << typo.body;
  EXPECT_NE(Body(typo)["error"]["message"].get<std::string>().find("\"ApplicationAcepted\""),
            std::string::npos)
      << typo.body;

  const std::string auditor = server_.token("auditor");
  for (const auto& [verb, path, allow] :
       std::vector<std::tuple<http::verb, std::string, std::string>>{
           {http::verb::get, "/v1/backup", "POST"},
           {http::verb::get, "/v1/import", "POST"},
           {http::verb::delete_, "/v1/events", "GET, POST"},
           {http::verb::post, "/v1/kpi?period=2026-Q1", "GET"},
           {http::verb::put, "/v1/apps/XS-2026-000123", "GET"},
           {http::verb::post, "/healthz", "GET"}}) {
    HttpResponse refused = client_.Request(verb, path, auditor, "");
    EXPECT_EQ(refused.status, 405) << path << ": " << refused.body;
    EXPECT_EQ(refused.headers["Allow"], allow) << path;
    EXPECT_EQ(Body(refused)["error"]["code"], "method_not_allowed") << refused.body;
  }
  EXPECT_EQ(client_.Request(http::verb::delete_, "/v1/nothing", auditor, "").status, 404);
  EXPECT_EQ(client_.Request(http::verb::post, "/v1/nothing", auditor, "").status, 404);
}

// A page holds at most --read-events-max events. A larger limit is clamped to it, as over TCP
// (README.md), not refused: the client goes on from next.
TEST(HttpPageTest, ALimitAboveReadEventsMaxIsClamped) {
  Ledgerd server({"--read-events-max", "3"});
  HttpClient client("127.0.0.1", server.http_port());
  for (const json& event : SampleEvents()) {
    ASSERT_EQ(client.Post("/v1/events", server.token(PrincipalOf(event)), event.dump()).status,
              200);
  }
  const std::string auditor = server.token("auditor");
  for (const std::string limit : {"", "&limit=20000"}) {
    HttpResponse page = client.Get("/v1/events?from=1" + limit, auditor);
    ASSERT_EQ(page.status, 200) << limit << ": " << page.body;
    EXPECT_EQ(Body(page)["events"].size(), 3u) << limit;
    EXPECT_EQ(Body(page)["next"], 4) << limit;
    HttpResponse stream =
        client.Get("/v1/streams/app/XS-2026-000123?from_version=0" + limit, auditor);
    ASSERT_EQ(stream.status, 200) << limit << ": " << stream.body;
    EXPECT_EQ(Body(stream)["events"].size(), 3u) << limit;
    EXPECT_EQ(Body(stream)["next_version"], 3) << limit;
  }
  HttpResponse zero = client.Get("/v1/events?from=1&limit=0", auditor);
  EXPECT_EQ(zero.status, 400) << zero.body;
  EXPECT_EQ(Body(zero)["error"]["field"], "limit") << zero.body;
}

// Rows of an import that do not decode are counted in gridledger_rejected_inputs_total with
// their rule, as POST /v1/events counts events that do not decode; so is a bad CSV header.
TEST(HttpImportMetricsTest, RowsThatDoNotDecodeAreCountedWithTheirRule) {
  Ledgerd server({"--metrics", "127.0.0.1:0"});
  ASSERT_NE(server.metrics_port(), 0);
  HttpClient client("127.0.0.1", server.http_port());
  HttpClient metrics("127.0.0.1", server.metrics_port());
  auto rejected = [&](const std::string& rule) {
    const std::string scrape = metrics.Get("/metrics").body;
    std::smatch match;
    const std::regex series("\ngridledger_rejected_inputs_total\\{reason=\"invalid\",rule=\"" +
                            rule + "\"\\} ([0-9]+)");
    return std::regex_search(scrape, match, series) ? std::stoi(match[1]) : 0;
  };
  const std::string director = server.token("director");
  const int malformed_before = rejected("malformed_json");
  const int missing_before = rejected("missing_field");
  HttpResponse rows =
      client.Post("/v1/import?format=jsonl", director,
                  SampleEvents().front().dump() + "\n{oops\n{\"stream\":\"app/x\"}\n");
  ASSERT_EQ(rows.status, 207) << rows.body;
  EXPECT_EQ(rejected("malformed_json"), malformed_before + 1);
  EXPECT_EQ(rejected("missing_field"), missing_before + 1);
  // The same as a refused event of POST /v1/events.
  EXPECT_EQ(client.Post("/v1/events", server.token("clerk"), "{oops").status, 400);
  EXPECT_EQ(rejected("malformed_json"), malformed_before + 2);

  const int csv_before = rejected("malformed_csv");
  const int header_before = rejected("bad_header");
  const std::string header =
      "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,data\n";
  EXPECT_EQ(client.Post("/v1/import?format=csv", director, header + "a,b\n").status, 400);
  EXPECT_EQ(client.Post("/v1/import?format=csv", director, "stream,nonsense\n").status, 400);
  EXPECT_EQ(rejected("malformed_csv"), csv_before + 1);
  EXPECT_EQ(rejected("bad_header"), header_before + 1);
}

TEST_F(HttpTest, ImportIsIdempotentReportsRejectedLinesAndRecordsTheImporter) {
  std::string file;
  for (const json& event : SampleEvents()) file += event.dump() + "\n";
  file += "{\"stream\": \"app/broken\"}\n";
  const std::string director = server_.token("director");
  HttpResponse first = client_.Post("/v1/import?format=jsonl", director, file);
  ASSERT_EQ(first.status, 207) << first.body;  // rows stored and a row rejected: not a 4xx
  json body = Body(first);
  EXPECT_EQ(body["accepted"], 11);
  EXPECT_EQ(body["rejected"], 1);
  ASSERT_EQ(body["errors"].size(), 1u);
  EXPECT_EQ(body["errors"][0]["line"], 12);
  EXPECT_FALSE(body["errors"][0].contains("stream")) << first.body;  // it did not decode
  const uint64_t head = Head();
  EXPECT_EQ(head, 11u);

  // Again: the good rows are stored already (duplicates) and the bad row is rejected again, so
  // the answer is the first one's, 207.
  HttpResponse second = client_.Post("/v1/import?format=jsonl", director, file);
  EXPECT_EQ(second.status, 207) << second.body;
  EXPECT_EQ(Body(second)["accepted"], 0) << second.body;
  EXPECT_EQ(Body(second)["duplicates"], 11);
  EXPECT_EQ(Head(), head);
  // Without the bad row, every row is already stored: 200.
  const std::string good_rows = file.substr(0, file.rfind("{\"stream\": \"app/broken\"}"));
  HttpResponse retried = client_.Post("/v1/import?format=jsonl", director, good_rows);
  EXPECT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(Body(retried)["duplicates"], 11) << retried.body;
  // Someone else importing the same rows imports the same facts: nothing is appended, and the
  // events keep who imported them first.
  HttpResponse third = client_.Post("/v1/import?format=jsonl", server_.token("admin"), file);
  EXPECT_EQ(Body(third)["duplicates"], 11) << third.body;
  EXPECT_EQ(Head(), head);

  // Each row keeps its own actor and is stored with the director who imported it.
  const std::string stream = SampleEvents().front()["stream"];
  HttpResponse read = client_.Get("/v1/streams/" + stream, server_.token("auditor"));
  ASSERT_EQ(read.status, 200) << read.body;
  const json events = Body(read)["events"];
  ASSERT_FALSE(events.empty()) << read.body;
  for (const json& event : events) {
    EXPECT_EQ(event["import"], true) << event.dump();
    EXPECT_NE(event["actor"]["id"], "D0001") << event.dump();
    EXPECT_EQ(event["recorded_by"], (json{{"id", "D0001"}, {"role", "director"}, {"org", "KM.XS"}}))
        << event.dump();
  }
  // An event appended by its own actor has no recorded_by: the auditor's recorded read.
  HttpResponse reads = client_.Get("/v1/streams/staff/A0001", server_.token("auditor"));
  ASSERT_EQ(reads.status, 200) << reads.body;
  ASSERT_FALSE(Body(reads)["events"].empty()) << reads.body;
  EXPECT_FALSE(Body(reads)["events"][0].contains("recorded_by")) << reads.body;

  // A row naming a person who holds a token here under another role or org is refused: the
  // director cannot move the auditor A0001 (org KM) into its own org to write in the auditor's
  // staff stream. Someone unknown here (legacy staff) is taken as named.
  const uint64_t before = Head();
  json forged = {{"stream", "staff/A0001"},
                 {"type", "SensitiveDataAccessed"},
                 {"event_id", "forged-read"},
                 {"occurred_at", "2026-03-02T10:00:00+08:00"},
                 {"actor", {{"id", "A0001"}, {"role", "auditor"}, {"org", "KM.XS"}}},
                 {"data", {{"what", "app/XS-2026-000123"}}}};
  HttpResponse refused = client_.Post("/v1/import?format=jsonl", director, forged.dump() + "\n");
  EXPECT_EQ(Body(refused)["rejected"], 1) << refused.body;
  EXPECT_EQ(Body(refused)["errors"][0]["stream"], "staff/A0001") << refused.body;
  EXPECT_EQ(Body(refused)["errors"][0]["event_id"], "forged-read") << refused.body;
  EXPECT_NE(refused.body.find("holds a token here under another role or org"), std::string::npos)
      << refused.body;
  EXPECT_EQ(refused.body.find("org KM "), std::string::npos)
      << "names the real org: " << refused.body;
  json legacy = forged;
  legacy["stream"] = "staff/OLD-7";
  legacy["event_id"] = "legacy-read";
  legacy["actor"] = {{"id", "OLD-7"}, {"role", "clerk"}, {"org", "KM.XS"}};
  HttpResponse taken = client_.Post("/v1/import?format=jsonl", director, legacy.dump() + "\n");
  EXPECT_EQ(Body(taken)["accepted"], 1) << taken.body;
  EXPECT_EQ(Head(), before + 1);
}

// A token added, rotated or revoked with ledgerctl takes effect in a running ledgerd on SIGHUP,
// without a restart; a tokens file that does not load then changes nothing.
TEST_F(HttpTest, TokensAreReloadedOnSighup) {
  const std::string report = "/v1/kpi?period=2026-Q1&org=KM.XS";
  auto status_with = [&](const std::string& token) { return client_.Get(report, token).status; };
  auto ledgerctl_token = [&](const std::string& arguments) {
    return RunCommand(std::string(LEDGERCTL_PATH) + " token " + arguments + " --tokens " +
                      server_.tokens_file() + " 2>/dev/null");
  };
  auto [added_status, token] = ledgerctl_token("add --id D0002 --role director --org KM.XS");
  ASSERT_EQ(added_status, 0);
  token.erase(token.find_last_not_of('\n') + 1);
  EXPECT_EQ(status_with(token), 401);  // not before the file is read again
  server_.ReloadTokens();
  EXPECT_TRUE(WaitUntil([&] { return status_with(token) == 200; }, std::chrono::seconds(10)))
      << server_.Log();

  // Rotated: the new token, with the same role and org, replaces the old one at the next reload.
  auto [rotated_status, rotated] = ledgerctl_token("rotate --id D0002");
  ASSERT_EQ(rotated_status, 0);
  rotated.erase(rotated.find_last_not_of('\n') + 1);
  ASSERT_NE(rotated, token);
  server_.ReloadTokens();
  EXPECT_TRUE(WaitUntil([&] { return status_with(rotated) == 200; }, std::chrono::seconds(10)))
      << server_.Log();
  EXPECT_EQ(status_with(token), 401);
  EXPECT_EQ(ledgerctl_token("rotate --id D0009").first, 2);  // nobody of that id
  token = rotated;

  ASSERT_EQ(ledgerctl_token("remove --id D0002").first, 0);
  EXPECT_EQ(ledgerctl_token("remove --id D0002").first, 2);  // no such token any more
  server_.ReloadTokens();
  EXPECT_TRUE(WaitUntil([&] { return status_with(token) == 401; }, std::chrono::seconds(10)))
      << server_.Log();

  // A broken file: logged, and the tokens held stay in force.
  std::ofstream(server_.tokens_file(), std::ios::app) << "not a token line\n";
  server_.ReloadTokens();
  EXPECT_TRUE(
      WaitUntil([&] { return server_.Log().find("tokens not reloaded") != std::string::npos; },
                std::chrono::seconds(10)));
  EXPECT_EQ(status_with(server_.token("director")), 200);
  EXPECT_EQ(status_with(token), 401);
}

TEST_F(HttpTest, OversizedBodyIsRefusedAndTheServerKeepsServing) {
  // Only the header is sent: the server refuses on the declared length, before reading the body.
  const auto response = RawExchange(
      server_.http_port(), "POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " +
                               server_.token("clerk") + "\r\nContent-Length: " +
                               std::to_string(9 << 20) + "\r\n\r\n");
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(json::parse(response.body())["error"]["code"], "invalid");
  EXPECT_EQ(json::parse(response.body())["error"]["field"], "body") << response.body();
  EXPECT_EQ(json::parse(response.body())["error"]["rule"], "http_body_bytes_max");
  HttpClient other("127.0.0.1", server_.http_port());
  EXPECT_EQ(other.Get("/healthz").status, 200);
  EXPECT_EQ(Head(), 0u);

  // Without a known token the answer is 401 whatever the length: a stranger learns no limit.
  auto answer_to = [&](const std::string& head, const std::string& body = "") {
    return RawExchange(server_.http_port(), head + body);
  };
  EXPECT_EQ(answer_to("POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer bad\r\n"
                      "Content-Length: " +
                      std::to_string(9 << 20) + "\r\n\r\n")
                .result_int(),
            401u);
  // A chunked body is held to the limit as it comes: 413 once it passes it.
  const std::string chunk = std::string(1 << 20, 'x');
  std::string chunks;
  for (int i = 0; i < 9; ++i) chunks += "100000\r\n" + chunk + "\r\n";
  const auto chunked = answer_to("POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " +
                                     server_.token("clerk") +
                                     "\r\nTransfer-Encoding: chunked\r\n\r\n",
                                 chunks + "0\r\n\r\n");
  EXPECT_EQ(chunked.result_int(), 413u) << chunked.body();
  EXPECT_EQ(json::parse(chunked.body())["error"]["rule"], "http_body_bytes_max");
  EXPECT_EQ(other.Get("/healthz").status, 200);
  EXPECT_EQ(Head(), 0u);

  // Headers past their bound: 431, naming them.
  const auto header_response =
      RawExchange(server_.http_port(), "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Pad: " +
                                           std::string(32 * 1024, 'x') + "\r\n\r\n");
  EXPECT_EQ(header_response.result_int(), 431u);
  EXPECT_EQ(json::parse(header_response.body())["error"]["field"], "headers")
      << header_response.body();
  EXPECT_EQ(other.Get("/healthz").status, 200);
}

// http_header_timeout_seconds and http_body_timeout_seconds: a connection that sends no request,
// and one whose body stops coming, are closed when their time is up — here 1 s, not the defaults
// of 10 and 60. A request cut so is logged (no answer can be sent: the socket is closed), with
// what it was waiting for; a silent connection is not.
TEST(HttpTimeoutTest, SilentConnectionsAndStalledBodiesAreClosedAfterTheirTimeouts) {
  testing::Ledgerd server(
      {"--http-header-timeout", "1", "--http-body-timeout", "1", "--log-level", "info"});
  auto closed_within = [&](const std::string& sent, std::chrono::seconds limit) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.http_port()});
    if (!sent.empty()) boost::asio::write(socket, boost::asio::buffer(sent));
    const timeval timeout{static_cast<time_t>(limit.count()), 0};
    EXPECT_EQ(setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout),
              0);
    char byte = 0;
    // The server closes: end of stream (no answer is owed), not the receive timeout.
    const ssize_t got = ::recv(socket.native_handle(), &byte, 1, 0);
    return got == 0;
  };
  EXPECT_TRUE(closed_within("", std::chrono::seconds(5)));
  EXPECT_EQ(server.Log().find("http request timed out"), std::string::npos) << server.Log();
  EXPECT_TRUE(closed_within("POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                                server.token("clerk") + "\r\nContent-Length: 100\r\n\r\n{",
                            std::chrono::seconds(5)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return server.Log().find("\"waiting_for\":\"body\",\"limit\":\"http_body_timeout_"
                                 "seconds\"") != std::string::npos;
      },
      std::chrono::seconds(5)))
      << server.Log();
  HttpClient client("127.0.0.1", server.http_port());
  EXPECT_EQ(client.Get("/healthz").status, 200);
}

// A client that asks before sending its body (Expect: 100-continue, as curl does past 1 MiB) is
// told to go on, instead of waiting for a timeout of its own; the request is then answered.
TEST_F(HttpTest, ExpectContinueIsAnsweredBeforeTheBody) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), server_.http_port()});
  const std::string body = SampleEvents()[0].dump();
  const std::string header = "POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " +
                             server_.token("clerk") + "\r\nExpect: 100-continue\r\n" +
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(header));
  // Nothing else is sent until the interim answer has come (without it, this read times out).
  const timeval timeout{5, 0};
  ASSERT_EQ(setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout),
            0);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::empty_body> interim;
  boost::beast::error_code error;
  http::read_header(socket, buffer, interim, error);
  ASSERT_FALSE(error) << error.message();
  EXPECT_EQ(interim.get().result(), http::status::continue_);
  boost::asio::write(socket, boost::asio::buffer(body));
  http::response<http::string_body> response;
  http::read(socket, buffer, response, error);
  ASSERT_FALSE(error) << error.message();
  EXPECT_EQ(response.result_int(), 200u) << response.body();
  EXPECT_EQ(Head(), 1u);

  // Without a known token it is refused at once, before any of the body is sent.
  boost::asio::ip::tcp::socket refused(io);
  refused.connect({boost::asio::ip::make_address("127.0.0.1"), server_.http_port()});
  boost::asio::write(refused,
                     boost::asio::buffer("POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: "
                                         "Bearer nope\r\nExpect: 100-continue\r\n"
                                         "Content-Length: 5000000\r\n\r\n"));
  boost::beast::flat_buffer refused_buffer;
  http::response<http::string_body> unauthenticated;
  http::read(refused, refused_buffer, unauthenticated, error);
  ASSERT_FALSE(error) << error.message();
  EXPECT_EQ(unauthenticated.result_int(), 401u) << unauthenticated.body();
  EXPECT_FALSE(unauthenticated.keep_alive());
}

// A reader who writes a record of its own read names an approver as a read's X-Approved-By does:
// a superior, or the record is refused (nothing stored) — an audit cannot be padded with
// approvals nobody gave.
TEST_F(HttpTest, AnApprovalWrittenIntoARecordOfAReadIsASuperiors) {
  auto record = [&](const std::string& id, const json& data) {
    return Post(json{{"stream", "staff/S1001"},
                     {"type", "SensitiveDataAccessed"},
                     {"event_id", id},
                     {"occurred_at", "2026-03-02T09:15:00+08:00"},
                     {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
                     {"data", data}},
                "clerk");
  };
  const json what = {{"what", "paper file of C-0001"}};
  for (const std::string approver : {"D0900", "S9999", "S1001"}) {
    json data = what;
    data["approved_by"] = approver;
    HttpResponse refused = record("r-" + approver, data);
    EXPECT_EQ(refused.status, 400) << approver << ": " << refused.body;
    EXPECT_EQ(Body(refused)["error"]["rule"], "approver_not_superior") << refused.body;
    EXPECT_EQ(Body(refused)["error"]["field"], "data.approved_by") << refused.body;
  }
  EXPECT_EQ(Head(), 0u);
  json approved = what;
  approved["approved_by"] = "D0001";
  EXPECT_EQ(record("ok-approved", approved).status, 200);
  EXPECT_EQ(record("ok-unapproved", what).status, 200);  // recorded as not approved
  EXPECT_EQ(Head(), 2u);
}

// A body sent without asking first (no Expect) is not read either when the token is unknown: the
// 401 comes after the headers, not after megabytes the server would have had to hold, and the
// body still arriving is dropped, so the client reads the answer.
TEST_F(HttpTest, ABodyWithoutAKnownTokenIsRefusedBeforeItIsRead) {
  // Whatever the path says: /v1/ spelt with escapes is still /v1/, and a body for a path that
  // takes none is not read either (it would hold room in input_bytes_max for a minute).
  for (const auto& [target, status] : std::vector<std::pair<std::string, unsigned>>{
           {"/v1/events", 401}, {"/%76%31/events", 401}, {"/x", 404}}) {
    SCOPED_TRACE(target);
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server_.http_port()});
    boost::asio::write(socket,
                       boost::asio::buffer("POST " + target +
                                           " HTTP/1.1\r\nHost: test\r\nAuthorization: "
                                           "Bearer nope\r\nContent-Length: 5000000\r\n\r\n"));
    boost::asio::write(socket, boost::asio::buffer(std::string(64 << 10, ' ')));
    // Without the early answer the server waits for the rest of the body (60 s): this read
    // would time out.
    const timeval timeout{5, 0};
    ASSERT_EQ(setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout),
              0);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    boost::beast::error_code error;
    http::read(socket, buffer, response, error);
    ASSERT_FALSE(error) << error.message();
    EXPECT_EQ(response.result_int(), status) << response.body();
    EXPECT_FALSE(response.keep_alive());
  }
  EXPECT_EQ(Head(), 0u);
}

// Bodies being received hold their room from their headers on: together they stay under
// input_bytes_max. A body that would pass it is refused 503 naming that limit, at once (a client
// that starts large bodies and never finishes them cannot make the server hold more); a body that
// ended, or whose connection closed, gives its room back.
TEST(HttpInputTest, BodiesBeingReceivedStayUnderInputBytesMax) {
  Ledgerd server({"--http-body-bytes-max", "3000000", "--frame-bytes-max", "3000000",
                  "--input-bytes-max", "5000000"});
  boost::asio::io_context io;
  const std::string header = "POST /v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " +
                             server.token("clerk") + "\r\nContent-Length: 3000000\r\n\r\n";
  auto start_body = [&](boost::asio::ip::tcp::socket& socket) {
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.http_port()});
    boost::asio::write(socket, boost::asio::buffer(header + std::string(1000, ' ')));
  };
  auto answer = [](boost::asio::ip::tcp::socket& socket) { return ReadAnswer(socket); };
  // The first asks before its body: "go on" says its room is taken.
  auto first = std::make_unique<boost::asio::ip::tcp::socket>(io);
  first->connect({boost::asio::ip::make_address("127.0.0.1"), server.http_port()});
  boost::asio::write(*first, boost::asio::buffer(header.substr(0, header.size() - 2) +
                                                 "Expect: 100-continue\r\n\r\n"));
  boost::beast::flat_buffer first_buffer;
  http::response_parser<http::empty_body> interim;
  boost::beast::error_code error;
  http::read_header(*first, first_buffer, interim, error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_EQ(interim.get().result(), http::status::continue_);
  boost::asio::write(*first, boost::asio::buffer(std::string(1000, ' ')));
  boost::asio::ip::tcp::socket second(io);
  start_body(second);
  const auto refused = answer(second);
  EXPECT_EQ(refused.result_int(), 503u) << refused.body();
  EXPECT_EQ(json::parse(refused.body())["error"]["limit"], "input_bytes_max") << refused.body();
  EXPECT_FALSE(refused.keep_alive());

  first.reset();  // its room comes back once ledgerd sees it closed
  bool admitted = false;
  for (int attempt = 0; attempt < 200 && !admitted; ++attempt) {
    boost::asio::ip::tcp::socket third(io);
    start_body(third);
    boost::asio::write(third, boost::asio::buffer(std::string(3000000 - 1000, ' ')));
    admitted = answer(third).result_int() != 503;
  }
  EXPECT_TRUE(admitted);
}

// A store damaged behind ledgerd's back (an event deleted by hand) is not served as if whole:
// /healthz turns 503 once the verification at start has failed, and a read that needs the lost
// event answers 500 naming the damage, not 404 as if the application never was.
TEST(HttpDamageTest, ADamagedStoreIsSaidByHealthzAndReadsAreNotNotFound) {
  Ledgerd server;
  {
    HttpClient client("127.0.0.1", server.http_port());
    for (const json& event : SampleEvents()) {
      ASSERT_EQ(client.Post("/v1/events", server.token(PrincipalOf(event)), event.dump()).status,
                200);
    }
  }
  ASSERT_EQ(server.Stop(), std::optional<int>(0));
  {
    std::vector<std::string> names;
    ASSERT_TRUE(
        rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), server.data_dir(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names)
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::DBOptions(), server.data_dir(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const size_t events =
        std::find(names.begin(), names.end(), ledger::format::kEventsFamily) - names.begin();
    ASSERT_LT(events, names.size());
    rocksdb::WriteOptions sync;
    sync.sync = true;
    EXPECT_TRUE(db->Delete(sync, handles[events], ledger::format::EventKey(2)).ok());
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  server.Start();
  HttpClient client("127.0.0.1", server.http_port());
  HttpResponse health;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    health = client.Get("/healthz");
  } while (health.status != 503 && std::chrono::steady_clock::now() < until);
  ASSERT_EQ(health.status, 503) << health.body;
  EXPECT_EQ(Body(health)["ok"], false);
  EXPECT_EQ(Body(health)["chain"]["verified"], false) << health.body;
  HttpResponse app = client.Get("/v1/apps/XS-2026-000123", server.token("auditor"));
  EXPECT_EQ(app.status, 500) << app.body;
  EXPECT_NE(app.body.find("missing"), std::string::npos) << app.body;
}

// The JSON checks of every other door hold over HTTP too: a key twice (the first "actor" naming
// another org) and nesting past the bound are refused as malformed, and nesting deep enough to
// exhaust a recursive renderer's stack (200,000 levels in a 1.2 MB body, from a reader) does not
// take the server down.
TEST_F(HttpTest, DuplicateKeysAndDeepNestingAreMalformedAndTheServerKeepsServing) {
  const json event = SampleEvents()[0];
  std::string text = event.dump();
  const std::string other_actor = R"("actor":{"id":"S9","role":"clerk","org":"KM.PL"},)";
  text.insert(1, other_actor);
  HttpResponse twice = client_.Post("/v1/events", server_.token("clerk"), text);
  ASSERT_EQ(twice.status, 400) << twice.body;
  EXPECT_EQ(Body(twice)["error"]["rule"], "malformed_json");
  EXPECT_NE(Body(twice)["error"]["message"].get<std::string>().find("actor"), std::string::npos)
      << twice.body;

  json nested = json::array();
  for (int level = 0; level < 20; ++level) nested = json::array({nested});
  json deep = event;
  deep["data"]["channel"] = nested;
  HttpResponse too_deep = Post(deep, "clerk");
  ASSERT_EQ(too_deep.status, 400) << too_deep.body;
  EXPECT_EQ(Body(too_deep)["error"]["rule"], "malformed_json");
  // The same inside a batch.
  HttpResponse batch =
      client_.Post("/v1/events", server_.token("clerk"), json::array({deep}).dump());
  ASSERT_EQ(batch.status, 400) << batch.body;

  // A Corrected event whose free-form fields nest 200,000 arrays deep.
  json corrected = event;
  corrected["type"] = "Corrected";
  corrected["data"] = {{"corrects_position", 1}, {"reason", "typo"}, {"fields", {{"a", 0}}}};
  std::string bomb = corrected.dump();
  const size_t zero = bomb.find("\"a\":0") + 4;
  bomb.replace(zero, 1, std::string(200000, '[') + std::string(200000, ']'));
  HttpResponse crash = client_.Post("/v1/events", server_.token("reader"), bomb);
  EXPECT_EQ(crash.status, 400) << crash.body;
  EXPECT_EQ(client_.Get("/healthz").status, 200) << server_.Log();
  EXPECT_EQ(Head(), 0u);
}

// Mutated raw requests (request line, headers, chunked bodies, JSON) each get an answer or a
// closed connection; nothing is stored and the server keeps serving. Seeded, so failures repeat.
TEST_F(HttpTest, GarbageRequestsChangeNothingAndTheServerKeepsServing) {
  const std::string token = server_.token("clerk");
  const std::string body = SampleEvents()[0].dump();
  const std::string valid =
      "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  std::mt19937_64 random(4242);
  int answered = 0;
  for (int round = 0; round < 300; ++round) {
    std::string request = valid;
    for (int edit = 0; edit < 1 + static_cast<int>(random() % 4); ++edit) {
      const size_t at = random() % request.size();
      switch (random() % 3) {
        case 0:
          request[at] = static_cast<char>(random() & 0xff);
          break;
        case 1:
          request.erase(at, random() % 8);
          break;
        default:
          request.insert(at, random() % 2 ? "\r\n" : "Transfer-Encoding: chunked\r\n");
      }
    }
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    boost::beast::error_code error;
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server_.http_port()}, error);
    ASSERT_FALSE(error) << "round " << round << ": ledgerd stopped serving\n" << server_.Log();
    boost::asio::write(socket, boost::asio::buffer(request), error);
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send, error);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response, error);
    if (!error) {
      ++answered;
      // A mutation may leave a valid event (e.g. in a header value): then it is stored once.
      EXPECT_TRUE(response.result_int() == 200 || response.result_int() >= 400)
          << response.result_int();
    }
  }
  EXPECT_GT(answered, 100);
  EXPECT_EQ(client_.Get("/healthz").status, 200);
  EXPECT_LE(Head(), 1u);  // at most the one valid event, however often it survived mutation
  HttpResponse verify = client_.Get("/v1/verify", server_.token("auditor"));
  EXPECT_EQ(verify.status, 200) << verify.body;
}

// A read page is bounded in bytes as a TCP frame is (frame_bytes_max of rendered events, at least
// one event), not only in events: large events cannot make one answer huge. Paging with `next` /
// `next_version` still reaches every event exactly once.
TEST(HttpReadPageTest, PagesAreBoundedInBytesAndPagingSeesEveryEventOnce) {
  Ledgerd server({"--frame-bytes-max", "16384"});
  HttpClient client("127.0.0.1", server.http_port());
  std::vector<json> events = SampleEvents();
  ASSERT_EQ(client.Post("/v1/events", server.token("clerk"), events[0].dump()).status, 200);
  const std::string stream = events[0]["stream"];
  constexpr int kInspections = 12;
  for (int i = 0; i < kInspections; ++i) {
    json inspected = {
        {"stream", stream},
        {"type", "SiteInspected"},
        {"event_id", "big-" + std::to_string(i)},
        {"occurred_at", events[0]["occurred_at"]},
        {"actor", {{"id", "S2040"}, {"role", "inspector"}, {"org", "KM.XS"}}},
        {"data",
         {{"inspector", "S2040"}, {"items", {std::string(3000, 'x')}}, {"conclusion", "pass"}}}};
    HttpResponse stored = client.Post("/v1/events", server.token("inspector"), inspected.dump());
    ASSERT_EQ(stored.status, 200) << stored.body;
  }
  std::vector<std::string> seen;
  uint64_t from = 1;
  int pages = 0;
  while (true) {
    HttpResponse page = client.Get("/v1/events?from=" + std::to_string(from) + "&limit=1000",
                                   server.token("auditor"));
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_LE(page.body.size(), 16384u + 4096u) << "page " << pages;
    const json body = json::parse(page.body);
    for (const json& event : body["events"]) {
      if (event["stream"] == stream) seen.push_back(event["event_id"]);
    }
    ++pages;
    if (body["events"].empty()) break;
    from = body["next"];
  }
  EXPECT_GE(pages, 3);
  ASSERT_EQ(seen.size(), kInspections + 1u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());

  std::vector<std::string> in_stream;
  uint64_t from_version = 0;
  for (int page_count = 0; page_count < 100; ++page_count) {
    HttpResponse page =
        client.Get("/v1/streams/" + stream + "?from_version=" + std::to_string(from_version),
                   server.token("auditor"));
    ASSERT_EQ(page.status, 200) << page.body;
    const json body = json::parse(page.body);
    if (body["events"].empty()) break;
    EXPECT_LE(body["events"].size(), 5u);
    for (const json& event : body["events"]) in_stream.push_back(event["event_id"]);
    from_version = body["next_version"];
  }
  EXPECT_EQ(in_stream.size(), kInspections + 1u);
}

// Everything can come from a config file; a flag wins over the file.
TEST(LedgerdConfigTest, AConfigFileSetsTheOptionsAndFlagsWin) {
  TempDir dir;
  const std::string tokens = dir.str() + "/tokens.jsonl";
  const std::string token = ingest::TokenStore::NewToken();
  ASSERT_TRUE(ingest::TokenStore::Add(tokens, {"A0001", ingest::Role::kAuditor, "KM"},
                                      ingest::TokenStore::Sha256Hex(token))
                  .ok());
  const std::string ready = dir.str() + "/ready.json";
  std::ofstream(dir.str() + "/ledgerd.toml")
      << "data = \"" << dir.str() << "/data\"\n"
      << "tokens = \"" << tokens << "\"\n"
      << "http = \"127.0.0.1:1\"\n"  // overridden by the flag below
      << "tcp = \"\"\n"
      << "ready-file = \"" << ready << "\"\n"
      << "batch-events-max = 2\n";
  Process ledgerd({LEDGERD_PATH, "--config", dir.str() + "/ledgerd.toml", "--http", "127.0.0.1:0"},
                  dir.str() + "/log");
  uint16_t port = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream in(ready);
        json info = json::parse(in, nullptr, false);
        if (info.is_discarded()) return !ledgerd.running();
        const std::string http = info["http"];
        port = static_cast<uint16_t>(std::stoi(http.substr(http.rfind(':') + 1)));
        EXPECT_FALSE(info.contains("tcp"));  // tcp = "" in the file: off
        return true;
      },
      std::chrono::seconds(30)))
      << ledgerd.Log();
  ASSERT_NE(port, 0) << ledgerd.Log();
  HttpClient client("127.0.0.1", port);
  json three = json::array({json::object(), json::object(), json::object()});
  HttpResponse refused = client.Post("/v1/events", token, three.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;  // batch-events-max = 2 from the file
  EXPECT_NE(refused.body.find("1 to 2 events"), std::string::npos) << refused.body;
  ledgerd.Signal(SIGTERM);
  EXPECT_EQ(ledgerd.Wait(std::chrono::seconds(30)), std::optional<int>(0)) << ledgerd.Log();
}

// ledgerctl --http asks a running ledgerd what the embedded commands would compute on its data
// directory (which ledgerd holds): the same JSON as the endpoints, the same tables; a refusal is
// exit 2 with the server's error; the TCP door's commands say which flag they need.
TEST_F(HttpTest, LedgerctlAsksTheRunningServerOverHttp) {
  AppendSample();
  const std::string auditor = server_.token("auditor");
  const std::string http = "127.0.0.1:" + std::to_string(server_.http_port());
  auto ledgerctl = [&](const std::string& token, const std::string& arguments) {
    return RunCommand(std::string(LEDGERCTL_PATH) + " --http " + http + " --token " + token + " " +
                      arguments + " 2>/dev/null");
  };
  auto [app_status, app_out] = ledgerctl(auditor, "app app/XS-2026-000123 --at 2026-03-20");
  ASSERT_EQ(app_status, 0) << app_out;
  EXPECT_EQ(json::parse(app_out),
            Body(client_.Get("/v1/apps/XS-2026-000123?at=2026-03-20", auditor)));

  // A time with an offset: its '+' reaches the server as a plus, not a space.
  const std::string now = NowText();
  auto [as_of_status, as_of_out] =
      ledgerctl(auditor, "app XS-2026-000123 --at 2026-03-20 --as-of " + now);
  ASSERT_EQ(as_of_status, 0) << as_of_out;
  json by_ledgerctl = json::parse(as_of_out);
  json by_get =
      Body(client_.Get("/v1/apps/XS-2026-000123?at=2026-03-20&as_of=" + InQuery(now), auditor));
  // Both as the ledger knew it at `now`, before either read recorded itself.
  ASSERT_TRUE(by_ledgerctl.contains("as_of_position")) << as_of_out;
  EXPECT_EQ(by_ledgerctl, by_get);

  auto [kpi_status, kpi_out] = ledgerctl(auditor, "kpi --period 2026-Q2 --org KM.XS --json");
  ASSERT_EQ(kpi_status, 0) << kpi_out;
  EXPECT_EQ(json::parse(kpi_out)["kpis"],
            Body(client_.Get("/v1/kpi?period=2026-Q2&org=KM.XS", auditor))["kpis"]);
  auto [table_status, table_out] = ledgerctl(auditor, "kpi --period 2026-Q2 --org KM.XS");
  EXPECT_EQ(table_status, 0);
  EXPECT_NE(table_out.find("timeliness"), std::string::npos) << table_out;

  auto [overdue_status, overdue_out] = ledgerctl(auditor, "overdue --at 2026-03-03 --table");
  EXPECT_EQ(overdue_status, 0);
  EXPECT_NE(overdue_out.find("overdue clocks at 2026-03-03"), std::string::npos) << overdue_out;

  auto [staff_status, staff_out] = ledgerctl(auditor, "staff S1001");
  ASSERT_EQ(staff_status, 0) << staff_out;
  EXPECT_EQ(json::parse(staff_out), Body(client_.Get("/v1/staff/S1001", auditor)));
  EXPECT_EQ(json::parse(staff_out)["actions_total"], 7);

  auto [digest_status, digest_out] = ledgerctl(auditor, "digest --at 3");
  ASSERT_EQ(digest_status, 0) << digest_out;
  const json digest = json::parse(digest_out);
  EXPECT_EQ(digest, Body(client_.Get("/v1/digest?at=3", auditor)));
  const std::string handed_out = "3:" + digest["hash"].get<std::string>();
  auto [verify_status, verify_out] = ledgerctl(auditor, "verify --digest " + handed_out);
  EXPECT_EQ(verify_status, 0) << verify_out;
  EXPECT_EQ(json::parse(verify_out)["digest"]["matches"], true) << verify_out;
  std::string forged = handed_out;
  forged.back() = forged.back() == '0' ? '1' : '0';
  auto [forged_status, forged_out] = ledgerctl(auditor, "verify --digest " + forged);
  EXPECT_EQ(forged_status, 1) << forged_out;
  EXPECT_EQ(json::parse(forged_out)["digest"]["matches"], false) << forged_out;
  auto [beyond_status, beyond_out] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --http " + http + " --token " + auditor +
      " verify --digest 999999:" + digest["hash"].get<std::string>() + " 2>&1 >/dev/null");
  EXPECT_EQ(beyond_status, 1) << beyond_out;
  EXPECT_NE(beyond_out.find("ends before that position"), std::string::npos) << beyond_out;
  // Events handed out for a dispute (read --envelopes, from the TCP door) are proved against the
  // running ledger, event by event.
  const std::string events_file = server_.backup_dir() + "-events.jsonl";
  auto [export_status, exported] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" + std::to_string(server_.tcp_port()) +
      " --token " + auditor + " read --from 1 --limit 3 --envelopes 2>/dev/null");
  ASSERT_EQ(export_status, 0) << exported;
  // A page through the server says that more follow, as on a data directory.
  auto [page_status, page_err] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" + std::to_string(server_.tcp_port()) +
      " --token " + auditor + " read --from 1 --limit 3 2>&1 >/dev/null");
  EXPECT_EQ(page_status, 0) << page_err;
  EXPECT_NE(page_err.find("3 events shown (--limit); more follow: --from 4"), std::string::npos)
      << page_err;
  std::ofstream(events_file) << exported;
  auto [events_status, events_out] = ledgerctl(auditor, "verify --events " + events_file);
  EXPECT_EQ(events_status, 0) << events_out;
  EXPECT_EQ(json::parse(events_out)["events"]["matching"], 3) << events_out;
  {
    // The second event with an edited field and its own hash and envelope kept.
    std::istringstream lines(exported);
    std::string first;
    std::string second;
    std::getline(lines, first);
    std::getline(lines, second);
    const size_t type = second.find("\"type\":\"") + 8;
    second.insert(type, "X");
    std::ofstream(events_file) << second << "\n";
  }
  auto [other_status, other_out] = ledgerctl(auditor, "verify --events " + events_file);
  EXPECT_EQ(other_status, 1) << other_out;
  EXPECT_EQ(json::parse(other_out)["events"]["mismatches"][0]["line"], 1) << other_out;
  EXPECT_TRUE(json::parse(other_out)["events"]["mismatches"][0].contains("reason")) << other_out;

  // Refused by the server: exit 2 with its error, nothing written.
  const uint64_t head = Head();
  auto [refused_status, refused_out] =
      ledgerctl(server_.token("other_clerk"), "evidence XS-2026-000123");
  EXPECT_EQ(refused_status, 2) << refused_out;
  EXPECT_EQ(json::parse(refused_out)["error"]["code"], "forbidden") << refused_out;
  EXPECT_EQ(Head(), head);

  // An import: the server's summary, exit 2 for its rejected line.
  TempDir dir;
  json accepted = SampleEvents().front();
  accepted["stream"] = "app/XS-2026-HTTPCTL";
  accepted["event_id"] = "httpctl-accepted";
  json archived = ArchivedRightAway(accepted, "httpctl-archived");
  std::ofstream(dir.str() + "/rows.jsonl") << accepted.dump() << "\n"
                                           << archived.dump() << "\n{\"stream\": \"app/x\"}\n";
  auto [import_status, import_out] =
      ledgerctl(server_.token("director"), "import " + dir.str() + "/rows.jsonl");
  EXPECT_EQ(import_status, 2) << import_out;
  const json summary = json::parse(import_out);
  EXPECT_EQ(summary["accepted"], 2) << import_out;
  EXPECT_EQ(summary["rejected"], 1) << import_out;
  EXPECT_EQ(summary["with_violations"], 1) << import_out;  // as on a data directory
  EXPECT_EQ(summary["errors"][0]["line"], 3) << import_out;
  EXPECT_EQ(Head(), head + 2);

  auto [wrong_door, wrong_out] = RunCommand(std::string(LEDGERCTL_PATH) + " --http " + http +
                                            " --token " + auditor + " read --from 1 2>&1");
  EXPECT_EQ(wrong_door, 1);
  EXPECT_NE(wrong_out.find("--server"), std::string::npos) << wrong_out;
}

// A file larger than ledgerd takes in one request is imported in requests of whole rows: every
// row arrives once, and a rejected row is reported with its line in the file.
TEST(LedgerctlHttpImportTest, ALargeFileGoesInRequestsUnderTheBodyLimit) {
  Ledgerd server({"--http-body-bytes-max", "2048"});
  TempDir dir;
  const std::string file = dir.str() + "/rows.jsonl";
  {
    std::ofstream out(file);
    for (int i = 1; i <= 13; ++i) {
      if (i == 9) {
        out << "{\"stream\": \"app/broken\"}\n";
        continue;
      }
      if (i == 11) {  // one row larger than a request may be: rejected, and the import goes on
        json huge = SampleEvents().front();
        huge["stream"] = "app/XS-2026-HUGE";
        huge["event_id"] = "chunk-huge";
        huge["data"]["customer_name"] = std::string(4096, 'x');
        out << huge.dump() << "\n";
        continue;
      }
      json row = SampleEvents().front();
      row["stream"] = "app/XS-2026-CHUNK" + std::to_string(i);
      row["event_id"] = "chunk-" + std::to_string(i);
      out << row.dump() << "\n";
    }
  }
  ASSERT_GT(std::filesystem::file_size(file), 2048u * 2);
  const std::string command =
      std::string(LEDGERCTL_PATH) + " --http 127.0.0.1:" + std::to_string(server.http_port()) +
      " --token " + server.token("director") + " import " + file + " 2>/dev/null";
  auto [status, output] = RunCommand(command);
  EXPECT_EQ(status, 2) << output;  // the broken row and the huge one
  const json summary = json::parse(output);
  EXPECT_EQ(summary["accepted"], 11) << output;
  EXPECT_EQ(summary["rejected"], 2) << output;
  ASSERT_EQ(summary["errors"].size(), 2u) << output;
  EXPECT_EQ(summary["errors"][0]["line"], 9) << output;
  EXPECT_EQ(summary["errors"][1]["line"], 11) << output;
  EXPECT_EQ(summary["errors"][1]["error"]["rule"], "row_too_large") << output;
  EXPECT_GT(summary["requests"].get<int>(), 2) << output;
  // Again: every row is a duplicate, nothing is appended.
  auto [again_status, again] = RunCommand(command);
  EXPECT_EQ(json::parse(again)["duplicates"], 11) << again;
  EXPECT_EQ(json::parse(again)["accepted"], 0) << again;
}

// Rejected rows of a file sent in several requests are reported as an import on a data directory
// reports them: the same lines, and the same messages, also where a message names a line (a
// quoted field that spans lines, a closing quote followed by more, a quote left open at the end).
TEST(LedgerctlHttpImportTest, RejectionsOfALargeFileReadAsOnADataDirectory) {
  Ledgerd server({"--http-body-bytes-max", "1500"});
  TempDir dir;
  const std::string file = dir.str() + "/rows.csv";
  auto row = [](int line, const std::string& data_cell) {
    return "app/XS-2026-LINE" + std::to_string(line) + ",ApplicationAccepted,line-" +
           std::to_string(line) + ",2026-03-02T09:15:00+08:00,S1001,clerk,KM.XS," + data_cell;
  };
  json data = SampleEvents().front()["data"];
  data["customer_name"] = "Kunming Xishan Precision Machinery";
  std::string quoted;  // the data as one quoted CSV field
  for (char c : data.dump()) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  quoted = "\"" + quoted + "\"";
  {
    std::ofstream out(file, std::ios::binary);
    out << "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,data\n";  // 1
    for (int line = 2; line <= 18; ++line) {
      if (line == 11) {
        out << row(line, quoted + "x") << "\n";  // more after the closing quote
      } else if (line == 14) {
        // One row on lines 14-15 (JSON may break a line between values).
        const size_t split = quoted.find(',') + 1;
        out << row(line, quoted.substr(0, split) + "\n" + quoted.substr(split)) << "\n";
        ++line;
      } else {
        out << row(line, quoted) << "\n";
      }
    }
    out << row(19, "\"{");  // a quote not closed before the end of the file
  }
  ASSERT_GT(std::filesystem::file_size(file), 1500u * 3);

  auto [http_status, http_output] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --http 127.0.0.1:" + std::to_string(server.http_port()) +
      " --token " + server.token("director") + " import " + file + " 2>/dev/null");
  EXPECT_EQ(http_status, 2) << http_output;
  const json summary = json::parse(http_output);
  EXPECT_GT(summary["requests"].get<int>(), 3) << http_output;
  EXPECT_EQ(summary["accepted"], 15) << http_output;

  auto [local_status, local_output] =
      RunCommand(std::string(LEDGERCTL_PATH) + " --data " + dir.str() + "/local import " + file +
                 " 2>/dev/null");
  EXPECT_EQ(local_status, 2) << local_output;
  json local_errors = json::array();
  std::istringstream lines(local_output);
  for (std::string line; std::getline(lines, line);) {
    json parsed = json::parse(line);
    if (!parsed.contains("line")) continue;  // the summary
    local_errors.push_back({{"line", parsed["line"]}, {"error", parsed["error"]}});
  }
  ASSERT_EQ(local_errors.size(), 2u) << local_output;
  EXPECT_EQ(local_errors[0]["line"], 11);
  EXPECT_NE(local_errors[0]["error"]["message"].get<std::string>().find("line 11:"),
            std::string::npos)
      << local_output;
  EXPECT_NE(local_errors[1]["error"]["message"].get<std::string>().find("starting on line 19 "),
            std::string::npos)
      << local_output;
  EXPECT_EQ(summary["errors"], local_errors) << http_output << "\n" << local_output;
}

// A misspelt key in the config file stops ledgerd with its name, rather than leaving the option
// it meant at its default.
TEST(LedgerdConfigTest, AnUnknownKeyInTheConfigFileIsAnError) {
  TempDir dir;
  std::ofstream(dir.str() + "/ledgerd.toml") << "http = \"127.0.0.1:0\"\n"
                                             << "conections-max = 5\n";
  auto [status, output] =
      RunCommand(std::string(LEDGERD_PATH) + " --config " + dir.str() + "/ledgerd.toml --data " +
                 dir.str() + "/data --tokens " + dir.str() + "/none 2>&1");
  EXPECT_NE(status, 0) << output;
  EXPECT_NE(output.find("conections-max"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(dir.str() + "/data")) << output;
}

// At debug level every answer is logged, refusals included: what was asked, by whom, the status
// and how long it took, so an operator can see why clients are refused.
TEST(LedgerdLogTest, EveryAnswerIsLoggedAtDebugLevel) {
  Ledgerd server({"--log-level", "debug"});
  HttpClient client("127.0.0.1", server.http_port());
  EXPECT_EQ(client.Get("/v1/kpi?period=2026-Q1", "no-such-token").status, 401);
  EXPECT_EQ(client.Get("/v1/kpi?period=2026-Q1", server.token("auditor")).status, 200);
  std::vector<json> lines;
  ASSERT_TRUE(WaitUntil(
      [&] {
        lines.clear();
        std::istringstream log(server.Log());
        for (std::string text; std::getline(log, text);) {
          json line = json::parse(text, nullptr, false);
          if (!line.is_discarded() && line.value("msg", "") == "http request") {
            lines.push_back(std::move(line));
          }
        }
        return lines.size() >= 2;
      },
      std::chrono::seconds(10)))
      << server.Log();
  EXPECT_EQ(lines[0]["status"], 401) << lines[0].dump();
  EXPECT_EQ(lines[0]["path"], "/v1/kpi") << lines[0].dump();
  EXPECT_FALSE(lines[0].contains("principal")) << lines[0].dump();
  EXPECT_EQ(lines[1]["status"], 200) << lines[1].dump();
  EXPECT_EQ(lines[1]["principal"], "A0001") << lines[1].dump();
  EXPECT_TRUE(lines[1]["ms"].is_number()) << lines[1].dump();
  EXPECT_NE(lines[1]["peer"].get<std::string>().find("127.0.0.1:"), std::string::npos);
}

// Limits that cannot work together stop ledgerd with the reason, before it touches the data.
TEST(LedgerdConfigTest, LimitsThatCannotWorkTogetherAreRefused) {
  TempDir dir;
  // (A backup directory inside the data directory, where every backup would be refused, too.)
  for (const std::string& limits :
       {std::string("--batch-events-max 50 --appends-inflight-max 2"),
        std::string("--connections-max 0"), "--backup-dir " + dir.str() + "/data/backups"}) {
    auto [status, output] =
        RunCommand(std::string(LEDGERD_PATH) + " " + limits + " --http 127.0.0.1:0 --data " +
                   dir.str() + "/data --tokens " + dir.str() + "/none 2>&1");
    EXPECT_NE(status, 0) << output;
    EXPECT_NE(output.find(limits.substr(0, limits.find(' '))), std::string::npos) << output;
    EXPECT_FALSE(std::filesystem::exists(dir.str() + "/data")) << output;
  }
}

// SIGTERM drains and exits 0; a restart resumes with everything acknowledged; ledgerctl on the
// held directory says so instead of failing on RocksDB's lock.
TEST_F(HttpTest, TermExitsCleanlyAndARestartResumes) {
  AppendSample();
  const std::string digest = Body(client_.Get("/v1/digest", server_.token("auditor")))["hash"];
  const uint64_t head = Head();

  auto [code, output] =
      RunCommand(std::string(LEDGERCTL_PATH) + " --data " + server_.data_dir() + " verify 2>&1");
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("held by another process"), std::string::npos) << output;
  EXPECT_NE(output.find("--server"), std::string::npos) << output;
  EXPECT_NE(output.find("--http"), std::string::npos) << output;
  // A second ledgerd on it is told who may hold it, not pointed at the running one.
  auto [second_code, second_output] =
      RunCommand(std::string(LEDGERD_PATH) + " --data " + server_.data_dir() + " --tokens " +
                 server_.tokens_file() + " --http 127.0.0.1:0 --tcp 127.0.0.1:0 2>&1");
  EXPECT_NE(second_code, 0);
  EXPECT_NE(second_output.find("held by another process: another ledgerd, or a ledgerctl command"),
            std::string::npos)
      << second_output;

  ASSERT_TRUE(std::filesystem::exists(server_.ready_file()));
  EXPECT_EQ(server_.Stop(), std::optional<int>(0)) << server_.Log();
  // Nothing listens any more, so the ready file is gone (no stale pid and ports).
  EXPECT_FALSE(std::filesystem::exists(server_.ready_file()));
  auto [verify_code, verify_output] =
      RunCommand(std::string(LEDGERCTL_PATH) + " --data " + server_.data_dir() + " verify");
  EXPECT_EQ(verify_code, 0) << verify_output;
  EXPECT_EQ(json::parse(verify_output)["hash"], digest);

  // The same answer from ledgerctl and from the server for a fixed business time.
  auto [app_code, app_output] =
      RunCommand(std::string(LEDGERCTL_PATH) + " --data " + server_.data_dir() +
                 " app XS-2026-000123 --at 2026-04-01");
  ASSERT_EQ(app_code, 0) << app_output;

  server_.Start();
  HttpClient client("127.0.0.1", server_.http_port());
  EXPECT_EQ(
      Body(client.Get("/v1/digest?at=" + std::to_string(head), server_.token("auditor")))["hash"],
      digest);
  // ledgerctl's read of the application on the data directory was recorded, as ledgerd records
  // its readers'.
  HttpResponse recorded =
      client.Get("/v1/events?from=" + std::to_string(head + 1), server_.token("auditor"));
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  ASSERT_EQ(Body(recorded)["events"].size(), 1u) << recorded.body;
  EXPECT_EQ(Body(recorded)["events"][0]["type"], "SensitiveDataAccessed");
  EXPECT_EQ(Body(recorded)["events"][0]["data"]["what"], "app/XS-2026-000123");
  HttpResponse app = client.Get("/v1/apps/XS-2026-000123?at=2026-04-01", server_.token("auditor"));
  ASSERT_EQ(app.status, 200);
  EXPECT_EQ(Body(app)["clocks"], json::parse(app_output)["clocks"]);
  EXPECT_EQ(Body(app)["stage"], json::parse(app_output)["stage"]);
}

// SIGTERM while many clients append: every append that was stored was answered (200), and every
// 200 was stored. The drain used to let the I/O threads return while appends were still in the
// ledger's pipeline, so their answers were posted to a stopped io_context and the connections
// closed unanswered although the events were durable.
TEST_F(HttpTest, TermAnswersEveryAppendItStored) {
  constexpr int kClients = 48;
  const json accepted = SampleEvents()[0];
  std::atomic<int> answered{0};
  std::mutex mutex;
  std::map<std::string, int> statuses;  // event_id → status (0: no answer)
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client("127.0.0.1", server_.http_port());
      for (int i = 0;; ++i) {
        json event = accepted;
        event["stream"] = "app/TERM-" + std::to_string(c) + "-" + std::to_string(i);
        event["event_id"] = "term-" + std::to_string(c) + "-" + std::to_string(i);
        const int status = client.Post("/v1/events", server_.token("clerk"), event.dump()).status;
        {
          std::lock_guard lock(mutex);
          statuses[event["event_id"]] = status;
        }
        if (status != 200) return;  // refused while draining, or no answer: stop
        ++answered;
      }
    });
  }
  // Signal once appends are flowing on every connection, so that some are in flight.
  ASSERT_TRUE(WaitUntil([&] { return answered.load() >= 4 * kClients; }, std::chrono::seconds(60)));
  const std::optional<int> exit = server_.Stop();
  for (std::thread& client : clients) client.join();
  ASSERT_EQ(exit, std::optional<int>(0)) << server_.Log();

  auto [code, output] = RunCommand(std::string(LEDGERCTL_PATH) + " --data " + server_.data_dir() +
                                   " read --from 1 --limit 100000");
  ASSERT_EQ(code, 0) << output;
  std::set<std::string> stored;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) stored.insert(json::parse(line)["event_id"].get<std::string>());
  }
  int unanswered = 0;
  for (const auto& [event_id, status] : statuses) {
    if (stored.count(event_id) > 0) {
      EXPECT_EQ(status, 200) << event_id << " was stored but answered " << status;
      unanswered += status == 0;
    } else {
      EXPECT_NE(status, 200) << event_id << " was answered 200 but not stored";
    }
  }
  EXPECT_EQ(unanswered, 0);
}

}  // namespace
}  // namespace gridledger::testing

namespace gridledger::testing {
namespace {

// A small JSON Schema (OpenAPI 3.0 subset) check: type, nullable, required, properties, items,
// additionalProperties, oneOf and $ref. Returns "" when `value` conforms, else the first mismatch.
std::string Conforms(const json& value, const json& schema, const json& document,
                     const std::string& where) {
  if (schema.contains("$ref")) {
    std::string ref = schema["$ref"];
    const std::string name = ref.substr(std::string("#/components/schemas/").size());
    const json& schemas = document.at("components").at("schemas");
    if (!schemas.contains(name)) return where + ": no schema " + name;
    return Conforms(value, schemas.at(name), document, where);
  }
  if (schema.contains("oneOf")) {
    for (const json& option : schema["oneOf"]) {
      if (Conforms(value, option, document, where).empty()) return "";
    }
    return where + ": matches none of oneOf";
  }
  if (value.is_null()) {
    return schema.value("nullable", false) ? "" : where + ": null but not nullable";
  }
  const std::string type = schema.value("type", "");
  if (type == "object") {
    if (!value.is_object()) return where + ": not an object";
    const json required = schema.value("required", json::array());
    for (const json& name : required) {
      if (!value.contains(name.get<std::string>())) {
        return where + ": missing required " + name.get<std::string>();
      }
    }
    const json properties = schema.value("properties", json::object());
    for (const auto& [name, property] : properties.items()) {
      if (!value.contains(name)) continue;
      std::string problem = Conforms(value[name], property, document, where + "." + name);
      if (!problem.empty()) return problem;
    }
    if (schema.contains("additionalProperties")) {
      for (const auto& [name, item] : value.items()) {
        std::string problem =
            Conforms(item, schema["additionalProperties"], document, where + "." + name);
        if (!problem.empty()) return problem;
      }
    } else if (!properties.empty()) {
      // A member the document does not name is one a client written to it cannot know of.
      for (const auto& [name, item] : value.items()) {
        if (!properties.contains(name)) return where + ": undocumented member " + name;
      }
    }
    return "";
  }
  if (type == "array") {
    if (!value.is_array()) return where + ": not an array";
    for (size_t i = 0; i < value.size(); ++i) {
      std::string problem = Conforms(value[i], schema.value("items", json::object()), document,
                                     where + "[" + std::to_string(i) + "]");
      if (!problem.empty()) return problem;
    }
    return "";
  }
  if (type == "string" && !value.is_string()) return where + ": not a string";
  if (type == "integer" && !value.is_number_integer()) return where + ": not an integer";
  if (type == "number" && !value.is_number()) return where + ": not a number";
  if (type == "boolean" && !value.is_boolean()) return where + ": not a boolean";
  return "";
}

// An admin's backup is a verified copy of the ledger in --backup-dir/NAME, that ledgerctl opens
// and verifies on its own; never over an existing one.
TEST_F(HttpTest, AnAdminsBackupIsAVerifiedCopyThatOpensOnItsOwn) {
  AppendSample();
  const std::string admin = server_.token("admin");
  HttpResponse made = client_.Post("/v1/backup?name=nightly-1", admin, "");
  ASSERT_EQ(made.status, 200) << made.body;
  const json backup = Body(made);
  EXPECT_EQ(backup["backup"], server_.backup_dir() + "/nightly-1");
  EXPECT_EQ(backup["head"], Head());
  auto [exit_code, out] = RunCommand(std::string(LEDGERCTL_PATH) + " --data " +
                                     server_.backup_dir() + "/nightly-1 verify");
  ASSERT_EQ(exit_code, 0) << out;
  const json verified = json::parse(out);
  EXPECT_EQ(verified["head"], backup["head"]);
  EXPECT_EQ(verified["hash"], backup["hash"]);
  auto [history_code, history] =
      RunCommand(std::string(LEDGERCTL_PATH) + " --data " + server_.backup_dir() +
                 "/nightly-1 history app/XS-2026-000123");
  EXPECT_EQ(history_code, 0) << history;
  EXPECT_NE(history.find("ApplicationAccepted"), std::string::npos) << history;

  HttpResponse again = client_.Post("/v1/backup?name=nightly-1", admin, "");
  EXPECT_EQ(again.status, 400) << again.body;
  EXPECT_EQ(Body(again)["error"]["code"], "invalid");
  // As every 400, it names the field and the rule.
  EXPECT_EQ(Body(again)["error"]["field"], "name") << again.body;
  EXPECT_EQ(Body(again)["error"]["rule"], "new_directory") << again.body;
  // Without a name: one made from the time.
  HttpResponse unnamed = client_.Post("/v1/backup", admin, "");
  ASSERT_EQ(unnamed.status, 200) << unnamed.body;
  EXPECT_NE(Body(unnamed)["backup"].get<std::string>().find("/gridledger-"), std::string::npos);
}

// Every operation of server/openapi.json is called on a live server with a token allowed to use
// it; the status must be one the document lists and the body must match its schema. Paths the
// document does not have are 404.
TEST_F(HttpTest, TheServerAnswersAsItsOpenApiDocumentSays) {
  AppendSample();
  std::ifstream in(SOURCE_DIR "/server/openapi.json");
  const json document = json::parse(in);
  ASSERT_TRUE(document.contains("paths"));
  // A concrete request for each templated path and the principal allowed to make it.
  const std::map<std::string, std::pair<std::string, std::string>> concrete = {
      {"/healthz", {"/healthz", ""}},
      {"/v1/events", {"/v1/events?from=1&limit=5", "auditor"}},
      {"/v1/import", {"/v1/import?format=jsonl", "director"}},
      {"/v1/streams/{stream}", {"/v1/streams/app/XS-2026-000123", "auditor"}},
      {"/v1/apps/{id}", {"/v1/apps/XS-2026-000123?at=2026-04-01", "auditor"}},
      {"/v1/overdue", {"/v1/overdue?at=2026-03-31", "auditor"}},
      {"/v1/kpi", {"/v1/kpi?period=2026-Q2", "auditor"}},
      {"/v1/evidence/{id}", {"/v1/evidence/XS-2026-000123", "auditor"}},
      {"/v1/evidence", {"/v1/evidence?period=2026-Q1", "auditor"}},
      {"/v1/staff/{id}", {"/v1/staff/S1001", "auditor"}},
      {"/v1/verify", {"/v1/verify", "auditor"}},
      {"/v1/digest", {"/v1/digest?at=3", "auditor"}},
      {"/v1/backup", {"/v1/backup?name=openapi", "admin"}},
  };
  json post_event = SampleEvents()[0];
  post_event["stream"] = "app/XS-2026-000777";
  post_event["event_id"] = "openapi-1";
  size_t operations = 0;
  for (const auto& [path, methods] : document["paths"].items()) {
    ASSERT_TRUE(concrete.contains(path)) << "no concrete request for documented path " << path;
    for (const auto& [method, operation] : methods.items()) {
      auto [target, principal] = concrete.at(path);
      std::string body;
      std::string token = principal.empty() ? "" : server_.token(principal);
      if (method == "post" && path == "/v1/events") {
        target = "/v1/events";
        body = post_event.dump();
        token = server_.token("clerk");
      } else if (method == "post") {
        body = SampleEvents()[0].dump() + "\n";
      }
      HttpResponse response = client_.Request(method == "post" ? http::verb::post : http::verb::get,
                                              target, token, body);
      const std::string status = std::to_string(response.status);
      ASSERT_TRUE(operation["responses"].contains(status))
          << method << " " << target << " answered " << status
          << ", not documented: " << response.body;
      const json* documented = &operation["responses"][status];
      if (documented->contains("$ref")) {  // "#/components/responses/NAME", shared by many
        const std::string ref = (*documented)["$ref"].get<std::string>();
        documented = &document["components"]["responses"][ref.substr(ref.rfind('/') + 1)];
      }
      const json& schema = (*documented)["content"]["application/json"]["schema"];
      ASSERT_TRUE(schema.is_object()) << method << " " << path << " " << status;
      EXPECT_EQ(Conforms(Body(response), schema, document, method + " " + path), "");
      // Each /v1 operation also answers 401 without a token, as documented.
      if (path.starts_with("/v1/")) {
        EXPECT_TRUE(operation["responses"].contains("401")) << path;
        HttpResponse anonymous = client_.Request(
            method == "post" ? http::verb::post : http::verb::get, target, "", body);
        EXPECT_EQ(anonymous.status, 401) << method << " " << target;
        EXPECT_EQ(Conforms(Body(anonymous), document["components"]["schemas"]["Error"], document,
                           "401 " + path),
                  "");
      }
      ++operations;
    }
  }
  EXPECT_EQ(operations, 14u);
  EXPECT_EQ(client_.Get("/v1/undocumented", server_.token("auditor")).status, 404);
}

}  // namespace
}  // namespace gridledger::testing
