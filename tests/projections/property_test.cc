// Goal: projections are a deterministic function of the log. For seeded random valid workloads,
// the state kept incrementally (inline, in the append batches) equals the state rebuilt from
// position 1 byte for byte, two rebuilds are identical (the log read on the folding thread or on
// a second one), and rebuilds with a tiny cache (constant eviction and reload; applications
// frozen and thawed in memory) agree too; the states the engine reassembles from its split layout
// (KPI buckets, staff audits) equal the whole states of an in-memory fold of the same log.
// Method: the demo generator with several seeds (printed on failure) appends through the Ingestor
// to a real ledger with the engine attached; then every projection family is dumped and compared.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "domain/event_json.h"
#include "ingest/demo_workload.h"
#include "ingest/ingestor.h"
#include "projections/engine.h"
#include "projections/queries.h"
#include "side_dump.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

using Dump = testing::SideDump;

// The first key whose bytes differ, or "" when equal.
std::string FirstDifference(const Dump& a, const Dump& b) {
  for (const auto& [key, value] : a) {
    auto other = b.find(key);
    if (other == b.end() || other->second != value) return key;
  }
  for (const auto& [key, value] : b) {
    if (!a.contains(key)) return key;
  }
  return "";
}

// The whole states of folding every event of `ledger` in memory.
struct InMemory {
  std::vector<KpiState> kpis;  // KpiStatesAt: the KPI buckets folded in memory
  std::map<std::string, StaffAuditState> staff_audits;
};

InMemory FoldInMemory(const ledger::Ledger& ledger) {
  InMemory folded;
  EXPECT_TRUE(ledger
                  .Scan(1,
                        [&](const ledger::EventView& event) {
                          const EventRecord record = RecordOf(event);
                          // The staff audit does not read the application state.
                          for (const std::string& key : StaffAuditKeysOf(record, record.actor_id)) {
                            StaffAuditState& state = folded.staff_audits[key];
                            state.staff_id = key.substr(std::string("staff-audit/").size());
                            Fold(state, record, record.actor_id, nullptr);
                          }
                          return true;
                        })
                  .ok());
  auto kpis = KpiStatesAt(ledger, ledger.Head());
  EXPECT_TRUE(kpis.ok()) << kpis.status().ToString();
  if (kpis.ok()) folded.kpis = std::move(kpis).value();
  // Applications dropped all the time and folded again from their streams: the same buckets.
  auto reloading = KpiStatesAt(ledger, ledger.Head(), 2);
  EXPECT_TRUE(reloading.ok() && *reloading == folded.kpis);
  return folded;
}

void ExpectQueriesEqual(const Engine& engine, const InMemory& folded) {
  auto kpis = engine.KpiStates();
  ASSERT_TRUE(kpis.ok()) << kpis.status().ToString();
  const std::vector<KpiState>& expected = folded.kpis;
  ASSERT_EQ(kpis->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE((*kpis)[i] == expected[i]) << KeyOf(expected[i]);
  }
  for (const auto& [key, state] : folded.staff_audits) {
    auto stored = engine.StaffAudit(state.staff_id);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    ASSERT_TRUE(stored->has_value()) << key;
    EXPECT_TRUE(**stored == state) << key;
  }
}

domain::WorkingCalendar SourceCalendar() {
  auto calendar =
      domain::WorkingCalendar::Load(std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/calendar");
  EXPECT_TRUE(std::holds_alternative<domain::WorkingCalendar>(calendar));
  return std::holds_alternative<domain::WorkingCalendar>(calendar)
             ? std::get<domain::WorkingCalendar>(std::move(calendar))
             : domain::WorkingCalendar();
}

// After the workload's last day (2026-12-31), so no event lies in the future.
constexpr int64_t kAfterTheWorkloadUs = 1'798'800'000'000'000;

// A ledger for the projections, not synced: the properties are about folding, not durability.
std::unique_ptr<ledger::Ledger> OpenUnsynced(const testing::TempDir& dir) {
  ledger::Options options;
  options.side_families = SideFamilies();
  options.sync = false;
  options.now_us = [] { return kAfterTheWorkloadUs; };
  return std::move(ledger::Ledger::Open(dir.str(), options)).value();
}

class ProjectionPropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ProjectionPropertyTest, IncrementalEqualsRebuiltAndRebuildsAreIdentical) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const domain::WorkingCalendar calendar = SourceCalendar();
  testing::TempDir dir;
  auto ledger = OpenUnsynced(dir);

  Dump incremental;
  {
    Engine engine(*ledger);
    ASSERT_TRUE(engine.Attach().ok());
    ingest::DemoOptions demo;
    demo.seed = seed;
    demo.apps = 120 + seed % 80;
    demo.correction_rate = 0.25;  // corrections refold applications and their KPI items
    ingest::DemoWorkload workload(demo, calendar);
    ingest::Ingestor ingestor(*ledger, [] { return kAfterTheWorkloadUs; });
    uint64_t rejected = 0;
    for (std::string line; workload.Next(&line);) {
      auto decoded = domain::DecodeClientEvent(line);
      ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << line;
      auto outcome = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
      rejected += std::holds_alternative<ingest::IngestError>(outcome);
    }
    EXPECT_EQ(rejected, 0u);
    ASSERT_GT(ledger->Head(), 500u);
    EXPECT_EQ(engine.checkpoint(), ledger->Head());
    engine.Detach();
    incremental = testing::DumpSideFamilies(*ledger);
    ExpectQueriesEqual(engine, FoldInMemory(*ledger));
  }

  Engine engine(*ledger);  // a short log: scanned and folded on this thread
  ASSERT_TRUE(engine.Rebuild().ok());
  Dump rebuilt = testing::DumpSideFamilies(*ledger);
  EXPECT_EQ(FirstDifference(incremental, rebuilt), "");
  ASSERT_TRUE(engine.Rebuild().ok());
  EXPECT_EQ(FirstDifference(rebuilt, testing::DumpSideFamilies(*ledger)), "");
  EngineOptions threaded;
  threaded.scan_thread_events_min = 1;  // the scan on a second thread, as in a long rebuild
  Engine pipelined(*ledger, threaded);
  ASSERT_TRUE(pipelined.Rebuild().ok());
  EXPECT_EQ(FirstDifference(rebuilt, testing::DumpSideFamilies(*ledger)), "");

  EngineOptions tiny;
  tiny.cache_states_max = 3;
  tiny.flush_every_events = 97;
  tiny.scan_thread_events_min = 1;
  Engine evicting(*ledger, tiny);
  ASSERT_TRUE(evicting.Rebuild().ok());
  EXPECT_EQ(FirstDifference(rebuilt, testing::DumpSideFamilies(*ledger)), "");
  ExpectQueriesEqual(evicting, FoldInMemory(*ledger));

  EngineOptions small_bytes;
  small_bytes.cache_bytes_max = 32 << 10;  // a few dozen states: applications frozen, thawed,
  small_bytes.scan_thread_events_min = 1;  // and dropped all the time
  Engine freezing(*ledger, small_bytes);
  ASSERT_TRUE(freezing.Rebuild().ok());
  EXPECT_EQ(FirstDifference(rebuilt, testing::DumpSideFamilies(*ledger)), "");
}

INSTANTIATE_TEST_SUITE_P(Seeds, ProjectionPropertyTest, ::testing::Values(1, 7, 42, 20261128));

// The front door judges each append on its own copy of the dates the rules read (the ingestor's
// PrerequisiteDates); the application projection keeps them in its milestones. The violations
// and settlements an append is answered with are exactly those the projection stores.
TEST_P(ProjectionPropertyTest, AppendsAreAnsweredWithTheViolationsTheProjectionStores) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const domain::WorkingCalendar calendar = SourceCalendar();
  testing::TempDir dir;
  auto ledger = OpenUnsynced(dir);
  Engine engine(*ledger);
  ASSERT_TRUE(engine.Attach().ok());
  ingest::DemoOptions demo;
  demo.seed = seed;
  demo.apps = 200;
  demo.correction_rate = 0;  // a correction refolds what earlier answers said
  ingest::DemoWorkload workload(demo, calendar);
  // The workload enters facts in date order. Some pairs of consecutive events of one application
  // swap places (the second is entered late: dated before a fact recorded ahead of it), others
  // swap dates (the first happened after the second, though recorded before it); what the rules
  // then refuse is left out, and the rest must still agree.
  std::vector<std::string> lines;
  std::map<std::string, std::vector<size_t>> recent;  // the last three lines of each stream
  std::mt19937_64 random(seed);
  for (std::string line; workload.Next(&line);) {
    auto decoded = domain::DecodeClientEvent(line);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << line;
    const auto& event = std::get<domain::ClientEvent>(decoded);
    lines.push_back(line);
    std::vector<size_t>& before = recent[event.stream];
    if (!before.empty() && event.type != "ApplicationAccepted" && random() % 6 == 0) {
      const size_t other = before[random() % before.size()];
      if (lines[other].find("\"type\":\"ApplicationAccepted\"") == std::string::npos) {
        if (random() % 2 == 0) {
          std::swap(lines[other], lines.back());
        } else {
          auto earlier = nlohmann::json::parse(lines[other]);
          auto later = nlohmann::json::parse(lines.back());
          std::swap(earlier["occurred_at"], later["occurred_at"]);
          lines[other] = earlier.dump();
          lines.back() = later.dump();
        }
      }
    }
    before.push_back(lines.size() - 1);
    if (before.size() > 3) before.erase(before.begin());
  }
  ingest::Ingestor ingestor(*ledger, [] { return kAfterTheWorkloadUs; });
  using Flags = std::set<std::pair<uint64_t, std::string>>;  // (position, rule)
  std::map<std::string, Flags> standing;
  std::map<std::string, Flags> settled;
  size_t refused = 0;
  for (const std::string& line : lines) {
    auto decoded = domain::DecodeClientEvent(line);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << line;
    const std::string stream = std::get<domain::ClientEvent>(decoded).stream;
    std::get<domain::ClientEvent>(decoded).expected_version.reset();  // the order changed
    auto outcome = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
    if (auto* error = std::get_if<ingest::IngestError>(&outcome)) {
      ASSERT_TRUE(error->rule.has_value()) << error->status.ToString();  // refused by a rule
      ++refused;
      continue;
    }
    const auto& answered = std::get<ingest::IngestOutcome>(outcome);
    for (const domain::RuleBreach& violation : answered.violations) {
      standing[stream].emplace(answered.appended.position, violation.rule);
    }
    for (const ingest::Settled& settles : answered.settles) {
      ASSERT_EQ(standing[stream].erase({settles.position, settles.rule}), 1u) << line;
      settled[stream].emplace(settles.position, settles.rule);
    }
  }
  size_t flagged = 0;
  ledger::Status visited = engine.ForEachApplication([&](const ApplicationState& app) {
    Flags stored_standing;
    for (const ViolationRecord& v : app.violations) stored_standing.emplace(v.position, v.rule);
    Flags stored_settled;
    for (const SettledViolation& s : app.settled) {
      stored_settled.emplace(s.violation.position, s.violation.rule);
    }
    EXPECT_EQ(stored_standing, standing[app.stream]) << app.stream;
    EXPECT_EQ(stored_settled, settled[app.stream]) << app.stream;
    flagged += stored_standing.size() + stored_settled.size();
    return true;
  });
  ASSERT_TRUE(visited.ok()) << visited.ToString();
  // The swaps made violations and settlements, so the comparison compared some.
  EXPECT_GT(flagged, 0u);
  EXPECT_GT(std::count_if(settled.begin(), settled.end(),
                          [](const auto& entry) { return !entry.second.empty(); }),
            0);
  EXPECT_LT(refused, lines.size() / 4);
}

}  // namespace
}  // namespace gridledger::projections
