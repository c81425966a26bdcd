// StateTable: a bounded write-back cache of one projection's states over its side column family.
// Not thread-safe: the Engine serializes all use.
//
// States stay in memory while they are touched; dirty states reach the store only through
// WriteDirty (the Engine calls it together with the checkpoint, so the store always holds the
// states of one checkpoint). Evict() then drops the least recently touched clean states until the
// table's approximate size is under a byte or state limit. A table may keep evicted states frozen
// instead (KeepFrozen): in memory, in a form several times smaller than the decoded state, so
// that touching one again costs a decode rather than store reads; frozen states are dropped, the
// least recently touched first, only when freezing did not free enough.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ledger/assert.h"
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
  // Approximate memory of one frozen state beyond its key and frozen bytes (map node, string
  // headers, allocator rounding, its place in the eviction queue).
  static constexpr size_t kFrozenOverheadBytes = 192;

  // A state's frozen form (appended to `out`), and back: Thawer fills `state` and returns the
  // stored bytes it stands for (as a Loader does), or nullopt when `frozen` does not thaw.
  using Freezer = void (*)(const State&, std::string& out);
  using Thawer = std::optional<size_t> (*)(std::string_view frozen, State& state);

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

  // Evicted states are frozen with `freeze` rather than dropped (see the top of this file).
  void KeepFrozen(Freezer freeze, Thawer thaw) {
    freeze_ = freeze;
    thaw_ = thaw;
  }

  ledger::SideFamily family() const { return family_; }
  // Cached states, decoded and frozen.
  size_t size() const { return entries_.size() + frozen_.size(); }
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
  // `spill`, when given, is called whenever the batch holds at least kSpillBytes, to write it
  // and clear it (when the states need not reach the store in one batch, as in a rebuild).
  static constexpr size_t kSpillBytes = size_t{4} << 20;
  using Spill = std::function<ledger::Status(ledger::SideBatch&)>;
  ledger::Status WriteDirty(ledger::SideBatch& batch, const Spill& spill = {}) {
    std::vector<std::pair<const std::string*, Node*>> decoded;
    decoded.reserve(dirty_.size());
    for (Node* node : dirty_) decoded.emplace_back(&node->first, node);
    std::vector<std::pair<const std::string*, typename FrozenMap::iterator>> frozen;
    if (frozen_dirty_ > 0) {
      for (auto it = frozen_.begin(); it != frozen_.end(); ++it) {
        if (it->second.dirty) frozen.emplace_back(&it->first, it);
      }
    }
    auto by_key = [](const auto& a, const auto& b) { return *a.first < *b.first; };
    std::sort(decoded.begin(), decoded.end(), by_key);
    std::sort(frozen.begin(), frozen.end(), by_key);
    // Merged: one ascending run of keys.
    auto next_decoded = decoded.begin();
    auto next_frozen = frozen.begin();
    while (next_decoded != decoded.end() || next_frozen != frozen.end()) {
      const bool take_decoded =
          next_frozen == frozen.end() ||
          (next_decoded != decoded.end() && *next_decoded->first < *next_frozen->first);
      ledger::Status written = take_decoded ? WriteDecoded(*next_decoded++->second, batch)
                                            : WriteFrozen(next_frozen++->second, batch);
      if (written.ok() && spill && batch.ApproximateBytes() >= kSpillBytes) written = spill(batch);
      if (!written.ok()) return written;
    }
    dirty_.clear();
    return ledger::Status::Ok();
  }

  // Frees memory until at most `bytes_max` bytes and `states_max` states remain, least recently
  // touched states first: when the table keeps frozen states, freezes decoded ones until those
  // take half of `bytes_max`, then drops frozen ones; then decoded ones.
  // Without `write_back`, dirty states stay as they are (the Engine writes them only with their
  // checkpoint). With it (nothing needs the store to match a checkpoint, as in a rebuild), dirty
  // states are evicted too: frozen as they are, and put into `write_back` before they are
  // dropped. Errors come from writers; then `write_back` must not be written.
  ledger::Status Evict(size_t bytes_max, size_t states_max,
                       ledger::SideBatch* write_back = nullptr) {
    auto over = [&] { return bytes_ > bytes_max || size() > states_max; };
    if (!over()) return ledger::Status::Ok();
    const bool dirty_too = write_back != nullptr;
    // Recently touched states are likely to be touched again soon and stay decoded; the rest is
    // frozen, so the least recently touched ones dropped next are frozen ones.
    const size_t decoded_max = bytes_max / 2;
    if (freeze_ != nullptr && bytes_ - frozen_bytes_ > decoded_max) {
      const size_t decoded_bytes = bytes_ - frozen_bytes_;
      OldestFirst(
          Decoded(dirty_too),
          static_cast<double>(decoded_bytes - decoded_max) / static_cast<double>(decoded_bytes),
          [&] { return bytes_ - frozen_bytes_ > decoded_max; },
          [&](const auto& item) { Freeze(item.second); });
      if (dirty_too) ListDirty();  // some dirty states were frozen
    }
    ledger::Status dropped = ledger::Status::Ok();
    if (over() && !frozen_.empty()) {
      dropped = DropChosen(OldestFrozen(bytes_max, states_max, dirty_too), write_back);
    }
    if (dropped.ok() && over()) {
      dropped = Drop(Decoded(dirty_too), bytes_max, states_max, write_back);
      if (dirty_too) ListDirty();
    }
    return dropped;
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
  struct Frozen {
    std::string bytes;
    uint64_t tick = 0;
    bool dirty = false;  // only after an Evict with write-back
  };
  using FrozenMap = std::unordered_map<std::string, Frozen>;

  static size_t FrozenBytes(std::string_view key, const std::string& frozen) {
    return kFrozenOverheadBytes + key.size() + frozen.size();
  }

  // The decoded states with their ticks: clean ones, or all.
  std::vector<std::pair<uint64_t, typename Map::iterator>> Decoded(bool dirty_too) {
    std::vector<std::pair<uint64_t, typename Map::iterator>> decoded;
    decoded.reserve(entries_.size());
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (dirty_too || !it->second.dirty) decoded.emplace_back(it->second.tick, it);
    }
    return decoded;
  }

  // dirty_ anew, after dirty decoded states were frozen or dropped.
  void ListDirty() {
    dirty_.clear();
    for (Node& node : entries_) {
      if (node.second.dirty) dirty_.push_back(&node);
    }
  }

  // The share of states to drop to get under both bounds (by bytes or by count, whichever drops
  // more).
  double DropShare(size_t bytes_max, size_t states_max) const {
    return std::max(
        bytes_ > 0 ? 1.0 - static_cast<double>(bytes_max) / static_cast<double>(bytes_) : 0.0,
        size() == 0 ? 0.0 : 1.0 - static_cast<double>(states_max) / static_cast<double>(size()));
  }

  // Calls `evict(item)` on `items` (tick, iterator), oldest tick first, while `more()`. Only the
  // oldest part needs an order: about `share` of the items, with some slack; the rest is sorted
  // only when that was not enough.
  template <typename Item, typename More, typename EvictOne>
  static void OldestFirst(std::vector<Item> items, double share, More more, EvictOne evict) {
    if (items.empty()) return;
    auto older = [](const Item& a, const Item& b) { return a.first < b.first; };
    const size_t ordered = std::min(
        items.size(), static_cast<size_t>(static_cast<double>(items.size()) *
                                          std::min(1.0, std::max(0.0, share) * 1.25 + 0.01)) +
                          1);  // >= 1
    std::nth_element(items.begin(), items.begin() + (ordered - 1), items.end(), older);
    std::sort(items.begin(), items.begin() + ordered, older);
    for (size_t i = 0; i < items.size() && more(); ++i) {
      if (i == ordered) std::sort(items.begin() + i, items.end(), older);
      evict(items[i]);
    }
  }

  // Replaces a decoded state by its frozen form (dirty or not, as it was).
  void Freeze(typename Map::iterator node) {
    buffer_.clear();
    freeze_(node->second.state, buffer_);
    Frozen& frozen = frozen_[node->first];
    frozen.bytes.assign(buffer_);  // a fresh string: capacity = size
    frozen.tick = node->second.tick;
    frozen.dirty = node->second.dirty;
    frozen_dirty_ += frozen.dirty;
    bytes_ -= node->second.bytes;
    AddFrozenBytes(FrozenBytes(node->first, frozen.bytes));
    // States are frozen in tick order (the oldest decoded ones first, each newer than those frozen
    // by earlier evictions), so this queue is in least-recently-touched order.
    frozen_order_.emplace_back(frozen.tick, node->first);
    entries_.erase(node);
    if (frozen_order_.size() > 2 * frozen_.size() + 1024) CompactFrozenOrder();
  }

  ledger::Status WriteDecoded(Node& node, ledger::SideBatch& batch) {
    Entry& entry = node.second;
    buffer_.clear();
    ledger::Status written = write_(node.first, entry.state, batch, buffer_);
    if (!written.ok()) return written;
    bytes_ -= entry.bytes;
    entry.bytes = EstimateBytes(node.first, buffer_.size()) + ExtraBytes(entry.state);
    bytes_ += entry.bytes;
    entry.dirty = false;
    return ledger::Status::Ok();
  }

  // Writes a dirty frozen state: thawed, written, and frozen again (a writer may change a state,
  // as split states do).
  ledger::Status WriteFrozen(typename FrozenMap::iterator it, ledger::SideBatch& batch) {
    State state{};
    if (!thaw_(it->second.bytes, state)) return DoesNotThaw(it->first);
    buffer_.clear();
    ledger::Status written = write_(it->first, state, batch, buffer_);
    if (!written.ok()) return written;
    buffer_.clear();
    freeze_(state, buffer_);
    SubtractFrozenBytes(FrozenBytes(it->first, it->second.bytes));
    it->second.bytes.assign(buffer_);
    AddFrozenBytes(FrozenBytes(it->first, it->second.bytes));
    it->second.dirty = false;
    --frozen_dirty_;
    return ledger::Status::Ok();
  }

  // Drops states of `items` (tick, iterator into entries_), oldest first, until under both
  // bounds.
  ledger::Status Drop(std::vector<std::pair<uint64_t, typename Map::iterator>> items,
                      size_t bytes_max, size_t states_max, ledger::SideBatch* write_back) {
    size_t bytes_left = bytes_;
    size_t states_left = size();
    std::vector<typename Map::iterator> dropped;
    OldestFirst(
        std::move(items), DropShare(bytes_max, states_max),
        [&] { return bytes_left > bytes_max || states_left > states_max; },
        [&](const auto& item) {
          bytes_left -= BytesOf(item.second);
          --states_left;
          dropped.push_back(item.second);
        });
    return DropChosen(std::move(dropped), write_back);
  }

  // The frozen states to drop, least recently touched first, until under both bounds: taken from
  // the front of frozen_order_, skipping states thawed since they were queued.
  std::vector<typename FrozenMap::iterator> OldestFrozen(size_t bytes_max, size_t states_max,
                                                         bool dirty_too) {
    size_t bytes_left = bytes_;
    size_t states_left = size();
    std::vector<typename FrozenMap::iterator> chosen;
    std::deque<std::pair<uint64_t, std::string>> kept;  // dirty ones that may not be dropped
    while ((bytes_left > bytes_max || states_left > states_max) && !frozen_order_.empty()) {
      auto [tick, key] = std::move(frozen_order_.front());
      frozen_order_.pop_front();
      auto it = frozen_.find(key);
      if (it == frozen_.end() || it->second.tick != tick) continue;  // thawed since
      if (it->second.dirty && !dirty_too) {
        kept.emplace_back(tick, std::move(key));
        continue;
      }
      bytes_left -= BytesOf(it);
      --states_left;
      chosen.push_back(it);
    }
    frozen_order_.insert(frozen_order_.begin(), std::make_move_iterator(kept.begin()),
                         std::make_move_iterator(kept.end()));
    return chosen;
  }

  // Drops `dropped` (iterators into entries_ or frozen_); dirty ones are first put into
  // `write_back`, in key order.
  template <typename Iterator>
  ledger::Status DropChosen(std::vector<Iterator> dropped, ledger::SideBatch* write_back) {
    std::sort(dropped.begin(), dropped.end(),
              [](const Iterator& a, const Iterator& b) { return a->first < b->first; });
    for (const Iterator& it : dropped) {
      if (!it->second.dirty) continue;
      LEDGER_ASSERT(write_back != nullptr);
      ledger::Status written = WriteOne(it, *write_back);
      if (!written.ok()) return written;
    }
    for (const Iterator& it : dropped) {
      if (!store_may_hold_states_) RememberEvicted(it->first);
      Erase(it);
    }
    return ledger::Status::Ok();
  }
  size_t BytesOf(typename Map::iterator it) const { return it->second.bytes; }
  size_t BytesOf(typename FrozenMap::iterator it) const {
    return FrozenBytes(it->first, it->second.bytes);
  }
  ledger::Status WriteOne(typename Map::iterator it, ledger::SideBatch& batch) {
    return WriteDecoded(*it, batch);
  }
  ledger::Status WriteOne(typename FrozenMap::iterator it, ledger::SideBatch& batch) {
    return WriteFrozen(it, batch);
  }
  void Erase(typename Map::iterator it) {
    bytes_ -= it->second.bytes;
    entries_.erase(it);
  }
  void Erase(typename FrozenMap::iterator it) {
    SubtractFrozenBytes(BytesOf(it));
    frozen_.erase(it);
  }
  void AddFrozenBytes(size_t bytes) {
    bytes_ += bytes;
    frozen_bytes_ += bytes;
  }
  void SubtractFrozenBytes(size_t bytes) {
    bytes_ -= bytes;
    frozen_bytes_ -= bytes;
  }

  // Drops the queue entries of states thawed since they were queued, so the queue stays within
  // twice the frozen states.
  void CompactFrozenOrder() {
    std::erase_if(frozen_order_, [&](const auto& queued) {
      auto it = frozen_.find(queued.second);
      return it == frozen_.end() || it->second.tick != queued.first;
    });
  }

  static ledger::Status DoesNotThaw(std::string_view key) {
    return ledger::Status(ledger::Code::kCorruption,
                          "cached state at key " + std::string(key) + " does not thaw");
  }

  static size_t EstimateBytes(std::string_view key, size_t encoded_bytes) {
    // Decoded states take about twice their encoded size (string and vector headers).
    return kStateOverheadBytes + key.size() + 2 * encoded_bytes;
  }

  size_t ExtraBytes(const State& state) const {
    return extra_bytes_ != nullptr ? extra_bytes_(state) : 0;
  }

  // The state at `key` (also in lookup_) for a miss of the decoded cache: thawed, loaded or new.
  ledger::Result<Entry> Load(std::string_view key) {
    Entry entry{make_ != nullptr ? make_(key) : State{}};
    entry.bytes = EstimateBytes(key, 0);
    if (auto frozen = frozen_.find(lookup_); frozen != frozen_.end()) {
      std::optional<size_t> thawed = thaw_(frozen->second.bytes, entry.state);
      if (!thawed) return DoesNotThaw(key);
      frozen_dirty_ -= frozen->second.dirty;  // Mutable marks the decoded state dirty
      SubtractFrozenBytes(FrozenBytes(key, frozen->second.bytes));
      frozen_.erase(frozen);
      entry.bytes = EstimateBytes(key, *thawed) + ExtraBytes(entry.state);
      return entry;
    }
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
    frozen_.clear();
    frozen_order_.clear();
    frozen_dirty_ = 0;
    frozen_bytes_ = 0;
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
  Freezer freeze_ = nullptr;  // nullptr: evicted states are dropped
  Thawer thaw_ = nullptr;
  Map entries_;       // decoded states
  FrozenMap frozen_;  // states in frozen form (only with KeepFrozen)
  // (tick, key) of frozen states, least recently touched first; entries of states thawed since
  // are skipped (and compacted away).
  std::deque<std::pair<uint64_t, std::string>> frozen_order_;
  size_t frozen_dirty_ = 0;   // frozen states not yet written
  size_t frozen_bytes_ = 0;   // the part of bytes_ held by frozen states
  std::vector<Node*> dirty_;  // nodes of an unordered_map keep their address until erased
  size_t bytes_ = 0;
  std::string buffer_;  // reused encoding buffer
  std::string lookup_;  // reused key buffer
  bool store_may_hold_states_ = true;
  std::vector<uint64_t> evicted_filter_;  // empty until the first eviction after StartEmpty
};

}  // namespace gridledger::projections
