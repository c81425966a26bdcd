// ServerMetrics: the Service's probe (server/probe.h) as Prometheus counters.
//
// Families:
//   gridledger_appends_total{type,result}          counter: client appends by event type (the
//                                                   domain's types, else "other") and result (ok,
//                                                   duplicate, or the refusal: unauthenticated,
//                                                   forbidden, invalid, conflict,
//                                                   duplicate_mismatch, busy, not_found,
//                                                   unavailable, internal)
//   gridledger_rejected_inputs_total{reason,rule}  counter: refused requests (appends and access
//                                                   checks) by reason and, when a rule refused
//                                                   them, the rule id ("" otherwise)
//   gridledger_workflow_violations_total{rule}     counter: stored events flagged as violations
//
// Label values are bounded: types by the domain's schema, reasons by ErrorKind, rule ids by the
// rule tables, and in any case at most kRuleValuesMax distinct rule values (then "other").
// A call on the append path is a lookup in a fixed table and an atomic increment; only the first
// use of a (type, result) pair or a rule registers a series.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/probe.h"

namespace gridledger::monitoring {

class ServerMetrics : public server::ServerProbe {
 public:
  static constexpr size_t kRuleValuesMax = 64;

  // Adds the families to `registry`, which must outlive this object.
  explicit ServerMetrics(prometheus::Registry& registry);

  uint32_t TypeToken(std::string_view type) override;
  void OnAppendAnswered(uint32_t type_token, const server::AppendAnswer& answer) override;
  void OnRefused(server::ErrorKind kind, std::string_view rule) override;

 private:
  static constexpr size_t kErrorKindCount = static_cast<size_t>(server::ErrorKind::kInternal) + 1;
  static constexpr size_t kResultCount = 2 + kErrorKindCount;  // ok, duplicate, refusals

  prometheus::Counter& AppendCounter(uint32_t type_token, size_t result);
  prometheus::Counter& RuleCounter(prometheus::Family<prometheus::Counter>& family,
                                   std::map<std::string, prometheus::Counter*, std::less<>>& known,
                                   std::string_view reason, std::string_view rule);

  prometheus::Family<prometheus::Counter>& appends_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& violations_;
  std::vector<std::string> types_;  // sorted; token = index, types_.size() = "other"
  // [token * kResultCount + result], registered on first use
  std::unique_ptr<std::atomic<prometheus::Counter*>[]> append_counters_;

  std::mutex rules_mutex_;  // guards the maps below (refusals and violations are not hot)
  std::map<std::string, prometheus::Counter*, std::less<>> rejected_by_key_;  // "reason\0rule"
  std::map<std::string, prometheus::Counter*, std::less<>> violations_by_rule_;
  size_t rule_values_ = 0;
};

}  // namespace gridledger::monitoring
