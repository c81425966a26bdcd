// Goal: the engine's stored projections are a deterministic function of the log — inline folding
// (in the append batch), catch-up and rebuild from position 1 give byte-identical states and the
// same checkpoint; checkpoints survive reopen; an engine behind the head catches up; the memory of
// a cached KPI bucket or staff audit does not grow with the number of items it holds.
// Method: append the sample application (and variants) to real ledgers, run the engine in each
// mode, and compare the raw bytes of every projection family.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <utility>

#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "projections/check.h"
#include "projections/engine.h"
#include "side_dump.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

std::vector<std::string> SampleLines() {
  std::ifstream in(SAMPLE_APPLICATION);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// A fixed recorded-at clock, so two ledgers fed the same events hold the same bytes.
ledger::Options LedgerOptions() {
  ledger::Options options;
  options.side_families = SideFamilies();
  options.now_us = [] { return int64_t{1'790'000'000'000'000}; };
  return options;
}

// Equality without printing megabytes of state on failure.
void ExpectSameBytes(const std::map<std::string, std::string>& actual,
                     const std::map<std::string, std::string>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [key, value] : expected) {
    auto found = actual.find(key);
    ASSERT_NE(found, actual.end()) << "missing " << key;
    EXPECT_TRUE(found->second == value) << "bytes differ at " << key;
  }
}

// Appends the sample application as three applications (ids rewritten), interleaved.
void AppendSamples(ledger::Ledger& ledger, int copies) {
  std::vector<std::string> lines = SampleLines();
  for (const std::string& line : lines) {
    for (int copy = 0; copy < copies; ++copy) {
      std::string changed = line;
      for (size_t at; (at = changed.find("000123")) != std::string::npos;) {
        changed.replace(at, 6, "00012" + std::to_string(copy));
      }
      auto decoded = domain::DecodeClientEvent(changed);
      ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded));
      auto appended =
          ledger.Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))));
      ASSERT_TRUE(appended.ok()) << appended.status().ToString();
    }
  }
}

TEST(EngineTest, InlineCatchUpAndRebuildGiveIdenticalBytes) {
  testing::TempDir inline_dir;
  testing::TempDir batch_dir;
  std::map<std::string, std::string> inline_bytes;
  {
    auto ledger = std::move(ledger::Ledger::Open(inline_dir.str(), LedgerOptions())).value();
    Engine engine(*ledger);
    ASSERT_TRUE(engine.Attach().ok());
    AppendSamples(*ledger, 3);
    EXPECT_EQ(engine.checkpoint(), ledger->Head());
    inline_bytes = testing::DumpSideFamilies(*ledger);
  }
  auto ledger = std::move(ledger::Ledger::Open(batch_dir.str(), LedgerOptions())).value();
  AppendSamples(*ledger, 3);
  EngineOptions small;
  small.flush_every_events = 4;  // many partial flushes
  small.cache_states_max = 1;    // constant eviction and reload
  Engine engine(*ledger, small);
  EXPECT_EQ(engine.checkpoint(), 0u);
  ASSERT_TRUE(engine.CatchUp().ok());
  EXPECT_EQ(engine.checkpoint(), 33u);
  std::map<std::string, std::string> caught_up = testing::DumpSideFamilies(*ledger);
  size_t applications = 0;
  for (const auto& [key, value] : caught_up) applications += key.starts_with("proj.application/");
  EXPECT_EQ(applications, 3u);
  EXPECT_TRUE(caught_up.contains("proj.kpi/kpi/m/KM.XS/2026-04"));
  EXPECT_TRUE(caught_up.contains("proj.evidence/evidence/app/XS-2026-000120"));
  EXPECT_TRUE(caught_up.contains("proj.staff/staff-audit/S1001"));
  ExpectSameBytes(caught_up, inline_bytes);

  std::vector<uint64_t> progress;
  ASSERT_TRUE(engine.Rebuild([&](uint64_t done, uint64_t) { progress.push_back(done); }).ok());
  ExpectSameBytes(testing::DumpSideFamilies(*ledger), inline_bytes);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 33u);
  ASSERT_TRUE(engine.Rebuild().ok());
  ExpectSameBytes(testing::DumpSideFamilies(*ledger), inline_bytes);
}

TEST(EngineTest, CheckpointSurvivesReopenAndCatchUpResumes) {
  testing::TempDir dir;
  {
    auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
    AppendSamples(*ledger, 1);
    Engine engine(*ledger);
    ASSERT_TRUE(engine.CatchUp().ok());
    AppendSamples(*ledger, 2);  // copy 0 repeats (duplicates), copy 1 is new
  }
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  EXPECT_EQ(engine.checkpoint(), 11u);
  ASSERT_TRUE(engine.CatchUp().ok());
  EXPECT_EQ(engine.checkpoint(), 22u);
  auto state = engine.Application("app/XS-2026-000121");
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->has_value());
  EXPECT_EQ((*state)->stage(), "archived");
  EXPECT_EQ((*state)->org, "KM.XS");
  int count = 0;
  ASSERT_TRUE(engine.ForEachApplication([&](const ApplicationState&) { return ++count; }).ok());
  EXPECT_EQ(count, 2);
  EXPECT_FALSE(engine.Application("app/none").value().has_value());
}

TEST(EngineTest, AttachFoldsEventsAppendedWhileDetached) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  AppendSamples(*ledger, 1);  // nobody folds these yet
  ASSERT_TRUE(engine.Attach().ok());
  AppendSamples(*ledger, 2);
  EXPECT_EQ(engine.checkpoint(), 22u);
  engine.Detach();
  AppendSamples(*ledger, 3);
  EXPECT_EQ(engine.checkpoint(), 22u);
  ASSERT_TRUE(engine.CatchUp().ok());
  EXPECT_EQ(engine.checkpoint(), 33u);
}

// Appends `count` TrainingHeld (S1 organizes, S2 attends) and SensitiveDataAccessed by S1, all in
// March 2026: they grow the trainings of one KPI bucket and the lists of two staff audits.
void AppendStaffEvents(ledger::Ledger& ledger, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    for (const auto& [type, data] :
         {std::pair<std::string, nlohmann::json>{
              "TrainingHeld", {{"topic", "保密"}, {"attendees", {"S2"}}, {"hours", 1.5}}},
          {"SensitiveDataAccessed", {{"what", "customer C" + std::to_string(i) + " phone"}}}}) {
      const nlohmann::json event = {{"stream", "staff/S1"},
                                    {"type", type},
                                    {"event_id", type + std::to_string(i)},
                                    {"occurred_at", "2026-03-10T10:00:00+08:00"},
                                    {"actor", {{"id", "S1"}, {"role", "clerk"}, {"org", "KM.XS"}}},
                                    {"data", data}};
      auto decoded = domain::DecodeClientEvent(event);
      ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded))
          << std::get<domain::DecodeError>(decoded).message;
      auto appended =
          ledger.Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))));
      ASSERT_TRUE(appended.ok()) << appended.status().ToString();
    }
  }
}

// The cached states are the heads of KPI buckets and staff audits (scalars and counts) plus the
// items of at most one flush: their estimated memory after a flush must not depend on how many
// items the lists hold, in catch-up and in inline mode alike; queries still see every item.
TEST(EngineTest, CachedBucketSizeStaysBoundedAsItsListsGrow) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  AppendStaffEvents(*ledger, 0, 50);
  ASSERT_TRUE(engine.CatchUp().ok());
  const size_t small = engine.CachedStateBytes();
  ASSERT_GT(small, 0u);
  AppendStaffEvents(*ledger, 50, 1000);
  ASSERT_TRUE(engine.CatchUp().ok());
  const size_t caught_up = engine.CachedStateBytes();
  EXPECT_LE(caught_up, small + 64);  // only the varint counts of the heads grow

  ASSERT_TRUE(engine.Attach().ok());
  AppendStaffEvents(*ledger, 1050, 1000);
  EXPECT_EQ(engine.checkpoint(), ledger->Head());
  EXPECT_LE(engine.CachedStateBytes(), small + 64);
  engine.Detach();

  auto kpis = engine.KpiStates("kpi/m/KM.XS/2026-03");
  ASSERT_TRUE(kpis.ok());
  ASSERT_EQ(kpis->size(), 1u);
  EXPECT_EQ((*kpis)[0].trainings.size(), 2050u);
  EXPECT_EQ((*kpis)[0].trainings.back().position, ledger->Head() - 1);
  auto organizer = engine.StaffAudit("S1");
  ASSERT_TRUE(organizer.ok());
  ASSERT_TRUE(organizer->has_value());
  EXPECT_EQ((*organizer)->actions_total, 4100u);
  EXPECT_EQ((*organizer)->accesses.size(), 2050u);
  EXPECT_EQ((*organizer)->trainings.size(), 2050u);
  EXPECT_DOUBLE_EQ((*organizer)->training_hours, 2050 * 1.5);
  EXPECT_EQ((*organizer)->accesses[7].what, "customer C7 phone");
  auto attendee = engine.StaffAudit("S2");
  ASSERT_TRUE(attendee.ok());
  ASSERT_TRUE(attendee->has_value());
  EXPECT_EQ((*attendee)->trainings.size(), 2050u);
  EXPECT_FALSE((*attendee)->trainings[0].organizer);
  EXPECT_FALSE(engine.StaffAudit("S3").value().has_value());
}

}  // namespace
}  // namespace gridledger::projections

namespace gridledger::projections {
namespace {

// Goal: an engine can be detached and destroyed while appends are in flight (the ledger waits for
// commits that still call it), and a later catch-up by a new engine gives the same stored states
// as a rebuild — nothing folded twice, nothing skipped.
TEST(EngineTest, DetachUnderLoadThenCatchUpEqualsRebuild) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  auto engine = std::make_unique<Engine>(*ledger);
  ASSERT_TRUE(engine->Attach().ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> appenders;
  for (int t = 0; t < 4; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; i < 400 && !stop; ++i) {
        std::string line = R"({"stream":"staff/S)" + std::to_string(t) +
                           R"(","type":"TrainingHeld","event_id":"load-)" + std::to_string(t) +
                           "-" + std::to_string(i) +
                           R"(","occurred_at":"2026-03-02T09:15:00+08:00",)"
                           R"("actor":{"id":"S)" +
                           std::to_string(t) +
                           R"(","role":"director","org":"KM.XS"},)"
                           R"("data":{"topic":"t","attendees":["S9"],"hours":1}})";
        auto decoded = domain::DecodeClientEvent(line);
        ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << line;
        ASSERT_TRUE(
            ledger
                ->Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))))
                .ok());
      }
    });
  }
  while (ledger->Head() < 200) std::this_thread::yield();
  engine->Detach();
  engine.reset();  // appends go on; no commit may call the destroyed engine
  for (auto& thread : appenders) thread.join();

  Engine caught_up(*ledger);
  ASSERT_TRUE(caught_up.CatchUp().ok());
  EXPECT_EQ(caught_up.checkpoint(), ledger->Head());
  std::map<std::string, std::string> incremental = testing::DumpSideFamilies(*ledger);
  ASSERT_TRUE(caught_up.Rebuild().ok());
  ExpectSameBytes(testing::DumpSideFamilies(*ledger), incremental);
}

}  // namespace
}  // namespace gridledger::projections

namespace gridledger::projections {
namespace {

// Goal: in background catch-up mode the engine follows appends by itself, and what it stores
// equals a rebuild. Method: append the samples with no engine attached while a background engine
// runs; wait on the engine's checkpoint condition (with a deadline) until it reaches the head.
TEST(EngineTest, BackgroundCatchUpFollowsTheHead) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  engine.StartBackground();
  AppendSamples(*ledger, 3);
  const uint64_t head = ledger->Head();
  ASSERT_TRUE(engine.WaitForCheckpoint(head, std::chrono::seconds(30)));
  engine.StopBackground();
  ASSERT_EQ(engine.checkpoint(), head);
  EXPECT_TRUE(engine.BackgroundStatus().ok());
  std::map<std::string, std::string> followed = testing::DumpSideFamilies(*ledger);
  ASSERT_TRUE(engine.Rebuild().ok());
  ExpectSameBytes(testing::DumpSideFamilies(*ledger), followed);
}

}  // namespace
}  // namespace gridledger::projections

namespace gridledger::projections {
namespace {

// Goal: an unreadable checkpoint is reported, not treated as 0 (which would fold every event a
// second time onto the stored states); Rebuild still recovers. Method: overwrite the checkpoint.
TEST(EngineTest, UnreadableCheckpointIsReportedAndRebuildRecovers) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  AppendSamples(*ledger, 1);
  {
    Engine engine(*ledger);
    ASSERT_TRUE(engine.CatchUp().ok());
  }
  auto batch = ledger->NewSideBatch();
  batch->Put(0, "checkpoint", "bad");
  ASSERT_TRUE(ledger->WriteSide(*batch, true).ok());
  Engine engine(*ledger);
  EXPECT_EQ(engine.CatchUp().code(), ledger::Code::kCorruption);
  EXPECT_EQ(engine.Attach().code(), ledger::Code::kCorruption);
  ASSERT_TRUE(engine.Rebuild().ok());
  EXPECT_EQ(engine.checkpoint(), ledger->Head());
  EXPECT_TRUE(engine.CatchUp().ok());
}

// Goal: a rebuild writes its states without the write-ahead log, so one that has not finished is
// never caught up on: until it ends, the stored checkpoint says so and another engine on the same
// store refuses CatchUp and Attach; once it ends, an engine resumes from its checkpoint.
// Method: open a second engine from the rebuild's progress callback, between two of its writes.
TEST(EngineTest, UnfinishedRebuildIsReportedUntilItEnds) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  AppendSamples(*ledger, 3);
  EngineOptions small;
  small.flush_every_events = 4;  // progress is reported after every 4 events
  Engine engine(*ledger, small);
  int checked = 0;
  ASSERT_TRUE(engine
                  .Rebuild([&](uint64_t done, uint64_t head) {
                    if (done >= head) return;
                    ++checked;
                    Engine other(*ledger);
                    EXPECT_EQ(other.CatchUp().code(), ledger::Code::kCorruption);
                    EXPECT_EQ(other.Attach().code(), ledger::Code::kCorruption);
                  })
                  .ok());
  EXPECT_GT(checked, 0);
  Engine after(*ledger);
  EXPECT_EQ(after.checkpoint(), ledger->Head());
  EXPECT_TRUE(after.CatchUp().ok());
  EXPECT_TRUE(after.Application("app/XS-2026-000121").value().has_value());
}

// Appends one event of the contract's JSON straight to the ledger (no front door judges it).
void AppendLine(ledger::Ledger& ledger, const std::string& line) {
  auto decoded = domain::DecodeClientEvent(line);
  ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << line;
  ASSERT_TRUE(
      ledger.Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))))
          .ok());
}

// An event of app/XS-2026-<id> on 2026-03-20, by `actor_id` in `role` of KM.XS; the sample's
// opening event of that application when `type` is "".
std::string AppEvent(const std::string& id, const std::string& event_id, const std::string& type,
                     const std::string& actor_id, const std::string& role,
                     const std::string& data) {
  if (type.empty()) {
    std::string opening = SampleLines().front();
    for (size_t at; (at = opening.find("000123")) != std::string::npos;) opening.replace(at, 6, id);
    return opening;
  }
  return R"({"stream":"app/XS-2026-)" + id + R"(","type":")" + type + R"(","event_id":")" +
         event_id + R"(","occurred_at":"2026-03-20T10:00:00+08:00","actor":{"id":")" + actor_id +
         R"(","role":")" + role + R"(","org":"KM.XS"},"data":)" + data + "}";
}

// What `engine` stored inline is what a rebuild stores.
void ExpectRebuildStoresTheSame(Engine& engine, ledger::Ledger& ledger) {
  const auto inline_bytes = testing::DumpSideFamilies(ledger);
  engine.Detach();
  ASSERT_TRUE(engine.Rebuild().ok());
  ExpectSameBytes(testing::DumpSideFamilies(ledger), inline_bytes);
}

// An urge corrected (to another person, level or date) by another director is shown corrected in
// the staff audit of the director who urged — as the application shows it — with who corrected
// it; the correction is the corrector's action. Inline folding and a rebuild agree.
TEST(EngineTest, ACorrectedUrgeIsShownCorrectedInTheUrgersStaffAudit) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  ASSERT_TRUE(engine.Attach().ok());
  AppendLine(*ledger, AppEvent("900001", "", "", "", "", ""));  // opened, and stays open
  const uint64_t urged_at = ledger->Head() + 1;
  AppendLine(*ledger, AppEvent("900001", "u1", "Urged", "D1", "director",
                               R"({"level":1,"to_org":"KM.XS","to_person":"S1001",)"
                               R"("channel":"phone"})"));
  AppendLine(*ledger,
             AppEvent("900001", "c1", "Corrected", "D2", "director",
                      R"({"corrects_position":)" + std::to_string(urged_at) +
                          R"(,"reason":"wrong person","fields":{"to_person":"S1002","level":2}})"));
  ASSERT_EQ(engine.checkpoint(), ledger->Head());

  auto urger = engine.StaffAudit("D1");
  ASSERT_TRUE(urger.ok() && urger->has_value());
  const nlohmann::json shown = ToJson(**urger);
  ASSERT_EQ(shown["urges"].size(), 1u) << shown;
  EXPECT_EQ(shown["urges"][0]["to_person"], "S1002") << shown;
  EXPECT_EQ(shown["urges"][0]["level"], 2) << shown;
  EXPECT_EQ(shown["urges"][0]["corrections"],
            (nlohmann::json::array({{{"position", ledger->Head()}, {"by", "D2"}}})))
      << shown;
  EXPECT_EQ(shown["urges_issued"], 1);
  EXPECT_EQ(shown["actions_total"], 1);  // the urge; the correction is not D1's action
  auto corrector = engine.StaffAudit("D2");
  ASSERT_TRUE(corrector.ok() && corrector->has_value());
  EXPECT_EQ((*corrector)->actions_by_type.at("Corrected"), 1u);
  EXPECT_TRUE((*corrector)->urges.empty());
  EXPECT_TRUE((*corrector)->urge_corrections.empty());

  ExpectRebuildStoresTheSame(engine, *ledger);
}

// A correction by a role that may not record the corrected type — a clerk's of the inspection
// that failed her work, stored past a front door without the rule — is refused by the fold
// itself (correction_role), whether it would change a fact or not; the inspector's own applies.
TEST(EngineTest, ACorrectionByARoleThatMayNotRecordItsTargetIsRefusedByTheFold) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  Engine engine(*ledger);
  ASSERT_TRUE(engine.Attach().ok());
  auto append = [&](const std::string& event_id, const std::string& type, const std::string& role,
                    const std::string& data) {
    AppendLine(*ledger, AppEvent("900002", event_id, type, "X-" + role, role, data));
  };
  AppendLine(*ledger, AppEvent("900002", "", "", "", "", ""));              // 1
  append("r", "CompletionReported", "clerk", "{}");                         // 2
  append("i", "CompletionInspected", "inspector", R"({"result":"fail"})");  // 3
  append("c1", "Corrected", "clerk",
         R"({"corrects_position":3,"reason":"r","fields":{"result":"pass"}})");  // 4
  append("c2", "Corrected", "clerk",
         R"({"corrects_position":3,"reason":"r","fields":{"defects":["seal"]}})");  // 5
  append("c3", "Corrected", "inspector",
         R"({"corrects_position":3,"reason":"r","fields":{"defects":["meter"]}})");  // 6
  ASSERT_EQ(engine.checkpoint(), 6u);
  auto app = engine.Application("app/XS-2026-900002");
  ASSERT_TRUE(app.ok() && app->has_value());
  std::map<uint64_t, std::string> rejected;
  for (const RejectedRecord& r : (*app)->rejected) rejected[r.position] = r.rule;
  EXPECT_EQ(rejected,
            (std::map<uint64_t, std::string>{{4, "correction_role"}, {5, "correction_role"}}));
  ASSERT_EQ((*app)->corrections.size(), 1u);
  EXPECT_EQ((*app)->corrections[0].position, 6u);
  EXPECT_FALSE((*app)->facts.completion_passed);

  ExpectRebuildStoresTheSame(engine, *ledger);
}

// States folded by another version of the folds (here: stored before fold versions existed, so no
// fold_version key) are not caught up on — two rule sets would mix — until a rebuild, which
// stamps them with this version.
TEST(EngineTest, StatesOfAnotherFoldVersionNeedARebuild) {
  testing::TempDir dir;
  auto ledger = std::move(ledger::Ledger::Open(dir.str(), LedgerOptions())).value();
  AppendSamples(*ledger, 3);
  {
    Engine engine(*ledger);
    ASSERT_TRUE(engine.CatchUp().ok());
    EXPECT_FALSE(engine.NeedsRebuild());
  }
  {
    Engine again(*ledger);  // the same version: caught up as usual
    EXPECT_FALSE(again.NeedsRebuild());
    EXPECT_TRUE(again.CatchUp().ok());
  }
  auto forget = ledger->NewSideBatch();
  forget->Delete(0, "fold_version");  // the meta family
  ASSERT_TRUE(ledger->WriteSide(*forget, true).ok());

  Engine older(*ledger);
  EXPECT_TRUE(older.NeedsRebuild());
  ledger::Status refused = older.CatchUp();
  EXPECT_EQ(refused.code(), ledger::Code::kCorruption);
  EXPECT_NE(refused.message().find("fold version 1"), std::string::npos) << refused.message();
  EXPECT_EQ(older.Attach().code(), ledger::Code::kCorruption);
  ASSERT_TRUE(older.Rebuild().ok());
  EXPECT_FALSE(older.NeedsRebuild());
  Engine rebuilt(*ledger);
  EXPECT_FALSE(rebuilt.NeedsRebuild());
  EXPECT_TRUE(rebuilt.CatchUp().ok());
}

}  // namespace
}  // namespace gridledger::projections

namespace gridledger::projections {
namespace {

// Goal: CheckProjections (ledgerctl verify --projections) tells stored states that a fresh fold
// of the log gives from those it does not, names each of the latter, and changes nothing.
// Method: fold the sample applications, then edit, add and delete stored states by hand.

// The stored states of the projection families (proj.meta left out), as CheckProjections counts.
size_t StoredStates(const ledger::Ledger& ledger) {
  size_t states = 0;
  for (const auto& [key, value] : testing::DumpSideFamilies(ledger)) {
    states += !key.starts_with("proj.meta/");
  }
  return states;
}

// verify --projections: stored states equal to a fresh fold pass; a state changed, one the fold
// does not make and one missing are each named, in family and key order; the ledger is left as
// it was and the scratch copy is removed.
TEST(CheckProjectionsTest, NamesEveryStateThatAFreshFoldDoesNotGive) {
  testing::TempDir dir;
  testing::TempDir scratch_parent;
  const std::string scratch = scratch_parent.str() + "/copy";
  auto ledger = std::move(ledger::Ledger::Open(dir.str() + "/data", LedgerOptions())).value();
  {
    Engine engine(*ledger);
    ASSERT_TRUE(engine.Attach().ok());
    AppendSamples(*ledger, 3);
  }
  auto intact = CheckProjections(*ledger, scratch);
  ASSERT_TRUE(intact.ok()) << intact.status().ToString();
  EXPECT_TRUE(intact->ok());
  EXPECT_EQ(intact->checkpoint, ledger->Head());
  EXPECT_EQ(intact->states, StoredStates(*ledger));
  EXPECT_GT(intact->states, 10u);
  EXPECT_FALSE(std::filesystem::exists(scratch));

  auto stored_application = ledger->GetSide(1, "app/XS-2026-000121");  // proj.application
  ASSERT_TRUE(stored_application.ok() && stored_application->has_value());
  std::string edited = **stored_application;
  edited[edited.size() / 2] ^= 0x01;
  auto tamper = ledger->NewSideBatch();
  tamper->Put(1, "app/XS-2026-000121", edited);
  tamper->Put(2, "kpi/forged", "x");                  // proj.kpi: a state no event made
  tamper->Delete(3, "evidence/app/XS-2026-000120");  // proj.evidence
  ASSERT_TRUE(ledger->WriteSide(*tamper, true).ok());
  const auto before = testing::DumpSideFamilies(*ledger);
  const uint64_t head = ledger->Head();

  auto tampered = CheckProjections(*ledger, scratch);
  ASSERT_TRUE(tampered.ok()) << tampered.status().ToString();
  EXPECT_FALSE(tampered->ok());
  EXPECT_EQ(tampered->differences, 3u);
  EXPECT_EQ(tampered->states, intact->states + 1);  // the forged one
  ASSERT_EQ(tampered->first.size(), 3u);
  EXPECT_EQ(tampered->first[0].family, "proj.application");
  EXPECT_EQ(tampered->first[0].key, "app/XS-2026-000121");
  EXPECT_EQ(tampered->first[0].difference, StateDifference::kDiffers);
  EXPECT_EQ(tampered->first[1].family, "proj.kpi");
  EXPECT_EQ(tampered->first[1].key, "kpi/forged");
  EXPECT_EQ(tampered->first[1].difference, StateDifference::kNotFolded);
  EXPECT_EQ(tampered->first[2].family, "proj.evidence");
  EXPECT_EQ(tampered->first[2].key, "evidence/app/XS-2026-000120");
  EXPECT_EQ(tampered->first[2].difference, StateDifference::kNotStored);
  EXPECT_EQ(testing::DumpSideFamilies(*ledger), before);
  EXPECT_EQ(ledger->Head(), head);
  EXPECT_FALSE(std::filesystem::exists(scratch));
  // Merged in parts of 1, 2 and 3 stored states: the same verdict, across every part boundary.
  for (size_t part = 1; part <= 3; ++part) {
    auto in_parts = CheckProjections(*ledger, scratch, {}, part);
    ASSERT_TRUE(in_parts.ok()) << in_parts.status().ToString();
    EXPECT_EQ(in_parts->states, tampered->states) << part;
    EXPECT_EQ(in_parts->differences, 3u) << part;
    ASSERT_EQ(in_parts->first.size(), 3u) << part;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(in_parts->first[i].key, tampered->first[i].key) << part;
      EXPECT_EQ(in_parts->first[i].difference, tampered->first[i].difference) << part;
    }
  }

  Engine repair(*ledger);
  ASSERT_TRUE(repair.Rebuild().ok());
  auto repaired = CheckProjections(*ledger, scratch);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(repaired->ok());
}

// Projections behind the log (events appended while no engine folded) are compared with a fold
// up to their own checkpoint, not to the head; states that can only be rebuilt are not compared.
TEST(CheckProjectionsTest, ComparesAtTheStoredCheckpointAndRefusesStatesToRebuild) {
  testing::TempDir dir;
  testing::TempDir scratch_parent;
  const std::string scratch = scratch_parent.str() + "/copy";
  auto ledger = std::move(ledger::Ledger::Open(dir.str() + "/data", LedgerOptions())).value();
  uint64_t folded_to = 0;
  {
    Engine engine(*ledger);
    ASSERT_TRUE(engine.Attach().ok());
    AppendSamples(*ledger, 1);
    folded_to = ledger->Head();
  }
  AppendSamples(*ledger, 2);  // ids ...120 again (duplicates) and ...121: new events
  ASSERT_GT(ledger->Head(), folded_to);
  auto behind = CheckProjections(*ledger, scratch);
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  EXPECT_TRUE(behind->ok());
  EXPECT_EQ(behind->checkpoint, folded_to);
  EXPECT_EQ(behind->states, StoredStates(*ledger));

  auto forget = ledger->NewSideBatch();
  forget->Delete(0, "fold_version");  // as if folded by another version (see above)
  ASSERT_TRUE(ledger->WriteSide(*forget, true).ok());
  auto refused = CheckProjections(*ledger, scratch);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ledger::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("fold version 1"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(scratch));
}

}  // namespace
}  // namespace gridledger::projections
