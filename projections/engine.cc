#include "projections/engine.h"

#include <algorithm>
#include <chrono>

#include "ledger/assert.h"
#include "projections/application_codec.h"
#include "scan_pipeline.h"

namespace gridledger::projections {

namespace {

constexpr char kCheckpointKey[] = "checkpoint";

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
  if (checkpoint > ledger_.Head()) {
    return {ledger::Code::kCorruption, "projection checkpoint " + std::to_string(checkpoint) +
                                           " is past the ledger head " +
                                           std::to_string(ledger_.Head())};
  }
  checkpoint_ = written_checkpoint_ = checkpoint;
  return ledger::Status::Ok();
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
  evidence_bytes_.clear();
  AppendEncoded(entry.evidence, evidence_bytes_);
  evidence_key_.assign(kEvidenceKeyPrefix).append(key);
  batch.Put(kEvidenceFamily, evidence_key_, evidence_bytes_);
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
  const ApplicationState* app = nullptr;
  CompactEvidence* app_evidence = nullptr;
  if (IsAppStream(record.stream)) {
    auto entry = applications_.Mutable(record.stream, record.position);
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

ledger::Status Engine::FoldDerived(const EventRecord& record, const ApplicationState* app,
                                   CompactEvidence* app_evidence) {
  KpiTargetsOf(record, app, kpi_targets_);
  for (const KpiTarget& target : kpi_targets_) {
    auto head = kpis_.Mutable(target.key, record.position);
    if (!head.ok()) return head.status();
    FoldParts((*head)->pending, record, app, target.parts);
  }
  if (app_evidence != nullptr) {
    projections::Fold(*app_evidence, record, record.actor_id, app);
  } else if (record.stream.starts_with("survey/")) {
    evidence_key_.assign(kEvidenceKeyPrefix).append(record.stream);
    auto state = evidence_.Mutable(evidence_key_, record.position);
    if (!state.ok()) return state.status();
    projections::Fold(**state, record, record.actor_id, app);
  }
  for (const std::string& key : StaffAuditKeysOf(record, record.actor_id)) {
    auto head = staff_audits_.Mutable(key, record.position);
    if (!head.ok()) return head.status();
    projections::Fold((*head)->pending, record, record.actor_id, app);
  }
  return ledger::Status::Ok();
}

ledger::Status Engine::WriteTouched(ledger::SideBatch& batch) {
  change_indexes_.now = checkpoint_;
  ledger::Status written = applications_.WriteDirty(batch);
  if (written.ok()) written = kpis_.WriteDirty(batch);
  if (written.ok()) written = evidence_.WriteDirty(batch);
  if (written.ok()) written = staff_audits_.WriteDirty(batch);
  if (!written.ok()) return written;
  batch.Put(kMetaFamily, kCheckpointKey, EncodeU64(checkpoint_));
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
  if (CachedStatesLocked() <= options_.cache_states_max / 2 &&
      CachedBytesLocked() <= options_.cache_bytes_max / 2) {
    return;
  }
  // Down to half of each bound, every table in proportion to what it holds, so that the next
  // flush is half a cache of new states away.
  const double states_share = static_cast<double>(options_.cache_states_max / 2) /
                              std::max<size_t>(1, CachedStatesLocked());
  const double bytes_share =
      static_cast<double>(options_.cache_bytes_max / 2) / std::max<size_t>(1, CachedBytesLocked());
  auto evict = [&](auto& table) {
    table.Evict(
        static_cast<size_t>(static_cast<double>(table.bytes()) * std::min(1.0, bytes_share)),
        static_cast<size_t>(static_cast<double>(table.size()) * std::min(1.0, states_share)));
  };
  evict(applications_);
  evict(kpis_);
  evict(evidence_);
  evict(staff_audits_);
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
  // next catch-up redoes the same events.
  if (written.ok()) written = ledger_.WriteSide(*batch, /*sync=*/false);
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
  uint64_t since_flush = 0;
  auto fold = [&](const EventRecord& record) {
    ledger::Status folded = Fold(record);
    if (!folded.ok()) return folded;
    if (++since_flush >= options_.flush_every_events || CacheFullLocked()) {
      folded = FlushLocked();
      since_flush = 0;
      if (progress) progress(checkpoint_, last);
    }
    return folded;
  };
  if (last >= checkpoint_ + std::max<uint64_t>(1, options_.scan_thread_events_min)) {
    // Long: the scan runs on a thread of its own (a short one would not repay starting it).
    ledger::Status folded = ScanPipelined(ledger_, checkpoint_ + 1, last, fold);
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
  std::lock_guard lock(mutex_);
  LEDGER_ASSERT(!attached_);
  for (ledger::SideFamily family = 0; family < SideFamilies().size(); ++family) {
    ledger::Status cleared = ledger_.ClearSide(family);
    if (!cleared.ok()) return cleared;
  }
  checkpoint_ = written_checkpoint_ = 0;
  inline_failure_ = ledger::Status::Ok();
  open_status_ = ledger::Status::Ok();
  StartEmptyLocked();
  return CatchUpLocked(ledger_.Head(), progress);
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
  inline_failure_ = Fold(RecordOf(event));
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
