// Goal: bulk import stores exactly what one-by-one appends of the same events would store — in
// file order per stream, as declared imports, idempotently — from JSONL and from both CSV data
// mappings (RFC 4180 quoting included); reports every rejected row with its line and reason while
// the good rows of other streams are stored; refuses a bad CSV header as a whole; and appends
// different streams concurrently, never two rows of one stream at once, within its bounds.
// Method: real ledgers in temp dirs fed through Ingestor::Append (clock fixed after the events);
// fake append functions where the test must observe or control the calls (concurrency, busy,
// exceptions). Waiting is always on a condition, never a sleep.
#include "ingest/import.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "support/temp_dir.h"

namespace gridledger::ingest {
namespace {

using json = nlohmann::json;

// 2027-01-01T00:00:00Z: after every event of these tests, so none is in the future.
constexpr int64_t kNowUs = int64_t{1'798'761'600} * 1'000'000;

const std::string kSamplePath =
    std::string(GRIDLEDGER_SOURCE_DATA_DIR) + "/../../examples/sample-application.jsonl";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

std::string Event(const std::string& stream, const std::string& type, const std::string& id,
                  const std::string& occurred_at, const json& data,
                  std::optional<int64_t> expected_version = std::nullopt) {
  json event = {{"stream", stream},
                {"type", type},
                {"event_id", id},
                {"occurred_at", occurred_at},
                {"actor", {{"id", "S1"}, {"role", "clerk"}, {"org", "KM.XS"}}},
                {"data", data}};
  if (expected_version) event["expected_version"] = *expected_version;
  return event.dump();
}

json Accepted(const std::string& customer) {
  return {
      {"customer_id", customer},   {"customer_name", "甲"}, {"customer_class", "lv_nonresidential"},
      {"business", "new_install"}, {"voltage_kv", 0.4},     {"capacity_kva", 80},
      {"channel", "counter"},      {"important", false},    {"three_zero", false}};
}

// One stored event without what the ledger adds (position, recorded_at, hashes).
struct Stored {
  std::string stream;
  uint64_t version;
  std::string type;
  std::string event_id;
  int64_t occurred_at_us;
  int32_t offset_minutes;
  ledger::Actor actor;
  std::string payload;
  bool imported;
  bool operator==(const Stored&) const = default;
};

struct Imported {
  ImportSummary summary;
  std::vector<ImportRowOutcome> rows;  // as reported, in callback order
  std::vector<ImportProgress> progress;
};

Imported RunImport(const AppendFunction& append, const std::string& text, ImportFormat format,
                   ImportOptions options = {}) {
  Importer importer(append, options);
  std::istringstream in(text);
  Imported imported;
  imported.summary = importer.Run(
      in, format, [&](const ImportRowOutcome& row) { imported.rows.push_back(row); },
      [&](const ImportProgress& progress) { imported.progress.push_back(progress); }, text.size());
  return imported;
}

class LedgerImportTest : public ::testing::Test {
 protected:
  struct Target {
    testing::TempDir dir;
    std::unique_ptr<ledger::Ledger> ledger;
    std::unique_ptr<Ingestor> ingestor;
    AppendFunction append;
  };

  static std::unique_ptr<Target> NewTarget() {
    auto target = std::make_unique<Target>();
    target->ledger = std::move(ledger::Ledger::Open(target->dir.str())).value();
    target->ingestor = std::make_unique<Ingestor>(*target->ledger, [] { return kNowUs; });
    target->append = [ingestor = target->ingestor.get()](domain::ClientEvent event) {
      return ingestor->Append(std::move(event));
    };
    return target;
  }

  static std::vector<Stored> StreamEvents(const ledger::Ledger& ledger, const std::string& stream) {
    auto events = ledger.ReadStream(stream);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    std::vector<Stored> out;
    for (const ledger::StoredEvent& e : *events) {
      out.push_back({e.stream, e.version, e.type, e.event_id, e.occurred_at_us,
                     e.occurred_at_offset_minutes, e.actor, e.payload, e.imported});
    }
    return out;
  }

  static std::string RuleOf(const ImportRowOutcome& row) {
    if (!row.rejection) return "";
    if (auto* decode = std::get_if<domain::DecodeError>(&*row.rejection)) return decode->rule;
    const auto& refused = std::get<IngestError>(*row.rejection);
    return refused.rule ? refused.rule->rule : std::string(ledger::CodeName(refused.status.code()));
  }

  static std::string FieldOf(const ImportRowOutcome& row) {
    auto* decode = row.rejection ? std::get_if<domain::DecodeError>(&*row.rejection) : nullptr;
    return decode != nullptr ? decode->field : "";
  }

  std::unique_ptr<Target> target_ = NewTarget();
};

// ---- JSONL ----

TEST_F(LedgerImportTest, JsonlSampleIsStoredInFileOrderAsDeclaredImports) {
  const std::string text = ReadFile(kSamplePath);
  ASSERT_FALSE(text.empty()) << kSamplePath;
  Imported imported = RunImport(target_->append, text, ImportFormat::kJsonl);

  EXPECT_TRUE(imported.summary.ok());
  EXPECT_EQ(imported.summary.rows, 11u);
  EXPECT_EQ(imported.summary.accepted, 11u);
  EXPECT_EQ(imported.summary.duplicates, 0u);
  EXPECT_EQ(imported.summary.rejected, 0u);
  ASSERT_EQ(imported.rows.size(), 11u);
  for (size_t i = 0; i < imported.rows.size(); ++i) {
    EXPECT_EQ(imported.rows[i].line, i + 1);
    EXPECT_EQ(imported.rows[i].stream, "app/XS-2026-000123");
    ASSERT_TRUE(imported.rows[i].stored);
    EXPECT_EQ(imported.rows[i].stored->appended.version, i);
  }
  const std::vector<json> lines = JsonLines(text);
  const std::vector<Stored> stored = StreamEvents(*target_->ledger, "app/XS-2026-000123");
  ASSERT_EQ(stored.size(), lines.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].event_id, lines[i]["event_id"]);
    EXPECT_TRUE(stored[i].imported) << "a row without \"import\" is a declared import";
  }
  EXPECT_EQ(target_->ledger->Head(), 11u);
  ASSERT_FALSE(imported.progress.empty());
  EXPECT_EQ(imported.progress.back().rows, 11u);
  EXPECT_EQ(imported.progress.back().bytes_done, text.size());
  EXPECT_EQ(imported.progress.back().bytes_total, text.size());
}

TEST_F(LedgerImportTest, ImportingTheSameFileTwiceAppendsNothingTheSecondTime) {
  const std::string text = ReadFile(kSamplePath);
  ASSERT_TRUE(RunImport(target_->append, text, ImportFormat::kJsonl).summary.ok());
  const ledger::Digest before = target_->ledger->HeadDigest();

  Imported again = RunImport(target_->append, text, ImportFormat::kJsonl);
  EXPECT_TRUE(again.summary.ok());
  EXPECT_EQ(again.summary.rows, 11u);
  EXPECT_EQ(again.summary.duplicates, 11u);
  EXPECT_EQ(again.summary.accepted, 0u);
  for (size_t i = 0; i < again.rows.size(); ++i) {
    EXPECT_TRUE(again.rows[i].duplicate());
    EXPECT_EQ(again.rows[i].stored->appended.position, i + 1) << "the original position";
  }
  EXPECT_EQ(target_->ledger->HeadDigest().position, before.position);
  EXPECT_EQ(target_->ledger->HeadDigest().hash_hex, before.hash_hex);
}

// A re-import (an interrupted import resumed, a retry) answers as the first import did: each
// duplicate row carries the violations its original was stored with, and the summary counts them.
TEST_F(LedgerImportTest, ReimportedRowsReportTheViolationsTheyWereStoredWith) {
  const std::string text =
      Event("app/KM-V", "ApplicationAccepted", "v-1", "2026-03-02T09:00:00+08:00", Accepted("C1")) +
      "\n" +
      Event("app/KM-V", "MeterConnected", "v-2", "2026-03-03T09:00:00+08:00",
            {{"meter_id", "M1"}}) +
      "\n";
  Imported first = RunImport(target_->append, text, ImportFormat::kJsonl);
  ASSERT_EQ(first.summary.accepted, 2u);
  ASSERT_EQ(first.summary.with_violations, 1u);
  ASSERT_FALSE(first.rows[1].stored->violations.empty());

  Imported again = RunImport(target_->append, text, ImportFormat::kJsonl);
  EXPECT_EQ(again.summary.duplicates, 2u);
  EXPECT_EQ(again.summary.with_violations, 1u);
  ASSERT_TRUE(again.rows[1].duplicate());
  ASSERT_EQ(again.rows[1].stored->violations.size(), first.rows[1].stored->violations.size());
  for (size_t i = 0; i < again.rows[1].stored->violations.size(); ++i) {
    EXPECT_EQ(again.rows[1].stored->violations[i].rule, first.rows[1].stored->violations[i].rule);
  }
}

TEST_F(LedgerImportTest, RowsAppendedLiveBeforeAreDuplicatesNotMismatches) {
  // The import flag is part of an event's content; the same record stored by a live append
  // (no flag) must still be recognised as the same fact.
  const std::string text = ReadFile(kSamplePath);
  for (const json& line : JsonLines(text)) {
    auto decoded = domain::DecodeClientEvent(line.dump());
    ASSERT_TRUE(std::holds_alternative<IngestOutcome>(
        target_->ingestor->Append(std::get<domain::ClientEvent>(std::move(decoded)))));
  }
  Imported imported = RunImport(target_->append, text, ImportFormat::kJsonl);
  EXPECT_EQ(imported.summary.duplicates, 11u);
  EXPECT_EQ(imported.summary.rejected, 0u);
  EXPECT_EQ(target_->ledger->Head(), 11u);
}

TEST_F(LedgerImportTest, ExplicitImportFlagOfARowIsKept) {
  json live = json::parse(
      Event("app/L-1", "ApplicationAccepted", "l1", "2026-03-02T09:00:00+08:00", Accepted("C1")));
  live["import"] = false;
  json declared = json::parse(
      Event("app/L-2", "ApplicationAccepted", "l2", "2026-03-02T09:00:00+08:00", Accepted("C2")));
  declared["import"] = true;
  Imported imported =
      RunImport(target_->append, live.dump() + "\n" + declared.dump() + "\n", ImportFormat::kJsonl);
  ASSERT_EQ(imported.summary.accepted, 2u);
  EXPECT_FALSE(StreamEvents(*target_->ledger, "app/L-1").at(0).imported);
  EXPECT_TRUE(StreamEvents(*target_->ledger, "app/L-2").at(0).imported);
}

TEST_F(LedgerImportTest, RejectedRowsAreReportedByLineAndOtherStreamsAreStored) {
  const std::string at = "2026-03-02T09:00:00+08:00";
  json unknown_field = json::parse(Event("app/A", "SchemeReplied", "a2", at, {{"schem", "x"}}));
  const std::vector<std::string> lines = {
      Event("app/A", "ApplicationAccepted", "a1", at, Accepted("CA"), -1),  // 1 ok
      Event("app/B", "ApplicationAccepted", "b1", at, Accepted("CB"), -1),  // 2 ok
      R"({"stream":"app/A",)",                                              // 3 malformed
      unknown_field.dump(),                                                 // 4 decode error (E)
      Event("app/C", "SchemeReplied", "c1", at, {{"scheme", "s"}}),         // 5 workflow rule
      "   ",                                                                // 6 blank
      Event("app/B", "SiteSurveyed", "b2", at, {{"findings", "ok"}}, 0),    // 7 ok
      Event("app/A", "SiteSurveyed", "a3", at, {{"findings", "ok"}}, 5),    // 8 stale version
      Event("app/B", "ApplicationAccepted", "b1", at, Accepted("XX")),      // 9 b1 changed
      Event("app/F", "SchemeReplied", "f1", "2030-01-01T00:00:00+08:00", {{"scheme", "s"}}),
      // Rows after a rejected row of their stream wait for it (held_back), valid or not.
      Event("app/A", "SiteSurveyed", "a5", at, {{"findings", "ok"}}),  // 11 after line 8
      Event("app/E", "SchemeReplied", "e2", at, {{"scheme", "s"}}),    // 12 after line 4
      Event("app/B", "SchemeReplied", "b3", at, {{"scheme", "s"}}),    // 13 after line 9
  };
  unknown_field["stream"] = "app/E";
  std::string text;
  for (const std::string& line : lines) {
    text += (line == lines[3] ? unknown_field.dump() : line) + "\n";
  }
  Imported imported = RunImport(target_->append, text, ImportFormat::kJsonl);

  EXPECT_EQ(imported.summary.rows, 12u);
  EXPECT_EQ(imported.summary.accepted, 3u);
  EXPECT_EQ(imported.summary.rejected, 9u);
  EXPECT_FALSE(imported.summary.ok());
  std::map<uint64_t, const ImportRowOutcome*> by_line;
  for (const ImportRowOutcome& row : imported.rows) by_line[row.line] = &row;
  ASSERT_EQ(by_line.size(), 12u);
  EXPECT_FALSE(by_line.contains(6)) << "blank lines are not rows";
  EXPECT_TRUE(by_line[1]->stored && by_line[2]->stored && by_line[7]->stored);
  EXPECT_EQ(RuleOf(*by_line[3]), "malformed_json");
  EXPECT_EQ(by_line[3]->stream, "");
  EXPECT_EQ(RuleOf(*by_line[4]), "unknown_field");
  EXPECT_EQ(FieldOf(*by_line[4]), "data.schem");
  EXPECT_EQ(RuleOf(*by_line[5]), "not_accepted");
  EXPECT_EQ(by_line[5]->stream, "app/C");
  EXPECT_EQ(RuleOf(*by_line[8]), "version_conflict");
  EXPECT_EQ(RuleOf(*by_line[9]), "duplicate_mismatch");
  EXPECT_EQ(RuleOf(*by_line[10]), "occurred_in_future");
  for (const auto& [line, rejected_line] : {std::pair{11, 8}, std::pair{12, 4}, std::pair{13, 9}}) {
    EXPECT_EQ(RuleOf(*by_line[line]), "held_back") << line;
    const std::string message = RejectionJson(*by_line[line]->rejection)["message"];
    EXPECT_NE(message.find("line " + std::to_string(rejected_line) + " of app/"), std::string::npos)
        << message;
  }

  const json body = RejectionJson(*by_line[4]->rejection);
  EXPECT_EQ(body["code"], "invalid");
  EXPECT_EQ(body["field"], "data.schem");
  EXPECT_EQ(body["rule"], "unknown_field");
  EXPECT_FALSE(body["message"].get<std::string>().empty());
  EXPECT_EQ(RejectionJson(*by_line[5]->rejection)["rule"], "not_accepted");
  // A workflow rule names the field it judged: the step's type, or when it happened.
  EXPECT_EQ(RejectionJson(*by_line[5]->rejection)["field"], "type");
  EXPECT_EQ(RejectionJson(*by_line[10]->rejection)["field"], "occurred_at");

  EXPECT_EQ(target_->ledger->Head(), 3u);
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/A").size(), 1u);
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/B").size(), 2u);
  EXPECT_TRUE(StreamEvents(*target_->ledger, "app/C").empty());
}

// A row rejected in a migration is fixed and the file imported again. Had the stream's later rows
// been stored without it — a connection with a violation for the fees it lacked, then the archive
// — the fixed row could not follow (nothing but evidence goes after an archive), and the file
// would never converge. They wait instead: the second import stores exactly what a clean one does.
TEST_F(LedgerImportTest, AFixedRowAndTheRowsHeldBehindItConvergeOnACleanImport) {
  auto rows = [](const std::string& fees_at) {
    return std::vector<std::string>{
        Event("app/A", "ApplicationAccepted", "a1", "2026-03-02T09:00:00+08:00", Accepted("CA")),
        Event("app/A", "SchemeReplied", "a2", "2026-03-09T09:00:00+08:00", {{"scheme", "s"}}),
        Event("app/A", "FeesSettled", "a3", fees_at, {{"amount_cny", 100}}),
        Event("app/A", "ContractSigned", "a4", "2026-03-11T09:00:00+08:00", {{"contract_id", "K"}}),
        Event("app/A", "MeterConnected", "a5", "2026-03-12T09:00:00+08:00", {{"meter_id", "M"}}),
        Event("app/A", "Archived", "a6", "2026-03-13T09:00:00+08:00", json::object()),
        Event("app/B", "ApplicationAccepted", "b1", "2026-03-02T09:00:00+08:00", Accepted("CB")),
    };
  };
  auto file = [](const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    return text;
  };
  const std::string fixed = file(rows("2026-03-10T09:00:00+08:00"));
  const std::string broken = file(rows("2026-03-10 09:00:00"));  // no offset: bad_timestamp

  Imported first = RunImport(target_->append, broken, ImportFormat::kJsonl);
  EXPECT_EQ(first.summary.accepted, 3u);  // a1, a2, b1
  EXPECT_EQ(first.summary.rejected, 4u);
  EXPECT_EQ(first.summary.with_violations, 0u);
  EXPECT_EQ(RuleOf(first.rows.at(2)), "bad_timestamp");
  for (size_t row = 3; row < 6; ++row) EXPECT_EQ(RuleOf(first.rows.at(row)), "held_back") << row;
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/A").size(), 2u);

  Imported second = RunImport(target_->append, fixed, ImportFormat::kJsonl);
  EXPECT_TRUE(second.summary.ok());
  EXPECT_EQ(second.summary.accepted, 4u);
  EXPECT_EQ(second.summary.duplicates, 3u);

  auto clean = NewTarget();
  Imported at_once = RunImport(clean->append, fixed, ImportFormat::kJsonl);
  ASSERT_TRUE(at_once.summary.ok());
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/A"), StreamEvents(*clean->ledger, "app/A"));
  // With the same violations (the connection's missing inspection), and not the fees' it would
  // have had if stored before them.
  auto rules = [](const Imported& run) {
    std::vector<std::vector<std::string>> per_row;
    for (const ImportRowOutcome& row : run.rows) {
      per_row.emplace_back();
      for (const auto& violation : row.stored->violations) {
        per_row.back().push_back(violation.rule);
      }
    }
    return per_row;
  };
  EXPECT_EQ(rules(second), rules(at_once));
  EXPECT_EQ(rules(second).at(4), std::vector<std::string>{"connected_before_completion_passed"});

  // A CSV row that does not decode holds its stream back too, by its stream cell.
  auto csv_target = NewTarget();
  const std::string csv =
      "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,data\n"
      "app/C,ApplicationAccepted,c1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,\"" +
      [] {
        std::string data = Accepted("CC").dump();
        std::string quoted;
        for (char c : data) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        return quoted;
      }() +
      "\"\n"
      "app/C,SchemeReplied,c2,yesterday,S1,clerk,KM.XS,{}\n"
      "app/C,FeesSettled,c3,2026-03-10T09:00:00+08:00,S1,clerk,KM.XS,"
      "\"{\"\"amount_cny\"\":100}\"\n";
  Imported from_csv = RunImport(csv_target->append, csv, ImportFormat::kCsv);
  ASSERT_EQ(from_csv.rows.size(), 3u);
  EXPECT_TRUE(from_csv.rows[0].stored.has_value()) << RuleOf(from_csv.rows[0]);
  EXPECT_EQ(RuleOf(from_csv.rows[1]), "bad_timestamp");
  EXPECT_EQ(RuleOf(from_csv.rows[2]), "held_back");
}

// ---- CSV ----

// Quotes every cell, doubling quotes: the simplest valid RFC 4180 writer.
std::string CsvLine(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += ',';
    line += '"';
    for (char c : cells[i]) line += c == '"' ? std::string("\"\"") : std::string(1, c);
    line += '"';
  }
  return line + "\r\n";
}

const std::vector<std::string> kEnvelopeHeader = {
    "stream",   "type",       "event_id",  "occurred_at",
    "actor_id", "actor_role", "actor_org", "expected_version"};

std::vector<std::string> EnvelopeCells(const json& event) {
  return {event["stream"],
          event["type"],
          event["event_id"],
          event["occurred_at"],
          event["actor"]["id"],
          event["actor"]["role"],
          event["actor"]["org"],
          event.contains("expected_version") ? event["expected_version"].dump() : ""};
}

// The JSONL events as CSV with one "data" column holding the JSON object.
std::string CsvWithDataColumn(const std::vector<json>& events) {
  std::vector<std::string> header = kEnvelopeHeader;
  header.push_back("data");
  std::string csv = CsvLine(header);
  for (const json& event : events) {
    std::vector<std::string> cells = EnvelopeCells(event);
    cells.push_back(event["data"].dump());
    csv += CsvLine(cells);
  }
  return csv;
}

// The JSONL events as CSV with one data.<field> column per field: strings as written, other
// values as JSON.
std::string CsvWithDataFields(const std::vector<json>& events) {
  std::set<std::string> fields;
  for (const json& event : events) {
    for (const auto& [key, value] : event["data"].items()) fields.insert(key);
  }
  std::vector<std::string> header = kEnvelopeHeader;
  for (const std::string& field : fields) header.push_back("data." + field);
  std::string csv = CsvLine(header);
  for (const json& event : events) {
    std::vector<std::string> cells = EnvelopeCells(event);
    for (const std::string& field : fields) {
      const auto value = event["data"].find(field);
      if (value == event["data"].end()) {
        cells.emplace_back();
      } else {
        cells.push_back(value->is_string() ? value->get<std::string>() : value->dump());
      }
    }
    csv += CsvLine(cells);
  }
  return csv;
}

TEST_F(LedgerImportTest, CsvInBothDataMappingsStoresTheSameEventsAsJsonl) {
  const std::string jsonl = ReadFile(kSamplePath);
  const std::vector<json> events = JsonLines(jsonl);
  ASSERT_TRUE(RunImport(target_->append, jsonl, ImportFormat::kJsonl).summary.ok());
  const std::vector<Stored> expected = StreamEvents(*target_->ledger, "app/XS-2026-000123");
  ASSERT_EQ(expected.size(), events.size());

  for (const std::string& csv : {CsvWithDataColumn(events), CsvWithDataFields(events)}) {
    auto other = NewTarget();
    Imported imported = RunImport(other->append, csv, ImportFormat::kCsv);
    EXPECT_TRUE(imported.summary.ok()) << csv;
    EXPECT_EQ(imported.summary.accepted, events.size());
    for (const ImportRowOutcome& row : imported.rows) {
      if (row.rejection)
        ADD_FAILURE() << "line " << row.line << ": " << RejectionJson(*row.rejection).dump();
    }
    EXPECT_EQ(StreamEvents(*other->ledger, "app/XS-2026-000123"), expected) << csv;
  }
}

TEST_F(LedgerImportTest, CsvQuotingFollowsRfc4180AndLinesArePhysical) {
  // A byte order mark, CRLF records, a blank line, and quoted fields holding commas, doubled
  // quotes and a line break. customer_id "00123" is a text field: it stays a string.
  const std::string csv =
      "\xEF\xBB\xBFstream,type,event_id,occurred_at,actor_id,actor_role,actor_org,"
      "data.customer_id,data.customer_name,data.customer_class,data.business,data.voltage_kv,"
      "data.capacity_kva,data.channel,data.important,data.three_zero,data.findings\r\n"  // 1
      "app/Q-1,ApplicationAccepted,q1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,00123,"
      "\"Kunming \"\"East\"\" Works, Ltd.\",lv_nonresidential,new_install,0.4,80,counter,FALSE,"
      "false,\r\n"  // 2
      "\r\n"        // 3: blank
      "app/Q-1,SiteSurveyed,q2,2026-03-03T10:00:00+08:00,S1,clerk,KM.XS,,,,,,,,,,"
      "\"line 12, spare bay\ntransformer \"\"ok\"\"\"\r\n"                                   // 4-5
      "app/Q-1,SurveyDispatched,q3,2026-03-04T10:00:00+08:00,S1,clerk,KM.XS,,,,,,,,,,\r\n";  // 6
  Imported imported = RunImport(target_->append, csv, ImportFormat::kCsv);
  ASSERT_FALSE(imported.summary.failure) << imported.summary.failure->message;
  ASSERT_EQ(imported.rows.size(), 3u);
  EXPECT_EQ(imported.rows[0].line, 2u);
  EXPECT_EQ(imported.rows[1].line, 4u);
  EXPECT_EQ(imported.rows[2].line, 6u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(imported.rows[i].stored) << RejectionJson(*imported.rows[i].rejection).dump();
  }

  // Line 6 has no data cells: its data is {}, and SurveyDispatched requires a surveyor.
  EXPECT_EQ(RuleOf(imported.rows[2]), "missing_field");
  EXPECT_EQ(FieldOf(imported.rows[2]), "data.surveyor");

  json accepted = Accepted("00123");
  accepted["customer_name"] = "Kunming \"East\" Works, Ltd.";
  const std::string jsonl =
      Event("app/Q-1", "ApplicationAccepted", "q1", "2026-03-02T09:00:00+08:00", accepted) + "\n" +
      Event("app/Q-1", "SiteSurveyed", "q2", "2026-03-03T10:00:00+08:00",
            {{"findings", "line 12, spare bay\ntransformer \"ok\""}});
  auto other = NewTarget();
  RunImport(other->append, jsonl, ImportFormat::kJsonl);
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/Q-1"), StreamEvents(*other->ledger, "app/Q-1"));
  EXPECT_EQ(StreamEvents(*target_->ledger, "app/Q-1").size(), 2u);
}

TEST_F(LedgerImportTest, MalformedCsvRowsAreRejectedWithTheirLines) {
  const std::string header =
      "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,data\n";  // 1
  const std::string accepted = "\"" + [] {
    std::string data = Accepted("C1").dump(), quoted;
    for (char c : data) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted;
  }() + "\"";
  const std::string csv =
      header + "app/M-1,ApplicationAccepted,m1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS," +
      accepted + "\n" +                                                                // 2 ok
      "app/M-2,Archived,m2,2026-03-02T09:00:00+08:00,S1,clerk\n" +                     // 3 fields
      "app/M-4,SchemeReplied,m3,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,{oops\n" +    // 4 data
      "app/M-1,SchemeReplied,m4,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,\"{}\"x\n" +  // 5
      "app/M-1,SiteSurveyed,m5,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,\"{\"\"findings\"\":"
      "\"\"a\"\"}\"\n" +                                                       // 6 ok
      "app/M-3,Archived,m6,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,\"{\n\n";  // 7: not closed
  Imported imported = RunImport(target_->append, csv, ImportFormat::kCsv);
  ASSERT_FALSE(imported.summary.failure);
  std::vector<std::pair<uint64_t, std::string>> seen;
  for (const ImportRowOutcome& row : imported.rows) seen.emplace_back(row.line, RuleOf(row));
  const std::vector<std::pair<uint64_t, std::string>> expected = {
      {2, ""}, {3, "malformed_csv"}, {4, "malformed_json"}, {5, "malformed_csv"},
      {6, ""}, {7, "malformed_csv"}};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(FieldOf(imported.rows[2]), "data");
  EXPECT_EQ(target_->ledger->Head(), 2u);

  // The same rows as a piece of the file (the header and lines 5 to 7, as ledgerctl --http sends
  // them) report the file's lines, in the line fields and in the messages that name lines.
  auto rejected = [](const Imported& run, uint64_t from_line) {
    std::vector<std::pair<uint64_t, std::string>> lines;
    for (const ImportRowOutcome& row : run.rows) {
      if (row.rejection && row.line >= from_line) {
        lines.emplace_back(row.line, RejectionJson(*row.rejection)["message"]);
      }
    }
    return lines;
  };
  const size_t piece_begin = csv.find("app/M-1,SchemeReplied,m4");
  ImportOptions piece_options;
  piece_options.first_line = 5;
  Imported piece = RunImport(target_->append, header + csv.substr(piece_begin), ImportFormat::kCsv,
                             piece_options);
  ASSERT_EQ(piece.rows.size(), 3u);
  EXPECT_EQ(piece.rows[1].line, 6u);
  EXPECT_EQ(rejected(piece, 0), rejected(imported, 5));
  EXPECT_NE(rejected(piece, 0).at(0).second.find("line 5:"), std::string::npos);
  EXPECT_NE(rejected(piece, 0).at(1).second.find("starting on line 7 "), std::string::npos);

  // JSONL has no header: its first line is first_line.
  Imported jsonl = RunImport(target_->append, "{oops\n\n{}\n", ImportFormat::kJsonl, piece_options);
  ASSERT_EQ(jsonl.rows.size(), 2u);
  EXPECT_EQ(jsonl.rows[0].line, 5u);
  EXPECT_EQ(jsonl.rows[1].line, 7u);
}

// A CSV saved in GBK (Chinese Windows' default) is refused row by row saying so, in either data
// mapping, as JSONL is — not as bad JSON in the data column or a bad value of one field.
TEST_F(LedgerImportTest, CsvRowsThatAreNotUtf8AreRefusedSayingSo) {
  const std::string envelope = "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,";
  const std::string gbk_name = "\xC0\xA5\xC3\xF7";  // 昆明 in GBK
  const std::string csv_data =
      envelope + "data\napp/U-1,SiteSurveyed,u1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS," +
      "\"{\"\"findings\"\":\"\"" + gbk_name + "\"\"}\"\n";
  const std::string csv_columns =
      envelope + "data.findings\napp/U-1,SiteSurveyed,u1,2026-03-02T09:00:00+08:00,S1,clerk," +
      "KM.XS," + gbk_name + "\n";
  for (const std::string& csv : {csv_data, csv_columns}) {
    Imported imported = RunImport(target_->append, csv, ImportFormat::kCsv);
    ASSERT_FALSE(imported.summary.failure);
    ASSERT_EQ(imported.rows.size(), 1u);
    EXPECT_EQ(RuleOf(imported.rows[0]), "malformed_csv");
    EXPECT_EQ(RejectionJson(*imported.rows[0].rejection)["message"], domain::kNotUtf8Text);
  }
  EXPECT_EQ(target_->ledger->Head(), 0u);
}

TEST_F(LedgerImportTest, CsvValuesAreTypedByTheSchema) {
  const std::string csv =
      "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,expected_version,import,"
      "data.customer_id,data.customer_name,data.customer_class,data.business,data.voltage_kv,"
      "data.capacity_kva,data.channel,data.important,data.three_zero\n"
      "app/T-1,ApplicationAccepted,t1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,-1,false,"
      "42,n,residential,new_install,0.22,8,online,TRUE,true\n"
      "app/T-2,ApplicationAccepted,t2,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,,,"
      "43,n,residential,new_install,0.22,8kVA,online,false,false\n"
      "app/T-3,ApplicationAccepted,t3,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,007,,"
      "44,n,residential,new_install,0.22,8,online,false,false\n";
  Imported imported = RunImport(target_->append, csv, ImportFormat::kCsv);
  ASSERT_EQ(imported.rows.size(), 3u);
  ASSERT_TRUE(imported.rows[0].stored);
  const auto stored = StreamEvents(*target_->ledger, "app/T-1");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_FALSE(stored[0].imported) << "the import column was false";
  const json data = std::get<json>(domain::PayloadToJson(stored[0].type, stored[0].payload));
  EXPECT_EQ(data["customer_id"], "42");
  EXPECT_EQ(data["important"], true);
  EXPECT_EQ(data["capacity_kva"], 8);
  EXPECT_EQ(RuleOf(imported.rows[1]), "wrong_type");
  EXPECT_EQ(FieldOf(imported.rows[1]), "data.capacity_kva");
  EXPECT_EQ(RuleOf(imported.rows[2]), "wrong_type");
  EXPECT_EQ(FieldOf(imported.rows[2]), "expected_version");
}

// Data keys beyond a type's own are kept (domain.md: "data fields are the minimum; more are
// welcome"), so a legacy export's other columns load as data.<name> columns. A cell of a column
// that is no field of the row's type is a string, whatever it looks like; a misspelt field is
// refused by the decoder in the rows that fill it, with its hint.
TEST_F(LedgerImportTest, DataColumnsBeyondTheTypesFieldsAreKeptAsStrings) {
  const std::string csv =
      "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,"
      "data.topic,data.attendees,data.hours,data.legacy_ref,data.voltage_kv,data.topik\n"
      "staff/S9,TrainingHeld,t1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,"
      "safety,\"[\"\"S1\"\"]\",2,00123,10,\n"
      "staff/S9,TrainingHeld,t2,2026-03-03T09:00:00+08:00,S1,clerk,KM.XS,"
      "safety,[],1,,,oops\n";
  Imported imported = RunImport(target_->append, csv, ImportFormat::kCsv);
  ASSERT_FALSE(imported.summary.failure) << imported.summary.failure->message;
  ASSERT_EQ(imported.rows.size(), 2u);
  ASSERT_TRUE(imported.rows[0].stored) << RejectionJson(*imported.rows[0].rejection).dump();
  auto stored = target_->ledger->ReadStream("staff/S9");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  auto data = domain::PayloadToJson("TrainingHeld", stored->front().payload);
  ASSERT_TRUE(std::holds_alternative<json>(data));
  const json& kept = std::get<json>(data);
  EXPECT_EQ(kept["topic"], "safety");
  EXPECT_EQ(kept["hours"], 2.0);
  EXPECT_EQ(kept["legacy_ref"], "00123") << kept.dump();
  EXPECT_EQ(kept["voltage_kv"], "10") << "another type's field is a string here: " << kept.dump();

  ASSERT_TRUE(imported.rows[1].rejection);
  EXPECT_EQ(FieldOf(imported.rows[1]), "data.topik");
  EXPECT_NE(RejectionJson(*imported.rows[1].rejection).dump().find("did you mean topic"),
            std::string::npos)
      << RejectionJson(*imported.rows[1].rejection).dump();
}

TEST(ImportHeaderTest, BadHeaderFailsTheWholeImportWithAClearMessage) {
  const std::string envelope = "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org";
  const std::string row = "\napp/H-1,Archived,h1,2026-03-02T09:00:00+08:00,S1,clerk,KM.XS,{}\n";
  struct Case {
    std::string header;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {envelope + ",dta", "unknown column \"dta\""},
      {envelope + ",data.", "unknown column \"data.\""},
      {"stream,type,event_id,occurred_at,actor_id,actor_role,data", "\"actor_org\""},
      {envelope + ",data,data.scheme", "not both"},
      {envelope + ",data,data", "appears twice"},
      {envelope + ",,data", "column 8 has no name"},
      {envelope + ",\"data", "not closed"},
      {envelope + ",data.\xB1\xB8\xD7\xA2", "not UTF-8"},  // data.备注 in GBK
  };
  for (const Case& c : cases) {
    std::atomic<int> calls{0};
    AppendFunction append = [&](domain::ClientEvent) -> std::variant<IngestOutcome, IngestError> {
      ++calls;
      return IngestOutcome{};
    };
    Imported imported = RunImport(append, "\n" + c.header + row, ImportFormat::kCsv);
    ASSERT_TRUE(imported.summary.failure) << c.header;
    EXPECT_EQ(imported.summary.failure->rule, "bad_header");
    EXPECT_EQ(imported.summary.failure->line, 2u) << "the header follows a blank line";
    EXPECT_NE(imported.summary.failure->message.find(c.mentions), std::string::npos)
        << imported.summary.failure->message;
    EXPECT_EQ(imported.summary.rows, 0u);
    EXPECT_EQ(calls.load(), 0);
  }
  Imported empty =
      RunImport([](domain::ClientEvent) { return IngestOutcome{}; }, "", ImportFormat::kCsv);
  ASSERT_TRUE(empty.summary.failure);
  EXPECT_EQ(empty.summary.failure->rule, "bad_header");
}

// ---- Concurrency ----

TEST_F(LedgerImportTest, TwoHundredInterleavedApplicationsKeepTheirOrder) {
  // Every row carries expected_version, so a row appended out of its stream's order would be a
  // version_conflict; round-robin interleaving puts 200 streams in flight at every step.
  constexpr int kApps = 200;
  const std::vector<std::pair<std::string, json>> steps = {
      {"ApplicationAccepted", Accepted("C")},     {"SurveyDispatched", {{"surveyor", "S2"}}},
      {"SiteSurveyed", {{"findings", "ok"}}},     {"SchemeReplied", {{"scheme", "LV"}}},
      {"ContractSigned", {{"contract_id", "K"}}}, {"MeterConnected", {{"meter_id", "M"}}},
  };
  std::string text;
  for (size_t step = 0; step < steps.size(); ++step) {
    for (int app = 0; app < kApps; ++app) {
      const std::string id = "P-" + std::to_string(app);
      text += Event("app/" + id, steps[step].first, id + "-" + std::to_string(step),
                    "2026-03-0" + std::to_string(2 + step) + "T09:00:00+08:00", steps[step].second,
                    static_cast<int64_t>(step) - 1) +
              "\n";
    }
  }
  ImportOptions options;
  options.rows_buffered_max = 300;  // smaller than the file: the window must slide
  Imported imported = RunImport(target_->append, text, ImportFormat::kJsonl, options);
  EXPECT_EQ(imported.summary.rows, kApps * steps.size());
  EXPECT_EQ(imported.summary.accepted, kApps * steps.size());
  for (size_t i = 0; i < imported.rows.size(); ++i) {
    EXPECT_EQ(imported.rows[i].line, i + 1) << "reported in line order";
  }
  for (int app = 0; app < kApps; ++app) {
    const auto stored = StreamEvents(*target_->ledger, "app/P-" + std::to_string(app));
    ASSERT_EQ(stored.size(), steps.size());
    for (size_t step = 0; step < steps.size(); ++step)
      EXPECT_EQ(stored[step].type, steps[step].first);
  }
}

// An append function that holds every call until `hold_until` calls are in flight, and checks
// that no two calls for one stream overlap.
class GatedAppend {
 public:
  explicit GatedAppend(int hold_until) : hold_until_(hold_until) {}

  std::variant<IngestOutcome, IngestError> operator()(const domain::ClientEvent& event) {
    std::unique_lock lock(mutex_);
    if (!busy_streams_.insert(event.stream).second) overlapped_ = true;
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    if (in_flight_ >= hold_until_) released_ = true;
    changed_.notify_all();
    if (!changed_.wait_for(lock, std::chrono::seconds(30), [&] { return released_; })) {
      timed_out_ = true;
    }
    --in_flight_;
    busy_streams_.erase(event.stream);
    IngestOutcome outcome;
    outcome.appended.position = ++appended_;
    return outcome;
  }

  int max_in_flight() const { return max_in_flight_; }
  bool overlapped() const { return overlapped_; }
  bool timed_out() const { return timed_out_; }

 private:
  const int hold_until_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> busy_streams_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  uint64_t appended_ = 0;
  bool released_ = false;
  bool overlapped_ = false;
  bool timed_out_ = false;
};

TEST(ImportConcurrencyTest, StreamsInFlightReachButNeverExceedTheBound) {
  // 64 streams of 3 rows: the first 32 calls are held until all 32 are in flight at once.
  std::string text;
  for (int row = 0; row < 3; ++row) {
    for (int stream = 0; stream < 64; ++stream) {
      text += Event("app/G-" + std::to_string(stream), "ApplicationAccepted",
                    "g" + std::to_string(stream) + "-" + std::to_string(row),
                    "2026-03-02T09:00:00+08:00", Accepted("C")) +
              "\n";
    }
  }
  GatedAppend gate(static_cast<int>(kImportStreamsInFlightMax));
  Imported imported =
      RunImport([&](domain::ClientEvent event) { return gate(event); }, text, ImportFormat::kJsonl);
  EXPECT_FALSE(gate.timed_out()) << "the bound of streams in flight was never reached";
  EXPECT_EQ(gate.max_in_flight(), static_cast<int>(kImportStreamsInFlightMax));
  EXPECT_FALSE(gate.overlapped()) << "two rows of one stream were appended at once";
  EXPECT_EQ(imported.summary.accepted, 192u);
}

TEST(ImportConcurrencyTest, OneStreamInFlightAppendsInFileOrder) {
  std::string text;
  for (int i = 0; i < 50; ++i) {
    text += Event("app/O-" + std::to_string(i % 7), "ApplicationAccepted", "o" + std::to_string(i),
                  "2026-03-02T09:00:00+08:00", Accepted("C")) +
            "\n";
  }
  std::mutex mutex;
  std::vector<std::string> order;
  ImportOptions options;
  options.streams_in_flight_max = 1;
  options.rows_buffered_max = 1;
  Imported imported = RunImport(
      [&](domain::ClientEvent event) -> std::variant<IngestOutcome, IngestError> {
        std::lock_guard lock(mutex);
        order.push_back(event.event_id);
        return IngestOutcome{};
      },
      text, ImportFormat::kJsonl, options);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], "o" + std::to_string(i));
  EXPECT_EQ(imported.summary.accepted, 50u);
}

// Interrupted (ledgerctl's SIGINT / SIGTERM), an import stops reading, reports every row it read
// and says in its failure (rule interrupted) after which line it stopped.
TEST(ImportAppendTest, AStopFlagEndsReadingAndTheSummarySaysWhere) {
  std::string text;
  for (int i = 0; i < 50; ++i) {
    text += Event("app/S-" + std::to_string(i), "ApplicationAccepted", "s" + std::to_string(i),
                  "2026-03-02T09:00:00+08:00", Accepted("C")) +
            "\n";
  }
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  ImportOptions options;
  options.streams_in_flight_max = 1;
  options.rows_buffered_max = 1;
  options.stop = &stop;
  Imported imported = RunImport(
      [&](domain::ClientEvent) -> std::variant<IngestOutcome, IngestError> {
        if (++appended == 3) stop.store(true);
        return IngestOutcome{};
      },
      text, ImportFormat::kJsonl, options);
  ASSERT_TRUE(imported.summary.failure.has_value());
  EXPECT_EQ(imported.summary.failure->rule, "interrupted");
  EXPECT_LT(imported.summary.rows, 50u);
  EXPECT_GE(imported.summary.rows, 3u);
  EXPECT_EQ(imported.summary.accepted, imported.summary.rows) << "every row read was appended";
  ASSERT_EQ(imported.rows.size(), imported.summary.rows);
  EXPECT_EQ(imported.summary.failure->line, imported.rows.back().line);
  EXPECT_NE(imported.summary.failure->message.find("stopped after line " +
                                                   std::to_string(imported.rows.back().line)),
            std::string::npos)
      << imported.summary.failure->message;
}

TEST(ImportAppendTest, BusyIsRetriedAndAnAppendExceptionReachesTheCaller) {
  const std::string text =
      Event("app/R-1", "ApplicationAccepted", "r1", "2026-03-02T09:00:00+08:00", Accepted("C")) +
      "\n";
  std::atomic<int> calls{0};
  Imported imported = RunImport(
      [&](domain::ClientEvent) -> std::variant<IngestOutcome, IngestError> {
        if (++calls <= 2) return IngestError{ledger::Status(ledger::Code::kBusy, "full"), {}};
        return IngestOutcome{};
      },
      text, ImportFormat::kJsonl);
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(imported.summary.accepted, 1u);

  Importer throwing([](domain::ClientEvent) -> std::variant<IngestOutcome, IngestError> {
    throw std::runtime_error("append broke");
  });
  std::istringstream in(text + text);
  EXPECT_THROW(throwing.Run(in, ImportFormat::kJsonl), std::runtime_error);
}

TEST(ImportAppendTest, RefusalsOfTheInjectedAppendAreReportedPerRow) {
  // The server's append checks the caller's permissions: a refused row is reported as forbidden
  // and the import goes on.
  std::string text;
  for (const std::string stream : {"app/F-1", "app/F-2", "app/F-3"}) {
    text += Event(stream, "ApplicationAccepted", stream.substr(4), "2026-03-02T09:00:00+08:00",
                  Accepted("C")) +
            "\n";
  }
  Imported imported = RunImport(
      [](domain::ClientEvent event) -> std::variant<IngestOutcome, IngestError> {
        if (event.stream != "app/F-2") return IngestOutcome{};
        return IngestError{ledger::Status(ledger::Code::kInvalid, "not your org"), std::nullopt,
                           true};
      },
      text, ImportFormat::kJsonl);
  EXPECT_EQ(imported.summary.accepted, 2u);
  ASSERT_EQ(imported.summary.rejected, 1u);
  ASSERT_TRUE(imported.rows.at(1).rejection);
  EXPECT_EQ(imported.rows[1].line, 2u);
  EXPECT_EQ(RejectionJson(*imported.rows[1].rejection),
            (nlohmann::ordered_json{{"code", "forbidden"}, {"message", "not your org"}}));
}

TEST(ImportFormatTest, FormatsByNameAndExtension) {
  EXPECT_EQ(ParseImportFormat("csv"), ImportFormat::kCsv);
  EXPECT_EQ(ParseImportFormat("jsonl"), ImportFormat::kJsonl);
  EXPECT_EQ(ParseImportFormat("xlsx"), std::nullopt);
  EXPECT_EQ(ImportFormatOfPath("/tmp/legacy.CSV"), ImportFormat::kCsv);
  EXPECT_EQ(ImportFormatOfPath("history.jsonl"), ImportFormat::kJsonl);
  EXPECT_EQ(ImportFormatOfPath("history.ndjson"), ImportFormat::kJsonl);
  EXPECT_EQ(ImportFormatOfPath("history.txt"), std::nullopt);
}

}  // namespace
}  // namespace gridledger::ingest
