// Split states (see projections/include/projections/split_state.h).
#include "projections/split_state.h"

#include "kpi_codec.h"
#include "staff_audit_codec.h"

namespace gridledger::projections {
namespace {

using codec::Reader;
using codec::Writer;

constexpr uint8_t kKpiHeadVersion =
    0x6e;  // 'n' ('m' before settled violations, 'l' before violations, 'k' before revisions)
constexpr uint8_t kStaffHeadVersion = 0x74;  // 't' ('s' before urge corrections); a whole
                                             // StaffAuditState starts with 'T'
constexpr std::string_view kStaffKeyPrefix = "staff-audit/";
constexpr size_t kIndexBytes = 4;

void AppendBe32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

uint32_t ReadBe32(std::string_view bytes) {
  uint32_t value = 0;
  for (char byte : bytes) value = (value << 8) | static_cast<uint8_t>(byte);
  return value;
}

// <head> \0 <list> [<index:BE32>]
void ItemKeyPrefix(std::string& out, std::string_view head_key, uint8_t list) {
  out.assign(head_key);
  out.push_back('\0');
  out.push_back(static_cast<char>(list));
}

ledger::Status Corrupt(std::string_view key, std::string_view what) {
  return ledger::Status(ledger::Code::kCorruption,
                        "split state at " + std::string(key) + ": " + std::string(what));
}

// Puts `items` as list `list`, indexes from `stored` on (advanced), and clears them.
template <typename T>
void PutItems(ledger::SideFamily family, std::string_view head_key, uint8_t list,
              std::vector<T>& items, void (*put)(Writer&, const T&), uint32_t& stored,
              ledger::SideBatch& batch, std::string& key, std::string& bytes) {
  for (const T& item : items) {
    ItemKeyPrefix(key, head_key, list);
    AppendBe32(key, stored++);
    bytes.clear();
    Writer w(bytes);
    put(w, item);
    batch.Put(family, key, bytes);
  }
  items.clear();
}

template <size_t N>
void PutCounts(Writer& w, const std::array<uint32_t, N>& counts) {
  for (uint32_t count : counts) w.Varint(count);
}

template <size_t N>
void GetCounts(Reader& r, std::array<uint32_t, N>& counts) {
  for (uint32_t& count : counts) count = r.Uint32();
}

// The index of the item of `app` in the changes list of `head`: kept, stored, or a new one.
ledger::Result<uint32_t> ChangeIndexOf(const ledger::Ledger& ledger, ledger::SideFamily family,
                                       std::string_view head_key, const std::string& app,
                                       KpiHead& head, ChangeIndexes* indexes,
                                       ledger::SideBatch& batch) {
  std::string index_key;
  ItemKeyPrefix(index_key, head_key, kChangeIndexList);
  index_key.append(app);
  if (indexes != nullptr) {
    if (auto it = indexes->entries.find(index_key); it != indexes->entries.end()) {
      return it->second.index;
    }
  }
  uint32_t& assigned = head.stored[static_cast<size_t>(KpiList::kChanges) - 1];
  if (assigned > 0) {
    auto stored = ledger.GetSide(family, index_key);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      if ((*stored)->size() != kIndexBytes) return Corrupt(index_key, "bad change index");
      return ReadBe32(**stored);
    }
  }
  const uint32_t index = assigned++;
  std::string bytes;
  AppendBe32(bytes, index);
  batch.Put(family, index_key, bytes);
  if (indexes != nullptr) {
    indexes->entries.emplace(std::move(index_key), ChangeIndexes::Entry{index, indexes->now});
  }
  return index;
}

template <typename T>
bool GetItem(std::vector<T>& items, uint32_t index, std::string_view bytes, T (*get)(Reader&)) {
  if (index != items.size()) return false;  // items come in index order, none missing
  Reader r(bytes);
  items.push_back(get(r));
  return r.Done();
}

}  // namespace

std::optional<KpiHead> NewKpiHead(std::string_view key) {
  std::optional<KpiState> state = NewKpiState(key);
  if (!state) return std::nullopt;
  return KpiHead{std::move(*state), {}};
}

StaffAuditHead NewStaffAuditHead(std::string_view key) {
  StaffAuditHead head;
  if (key.starts_with(kStaffKeyPrefix)) {
    head.pending.staff_id = std::string(key.substr(kStaffKeyPrefix.size()));
  }
  return head;
}

ledger::Status WriteKpiHead(const ledger::Ledger& ledger, ledger::SideFamily family,
                            std::string_view key, KpiHead& head, ChangeIndexes* indexes,
                            ledger::SideBatch& batch, std::string& kept) {
  KpiState& s = head.pending;
  std::string item_key;
  std::string bytes;
  auto put = [&](KpiList list, auto& items, auto put_item) {
    const auto id = static_cast<uint8_t>(list);
    PutItems(family, key, id, items, put_item, head.stored[id - 1], batch, item_key, bytes);
  };
  put(KpiList::kArchived, s.archived, &PutKpiArchived);
  for (const KpiChange& change : s.changes) {
    auto index = ChangeIndexOf(ledger, family, key, change.app, head, indexes, batch);
    if (!index.ok()) return index.status();
    ItemKeyPrefix(item_key, key, static_cast<uint8_t>(KpiList::kChanges));
    AppendBe32(item_key, *index);
    bytes.clear();
    Writer w(bytes);
    PutKpiChange(w, change);
    batch.Put(family, item_key, bytes);
  }
  s.changes.clear();
  put(KpiList::kCallbacks, s.callbacks, &PutKpiCallback);
  put(KpiList::kConnections, s.connections, &PutKpiConnection);
  put(KpiList::kDocumentReviews, s.document_reviews, &PutKpiCheck);
  put(KpiList::kSiteInspections, s.site_inspections, &PutKpiCheck);
  put(KpiList::kViolations, s.violations, &PutKpiViolation);
  put(KpiList::kLate, s.late, &PutKpiLate);
  put(KpiList::kUrges, s.urges, &PutKpiUrge);
  put(KpiList::kTrainings, s.trainings, &PutKpiTraining);
  put(KpiList::kRevisions, s.revisions, &PutKpiRevision);
  put(KpiList::kSettled, s.settled, &PutKpiSettled);
  Writer w(kept);
  w.U8(kKpiHeadVersion);
  PutKpiScalars(w, s);
  PutCounts(w, head.stored);
  batch.Put(family, key, kept);
  return ledger::Status::Ok();
}

void WriteStaffAuditHead(ledger::SideFamily family, std::string_view key, StaffAuditHead& head,
                         ledger::SideBatch& batch, std::string& kept) {
  StaffAuditState& s = head.pending;
  std::string item_key;
  std::string bytes;
  auto put = [&](StaffList list, auto& items, auto put_item) {
    const auto id = static_cast<uint8_t>(list);
    PutItems(family, key, id, items, put_item, head.stored[id - 1], batch, item_key, bytes);
  };
  put(StaffList::kAccesses, s.accesses, &PutSensitiveAccess);
  put(StaffList::kTrainings, s.trainings, &PutTrainingRecord);
  put(StaffList::kUrges, s.urges, &PutUrgeIssued);
  put(StaffList::kUrgeCorrections, s.urge_corrections, &PutUrgeCorrection);
  Writer w(kept);
  w.U8(kStaffHeadVersion);
  PutStaffAuditCounters(w, s);
  w.Double(s.training_hours);
  PutCounts(w, head.stored);
  batch.Put(family, key, kept);
}

std::optional<KpiHead> DecodeKpiHead(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kKpiHeadVersion) return std::nullopt;
  KpiHead head;
  GetKpiScalars(r, head.pending);
  GetCounts(r, head.stored);
  if (!r.Done()) return std::nullopt;
  return head;
}

std::optional<StaffAuditHead> DecodeStaffAuditHead(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kStaffHeadVersion) return std::nullopt;
  StaffAuditHead head;
  GetStaffAuditCounters(r, head.pending);
  head.pending.training_hours = r.Double();
  GetCounts(r, head.stored);
  if (!r.Done()) return std::nullopt;
  return head;
}

// ---- Reassembly ----

ledger::Status KpiAssembler::Add(std::string_view key, std::string_view value) {
  const size_t split = key.find('\0');
  if (split == std::string_view::npos) {
    ledger::Status closed = Close();
    if (!closed.ok()) return closed;
    std::optional<KpiHead> head = DecodeKpiHead(value);
    if (!head) return Corrupt(key, "head does not decode");
    states_.push_back(std::move(head->pending));
    expected_ = head->stored;
    head_key_.assign(key);
    open_ = true;
    return ledger::Status::Ok();
  }
  if (!open_ || key.substr(0, split) != head_key_ || key.size() < split + 2) {
    return Corrupt(key, "item without its head");
  }
  const auto list = static_cast<uint8_t>(key[split + 1]);
  if (list == kChangeIndexList) return ledger::Status::Ok();
  if (key.size() != split + 2 + kIndexBytes) return Corrupt(key, "bad item key");
  const uint32_t index = ReadBe32(key.substr(split + 2));
  KpiState& s = states_.back();
  bool ok = false;
  switch (static_cast<KpiList>(list)) {
    case KpiList::kArchived:
      ok = GetItem(s.archived, index, value, &GetKpiArchived);
      break;
    case KpiList::kChanges:
      ok = GetItem(s.changes, index, value, &GetKpiChange);
      break;
    case KpiList::kCallbacks:
      ok = GetItem(s.callbacks, index, value, &GetKpiCallback);
      break;
    case KpiList::kConnections:
      ok = GetItem(s.connections, index, value, &GetKpiConnection);
      break;
    case KpiList::kDocumentReviews:
      ok = GetItem(s.document_reviews, index, value, &GetKpiCheck);
      break;
    case KpiList::kSiteInspections:
      ok = GetItem(s.site_inspections, index, value, &GetKpiCheck);
      break;
    case KpiList::kViolations:
      ok = GetItem(s.violations, index, value, &GetKpiViolation);
      break;
    case KpiList::kLate:
      ok = GetItem(s.late, index, value, &GetKpiLate);
      break;
    case KpiList::kUrges:
      ok = GetItem(s.urges, index, value, &GetKpiUrge);
      break;
    case KpiList::kTrainings:
      ok = GetItem(s.trainings, index, value, &GetKpiTraining);
      break;
    case KpiList::kRevisions:
      ok = GetItem(s.revisions, index, value, &GetKpiRevision);
      break;
    case KpiList::kSettled:
      ok = GetItem(s.settled, index, value, &GetKpiSettled);
      break;
  }
  return ok ? ledger::Status::Ok() : Corrupt(key, "item does not decode or is out of order");
}

ledger::Status KpiAssembler::Close() {
  if (!open_) return ledger::Status::Ok();
  open_ = false;
  const KpiState& s = states_.back();
  const std::array<size_t, kKpiListCount> sizes = {s.archived.size(),
                                                   s.changes.size(),
                                                   s.callbacks.size(),
                                                   s.connections.size(),
                                                   s.document_reviews.size(),
                                                   s.site_inspections.size(),
                                                   s.violations.size(),
                                                   s.late.size(),
                                                   s.urges.size(),
                                                   s.trainings.size(),
                                                   s.revisions.size(),
                                                   s.settled.size()};
  for (size_t i = 0; i < kKpiListCount; ++i) {
    if (sizes[i] != expected_[i]) return Corrupt(head_key_, "list misses items");
  }
  return ledger::Status::Ok();
}

ledger::Status KpiAssembler::Finish() { return Close(); }

ledger::Status StaffAuditAssembler::Add(std::string_view key, std::string_view value) {
  const size_t split = key.find('\0');
  if (split == std::string_view::npos) {
    ledger::Status closed = Close();
    if (!closed.ok()) return closed;
    std::optional<StaffAuditHead> head = DecodeStaffAuditHead(value);
    if (!head) return Corrupt(key, "head does not decode");
    states_.push_back(std::move(head->pending));
    expected_ = head->stored;
    head_key_.assign(key);
    open_ = true;
    return ledger::Status::Ok();
  }
  if (!open_ || key.substr(0, split) != head_key_ || key.size() != split + 2 + kIndexBytes) {
    return Corrupt(key, "item without its head");
  }
  const uint32_t index = ReadBe32(key.substr(split + 2));
  StaffAuditState& s = states_.back();
  bool ok = false;
  switch (static_cast<StaffList>(key[split + 1])) {
    case StaffList::kAccesses:
      ok = GetItem(s.accesses, index, value, &GetSensitiveAccess);
      break;
    case StaffList::kTrainings:
      ok = GetItem(s.trainings, index, value, &GetTrainingRecord);
      break;
    case StaffList::kUrges:
      ok = GetItem(s.urges, index, value, &GetUrgeIssued);
      break;
    case StaffList::kUrgeCorrections:
      ok = GetItem(s.urge_corrections, index, value, &GetUrgeCorrection);
      break;
  }
  return ok ? ledger::Status::Ok() : Corrupt(key, "item does not decode or is out of order");
}

ledger::Status StaffAuditAssembler::Close() {
  if (!open_) return ledger::Status::Ok();
  open_ = false;
  const StaffAuditState& s = states_.back();
  if (s.accesses.size() != expected_[0] || s.trainings.size() != expected_[1] ||
      s.urges.size() != expected_[2] || s.urge_corrections.size() != expected_[3]) {
    return Corrupt(head_key_, "list misses items");
  }
  return ledger::Status::Ok();
}

ledger::Status StaffAuditAssembler::Finish() { return Close(); }

}  // namespace gridledger::projections
