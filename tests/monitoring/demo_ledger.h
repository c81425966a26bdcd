// A ledger in a temporary directory holding a seeded demo workload (ingest/demo_workload.h),
// appended through the Ingestor like `ledgerctl demo`, with its projections caught up; plus the
// source tree's calendar and default SLA profile. For the monitoring tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "domain/calendar.h"
#include "domain/event_json.h"
#include "domain/sla_profile.h"
#include "ingest/demo_workload.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "projections/engine.h"
#include "support/temp_dir.h"

namespace gridledger::monitoring::testing {

inline domain::WorkingCalendar LoadCalendar() {
  auto loaded = domain::WorkingCalendar::Load(std::string(SOURCE_DIR) + "/domain/data/calendar");
  EXPECT_TRUE(std::holds_alternative<domain::WorkingCalendar>(loaded));
  return std::get<domain::WorkingCalendar>(std::move(loaded));
}

inline domain::SlaProfile LoadProfile() {
  auto loaded =
      domain::SlaProfile::Load(std::string(SOURCE_DIR) + "/domain/data/sla/national-2009.json");
  EXPECT_TRUE(std::holds_alternative<domain::SlaProfile>(loaded));
  return std::get<domain::SlaProfile>(std::move(loaded));
}

// Unix microseconds of an RFC 3339 time.
inline int64_t At(const std::string& text) {
  auto parsed = domain::ParseTimestamp(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? parsed->unix_us : 0;
}

class DemoLedger {
 public:
  // `last_day`: the workload stops there, so applications accepted near it are still open.
  DemoLedger(uint64_t apps, uint64_t seed, domain::Date last_day,
             ledger::LedgerProbe* probe = nullptr)
      : calendar_(LoadCalendar()), profile_(LoadProfile()) {
    ledger::Options options;
    options.side_families = projections::SideFamilies();
    options.sync = false;  // a test fixture, not a durability test
    options.probe = probe;
    auto opened = ledger::Ledger::Open(dir_.str() + "/data", options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened).value();
    if (apps > 0) Load(apps, seed, last_day);
    engine_ = std::make_unique<projections::Engine>(*ledger_);
    ledger::Status caught_up = engine_->CatchUp();
    EXPECT_TRUE(caught_up.ok()) << caught_up.message();
  }

  // Appends one client event (JSON) through the Ingestor; returns whether it was stored.
  bool Append(const std::string& json) {
    auto decoded = domain::DecodeClientEvent(json);
    if (!std::holds_alternative<domain::ClientEvent>(decoded)) return false;
    ingest::Ingestor ingestor(*ledger_);
    auto answer = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
    return std::holds_alternative<ingest::IngestOutcome>(answer);
  }
  void CatchUp() {
    ledger::Status caught_up = engine_->CatchUp();
    EXPECT_TRUE(caught_up.ok()) << caught_up.message();
  }

  ledger::Ledger& ledger() { return *ledger_; }
  projections::Engine& engine() { return *engine_; }
  const domain::WorkingCalendar& calendar() const { return calendar_; }
  const domain::SlaProfile& profile() const { return profile_; }
  std::string dir() const { return dir_.str(); }

 private:
  void Load(uint64_t apps, uint64_t seed, domain::Date last_day) {
    ingest::DemoOptions demo;
    demo.apps = apps;
    demo.seed = seed;
    demo.last_day = last_day;
    // Many corrected applications, so figures read from raw buckets must skip superseded items.
    demo.correction_rate = 0.3;
    ingest::DemoWorkload workload(demo, calendar_);
    ingest::Ingestor ingestor(*ledger_);
    uint64_t rejected = 0;
    for (std::string line; workload.Next(&line);) {
      auto decoded = domain::DecodeClientEvent(line);
      if (!std::holds_alternative<domain::ClientEvent>(decoded)) {
        ++rejected;
        continue;
      }
      auto answer = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
      if (!std::holds_alternative<ingest::IngestOutcome>(answer)) ++rejected;
    }
    EXPECT_EQ(rejected, 0u);
  }

  gridledger::testing::TempDir dir_;
  domain::WorkingCalendar calendar_;
  domain::SlaProfile profile_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<projections::Engine> engine_;
};

// The suites' shared workload: a few hundred applications stopped mid-2026, so many are still open
// at kEvaluatedAt. Built once per suite (SetUpTestSuite), shared by its tests through demo_.
class DemoLedgerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    demo_ = new DemoLedger(400, 11, *domain::Date::FromCivil(2026, 6, 30));
  }
  static void TearDownTestSuite() {
    delete demo_;
    demo_ = nullptr;
  }
  static inline DemoLedger* demo_ = nullptr;
};

// Friday after the workload's last day (2026-06-30).
inline const int64_t kEvaluatedAt = At("2026-07-03T12:00:00+08:00");

}  // namespace gridledger::monitoring::testing
