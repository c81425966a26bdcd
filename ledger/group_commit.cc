// The write path: appenders enqueue requests; one writer thread gathers everything queued into one
// RocksDB WriteBatch, writes it with one sync, and only then answers every request in it.
//
// Phases of one group commit:
//   take    — move up to kGroupCommitRequestsMax requests off the queue
//   stage   — per request, in arrival order: validate, detect retries, check the expected version,
//             assign positions/versions, chain hashes, add keys to the batch. A request that fails
//             is answered with its error and adds nothing.
//   write   — one synced write of the batch plus the new meta head
//   publish — only after the write succeeded: advance head, answer requests, wake waiters
#include <kj/exception.h>

#include <algorithm>
#include <unordered_set>

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

capnp::Data::Reader AsData(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

}  // namespace

void Ledger::Impl::StartWriter() {
  completer_ = std::thread([this] { CompleterLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
}

Result<AppendResult> Ledger::Impl::Append(AppendRequest request) {
  Status valid = ValidateRequest(request);
  if (!valid.ok()) return valid;
  auto pending = std::make_unique<PendingAppend>();
  pending->request = std::move(request);
  std::future<Result<AppendResult>> answer = pending->done.get_future();
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return Status(Code::kShutdown, "the ledger is closing");
    if (queue_.size() >= options_.append_queue_requests_max) {
      return Status(Code::kBusy, "append queue full (" +
                                     std::to_string(options_.append_queue_requests_max) +
                                     " requests waiting); retry later");
    }
    queue_.push_back(std::move(pending));
  }
  queue_cv_.notify_one();
  return answer.get();
}

void Ledger::Impl::WriterLoop() {
  std::vector<std::unique_ptr<PendingAppend>> batch;
  batch.reserve(kGroupCommitRequestsMax);
  while (TakeBatch(&batch)) {
    CommitBatch(&batch);
    batch.clear();
  }
}

bool Ledger::Impl::TakeBatch(std::vector<std::unique_ptr<PendingAppend>>* batch) {
  std::unique_lock lock(queue_mutex_);
  queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return false;  // stopping, and everything queued has been answered
  size_t events = 0;
  while (!queue_.empty() && batch->size() < kGroupCommitRequestsMax) {
    size_t next = queue_.front()->request.events.size();
    if (!batch->empty() && events + next > kGroupCommitEventsMax) break;
    events += next;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

void Ledger::Impl::CommitBatch(std::vector<std::unique_ptr<PendingAppend>>* batch) {
  Staging staging;
  staging.head = committed_head_;
  staging.head_hash = committed_hash_;
  staging.recorded_at_us = std::max(options_.now_us(), committed_recorded_at_us_);

  rocksdb::WriteBatch write_batch;
  SideBatch side_batch(&write_batch, side_handles_.data(), side_handles_.size());
  staging_observer_ = observer_.load();
  staging_side_batch_ = &side_batch;
  std::vector<Result<AppendResult>> results;
  results.reserve(batch->size());
  for (auto& pending : *batch) {
    try {
      results.push_back(Stage(pending->request, &staging, &write_batch));
    } catch (const kj::Exception& e) {
      // Only stored bytes we could not decode get here (an id lookup hit a damaged event).
      results.push_back(Status(Code::kCorruption, e.getDescription().cStr()));
    }
  }

  if (staging.head > committed_head_) {
    write_batch.Put(meta_, format::kMetaHeadKey,
                    format::HeadValue(staging.head, staging.head_hash));
    rocksdb::WriteOptions write_options;
    write_options.sync = options_.sync;
    Status written = FromRocks(db_->Write(write_options, &write_batch), "group commit");
    if (staging_observer_ != nullptr) staging_observer_->OnGroupCommitted(written.ok(), staging.head);
    if (!written.ok()) {
      // Nothing of this batch is durable: every request answered with a position past the
      // committed head (new events, or retries of events staged in this same batch) fails; the
      // in-memory head stays where it was.
      for (Result<AppendResult>& result : results) {
        if (result.ok() && result->events.front().position > committed_head_) result = written;
      }
    } else {
      Publish(staging);
    }
  }
  HandOff(std::move(*batch), std::move(results));
}

// Answering is moved off the writer: waking dozens of appenders costs a futex call each, and the
// writer's next batch should not wait for that.
void Ledger::Impl::HandOff(std::vector<std::unique_ptr<PendingAppend>> batch,
                           std::vector<Result<AppendResult>> results) {
  std::unique_lock lock(completion_mutex_);
  completion_cv_.wait(lock, [&] { return completions_.size() < kCompletionBatchesMax; });
  completions_.push_back({std::move(batch), std::move(results)});
  completion_cv_.notify_all();
}

void Ledger::Impl::CompleterLoop() {
  for (;;) {
    Completion completion;
    {
      std::unique_lock lock(completion_mutex_);
      completion_cv_.wait(lock, [&] { return completer_stopping_ || !completions_.empty(); });
      if (completions_.empty()) return;  // stopping, and everything handed off is answered
      completion = std::move(completions_.front());
      completions_.pop_front();
    }
    completion_cv_.notify_all();
    for (size_t i = 0; i < completion.batch.size(); ++i) {
      completion.batch[i]->done.set_value(std::move(completion.results[i]));
    }
  }
}

void Ledger::Impl::Publish(const Staging& staging) {
  committed_head_ = staging.head;
  committed_hash_ = staging.head_hash;
  committed_recorded_at_us_ = staging.recorded_at_us;
  if (stream_head_cache_.size() + staging.stream_versions.size() > kStreamHeadCacheEntriesMax) {
    stream_head_cache_.clear();
  }
  for (const auto& [stream, version] : staging.stream_versions) {
    stream_head_cache_[stream] = version;
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
    if (auto staged = staging.ids.find(event.event_id); staged != staging.ids.end()) {
      const StagedEvent& s = staged->second;
      if (*s.stream != request.stream || s.event->type != event.type ||
          s.event->occurred_at_us != event.occurred_at_us ||
          s.event->occurred_at_offset_minutes != event.occurred_at_offset_minutes ||
          !(s.event->actor == event.actor) || s.event->payload != event.payload ||
          s.event->imported != event.imported) {
        return Status(Code::kDuplicateMismatch,
                      "event_id " + event.event_id + " is already stored with different content");
      }
      original.events.push_back({s.position, s.version, true});
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
  envelope.setType(event.type);
  envelope.setEventId(event.event_id);
  envelope.setOccurredAtUs(event.occurred_at_us);
  envelope.setOccurredAtOffsetMinutes(event.occurred_at_offset_minutes);
  envelope.setRecordedAtUs(staging->recorded_at_us);
  auto actor = envelope.initActor();
  actor.setId(event.actor.id);
  actor.setRole(event.actor.role);
  actor.setOrg(event.actor.org);
  envelope.setPayload(AsData(event.payload));
  envelope.setImported(event.imported);
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
  staging->ids.emplace(event.event_id, StagedEvent{&event, &stream, position, version});
  if (staging_observer_ != nullptr) {
    staging_observer_->OnStaged(EventView(envelope.asReader()), *staging_side_batch_);
  }
}

}  // namespace gridledger::ledger
