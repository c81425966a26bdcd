// Building prometheus::MetricFamily values by hand, for the scrape-time collectors.
#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace gridledger::monitoring::internal {

using LabelList = std::initializer_list<std::pair<std::string_view, std::string_view>>;

prometheus::MetricFamily NewFamily(std::string name, std::string help, prometheus::MetricType type);

// Appends one sample of a gauge or counter family (by the family's type).
void AddSample(prometheus::MetricFamily& family, LabelList labels, double value);

// Appends one histogram sample: cumulative counts per upper bound (+Inf added), count and sum.
void AddHistogram(prometheus::MetricFamily& family, LabelList labels,
                  std::span<const double> upper_bounds, std::span<const uint64_t> cumulative_counts,
                  uint64_t count, double sum);

// A one-sample family without labels.
prometheus::MetricFamily Single(std::string name, std::string help, prometheus::MetricType type,
                                double value);

}  // namespace gridledger::monitoring::internal
