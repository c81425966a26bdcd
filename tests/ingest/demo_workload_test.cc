// Goal: the demo workload is a faithful, replayable stand-in for the real log — every line is a
// valid client event of the contract, the output is byte-identical per seed, ordered by
// occurred_at, consistent in expected_version per stream, covers the domain (every class, business
// kind, change kind and event type), is accepted by a real ledger, never holds an event that the
// workflow rules call invalid (only deliberate violations), and is generated in bounded memory.
// Method: runs of 200..20,000 applications over the real 2025–2026 calendar; each line decoded
// with domain::DecodeClientEvent; a 300-application run appended to a ledger in a temp dir; every
// app stream folded through domain::Judge / domain::Apply in order.
#include "ingest/demo_workload.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "domain/event_json.h"
#include "domain/workflow.h"
#include "ingest/event_codec.h"
#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ingest {
namespace {

const domain::WorkingCalendar& Calendar() {
  static const domain::WorkingCalendar calendar = [] {
    auto loaded =
        domain::WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
    if (auto* error = std::get_if<domain::DataFileError>(&loaded)) {
      ADD_FAILURE() << "calendar: " << error->message;
      return domain::WorkingCalendar();
    }
    return std::get<domain::WorkingCalendar>(std::move(loaded));
  }();
  return calendar;
}

DemoOptions Options(uint64_t seed, uint64_t apps) {
  DemoOptions options;
  options.seed = seed;
  options.apps = apps;
  return options;
}

std::vector<std::string> Generate(const DemoOptions& options) {
  DemoWorkload workload(options, Calendar());
  std::vector<std::string> lines;
  std::string line;
  while (workload.Next(&line)) lines.push_back(line);
  EXPECT_EQ(workload.events_emitted(), lines.size());
  EXPECT_EQ(workload.apps_started(), options.apps);
  return lines;
}

std::vector<domain::ClientEvent> Decode(const std::vector<std::string>& lines) {
  std::vector<domain::ClientEvent> events;
  for (const std::string& line : lines) {
    auto decoded = domain::DecodeClientEvent(line);
    if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
      ADD_FAILURE() << error->field << " " << error->rule << ": " << error->message << "\n" << line;
      continue;
    }
    events.push_back(std::get<domain::ClientEvent>(std::move(decoded)));
  }
  return events;
}

TEST(DemoWorkloadTest, DefaultPeriodIsTheLoadedCalendar) {
  DemoOptions options;
  EXPECT_EQ(options.first_day.ToString(), "2025-01-02");
  EXPECT_EQ(options.last_day.ToString(), "2026-12-31");
}

TEST(DemoWorkloadTest, EveryLineDecodesAsAnImportedClientEventWithTheRightRole) {
  const std::vector<std::string> lines = Generate(Options(7, 1000));
  const std::vector<domain::ClientEvent> events = Decode(lines);
  ASSERT_EQ(events.size(), lines.size());
  ASSERT_GT(events.size(), 8000u);
  const std::map<std::string, std::string> role_of = {{"ApplicationAccepted", "clerk"},
                                                      {"SchemeReplied", "clerk"},
                                                      {"ContractSigned", "clerk"},
                                                      {"Archived", "clerk"},
                                                      {"FeesSettled", "clerk"},
                                                      {"SiteSurveyed", "inspector"},
                                                      {"CompletionInspected", "inspector"},
                                                      {"MeterConnected", "inspector"},
                                                      {"DesignReviewed", "inspector"},
                                                      {"CallbackMade", "callback_agent"},
                                                      {"Urged", "director"},
                                                      {"ReportSubmitted", "director"}};
  for (const domain::ClientEvent& event : events) {
    EXPECT_EQ(event.extra.value("import", false), true) << event.event_id;
    EXPECT_EQ(event.occurred_at_offset_minutes, 480) << event.event_id;
    auto role = role_of.find(event.type);
    if (role != role_of.end()) {
      EXPECT_EQ(event.actor.role, role->second) << event.event_id;
    }
  }
}

TEST(DemoWorkloadTest, SameSeedGivesSameBytesAndAnotherSeedDiffers) {
  const std::vector<std::string> first = Generate(Options(42, 200));
  EXPECT_EQ(Generate(Options(42, 200)), first);
  const std::vector<std::string> other = Generate(Options(43, 200));
  EXPECT_NE(other, first);
  std::set<std::string> ids;
  for (const domain::ClientEvent& event : Decode(first)) ids.insert(event.event_id);
  for (const domain::ClientEvent& event : Decode(other)) {
    EXPECT_FALSE(ids.count(event.event_id)) << "seeds share event_id " << event.event_id;
  }
}

TEST(DemoWorkloadTest, OccurredAtNeverDecreasesAndVersionsFollowEachStream) {
  const std::vector<domain::ClientEvent> events = Decode(Generate(Options(3, 2000)));
  std::unordered_map<std::string, int64_t> versions;
  std::set<std::string> ids;
  int64_t last_us = INT64_MIN;
  for (const domain::ClientEvent& event : events) {
    EXPECT_GE(event.occurred_at_us, last_us) << event.event_id;
    last_us = event.occurred_at_us;
    auto [it, inserted] = versions.try_emplace(event.stream, -1);
    ASSERT_TRUE(event.expected_version.has_value());
    EXPECT_EQ(*event.expected_version, it->second) << event.event_id;
    it->second = *event.expected_version + 1;
    EXPECT_TRUE(ids.insert(event.event_id).second) << "duplicate " << event.event_id;
  }
}

// Values of `key` in the data of every line of type `type`, as compact JSON.
std::set<std::string> Values(const std::vector<nlohmann::json>& lines, const std::string& type,
                             const std::string& key) {
  std::set<std::string> values;
  for (const nlohmann::json& line : lines) {
    if (line["type"] != type) continue;
    const nlohmann::json& data = line["data"];
    values.insert(data.contains(key) ? data[key].dump() : "absent");
  }
  return values;
}

TEST(DemoWorkloadTest, TwoThousandApplicationsCoverTheDomain) {
  std::vector<nlohmann::json> lines;
  std::set<std::string> types;
  for (const std::string& text : Generate(Options(11, 2000))) {
    lines.push_back(nlohmann::json::parse(text));
    types.insert(lines.back()["type"].get<std::string>());
  }
  const std::vector<std::string> known = domain::KnownTypes();
  EXPECT_EQ(types, std::set<std::string>(known.begin(), known.end()));
  const auto accepted = [&](const std::string& key) {
    return Values(lines, "ApplicationAccepted", key);
  };
  EXPECT_EQ(accepted("customer_class").size(), 4u);
  EXPECT_EQ(accepted("business").size(), 3u);
  EXPECT_EQ(accepted("change_kind").size(), 13u);  // 12 kinds and "absent"
  EXPECT_EQ(accepted("important").size(), 2u);
  EXPECT_EQ(accepted("three_zero").size(), 2u);
  // Fee-free residential jobs say so; the others leave it to the default.
  EXPECT_EQ(accepted("fees_apply"), (std::set<std::string>{"false", "absent"}));
  for (const char* type : {"DesignReviewed", "MidInspected", "CompletionInspected"}) {
    EXPECT_EQ(Values(lines, type, "result"), (std::set<std::string>{"\"fail\"", "\"pass\""}))
        << type;
  }
  EXPECT_EQ(Values(lines, "Urged", "level"), (std::set<std::string>{"1", "2", "3"}));
  EXPECT_TRUE(Values(lines, "Urged", "committed_date").count("absent"));
  EXPECT_GE(Values(lines, "CallbackMade", "result").size(), 3u);
  EXPECT_EQ(Values(lines, "CallbackMade", "satisfaction").size(), 4u);  // 3 and "absent"
  EXPECT_TRUE(Values(lines, "SensitiveDataAccessed", "approved_by").count("absent"));
  EXPECT_GE(Values(lines, "SensitiveDataAccessed", "approved_by").size(), 2u);
}

TEST(DemoWorkloadTest, LedgerAcceptsEveryEventOfA300ApplicationRun) {
  const std::vector<domain::ClientEvent> events = Decode(Generate(Options(5, 300)));
  testing::TempDir dir;
  ledger::Options options;
  options.sync = false;
  auto opened = ledger::Ledger::Open(dir.str(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();
  std::vector<std::pair<std::string, uint64_t>> corrections;  // stream, corrected position
  for (const domain::ClientEvent& event : events) {
    if (event.type == "Corrected") {
      auto data = domain::PayloadToJson(event.type, event.payload);
      ASSERT_TRUE(std::holds_alternative<nlohmann::json>(data));
      corrections.emplace_back(event.stream,
                               std::get<nlohmann::json>(data)["corrects_position"].get<uint64_t>());
    }
    auto appended = ledger->Append(ToAppendRequest(event));
    ASSERT_TRUE(appended.ok()) << event.event_id << ": " << appended.status().ToString();
  }
  EXPECT_EQ(ledger->Head(), events.size());
  for (const auto& [stream, position] : corrections) {
    auto corrected = ledger->ReadOne(position);
    ASSERT_TRUE(corrected.ok());
    EXPECT_EQ(corrected->stream, stream);
    EXPECT_EQ(corrected->type, "ApplicationAccepted");
  }
  auto first = ledger->ReadOne(1);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->imported);
}

TEST(DemoWorkloadTest, NoEventIsInvalidUnderTheWorkflowRulesAndFewAreViolations) {
  const std::vector<domain::ClientEvent> events = Decode(Generate(Options(9, 2000)));
  std::unordered_map<std::string, domain::WorkflowFacts> facts;
  std::map<std::string, int> violations;
  for (const domain::ClientEvent& event : events) {
    if (event.stream.rfind("app/", 0) != 0) continue;
    auto decoded = domain::DecodeWorkflowEvent(event.type, event.payload);
    ASSERT_TRUE(std::holds_alternative<domain::WorkflowEvent>(decoded)) << event.event_id;
    const auto& workflow_event = std::get<domain::WorkflowEvent>(decoded);
    domain::WorkflowFacts& app = facts[event.stream];
    const domain::Verdict verdict = domain::Judge(app, workflow_event);
    ASSERT_TRUE(verdict.valid()) << event.event_id << ": " << verdict.invalid->message;
    for (const domain::RuleBreach& breach : verdict.violations) ++violations[breach.rule];
    domain::Apply(app, workflow_event);
  }
  int total = 0;
  for (const auto& [rule, count] : violations) total += count;
  EXPECT_GT(total, 0);
  EXPECT_LT(total, 2000 * 5 / 100) << "violations should be a deliberate ~1.5% of applications";
  const std::set<std::string> expected = {
      "connected_without_contract", "connected_before_fees", "archived_before_connection",
      "archived_before_change_executed", "contract_before_scheme_reply"};
  for (const auto& [rule, count] : violations) EXPECT_TRUE(expected.count(rule)) << rule;
}

TEST(DemoWorkloadTest, MemoryFollowsOpenApplicationsNotEvents) {
  DemoWorkload workload(Options(1, 20000), Calendar());
  std::string line;
  size_t queued_max = 0;
  uint64_t bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  while (workload.Next(&line)) {
    queued_max = std::max(queued_max, workload.processes_queued());
    bytes += line.size() + 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("demo workload: %llu events, %.1f MB, %.0f lines/s, %zu processes queued at most\n",
              static_cast<unsigned long long>(workload.events_emitted()), bytes / 1e6,
              workload.events_emitted() / seconds, queued_max);
  EXPECT_GT(workload.events_emitted(), 120000u);
  EXPECT_LT(queued_max, 20000u / 4);
}

}  // namespace
}  // namespace gridledger::ingest
