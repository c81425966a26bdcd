// The evidence projection (see projections/include/projections/evidence.h).
#include "projections/evidence.h"
#include "json_util.h"

#include <algorithm>
#include <set>
#include <variant>

#include "byte_codec.h"
#include "domain/event_json.h"
#include "domain/payload.h"
#include "projections/kpi.h"

namespace gridledger::projections {
namespace {

using domain::Date;
using nlohmann::json;

constexpr std::string_view kKeyPrefix = "evidence/";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

namespace ev = domain::events;
using domain::EnumName;
using domain::TextOf;
using domain::TextsOf;

// The names of a list of enum values; false when one is not named by the schema.
template <typename Enum>
bool NamesOf(typename capnp::List<Enum>::Reader list, std::vector<std::string>& names) {
  for (Enum value : list) {
    std::optional<std::string_view> name = EnumName(value);
    if (!name) return false;
    names.emplace_back(*name);
  }
  return true;
}

bool ReadDocumentReview(ev::DocumentReviewed::Reader root, EvidenceRecord& record) {
  std::optional<std::string_view> conclusion = EnumName(root.getConclusion());
  if (!conclusion) return false;
  record.by = TextOf(root.getReviewer());
  record.conclusion = *conclusion;
  if (root.hasDefects()) record.defects = TextsOf(root.getDefects());
  for (ev::ReviewItem::Reader item : root.getItems()) {
    std::string name = TextOf(item.getItem());
    if (!item.getPresent()) {
      record.items_missing.push_back(name);
    } else if (!item.getCorrect()) {
      record.items_incorrect.push_back(name);
    }
    record.items.push_back(std::move(name));
  }
  return true;
}

bool ReadSiteInspection(ev::SiteInspected::Reader root, EvidenceRecord& record) {
  std::optional<std::string_view> conclusion = EnumName(root.getConclusion());
  if (!conclusion) return false;
  record.by = TextOf(root.getInspector());
  record.conclusion = *conclusion;
  if (root.hasDefects()) record.defects = TextsOf(root.getDefects());
  record.items = TextsOf(root.getItems());
  return true;
}

bool ReadCallback(ev::CallbackMade::Reader root, EvidenceRecord& record) {
  std::optional<std::string_view> result = EnumName(root.getResult());
  if (!result) return false;
  record.by = TextOf(root.getAgent());
  record.conclusion = *result;
  if (root.getHasSatisfaction()) {
    std::optional<std::string_view> satisfaction = EnumName(root.getSatisfaction());
    if (!satisfaction) return false;
    record.satisfaction = *satisfaction;
  }
  if (root.hasComplaints() && !NamesOf<ev::Complaint>(root.getComplaints(), record.defects)) {
    return false;
  }
  if (root.hasComment()) record.comment = TextOf(root.getComment());
  return true;
}

// The record of an evidence event; nullopt for other types or an undecodable payload.
std::optional<EvidenceRecord> RecordOfEvidence(const EventRecord& event,
                                               std::string_view actor_id) {
  EvidenceRecord record;
  bool read = false;
  if (event.type == "DocumentReviewed") {
    read = domain::ReadPayload<ev::DocumentReviewed>(
        event.payload, [&](auto root) { return ReadDocumentReview(root, record); });
  } else if (event.type == "SiteInspected") {
    read = domain::ReadPayload<ev::SiteInspected>(
        event.payload, [&](auto root) { return ReadSiteInspection(root, record); });
  } else if (event.type == "CallbackMade") {
    read = domain::ReadPayload<ev::CallbackMade>(
        event.payload, [&](auto root) { return ReadCallback(root, record); });
  }
  if (!read) return std::nullopt;
  record.type = std::string(event.type);
  record.position = event.position;
  record.occurred_at_us = event.occurred_at_us;
  record.actor_id = std::string(actor_id);
  record.actor_org = std::string(event.actor_org);
  return record;
}

// Reads the payloads of DocumentReviewed, SiteInspected and CallbackMade, whose corrections
// domain::ChangesFacts refolds whatever they change; reading another type's payload here would need
// it added there.
void FoldAppEvent(EvidenceState& state, const EventRecord& event, std::string_view actor_id,
                  const ApplicationState* app_after) {
  if (app_after != nullptr) {
    const bool rejected =
        !app_after->rejected.empty() && app_after->rejected.back().position == event.position;
    if (rejected) return;
    state.org = app_after->org;
  }
  if (event.type == "MeterConnected" && !state.connected) {
    state.connected = domain::LocalDateOf(event.occurred_at_us);
  }
  if (event.type == "Archived" && !state.archived) {
    state.archived = domain::LocalDateOf(event.occurred_at_us);
  }
  std::optional<EvidenceRecord> record = RecordOfEvidence(event, actor_id);
  if (!record) return;
  if (record->type == "DocumentReviewed") {
    state.document_reviews.push_back(std::move(*record));
  } else if (record->type == "SiteInspected") {
    state.site_inspections.push_back(std::move(*record));
  } else {
    state.callbacks.push_back(std::move(*record));
  }
}

void FoldSurveyEvent(EvidenceState& state, const EventRecord& event) {
  if (event.type != "ThirdPartySurveyRecorded") return;
  SurveyRecord survey;
  survey.position = event.position;
  survey.occurred_at_us = event.occurred_at_us;
  survey.actor_org = std::string(event.actor_org);
  const bool read = domain::ReadPayload<ev::ThirdPartySurveyRecorded>(
      event.payload, [&](ev::ThirdPartySurveyRecorded::Reader root) {
        survey.agency = TextOf(root.getAgency());
        survey.sample_size = root.getSampleSize();
        survey.satisfaction_index = root.getSatisfactionIndex();
        if (root.hasIssues()) survey.issues = TextsOf(root.getIssues());
        return true;
      });
  if (read) state.surveys.push_back(std::move(survey));
}

// ---- JSON form ----

json DateJson(const std::optional<Date>& date) {
  return date ? json(date->ToString()) : json(nullptr);
}

json RecordJson(const EvidenceRecord& r) {
  return {
      {"type", r.type},
      {"position", r.position},
      {"occurred_at", domain::FormatTimestamp(r.occurred_at_us, domain::kShanghaiUtcOffsetMinutes)},
      {"occurred_at_us", r.occurred_at_us},
      {"actor_id", r.actor_id},
      {"actor_org", r.actor_org},
      {"by", r.by},
      {"conclusion", r.conclusion},
      {"satisfaction", r.satisfaction},
      {"defects", r.defects},
      {"items", r.items},
      {"items_missing", r.items_missing},
      {"items_incorrect", r.items_incorrect},
      {"comment", r.comment}};
}

json SurveyJson(const SurveyRecord& s) {
  return {
      {"position", s.position},
      {"occurred_at", domain::FormatTimestamp(s.occurred_at_us, domain::kShanghaiUtcOffsetMinutes)},
      {"occurred_at_us", s.occurred_at_us},
      {"actor_org", s.actor_org},
      {"agency", s.agency},
      {"sample_size", s.sample_size},
      {"satisfaction_index", s.satisfaction_index},
      {"issues", s.issues}};
}

// ---- Binary form (grammar in byte_codec.h): version:u8 stream:string org:string
// last_position:varint connected:optional<svarint> archived:optional<svarint>
// document_reviews site_inspections callbacks: count × record; surveys: count × survey.
// record: type position:varint occurred_at_us:svarint actor_id actor_org by conclusion
//   satisfaction defects[] items[] items_missing[] items_incorrect[] comment (strings; [] = count
//   then strings). survey: position occurred_at_us actor_org agency sample_size:varint
//   satisfaction_index:double issues[].

constexpr uint8_t kEvidenceCodecVersion = 0x45;  // 'E'

void PutTexts(codec::Writer& w, const std::vector<std::string>& texts) {
  w.Varint(texts.size());
  for (const std::string& text : texts) w.String(text);
}

std::vector<std::string> GetTexts(codec::Reader& r) {
  std::vector<std::string> texts;
  const size_t count = r.Count();
  texts.reserve(count);
  for (size_t i = 0; i < count && r.ok(); ++i) texts.push_back(r.String());
  return texts;
}

void PutRecord(codec::Writer& w, const EvidenceRecord& x) {
  w.String(x.type);
  w.Varint(x.position);
  w.Signed(x.occurred_at_us);
  w.String(x.actor_id);
  w.String(x.actor_org);
  w.String(x.by);
  w.String(x.conclusion);
  w.String(x.satisfaction);
  PutTexts(w, x.defects);
  PutTexts(w, x.items);
  PutTexts(w, x.items_missing);
  PutTexts(w, x.items_incorrect);
  w.String(x.comment);
}

EvidenceRecord GetRecord(codec::Reader& r) {
  EvidenceRecord x;
  x.type = r.String();
  x.position = r.Varint();
  x.occurred_at_us = r.Signed();
  x.actor_id = r.String();
  x.actor_org = r.String();
  x.by = r.String();
  x.conclusion = r.String();
  x.satisfaction = r.String();
  x.defects = GetTexts(r);
  x.items = GetTexts(r);
  x.items_missing = GetTexts(r);
  x.items_incorrect = GetTexts(r);
  x.comment = r.String();
  return x;
}

void PutSurvey(codec::Writer& w, const SurveyRecord& s) {
  w.Varint(s.position);
  w.Signed(s.occurred_at_us);
  w.String(s.actor_org);
  w.String(s.agency);
  w.Varint(s.sample_size);
  w.Double(s.satisfaction_index);
  PutTexts(w, s.issues);
}

SurveyRecord GetSurvey(codec::Reader& r) {
  SurveyRecord s;
  s.position = r.Varint();
  s.occurred_at_us = r.Signed();
  s.actor_org = r.String();
  s.agency = r.String();
  s.sample_size = r.Uint32();
  s.satisfaction_index = r.Double();
  s.issues = GetTexts(r);
  return s;
}

template <typename T>
void PutAll(codec::Writer& w, const std::vector<T>& items, void (*put)(codec::Writer&, const T&)) {
  w.Varint(items.size());
  for (const T& item : items) put(w, item);
}

template <typename T>
void GetAll(codec::Reader& r, std::vector<T>& items, T (*get)(codec::Reader&)) {
  const size_t count = r.Count();
  items.reserve(count);
  for (size_t i = 0; i < count && r.ok(); ++i) items.push_back(get(r));
}

// ---- Coverage ----

struct Coverage {
  json covered_ids = json::array();
  json missing_ids = json::array();

  void Add(const std::string& id, bool covered) {
    (covered ? covered_ids : missing_ids).push_back(id);
  }
  json ToJson() const {
    const size_t covered = covered_ids.size();
    const size_t of = covered + missing_ids.size();
    return {{"covered", covered},
            {"of", of},
            {"value", of == 0 ? json(nullptr) : json(static_cast<double>(covered) / of)},
            {"covered_ids", covered_ids},
            {"missing_ids", missing_ids}};
  }
};

bool InMonths(const std::optional<Date>& date, const std::set<std::string>& months) {
  return date && months.count(MonthOf(*date)) > 0;
}

bool SurveyInPeriod(std::string_view stream, const std::set<std::string>& months) {
  const auto survey_months = PeriodMonths(stream.substr(std::string_view("survey/").size()));
  if (!survey_months) return false;
  return std::any_of(survey_months->begin(), survey_months->end(),
                     [&months](const std::string& month) { return months.count(month) > 0; });
}

json SurveysOf(const std::vector<const EvidenceState*>& sorted,
               const std::set<std::string>& months) {
  json surveys = json::array();
  for (const EvidenceState* state : sorted) {
    if (!StartsWith(state->stream, "survey/") || !SurveyInPeriod(state->stream, months)) continue;
    for (const SurveyRecord& survey : state->surveys) {
      json item = SurveyJson(survey);
      item["stream"] = state->stream;
      item.erase("occurred_at_us");
      surveys.push_back(std::move(item));
    }
  }
  return surveys;
}

}  // namespace

std::optional<std::string> EvidenceKey(std::string_view stream) {
  if (!StartsWith(stream, "app/") && !StartsWith(stream, "survey/")) return std::nullopt;
  return std::string(kKeyPrefix) + std::string(stream);
}

std::string KeyOf(const EvidenceState& state) { return std::string(kKeyPrefix) + state.stream; }

void Fold(EvidenceState& state, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after) {
  if (state.stream.empty()) state.stream = std::string(event.stream);
  if (event.stream != state.stream) return;
  if (StartsWith(event.stream, "app/")) {
    FoldAppEvent(state, event, actor_id, app_after);
  } else if (StartsWith(event.stream, "survey/")) {
    FoldSurveyEvent(state, event);
  } else {
    return;
  }
  state.last_position = event.position;
}

void Fold(EvidenceState& state, const ledger::StoredEvent& event,
          const ApplicationState* app_after) {
  Fold(state, RecordOf(event), event.actor.id, app_after);
}

void Fold(EvidenceState& state, const ledger::EventView& event, const ApplicationState* app_after) {
  const auto id = event.envelope().getActor().getId();
  Fold(state, RecordOf(event), std::string_view(id.begin(), id.size()), app_after);
}

json ToJson(const EvidenceState& state) {
  return {{"stream", state.stream},
          {"org", state.org},
          {"connected", DateJson(state.connected)},
          {"archived", DateJson(state.archived)},
          {"last_position", state.last_position},
          {"document_reviews", ArrayOf(state.document_reviews, RecordJson)},
          {"site_inspections", ArrayOf(state.site_inspections, RecordJson)},
          {"callbacks", ArrayOf(state.callbacks, RecordJson)},
          {"surveys", ArrayOf(state.surveys, SurveyJson)}};
}

std::string Encode(const EvidenceState& state) {
  std::string out;
  AppendEncoded(state, out);
  return out;
}

namespace {

void PutScalars(codec::Writer& w, const EvidenceState& state) {
  w.U8(kEvidenceCodecVersion);
  w.String(state.stream);
  w.String(state.org);
  w.Varint(state.last_position);
  w.OptionalDate(state.connected);
  w.OptionalDate(state.archived);
}

// Moves the items of `items` to the end of the encoded list (`count` items in `bytes`).
template <typename T>
void MoveEncoded(std::vector<T>& items, void (*put)(codec::Writer&, const T&), uint64_t& count,
                 std::string& bytes) {
  if (items.empty()) return;
  codec::Writer w(bytes);
  for (const T& item : items) put(w, item);
  count += items.size();
  items.clear();
}

void MoveAllEncoded(CompactEvidence& compact) {
  EvidenceState& s = compact.state;
  MoveEncoded(s.document_reviews, &PutRecord, compact.counts[0], compact.items[0]);
  MoveEncoded(s.site_inspections, &PutRecord, compact.counts[1], compact.items[1]);
  MoveEncoded(s.callbacks, &PutRecord, compact.counts[2], compact.items[2]);
  MoveEncoded(s.surveys, &PutSurvey, compact.counts[3], compact.items[3]);
}

}  // namespace

void Fold(CompactEvidence& compact, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after) {
  Fold(compact.state, event, actor_id, app_after);
  MoveAllEncoded(compact);
}

CompactEvidence Compact(EvidenceState state) {
  CompactEvidence compact;
  compact.state = std::move(state);
  MoveAllEncoded(compact);
  return compact;
}

void AppendEncoded(const CompactEvidence& compact, std::string& out) {
  codec::Writer w(out);
  PutScalars(w, compact.state);
  for (size_t i = 0; i < CompactEvidence::kListCount; ++i) {
    w.Varint(compact.counts[i]);
    out.append(compact.items[i]);
  }
}

size_t ApproximateBytes(const CompactEvidence& compact) {
  size_t bytes =
      sizeof(CompactEvidence) + compact.state.stream.capacity() + compact.state.org.capacity();
  for (const std::string& items : compact.items) bytes += items.capacity();
  return bytes;
}

// The scalars as stored, then each list as its count and its encoded items as one string.
void AppendFrozen(const CompactEvidence& compact, std::string& out) {
  codec::Writer w(out);
  PutScalars(w, compact.state);
  for (size_t i = 0; i < CompactEvidence::kListCount; ++i) {
    w.Varint(compact.counts[i]);
    w.String(compact.items[i]);
  }
}

bool ThawFrozen(std::string_view bytes, CompactEvidence& compact) {
  codec::Reader r(bytes);
  if (r.U8() != kEvidenceCodecVersion) return false;
  EvidenceState& state = compact.state;
  state = EvidenceState{};
  state.stream = r.String();
  state.org = r.String();
  state.last_position = r.Varint();
  state.connected = r.OptionalDate();
  state.archived = r.OptionalDate();
  for (size_t i = 0; i < CompactEvidence::kListCount; ++i) {
    compact.counts[i] = r.Varint();
    compact.items[i] = r.String();
  }
  return r.Done();
}

void AppendEncoded(const EvidenceState& state, std::string& out) {
  codec::Writer w(out);
  PutScalars(w, state);
  PutAll(w, state.document_reviews, &PutRecord);
  PutAll(w, state.site_inspections, &PutRecord);
  PutAll(w, state.callbacks, &PutRecord);
  PutAll(w, state.surveys, &PutSurvey);
}

std::optional<EvidenceState> DecodeEvidenceState(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.U8() != kEvidenceCodecVersion) return std::nullopt;
  EvidenceState state;
  state.stream = r.String();
  state.org = r.String();
  state.last_position = r.Varint();
  state.connected = r.OptionalDate();
  state.archived = r.OptionalDate();
  GetAll(r, state.document_reviews, &GetRecord);
  GetAll(r, state.site_inspections, &GetRecord);
  GetAll(r, state.callbacks, &GetRecord);
  GetAll(r, state.surveys, &GetSurvey);
  if (!r.Done()) return std::nullopt;
  return state;
}

json EvidenceCoverage(const std::vector<EvidenceState>& states, std::string_view period,
                      const ReportOrgs& orgs) {
  const auto period_months = PeriodMonths(period);
  if (!period_months) return {{"error", "bad_period"}, {"period", period}};
  const std::set<std::string> months(period_months->begin(), period_months->end());
  std::vector<const EvidenceState*> sorted;
  for (const EvidenceState& state : states) sorted.push_back(&state);
  std::sort(sorted.begin(), sorted.end(),
            [](const EvidenceState* a, const EvidenceState* b) { return a->stream < b->stream; });
  Coverage reviews, inspections, callbacks;
  for (const EvidenceState* state : sorted) {
    if (!StartsWith(state->stream, "app/") || !orgs.Covers(state->org)) continue;
    if (InMonths(state->archived, months)) {
      reviews.Add(state->stream, !state->document_reviews.empty());
    }
    // Site inspections over the applications connected in the period, as the KPI table's
    // supporting site_inspection_coverage counts them.
    if (InMonths(state->connected, months)) {
      inspections.Add(state->stream, !state->site_inspections.empty());
      // A callback dated before the connection did not follow it (a violation, counted against
      // KPI 3): it covers nothing, as in the KPI table's callback_rate — whenever it was entered.
      const domain::Date connected = *state->connected;
      const bool reached = std::any_of(
          state->callbacks.begin(), state->callbacks.end(), [connected](const EvidenceRecord& c) {
            return c.conclusion == "reached" &&
                   !(domain::LocalDateOf(c.occurred_at_us) < connected);
          });
      callbacks.Add(state->stream, reached);
    }
  }
  return {{"period", period},
          {"org", orgs.org ? json(*orgs.org) : json(nullptr)},
          {"months", *period_months},
          {"document_review", reviews.ToJson()},
          {"site_inspection", inspections.ToJson()},
          {"callback", callbacks.ToJson()},
          {"surveys", SurveysOf(sorted, months)}};
}

}  // namespace gridledger::projections
