// Workflow rules of one application (see domain/workflow.h for the rule tables and decisions).
#include "domain/workflow.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <array>
#include <cstring>

#include "domain/event_json.h"
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

std::string View(capnp::Text::Reader text) { return std::string(text.begin(), text.size()); }

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
      out.to_org = View(root.getToOrg());
      out.to_person = View(root.getToPerson());
      out.channel = View(root.getChannel());
      if (root.hasCommittedDate()) out.committed_date = View(root.getCommittedDate());
      break;
    }
    case AppEventType::kCorrected: {
      auto root = message.getRoot<ev::Corrected>();
      out.corrects_position = root.getCorrectsPosition();
      out.reason = View(root.getReason());
      break;
    }
    case AppEventType::kClockPaused:
      out.reason = View(message.getRoot<ev::ClockPaused>().getReason());
      break;
    case AppEventType::kWithdrawn:
      out.reason = View(message.getRoot<ev::Withdrawn>().getReason());
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

// The invalid rules, in the order of the table in workflow.h.
std::optional<RuleBreach> FindInvalid(const WorkflowFacts& facts, const WorkflowEvent& event) {
  const std::string_view name = AppEventTypeName(event.type);
  const bool accept = event.type == AppEventType::kApplicationAccepted;
  if (!facts.accepted && !accept) {
    return Breach("not_accepted", std::string(name) +
                                      " on an application that was never accepted (rule "
                                      "not_accepted: ApplicationAccepted comes first)");
  }
  if (facts.accepted && accept) {
    return Breach("already_accepted",
                  "ApplicationAccepted on an application already accepted (rule already_accepted)");
  }
  if (facts.closed() && !IsEvidenceOrCorrection(event.type)) {
    return Breach("after_close", std::string(name) + " after the application was " +
                                     (facts.archived ? "archived" : "withdrawn") +
                                     " (rule after_close: only evidence and Corrected may follow)");
  }
  const bool change = IsChange(facts);
  if ((change && IsNewInstallOnlyStep(event.type)) ||
      (!change && event.accepted_by_type_change_only())) {
    return Breach("step_not_in_business",
                  std::string(name) + " is not a step of business " +
                      std::string(BusinessName(facts.business)) + " (rule step_not_in_business)");
  }
  return std::nullopt;
}

}  // namespace
