// Typed reads of stored payloads: the Cap'n Proto structs of domain/schema/events.capnp, read
// with their generated readers. For folds that need a few fields of many events — no schema walk
// and no JSON, unlike PayloadToJson (event_json.h), whose JSON form stays the contract.
//
// A payload reads exactly when PayloadToJson would render it, for the fields a caller reads:
// same reader limits, no bytes after the message, and enum values the schema names (EnumName).
// A reader that skips fields checks the rest with ReadsWhole (below).
// Thread-safe: functions are pure (each thread has its own alignment buffer).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/event_json.h"
#include "schema/events.capnp.h"

namespace gridledger::domain {

// The contract (snake_case) name of enumerant `value` of the schema enum with node id `enum_id`,
// as PayloadToJson writes it; nullopt for an enum or value the schema does not name.
std::optional<std::string_view> EnumName(uint64_t enum_id, uint16_t value);
template <typename Enum>
std::optional<std::string_view> EnumName(Enum value) {
  return EnumName(capnp::typeId<Enum>(), static_cast<uint16_t>(value));
}

// The words of a payload for a Cap'n Proto reader: word-aligned bytes in place (payloads inside a
// stored envelope or a scan batch usually are), others copied into this thread's buffer, valid
// until the next call on the thread. REQUIRES: payload.size() is a multiple of 8.
inline kj::ArrayPtr<const capnp::word> AlignedWords(std::string_view payload) {
  const size_t word_count = payload.size() / sizeof(capnp::word);
  if (reinterpret_cast<uintptr_t>(payload.data()) % alignof(capnp::word) == 0) {
    return kj::arrayPtr(reinterpret_cast<const capnp::word*>(payload.data()), word_count);
  }
  thread_local std::vector<capnp::word> aligned;
  aligned.resize(word_count);
  std::memcpy(aligned.data(), payload.data(), payload.size());
  return kj::arrayPtr(aligned.data(), aligned.size());
}

// Calls `read(root)` with `payload` read as struct T, and returns what it returns (true: read).
// False without calling it when the bytes are not one valid flat-array message, and false when
// reading throws (a pointer out of bounds, limits exceeded).
template <typename T, typename Read>
bool ReadPayload(std::string_view payload, Read&& read) {
  constexpr size_t kWord = sizeof(capnp::word);
  if (payload.empty() || payload.size() % kWord != 0 || payload.size() > kPayloadBytesMax) {
    return false;
  }
  const kj::ArrayPtr<const capnp::word> words = AlignedWords(payload);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * kPayloadBytesMax / kWord;
  options.nestingLimit = 16;
  try {
    capnp::FlatArrayMessageReader message(words, options);
    if (message.getEnd() != words.end()) return false;
    return read(message.getRoot<T>());
  } catch (const kj::Exception&) {  // malformed bytes: not read
    return false;
  }
}

// Cap'n Proto checks a pointer only when it is followed, so a reader that reads a few fields would
// accept a payload whose other fields are broken, which PayloadToJson refuses. Readers that skip
// fields call ReadsWhole(root) too: it follows every field the JSON form renders (texts, list
// elements, enum values), copying nothing, and is false when one of them does not read (an
// unnamed enum value; a broken pointer throws, and ReadPayload answers false). A field added to
// one of these structs must be followed here too (payload_test.cc checks every pointer field).
template <typename Enum>
bool Named(Enum value) {
  return EnumName(value).has_value();
}
inline void Follow(capnp::Text::Reader /*text*/) {}  // the getter has checked it
inline void Follow(capnp::List<capnp::Text>::Reader list) {
  for (capnp::Text::Reader text : list) Follow(text);
}
// The data keys beyond the type's own ($extra): a JSON object when given.
template <typename Reader>
bool ExtraReads(Reader root) {
  if (!root.hasExtra()) return true;
  const capnp::Text::Reader text = root.getExtra();
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false)
      .is_object();
}
inline bool ReadsWhole(events::DocumentReviewed::Reader root) {
  Follow(root.getReviewer());
  for (events::ReviewItem::Reader item : root.getItems()) Follow(item.getItem());
  if (root.hasDefects()) Follow(root.getDefects());
  return Named(root.getConclusion()) && ExtraReads(root);
}
inline bool ReadsWhole(events::SiteInspected::Reader root) {
  Follow(root.getInspector());
  Follow(root.getItems());
  if (root.hasDefects()) Follow(root.getDefects());
  return Named(root.getConclusion()) && ExtraReads(root);
}
inline bool ReadsWhole(events::CallbackMade::Reader root) {
  Follow(root.getAgent());
  if (root.hasComment()) Follow(root.getComment());
  if (root.hasComplaints()) {
    for (events::Complaint complaint : root.getComplaints()) {
      if (!Named(complaint)) return false;
    }
  }
  return Named(root.getResult()) && (!root.getHasSatisfaction() || Named(root.getSatisfaction())) &&
         ExtraReads(root);
}
inline bool ReadsWhole(events::Urged::Reader root) {
  Follow(root.getToOrg());
  Follow(root.getToPerson());
  Follow(root.getChannel());
  if (root.hasNote()) Follow(root.getNote());
  if (root.hasCommittedDate()) Follow(root.getCommittedDate());
  return ExtraReads(root);
}
inline bool ReadsWhole(events::TrainingHeld::Reader root) {
  Follow(root.getTopic());
  Follow(root.getAttendees());
  return ExtraReads(root);
}

inline std::string TextOf(capnp::Text::Reader text) {
  return std::string(text.cStr(), text.size());
}

inline std::vector<std::string> TextsOf(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> texts;
  texts.reserve(list.size());
  for (capnp::Text::Reader text : list) texts.push_back(TextOf(text));
  return texts;
}

}  // namespace gridledger::domain
