// Goal: the state cache (projections/state_table.h) never loses or mixes up a state, whatever it
// freezes, thaws, drops, writes back or reloads, and keeps within the bounds it is asked to.
// Method: seeded random touches (each appends a character to a key's text), evictions with and
// without write-back, and flushes, against a map as the model, over a real ledger's side family:
// every state handed out must equal the model, evictions with write-back must reach their bounds,
// and after a last flush the store must hold exactly the model. Three tables: without freezing,
// freezing (dirty frozen states written by thawing), and freezing with a frozen writer.
#include "projections/state_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "support/temp_dir.h"

namespace gridledger::projections {
namespace {

struct Text {
  std::string text;
};

void Encode(const Text& state, std::string& out) { out.append(state.text); }
std::optional<Text> Decode(std::string_view bytes) { return Text{std::string(bytes)}; }
// Frozen form: the text behind a marker, so a frozen state cannot pass for a stored one.
void Freeze(const Text& state, std::string& out) { out.append("F:").append(state.text); }
std::optional<size_t> Thaw(std::string_view frozen, Text& state) {
  if (!frozen.starts_with("F:")) return std::nullopt;
  state.text = std::string(frozen.substr(2));
  return state.text.size();
}

enum class Freezing { kNone, kThawToWrite, kFrozenWriter };

class StateTableTest : public ::testing::TestWithParam<Freezing> {};

constexpr ledger::SideFamily kFamily = 0;

// A ledger in `dir` with one side family (kFamily), unsynced.
std::unique_ptr<ledger::Ledger> OpenTestLedger(const testing::TempDir& dir) {
  ledger::Options options;
  options.side_families = {"proj.test"};
  options.sync = false;
  return std::move(ledger::Ledger::Open(dir.str(), options)).value();
}

TEST_P(StateTableTest, RandomTouchesEvictionsAndFlushesMatchTheModel) {
  testing::TempDir dir;
  auto ledger = OpenTestLedger(dir);
  StateTable<Text> table(*ledger, kFamily, &Encode, &Decode);
  if (GetParam() != Freezing::kNone) {
    StateTable<Text>::FrozenWriter write_frozen;
    if (GetParam() == Freezing::kFrozenWriter) {
      write_frozen = [](std::string_view key, std::string_view frozen, ledger::SideBatch& batch) {
        if (!frozen.starts_with("F:")) return ledger::Status(ledger::Code::kCorruption, "frozen");
        batch.Put(kFamily, key, frozen.substr(2));
        return ledger::Status::Ok();
      };
    }
    table.KeepFrozen(&Freeze, &Thaw, write_frozen);
  }
  table.StartEmpty();  // the family is empty: misses read the store only for evicted keys

  std::mt19937_64 rng(42 + static_cast<int>(GetParam()));
  std::map<std::string, std::string> model;
  auto write = [&](ledger::SideBatch& batch) {
    ASSERT_TRUE(ledger->WriteSideUnlogged(batch).ok());
  };
  for (int step = 0; step < 20000; ++step) {
    const uint64_t op = rng() % 100;
    if (op < 90) {
      const std::string key = "app/KM-2025-" + std::to_string(rng() % 300);
      auto state = table.Mutable(key);
      ASSERT_TRUE(state.ok()) << state.status().ToString();
      ASSERT_EQ((*state)->text, model[key]) << "step " << step << " key " << key;
      const char c = static_cast<char>('a' + rng() % 26);
      (*state)->text += c;
      model[key] += c;
    } else if (op < 97) {
      const size_t bytes_max = 1000 + rng() % 40000;
      const size_t states_max = 5 + rng() % 200;
      if (rng() % 2 == 0) {
        auto batch = ledger->NewSideBatch();
        ASSERT_TRUE(table.Evict(bytes_max, states_max, batch.get()).ok());
        write(*batch);
        EXPECT_LE(table.bytes(), bytes_max);
        EXPECT_LE(table.size(), states_max);
      } else {
        ASSERT_TRUE(table.Evict(bytes_max, states_max).ok());  // dirty states stay
      }
    } else {
      auto batch = ledger->NewSideBatch();
      ASSERT_TRUE(table.WriteDirty(*batch).ok());
      write(*batch);
    }
  }
  auto batch = ledger->NewSideBatch();
  ASSERT_TRUE(table.WriteDirty(*batch).ok());
  write(*batch);
  for (const auto& [key, text] : model) {
    auto stored = ledger->GetSide(kFamily, key);
    ASSERT_TRUE(stored.ok());
    ASSERT_TRUE(stored->has_value()) << key;
    EXPECT_EQ(**stored, text) << key;
  }
}

// A miss of the cache reads the store, unless the caller says the store holds nothing at the key
// (the first event of a stream): then the state starts new without a read. A key already cached
// is handed out as cached either way.
TEST(StateTableUnstored, AMissSaidUnstoredStartsNewWithoutReadingTheStore) {
  testing::TempDir dir;
  auto ledger = OpenTestLedger(dir);
  auto stored = ledger->NewSideBatch();
  stored->Put(kFamily, "app/A", "stored A");
  stored->Put(kFamily, "app/B", "stored B");
  ASSERT_TRUE(ledger->WriteSideUnlogged(*stored).ok());
  StateTable<Text> table(*ledger, kFamily, &Encode, &Decode);

  auto read = table.Mutable("app/A");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ((*read)->text, "stored A");
  auto unread = table.Mutable("app/B", /*unstored=*/true);
  ASSERT_TRUE(unread.ok()) << unread.status().ToString();
  EXPECT_EQ((*unread)->text, "");
  (*unread)->text = "new B";
  auto cached = table.Mutable("app/A", /*unstored=*/true);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ((*cached)->text, "stored A");
  auto batch = ledger->NewSideBatch();
  ASSERT_TRUE(table.WriteDirty(*batch).ok());
  ASSERT_TRUE(ledger->WriteSideUnlogged(*batch).ok());
  auto written = ledger->GetSide(kFamily, "app/B");
  ASSERT_TRUE(written.ok() && written->has_value());
  EXPECT_EQ(**written, "new B");
}

INSTANTIATE_TEST_SUITE_P(Freezing, StateTableTest,
                         ::testing::Values(Freezing::kNone, Freezing::kThawToWrite,
                                           Freezing::kFrozenWriter),
                         [](const ::testing::TestParamInfo<Freezing>& info) {
                           switch (info.param) {
                             case Freezing::kNone:
                               return std::string("NoFreezing");
                             case Freezing::kThawToWrite:
                               return std::string("ThawToWrite");
                             case Freezing::kFrozenWriter:
                               return std::string("FrozenWriter");
                           }
                           return std::string("Unknown");
                         });

}  // namespace
}  // namespace gridledger::projections
