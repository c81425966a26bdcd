// Column families that higher layers (projections) own inside the ledger's database, so their state
// and checkpoint can be written in the same WriteBatch as the events they derive from.
//
// The ledger never reads these families; it only creates them on open (Options::side_families)
// and applies the writes handed to it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ledger/event.h"
#include "ledger/status.h"

namespace rocksdb {
class WriteBatch;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace gridledger::ledger {

// Index of a side family in Options::side_families.
using SideFamily = size_t;

// Writes to side families, applied atomically. Either owned (Ledger::NewSideBatch) or borrowed from
// a group commit (AppendObserver::OnStaged), in which case it lands with the events.
class SideBatch {
 public:
  SideBatch(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* const* families,
            size_t family_count);
  ~SideBatch();
  SideBatch(const SideBatch&) = delete;
  SideBatch& operator=(const SideBatch&) = delete;

  void Put(SideFamily family, std::string_view key, std::string_view value);
  void Delete(SideFamily family, std::string_view key);
  size_t ApproximateBytes() const;
  // Drops every write put so far (after the batch was written, to reuse it).
  void Clear();
  rocksdb::WriteBatch* batch() { return batch_; }

 private:
  friend class Ledger;
  std::unique_ptr<rocksdb::WriteBatch> owned_;
  rocksdb::WriteBatch* batch_;
  rocksdb::ColumnFamilyHandle* const* families_;
  size_t family_count_;
};

// Derives writes from events as they are staged into a group commit, so derived state becomes
// durable in the same synced write as the events. OnStaged comes from the ledger's stager thread,
// in position order; OnGroupCommitted from its writer thread (or the stager, for a commit failed
// because the one below it failed), possibly while the next commit is being staged.
// Implementations must be quick, must synchronize the two, and must not call Append.
class AppendObserver {
 public:
  virtual ~AppendObserver() = default;
  // `event` is staged at its final position; add derived writes to `batch`.
  virtual void OnStaged(const EventView& event, SideBatch& batch) = 0;
  // A group commit was written (true: durable, its last event is at `last_position`) or failed
  // (false: nothing of it is stored). Commits are reported in staging order, but the writer may
  // already have staged events of the next commit (pipelining): on failure, forget everything
  // derived from events past the last written commit; a commit staged on top of a failed one
  // fails too.
  virtual void OnGroupCommitted(bool written, uint64_t last_position) = 0;
};

}  // namespace gridledger::ledger
