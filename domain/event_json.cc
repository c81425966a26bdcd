// JSON <-> Cap'n Proto mapping of the domain's events, driven by the schema alone.
//
// One walker serves every type: DecodeStruct() reads a JSON object into a DynamicStruct field by
// field, RenderStruct() does the reverse. What a field means beyond its Cap'n Proto type
// (optional, date, free JSON object, numeric range) comes from the annotations declared in
// domain/schema/events.capnp; their ids are repeated below.
//
// The schema-only facts the walkers need (JSON keys, rules, presence companions, enum names) are
// computed once into shared tables, see "Schema plans" below.
//
// Errors are values: each step returns std::optional<DecodeError> (nullopt = fine). kj and
// nlohmann exceptions are caught only at the public entry points.
#include "domain/event_json.h"
#include "domain/payload.h"
#include "domain/roles.h"

#include "domain/calendar.h"

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "schema/events.capnp.h"

namespace gridledger::domain {
namespace {

using nlohmann::json;
using Check = std::optional<DecodeError>;

// Annotation ids of events.capnp (fixed there with explicit @0x... ids).
constexpr uint64_t kOptionalAnnotation = 0xd5a8a1f0c3a1e001;
constexpr uint64_t kPresenceAnnotation = 0xd5a8a1f0c3a1e002;
constexpr uint64_t kDateAnnotation = 0xd5a8a1f0c3a1e003;
constexpr uint64_t kJsonObjectAnnotation = 0xd5a8a1f0c3a1e004;
constexpr uint64_t kRangeAnnotation = 0xd5a8a1f0c3a1e005;
constexpr uint64_t kDistinctAnnotation = 0xd5a8a1f0c3a1e007;
constexpr uint64_t kExtraAnnotation = 0xd5a8a1f0c3a1e008;
constexpr uint64_t kStreamAnnotation = 0xd5a8a1f0c3a1e006;

constexpr size_t kTypeBytesMax = 64;
constexpr uint64_t kReaderTraversalWordsMax = 2 * kPayloadBytesMax / sizeof(capnp::word);
constexpr int kReaderNestingMax = 16;
constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int kOffsetMinutesMax = 23 * 60 + 59;

constexpr std::array<std::string_view, 8> kEnvelopeKeys = {
    "stream", "type", "event_id", "expected_version", "occurred_at", "actor", "data", "import"};
constexpr std::array<std::string_view, 3> kActorKeys = {"id", "role", "org"};
constexpr const std::array<std::string_view, 7>& kRoles = kRoleNames;  // domain/roles.h

// ---- Errors and paths ----

DecodeError Fail(std::string field, std::string rule, std::string_view what) {
  std::string message = field.empty() ? std::string(what) : field + ": " + std::string(what);
  return DecodeError{std::move(field), std::move(rule), std::move(message)};
}

std::string Join(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string path;
  path.reserve(parent.size() + 1 + key.size());  // one allocation, not one per piece
  path.append(parent).append(1, '.').append(key);
  return path;
}

std::string Index(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string_view View(kj::StringPtr text) { return std::string_view(text.begin(), text.size()); }

// customerClass -> customer_class. Schema names are ASCII lowerCamel.
std::string SnakeCase(kj::StringPtr camel) {
  std::string out;
  for (char c : camel) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::string UpperFirst(kj::StringPtr name) {
  std::string out(name.cStr(), name.size());
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

// `count` decimal digits at text[pos...], or nullopt.
std::optional<int> Digits(std::string_view text, size_t pos, size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// "YYYY-MM-DD" at the start of `text` -> days since 1970-01-01 (calendar arithmetic is Date's).
std::optional<int64_t> ParseDate(std::string_view text) {
  if (text.size() < 10) return std::nullopt;
  std::optional<Date> date = Date::Parse(text.substr(0, 10));
  if (!date) return std::nullopt;
  return date->days_since_epoch();
}

// "HH:MM:SS" at text[pos...] -> seconds of the day.
std::optional<int64_t> ParseClock(std::string_view text, size_t pos) {
  if (pos + 8 > text.size() || text[pos + 2] != ':' || text[pos + 5] != ':') return std::nullopt;
  auto hour = Digits(text, pos, 2), minute = Digits(text, pos + 3, 2);
  auto second = Digits(text, pos + 6, 2);
  if (!hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 59)
    return std::nullopt;
  return *hour * 3600 + *minute * 60 + *second;
}

// Optional ".f{1,6}" at text[*pos...] -> microseconds; advances *pos.
std::optional<int64_t> ParseFraction(std::string_view text, size_t* pos) {
  if (*pos >= text.size() || text[*pos] != '.') return 0;
  size_t digits = 0;
  int64_t micros = 0;
  for (++*pos; *pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9'; ++*pos, ++digits) {
    micros = micros * 10 + (text[*pos] - '0');
  }
  if (digits < 1 || digits > 6) return std::nullopt;
  for (; digits < 6; ++digits) micros *= 10;
  return micros;
}

// "Z" or "±HH:MM" making up the rest of `text` -> offset minutes.
std::optional<int32_t> ParseOffset(std::string_view text) {
  if (text == "Z") return 0;
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return std::nullopt;
  auto hours = Digits(text, 1, 2), minutes = Digits(text, 4, 2);
  if (!hours || !minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  const int32_t total = *hours * 60 + *minutes;
  return text[0] == '-' ? -total : total;
}

// ---- Schema access ----

capnp::StructSchema RegistrySchema() {
  return capnp::Schema::from<events::EventRegistry>().asStruct();
}

using Annotations = capnp::List<capnp::schema::Annotation>::Reader;

std::optional<capnp::schema::Value::Reader> FindAnnotation(Annotations annotations, uint64_t id) {
  for (auto annotation : annotations) {
    if (annotation.getId() == id) return annotation.getValue();
  }
  return std::nullopt;
}

// What events.capnp says about one field beyond its Cap'n Proto type.
struct FieldRules {
  bool optional = false;
  bool presence = false;
  bool date = false;
  bool json_object = false;
  bool distinct = false;
  bool extra = false;  // holds the data keys the type does not define (never a JSON key)
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};

FieldRules RulesOf(capnp::StructSchema::Field field) {
  const Annotations annotations = field.getProto().getAnnotations();
  FieldRules rules;
  rules.optional = FindAnnotation(annotations, kOptionalAnnotation).has_value();
  rules.presence = FindAnnotation(annotations, kPresenceAnnotation).has_value();
  rules.date = FindAnnotation(annotations, kDateAnnotation).has_value();
  rules.json_object = FindAnnotation(annotations, kJsonObjectAnnotation).has_value();
  rules.distinct = FindAnnotation(annotations, kDistinctAnnotation).has_value();
  rules.extra = FindAnnotation(annotations, kExtraAnnotation).has_value();
  if (auto range = FindAnnotation(annotations, kRangeAnnotation)) {
    const events::Range::Reader bounds = range->getStruct().getAs<events::Range>();
    rules.min = bounds.getMin();
    rules.max = bounds.getMax();
  }
  return rules;
}

// The rules that apply to each element of a list field: the field's, but always required.
FieldRules ElementRules(FieldRules rules) {
  rules.optional = false;
  return rules;
}

bool IsPointerType(capnp::Type type) {
  switch (type.which()) {
    case capnp::schema::Type::TEXT:
    case capnp::schema::Type::DATA:
    case capnp::schema::Type::LIST:
    case capnp::schema::Type::STRUCT:
    case capnp::schema::Type::INTERFACE:
    case capnp::schema::Type::ANY_POINTER:
      return true;
    default:
      return false;
  }
}

// The `has<Name> :Bool $presence` companion of an optional scalar field.
std::optional<capnp::StructSchema::Field> PresenceCompanion(capnp::StructSchema::Field field) {
  const std::string name = "has" + UpperFirst(field.getProto().getName());
  KJ_IF_MAYBE (companion, field.getContainingStruct().findFieldByName(name)) {
    if (companion->getType().which() == capnp::schema::Type::BOOL && RulesOf(*companion).presence) {
      return *companion;
    }
  }
  return std::nullopt;
}

std::optional<events::StreamKind> StreamKindOf(capnp::StructSchema schema) {
  auto value = FindAnnotation(schema.getProto().getAnnotations(), kStreamAnnotation);
  if (!value) return std::nullopt;
  return static_cast<events::StreamKind>(value->getEnum());
}

std::string_view StreamKindName(events::StreamKind kind) {
  const auto enumerants = capnp::Schema::from<events::StreamKind>().getEnumerants();
  return View(enumerants[static_cast<uint16_t>(kind)].getProto().getName());
}

// Segments after the kind: app/<id>, report/<type>/<period>, survey/<period>, staff/<id>.
size_t StreamIdSegments(events::StreamKind kind) {
  return kind == events::StreamKind::REPORT ? 2 : 1;
}

// ---- Schema plans ----
//
// A field's rules, JSON key and presence companion, an enum's JSON names and a type's schema and
// stream kind depend on the schema alone, yet the walkers need them for every field of every event.
// So they are worked out once, for every event type and every struct and enum reachable from it,
// into read-only tables that all threads share. A function-local static is initialized exactly once
// even when several threads call at the same time, so no further locking is needed.

// One JSON key of a struct: a field other than a presence companion.
struct FieldPlan {
  capnp::StructSchema::Field field;
  capnp::Type type;  // field.getType(), which has to look the type up each time
  std::string key;   // snake_case of the field name
  FieldRules rules;
  bool is_pointer = false;  // Text, List or struct: presence is pointer has-ness
  // The `has<Name>` companion of an optional scalar; nullopt when the schema lacks it (an error
  // reported only when the field is given, as before).
  std::optional<capnp::StructSchema::Field> companion;
};

struct StructPlan {
  std::vector<FieldPlan> fields;  // in schema order, presence companions left out
  // The $extra field of an event type: where data keys beyond the type's own go.
  std::optional<capnp::StructSchema::Field> extra;
};

struct EnumPlan {
  std::vector<std::string> names;  // snake_case, indexed like getEnumerants()
  std::string choices;             // "name|name|..." for error messages
};

struct EventPlan {
  capnp::StructSchema schema;
  std::optional<events::StreamKind> kind;  // from the struct's $stream annotation
};

struct SchemaPlans {
  // Type name -> event; exactly the names whose registry member is the lowerCamel of the name.
  std::map<std::string, EventPlan, std::less<>> events;
  // By schema node id. std::map never moves its values, so references to them stay valid.
  std::map<uint64_t, StructPlan> structs;
  std::map<uint64_t, EnumPlan> enums;
};

void AddTypePlans(capnp::Type type, SchemaPlans* plans);

void AddStructPlan(capnp::StructSchema schema, SchemaPlans* plans) {
  auto [it, added] = plans->structs.try_emplace(schema.getProto().getId());
  if (!added) return;  // done already, or being filled further up (a recursive type)
  StructPlan& plan = it->second;
  for (auto field : schema.getFields()) {
    const FieldRules rules = RulesOf(field);
    if (rules.presence) continue;
    if (rules.extra) {
      plan.extra = field;
      continue;
    }
    FieldPlan entry{field,
                    field.getType(),
                    SnakeCase(field.getProto().getName()),
                    rules,
                    IsPointerType(field.getType()),
                    std::nullopt};
    if (rules.optional && !entry.is_pointer) entry.companion = PresenceCompanion(field);
    plan.fields.push_back(std::move(entry));
    AddTypePlans(field.getType(), plans);
  }
}

void AddEnumPlan(capnp::EnumSchema schema, SchemaPlans* plans) {
  auto [it, added] = plans->enums.try_emplace(schema.getProto().getId());
  if (!added) return;
  EnumPlan& plan = it->second;
  for (auto enumerant : schema.getEnumerants()) {
    plan.names.push_back(SnakeCase(enumerant.getProto().getName()));
    plan.choices += (plan.choices.empty() ? "" : "|") + plan.names.back();
  }
}

void AddTypePlans(capnp::Type type, SchemaPlans* plans) {
  if (type.isStruct()) AddStructPlan(type.asStruct(), plans);
  if (type.isEnum()) AddEnumPlan(type.asEnum(), plans);
  if (type.isList()) AddTypePlans(type.asList().getElementType(), plans);
}

SchemaPlans BuildPlans() {
  SchemaPlans plans;
  for (auto member : RegistrySchema().getFields()) {
    const capnp::StructSchema schema = member.getType().asStruct();
    const std::string_view type = View(schema.getShortDisplayName());
    AddStructPlan(schema, &plans);
    // A type name is known when the registry member of its struct is named like it with a
    // lower-case first letter (applicationAccepted :ApplicationAccepted).
    if (type.empty() || type.size() > kTypeBytesMax || type[0] < 'A' || type[0] > 'Z') continue;
    std::string member_name(type);
    member_name[0] = static_cast<char>(member_name[0] - 'A' + 'a');
    if (View(member.getProto().getName()) == member_name) {
      plans.events.try_emplace(std::string(type), EventPlan{schema, StreamKindOf(schema)});
    }
  }
  return plans;
}

const SchemaPlans& Plans() {
  static const SchemaPlans plans = BuildPlans();
  return plans;
}

const EventPlan* FindEvent(std::string_view type) {
  const auto& events = Plans().events;
  const auto it = events.find(type);
  return it == events.end() ? nullptr : &it->second;
}

// Every struct and enum reachable from the registry has a plan; a miss would be a bug here, and
// reaches the caller as an internal error (kj exceptions are caught at the entry points).
const StructPlan& PlanOf(capnp::StructSchema schema) {
  const auto& structs = Plans().structs;
  const auto it = structs.find(schema.getProto().getId());
  KJ_REQUIRE(it != structs.end(), "no plan for struct", schema.getProto().getDisplayName());
  return it->second;
}

const EnumPlan& PlanOf(capnp::EnumSchema schema) {
  const auto& enums = Plans().enums;
  const auto it = enums.find(schema.getProto().getId());
  KJ_REQUIRE(it != enums.end(), "no plan for enum", schema.getProto().getDisplayName());
  return it->second;
}

// ---- Envelope checks ----

bool IsIdSegment(std::string_view text) {
  if (text.empty() || text.size() > kIdBytesMax) return false;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "2026-03" or "2026-Q1".
bool IsPeriod(std::string_view text) {
  auto digits = [](std::string_view part) {
    return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (text.size() != 7 || text[4] != '-' || !digits(text.substr(0, 4))) return false;
  if (text[5] == 'Q') return text[6] >= '1' && text[6] <= '4';
  if (!digits(text.substr(5, 2))) return false;
  const int month = (text[5] - '0') * 10 + (text[6] - '0');
  return month >= 1 && month <= 12;
}

Check CheckStream(std::string_view stream, events::StreamKind kind, std::string_view type) {
  const std::string_view kind_name = StreamKindName(kind);
  auto fail = [&] {
    const std::string expected =
        std::string(kind_name) +
        (kind == events::StreamKind::REPORT ? "/<report type>/<period>" : "/<id>");
    return Fail("stream", "bad_stream",
                "type " + std::string(type) + " belongs to a stream " + expected +
                    ", each part 1..64 of [A-Za-z0-9._:-]");
  };
  if (stream.size() <= kind_name.size() || stream.substr(0, kind_name.size()) != kind_name ||
      stream[kind_name.size()] != '/') {
    return fail();
  }
  std::string_view rest = stream.substr(kind_name.size() + 1);
  for (size_t segment = 0; segment < StreamIdSegments(kind); ++segment) {
    const size_t slash = rest.find('/');
    const bool last = segment + 1 == StreamIdSegments(kind);
    if (last != (slash == std::string_view::npos)) return fail();
    if (!IsIdSegment(rest.substr(0, slash))) return fail();
    rest = last ? std::string_view() : rest.substr(slash + 1);
  }
  // A survey stands for a period (survey/<period>): one that is none could never be evaluated.
  if (kind == events::StreamKind::SURVEY && !IsPeriod(stream.substr(kind_name.size() + 1))) {
    return Fail("stream", "bad_period",
                "a survey's stream is survey/<period>, the period YYYY-MM or YYYY-Qn (as in "
                "survey/2026-Q1)");
  }
  return std::nullopt;
}

template <size_t N>
Check CheckKeys(const json& object, const std::array<std::string_view, N>& allowed,
                const std::string& path) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view name : allowed) known = known || name == key;
    if (!known) return Fail(Join(path, key), "unknown_field", "is not a field of this object");
  }
  return std::nullopt;
}

Check RequiredString(const json& object, std::string_view key, const std::string& path,
                     std::string* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Fail(Join(path, key), "missing_field", "is required");
  if (!it->is_string()) return Fail(Join(path, key), "wrong_type", "must be a string");
  *out = it->get<std::string>();
  return std::nullopt;
}

Check CheckEventId(const std::string& event_id) {
  bool ok = !event_id.empty() && event_id.size() <= kEventIdBytesMax;
  for (char c : event_id) ok = ok && c > ' ' && c <= '~';
  if (ok) return std::nullopt;
  return Fail("event_id", "bad_value", "must be 1..128 printable ASCII characters without spaces");
}

Check DecodeExpectedVersion(const json& event, ClientEvent* out) {
  const auto it = event.find("expected_version");
  if (it == event.end()) return std::nullopt;
  if (!it->is_number_integer()) return Fail("expected_version", "wrong_type", "must be an integer");
  const bool too_big = it->is_number_unsigned() &&
                       it->get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()};
  if (too_big || it->get<int64_t>() < -1) {
    return Fail("expected_version", "bad_value", "must be an integer >= -1");
  }
  out->expected_version = it->get<int64_t>();
  return std::nullopt;
}

Check DecodeOccurredAt(const json& event, ClientEvent* out) {
  std::string text;
  if (auto error = RequiredString(event, "occurred_at", "", &text)) return error;
  const std::optional<Timestamp> timestamp = ParseTimestamp(text);
  if (!timestamp) {
    return Fail("occurred_at", "bad_timestamp",
                "must be an RFC 3339 date-time with seconds and an offset, such as "
                "2026-03-02T09:15:00+08:00");
  }
  out->occurred_at_us = timestamp->unix_us;
  out->occurred_at_offset_minutes = timestamp->offset_minutes;
  return std::nullopt;
}

Check DecodeActor(const json& event, Actor* actor) {
  const auto it = event.find("actor");
  if (it == event.end()) return Fail("actor", "missing_field", "is required");
  if (!it->is_object()) return Fail("actor", "wrong_type", "must be an object {id, role, org}");
  if (auto error = CheckKeys(*it, kActorKeys, "actor")) return error;
  for (auto [key, target] : {std::pair{"id", &actor->id}, std::pair{"role", &actor->role},
                             std::pair{"org", &actor->org}}) {
    if (auto error = RequiredString(*it, key, "actor", target)) return error;
  }
  if (!IsIdSegment(actor->id))
    return Fail("actor.id", "bad_value", "must be 1..64 of [A-Za-z0-9._:-]");
  if (!IsIdSegment(actor->org)) {
    return Fail("actor.org", "bad_value", "must be 1..64 of [A-Za-z0-9._:-]");
  }
  for (std::string_view role : kRoles) {
    if (role == actor->role) return std::nullopt;
  }
  return Fail("actor.role", "bad_value",
              "must be one of clerk|inspector|callback_agent|director|auditor|reader|admin");
}

Check DecodeImport(const json& event, ClientEvent* out) {
  out->extra = json::object();
  const auto it = event.find("import");
  if (it == event.end()) return std::nullopt;
  if (!it->is_boolean()) return Fail("import", "wrong_type", "must be true or false");
  out->extra["import"] = it->get<bool>();
  return std::nullopt;
}

// ---- JSON -> Cap'n Proto ----

// A JSON scalar checked against its Cap'n Proto type, ready to be written. A string_view is text
// borrowed from the JSON value, which outlives the write; a std::string is text made here.
using Leaf = std::variant<bool, int64_t, uint64_t, double, std::string, std::string_view,
                          capnp::EnumSchema::Enumerant>;

capnp::DynamicValue::Reader LeafReader(const Leaf& leaf) {
  return std::visit(
      [](const auto& value) -> capnp::DynamicValue::Reader {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
          return capnp::Text::Reader(value.data(), value.size());
        } else if constexpr (std::is_same_v<T, capnp::EnumSchema::Enumerant>) {
          return capnp::DynamicEnum(value);
        } else {
          return value;
        }
      },
      leaf);
}

// 3 -> "3", 2.5 -> "2.5" (bounds in messages).
std::string FormatBound(double bound) {
  if (bound == static_cast<double>(static_cast<int64_t>(bound))) {
    return std::to_string(static_cast<int64_t>(bound));
  }
  return json(bound).dump();
}

Check CheckRange(double value, const FieldRules& rules, const std::string& path) {
  if (value >= rules.min && value <= rules.max) return std::nullopt;
  const bool has_min = rules.min > -std::numeric_limits<double>::infinity();
  const bool has_max = rules.max < std::numeric_limits<double>::infinity();
  std::string bounds = "must be";
  if (has_min && has_max) {
    bounds += " between " + FormatBound(rules.min) + " and " + FormatBound(rules.max);
  } else {
    bounds += has_min ? " >= " + FormatBound(rules.min) : " <= " + FormatBound(rules.max);
  }
  return Fail(path, "bad_value", bounds);
}

struct IntegerBounds {
  int64_t min;
  uint64_t max;
  bool is_signed;
};

template <typename T>
constexpr IntegerBounds BoundsFor() {
  return IntegerBounds{static_cast<int64_t>(std::numeric_limits<T>::min()),
                       static_cast<uint64_t>(std::numeric_limits<T>::max()),
                       std::numeric_limits<T>::is_signed};
}

std::optional<IntegerBounds> IntegerBoundsOf(capnp::schema::Type::Which which) {
  switch (which) {
    case capnp::schema::Type::INT8:
      return BoundsFor<int8_t>();
    case capnp::schema::Type::INT16:
      return BoundsFor<int16_t>();
    case capnp::schema::Type::INT32:
      return BoundsFor<int32_t>();
    case capnp::schema::Type::INT64:
      return BoundsFor<int64_t>();
    case capnp::schema::Type::UINT8:
      return BoundsFor<uint8_t>();
    case capnp::schema::Type::UINT16:
      return BoundsFor<uint16_t>();
    case capnp::schema::Type::UINT32:
      return BoundsFor<uint32_t>();
    case capnp::schema::Type::UINT64:
      return BoundsFor<uint64_t>();
    default:
      return std::nullopt;
  }
}

Decoded<Leaf> DecodeInteger(IntegerBounds bounds, const FieldRules& rules, const json& value,
                            const std::string& path) {
  if (!value.is_number_integer()) return Fail(path, "wrong_type", "must be an integer");
  const bool negative = !value.is_number_unsigned() && value.get<int64_t>() < 0;
  const bool fits =
      negative ? value.get<int64_t>() >= bounds.min : value.get<uint64_t>() <= bounds.max;
  if (!fits) return Fail(path, "bad_value", "is out of range for its type");
  const double as_double = negative ? static_cast<double>(value.get<int64_t>())
                                    : static_cast<double>(value.get<uint64_t>());
  if (auto error = CheckRange(as_double, rules, path)) return *error;
  if (bounds.is_signed) return Leaf(value.get<int64_t>());
  return Leaf(value.get<uint64_t>());
}

Decoded<Leaf> DecodeFloat(const FieldRules& rules, const json& value, const std::string& path) {
  if (!value.is_number()) return Fail(path, "wrong_type", "must be a number");
  const double number = value.get<double>();
  if (auto error = CheckRange(number, rules, path)) return *error;
  return Leaf(number);
}

// Strings parsed from text are UTF-8 already; this guards events built as nlohmann::json in code.
bool IsUtf8(std::string_view text) {
  // ASCII is UTF-8: only other text pays for the two dumps below.
  const bool ascii = std::all_of(text.begin(), text.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return true;
  return json(text).dump(-1, ' ', false, json::error_handler_t::ignore).size() ==
         json(text).dump(-1, ' ', false, json::error_handler_t::replace).size();
}

Decoded<Leaf> DecodeText(const FieldRules& rules, const json& value, const std::string& path) {
  if (rules.json_object) {
    if (!value.is_object()) return Fail(path, "wrong_type", "must be an object");
    // Two lenient dumps differ exactly when some string is not UTF-8 (a strict dump would throw).
    std::string compact = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (compact != value.dump(-1, ' ', false, json::error_handler_t::ignore)) {
      return Fail(path, "bad_value", "contains text that is not UTF-8");
    }
    if (compact.size() > kTextBytesMax) return Fail(path, "bad_value", "is too large");
    return Leaf(std::move(compact));
  }
  if (!value.is_string()) return Fail(path, "wrong_type", "must be a string");
  const std::string& text = value.get_ref<const std::string&>();
  if (text.size() > kTextBytesMax) return Fail(path, "bad_value", "is longer than 8192 bytes");
  if (text.find('\0') != std::string::npos) return Fail(path, "bad_value", "contains NUL");
  if (!IsUtf8(text)) return Fail(path, "bad_value", "is not UTF-8");
  if (text.empty() && !rules.optional) return Fail(path, "bad_value", "must not be empty");
  if (rules.date && !IsCalendarDate(text)) {
    return Fail(path, "bad_value", "must be a real date YYYY-MM-DD");
  }
  return Leaf(std::string_view(text));
}

Decoded<Leaf> DecodeEnum(capnp::EnumSchema schema, const json& value, const std::string& path) {
  if (!value.is_string()) return Fail(path, "wrong_type", "must be a string");
  const std::string& name = value.get_ref<const std::string&>();
  const EnumPlan& plan = PlanOf(schema);
  for (size_t i = 0; i < plan.names.size(); ++i) {
    if (plan.names[i] == name) return Leaf(schema.getEnumerants()[i]);
  }
  return Fail(path, "bad_value", "must be one of " + plan.choices);
}

Decoded<Leaf> DecodeLeaf(capnp::Type type, const FieldRules& rules, const json& value,
                         const std::string& path) {
  if (auto bounds = IntegerBoundsOf(type.which())) {
    return DecodeInteger(*bounds, rules, value, path);
  }
  switch (type.which()) {
    case capnp::schema::Type::BOOL:
      if (!value.is_boolean()) return Fail(path, "wrong_type", "must be true or false");
      return Leaf(value.get<bool>());
    case capnp::schema::Type::FLOAT32:
    case capnp::schema::Type::FLOAT64:
      return DecodeFloat(rules, value, path);
    case capnp::schema::Type::TEXT:
      return DecodeText(rules, value, path);
    case capnp::schema::Type::ENUM:
      return DecodeEnum(type.asEnum(), value, path);
    default:
      return Fail(path, "bad_value", "has a type the JSON mapping does not support");
  }
}

Check DecodeStruct(const json& object, capnp::DynamicStruct::Builder builder,
                   const std::string& path);

Check DecodeList(capnp::ListSchema schema, const FieldRules& rules, const json& value,
                 capnp::DynamicList::Builder list, const std::string& path) {
  const capnp::Type element_type = schema.getElementType();
  std::set<std::string> seen;  // $distinct
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string element_path = Index(path, i);
    if (rules.distinct && value[i].is_string() &&
        !seen.insert(value[i].get<std::string>()).second) {
      return Fail(path, "duplicate_value", "names " + value[i].get<std::string>() + " twice");
    }
    if (element_type.isStruct()) {
      if (!value[i].is_object()) return Fail(element_path, "wrong_type", "must be an object");
      auto element = list[i].as<capnp::DynamicStruct>();
      if (auto error = DecodeStruct(value[i], element, element_path)) return error;
      continue;
    }
    Decoded<Leaf> leaf = DecodeLeaf(element_type, ElementRules(rules), value[i], element_path);
    if (auto* error = std::get_if<DecodeError>(&leaf)) return *error;
    list.set(i, LeafReader(std::get<Leaf>(leaf)));
  }
  return std::nullopt;
}

Check DecodeField(const FieldPlan& plan, const json& value, capnp::DynamicStruct::Builder builder,
                  const std::string& path) {
  const capnp::StructSchema::Field field = plan.field;
  const FieldRules& rules = plan.rules;
  const capnp::Type type = plan.type;
  if (type.isStruct()) {
    if (!value.is_object()) return Fail(path, "wrong_type", "must be an object");
    return DecodeStruct(value, builder.init(field).as<capnp::DynamicStruct>(), path);
  }
  if (type.isList()) {
    if (!value.is_array()) return Fail(path, "wrong_type", "must be an array");
    if (value.size() > kListItemsMax) return Fail(path, "bad_value", "has more than 256 items");
    auto list = builder.init(field, value.size()).as<capnp::DynamicList>();
    return DecodeList(type.asList(), rules, value, list, path);
  }
  Decoded<Leaf> leaf = DecodeLeaf(type, rules, value, path);
  if (auto* error = std::get_if<DecodeError>(&leaf)) return *error;
  builder.set(field, LeafReader(std::get<Leaf>(leaf)));
  return std::nullopt;
}

// Marks an optional scalar as given (pointer fields carry presence themselves).
Check MarkPresent(const FieldPlan& plan, capnp::DynamicStruct::Builder builder,
                  const std::string& path) {
  if (plan.is_pointer) return std::nullopt;
  if (!plan.companion) {
    return Fail(path, "bad_value", "internal: schema lacks its presence companion");
  }
  builder.set(*plan.companion, true);
  return std::nullopt;
}

bool IsJsonKeyOf(const StructPlan& plan, std::string_view key) {
  for (const FieldPlan& field : plan.fields) {
    if (field.key == key) return true;
  }
  return false;
}

// A key spelt like a known key but not quite (customerClass, Customer-Class, schem): a misspelt
// field, not an extra one. Compared without case, '_', '-' and spaces, one letter apart at most.
std::string LooseKey(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '_' || c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// Whether one insertion, deletion, substitution or swap of two neighbouring letters turns `a`
// into `b` (or they are equal).
bool AtMostOneEditApart(std::string_view a, std::string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  if (b.size() - a.size() > 1) return false;
  size_t i = 0;
  while (i < a.size() && a[i] == b[i]) ++i;
  if (i == a.size()) return true;  // equal, or `b` has one letter more at the end
  if (a.size() != b.size()) return a.substr(i) == b.substr(i + 1);
  if (a.substr(i + 1) == b.substr(i + 1)) return true;  // one letter replaced
  return i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] &&
         a.substr(i + 2) == b.substr(i + 2);  // two neighbours swapped
}

std::optional<std::string_view> MisspeltKeyOf(const StructPlan& plan, std::string_view key) {
  const std::string loose = LooseKey(key);
  for (const FieldPlan& field : plan.fields) {
    const std::string known = LooseKey(field.key);
    // Also a start of a longer field name ("approved" for approved_by, "committed" for
    // committed_date): a field cut short, not a key of its own.
    const bool cut_short = loose.size() >= 5 && loose.size() < known.size() &&
                           known.compare(0, loose.size(), loose) == 0;
    if (known == loose || cut_short || (known.size() >= 4 && AtMostOneEditApart(known, loose))) {
      return field.key;
    }
  }
  return std::nullopt;
}

// The snake_case name of a field that is no JSON key (a presence companion, the extra field).
bool IsHiddenKeyOf(capnp::StructSchema schema, std::string_view key) {
  for (auto field : schema.getFields()) {
    const FieldRules rules = RulesOf(field);
    if ((rules.presence || rules.extra) &&
        LooseKey(SnakeCase(field.getProto().getName())) == LooseKey(key)) {
      return true;
    }
  }
  return false;
}

// `value` with every number that is a whole number written as an integer (1.0 → 1), so that a
// retry whose client writes numbers otherwise is the same content, as for the type's own fields.
json WholeNumbersAsIntegers(const json& value) {
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9.0e15) {
      return json(static_cast<int64_t>(number));
    }
    return value;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& item : value) out.push_back(WholeNumbersAsIntegers(item));
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : value.items()) out[key] = WholeNumbersAsIntegers(item);
    return out;
  }
  return value;
}

// Keys beyond the type's own go to its $extra field as a compact JSON object (sorted keys, so
// equal data gives equal bytes); other structs (list items) have none and refuse them.
Check DecodeExtra(const StructPlan& plan, const json& object, capnp::DynamicStruct::Builder builder,
                  const std::string& path) {
  json extra = json::object();
  for (const auto& [key, value] : object.items()) {
    if (IsJsonKeyOf(plan, key)) continue;
    if (auto known = MisspeltKeyOf(plan, key)) {
      return Fail(Join(path, key), "unknown_field",
                  "is not a field of this event; did you mean " + std::string(*known) + "?");
    }
    if (!plan.extra || IsHiddenKeyOf(builder.getSchema(), key)) {
      return Fail(Join(path, key), "unknown_field", "is not a field of this event");
    }
    // Two lenient dumps differ exactly when some string is not UTF-8 (as DecodeText checks).
    if (!IsUtf8(key) || value.dump(-1, ' ', false, json::error_handler_t::replace) !=
                            value.dump(-1, ' ', false, json::error_handler_t::ignore)) {
      return Fail(Join(path, key), "bad_value", "contains text that is not UTF-8");
    }
    extra[key] = WholeNumbersAsIntegers(value);
  }
  if (extra.empty()) return std::nullopt;
  // (The whole payload's size limit bounds it.)
  const std::string text = extra.dump(-1, ' ', false, json::error_handler_t::replace);
  builder.set(*plan.extra, capnp::Text::Reader(text.c_str(), text.size()));
  return std::nullopt;
}

Check DecodeStruct(const json& object, capnp::DynamicStruct::Builder builder,
                   const std::string& path) {
  const StructPlan& plan = PlanOf(builder.getSchema());
  if (auto error = DecodeExtra(plan, object, builder, path)) return error;
  // Schema order, not JSON order, so that equal data gives equal bytes.
  for (const FieldPlan& field : plan.fields) {
    const std::string field_path = Join(path, field.key);
    const auto it = object.find(field.key);
    if (it == object.end()) {
      if (field.rules.optional) continue;
      return Fail(field_path, "missing_field", "is required");
    }
    if (auto error = DecodeField(field, *it, builder, field_path)) return error;
    if (field.rules.optional) {
      if (auto error = MarkPresent(field, builder, field_path)) return error;
    }
  }
  return std::nullopt;
}

// Copies the message compactly into one segment and flattens it.
std::string FlattenCompact(capnp::DynamicStruct::Reader root) {
  const size_t words = root.totalSize().wordCount + 1;  // + the root pointer
  capnp::MallocMessageBuilder compact(words, capnp::AllocationStrategy::FIXED_SIZE);
  compact.setRoot(root);
  // Serialized straight into the string (no intermediate kj::Array to copy from).
  std::string flat(capnp::computeSerializedSizeInWords(compact) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream out(kj::arrayPtr(reinterpret_cast<kj::byte*>(flat.data()), flat.size()));
  capnp::writeMessage(out, compact);
  return flat;
}

// Rules between fields of one event's data, which the schema's annotations cannot say.
Check CheckDataRules(capnp::StructSchema schema, const json& data) {
  const std::string_view type = View(schema.getShortDisplayName());
  if (type == "CallbackMade") {
    // KPI 3 counts satisfied and basically satisfied among the customers reached: a reached
    // customer's answer cannot be left out.
    if (data.value("result", "") == "reached" && !data.contains("satisfaction")) {
      return Fail("data.satisfaction", "missing_field",
                  "is required when the customer was reached (result reached)");
    }
  }
  return std::nullopt;
}

Check EncodePayload(capnp::StructSchema schema, const json& event, ClientEvent* out) {
  const auto it = event.find("data");
  if (it == event.end()) return Fail("data", "missing_field", "is required (may be {})");
  if (!it->is_object()) return Fail("data", "wrong_type", "must be an object");
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<capnp::DynamicStruct>(schema);
  if (auto error = DecodeStruct(*it, root, "data")) return error;
  if (auto error = CheckDataRules(schema, *it)) return error;
  out->payload = FlattenCompact(root.asReader());
  if (out->payload.size() > kPayloadBytesMax) {
    return Fail("data", "bad_value",
                "is too large: " + std::to_string(out->payload.size()) +
                    " bytes encoded, at most " + std::to_string(kPayloadBytesMax));
  }
  return std::nullopt;
}

// The refusal of a type that is not one of the domain's, naming what was sent (at most 64 bytes of
// it, cut on a character boundary) and the types there are, so a client can see its typo.
DecodeError UnknownType(std::string_view type) {
  constexpr size_t kShownBytesMax = 64;
  std::string shown(type.substr(0, kShownBytesMax));
  if (type.size() > kShownBytesMax) {
    while (!shown.empty() && (static_cast<unsigned char>(shown.back()) & 0xC0) == 0x80) {
      shown.pop_back();
    }
    if (!shown.empty() && (static_cast<unsigned char>(shown.back()) & 0x80) != 0) shown.pop_back();
    shown += "…";
  }
  std::string known;
  for (const std::string& name : KnownTypes()) known += (known.empty() ? "" : ", ") + name;
  return Fail("type", "unknown_type",
              json(shown).dump(-1, ' ', false, json::error_handler_t::replace) +
                  " is not an event type of the domain; the types are " + known);
}

Check DecodeType(const json& event, ClientEvent* out, const EventPlan** plan) {
  if (auto error = RequiredString(event, "type", "", &out->type)) return error;
  *plan = FindEvent(out->type);
  if (!*plan) return UnknownType(out->type);
  return std::nullopt;
}

Decoded<ClientEvent> DecodeEnvelope(const json& event) {
  if (!event.is_object()) return Fail("", "malformed_json", "an event must be a JSON object");
  if (auto error = CheckKeys(event, kEnvelopeKeys, "")) return *error;
  ClientEvent out;
  const EventPlan* plan = nullptr;
  if (auto error = DecodeType(event, &out, &plan)) return *error;
  if (auto error = RequiredString(event, "stream", "", &out.stream)) return *error;
  if (!plan->kind) {
    return Fail("type", "unknown_type", "internal: the type has no $stream annotation");
  }
  if (auto error = CheckStream(out.stream, *plan->kind, out.type)) return *error;
  if (auto error = RequiredString(event, "event_id", "", &out.event_id)) return *error;
  if (auto error = CheckEventId(out.event_id)) return *error;
  if (auto error = DecodeExpectedVersion(event, &out)) return *error;
  if (auto error = DecodeOccurredAt(event, &out)) return *error;
  if (auto error = DecodeActor(event, &out.actor)) return *error;
  if (auto error = DecodeImport(event, &out)) return *error;
  if (auto error = EncodePayload(plan->schema, event, &out)) return *error;
  if (out.type == "ApplicationAccepted") {
    if (auto error = CheckAcceptanceRules(event.at("data"))) return *error;
  }
  return out;
}

// ---- Cap'n Proto -> JSON ----

Decoded<json> RenderStruct(capnp::DynamicStruct::Reader reader, const std::string& path);

Decoded<json> RenderValue(capnp::Type type, const FieldRules& rules,
                          capnp::DynamicValue::Reader value, const std::string& path);

Decoded<json> RenderList(capnp::DynamicList::Reader list, const FieldRules& rules,
                         const std::string& path) {
  json out = json::array();
  const capnp::Type element_type = list.getSchema().getElementType();
  for (uint32_t i = 0; i < list.size(); ++i) {
    Decoded<json> element = RenderValue(element_type, rules, list[i], Index(path, i));
    if (auto* error = std::get_if<DecodeError>(&element)) return *error;
    out.push_back(std::move(std::get<json>(element)));
  }
  return out;
}

Decoded<json> RenderText(const FieldRules& rules, capnp::Text::Reader text,
                         const std::string& path) {
  if (!rules.json_object) return json(std::string(text.cStr(), text.size()));
  json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return Fail("payload", "bad_value", path + " is not a JSON object");
  return object;
}

Decoded<json> RenderEnum(capnp::DynamicEnum value, const std::string& path) {
  KJ_IF_MAYBE (enumerant, value.getEnumerant()) {
    return json(PlanOf(value.getSchema()).names[enumerant->getIndex()]);
  }
  return Fail("payload", "bad_value", path + " holds an enum value the schema does not name");
}

Decoded<json> RenderValue(capnp::Type type, const FieldRules& rules,
                          capnp::DynamicValue::Reader value, const std::string& path) {
  if (auto bounds = IntegerBoundsOf(type.which())) {
    if (bounds->is_signed) return json(value.as<int64_t>());
    return json(value.as<uint64_t>());
  }
  switch (type.which()) {
    case capnp::schema::Type::BOOL:
      return json(value.as<bool>());
    case capnp::schema::Type::FLOAT32:
    case capnp::schema::Type::FLOAT64:
      return json(value.as<double>());
    case capnp::schema::Type::TEXT:
      return RenderText(rules, value.as<capnp::Text>(), path);
    case capnp::schema::Type::ENUM:
      return RenderEnum(value.as<capnp::DynamicEnum>(), path);
    case capnp::schema::Type::LIST:
      return RenderList(value.as<capnp::DynamicList>(), ElementRules(rules), path);
    case capnp::schema::Type::STRUCT:
      return RenderStruct(value.as<capnp::DynamicStruct>(), path);
    default:
      return Fail("payload", "bad_value", path + " has an unsupported type");
  }
}

bool IsGiven(capnp::DynamicStruct::Reader reader, const FieldPlan& plan) {
  if (plan.is_pointer) return reader.has(plan.field);
  return plan.companion && reader.get(*plan.companion).as<bool>();
}

Decoded<json> RenderStruct(capnp::DynamicStruct::Reader reader, const std::string& path) {
  json out = json::object();
  const StructPlan& plan = PlanOf(reader.getSchema());
  for (const FieldPlan& field : plan.fields) {
    if (field.rules.optional && !IsGiven(reader, field)) continue;
    Decoded<json> value =
        RenderValue(field.type, field.rules, reader.get(field.field), Join(path, field.key));
    if (auto* error = std::get_if<DecodeError>(&value)) return *error;
    out[field.key] = std::move(std::get<json>(value));
  }
  if (plan.extra && reader.has(*plan.extra)) {
    const capnp::Text::Reader text = reader.get(*plan.extra).as<capnp::Text>();
    json extra = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!extra.is_object()) return Fail("payload", "bad_value", path + " extra is not an object");
    for (auto& [key, value] : extra.items()) {
      if (out.contains(key)) return Fail("payload", "bad_value", path + " extra repeats " + key);
      out[key] = std::move(value);
    }
  }
  return out;
}

Decoded<json> RenderPayload(capnp::StructSchema schema, std::string_view payload) {
  auto words = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), payload.data(), payload.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kReaderTraversalWordsMax;
  options.nestingLimit = kReaderNestingMax;
  capnp::FlatArrayMessageReader message(words, options);
  if (message.getEnd() != words.end()) {
    return Fail("payload", "bad_value", "has bytes after the message");
  }
  return RenderStruct(message.getRoot<capnp::DynamicStruct>(schema), "data");
}

// ---- Text parsing with duplicate-key and depth checks ----

struct ParseGuard {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate_key;
  bool too_deep = false;
};

// Nesting depth of a parsed value (a scalar is 0), without recursion, stopping past `limit`.
int DepthBeyond(const json& value, int limit) {
  std::vector<std::pair<const json*, int>> pending = {{&value, 0}};
  int deepest = 0;
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const json& child : *node) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

Decoded<json> ParseEventText(std::string_view text) {
  if (text.size() > kEventJsonBytesMax) {
    return Fail("", "malformed_json", "the event is longer than 1 MiB");
  }
  return ParseClientJson(text, kJsonDepthMax);
}

}  // namespace

std::optional<DecodeError> CheckAcceptanceRules(const json& data) {
  // A change is one of the change kinds, and only a change has one (a new install's kind would
  // be silently meaningless). Three_zero is a low-voltage service: an HV job marked so would
  // run no scheme-reply clock and skip its inspections. Every connection has a voltage.
  const std::string business = data.value("business", "");
  const bool has_kind = data.contains("change_kind") && !data["change_kind"].is_null();
  if (business == "change" && !has_kind) {
    return Fail("data.change_kind", "missing_field",
                "is required for business change (the kind of change, e.g. rename)");
  }
  if (business != "change" && has_kind) {
    return Fail("data.change_kind", "bad_value",
                "is given only for business change, not for " + business);
  }
  const std::string customer_class = data.value("customer_class", "");
  if (data.value("three_zero", false) &&
      (customer_class == "hv_single" || customer_class == "hv_dual")) {
    return Fail("data.three_zero", "bad_value",
                "is a low-voltage service; customer_class " + customer_class + " is high voltage");
  }
  if (data.value("voltage_kv", 0.0) <= 0) {
    return Fail("data.voltage_kv", "bad_value", "must be more than 0");
  }
  return std::nullopt;
}

Decoded<json> ParseClientJson(std::string_view text, int depth_max) {
  ParseGuard guard;
  json::parser_callback_t callback = [&guard, depth_max](int depth, json::parse_event_t event,
                                                         json& parsed) {
    guard.too_deep = guard.too_deep || depth > depth_max;
    if (event == json::parse_event_t::object_start) guard.open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) guard.open_objects.pop_back();
    if (event == json::parse_event_t::key && !guard.open_objects.empty() &&
        !guard.open_objects.back().insert(parsed.get<std::string>()).second) {
      guard.duplicate_key = guard.duplicate_key.value_or(parsed.get<std::string>());
    }
    return true;
  };
  json event = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  if (event.is_discarded()) {
    // Chinese Windows tools save GBK by default: say that, not "not JSON", when it is the cause.
    if (!IsUtf8(text)) {
      return Fail("", "malformed_json", kNotUtf8Text);
    }
    return Fail("", "malformed_json", "the text is not valid JSON");
  }
  if (guard.too_deep) return Fail("", "malformed_json", "the text is nested too deeply");
  if (guard.duplicate_key) {
    return Fail("", "malformed_json", "the key \"" + *guard.duplicate_key + "\" appears twice");
  }
  return event;
}

// ---- Public API: the only places that catch exceptions ----

Decoded<ClientEvent> DecodeClientEvent(std::string_view json_text) {
  Decoded<json> event = ParseEventText(json_text);
  if (auto* error = std::get_if<DecodeError>(&event)) return *error;
  return DecodeClientEvent(std::get<json>(event));
}

Decoded<ClientEvent> DecodeClientEvent(const json& event) {
  // Parsed by a caller without ParseClientJson's guard: rendering a deeper value would recurse
  // that deep.
  if (DepthBeyond(event, kJsonDepthMax) > kJsonDepthMax) {
    return Fail("", "malformed_json", "the event is nested too deeply");
  }
  try {
    return DecodeEnvelope(event);
  } catch (const kj::Exception& e) {
    return Fail("data", "bad_value", "internal: " + std::string(View(e.getDescription())));
  } catch (const json::exception& e) {
    return Fail("", "malformed_json", e.what());
  }
}

Decoded<json> PayloadToJson(std::string_view type, std::string_view payload) {
  const EventPlan* event = FindEvent(type);
  if (!event) return UnknownType(type);
  if (payload.empty() || payload.size() % sizeof(capnp::word) != 0 ||
      payload.size() > kPayloadBytesMax) {
    return Fail("payload", "bad_value",
                "is not a whole number of 8-byte words within " + std::to_string(kPayloadBytesMax) +
                    " bytes");
  }
  try {
    return RenderPayload(event->schema, payload);
  } catch (const kj::Exception& e) {
    return Fail("payload", "bad_value", std::string(View(e.getDescription())));
  } catch (const json::exception& e) {
    return Fail("payload", "bad_value", e.what());
  }
}

Decoded<std::string> PayloadFromJson(std::string_view type, const json& data) {
  const EventPlan* event = FindEvent(type);
  if (!event) return UnknownType(type);
  if (DepthBeyond(data, kJsonDepthMax) > kJsonDepthMax) {
    return Fail("data", "malformed_json", "is nested too deeply");
  }
  try {
    ClientEvent encoded;
    if (auto error = EncodePayload(event->schema, json{{"data", data}}, &encoded)) return *error;
    return std::move(encoded.payload);
  } catch (const kj::Exception& e) {
    return Fail("data", "bad_value", "internal: " + std::string(View(e.getDescription())));
  } catch (const json::exception& e) {
    return Fail("data", "bad_value", e.what());
  }
}

std::optional<std::string_view> EnumName(uint64_t enum_id, uint16_t value) {
  const auto& enums = Plans().enums;
  const auto it = enums.find(enum_id);
  if (it == enums.end() || value >= it->second.names.size()) return std::nullopt;
  return it->second.names[value];
}

bool IsKnownType(std::string_view type) { return FindEvent(type) != nullptr; }

std::vector<std::string> KnownTypes() {
  std::vector<std::string> types;
  for (auto field : RegistrySchema().getFields()) {
    types.emplace_back(View(field.getType().asStruct().getShortDisplayName()));
  }
  return types;
}

std::vector<DataField> DataFieldsOf(std::string_view type) {
  std::vector<DataField> fields;
  const EventPlan* event = FindEvent(type);
  if (!event) return fields;
  for (const FieldPlan& plan : PlanOf(event->schema).fields) {
    DataValueKind kind = DataValueKind::kOther;
    switch (plan.type.which()) {
      case capnp::schema::Type::TEXT:
        if (!plan.rules.json_object) kind = DataValueKind::kString;
        break;
      case capnp::schema::Type::ENUM:
        kind = DataValueKind::kString;
        break;
      case capnp::schema::Type::BOOL:
        kind = DataValueKind::kBool;
        break;
      default:
        break;
    }
    fields.push_back({plan.key, kind});
  }
  return fields;
}

bool IsActorId(std::string_view text) { return IsIdSegment(text); }

bool OrgWithin(std::string_view org, std::string_view top) {
  return !top.empty() && org.starts_with(top) &&
         (org.size() == top.size() || org[top.size()] == '.');
}

bool IsOrgUnitId(std::string_view text) {
  return IsIdSegment(text) && text.front() != '.' && text.back() != '.' &&
         text.find("..") == std::string_view::npos;
}

std::string_view StreamKindOfType(std::string_view type) {
  const EventPlan* event = FindEvent(type);
  if (!event) return {};
  return event->kind ? StreamKindName(*event->kind) : std::string_view();
}

bool IsCalendarDate(std::string_view text) {
  return text.size() == 10 && ParseDate(text).has_value();
}

std::optional<Timestamp> ParseTimestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)
  if (text.size() < 20 || text[10] != 'T') return std::nullopt;
  const std::optional<int64_t> days = ParseDate(text);
  const std::optional<int64_t> seconds = ParseClock(text, 11);
  size_t pos = 19;
  const std::optional<int64_t> micros = ParseFraction(text, &pos);
  if (!days || !seconds || !micros) return std::nullopt;
  const std::optional<int32_t> offset = ParseOffset(text.substr(pos));
  if (!offset) return std::nullopt;
  const int64_t local_seconds = *days * kSecondsPerDay + *seconds;
  const int64_t utc_seconds = local_seconds - int64_t{*offset} * 60;
  return Timestamp{utc_seconds * kMicrosPerSecond + *micros, *offset};
}

std::string FormatTimestamp(int64_t unix_us, int32_t offset_minutes) {
  if (offset_minutes < -kOffsetMinutesMax || offset_minutes > kOffsetMinutesMax) offset_minutes = 0;
  const int64_t local_us = unix_us + int64_t{offset_minutes} * 60 * kMicrosPerSecond;
  const int64_t us_per_day = kSecondsPerDay * kMicrosPerSecond;
  int64_t days = local_us / us_per_day;
  int64_t us_of_day = local_us % us_per_day;
  if (us_of_day < 0) {
    us_of_day += us_per_day;
    --days;
  }
  // |days| < 2^27 for any int64 microseconds, well inside Date's int32 range.
  const Date date = Date::FromDaysSinceEpoch(static_cast<int32_t>(days));
  const int64_t second_of_day = us_of_day / kMicrosPerSecond;
  const int64_t micros = us_of_day % kMicrosPerSecond;
  const int32_t offset_abs = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  char buffer[64];
  int length = std::snprintf(buffer, sizeof(buffer), "%04lld-%02d-%02dT%02lld:%02lld:%02lld",
                             static_cast<long long>(date.year()), date.month(), date.day(),
                             static_cast<long long>(second_of_day / 3600),
                             static_cast<long long>(second_of_day / 60 % 60),
                             static_cast<long long>(second_of_day % 60));
  if (micros != 0) {
    length += std::snprintf(buffer + length, sizeof(buffer) - length, ".%06lld",
                            static_cast<long long>(micros));
  }
  std::snprintf(buffer + length, sizeof(buffer) - length, "%c%02d:%02d",
                offset_minutes < 0 ? '-' : '+', offset_abs / 60, offset_abs % 60);
  return buffer;
}

}  // namespace gridledger::domain
