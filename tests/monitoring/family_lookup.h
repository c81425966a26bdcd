// Reading values out of collected prometheus::MetricFamily lists, for the monitoring tests.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gridledger::monitoring::testing {

using Families = std::vector<prometheus::MetricFamily>;
using LabelMap = std::map<std::string, std::string>;

inline const prometheus::MetricFamily* FindFamily(const Families& families, std::string_view name) {
  for (const auto& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

inline LabelMap LabelsOf(const prometheus::ClientMetric& metric) {
  LabelMap labels;
  for (const auto& label : metric.label) labels[label.name] = label.value;
  return labels;
}

inline double SampleValue(const prometheus::MetricFamily& family,
                          const prometheus::ClientMetric& metric) {
  switch (family.type) {
    case prometheus::MetricType::Counter:
      return metric.counter.value;
    case prometheus::MetricType::Gauge:
      return metric.gauge.value;
    case prometheus::MetricType::Histogram:
      return static_cast<double>(metric.histogram.sample_count);
    default:
      return metric.untyped.value;
  }
}

// True when every label of `subset` is on the metric with that value.
inline bool Matches(const prometheus::ClientMetric& metric, const LabelMap& subset) {
  const LabelMap labels = LabelsOf(metric);
  for (const auto& [name, value] : subset) {
    auto it = labels.find(name);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

// The sum over the samples of `name` matching `subset` (histograms: their counts); nullopt when the
// family is missing or no sample matches.
inline std::optional<double> Sum(const Families& families, std::string_view name,
                                 const LabelMap& subset = {}) {
  const prometheus::MetricFamily* family = FindFamily(families, name);
  if (family == nullptr) return std::nullopt;
  std::optional<double> sum;
  for (const auto& metric : family->metric) {
    if (Matches(metric, subset)) sum = sum.value_or(0) + SampleValue(*family, metric);
  }
  return sum;
}

}  // namespace gridledger::monitoring::testing
