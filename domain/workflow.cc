// Workflow rules of one application (see domain/workflow.h for the rule tables and decisions).
#include "domain/workflow.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <array>
#include <cstring>

#include "domain/event_json.h"
#include "domain/payload.h"
#include "schema/events.capnp.h"

namespace gridledger::domain {
namespace {

namespace ev = ::gridledger::domain::events;

constexpr std::array<std::string_view, kAppEventTypeCount> kAppEventTypeNames = {
    "ApplicationAccepted",
    "SurveyDispatched",
    "SiteSurveyed",
    "SchemeReplied",
    "FeesSettled",
    "DesignSubmitted",
    "DesignReviewed",
    "MidInspectionRequested",
    "MidInspected",
    "CompletionReported",
    "CompletionInspected",
    "ContractSigned",
    "MeterConnected",
    "ChangeExecuted",
    "Archived",
    "ClockPaused",
    "ClockResumed",
    "Urged",
    "Reassigned",
    "Withdrawn",
    "Corrected",
    "DocumentReviewed",
    "SiteInspected",
    "CallbackMade",
};

// A payload is read in place from an aligned copy; these bound what one reader may traverse.
constexpr uint64_t kReaderTraversalWordsMax = 2 * kPayloadBytesMax / sizeof(capnp::word);
constexpr int kReaderNestingMax = 8;

SlaCustomerClass ToSlaClass(ev::CustomerClass customer_class) {
  switch (customer_class) {
    case ev::CustomerClass::RESIDENTIAL:
      return SlaCustomerClass::kResidential;
    case ev::CustomerClass::LV_NONRESIDENTIAL:
      return SlaCustomerClass::kLvNonResidential;
    case ev::CustomerClass::HV_SINGLE:
      return SlaCustomerClass::kHvSingle;
    case ev::CustomerClass::HV_DUAL:
      return SlaCustomerClass::kHvDual;
  }
  return SlaCustomerClass::kResidential;  // an enumerant added later: the strictest reading
}

Business ToBusiness(ev::Business business) {
  switch (business) {
    case ev::Business::NEW_INSTALL:
      return Business::kNewInstall;
    case ev::Business::CAPACITY_INCREASE:
      return Business::kCapacityIncrease;
    case ev::Business::CHANGE:
      return Business::kChange;
  }
  return Business::kNewInstall;
}

// Fills the fields of `out` that belong to its type from the message root.
void ReadFields(capnp::FlatArrayMessageReader& message, WorkflowEvent& out) {
  switch (out.type) {
    case AppEventType::kApplicationAccepted: {
      auto root = message.getRoot<ev::ApplicationAccepted>();
      out.customer_class = ToSlaClass(root.getCustomerClass());
      out.business = ToBusiness(root.getBusiness());
      out.important = root.getImportant();
      out.three_zero = root.getThreeZero();
      if (root.getHasFeesApply()) out.fees_apply = root.getFeesApply();
      if (root.getHasCustomerWorks()) out.customer_works = root.getCustomerWorks();
      break;
    }
    case AppEventType::kDesignReviewed:
      out.passed = message.getRoot<ev::DesignReviewed>().getResult() == ev::Result::PASS;
      break;
    case AppEventType::kMidInspected:
      out.passed = message.getRoot<ev::MidInspected>().getResult() == ev::Result::PASS;
      break;
    case AppEventType::kCompletionInspected:
      out.passed = message.getRoot<ev::CompletionInspected>().getResult() == ev::Result::PASS;
      break;
    case AppEventType::kUrged: {
      auto root = message.getRoot<ev::Urged>();
      out.urge_level = root.getLevel();
      out.to_org = TextOf(root.getToOrg());
      out.to_person = TextOf(root.getToPerson());
      out.channel = TextOf(root.getChannel());
      if (root.hasCommittedDate()) out.committed_date = TextOf(root.getCommittedDate());
      break;
    }
    case AppEventType::kCorrected: {
      auto root = message.getRoot<ev::Corrected>();
      out.corrects_position = root.getCorrectsPosition();
      out.reason = TextOf(root.getReason());
      break;
    }
    case AppEventType::kClockPaused:
      out.reason = TextOf(message.getRoot<ev::ClockPaused>().getReason());
      break;
    case AppEventType::kWithdrawn:
      out.reason = TextOf(message.getRoot<ev::Withdrawn>().getReason());
      break;
    default:
      break;  // nothing of the payload is needed
  }
}

RuleBreach Breach(std::string rule, std::string message) {
  return RuleBreach{std::move(rule), std::move(message)};
}

bool IsEvidenceOrCorrection(AppEventType type) {
  return type == AppEventType::kDocumentReviewed || type == AppEventType::kSiteInspected ||
         type == AppEventType::kCallbackMade || type == AppEventType::kCorrected;
}

// The steps of the new-install chain that a change of use does not have.
bool IsNewInstallOnlyStep(AppEventType type) {
  switch (type) {
    case AppEventType::kSchemeReplied:
    case AppEventType::kDesignSubmitted:
    case AppEventType::kDesignReviewed:
    case AppEventType::kMidInspectionRequested:
    case AppEventType::kMidInspected:
    case AppEventType::kCompletionReported:
    case AppEventType::kCompletionInspected:
    case AppEventType::kMeterConnected:
      return true;
    default:
      return false;
  }
}

// The request a review or inspection answers ("" for other types).
std::string_view RequestOf(AppEventType result) {
  switch (result) {
    case AppEventType::kDesignReviewed:
      return "DesignSubmitted";
    case AppEventType::kMidInspected:
      return "MidInspectionRequested";
    case AppEventType::kCompletionInspected:
      return "CompletionReported";
    default:
      return "";
  }
}

std::optional<RuleBreach> CheckResultHasRequest(const WorkflowFacts& facts, AppEventType type) {
  const std::string_view request = RequestOf(type);
  const bool open = request.empty() ||
                    (type == AppEventType::kDesignReviewed && facts.design_pending) ||
                    (type == AppEventType::kMidInspected && facts.mid_pending) ||
                    (type == AppEventType::kCompletionInspected && facts.completion_pending);
  if (open) return std::nullopt;
  return Breach("result_without_request", std::string(AppEventTypeName(type)) +
                                              " without an open " + std::string(request) +
                                              " (rule result_without_request)");
}

// The invalid rules, in the order of the table in workflow.h.
std::optional<RuleBreach> FindInvalid(const WorkflowFacts& facts, AppEventType type) {
  const std::string name(AppEventTypeName(type));
  const bool accept = type == AppEventType::kApplicationAccepted;
  if (!facts.accepted && !accept) {
    return Breach("not_accepted", name +
                                      " on an application that was never accepted (rule "
                                      "not_accepted: ApplicationAccepted comes first)");
  }
  if (facts.accepted && accept) {
    return Breach("already_accepted",
                  "ApplicationAccepted on an application already accepted (rule already_accepted)");
  }
  if (facts.closed() && !IsEvidenceOrCorrection(type)) {
    return Breach("after_close", name + " after the application was " +
                                     (facts.archived ? "archived" : "withdrawn") +
                                     " (rule after_close: only evidence and Corrected may follow)");
  }
  const bool change = IsChange(facts);
  if ((change && IsNewInstallOnlyStep(type)) ||
      (!change && type == AppEventType::kChangeExecuted)) {
    return Breach("step_not_in_business", name + " is not a step of business " +
                                              std::string(BusinessName(facts.business)) +
                                              " (rule step_not_in_business)");
  }
  if (auto breach = CheckResultHasRequest(facts, type)) return breach;
  if (type == AppEventType::kClockResumed && !facts.paused) {
    return Breach("resume_without_pause",
                  "ClockResumed while the clocks are not paused (rule resume_without_pause)");
  }
  if (type == AppEventType::kClockPaused && facts.paused) {
    return Breach("pause_while_paused",
                  "ClockPaused while the clocks are already paused (rule pause_while_paused)");
  }
  return std::nullopt;
}

void AddViolation(std::vector<RuleBreach>& out, std::string rule, std::string what) {
  what += " (rule " + rule + ")";
  out.push_back(Breach(std::move(rule), std::move(what)));
}

void ConnectionViolations(const WorkflowFacts& facts, std::vector<RuleBreach>& out) {
  if (!facts.contract_signed) {
    AddViolation(out, "connected_without_contract", "MeterConnected before a signed contract");
  }
  if (CompletionInspectionRequired(facts) && !facts.completion_passed) {
    AddViolation(out, "connected_before_completion_passed",
                 "MeterConnected before a passed completion inspection");
  }
  if (FeesApply(facts) && !facts.fees_settled) {
    AddViolation(out, "connected_before_fees", "MeterConnected before the fees were settled");
  }
  if (SchemeReplyApplies(facts) && !facts.scheme_replied) {
    AddViolation(out, "connected_before_scheme_reply",
                 "MeterConnected before the supply scheme was replied");
  }
  if (DesignReviewRequired(facts) && !facts.design_passed) {
    AddViolation(out, "connected_without_design_review",
                 "MeterConnected of an important HV customer without a passed design review");
  }
  if (MidInspectionRequired(facts) && !facts.mid_passed) {
    AddViolation(out, "connected_without_mid_inspection",
                 "MeterConnected of an important HV customer without a passed mid inspection");
  }
}

// A prerequisite that applies and was recorded, on a date after the `step`'s.
void AddIfLater(std::vector<RuleBreach>& out, bool applies, const std::optional<Date>& happened,
                std::string_view step, Date on, std::string rule, std::string_view what) {
  if (!applies || !happened || !(on < *happened)) return;
  AddViolation(out, std::move(rule),
               std::string(step) + " on " + on.ToString() + " before " + std::string(what) +
                   " on " + happened->ToString());
}

std::vector<RuleBreach> FindViolations(const WorkflowFacts& facts, AppEventType type) {
  std::vector<RuleBreach> out;
  const bool change = IsChange(facts);
  switch (type) {
    case AppEventType::kContractSigned:
      if (SchemeReplyApplies(facts) && !facts.scheme_replied) {
        AddViolation(out, "contract_before_scheme_reply",
                     "ContractSigned before the supply scheme was replied");
      }
      break;
    case AppEventType::kMeterConnected:
      ConnectionViolations(facts, out);
      break;
    case AppEventType::kArchived:
      if (change && !facts.change_executed) {
        AddViolation(out, "archived_before_change_executed", "Archived before ChangeExecuted");
      } else if (!change && !facts.meter_connected) {
        AddViolation(out, "archived_before_connection", "Archived before MeterConnected");
      }
      break;
    case AppEventType::kCallbackMade:
      if (change && !facts.change_executed) {
        AddViolation(out, "callback_before_change_executed", "CallbackMade before ChangeExecuted");
      } else if (!change && !facts.meter_connected) {
        AddViolation(out, "callback_before_connection", "CallbackMade before MeterConnected");
      }
      break;
    default:
      break;
  }
  return out;
}

void ApplyAccepted(WorkflowFacts& facts, const WorkflowEvent& event) {
  facts.accepted = true;
  facts.business = event.business;
  facts.customer_class = event.customer_class;
  facts.important = event.important;
  facts.three_zero = event.three_zero;
  facts.fees_apply = event.fees_apply;
  facts.customer_works = event.customer_works;
}

// A result closes its request; pass is remembered for good (see workflow.h).
void ApplyResult(bool& pending, bool& passed, bool result_passed) {
  pending = false;
  if (result_passed) passed = true;
}

}  // namespace

std::optional<AppEventType> ParseAppEventType(std::string_view type) {
  for (int i = 0; i < kAppEventTypeCount; ++i) {
    if (kAppEventTypeNames[i] == type) return static_cast<AppEventType>(i);
  }
  return std::nullopt;
}

std::string_view AppEventTypeName(AppEventType type) {
  return kAppEventTypeNames[static_cast<size_t>(type)];
}

std::string_view BusinessName(Business business) {
  switch (business) {
    case Business::kNewInstall:
      return "new_install";
    case Business::kCapacityIncrease:
      return "capacity_increase";
    case Business::kChange:
      return "change";
  }
  return "unknown";
}

std::variant<WorkflowEvent, RuleBreach> DecodeWorkflowEvent(std::string_view type,
                                                            std::string_view payload) {
  const std::optional<AppEventType> app_type = ParseAppEventType(type);
  if (!app_type) {
    return Breach("not_app_event", "type \"" + std::string(type) +
                                       "\" is not an event of app/<id> streams (rule "
                                       "not_app_event)");
  }
  if (payload.empty() || payload.size() % sizeof(capnp::word) != 0 ||
      payload.size() > kPayloadBytesMax) {
    return Breach("bad_payload", std::string(type) +
                                     " payload is not a whole number of 8-byte words within 1 MiB "
                                     "(rule bad_payload)");
  }
  WorkflowEvent out;
  out.type = *app_type;
  const kj::ArrayPtr<const capnp::word> words = AlignedWords(payload);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kReaderTraversalWordsMax;
  options.nestingLimit = kReaderNestingMax;
  try {
    capnp::FlatArrayMessageReader message(words, options);
    ReadFields(message, out);
  } catch (const kj::Exception& e) {  // the decoding edge: malformed bytes become a value
    const auto description = e.getDescription();
    return Breach("bad_payload", std::string(type) + " payload does not decode: " +
                                     std::string(description.begin(), description.size()) +
                                     " (rule bad_payload)");
  }
  return out;
}

bool IsChange(const WorkflowFacts& facts) { return facts.business == Business::kChange; }

bool Delivered(const WorkflowFacts& facts) {
  return IsChange(facts) ? facts.change_executed : facts.meter_connected;
}

bool IsHighVoltage(const WorkflowFacts& facts) {
  return facts.customer_class == SlaCustomerClass::kHvSingle ||
         facts.customer_class == SlaCustomerClass::kHvDual;
}

bool SurveyApplies(const WorkflowFacts& facts) {
  return facts.customer_class != SlaCustomerClass::kResidential && !facts.three_zero;
}

bool SchemeReplyApplies(const WorkflowFacts& facts) {
  return !IsChange(facts) && !facts.three_zero;
}

bool FeesApply(const WorkflowFacts& facts) {
  return !IsChange(facts) && facts.fees_apply.value_or(!facts.three_zero);
}

bool CompletionInspectionRequired(const WorkflowFacts& facts) {
  return !IsChange(facts) && !facts.three_zero &&
         facts.customer_class != SlaCustomerClass::kResidential &&
         facts.customer_works.value_or(true);
}

bool DesignReviewRequired(const WorkflowFacts& facts) {
  return !IsChange(facts) && facts.important && IsHighVoltage(facts);
}

bool MidInspectionRequired(const WorkflowFacts& facts) { return DesignReviewRequired(facts); }

std::vector<RuleBreach> PrerequisiteDateViolations(const WorkflowFacts& facts,
                                                   const PrerequisiteDates& dates,
                                                   AppEventType type, Date on) {
  std::vector<RuleBreach> out;
  if (type == AppEventType::kContractSigned) {
    AddIfLater(out, SchemeReplyApplies(facts), dates.scheme_replied, "ContractSigned", on,
               "contract_before_scheme_reply", "the supply scheme was replied");
  }
  if (type != AppEventType::kMeterConnected) return out;
  const std::string_view step = "MeterConnected";
  AddIfLater(out, true, dates.contract_signed, step, on, "connected_without_contract",
             "the contract was signed");
  AddIfLater(out, CompletionInspectionRequired(facts), dates.completion_passed, step, on,
             "connected_before_completion_passed", "the completion inspection passed");
  AddIfLater(out, FeesApply(facts), dates.fees_settled, step, on, "connected_before_fees",
             "the fees were settled");
  AddIfLater(out, SchemeReplyApplies(facts), dates.scheme_replied, step, on,
             "connected_before_scheme_reply", "the supply scheme was replied");
  return out;
}

std::vector<RuleBreach> ClosingDateViolations(const WorkflowFacts& facts, AppEventType type,
                                              Date done, Date on) {
  std::vector<RuleBreach> out;
  const bool change = IsChange(facts);
  if (!(on < done) || !Delivered(facts)) return out;
  const std::string step = change ? "ChangeExecuted" : "MeterConnected";
  const std::string when = " on " + on.ToString() + ", before the " + step + " of " +
                           done.ToString() + " (recorded earlier, dated later)";
  if (type == AppEventType::kArchived) {
    AddViolation(out, change ? "archived_before_change_executed" : "archived_before_connection",
                 "Archived" + when);
  } else if (type == AppEventType::kCallbackMade) {
    AddViolation(out, change ? "callback_before_change_executed" : "callback_before_connection",
                 "CallbackMade" + when);
  }
  return out;
}

std::vector<std::string_view> RulesSettledBy(const WorkflowEvent& event) {
  switch (event.type) {
    case AppEventType::kContractSigned:
      return {"connected_without_contract"};
    case AppEventType::kFeesSettled:
      return {"connected_before_fees"};
    case AppEventType::kSchemeReplied:
      return {"connected_before_scheme_reply", "contract_before_scheme_reply"};
    case AppEventType::kCompletionInspected:
      if (event.passed) return {"connected_before_completion_passed"};
      return {};
    case AppEventType::kDesignReviewed:
      if (event.passed) return {"connected_without_design_review"};
      return {};
    case AppEventType::kMidInspected:
      if (event.passed) return {"connected_without_mid_inspection"};
      return {};
    case AppEventType::kMeterConnected:
      return {"callback_before_connection"};
    case AppEventType::kChangeExecuted:
      return {"callback_before_change_executed"};
    default:
      return {};
  }
}

std::optional<AppEventType> ViolationFlaggedOn(std::string_view rule) {
  if (rule == "contract_before_scheme_reply") return AppEventType::kContractSigned;
  if (rule.starts_with("connected_")) return AppEventType::kMeterConnected;
  if (rule.starts_with("archived_")) return AppEventType::kArchived;
  if (rule.starts_with("callback_")) return AppEventType::kCallbackMade;
  return std::nullopt;
}

void FoldDates(DatedFacts& dated, AppEventType type, Date on) {
  switch (type) {
    case AppEventType::kApplicationAccepted:
      dated.accepted_on = on;
      break;
    case AppEventType::kClockPaused:
      dated.paused_on = on;
      break;
    case AppEventType::kClockResumed:
      dated.paused_on.reset();
      break;
    // A request while one is open restarts nothing (its clock runs from the first), so the
    // result that comes answers the first; the result closes it.
    case AppEventType::kDesignSubmitted:
      if (!dated.design_submitted_on) dated.design_submitted_on = on;
      break;
    case AppEventType::kMidInspectionRequested:
      if (!dated.mid_requested_on) dated.mid_requested_on = on;
      break;
    case AppEventType::kCompletionReported:
      if (!dated.completion_reported_on) dated.completion_reported_on = on;
      break;
    case AppEventType::kDesignReviewed:
      dated.design_submitted_on.reset();
      break;
    case AppEventType::kMidInspected:
      dated.mid_requested_on.reset();
      break;
    case AppEventType::kCompletionInspected:
      dated.completion_reported_on.reset();
      break;
    default:
      break;
  }
}

std::optional<RuleBreach> JudgeDates(const DatedFacts& dated, AppEventType type, Date on) {
  const std::string_view name = AppEventTypeName(type);
  if (dated.accepted_on && on < *dated.accepted_on && type != AppEventType::kApplicationAccepted &&
      type != AppEventType::kCorrected) {
    return Breach(
        "before_acceptance",
        std::string(name) + " dated " + on.ToString() +
            ", before the application was accepted on " + dated.accepted_on->ToString() +
            " (rule before_acceptance: if the acceptance date is wrong, correct it first)");
  }
  if (type == AppEventType::kClockResumed && dated.paused_on && on < *dated.paused_on) {
    return Breach("resume_before_pause", "ClockResumed dated " + on.ToString() +
                                             ", before the pause it would end began on " +
                                             dated.paused_on->ToString() +
                                             " (rule resume_before_pause)");
  }
  const std::optional<Date>* requested =
      type == AppEventType::kDesignReviewed        ? &dated.design_submitted_on
      : type == AppEventType::kMidInspected        ? &dated.mid_requested_on
      : type == AppEventType::kCompletionInspected ? &dated.completion_reported_on
                                                   : nullptr;
  if (requested != nullptr && *requested && on < **requested) {
    return Breach("result_before_request",
                  std::string(name) + " dated " + on.ToString() + ", before the " +
                      std::string(RequestOf(type)) + " it answers on " + (*requested)->ToString() +
                      " (rule result_before_request: if that date is wrong, correct it first)");
  }
  return std::nullopt;
}

Verdict Judge(const WorkflowFacts& facts, const WorkflowEvent& event) {
  Verdict verdict;
  verdict.invalid = FindInvalid(facts, event.type);
  if (verdict.valid()) verdict.violations = FindViolations(facts, event.type);
  return verdict;
}

Verdict Judge(const WorkflowFacts& facts, std::string_view type, std::string_view payload) {
  auto decoded = DecodeWorkflowEvent(type, payload);
  if (auto* breach = std::get_if<RuleBreach>(&decoded)) return Verdict{std::move(*breach), {}};
  return Judge(facts, std::get<WorkflowEvent>(decoded));
}

void Apply(WorkflowFacts& facts, const WorkflowEvent& event) {
  switch (event.type) {
    case AppEventType::kApplicationAccepted:
      ApplyAccepted(facts, event);
      break;
    case AppEventType::kSurveyDispatched:
      facts.survey_dispatched = true;
      break;
    case AppEventType::kSiteSurveyed:
      facts.surveyed = true;
      break;
    case AppEventType::kSchemeReplied:
      facts.scheme_replied = true;
      break;
    case AppEventType::kFeesSettled:
      facts.fees_settled = true;
      break;
    case AppEventType::kDesignSubmitted:
      facts.design_pending = true;
      break;
    case AppEventType::kDesignReviewed:
      ApplyResult(facts.design_pending, facts.design_passed, event.passed);
      break;
    case AppEventType::kMidInspectionRequested:
      facts.mid_pending = true;
      break;
    case AppEventType::kMidInspected:
      ApplyResult(facts.mid_pending, facts.mid_passed, event.passed);
      break;
    case AppEventType::kCompletionReported:
      facts.completion_pending = true;
      break;
    case AppEventType::kCompletionInspected:
      ApplyResult(facts.completion_pending, facts.completion_passed, event.passed);
      break;
    case AppEventType::kContractSigned:
      facts.contract_signed = true;
      break;
    case AppEventType::kMeterConnected:
      facts.meter_connected = true;
      break;
    case AppEventType::kChangeExecuted:
      facts.change_executed = true;
      break;
    case AppEventType::kArchived:
      facts.archived = true;
      break;
    case AppEventType::kClockPaused:
      facts.paused = true;
      break;
    case AppEventType::kClockResumed:
      facts.paused = false;
      break;
    case AppEventType::kWithdrawn:
      facts.withdrawn = true;
      break;
    case AppEventType::kCallbackMade:
      facts.callback_made = true;
      break;
    case AppEventType::kUrged:
    case AppEventType::kReassigned:
    case AppEventType::kCorrected:
    case AppEventType::kDocumentReviewed:
    case AppEventType::kSiteInspected:
      break;  // no effect on the facts (Corrected: its target is folded as corrected, see
              // domain/correction.h)
  }
}

std::string_view StageName(const WorkflowFacts& facts) {
  if (!facts.accepted) return "not_accepted";
  if (facts.withdrawn) return "withdrawn";
  if (facts.archived) return "archived";
  if (IsChange(facts)) {
    if (facts.change_executed) return "change_executed";
    return facts.surveyed ? "surveyed" : "accepted";
  }
  if (facts.meter_connected) return "connected";
  if (facts.completion_pending) return "completion_inspection";
  if (facts.completion_passed) return "completion_passed";
  if (facts.mid_pending) return "mid_inspection";
  if (facts.design_pending) return "design_review";
  if (facts.scheme_replied) return "scheme_replied";
  if (facts.surveyed) return "surveyed";
  if (facts.survey_dispatched) return "survey_dispatched";
  return "accepted";
}

}  // namespace gridledger::domain
