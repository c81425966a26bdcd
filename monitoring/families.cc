#include "families.h"

#include <limits>

#include "ledger/assert.h"

namespace gridledger::monitoring::internal {

prometheus::MetricFamily NewFamily(std::string name, std::string help,
                                   prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

namespace {

prometheus::ClientMetric WithLabels(LabelList labels) {
  prometheus::ClientMetric metric;
  metric.label.reserve(labels.size());
  for (const auto& [name, value] : labels) {
    metric.label.push_back({std::string(name), std::string(value)});
  }
  return metric;
}

}  // namespace

void AddSample(prometheus::MetricFamily& family, LabelList labels, double value) {
  prometheus::ClientMetric metric = WithLabels(labels);
  switch (family.type) {
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  family.metric.push_back(std::move(metric));
}

void AddHistogram(prometheus::MetricFamily& family, LabelList labels,
                  std::span<const double> upper_bounds, std::span<const uint64_t> cumulative_counts,
                  uint64_t count, double sum) {
  LEDGER_ASSERT(upper_bounds.size() == cumulative_counts.size());
  prometheus::ClientMetric metric = WithLabels(labels);
  metric.histogram.sample_count = count;
  metric.histogram.sample_sum = sum;
  metric.histogram.bucket.reserve(upper_bounds.size() + 1);
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    metric.histogram.bucket.push_back({cumulative_counts[i], upper_bounds[i]});
  }
  metric.histogram.bucket.push_back({count, std::numeric_limits<double>::infinity()});
  family.metric.push_back(std::move(metric));
}

prometheus::MetricFamily Single(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family = NewFamily(std::move(name), std::move(help), type);
  AddSample(family, {}, value);
  return family;
}

}  // namespace gridledger::monitoring::internal
