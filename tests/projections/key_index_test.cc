// Goal: KeyIndex (projections/key_index.h) finds exactly the items inserted and not yet erased,
// however keys collide, wrap around the end of the slot array and are erased out of order.
// Method: seeded random inserts, erases and lookups against std::unordered_map as the model,
// with a hash that puts every key into one of a few home slots (long probe runs that wrap, the
// case backward-shift deletion gets wrong), then with the real hash through several growths.
#include "projections/key_index.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <unordered_map>

namespace gridledger::projections {
namespace {

struct Item {
  std::string name;
  std::string_view key() const { return name; }
};

// Runs `steps` random operations over `key_count` keys; `hash_of` gives each key's hash.
void CheckAgainstModel(uint64_t seed, int key_count, int steps,
                       uint64_t (*hash_of)(std::string_view)) {
  std::mt19937_64 rng(seed);
  KeyIndex<Item> index;
  std::unordered_map<std::string, std::unique_ptr<Item>> model;
  for (int step = 0; step < steps; ++step) {
    const std::string key = "app/KM-2025-" + std::to_string(rng() % key_count);
    const uint64_t hash = hash_of(key);
    Item* found = index.Find(key, hash);
    auto it = model.find(key);
    ASSERT_EQ(found, it == model.end() ? nullptr : it->second.get()) << "step " << step;
    if (it == model.end()) {
      auto item = std::make_unique<Item>(Item{key});
      index.Insert(item.get(), hash);
      model.emplace(key, std::move(item));
    } else if (rng() % 2 == 0) {
      index.Erase(it->second.get(), hash);
      model.erase(it);
    }
    ASSERT_EQ(index.size(), model.size());
  }
  size_t visited = 0;
  index.ForEach([&](Item* item) {
    ++visited;
    auto it = model.find(item->name);
    ASSERT_NE(it, model.end());
    EXPECT_EQ(it->second.get(), item);
  });
  EXPECT_EQ(visited, model.size());
  for (const auto& [key, item] : model) EXPECT_EQ(index.Find(key, hash_of(key)), item.get());
}

// Five home slots, the last five of the array whatever its size, so runs collide and wrap.
uint64_t CrowdedHash(std::string_view key) { return ~(KeyIndex<Item>::Hash(key) % 5); }

TEST(KeyIndexTest, CollidingKeysWrappingAroundMatchTheModel) {
  for (uint64_t seed = 1; seed <= 20; ++seed) CheckAgainstModel(seed, 40, 2000, &CrowdedHash);
}

TEST(KeyIndexTest, ManyKeysThroughSeveralGrowthsMatchTheModel) {
  CheckAgainstModel(7, 5000, 40000, &KeyIndex<Item>::Hash);
}

TEST(KeyIndexTest, FindByHashReadsOnlySlots) {
  KeyIndex<Item> index;
  Item a{"a"};
  EXPECT_EQ(index.FindByHash(KeyIndex<Item>::Hash("a")), nullptr);
  index.Insert(&a, KeyIndex<Item>::Hash("a"));
  EXPECT_EQ(index.FindByHash(KeyIndex<Item>::Hash("a")), &a);
  EXPECT_EQ(index.Find("b", KeyIndex<Item>::Hash("a")), nullptr);  // same hash, other key
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Find("a", KeyIndex<Item>::Hash("a")), nullptr);
}

}  // namespace
}  // namespace gridledger::projections
