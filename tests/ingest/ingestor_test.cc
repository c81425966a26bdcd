// Goal: the Ingestor applies the workflow rules at the front door — invalid events are refused
// with their rule and nothing is stored, violations are stored and reported, retries are answered
// as duplicates even when the rules would now refuse the event, and concurrent writers to one
// application never get an event judged on stale facts.
// Method: a real ledger in a temp dir; events built from the contract's JSON.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <tuple>
#include <vector>

#include "ingest/event_codec.h"
#include "ingest/ingestor.h"
#include "support/temp_dir.h"

namespace gridledger::ingest {
namespace {

std::string Json(const std::string& id, const std::string& type, const std::string& data,
                 const std::string& stream = "app/KM-1") {
  return R"({"stream":")" + stream + R"(","type":")" + type + R"(","event_id":")" + id +
         R"(","occurred_at":"2026-03-02T09:15:00+08:00",)" +
         R"("actor":{"id":"S1","role":"clerk","org":"KM.XS"},"data":)" + data + "}";
}

// `json` (from Json()) occurring on `date` ("YYYY-MM-DD") instead of 2026-03-02.
std::string At(std::string json, const std::string& date) {
  json.replace(json.find("2026-03-02T"), 10, date);
  return json;
}

const std::string kAccepted =
    R"({"customer_id":"C1","customer_name":"甲","customer_class":"lv_nonresidential",)"
    R"("business":"new_install","voltage_kv":0.4,"capacity_kva":80,"channel":"counter",)"
    R"("important":false,"three_zero":false})";

domain::ClientEvent Decode(const std::string& json) {
  auto decoded = domain::DecodeClientEvent(json);
  EXPECT_TRUE(std::holds_alternative<domain::ClientEvent>(decoded)) << json;
  return std::get<domain::ClientEvent>(decoded);
}

class IngestorTest : public ::testing::Test {
 protected:
  void SetUp() override { ledger_ = std::move(ledger::Ledger::Open(dir_.str())).value(); }
  std::variant<IngestOutcome, IngestError> Ingest(const std::string& json) {
    Ingestor ingestor(*ledger_);
    return ingestor.Append(Decode(json));
  }
  // The rule an event is refused by (its status is kInvalid), or "(stored)".
  std::string RuleOf(const std::string& json) {
    auto refused = Ingest(json);
    if (!std::holds_alternative<IngestError>(refused)) return "(stored)";
    const IngestError& error = std::get<IngestError>(refused);
    EXPECT_EQ(error.status.code(), ledger::Code::kInvalid) << json;
    return error.rule ? error.rule->rule : error.status.ToString();
  }
  testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
};

TEST_F(IngestorTest, InvalidEventIsRefusedWithItsRuleAndNothingIsStored) {
  auto before_accept = Ingest(Json("e1", "SchemeReplied", R"({"scheme":"s"})"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(before_accept));
  EXPECT_EQ(std::get<IngestError>(before_accept).rule->rule, "not_accepted");
  EXPECT_EQ(ledger_->Head(), 0u);

  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  auto result_without_request =
      Ingest(Json("e2", "CompletionInspected", R"({"result":"pass","defects":[]})"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(result_without_request));
  const IngestError& error = std::get<IngestError>(result_without_request);
  EXPECT_EQ(error.status.code(), ledger::Code::kInvalid);
  EXPECT_EQ(error.rule->rule, "result_without_request");
  EXPECT_EQ(ledger_->Head(), 1u);
}

TEST_F(IngestorTest, ViolationIsStoredAndReported) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  auto connected = Ingest(Json("m", "MeterConnected", R"({"meter_id":"M1"})"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(connected));
  const auto& outcome = std::get<IngestOutcome>(connected);
  EXPECT_EQ(outcome.appended.position, 2u);
  std::vector<std::string> rules;
  for (const auto& violation : outcome.violations) rules.push_back(violation.rule);
  EXPECT_NE(std::find(rules.begin(), rules.end(), "connected_without_contract"), rules.end());
  EXPECT_EQ(ledger_->Head(), 2u);
}

TEST_F(IngestorTest, RetryIsADuplicateEvenWhenTheRulesWouldNowRefuseIt) {
  std::string accepted = Json("a", "ApplicationAccepted", kAccepted);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(Ingest(accepted)));
  auto retry = Ingest(accepted);  // a second ApplicationAccepted would be already_accepted
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(retry));
  EXPECT_TRUE(std::get<IngestOutcome>(retry).appended.duplicate);
  EXPECT_EQ(std::get<IngestOutcome>(retry).appended.position, 1u);
}

// A client that lost the answer to an append retries it; it must get the original answer, the
// violations it was stored with included — also after later events changed the application.
TEST_F(IngestorTest, RetryIsAnsweredWithTheOriginalViolations) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  const std::string connected = Json("m", "MeterConnected", R"({"meter_id":"M1"})");
  auto first = Ingest(connected);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(first));
  ASSERT_FALSE(std::get<IngestOutcome>(first).violations.empty());
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(Json("c", "ContractSigned", R"({"contract_id":"K1"})"))));

  auto retry = Ingest(connected);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(retry));
  const IngestOutcome& again = std::get<IngestOutcome>(retry);
  EXPECT_TRUE(again.appended.duplicate);
  EXPECT_EQ(again.appended.position, 2u);
  auto rules = [](const IngestOutcome& outcome) {
    std::vector<std::pair<std::string, std::string>> listed;
    for (const auto& violation : outcome.violations) {
      listed.emplace_back(violation.rule, violation.message);
    }
    return listed;
  };
  EXPECT_EQ(rules(again), rules(std::get<IngestOutcome>(first)));
  EXPECT_EQ(ledger_->Head(), 3u);

  // A retry of an event stored without violations still has none.
  auto accepted_again = Ingest(Json("a", "ApplicationAccepted", kAccepted));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(accepted_again));
  EXPECT_TRUE(std::get<IngestOutcome>(accepted_again).violations.empty());
}

// The answer to an append names the violations the projection flags: an archive dated before a
// connection that was recorded first is one (business dates decide).
TEST_F(IngestorTest, AnArchiveDatedBeforeARecordedConnectionIsAnsweredAsAViolation) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("m", "MeterConnected", R"({"meter_id":"M1"})"), "2026-03-10"))));
  auto archived = Ingest(At(Json("r", "Archived", "{}"), "2026-03-05"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(archived));
  const auto& violations = std::get<IngestOutcome>(archived).violations;
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].rule, "archived_before_connection");
  EXPECT_NE(violations[0].message.find("2026-03-10"), std::string::npos) << violations[0].message;
}

// A fact entered late but dated on or before the event whose violation said it was missing settles
// that violation (projections/application.h), and the answer says so, naming the event; a retry is
// answered the same; a fact that settles nothing (in time, or already settled) says nothing.
TEST_F(IngestorTest, ALateFactIsAnsweredWithTheViolationItSettles) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("m", "MeterConnected", R"({"meter_id":"M1"})"), "2026-03-10"))));
  const std::string contract =
      At(Json("c", "ContractSigned", R"({"contract_id":"K1"})"), "2026-03-05");
  auto late = Ingest(contract);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(late));
  const auto& settles = std::get<IngestOutcome>(late).settles;
  ASSERT_EQ(settles.size(), 1u);
  EXPECT_EQ(settles[0].rule, "connected_without_contract");
  EXPECT_EQ(settles[0].position, 2u);
  EXPECT_NE(settles[0].message.find("2026-03-10"), std::string::npos) << settles[0].message;
  auto retry = Ingest(contract);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(retry));
  EXPECT_TRUE(std::get<IngestOutcome>(retry).appended.duplicate);
  ASSERT_EQ(std::get<IngestOutcome>(retry).settles.size(), 1u);
  EXPECT_EQ(std::get<IngestOutcome>(retry).settles[0].message, settles[0].message);
  auto again = Ingest(At(Json("c2", "ContractSigned", R"({"contract_id":"K2"})"), "2026-03-04"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(again));
  EXPECT_TRUE(std::get<IngestOutcome>(again).settles.empty());
  // Fees dated after the connection settle nothing.
  auto fees = Ingest(At(Json("f", "FeesSettled", R"({"amount_cny":100})"), "2026-03-11"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(fees));
  EXPECT_TRUE(std::get<IngestOutcome>(fees).settles.empty());
  EXPECT_EQ(ledger_->Head(), 5u);
}

// A resume dated before the pause it would end began is no resume of it: refused, nothing stored.
TEST_F(IngestorTest, AResumeDatedBeforeItsPauseIsRefused) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("p", "ClockPaused", R"({"reason":"land permit"})"), "2026-03-18"))));
  auto early = Ingest(At(Json("r", "ClockResumed", "{}"), "2026-03-13"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(early));
  ASSERT_TRUE(std::get<IngestError>(early).rule.has_value());
  EXPECT_EQ(std::get<IngestError>(early).rule->rule, "resume_before_pause");
  EXPECT_EQ(ledger_->Head(), 2u);
  // The same day as the pause is fine.
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("r2", "ClockResumed", "{}"), "2026-03-18"))));
}

// An inspection dated before the report it answers would end its clock before it starts (and
// score as met): refused, naming its date as the field, nothing stored.
TEST_F(IngestorTest, AResultDatedBeforeItsRequestIsRefused) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("cr", "CompletionReported", "{}"), "2026-03-16"))));
  auto early = Ingest(At(Json("ci", "CompletionInspected", R"({"result":"pass"})"), "2026-03-13"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(early));
  ASSERT_TRUE(std::get<IngestError>(early).rule.has_value());
  EXPECT_EQ(std::get<IngestError>(early).rule->rule, "result_before_request");
  EXPECT_EQ(ErrorJson(std::get<IngestError>(early).status, *std::get<IngestError>(early).rule)
                .value("field", ""),
            "occurred_at");
  EXPECT_EQ(ledger_->Head(), 2u);
  // Reported again before the (failed) result was entered: the result answers the first report,
  // whose clock is the one running, so its date is judged against 03-16, not 03-20.
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("cr2", "CompletionReported", "{}"), "2026-03-20"))));
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("ci2", "CompletionInspected", R"({"result":"fail"})"), "2026-03-17"))));
}

// A contract entered after the scheme reply but dated before it is answered with the violation
// the application projection flags on it.
TEST_F(IngestorTest, AContractDatedBeforeARecordedSchemeReplyIsAViolation) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(At(Json("s", "SchemeReplied", R"({"scheme":"s"})"), "2026-03-05"))));
  auto contract = Ingest(At(Json("c", "ContractSigned", R"({"contract_id":"K1"})"), "2026-03-04"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(contract));
  const auto& violations = std::get<IngestOutcome>(contract).violations;
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].rule, "contract_before_scheme_reply");
}

TEST_F(IngestorTest, StaleExpectedVersionIsAConflictBeforeAnyJudgement) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  domain::ClientEvent event = Decode(Json("s", "SchemeReplied", R"({"scheme":"s"})"));
  event.expected_version = ledger::kNoStream;
  Ingestor ingestor(*ledger_);
  auto result = ingestor.Append(std::move(event));
  ASSERT_TRUE(std::holds_alternative<IngestError>(result));
  EXPECT_EQ(std::get<IngestError>(result).status.code(), ledger::Code::kVersionConflict);
  EXPECT_EQ(std::get<IngestError>(result).status.current_version(), 0);
}

// Who may record an event decides who may correct it: a clerk cannot turn the inspection that
// judged her work, or the director's urge, into another by a Corrected (ingest/auth.cc); the roles
// that record them can, and a clerk corrects her own steps.
TEST_F(IngestorTest, OnlyARoleThatMayRecordAnEventCorrectsIt) {
  const Principal clerk{"S1", Role::kClerk, "KM.XS"};
  const Principal inspector{"I1", Role::kInspector, "KM.XS"};
  const Principal director{"D1", Role::kDirector, "KM.XS"};
  Ingestor ingestor(*ledger_);
  auto append = [&](const Principal& by, std::string json) {
    const std::string written = R"("id":"S1","role":"clerk","org":"KM.XS")";
    json.replace(json.find(written), written.size(),
                 R"("id":")" + by.id + R"(","role":")" + std::string(RoleName(by.role)) +
                     R"(","org":")" + by.org + R"(")");
    return ingestor.Append(Decode(json), &by);
  };
  auto correction = [](const std::string& id, int position, const std::string& fields) {
    return Json(id, "Corrected",
                R"({"corrects_position":)" + std::to_string(position) +
                    R"(,"reason":"entered wrongly","fields":)" + fields + "}");
  };
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      append(clerk, Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(append(clerk, Json("r", "CompletionReported", "{}"))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      append(inspector, Json("i", "CompletionInspected", R"({"result":"fail"})"))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(append(
      director,
      Json("u", "Urged", R"({"level":1,"to_org":"KM.XS","to_person":"S1","channel":"phone"})"))));
  for (const auto& [position, fields] :
       {std::pair{3, R"({"result":"pass"})"}, std::pair{4, R"({"to_person":"S2"})"}}) {
    auto refused = append(clerk, correction("c" + std::to_string(position), position, fields));
    ASSERT_TRUE(std::holds_alternative<IngestError>(refused)) << position;
    EXPECT_TRUE(std::get<IngestError>(refused).forbidden) << position;
    EXPECT_NE(std::get<IngestError>(refused).status.message().find("may not correct a "),
              std::string::npos)
        << std::get<IngestError>(refused).status.message();
  }
  EXPECT_EQ(ledger_->Head(), 4u);
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(
      append(inspector, correction("i3", 3, R"({"defects":["meter seal"]})"))));
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(
      append(director, correction("d4", 4, R"({"note":"by phone at 10:00"})"))));
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(
      append(clerk, correction("c2", 2, R"({"occurred_at":"2026-03-02T10:00:00+08:00"})"))));
  EXPECT_EQ(ledger_->Head(), 7u);
}

// An event with expected_version -1 is appended without reading its stream first; whatever the
// stored stream or event ids make of it must still be the ordinary answer.
class OpeningEventTest : public IngestorTest {
 protected:
  IngestAnswer Open(const std::string& json, const Principal& principal) {
    domain::ClientEvent event = Decode(json);
    event.expected_version = ledger::kNoStream;
    Ingestor ingestor(*ledger_);
    return ingestor.Append(std::move(event), &principal);
  }
  const Principal clerk_{"S1", Role::kClerk, "KM.XS"};
};

TEST_F(OpeningEventTest, OpensANewApplication) {
  auto opened = Open(Json("a", "ApplicationAccepted", kAccepted), clerk_);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(opened));
  EXPECT_EQ(std::get<IngestOutcome>(opened).appended.position, 1u);
  EXPECT_EQ(std::get<IngestOutcome>(opened).appended.version, 0u);
  EXPECT_FALSE(std::get<IngestOutcome>(opened).appended.duplicate);
}

TEST_F(OpeningEventTest, RetryIsADuplicateOfTheOriginal) {
  const std::string accepted = Json("a", "ApplicationAccepted", kAccepted);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(Open(accepted, clerk_)));
  auto retry = Open(accepted, clerk_);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(retry));
  EXPECT_TRUE(std::get<IngestOutcome>(retry).appended.duplicate);
  EXPECT_EQ(std::get<IngestOutcome>(retry).appended.position, 1u);
  EXPECT_EQ(ledger_->Head(), 1u);
}

TEST_F(OpeningEventTest, ExistingApplicationIsAConflict) {
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Open(Json("a", "ApplicationAccepted", kAccepted), clerk_)));
  auto second = Open(Json("b", "ApplicationAccepted", kAccepted), clerk_);
  ASSERT_TRUE(std::holds_alternative<IngestError>(second));
  EXPECT_EQ(std::get<IngestError>(second).status.code(), ledger::Code::kVersionConflict);
  EXPECT_EQ(std::get<IngestError>(second).status.current_version(), 0);
  EXPECT_EQ(ledger_->Head(), 1u);
}

TEST_F(OpeningEventTest, ExistingApplicationOfAnotherOrgIsForbiddenNotAConflict) {
  // Judged on no facts, this clerk of KM.YY may open app/KM-1; the stored application belongs to
  // KM.XS, and the ordinary answer (judged on the stored org) is forbidden.
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Open(Json("a", "ApplicationAccepted", kAccepted), clerk_)));
  std::string other_org = Json("b", "ApplicationAccepted", kAccepted);
  other_org.replace(other_org.find(R"("id":"S1")"), 9, R"("id":"S2")");
  other_org.replace(other_org.find("KM.XS"), 5, "KM.YY");
  auto refused = Open(other_org, Principal{"S2", Role::kClerk, "KM.YY"});
  ASSERT_TRUE(std::holds_alternative<IngestError>(refused));
  EXPECT_TRUE(std::get<IngestError>(refused).forbidden);
  EXPECT_EQ(ledger_->Head(), 1u);
}

// A report stream belongs to the org that opened it: another org's director cannot submit (late)
// or correct that org's report, which would fail its report KPIs.
TEST_F(IngestorTest, OnlyTheOrgThatOpenedAReportWritesToIt) {
  auto as = [](const std::string& id, const std::string& org, const std::string& type,
               const std::string& data) {
    std::string json = Json(id, type, data, "report/monthly/2026-03");
    const std::string clerk = R"("id":"S1","role":"clerk","org":"KM.XS")";
    json.replace(json.find(clerk), clerk.size(),
                 R"("id":"D-)" + org + R"(","role":"director","org":")" + org + R"(")");
    return Decode(json);
  };
  const Principal own{"D-KM.XS", Role::kDirector, "KM.XS"};
  const Principal other{"D-KM.PL", Role::kDirector, "KM.PL"};
  Ingestor ingestor(*ledger_);
  const std::string due = R"({"report_type":"monthly","period":"2026-03","due_date":"2026-04-05"})";
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      ingestor.Append(as("due", "KM.XS", "ReportDue", due), &own)));
  for (const char* type : {"ReportSubmitted", "ReportCorrected"}) {
    const std::string data =
        std::string(type) == "ReportCorrected" ? R"({"errors_found":1})" : "{}";
    auto refused = ingestor.Append(as(std::string("x-") + type, "KM.PL", type, data), &other);
    ASSERT_TRUE(std::holds_alternative<IngestError>(refused)) << type;
    EXPECT_TRUE(std::get<IngestError>(refused).forbidden) << type;
    EXPECT_NE(std::get<IngestError>(refused).status.message().find("own org's reports"),
              std::string::npos)
        << std::get<IngestError>(refused).status.message();
  }
  EXPECT_EQ(ledger_->Head(), 1u);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      ingestor.Append(as("sub", "KM.XS", "ReportSubmitted", "{}"), &own)));
  // A stream another org opened first is that org's.
  auto opened = ingestor.Append(
      [&] {
        domain::ClientEvent event = as("due-pl", "KM.PL", "ReportDue", due);
        event.stream = "report/monthly/2026-04";
        return event;
      }(),
      &other);
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(opened));
  domain::ClientEvent late = as("late", "KM.XS", "ReportSubmitted", "{}");
  late.stream = "report/monthly/2026-04";
  EXPECT_TRUE(std::holds_alternative<IngestError>(ingestor.Append(late, &own)));
  EXPECT_EQ(ledger_->Head(), 3u);
}

// A contract entered before the connection but dated after it was not signed before it: the
// connection is stored with the violation, as the application projection flags it.
TEST_F(IngestorTest, AContractDatedAfterTheConnectionIsAViolation) {
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(Json("a", "ApplicationAccepted",
                  R"({"customer_id":"C1","customer_name":"甲","customer_class":"residential",)"
                  R"("business":"new_install","voltage_kv":0.4,"capacity_kva":8,)"
                  R"("channel":"counter","important":false,"three_zero":false})"))));
  for (auto [id, type, data, date] :
       std::vector<std::tuple<const char*, const char*, const char*, const char*>>{
           {"b", "SchemeReplied", R"({"scheme":"s"})", "2026-03-03"},
           {"c", "FeesSettled", R"({"amount_cny":100})", "2026-03-04"},
           {"d", "ContractSigned", R"({"contract_id":"HT-1"})", "2026-03-20"}}) {
    ASSERT_TRUE(std::holds_alternative<IngestOutcome>(Ingest(At(Json(id, type, data), date))))
        << type;
  }
  auto connected = Ingest(At(Json("e", "MeterConnected", R"({"meter_id":"M-1"})"), "2026-03-10"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(connected));
  const auto& violations = std::get<IngestOutcome>(connected).violations;
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].rule, "connected_without_contract");
  EXPECT_NE(violations[0].message.find("2026-03-20"), std::string::npos) << violations[0].message;
}

// A correction fixes an event of its own application, so it must name one.
TEST_F(IngestorTest, ACorrectionMustNameAnEventOfItsOwnApplication) {
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(Json("a1", "ApplicationAccepted", kAccepted, "app/KM-1"))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(Json("b1", "ApplicationAccepted", kAccepted, "app/KM-2"))));
  auto correction = [](const std::string& id, uint64_t position) {
    return Json(id, "Corrected",
                R"({"corrects_position":)" + std::to_string(position) +
                    R"(,"reason":"typo","fields":{"capacity_kva":100}})",
                "app/KM-1");
  };
  for (uint64_t position : {uint64_t{2}, uint64_t{999999999}}) {  // app/KM-2's; none
    auto refused = Ingest(correction("c" + std::to_string(position), position));
    ASSERT_TRUE(std::holds_alternative<IngestError>(refused)) << position;
    ASSERT_TRUE(std::get<IngestError>(refused).rule.has_value());
    EXPECT_EQ(std::get<IngestError>(refused).rule->rule, "correction_target");
  }
  EXPECT_EQ(ledger_->Head(), 2u);
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(Ingest(correction("ok", 1))));
}

// The facts a judgement is made on are the events as corrected: after the business kind of the
// acceptance is corrected to a change, a change's step is valid and a new install's is not.
TEST_F(IngestorTest, JudgementsUseTheCorrectedFacts) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  const std::string executed = Json("x", "ChangeExecuted", R"({"summary":"name changed"})");
  auto before = Ingest(executed);
  ASSERT_TRUE(std::holds_alternative<IngestError>(before));
  EXPECT_EQ(std::get<IngestError>(before).rule->rule, "step_not_in_business");

  // A change names its kind: the acceptance as corrected would not pass the front door.
  auto kindless = Ingest(Json("c0", "Corrected",
                              R"({"corrects_position":1,"reason":"entered as new install",)"
                              R"("fields":{"business":"change"}})"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(kindless));
  EXPECT_EQ(std::get<IngestError>(kindless).rule->rule, "correction_value");
  EXPECT_EQ(ledger_->Head(), 1u);
  auto corrected = Ingest(Json("c", "Corrected",
                               R"({"corrects_position":1,"reason":"entered as new install",)"
                               R"("fields":{"business":"change","change_kind":"rename"}})"));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(corrected));
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(Ingest(executed)));
  auto scheme = Ingest(Json("s", "SchemeReplied", R"({"scheme":"s"})"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(scheme));
  EXPECT_EQ(std::get<IngestError>(scheme).rule->rule, "step_not_in_business");
  EXPECT_EQ(ledger_->Head(), 3u);
}

// A correction that would make a stored event impossible, or that names what cannot be
// corrected, is refused with its rule and nothing is stored.
TEST_F(IngestorTest, ACorrectionThatBreaksTheApplicationIsRefused) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
      Ingest(Json("s", "SchemeReplied", R"({"scheme":"s"})"))));
  auto rule_of = [this](const std::string& id, const std::string& fields) {
    return RuleOf(
        Json(id, "Corrected", R"({"corrects_position":1,"reason":"r","fields":)" + fields + "}"));
  };
  // SchemeReplied does not belong to a change.
  EXPECT_EQ(rule_of("c1", R"({"business":"change","change_kind":"rename"})"), "correction_invalid");
  EXPECT_EQ(rule_of("c2", R"({"meter_id":"M1"})"), "correction_field");
  EXPECT_EQ(rule_of("c3", R"({"customer_class":"villa"})"), "correction_value");
  auto of_correction = Ingest(
      Json("c4", "Corrected", R"({"corrects_position":2,"reason":"r","fields":{"scheme":"t"}})"));
  EXPECT_TRUE(std::holds_alternative<IngestOutcome>(of_correction));  // a SchemeReplied: fine
  EXPECT_EQ(rule_of("c5", R"({"capacity_kva":100})"), "(stored)");
  auto corrects_correction = Ingest(
      Json("c6", "Corrected", R"({"corrects_position":3,"reason":"r","fields":{"reason":"t"}})"));
  ASSERT_TRUE(std::holds_alternative<IngestError>(corrects_correction));
  EXPECT_EQ(std::get<IngestError>(corrects_correction).rule->rule, "correction_of_correction");
  EXPECT_EQ(ledger_->Head(), 4u);
}

// Nothing happens to an application before the day it was accepted: an event dated earlier is
// refused (its clocks would end before they start and count as met), and so is a correction that
// would date one so — of the event, or of the acceptance. The same day is fine.
TEST_F(IngestorTest, EventsDatedBeforeTheAcceptanceAreRefused) {
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  EXPECT_EQ(RuleOf(At(Json("s0", "SchemeReplied", R"({"scheme":"s"})"), "2026-03-01")),
            "before_acceptance");
  EXPECT_EQ(
      RuleOf(
          At(Json("d0", "DocumentReviewed",
                  R"({"reviewer":"S2","items":[{"item":"id_card","present":true,"correct":true}],)"
                  R"("conclusion":"pass","defects":[]})"),
             "2025-12-31")),
      "before_acceptance");
  EXPECT_EQ(ledger_->Head(), 1u);
  EXPECT_EQ(RuleOf(Json("s1", "SchemeReplied", R"({"scheme":"s"})")), "(stored)");  // same day
  auto correct = [](const std::string& id, int position, const std::string& fields) {
    return Json(id, "Corrected",
                R"({"corrects_position":)" + std::to_string(position) +
                    R"(,"reason":"wrong date","fields":)" + fields + "}");
  };
  EXPECT_EQ(RuleOf(correct("c1", 2, R"({"occurred_at":"2026-02-27T10:00:00+08:00"})")),
            "correction_invalid");
  EXPECT_EQ(RuleOf(correct("c2", 1, R"({"occurred_at":"2026-03-03T10:00:00+08:00"})")),
            "correction_invalid");
  EXPECT_EQ(ledger_->Head(), 2u);
  // An acceptance moved earlier is fine, and then so is a reply dated after the new date.
  EXPECT_EQ(RuleOf(correct("c3", 1, R"({"occurred_at":"2026-02-26T10:00:00+08:00"})")), "(stored)");
  EXPECT_EQ(RuleOf(At(Json("f", "FeesSettled", R"({"amount_cny":100})"), "2026-02-27")),
            "(stored)");
}

TEST_F(IngestorTest, EventsFromTheFutureAreRefused) {
  // The ledger's clock says 2026-03-01; the event claims 2026-03-02 09:15.
  Ingestor ingestor(*ledger_, [] { return int64_t{1'772'323'200'000'000}; });
  auto result = ingestor.Append(Decode(Json("a", "ApplicationAccepted", kAccepted)));
  ASSERT_TRUE(std::holds_alternative<IngestError>(result));
  EXPECT_EQ(std::get<IngestError>(result).rule->rule, "occurred_in_future");
  EXPECT_EQ(ledger_->Head(), 0u);
}

TEST_F(IngestorTest, ConcurrentPausesNeverStackOnOneApplication) {
  // Two ClockPaused in a row are invalid (pause_while_paused). Racing writers each judge on the
  // facts they read; the append carries that version, so exactly one pause wins per resume.
  ASSERT_TRUE(
      std::holds_alternative<IngestOutcome>(Ingest(Json("a", "ApplicationAccepted", kAccepted))));
  constexpr int kThreads = 8;
  std::atomic<int> paused{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Ingestor ingestor(*ledger_);
      auto result = ingestor.Append(
          Decode(Json("p" + std::to_string(t), "ClockPaused", R"({"reason":"customer asked"})")));
      if (std::holds_alternative<IngestOutcome>(result)) {
        ++paused;
      } else {
        EXPECT_EQ(std::get<IngestError>(result).rule->rule, "pause_while_paused");
        ++refused;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(paused.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(ledger_->Head(), 2u);
}

}  // namespace
}  // namespace gridledger::ingest
