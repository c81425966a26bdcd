// CheckProjections: whether the stored projections are what a fresh fold of the log gives
// (`ledgerctl verify --projections`). The hash chain proves the log; the projections — the
// states that /v1/apps, /v1/kpi and the evidence are answered from — are derived from it and
// stored beside it, where the chain does not reach. A state edited in the store, or folded by a
// faulty build, would be served as the log's without this check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "projections/engine.h"

namespace gridledger::projections {

enum class StateDifference : uint8_t {
  kDiffers,     // both hold the key, with other bytes
  kNotFolded,   // stored, but a fresh fold makes no such state
  kNotStored,   // a fresh fold makes it, the store lacks it
};
const char* StateDifferenceName(StateDifference difference);  // "differs", "not_folded", ...

struct ProjectionDifference {
  std::string family;  // e.g. "proj.kpi"
  std::string key;
  StateDifference difference = StateDifference::kDiffers;
};

inline constexpr size_t kProjectionDifferencesShownMax = 100;

struct ProjectionCheck {
  // The copy's head, its hash chain and indexes verified by Ledger::Backup: the log's own when
  // nothing was appended meanwhile (a caller holding the ledger need not verify it again).
  ledger::Digest head;
  uint64_t checkpoint = 0;   // the stored states' position; the fresh fold stopped there too
  uint64_t states = 0;       // keys compared: every key stored or folded, each once
  uint64_t differences = 0;  // of them, those that differ, are not folded or not stored
  // The first kProjectionDifferencesShownMax differences, in family and key order.
  std::vector<ProjectionDifference> first;
  bool ok() const { return differences == 0; }
};

// Copies `ledger` to `scratch` (Ledger::Backup: hard links where it can; `scratch` must not
// exist), rebuilds the copy's projections up to the stored checkpoint, compares every key of
// every projection family with the stored one byte for byte (in parts: memory is bounded), and
// removes `scratch` (also on failure). Stored states are deterministic (incremental = rebuilt,
// tests/projections/property_test.cc), so a difference is a state the log does not give. Writes
// nothing to `ledger`. REQUIRES: nothing writes to `ledger` meanwhile (ledgerctl holds its data
// directory; a running ledgerd's is checked in a backup).
// Errors: Backup's and Rebuild's; the stored states' own (Engine::StoredStatus: a rebuild did
// not finish, or another fold version made them) — those can only be rebuilt, not compared.
// `progress` reports the fresh fold. `part_states`: stored states held at once (tests make it
// small to cross many parts).
inline constexpr size_t kProjectionPartStates = 65536;
ledger::Result<ProjectionCheck> CheckProjections(ledger::Ledger& ledger,
                                                 const std::string& scratch,
                                                 const Progress& progress = {},
                                                 size_t part_states = kProjectionPartStates);

}  // namespace gridledger::projections
