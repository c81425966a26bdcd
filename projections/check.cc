#include "projections/check.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

namespace gridledger::projections {

namespace {

using StateDigest = std::array<unsigned char, 32>;

// SHA-256: the states compared are what disputes are settled with, so a stored state must not
// pass for another by a chosen collision, as it could with a fast hash.
StateDigest DigestOf(std::string_view bytes) {
  StateDigest digest{};
  unsigned int length = 0;
  const bool ok = EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(),
                             nullptr) == 1;
  LEDGER_ASSERT(ok && length == digest.size());
  return digest;
}

// Removes the scratch copy however the check ends.
class ScratchCopy {
 public:
  explicit ScratchCopy(std::string path) : path_(std::move(path)) {}
  ScratchCopy(const ScratchCopy&) = delete;
  ScratchCopy& operator=(const ScratchCopy&) = delete;
  ~ScratchCopy() {
    std::error_code ignored;  // nothing left to report to; the path is in the caller's hands
    std::filesystem::remove_all(path_, ignored);
  }

 private:
  std::string path_;
};

}  // namespace

const char* StateDifferenceName(StateDifference difference) {
  switch (difference) {
    case StateDifference::kDiffers:
      return "differs";
    case StateDifference::kNotFolded:
      return "not_folded";
    case StateDifference::kNotStored:
      return "not_stored";
  }
  return "differs";
}

ledger::Result<ProjectionCheck> CheckProjections(ledger::Ledger& ledger,
                                                 const std::string& scratch,
                                                 const Progress& progress, size_t part_states) {
  part_states = std::max<size_t>(1, part_states);
  auto copied = ledger.Backup(scratch);
  if (!copied.ok()) return copied.status();
  ScratchCopy removed_at_end(scratch);
  ledger::Options options;
  options.side_families = SideFamilies();
  options.sync = false;  // the copy is thrown away
  auto opened = ledger::Ledger::Open(scratch, options);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<ledger::Ledger> copy = std::move(opened).value();

  ProjectionCheck check;
  check.head = *copied;
  {
    // Reads the stored checkpoint (the copy holds the stored states as they are), then folds
    // afresh up to it; `ledger` itself is never opened by an engine, so nothing is written to it.
    Engine fresh(*copy);
    ledger::Status stored_status = fresh.StoredStatus();
    if (!stored_status.ok()) return stored_status;
    check.checkpoint = fresh.checkpoint();
    ledger::Status rebuilt = fresh.RebuildTo(check.checkpoint, progress);
    if (!rebuilt.ok()) return rebuilt;
  }

  auto note = [&](const std::string& family, std::string_view key, StateDifference difference) {
    ++check.differences;
    if (check.first.size() < kProjectionDifferencesShownMax) {
      check.first.push_back({family, std::string(key), difference});
    }
  };
  // Every family but the first, proj.meta: its checkpoint and fold version were read and
  // accepted by the engine above, and a store that never folded anything lacks them.
  const std::vector<std::string> families = SideFamilies();
  for (ledger::SideFamily family = 1; family < families.size(); ++family) {
    // Both sides in key order, merged a part at a time: up to part_states stored states (key and
    // digest) are held, then the fresh ones up to the last of them are merged against them.
    // Memory stays bounded however many states there are (6.8M at 10M events).
    std::vector<std::pair<std::string, StateDigest>> part;
    std::string stored_from;
    std::string fresh_from;
    for (bool more = true; more;) {
      part.clear();
      more = false;
      ledger::Status scanned = ledger.ScanSideFrom(
          family, stored_from, [&](std::string_view key, std::string_view value) {
            if (part.size() == part_states) {
              more = true;  // this key starts the next part
              return false;
            }
            part.emplace_back(std::string(key), DigestOf(value));
            return true;
          });
      if (!scanned.ok()) return scanned;
      size_t next = 0;
      scanned = copy->ScanSideFrom(
          family, fresh_from, [&](std::string_view key, std::string_view value) {
            if (more && key > part.back().first) return false;  // the next part's
            for (; next < part.size() && part[next].first < key; ++next) {
              ++check.states;
              note(families[family], part[next].first, StateDifference::kNotFolded);
            }
            ++check.states;
            if (next < part.size() && part[next].first == key) {
              if (part[next].second != DigestOf(value)) {
                note(families[family], key, StateDifference::kDiffers);
              }
              ++next;
            } else {
              note(families[family], key, StateDifference::kNotStored);
            }
            return true;
          });
      if (!scanned.ok()) return scanned;
      for (; next < part.size(); ++next) {
        ++check.states;
        note(families[family], part[next].first, StateDifference::kNotFolded);
      }
      if (more) {
        // The smallest keys after this part's last one.
        stored_from = part.back().first + '\0';
        fresh_from = stored_from;
      }
    }
  }
  return check;
}

}  // namespace gridledger::projections
