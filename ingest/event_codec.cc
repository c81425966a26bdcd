#include "ingest/event_codec.h"

#include <variant>

#include "ingest/auth.h"
#include "ledger/limits.h"
#include "ledger/status.h"

namespace gridledger::ingest {

// A payload the decoder passes must fit the ledger, or the ledger refuses it without naming the
// field.
static_assert(domain::kPayloadBytesMax <= ledger::kPayloadBytesMax);

namespace {

ledger::Actor ToLedger(domain::Actor actor) {
  return {std::move(actor.id), std::move(actor.role), std::move(actor.org)};
}

nlohmann::ordered_json ActorJson(const ledger::Actor& actor) {
  return {{"id", actor.id}, {"role", actor.role}, {"org", actor.org}};
}

}  // namespace

ledger::AppendRequest ToAppendRequest(domain::ClientEvent event) {
  ledger::AppendRequest request;
  request.stream = std::move(event.stream);
  request.expected_version = event.expected_version;
  ledger::NewEvent& stored = request.events.emplace_back();
  stored.event_id = std::move(event.event_id);
  stored.type = std::move(event.type);
  stored.occurred_at_us = event.occurred_at_us;
  stored.occurred_at_offset_minutes = event.occurred_at_offset_minutes;
  stored.actor = ToLedger(std::move(event.actor));
  stored.payload = std::move(event.payload);
  if (auto import = event.extra.find("import"); import != event.extra.end()) {
    stored.imported = import->is_boolean() && import->get<bool>();
  }
  if (event.recorded_by) stored.recorded_by = ToLedger(std::move(*event.recorded_by));
  return request;
}

nlohmann::ordered_json StoredEventToJson(const ledger::StoredEvent& event) {
  nlohmann::ordered_json json = {
      {"position", event.position},
      {"stream", event.stream},
      {"version", event.version},
      {"type", event.type},
      {"event_id", event.event_id},
      {"occurred_at",
       domain::FormatTimestamp(event.occurred_at_us, event.occurred_at_offset_minutes)},
      {"recorded_at", domain::FormatTimestamp(event.recorded_at_us, kLocalOffsetMinutes)},
      {"actor", ActorJson(event.actor)},
  };
  domain::Decoded<nlohmann::json> data = domain::PayloadToJson(event.type, event.payload);
  if (auto* object = std::get_if<nlohmann::json>(&data)) {
    json["data"] = std::move(*object);
  } else {
    json["data"] = nullptr;
    json["data_error"] = std::get<domain::DecodeError>(data).message;
  }
  if (event.imported) json["import"] = true;
  if (event.recorded_by) json["recorded_by"] = ActorJson(*event.recorded_by);
  json["prev_hash"] = ledger::ToHex(event.prev_hash);
  json["hash"] = ledger::ToHex(event.hash);
  return json;
}

nlohmann::ordered_json ErrorJson(const domain::DecodeError& error) {
  return {{"code", "invalid"},
          {"field", error.field},
          {"rule", error.rule},
          {"message", error.message}};
}

nlohmann::ordered_json ErrorJson(const ledger::Status& status) {
  nlohmann::ordered_json json = {{"code", std::string(ledger::CodeName(status.code()))},
                                 {"message", status.message()}};
  if (status.current_version()) json["current_version"] = *status.current_version();
  if (status.position()) json["position"] = *status.position();
  return json;
}

}  // namespace gridledger::ingest

namespace gridledger::ingest {

namespace {

// The field of the event a workflow rule judged: its date for the rules about when it happened,
// the data of a Corrected for the rules of corrections, and otherwise its type (a step that may
// not come now in its application).
std::string_view RuleField(std::string_view rule) {
  if (rule == "occurred_in_future" || rule == "before_acceptance" ||
      rule == "resume_before_pause" || rule == "result_before_request") {
    return "occurred_at";
  }
  if (rule.starts_with("correction_")) return "data";
  return "type";
}

}  // namespace

nlohmann::ordered_json ErrorJson(const ledger::Status& status, const domain::RuleBreach& rule) {
  return {{"code", std::string(ledger::CodeName(status.code()))},
          {"field", RuleField(rule.rule)},
          {"rule", rule.rule},
          {"message", rule.message}};
}

domain::Decoded<domain::ClientEvent> PersonalDataReadEvent(const domain::Actor& reader,
                                                           std::string_view what,
                                                           std::string_view approved_by,
                                                           int64_t now_us) {
  nlohmann::json data = {{"what", what}};
  if (!approved_by.empty()) data["approved_by"] = approved_by;
  return domain::DecodeClientEvent(nlohmann::json{
      {"stream", "staff/" + reader.id},
      {"type", "SensitiveDataAccessed"},
      {"event_id", "read-" + TokenStore::NewToken().substr(0, 32)},
      {"occurred_at", domain::FormatTimestamp(now_us, domain::kShanghaiUtcOffsetMinutes)},
      {"actor", {{"id", reader.id}, {"role", reader.role}, {"org", reader.org}}},
      {"data", std::move(data)}});
}

std::vector<domain::CorrectableEvent> Correctable(const std::vector<ledger::StoredEvent>& events) {
  std::vector<domain::CorrectableEvent> out;
  out.reserve(events.size() + 1);
  for (const ledger::StoredEvent& e : events) {
    out.push_back(
        {e.position, e.type, e.payload, e.occurred_at_us, e.recorded_at_us, e.actor.role});
  }
  return out;
}

}  // namespace gridledger::ingest
