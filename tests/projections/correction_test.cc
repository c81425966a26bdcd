// Goal: a Corrected makes every projection read as if the event had been entered right — the
// application's class and dates, its clocks, and the KPI table (items move between periods and
// the superseded ones stop counting) — inline, in a rebuild (same bytes) and in `app --as-of`
// before the correction (the old answer, which is what the system knew then).
// Method: the sample application (examples/, hv_single, scheme replied in 10 working days,
// archived 2026-04-30) appended to a real ledger with the engine attached; corrections appended;
// the stored states, KpiTable and AppView read back. Expected figures are worked out in comments.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <variant>

#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "projections/application_codec.h"
#include "projections/engine.h"
#include "projections/queries.h"
#include "side_dump.h"
#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

constexpr char kApp[] = "app/XS-2026-000123";
constexpr int64_t kNowUs = 1'790'000'000'000'000;  // 2026-09-21: recorded_at of every event
// The data of another application's ApplicationAccepted: a residential new install.
const json kResidentialAccepted = {
    {"customer_id", "C9"},       {"customer_name", "乙"}, {"customer_class", "residential"},
    {"business", "new_install"}, {"voltage_kv", 0.22},    {"capacity_kva", 8},
    {"channel", "counter"},      {"important", false},    {"three_zero", false}};

class CorrectionProjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger::Options options;
    options.side_families = SideFamilies();
    options.now_us = [this] { return now_us_; };
    ledger_ = std::move(ledger::Ledger::Open(dir_.str(), options)).value();
    engine_ = std::make_unique<Engine>(*ledger_);
    ASSERT_TRUE(engine_->Attach().ok());
    auto calendar = domain::WorkingCalendar::Load(GRIDLEDGER_SOURCE_DATA_DIR "/calendar");
    ASSERT_TRUE(std::holds_alternative<domain::WorkingCalendar>(calendar));
    calendar_ = std::get<domain::WorkingCalendar>(std::move(calendar));
    auto profile = domain::SlaProfile::Load(GRIDLEDGER_SOURCE_DATA_DIR "/sla/national-2009.json");
    ASSERT_TRUE(std::holds_alternative<domain::SlaProfile>(profile));
    profile_ = std::get<domain::SlaProfile>(std::move(profile));
    std::ifstream in(SAMPLE_APPLICATION);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) Append(json::parse(line));
    }
    ASSERT_EQ(ledger_->Head(), 11u);  // 10 Archived, 11 CallbackMade
  }

  void Append(const json& event) {
    auto decoded = domain::DecodeClientEvent(event);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded))
        << std::get<domain::DecodeError>(decoded).message;
    auto appended =
        ledger_->Append(ingest::ToAppendRequest(std::get<domain::ClientEvent>(std::move(decoded))));
    ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  }

  void Correct(uint64_t position, const json& fields) {
    Append({{"stream", kApp},
            {"type", "Corrected"},
            {"event_id", "fix-" + std::to_string(++corrections_)},
            {"occurred_at", "2026-09-21T10:00:00+08:00"},
            {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
            {"data",
             {{"corrects_position", position}, {"reason", "按原始单据更正"}, {"fields", fields}}}});
  }

  ApplicationState Stored() {
    auto state = engine_->Application(kApp);
    EXPECT_TRUE(state.ok() && state->has_value());
    return state.ok() && state->has_value() ? **state : ApplicationState{};
  }

  // timeliness of `period` for KM.XS: {numerator, denominator}.
  std::pair<json, json> Timeliness(const std::string& period) {
    auto states = engine_->KpiStates();
    EXPECT_TRUE(states.ok());
    json table = KpiTable(*states, period, std::string("KM.XS"), calendar_, profile_, {}, kNowUs);
    for (const json& kpi : table["kpis"]) {
      if (kpi["id"] == "timeliness") return {kpi["numerator"], kpi["denominator"]};
    }
    ADD_FAILURE() << "no timeliness in " << table.dump();
    return {};
  }

  testing::SideDump Dump() const { return testing::DumpSideFamilies(*ledger_); }

  testing::TempDir dir_;
  int64_t now_us_ = kNowUs;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<Engine> engine_;
  domain::WorkingCalendar calendar_;
  domain::SlaProfile profile_;
  int corrections_ = 0;
};

TEST_F(CorrectionProjectionTest, ACorrectedClassChangesTheLimitsAndTheKpi) {
  // As entered: hv_single, scheme reply limit 20, taken 10 working days (03-02 → 03-16): met, and
  // every other clock met, so April's timeliness is 1 of 1.
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(1), json(1)));
  now_us_ += 1'000'000;  // the correction is recorded a second after everything above
  Correct(1, {{"customer_class", "lv_nonresidential"}});

  const ApplicationState state = Stored();
  EXPECT_EQ(state.facts.customer_class, domain::SlaCustomerClass::kLvNonResidential);
  EXPECT_EQ(state.revision, 1u);
  ASSERT_EQ(state.corrections.size(), 1u);
  EXPECT_EQ(json::parse(state.corrections[0].fields),
            json({{"customer_class", "lv_nonresidential"}}));
  const json shown = ToJson(state, calendar_, profile_, kNowUs);
  // lv_nonresidential: limit 8, so 10 days is missed by 2.
  EXPECT_EQ(shown["clocks"]["scheme_reply"]["limit"], 8);
  EXPECT_EQ(shown["clocks"]["scheme_reply"]["state"], "missed");
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(0), json(1)));

  // What the system said before the correction is still there to see.
  auto before = AppView(*ledger_, kApp, std::nullopt, kNowUs, kNowUs + 1, calendar_, profile_);
  ASSERT_TRUE(before.ok() && before->has_value());
  EXPECT_EQ((**before)["customer_class"], "hv_single");
  EXPECT_EQ((**before)["clocks"]["scheme_reply"]["state"], "met");
  auto now = AppView(*ledger_, kApp, std::nullopt, std::nullopt, kNowUs + 1, calendar_, profile_);
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((**now)["customer_class"], "lv_nonresidential");
  EXPECT_EQ((**now)["clocks"]["scheme_reply"]["state"], "missed");
}

TEST_F(CorrectionProjectionTest, ACorrectedDateMovesTheItemToItsPeriod) {
  now_us_ += 1'000'000;  // the correction is recorded after everything above
  // Archived on 2026-05-06, not 04-30: the application counts in May, not April.
  Correct(10, {{"occurred_at", "2026-05-06T17:00:00+08:00"}});
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(0), json(0)));
  EXPECT_EQ(Timeliness("2026-05"), std::make_pair(json(1), json(1)));
  // A second correction applies on top: the class, too (scheme reply missed).
  Correct(1, {{"customer_class", "lv_nonresidential"}});
  EXPECT_EQ(Timeliness("2026-05"), std::make_pair(json(0), json(1)));
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(0), json(0)));
  EXPECT_EQ(Stored().revision, 2u);

  // Inline folding and a rebuild from position 1 store the same bytes.
  const auto inline_bytes = Dump();
  engine_->Detach();
  Engine rebuilt(*ledger_);
  ASSERT_TRUE(rebuilt.Rebuild().ok());
  const auto rebuilt_bytes = Dump();
  ASSERT_EQ(inline_bytes.size(), rebuilt_bytes.size());
  for (const auto& [key, value] : inline_bytes) {
    auto found = rebuilt_bytes.find(key);
    ASSERT_NE(found, rebuilt_bytes.end()) << key;
    EXPECT_TRUE(found->second == value) << "bytes differ at " << key;
  }
}

// A Corrected that cannot apply (here appended past the ingestor, which would refuse it) is folded
// as a rejected event: listed, nothing applied, no revision, the KPI table as before.
TEST_F(CorrectionProjectionTest, ACorrectionThatCannotApplyIsListedAsRejected) {
  const uint64_t applied_before = Stored().events_applied;
  Correct(1, {{"meter_id", "M-1"}});  // not a field of ApplicationAccepted
  const ApplicationState state = Stored();
  EXPECT_EQ(state.revision, 0u);
  EXPECT_TRUE(state.corrections.empty());
  ASSERT_FALSE(state.rejected.empty());
  EXPECT_EQ(state.rejected.back().rule, "correction_field");
  EXPECT_EQ(state.rejected.back().position, 12u);
  EXPECT_EQ(state.events_applied, applied_before);
  EXPECT_EQ(state.facts.customer_class, domain::SlaCustomerClass::kHvSingle);
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(1), json(1)));
}

// A correction of what no fold reads is listed and changes nothing else: no new revision, and
// inline folding (which reads only the corrected event) equals a rebuild (which reads them all).
TEST_F(CorrectionProjectionTest, ACorrectedNameIsListedWithoutAnotherRevision) {
  auto read = [this](uint64_t position) { return ledger_->ReadOne(position); };
  EventRecord name;
  name.position = 99;
  name.stream = kApp;
  name.type = "Corrected";
  const auto payload = domain::PayloadFromJson(
      "Corrected",
      {{"corrects_position", 1}, {"reason", "r"}, {"fields", {{"customer_name", "乙"}}}});
  ASSERT_TRUE(std::holds_alternative<std::string>(payload));
  name.payload = std::get<std::string>(payload);
  EXPECT_EQ(CheckCorrection(Stored(), name, read), CorrectionCheck::kChangesNoFact);
  name.stream = "app/OTHER-1";
  EXPECT_EQ(CheckCorrection(Stored(), name, read), CorrectionCheck::kNotItsEvent);

  Correct(1, {{"customer_name", "昆明西山精密机械股份有限公司"}});
  const ApplicationState state = Stored();
  EXPECT_EQ(state.revision, 0u);
  ASSERT_EQ(state.corrections.size(), 1u);
  EXPECT_EQ(state.corrections[0].corrects_position, 1u);
  EXPECT_EQ(Timeliness("2026-04"), std::make_pair(json(1), json(1)));
  Correct(1, {{"customer_class", "lv_nonresidential"}});
  EXPECT_EQ(Stored().revision, 1u);
  ASSERT_EQ(Stored().corrections.size(), 2u);
  Correct(3, {{"capacity_kva", 100}});    // position 3 is a SiteSurveyed: no such field
  Correct(999, {{"capacity_kva", 100}});  // no event before it
  ASSERT_GE(Stored().rejected.size(), 2u);
  EXPECT_EQ(Stored().rejected.back().rule, "correction_target");
  // Another application's event; a refused correction of the same target before a name one.
  Append({{"stream", "app/XS-2026-000999"},
          {"type", "ApplicationAccepted"},
          {"event_id", "other-1"},
          {"occurred_at", "2026-09-21T09:00:00+08:00"},
          {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
          {"data", kResidentialAccepted}});
  Correct(ledger_->Head(), {{"capacity_kva", 9}});  // names app/XS-2026-000999's acceptance
  EXPECT_EQ(Stored().rejected.back().rule, "correction_target");
  Correct(1, {{"customer_class", "villa"}});
  EXPECT_EQ(Stored().rejected.back().rule, "correction_value");
  Correct(1, {{"customer_name", "昆明西山精密机械有限公司"}});
  EXPECT_EQ(Stored().revision, 1u);
  // The engine decided each from one event; folding the whole application decides the same.
  auto events = ledger_->ReadStream(kApp);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(EncodeApplication(Stored()), EncodeApplication(FoldStream(*events)));
  const auto inline_bytes = Dump();
  engine_->Detach();
  Engine rebuilt(*ledger_);
  ASSERT_TRUE(rebuilt.Rebuild().ok());
  EXPECT_TRUE(Dump() == inline_bytes);
}

// A contract entered after the connection but dated before it settles connected_without_contract
// (application_test.cc); a correction dating that contract after the connection makes it a late
// contract again, and the KPI table follows each step: contract signing in March 0 of 1, then
// 1 of 1, then 0 of 1 (the settlement was folded at the old revision and no longer counts).
// Inline folding, a rebuild and the in-memory replay of the KPI buckets agree.
TEST_F(CorrectionProjectionTest, ASettledViolationFollowsTheCorrectionsOfItsLateFact) {
  constexpr char kOther[] = "app/XS-2026-000124";
  int sequence = 0;
  auto add = [&](const std::string& type, const std::string& date, json data) {
    Append({{"stream", kOther},
            {"type", type},
            {"event_id", "late-" + std::to_string(++sequence)},
            {"occurred_at", date + "T10:00:00+08:00"},
            {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
            {"data", std::move(data)}});
    return ledger_->Head();
  };
  add("ApplicationAccepted", "2026-03-02", kResidentialAccepted);
  add("SchemeReplied", "2026-03-03", {{"scheme", "0.4kV"}});
  add("FeesSettled", "2026-03-04", {{"amount_cny", 100}});
  const uint64_t connected = add("MeterConnected", "2026-03-10", {{"meter_id", "M-9"}});
  auto signing = [this] {
    auto states = engine_->KpiStates();
    EXPECT_TRUE(states.ok());
    json table =
        KpiTable(*states, "2026-03", std::string("KM.XS"), calendar_, profile_, {}, kNowUs);
    for (const json& kpi : table["kpis"]) {
      if (kpi["id"] == "contract_signing")
        return std::make_pair(kpi["numerator"], kpi["denominator"]);
    }
    ADD_FAILURE() << "no contract_signing in " << table.dump();
    return std::make_pair(json(), json());
  };
  EXPECT_EQ(signing(), std::make_pair(json(0), json(1)));

  const uint64_t contract = add("ContractSigned", "2026-03-06", {{"contract_id", "HT-9"}});
  auto stored = engine_->Application(kOther);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  ASSERT_EQ((*stored)->settled.size(), 1u);
  EXPECT_EQ((*stored)->settled[0].violation.position, connected);
  EXPECT_EQ((*stored)->settled[0].by_position, contract);
  EXPECT_EQ(signing(), std::make_pair(json(1), json(1)));

  now_us_ += 1'000'000;
  Append({{"stream", kOther},
          {"type", "Corrected"},
          {"event_id", "late-fix"},
          {"occurred_at", "2026-09-21T10:00:00+08:00"},
          {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
          {"data",
           {{"corrects_position", contract},
            {"reason", "按合同原件更正日期"},
            {"fields", {{"occurred_at", "2026-03-12T10:00:00+08:00"}}}}}});
  stored = engine_->Application(kOther);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->settled.empty());
  ASSERT_EQ((*stored)->violations.size(), 1u);
  EXPECT_EQ((*stored)->violations[0].rule, "connected_without_contract");
  EXPECT_EQ(signing(), std::make_pair(json(0), json(1)));

  // The buckets as stored (split) equal the whole buckets of an in-memory replay.
  auto split = engine_->KpiStates();
  auto replayed = KpiStatesAt(*ledger_, ledger_->Head());
  ASSERT_TRUE(split.ok() && replayed.ok());
  std::map<std::string, KpiState> by_key;
  for (const KpiState& state : *replayed) by_key[KeyOf(state)] = state;
  for (const KpiState& state : *split) EXPECT_EQ(by_key[KeyOf(state)], state) << KeyOf(state);
  const auto inline_bytes = Dump();
  engine_->Detach();
  Engine rebuilt(*ledger_);
  ASSERT_TRUE(rebuilt.Rebuild().ok());
  EXPECT_TRUE(Dump() == inline_bytes);
}

}  // namespace
}  // namespace gridledger::projections
