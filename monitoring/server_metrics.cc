#include "monitoring/server_metrics.h"

#include <algorithm>

#include "domain/event_json.h"

namespace gridledger::monitoring {

namespace {

using server::ErrorKind;

std::string_view KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUnauthenticated:
      return "unauthenticated";
    case ErrorKind::kForbidden:
      return "forbidden";
    case ErrorKind::kInvalid:
      return "invalid";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kDuplicateMismatch:
      return "duplicate_mismatch";
    case ErrorKind::kBusy:
      return "busy";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

constexpr size_t kRuleBytesMax = 64;

// Rule ids are lower_snake identifiers from code tables; anything else is not a label value.
bool PlausibleRule(std::string_view rule) {
  return rule.size() <= kRuleBytesMax && std::all_of(rule.begin(), rule.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
         });
}

std::string_view RuleOf(const server::ServiceError& error) {
  auto rule = error.error.find("rule");
  if (rule == error.error.end() || !rule->is_string()) return "";
  return rule->get_ref<const std::string&>();
}

}  // namespace

ServerMetrics::ServerMetrics(prometheus::Registry& registry)
    : appends_(prometheus::BuildCounter()
                   .Name("gridledger_appends_total")
                   .Help("Client appends answered by ledgerd, by event type and result")
                   .Register(registry)),
      rejected_(prometheus::BuildCounter()
                    .Name("gridledger_rejected_inputs_total")
                    .Help("Requests refused by ledgerd, by reason and rule (\"\" when no rule "
                          "applies)")
                    .Register(registry)),
      violations_(prometheus::BuildCounter()
                      .Name("gridledger_workflow_violations_total")
                      .Help("Appended events stored and flagged as workflow violations, by rule")
                      .Register(registry)),
      types_(domain::KnownTypes()) {
  std::sort(types_.begin(), types_.end());
  const size_t slots = (types_.size() + 1) * kResultCount;
  append_counters_ = std::make_unique<std::atomic<prometheus::Counter*>[]>(slots);
  for (size_t i = 0; i < slots; ++i) append_counters_[i].store(nullptr);
  // Every reason exists from the start (zeros), so rates and alerts see the series.
  std::lock_guard lock(rules_mutex_);
  for (size_t kind = 0; kind < kErrorKindCount; ++kind) {
    RuleCounter(rejected_, rejected_by_key_, KindName(static_cast<ErrorKind>(kind)), "");
  }
  // And one type's ok count, for the same reason.
  AppendCounter(TypeToken("ApplicationAccepted"), 0);
}

uint32_t ServerMetrics::TypeToken(std::string_view type) {
  auto it = std::lower_bound(types_.begin(), types_.end(), type,
                             [](const std::string& a, std::string_view b) { return a < b; });
  if (it == types_.end() || *it != type) return static_cast<uint32_t>(types_.size());
  return static_cast<uint32_t>(it - types_.begin());
}

prometheus::Counter& ServerMetrics::AppendCounter(uint32_t type_token, size_t result) {
  type_token = std::min<uint32_t>(type_token, static_cast<uint32_t>(types_.size()));
  std::atomic<prometheus::Counter*>& slot = append_counters_[type_token * kResultCount + result];
  if (prometheus::Counter* counter = slot.load(std::memory_order_acquire)) return *counter;
  const std::string type = type_token < types_.size() ? types_[type_token] : "other";
  std::string result_name = "ok";
  if (result == 1) result_name = "duplicate";
  if (result >= 2) result_name = KindName(static_cast<ErrorKind>(result - 2));
  // Family::Add returns the existing series when two threads race here.
  prometheus::Counter& counter = appends_.Add({{"type", type}, {"result", result_name}});
  slot.store(&counter, std::memory_order_release);
  return counter;
}

prometheus::Counter& ServerMetrics::RuleCounter(
    prometheus::Family<prometheus::Counter>& family,
    std::map<std::string, prometheus::Counter*, std::less<>>& known, std::string_view reason,
    std::string_view rule) {
  if (!PlausibleRule(rule)) rule = "other";
  std::string key = std::string(reason) + '\0' + std::string(rule);
  auto it = known.find(key);
  if (it != known.end()) return *it->second;
  if (!rule.empty() && rule != "other" && rule_values_ >= kRuleValuesMax) {
    return RuleCounter(family, known, reason, "other");
  }
  if (!rule.empty()) ++rule_values_;
  std::map<std::string, std::string> labels;
  if (&family == &rejected_) {
    labels = {{"reason", std::string(reason)}, {"rule", std::string(rule)}};
  } else {
    labels = {{"rule", std::string(rule)}};
  }
  prometheus::Counter& counter = family.Add(labels);
  known.emplace(std::move(key), &counter);
  return counter;
}

void ServerMetrics::OnAppendAnswered(uint32_t type_token, const server::AppendAnswer& answer) {
  if (const auto* outcome = std::get_if<ingest::IngestOutcome>(&answer)) {
    AppendCounter(type_token, outcome->appended.duplicate ? 1 : 0).Increment();
    if (outcome->violations.empty()) return;
    std::lock_guard lock(rules_mutex_);
    for (const domain::RuleBreach& violation : outcome->violations) {
      RuleCounter(violations_, violations_by_rule_, "", violation.rule).Increment();
    }
    return;
  }
  const auto& error = std::get<server::ServiceError>(answer);
  AppendCounter(type_token, 2 + static_cast<size_t>(error.kind)).Increment();
  std::lock_guard lock(rules_mutex_);
  RuleCounter(rejected_, rejected_by_key_, KindName(error.kind), RuleOf(error)).Increment();
}

void ServerMetrics::OnRefused(server::ErrorKind kind, std::string_view rule) {
  std::lock_guard lock(rules_mutex_);
  RuleCounter(rejected_, rejected_by_key_, KindName(kind), rule).Increment();
}

}  // namespace gridledger::monitoring
