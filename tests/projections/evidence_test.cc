// Goal: the evidence projection lists, per application, the document reviews, site inspections and
// callbacks that touched it (work standard 7.2), keeps third-party surveys per survey stream, and
// computes coverage per period; states survive Encode/Decode unchanged, and the compact form the
// Engine caches encodes to the same bytes.
// Method: events built from contract JSON with domain::DecodeClientEvent, folded first into the
// application state and then into one EvidenceState per stream; coverage expectations are counted
// by hand from the events below.
#include "projections/evidence.h"

#include <deque>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "domain/event_json.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

class EvidenceTest : public ::testing::Test {
 protected:
  // `day` is "MM-DD" in 2026, 10:00 Shanghai time.
  void Add(const std::string& stream, const std::string& type, const std::string& day,
           json data = json::object(), const std::string& actor_id = "S1") {
    const json event = {{"stream", stream},
                        {"type", type},
                        {"event_id", "e" + std::to_string(++position_)},
                        {"occurred_at", "2026-" + day + "T10:00:00+08:00"},
                        {"actor", {{"id", actor_id}, {"role", "inspector"}, {"org", "KM.XS"}}},
                        {"data", std::move(data)}};
    auto decoded = domain::DecodeClientEvent(event);
    ASSERT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded))
        << std::get<domain::DecodeError>(decoded).message;
    const auto& client = std::get<domain::ClientEvent>(decoded);
    const EventRecord record{.position = position_,
                             .stream = stream,
                             .type = type,
                             .actor_id = actor_id,
                             .actor_org = "KM.XS",
                             .occurred_at_us = client.occurred_at_us,
                             .recorded_at_us = client.occurred_at_us,
                             .payload = client.payload};
    const ApplicationState* app = nullptr;
    if (stream.rfind("app/", 0) == 0) {
      Fold(apps_[stream], record);
      app = &apps_[stream];
    }
    Fold(states_[stream], record, actor_id, app);
    Fold(compact_[stream], record, actor_id, app);
  }

  void Residential(const std::string& app, const std::string& connected,
                   const std::string& archived) {
    Add(app, "ApplicationAccepted", "03-02",
        {{"customer_id", "C1"},
         {"customer_name", "张三"},
         {"customer_class", "residential"},
         {"business", "new_install"},
         {"voltage_kv", 0.22},
         {"capacity_kva", 8},
         {"channel", "online"},
         {"important", false},
         {"three_zero", false}});
    Add(app, "SchemeReplied", "03-03", {{"scheme", "s"}});
    Add(app, "FeesSettled", "03-03", {{"amount_cny", 10}});
    Add(app, "ContractSigned", "03-03", {{"contract_id", "HT"}});
    Add(app, "MeterConnected", connected, {{"meter_id", "M"}});
    if (!archived.empty()) Add(app, "Archived", archived);
  }

  std::vector<EvidenceState> All() const {
    std::vector<EvidenceState> out;
    for (const auto& [stream, state] : states_) out.push_back(state);
    return out;
  }

  uint64_t position_ = 0;
  std::map<std::string, ApplicationState> apps_;
  std::map<std::string, EvidenceState> states_;
  std::map<std::string, CompactEvidence> compact_;  // the same folds, as the Engine caches them
};

TEST_F(EvidenceTest, ListsTheEvidenceThatTouchedAnApplication) {
  Residential("app/A1", "03-05", "03-06");
  Add("app/A1", "DocumentReviewed", "03-03",
      {{"reviewer", "I1"},
       {"items",
        {{{"item", "id_card"}, {"present", true}, {"correct", true}},
         {{"item", "deed"}, {"present", false}, {"correct", false}},
         {{"item", "load_list"}, {"present", true}, {"correct", false}}}},
       {"conclusion", "fail"},
       {"defects", {"deed missing"}}},
      "I1");
  Add("app/A1", "SiteInspected", "03-05",
      {{"inspector", "I2"}, {"items", {"meter", "seal"}}, {"conclusion", "pass"}}, "I2");
  Add("app/A1", "CallbackMade", "03-09",
      {{"agent", "A7"},
       {"result", "reached"},
       {"satisfaction", "satisfied"},
       {"complaints", {"late"}},
       {"comment", "ok"}},
      "A7");
  const EvidenceState& state = states_["app/A1"];
  EXPECT_EQ(KeyOf(state), "evidence/app/A1");
  EXPECT_EQ(state.org, "KM.XS");
  EXPECT_EQ(state.connected->ToString(), "2026-03-05");
  EXPECT_EQ(state.archived->ToString(), "2026-03-06");
  ASSERT_EQ(state.document_reviews.size(), 1u);
  const EvidenceRecord& review = state.document_reviews[0];
  EXPECT_EQ(review.by, "I1");
  EXPECT_EQ(review.actor_id, "I1");
  EXPECT_EQ(review.conclusion, "fail");
  EXPECT_EQ(review.defects, std::vector<std::string>{"deed missing"});
  EXPECT_EQ(review.items, (std::vector<std::string>{"id_card", "deed", "load_list"}));
  EXPECT_EQ(review.items_missing, std::vector<std::string>{"deed"});
  EXPECT_EQ(review.items_incorrect, std::vector<std::string>{"load_list"});
  ASSERT_EQ(state.site_inspections.size(), 1u);
  EXPECT_EQ(state.site_inspections[0].items, (std::vector<std::string>{"meter", "seal"}));
  ASSERT_EQ(state.callbacks.size(), 1u);
  EXPECT_EQ(state.callbacks[0].conclusion, "reached");
  EXPECT_EQ(state.callbacks[0].satisfaction, "satisfied");
  EXPECT_EQ(state.callbacks[0].defects, std::vector<std::string>{"late"});
  const json shown = ToJson(state);
  EXPECT_EQ(shown["callbacks"][0]["occurred_at"], "2026-03-09T10:00:00+08:00");
}

TEST_F(EvidenceTest, CoverageAndSurveysPerPeriod) {
  // Archived in March: A1 (reviewed and inspected), A2 (nothing). Connected in March: A1, A2, A3;
  // only A1 was inspected and reached (A2: no answer).
  Residential("app/A1", "03-05", "03-06");
  Residential("app/A2", "03-05", "03-09");
  Residential("app/A3", "03-10", "");
  Residential("app/A4", "04-01", "04-02");  // April: outside March
  Add("app/A1", "DocumentReviewed", "03-03",
      {{"reviewer", "I1"}, {"items", json::array()}, {"conclusion", "pass"}});
  Add("app/A1", "SiteInspected", "03-05",
      {{"inspector", "I2"}, {"items", {"meter"}}, {"conclusion", "pass"}});
  Add("app/A1", "CallbackMade", "04-09",
      {{"agent", "A7"}, {"result", "reached"}, {"satisfaction", "basically_satisfied"}});
  Add("app/A2", "CallbackMade", "03-10", {{"agent", "A7"}, {"result", "no_answer"}});
  // A3 was reached the day before its connection (03-10): that callback covers nothing.
  Add("app/A3", "CallbackMade", "03-09",
      {{"agent", "A7"}, {"result", "reached"}, {"satisfaction", "satisfied"}});
  Add("survey/2026-Q1", "ThirdPartySurveyRecorded", "03-30",
      {{"agency", "某调查公司"},
       {"sample_size", 200},
       {"satisfaction_index", 91.5},
       {"issues", {"slow scheme reply"}}});
  Add("survey/2026-04", "ThirdPartySurveyRecorded", "04-30",
      {{"agency", "X"}, {"sample_size", 50}, {"satisfaction_index", 80}});

  const json coverage = EvidenceCoverage(All(), "2026-03", ReportOrgs{"KM.XS"});
  EXPECT_EQ(coverage["document_review"]["covered_ids"], json({"app/A1"}));
  EXPECT_EQ(coverage["document_review"]["missing_ids"], json({"app/A2"}));
  EXPECT_DOUBLE_EQ(coverage["document_review"]["value"].get<double>(), 0.5);
  // Site inspections over the applications connected in March (A1, A2, A3), as the KPI table's
  // supporting figure counts them.
  EXPECT_EQ(coverage["site_inspection"]["covered_ids"], json({"app/A1"}));
  EXPECT_EQ(coverage["site_inspection"]["missing_ids"], json({"app/A2", "app/A3"}));
  EXPECT_EQ(coverage["callback"]["covered_ids"], json({"app/A1"}));
  EXPECT_EQ(coverage["callback"]["missing_ids"], json({"app/A2", "app/A3"}));
  ASSERT_EQ(coverage["surveys"].size(), 1u);
  EXPECT_EQ(coverage["surveys"][0]["stream"], "survey/2026-Q1");
  EXPECT_EQ(coverage["surveys"][0]["sample_size"], 200);
  EXPECT_DOUBLE_EQ(coverage["surveys"][0]["satisfaction_index"].get<double>(), 91.5);

  const json other_org = EvidenceCoverage(All(), "2026-03", ReportOrgs{"KM.GD"});
  EXPECT_TRUE(other_org["document_review"]["value"].is_null());
  EXPECT_EQ(EvidenceCoverage(All(), "2026-Q2", ReportOrgs{})["surveys"].size(), 1u);
  EXPECT_EQ(EvidenceCoverage(All(), "March", ReportOrgs{})["error"], "bad_period");

  for (const EvidenceState& state : All()) {
    const std::optional<EvidenceState> decoded = DecodeEvidenceState(Encode(state));
    ASSERT_TRUE(decoded.has_value()) << state.stream;
    EXPECT_EQ(*decoded, state) << state.stream;
  }
  EXPECT_FALSE(DecodeEvidenceState("").has_value());
}

// The Engine keeps an application's evidence compact (items encoded as they are folded) and
// stores it from that form: the bytes must be those of the whole state, folded or reloaded.
TEST_F(EvidenceTest, CompactFormEncodesLikeTheWholeState) {
  Residential("app/A1", "03-05", "03-06");
  Add("app/A1", "DocumentReviewed", "03-03",
      {{"reviewer", "I1"},
       {"items", {{{"item", "deed"}, {"present", false}, {"correct", false}}}},
       {"conclusion", "fail"},
       {"defects", {"deed missing"}}},
      "I1");
  Add("app/A1", "SiteInspected", "03-05",
      {{"inspector", "I2"}, {"items", {"meter"}}, {"conclusion", "pass"}}, "I2");
  Add("app/A1", "CallbackMade", "03-09", {{"agent", "A7"}, {"result", "no_answer"}}, "A7");
  Add("app/A1", "CallbackMade", "03-10",
      {{"agent", "A7"}, {"result", "reached"}, {"satisfaction", "satisfied"}}, "A7");
  Residential("app/A2", "03-05", "");
  Add("survey/2026-Q1", "ThirdPartySurveyRecorded", "03-30",
      {{"agency", "X"}, {"sample_size", 50}, {"satisfaction_index", 80}, {"issues", {"slow"}}});
  ASSERT_EQ(compact_.size(), 3u);
  for (const auto& [stream, state] : states_) {
    SCOPED_TRACE(stream);
    std::string compact_bytes;
    AppendEncoded(compact_.at(stream), compact_bytes);
    EXPECT_EQ(compact_bytes, Encode(state));
    EXPECT_TRUE(compact_.at(stream).state.callbacks.empty());  // moved into the encoded lists
    std::optional<EvidenceState> decoded = DecodeEvidenceState(Encode(state));
    ASSERT_TRUE(decoded.has_value());
    std::string reloaded_bytes;
    AppendEncoded(Compact(std::move(*decoded)), reloaded_bytes);
    EXPECT_EQ(reloaded_bytes, Encode(state));
  }
}

TEST(EvidenceKeys, OnlyAppAndSurveyStreamsHaveEvidence) {
  EXPECT_EQ(EvidenceKey("app/KM-1"), "evidence/app/KM-1");
  EXPECT_EQ(EvidenceKey("survey/2026-03"), "evidence/survey/2026-03");
  EXPECT_FALSE(EvidenceKey("staff/S1").has_value());
}

}  // namespace
}  // namespace gridledger::projections
