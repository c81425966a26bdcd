// Goal: typed payload reads (domain/payload.h) see what the JSON form of the contract shows, and
// refuse exactly the payloads PayloadToJson refuses.
// Method: every enumerant of every enum reachable from the event types is named as PayloadToJson
// names it; a callback with every field set reads field for field like its JSON form; payloads with
// an unnamed enum value, trailing bytes or a broken pointer fail both ways; unaligned bytes read
// like aligned ones.
#include "domain/payload.h"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gridledger::domain {
namespace {

namespace ev = events;
using nlohmann::json;

std::string Encode(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(words.begin()), words.asBytes().size());
}

std::string PayloadOf(const std::string& type, const json& data) {
  json event = {{"stream", "app/KM-2026-000123"},
                {"type", type},
                {"event_id", "e1"},
                {"occurred_at", "2026-03-02T09:00:00+08:00"},
                {"actor", {{"id", "A1"}, {"role", "clerk"}, {"org", "KM"}}},
                {"data", data}};
  auto decoded = DecodeClientEvent(event);
  EXPECT_TRUE(std::holds_alternative<ClientEvent>(decoded)) << event.dump();
  return std::holds_alternative<ClientEvent>(decoded) ? std::get<ClientEvent>(decoded).payload
                                                      : std::string();
}

// Every enum a field of an event type (or of a struct inside one) uses.
void CollectEnums(capnp::Type type, std::vector<capnp::EnumSchema>& out) {
  if (type.isEnum()) out.push_back(type.asEnum());
  if (type.isList()) CollectEnums(type.asList().getElementType(), out);
  if (type.isStruct()) {
    for (auto field : type.asStruct().getFields()) CollectEnums(field.getType(), out);
  }
}

TEST(PayloadTest, EveryEnumerantIsNamedAsTheJsonFormNamesIt) {
  std::vector<capnp::EnumSchema> enums;
  CollectEnums(capnp::Schema::from<ev::CallbackMade>(), enums);
  CollectEnums(capnp::Schema::from<ev::DocumentReviewed>(), enums);
  CollectEnums(capnp::Schema::from<ev::ApplicationAccepted>(), enums);
  ASSERT_GE(enums.size(), 5u);  // result, satisfaction, complaint, customer class, business
  for (const capnp::EnumSchema& schema : enums) {
    const uint64_t id = schema.getProto().getId();
    const auto enumerants = schema.getEnumerants();
    for (uint16_t value = 0; value < enumerants.size(); ++value) {
      std::optional<std::string_view> name = EnumName(id, value);
      ASSERT_TRUE(name.has_value());
      // The JSON form's names are the snake_case of the schema's: no capitals, same letters.
      std::string camel(enumerants[value].getProto().getName().cStr());
      std::string flat;
      for (char c : *name) {
        if (c != '_') flat += c;
      }
      std::string lower;
      for (char c : camel) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_EQ(flat, lower) << *name << " vs " << camel;
    }
    EXPECT_FALSE(EnumName(id, static_cast<uint16_t>(enumerants.size())).has_value());
  }
  EXPECT_FALSE(EnumName(uint64_t{12345}, 0).has_value());
}

TEST(PayloadTest, ACallbackReadsLikeItsJsonForm) {
  const std::string payload = PayloadOf("CallbackMade", {{"agent", "A7"},
                                                         {"result", "reached"},
                                                         {"satisfaction", "basically_satisfied"},
                                                         {"complaints", {"improper_fee", "late"}},
                                                         {"comment", "线路改造后满意"}});
  auto rendered = PayloadToJson("CallbackMade", payload);
  ASSERT_TRUE(std::holds_alternative<json>(rendered));
  const json& data = std::get<json>(rendered);
  // Unaligned bytes too: one byte into a buffer.
  std::string shifted = " " + payload;
  for (std::string_view bytes : {std::string_view(payload), std::string_view(shifted).substr(1)}) {
    std::string agent, result, satisfaction, comment;
    std::vector<std::string> complaints;
    ASSERT_TRUE(ReadPayload<ev::CallbackMade>(bytes, [&](ev::CallbackMade::Reader root) {
      agent = TextOf(root.getAgent());
      result = std::string(EnumName(root.getResult()).value_or("?"));
      if (root.getHasSatisfaction()) {
        satisfaction = std::string(EnumName(root.getSatisfaction()).value_or("?"));
      }
      for (ev::Complaint complaint : root.getComplaints()) {
        complaints.emplace_back(EnumName(complaint).value_or("?"));
      }
      comment = TextOf(root.getComment());
      return true;
    }));
    EXPECT_EQ(agent, data["agent"]);
    EXPECT_EQ(result, data["result"]);
    EXPECT_EQ(satisfaction, data["satisfaction"]);
    EXPECT_EQ(json(complaints), data["complaints"]);
    EXPECT_EQ(comment, data["comment"]);
  }
}

TEST(PayloadTest, WhatTheJsonFormRefusesDoesNotRead) {
  auto reads = [](const std::string& payload) {
    return ReadPayload<ev::CallbackMade>(payload, [](ev::CallbackMade::Reader root) {
      return EnumName(root.getResult()).has_value();
    });
  };
  auto renders = [](const std::string& payload) {
    return std::holds_alternative<json>(PayloadToJson("CallbackMade", payload));
  };
  capnp::MallocMessageBuilder unnamed;
  auto root = unnamed.initRoot<ev::CallbackMade>();
  root.setAgent("A7");
  root.setResult(static_cast<ev::CallbackResult>(9));
  const std::string unnamed_payload = Encode(unnamed);
  EXPECT_FALSE(renders(unnamed_payload));
  EXPECT_FALSE(reads(unnamed_payload));

  const std::string valid = PayloadOf("CallbackMade", {{"agent", "A7"}, {"result", "refused"}});
  ASSERT_TRUE(renders(valid));
  ASSERT_TRUE(reads(valid));
  const std::string trailing = valid + std::string(8, '\0');
  EXPECT_FALSE(renders(trailing));
  EXPECT_FALSE(reads(trailing));
  // The root pointer aimed far past the end.
  std::string broken = valid;
  broken[8] = '\x7f';
  broken[9] = '\x7f';
  broken[10] = '\x7f';
  EXPECT_FALSE(renders(broken));
  EXPECT_FALSE(reads(broken));
  EXPECT_FALSE(reads(""));
  EXPECT_FALSE(reads("1234567"));
}

TEST(PayloadTest, ABrokenFieldThatAPartialReaderSkipsFailsReadsWhole) {
  const std::string valid = PayloadOf(
      "DocumentReviewed", {{"reviewer", "R1"},
                           {"items", {{{"item", "deed"}, {"present", true}, {"correct", true}}}},
                           {"conclusion", "pass"},
                           {"defects", {"none"}}});
  auto conclusion_only = [](std::string_view payload) {
    return ReadPayload<ev::DocumentReviewed>(
        payload, [](ev::DocumentReviewed::Reader root) { return Named(root.getConclusion()); });
  };
  auto whole = [](std::string_view payload) {
    return ReadPayload<ev::DocumentReviewed>(
        payload, [](ev::DocumentReviewed::Reader root) { return ReadsWhole(root); });
  };
  ASSERT_TRUE(std::holds_alternative<json>(PayloadToJson("DocumentReviewed", valid)));
  ASSERT_TRUE(whole(valid));
  // Words: segment table, root pointer, one data word (conclusion), pointers reviewer, items,
  // defects. Aim the defects pointer far past the end of the message.
  std::string broken = valid;
  const size_t defects = 5 * sizeof(capnp::word);
  const std::string far("\x01\x00\x00\x10\x01\x00\x00\x00", 8);  // list, offset 2^26 words
  broken.replace(defects, far.size(), far);
  EXPECT_FALSE(std::holds_alternative<json>(PayloadToJson("DocumentReviewed", broken)));
  EXPECT_TRUE(conclusion_only(broken));  // why partial readers need ReadsWhole
  EXPECT_FALSE(whole(broken));
}

TEST(PayloadTest, ReadsWholeRefusesUnnamedEnumValuesInAnyField) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<ev::CallbackMade>();
  root.setAgent("A7");
  root.setResult(ev::CallbackResult::REACHED);
  root.initComplaints(1).set(0, static_cast<ev::Complaint>(7));
  const std::string payload = Encode(message);
  EXPECT_FALSE(std::holds_alternative<json>(PayloadToJson("CallbackMade", payload)));
  EXPECT_FALSE(ReadPayload<ev::CallbackMade>(
      payload, [](ev::CallbackMade::Reader callback) { return ReadsWhole(callback); }));
}

// Every pointer field of T, aimed out of the message in turn, makes the JSON form and ReadsWhole
// refuse the payload: ReadsWhole follows every field, including any added to the schema later.
template <typename T>
void ExpectReadsWholeFollowsEveryPointer(const std::string& type) {
  const capnp::StructSchema schema = capnp::Schema::from<T>();
  const size_t data_words = schema.getProto().getStruct().getDataWordCount();
  capnp::MallocMessageBuilder empty;
  empty.initRoot<T>();
  const std::string valid = Encode(empty);
  auto whole = [](std::string_view payload) {
    return ReadPayload<T>(payload, [](typename T::Reader root) { return ReadsWhole(root); });
  };
  ASSERT_TRUE(whole(valid)) << type;
  const std::string far("\x01\x00\x00\x10\x01\x00\x00\x00", 8);  // list, offset 2^26 words
  int pointers = 0;
  for (capnp::StructSchema::Field field : schema.getFields()) {
    const capnp::Type field_type = field.getType();
    if (!field_type.isText() && !field_type.isList() && !field_type.isStruct()) continue;
    ++pointers;
    // Words: segment table, root pointer, data section, pointer section in slot order.
    const size_t word = 2 + data_words + field.getProto().getSlot().getOffset();
    std::string broken = valid;
    broken.replace(word * sizeof(capnp::word), far.size(), far);
    const std::string name = type + "." + field.getProto().getName().cStr();
    EXPECT_FALSE(std::holds_alternative<json>(PayloadToJson(type, broken))) << name;
    EXPECT_FALSE(whole(broken)) << name;
  }
  EXPECT_GT(pointers, 0) << type;
}

TEST(PayloadTest, ReadsWholeFollowsEveryPointerFieldOfTheTypesReadInPart) {
  ExpectReadsWholeFollowsEveryPointer<ev::DocumentReviewed>("DocumentReviewed");
  ExpectReadsWholeFollowsEveryPointer<ev::SiteInspected>("SiteInspected");
  ExpectReadsWholeFollowsEveryPointer<ev::CallbackMade>("CallbackMade");
  ExpectReadsWholeFollowsEveryPointer<ev::Urged>("Urged");
  ExpectReadsWholeFollowsEveryPointer<ev::TrainingHeld>("TrainingHeld");
}

}  // namespace
}  // namespace gridledger::domain
