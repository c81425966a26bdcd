// Goal: the staff-audit projection counts each staff member's actions by event type, lists their
// sensitive-data accesses with those lacking approval flagged as a 4.3.4 risk, gives training hours
// to the organizer and every attendee once, lists urges issued, and round-trips through Encode.
// Method: events built from contract JSON with domain::DecodeClientEvent; each is folded into the
// states named by StaffAuditKeysOf, as a runner would; counts are tallied by hand from the list.
#include "projections/staff_audit.h"

#include <map>
#include <string>
#include <variant>

#include <gtest/gtest.h>

#include "domain/event_json.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

class StaffAuditTest : public ::testing::Test {
 protected:
  void Add(const std::string& stream, const std::string& type, const std::string& actor_id,
           json data) {
    const json event = {{"stream", stream},
                        {"type", type},
                        {"event_id", "e" + std::to_string(++position_)},
                        {"occurred_at", "2026-03-10T10:00:00+08:00"},
                        {"actor", {{"id", actor_id}, {"role", "clerk"}, {"org", "KM.XS"}}},
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
    for (const std::string& key : StaffAuditKeysOf(record, actor_id)) {
      StaffAuditState& state = states_[key];
      state.staff_id = key.substr(std::string("staff-audit/").size());
      Fold(state, record, actor_id, nullptr);
    }
  }

  uint64_t position_ = 0;
  std::map<std::string, StaffAuditState> states_;
};

TEST_F(StaffAuditTest, CountsActionsAccessesTrainingAndUrges) {
  Add("app/A1", "ApplicationAccepted", "S1",
      {{"customer_id", "C1"},
       {"customer_name", "张三"},
       {"customer_class", "residential"},
       {"business", "new_install"},
       {"voltage_kv", 0.22},
       {"capacity_kva", 8},
       {"channel", "counter"},
       {"important", false},
       {"three_zero", false}});
  Add("app/A1", "SchemeReplied", "S1", {{"scheme", "s"}});
  Add("app/A1", "Urged", "S1",
      {{"level", 2}, {"to_org", "KM.XS.OPS"}, {"to_person", "W5"}, {"channel", "phone"}});
  Add("staff/S1", "SensitiveDataAccessed", "S1",
      {{"what", "customer C1 ID"}, {"approved_by", "D1"}});
  Add("staff/S1", "SensitiveDataAccessed", "S1", {{"what", "customer C2 phone"}});
  // Approved by nobody, and by the reader itself (spaced, in another case): neither is an
  // approval (4.3.4).
  Add("staff/S1", "SensitiveDataAccessed", "S1",
      {{"what", "customer C3 phone"}, {"approved_by", " "}});
  Add("staff/S1", "SensitiveDataAccessed", "S1",
      {{"what", "customer C4 phone"}, {"approved_by", "\u3000s1 "}});
  Add("staff/S9", "TrainingHeld", "S9",
      {{"topic", "保密"}, {"attendees", {"S1", "S9"}}, {"hours", 2}});

  const StaffAuditState& s1 = states_["staff-audit/S1"];
  EXPECT_EQ(KeyOf(s1), "staff-audit/S1");
  EXPECT_EQ(s1.actions_total, 7u);  // the TrainingHeld is S9's action, not S1's
  EXPECT_EQ(s1.actions_by_type.at("SensitiveDataAccessed"), 4u);
  EXPECT_EQ(s1.actions_by_type.at("Urged"), 1u);
  ASSERT_EQ(s1.accesses.size(), 4u);
  EXPECT_EQ(s1.accesses[0].approved_by, std::optional<std::string>("D1"));
  EXPECT_FALSE(s1.accesses[1].approved_by.has_value());
  ASSERT_EQ(s1.urges.size(), 1u);
  EXPECT_EQ(s1.urges[0].app, "app/A1");
  EXPECT_EQ(s1.urges[0].level, 2);
  EXPECT_DOUBLE_EQ(s1.training_hours, 2.0);
  EXPECT_FALSE(s1.trainings[0].organizer);

  const json shown = ToJson(s1);
  EXPECT_EQ(shown["unapproved_accesses"], 3);
  EXPECT_TRUE(shown["accesses"][0]["risk"].is_null());
  EXPECT_EQ(shown["accesses"][0]["approved"], true);
  for (int i : {1, 2, 3}) {
    EXPECT_EQ(shown["accesses"][i]["risk"], "4.3.4") << i;
    EXPECT_EQ(shown["accesses"][i]["approved"], false) << i;
  }
  EXPECT_EQ(shown["accesses"][3]["approved_by"], "\u3000s1 ");  // shown as given
  EXPECT_EQ(shown["urges_issued"], 1);

  // The organizer is also an attendee: the hours count once.
  const StaffAuditState& s9 = states_["staff-audit/S9"];
  EXPECT_EQ(s9.actions_total, 1u);
  ASSERT_EQ(s9.trainings.size(), 1u);
  EXPECT_TRUE(s9.trainings[0].organizer);
  EXPECT_DOUBLE_EQ(s9.training_hours, 2.0);
}

TEST_F(StaffAuditTest, TrainingTouchesOrganizerAndAttendeesOnce) {
  Add("staff/S9", "TrainingHeld", "S9",
      {{"topic", "t"}, {"attendees", {"S1", "S9", "S2"}}, {"hours", 1.5}});
  EXPECT_EQ(states_.size(), 3u);
  EXPECT_DOUBLE_EQ(states_["staff-audit/S2"].training_hours, 1.5);
  EXPECT_EQ(states_["staff-audit/S2"].actions_total, 0u);
}

TEST_F(StaffAuditTest, EncodeDecodeRoundTrips) {
  Add("staff/S1", "SensitiveDataAccessed", "S1", {{"what", "w"}});
  Add("staff/S9", "TrainingHeld", "S9", {{"topic", "t"}, {"attendees", {"S1"}}, {"hours", 0.5}});
  for (const auto& [key, state] : states_) {
    const std::string bytes = Encode(state);
    const std::optional<StaffAuditState> decoded = DecodeStaffAuditState(bytes);
    ASSERT_TRUE(decoded.has_value()) << key;
    EXPECT_EQ(*decoded, state) << key;
    EXPECT_EQ(Encode(*decoded), bytes);
  }
  EXPECT_FALSE(DecodeStaffAuditState("\xc1").has_value());
}

}  // namespace
}  // namespace gridledger::projections
