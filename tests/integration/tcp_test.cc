// Goal: ledgerd's Cap'n Proto TCP front door works as a process: the sample application appended
// by its actors over TCP reads back identical to what was sent; refusals change nothing; a
// subscriber resumes across a SIGTERM and a restart of ledgerd from its last position and sees
// every event exactly once, in order; a SIGTERM answers the appends in flight and ledgerd exits 0.
// Method: a real ledgerd (tests/support/ledgerd.h) on loopback with ports chosen by the kernel,
// driven by the C++ client library (client/client.h). The in-process tests of every frame type are
// tests/server/tcp_server_test.cc.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/client.h"
#include "domain/event_json.h"
#include "support/ledgerd.h"

namespace gridledger::testing {
namespace {

using client::Client;
using nlohmann::json;

// A new application accepted by the test clerk (S1001, KM.XS).
std::string Accepted(const std::string& app) {
  json event = SampleEvents()[0];
  event["stream"] = "app/" + app;
  event["event_id"] = app + "-accepted";
  return event.dump();
}

class TcpTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> Connect(const std::string& principal) {
    auto client = Client::Connect("127.0.0.1", server_.tcp_port(), server_.token(principal));
    if (!client.ok()) {
      ADD_FAILURE() << principal << ": " << client.error().ToString() << "\n" << server_.Log();
      return nullptr;
    }
    return std::move(client).value();
  }

  Ledgerd server_;
};

TEST_F(TcpTest, SampleApplicationAppendedByItsActorsReadsBackAsSent) {
  std::vector<json> events = SampleEvents();
  std::map<std::string, std::unique_ptr<Client>> clients;
  for (size_t i = 0; i < events.size(); ++i) {
    std::string principal = PrincipalOf(events[i]);
    if (!clients.count(principal)) clients[principal] = Connect(principal);
    ASSERT_NE(clients[principal], nullptr);
    auto results = clients[principal]->Append({events[i].dump()});
    ASSERT_TRUE(results.ok()) << results.error().ToString();
    ASSERT_TRUE((*results)[0].ok()) << events[i].dump() << " → " << (*results)[0].error->ToString();
    EXPECT_EQ((*results)[0].position, i + 1);
  }

  auto auditor = Connect("auditor");
  ASSERT_NE(auditor, nullptr);
  auto page = auditor->ReadStream(events[0]["stream"]);
  ASSERT_TRUE(page.ok()) << page.error().ToString();
  ASSERT_EQ(page->events.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const client::Event& stored = page->events[i];
    EXPECT_EQ(stored.version, i);
    EXPECT_EQ(stored.type, events[i]["type"]);
    EXPECT_EQ(stored.event_id, events[i]["event_id"]);
    EXPECT_EQ(stored.actor.id, events[i]["actor"]["id"]);
  }
  // The same events by position, and the hash chain links them; after them the record of the
  // auditor's read of the application (personal data), then of this log read.
  auto log = auditor->Read(1, 0, "D0100");  // the auditor's superior, a director of KM
  ASSERT_TRUE(log.ok()) << log.error().ToString();
  ASSERT_EQ(log->events.size(), events.size() + 1);
  for (size_t i = 1; i < log->events.size(); ++i) {
    EXPECT_EQ(log->events[i].prev_hash, log->events[i - 1].hash);
  }
  const client::Event& recorded = log->events.back();
  EXPECT_EQ(recorded.type, "SensitiveDataAccessed");
  EXPECT_EQ(recorded.stream, "staff/" + recorded.actor.id);
  EXPECT_EQ(recorded.actor.role, "auditor");
  auto after = auditor->ReadStream(recorded.stream);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  ASSERT_EQ(after->events.size(), 2u) << "the stream read, then the log read";
  auto log_read = domain::PayloadToJson(after->events[1].type, after->events[1].payload);
  ASSERT_TRUE(std::holds_alternative<json>(log_read));
  EXPECT_EQ(std::get<json>(log_read)["what"],
            "log positions 1.." + std::to_string(events.size() + 1));
  EXPECT_EQ(std::get<json>(log_read)["approved_by"], "D0100");
}

TEST_F(TcpTest, RefusedRequestsChangeNothing) {
  auto refused = Client::Connect("127.0.0.1", server_.tcp_port(), "not-a-token");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "unauthenticated");

  auto reader = Connect("reader");
  ASSERT_NE(reader, nullptr);
  auto results = reader->Append({SampleEvents()[0].dump()});  // in the clerk's name
  ASSERT_TRUE(results.ok()) << results.error().ToString();
  ASSERT_FALSE((*results)[0].ok());
  EXPECT_EQ((*results)[0].error->code, "forbidden");

  auto clerk = Connect("clerk");
  ASSERT_NE(clerk, nullptr);
  auto read = clerk->Read(1);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, "forbidden");

  auto auditor = Connect("auditor");
  ASSERT_NE(auditor, nullptr);
  auto page = auditor->Read(1);
  ASSERT_TRUE(page.ok()) << page.error().ToString();
  EXPECT_TRUE(page->events.empty());
}

// ledgerctl --server splits a file into requests the server accepts (its announced batch limit,
// here 5) and reports a line that does not decode on its own, as a local append does, instead of
// letting the server refuse the lines sent with it.
TEST(LedgerctlServerTest, AppendFollowsTheServersBatchLimitAndRefusesOnlyTheBadLine) {
  Ledgerd server({"--batch-events-max", "5"});
  TempDir dir;
  const std::string file = dir.str() + "/apps.jsonl";
  {
    std::ofstream out(file);
    for (int i = 1; i <= 13; ++i) {
      out << (i == 7 ? std::string("{\"stream\": \"app/CTL-BAD\", ")
                     : Accepted("CTL-" + std::to_string(i)))
          << "\n";
    }
  }
  auto [status, output] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" + std::to_string(server.tcp_port()) +
      " --token " + server.token("clerk") + " append " + file + " 2>/dev/null");
  EXPECT_EQ(status, 2) << output;  // some line rejected
  std::istringstream lines(output);
  std::string line;
  std::vector<uint64_t> rejected_lines;
  size_t stored = 0;
  while (std::getline(lines, line)) {
    const json result = json::parse(line);
    if (result["ok"].get<bool>()) {
      ++stored;
    } else {
      rejected_lines.push_back(result["line"].get<uint64_t>());
    }
  }
  EXPECT_EQ(stored, 12u) << output;
  EXPECT_EQ(rejected_lines, std::vector<uint64_t>{7}) << output;
  // One result per input line, in input order: the seventh is the bad line's.
  std::vector<std::string> results;
  std::istringstream again(output);
  while (std::getline(again, line)) results.push_back(line);
  ASSERT_EQ(results.size(), 13u) << output;
  EXPECT_EQ(json::parse(results[6])["line"], 7) << output;
  EXPECT_EQ(json::parse(results[5])["stream"], "app/CTL-6") << output;

  auto client = Client::Connect("127.0.0.1", server.tcp_port(), server.token("auditor"));
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  auto page = (*client)->Read(1, 100);
  ASSERT_TRUE(page.ok()) << page.error().ToString();
  size_t accepted = 0;
  for (const auto& event : page->events) accepted += event.type == "ApplicationAccepted" ? 1 : 0;
  EXPECT_EQ(accepted, 12u);
}

// When the server closes the connection in the middle of a file, ledgerctl --server still
// answers every line, in order: the request it lost as failed (io), the lines after it as not
// sent, and exits 1. (The server closes it here because line 4 makes a frame larger than its
// frame_bytes_max; a shutdown does the same.)
TEST(LedgerctlServerTest, AppendAnswersEveryLineWhenTheConnectionIsLost) {
  Ledgerd server({"--frame-bytes-max", "2048", "--batch-events-max", "1"});
  TempDir dir;
  const std::string file = dir.str() + "/apps.jsonl";
  {
    std::ofstream out(file);
    for (int i = 1; i <= 8; ++i) {
      json event = json::parse(Accepted("LOST-" + std::to_string(i)));
      if (i == 4) event["data"]["note"] = std::string(3000, 'x');
      out << event.dump() << "\n";
    }
  }
  auto [status, output] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" + std::to_string(server.tcp_port()) +
      " --token " + server.token("clerk") + " append " + file + " 2>/dev/null");
  EXPECT_EQ(status, 1) << output;
  std::vector<json> results;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) results.push_back(json::parse(line));
  ASSERT_EQ(results.size(), 8u) << output;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(results[i]["ok"].get<bool>()) << results[i];
  EXPECT_EQ(results[3]["error"]["rule"], "frame_too_large") << results[3];
  EXPECT_EQ(results[4]["error"]["code"], "io") << results[4];
  for (int i = 5; i < 8; ++i) {
    EXPECT_EQ(results[i]["line"], i + 1);
    EXPECT_EQ(results[i]["error"]["code"], "not_sent") << results[i];
  }
}

// A reader of a sparse filter can save its place even when nothing matched: with --checkpoints,
// ledgerctl subscribe says up to where the log was examined (where to resume from).
TEST(LedgerctlServerTest, SubscribeWithCheckpointsSaysWhereToResume) {
  Ledgerd server;
  auto clerk = Client::Connect("127.0.0.1", server.tcp_port(), server.token("clerk"));
  ASSERT_TRUE(clerk.ok()) << clerk.error().ToString();
  for (int i = 1; i <= 5; ++i) {
    auto appended = (*clerk)->Append({Accepted("CK-" + std::to_string(i))});
    ASSERT_TRUE(appended.ok() && (*appended)[0].ok());
  }
  auto subscribe = [&](const std::string& arguments) {
    return RunCommand(std::string(LEDGERCTL_PATH) +
                      " --server 127.0.0.1:" + std::to_string(server.tcp_port()) + " --token " +
                      server.token("reader") + " subscribe --from 1 " + arguments + " 2>/dev/null");
  };
  // (A filter that cannot match applications is not recorded as a read: the head stays 5.)
  auto [none_status, none] = subscribe("--prefix survey/ --checkpoints");
  EXPECT_EQ(none_status, 0);
  const json none_shown = json::parse(none);
  EXPECT_EQ(none_shown["checkpoint"], 6) << none;
  auto [one_status, one] = subscribe("--prefix app/CK-2 --checkpoints");
  EXPECT_EQ(one_status, 0);
  std::istringstream lines(one);
  std::vector<json> shown;
  for (std::string line; std::getline(lines, line);) shown.push_back(json::parse(line));
  ASSERT_EQ(shown.size(), 2u) << one;
  EXPECT_EQ(shown[0]["stream"], "app/CK-2");
  // Its own read record (position 6, appended as it started) was examined too.
  EXPECT_EQ(shown[1]["checkpoint"], 7) << one;
  EXPECT_EQ(subscribe("--prefix survey/").second, "") << "checkpoints only when asked for";

  // Each checkpoint carries the hash of the event before it, to resume with: accepted with it,
  // refused with another (the reader's copy would be of another history).
  auto reader = Client::Connect("127.0.0.1", server.tcp_port(), server.token("reader"));
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();
  auto log = (*reader)->Read(1, 0);
  ASSERT_TRUE(log.ok()) << log.error().ToString();
  ASSERT_GE(log->events.size(), 6u);
  EXPECT_EQ(none_shown["hash"], ledger::ToHex(log->events[4].hash)) << none;
  EXPECT_EQ(shown[1]["hash"], ledger::ToHex(log->events[5].hash)) << one;
  const std::string hash = shown[1]["hash"];
  auto resume = [&](const std::string& after_hash) {
    return RunCommand(std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" +
                      std::to_string(server.tcp_port()) + " --token " + server.token("reader") +
                      " subscribe --from 7 --after-hash " + after_hash + " --prefix survey/ 2>&1");
  };
  auto [resumed_status, resumed] = resume(hash);
  EXPECT_EQ(resumed_status, 0) << resumed;
  std::string other = hash;
  other[0] = other[0] == '0' ? '1' : '0';
  auto [forked_status, forked] = resume(other);
  EXPECT_EQ(forked_status, 2) << forked;
  // An empty hash (an unset shell variable, say) is refused, not taken for no check.
  auto [empty_status, empty] = resume("''");
  EXPECT_EQ(empty_status, 2) << empty;
  EXPECT_NE(empty.find("--after-hash takes the 64 hex digits"), std::string::npos) << empty;
  // From the head + 1 nothing is examined, and the checkpoint still says the hash to resume with:
  // the same as a subscription from 1 ends with.
  const json to_head = json::parse(subscribe("--prefix survey/ --checkpoints").second);
  auto [at_head_status, at_head] = RunCommand(
      std::string(LEDGERCTL_PATH) + " --server 127.0.0.1:" + std::to_string(server.tcp_port()) +
      " --token " + server.token("reader") + " subscribe --checkpoints --prefix survey/ --from " +
      to_head["checkpoint"].dump() + " 2>/dev/null");
  EXPECT_EQ(at_head_status, 0) << at_head;
  EXPECT_EQ(json::parse(at_head), to_head);
  EXPECT_TRUE(to_head.contains("hash")) << to_head;
  EXPECT_NE(forked.find("forked"), std::string::npos) << forked;
}

// A request the server refuses is rejected input for ledgerctl --server (exit 2), as on a data
// directory; only trouble reaching or running the server is a failure (exit 1).
TEST(LedgerctlServerTest, RefusedRequestsExitTwo) {
  Ledgerd server;
  auto ledgerctl = [&](const std::string& token, const std::string& arguments) {
    return RunCommand(std::string(LEDGERCTL_PATH) +
                      " --server 127.0.0.1:" + std::to_string(server.tcp_port()) + " --token " +
                      token + " " + arguments + " 2>&1")
        .first;
  };
  EXPECT_EQ(ledgerctl(server.token("clerk"), "subscribe --from 1"), 2);  // a clerk may not
  EXPECT_EQ(ledgerctl(server.token("reader"), "subscribe --from 1 --type Bogus"), 2);
  EXPECT_EQ(ledgerctl(server.token("clerk"), "read --from 1"), 2);
  EXPECT_EQ(ledgerctl(server.token("other_clerk"), "history app/XS-2026-000123"), 2);
  EXPECT_EQ(ledgerctl("0000", "read --from 1"), 2);                       // no such token
  EXPECT_EQ(ledgerctl(server.token("reader"), "subscribe --from 1"), 0);  // the empty log
}

// A token revoked (ledgerctl token remove, then SIGHUP) no longer serves the connections opened
// with it: their next request is refused and their subscriptions end, saying why.
TEST_F(TcpTest, ARevokedTokenEndsItsConnectionsRequestsAndSubscriptions) {
  auto [added, token] =
      RunCommand(std::string(LEDGERCTL_PATH) + " token add --tokens " + server_.tokens_file() +
                 " --id R0002 --role reader --org KM 2>/dev/null");
  ASSERT_EQ(added, 0);
  token.erase(token.find_last_not_of('\n') + 1);
  server_.ReloadTokens();
  std::unique_ptr<Client> subscriber;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto connected = Client::Connect("127.0.0.1", server_.tcp_port(), token);
        if (connected.ok()) subscriber = std::move(connected).value();
        return connected.ok();
      },
      std::chrono::seconds(10)));
  auto reader = Client::Connect("127.0.0.1", server_.tcp_port(), token);
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();
  client::SubscribeOptions options;
  auto subscription = subscriber->Subscribe(options);
  ASSERT_TRUE(subscription.ok()) << subscription.error().ToString();
  auto clerk = Connect("clerk");
  ASSERT_NE(clerk, nullptr);
  auto first = clerk->Append({Accepted("REVOKE-1")});
  ASSERT_TRUE(first.ok() && (*first)[0].ok());
  auto frame = (*subscription)->Next(std::chrono::seconds(10));
  ASSERT_TRUE(frame.ok()) << frame.error().ToString();
  ASSERT_TRUE((*reader)->Read(1, 10).ok());

  ASSERT_EQ(RunCommand(std::string(LEDGERCTL_PATH) + " token remove --tokens " +
                       server_.tokens_file() + " --id R0002 2>/dev/null")
                .first,
            0);
  server_.ReloadTokens();
  // The reader's next request is refused once the server has read the file again.
  std::string refused;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto read = (*reader)->Read(1, 10);
        if (!read.ok()) refused = read.error().code;
        return !read.ok();
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(refused, "unauthenticated");
  // The subscriber is told at the next event it would have been sent.
  auto second = clerk->Append({Accepted("REVOKE-2")});
  ASSERT_TRUE(second.ok() && (*second)[0].ok());
  for (;;) {
    auto next = (*subscription)->Next(std::chrono::seconds(10));
    if (next.ok()) continue;  // the read record of the reader, or a checkpoint
    EXPECT_EQ(next.error().code, "unauthenticated") << next.error().ToString();
    EXPECT_NE(next.error().message.find("revoked"), std::string::npos) << next.error().ToString();
    break;
  }
  EXPECT_FALSE(Client::Connect("127.0.0.1", server_.tcp_port(), token).ok());
}

TEST_F(TcpTest, SubscriberResumesAcrossARestartAndSeesEveryEventOnce) {
  auto clerk = Connect("clerk");
  ASSERT_NE(clerk, nullptr);
  for (int i = 0; i < 30; ++i) {
    auto results = clerk->Append({Accepted("XS-A-" + std::to_string(i))});
    ASSERT_TRUE(results.ok() && (*results)[0].ok());
  }
  std::vector<uint64_t> seen;
  uint64_t next = 1;
  auto receive_until = [&](client::Subscription& subscription, uint64_t last) {
    while (next <= last) {
      auto frame = subscription.Next();
      ASSERT_TRUE(frame.ok()) << frame.error().ToString();
      auto events = frame->events.DecodeAll();
      ASSERT_TRUE(events.ok());
      for (const auto& event : *events) {
        ASSERT_EQ(event.position, next);
        seen.push_back(event.position);
        ++next;
      }
      next = frame->next_position;
    }
  };
  {
    auto reader = Connect("reader");
    ASSERT_NE(reader, nullptr);
    client::SubscribeOptions options;
    options.credit = 8;
    auto subscription = reader->Subscribe(options);
    ASSERT_TRUE(subscription.ok()) << subscription.error().ToString();
    receive_until(**subscription, 20);
    clerk.reset();
    ASSERT_EQ(server_.Stop(), 0) << server_.Log();
    // The subscription ends with the server, which says so after the frames it had sent.
    while (true) {
      auto frame = (*subscription)->Next();
      if (!frame.ok()) {
        EXPECT_EQ(frame.error().code, "shutdown") << frame.error().ToString();
        EXPECT_NE(frame.error().message.find("from position " + std::to_string(next)),
                  std::string::npos)
            << frame.error().ToString();
        break;
      }
      auto events = frame->events.DecodeAll();
      ASSERT_TRUE(events.ok());
      for (const auto& event : *events) {
        ASSERT_EQ(event.position, next);
        seen.push_back(event.position);
        ++next;
      }
    }
  }

  server_.Start();
  clerk = Connect("clerk");
  ASSERT_NE(clerk, nullptr);
  for (int i = 0; i < 10; ++i) {
    auto results = clerk->Append({Accepted("XS-B-" + std::to_string(i))});
    ASSERT_TRUE(results.ok() && (*results)[0].ok());
  }
  auto reader = Connect("reader");
  ASSERT_NE(reader, nullptr);
  client::SubscribeOptions options;
  options.from_position = next;
  auto subscription = reader->Subscribe(options);
  ASSERT_TRUE(subscription.ok()) << subscription.error().ToString();
  // 30 + 10 applications and the two subscriptions' recorded reads (31, 42).
  receive_until(**subscription, 42);
  ASSERT_EQ(seen.size(), 42u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(TcpTest, SigtermAnswersAppendsInFlightAndExitsZero) {
  auto clerk = Connect("clerk");
  ASSERT_NE(clerk, nullptr);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 50; ++i) {
    auto id = clerk->SendAppend({Accepted("XS-" + std::to_string(i))});
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  server_.process().Signal(SIGTERM);
  // Each request is answered (stored, or refused because ledgerd is stopping), or was never read
  // before the connection closed; whatever was acknowledged is there after a restart.
  std::vector<std::string> acknowledged;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto results = clerk->ReceiveAppend(ids[i]);
    if (!results.ok()) {
      EXPECT_EQ(results.error().code, "io") << results.error().ToString();
      break;
    }
    if ((*results)[0].ok()) {
      acknowledged.push_back("app/XS-" + std::to_string(i));
    } else {
      EXPECT_EQ((*results)[0].error->code, "shutdown") << (*results)[0].error->ToString();
    }
  }
  EXPECT_EQ(server_.process().Wait(std::chrono::seconds(30)), 0) << server_.Log();
  clerk.reset();

  server_.Start();
  auto auditor = Connect("auditor");
  ASSERT_NE(auditor, nullptr);
  for (const std::string& stream : acknowledged) {
    auto page = auditor->ReadStream(stream);
    ASSERT_TRUE(page.ok()) << page.error().ToString();
    EXPECT_EQ(page->events.size(), 1u) << stream;
  }
}

}  // namespace
}  // namespace gridledger::testing
