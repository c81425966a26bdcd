// KeyIndex: a hash index from string keys to items the caller owns, for caches whose lookups
// dominate (StateTable). Open addressing with linear probing: each slot holds the key's hash and
// the item, so a lookup reads one slot line and, on a hash match, the item itself — where a
// node-based map walks a bucket array, a list node and the key's separate bytes. Prefetch() lets
// a caller that knows its next keys start those reads early.
//
// Items must expose `std::string_view key() const`, unchanged while indexed. At most half of the
// slots are used; erasing shifts later slots back (no tombstones), so probes stay short however
// many keys come and go. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "ledger/assert.h"

namespace gridledger::projections {

template <typename Item>
class KeyIndex {
 public:
  static uint64_t Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

  size_t size() const { return size_; }

  // The item at `key` (whose Hash is `hash`), or nullptr.
  Item* Find(std::string_view key, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.item == nullptr) return nullptr;
      if (slot.hash == hash && slot.item->key() == key) return slot.item;
    }
  }

  // Adds `item`, whose key must not be indexed yet.
  void Insert(Item* item, uint64_t hash) {
    LEDGER_ASSERT(item != nullptr);
    if (2 * (size_ + 1) > slots_.size()) Grow();
    size_t i = hash & mask_;
    while (slots_[i].item != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, item};
    ++size_;
  }

  // Removes `item` (indexed under `hash`).
  void Erase(const Item* item, uint64_t hash) {
    size_t i = hash & mask_;
    while (slots_[i].item != item) {
      LEDGER_ASSERT(slots_[i].item != nullptr);
      i = (i + 1) & mask_;
    }
    // Backward shift: move later slots of the same probe run into the hole, unless that would
    // put one before its home slot.
    for (size_t j = (i + 1) & mask_; slots_[j].item != nullptr; j = (j + 1) & mask_) {
      const size_t home = slots_[j].hash & mask_;
      const bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
  }

  // The first item indexed under `hash`, without comparing keys (for prefetching: it reads
  // slots only, never an item); nullptr when there is none.
  const Item* FindByHash(uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.item == nullptr || slot.hash == hash) return slot.item;
    }
  }

  // Starts reading the slot where a lookup of `hash` begins.
  void Prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }

  // Calls visit(item) for every item, in no particular order.
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (const Slot& slot : slots_) {
      if (slot.item != nullptr) visit(slot.item);
    }
  }

  void Clear() {
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    Item* item = nullptr;
  };
  static constexpr size_t kSlotsMin = 64;

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? kSlotsMin : 2 * old.size(), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.item == nullptr) continue;
      size_t i = slot.hash & mask_;
      while (slots_[i].item != nullptr) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;  // size a power of two, or empty
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace gridledger::projections
