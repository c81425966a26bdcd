// The write path: appenders enqueue requests; a stager thread stages them into the open commit (one
// RocksDB WriteBatch) while a writer thread writes the previous commit with one sync; a completer
// thread answers every request of a commit only after it is written.
//
// Phases of one group commit:
//   take    — move queued requests into the open commit (up to kGroupCommitRequestsMax requests
//             and kGroupCommitEventsMax events), in chunks while the writer is busy
//   stage   — per request, in arrival order: validate, detect retries, check the expected version,
//             assign positions/versions, chain hashes, add keys to the batch. A request that fails
//             is answered with its error and adds nothing.
//   seal    — as soon as the writer is free: add the new meta head, hand the commit to the writer
//   write   — one synced write of the batch
//   publish — only after the write succeeded: advance head, wake waiters; the completer answers
#include <kj/exception.h>
#include <pthread.h>

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "chain.h"
#include "format.h"
#include "impl.h"
#include "ledger/assert.h"
#include "ledger/limits.h"

namespace gridledger::ledger {

namespace {

Status Invalid(std::string message) { return {Code::kInvalid, std::move(message)}; }

bool Printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

Status ValidateRequest(const AppendRequest& request) {
  if (request.stream.empty() || request.stream.size() > kStreamIdBytesMax) {
    return Invalid("stream id must be 1.." + std::to_string(kStreamIdBytesMax) + " bytes");
  }
  if (request.stream.find(format::kStreamSeparator) != std::string::npos) {
    return Invalid("stream id must not contain a NUL byte");
  }
  if (request.events.empty() || request.events.size() > kAppendEventsMax) {
    return Invalid("an append carries 1.." + std::to_string(kAppendEventsMax) + " events");
  }
  if (request.expected_version && *request.expected_version < kNoStream) {
    return Invalid("expected_version must be -1 or greater");
  }
  std::unordered_set<std::string_view> ids;
  for (const NewEvent& event : request.events) {
    if (event.event_id.empty() || event.event_id.size() > kEventIdBytesMax ||
        !Printable(event.event_id)) {
      return Invalid("event_id must be 1.." + std::to_string(kEventIdBytesMax) +
                     " printable bytes");
    }
    if (!ids.insert(event.event_id).second) {
      return Invalid("event_id " + event.event_id + " appears twice in one append");
    }
    if (event.type.empty() || event.type.size() > kTypeBytesMax) {
      return Invalid("type must be 1.." + std::to_string(kTypeBytesMax) + " bytes");
    }
    if (event.actor.id.size() > kActorFieldBytesMax ||
        event.actor.role.size() > kActorFieldBytesMax ||
        event.actor.org.size() > kActorFieldBytesMax) {
      return Invalid("actor fields are at most " + std::to_string(kActorFieldBytesMax) + " bytes");
    }
    if (event.payload.size() > kPayloadBytesMax) {
      return Invalid("payload exceeds " + std::to_string(kPayloadBytesMax) + " bytes");
    }
  }
  return Status::Ok();
}

bool SameContent(const std::string& stream, const NewEvent& event, const StoredEvent& stored) {
  return stored.stream == stream && stored.type == event.type &&
         stored.occurred_at_us == event.occurred_at_us &&
         stored.occurred_at_offset_minutes == event.occurred_at_offset_minutes &&
         stored.actor == event.actor && stored.payload == event.payload &&
         stored.imported == event.imported;
}

bool SameContent(const std::string& stream, const NewEvent& event, const std::string& staged_stream,
                 const NewEvent& staged) {
  return staged_stream == stream && staged.type == event.type &&
         staged.occurred_at_us == event.occurred_at_us &&
         staged.occurred_at_offset_minutes == event.occurred_at_offset_minutes &&
         staged.actor == event.actor && staged.payload == event.payload &&
         staged.imported == event.imported;
}

// The highest position an answer refers to (a retry may mix events of different commits).
uint64_t LastPosition(const AppendResult& result) {
  uint64_t last = 0;
  for (const AppendedEvent& event : result.events) last = std::max(last, event.position);
  return last;
}

// Whether an answer staged before a failed write may rest on events that are not stored (the
// durable head is `durable_head`): a position past it, or a version conflict or mismatch, which
// may have been judged against events of the failed commits.
bool RestsOnUnstored(const Result<AppendResult>& result, uint64_t durable_head) {
  if (result.ok()) return LastPosition(*result) > durable_head;
  return result.status().code() == Code::kVersionConflict ||
         result.status().code() == Code::kDuplicateMismatch;
}

}  // namespace

void Ledger::Impl::StartWriter() {
  staged_head_ = committed_head_;
  staged_hash_ = committed_hash_;
  staged_recorded_at_us_ = committed_recorded_at_us_;
  // Named, so `top -H`, perf and /proc show which of the three a thread is.
  auto named = [this](const char* name, void (Impl::*loop)()) {
    return std::thread([this, name, loop] {
      pthread_setname_np(pthread_self(), name);
      (this->*loop)();
    });
  };
  completer_ = named("gl-completer", &Impl::CompleterLoop);
  writer_ = named("gl-writer", &Impl::WriterLoop);
  stager_ = named("gl-stager", &Impl::StagerLoop);
}

Result<AppendResult> Ledger::Impl::Append(AppendRequest request) {
  std::promise<Result<AppendResult>> answer;
  std::future<Result<AppendResult>> result = answer.get_future();
  AppendAsync(std::move(request),
              [&answer](Result<AppendResult> done) { answer.set_value(std::move(done)); });
  return result.get();
}

void Ledger::Impl::AppendAsync(AppendRequest request,
                               std::function<void(Result<AppendResult>)> done) {
  const auto enqueued = options_.probe != nullptr ? std::chrono::steady_clock::now()
                                                  : std::chrono::steady_clock::time_point();
  Status valid = ValidateRequest(request);
  if (!valid.ok()) {
    ReportRefusal(valid, enqueued);
    return done(std::move(valid));
  }
  auto pending = std::make_unique<PendingAppend>();
  pending->request = std::move(request);
  pending->done = std::move(done);
  pending->enqueued = enqueued;
  {
    std::unique_lock lock(mutex_);
    Status refused;
    if (stopping_) {
      refused = Status(Code::kShutdown, "the ledger is closing");
    } else if (queue_.size() >= options_.append_queue_requests_max) {
      refused = Status(Code::kBusy, "append queue full (" +
                                        std::to_string(options_.append_queue_requests_max) +
                                        " requests waiting); retry later");
    }
    if (!refused.ok()) {
      lock.unlock();
      ReportRefusal(refused, enqueued);
      return pending->done(std::move(refused));
    }
    const size_t events_before = queued_events_;
    queued_events_ += pending->request.events.size();
    queue_.push_back(std::move(pending));
    // An idle stager needs the first request; one topping up a commit while the writer syncs
    // only a whole chunk (see StagerLoop). Waking it for every request would cost a context
    // switch per append.
    const bool first = queue_.size() == 1;
    const bool chunk = events_before < kStageTopUpEvents && queued_events_ >= kStageTopUpEvents;
    if (!first && !chunk) return;
  }
  stager_cv_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// Stager thread

// Returns once no commit being staged or written still refers to the previous observer, so the
// caller may destroy it.
void Ledger::Impl::SetAppendObserver(AppendObserver* observer) {
  AppendObserver* previous = observer_.exchange(observer);
  if (previous == nullptr || previous == observer) return;
  std::unique_lock lock(mutex_);
  observer_cv_.wait(lock, [&] {
    return (open_ == nullptr || open_->observer != previous) &&
           (slot_ == nullptr || slot_->observer != previous) && failing_observer_ != previous;
  });
}

// The stager stages queued requests into the open commit while the writer writes the previous
// one, and the commit is sealed (handed to the writer) as soon as the writer is free: by the
// writer itself when the stager is between chunks, otherwise by the stager at the end of its
// chunk. Requests still queued then go into the next commit, so two commits are in the pipeline
// and the writer does not wait for staging or for a thread to wake up.
// After a failed write only the stager seals: it fails the open commit (staged on top of the
// failed one) before it stages anything else, so the observer hears of that failure before any
// event staged again at the same positions.
void Ledger::Impl::StagerLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Stage at once when the writer is free or the ledger is closing; while the writer writes,
    // in chunks (see AppendAsync).
    stager_cv_.wait(lock, [&] {
      return StackedOnFailure() ||
             (!queue_.empty() &&
              (slot_ == nullptr || stopping_ || queued_events_ >= kStageTopUpEvents)) ||
             (stopping_ && queue_.empty() && open_ == nullptr);
    });
    if (StackedOnFailure()) {
      SealOpenCommit(lock);  // fails it
      continue;
    }
    if (queue_.empty()) break;  // stopping, everything queued taken and handed to the writer
    if (open_ == nullptr) OpenCommit();
    if (!NextFits(*open_)) {
      // The open commit is full: it goes to the writer as soon as the writer is free.
      if (slot_ == nullptr) {
        SealOpenCommit(lock);
      } else {
        stager_cv_.wait(lock, [&] { return slot_ == nullptr || open_ == nullptr; });
      }
      continue;
    }
    StageChunk(lock);
    if (slot_ == nullptr && open_ != nullptr) SealOpenCommit(lock);
  }
  stager_done_ = true;
  writer_cv_.notify_all();
}

// REQUIRES: mutex_ held, open_ == nullptr.
void Ledger::Impl::OpenCommit() {
  open_ = std::make_unique<Commit>();
  open_->observer = observer_.load();
  open_->staging = std::make_shared<Staging>();
  open_->staging->head = staged_head_;
  open_->staging->head_hash = staged_hash_;
  open_->staging->recorded_at_us = std::max(options_.now_us(), staged_recorded_at_us_);
  open_->base_head = staged_head_;
  open_->side_batch =
      std::make_unique<SideBatch>(&open_->write_batch, side_handles_.data(), side_handles_.size());
}

// True when the request at the head of the queue fits into `commit` (the first always does).
bool Ledger::Impl::NextFits(const Commit& commit) const {
  if (queue_.empty()) return false;
  if (commit.requests == 0) return true;
  return commit.requests < kGroupCommitRequestsMax &&
         commit.events + queue_.front()->request.events.size() <= kGroupCommitEventsMax;
}

// Moves what is queued (as much as fits) into the open commit and stages it without the lock;
// the writer does not seal the commit meanwhile.
// REQUIRES: `lock` holds mutex_, open_ != nullptr, NextFits(*open_).
void Ledger::Impl::StageChunk(std::unique_lock<std::mutex>& lock) {
  Commit& commit = *open_;
  std::vector<std::unique_ptr<PendingAppend>> taken;
  while (NextFits(commit)) {
    const size_t events = queue_.front()->request.events.size();
    commit.events += events;
    ++commit.requests;
    queued_events_ -= events;
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  requests_taken_.fetch_add(taken.size(), std::memory_order_relaxed);
  chunk_in_progress_ = true;
  lock.unlock();
  staging_observer_ = commit.observer;
  staging_side_batch_ = commit.side_batch.get();
  for (const auto& pending : taken) {
    commit.results.push_back(
        StageCatching(pending->request, commit.staging.get(), &commit.write_batch));
  }
  staging_side_batch_ = nullptr;
  lock.lock();
  for (auto& pending : taken) commit.batch.push_back(std::move(pending));
  chunk_in_progress_ = false;
}

// The writer seals only after a successful write; see StagerLoop.
bool Ledger::Impl::OpenCommitSealable() const {
  return open_ != nullptr && open_->requests > 0 && !chunk_in_progress_ && !write_failed_;
}

bool Ledger::Impl::StackedOnFailure() const {
  return write_failed_ && slot_ == nullptr && open_ != nullptr && !chunk_in_progress_;
}

// Hands the open commit to the writer (slot_), or, when the commit before it failed, fails it:
// it was staged on top of events that are not stored, and staging starts again from what is
// durable. The writer calls it only after a successful write; the failure path runs on the
// stager.
// REQUIRES: `lock` holds mutex_, open_ holds requests, no chunk in progress, slot_ == nullptr.
void Ledger::Impl::SealOpenCommit(std::unique_lock<std::mutex>& lock) {
  std::unique_ptr<Commit> commit = std::move(open_);
  Staging& staging = *commit->staging;
  RememberStreamVersions(staging);
  commit->new_events = staging.head - commit->base_head;
  if (commit->new_events > 0) {
    commit->write_batch.Put(meta_, format::kMetaHeadKey,
                            format::HeadValue(staging.head, staging.head_hash));
  }
  if (!write_failed_) {
    staged_head_ = staging.head;
    staged_hash_ = staging.head_hash;
    staged_recorded_at_us_ = staging.recorded_at_us;
    // The overlay this commit replaces is freed with the commit, by the completer.
    commit->previous_staging = std::exchange(inflight_, commit->staging);
    slot_ = std::move(commit);
    writer_cv_.notify_one();
    observer_cv_.notify_all();
    return;
  }
  commit->previous_staging = std::move(inflight_);
  RestageFromDurable();
  const uint64_t durable_head = committed_head_;
  // Until FailStacked has reported to the observer, SetAppendObserver must not return.
  failing_observer_ = commit->observer;
  lock.unlock();
  FailStacked(std::move(commit), durable_head);
  lock.lock();
  failing_observer_ = nullptr;
  observer_cv_.notify_all();
}

// After a failed write, once nothing staged on top of it is left: staging goes on from what is
// durable, and the failure is over.
// REQUIRES: mutex_ held.
void Ledger::Impl::RestageFromDurable() {
  write_failed_ = false;
  staged_head_ = committed_head_;
  staged_hash_ = committed_hash_;
  staged_recorded_at_us_ = committed_recorded_at_us_;
  inflight_.reset();           // the failed commit's overlay (the commit itself still holds it)
  stream_head_cache_.clear();  // it holds versions of commits that were never stored
}

// A commit staged on top of one that failed: nothing of it may be written. `durable_head`: the
// last position stored.
void Ledger::Impl::FailStacked(std::unique_ptr<Commit> commit, uint64_t durable_head) {
  const Status failed(Code::kIoError,
                      "an earlier group commit failed; nothing of this append was stored, retry "
                      "it");
  for (Result<AppendResult>& result : commit->results) {
    // Answers computed on top of the failed commit are not facts: retry.
    if (RestsOnUnstored(result, durable_head)) result = failed;
  }
  if (commit->observer != nullptr && commit->new_events > 0) {
    commit->observer->OnGroupCommitted(false, commit->staging->head);
  }
  if (commit->new_events > 0) ReportGroupCommit(*commit, false, std::chrono::nanoseconds(0));
  HandOff(std::move(commit));
}

// The cache is the stager's view of stream heads, including the commit not yet written. Emptying
// it when full is safe: it happens after this commit is staged and before its versions are added
// back, and the commit before it is durable by the time this one is sealed (one commit written
// at a time), so every version RocksDB does not hold yet is still here.
void Ledger::Impl::RememberStreamVersions(const Staging& staging) {
  if (stream_head_cache_.size() + staging.stream_versions.size() >
      options_.stream_head_cache_entries_max) {
    stream_head_cache_.clear();
  }
  for (const auto& [stream, version] : staging.stream_versions) {
    stream_head_cache_[stream] = version;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer thread

void Ledger::Impl::WriterLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    writer_cv_.wait(lock, [&] {
      return slot_ != nullptr || OpenCommitSealable() || (stager_done_ && open_ == nullptr);
    });
    if (slot_ == nullptr && OpenCommitSealable()) SealOpenCommit(lock);
    if (slot_ == nullptr) {
      if (stager_done_ && open_ == nullptr) return;  // the stager stopped; everything is written
      continue;
    }
    Commit* commit = slot_.get();
    lock.unlock();
    bool failed = false;
    if (commit->new_events > 0) failed = !WriteCommit(*commit);
    lock.lock();
    write_failed_ = write_failed_ || failed;
    // With nothing staged on top of the failed commit (no open commit), the next one is staged
    // from the durable head at once; otherwise the stager fails the open one first (StagerLoop).
    if (write_failed_ && open_ == nullptr) RestageFromDurable();
    std::unique_ptr<Commit> written = std::move(slot_);
    // The next commit, if staged, goes out now; otherwise the stager seals it when it has one
    // (or fails it, after a failed write).
    if (OpenCommitSealable()) SealOpenCommit(lock);
    stager_cv_.notify_one();
    observer_cv_.notify_all();
    lock.unlock();
    HandOff(std::move(written));
    lock.lock();
  }
}

// Writes one commit with one (synced) WriteBatch. Returns false when nothing of it was stored.
bool Ledger::Impl::WriteCommit(Commit& commit) {
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync;
  const auto started = options_.probe != nullptr ? std::chrono::steady_clock::now()
                                                 : std::chrono::steady_clock::time_point();
  Status written = options_.fail_write && options_.fail_write()
                       ? Status(Code::kIoError, "group commit: injected write failure")
                       : WriteToStore(write_options, &commit.write_batch, "group commit");
  if (options_.probe != nullptr) {
    ReportGroupCommit(commit, written.ok(), std::chrono::steady_clock::now() - started);
  }
  if (commit.observer != nullptr) {
    commit.observer->OnGroupCommitted(written.ok(), commit.staging->head);
  }
  if (written.ok()) {
    Publish(*commit.staging);
    group_commits_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Every request answered with a position past the durable head (new events, or retries of
  // events staged in this same commit) fails; so do version conflicts and mismatches, which may
  // have been judged against events of this commit that are not stored (as in FailStacked): a
  // retry gets the true answer. The published head stays where it was.
  for (Result<AppendResult>& result : commit.results) {
    if (RestsOnUnstored(result, committed_head_)) result = written;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Completer thread

// Answering is moved off the writer: waking dozens of appenders costs a futex call each, and the
// next commit should not wait for that.
void Ledger::Impl::HandOff(std::unique_ptr<Commit> commit) {
  std::unique_lock lock(completion_mutex_);
  completion_cv_.wait(lock, [&] { return completions_.size() < kCompletionBatchesMax; });
  completions_.push_back(std::move(commit));
  completion_cv_.notify_all();
}

// The completer also frees each commit (its write batch and staged copies), off the writer's path.
void Ledger::Impl::CompleterLoop() {
  for (;;) {
    std::unique_ptr<Commit> commit;
    {
      std::unique_lock lock(completion_mutex_);
      completion_cv_.wait(lock, [&] { return completer_stopping_ || !completions_.empty(); });
      if (completions_.empty()) return;  // stopping, and everything handed off is answered
      commit = std::move(completions_.front());
      completions_.pop_front();
    }
    completion_cv_.notify_all();
    for (size_t i = 0; i < commit->batch.size(); ++i) {
      ReportAnswer(commit->results[i], commit->batch[i]->enqueued);
      commit->batch[i]->done(std::move(commit->results[i]));
    }
  }
}

void Ledger::Impl::ReportAnswer(const Result<AppendResult>& result,
                                std::chrono::steady_clock::time_point enqueued) const {
  LedgerProbe* probe = options_.probe;
  if (probe == nullptr) return;
  const bool duplicate = result.ok() && !result->events.empty() && result->events[0].duplicate;
  probe->OnAppendAnswered(result.status().code(), duplicate,
                          std::chrono::steady_clock::now() - enqueued);
}

void Ledger::Impl::ReportRefusal(const Status& refusal,
                                 std::chrono::steady_clock::time_point enqueued) const {
  LedgerProbe* probe = options_.probe;
  if (probe == nullptr) return;
  probe->OnAppendAnswered(refusal.code(), false, std::chrono::steady_clock::now() - enqueued);
}

void Ledger::Impl::ReportGroupCommit(const Commit& commit, bool written,
                                     std::chrono::nanoseconds write_latency) const {
  LedgerProbe* probe = options_.probe;
  if (probe == nullptr) return;
  probe->OnGroupCommit({written, commit.batch.size(), commit.new_events,
                        commit.write_batch.GetDataSize(), write_latency});
}

// Writer thread, after a successful write: what readers see moves forward.
void Ledger::Impl::Publish(const Staging& staging) {
  {
    std::lock_guard lock(mutex_);
    committed_head_ = staging.head;
    committed_hash_ = staging.head_hash;
    committed_recorded_at_us_ = staging.recorded_at_us;
  }
  {
    std::lock_guard lock(head_mutex_);
    head_hash_ = staging.head_hash;
    head_.store(staging.head, std::memory_order_release);
  }
  head_cv_.notify_all();
  std::lock_guard lock(listeners_mutex_);
  for (const auto& [id, listener] : listeners_) listener(staging.head);
}

Result<AppendResult> Ledger::Impl::StageCatching(const AppendRequest& request, Staging* staging,
                                                 rocksdb::WriteBatch* batch) {
  try {
    return Stage(request, staging, batch);
  } catch (const kj::Exception& e) {
    // Only stored bytes we could not decode get here (an id lookup hit a damaged event).
    return Status(Code::kCorruption, e.getDescription().cStr());
  }
}

Result<AppendResult> Ledger::Impl::Stage(const AppendRequest& request, Staging* staging,
                                         rocksdb::WriteBatch* batch) {
  Result<std::optional<AppendResult>> retry = FindRetry(request, *staging);
  if (!retry.ok()) return retry.status();
  if (retry->has_value()) return std::move(**retry);

  Result<int64_t> current = CurrentVersion(request.stream, *staging);
  if (!current.ok()) return current.status();
  if (request.expected_version && *request.expected_version != *current) {
    return Status(Code::kVersionConflict, "stream " + request.stream + " is at version " +
                                              std::to_string(*current) + ", expected " +
                                              std::to_string(*request.expected_version))
        .WithCurrentVersion(*current);
  }

  AppendResult result;
  uint64_t version = static_cast<uint64_t>(*current + 1);
  for (const NewEvent& event : request.events) {
    StageEvent(request.stream, event, version, staging, batch);
    result.events.push_back({staging->head, version, false});
    ++version;
  }
  staging->stream_versions[request.stream] = static_cast<int64_t>(version - 1);
  return result;
}

// A request is a retry when its first event_id is already stored: then every event must be
// stored, in the same stream, with the same content, and the original positions are returned.
// Any other mix of stored and new ids is a mismatch.
Result<std::optional<AppendResult>> Ledger::Impl::FindRetry(const AppendRequest& request,
                                                            const Staging& staging) const {
  AppendResult original;
  size_t found = 0;
  std::string first_new;
  for (const NewEvent& event : request.events) {
    // Staged in this commit, or in the previous one that may still be being written.
    const StagedEvent* staged = FindStaged(staging, event.event_id);
    if (staged == nullptr && inflight_ != nullptr) staged = FindStaged(*inflight_, event.event_id);
    if (staged != nullptr) {
      if (!SameContent(request.stream, event, staged->stream, staged->event)) {
        return Status(Code::kDuplicateMismatch,
                      "event_id " + event.event_id + " is already stored with different content");
      }
      original.events.push_back({staged->position, staged->version, true});
      ++found;
      continue;
    }
    std::string position_bytes;
    rocksdb::Status status = db_->Get({}, ids_, event.event_id, &position_bytes);
    if (status.IsNotFound()) {
      if (first_new.empty()) first_new = event.event_id;
      continue;
    }
    if (!status.ok()) return FromRocks(status, "looking up event_id");
    Result<StoredEvent> stored = Get(format::GetBigEndian64(position_bytes));
    if (!stored.ok()) return stored.status();
    if (!SameContent(request.stream, event, *stored)) {
      return Status(Code::kDuplicateMismatch,
                    "event_id " + event.event_id + " is already stored at position " +
                        std::to_string(stored->position) + " with different content");
    }
    original.events.push_back({stored->position, stored->version, true});
    ++found;
  }
  if (found == 0) return std::optional<AppendResult>();
  if (found == request.events.size()) return std::optional<AppendResult>(std::move(original));
  return Status(Code::kDuplicateMismatch,
                "some event_ids of this append are already stored and " + first_new +
                    " is not: a retry must repeat the original append exactly");
}

const Ledger::Impl::StagedEvent* Ledger::Impl::FindStaged(const Staging& staging,
                                                          const std::string& event_id) {
  auto it = staging.ids.find(event_id);
  return it == staging.ids.end() ? nullptr : &it->second;
}

Result<int64_t> Ledger::Impl::CurrentVersion(const std::string& stream, const Staging& staging) {
  if (auto it = staging.stream_versions.find(stream); it != staging.stream_versions.end()) {
    return it->second;
  }
  if (auto it = stream_head_cache_.find(stream); it != stream_head_cache_.end()) {
    return it->second;
  }
  return StoredStreamVersion(stream);
}

void Ledger::Impl::StageEvent(const std::string& stream, const NewEvent& event, uint64_t version,
                              Staging* staging, rocksdb::WriteBatch* batch) {
  const uint64_t position = staging->head + 1;
  capnp::MallocMessageBuilder message(64 + event.payload.size() / sizeof(capnp::word));
  auto envelope = message.initRoot<schema::Envelope>();
  envelope.setPosition(position);
  envelope.setStream(stream);
  envelope.setVersion(version);
  SetEventFields(envelope, event);
  envelope.setRecordedAtUs(staging->recorded_at_us);
  envelope.setPrevHash(AsData(staging->head_hash));
  std::string hash = chain::ComputeHashOfUnhashed(envelope.asReader());
  envelope.setHash(AsData(hash));
  std::string value = chain::EncodeCanonical(envelope.asReader());

  std::string position_key = format::EventKey(position);
  batch->Put(events_, position_key, value);
  batch->Put(streams_, format::StreamKey(stream, version), position_key);
  batch->Put(ids_, event.event_id, position_key);

  staging->head = position;
  staging->head_hash = std::move(hash);
  // A copy: the request is answered (and freed) while this commit may still serve as the
  // in-flight overlay of the next one.
  staging->ids.emplace(event.event_id, StagedEvent{event, stream, position, version});
  if (staging_observer_ != nullptr) {
    staging_observer_->OnStaged(EventView(envelope.asReader()), *staging_side_batch_);
  }
}

}  // namespace gridledger::ledger
