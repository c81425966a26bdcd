// Goal: what is stored survives a reopen and cannot be changed unnoticed — head and hash recovered,
// the chain continues, a flipped byte is named by Verify, wrong format versions and a held
// directory are refused with clear errors; Compact rewrites files into the ledger's layout and
// changes no event.
// Method: write through Ledger, close, then reopen or edit the RocksDB files directly.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/table_properties.h>

#include <set>

#include "format.h"
#include "ledger/ledger.h"
#include "support/temp_dir.h"

namespace gridledger::ledger {
namespace {

NewEvent Event(const std::string& id) {
  NewEvent event;
  event.event_id = id;
  event.type = "Stored";
  event.occurred_at_us = 42;
  event.actor = {"S1", "clerk", "ORG"};
  event.payload = "payload of " + id;
  return event;
}

void AppendN(Ledger& ledger, int from, int count) {
  for (int i = from; i < from + count; ++i) {
    auto result = ledger.Append(
        {"app/" + std::to_string(i % 3), std::nullopt, {Event("e" + std::to_string(i))}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
  }
}

// Opens the raw RocksDB with the ledger's column families for direct edits.
struct RawDb {
  explicit RawDb(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", format::kEventsFamily, format::kStreamsFamily,
                             format::kIdsFamily, format::kMetaFamily}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &raw).ok());
    db.reset(raw);
  }
  ~RawDb() {
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

TEST(RecoveryTest, ReopenRecoversHeadAndContinuesTheChain) {
  testing::TempDir dir;
  Digest before;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 20);
    before = ledger->HeadDigest();
  }
  auto ledger = std::move(Ledger::Open(dir.str())).value();
  EXPECT_EQ(ledger->Head(), 20u);
  EXPECT_EQ(ledger->HeadDigest().hash_hex, before.hash_hex);
  EXPECT_EQ(ledger->StreamVersion("app/1").value(), 6);
  AppendN(*ledger, 20, 5);
  EXPECT_EQ(ledger->ReadOne(21)->version, 6u);  // "app/2" held events 2, 5, ..., 17: v0..v5
  auto verified = ledger->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->position, 25u);
  // Idempotency holds across reopen: ids are never forgotten.
  auto retry = ledger->Append({"app/0", std::nullopt, {Event("e0")}});
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->events[0].duplicate);
  EXPECT_EQ(retry->events[0].position, 1u);
}

TEST(RecoveryTest, FlippedStoredByteIsNamedByVerify) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 30);
  }
  constexpr uint64_t kTampered = 17;
  {
    RawDb raw(dir.str());
    std::string value;
    ASSERT_TRUE(raw.db->Get({}, raw.handles[1], format::EventKey(kTampered), &value).ok());
    size_t at = value.find("payload of e16");
    ASSERT_NE(at, std::string::npos);
    value[at + 3] ^= 0x01;  // one bit of one payload byte
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(raw.db->Put(sync, raw.handles[1], format::EventKey(kTampered), value).ok());
  }
  auto ledger = std::move(Ledger::Open(dir.str())).value();
  auto verified = ledger->Verify();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), Code::kCorruption);
  EXPECT_EQ(verified.status().position(), kTampered) << verified.status().ToString();
  // A backup verifies its copy and refuses it, naming the same position.
  testing::TempDir elsewhere;
  auto backup = ledger->Backup((elsewhere.path() / "backup").string());
  ASSERT_FALSE(backup.ok());
  EXPECT_EQ(backup.status().code(), Code::kCorruption);
  EXPECT_EQ(backup.status().position(), kTampered) << backup.status().ToString();
}

// An event deleted from the store (not the head: that refuses to open) is damage, not "no such
// event": reads by position and by stream say corruption, naming the position.
TEST(RecoveryTest, ADeletedEventReadsAsCorruptionNotAsAbsent) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 10);
  }
  constexpr uint64_t kDeleted = 4;
  {
    RawDb raw(dir.str());
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(raw.db->Delete(sync, raw.handles[1], format::EventKey(kDeleted)).ok());
  }
  auto ledger = std::move(Ledger::Open(dir.str())).value();
  auto one = ledger->ReadOne(kDeleted);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().code(), Code::kCorruption) << one.status().ToString();
  EXPECT_EQ(one.status().position(), kDeleted);
  const std::string stream = "app/" + std::to_string((kDeleted - 1) % 3);  // AppendN's streams
  auto history = ledger->ReadStream(stream);
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().code(), Code::kCorruption) << history.status().ToString();
  EXPECT_TRUE(ledger->ReadOne(kDeleted + 1).ok());
  // Verify says what it found, not only where.
  auto verified = ledger->Verify();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().position(), kDeleted);
  EXPECT_NE(verified.status().message().find("missing: the next event stored is at position 5"),
            std::string::npos)
      << verified.status().ToString();
}

// An event copied over another is named as such by Verify.
TEST(RecoveryTest, AnEventCopiedOverAnotherIsNamedByVerify) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 10);
  }
  {
    RawDb raw(dir.str());
    std::string sixth;
    ASSERT_TRUE(raw.db->Get({}, raw.handles[1], format::EventKey(6), &sixth).ok());
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(raw.db->Put(sync, raw.handles[1], format::EventKey(7), sixth).ok());
  }
  auto ledger = std::move(Ledger::Open(dir.str())).value();
  auto verified = ledger->Verify();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().position(), 7u);
  EXPECT_NE(verified.status().message().find("holds the event of position 6"), std::string::npos)
      << verified.status().ToString();
}

TEST(RecoveryTest, EveryTamperedByteOfAnEventIsDetected) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 1);
    // The event tampered with uses every envelope field, who recorded it included.
    NewEvent imported = Event("e1");
    imported.imported = true;
    imported.recorded_by = Actor{"D0001", "director", "ORG"};
    ASSERT_TRUE(ledger->Append({"app/1", std::nullopt, {imported}}).ok());
    AppendN(*ledger, 2, 1);
  }
  std::string original;
  {
    RawDb raw(dir.str());
    ASSERT_TRUE(raw.db->Get({}, raw.handles[1], format::EventKey(2), &original).ok());
  }
  for (size_t byte = 0; byte < original.size(); byte += 7) {
    {
      RawDb raw(dir.str());
      std::string changed = original;
      changed[byte] ^= 0x20;
      ASSERT_TRUE(raw.db->Put({}, raw.handles[1], format::EventKey(2), changed).ok());
    }
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    auto verified = ledger->Verify();
    ASSERT_FALSE(verified.ok()) << "byte " << byte << " changed unnoticed";
    EXPECT_EQ(verified.status().position(), 2u) << "byte " << byte;
  }
}

TEST(RecoveryTest, MetaHeadDisagreeingWithEventsRefusesToOpen) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 4);
  }
  {
    RawDb raw(dir.str());
    ASSERT_TRUE(raw.db->Delete({}, raw.handles[1], format::EventKey(4)).ok());
  }
  auto reopened = Ledger::Open(dir.str());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Code::kCorruption);
}

TEST(RecoveryTest, OtherFormatVersionIsRefused) {
  testing::TempDir dir;
  { auto ledger = std::move(Ledger::Open(dir.str())).value(); }
  {
    RawDb raw(dir.str());
    ASSERT_TRUE(raw.db->Put({}, raw.handles[4], format::kMetaFormatVersionKey, "99").ok());
  }
  auto reopened = Ledger::Open(dir.str());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Code::kCorruption);
  EXPECT_NE(reopened.status().message().find("99"), std::string::npos);
}

TEST(RecoveryTest, HeldDirectoryIsReportedAsLocked) {
  testing::TempDir dir;
  auto first = std::move(Ledger::Open(dir.str())).value();
  auto second = Ledger::Open(dir.str());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kLocked);
  EXPECT_NE(second.status().message().find("--server"), std::string::npos);
}

// The compression of every table file of the events family.
std::set<std::string> EventsCompression(const std::string& dir) {
  RawDb raw(dir);
  rocksdb::TablePropertiesCollection tables;
  EXPECT_TRUE(raw.db->GetPropertiesOfAllTables(raw.handles[1], &tables).ok());
  std::set<std::string> names;
  for (const auto& [file, properties] : tables) names.insert(properties->compression_name);
  return names;
}

TEST(RecoveryTest, CompactRewritesFilesInTheLedgersLayoutAndKeepsEveryEvent) {
  testing::TempDir dir;
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    AppendN(*ledger, 0, 50);
  }
  {
    // Compacted under RocksDB's defaults, as a tool (or an older benchmark) might: Snappy.
    RawDb raw(dir.str());
    rocksdb::CompactRangeOptions options;
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(raw.db->CompactRange(options, raw.handles[1], nullptr, nullptr).ok());
  }
  ASSERT_EQ(EventsCompression(dir.str()), std::set<std::string>{"Snappy"});
  {
    auto ledger = std::move(Ledger::Open(dir.str())).value();
    const Digest before = ledger->HeadDigest();
    Status compacted = ledger->Compact();
    ASSERT_TRUE(compacted.ok()) << compacted.ToString();
    auto verified = ledger->Verify();
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->position, 50u);
    EXPECT_EQ(verified->hash_hex, before.hash_hex);
    EXPECT_EQ(ledger->ReadOne(17)->event_id, "e16");
  }
  // The ledger stores events uncompressed (ledger.cc, FamilyOptions): the old files are gone.
  EXPECT_EQ(EventsCompression(dir.str()), std::set<std::string>{"NoCompression"});
}

}  // namespace
}  // namespace gridledger::ledger
