// StateTable: a bounded write-back cache of one projection's states over its side column family.
// Not thread-safe: the Engine serializes all use.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "ledger/ledger.h"

namespace gridledger::projections {

template <typename State>
class StateTable {
 public:
  using Encoder = std::string (*)(const State&);
  using Decoder = std::optional<State> (*)(std::string_view);
  // The state a key starts from before any event; default: State{}.
  using Maker = std::function<State(const std::string& key)>;

  StateTable(
      ledger::Ledger& ledger, ledger::SideFamily family, Encoder encode, Decoder decode,
      Maker make = [](const std::string&) { return State{}; })
      : ledger_(ledger), family_(family), encode_(encode), decode_(decode), make_(make) {}

  ledger::SideFamily family() const { return family_; }
  size_t size() const { return entries_.size(); }

  // The state at `key` for changing: from the cache, else the store, else a new default state.
  // Marks it dirty. kCorruption when stored bytes do not decode.
  ledger::Result<State*> Mutable(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      State loaded = make_(key);
      if (store_may_hold_states_) {
        auto stored = ledger_.GetSide(family_, key);
        if (!stored.ok()) return stored.status();
        if (stored->has_value()) {
          std::optional<State> decoded = decode_(**stored);
          if (!decoded) {
            return ledger::Status(ledger::Code::kCorruption,
                                  "projection state at key " + key + " does not decode");
          }
          loaded = std::move(*decoded);
        }
      }
      it = entries_.emplace(key, std::move(loaded)).first;
    }
    dirty_.insert(key);
    return &it->second;
  }

  // Writes every dirty state into `batch` and marks them clean.
  void WriteDirty(ledger::SideBatch& batch) {
    for (const std::string& key : dirty_) batch.Put(family_, key, encode_(entries_.at(key)));
    dirty_.clear();
  }

  // Forgets cached states (they are in the store, or must be reloaded from it).
  void Forget(const std::string& key) {
    entries_.erase(key);
    dirty_.erase(key);
  }
  void ForgetAll() {
    entries_.clear();
    dirty_.clear();
    store_may_hold_states_ = true;
  }
  // After the family was cleared: misses need not read the store until something is written.
  void StartEmpty() {
    entries_.clear();
    dirty_.clear();
    store_may_hold_states_ = false;
  }
  const std::unordered_set<std::string>& dirty() const { return dirty_; }

  // A state as stored (the cache is not consulted: callers flush first).
  ledger::Result<std::optional<State>> Stored(std::string_view key) const {
    auto stored = ledger_.GetSide(family_, key);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return std::optional<State>();
    std::optional<State> decoded = decode_(**stored);
    if (!decoded) return ledger::Status(ledger::Code::kCorruption, "projection state undecodable");
    return decoded;
  }

  // Visits stored states whose key starts with `prefix`, in key order.
  ledger::Status ForEachStored(std::string_view prefix,
                               const std::function<bool(const State&)>& visit) const {
    ledger::Status failure;
    ledger::Status scanned =
        ledger_.ScanSide(family_, prefix, [&](std::string_view, std::string_view bytes) {
          std::optional<State> state = decode_(bytes);
          if (!state) {
            failure = ledger::Status(ledger::Code::kCorruption, "projection state undecodable");
            return false;
          }
          return visit(*state);
        });
    return scanned.ok() ? failure : scanned;
  }

 private:
  ledger::Ledger& ledger_;
  const ledger::SideFamily family_;
  const Encoder encode_;
  const Decoder decode_;
  const Maker make_;
  std::unordered_map<std::string, State> entries_;
  std::unordered_set<std::string> dirty_;
  bool store_may_hold_states_ = true;
};

}  // namespace gridledger::projections
