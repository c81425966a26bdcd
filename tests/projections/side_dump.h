// Test helper: every key and value of every projection family, for byte-for-byte comparisons of
// stored projections (inline = catch-up = rebuild).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger.h"
#include "projections/engine.h"

namespace gridledger::testing {

// "<family>/<key>" → value.
using SideDump = std::map<std::string, std::string>;

inline SideDump DumpSideFamilies(const ledger::Ledger& ledger) {
  SideDump all;
  const std::vector<std::string> families = projections::SideFamilies();
  for (ledger::SideFamily family = 0; family < families.size(); ++family) {
    EXPECT_TRUE(ledger
                    .ScanSide(family, "",
                              [&](std::string_view key, std::string_view value) {
                                all.emplace(families[family] + "/" + std::string(key),
                                            std::string(value));
                                return true;
                              })
                    .ok());
  }
  return all;
}

}  // namespace gridledger::testing
