// The staff-audit projection (see projections/include/projections/staff_audit.h).
#include "projections/staff_audit.h"

#include <algorithm>
#include <variant>

#include "domain/event_json.h"

namespace gridledger::projections {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyPrefix = "staff-audit/";
constexpr int32_t kShanghaiOffsetMinutes = 8 * 60;

std::optional<json> DataOf(const EventRecord& event) {
  auto decoded = domain::PayloadToJson(event.type, event.payload);
  if (auto* data = std::get_if<json>(&decoded)) return std::move(*data);
  return std::nullopt;
}

std::string TextOr(const json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> AttendeesOf(const json& data) {
  std::vector<std::string> attendees;
  auto it = data.find("attendees");
  if (it == data.end() || !it->is_array()) return attendees;
  for (const json& item : *it) {
    if (item.is_string()) attendees.push_back(item.get<std::string>());
  }
  return attendees;
}

void FoldOwnAction(StaffAuditState& state, const EventRecord& event, const json* data) {
  ++state.actions_total;
  ++state.actions_by_type[std::string(event.type)];
  if (data == nullptr) return;
  if (event.type == "SensitiveDataAccessed") {
    SensitiveAccess access{event.position, event.occurred_at_us, std::string(event.stream),
                           TextOr(*data, "what"), std::nullopt};
    if (data->contains("approved_by")) access.approved_by = TextOr(*data, "approved_by");
    state.accesses.push_back(std::move(access));
  } else if (event.type == "Urged") {
    state.urges.push_back(UrgeIssued{event.position, event.occurred_at_us,
                                     std::string(event.stream), data->value("level", 0),
                                     TextOr(*data, "to_org"), TextOr(*data, "to_person")});
  }
}

void FoldTraining(StaffAuditState& state, const EventRecord& event, const json& data,
                  bool organizer) {
  const double hours = data.value("hours", 0.0);
  state.trainings.push_back(TrainingRecord{event.position, event.occurred_at_us,
                                           TextOr(data, "topic"), hours, organizer});
  state.training_hours += hours;
}

json AccessJson(const SensitiveAccess& a) {
  return {{"position", a.position},
          {"occurred_at", domain::FormatTimestamp(a.occurred_at_us, kShanghaiOffsetMinutes)},
          {"occurred_at_us", a.occurred_at_us},
          {"stream", a.stream},
          {"what", a.what},
          {"approved_by", a.approved_by ? json(*a.approved_by) : json(nullptr)},
          {"approved", a.approved_by.has_value()},
          {"risk", a.approved_by ? json(nullptr) : json(kUnapprovedAccessRisk)}};
}

json TrainingJson(const TrainingRecord& t) {
  return {{"position", t.position},
          {"occurred_at", domain::FormatTimestamp(t.occurred_at_us, kShanghaiOffsetMinutes)},
          {"occurred_at_us", t.occurred_at_us},
          {"topic", t.topic},
          {"hours", t.hours},
          {"organizer", t.organizer}};
}

json UrgeJson(const UrgeIssued& u) {
  return {{"position", u.position},
          {"occurred_at", domain::FormatTimestamp(u.occurred_at_us, kShanghaiOffsetMinutes)},
          {"occurred_at_us", u.occurred_at_us},
          {"app", u.app},
          {"level", u.level},
          {"to_org", u.to_org},
          {"to_person", u.to_person}};
}

template <typename T, typename F>
json ArrayOf(const std::vector<T>& items, F to_json) {
  json out = json::array();
  for (const T& item : items) out.push_back(to_json(item));
  return out;
}

// The decoding edge throws nlohmann exceptions on bad shapes; DecodeStaffAuditState catches them.
StaffAuditState StateFromJson(const json& j) {
  StaffAuditState state;
  state.staff_id = j.at("staff_id").get<std::string>();
  state.last_position = j.at("last_position").get<uint64_t>();
  state.actions_total = j.at("actions_total").get<uint64_t>();
  state.actions_by_type = j.at("actions_by_type").get<std::map<std::string, uint64_t>>();
  for (const json& a : j.at("accesses")) {
    SensitiveAccess access{a.at("position").get<uint64_t>(), a.at("occurred_at_us").get<int64_t>(),
                           a.at("stream").get<std::string>(), a.at("what").get<std::string>(),
                           std::nullopt};
    if (!a.at("approved_by").is_null()) access.approved_by = a.at("approved_by").get<std::string>();
    state.accesses.push_back(std::move(access));
  }
  for (const json& t : j.at("trainings")) {
    state.trainings.push_back(
        TrainingRecord{t.at("position").get<uint64_t>(), t.at("occurred_at_us").get<int64_t>(),
                       t.at("topic").get<std::string>(), t.at("hours").get<double>(),
                       t.at("organizer").get<bool>()});
  }
  state.training_hours = j.at("training_hours").get<double>();
  for (const json& u : j.at("urges")) {
    state.urges.push_back(
        UrgeIssued{u.at("position").get<uint64_t>(), u.at("occurred_at_us").get<int64_t>(),
                   u.at("app").get<std::string>(), u.at("level").get<int>(),
                   u.at("to_org").get<std::string>(), u.at("to_person").get<std::string>()});
  }
  return state;
}

}  // namespace

std::string StaffAuditKey(std::string_view staff_id) {
  return std::string(kKeyPrefix) + std::string(staff_id);
}

std::string KeyOf(const StaffAuditState& state) { return StaffAuditKey(state.staff_id); }

std::vector<std::string> StaffAuditKeysOf(const EventRecord& event, std::string_view actor_id) {
  std::vector<std::string> keys;
  if (!actor_id.empty()) keys.push_back(StaffAuditKey(actor_id));
  if (event.type != "TrainingHeld") return keys;
  const std::optional<json> data = DataOf(event);
  if (!data) return keys;
  for (const std::string& attendee : AttendeesOf(*data)) {
    std::string key = StaffAuditKey(attendee);
    if (!attendee.empty() && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  }
  return keys;
}

void Fold(StaffAuditState& state, const EventRecord& event, std::string_view actor_id,
          const ApplicationState* /*app_after*/) {
  if (state.staff_id.empty()) return;  // a caller bug: the state must name its staff member
  const bool own = actor_id == state.staff_id;
  const bool training = event.type == "TrainingHeld";
  if (!own && !training) return;
  const std::optional<json> data = DataOf(event);
  const json* payload = data ? &*data : nullptr;
  bool touched = false;
  if (own) {
    FoldOwnAction(state, event, payload);
    touched = true;
  }
  if (training && payload != nullptr) {
    const std::vector<std::string> attendees = AttendeesOf(*payload);
    const bool attends =
        std::find(attendees.begin(), attendees.end(), state.staff_id) != attendees.end();
    if (own || attends) {
      FoldTraining(state, event, *payload, own);  // once per person, organizer or attendee
      touched = true;
    }
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
  const auto unapproved =
      std::count_if(state.accesses.begin(), state.accesses.end(),
                    [](const SensitiveAccess& access) { return !access.approved_by; });
  return {{"staff_id", state.staff_id},
          {"last_position", state.last_position},
          {"actions_total", state.actions_total},
          {"actions_by_type", state.actions_by_type},
          {"accesses", ArrayOf(state.accesses, AccessJson)},
          {"unapproved_accesses", unapproved},
          {"trainings", ArrayOf(state.trainings, TrainingJson)},
          {"training_hours", state.training_hours},
          {"urges", ArrayOf(state.urges, UrgeJson)},
          {"urges_issued", state.urges.size()}};
}

std::string Encode(const StaffAuditState& state) {
  const std::vector<uint8_t> bytes = json::to_msgpack(ToJson(state));
  return std::string(bytes.begin(), bytes.end());
}

std::optional<StaffAuditState> DecodeStaffAuditState(std::string_view bytes) {
  try {  // the decoding edge: malformed bytes or shapes become nullopt
    return StateFromJson(json::from_msgpack(bytes.begin(), bytes.end()));
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace gridledger::projections
