#include "domain/roles.h"

#include <vector>

namespace gridledger::domain {
namespace {

constexpr RoleBits Bit(std::string_view role) {
  for (size_t i = 0; i < kRoleNames.size(); ++i) {
    if (kRoleNames[i] == role) return static_cast<RoleBits>(1u << i);
  }
  return 0;
}
constexpr RoleBits kClerk = Bit("clerk");
constexpr RoleBits kInspector = Bit("inspector");
constexpr RoleBits kCallbackAgent = Bit("callback_agent");
constexpr RoleBits kDirector = Bit("director");

constexpr std::string_view kWorkOrder = "it is a step of the work order the clerks handle";
constexpr std::string_view kAssessment =
    "reviews and inspections judge the clerks' work, so inspectors and directors record them";
constexpr std::string_view kCallback =
    "callbacks assess the service, so only callback agents and directors record them";
constexpr std::string_view kFieldWork = "site surveys are field work, done by inspectors";
constexpr std::string_view kDirectorOnly = "it is the director's duty";
constexpr std::array kRecordingRules = {
    RecordingRule{"ApplicationAccepted", kClerk | kDirector, kWorkOrder},
    RecordingRule{"SurveyDispatched", kClerk | kDirector, kWorkOrder},
    RecordingRule{"SiteSurveyed", kInspector | kDirector, kFieldWork},
    RecordingRule{"SchemeReplied", kClerk | kDirector, kWorkOrder},
    RecordingRule{"FeesSettled", kClerk | kDirector, kWorkOrder},
    RecordingRule{"DesignSubmitted", kClerk | kDirector, kWorkOrder},
    RecordingRule{"DesignReviewed", kInspector | kDirector, kAssessment},
    RecordingRule{"MidInspectionRequested", kClerk | kDirector, kWorkOrder},
    RecordingRule{"MidInspected", kInspector | kDirector, kAssessment},
    RecordingRule{"CompletionReported", kClerk | kDirector, kWorkOrder},
    RecordingRule{"CompletionInspected", kInspector | kDirector, kAssessment},
    RecordingRule{"ContractSigned", kClerk | kDirector, kWorkOrder},
    // Connecting a meter and executing a change on site are field work (the demo workload and the
    // center have inspectors do them), recorded by whoever did the work.
    RecordingRule{"MeterConnected", kClerk | kInspector | kDirector, kWorkOrder},
    RecordingRule{"ChangeExecuted", kClerk | kInspector | kDirector, kWorkOrder},
    RecordingRule{"Archived", kClerk | kDirector, kWorkOrder},
    RecordingRule{"ClockPaused", kClerk | kDirector, kWorkOrder},
    RecordingRule{"ClockResumed", kClerk | kDirector, kWorkOrder},
    RecordingRule{"Urged", kDirector, "chasing late steps is the director's duty"},
    RecordingRule{"Reassigned", kClerk | kDirector, kWorkOrder},
    RecordingRule{"Withdrawn", kClerk | kDirector, kWorkOrder},
    // Who may correct an event is who may record its type (correction.h): a clerk corrects a step
    // of the work order, not the inspection or callback that judged it.
    RecordingRule{"Corrected", kClerk | kInspector | kCallbackAgent | kDirector,
                  "a correction is made by a role that records the events of applications"},
    RecordingRule{"DocumentReviewed", kInspector | kDirector, kAssessment},
    RecordingRule{"SiteInspected", kInspector | kDirector, kAssessment},
    RecordingRule{"CallbackMade", kCallbackAgent | kDirector, kCallback},
    RecordingRule{"ReportDue", kDirector, kDirectorOnly},
    RecordingRule{"ReportSubmitted", kDirector, kDirectorOnly},
    RecordingRule{"ReportCorrected", kDirector, kDirectorOnly},
    RecordingRule{"ThirdPartySurveyRecorded", kDirector, kDirectorOnly},
    RecordingRule{"TrainingHeld", kDirector, kDirectorOnly},
};

}  // namespace

RoleBits RoleBit(std::string_view role) { return Bit(role); }

std::string RoleList(RoleBits roles) {
  std::vector<std::string_view> names;
  for (size_t i = 0; i < kRoleNames.size(); ++i) {
    if (roles & (1u << i)) names.push_back(kRoleNames[i]);
  }
  std::string joined;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) joined += i + 1 == names.size() ? " and " : ", ";
    joined += names[i];
  }
  return joined.empty() ? "no role" : joined;
}

const RecordingRule* RecordingRuleOf(std::string_view type) {
  for (const RecordingRule& rule : kRecordingRules) {
    if (rule.type == type) return &rule;
  }
  return nullptr;
}

bool RoleRecords(std::string_view role, std::string_view type) {
  const RecordingRule* rule = RecordingRuleOf(type);
  return rule != nullptr && (rule->roles & RoleBit(role)) != 0;
}

bool MayCorrect(std::string_view role, std::string_view type) {
  const RecordingRule* rule = RecordingRuleOf(type);
  return role.empty() || rule == nullptr || (rule->roles & RoleBit(role)) != 0;
}

}  // namespace gridledger::domain
