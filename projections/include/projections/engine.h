// Engine: keeps every projection current with the ledger, stores its states and checkpoint in the
// ledger's side column families, and rebuilds them from position 1.
//
// Two ways to run, same folds, same bytes:
// - inline: installed as the ledger's AppendObserver, it folds each event as it is staged and puts
//   the touched states and the new checkpoint into the SAME WriteBatch as the events, so state and
//   log are durable together;
// - catch-up: CatchUp() scans from checkpoint + 1 to the head and writes states and checkpoint in
//   batches of flush_every_events.
// Rebuild() clears every projection family and catches up from position 1.
//
// Projections, folded in this order for each event (later ones see the application state after
// the event): application (app/<id> streams), KPI (per org and month, per report stream),
// evidence (per application and survey stream), staff audit (per staff id).
//
// Thread-safety: all methods may be called from any thread; one mutex serializes folding and
// reading. Queries read the store, so they see exactly the states of the checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"
#include "projections/application.h"
#include "projections/evidence.h"
#include "projections/kpi.h"
#include "projections/split_state.h"
#include "projections/staff_audit.h"
#include "projections/state_table.h"

namespace gridledger::projections {

// Side families of the projections, in this order; pass them as ledger::Options::side_families.
std::vector<std::string> SideFamilies();

struct EngineOptions {
  // Catch-up writes states and checkpoint at least every this many events (and whenever the
  // cache is full). A crash redoes at most this many events. Default: 1,000,000.
  uint64_t flush_every_events = 1'000'000;
  // Bounds of the state cache, over all projections: when either is exceeded, dirty states and
  // the checkpoint are written in one batch and the least recently touched states are frozen or
  // dropped until half of each bound remains (a rebuild frees a quarter without that write, see
  // MakeRoomLocked). The bound on memory during a rebuild.
  // Default: 1,000,000 states.
  size_t cache_states_max = 1'000'000;
  // Approximate bytes of cached states (encoded size × 2 plus a per-state overhead). A bigger
  // cache writes and reloads less often. Default: 64 MiB.
  size_t cache_bytes_max = size_t{64} << 20;
  // A catch-up of at least this many events reads the log on a second thread while this one
  // folds (bounded batches in between, see scan_pipeline.h); shorter ones read and fold on the
  // calling thread. Default: 50,000 events.
  uint64_t scan_thread_events_min = 50'000;
};

// An application and its evidence as the Engine caches them: every event of an app/ stream
// changes both, so one cache entry (one lookup, one eviction) serves both. They are stored as
// before, each under its own key and family; the evidence items stay encoded (the fold only
// appends them).
struct ApplicationEntry {
  ApplicationState application;
  CompactEvidence evidence;
};

// Progress of CatchUp / Rebuild: (position reached, head).
using Progress = std::function<void(uint64_t done, uint64_t head)>;

class Engine : public ledger::AppendObserver {
 public:
  // REQUIRES: `ledger` was opened with SideFamilies() as its first side families.
  Engine(ledger::Ledger& ledger, EngineOptions options = {});
  ~Engine() override;

  // The last position folded into the stored states.
  uint64_t checkpoint() const;
  // True when the stored states cannot be caught up on, only rebuilt: their checkpoint is
  // unreadable, a rebuild did not finish, or another version folded them (CatchUp and Attach
  // say which).
  bool NeedsRebuild() const;
  // Ok, or why the stored states can only be rebuilt (what CatchUp and Attach would return).
  ledger::Status StoredStatus() const;

  // Folds events from checkpoint + 1 to the head as of the call, writing as it goes.
  ledger::Status CatchUp(const Progress& progress = {});
  // Clears every projection and catches up from position 1. Its states are written without the
  // write-ahead log and flushed at the end; until then the stored checkpoint marks the rebuild as
  // unfinished, so after a crash midway CatchUp and Attach report kCorruption until Rebuild() is
  // called again.
  ledger::Status Rebuild(const Progress& progress = {});
  // The same up to position `last` (at most the head): the states the store would hold had
  // folding stopped there (CheckProjections compares stored states to them).
  ledger::Status RebuildTo(uint64_t last, const Progress& progress = {});

  // Catches up, then installs this engine as the ledger's observer (inline mode) until
  // destruction or Detach(). If events arrive that it has not folded (appended before it was
  // attached and still being written), inline folding stops and writes nothing until CatchUp()
  // is called, which waits for in-flight commits and then catches up.
  ledger::Status Attach();

  // Catch-up mode in the background: a thread catches up whenever the head moves past the
  // checkpoint (and repairs inline mode after it stopped folding), until StopBackground() or
  // destruction. The last error it met, if any, is in BackgroundStatus().
  void StartBackground();
  void StopBackground();
  ledger::Status BackgroundStatus() const;
  // Blocks until the stored states reach `position` or `timeout` passes; true when reached.
  bool WaitForCheckpoint(uint64_t position, std::chrono::milliseconds timeout) const;
  // Uninstalls the observer; returns once no group commit can call this engine any more.
  // REQUIRES: not called from a ledger callback (head listener, observer).
  void Detach();

  // The stored state of one application, or nullopt when the stream has no folded events.
  ledger::Result<std::optional<ApplicationState>> Application(const std::string& stream) const;
  // Visits every stored application state in stream order until `visit` returns false.
  ledger::Status ForEachApplication(
      const std::function<bool(const ApplicationState&)>& visit) const;

  // Every stored KPI bucket whose key starts with `prefix` ("kpi/" for all; see kpi.h for keys).
  ledger::Result<std::vector<KpiState>> KpiStates(std::string_view prefix = "kpi/") const;
  // The evidence of one application or survey stream, or nullopt.
  ledger::Result<std::optional<EvidenceState>> Evidence(const std::string& stream) const;
  ledger::Result<std::vector<EvidenceState>> EvidenceStates() const;
  ledger::Result<std::optional<StaffAuditState>> StaffAudit(const std::string& staff_id) const;

  // The approximate memory of the cached states (what cache_bytes_max bounds); for tests and
  // diagnostics.
  size_t CachedStateBytes() const;

  // ledger::AppendObserver (inline mode; called on the ledger's writer thread).
  void OnStaged(const ledger::EventView& event, ledger::SideBatch& batch) override;
  void OnGroupCommitted(bool written, uint64_t last_position) override;

 private:
  // Family indexes within SideFamilies().
  static constexpr ledger::SideFamily kMetaFamily = 0;
  static constexpr ledger::SideFamily kApplicationFamily = 1;
  static constexpr ledger::SideFamily kKpiFamily = 2;
  static constexpr ledger::SideFamily kEvidenceFamily = 3;
  static constexpr ledger::SideFamily kStaffAuditFamily = 4;

  ledger::Status LoadCheckpoint();
  ledger::Status Fold(const EventRecord& record);
  // Folds up to `last`, writing as it goes; after a failure the cache is dropped and the
  // checkpoint set back to what is stored.
  ledger::Status CatchUpLocked(uint64_t last, const Progress& progress);
  ledger::Status FoldRangeLocked(uint64_t last, const Progress& progress);
  ledger::Status FlushLocked();
  ledger::Status WriteTouched(ledger::SideBatch& batch);
  // After a write of every touched state reached the store.
  void WrittenLocked(uint64_t position);
  void ForgetAllLocked();
  void StartEmptyLocked();
  size_t CachedStatesLocked() const;
  size_t CachedBytesLocked() const;
  bool CacheFullLocked() const;
  // Drops clean states down to half of the cache bounds when they hold more (REQUIRES: dirty
  // states were written).
  void EvictLocked();
  // The same down to `keep` of the bounds, and with `write_back` dirty states too, written into it
  // when dropped (see StateTable::Evict).
  ledger::Status EvictLocked(ledger::SideBatch* write_back, double keep);
  // In a rebuild, a full cache is trimmed without a flush: nothing needs the store to match a
  // checkpoint before the end, so dirty states are frozen like clean ones and written only when
  // dropped (an application about once in its life instead of once per flush it was touched in).
  ledger::Status MakeRoomLocked();
  ledger::Status FoldDerived(const EventRecord& record, const ApplicationState* app,
                             CompactEvidence* app_evidence);
  ledger::Status FoldKpi(const EventRecord& record, const ApplicationState* app);
  ledger::Status FoldStaffAudit(const EventRecord& record, const ApplicationState* app);
  // A Corrected of an application (domain/correction.h): the application and its evidence are
  // folded again from its first event with every correction applied (its events read from the
  // ledger), and its KPI items folded again at its new revision (kpi.h, REVISIONS). A Corrected
  // that does not apply is folded as a rejected event.
  ledger::Status FoldCorrection(const EventRecord& record);
  ledger::Status WriteApplicationEntry(std::string_view key, ApplicationEntry& entry,
                                       ledger::SideBatch& batch, std::string& kept);
  // Puts an application's evidence under evidence/<app_key>.
  void PutEvidence(std::string_view app_key, const CompactEvidence& evidence,
                   ledger::SideBatch& batch);
  ledger::Status WriteFrozenApplicationEntry(std::string_view key, std::string_view frozen,
                                             ledger::SideBatch& batch);
  ledger::Result<size_t> LoadApplicationEntry(std::string_view key, ApplicationEntry& entry);

  ledger::Ledger& ledger_;
  const EngineOptions options_;

  mutable std::mutex mutex_;
  mutable std::condition_variable written_cv_;  // written_checkpoint_ moved (or a commit failed)
  uint64_t checkpoint_ = 0;          // last folded position (may be staged, not yet written)
  uint64_t written_checkpoint_ = 0;  // last position whose states are in the store
  ledger::Status inline_failure_;    // a fold error in inline mode, reported by the next call
  bool attached_ = false;
  bool staging_ = false;        // in OnStaged: events past written_checkpoint_ may not be readable
  ledger::Status open_status_;  // the checkpoint could not be read: only Rebuild may proceed
  bool rebuilding_ = false;     // in Rebuild: states are written without the write-ahead log
  std::thread background_;
  std::atomic<bool> background_stop_{false};
  ledger::Status background_status_;  // guarded by mutex_
  using ApplicationTable = StateTable<ApplicationEntry>;
  ApplicationTable applications_;  // app/ streams: application state and evidence
  // KPI buckets and staff audits are split states (split_state.h): cached heads, items stored
  // under them.
  StateTable<KpiHead> kpis_;
  StateTable<EvidenceState> evidence_;  // survey/ streams (app/ streams: applications_)
  StateTable<StaffAuditHead> staff_audits_;
  ChangeIndexes change_indexes_;         // inline: assigned since the last write reached the store
  std::string evidence_key_;             // reused buffer for evidence/<stream>
  std::vector<std::string> staff_keys_;  // reused: the staff audits an event touches
  std::string evidence_bytes_;           // reused buffer for encoded evidence
  CompactEvidence frozen_evidence_;      // reused: a frozen entry's evidence being written
  std::vector<KpiTarget> kpi_targets_;   // reused by FoldDerived
};

}  // namespace gridledger::projections
