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
//
// Layout: an open-addressing index (key_index.h) of small entries that hold their key inline,
// the decoded state in its own allocation, and two intrusive lists in touch order — decoded
// entries and frozen ones. A touched entry moves to the newest end of the decoded list and a
// frozen one to the newest end of the frozen list, so eviction takes entries from the oldest ends:
// no sorting, work in proportion to what is evicted.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/assert.h"
#include "ledger/ledger.h"
#include "projections/key_index.h"

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

  // Approximate growth of a state per event folded into it, until its next WriteDirty.
  static constexpr size_t kTouchBytes = 96;
  // After an eviction, decoded states take at most this share of the bound (the rest is frozen).
  // A frozen application is ~⅓ of a decoded one, and a miss of both costs two store reads, so a
  // small decoded share keeps more states in memory: at 10M events (~100k applications open at a
  // time) 1/8 rebuilt ~10 % faster than 1/2 (rebuild_bench), at 1M the same.
  static constexpr size_t kDecodedShareDivisor = 8;

  // A state's frozen form (appended to `out`), and back: Thawer fills `state` and returns the
  // stored bytes it stands for (as a Loader does), or nullopt when `frozen` does not thaw.
  using Freezer = void (*)(const State&, std::string& out);
  using Thawer = std::optional<size_t> (*)(std::string_view frozen, State& state);
  // Puts the stored form of a frozen state into `batch` under `key`, straight from its frozen
  // bytes (what the table's writer would put for the thawed state). Errors: kCorruption.
  using FrozenWriter = std::function<ledger::Status(std::string_view key, std::string_view frozen,
                                                    ledger::SideBatch& batch)>;

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
  ~StateTable() { Clear(); }
  StateTable(const StateTable&) = delete;
  StateTable& operator=(const StateTable&) = delete;

  // Evicted states are frozen with `freeze` rather than dropped (see the top of this file). The
  // table's writer must leave states unchanged (split states may not be frozen). Without
  // `write_frozen`, a dirty frozen state is thawed to be written.
  void KeepFrozen(Freezer freeze, Thawer thaw, FrozenWriter write_frozen = nullptr) {
    freeze_ = freeze;
    thaw_ = thaw;
    write_frozen_ = std::move(write_frozen);
  }

  ledger::SideFamily family() const { return family_; }
  // Cached states, decoded and frozen.
  size_t size() const { return index_.size(); }
  // The approximate memory held by cached states.
  size_t bytes() const { return bytes_; }

  // The state at `key` for changing: from the cache, else the store, else a new default state.
  // Marks it dirty and touched now (the most recently touched of the table). kCorruption when
  // stored bytes do not decode. `unstored`: the caller knows the store holds nothing at `key`
  // (the first event of a stream), so a miss of the cache starts a new state without a read.
  ledger::Result<State*> Mutable(std::string_view key, bool unstored = false) {
    const uint64_t hash = Index::Hash(key);
    Entry* entry = index_.Find(key, hash);
    if (entry == nullptr) {
      auto loaded =
          unstored ? ledger::Result<std::unique_ptr<Entry>>(NewEntry(key, hash)) : Load(key, hash);
      if (!loaded.ok()) return loaded.status();
      entry = loaded->release();  // owned by the table from here (DropOldest, Clear)
      bytes_ += entry->bytes;
      index_.Insert(entry, hash);
    } else if (entry->frozen()) {
      ledger::Status thawed = Thaw(*entry);
      if (!thawed.ok()) return thawed;
    } else {
      decoded_.Remove(entry);
    }
    decoded_.PushNewest(entry);
    entry->bytes += kTouchBytes;
    bytes_ += kTouchBytes;
    if (entry->dirty_index == kClean) {
      entry->dirty_index = dirty_.size();
      dirty_.push_back(entry);
    }
    return entry->state.get();
  }

  // Hints that Mutable(key) follows soon. Called for steps 0 to 3 in that order, some events
  // apart: each starts loading what the next one reads — the index slot; the entry with its key;
  // the decoded state and the entry's neighbours in touch order (Mutable relinks them); what the
  // state points to (PrefetchStatesWith).
  using StatePrefetcher = void (*)(const State&);
  void PrefetchStatesWith(StatePrefetcher prefetch) { prefetch_state_ = prefetch; }
  void Prefetch(std::string_view key, size_t step) const {
    const uint64_t hash = Index::Hash(key);
    if (step == 0) {
      index_.Prefetch(hash);
      return;
    }
    const Entry* entry = index_.FindByHash(hash);
    if (entry == nullptr) return;
    if (step == 1) {
      for (size_t offset = 0; offset < sizeof(Entry); offset += 64) {
        __builtin_prefetch(reinterpret_cast<const char*>(entry) + offset);
      }
    } else if (step == 2) {
      __builtin_prefetch(entry->state.get());
      __builtin_prefetch(entry->older);
      __builtin_prefetch(entry->newer);
    } else if (entry->state != nullptr && prefetch_state_ != nullptr) {
      prefetch_state_(*entry->state);
    }
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
    SortByKey(dirty_);
    for (size_t i = 0; i < dirty_.size(); ++i) {
      dirty_[i]->dirty_index = i;  // positions after the sort, for failures below
    }
    for (Entry* entry : dirty_) {
      ledger::Status written = Write(*entry, batch);
      if (written.ok() && spill && batch.ApproximateBytes() >= kSpillBytes) written = spill(batch);
      if (!written.ok()) return written;
    }
    for (Entry* entry : dirty_) entry->dirty_index = kClean;
    dirty_.clear();
    return ledger::Status::Ok();
  }

  // Frees memory until at most `bytes_max` bytes and `states_max` states remain, least recently
  // touched states first: when the table keeps frozen states, freezes decoded ones until those
  // take 1/kDecodedShareDivisor of `bytes_max`, then drops frozen ones; then decoded ones.
  // Without `write_back`, dirty states stay as they are (the Engine writes them only with their
  // checkpoint). With it (nothing needs the store to match a checkpoint, as in a rebuild), dirty
  // states are evicted too: frozen as they are, and put into `write_back` before they are
  // dropped. Errors come from writers; then `write_back` must not be written, and the states it
  // held are marked clean: the caller must ForgetAll() (the Engine forgets a failed rebuild).
  ledger::Status Evict(size_t bytes_max, size_t states_max,
                       ledger::SideBatch* write_back = nullptr) {
    auto over = [&] { return bytes_ > bytes_max || size() > states_max; };
    if (!over()) return ledger::Status::Ok();
    const bool dirty_too = write_back != nullptr;
    // Recently touched states are likely to be touched again soon and stay decoded; the rest is
    // frozen, so the least recently touched ones dropped next are frozen ones.
    const size_t decoded_max = bytes_max / kDecodedShareDivisor;
    if (freeze_ != nullptr) {
      for (Entry* entry = decoded_.oldest;
           entry != nullptr && bytes_ - frozen_bytes_ > decoded_max;) {
        Entry* newer = entry->newer;
        if (dirty_too || entry->dirty_index == kClean) Freeze(*entry);
        entry = newer;
      }
    }
    ledger::Status dropped = ledger::Status::Ok();
    if (over()) dropped = DropOldest(frozen_, bytes_max, states_max, write_back);
    if (dropped.ok() && over()) dropped = DropOldest(decoded_, bytes_max, states_max, write_back);
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
  static constexpr size_t kClean = SIZE_MAX;  // Entry::dirty_index of a clean state

  struct Entry {
    Entry(std::string_view key, uint64_t key_hash) : hash(key_hash), key_size(key.size()) {
      if (key.size() <= kInlineKeyBytes) {
        std::copy(key.begin(), key.end(), key_inline);
      } else {
        key_long.assign(key);
      }
    }
    std::string_view key() const {
      return key_size <= kInlineKeyBytes ? std::string_view(key_inline, key_size) : key_long;
    }
    static constexpr size_t kInlineKeyBytes = 40;  // app, KPI and staff keys fit
    uint64_t hash = 0;                             // of the key, in index_
    size_t key_size = 0;
    char key_inline[kInlineKeyBytes];  // the key when it fits (beside the fields a lookup reads)
    std::string key_long;              // else here
    std::unique_ptr<State> state;      // decoded; nullptr while frozen
    std::string frozen_bytes;          // the frozen form while frozen
    size_t bytes = 0;                  // approximate memory, in bytes_
    size_t dirty_index = kClean;       // place in dirty_ while dirty
    Entry* older = nullptr;            // neighbours in decoded_ or frozen_
    Entry* newer = nullptr;
    bool frozen() const { return state == nullptr; }
  };
  // Entries in touch order, oldest first (intrusive: an entry is in at most one list).
  struct List {
    Entry* oldest = nullptr;
    Entry* newest = nullptr;
    void PushNewest(Entry* entry) {
      entry->older = newest;
      entry->newer = nullptr;
      (newest != nullptr ? newest->newer : oldest) = entry;
      newest = entry;
    }
    void Remove(Entry* entry) {
      (entry->older != nullptr ? entry->older->newer : oldest) = entry->newer;
      (entry->newer != nullptr ? entry->newer->older : newest) = entry->older;
      entry->older = entry->newer = nullptr;
    }
  };
  using Index = KeyIndex<Entry>;

  // Approximate memory of one cached entry whatever its form: the entry (allocated with up to
  // an eighth of rounding), a long key, and three 16-byte slots of the index (it grows at half
  // full, so 2 to 4 per entry; it keeps its slots when entries leave).
  static size_t EntryBytes(std::string_view key) {
    return sizeof(Entry) + sizeof(Entry) / 8 +
           (key.size() > Entry::kInlineKeyBytes ? key.size() : 0) + 3 * 2 * sizeof(uint64_t);
  }
  // A frozen entry: its bytes, allocated with up to an eighth of rounding.
  static size_t FrozenBytes(std::string_view key, const std::string& frozen) {
    return EntryBytes(key) + frozen.size() + frozen.size() / 8;
  }

  static void SortByKey(std::vector<Entry*>& entries) {
    std::sort(entries.begin(), entries.end(),
              [](const Entry* a, const Entry* b) { return a->key() < b->key(); });
  }

  // Replaces a decoded state by its frozen form (dirty or not, as it was). States are frozen
  // oldest first, so frozen_ is in touch order, nearly: a dirty state that an eviction without
  // write-back skipped is frozen later, after newer ones (only the eviction order suffers).
  void Freeze(Entry& entry) {
    buffer_.clear();
    freeze_(*entry.state, buffer_);
    entry.frozen_bytes.assign(buffer_);  // a fresh string: capacity = size
    entry.state.reset();
    decoded_.Remove(&entry);
    frozen_.PushNewest(&entry);
    bytes_ -= entry.bytes;
    entry.bytes = FrozenBytes(entry.key(), entry.frozen_bytes);
    bytes_ += entry.bytes;
    frozen_bytes_ += entry.bytes;
  }

  // The state a key starts from.
  State Made(std::string_view key) const { return make_ != nullptr ? make_(key) : State{}; }

  // Decodes a frozen entry in place (left out of both lists: the caller places it).
  ledger::Status Thaw(Entry& entry) {
    auto state = std::make_unique<State>(Made(entry.key()));
    std::optional<size_t> thawed = thaw_(entry.frozen_bytes, *state);
    if (!thawed) return DoesNotThaw(entry.key());
    frozen_.Remove(&entry);
    bytes_ -= entry.bytes;
    frozen_bytes_ -= entry.bytes;
    entry.state = std::move(state);
    std::string().swap(entry.frozen_bytes);
    entry.bytes = EstimateBytes(entry.key(), *thawed) + ExtraBytes(*entry.state);
    bytes_ += entry.bytes;
    return ledger::Status::Ok();
  }

  // Puts a dirty state into `batch` (it stays dirty and in dirty_: callers tidy up).
  ledger::Status Write(Entry& entry, ledger::SideBatch& batch) {
    buffer_.clear();
    if (!entry.frozen()) {
      ledger::Status written = write_(entry.key(), *entry.state, batch, buffer_);
      if (!written.ok()) return written;
      bytes_ -= entry.bytes;
      entry.bytes = EstimateBytes(entry.key(), buffer_.size()) + ExtraBytes(*entry.state);
      bytes_ += entry.bytes;
    } else if (write_frozen_) {
      ledger::Status written = write_frozen_(entry.key(), entry.frozen_bytes, batch);
      if (!written.ok()) return written;
    } else {
      State state = Made(entry.key());
      if (!thaw_(entry.frozen_bytes, state)) return DoesNotThaw(entry.key());
      ledger::Status written = write_(entry.key(), state, batch, buffer_);
      if (!written.ok()) return written;
    }
    return ledger::Status::Ok();
  }

  // Drops entries of `list`, oldest first, until under both bounds; dirty ones only with
  // `write_back`, into which they are first put, in key order.
  ledger::Status DropOldest(List& list, size_t bytes_max, size_t states_max,
                            ledger::SideBatch* write_back) {
    size_t bytes_left = bytes_;
    size_t states_left = size();
    std::vector<Entry*> chosen;
    for (Entry* entry = list.oldest;
         entry != nullptr && (bytes_left > bytes_max || states_left > states_max);
         entry = entry->newer) {
      if (entry->dirty_index != kClean && write_back == nullptr) continue;
      bytes_left -= entry->bytes;
      --states_left;
      chosen.push_back(entry);
    }
    SortByKey(chosen);
    for (Entry* entry : chosen) {
      if (entry->dirty_index == kClean) continue;
      ledger::Status written = Write(*entry, *write_back);
      if (!written.ok()) return written;
      ForgetDirty(*entry);
    }
    for (Entry* entry : chosen) {
      if (!store_may_hold_states_) RememberEvicted(entry->hash);
      list.Remove(entry);
      bytes_ -= entry->bytes;
      if (entry->frozen()) frozen_bytes_ -= entry->bytes;
      index_.Erase(entry, entry->hash);
      delete entry;
    }
    return ledger::Status::Ok();
  }

  // Takes a (written) entry out of dirty_.
  void ForgetDirty(Entry& entry) {
    Entry* last = dirty_.back();
    last->dirty_index = entry.dirty_index;
    dirty_[entry.dirty_index] = last;
    dirty_.pop_back();
    entry.dirty_index = kClean;
  }

  static ledger::Status DoesNotThaw(std::string_view key) {
    return ledger::Status(ledger::Code::kCorruption,
                          "cached state at key " + std::string(key) + " does not thaw");
  }

  // A decoded entry: the state's own allocation, and about twice its encoded size in what the
  // state points to (string and vector headers, allocation rounding).
  static size_t EstimateBytes(std::string_view key, size_t encoded_bytes) {
    return EntryBytes(key) + sizeof(State) + sizeof(State) / 8 + 2 * encoded_bytes;
  }

  size_t ExtraBytes(const State& state) const {
    return extra_bytes_ != nullptr ? extra_bytes_(state) : 0;
  }

  // A new decoded entry for a miss of the cache (`hash`: of `key`), its state loaded or new.
  ledger::Result<std::unique_ptr<Entry>> Load(std::string_view key, uint64_t hash) {
    std::unique_ptr<Entry> entry = NewEntry(key, hash);
    if (!store_may_hold_states_ && !MayHaveEvicted(hash)) return entry;
    if (load_) {
      auto loaded = load_(key, *entry->state);
      if (!loaded.ok()) return loaded.status();
      entry->bytes = EstimateBytes(key, *loaded) + ExtraBytes(*entry->state);
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
    *entry->state = std::move(*decoded);
    entry->bytes = EstimateBytes(key, (*stored)->size());
    return entry;
  }

  // A new decoded entry holding the state `key` starts from.
  std::unique_ptr<Entry> NewEntry(std::string_view key, uint64_t hash) {
    auto entry = std::make_unique<Entry>(key, hash);
    entry->state = std::make_unique<State>(Made(key));
    entry->bytes = EstimateBytes(key, 0);
    return entry;
  }

  // A Bloom filter of evicted keys, probed from their Index::Hash (a false positive costs one
  // store read).
  static constexpr size_t kFilterBits = size_t{1} << 24;  // 2 MiB; ~1% false positives at 1.4M
  static constexpr int kFilterProbes = 3;
  template <typename F>
  static void ForEachProbe(uint64_t hash, F&& probe) {
    const uint64_t step = (hash >> 32) | 1;
    for (int i = 0; i < kFilterProbes; ++i) probe((hash + i * step) % kFilterBits);
  }
  void RememberEvicted(uint64_t hash) {
    if (evicted_filter_.empty()) evicted_filter_.assign(kFilterBits / 64, 0);
    ForEachProbe(hash,
                 [&](uint64_t bit) { evicted_filter_[bit / 64] |= uint64_t{1} << (bit % 64); });
  }
  bool MayHaveEvicted(uint64_t hash) const {
    if (evicted_filter_.empty()) return false;
    bool all = true;
    ForEachProbe(hash, [&](uint64_t bit) {
      all = all && (evicted_filter_[bit / 64] >> (bit % 64) & 1) != 0;
    });
    return all;
  }

  void Clear() {
    index_.ForEach([](Entry* entry) { delete entry; });
    index_.Clear();
    decoded_ = List{};
    frozen_ = List{};
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
  FrozenWriter write_frozen_;  // empty: thaw, then write_
  StatePrefetcher prefetch_state_ = nullptr;
  Index index_;                // every cached state, decoded or frozen (entries owned)
  List decoded_;               // decoded entries, in touch order
  List frozen_;                // frozen entries, in touch order
  size_t frozen_bytes_ = 0;    // the part of bytes_ held by frozen states
  std::vector<Entry*> dirty_;  // dirty entries (each knows its index)
  size_t bytes_ = 0;
  std::string buffer_;  // reused encoding buffer
  bool store_may_hold_states_ = true;
  std::vector<uint64_t> evicted_filter_;  // empty until the first eviction after StartEmpty
};

}  // namespace gridledger::projections
