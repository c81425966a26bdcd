// StateTable: a bounded write-back cache of one projection's states over its side column family.
// Not thread-safe: the Engine serializes all use.
//
// States stay in memory while they are touched; dirty states reach the store only through
// WriteDirty (the Engine calls it together with the checkpoint, so the store always holds the
// states of one checkpoint). Evict() then drops the least recently touched clean states until the
// table's approximate size is under a byte or state limit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ledger/ledger.h"

namespace gridledger::projections {

template <typename State>
class StateTable {
 public:
  // Appends the stored bytes of a state to `out`.
  using Encoder = void (*)(const State&, std::string& out);
  using Decoder = std::optional<State> (*)(std::string_view);
  // The state a key starts from before any event; nullptr: State{}.
  using Maker = State (*)(std::string_view key);
  // Reads the stored state at `key` into `state` (left as made when nothing is stored) and
  // returns how many stored bytes it read (0: nothing stored). Errors: store reads, kCorruption.
  using Loader = std::function<ledger::Result<size_t>(std::string_view key, State& state)>;
  // Puts a dirty state into `batch` under `key` (and, for split states, keys under it), leaving
  // in `kept` the bytes of what stays cached (the size estimate of the state from then on). May
  // change the state (a split state drops the items it wrote). Errors come from store reads.
  using Writer = std::function<ledger::Status(std::string_view key, State& state,
                                              ledger::SideBatch& batch, std::string& kept)>;

  // Approximate memory of one cached state beyond its encoded bytes (node, key, vectors).
  static constexpr size_t kStateOverheadBytes = sizeof(State) + 128;
  // Approximate growth of a state per event folded into it, until its next WriteDirty.
  static constexpr size_t kTouchBytes = 96;

  StateTable(ledger::Ledger& ledger, ledger::SideFamily family, Encoder encode, Decoder decode,
             Maker make = nullptr)
      : ledger_(ledger),
        family_(family),
        write_([this](std::string_view key, State& state, ledger::SideBatch& batch,
                      std::string& kept) {
          encode_(state, kept);
          batch.Put(family_, key, kept);
          return ledger::Status::Ok();
        }),
        encode_(encode),
        decode_(decode),
        make_(make) {}
  // A table whose states are written by `write` and whose stored bytes at a key decode with
  // `decode` (a split state: only its head).
  StateTable(ledger::Ledger& ledger, ledger::SideFamily family, Writer write, Decoder decode,
             Maker make)
      : ledger_(ledger),
        family_(family),
        write_(std::move(write)),
        encode_(nullptr),
        decode_(decode),
        make_(make) {}
  // Memory a state holds beyond twice the bytes its writer leaves in `kept` (or its loader
  // reports), e.g. items kept encoded.
  using Sizer = size_t (*)(const State&);
  // A table whose states are written by `write` and read back by `load` (a state kept under
  // more than one key or family). Stored() and ForEachStored() are not available.
  StateTable(ledger::Ledger& ledger, ledger::SideFamily family, Writer write, Loader load,
             Sizer extra_bytes)
      : ledger_(ledger),
        family_(family),
        write_(std::move(write)),
        load_(std::move(load)),
        encode_(nullptr),
        decode_(nullptr),
        make_(nullptr),
        extra_bytes_(extra_bytes) {}
  StateTable(const StateTable&) = delete;
  StateTable& operator=(const StateTable&) = delete;

  ledger::SideFamily family() const { return family_; }
  size_t size() const { return entries_.size(); }
  // The approximate memory held by cached states.
  size_t bytes() const { return bytes_; }

  // The state at `key` for changing: from the cache, else the store, else a new default state.
  // Marks it dirty and touched at `tick` (a monotonic clock for eviction order, e.g. the event
  // position). kCorruption when stored bytes do not decode.
  ledger::Result<State*> Mutable(std::string_view key, uint64_t tick) {
    lookup_.assign(key);  // a reused buffer: no allocation per lookup
    auto it = entries_.find(lookup_);
    if (it == entries_.end()) {
      auto loaded = Load(key);
      if (!loaded.ok()) return loaded.status();
      it = entries_.emplace(lookup_, std::move(*loaded)).first;
      bytes_ += it->second.bytes;
    }
    Entry& entry = it->second;
    entry.tick = tick;
    entry.bytes += kTouchBytes;
    bytes_ += kTouchBytes;
    if (!entry.dirty) {
      entry.dirty = true;
      dirty_.push_back(&*it);
    }
    return &entry.state;
  }

  // Writes every dirty state into `batch` and marks them clean. On error the batch must not be
  // written (some states may be in it, others not).
  // States are put in key order: RocksDB inserts ascending keys into a memtable much faster than
  // scattered ones.
  ledger::Status WriteDirty(ledger::SideBatch& batch) {
    std::sort(dirty_.begin(), dirty_.end(),
              [](const Node* a, const Node* b) { return a->first < b->first; });
    for (Node* node : dirty_) {
      Entry& entry = node->second;
      buffer_.clear();
      ledger::Status written = write_(node->first, entry.state, batch, buffer_);
      if (!written.ok()) return written;
      bytes_ -= entry.bytes;
      entry.bytes = EstimateBytes(node->first, buffer_.size()) + ExtraBytes(entry.state);
      bytes_ += entry.bytes;
      entry.dirty = false;
    }
    dirty_.clear();
    return ledger::Status::Ok();
  }

  // Drops clean states, least recently touched first, until at most `bytes_max` bytes and
  // `states_max` states remain (dirty states are never dropped).
  void Evict(size_t bytes_max, size_t states_max) {
    if (bytes_ <= bytes_max && entries_.size() <= states_max) return;
    std::vector<std::pair<uint64_t, typename Map::iterator>> clean;
    clean.reserve(entries_.size());
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.dirty) clean.emplace_back(it->second.tick, it);
    }
    if (clean.empty()) return;
    auto older = [](const auto& a, const auto& b) { return a.first < b.first; };
    // Only the oldest part needs an order: the share of states to drop (by bytes or by count,
    // whichever drops more), with some slack; sorted in full only when that was not enough.
    const double drop_share = std::max(
        bytes_ > 0 ? 1.0 - static_cast<double>(bytes_max) / static_cast<double>(bytes_) : 0.0,
        entries_.empty()
            ? 0.0
            : 1.0 - static_cast<double>(states_max) / static_cast<double>(entries_.size()));
    const size_t ordered =
        std::min(clean.size(), static_cast<size_t>(static_cast<double>(clean.size()) *
                                                   std::min(1.0, drop_share * 1.25 + 0.01)) +
                                   1);  // >= 1
    std::nth_element(clean.begin(), clean.begin() + (ordered - 1), clean.end(), older);
    std::sort(clean.begin(), clean.begin() + ordered, older);
    for (size_t i = 0; i < clean.size(); ++i) {
      if (bytes_ <= bytes_max && entries_.size() <= states_max) break;
      if (i == ordered) std::sort(clean.begin() + i, clean.end(), older);
      const auto node = clean[i].second;
      if (!store_may_hold_states_) RememberEvicted(node->first);
      bytes_ -= node->second.bytes;
      entries_.erase(node);
    }
  }

  void ForgetAll() {
    Clear();
    store_may_hold_states_ = true;
    evicted_filter_.clear();
  }
  // After the family was cleared: misses need not read the store, except for keys evicted since
  // (a filter of them is kept until ForgetAll).
  void StartEmpty() {
    Clear();
    store_may_hold_states_ = false;
    evicted_filter_.clear();
  }

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
  struct Entry {
    State state;
    uint64_t tick = 0;
    size_t bytes = 0;
    bool dirty = false;
  };
  using Map = std::unordered_map<std::string, Entry>;
  using Node = typename Map::value_type;

  static size_t EstimateBytes(std::string_view key, size_t encoded_bytes) {
    // Decoded states take about twice their encoded size (string and vector headers).
    return kStateOverheadBytes + key.size() + 2 * encoded_bytes;
  }

  size_t ExtraBytes(const State& state) const {
    return extra_bytes_ != nullptr ? extra_bytes_(state) : 0;
  }

  ledger::Result<Entry> Load(std::string_view key) {
    Entry entry{make_ != nullptr ? make_(key) : State{}};
    entry.bytes = EstimateBytes(key, 0);
    if (!store_may_hold_states_ && !MayHaveEvicted(key)) return entry;
    if (load_) {
      auto loaded = load_(key, entry.state);
      if (!loaded.ok()) return loaded.status();
      entry.bytes = EstimateBytes(key, *loaded) + ExtraBytes(entry.state);
      return entry;
    }
    auto stored = ledger_.GetSide(family_, key);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return entry;
    std::optional<State> decoded = decode_(**stored);
    if (!decoded) {
      return ledger::Status(ledger::Code::kCorruption,
                            "projection state at key " + std::string(key) + " does not decode");
    }
    entry.state = std::move(*decoded);
    entry.bytes = EstimateBytes(key, (*stored)->size());
    return entry;
  }

  // A Bloom filter of evicted keys (a false positive costs one store read).
  static constexpr size_t kFilterBits = size_t{1} << 24;  // 2 MiB; ~1% false positives at 1.4M
  static constexpr int kFilterProbes = 3;
  template <typename F>
  static void ForEachProbe(std::string_view key, F&& probe) {
    const uint64_t hash = std::hash<std::string_view>{}(key);
    const uint64_t step = (hash >> 32) | 1;
    for (int i = 0; i < kFilterProbes; ++i) probe((hash + i * step) % kFilterBits);
  }
  void RememberEvicted(std::string_view key) {
    if (evicted_filter_.empty()) evicted_filter_.assign(kFilterBits / 64, 0);
    ForEachProbe(key,
                 [&](uint64_t bit) { evicted_filter_[bit / 64] |= uint64_t{1} << (bit % 64); });
  }
  bool MayHaveEvicted(std::string_view key) const {
    if (evicted_filter_.empty()) return false;
    bool all = true;
    ForEachProbe(key, [&](uint64_t bit) {
      all = all && (evicted_filter_[bit / 64] >> (bit % 64) & 1) != 0;
    });
    return all;
  }

  void Clear() {
    entries_.clear();
    dirty_.clear();
    bytes_ = 0;
  }

  ledger::Ledger& ledger_;
  const ledger::SideFamily family_;
  const Writer write_;
  const Loader load_;  // empty: one stored value per key, read with decode_
  const Encoder encode_;
  const Decoder decode_;
  const Maker make_;
  const Sizer extra_bytes_ = nullptr;
  Map entries_;
  std::vector<Node*> dirty_;  // nodes of an unordered_map keep their address until erased
  size_t bytes_ = 0;
  std::string buffer_;  // reused encoding buffer
  std::string lookup_;  // reused key buffer
  bool store_may_hold_states_ = true;
  std::vector<uint64_t> evicted_filter_;  // empty until the first eviction after StartEmpty
};

}  // namespace gridledger::projections
