// Small JSON helpers shared by the projections' ToJson functions (private to projections/).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

namespace gridledger::projections {

// A JSON array of to_json(item) for every item, in order.
template <typename T, typename F>
nlohmann::json ArrayOf(const std::vector<T>& items, F to_json) {
  nlohmann::json out = nlohmann::json::array();
  for (const T& item : items) out.push_back(to_json(item));
  return out;
}

}  // namespace gridledger::projections
