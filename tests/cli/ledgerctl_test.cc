// Goal: ledgerctl keeps its command-line contract — one JSON result per input line, exit codes
// 0/2, a rejected line changes nothing, retries are duplicates, read/history/verify/digest print
// what is stored, and a tampered byte makes verify fail naming the position.
// Method: run the real binary on a temp data directory and parse what it prints.
#include <gtest/gtest.h>

#include <pwd.h>
#include <rocksdb/db.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "format.h"
#include "support/temp_dir.h"

namespace gridledger::cli {
namespace {

using nlohmann::json;

struct CommandRun {
  int exit_code;
  std::string out;
  std::vector<json> lines() const {
    std::vector<json> parsed;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) parsed.push_back(json::parse(line));
    return parsed;
  }
};

CommandRun Ledgerctl(const std::string& args, const std::string& stdin_text = "",
                     const std::string& environment = "") {
  testing::TempDir scratch;
  std::string input = (scratch.path() / "stdin").string();
  std::ofstream(input) << stdin_text;
  std::string command =
      environment + " " + std::string(LEDGERCTL_PATH) + " " + args + " < " + input + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  CommandRun run{-1, ""};
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) run.out.append(buffer.data(), n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string Event(const std::string& id, const std::string& type, const std::string& data,
                  const std::string& extra = "") {
  return R"({"stream":"app/T-1","type":")" + type + R"(","event_id":")" + id + "\"" + extra +
         R"(,"occurred_at":"2026-03-02T09:15:00+08:00",)" +
         R"("actor":{"id":"S1","role":"clerk","org":"KM.XS"},"data":)" + data + "}";
}

const char kAccepted[] =
    R"({"customer_id":"C1","customer_name":"甲","customer_class":"residential",)"
    R"("business":"new_install","voltage_kv":0.22,"capacity_kva":8,"channel":"app",)"
    R"("important":false,"three_zero":false})";

class LedgerctlTest : public ::testing::Test {
 protected:
  std::string Data() const { return "--data " + dir_.str() + "/data"; }
  testing::TempDir dir_;
};

// A command that only reads does not create a ledger at a mistyped path and answer as if it were
// empty (verify "ok", an empty KPI table): it fails, and the path stays absent.
TEST_F(LedgerctlTest, ReadingAPathWithoutALedgerFailsAndCreatesNothing) {
  const std::string missing = dir_.str() + "/typo";
  for (const char* command : {"verify", "digest", "read", "history app/T-1", "kpi --period 2026-03",
                              "overdue", "app T-1", "evidence T-1", "rebuild"}) {
    CommandRun run = Ledgerctl("--data " + missing + " " + command);
    EXPECT_NE(run.exit_code, 0) << command << ": " << run.out;
    EXPECT_FALSE(std::filesystem::exists(missing)) << command << " created " << missing;
  }
  // A command that writes makes a new ledger there.
  CommandRun appended = Ledgerctl(Data() + " append " SAMPLE_APPLICATION);
  EXPECT_EQ(appended.exit_code, 0) << appended.out;
}

// --data on the command line asks the directory even when the environment names a server (and
// the other way round), so a shell's defaults never redirect an explicit command.
TEST_F(LedgerctlTest, ACommandLineFlagWinsOverTheEnvironment) {
  const std::string nowhere = "127.0.0.1:1";  // nothing listens there
  EXPECT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION, "",
                      "GRIDLEDGER_HTTP=" + nowhere + " GRIDLEDGER_SERVER=" + nowhere)
                .exit_code,
            0);
  EXPECT_EQ(Ledgerctl(Data() + " verify", "", "GRIDLEDGER_HTTP=" + nowhere).lines().at(0)["head"],
            11);
  // A malformed address is a bad command line.
  EXPECT_EQ(Ledgerctl("--http localhost verify").exit_code, 2);
  EXPECT_EQ(Ledgerctl("--server localhost:99999 read --from 1").exit_code, 2);
  // The other way round: the server flag wins over GRIDLEDGER_DATA (and finds no server).
  EXPECT_EQ(
      Ledgerctl("--http " + nowhere + " verify", "", "GRIDLEDGER_DATA=" + dir_.str() + "/data")
          .exit_code,
      1);
}

TEST_F(LedgerctlTest, AppendsTheSampleApplicationAndVerifies) {
  CommandRun appended = Ledgerctl(Data() + " append " SAMPLE_APPLICATION);
  ASSERT_EQ(appended.exit_code, 0) << appended.out;
  auto results = appended.lines();
  ASSERT_EQ(results.size(), 11u);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i]["ok"].get<bool>());
    EXPECT_EQ(results[i]["position"], i + 1);
    EXPECT_EQ(results[i]["version"], i);
    EXPECT_FALSE(results[i]["duplicate"].get<bool>());
  }
  CommandRun again = Ledgerctl(Data() + " append " SAMPLE_APPLICATION);
  ASSERT_EQ(again.exit_code, 0);
  for (const json& line : again.lines()) EXPECT_TRUE(line["duplicate"].get<bool>());

  CommandRun verified = Ledgerctl(Data() + " verify");
  ASSERT_EQ(verified.exit_code, 0);
  json verdict = verified.lines().at(0);
  EXPECT_TRUE(verdict["ok"].get<bool>());
  EXPECT_EQ(verdict["head"], 11);
  CommandRun digest = Ledgerctl(Data() + " digest");
  EXPECT_EQ(digest.lines().at(0)["hash"], verdict["hash"]);

  CommandRun read = Ledgerctl(Data() + " read --stream app/XS-2026-000123 --from-version 3");
  auto events = read.lines();
  ASSERT_EQ(events.size(), 8u);
  EXPECT_EQ(events[0]["type"], "SchemeReplied");
  EXPECT_EQ(events[0]["occurred_at"], "2026-03-16T09:15:00+08:00");
  EXPECT_EQ(events[0]["data"]["scheme"],
            "10kV single source from 10kV Line 12, metering at HV side");
  CommandRun history = Ledgerctl(Data() + " history app/XS-2026-000123");
  EXPECT_EQ(history.exit_code, 0);
  EXPECT_NE(history.out.find("MeterConnected"), std::string::npos);
}

TEST_F(LedgerctlTest, WritesOnADataDirectoryRecordTheLocalUserAsWhoRecordedThem) {
  // The effective user's name as ledgerctl keeps it (at most 64 characters in all; characters an
  // actor id may not hold would become '_', and names here are plain).
  const passwd* user = getpwuid(geteuid());
  ASSERT_NE(user, nullptr);
  const json local = {{"id", (std::string("local:") + user->pw_name).substr(0, 64)},
                      {"role", "admin"},
                      {"org", "local"}};
  CommandRun imported = Ledgerctl(Data() + " import " SAMPLE_APPLICATION);
  ASSERT_EQ(imported.exit_code, 0) << imported.out;
  EXPECT_EQ(imported.lines().back()["accepted"], 11) << imported.out;
  CommandRun appended =
      Ledgerctl(Data() + " append", Event("t1", "ApplicationAccepted", kAccepted) + "\n");
  ASSERT_EQ(appended.exit_code, 0) << appended.out;

  CommandRun read = Ledgerctl(Data() + " read --from 1");
  auto events = read.lines();
  ASSERT_EQ(events.size(), 12u) << read.out;
  for (const json& event : events) {
    EXPECT_EQ(event["recorded_by"], local) << event.dump();
    EXPECT_NE(event["actor"]["id"], local["id"]) << event.dump();
    EXPECT_EQ(event.value("import", false), event["stream"] != "app/T-1") << event.dump();
  }
  CommandRun history = Ledgerctl(Data() + " history app/T-1");
  EXPECT_NE(history.out.find("recorded_by"), std::string::npos) << history.out;
  EXPECT_NE(history.out.find(local["id"].get<std::string>().substr(0, 17)), std::string::npos)
      << history.out;
}

// No token stands behind a write to a data directory, but each row is still judged as its own
// actor's, as ledgerd judges an imported row: the same file stores the same events either way.
TEST_F(LedgerctlTest, ADataDirectoryWriteIsJudgedAsItsActorsAsLedgerdJudgesIt) {
  auto by = [](std::string event, const std::string& actor) {
    event.replace(event.find(R"({"id":"S1","role":"clerk","org":"KM.XS"})"), 40, actor);
    return event;
  };
  const std::string accepted = Event("a", "ApplicationAccepted", kAccepted);
  const std::string refused[] = {
      // a clerk may not record the site survey, an inspector's field work
      Event("s", "SiteSurveyed", R"({"findings":"ok"})"),
      // a clerk of another org may not write to KM.XS's application
      by(Event("r", "Reassigned", R"({"to":"S9"})"), R"({"id":"S9","role":"clerk","org":"KM.WH"})"),
  };
  const std::string said[] = {"SiteSurveyed", "KM.WH"};
  const std::string file = dir_.str() + "/roles.jsonl";
  std::ofstream(file) << accepted << "\n" << refused[0] << "\n";
  CommandRun imported = Ledgerctl(Data() + " import " + file);
  EXPECT_EQ(imported.exit_code, 2) << imported.out;
  ASSERT_EQ(imported.lines().size(), 2u) << imported.out;  // the rejected row and the summary
  EXPECT_EQ(imported.lines()[0]["line"], 2) << imported.out;
  EXPECT_EQ(imported.lines()[0]["error"]["code"], "forbidden") << imported.out;
  EXPECT_EQ(imported.lines()[1]["accepted"], 1) << imported.out;
  for (size_t i = 0; i < std::size(refused); ++i) {
    CommandRun appended = Ledgerctl(Data() + " append", refused[i] + "\n");
    EXPECT_EQ(appended.exit_code, 2) << appended.out;
    ASSERT_FALSE(appended.lines().empty()) << appended.out;
    EXPECT_EQ(appended.lines()[0]["error"]["code"], "forbidden") << appended.out;
    EXPECT_NE(appended.out.find(said[i]), std::string::npos) << appended.out;
  }
  // The inspector's own survey goes in.
  CommandRun surveyed = Ledgerctl(
      Data() + " append", by(refused[0], R"({"id":"I1","role":"inspector","org":"KM.XS"})") + "\n");
  EXPECT_EQ(surveyed.exit_code, 0) << surveyed.out;
  EXPECT_EQ(Ledgerctl(Data() + " read --from 1").lines().size(), 2u);
}

// What a dispute reads must not mislead: a page of `read` says when more follows; `history` shows
// times in Asia/Shanghai (the clocks' dates) whatever offset the client wrote, marks imports, and
// cuts long data at a character boundary; a bad command line exits 2 as the README says.
TEST_F(LedgerctlTest, ReadsSayWhatTheyLeaveOutAndHistoryShowsShanghaiTimes) {
  ASSERT_EQ(Ledgerctl(Data() + " import " SAMPLE_APPLICATION).exit_code, 0);
  // 17:30 UTC on 03-01 is 01:30 on 03-02 in Shanghai.
  std::string late = Event("t1", "ApplicationAccepted", kAccepted);
  late.replace(late.find("2026-03-02T09:15:00+08:00"), 25, "2026-03-01T17:30:00Z");
  ASSERT_EQ(Ledgerctl(Data() + " append", late + "\n").exit_code, 0);

  const std::string read =
      std::string(LEDGERCTL_PATH) + " " + Data() + " read --from 1 --limit 5 2>&1 >/dev/null";
  FILE* pipe = popen(read.c_str(), "r");
  std::string err;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) err.append(buffer.data(), n);
  pclose(pipe);
  EXPECT_NE(err.find("more follow: --from 6"), std::string::npos) << err;

  CommandRun history = Ledgerctl(Data() + " history app/T-1");
  EXPECT_NE(history.out.find("2026-03-02T01:30:00+08:00"), std::string::npos) << history.out;
  CommandRun imported = Ledgerctl(Data() + " history app/XS-2026-000123");
  EXPECT_NE(imported.out.find("import"), std::string::npos) << imported.out;
  // The data column holds Chinese text (customer names): still valid UTF-8 after the cut.
  for (size_t i = 0; i < imported.out.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(imported.out[i]);
    if (c < 0x80) continue;
    const int length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    ASSERT_GT(length, 0) << "a continuation byte without its lead at " << i;
    for (int k = 1; k < length; ++k) {
      ASSERT_LT(i + k, imported.out.size());
      ASSERT_EQ(static_cast<unsigned char>(imported.out[i + k]) & 0xC0, 0x80)
          << "a character cut at " << i;
    }
    i += length - 1;
  }

  EXPECT_EQ(Ledgerctl(Data() + " kpi").exit_code, 2);  // --period is required
  EXPECT_EQ(Ledgerctl(Data() + " read --limit 0").exit_code, 2);
  EXPECT_EQ(Ledgerctl("--help").exit_code, 0);
}

// A digest handed to a third party is checked later in one step: verify --digest P:HASH proves
// the history up to P unchanged (the chain verifies and its hash at P is the digest's).
TEST_F(LedgerctlTest, VerifyProvesAHandedOutDigest) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  CommandRun digest = Ledgerctl(Data() + " digest --at 5");
  ASSERT_EQ(digest.exit_code, 0) << digest.out;
  const json handed_out = digest.lines().front();
  ASSERT_EQ(
      Ledgerctl(Data() + " append", Event("t1", "ApplicationAccepted", kAccepted) + "\n").exit_code,
      0);
  const std::string given = std::to_string(handed_out["position"].get<uint64_t>()) + ":" +
                            handed_out["hash"].get<std::string>();
  CommandRun proved = Ledgerctl(Data() + " verify --digest " + given);
  EXPECT_EQ(proved.exit_code, 0) << proved.out;
  EXPECT_EQ(proved.lines().front()["digest"]["matches"], true) << proved.out;

  const std::string other = "5:" + std::string(64, '0');
  CommandRun refuted = Ledgerctl(Data() + " verify --digest " + other);
  EXPECT_EQ(refuted.exit_code, 1) << refuted.out;
  EXPECT_EQ(refuted.lines().front()["digest"]["matches"], false) << refuted.out;
  CommandRun beyond = Ledgerctl(Data() + " verify --digest 999:" + std::string(64, 'a'));
  EXPECT_EQ(beyond.exit_code, 1) << beyond.out;
  EXPECT_EQ(Ledgerctl(Data() + " verify --digest nonsense").exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " verify --digest 5:" + std::string(64, 'z')).exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " digest --at 0").exit_code, 2);
}

// Events handed out for a dispute (`read --envelopes`) are checked without the ledger: every
// envelope hashes to its hash and the line says what the envelope holds; an edited line, an
// edited envelope or a line that is no such line is caught; the last event's hash then proves
// against the ledger that these events are in its history.
TEST_F(LedgerctlTest, ExportedEventsAreCheckedOfflineAndProvedAgainstTheLedger) {
  ASSERT_EQ(Ledgerctl(Data() + " demo --apps 20 --seed 3").exit_code, 0);
  CommandRun exported = Ledgerctl(Data() + " read --from 1 --limit 100000 --envelopes");
  ASSERT_EQ(exported.exit_code, 0);
  const std::vector<json> lines = exported.lines();
  ASSERT_GT(lines.size(), 100u);
  bool imported_with_recorder = false;
  for (const json& line : lines) {
    ASSERT_TRUE(line.contains("envelope")) << line.dump();
    imported_with_recorder = imported_with_recorder || line.contains("recorded_by");
  }
  EXPECT_TRUE(imported_with_recorder) << "the demo's events carry recorded_by: check those too";

  const std::string file = dir_.str() + "/dispute.jsonl";
  std::ofstream(file) << exported.out;
  CommandRun checked = Ledgerctl("check " + file);
  ASSERT_EQ(checked.exit_code, 0) << checked.out.substr(0, 2000);
  const json summary = checked.lines().back();
  EXPECT_EQ(summary["events"], lines.size());
  EXPECT_NE(summary["prove_with"].get<std::string>().find("verify --events " + file),
            std::string::npos);
  CommandRun proved = Ledgerctl(Data() + " verify --events " + file);
  ASSERT_EQ(proved.exit_code, 0) << proved.out;
  // One proof at a time: a digest beside the events would have been ignored.
  EXPECT_NE(Ledgerctl(Data() + " verify --events " + file + " --digest 1:" + std::string(64, '0'))
                .exit_code,
            0);
  EXPECT_EQ(proved.lines().front()["events"]["matching"], lines.size()) << proved.out;

  // Events of another ledger are consistent with their own hashes, so `check` takes them — a
  // forger can always make such events — but they are not this ledger's history.
  const std::string other = "--data " + dir_.str() + "/other";
  ASSERT_EQ(Ledgerctl(other + " demo --apps 20 --seed 4").exit_code, 0);
  CommandRun foreign = Ledgerctl(other + " read --from 1 --limit 50 --envelopes");
  const std::string foreign_file = dir_.str() + "/foreign.jsonl";
  std::ofstream(foreign_file) << foreign.out;
  EXPECT_EQ(Ledgerctl("check " + foreign_file).exit_code, 0);
  CommandRun refuted = Ledgerctl(Data() + " verify --events " + foreign_file);
  EXPECT_EQ(refuted.exit_code, 1) << refuted.out;
  EXPECT_EQ(refuted.lines().front()["ok"], false) << refuted.out;
  EXPECT_FALSE(refuted.lines().front()["events"]["mismatches"].empty()) << refuted.out;

  // An edited line: its fields no longer say what its envelope holds.
  // The lines exactly as printed (ordered keys), to edit.
  std::vector<std::string> raw;
  {
    std::istringstream in(exported.out);
    for (std::string text; std::getline(in, text);) raw.push_back(text);
  }
  ASSERT_EQ(raw.size(), lines.size());
  EXPECT_EQ(Ledgerctl("check -", raw[5] + "\n").exit_code, 0) << raw[5];
  std::string edited = raw[5];
  const size_t occurred = edited.find("\"occurred_at\":\"") + 15;
  edited.replace(occurred, 4, "2020");
  CommandRun mismatch = Ledgerctl("check -", edited + "\n");
  EXPECT_EQ(mismatch.exit_code, 1) << mismatch.out;
  EXPECT_EQ(mismatch.lines().front()["error"]["code"], "mismatch") << mismatch.out;
  // The ledger holds the line's hash at its position, but the line is not what that hash stands
  // for: `verify --events` holds each line to its own hash first, as `check` does.
  const std::string edited_file = dir_.str() + "/edited.jsonl";
  std::ofstream(edited_file) << raw[4] << "\n" << edited << "\n";
  CommandRun doctored = Ledgerctl(Data() + " verify --events " + edited_file);
  EXPECT_EQ(doctored.exit_code, 1) << doctored.out;
  const json verdict = doctored.lines().front()["events"];
  EXPECT_EQ(verdict["checked"], 2) << doctored.out;
  EXPECT_EQ(verdict["matching"], 1) << doctored.out;
  ASSERT_EQ(verdict["mismatches"].size(), 1u) << doctored.out;
  EXPECT_EQ(verdict["mismatches"][0]["line"], 2) << doctored.out;
  EXPECT_NE(verdict["mismatches"][0]["reason"].get<std::string>().find("differ"), std::string::npos)
      << doctored.out;
  // Lines of a plain `read` carry no envelope to hold them to: not such lines.
  const std::string plain_file = dir_.str() + "/plain.jsonl";
  std::ofstream(plain_file) << Ledgerctl(Data() + " read --from 1 --limit 3").out;
  EXPECT_EQ(Ledgerctl(Data() + " verify --events " + plain_file).exit_code, 2);
  // A duplicate key shows one value and parses as another: the line is not what `read` printed.
  std::string doubled = raw[5];
  doubled.insert(doubled.find("\"data\":{") + 8, "\"forged\":1,\"forged\":2,");
  CommandRun duplicate = Ledgerctl("check -", doubled + "\n");
  EXPECT_EQ(duplicate.exit_code, 1) << duplicate.out;
  // An edited envelope: the hash gives it away.
  json forged = lines[5];
  std::string envelope = forged["envelope"].get<std::string>();
  const size_t at = envelope.size() / 2;
  envelope[at] = envelope[at] == 'A' ? 'B' : 'A';
  std::string forged_line = raw[5];
  forged_line.replace(forged_line.find(forged["envelope"].get<std::string>()), envelope.size(),
                      envelope);
  CommandRun corrupt = Ledgerctl("check -", forged_line + "\n");
  EXPECT_NE(corrupt.exit_code, 0) << corrupt.out;
  EXPECT_EQ(corrupt.lines().front()["ok"], false) << corrupt.out;
  CommandRun malformed = Ledgerctl("check -", "{\"position\":1}\nnot json\n");
  EXPECT_EQ(malformed.exit_code, 2) << malformed.out;
  EXPECT_EQ(malformed.lines().back()["malformed"], 2) << malformed.out;
}

TEST_F(LedgerctlTest, RejectedLinesAreReportedAndChangeNothing) {
  std::string input =
      Event("ok-1", "ApplicationAccepted", kAccepted, R"(,"expected_version":-1)") + "\n" +
      Event("bad-1", "NoSuchType", "{}") + "\n" +
      Event("bad-2", "ApplicationAccepted", R"({"customer_id":"C1"})") + "\n" +
      Event("bad-3", "SurveyDispatched", R"({"surveyor":"S2"})", R"(,"expected_version":7)") +
      "\n" + "{not json\n" +
      Event("ok-1", "ApplicationAccepted", std::string(kAccepted).replace(17, 1, "乙")) + "\n";
  CommandRun run = Ledgerctl(Data() + " append", input);
  EXPECT_EQ(run.exit_code, 2);
  auto results = run.lines();
  ASSERT_EQ(results.size(), 6u);
  EXPECT_TRUE(results[0]["ok"].get<bool>());
  EXPECT_EQ(results[1]["error"]["rule"], "unknown_type");
  EXPECT_EQ(results[1]["line"], 2);
  EXPECT_EQ(results[2]["error"]["rule"], "missing_field");
  EXPECT_EQ(results[3]["error"]["code"], "version_conflict");
  EXPECT_EQ(results[3]["error"]["current_version"], 0);
  EXPECT_EQ(results[4]["error"]["rule"], "malformed_json");
  EXPECT_EQ(results[5]["error"]["code"], "duplicate_mismatch");
  CommandRun verified = Ledgerctl(Data() + " verify");
  EXPECT_EQ(verified.lines().at(0)["head"], 1);
}

// An import file is whatever bytes a legacy export wrote: bytes that are not UTF-8 in a CSV
// header (named in the bad_header message), in every cell of a row or in a JSONL line are
// reported like any other bad input, and ledgerctl does not crash printing them.
TEST_F(LedgerctlTest, ImportReportsBytesThatAreNotUtf8) {
  const std::string header_file = dir_.str() + "/header.csv";
  std::ofstream(header_file, std::ios::binary) << "stream,type,\xff\xfe\n";
  CommandRun header = Ledgerctl(Data() + " import " + header_file);
  EXPECT_EQ(header.exit_code, 2) << header.out;
  auto lines = header.lines();
  ASSERT_EQ(lines.size(), 2u) << header.out;
  EXPECT_EQ(lines[0]["error"]["rule"], "bad_header");
  EXPECT_EQ(lines[0]["line"], 1);
  EXPECT_NE(lines[0]["error"]["message"].get<std::string>().find("not UTF-8"), std::string::npos)
      << header.out;  // said so, not as an unknown column of garbled bytes
  EXPECT_EQ(lines[1]["rows"], 0);

  const std::string cells_file = dir_.str() + "/cells.csv";
  std::ofstream(cells_file, std::ios::binary)
      << "stream,type,event_id,occurred_at,actor_id,actor_role,actor_org,data\n"
      << "\xff,\xfe,\xc3,\xff,\xff,\xff,\xff,\"{\"\"a\"\":\"\"\xff\"\"}\"\n";
  CommandRun cells = Ledgerctl(Data() + " import " + cells_file);
  EXPECT_EQ(cells.exit_code, 2) << cells.out;
  ASSERT_EQ(cells.lines().size(), 2u) << cells.out;
  EXPECT_EQ(cells.lines()[0]["error"]["rule"], "malformed_csv") << cells.out;
  EXPECT_NE(cells.lines()[0]["error"]["message"].get<std::string>().find("not UTF-8"),
            std::string::npos)
      << cells.out;
  EXPECT_EQ(cells.lines()[1]["rejected"], 1) << cells.out;

  const std::string jsonl_file = dir_.str() + "/bytes.jsonl";
  std::ofstream(jsonl_file, std::ios::binary) << "\xff\xfe{\"stream\":\"\xff\"}\n";
  CommandRun jsonl = Ledgerctl(Data() + " import " + jsonl_file);
  EXPECT_EQ(jsonl.exit_code, 2) << jsonl.out;
  ASSERT_EQ(jsonl.lines().size(), 2u) << jsonl.out;
  EXPECT_EQ(jsonl.lines()[0]["error"]["rule"], "malformed_json") << jsonl.out;
  // A JSONL line saved as GBK (the default of Chinese Windows tools) is said to be that, for
  // import and append alike, not "not valid JSON".
  const std::string gbk =
      R"({"stream":"app/T-1","type":"ApplicationAccepted","data":{"customer_name":")"
      "\xc0\xa5\xc3\xf7\xce\xf7\xc9\xbd"
      R"("}})"
      "\n";  // 昆明西山 in GBK
  const std::string gbk_file = dir_.str() + "/gbk.jsonl";
  std::ofstream(gbk_file, std::ios::binary) << gbk;
  for (const std::string& command : {std::string(" import "), std::string(" append ")}) {
    CommandRun run = Ledgerctl(Data() + command + gbk_file);
    EXPECT_EQ(run.exit_code, 2) << command << run.out;
    ASSERT_FALSE(run.lines().empty()) << command << run.out;
    const std::string message = run.lines()[0]["error"]["message"];
    EXPECT_NE(message.find("not UTF-8"), std::string::npos) << command << message;
    EXPECT_NE(message.find("GBK"), std::string::npos) << command << message;
  }
}

// A violation is a fact: stored, and listed with its rule and what it says (as ledgerd answers).
TEST_F(LedgerctlTest, AViolationIsStoredAndListedWithItsRuleAndMessage) {
  const std::string input =
      Event("v-1", "ApplicationAccepted", kAccepted, R"(,"expected_version":-1)") + "\n" +
      Event("v-2", "Archived", "{}", R"(,"expected_version":0)") + "\n";
  CommandRun run = Ledgerctl(Data() + " append", input);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  const json archived = run.lines().at(1);
  EXPECT_EQ(archived["ok"], true) << run.out;
  ASSERT_EQ(archived["violations"].size(), 1u) << run.out;
  EXPECT_EQ(archived["violations"][0]["rule"], "archived_before_connection") << run.out;
  EXPECT_NE(archived["violations"][0]["message"].get<std::string>().find("MeterConnected"),
            std::string::npos)
      << run.out;
  // A contract entered after a connection of the same day settles the connection's violation.
  auto other = [](std::string event) { return event.replace(event.find("app/T-1"), 7, "app/T-2"); };
  const std::string late = other(Event("w-1", "ApplicationAccepted", kAccepted)) + "\n" +
                           other(Event("w-2", "MeterConnected", R"({"meter_id":"M-1"})")) + "\n" +
                           other(Event("w-3", "ContractSigned", R"({"contract_id":"HT-1"})")) +
                           "\n";
  run = Ledgerctl(Data() + " append", late);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  const json contract = run.lines().at(2);
  ASSERT_EQ(contract["settles"].size(), 1u) << run.out;
  EXPECT_EQ(contract["settles"][0]["rule"], "connected_without_contract") << run.out;
  EXPECT_EQ(contract["settles"][0]["position"], 4) << run.out;
}

// Runs `change(db, family handle)` on the family `family` of a closed data directory, opened
// raw (what someone with file access could do).
void Tamper(const std::string& data_dir, const std::string& family,
            const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& change) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), data_dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), data_dir, families, &handles, &raw).ok());
  auto found = std::find(names.begin(), names.end(), family);
  ASSERT_NE(found, names.end());
  change(*raw, handles[found - names.begin()]);
  for (auto* handle : handles) raw->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  delete raw;
}

// The indexes are outside the hash chain, so verify checks them against the chained events: a
// streams entry pointing at another event (that event would be served as this stream's history)
// and an ids entry pointing at nothing are both found.
TEST_F(LedgerctlTest, VerifyFindsTamperedIndexes) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  const std::string dir = dir_.str() + "/data";
  std::string position_3;
  ledger::format::PutBigEndian64(&position_3, 3);
  Tamper(dir, ledger::format::kStreamsFamily, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* f) {
    ASSERT_TRUE(db.Put({}, f, ledger::format::StreamKey("app/XS-2026-000123", 5), position_3).ok());
  });
  CommandRun moved = Ledgerctl(Data() + " verify");
  EXPECT_EQ(moved.exit_code, 1) << moved.out;
  EXPECT_NE(moved.out.find("streams index does not match"), std::string::npos) << moved.out;

  std::string position_6;
  ledger::format::PutBigEndian64(&position_6, 6);
  Tamper(dir, ledger::format::kStreamsFamily, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* f) {
    ASSERT_TRUE(db.Put({}, f, ledger::format::StreamKey("app/XS-2026-000123", 5), position_6).ok());
  });
  ASSERT_EQ(Ledgerctl(Data() + " verify").exit_code, 0);
  Tamper(dir, ledger::format::kIdsFamily, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* f) {
    ASSERT_TRUE(db.Put({}, f, "forged-id", position_3).ok());
  });
  CommandRun extra = Ledgerctl(Data() + " verify");
  EXPECT_EQ(extra.exit_code, 1) << extra.out;
  EXPECT_NE(extra.out.find("ids index holds 12 entries for 11 events"), std::string::npos)
      << extra.out;
}

// The chain does not reach the projections: verify --projections compares every stored state
// with a fresh fold, names one edited by hand, and passes again after `rebuild`. Its scratch copy
// beside the data directory is gone afterwards.
TEST_F(LedgerctlTest, VerifyProjectionsNamesAStateTheLogDoesNotGive) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  CommandRun intact = Ledgerctl(Data() + " verify --projections");
  ASSERT_EQ(intact.exit_code, 0) << intact.out;
  json verdict = intact.lines().at(0);
  EXPECT_TRUE(verdict["ok"].get<bool>());
  EXPECT_EQ(verdict["projections"]["checkpoint"], verdict["head"]);
  EXPECT_EQ(verdict["projections"]["behind"], 0);
  EXPECT_GT(verdict["projections"]["states"].get<int>(), 3);
  EXPECT_EQ(verdict["projections"]["differences"], 0);

  Tamper(dir_.str() + "/data", "proj.application",
         [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* f) {
           std::string value;
           ASSERT_TRUE(db.Get({}, f, "app/XS-2026-000123", &value).ok());
           value[value.size() / 2] ^= 0x01;
           ASSERT_TRUE(db.Put({}, f, "app/XS-2026-000123", value).ok());
         });
  CommandRun tampered = Ledgerctl(Data() + " verify --projections");
  EXPECT_EQ(tampered.exit_code, 1) << tampered.out;
  verdict = tampered.lines().at(0);
  EXPECT_FALSE(verdict["ok"].get<bool>());
  EXPECT_EQ(verdict["projections"]["differences"], 1);
  EXPECT_EQ(verdict["projections"]["first"].at(0),
            (json{{"family", "proj.application"},
                  {"key", "app/XS-2026-000123"},
                  {"difference", "differs"}}));
  EXPECT_EQ(Ledgerctl(Data() + " verify").exit_code, 0);  // the chain itself is intact
  // A key with bytes that are not text (as split states' item keys end) is shown escaped, in
  // JSON that parses.
  Tamper(dir_.str() + "/data", "proj.kpi", [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* f) {
    ASSERT_TRUE(db.Put({}, f, std::string("kpi/forged\0\x80\\", 13), "x").ok());
  });
  CommandRun binary_key = Ledgerctl(Data() + " verify --projections");
  EXPECT_EQ(binary_key.exit_code, 1) << binary_key.out;
  const json second = binary_key.lines().at(0);
  EXPECT_EQ(second["projections"]["differences"], 2);
  EXPECT_EQ(second["projections"]["first"].at(1),
            (json{{"family", "proj.kpi"},
                  {"key", "kpi/forged\\x00\\x80\\\\"},
                  {"difference", "not_folded"}}));

  ASSERT_EQ(Ledgerctl(Data() + " rebuild").exit_code, 0);
  // What a killed check left (named by its process id) goes; a running one's stays.
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
  const auto left = dir_.path() / (".gridledger-verify-" + std::to_string(gone) + "-x1y2z3");
  const auto running = dir_.path() / (".gridledger-verify-" + std::to_string(getpid()) + "-a1");
  std::filesystem::create_directories(left / "copy");
  std::filesystem::create_directories(running);
  EXPECT_EQ(Ledgerctl(Data() + " verify --projections").exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(left));
  EXPECT_TRUE(std::filesystem::exists(running));
  std::filesystem::remove(running);
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".gridledger-verify"))
        << entry.path();
  }
  // A read on the data directory is recorded without being folded: one event behind, unchecked.
  ASSERT_EQ(Ledgerctl(Data() + " app XS-2026-000123").exit_code, 0);
  const json behind = Ledgerctl(Data() + " verify --projections").lines().at(0);
  EXPECT_TRUE(behind["ok"].get<bool>()) << behind;
  EXPECT_EQ(behind["projections"]["behind"], 1) << behind;
  // A running ledgerd's projections are verified in a backup: said, not attempted.
  EXPECT_EQ(Ledgerctl("--http 127.0.0.1:1 verify --projections").exit_code, 1);
}

// --approved-by is judged by ledgerd; on a data directory it would be dropped, and the read
// recorded as unapproved while the caller believed otherwise: refused, and nothing is recorded.
TEST_F(LedgerctlTest, ApprovedByIsRefusedOnADataDirectory) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  const json head = Ledgerctl(Data() + " digest").lines().at(0);
  EXPECT_EQ(Ledgerctl(Data() + " --approved-by D0001 app XS-2026-000123").exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " digest").lines().at(0), head);
  EXPECT_EQ(Ledgerctl(Data() + " app XS-2026-000123").exit_code, 0);  // recorded, unapproved
  EXPECT_NE(Ledgerctl(Data() + " digest").lines().at(0), head);
}

TEST_F(LedgerctlTest, VerifyNamesTheFirstTamperedPosition) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  {
    // Every family the data directory holds (the ledger's and the projections').
    std::vector<std::string> names;
    ASSERT_TRUE(
        rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.str() + "/data", &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::DBOptions(), dir_.str() + "/data", families, &handles, &raw)
            .ok());
    std::string value;
    auto events = std::find(names.begin(), names.end(), ledger::format::kEventsFamily);
    ASSERT_NE(events, names.end());
    rocksdb::ColumnFamilyHandle* events_handle = handles[events - names.begin()];
    ASSERT_TRUE(raw->Get({}, events_handle, ledger::format::EventKey(5), &value).ok());
    value[value.size() / 2] ^= 0x04;
    ASSERT_TRUE(raw->Put({}, events_handle, ledger::format::EventKey(5), value).ok());
    for (auto* handle : handles) raw->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    delete raw;
  }
  CommandRun verified = Ledgerctl(Data() + " verify");
  EXPECT_NE(verified.exit_code, 0);
  json verdict = verified.lines().at(0);
  EXPECT_FALSE(verdict["ok"].get<bool>());
  EXPECT_EQ(verdict["position"], 5);
  // --projections verifies the chain in the copy it folds (Ledger::Backup): the broken chain is
  // named as plain verify names it, and no projection verdict is given on it.
  CommandRun with_projections = Ledgerctl(Data() + " verify --projections");
  EXPECT_EQ(with_projections.exit_code, 1);
  verdict = with_projections.lines().at(0);
  EXPECT_FALSE(verdict["ok"].get<bool>());
  EXPECT_EQ(verdict["position"], 5) << verdict;
  EXPECT_FALSE(verdict.contains("projections")) << verdict;
}

TEST_F(LedgerctlTest, UnknownStreamAndBadPositionAreClearErrors) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  EXPECT_EQ(Ledgerctl(Data() + " history app/none").exit_code, 2);
  CommandRun digest = Ledgerctl(Data() + " digest --at 99");
  EXPECT_EQ(digest.exit_code, 2);
  EXPECT_EQ(digest.lines().at(0)["error"]["code"], "not_found");
}

TEST_F(LedgerctlTest, AppShowsClocksAtABusinessTimeAndAsKnownAtARecordedTime) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  json now = Ledgerctl(Data() + " app XS-2026-000123").lines().at(0);
  EXPECT_EQ(now["stage"], "archived");
  // Accepted Mon 2026-03-02, replied Mon 03-16: working days 03-03..06, 09..13, 16 = 10 of 20.
  EXPECT_EQ(now["clocks"]["scheme_reply"]["elapsed_working_days"], 10);
  EXPECT_EQ(now["clocks"]["scheme_reply"]["limit"], 20);
  EXPECT_EQ(now["clocks"]["scheme_reply"]["state"], "met");

  json then = Ledgerctl(Data() + " app app/XS-2026-000123 --at 2026-03-10").lines().at(0);
  EXPECT_EQ(then["stage"], "surveyed");
  EXPECT_EQ(then["clocks"]["scheme_reply"]["end"], nullptr);
  EXPECT_EQ(then["clocks"]["scheme_reply"]["elapsed_working_days"], 6);  // 03-03..06, 09, 10
  EXPECT_EQ(then["clocks"]["scheme_reply"]["state"], "on_track");

  CommandRun before_recording = Ledgerctl(Data() + " app XS-2026-000123 --as-of 2020-01-01");
  EXPECT_EQ(before_recording.exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " app KM-2026-999999").exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " app XS-2026-000123 --at yesterday").exit_code, 2);
}

TEST_F(LedgerctlTest, KpiEvidenceAndRebuildReadTheProjections) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  json table = Ledgerctl(Data() + " kpi --period 2026-Q2 --json").lines().at(0);
  std::map<std::string, json> kpis;
  for (const json& kpi : table["kpis"]) kpis[kpi["id"]] = kpi;
  // Archived 04-30 with every clock within its limit; connected 04-29 after the contract (04-27).
  EXPECT_EQ(kpis["timeliness"]["numerator"], 1);
  EXPECT_EQ(kpis["timeliness"]["denominator"], 1);
  EXPECT_EQ(kpis["timeliness"]["met"], true);
  EXPECT_EQ(kpis["timeliness"]["numerator_ids"].at(0), "app/XS-2026-000123");
  EXPECT_EQ(kpis["contract_signing"]["value"], 1.0);
  EXPECT_EQ(kpis["change_completion"]["value"], nullptr) << "no change was due: no value";
  EXPECT_EQ(kpis["callback_satisfaction"]["denominator"], 1);  // the callback of 05-08
  // On a terminal the table shows the supporting figures too, one line each.
  const std::string text = Ledgerctl(Data() + " kpi --period 2026-Q2").out;
  EXPECT_NE(text.find("\n  callback_rate "), std::string::npos) << text;
  EXPECT_NE(text.find("\n  violations                  0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  settled violations          0\n"), std::string::npos) << text;
  json march = Ledgerctl(Data() + " kpi --period 2026-03 --json").lines().at(0);
  for (const json& kpi : march["kpis"]) EXPECT_EQ(kpi["denominator"], 0) << kpi["id"];
  EXPECT_EQ(Ledgerctl(Data() + " kpi --period 2026-13").exit_code, 2);

  json evidence = Ledgerctl(Data() + " evidence XS-2026-000123").lines().at(0);
  ASSERT_EQ(evidence["callbacks"].size(), 1u);
  EXPECT_EQ(evidence["callbacks"][0]["position"], 11);

  json rebuilt = Ledgerctl(Data() + " rebuild").lines().at(0);
  EXPECT_TRUE(rebuilt["ok"].get<bool>());
  EXPECT_EQ(rebuilt["checkpoint"], 12);  // the sample and the record of the evidence read
  const json access = Ledgerctl(Data() + " read --from 12").lines().at(0);
  EXPECT_EQ(access["type"], "SensitiveDataAccessed");
  EXPECT_EQ(access["data"]["what"], "app/XS-2026-000123");
  EXPECT_TRUE(access["actor"]["id"].get<std::string>().starts_with("local:"));
  json again = Ledgerctl(Data() + " kpi --period 2026-Q2 --json").lines().at(0);
  EXPECT_EQ(again, table);

  // The evidence of a period (7.2): coverage, and the third-party survey of its quarter.
  const std::string survey =
      R"({"stream":"survey/2026-Q2","type":"ThirdPartySurveyRecorded","event_id":"survey-q2",)"
      R"("occurred_at":"2026-06-20T10:00:00+08:00","actor":{"id":"D0001","role":"director",)"
      R"("org":"KM.XS"},"data":{"agency":"Yunnan Survey Co.","sample_size":400,)"
      R"("satisfaction_index":92.5}})";
  ASSERT_EQ(Ledgerctl(Data() + " append", survey + "\n").exit_code, 0);
  const json coverage = Ledgerctl(Data() + " evidence --period 2026-05 --org KM.XS").lines().at(0);
  EXPECT_EQ(coverage["period"], "2026-05") << coverage.dump();
  ASSERT_EQ(coverage["surveys"].size(), 1u) << coverage.dump();  // its quarter's survey
  EXPECT_EQ(coverage["surveys"][0]["satisfaction_index"], 92.5) << coverage.dump();
  EXPECT_EQ(Ledgerctl(Data() + " evidence").exit_code, 2);  // an application or a period
  EXPECT_EQ(Ledgerctl(Data() + " evidence XS-2026-000123 --period 2026-05").exit_code, 2);
  EXPECT_EQ(Ledgerctl(Data() + " evidence --period 2026-13").exit_code, 2);

  // The staff audit: the clerk S1001 recorded 7 of the sample's events; nobody is S0000.
  json clerk = Ledgerctl(Data() + " staff S1001").lines().at(0);
  EXPECT_EQ(clerk["staff_id"], "S1001");
  EXPECT_EQ(clerk["actions_total"], 7);
  EXPECT_EQ(Ledgerctl(Data() + " staff S0000").exit_code, 2);
}

// A correction changes what the application and the KPI table say; `kpi --as-of` still shows
// the table as it could be reported before it, for a dispute about the figure given then.
// An empty or malformed --org matches no org: answering it would print an empty list or an
// all-null table as if it were some org's. It is a bad command line (2), for every report.
TEST_F(LedgerctlTest, AnEmptyOrMalformedOrgIsABadCommandLine) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  for (const std::string& command :
       {std::string("kpi --period 2026-Q2"), std::string("overdue --at 2026-06-30"),
        std::string("evidence --period 2026-Q2")}) {
    for (const char* org : {"''", "'KM XS'", "'KM/XS'"}) {
      CommandRun run = Ledgerctl(Data() + " " + command + " --org " + org);
      EXPECT_EQ(run.exit_code, 2) << command << " --org " << org << ": " << run.out;
    }
    EXPECT_EQ(Ledgerctl(Data() + " " + command + " --org KM.XS").exit_code, 0) << command;
  }
}

TEST_F(LedgerctlTest, KpiAsOfReplaysTheTableBeforeACorrection) {
  ASSERT_EQ(Ledgerctl(Data() + " append " SAMPLE_APPLICATION).exit_code, 0);
  const json last = Ledgerctl(Data() + " read --from 11").lines().at(0);
  const std::string before = last["recorded_at"].get<std::string>();
  // hv_single → lv_nonresidential: the scheme reply (10 working days) misses its limit of 8.
  const std::string correction =
      R"({"stream":"app/XS-2026-000123","type":"Corrected","event_id":"fix-1",)"
      R"("occurred_at":"2026-05-20T10:00:00+08:00",)"
      R"("actor":{"id":"S1001","role":"clerk","org":"KM.XS"},"data":{"corrects_position":1,)"
      R"("reason":"按营业执照更正","fields":{"customer_class":"lv_nonresidential"}}})";
  ASSERT_EQ(Ledgerctl(Data() + " append", correction + "\n").exit_code, 0);

  auto timeliness = [](const json& table) {
    for (const json& kpi : table["kpis"]) {
      if (kpi["id"] == "timeliness") return std::make_pair(kpi["numerator"], kpi["denominator"]);
    }
    return std::make_pair(json(), json());
  };
  const json now = Ledgerctl(Data() + " kpi --period 2026-Q2 --json").lines().at(0);
  EXPECT_EQ(timeliness(now), std::make_pair(json(0), json(1)));
  const json then =
      Ledgerctl(Data() + " kpi --period 2026-Q2 --json --as-of " + before).lines().at(0);
  EXPECT_EQ(timeliness(then), std::make_pair(json(1), json(1)));
  EXPECT_EQ(then["as_of_position"], 11);
  EXPECT_EQ(Ledgerctl(Data() + " kpi --period 2026-Q2 --as-of yesterday").exit_code, 2);
  // Today's date means now: its end has not come.
  const std::time_t shanghai_now = std::time(nullptr) + 8 * 3600;  // UTC+08:00, no DST
  std::tm shanghai{};
  gmtime_r(&shanghai_now, &shanghai);
  char today_text[16];
  std::strftime(today_text, sizeof today_text, "%Y-%m-%d", &shanghai);
  const std::string today = today_text;
  CommandRun today_table = Ledgerctl(Data() + " kpi --period 2026-Q2 --json --as-of " + today);
  EXPECT_EQ(today_table.exit_code, 0) << today_table.out;
  EXPECT_EQ(timeliness(today_table.lines().at(0)), timeliness(now)) << today_table.out;
  EXPECT_EQ(Ledgerctl(Data() + " app XS-2026-000123 --as-of " + today).exit_code, 0);
  // What the ledger will know is not known yet, for the table as for one application.
  EXPECT_EQ(Ledgerctl(Data() + " kpi --period 2026-Q2 --as-of 2099-01-01").exit_code, 2);
  CommandRun future_app = Ledgerctl(Data() + " app XS-2026-000123 --as-of 2099-01-01");
  EXPECT_EQ(future_app.exit_code, 2) << future_app.out;
  EXPECT_NE(future_app.out.find("lies in the future"), std::string::npos) << future_app.out;

  const json app = Ledgerctl(Data() + " app XS-2026-000123").lines().at(0);
  EXPECT_EQ(app["customer_class"], "lv_nonresidential");
  EXPECT_EQ(app["clocks"]["scheme_reply"]["state"], "missed");
  EXPECT_EQ(app["corrections"].at(0)["fields"]["customer_class"], "lv_nonresidential");
  // The history shows the events as stored, each correction noted under the event it fixes (13:
  // the read of position 11 above was recorded at 12).
  const std::string history = Ledgerctl(Data() + " history app/XS-2026-000123").out;
  EXPECT_NE(history.find("↳ corrected by 13: {\"customer_class\":\"lv_nonresidential\"}"),
            std::string::npos)
      << history;
}

// An application accepted in 2024 (no calendar loaded for it) and archived in January 2025: the
// KPI table cannot judge its time limits and says so under the KPI, naming it, rather than
// showing an empty count.
TEST_F(LedgerctlTest, KpiTableNamesWhatTheCalendarCannotJudge) {
  std::string lines;
  for (const auto& [type, date, data] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"ApplicationAccepted", "2024-12-20", kAccepted},
           {"SchemeReplied", "2025-01-10", R"({"scheme":"220V"})"},
           {"FeesSettled", "2025-01-10", R"({"amount_cny":1})"},
           {"ContractSigned", "2025-01-13", R"({"contract_id":"c"})"},
           {"MeterConnected", "2025-01-14", R"({"meter_id":"m"})"},
           {"Archived", "2025-01-15", "{}"}}) {
    std::string line = Event("old-" + type, type, data);
    line.replace(line.find("2026-03-02"), 10, date);
    lines += line + "\n";
  }
  ASSERT_EQ(Ledgerctl(Data() + " append", lines).exit_code, 0);
  const json table = Ledgerctl(Data() + " kpi --period 2025-01 --json").lines().at(0);
  ASSERT_EQ(table["kpis"][0]["id"], "timeliness");
  ASSERT_EQ(table["kpis"][0]["undetermined_ids"], json::array({"app/T-1"}));
  const std::string text = Ledgerctl(Data() + " kpi --period 2025-01").out;
  EXPECT_NE(text.find("\n    1 not judged: a working-day calendar year they need is not loaded "
                      "(calendar_missing): app/T-1\n"),
            std::string::npos)
      << text;
}

TEST_F(LedgerctlTest, DemoLoadsAValidWorkloadThatVerifies) {
  CommandRun demo = Ledgerctl(Data() + " demo --apps 150 --seed 3");
  ASSERT_EQ(demo.exit_code, 0) << demo.out;
  json summary = demo.lines().at(0);
  EXPECT_EQ(summary["rejected"], 0);
  EXPECT_GT(summary["appended"].get<int>(), 150 * 5);
  EXPECT_EQ(summary["head"], summary["appended"]);
  EXPECT_EQ(Ledgerctl(Data() + " verify").exit_code, 0);
  CommandRun overdue = Ledgerctl(Data() + " overdue --at 2026-06-30 --table");
  EXPECT_EQ(overdue.exit_code, 0);
  EXPECT_NE(overdue.out.find("overdue clocks at 2026-06-30"), std::string::npos);

  // The KPI table as text names each violated rule with its count, as the JSON does.
  int rules_seen = 0;
  for (const char* period : {"2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"}) {
    const json table = Ledgerctl(Data() + " kpi --period " + period + " --json").lines().at(0);
    const std::string text = Ledgerctl(Data() + " kpi --period " + period).out;
    for (const auto& [rule, n] : table["supporting"]["violations"]["by_rule"].items()) {
      ++rules_seen;
      EXPECT_NE(text.find(rule + " " + n.dump()), std::string::npos) << period << "\n" << text;
    }
  }
  EXPECT_GT(rules_seen, 0) << "the demo has violations in these quarters";
}

}  // namespace
}  // namespace gridledger::cli
