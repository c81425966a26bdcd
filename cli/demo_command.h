// ledgerctl demo: loads a generated, realistic workload (ingest/demo_workload.h) through the same
// front door as any client (decoding and workflow rules), then brings the projections up to date.
#pragma once

#include <cstdint>
#include <ostream>

#include "context.h"

namespace gridledger::cli {

int DemoCommand(const DataOptions& options, uint64_t apps, uint64_t seed, std::ostream& out);

}  // namespace gridledger::cli
