// The evidence projection: the section 7.2 evaluation methods of the job standard
// (../shared/seed/work-standard.zh.txt; ../shared/domain.md "Supporting figures") as facts per
// stream — 资料审查 document review (DocumentReviewed), 现场检查 site inspection (SiteInspected),
// 客户回访 customer callback (CallbackMade) per application, 第三方调查 third-party survey
// (ThirdPartySurveyRecorded) per survey/<period> stream — and their coverage per period.
//
// KEY: evidence/<stream>, one state per app/<id> or survey/<period> stream (EvidenceKey). Other
// streams have no evidence state. A state adopts the stream of the first event folded into it and
// ignores events of other streams.
//
// Thread-safety: values only; nothing here does I/O or reads a clock. Nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "ledger/event.h"
#include "projections/application.h"
#include "projections/report_orgs.h"

namespace gridledger::projections {

// One DocumentReviewed, SiteInspected or CallbackMade.
struct EvidenceRecord {
  std::string type;
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  std::string actor_id;
  std::string actor_org;
  std::string by;            // data.reviewer / data.inspector / data.agent
  std::string conclusion;    // pass | fail; for callbacks the result: reached | no_answer | …
  std::string satisfaction;  // callbacks: satisfied | basically_satisfied | … | ""
  std::vector<std::string> defects;  // reviews and inspections: defects; callbacks: complaints
  std::vector<std::string> items;    // the items reviewed or checked on site
  std::vector<std::string> items_missing;    // document review: items with present == false
  std::vector<std::string> items_incorrect;  // document review: present but correct == false
  std::string comment;                       // callbacks
  bool operator==(const EvidenceRecord&) const = default;
};

// One ThirdPartySurveyRecorded.
struct SurveyRecord {
  uint64_t position = 0;
  int64_t occurred_at_us = 0;
  std::string actor_org;
  std::string agency;
  uint32_t sample_size = 0;
  double satisfaction_index = 0;  // 0..100
  std::vector<std::string> issues;
  bool operator==(const SurveyRecord&) const = default;
};

struct EvidenceState {
  std::string stream;
  uint64_t last_position = 0;
  // app/<id> streams (from the application state after each event):
  std::string org;
  std::optional<domain::Date> connected;  // local date of the first MeterConnected
  std::optional<domain::Date> archived;   // local date of Archived
  std::vector<EvidenceRecord> document_reviews;
  std::vector<EvidenceRecord> site_inspections;
  std::vector<EvidenceRecord> callbacks;
  // survey/<period> streams:
  std::vector<SurveyRecord> surveys;

  bool operator==(const EvidenceState&) const = default;
};

// An EvidenceState as a runner caches it between folds: the scalars in `state`, whose lists are
// empty after each Fold(), and the items of each list already in their stored form. The fold
// only ever appends items, so they need not stay decoded, and a cached state costs about its
// stored size. AppendEncoded(compact) gives the bytes of Encode() of the whole state.
struct CompactEvidence {
  static constexpr size_t kListCount = 4;  // document_reviews, site_inspections, callbacks, surveys
  EvidenceState state;
  std::array<uint64_t, kListCount> counts{};
  std::array<std::string, kListCount> items;  // encoded items, in list order
};
// Folds like Fold(EvidenceState&, …), then moves the new items into their encoded lists.
void Fold(CompactEvidence& compact, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after);
// The compact form of a whole state (its lists are moved out and encoded).
CompactEvidence Compact(EvidenceState state);
// Appends the bytes of Encode() of the whole state to `out`.
void AppendEncoded(const CompactEvidence& compact, std::string& out);
// Approximate memory of a compact state.
size_t ApproximateBytes(const CompactEvidence& compact);
// A compact state as one string and back, for a cache that keeps idle states in memory in this
// smaller form (never stored: the stored form is AppendEncoded's). ThawFrozen gives a state equal
// to the frozen one, or false when `bytes` are not from AppendFrozen.
void AppendFrozen(const CompactEvidence& compact, std::string& out);
bool ThawFrozen(std::string_view bytes, CompactEvidence& compact);

// "evidence/<stream>" for app/ and survey/ streams; nullopt for other streams.
std::optional<std::string> EvidenceKey(std::string_view stream);
std::string KeyOf(const EvidenceState& state);

// Folds one event. `app_after` is the application state after this event for app/ streams (else
// nullptr); events it rejected as invalid are skipped, and org / connection / archive dates come
// from it. Pure and deterministic; events must come in position order. `actor_id` is recorded on
// the items (the Engine passes record.actor_id).
void Fold(EvidenceState& state, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after);
void Fold(EvidenceState& state, const ledger::StoredEvent& event,
          const ApplicationState* app_after);
void Fold(EvidenceState& state, const ledger::EventView& event, const ApplicationState* app_after);

// Deterministic bytes (MessagePack of ToJson): equal states give equal bytes.
std::string Encode(const EvidenceState& state);
// Appends the bytes of Encode(state) to `out`.
void AppendEncoded(const EvidenceState& state, std::string& out);
std::optional<EvidenceState> DecodeEvidenceState(std::string_view bytes);
// {stream, org, connected, archived, last_position, document_reviews[], site_inspections[],
//  callbacks[], surveys[]}; each record {type, position, occurred_at (RFC 3339, +08:00),
//  occurred_at_us, actor_id, actor_org, by, conclusion, satisfaction, defects[], items[],
//  items_missing[], items_incorrect[], comment}.
nlohmann::json ToJson(const EvidenceState& state);

// Coverage of `period` ("YYYY-MM" or "YYYY-Qn") for `org` (nullopt: all orgs):
// {period, org, months[],
//  document_review: share of apps ARCHIVED in the period with at least one document review (at
//    any time) — {covered, of, value (null when of == 0), covered_ids[], missing_ids[]},
//  site_inspection: share of apps CONNECTED (first MeterConnected) in the period with at least one
//    site inspection, as the KPI table's supporting site_inspection_coverage — same shape,
//  callback: share of apps CONNECTED in the period with at least one reached callback — same
//    shape,
//  surveys: [{stream, position, occurred_at, actor_org, agency, sample_size,
//    satisfaction_index, issues[]}] of the survey/<p> streams whose period p is the period or one
//    of its months, or the quarter containing it (org does not filter surveys)}.
// A bad period gives {"error": "bad_period", "period": …}.
nlohmann::json EvidenceCoverage(const std::vector<EvidenceState>& states, std::string_view period,
                                const ReportOrgs& orgs);

}  // namespace gridledger::projections
