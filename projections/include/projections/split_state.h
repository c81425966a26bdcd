// Split states: how the Engine stores the projections whose lists grow with the log (KPI buckets,
// staff audits), so that a cached state costs O(1) memory and a flush writes O(new items) bytes
// however long the log is.
//
// STORED LAYOUT (one family; <key> is the state's key, e.g. kpi/m/<org>/<YYYY-MM>):
//   <key>                           head: the scalars of the state and, per list, the number of
//                                   items stored under it
//   <key> \0 <list:u8> <index:BE32> one list item (list ids below), index 0, 1, … in list order
//   <key> \0 kChangeIndexList <app> KPI only: BE32 index of the app's item in the changes list
//                                   (changes are replaced by later events, the others only grow)
// "\0" sorts before every byte a key may hold, so a prefix scan meets each head immediately
// followed by its items, in list order. The bytes depend only on the events folded, not on when
// flushes happened: inline, catch-up and rebuild store identical bytes.
//
// CACHED FORM (KpiHead / StaffAuditHead): the head's scalars and counts plus the items folded
// since the last write (`pending`); writing puts the new items and the head, then drops the items.
//
// Thread-safety: values and functions of values; the writers read the store through the ledger.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ledger/ledger.h"
#include "projections/kpi.h"
#include "projections/staff_audit.h"

namespace gridledger::projections {

// List ids of KpiState, in field order.
enum class KpiList : uint8_t {
  kArchived = 1,
  kChanges,
  kCallbacks,
  kConnections,
  kDocumentReviews,
  kSiteInspections,
  kViolations,
  kLate,
  kUrges,
  kTrainings,
  kRevisions,
  kSettled,
};
inline constexpr size_t kKpiListCount = 12;
inline constexpr uint8_t kChangeIndexList = 0x20;
static_assert(static_cast<size_t>(KpiList::kSettled) == kKpiListCount);
static_assert(kChangeIndexList > kKpiListCount);

enum class StaffList : uint8_t { kAccesses = 1, kTrainings, kUrges, kUrgeCorrections };
inline constexpr size_t kStaffListCount = 4;

// A KPI bucket as cached: `pending` holds the scalars and only the items folded since the last
// write; `stored[list - 1]` counts the items already written (for changes: indexes assigned).
struct KpiHead {
  KpiState pending;
  std::array<uint32_t, kKpiListCount> stored{};
};

struct StaffAuditHead {
  StaffAuditState pending;
  std::array<uint32_t, kStaffListCount> stored{};
};

// Indexes of change items assigned since the last durable write, by index key: writes of one
// group commit are not readable from the store until it commits.
// Each entry remembers the checkpoint it was assigned at, so a written commit forgets only its own
// entries while the next commit (pipelined) may still need the later ones.
struct ChangeIndexes {
  struct Entry {
    uint32_t index = 0;
    uint64_t assigned_at = 0;  // the fold's checkpoint when the index was assigned
  };
  std::unordered_map<std::string, Entry> entries;
  uint64_t now = 0;  // set by the caller before writes: the checkpoint being written

  // The store holds everything assigned at or before `position`.
  void ForgetWrittenUpTo(uint64_t position) {
    std::erase_if(entries, [&](const auto& entry) { return entry.second.assigned_at <= position; });
  }
  void clear() { entries.clear(); }
};

// A head's initial state for a key; nullopt for a key of another shape.
std::optional<KpiHead> NewKpiHead(std::string_view key);
StaffAuditHead NewStaffAuditHead(std::string_view key);

// Puts the head and the pending items of `head` (stored at `key` in `family`) into `batch`,
// leaves the head's bytes in `kept` and clears the pending items. A change item already stored
// keeps its index: looked up in `indexes`, then in the store. New indexes are remembered in
// `indexes` unless it is nullptr (allowed when `batch` is written before the next call: within
// one call a head's pending changes name distinct apps).
ledger::Status WriteKpiHead(const ledger::Ledger& ledger, ledger::SideFamily family,
                            std::string_view key, KpiHead& head, ChangeIndexes* indexes,
                            ledger::SideBatch& batch, std::string& kept);
void WriteStaffAuditHead(ledger::SideFamily family, std::string_view key, StaffAuditHead& head,
                         ledger::SideBatch& batch, std::string& kept);

// The stored head bytes (no items); nullopt when they do not decode.
std::optional<KpiHead> DecodeKpiHead(std::string_view bytes);
std::optional<StaffAuditHead> DecodeStaffAuditHead(std::string_view bytes);

// Reassembles whole states from a scan of stored keys in key order: Add() every (key, value),
// then Finish(). Fails (kCorruption) when bytes do not decode or a list misses items.
class KpiAssembler {
 public:
  ledger::Status Add(std::string_view key, std::string_view value);
  ledger::Status Finish();
  std::vector<KpiState>& states() { return states_; }

 private:
  ledger::Status Close();
  std::vector<KpiState> states_;
  std::string head_key_;  // of states_.back(), while open
  std::array<uint32_t, kKpiListCount> expected_{};
  bool open_ = false;
};

class StaffAuditAssembler {
 public:
  ledger::Status Add(std::string_view key, std::string_view value);
  ledger::Status Finish();
  std::vector<StaffAuditState>& states() { return states_; }

 private:
  ledger::Status Close();
  std::vector<StaffAuditState> states_;
  std::string head_key_;
  std::array<uint32_t, kStaffListCount> expected_{};
  bool open_ = false;
};

}  // namespace gridledger::projections
