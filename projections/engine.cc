#include "projections/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "ledger/assert.h"
#include "projections/application_codec.h"
#include "scan_pipeline.h"

namespace gridledger::projections {

namespace {

constexpr char kCheckpointKey[] = "checkpoint";
// Stored as the checkpoint while a rebuild runs. A rebuild writes its states without the
// write-ahead log, so a crash may leave any mix of them; this value (past any head) makes the
// next Engine refuse to catch up on them, and only a new Rebuild() proceeds.
constexpr uint64_t kRebuildingCheckpoint = UINT64_MAX;
// What the folds make of the same events. Raise it whenever a fold's output changes (another
// violation, clock or KPI item for the same events): states stored by an older version are then
// refused until Rebuild(), instead of mixing two rule sets. 2: connection prerequisites by
// business date (seventh session); 3: corrections applied, KPI items with revisions; 4: the total
// clock; 5: revisions count only corrections that change facts (eighth); 6: connection and
// archive violations count against timeliness, and a correction dating an event before its
// application's acceptance is refused (ninth); 7: a callback before the connection counts against
// KPI 3, pauses count by business dates, an archive or callback dated before the connection is
// flagged (twelfth); 8: a violation whose missing fact is recorded later, dated on or before its
// event, is settled (thirteenth); 9: a contract dated before a scheme reply recorded earlier is
// flagged, and a scheme reply entered late but dated before the one recorded ends the
// scheme_reply clock on its date (fourteenth); 10: an urge keeps who urged, and its correction
// reaches that person's staff audit; 11: a correction by a role that may not record the corrected
// type is refused (correction_role) (seventeenth).
// Stored under kFoldVersionKey; absent counts as 1.
constexpr uint64_t kFoldVersion = 11;
constexpr char kFoldVersionKey[] = "fold_version";

std::string EncodeU64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) bytes[i] = static_cast<char>(value & 0xff);
  return bytes;
}

std::optional<uint64_t> DecodeU64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t value = 0;
  for (char byte : bytes) value = (value << 8) | static_cast<uint8_t>(byte);
  return value;
}

bool IsAppStream(std::string_view stream) { return stream.starts_with("app/"); }

constexpr std::string_view kEvidenceKeyPrefix = "evidence/";

// An application entry frozen in the state cache (StateTable::KeepFrozen): the application's
// stored bytes, the evidence's frozen form, and the size of the first as 4 bytes.
void FreezeApplicationEntry(const ApplicationEntry& entry, std::string& out) {
  const size_t start = out.size();
  EncodeApplicationTo(entry.application, out);
  const auto application_bytes = static_cast<uint32_t>(out.size() - start);
  AppendFrozen(entry.evidence, out);
  char size[4];
  std::memcpy(size, &application_bytes, sizeof(size));
  out.append(size, sizeof(size));
}

// A frozen application entry split into the application's stored bytes and the evidence's
// frozen form; nullopt when `frozen` is not from FreezeApplicationEntry.
std::optional<std::pair<std::string_view, std::string_view>> SplitFrozen(std::string_view frozen) {
  uint32_t application_bytes = 0;
  if (frozen.size() < sizeof(application_bytes)) return std::nullopt;
  frozen.remove_suffix(sizeof(application_bytes));
  std::memcpy(&application_bytes, frozen.data() + frozen.size(), sizeof(application_bytes));
  if (application_bytes > frozen.size()) return std::nullopt;
  return std::pair(frozen.substr(0, application_bytes), frozen.substr(application_bytes));
}

std::optional<size_t> ThawApplicationEntry(std::string_view frozen, ApplicationEntry& entry) {
  auto parts = SplitFrozen(frozen);
  if (!parts) return std::nullopt;
  std::optional<ApplicationState> application = DecodeApplication(parts->first);
  if (!application || !ThawFrozen(parts->second, entry.evidence)) return std::nullopt;
  entry.application = std::move(*application);
  return parts->first.size();  // the table adds the evidence's ApproximateBytes
}

// What folding an event reads of an application entry beyond its first line: the stream (it is
// compared), the latest clock, the rest of the entry's fixed part.
void PrefetchApplicationEntry(const ApplicationEntry& entry) {
  const ApplicationState& application = entry.application;
  __builtin_prefetch(application.stream.data());
  if (!application.clocks.empty()) __builtin_prefetch(&application.clocks.back());
  for (size_t offset = 64; offset < sizeof(ApplicationEntry) && offset <= 256; offset += 64) {
    __builtin_prefetch(reinterpret_cast<const char*>(&entry) + offset);
  }
}

ledger::Status RebuildInterrupted() {
  return {ledger::Code::kCorruption,
          "a rebuild of the projections did not finish: ledgerctl rebuild starts it again "
          "(ledgerd does so itself when it starts)"};
}

ledger::Status Undecodable(std::string_view key) {
  return ledger::Status(ledger::Code::kCorruption,
                        "projection state at key " + std::string(key) + " does not decode");
}

}  // namespace

std::vector<std::string> SideFamilies() {
  return {"proj.meta", "proj.application", "proj.kpi", "proj.evidence", "proj.staff"};
}

Engine::Engine(ledger::Ledger& ledger, EngineOptions options)
    : ledger_(ledger),
      options_(options),
      applications_(
          ledger, kApplicationFamily,
          [this](std::string_view key, ApplicationEntry& entry, ledger::SideBatch& batch,
                 std::string& kept) { return WriteApplicationEntry(key, entry, batch, kept); },
          [this](std::string_view key, ApplicationEntry& entry) {
            return LoadApplicationEntry(key, entry);
          },
          [](const ApplicationEntry& entry) { return ApproximateBytes(entry.evidence); }),
      kpis_(
          ledger, kKpiFamily,
          [this](std::string_view key, KpiHead& head, ledger::SideBatch& batch, std::string& kept) {
            // Inline, one batch takes the writes of many events before it commits.
            return WriteKpiHead(ledger_, kKpiFamily, key, head,
                                attached_ ? &change_indexes_ : nullptr, batch, kept);
          },
          &DecodeKpiHead, [](std::string_view key) { return NewKpiHead(key).value_or(KpiHead{}); }),
      evidence_(ledger, kEvidenceFamily, &AppendEncoded, &DecodeEvidenceState),
      staff_audits_(
          ledger, kStaffAuditFamily,
          [](std::string_view key, StaffAuditHead& head, ledger::SideBatch& batch,
             std::string& kept) {
            WriteStaffAuditHead(kStaffAuditFamily, key, head, batch, kept);
            return ledger::Status::Ok();
          },
          &DecodeStaffAuditHead, &NewStaffAuditHead) {
  // Applications outnumber the other states by far, and most of those cached are idle.
  applications_.PrefetchStatesWith(&PrefetchApplicationEntry);
  applications_.KeepFrozen(
      &FreezeApplicationEntry, &ThawApplicationEntry,
      [this](std::string_view key, std::string_view frozen, ledger::SideBatch& batch) {
        return WriteFrozenApplicationEntry(key, frozen, batch);
      });
  // An unreadable checkpoint is reported by CatchUp and Attach (Rebuild starts afresh anyway):
  // catching up from 0 onto stored states would fold events twice.
  open_status_ = LoadCheckpoint();
}

Engine::~Engine() {
  StopBackground();
  Detach();
}

void Engine::StartBackground() {
  if (background_.joinable()) return;
  background_stop_ = false;
  background_ = std::thread([this] {
    // Bounded wait, so a stop request is seen within this time even when nothing is appended.
    constexpr auto kWaitMax = std::chrono::milliseconds(200);
    while (!background_stop_) {
      uint64_t head = ledger_.WaitForHeadAbove(checkpoint(), kWaitMax);
      if (background_stop_ || head <= checkpoint()) continue;
      ledger::Status caught_up = CatchUp();
      std::lock_guard lock(mutex_);
      background_status_ = caught_up;
    }
  });
}

void Engine::StopBackground() {
  if (!background_.joinable()) return;
  background_stop_ = true;
  background_.join();
}

bool Engine::WaitForCheckpoint(uint64_t position, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return written_cv_.wait_for(lock, timeout, [&] { return written_checkpoint_ >= position; });
}

ledger::Status Engine::BackgroundStatus() const {
  std::lock_guard lock(mutex_);
  return background_status_;
}

ledger::Status Engine::LoadCheckpoint() {
  auto stored = ledger_.GetSide(kMetaFamily, kCheckpointKey);
  if (!stored.ok()) return stored.status();
  uint64_t checkpoint = 0;
  if (stored->has_value()) {
    std::optional<uint64_t> decoded = DecodeU64(**stored);
    if (!decoded) return {ledger::Code::kCorruption, "projection checkpoint has bad size"};
    checkpoint = *decoded;
  }
  if (checkpoint == kRebuildingCheckpoint) return RebuildInterrupted();
  auto version_bytes = ledger_.GetSide(kMetaFamily, kFoldVersionKey);
  if (!version_bytes.ok()) return version_bytes.status();
  const uint64_t version = version_bytes->has_value() ? DecodeU64(**version_bytes).value_or(0)
                                                      : (checkpoint > 0 ? 1 : 0);
  if (checkpoint > 0 && version != kFoldVersion) {
    return {ledger::Code::kCorruption,
            "the projections were folded by another version of GridLedger (fold version " +
                std::to_string(version) + ", this one folds " + std::to_string(kFoldVersion) +
                "): ledgerctl rebuild (ledgerd rebuilds them itself when it starts)"};
  }
  if (checkpoint == 0 && version != kFoldVersion) {
    // Nothing folded yet: from now on the states are this version's.
    auto batch = ledger_.NewSideBatch();
    batch->Put(kMetaFamily, kFoldVersionKey, EncodeU64(kFoldVersion));
    ledger::Status written = ledger_.WriteSide(*batch, /*sync=*/true);
    if (!written.ok()) return written;
  }
  if (checkpoint > ledger_.Head()) {
    return {ledger::Code::kCorruption, "projection checkpoint " + std::to_string(checkpoint) +
                                           " is past the ledger head " +
                                           std::to_string(ledger_.Head())};
  }
  checkpoint_ = written_checkpoint_ = checkpoint;
  return ledger::Status::Ok();
}

bool Engine::NeedsRebuild() const {
  std::lock_guard lock(mutex_);
  return !open_status_.ok();
}

ledger::Status Engine::StoredStatus() const {
  std::lock_guard lock(mutex_);
  return open_status_;
}

uint64_t Engine::checkpoint() const {
  std::lock_guard lock(mutex_);
  return written_checkpoint_;
}

ledger::Status Engine::WriteApplicationEntry(std::string_view key, ApplicationEntry& entry,
                                             ledger::SideBatch& batch, std::string& kept) {
  // `kept` sizes the cached application; the evidence is sized by its ApproximateBytes.
  EncodeApplicationTo(entry.application, kept);
  batch.Put(kApplicationFamily, key, kept);
  // Every event of the stream touched both, so both are written (as separate states would be).
  PutEvidence(key, entry.evidence, batch);
  return ledger::Status::Ok();
}

void Engine::PutEvidence(std::string_view app_key, const CompactEvidence& evidence,
                         ledger::SideBatch& batch) {
  evidence_bytes_.clear();
  AppendEncoded(evidence, evidence_bytes_);
  evidence_key_.assign(kEvidenceKeyPrefix).append(app_key);
  batch.Put(kEvidenceFamily, evidence_key_, evidence_bytes_);
}

ledger::Status Engine::WriteFrozenApplicationEntry(std::string_view key, std::string_view frozen,
                                                   ledger::SideBatch& batch) {
  // What WriteApplicationEntry puts, without decoding the application: its stored bytes are the
  // first part of the frozen form.
  auto parts = SplitFrozen(frozen);
  if (!parts || !ThawFrozen(parts->second, frozen_evidence_)) {
    return {ledger::Code::kCorruption,
            "cached state at key " + std::string(key) + " does not thaw"};
  }
  batch.Put(kApplicationFamily, key, parts->first);
  PutEvidence(key, frozen_evidence_, batch);
  return ledger::Status::Ok();
}

ledger::Result<size_t> Engine::LoadApplicationEntry(std::string_view key, ApplicationEntry& entry) {
  size_t bytes = 0;
  auto application = ledger_.GetSide(kApplicationFamily, key);
  if (!application.ok()) return application.status();
  if (application->has_value()) {
    std::optional<ApplicationState> decoded = DecodeApplication(**application);
    if (!decoded) return Undecodable(key);
    entry.application = std::move(*decoded);
    bytes += (*application)->size();
  }
  evidence_key_.assign(kEvidenceKeyPrefix).append(key);
  auto evidence = ledger_.GetSide(kEvidenceFamily, evidence_key_);
  if (!evidence.ok()) return evidence.status();
  if (evidence->has_value()) {
    std::optional<EvidenceState> decoded = DecodeEvidenceState(**evidence);
    if (!decoded) return Undecodable(evidence_key_);
    entry.evidence = Compact(std::move(*decoded));
  }
  return bytes;  // of the application; the table adds the evidence's ApproximateBytes
}

ledger::Status Engine::Fold(const EventRecord& record) {
  LEDGER_ASSERT(record.position == checkpoint_ + 1);
  if (IsAppStream(record.stream) && record.type == "Corrected") return FoldCorrection(record);
  const ApplicationState* app = nullptr;
  CompactEvidence* app_evidence = nullptr;
  if (IsAppStream(record.stream)) {
    auto entry = applications_.Mutable(record.stream, /*unstored=*/record.opens_stream);
    if (!entry.ok()) return entry.status();
    projections::Fold((*entry)->application, record);
    app = &(*entry)->application;
    app_evidence = &(*entry)->evidence;
  }
  ledger::Status derived = FoldDerived(record, app, app_evidence);
  if (!derived.ok()) return derived;
  checkpoint_ = record.position;
  return ledger::Status::Ok();
}

ledger::Status Engine::FoldCorrection(const EventRecord& record) {
  auto entry = applications_.Mutable(record.stream);
  if (!entry.ok()) return entry.status();
  ApplicationEntry& app = **entry;
  CompactEvidence evidence;  // a refold's, replacing the entry's
  auto folded = projections::FoldCorrection(
      app.application, record, [this](uint64_t position) { return ledger_.ReadOne(position); },
      [&]() -> ledger::Result<std::vector<ledger::StoredEvent>> {
        if (staging_ && app.application.last_position > written_checkpoint_) {
          // An earlier event of the application is staged but not yet written (a batch holding
          // both, or a pipelined commit), so the store cannot give it. The ingestor never stages
          // a Corrected so (it judges on the stream as stored); a direct ledger append can.
          return ledger::Status(ledger::Code::kIoError,
                                "a correction follows unwritten events of its application; "
                                "CatchUp() folds it");
        }
        return ledger_.ReadStream(std::string(record.stream));
      },
      [&](const EventRecord& event, const ApplicationState& after) {
        ledger::Status kpi = FoldKpi(event, &after);
        if (kpi.ok()) projections::Fold(evidence, event, event.actor_id, &after);
        return kpi;
      });
  if (!folded.ok()) return folded.status();
  ledger::Status derived;
  if (*folded == CorrectionFold::kAsEvent) {
    derived = FoldDerived(record, &app.application, &app.evidence);
  } else {
    app.evidence = std::move(evidence);
    // The staff audit records who did what when, not the facts: only the Corrected is new there.
    derived = FoldStaffAudit(record, &app.application);
  }
  if (derived.ok()) checkpoint_ = record.position;
  return derived;
}

ledger::Status Engine::FoldKpi(const EventRecord& record, const ApplicationState* app) {
  KpiTargetsOf(record, app, kpi_targets_);
  for (const KpiTarget& target : kpi_targets_) {
    auto head = kpis_.Mutable(target.key);
    if (!head.ok()) return head.status();
    FoldParts((*head)->pending, record, app, target.parts);
  }
  return ledger::Status::Ok();
}

ledger::Status Engine::FoldStaffAudit(const EventRecord& record, const ApplicationState* app) {
  StaffAuditKeysOf(record, record.actor_id, staff_keys_, app);
  for (const std::string& key : staff_keys_) {
    auto head = staff_audits_.Mutable(key);
    if (!head.ok()) return head.status();
    projections::Fold((*head)->pending, record, record.actor_id, app);
  }
  return ledger::Status::Ok();
}

ledger::Status Engine::FoldDerived(const EventRecord& record, const ApplicationState* app,
                                   CompactEvidence* app_evidence) {
  ledger::Status kpi = FoldKpi(record, app);
  if (!kpi.ok()) return kpi;
  if (app_evidence != nullptr) {
    projections::Fold(*app_evidence, record, record.actor_id, app);
  } else if (record.stream.starts_with("survey/")) {
    evidence_key_.assign(kEvidenceKeyPrefix).append(record.stream);
    auto state = evidence_.Mutable(evidence_key_);
    if (!state.ok()) return state.status();
    projections::Fold(**state, record, record.actor_id, app);
  }
  return FoldStaffAudit(record, app);
}

ledger::Status Engine::WriteTouched(ledger::SideBatch& batch) {
  change_indexes_.now = checkpoint_;
  // A rebuild's writes need not land together (Rebuild), so its last flush, which writes every
  // frozen application too, goes out in slices instead of one batch that RocksDB would hold in
  // memory whole.
  ApplicationTable::Spill spill;
  if (rebuilding_) {
    spill = [this](ledger::SideBatch& full) {
      ledger::Status written = ledger_.WriteSideUnlogged(full);
      full.Clear();
      return written;
    };
  }
  ledger::Status written = applications_.WriteDirty(batch, spill);
  if (written.ok()) written = kpis_.WriteDirty(batch);
  if (written.ok()) written = evidence_.WriteDirty(batch);
  if (written.ok()) written = staff_audits_.WriteDirty(batch);
  if (!written.ok()) return written;
  // A rebuild stores its checkpoint only once every state is flushed (Rebuild).
  if (!rebuilding_) batch.Put(kMetaFamily, kCheckpointKey, EncodeU64(checkpoint_));
  return ledger::Status::Ok();
}

void Engine::WrittenLocked(uint64_t position) {
  written_checkpoint_ = std::max(written_checkpoint_, position);
  written_cv_.notify_all();
  // The store has the indexes assigned up to `position`; a commit staged after it (pipelined) may
  // still need its own.
  change_indexes_.ForgetWrittenUpTo(position);
}

size_t Engine::CachedStatesLocked() const {
  return applications_.size() + kpis_.size() + evidence_.size() + staff_audits_.size();
}

size_t Engine::CachedBytesLocked() const {
  return applications_.bytes() + kpis_.bytes() + evidence_.bytes() + staff_audits_.bytes();
}

bool Engine::CacheFullLocked() const {
  return CachedStatesLocked() > options_.cache_states_max ||
         CachedBytesLocked() > options_.cache_bytes_max;
}

void Engine::EvictLocked() {
  // Down to half of each bound, so that the next flush is half a cache of new states away.
  // Cannot fail: without write-back no state is written.
  static_cast<void>(EvictLocked(nullptr, 0.5));
}

ledger::Status Engine::EvictLocked(ledger::SideBatch* write_back, double keep) {
  const auto states_max =
      static_cast<size_t>(static_cast<double>(options_.cache_states_max) * keep);
  const auto bytes_max = static_cast<size_t>(static_cast<double>(options_.cache_bytes_max) * keep);
  if (CachedStatesLocked() <= states_max && CachedBytesLocked() <= bytes_max) {
    return ledger::Status::Ok();
  }
  // Every table in proportion to what it holds.
  const double states_share =
      static_cast<double>(states_max) / std::max<size_t>(1, CachedStatesLocked());
  const double bytes_share =
      static_cast<double>(bytes_max) / std::max<size_t>(1, CachedBytesLocked());
  auto evict = [&](auto& table) {
    return table.Evict(
        static_cast<size_t>(static_cast<double>(table.bytes()) * std::min(1.0, bytes_share)),
        static_cast<size_t>(static_cast<double>(table.size()) * std::min(1.0, states_share)),
        write_back);
  };
  ledger::Status evicted = evict(applications_);
  if (evicted.ok()) evicted = evict(kpis_);
  if (evicted.ok()) evicted = evict(evidence_);
  if (evicted.ok()) evicted = evict(staff_audits_);
  return evicted;
}

ledger::Status Engine::MakeRoomLocked() {
  auto batch = ledger_.NewSideBatch();
  // KPI buckets and staff audits (split states) shrink to their heads once written, and survey
  // evidence is a few states: written all, they stay cached. Applications are frozen, and written
  // when dropped.
  ledger::Status evicted = kpis_.WriteDirty(*batch);
  if (evicted.ok()) evicted = evidence_.WriteDirty(*batch);
  if (evicted.ok()) evicted = staff_audits_.WriteDirty(*batch);
  // No flush follows, so only a quarter of the cache is freed: more idle applications stay
  // frozen, fewer are reloaded from the store (at 10M events, ~100k are open at a time).
  if (evicted.ok()) evicted = EvictLocked(batch.get(), 0.75);
  // Written while the next events are folded (the memtable inserts were a sixth to a fifth of
  // this thread): reads of the states it holds are answered from it meanwhile (GetSide), and the
  // next side write waits for it. rebuild_bench, interleaved (03:08-03:11 UTC): 1M 582-613k vs
  // 541-579k events/s, peak RSS +20 MiB (223 MiB); 10M 261-274k vs 243-251k, +2 MiB.
  if (evicted.ok()) evicted = ledger_.WriteSideUnloggedInBackground(std::move(batch));
  return evicted;
}

void Engine::ForgetAllLocked() {
  change_indexes_.clear();
  applications_.ForgetAll();
  kpis_.ForgetAll();
  evidence_.ForgetAll();
  staff_audits_.ForgetAll();
}

void Engine::StartEmptyLocked() {
  change_indexes_.clear();
  applications_.StartEmpty();
  kpis_.StartEmpty();
  evidence_.StartEmpty();
  staff_audits_.StartEmpty();
}

ledger::Status Engine::FlushLocked() {
  if (checkpoint_ == written_checkpoint_) return ledger::Status::Ok();
  auto batch = ledger_.NewSideBatch();
  ledger::Status written = WriteTouched(*batch);
  // Not synced: state and checkpoint travel in one batch, so a crash loses both together and the
  // next catch-up redoes the same events. A rebuild's batches skip the write-ahead log as well:
  // after a crash it starts again from scratch anyway, and the log would only be replayed (and
  // its bytes written twice) for nothing.
  if (written.ok()) {
    written = rebuilding_ ? ledger_.WriteSideUnlogged(*batch) : ledger_.WriteSide(*batch, false);
  }
  if (!written.ok()) {
    // Some cached states were marked clean by the lost batch: start again from the store.
    ForgetAllLocked();
    checkpoint_ = written_checkpoint_;
    return written;
  }
  WrittenLocked(checkpoint_);
  // Only a full cache is trimmed (to half): trimming whenever it was over half re-sorted every
  // cached state on each flush — with the background catch-up flushing once per group commit,
  // that was a quarter of ledgerd's CPU under load.
  if (CacheFullLocked()) EvictLocked();
  return ledger::Status::Ok();
}

ledger::Status Engine::CatchUpLocked(uint64_t last, const Progress& progress) {
  ledger::Status caught_up = FoldRangeLocked(last, progress);
  if (!caught_up.ok()) {
    // A fold that failed midway may have changed some states of its event and not others (a
    // correction's refold touches many): start again from the store, never on top of them.
    ForgetAllLocked();
    checkpoint_ = written_checkpoint_;
  }
  return caught_up;
}

ledger::Status Engine::FoldRangeLocked(uint64_t last, const Progress& progress) {
  uint64_t since_flush = 0;
  auto fold = [&](const EventRecord& record) {
    ledger::Status folded = Fold(record);
    if (!folded.ok()) return folded;
    ++since_flush;
    if (since_flush < options_.flush_every_events && !CacheFullLocked()) return folded;
    if (rebuilding_ && since_flush < options_.flush_every_events) return MakeRoomLocked();
    folded = FlushLocked();
    since_flush = 0;
    if (progress) progress(checkpoint_, last);
    return folded;
  };
  if (last >= checkpoint_ + std::max<uint64_t>(1, options_.scan_thread_events_min)) {
    // Long: the scan runs on a thread of its own (a short one would not repay starting it).
    static_assert(kAheadSteps == 4, "StateTable::Prefetch takes steps 0 to 3");
    auto ahead = [this](const EventRecord& record, size_t step) {
      if (IsAppStream(record.stream)) applications_.Prefetch(record.stream, step);
    };
    ledger::Status folded = ScanPipelined(ledger_, checkpoint_ + 1, last, fold, ahead);
    if (!folded.ok()) return folded;
  } else {
    ledger::Status failure;
    ledger::Status scanned = ledger_.Scan(checkpoint_ + 1, [&](const ledger::EventView& event) {
      if (event.position() > last) return false;
      failure = fold(RecordOf(event));
      return failure.ok();
    });
    if (!scanned.ok()) return scanned;
    if (!failure.ok()) return failure;
  }
  ledger::Status flushed = FlushLocked();
  if (progress) progress(checkpoint_, last);
  return flushed;
}

ledger::Status Engine::CatchUp(const Progress& progress) {
  std::unique_lock lock(mutex_);
  if (!open_status_.ok()) return open_status_;
  if (attached_ && inline_failure_.ok()) return ledger::Status::Ok();  // inline is current
  if (!inline_failure_.ok()) {
    // Inline folding stopped (it fell behind the log, or a fold failed). Start again from what is
    // stored — but only once no commit carrying our writes is still being written, or its states
    // would land on top of what this catch-up writes and be folded twice.
    written_cv_.wait(lock, [&] { return checkpoint_ == written_checkpoint_; });
    inline_failure_ = ledger::Status::Ok();
    ForgetAllLocked();
    checkpoint_ = written_checkpoint_;
  }
  return CatchUpLocked(ledger_.Head(), progress);
}

ledger::Status Engine::Rebuild(const Progress& progress) {
  return RebuildTo(ledger_.Head(), progress);
}

ledger::Status Engine::RebuildTo(uint64_t last, const Progress& progress) {
  std::lock_guard lock(mutex_);
  last = std::min(last, ledger_.Head());
  LEDGER_ASSERT(!attached_);
  // From here to the end the store says "rebuilding" (the checkpoint, kept with the old
  // fold_version in the meta family, which the rebuild does not clear), so a crash midway leaves
  // states that no catch-up builds on: first while the old states are deleted, then while new
  // ones are written without the write-ahead log. The fold version is stamped at the end.
  open_status_ = RebuildInterrupted();
  auto marker = ledger_.NewSideBatch();
  marker->Put(kMetaFamily, kCheckpointKey, EncodeU64(kRebuildingCheckpoint));
  ledger::Status rebuilt = ledger_.WriteSide(*marker, /*sync=*/true);
  if (!rebuilt.ok()) return rebuilt;
  for (ledger::SideFamily family = kMetaFamily + 1; family < SideFamilies().size(); ++family) {
    rebuilt = ledger_.ClearSide(family);
    if (!rebuilt.ok()) return rebuilt;
  }
  checkpoint_ = written_checkpoint_ = 0;
  inline_failure_ = ledger::Status::Ok();
  StartEmptyLocked();
  rebuilding_ = true;
  rebuilt = CatchUpLocked(last, progress);
  rebuilding_ = false;
  // The states went to memtables only: make them durable before the checkpoint says they exist.
  if (rebuilt.ok()) rebuilt = ledger_.FlushSide();
  if (!rebuilt.ok()) {
    ForgetAllLocked();
    checkpoint_ = written_checkpoint_ = 0;  // nothing usable is stored
    return rebuilt;
  }
  auto done = ledger_.NewSideBatch();
  done->Put(kMetaFamily, kCheckpointKey, EncodeU64(checkpoint_));
  done->Put(kMetaFamily, kFoldVersionKey, EncodeU64(kFoldVersion));
  rebuilt = ledger_.WriteSide(*done, /*sync=*/true);
  if (!rebuilt.ok()) return rebuilt;
  open_status_ = ledger::Status::Ok();
  return rebuilt;
}

ledger::Status Engine::Attach() {
  std::lock_guard lock(mutex_);
  if (!open_status_.ok()) return open_status_;
  ledger::Status caught_up = CatchUpLocked(ledger_.Head(), {});
  if (!caught_up.ok()) return caught_up;
  ledger_.SetAppendObserver(this);
  attached_ = true;
  return ledger::Status::Ok();
}

void Engine::Detach() {
  {
    std::lock_guard lock(mutex_);
    if (!attached_) return;
  }
  // Not under mutex_: SetAppendObserver waits for commits that still call us, and they need it.
  ledger_.SetAppendObserver(nullptr);
  std::lock_guard lock(mutex_);
  attached_ = false;
}

void Engine::OnStaged(const ledger::EventView& event, ledger::SideBatch& batch) {
  std::lock_guard lock(mutex_);
  if (!inline_failure_.ok()) return;  // folding stopped; CatchUp() repairs
  if (event.position() != checkpoint_ + 1) {
    // Events before it are not folded: appended before we attached and still being written, or
    // staged in a commit that failed. Reading them here could wait on the writer, which may need
    // our mutex, so inline folding stops instead; CatchUp() (or the failed commit's reset) brings
    // the projections back in step. Nothing is written for events we do not fold.
    inline_failure_ = ledger::Status(ledger::Code::kIoError,
                                     "projections fell behind the log; CatchUp() repairs");
    return;
  }
  staging_ = true;
  inline_failure_ = Fold(RecordOf(event));
  staging_ = false;
  if (inline_failure_.ok()) inline_failure_ = WriteTouched(batch);
}

void Engine::OnGroupCommitted(bool written, uint64_t last_position) {
  std::lock_guard lock(mutex_);
  if (written) {
    // The commit's batch holds our writes up to the last event we folded in it, which may be
    // short of its last position when folding stopped, and never past what we folded.
    WrittenLocked(std::min(last_position, checkpoint_));
    // Evict only when nothing staged is pending above the written checkpoint.
    if (checkpoint_ == written_checkpoint_ && CacheFullLocked()) EvictLocked();
  } else {
    // Not stored: forget whatever was folded past the last written commit; the store holds
    // exactly the states of written_checkpoint_, and staging restarts right after it.
    ForgetAllLocked();
    checkpoint_ = written_checkpoint_;
    inline_failure_ = ledger::Status::Ok();
  }
  written_cv_.notify_all();
}

ledger::Result<std::optional<ApplicationState>> Engine::Application(
    const std::string& stream) const {
  std::lock_guard lock(mutex_);
  auto stored = ledger_.GetSide(kApplicationFamily, stream);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<ApplicationState>();
  std::optional<ApplicationState> decoded = DecodeApplication(**stored);
  if (!decoded) return ledger::Status(ledger::Code::kCorruption, "projection state undecodable");
  return decoded;
}

ledger::Status Engine::ForEachApplication(
    const std::function<bool(const ApplicationState&)>& visit) const {
  std::lock_guard lock(mutex_);
  ledger::Status failure;
  ledger::Status scanned =
      ledger_.ScanSide(kApplicationFamily, "app/", [&](std::string_view, std::string_view bytes) {
        std::optional<ApplicationState> state = DecodeApplication(bytes);
        if (!state) {
          failure = ledger::Status(ledger::Code::kCorruption, "projection state undecodable");
          return false;
        }
        return visit(*state);
      });
  return scanned.ok() ? failure : scanned;
}

ledger::Result<std::vector<KpiState>> Engine::KpiStates(std::string_view prefix) const {
  std::lock_guard lock(mutex_);
  KpiAssembler assembler;
  ledger::Status added;
  ledger::Status scanned =
      ledger_.ScanSide(kKpiFamily, prefix, [&](std::string_view key, std::string_view value) {
        added = assembler.Add(key, value);
        return added.ok();
      });
  if (!scanned.ok()) return scanned;
  if (!added.ok()) return added;
  ledger::Status finished = assembler.Finish();
  if (!finished.ok()) return finished;
  return std::move(assembler.states());
}

ledger::Result<std::optional<EvidenceState>> Engine::Evidence(const std::string& stream) const {
  std::optional<std::string> key = EvidenceKey(stream);
  if (!key) return std::optional<EvidenceState>();
  std::lock_guard lock(mutex_);
  return evidence_.Stored(*key);
}

ledger::Result<std::vector<EvidenceState>> Engine::EvidenceStates() const {
  std::lock_guard lock(mutex_);
  std::vector<EvidenceState> states;
  ledger::Status scanned = evidence_.ForEachStored("", [&](const EvidenceState& state) {
    states.push_back(state);
    return true;
  });
  if (!scanned.ok()) return scanned;
  return states;
}

ledger::Result<std::optional<StaffAuditState>> Engine::StaffAudit(
    const std::string& staff_id) const {
  const std::string key = StaffAuditKey(staff_id);
  std::lock_guard lock(mutex_);
  auto head = ledger_.GetSide(kStaffAuditFamily, key);
  if (!head.ok()) return head.status();
  if (!head->has_value()) return std::optional<StaffAuditState>();
  StaffAuditAssembler assembler;
  ledger::Status added = assembler.Add(key, **head);
  ledger::Status scanned = ledger::Status::Ok();
  if (added.ok()) {
    scanned = ledger_.ScanSide(kStaffAuditFamily, key + '\0',
                               [&](std::string_view item_key, std::string_view value) {
                                 added = assembler.Add(item_key, value);
                                 return added.ok();
                               });
  }
  if (!scanned.ok()) return scanned;
  if (!added.ok()) return added;
  ledger::Status finished = assembler.Finish();
  if (!finished.ok()) return finished;
  return std::optional<StaffAuditState>(std::move(assembler.states().front()));
}

size_t Engine::CachedStateBytes() const {
  std::lock_guard lock(mutex_);
  return CachedBytesLocked();
}

}  // namespace gridledger::projections
