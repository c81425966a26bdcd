// Goal: the workflow rules of domain/workflow.h — every invalid rule rejects with its rule id,
// every violation is flagged on an accepted event, and the skip paths (residential, three_zero),
// the failed-inspection loop, withdrawal and the change-of-use path behave as domain.md says.
// Method: build WorkflowEvents directly, run them through Judge() then Apply() as a front door
// would, and check verdicts and facts; payload decoding is checked on payloads encoded from the
// JSON contract by DecodeClientEvent.
#include "domain/workflow.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "domain/event_json.h"

namespace gridledger::domain {
namespace {

using T = AppEventType;

WorkflowEvent Ev(AppEventType type, bool passed = false) {
  WorkflowEvent event;
  event.type = type;
  event.passed = passed;
  return event;
}

WorkflowEvent Accepted(SlaCustomerClass customer_class, Business business = Business::kNewInstall,
                       bool important = false, bool three_zero = false) {
  WorkflowEvent event = Ev(T::kApplicationAccepted);
  event.customer_class = customer_class;
  event.business = business;
  event.important = important;
  event.three_zero = three_zero;
  return event;
}

std::vector<std::string> Rules(const std::vector<RuleBreach>& breaches) {
  std::vector<std::string> rules;
  for (const RuleBreach& breach : breaches) rules.push_back(breach.rule);
  return rules;
}

// Judges and applies each event; every one must be valid. Returns all violation rule ids.
std::vector<std::string> Feed(WorkflowFacts& facts, std::initializer_list<WorkflowEvent> events) {
  std::vector<std::string> violations;
  for (const WorkflowEvent& event : events) {
    const Verdict verdict = Judge(facts, event);
    EXPECT_TRUE(verdict.valid()) << AppEventTypeName(event.type) << ": "
                                 << verdict.invalid->message;
    for (const std::string& rule : Rules(verdict.violations)) violations.push_back(rule);
    Apply(facts, event);
  }
  return violations;
}

std::string InvalidRule(const WorkflowFacts& facts, const WorkflowEvent& event) {
  const Verdict verdict = Judge(facts, event);
  if (verdict.valid()) return "";
  EXPECT_NE(verdict.invalid->message.find(verdict.invalid->rule), std::string::npos)
      << "the message names the rule: " << verdict.invalid->message;
  return verdict.invalid->rule;
}

std::vector<std::string> ViolationsOf(const WorkflowFacts& facts, const WorkflowEvent& event) {
  const Verdict verdict = Judge(facts, event);
  EXPECT_TRUE(verdict.valid());
  for (const RuleBreach& breach : verdict.violations) {
    EXPECT_NE(breach.message.find(breach.rule), std::string::npos) << breach.message;
  }
  return Rules(verdict.violations);
}

WorkflowFacts HvSingleReadyToConnect() {
  WorkflowFacts facts;
  Feed(facts,
       {Accepted(SlaCustomerClass::kHvSingle), Ev(T::kSurveyDispatched), Ev(T::kSiteSurveyed),
        Ev(T::kSchemeReplied), Ev(T::kFeesSettled), Ev(T::kCompletionReported),
        Ev(T::kCompletionInspected, true), Ev(T::kContractSigned)});
  return facts;
}

TEST(WorkflowTypes, NamesRoundTrip) {
  for (int i = 0; i < kAppEventTypeCount; ++i) {
    const auto type = static_cast<AppEventType>(i);
    EXPECT_EQ(ParseAppEventType(AppEventTypeName(type)), type);
  }
  EXPECT_FALSE(ParseAppEventType("ReportDue").has_value());
  EXPECT_FALSE(ParseAppEventType("Nonsense").has_value());
}

TEST(WorkflowInvalid, AnyEventBeforeAcceptanceIsNotAccepted) {
  const WorkflowFacts fresh;
  for (int i = 1; i < kAppEventTypeCount; ++i) {
    EXPECT_EQ(InvalidRule(fresh, Ev(static_cast<AppEventType>(i))), "not_accepted")
        << AppEventTypeName(static_cast<AppEventType>(i));
  }
  EXPECT_EQ(InvalidRule(fresh, Accepted(SlaCustomerClass::kHvSingle)), "");
}

TEST(WorkflowInvalid, SecondAcceptanceIsAlreadyAccepted) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kResidential)});
  EXPECT_EQ(InvalidRule(facts, Accepted(SlaCustomerClass::kResidential)), "already_accepted");
}

TEST(WorkflowInvalid, WorkflowAfterArchiveIsAfterCloseButEvidenceStaysAllowed) {
  WorkflowFacts facts = HvSingleReadyToConnect();
  Feed(facts, {Ev(T::kMeterConnected), Ev(T::kArchived)});
  for (T type : {T::kSchemeReplied, T::kUrged, T::kReassigned, T::kWithdrawn, T::kClockPaused,
                 T::kArchived, T::kMeterConnected, T::kDesignSubmitted}) {
    EXPECT_EQ(InvalidRule(facts, Ev(type)), "after_close") << AppEventTypeName(type);
  }
  for (T type : {T::kDocumentReviewed, T::kSiteInspected, T::kCallbackMade, T::kCorrected}) {
    EXPECT_EQ(InvalidRule(facts, Ev(type)), "") << AppEventTypeName(type);
  }
  EXPECT_TRUE(ViolationsOf(facts, Ev(T::kCallbackMade)).empty());
}

TEST(WorkflowInvalid, ResultWithoutRequest) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kHvDual, Business::kNewInstall, true)});
  EXPECT_EQ(InvalidRule(facts, Ev(T::kDesignReviewed, true)), "result_without_request");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kMidInspected, true)), "result_without_request");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kCompletionInspected, true)), "result_without_request");
  // A result closes its request: a second result needs a new request.
  Feed(facts, {Ev(T::kDesignSubmitted), Ev(T::kDesignReviewed, false)});
  EXPECT_EQ(InvalidRule(facts, Ev(T::kDesignReviewed, true)), "result_without_request");
}

TEST(WorkflowInvalid, PauseAndResumeMustAlternate) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kLvNonResidential)});
  EXPECT_EQ(InvalidRule(facts, Ev(T::kClockResumed)), "resume_without_pause");
  Feed(facts, {Ev(T::kClockPaused)});
  EXPECT_TRUE(facts.paused);
  EXPECT_EQ(InvalidRule(facts, Ev(T::kClockPaused)), "pause_while_paused");
  Feed(facts, {Ev(T::kClockResumed)});
  EXPECT_FALSE(facts.paused);
  EXPECT_EQ(InvalidRule(facts, Ev(T::kClockResumed)), "resume_without_pause");
}

// The date rules: what Judge cannot see. A result dated before the request it answers, a resume
// before its pause, anything before the acceptance day; the same day is never before.
TEST(WorkflowInvalid, DateRules) {
  const auto day = [](const char* text) { return *Date::Parse(text); };
  const auto rule = [](const DatedFacts& dated, AppEventType type, Date on) {
    const std::optional<RuleBreach> breach = JudgeDates(dated, type, on);
    return breach ? breach->rule : std::string();
  };
  DatedFacts dated;
  FoldDates(dated, T::kApplicationAccepted, day("2026-03-02"));
  EXPECT_EQ(rule(dated, T::kSchemeReplied, day("2026-03-01")), "before_acceptance");
  EXPECT_EQ(rule(dated, T::kCorrected, day("2026-03-01")), "");
  EXPECT_EQ(rule(dated, T::kSchemeReplied, day("2026-03-02")), "");
  const std::pair<AppEventType, AppEventType> pairs[] = {
      {T::kDesignSubmitted, T::kDesignReviewed},
      {T::kMidInspectionRequested, T::kMidInspected},
      {T::kCompletionReported, T::kCompletionInspected}};
  for (const auto& [request, result] : pairs) {
    FoldDates(dated, request, day("2026-03-16"));
    EXPECT_EQ(rule(dated, result, day("2026-03-13")), "result_before_request")
        << AppEventTypeName(result);
    EXPECT_EQ(rule(dated, result, day("2026-03-16")), "") << AppEventTypeName(result);
  }
  // A request made again after a failed result: the next result answers the new one.
  FoldDates(dated, T::kCompletionInspected, day("2026-03-17"));
  FoldDates(dated, T::kCompletionReported, day("2026-03-25"));
  EXPECT_EQ(rule(dated, T::kCompletionInspected, day("2026-03-20")), "result_before_request");
  const std::optional<RuleBreach> breach =
      JudgeDates(dated, T::kCompletionInspected, day("2026-03-20"));
  EXPECT_NE(breach->message.find("CompletionReported it answers on 2026-03-25"), std::string::npos)
      << breach->message;
  // Reported again while that one is open: nothing restarts, the result answers the first (its
  // clock runs from 03-25), so a result on 03-26 is after its request.
  FoldDates(dated, T::kCompletionReported, day("2026-03-30"));
  EXPECT_EQ(rule(dated, T::kCompletionInspected, day("2026-03-26")), "");
  EXPECT_EQ(rule(dated, T::kCompletionInspected, day("2026-03-24")), "result_before_request");
  FoldDates(dated, T::kClockPaused, day("2026-03-18"));
  EXPECT_EQ(rule(dated, T::kClockResumed, day("2026-03-17")), "resume_before_pause");
  EXPECT_EQ(rule(dated, T::kClockResumed, day("2026-03-18")), "");
}

TEST(WorkflowInvalid, StepNotInBusiness) {
  WorkflowFacts install;
  Feed(install, {Accepted(SlaCustomerClass::kHvSingle, Business::kCapacityIncrease)});
  EXPECT_EQ(InvalidRule(install, Ev(T::kChangeExecuted)), "step_not_in_business");

  WorkflowFacts change;
  Feed(change, {Accepted(SlaCustomerClass::kHvSingle, Business::kChange)});
  for (T type :
       {T::kSchemeReplied, T::kDesignSubmitted, T::kDesignReviewed, T::kMidInspectionRequested,
        T::kMidInspected, T::kCompletionReported, T::kCompletionInspected, T::kMeterConnected}) {
    EXPECT_EQ(InvalidRule(change, Ev(type)), "step_not_in_business") << AppEventTypeName(type);
  }
}

TEST(WorkflowInvalid, UndecodablePayloadAndForeignTypes) {
  const WorkflowFacts fresh;
  EXPECT_EQ(Judge(fresh, "ReportDue", "").invalid->rule, "not_app_event");
  EXPECT_EQ(Judge(fresh, "NoSuchType", "").invalid->rule, "not_app_event");
  EXPECT_EQ(Judge(fresh, "ApplicationAccepted", "").invalid->rule, "bad_payload");
  EXPECT_EQ(Judge(fresh, "ApplicationAccepted", "1234567").invalid->rule, "bad_payload");
  // Eight words of 0xff: a far pointer to nowhere.
  EXPECT_EQ(Judge(fresh, "ApplicationAccepted", std::string(64, '\xff')).invalid->rule,
            "bad_payload");
}

TEST(WorkflowViolation, ConnectionWithoutItsPrerequisites) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kHvSingle, Business::kNewInstall, /*important=*/true)});
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kMeterConnected)),
            (std::vector<std::string>{
                "connected_without_contract", "connected_before_completion_passed",
                "connected_before_fees", "connected_before_scheme_reply",
                "connected_without_design_review", "connected_without_mid_inspection"}));
}

TEST(WorkflowViolation, EachConnectionPrerequisiteAlone) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kLvNonResidential), Ev(T::kSchemeReplied),
               Ev(T::kFeesSettled), Ev(T::kCompletionReported), Ev(T::kCompletionInspected, true)});
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kMeterConnected)),
            std::vector<std::string>{"connected_without_contract"});

  WorkflowFacts no_fees;
  Feed(no_fees,
       {Accepted(SlaCustomerClass::kLvNonResidential), Ev(T::kSchemeReplied),
        Ev(T::kContractSigned), Ev(T::kCompletionReported), Ev(T::kCompletionInspected, true)});
  EXPECT_EQ(ViolationsOf(no_fees, Ev(T::kMeterConnected)),
            std::vector<std::string>{"connected_before_fees"});

  WorkflowFacts failed;
  Feed(failed,
       {Accepted(SlaCustomerClass::kHvDual), Ev(T::kSchemeReplied), Ev(T::kFeesSettled),
        Ev(T::kContractSigned), Ev(T::kCompletionReported), Ev(T::kCompletionInspected, false)});
  EXPECT_EQ(ViolationsOf(failed, Ev(T::kMeterConnected)),
            std::vector<std::string>{"connected_before_completion_passed"});
}

TEST(WorkflowViolation, ContractBeforeSchemeReply) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kHvSingle)});
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kContractSigned)),
            std::vector<std::string>{"contract_before_scheme_reply"});
}

TEST(WorkflowViolation, ArchiveAndCallbackBeforeConnection) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kResidential)});
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kCallbackMade)),
            std::vector<std::string>{"callback_before_connection"});
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kArchived)),
            std::vector<std::string>{"archived_before_connection"});

  WorkflowFacts change;
  Feed(change, {Accepted(SlaCustomerClass::kHvSingle, Business::kChange)});
  EXPECT_EQ(ViolationsOf(change, Ev(T::kCallbackMade)),
            std::vector<std::string>{"callback_before_change_executed"});
  EXPECT_EQ(ViolationsOf(change, Ev(T::kArchived)),
            std::vector<std::string>{"archived_before_change_executed"});
}

TEST(WorkflowPath, ImportantHvFullChainHasNoViolation) {
  WorkflowFacts facts;
  const auto violations = Feed(
      facts,
      {Accepted(SlaCustomerClass::kHvDual, Business::kNewInstall, true), Ev(T::kSurveyDispatched),
       Ev(T::kSiteSurveyed), Ev(T::kSchemeReplied), Ev(T::kFeesSettled), Ev(T::kDesignSubmitted),
       Ev(T::kDesignReviewed, true), Ev(T::kMidInspectionRequested), Ev(T::kMidInspected, true),
       Ev(T::kCompletionReported), Ev(T::kCompletionInspected, true), Ev(T::kContractSigned),
       Ev(T::kMeterConnected), Ev(T::kArchived), Ev(T::kCallbackMade)});
  EXPECT_TRUE(violations.empty());
  EXPECT_EQ(StageName(facts), "archived");
}

TEST(WorkflowPath, NotImportantHvMayOmitDesignAndMidInspection) {
  WorkflowFacts facts = HvSingleReadyToConnect();
  EXPECT_FALSE(DesignReviewRequired(facts));
  EXPECT_TRUE(ViolationsOf(facts, Ev(T::kMeterConnected)).empty());
}

TEST(WorkflowPath, ResidentialSkipsSurveyAndCompletionInspection) {
  WorkflowFacts facts;
  const auto violations = Feed(
      facts, {Accepted(SlaCustomerClass::kResidential), Ev(T::kSchemeReplied), Ev(T::kFeesSettled),
              Ev(T::kContractSigned), Ev(T::kMeterConnected), Ev(T::kArchived)});
  EXPECT_TRUE(violations.empty());
  EXPECT_FALSE(SurveyApplies(facts));
  EXPECT_FALSE(CompletionInspectionRequired(facts));
  EXPECT_TRUE(FeesApply(facts));
}

TEST(WorkflowPath, ThreeZeroIsAcceptThenConnect) {
  WorkflowFacts facts;
  const auto violations = Feed(
      facts,
      {Accepted(SlaCustomerClass::kLvNonResidential, Business::kNewInstall, false, true),
       Ev(T::kContractSigned), Ev(T::kMeterConnected), Ev(T::kArchived), Ev(T::kCallbackMade)});
  EXPECT_TRUE(violations.empty());
  EXPECT_FALSE(SchemeReplyApplies(facts));
  EXPECT_FALSE(FeesApply(facts));
  EXPECT_FALSE(CompletionInspectionRequired(facts));
  EXPECT_FALSE(SurveyApplies(facts));
}

// "When fees apply", "with customer works": an application may say that neither does, and then
// its connection waits for neither; a three_zero job may say that fees apply after all.
TEST(WorkflowPath, DeclaredFeeFreeAndNoCustomerWorksAreNotRequired) {
  WorkflowEvent fee_free = Accepted(SlaCustomerClass::kResidential);
  fee_free.fees_apply = false;
  WorkflowFacts residential;
  EXPECT_TRUE(Feed(residential, {fee_free, Ev(T::kSchemeReplied), Ev(T::kContractSigned),
                                 Ev(T::kMeterConnected), Ev(T::kArchived)})
                  .empty());
  EXPECT_FALSE(FeesApply(residential));

  WorkflowEvent no_works = Accepted(SlaCustomerClass::kLvNonResidential);
  no_works.customer_works = false;
  WorkflowFacts shop;
  EXPECT_TRUE(Feed(shop, {no_works, Ev(T::kSchemeReplied), Ev(T::kFeesSettled),
                          Ev(T::kContractSigned), Ev(T::kMeterConnected)})
                  .empty());
  EXPECT_FALSE(CompletionInspectionRequired(shop));

  WorkflowEvent charged = Accepted(SlaCustomerClass::kLvNonResidential, Business::kNewInstall,
                                   false, /*three_zero=*/true);
  charged.fees_apply = true;
  WorkflowFacts three_zero;
  EXPECT_EQ(Feed(three_zero, {charged, Ev(T::kContractSigned), Ev(T::kMeterConnected)}),
            std::vector<std::string>{"connected_before_fees"});

  // Not declared: the defaults of domain.md's table.
  WorkflowFacts plain;
  Feed(plain, {Accepted(SlaCustomerClass::kLvNonResidential)});
  EXPECT_TRUE(FeesApply(plain));
  EXPECT_TRUE(CompletionInspectionRequired(plain));
}

TEST(WorkflowPath, FailedInspectionSendsTheStageBack) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kHvSingle), Ev(T::kSchemeReplied), Ev(T::kFeesSettled),
               Ev(T::kContractSigned), Ev(T::kCompletionReported)});
  EXPECT_EQ(StageName(facts), "completion_inspection");
  Feed(facts, {Ev(T::kCompletionInspected, false)});
  EXPECT_FALSE(facts.completion_pending);
  EXPECT_FALSE(facts.completion_passed);
  EXPECT_EQ(InvalidRule(facts, Ev(T::kCompletionInspected, true)), "result_without_request");
  EXPECT_EQ(ViolationsOf(facts, Ev(T::kMeterConnected)),
            std::vector<std::string>{"connected_before_completion_passed"});
  Feed(facts, {Ev(T::kCompletionReported), Ev(T::kCompletionInspected, true)});
  EXPECT_TRUE(facts.completion_passed);
  EXPECT_EQ(StageName(facts), "completion_passed");
  EXPECT_TRUE(ViolationsOf(facts, Ev(T::kMeterConnected)).empty());
}

TEST(WorkflowPath, WithdrawalClosesTheApplication) {
  WorkflowFacts facts;
  Feed(facts, {Accepted(SlaCustomerClass::kHvSingle), Ev(T::kSchemeReplied), Ev(T::kWithdrawn)});
  EXPECT_TRUE(facts.closed());
  EXPECT_EQ(StageName(facts), "withdrawn");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kArchived)), "after_close");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kUrged)), "after_close");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kSiteInspected)), "");
  EXPECT_EQ(InvalidRule(facts, Ev(T::kCorrected)), "");
}

TEST(WorkflowPath, ChangeOfUse) {
  WorkflowFacts facts;
  const auto violations =
      Feed(facts, {Accepted(SlaCustomerClass::kHvSingle, Business::kChange), Ev(T::kSiteSurveyed),
                   Ev(T::kChangeExecuted), Ev(T::kContractSigned), Ev(T::kArchived),
                   Ev(T::kCallbackMade)});
  EXPECT_TRUE(violations.empty());
  EXPECT_FALSE(FeesApply(facts));
  EXPECT_EQ(StageName(facts), "archived");

  WorkflowFacts minimal;  // survey and contract are optional for a change
  EXPECT_TRUE(Feed(minimal, {Accepted(SlaCustomerClass::kResidential, Business::kChange),
                             Ev(T::kChangeExecuted), Ev(T::kArchived)})
                  .empty());
}

TEST(WorkflowStage, FollowsTheFurthestMilestone) {
  WorkflowFacts facts;
  EXPECT_EQ(StageName(facts), "not_accepted");
  Feed(facts, {Accepted(SlaCustomerClass::kHvSingle, Business::kNewInstall, true)});
  EXPECT_EQ(StageName(facts), "accepted");
  Feed(facts, {Ev(T::kSurveyDispatched)});
  EXPECT_EQ(StageName(facts), "survey_dispatched");
  Feed(facts, {Ev(T::kSiteSurveyed)});
  EXPECT_EQ(StageName(facts), "surveyed");
  Feed(facts, {Ev(T::kSchemeReplied)});
  EXPECT_EQ(StageName(facts), "scheme_replied");
  Feed(facts, {Ev(T::kDesignSubmitted)});
  EXPECT_EQ(StageName(facts), "design_review");
  Feed(facts, {Ev(T::kDesignReviewed, true), Ev(T::kMidInspectionRequested)});
  EXPECT_EQ(StageName(facts), "mid_inspection");
}

TEST(WorkflowDecode, ReadsTheFieldsFromAContractPayload) {
  const auto client = DecodeClientEvent(
      R"({"stream":"app/KM-1","type":"ApplicationAccepted","event_id":"e1",
          "occurred_at":"2026-03-02T09:15:00+08:00",
          "actor":{"id":"S1","role":"clerk","org":"KM.XS"},
          "data":{"customer_id":"C1","customer_name":"Plant","customer_class":"hv_dual",
                  "business":"capacity_increase","voltage_kv":10,"capacity_kva":800,
                  "channel":"counter","important":true,"three_zero":false}})");
  ASSERT_TRUE(std::holds_alternative<ClientEvent>(client));
  const auto decoded =
      DecodeWorkflowEvent("ApplicationAccepted", std::get<ClientEvent>(client).payload);
  ASSERT_TRUE(std::holds_alternative<WorkflowEvent>(decoded));
  const WorkflowEvent& event = std::get<WorkflowEvent>(decoded);
  EXPECT_EQ(event.customer_class, SlaCustomerClass::kHvDual);
  EXPECT_EQ(event.business, Business::kCapacityIncrease);
  EXPECT_TRUE(event.important);
  EXPECT_FALSE(event.three_zero);
  EXPECT_FALSE(event.fees_apply.has_value());  // not given
  EXPECT_FALSE(event.customer_works.has_value());

  const auto declared = DecodeClientEvent(
      R"({"stream":"app/KM-2","type":"ApplicationAccepted","event_id":"e3",
          "occurred_at":"2026-03-02T09:15:00+08:00",
          "actor":{"id":"S1","role":"clerk","org":"KM.XS"},
          "data":{"customer_id":"C2","customer_name":"Home","customer_class":"residential",
                  "business":"new_install","voltage_kv":0.22,"capacity_kva":8,
                  "channel":"counter","important":false,"three_zero":false,
                  "fees_apply":false,"customer_works":false}})");
  ASSERT_TRUE(std::holds_alternative<ClientEvent>(declared));
  const auto declared_event =
      DecodeWorkflowEvent("ApplicationAccepted", std::get<ClientEvent>(declared).payload);
  ASSERT_TRUE(std::holds_alternative<WorkflowEvent>(declared_event));
  EXPECT_EQ(std::get<WorkflowEvent>(declared_event).fees_apply, std::optional<bool>(false));
  EXPECT_EQ(std::get<WorkflowEvent>(declared_event).customer_works, std::optional<bool>(false));

  const auto urge = DecodeClientEvent(
      R"({"stream":"app/KM-1","type":"Urged","event_id":"e2",
          "occurred_at":"2026-03-03T09:15:00+08:00",
          "actor":{"id":"D1","role":"director","org":"KM.XS"},
          "data":{"level":2,"to_org":"KM.DS","to_person":"Li","channel":"phone",
                  "committed_date":"2026-03-06"}})");
  ASSERT_TRUE(std::holds_alternative<ClientEvent>(urge));
  const auto urged = DecodeWorkflowEvent("Urged", std::get<ClientEvent>(urge).payload);
  ASSERT_TRUE(std::holds_alternative<WorkflowEvent>(urged));
  EXPECT_EQ(std::get<WorkflowEvent>(urged).urge_level, 2);
  EXPECT_EQ(std::get<WorkflowEvent>(urged).to_org, "KM.DS");
  EXPECT_EQ(std::get<WorkflowEvent>(urged).committed_date, "2026-03-06");

  WorkflowFacts facts;
  EXPECT_TRUE(Judge(facts, "ApplicationAccepted", std::get<ClientEvent>(client).payload).valid());
}

}  // namespace
}  // namespace gridledger::domain
