// Workflow rules of one application (work order, stream app/<id>): which event may follow which
// (../shared/domain.md, "Stages of a new connection / capacity increase").
//
// The ledger records facts, so an event in the wrong order is one of two things:
//
// - INVALID: it cannot be a fact. Judge() names the rule; the front door rejects the event and
//   nothing is stored.
// - VIOLATION: it happened out of order. The event is stored; the violation is flagged on it and
//   counts against the KPIs.
//
// Invalid rules (Verdict::invalid->rule):
//
// | rule id                | meaning                                                             |
// |------------------------|---------------------------------------------------------------------|
// | not_accepted           | any event before the application's ApplicationAccepted              |
// | already_accepted       | a second ApplicationAccepted                                        |
// | after_close            | a workflow event after Archived or Withdrawn (DocumentReviewed,     |
// |                        | SiteInspected, CallbackMade and Corrected stay allowed; Urged is    |
// |                        | invalid: there is nothing left to chase)                            |
// | result_without_request | DesignReviewed / MidInspected / CompletionInspected without an open |
// |                        | DesignSubmitted / MidInspectionRequested / CompletionReported       |
// | resume_without_pause   | ClockResumed while not paused                                       |
// | pause_while_paused     | ClockPaused while already paused                                    |
// | step_not_in_business   | a step of another business kind: ChangeExecuted on a new install or |
// |                        | capacity increase; SchemeReplied, DesignSubmitted, DesignReviewed,  |
// |                        | MidInspectionRequested, MidInspected, CompletionReported,           |
// |                        | CompletionInspected or MeterConnected on a change                   |
// | before_acceptance      | an event dated (occurred_at, Asia/Shanghai date) before the day the |
// |                        | application was accepted; Corrected excepted (dated when made)      |
// | resume_before_pause    | ClockResumed dated before the open pause began                      |
// | result_before_request  | DesignReviewed / MidInspected / CompletionInspected dated before    |
// |                        | the DesignSubmitted / MidInspectionRequested / CompletionReported   |
// |                        | it answers (its clock would end before it starts)                   |
// | (the three date rules above are judged where dates are known — JudgeDates: the ingestor and |
// |  corrections — not by Judge(), which sees no dates)                                          |
// | not_app_event          | a type not appended to app/<id> streams, or an unknown type         |
// | bad_payload            | the payload does not decode as the type's struct                    |
//
// Violation rules (Verdict::violations[i].rule), checked only on valid events:
//
// | rule id                            | on             | meaning                                |
// |------------------------------------|----------------|----------------------------------------|
// | contract_before_scheme_reply       | ContractSigned | signed before the supply scheme was    |
// |                                    |                | replied (where scheme reply applies)   |
// | connected_without_contract         | MeterConnected | no ContractSigned before               |
// | connected_before_completion_passed | MeterConnected | completion inspection required and not |
// |                                    |                | passed                                 |
// | connected_before_fees              | MeterConnected | fees apply and were not settled        |
// | connected_before_scheme_reply      | MeterConnected | scheme reply applies, did not happen   |
// | connected_without_design_review    | MeterConnected | important HV, no passed design review  |
// | connected_without_mid_inspection   | MeterConnected | important HV, no passed mid inspection |
// | (contract_before_scheme_reply and  | ContractSigned,| also when the prerequisite was recorded|
// |  the four connected_* rules on     | MeterConnected | first but happened later by business   |
// |  contract, completion, fees and    |                | date (dates come from occurred_at):    |
// |  scheme)                           |                | PrerequisiteDateViolations             |
// | archived_before_connection         | Archived       | new install / capacity increase        |
// |                                    |                | archived without MeterConnected        |
// | archived_before_change_executed    | Archived       | change archived without ChangeExecuted |
// | callback_before_connection         | CallbackMade   | before MeterConnected (new install /   |
// |                                    |                | capacity increase)                     |
// | callback_before_change_executed    | CallbackMade   | before ChangeExecuted (change)         |
// | (the four archived_/callback_ rules| Archived,      | also when the connection (execution)   |
// |  above: ClosingDateViolations)     | CallbackMade   | was recorded first but happened later  |
//
// A violation that says a fact was missing on its event's business date is *settled* when that
// fact is recorded later but dated on or before that date (RulesSettledBy): it was not missing,
// only entered late (the mirror of the date rules above, where a fact recorded first but dated
// later is a violation). The late entry stays visible: the application lists the settled
// violation with the event that settled it, and the entry is backdated if beyond the tolerance.
// Archived violations are never settled (no workflow step may follow an archive).
//
// Which steps apply (decisions, beyond domain.md's table):
// - Survey (SurveyDispatched / SiteSurveyed) is skipped for residential and three_zero; doing one
//   anyway is allowed (it is a fact), it just is not required.
// - Scheme reply applies unless three_zero (and never to a change, where it is invalid).
// - Fees apply unless three_zero or business change, or ApplicationAccepted says fees_apply: false
//   (a fee-free job; true makes them apply to a three_zero job too). A FeesSettled where they do
//   not apply is still accepted and recorded; it is just not required.
// - Completion inspection is required for hv_single, hv_dual and lv_nonresidential unless
//   three_zero or ApplicationAccepted says customer_works: false (domain.md: "HV and LV
//   non-residential with customer works"; three_zero is the LV service without customer works).
// - Design review and mid inspection are required for important HV (hv_single / hv_dual)
//   customers; optional otherwise.
// - A contract is always required before connection, three_zero included (KPI 4 counts every
//   connection). A three_zero job's connection clock starts, as domain.md's table says, at the
//   latest prerequisite that applies (the contract; fees where they apply): until the contract is
//   signed no clock runs, as between a scheme reply and the contract elsewhere. Three_zero is for
//   low-voltage classes only (event_json.cc refuses it on hv_single / hv_dual).
// - A failed review or inspection (result fail) closes the request; the customer resubmits with a
//   new request event (a new stage clock starts there). "passed" means "has passed at least once";
//   a later resubmission does not take it back.
// - A second request while one is open (e.g. DesignSubmitted twice before a review) is accepted
//   and does not restart anything; repeated MeterConnected / ChangeExecuted / FeesSettled likewise.
//
// Thread-safety: everything here is a pure function of its arguments. Nothing throws: a payload
// that does not decode is an error value (rule bad_payload).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/sla_profile.h"

namespace gridledger::domain {

// The event types of app/<id> streams, in schema order.
enum class AppEventType : uint8_t {
  kApplicationAccepted,
  kSurveyDispatched,
  kSiteSurveyed,
  kSchemeReplied,
  kFeesSettled,
  kDesignSubmitted,
  kDesignReviewed,
  kMidInspectionRequested,
  kMidInspected,
  kCompletionReported,
  kCompletionInspected,
  kContractSigned,
  kMeterConnected,
  kChangeExecuted,
  kArchived,
  kClockPaused,
  kClockResumed,
  kUrged,
  kReassigned,
  kWithdrawn,
  kCorrected,
  kDocumentReviewed,
  kSiteInspected,
  kCallbackMade,
};
inline constexpr int kAppEventTypeCount = 24;

// nullopt for a type that is not an app/<id> event (report, survey, staff or unknown types).
std::optional<AppEventType> ParseAppEventType(std::string_view type);
std::string_view AppEventTypeName(AppEventType type);  // "ApplicationAccepted", …

enum class Business : uint8_t { kNewInstall, kCapacityIncrease, kChange };
std::string_view BusinessName(Business business);  // "new_install", "capacity_increase", "change"

// The fields of one app event that the workflow rules and the application projection need,
// decoded once from the stored payload. Fields not belonging to `type` keep their defaults.
struct WorkflowEvent {
  AppEventType type = AppEventType::kApplicationAccepted;
  // ApplicationAccepted
  SlaCustomerClass customer_class = SlaCustomerClass::kResidential;
  Business business = Business::kNewInstall;
  bool important = false;
  bool three_zero = false;
  std::optional<bool> fees_apply;      // as declared (nullopt: not given)
  std::optional<bool> customer_works;  // as declared (nullopt: not given)
  // DesignReviewed / MidInspected / CompletionInspected: result == pass
  bool passed = false;
  // Urged
  int urge_level = 0;
  std::string to_org;
  std::string to_person;
  std::string channel;
  std::optional<std::string> committed_date;  // "YYYY-MM-DD"
  // Corrected
  uint64_t corrects_position = 0;
  std::string reason;  // Corrected.reason, ClockPaused.reason, Withdrawn.reason

  bool operator==(const WorkflowEvent&) const = default;
};

// A rule that an event broke: a stable snake_case id from the tables above and one readable
// sentence naming it.
struct RuleBreach {
  std::string rule;
  std::string message;

  bool operator==(const RuleBreach&) const = default;
};

// Decodes the payload of an app event. Errors: rule not_app_event (type) or bad_payload.
std::variant<WorkflowEvent, RuleBreach> DecodeWorkflowEvent(std::string_view type,
                                                            std::string_view payload);

// The compact facts about one application needed to judge its next event. Built only by Apply().
// Stored in every application state: a new field is encoded in projections/application_codec.cc
// (PutFacts / GetFacts; a static_assert there counts the fields) and raises kFoldVersion.
struct WorkflowFacts {
  bool accepted = false;
  Business business = Business::kNewInstall;
  SlaCustomerClass customer_class = SlaCustomerClass::kResidential;
  bool important = false;
  bool three_zero = false;
  // As ApplicationAccepted declared them (nullopt: not given; FeesApply and
  // CompletionInspectionRequired then take the default).
  std::optional<bool> fees_apply;
  std::optional<bool> customer_works;

  bool archived = false;
  bool withdrawn = false;
  bool paused = false;

  bool survey_dispatched = false;
  bool surveyed = false;
  bool scheme_replied = false;
  bool fees_settled = false;
  bool design_pending = false;  // submitted, not yet reviewed
  bool design_passed = false;
  bool mid_pending = false;  // requested, not yet inspected
  bool mid_passed = false;
  bool completion_pending = false;  // reported, not yet inspected
  bool completion_passed = false;
  bool contract_signed = false;
  bool meter_connected = false;
  bool change_executed = false;
  bool callback_made = false;

  bool closed() const { return archived || withdrawn; }
  bool operator==(const WorkflowFacts&) const = default;
};

// Which steps apply to this application (see "Which steps apply" above).
bool IsChange(const WorkflowFacts& facts);
// Whether the step an archive or callback follows happened: the connection (MeterConnected) of a
// new install or capacity increase, the ChangeExecuted of a change.
bool Delivered(const WorkflowFacts& facts);
bool IsHighVoltage(const WorkflowFacts& facts);
bool SurveyApplies(const WorkflowFacts& facts);
bool SchemeReplyApplies(const WorkflowFacts& facts);
bool FeesApply(const WorkflowFacts& facts);
bool CompletionInspectionRequired(const WorkflowFacts& facts);
bool DesignReviewRequired(const WorkflowFacts& facts);
bool MidInspectionRequired(const WorkflowFacts& facts);

// The judgement on one event: invalid (reject, store nothing) or valid with zero or more
// violations (store and flag).
struct Verdict {
  std::optional<RuleBreach> invalid;
  std::vector<RuleBreach> violations;

  bool valid() const { return !invalid.has_value(); }
};

// Judges `event` against the facts of its application so far. Pure.
Verdict Judge(const WorkflowFacts& facts, const WorkflowEvent& event);
// Decodes then judges; a payload that does not decode is invalid (bad_payload / not_app_event).
Verdict Judge(const WorkflowFacts& facts, std::string_view type, std::string_view payload);

// The business dates (Asia/Shanghai, from occurred_at) on which a connection's prerequisites
// happened, the earliest when recorded more than once; nullopt while not recorded.
struct PrerequisiteDates {
  std::optional<Date> scheme_replied;
  std::optional<Date> fees_settled;
  std::optional<Date> completion_passed;
  std::optional<Date> contract_signed;
};

// Judge sees only whether a prerequisite was recorded before a MeterConnected or ContractSigned;
// the order of the facts is their business dates (domain.md: dates are taken from occurred_at).
// These are the violations of such an event of `type` that happened `on` a date although a
// prerequisite recorded before it happened only later: the same rule ids, so KPIs and flags treat
// both alike. Judge's own violations name prerequisites not recorded at all, so the two never
// overlap. A prerequisite on the same date counts as before (the calendar's own granularity).
// Empty for other types.
std::vector<RuleBreach> PrerequisiteDateViolations(const WorkflowFacts& facts,
                                                   const PrerequisiteDates& dates,
                                                   AppEventType type, Date on);

// The same for an Archived or CallbackMade dated `on`, recorded after the MeterConnected (or, of a
// change, the ChangeExecuted) it should follow but dated before it (`done`, that step's date):
// archived_/callback_before_connection or _before_change_executed. Judge flags them only when
// that step was not recorded at all. Empty for other types; a step on the same date counts as
// before.
std::vector<RuleBreach> ClosingDateViolations(const WorkflowFacts& facts, AppEventType type,
                                              Date done, Date on);

// The business dates the date rules need, folded (FoldDates) over the events of an application
// in the order they were recorded, as corrected.
struct DatedFacts {
  std::optional<Date> accepted_on;  // ApplicationAccepted
  std::optional<Date> paused_on;    // the open pause's ClockPaused, while paused
  // The open request of each kind (the first, when one was made again while open: its clock
  // runs from there), which the next result answers; reset by that result.
  std::optional<Date> design_submitted_on;
  std::optional<Date> mid_requested_on;
  std::optional<Date> completion_reported_on;
};
void FoldDates(DatedFacts& dated, AppEventType type, Date on);
// The date rules of the invalid table, for an event of `type` dated `on` that Judge() allows:
// - before_acceptance: nothing happens to an application before the day it was accepted (a wrong
//   acceptance date is corrected first); ApplicationAccepted and Corrected excepted;
// - resume_before_pause: a resume dated before the open pause began ends nothing (a replay by
//   business date would pair it with another pause);
// - result_before_request: a review or inspection dated before the request it answers.
// The same day is never before. nullopt when none applies.
std::optional<RuleBreach> JudgeDates(const DatedFacts& dated, AppEventType type, Date on);

// The violation rules that `event`, applied, settles on an earlier-recorded event dated on or
// after it (see the note under the violation table): ContractSigned settles
// connected_without_contract; FeesSettled connected_before_fees; SchemeReplied
// connected_before_scheme_reply and contract_before_scheme_reply; a passed CompletionInspected,
// DesignReviewed or MidInspected the connected_* rule of its inspection; MeterConnected
// callback_before_connection; ChangeExecuted callback_before_change_executed (these two only
// as the application's first connection or execution, which the caller knows). Empty for others.
std::vector<std::string_view> RulesSettledBy(const WorkflowEvent& event);
// The event type a violation rule is flagged on (the table's "on" column); nullopt for a rule that
// is not a violation.
std::optional<AppEventType> ViolationFlaggedOn(std::string_view rule);

// Advances the facts by a VALID event (REQUIRES: Judge(facts, event).valid()). Applying an invalid
// event is a caller bug; the facts are then left as they would be after the event's effect.
void Apply(WorkflowFacts& facts, const WorkflowEvent& event);

// A readable name of the current stage: "not_accepted", "accepted", "survey_dispatched",
// "surveyed", "scheme_replied", "design_review", "mid_inspection", "completion_inspection",
// "completion_passed", "connected", "change_executed", "archived", "withdrawn". It names the
// furthest milestone reached (an open review/inspection wins over earlier milestones).
std::string_view StageName(const WorkflowFacts& facts);

}  // namespace gridledger::domain
