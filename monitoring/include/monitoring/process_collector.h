// ProcessCollector: the standard process_* metrics of Prometheus clients (CPU time, resident and
// virtual memory, open and maximum file descriptors, start time) plus process_threads, read from
// /proc/self at scrape time. Linux only; a file that cannot be read leaves its families out.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace gridledger::monitoring {

class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace gridledger::monitoring
