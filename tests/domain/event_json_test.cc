// Goal: the JSON <-> Cap'n Proto mapping of domain/event_json.h accepts exactly the event contract
// of shared/domain.md and gives back what it was given.
// Method: a table with valid samples of every event type is decoded and rendered back (round
// trip); then one test per rejection rule mutates a valid event and asserts the rule and the field
// path of the error; timestamps are checked on calendar edge cases and against known Unix times;
// finally every truncation of a valid event must come back as an error, never as an exception.
#include "domain/event_json.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace gridledger::domain {
namespace {

using nlohmann::json;

struct Sample {
  std::string type;
  std::string stream;
  std::string data;  // JSON object text
};

// At least one valid sample per type; types with optional fields have one with and one without.
const std::vector<Sample>& Samples() {
  static const std::vector<Sample> kSamples = {
      {"ApplicationAccepted", "app/KM-2026-000123",
       R"({"customer_id": "C-0001", "customer_name": "昆明某某置业有限公司",
           "customer_class": "hv_single", "business": "new_install", "voltage_kv": 10,
           "capacity_kva": 800, "channel": "counter", "important": true, "three_zero": false})"},
      {"ApplicationAccepted", "app/KM-2026-000124",
       R"({"customer_id": "C-0002", "customer_name": "Shop", "customer_class": "lv_nonresidential",
           "business": "change", "change_kind": "capacity_reduction", "voltage_kv": 0.4,
           "capacity_kva": 50.5, "channel": "online", "important": false, "three_zero": true})"},
      {"SurveyDispatched", "app/KM-2026-000123", R"({"surveyor": "S2001"})"},
      {"SiteSurveyed", "app/KM-2026-000123", R"({"findings": "Line 12 has spare capacity"})"},
      {"SchemeReplied", "app/KM-2026-000123",
       R"({"scheme": "10kV single source from 10kV Line 12, metering at HV side"})"},
      {"FeesSettled", "app/KM-2026-000123", R"({"amount_cny": 12800.5})"},
      {"DesignSubmitted", "app/KM-2026-000123", "{}"},
      {"DesignReviewed", "app/KM-2026-000123",
       R"({"result": "fail", "defects": ["no earthing drawing", "wrong CT ratio"]})"},
      {"DesignReviewed", "app/KM-2026-000123", R"({"result": "pass"})"},
      {"MidInspectionRequested", "app/KM-2026-000123", "{}"},
      {"MidInspected", "app/KM-2026-000123", R"({"result": "pass", "defects": []})"},
      {"CompletionReported", "app/KM-2026-000123", "{}"},
      {"CompletionInspected", "app/KM-2026-000123", R"({"result": "pass"})"},
      {"ContractSigned", "app/KM-2026-000123", R"({"contract_id": "HT-2026-0042"})"},
      {"MeterConnected", "app/KM-2026-000123", R"({"meter_id": "M-5300012345"})"},
      {"ChangeExecuted", "app/KM-2026-000124", R"({"summary": "reduced from 800 to 500 kVA"})"},
      {"Archived", "app/KM-2026-000123", "{}"},
      {"ClockPaused", "app/KM-2026-000123",
       R"({"reason": "customer_documents_missing", "note": "waiting for land certificate"})"},
      {"ClockPaused", "app/KM-2026-000123", R"({"reason": "customer asked to wait"})"},
      {"ClockResumed", "app/KM-2026-000123", "{}"},
      {"Urged", "app/KM-2026-000123",
       R"({"level": 2, "to_org": "KM.DESIGN", "to_person": "E3002", "channel": "phone",
           "note": "scheme reply is 3 days late", "committed_date": "2026-03-10"})"},
      {"Urged", "app/KM-2026-000123",
       R"({"level": 1, "to_org": "KM.DESIGN", "to_person": "E3002", "channel": "system notice"})"},
      {"Reassigned", "app/KM-2026-000123", R"({"to": "S1002"})"},
      {"Withdrawn", "app/KM-2026-000123", R"({"reason": "customer cancelled the project"})"},
      {"Corrected", "app/KM-2026-000123",
       R"({"corrects_position": 42, "reason": "typo in the name",
           "fields": {"customer_name": "昆明某某置业有限公司", "capacity_kva": 630,
                      "nested": {"list": [1, 2.5, null, true]}}})"},
      {"Corrected", "app/KM-2026-000123",
       R"({"corrects_position": 7, "reason": "nothing to change", "fields": {}})"},
      {"DocumentReviewed", "app/KM-2026-000123",
       R"({"reviewer": "A1001", "items": [{"item": "id_card", "present": true, "correct": true},
           {"item": "land_certificate", "present": false, "correct": false}],
           "conclusion": "fail", "defects": ["land certificate missing"]})"},
      {"SiteInspected", "app/KM-2026-000123",
       R"({"inspector": "I1001", "items": ["metering cabinet", "earthing"],
           "conclusion": "pass"})"},
      {"CallbackMade", "app/KM-2026-000123",
       R"({"agent": "CB01", "result": "reached", "satisfaction": "satisfied",
           "complaints": ["late", "improper_fee", "designated_contractor"], "comment": "ok"})"},
      {"CallbackMade", "app/KM-2026-000123", R"({"agent": "CB01", "result": "no_answer"})"},
      {"CallbackMade", "app/KM-2026-000123",
       R"({"agent": "CB01", "result": "reached", "satisfaction": "basically_satisfied"})"},
      {"ReportDue", "report/monthly_expansion/2026-03",
       R"({"report_type": "monthly_expansion", "period": "2026-03", "due_date": "2026-04-05"})"},
      {"ReportSubmitted", "report/monthly_expansion/2026-03", "{}"},
      {"ReportCorrected", "report/monthly_expansion/2026-03", R"({"errors_found": 2})"},
      {"ThirdPartySurveyRecorded", "survey/2026-Q1",
       R"({"agency": "Yunnan Survey Co.", "sample_size": 400, "satisfaction_index": 92.5,
           "issues": ["slow scheme reply"]})"},
      {"TrainingHeld", "staff/S1001",
       R"({"topic": "time limits 2026", "attendees": ["S1001", "S1002"], "hours": 2.5})"},
      {"SensitiveDataAccessed", "staff/S1001",
       R"({"what": "phone number of customer C-0001", "approved_by": "D0001"})"},
      {"SensitiveDataAccessed", "staff/S1001", R"({"what": "address of customer C-0002"})"},
  };
  return kSamples;
}

json Envelope(const std::string& type, const std::string& stream, const json& data) {
  return json{{"stream", stream},
              {"type", type},
              {"event_id", "evt-0001"},
              {"expected_version", 3},
              {"occurred_at", "2026-03-02T09:15:00+08:00"},
              {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", "KM.XS"}}},
              {"data", data}};
}

json ValidEvent() {
  const Sample& sample = Samples().front();
  return Envelope(sample.type, sample.stream, json::parse(sample.data));
}

DecodeError ExpectError(const json& event) {
  Decoded<ClientEvent> decoded = DecodeClientEvent(event.dump());
  if (auto* error = std::get_if<DecodeError>(&decoded)) return *error;
  ADD_FAILURE() << "accepted: " << event.dump();
  return {};
}

void ExpectRejected(const json& event, const std::string& rule, const std::string& field) {
  const DecodeError error = ExpectError(event);
  EXPECT_EQ(error.rule, rule) << error.message;
  EXPECT_EQ(error.field, field) << error.message;
  EXPECT_NE(error.message.find(field), std::string::npos) << error.message;
}

ClientEvent ExpectDecoded(const json& event) {
  Decoded<ClientEvent> decoded = DecodeClientEvent(event.dump());
  if (auto* error = std::get_if<DecodeError>(&decoded)) {
    ADD_FAILURE() << error->rule << " " << error->message << " in " << event.dump();
    return {};
  }
  return std::get<ClientEvent>(decoded);
}

json ExpectRendered(const std::string& type, const std::string& payload) {
  Decoded<json> rendered = PayloadToJson(type, payload);
  if (auto* error = std::get_if<DecodeError>(&rendered)) {
    ADD_FAILURE() << error->rule << " " << error->message;
    return {};
  }
  return std::get<json>(rendered);
}

// ---- Round trip and schema coverage ----

TEST(EventJsonSchema, KnownTypesAreExactlyTheDomainTypes) {
  const std::set<std::string> expected = {"ApplicationAccepted",
                                          "SurveyDispatched",
                                          "SiteSurveyed",
                                          "SchemeReplied",
                                          "FeesSettled",
                                          "DesignSubmitted",
                                          "DesignReviewed",
                                          "MidInspectionRequested",
                                          "MidInspected",
                                          "CompletionReported",
                                          "CompletionInspected",
                                          "ContractSigned",
                                          "MeterConnected",
                                          "ChangeExecuted",
                                          "Archived",
                                          "ClockPaused",
                                          "ClockResumed",
                                          "Urged",
                                          "Reassigned",
                                          "Withdrawn",
                                          "Corrected",
                                          "DocumentReviewed",
                                          "SiteInspected",
                                          "CallbackMade",
                                          "ReportDue",
                                          "ReportSubmitted",
                                          "ReportCorrected",
                                          "ThirdPartySurveyRecorded",
                                          "TrainingHeld",
                                          "SensitiveDataAccessed"};
  const std::vector<std::string> known = KnownTypes();
  EXPECT_EQ(std::set<std::string>(known.begin(), known.end()), expected);
  EXPECT_EQ(known.size(), expected.size());
  for (const std::string& type : expected) EXPECT_TRUE(IsKnownType(type)) << type;
  EXPECT_FALSE(IsKnownType("schemeReplied"));
  EXPECT_FALSE(IsKnownType("Range"));  // a helper struct of the schema, not an event
  EXPECT_FALSE(IsKnownType("EventRegistry"));
  EXPECT_FALSE(IsKnownType(""));
}

TEST(EventJsonSchema, StreamKindsFollowTheDomain) {
  EXPECT_EQ(StreamKindOfType("SchemeReplied"), "app");
  EXPECT_EQ(StreamKindOfType("CallbackMade"), "app");
  EXPECT_EQ(StreamKindOfType("ReportDue"), "report");
  EXPECT_EQ(StreamKindOfType("ThirdPartySurveyRecorded"), "survey");
  EXPECT_EQ(StreamKindOfType("TrainingHeld"), "staff");
  EXPECT_EQ(StreamKindOfType("Nope"), "");
}

TEST(EventJsonRoundTrip, EverySampleRendersBackToItsData) {
  std::set<std::string> covered;
  for (const Sample& sample : Samples()) {
    SCOPED_TRACE(sample.type + " " + sample.data);
    const json data = json::parse(sample.data);
    const ClientEvent event = ExpectDecoded(Envelope(sample.type, sample.stream, data));
    EXPECT_EQ(event.type, sample.type);
    EXPECT_EQ(ExpectRendered(sample.type, event.payload), data);
    covered.insert(sample.type);
  }
  const std::vector<std::string> known = KnownTypes();
  EXPECT_EQ(covered, std::set<std::string>(known.begin(), known.end()));
}

TEST(EventJsonRoundTrip, EnvelopeFieldsAreDecoded) {
  json event = ValidEvent();
  event["import"] = true;
  const ClientEvent decoded = ExpectDecoded(event);
  EXPECT_EQ(decoded.stream, "app/KM-2026-000123");
  EXPECT_EQ(decoded.type, "ApplicationAccepted");
  EXPECT_EQ(decoded.event_id, "evt-0001");
  EXPECT_EQ(decoded.expected_version, 3);
  EXPECT_EQ(decoded.occurred_at_us, 1772414100LL * 1'000'000);
  EXPECT_EQ(decoded.occurred_at_offset_minutes, 480);
  EXPECT_EQ(decoded.actor.id, "S1001");
  EXPECT_EQ(decoded.actor.role, "clerk");
  EXPECT_EQ(decoded.actor.org, "KM.XS");
  EXPECT_EQ(decoded.extra, (json{{"import", true}}));
}

TEST(EventJsonRoundTrip, OptionalEnvelopeKeysMayBeAbsent) {
  json event = ValidEvent();
  event.erase("expected_version");
  const ClientEvent decoded = ExpectDecoded(event);
  EXPECT_FALSE(decoded.expected_version.has_value());
  EXPECT_TRUE(decoded.extra.is_object());
  EXPECT_TRUE(decoded.extra.empty());
  event["expected_version"] = -1;
  EXPECT_EQ(ExpectDecoded(event).expected_version, -1);
}

TEST(EventJsonRoundTrip, PayloadIsOneSegmentAndDeterministic) {
  // The same data written in another key order must give the same bytes (idempotent retries
  // compare payloads).
  const Sample& sample = Samples().front();
  const json data = json::parse(sample.data);
  const std::string first = ExpectDecoded(Envelope(sample.type, sample.stream, data)).payload;
  std::string reordered_text = "{";
  std::vector<std::string> keys;
  for (const auto& [key, value] : data.items()) keys.push_back(key);
  std::reverse(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    reordered_text +=
        (reordered_text.size() > 1 ? "," : "") + json(key).dump() + ":" + data[key].dump();
  }
  reordered_text += "}";
  const std::string text = R"({"data":)" + reordered_text + R"(,"type":")" + sample.type +
                           R"(","stream":")" + sample.stream +
                           R"(","event_id":"evt-0001","occurred_at":"2026-03-02T09:15:00+08:00",)"
                           R"("actor":{"org":"KM.XS","role":"clerk","id":"S1001"}})";
  Decoded<ClientEvent> second = DecodeClientEvent(text);
  ASSERT_TRUE(std::holds_alternative<ClientEvent>(second));
  EXPECT_EQ(std::get<ClientEvent>(second).payload, first);
  ASSERT_GE(first.size(), 8u);
  EXPECT_EQ(first.substr(0, 4), std::string(4, '\0'));  // segment count - 1 == 0
}

TEST(EventJsonRoundTrip, OptionalEnumWithZeroValueIsKeptApartFromAbsent) {
  // "satisfied" and "capacity_reduction" are enumerant 0, the same bits as "not given": the
  // has<Name> companion must tell them apart.
  const json with = {{"agent", "CB01"}, {"result", "reached"}, {"satisfaction", "satisfied"}};
  const json without = {{"agent", "CB01"}, {"result", "no_answer"}};
  EXPECT_EQ(ExpectRendered("CallbackMade",
                           ExpectDecoded(Envelope("CallbackMade", "app/A1", with)).payload),
            with);
  EXPECT_EQ(ExpectRendered("CallbackMade",
                           ExpectDecoded(Envelope("CallbackMade", "app/A1", without)).payload),
            without);
}

// ---- Rejections: one rule each, with the field path ----

// Rules between fields: a reached customer's satisfaction, each attendee once, a survey's period,
// an acceptance's change kind, three_zero and voltage.
// The first sample's data (an hv_single new install) with `changes` merged in.
json Accepted(const json& changes) {
  json data = json::parse(Samples().front().data);
  data.update(changes);
  return data;
}

TEST(EventJsonReject, RulesBetweenFieldsOfOneEvent) {
  struct Case {
    std::string type, stream;
    json data;
    std::string field, rule;
  };
  const std::vector<Case> cases = {
      {"CallbackMade",
       "app/A1",
       {{"agent", "CB01"}, {"result", "reached"}},
       "data.satisfaction",
       "missing_field"},
      {"TrainingHeld",
       "staff/D1",
       {{"topic", "safety"}, {"attendees", {"S1", "S2", "S1"}}, {"hours", 2.5}},
       "data.attendees",
       "duplicate_value"},
      {"ThirdPartySurveyRecorded",
       "survey/2026-13",
       {{"agency", "A"}, {"sample_size", 10}, {"satisfaction_index", 90}},
       "stream",
       "bad_period"},
      {"ThirdPartySurveyRecorded",
       "survey/2026Q1",
       {{"agency", "A"}, {"sample_size", 10}, {"satisfaction_index", 90}},
       "stream",
       "bad_period"},
      // A change names its kind, and only a change has one.
      {"ApplicationAccepted", "app/A1", Accepted({{"business", "change"}}), "data.change_kind",
       "missing_field"},
      {"ApplicationAccepted", "app/A1", Accepted({{"change_kind", "rename"}}), "data.change_kind",
       "bad_value"},
      // Three_zero is a low-voltage service.
      {"ApplicationAccepted", "app/A1", Accepted({{"three_zero", true}}), "data.three_zero",
       "bad_value"},
      {"ApplicationAccepted", "app/A1",
       Accepted({{"customer_class", "hv_dual"}, {"three_zero", true}}), "data.three_zero",
       "bad_value"},
      {"ApplicationAccepted", "app/A1", Accepted({{"voltage_kv", 0}}), "data.voltage_kv",
       "bad_value"},
  };
  for (const Case& c : cases) {
    Decoded<ClientEvent> decoded = DecodeClientEvent(Envelope(c.type, c.stream, c.data));
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << c.type << " " << c.data.dump();
    EXPECT_EQ(std::get<DecodeError>(decoded).field, c.field) << c.data.dump();
    EXPECT_EQ(std::get<DecodeError>(decoded).rule, c.rule) << c.data.dump();
  }
  // The same events, right, are taken.
  for (const auto& [type, stream, data] : std::vector<std::tuple<std::string, std::string, json>>{
           {"CallbackMade", "app/A1", {{"agent", "CB01"}, {"result", "refused"}}},
           {"TrainingHeld",
            "staff/D1",
            {{"topic", "safety"}, {"attendees", {"S1", "S2"}}, {"hours", 2.5}}},
           {"ThirdPartySurveyRecorded",
            "survey/2026-03",
            {{"agency", "A"}, {"sample_size", 10}, {"satisfaction_index", 90}}},
           {"ApplicationAccepted", "app/A1",
            Accepted({{"business", "change"}, {"change_kind", "rename"}})},
           {"ApplicationAccepted", "app/A1",
            Accepted(
                {{"customer_class", "residential"}, {"voltage_kv", 0.22}, {"three_zero", true}})},
           {"ApplicationAccepted", "app/A1",
            Accepted({{"customer_class", "lv_nonresidential"}, {"three_zero", true}})}}) {
    EXPECT_TRUE(
        std::holds_alternative<ClientEvent>(DecodeClientEvent(Envelope(type, stream, data))))
        << type << " " << data.dump();
  }
}

TEST(EventJsonReject, MalformedJson) {
  for (const char* text : {"{", "", "[1, 2]", "\"text\"", R"({"type": "Archived",})",
                           R"({"type": "Archived"} trailing)"}) {
    Decoded<ClientEvent> decoded = DecodeClientEvent(std::string_view(text));
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << text;
    EXPECT_EQ(std::get<DecodeError>(decoded).rule, "malformed_json") << text;
    EXPECT_EQ(std::get<DecodeError>(decoded).field, "") << text;
  }
}

TEST(EventJsonReject, DuplicateKeysAreMalformed) {
  const std::string text = ValidEvent().dump();
  const std::string doubled = "{\"type\":\"Archived\"," + text.substr(1);
  Decoded<ClientEvent> decoded = DecodeClientEvent(doubled);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).rule, "malformed_json");
  EXPECT_NE(std::get<DecodeError>(decoded).message.find("type"), std::string::npos);
}

TEST(EventJsonReject, NestingBeyondTheLimitIsMalformed) {
  json event = ValidEvent();
  event["type"] = "Corrected";
  json deep = json::object();
  for (int i = 0; i < kJsonDepthMax + 2; ++i) deep = json{{"d", deep}};
  event["data"] = {{"corrects_position", 1}, {"reason", "x"}, {"fields", deep}};
  Decoded<ClientEvent> decoded = DecodeClientEvent(event.dump());
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).rule, "malformed_json");
  // The parsed form too (a caller that parsed the text itself), however deep: refused before
  // anything walks the value recursively.
  for (int i = 0; i < 100000; ++i) deep = json::array({std::move(deep)});
  event["data"]["fields"] = json{{"d", std::move(deep)}};
  decoded = DecodeClientEvent(static_cast<const json&>(event));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).rule, "malformed_json");
}

TEST(EventJsonReject, ParseClientJsonChecksDepthAndDuplicateKeysAtAnyBound) {
  EXPECT_TRUE(std::holds_alternative<json>(ParseClientJson("[[[1]]]", 3)));
  auto deep = ParseClientJson("[[[[1]]]]", 3);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(deep));
  EXPECT_EQ(std::get<DecodeError>(deep).rule, "malformed_json");
  auto twice = ParseClientJson(R"([{"a": 1}, {"b": {"c": 1, "c": 2}}])", 16);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(twice));
  EXPECT_NE(std::get<DecodeError>(twice).message.find("\"c\""), std::string::npos);
  // The same key in two objects is no duplicate.
  EXPECT_TRUE(std::holds_alternative<json>(ParseClientJson(R"([{"a": 1}, {"a": 2}])", 16)));
}

// A payload the ledger would refuse is refused by the decoder, naming `data` and the bound.
TEST(EventJsonReject, PayloadOverTheLedgersBoundNamesData) {
  json event = ValidEvent();
  event["type"] = "SiteInspected";
  json items = json::array();
  for (int i = 0; i < 10; ++i) items.push_back(std::string(8000, 'x'));  // each within its bound
  event["data"] = {{"inspector", "I1"}, {"items", items}, {"conclusion", "pass"}};
  const DecodeError error = ExpectError(event);
  EXPECT_EQ(error.field, "data");
  EXPECT_EQ(error.rule, "bad_value");
  EXPECT_NE(error.message.find(std::to_string(kPayloadBytesMax)), std::string::npos)
      << error.message;
}

TEST(EventJsonReject, UnknownType) {
  for (const char* type : {"SchemeAnswered", "schemeReplied", "Range", "EventRegistry", ""}) {
    json event = ValidEvent();
    event["type"] = type;
    ExpectRejected(event, "unknown_type", "type");
  }
}

// Text that is not UTF-8 (a GBK export) is said to be that, not "not valid JSON"; text that is
// UTF-8 but not JSON still is.
TEST(EventJsonReject, TextThatIsNotUtf8IsSaidToBeSo) {
  const std::string gbk = R"({"stream":"app/X","data":{"customer_name":")"
                          "\xc0\xa5\xc3\xf7"
                          R"("}})";
  auto decoded = DecodeClientEvent(gbk);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  const DecodeError& error = std::get<DecodeError>(decoded);
  EXPECT_EQ(error.rule, "malformed_json");
  EXPECT_NE(error.message.find("not UTF-8"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("GBK/GB18030"), std::string::npos) << error.message;
  auto broken = DecodeClientEvent(std::string_view("{\"stream\":"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(broken));
  EXPECT_EQ(std::get<DecodeError>(broken).message, "the text is not valid JSON");
}

// The refusal names the value sent and the types there are, so the client sees its typo.
TEST(EventJsonReject, UnknownTypeIsNamedWithTheKnownTypes) {
  json event = ValidEvent();
  event["type"] = "SchemeAnswered";
  const DecodeError error = ExpectError(event);
  EXPECT_NE(error.message.find("\"SchemeAnswered\" is not an event type"), std::string::npos)
      << error.message;
  EXPECT_NE(error.message.find("SchemeReplied"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("SensitiveDataAccessed"), std::string::npos) << error.message;
  // A long value is cut, on a character boundary.
  event["type"] = std::string(63, 'x') + "型号";
  const DecodeError long_type = ExpectError(event);
  EXPECT_NE(long_type.message.find("\"" + std::string(63, 'x') + "…\""), std::string::npos)
      << long_type.message;
  EXPECT_FALSE(json::parse(json(long_type.message).dump()).is_discarded());
}

TEST(EventJsonReject, UnknownFieldInEnvelopeActorAndData) {
  json event = ValidEvent();
  event["recorded_at"] = "2026-03-02T09:15:00+08:00";
  ExpectRejected(event, "unknown_field", "recorded_at");

  event = ValidEvent();
  event["actor"]["name"] = "Zhang San";
  ExpectRejected(event, "unknown_field", "actor.name");

  event = ValidEvent();
  event["data"]["customerClass"] = "hv_single";  // camelCase is not the contract
  ExpectRejected(event, "unknown_field", "data.customerClass");

  event = ValidEvent();
  event["data"]["has_change_kind"] = true;  // the presence companion is not a JSON key
  ExpectRejected(event, "unknown_field", "data.has_change_kind");

  event = Envelope("DocumentReviewed", "app/A1",
                   {{"reviewer", "A1"},
                    {"items", {{{"item", "id"}, {"present", true}, {"correct", true}, {"x", 1}}}},
                    {"conclusion", "pass"}});
  ExpectRejected(event, "unknown_field", "data.items[0].x");
}

// domain.md: "data fields are the minimum; more are welcome". Keys beyond the type's own are
// stored and rendered back beside them, in a deterministic form; misspelt fields, the schema's
// hidden flags and unknown keys inside list items are still refused.
TEST(EventJsonRoundTrip, DataKeysBeyondTheTypesOwnAreKept) {
  const json data = {{"scheme", "10kV single source"},
                     {"legacy_no", "YX-2019-0042"},
                     {"zone", {{"grid", "KM-7"}, {"feeders", {12, 14}}}},
                     {"备注", "客户要求加急"}};
  const ClientEvent decoded = ExpectDecoded(Envelope("SchemeReplied", "app/A1", data));
  EXPECT_EQ(ExpectRendered("SchemeReplied", decoded.payload), data);
  // Another key order, the same bytes (retries compare payloads).
  const std::string reordered =
      R"({"stream":"app/A1","type":"SchemeReplied","event_id":"evt-0001","expected_version":3,)"
      R"("occurred_at":"2026-03-02T09:15:00+08:00",)"
      R"("actor":{"id":"S1001","role":"clerk","org":"KM.XS"},)"
      R"("data":{"备注":"客户要求加急","zone":{"feeders":[12,14],"grid":"KM-7"},)"
      R"("legacy_no":"YX-2019-0042","scheme":"10kV single source"}})";
  Decoded<ClientEvent> again = DecodeClientEvent(reordered);
  ASSERT_TRUE(std::holds_alternative<ClientEvent>(again));
  EXPECT_EQ(std::get<ClientEvent>(again).payload, decoded.payload);
  // Whole numbers are the same content however a client writes them (1 or 1.0).
  json with_float = data;
  with_float["count"] = 1.0;
  json with_integer = data;
  with_integer["count"] = 1;
  EXPECT_EQ(ExpectDecoded(Envelope("SchemeReplied", "app/A1", with_float)).payload,
            ExpectDecoded(Envelope("SchemeReplied", "app/A1", with_integer)).payload);
  // A type without fields of its own keeps them too.
  const json archived = {{"box", "A-17"}};
  EXPECT_EQ(
      ExpectRendered("Archived", ExpectDecoded(Envelope("Archived", "app/A1", archived)).payload),
      archived);
  // Without extra keys the payload is what it always was: nothing stored for them.
  const json plain = {{"scheme", "s"}};
  EXPECT_EQ(ExpectRendered("SchemeReplied",
                           ExpectDecoded(Envelope("SchemeReplied", "app/A1", plain)).payload),
            plain);
}

TEST(EventJsonReject, MisspeltAndHiddenKeysAreNotExtraData) {
  json event = Envelope("SchemeReplied", "app/A1", {{"schem", "s"}});
  DecodeError error = ExpectError(event);
  EXPECT_EQ(error.rule, "unknown_field");
  EXPECT_EQ(error.field, "data.schem");
  EXPECT_NE(error.message.find("did you mean scheme?"), std::string::npos) << error.message;
  ExpectRejected(Envelope("SchemeReplied", "app/A1", {{"scheme", "s"}, {"Scheme", "t"}}),
                 "unknown_field", "data.Scheme");
  // Swapped neighbours, a letter too many, another letter: optional fields are not lost to extras.
  ExpectRejected(
      Envelope("CallbackMade", "app/A1",
               {{"agent", "A1"}, {"result", "no_answer"}, {"satisfcation", "satisfied"}}),
      "unknown_field", "data.satisfcation");
  ExpectRejected(Envelope("Urged", "app/A1",
                          {{"level", 1},
                           {"to_org", "KM.XS"},
                           {"to_person", "Li"},
                           {"channel", "phone"},
                           {"commited_date", "2026-03-05"}}),
                 "unknown_field", "data.commited_date");
  ExpectRejected(
      Envelope("SensitiveDataAccessed", "staff/S1", {{"what", "app/A1"}, {"approvad_by", "D1"}}),
      "unknown_field", "data.approvad_by");
  // A field cut short, and a hidden name in another case, are not extra keys either.
  ExpectRejected(
      Envelope("SensitiveDataAccessed", "staff/S1", {{"what", "app/A1"}, {"approved", "D1"}}),
      "unknown_field", "data.approved");
  ExpectRejected(Envelope("CallbackMade", "app/A1",
                          {{"agent", "A1"}, {"result", "no_answer"}, {"hasSatisfaction", true}}),
                 "unknown_field", "data.hasSatisfaction");
  ExpectRejected(Envelope("SchemeReplied", "app/A1", {{"scheme", "s"}, {"extra", "x"}}),
                 "unknown_field", "data.extra");
  // Built in code (text input is checked by the parser), so it goes in as a json value.
  const std::string bad_utf8 = "\xff";
  Decoded<ClientEvent> decoded =
      DecodeClientEvent(Envelope("SchemeReplied", "app/A1", {{"scheme", "s"}, {"note", bad_utf8}}));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).rule, "bad_value");
  EXPECT_EQ(std::get<DecodeError>(decoded).field, "data.note");
}

TEST(EventJsonReject, MissingRequiredField) {
  for (const char* key : {"stream", "type", "event_id", "occurred_at", "actor", "data"}) {
    json event = ValidEvent();
    event.erase(key);
    ExpectRejected(event, "missing_field", key);
  }
  json event = ValidEvent();
  event["actor"].erase("org");
  ExpectRejected(event, "missing_field", "actor.org");

  event = ValidEvent();
  event["data"].erase("customer_class");
  ExpectRejected(event, "missing_field", "data.customer_class");

  event = Envelope("ClockPaused", "app/A1", {{"note", "no reason given"}});
  ExpectRejected(event, "missing_field", "data.reason");

  event = Envelope("DocumentReviewed", "app/A1",
                   {{"reviewer", "A1"},
                    {"items", {{{"item", "id"}, {"present", true}}}},
                    {"conclusion", "pass"}});
  ExpectRejected(event, "missing_field", "data.items[0].correct");
}

TEST(EventJsonReject, WrongJsonType) {
  struct Case {
    const char* path;
    json value;
  };
  for (const Case& c : std::vector<Case>{{"/data/voltage_kv", "10"},
                                         {"/data/important", 1},
                                         {"/data/customer_class", 2},
                                         {"/data/customer_name", nullptr},
                                         {"/expected_version", "3"},
                                         {"/expected_version", 3.0},
                                         {"/event_id", 17},
                                         {"/actor", "S1001"},
                                         {"/actor/role", json::array()},
                                         {"/data", json::array()},
                                         {"/import", "yes"}}) {
    json event = ValidEvent();
    event[json::json_pointer(c.path)] = c.value;
    std::string field = std::string(c.path).substr(1);
    std::replace(field.begin(), field.end(), '/', '.');
    ExpectRejected(event, "wrong_type", field);
  }
  json event = Envelope("DesignReviewed", "app/A1", {{"result", "fail"}, {"defects", "none"}});
  ExpectRejected(event, "wrong_type", "data.defects");
  event = Envelope("DesignReviewed", "app/A1", {{"result", "fail"}, {"defects", {"a", 2}}});
  ExpectRejected(event, "wrong_type", "data.defects[1]");
  event = Envelope("Urged", "app/A1",
                   {{"level", 1.0}, {"to_org", "O"}, {"to_person", "P"}, {"channel", "phone"}});
  ExpectRejected(event, "wrong_type", "data.level");
  event = Envelope("Corrected", "app/A1",
                   {{"corrects_position", 3}, {"reason", "r"}, {"fields", "customer_name=x"}});
  ExpectRejected(event, "wrong_type", "data.fields");
}

TEST(EventJsonReject, BadEnumValue) {
  json event = ValidEvent();
  event["data"]["customer_class"] = "commercial";
  const DecodeError error = ExpectError(event);
  EXPECT_EQ(error.rule, "bad_value");
  EXPECT_EQ(error.field, "data.customer_class");
  EXPECT_NE(error.message.find("residential|lv_nonresidential|hv_single|hv_dual"),
            std::string::npos);

  event = ValidEvent();
  event["data"]["customer_class"] = "HV_SINGLE";
  ExpectRejected(event, "bad_value", "data.customer_class");

  event = Envelope("CallbackMade", "app/A1",
                   {{"agent", "CB"}, {"result", "reached"}, {"complaints", {"late", "rude"}}});
  ExpectRejected(event, "bad_value", "data.complaints[1]");

  event = ValidEvent();
  event["actor"]["role"] = "superuser";
  ExpectRejected(event, "bad_value", "actor.role");
}

TEST(EventJsonReject, BadDate) {
  for (const char* date : {"2026-02-29", "2026-13-01", "2026-4-5", "2026-04-05T00:00:00Z", ""}) {
    json event = Envelope("ReportDue", "report/monthly/2026-03",
                          {{"report_type", "monthly"}, {"period", "2026-03"}, {"due_date", date}});
    ExpectRejected(event, "bad_value", "data.due_date");
  }
  json event = Envelope("Urged", "app/A1",
                        {{"level", 1},
                         {"to_org", "O"},
                         {"to_person", "P"},
                         {"channel", "phone"},
                         {"committed_date", "2026-06-31"}});
  ExpectRejected(event, "bad_value", "data.committed_date");
}

TEST(EventJsonReject, OtherBadValues) {
  json event = Envelope("Urged", "app/A1",
                        {{"level", 4}, {"to_org", "O"}, {"to_person", "P"}, {"channel", "phone"}});
  ExpectRejected(event, "bad_value", "data.level");
  event = Envelope("FeesSettled", "app/A1", {{"amount_cny", -5}});
  ExpectRejected(event, "bad_value", "data.amount_cny");
  event = Envelope("ReportCorrected", "report/m/2026-03", {{"errors_found", 5'000'000'000LL}});
  ExpectRejected(event, "bad_value", "data.errors_found");
  event = Envelope("Withdrawn", "app/A1", {{"reason", ""}});  // required text must say something
  ExpectRejected(event, "bad_value", "data.reason");
  event = Envelope("Withdrawn", "app/A1", {{"reason", std::string(kTextBytesMax + 1, 'x')}});
  ExpectRejected(event, "bad_value", "data.reason");
  event = Envelope("Withdrawn", "app/A1", {{"reason", std::string("a\0b", 3)}});
  ExpectRejected(event, "bad_value", "data.reason");
  event = Envelope(
      "TrainingHeld", "staff/S1",
      {{"topic", "t"}, {"attendees", json(std::vector<std::string>(257, "S"))}, {"hours", 1}});
  ExpectRejected(event, "bad_value", "data.attendees");

  event = ValidEvent();
  event["expected_version"] = -2;
  ExpectRejected(event, "bad_value", "expected_version");
  event["expected_version"] = 18446744073709551615ULL;
  ExpectRejected(event, "bad_value", "expected_version");
  for (const std::string& id :
       {std::string(""), std::string(129, 'e'), std::string("a b"), std::string("é")}) {
    event = ValidEvent();
    event["event_id"] = id;
    ExpectRejected(event, "bad_value", "event_id");
  }
  event = ValidEvent();
  event["actor"]["org"] = "KM/XS";
  ExpectRejected(event, "bad_value", "actor.org");
}

TEST(EventJsonReject, BadTimestamp) {
  for (const char* text : {"2026-03-02T09:15:00", "2026-03-02 09:15:00+08:00", "2026-03-02",
                           "2026-02-30T09:15:00+08:00", "1772414100"}) {
    json event = ValidEvent();
    event["occurred_at"] = text;
    ExpectRejected(event, "bad_timestamp", "occurred_at");
  }
}

TEST(EventJsonReject, BadStream) {
  struct Case {
    const char* type;
    const char* stream;
  };
  for (const Case& c : std::vector<Case>{{"SchemeReplied", "report/monthly/2026-03"},
                                         {"SchemeReplied", "app/"},
                                         {"SchemeReplied", "app"},
                                         {"SchemeReplied", "app/a/b"},
                                         {"SchemeReplied", "app/KM 1"},
                                         {"SchemeReplied", "apps/KM1"},
                                         {"SchemeReplied", "/app/KM1"},
                                         {"ReportDue", "report/monthly"},
                                         {"ReportDue", "report//2026-03"},
                                         {"ReportDue", "report/monthly/2026-03/"},
                                         {"ThirdPartySurveyRecorded", "staff/2026Q1"},
                                         {"TrainingHeld", "staff/S1\n"}}) {
    json event = ValidEvent();
    event["type"] = c.type;
    event["stream"] = c.stream;
    ExpectRejected(event, "bad_stream", "stream");
  }
  json event = ValidEvent();
  event["stream"] = "app/" + std::string(kIdBytesMax + 1, 'a');
  ExpectRejected(event, "bad_stream", "stream");
  event["stream"] = std::string("app/a\0b", 7);
  ExpectRejected(event, "bad_stream", "stream");
  event["stream"] = "app/" + std::string(kIdBytesMax, 'a');
  ExpectDecoded(event);
}

TEST(EventJsonReject, NoExceptionEscapesOnAnyTruncation) {
  // Every strict prefix of a valid event is invalid JSON; none may throw.
  const auto sample = std::find_if(Samples().begin(), Samples().end(),
                                   [](const Sample& s) { return s.type == "DocumentReviewed"; });
  ASSERT_NE(sample, Samples().end());
  const std::string text = Envelope(sample->type, sample->stream, json::parse(sample->data)).dump();
  for (size_t length = 0; length < text.size(); ++length) {
    Decoded<ClientEvent> decoded = DecodeClientEvent(std::string_view(text).substr(0, length));
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << length;
  }
  EXPECT_TRUE(std::holds_alternative<ClientEvent>(DecodeClientEvent(text)));
}

TEST(EventJsonReject, InvalidUtf8BuiltInCodeIsABadValue) {
  // Text input is checked by the parser; a json value built in code can hold any bytes.
  const std::string bad_utf8 = "\xff\xfe";
  json event =
      Envelope("Corrected", "app/A1",
               {{"corrects_position", 3}, {"reason", "r"}, {"fields", {{"name", bad_utf8}}}});
  Decoded<ClientEvent> decoded = DecodeClientEvent(event);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).rule, "bad_value");
  EXPECT_EQ(std::get<DecodeError>(decoded).field, "data.fields");

  event = Envelope("Withdrawn", "app/A1", {{"reason", bad_utf8}});
  decoded = DecodeClientEvent(event);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).field, "data.reason");
}

TEST(EventJsonReject, ErrorsSayExactlyWhatAndWhere) {
  // The whole error, message included, for errors whose wording comes from the schema (keys,
  // enumerant lists, ranges, stream kinds) and for fields of structs inside lists.
  struct Case {
    json event;
    DecodeError expected;
  };
  const json review_item = {{"item", "id"}, {"present", true}, {"correct", true}};
  json nested_wrong = review_item;
  nested_wrong["present"] = "yes";
  json nested_unknown = review_item;
  nested_unknown["has_present"] = true;
  const json urged = {{"level", 4}, {"to_org", "O"}, {"to_person", "P"}, {"channel", "phone"}};
  json report_due = Envelope("ReportDue", "report/monthly",
                             {{"report_type", "m"}, {"period", "p"}, {"due_date", "2026-04-05"}});
  json accepted = ValidEvent();
  accepted["data"]["change_kind"] = "split_up";
  const std::vector<Case> cases = {
      {Envelope(
           "DocumentReviewed", "app/A1",
           {{"reviewer", "A1"}, {"items", {review_item, nested_wrong}}, {"conclusion", "pass"}}),
       {"data.items[1].present", "wrong_type", "data.items[1].present: must be true or false"}},
      {Envelope("DocumentReviewed", "app/A1",
                {{"reviewer", "A1"}, {"items", {nested_unknown}}, {"conclusion", "pass"}}),
       {"data.items[0].has_present", "unknown_field",
        "data.items[0].has_present: is not a field of this event"}},
      {Envelope("CallbackMade", "app/A1",
                {{"agent", "CB"}, {"result", "reached"}, {"complaints", {"late", "rude"}}}),
       {"data.complaints[1]", "bad_value",
        "data.complaints[1]: must be one of late|improper_fee|designated_contractor"}},
      {accepted,
       {"data.change_kind", "bad_value",
        "data.change_kind: must be one of capacity_reduction|suspension|temporary_swap|relocation|"
        "meter_relocation|temporary_removal|rename|split|merge|closure|voltage_change|"
        "category_change"}},
      {Envelope("Urged", "app/A1", urged),
       {"data.level", "bad_value", "data.level: must be between 1 and 3"}},
      {report_due,
       {"stream", "bad_stream",
        "stream: type ReportDue belongs to a stream report/<report type>/<period>, each part "
        "1..64 of [A-Za-z0-9._:-]"}},
  };
  for (const Case& c : cases) {
    for (const Decoded<ClientEvent>& decoded :
         {DecodeClientEvent(c.event.dump()), DecodeClientEvent(c.event)}) {
      ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << c.event.dump();
      const DecodeError& error = std::get<DecodeError>(decoded);
      EXPECT_EQ(error.field, c.expected.field);
      EXPECT_EQ(error.rule, c.expected.rule);
      EXPECT_EQ(error.message, c.expected.message);
    }
  }
}

TEST(EventJsonRoundTrip, ConcurrentDecodesAgree) {
  // The decoder is called from several I/O threads and shares schema tables built on first use
  // (run this test alone, e.g. under TSan, to exercise that first use racing).
  std::vector<std::string> payloads(8);
  std::vector<std::thread> threads;
  for (std::string& payload : payloads) {
    threads.emplace_back([&payload] {
      const Sample& sample = Samples()[1];
      Decoded<ClientEvent> decoded =
          DecodeClientEvent(Envelope(sample.type, sample.stream, json::parse(sample.data)).dump());
      if (auto* event = std::get_if<ClientEvent>(&decoded)) payload = event->payload;
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& payload : payloads) {
    EXPECT_FALSE(payload.empty());
    EXPECT_EQ(payload, payloads.front());
  }
}

// ---- PayloadToJson on bad input ----

TEST(EventJsonPayload, RejectsUnknownTypeAndDamagedBytes) {
  const ClientEvent event = ExpectDecoded(ValidEvent());
  Decoded<json> rendered = PayloadToJson("Nope", event.payload);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(rendered));
  EXPECT_EQ(std::get<DecodeError>(rendered).rule, "unknown_type");
  EXPECT_EQ(std::get<DecodeError>(rendered).field, "type");

  const std::vector<std::string> damaged = {"", event.payload.substr(0, event.payload.size() - 3),
                                            event.payload.substr(0, event.payload.size() - 8),
                                            std::string(16, '\xff'),
                                            event.payload + std::string(8, '\0')};
  for (const std::string& payload : damaged) {
    rendered = PayloadToJson("ApplicationAccepted", payload);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(rendered)) << payload.size();
    EXPECT_EQ(std::get<DecodeError>(rendered).rule, "bad_value");
    EXPECT_EQ(std::get<DecodeError>(rendered).field, "payload");
  }
}

TEST(EventJsonPayload, AnotherTypesPayloadRendersWithoutCrashing) {
  // Reading bytes under the wrong type is a caller bug, but it must stay an error or a value.
  const ClientEvent event = ExpectDecoded(ValidEvent());
  for (const std::string& type : KnownTypes()) {
    Decoded<json> rendered = PayloadToJson(type, event.payload);
    if (auto* data = std::get_if<json>(&rendered)) {
      EXPECT_TRUE(data->is_object());
    }
  }
}

// ---- Timestamps ----

TEST(EventJsonTimestamp, OffsetConvertsToUtc) {
  const auto local = ParseTimestamp("2026-03-02T09:15:00+08:00");
  const auto utc = ParseTimestamp("2026-03-02T01:15:00Z");
  ASSERT_TRUE(local && utc);
  EXPECT_EQ(local->unix_us, 1772414100LL * 1'000'000);
  EXPECT_EQ(local->unix_us, utc->unix_us);
  EXPECT_EQ(local->offset_minutes, 480);
  EXPECT_EQ(utc->offset_minutes, 0);
  const auto west = ParseTimestamp("2026-03-01T19:45:00-05:30");
  ASSERT_TRUE(west);
  EXPECT_EQ(west->unix_us, local->unix_us);
  EXPECT_EQ(west->offset_minutes, -330);
}

TEST(EventJsonTimestamp, LeapDays) {
  EXPECT_TRUE(ParseTimestamp("2024-02-29T00:00:00Z"));
  EXPECT_EQ(ParseTimestamp("2024-02-29T00:00:00Z")->unix_us, 1709164800LL * 1'000'000);
  EXPECT_TRUE(ParseTimestamp("2000-02-29T12:00:00+08:00"));
  EXPECT_FALSE(ParseTimestamp("2026-02-29T12:00:00+08:00"));
  EXPECT_FALSE(ParseTimestamp("1900-02-29T12:00:00+08:00"));
  EXPECT_TRUE(IsCalendarDate("2024-02-29"));
  EXPECT_FALSE(IsCalendarDate("2100-02-29"));
}

TEST(EventJsonTimestamp, RejectsBadFields) {
  for (const char* text :
       {"2026-13-02T09:15:00+08:00", "2026-00-02T09:15:00+08:00", "2026-04-31T09:15:00+08:00",
        "2026-03-02T24:00:00+08:00", "2026-03-02T09:60:00+08:00", "2026-03-02T23:59:60Z",
        "2026-03-02T09:15+08:00", "2026-03-02T09:15:00", "2026-03-02T09:15:00+0800",
        "2026-03-02T09:15:00+24:00", "2026-03-02T09:15:00+08:60", "2026-03-02t09:15:00z",
        "2026-03-02T09:15:00.+08:00", "2026-03-02T09:15:00.1234567+08:00", "2026-03-02T09:15:00Z ",
        "0000-01-01T00:00:00Z", "２０２６-03-02T09:15:00Z"}) {
    EXPECT_FALSE(ParseTimestamp(text)) << text;
  }
}

TEST(EventJsonTimestamp, FractionsUpToMicroseconds) {
  EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:00.5Z")->unix_us, 500'000);
  EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:00.000001Z")->unix_us, 1);
  EXPECT_EQ(ParseTimestamp("1969-12-31T23:59:59.25Z")->unix_us, -750'000);
}

TEST(EventJsonTimestamp, FormatWritesOffsetAndOnlyNonZeroFraction) {
  EXPECT_EQ(FormatTimestamp(1772414100LL * 1'000'000, 480), "2026-03-02T09:15:00+08:00");
  EXPECT_EQ(FormatTimestamp(1772414100LL * 1'000'000, 0), "2026-03-02T01:15:00+00:00");
  EXPECT_EQ(FormatTimestamp(1772414100LL * 1'000'000 + 250'000, -330),
            "2026-03-01T19:45:00.250000-05:30");
  EXPECT_EQ(FormatTimestamp(-1, 0), "1969-12-31T23:59:59.999999+00:00");
}

TEST(EventJsonTimestamp, FormatThenParseIsIdentity) {
  for (const char* text : {"2026-03-02T09:15:00+08:00", "2024-02-29T23:59:59.000001+08:00",
                           "1999-12-31T23:59:59-11:30", "2026-10-01T00:00:00.123456+00:00"}) {
    const auto parsed = ParseTimestamp(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(FormatTimestamp(parsed->unix_us, parsed->offset_minutes), text);
  }
}

TEST(EventJsonDataFields, KeysAndValueKindsComeFromTheSchema) {
  using Kind = DataValueKind;
  std::vector<std::pair<std::string, Kind>> accepted;
  for (const DataField& field : DataFieldsOf("ApplicationAccepted")) {
    accepted.emplace_back(field.key, field.kind);
  }
  // hasChangeKind is change_kind's presence companion, not a key.
  const std::vector<std::pair<std::string, Kind>> expected = {
      {"customer_id", Kind::kString},    {"customer_name", Kind::kString},
      {"customer_class", Kind::kString}, {"business", Kind::kString},
      {"change_kind", Kind::kString},    {"voltage_kv", Kind::kOther},
      {"capacity_kva", Kind::kOther},    {"channel", Kind::kString},
      {"important", Kind::kBool},        {"three_zero", Kind::kBool},
      {"fees_apply", Kind::kBool},       {"customer_works", Kind::kBool}};
  EXPECT_EQ(accepted, expected);

  bool saw_fields = false;  // Corrected.fields is Text holding a JSON object: not a string
  for (const DataField& field : DataFieldsOf("Corrected")) {
    if (field.key == "fields") {
      saw_fields = true;
      EXPECT_EQ(field.kind, Kind::kOther);
    }
  }
  EXPECT_TRUE(saw_fields);
  EXPECT_TRUE(DataFieldsOf("NoSuchType").empty());
}

}  // namespace
}  // namespace gridledger::domain
