// The staff-audit projection (see projections/include/projections/staff_audit.h).
#include "projections/staff_audit.h"
#include "json_util.h"

#include <algorithm>
#include <cctype>
#include <variant>

#include "domain/event_json.h"
#include "domain/payload.h"
#include "staff_audit_codec.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyPrefix = "staff-audit/";

namespace ev = domain::events;
using domain::TextOf;

// What the fold reads of a SensitiveDataAccessed, Urged or TrainingHeld payload.
struct StaffPayload {
  std::string what;                        // SensitiveDataAccessed
  std::optional<std::string> approved_by;  // SensitiveDataAccessed
  int level = 0;                           // Urged
  std::string to_org;                      // Urged
  std::string to_person;                   // Urged
  std::string topic;                       // TrainingHeld
  double hours = 0;                        // TrainingHeld
  std::vector<std::string> attendees;      // TrainingHeld
};

// The payload of the types the fold reads; nullopt for other types and undecodable payloads.
std::optional<StaffPayload> PayloadOf(const EventRecord& event) {
  StaffPayload out;
  bool read = false;
  if (event.type == "SensitiveDataAccessed") {
    read = domain::ReadPayload<ev::SensitiveDataAccessed>(
        event.payload, [&](ev::SensitiveDataAccessed::Reader root) {
          out.what = TextOf(root.getWhat());
          if (root.hasApprovedBy()) out.approved_by = TextOf(root.getApprovedBy());
          return true;
        });
  } else if (event.type == "Urged") {
    read = domain::ReadPayload<ev::Urged>(event.payload, [&](ev::Urged::Reader root) {
      if (!domain::ReadsWhole(root)) return false;
      out.level = root.getLevel();
      out.to_org = TextOf(root.getToOrg());
      out.to_person = TextOf(root.getToPerson());
      return true;
    });
  } else if (event.type == "TrainingHeld") {
    read = domain::ReadPayload<ev::TrainingHeld>(event.payload, [&](ev::TrainingHeld::Reader root) {
      out.topic = TextOf(root.getTopic());
      out.hours = root.getHours();
      out.attendees = domain::TextsOf(root.getAttendees());
      return true;
    });
  }
  if (!read) return std::nullopt;
  return out;
}

void FoldOwnAction(StaffAuditState& state, const EventRecord& event, const StaffPayload* data) {
  ++state.actions_total;
  auto counted = state.actions_by_type.find(event.type);
  if (counted == state.actions_by_type.end()) {
    counted = state.actions_by_type.emplace(std::string(event.type), 0).first;
  }
  ++counted->second;
  if (data == nullptr) return;
  if (event.type == "SensitiveDataAccessed") {
    state.accesses.push_back(SensitiveAccess{event.position, event.occurred_at_us,
                                             std::string(event.stream), data->what,
                                             data->approved_by});
  } else if (event.type == "Urged") {
    state.urges.push_back(UrgeIssued{event.position, event.occurred_at_us,
                                     std::string(event.stream), data->level, data->to_org,
                                     data->to_person});
  }
}

void FoldTraining(StaffAuditState& state, const EventRecord& event, const StaffPayload& data,
                  bool organizer) {
  state.trainings.push_back(
      TrainingRecord{event.position, event.occurred_at_us, data.topic, data.hours, organizer});
  state.training_hours += data.hours;
}

// `text` without leading and trailing white space, ASCII or the two a Chinese keyboard or a
// spreadsheet adds (U+3000 ideographic space, U+00A0 no-break space).
std::string_view Trimmed(std::string_view text) {
  for (bool trimmed = true; trimmed && !text.empty();) {
    trimmed = false;
    for (std::string_view space : {" ", "\t", "\r", "\n", "\u3000", "\u00a0"}) {
      if (text.starts_with(space)) {
        text.remove_prefix(space.size());
        trimmed = true;
      }
      if (text.ends_with(space)) {
        text.remove_suffix(space.size());
        trimmed = true;
      }
    }
  }
  return text;
}

bool SameIdIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool Approved(const SensitiveAccess& access, std::string_view staff_id) {
  if (!access.approved_by) return false;
  const std::string_view approver = Trimmed(*access.approved_by);
  return !approver.empty() && !SameIdIgnoringCase(approver, staff_id);
}

namespace {

json AccessJson(const SensitiveAccess& a, std::string_view staff_id) {
  const bool approved = Approved(a, staff_id);
  return {
      {"position", a.position},
      {"occurred_at", domain::FormatTimestamp(a.occurred_at_us, domain::kShanghaiUtcOffsetMinutes)},
      {"occurred_at_us", a.occurred_at_us},
      {"stream", a.stream},
      {"what", a.what},
      {"approved_by", a.approved_by ? json(*a.approved_by) : json(nullptr)},
      {"approved", approved},
      {"risk", approved ? json(nullptr) : json(kUnapprovedAccessRisk)}};
}

json TrainingJson(const TrainingRecord& t) {
  return {
      {"position", t.position},
      {"occurred_at", domain::FormatTimestamp(t.occurred_at_us, domain::kShanghaiUtcOffsetMinutes)},
      {"occurred_at_us", t.occurred_at_us},
      {"topic", t.topic},
      {"hours", t.hours},
      {"organizer", t.organizer}};
}

// An urge as its corrections leave it, and which corrected it.
json UrgeJson(const UrgeIssued& issued, const std::vector<UrgeCorrection>& corrections) {
  UrgeIssued u = issued;
  json corrected_by = json::array();
  for (const UrgeCorrection& c : corrections) {
    if (c.corrects_position != u.position) continue;
    u.occurred_at_us = c.occurred_at_us;
    u.level = c.level;
    u.to_org = c.to_org;
    u.to_person = c.to_person;
    corrected_by.push_back({{"position", c.position}, {"by", c.corrected_by}});
  }
  return {
      {"position", u.position},
      {"occurred_at", domain::FormatTimestamp(u.occurred_at_us, domain::kShanghaiUtcOffsetMinutes)},
      {"occurred_at_us", u.occurred_at_us},
      {"app", u.app},
      {"level", u.level},
      {"to_org", u.to_org},
      {"to_person", u.to_person},
      {"corrections", std::move(corrected_by)}};
}

// The urge that the Corrected `event` corrected, as the application stands after it; nullptr for
// another type, without the application, or when it was refused (it is then no correction) or
// corrects another event.
const UrgeRecord* CorrectedUrge(const EventRecord& event, const ApplicationState* app_after) {
  if (event.type != "Corrected" || app_after == nullptr) return nullptr;
  const auto applied = std::find_if(
      app_after->corrections.begin(), app_after->corrections.end(),
      [&](const CorrectionRecord& correction) { return correction.position == event.position; });
  if (applied == app_after->corrections.end()) return nullptr;
  const auto urge =
      std::find_if(app_after->urges.begin(), app_after->urges.end(),
                   [&](const UrgeRecord& u) { return u.position == applied->corrects_position; });
  return urge == app_after->urges.end() ? nullptr : &*urge;
}

// ---- Binary form (grammar in byte_codec.h): version:u8 staff_id:string last_position:varint
// actions_total:varint actions_by_type: count × (type:string count:varint), in key order;
// accesses: count × (position:varint occurred_at_us:svarint stream what approved_by:optional);
// trainings: count × (position occurred_at_us topic hours:double organizer:u8);
// training_hours:double; urges: count × (position occurred_at_us app level:svarint to_org
// to_person); urge_corrections: count × (position corrects_position corrected_by occurred_at_us
// level to_org to_person).

constexpr uint8_t kStaffCodecVersion = 0x54;  // 'T' ('S' before urge_corrections)

}  // namespace

std::string StaffAuditKey(std::string_view staff_id) {
  return std::string(kKeyPrefix) + std::string(staff_id);
}

std::string KeyOf(const StaffAuditState& state) { return StaffAuditKey(state.staff_id); }

std::vector<std::string> StaffAuditKeysOf(const EventRecord& event, std::string_view actor_id,
                                          const ApplicationState* app_after) {
  std::vector<std::string> keys;
  StaffAuditKeysOf(event, actor_id, keys, app_after);
  return keys;
}

void StaffAuditKeysOf(const EventRecord& event, std::string_view actor_id,
                      std::vector<std::string>& keys, const ApplicationState* app_after) {
  keys.clear();
  if (!actor_id.empty()) keys.push_back(StaffAuditKey(actor_id));
  if (const UrgeRecord* urge = CorrectedUrge(event, app_after);
      urge != nullptr && !urge->by.empty() && urge->by != actor_id) {
    keys.push_back(StaffAuditKey(urge->by));
  }
  if (event.type != "TrainingHeld") return;
  const std::optional<StaffPayload> data = PayloadOf(event);
  if (!data) return;
  for (const std::string& attendee : data->attendees) {
    std::string key = StaffAuditKey(attendee);
    if (!attendee.empty() && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  }
}

void Fold(StaffAuditState& state, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* app_after) {
  if (state.staff_id.empty()) return;  // a caller bug: the state must name its staff member
  const bool own = actor_id == state.staff_id;
  const bool training = event.type == "TrainingHeld";
  const UrgeRecord* urge = CorrectedUrge(event, app_after);
  const bool urged = urge != nullptr && urge->by == state.staff_id;
  if (!own && !training && !urged) return;
  const std::optional<StaffPayload> data = PayloadOf(event);
  const StaffPayload* payload = data ? &*data : nullptr;
  bool touched = false;
  if (own) {
    FoldOwnAction(state, event, payload);
    touched = true;
  }
  if (training && payload != nullptr) {
    const std::vector<std::string>& attendees = payload->attendees;
    const bool attends =
        std::find(attendees.begin(), attendees.end(), state.staff_id) != attendees.end();
    if (own || attends) {
      FoldTraining(state, event, *payload, own);  // once per person, organizer or attendee
      touched = true;
    }
  }
  if (urged) {
    state.urge_corrections.push_back(UrgeCorrection{event.position, urge->position,
                                                    std::string(actor_id), urge->occurred_at_us,
                                                    urge->level, urge->to_org, urge->to_person});
    touched = true;
  }
  if (touched) state.last_position = event.position;
}

void Fold(StaffAuditState& state, const ledger::StoredEvent& event,
          const ApplicationState* app_after) {
  Fold(state, RecordOf(event), event.actor.id, app_after);
}

void Fold(StaffAuditState& state, const ledger::EventView& event,
          const ApplicationState* app_after) {
  const auto id = event.envelope().getActor().getId();
  Fold(state, RecordOf(event), std::string_view(id.begin(), id.size()), app_after);
}

json ToJson(const StaffAuditState& state) {
  const auto unapproved = std::count_if(
      state.accesses.begin(), state.accesses.end(),
      [&](const SensitiveAccess& access) { return !Approved(access, state.staff_id); });
  return {
      {"staff_id", state.staff_id},
      {"last_position", state.last_position},
      {"actions_total", state.actions_total},
      {"actions_by_type", state.actions_by_type},
      {"accesses",
       ArrayOf(state.accesses,
               [&](const SensitiveAccess& a) { return AccessJson(a, state.staff_id); })},
      {"unapproved_accesses", unapproved},
      {"trainings", ArrayOf(state.trainings, TrainingJson)},
      {"training_hours", state.training_hours},
      {"urges", ArrayOf(state.urges,
                        [&](const UrgeIssued& u) { return UrgeJson(u, state.urge_corrections); })},
      {"urges_issued", state.urges.size()}};
}

void PutSensitiveAccess(codec::Writer& w, const SensitiveAccess& a) {
  w.Varint(a.position);
  w.Signed(a.occurred_at_us);
  w.String(a.stream);
  w.String(a.what);
  w.OptionalString(a.approved_by);
}

SensitiveAccess GetSensitiveAccess(codec::Reader& r) {
  SensitiveAccess a;
  a.position = r.Varint();
  a.occurred_at_us = r.Signed();
  a.stream = r.String();
  a.what = r.String();
  a.approved_by = r.OptionalString();
  return a;
}

void PutTrainingRecord(codec::Writer& w, const TrainingRecord& t) {
  w.Varint(t.position);
  w.Signed(t.occurred_at_us);
  w.String(t.topic);
  w.Double(t.hours);
  w.Bool(t.organizer);
}

TrainingRecord GetTrainingRecord(codec::Reader& r) {
  TrainingRecord t;
  t.position = r.Varint();
  t.occurred_at_us = r.Signed();
  t.topic = r.String();
  t.hours = r.Double();
  t.organizer = r.Bool();
  return t;
}

void PutUrgeIssued(codec::Writer& w, const UrgeIssued& u) {
  w.Varint(u.position);
  w.Signed(u.occurred_at_us);
  w.String(u.app);
  w.Signed(u.level);
  w.String(u.to_org);
  w.String(u.to_person);
}

UrgeIssued GetUrgeIssued(codec::Reader& r) {
  UrgeIssued u;
  u.position = r.Varint();
  u.occurred_at_us = r.Signed();
  u.app = r.String();
  u.level = r.Int32();
  u.to_org = r.String();
  u.to_person = r.String();
  return u;
}

void PutUrgeCorrection(codec::Writer& w, const UrgeCorrection& c) {
  w.Varint(c.position);
  w.Varint(c.corrects_position);
  w.String(c.corrected_by);
  w.Signed(c.occurred_at_us);
  w.Signed(c.level);
  w.String(c.to_org);
  w.String(c.to_person);
}

UrgeCorrection GetUrgeCorrection(codec::Reader& r) {
  UrgeCorrection c;
  c.position = r.Varint();
  c.corrects_position = r.Varint();
  c.corrected_by = r.String();
  c.occurred_at_us = r.Signed();
  c.level = r.Int32();
  c.to_org = r.String();
  c.to_person = r.String();
  return c;
}

void PutStaffAuditCounters(codec::Writer& w, const StaffAuditState& state) {
  w.String(state.staff_id);
  w.Varint(state.last_position);
  w.Varint(state.actions_total);
  w.Varint(state.actions_by_type.size());
  for (const auto& [type, count] : state.actions_by_type) {
    w.String(type);
    w.Varint(count);
  }
}

void GetStaffAuditCounters(codec::Reader& r, StaffAuditState& state) {
  state.staff_id = r.String();
  state.last_position = r.Varint();
  state.actions_total = r.Varint();
  const size_t types = r.Count();
  for (size_t i = 0; i < types && r.ok(); ++i) {
    std::string type = r.String();
    const uint64_t count = r.Varint();
    if (!state.actions_by_type.emplace(std::move(type), count).second) r.Fail();
  }
}

std::string Encode(const StaffAuditState& state) {
  std::string out;
  codec::Writer w(out);
  w.U8(kStaffCodecVersion);
  PutStaffAuditCounters(w, state);
  w.Varint(state.accesses.size());
  for (const SensitiveAccess& a : state.accesses) PutSensitiveAccess(w, a);
  w.Varint(state.trainings.size());
  for (const TrainingRecord& t : state.trainings) PutTrainingRecord(w, t);
  w.Double(state.training_hours);
  w.Varint(state.urges.size());
  for (const UrgeIssued& u : state.urges) PutUrgeIssued(w, u);
  w.Varint(state.urge_corrections.size());
  for (const UrgeCorrection& c : state.urge_corrections) PutUrgeCorrection(w, c);
  return out;
}

std::optional<StaffAuditState> DecodeStaffAuditState(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.U8() != kStaffCodecVersion) return std::nullopt;
  StaffAuditState state;
  GetStaffAuditCounters(r, state);
  const size_t accesses = r.Count();
  for (size_t i = 0; i < accesses && r.ok(); ++i) state.accesses.push_back(GetSensitiveAccess(r));
  const size_t trainings = r.Count();
  for (size_t i = 0; i < trainings && r.ok(); ++i) {
    state.trainings.push_back(GetTrainingRecord(r));
  }
  state.training_hours = r.Double();
  const size_t urges = r.Count();
  for (size_t i = 0; i < urges && r.ok(); ++i) state.urges.push_back(GetUrgeIssued(r));
  const size_t corrections = r.Count();
  for (size_t i = 0; i < corrections && r.ok(); ++i) {
    state.urge_corrections.push_back(GetUrgeCorrection(r));
  }
  if (!r.Done()) return std::nullopt;
  return state;
}

}  // namespace gridledger::projections
