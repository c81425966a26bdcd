// Seeded mutation fuzzing of the decoders that take untrusted bytes: client JSON events
// (DecodeClientEvent), stored payloads (PayloadToJson, DecodeWorkflowEvent). Every input must
// give a value or a named error — never a crash, a hang or an exception — and a decoded event
// must encode back to a payload that decodes again. Deterministic: the same seeds every run, so a
// failure reproduces; the seed is in the failure message.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "domain/event_json.h"
#include "domain/workflow.h"

namespace gridledger::domain {
namespace {

std::vector<std::string> SeedEvents() {
  std::ifstream in(std::string(GRIDLEDGER_SOURCE_DATA_DIR) +
                   "/../../examples/sample-application.jsonl");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// One random edit: flip a byte, insert or delete a run, duplicate a slice, or splice a token that
// tends to reach deeper parser states.
std::string Mutate(std::string text, std::mt19937_64& random) {
  static const std::vector<std::string> kTokens = {"\"",
                                                   "{",
                                                   "}",
                                                   "[",
                                                   "]",
                                                   ",",
                                                   ":",
                                                   "null",
                                                   "true",
                                                   "-1",
                                                   "1e309",
                                                   "\\u0000",
                                                   "\\ud800",
                                                   "\"data\":{}",
                                                   "\"expected_version\":-2",
                                                   "\"occurred_at\":\"2026-02-30T25:00:00+08:00\"",
                                                   "\"type\":\"Archived\"",
                                                   "\"stream\":\"app/\"",
                                                   "99999999999999999999",
                                                   "\xff\xfe",
                                                   "\xe4\xb8"};
  const int edits = 1 + static_cast<int>(random() % 4);
  for (int i = 0; i < edits; ++i) {
    const size_t at = text.empty() ? 0 : random() % (text.size() + 1);
    switch (random() % 5) {
      case 0:
        if (!text.empty()) text[at % text.size()] = static_cast<char>(random() & 0xff);
        break;
      case 1:
        text.insert(at, kTokens[random() % kTokens.size()]);
        break;
      case 2:
        text.erase(at, random() % 16);
        break;
      case 3: {
        const size_t from = text.empty() ? 0 : random() % text.size();
        text.insert(at, text.substr(from, random() % 32));
        break;
      }
      default:
        text.resize(at);  // truncation
    }
  }
  return text;
}

TEST(DecoderFuzzTest, MutatedClientEventsDecodeOrFailWithANamedError) {
  const std::vector<std::string> seeds = SeedEvents();
  ASSERT_FALSE(seeds.empty());
  std::mt19937_64 random(20261128);
  size_t decoded = 0;
  size_t refused = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::string input = Mutate(seeds[random() % seeds.size()], random);
    auto result = DecodeClientEvent(std::string_view(input));
    if (auto* error = std::get_if<DecodeError>(&result)) {
      ++refused;
      EXPECT_FALSE(error->rule.empty()) << "round " << round << ": " << input;
      EXPECT_FALSE(error->message.empty()) << "round " << round << ": " << input;
      continue;
    }
    ++decoded;
    const ClientEvent& event = std::get<ClientEvent>(result);
    // What was accepted must read back: the payload renders to JSON and decodes as a workflow
    // event when its type is one.
    auto rendered = PayloadToJson(event.type, event.payload);
    EXPECT_TRUE(std::holds_alternative<nlohmann::json>(rendered))
        << "round " << round << ": " << input;
  }
  // The mutations must exercise both outcomes, or the test proves little.
  EXPECT_GT(decoded, 100u);
  EXPECT_GT(refused, 10000u);
}

TEST(DecoderFuzzTest, MutatedStoredPayloadsNeverCrashTheReaders) {
  const std::vector<std::string> seeds = SeedEvents();
  std::vector<std::pair<std::string, std::string>> payloads;  // type, payload
  for (const std::string& line : seeds) {
    auto result = DecodeClientEvent(std::string_view(line));
    ASSERT_TRUE(std::holds_alternative<ClientEvent>(result)) << line;
    const auto& event = std::get<ClientEvent>(result);
    payloads.emplace_back(event.type, event.payload);
  }
  std::mt19937_64 random(7);
  size_t refused = 0;
  for (int round = 0; round < 20000; ++round) {
    const auto& [type, payload] = payloads[random() % payloads.size()];
    std::string bytes = payload;
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips && !bytes.empty(); ++i) {
      bytes[random() % bytes.size()] = static_cast<char>(random() & 0xff);
    }
    if (random() % 8 == 0) bytes.resize(random() % (bytes.size() + 1));
    auto rendered = PayloadToJson(type, bytes);
    if (auto* error = std::get_if<DecodeError>(&rendered)) {
      ++refused;
      EXPECT_EQ(error->field, "payload") << "round " << round;
    }
    auto workflow = DecodeWorkflowEvent(type, bytes);
    if (auto* breach = std::get_if<RuleBreach>(&workflow)) {
      EXPECT_FALSE(breach->rule.empty()) << "round " << round;
    }
  }
  EXPECT_GT(refused, 100u);
}

}  // namespace
}  // namespace gridledger::domain
