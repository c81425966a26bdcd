#include "domain/correction.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "domain/event_json.h"
#include "domain/payload.h"
#include "domain/roles.h"

namespace gridledger::domain {
namespace {

using json = nlohmann::json;
namespace ev = events;

constexpr std::string_view kOccurredAt = "occurred_at";

RuleBreach Breach(std::string rule, std::string message) {
  return RuleBreach{rule, std::move(message) + " (rule " + rule + ")"};
}

std::string ValidKeys(std::string_view type) {
  std::string keys(kOccurredAt);
  for (const DataField& field : DataFieldsOf(type)) keys += ", " + field.key;
  return keys;
}

}  // namespace

std::optional<CorrectionRequest> ReadCorrection(std::string_view payload) {
  std::optional<CorrectionRequest> request;
  ReadPayload<ev::Corrected>(payload, [&](ev::Corrected::Reader root) {
    request = CorrectionRequest{root.getCorrectsPosition(), std::string(root.getReason().cStr()),
                                std::string(root.getFields().cStr())};
    return true;
  });
  return request;
}

RuleBreach CorrectedValueBreach(const DecodeError& error, std::string_view type,
                                uint64_t position) {
  std::string field = error.field;
  if (field.starts_with("data")) field.replace(0, 4, "Corrected.fields");
  return Breach("correction_value", field + ": " + error.message + " (as corrected, the " +
                                        std::string(type) + " at position " +
                                        std::to_string(position) + " would not be valid)");
}

std::variant<CorrectedValues, RuleBreach> ApplyCorrection(const CorrectableEvent& target,
                                                          std::string_view fields) {
  const std::string at = "position " + std::to_string(target.position);
  if (target.type == "Corrected") {
    return Breach(
        "correction_of_correction",
        "the event at " + at + " is itself a Corrected: correct the original event again instead");
  }
  json patch = json::parse(fields.begin(), fields.end(), nullptr, /*allow_exceptions=*/false);
  if (!patch.is_object() || patch.empty()) {
    return Breach("correction_field", "Corrected.fields must name at least one field to correct");
  }
  Decoded<json> rendered = PayloadToJson(target.type, target.payload);
  if (auto* error = std::get_if<DecodeError>(&rendered)) {
    return Breach("correction_value", "the event at " + at + " does not decode: " + error->message);
  }
  json data = std::move(std::get<json>(rendered));
  const std::vector<DataField> keys = DataFieldsOf(target.type);
  CorrectedValues out;
  out.occurred_at_us = target.occurred_at_us;
  for (const auto& [key, value] : patch.items()) {
    if (key == kOccurredAt) {
      std::optional<Timestamp> when =
          value.is_string() ? ParseTimestamp(value.get<std::string>()) : std::nullopt;
      if (!when) {
        return Breach("correction_value",
                      "Corrected.fields.occurred_at must be an RFC 3339 date-time with an offset");
      }
      if (when->unix_us > target.recorded_at_us + kFutureToleranceUs) {
        return Breach("correction_value", "Corrected.fields.occurred_at " +
                                              value.get<std::string>() +
                                              " lies after the event at " + at +
                                              " was recorded: it cannot have happened later");
      }
      out.occurred_at_us = when->unix_us;
      continue;
    }
    const bool known = std::any_of(keys.begin(), keys.end(),
                                   [&key](const DataField& field) { return field.key == key; });
    if (!known) {
      return Breach("correction_field", "Corrected.fields." + key + " is not a field of " +
                                            std::string(target.type) +
                                            " (correctable: " + ValidKeys(target.type) + ")");
    }
    if (value.is_null()) {
      data.erase(key);
    } else {
      data[key] = value;
    }
  }
  Decoded<std::string> payload = PayloadFromJson(target.type, data);
  if (auto* error = std::get_if<DecodeError>(&payload)) {
    return CorrectedValueBreach(*error, target.type, target.position);
  }
  out.payload = std::move(std::get<std::string>(payload));
  return out;
}

namespace {

// The events before `end` that the workflow rules call invalid, folded with `values` applied.
std::map<uint64_t, RuleBreach> InvalidEvents(const std::vector<CorrectableEvent>& events,
                                             size_t end,
                                             const std::map<uint64_t, CorrectedValues>& values) {
  std::map<uint64_t, RuleBreach> invalid;
  WorkflowFacts facts;
  DatedFacts dated;
  for (size_t i = 0; i < end; ++i) {
    const CorrectableEvent& event = events[i];
    const auto corrected = values.find(event.position);
    const std::string_view payload =
        corrected == values.end() ? event.payload : std::string_view(corrected->second.payload);
    const Date on = LocalDateOf(corrected == values.end() ? event.occurred_at_us
                                                          : corrected->second.occurred_at_us);
    auto decoded = DecodeWorkflowEvent(event.type, payload);
    if (auto* breach = std::get_if<RuleBreach>(&decoded)) {
      invalid[event.position] = *breach;
      continue;
    }
    const WorkflowEvent& workflow_event = std::get<WorkflowEvent>(decoded);
    Verdict verdict = Judge(facts, workflow_event);
    if (!verdict.valid()) {
      invalid[event.position] = *verdict.invalid;
      continue;
    }
    // Against a date rule: invalid, yet folded on, as the projections and the ingestor fold such
    // an event stored before the rule (the facts stay theirs).
    if (auto misdated = JudgeDates(dated, workflow_event.type, on)) {
      invalid[event.position] = std::move(*misdated);
    }
    Apply(facts, workflow_event);
    FoldDates(dated, workflow_event.type, on);
  }
  return invalid;
}

}  // namespace

RuleBreach CorrectionTargetBreach(uint64_t corrects_position) {
  return Breach("correction_target", "Corrected.corrects_position " +
                                         std::to_string(corrects_position) +
                                         " is not an earlier event of this application");
}

bool ChangesFacts(const CorrectableEvent& before, const CorrectedValues& after) {
  if (after.occurred_at_us != before.occurred_at_us) return true;
  if (before.type == "DocumentReviewed" || before.type == "SiteInspected" ||
      before.type == "CallbackMade") {
    return true;
  }
  auto was = DecodeWorkflowEvent(before.type, before.payload);
  auto is = DecodeWorkflowEvent(before.type, after.payload);
  return !std::holds_alternative<WorkflowEvent>(was) ||
         !std::holds_alternative<WorkflowEvent>(is) ||
         std::get<WorkflowEvent>(was) != std::get<WorkflowEvent>(is);
}

AppliedCorrections ApplyCorrections(const std::vector<CorrectableEvent>& events) {
  AppliedCorrections result;
  for (size_t i = 0; i < events.size(); ++i) {
    const CorrectableEvent& event = events[i];
    if (event.type != "Corrected") continue;
    std::optional<CorrectionRequest> request = ReadCorrection(event.payload);
    if (!request) {
      result.refused[event.position] =
          Breach("bad_payload", "the Corrected at position " + std::to_string(event.position) +
                                    " does not decode");
      continue;
    }
    const auto target = std::find_if(events.begin(), events.begin() + static_cast<ptrdiff_t>(i),
                                     [&](const CorrectableEvent& earlier) {
                                       return earlier.position == request->corrects_position;
                                     });
    if (target == events.begin() + static_cast<ptrdiff_t>(i)) {
      result.refused[event.position] = CorrectionTargetBreach(request->corrects_position);
      continue;
    }
    if (!MayCorrect(event.actor_role, target->type)) {
      const RecordingRule* rule = RecordingRuleOf(target->type);  // there is one: refused by it
      result.refused[event.position] =
          Breach("correction_role", "a " + std::string(event.actor_role) + " may not correct the " +
                                        std::string(target->type) + " at position " +
                                        std::to_string(target->position) + ": only " +
                                        RoleList(rule->roles) + " record it, since " +
                                        std::string(rule->why_reserved));
      continue;
    }
    CorrectableEvent current = *target;
    const auto earlier = result.values.find(target->position);
    if (earlier != result.values.end()) {
      current.payload = earlier->second.payload;
      current.occurred_at_us = earlier->second.occurred_at_us;
    }
    auto applied = ApplyCorrection(current, request->fields);
    if (auto* breach = std::get_if<RuleBreach>(&applied)) {
      result.refused[event.position] = std::move(*breach);
      continue;
    }
    const bool changing = ChangesFacts(current, std::get<CorrectedValues>(applied));
    // No event before it may become invalid by the workflow rules with it applied (events that
    // already were stay so: an old import is not this correction's doing). One that changes no
    // workflow field cannot make any.
    std::map<uint64_t, CorrectedValues> with = result.values;
    with[target->position] = std::move(std::get<CorrectedValues>(applied));
    if (!changing) {
      result.values = std::move(with);
      ++result.applied;
      continue;
    }
    const std::map<uint64_t, RuleBreach> before = InvalidEvents(events, i, result.values);
    const std::map<uint64_t, RuleBreach> after = InvalidEvents(events, i, with);
    const auto broken = std::find_if(after.begin(), after.end(), [&before](const auto& entry) {
      return !before.contains(entry.first);
    });
    if (broken != after.end()) {
      const auto it = std::find_if(events.begin(), events.end(),
                                   [&](const auto& e) { return e.position == broken->first; });
      result.refused[event.position] = Breach(
          "correction_invalid", "with this correction the " + std::string(it->type) +
                                    " at position " + std::to_string(broken->first) +
                                    " would break the workflow rules (" + broken->second.message +
                                    "): correct the facts so that the application's events stay "
                                    "valid");
      continue;
    }
    result.values = std::move(with);
    ++result.applied;
    result.changing_facts.insert(event.position);
  }
  return result;
}

}  // namespace gridledger::domain
