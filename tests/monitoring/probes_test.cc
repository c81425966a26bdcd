// Goal: the probes count what the ledger and the Service actually did — every append answered once
// under its result, every durable event once, group commits and their sizes consistent, retries
// and refusals under their own labels, verifications with their outcome — and their label values
// stay bounded whatever clients send.
// Method: a real ledger opened with LedgerMetrics as its probe, appended to from several threads
// with a few deliberate refusals; a real Service (ledger, engine, Ingestor) with ServerMetrics
// installed; the registry's families compared with what the test did.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "demo_ledger.h"
#include "family_lookup.h"
#include "ingest/event_codec.h"
#include "monitoring/ledger_metrics.h"
#include "monitoring/server_metrics.h"
#include "server/probe.h"
#include "server/service.h"

namespace gridledger::monitoring {
namespace {

using testing::DemoLedger;
using testing::FindFamily;
using testing::Sum;

ledger::AppendRequest Request(const std::string& stream, const std::string& event_id) {
  ledger::AppendRequest request;
  request.stream = stream;
  ledger::NewEvent event;
  event.event_id = event_id;
  event.type = "Probe";
  event.occurred_at_us = 1'790'000'000'000'000;
  event.actor = {"S1001", "clerk", "KM.XS"};
  event.payload = std::string(300, 'x');
  request.events.push_back(std::move(event));
  return request;
}

TEST(LedgerMetricsTest, CountsEveryAnswerCommitAndVerification) {
  prometheus::Registry registry;
  LedgerMetrics probe(registry);
  DemoLedger demo(0, 0, domain::Date(), &probe);
  ledger::Ledger& ledger = demo.ledger();

  constexpr int kThreads = 4;
  constexpr int kAppendsPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ledger, t] {
      for (int i = 0; i < kAppendsPerThread; ++i) {
        auto appended = ledger.Append(
            Request("s/" + std::to_string(t), "e-" + std::to_string(t) + "-" + std::to_string(i)));
        EXPECT_TRUE(appended.ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(ledger.Append(Request("s/0", "e-0-0")).ok());    // a retry: duplicate
  EXPECT_FALSE(ledger.Append(Request("", "e-invalid")).ok());  // invalid: refused at once
  ledger::AppendRequest stale = Request("s/0", "e-stale");
  stale.expected_version = 3;
  EXPECT_FALSE(ledger.Append(stale).ok());  // version conflict

  const uint64_t events = kThreads * kAppendsPerThread;
  const testing::Families families = registry.Collect();
  EXPECT_EQ(Sum(families, "gridledger_ledger_append_requests_total", {{"result", "ok"}}), events);
  EXPECT_EQ(Sum(families, "gridledger_ledger_append_requests_total", {{"result", "duplicate"}}), 1);
  EXPECT_EQ(Sum(families, "gridledger_ledger_append_requests_total", {{"result", "invalid"}}), 1);
  EXPECT_EQ(
      Sum(families, "gridledger_ledger_append_requests_total", {{"result", "version_conflict"}}),
      1);
  EXPECT_EQ(Sum(families, "gridledger_ledger_append_requests_total"), events + 3);
  // Histograms: Sum() gives their sample counts.
  EXPECT_EQ(Sum(families, "gridledger_ledger_append_latency_seconds"), events + 3);
  EXPECT_EQ(Sum(families, "gridledger_ledger_written_events_total"), events);
  const double commits =
      *Sum(families, "gridledger_ledger_group_commits_total", {{"result", "written"}});
  EXPECT_GE(commits, 1);
  EXPECT_LE(commits, events);
  EXPECT_EQ(Sum(families, "gridledger_ledger_group_commits_total", {{"result", "failed"}}), 0);
  EXPECT_EQ(Sum(families, "gridledger_ledger_group_commit_events"), commits);
  EXPECT_EQ(Sum(families, "gridledger_ledger_sync_latency_seconds"), commits);
  const auto* sizes = FindFamily(families, "gridledger_ledger_group_commit_events");
  ASSERT_NE(sizes, nullptr);
  EXPECT_EQ(sizes->metric.at(0).histogram.sample_sum, events);
  EXPECT_GT(*Sum(families, "gridledger_ledger_written_bytes_total"), events * 300.0);

  EXPECT_TRUE(ledger.Verify().ok());
  EXPECT_EQ(Sum(registry.Collect(), "gridledger_ledger_verifications_total", {{"result", "ok"}}),
            1);
  EXPECT_EQ(Sum(registry.Collect(), "gridledger_ledger_verification_failed"), 0);
  probe.OnVerified(ledger::Status(ledger::Code::kCorruption, "position 7: hash mismatch"), {});
  EXPECT_EQ(Sum(registry.Collect(), "gridledger_ledger_verification_failed"), 1);
  EXPECT_EQ(
      Sum(registry.Collect(), "gridledger_ledger_verifications_total", {{"result", "corruption"}}),
      1);
}

// ---- ServerMetrics through a real Service ----

std::string Accepted(const std::string& id, const std::string& actor_org = "KM.XS") {
  return R"({"stream":"app/)" + id + R"(","type":"ApplicationAccepted","event_id":")" + id +
         R"(-1","occurred_at":"2026-03-02T09:00:00+08:00","actor":{"id":"S1001","role":"clerk",)"
         R"("org":")" +
         actor_org +
         R"("},"data":{"customer_id":"C-1","customer_name":"n","customer_class":"residential",)"
         R"("business":"new_install","voltage_kv":0.4,"capacity_kva":8,"channel":"counter",)"
         R"("important":false,"three_zero":false}})";
}

domain::ClientEvent Decode(const std::string& json) {
  auto decoded = domain::DecodeClientEvent(json);
  EXPECT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded));
  return std::get<domain::ClientEvent>(std::move(decoded));
}

TEST(ServerMetricsTest, CountsAppendsByTypeAndResultAndRefusalsByReason) {
  prometheus::Registry registry;
  ServerMetrics probe(registry);
  DemoLedger demo(0, 0, domain::Date());
  server::Service service({demo.ledger(),
                           demo.engine(),
                           demo.calendar(),
                           demo.profile(),
                           ingest::TokenStore(),
                           server::Limits(),
                           {},
                           {}});
  service.SetProbe(&probe);
  const ingest::Principal clerk{"S1001", ingest::Role::kClerk, "KM.XS"};

  EXPECT_TRUE(std::holds_alternative<ingest::IngestOutcome>(
      service.Append(clerk, Decode(Accepted("MON-2026-000001")))));
  EXPECT_TRUE(std::holds_alternative<ingest::IngestOutcome>(
      service.Append(clerk, Decode(Accepted("MON-2026-000001")))));  // retry: duplicate
  // A second acceptance of the same application is invalid by a workflow rule.
  std::string again = Accepted("MON-2026-000001");
  again.replace(again.find("MON-2026-000001-1"), 17, "MON-2026-000001-2");
  EXPECT_TRUE(std::holds_alternative<server::ServiceError>(service.Append(clerk, Decode(again))));
  // The actor must be the principal: forbidden.
  EXPECT_TRUE(std::holds_alternative<server::ServiceError>(
      service.Append(clerk, Decode(Accepted("MON-2026-000002", "KM.GD")))));
  EXPECT_FALSE(service.Authenticate("no such token").has_value());
  EXPECT_TRUE(service.CheckAccess(clerk, ingest::Access::kVerify).has_value());
  // A front door's decode failure, reported with its rule.
  service.ReportRejectedInput({"data.customer_class", "missing_field", "missing"});

  const testing::Families families = registry.Collect();
  const std::string type = "ApplicationAccepted";
  EXPECT_EQ(Sum(families, "gridledger_appends_total", {{"type", type}, {"result", "ok"}}), 1);
  EXPECT_EQ(Sum(families, "gridledger_appends_total", {{"type", type}, {"result", "duplicate"}}),
            1);
  EXPECT_EQ(Sum(families, "gridledger_appends_total", {{"type", type}, {"result", "invalid"}}), 1);
  EXPECT_EQ(Sum(families, "gridledger_appends_total", {{"type", type}, {"result", "forbidden"}}),
            1);
  EXPECT_EQ(Sum(families, "gridledger_appends_total"), 4);
  // The invalid append carries its rule; refusals without a rule have rule "".
  const auto* rejected = FindFamily(families, "gridledger_rejected_inputs_total");
  ASSERT_NE(rejected, nullptr);
  bool invalid_with_rule = false;
  for (const auto& metric : rejected->metric) {
    auto labels = testing::LabelsOf(metric);
    if (labels["reason"] == "invalid" && !labels["rule"].empty() && metric.counter.value == 1) {
      invalid_with_rule = true;
    }
  }
  EXPECT_TRUE(invalid_with_rule);
  EXPECT_EQ(Sum(families, "gridledger_rejected_inputs_total", {{"reason", "forbidden"}}), 2);
  EXPECT_EQ(Sum(families, "gridledger_rejected_inputs_total", {{"reason", "unauthenticated"}}), 1);
  EXPECT_EQ(Sum(families, "gridledger_rejected_inputs_total",
                {{"reason", "invalid"}, {"rule", "missing_field"}}),
            1);
  EXPECT_EQ(Sum(families, "gridledger_rejected_inputs_total"), 5);
}

TEST(ServerMetricsTest, LabelValuesStayBounded) {
  prometheus::Registry registry;
  ServerMetrics probe(registry);
  // Unknown types share one label value.
  EXPECT_EQ(probe.TypeToken("NoSuchType"), probe.TypeToken("AnotherUnknownType"));
  EXPECT_NE(probe.TypeToken("SchemeReplied"), probe.TypeToken("NoSuchType"));
  for (int i = 0; i < 10; ++i) {
    probe.OnAppendAnswered(probe.TypeToken("Type" + std::to_string(i)),
                           server::MakeError(server::ErrorKind::kBusy, "busy", "full"));
  }
  // Rule values: at most kRuleValuesMax distinct, then "other"; odd text is never a label.
  for (size_t i = 0; i < ServerMetrics::kRuleValuesMax + 20; ++i) {
    probe.OnRefused(server::ErrorKind::kInvalid, "rule_" + std::to_string(i));
  }
  probe.OnRefused(server::ErrorKind::kInvalid, "app/KM-2026-000001 Bad Text");
  const testing::Families families = registry.Collect();
  EXPECT_EQ(Sum(families, "gridledger_appends_total", {{"type", "other"}, {"result", "busy"}}), 10);
  std::set<std::string> rules;
  for (const auto& metric : FindFamily(families, "gridledger_rejected_inputs_total")->metric) {
    rules.insert(testing::LabelsOf(metric)["rule"]);
  }
  EXPECT_LE(rules.size(), ServerMetrics::kRuleValuesMax + 2);  // + "" and "other"
  EXPECT_TRUE(rules.count("other"));
  EXPECT_FALSE(rules.count("app/KM-2026-000001 Bad Text"));
  EXPECT_EQ(Sum(families, "gridledger_rejected_inputs_total", {{"reason", "invalid"}}),
            ServerMetrics::kRuleValuesMax + 21);
}

}  // namespace
}  // namespace gridledger::monitoring
