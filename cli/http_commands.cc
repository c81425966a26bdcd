#include "http_commands.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/http_client.h"
#include "import_command.h"
#include "projection_commands.h"

namespace gridledger::cli {

namespace {

using nlohmann::json;
namespace http = boost::beast::http;

// A query parameter's value, percent-encoded (a time's "+08:00" would read as a space).
std::string Encoded(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

// `path` with the parameters that have a value, e.g. /v1/kpi?period=2026-Q1&org=KM.XS.
std::string Target(std::string path,
                   const std::vector<std::pair<std::string, std::optional<std::string>>>& query) {
  char separator = '?';
  for (const auto& [name, value] : query) {
    if (!value) continue;
    path += separator + name + "=" + Encoded(*value);
    separator = '&';
  }
  return path;
}

// An answer of ledgerd: its HTTP status (0: none came) and its JSON body (discarded when the
// body is not JSON).
struct Answer {
  int status = 0;
  json body;
  bool ok() const { return status >= 200 && status < 300 && !body.is_discarded(); }
};

// One request on `connection` when given (its kept-alive connection serves many), else on a new
// one.
Answer Ask(const RemoteOptions& remote, http::verb verb, const std::string& target,
           const std::string& body = "", const std::map<std::string, std::string>& headers = {},
           client::HttpClient* connection = nullptr) {
  auto endpoint = SplitHostPort(remote.http, "--http");
  if (!endpoint) return {};
  std::map<std::string, std::string> sent = headers;
  if (!remote.approved_by.empty()) sent["X-Approved-By"] = remote.approved_by;
  std::optional<client::HttpClient> fresh;
  if (connection == nullptr) connection = &fresh.emplace(endpoint->first, endpoint->second);
  client::HttpResponse response = connection->Request(verb, target, remote.token, body, sent);
  if (response.status == 0) {
    std::cerr << "ledgerctl: no answer from ledgerd's HTTP door at " << remote.http
              << (body.empty() ? std::string()
                               : " (if it runs: a body that takes longer to send than its "
                                 "--http-body-timeout is cut, and its log says \"http request "
                                 "timed out\")")
              << "\n";
    return {};
  }
  return {response.status, json::parse(response.body, nullptr, /*allow_exceptions=*/false)};
}

// How a command ends on an answer that is not a 2xx JSON body: the body is printed (when JSON)
// and the server's message said; 4xx is rejected input, the rest a failure.
int Refused(const Answer& answer, std::ostream& out) {
  if (answer.status == 0) return kExitFailure;
  if (answer.body.is_discarded()) {
    std::cerr << "ledgerctl: ledgerd answered HTTP " << answer.status << " without JSON\n";
  } else {
    out << answer.body.dump() << "\n";
    const json* error = answer.body.contains("error") ? &answer.body["error"] : nullptr;
    if (error != nullptr && error->is_object() && error->contains("message") &&
        (*error)["message"].is_string()) {
      std::cerr << "ledgerctl: " << (*error)["message"].get<std::string>() << "\n";
    }
  }
  return answer.status >= 400 && answer.status < 500 ? kExitRejected : kExitFailure;
}

// One request; its JSON answer when the status is 2xx, else nullopt with `exit_code` set (see
// Refused).
std::optional<json> Exchange(const RemoteOptions& remote, http::verb verb,
                             const std::string& target, std::ostream& out, int& exit_code,
                             const std::string& body = "",
                             const std::map<std::string, std::string>& headers = {}) {
  Answer answer = Ask(remote, verb, target, body, headers);
  if (answer.ok()) return std::move(answer.body);
  exit_code = Refused(answer, out);
  return std::nullopt;
}

// Runs `print` on an answer; an answer without the fields it reads is ledgerd's fault, said so.
template <typename F>
int Printing(F&& print) {
  try {
    return print();
  } catch (const json::exception& e) {
    std::cerr << "ledgerctl: ledgerd's answer is not what this ledgerctl expects: " << e.what()
              << "\n";
    return kExitFailure;
  }
}

// Prints the answer as one JSON line.
int PrintAnswer(const RemoteOptions& remote, const std::string& target, std::ostream& out) {
  int exit_code = kExitOk;
  auto answer = Exchange(remote, http::verb::get, target, out, exit_code);
  if (answer) out << answer->dump() << "\n";
  return exit_code;
}

}  // namespace

int HttpApp(const RemoteOptions& remote, const std::string& id,
            const std::optional<std::string>& at, const std::optional<std::string>& as_of,
            std::ostream& out) {
  // The id as given ("app/" prefix or not): the server reads it as the embedded command does.
  return PrintAnswer(remote, Target("/v1/apps/" + Encoded(id), {{"at", at}, {"as_of", as_of}}),
                     out);
}

int HttpOverdue(const RemoteOptions& remote, const std::optional<std::string>& at,
                const std::optional<std::string>& org, bool table, std::ostream& out) {
  int exit_code = kExitOk;
  auto answer = Exchange(remote, http::verb::get, Target("/v1/overdue", {{"at", at}, {"org", org}}),
                         out, exit_code);
  if (!answer) return exit_code;
  return Printing([&] {
    if (table) {
      PrintOverdueTable(answer->at("overdue"), answer->at("calendar_missing"),
                        answer->at("at").get<std::string>(), out);
    } else {
      for (const json& row : answer->at("overdue")) out << row.dump() << "\n";
      for (const json& row : answer->at("calendar_missing")) out << row.dump() << "\n";
    }
    std::vector<std::string> clocks;
    for (const json& row : answer->at("calendar_missing")) {
      clocks.push_back(row.at("stream").get<std::string>() + "/" +
                       row.at("clock").get<std::string>());
    }
    SayCalendarMissing(clocks);
    return kExitOk;
  });
}

int HttpKpi(const RemoteOptions& remote, const std::string& period,
            const std::optional<std::string>& org, const std::optional<std::string>& as_of,
            bool as_json, std::ostream& out) {
  int exit_code = kExitOk;
  auto table = Exchange(remote, http::verb::get,
                        Target("/v1/kpi", {{"period", period}, {"org", org}, {"as_of", as_of}}),
                        out, exit_code);
  if (!table) return exit_code;
  if (as_json) {
    out << table->dump() << "\n";
    return kExitOk;
  }
  return Printing([&] {
    PrintKpiTable(*table, out);
    return kExitOk;
  });
}

int HttpEvidence(const RemoteOptions& remote, const std::string& id, std::ostream& out) {
  return PrintAnswer(remote, "/v1/evidence/" + Encoded(id), out);
}

int HttpEvidenceCoverage(const RemoteOptions& remote, const std::string& period,
                         const std::optional<std::string>& org, std::ostream& out) {
  return PrintAnswer(remote, Target("/v1/evidence", {{"period", period}, {"org", org}}), out);
}

int HttpStaff(const RemoteOptions& remote, const std::string& staff_id, std::ostream& out) {
  return PrintAnswer(remote, "/v1/staff/" + Encoded(staff_id), out);
}

int HttpVerify(const RemoteOptions& remote, const std::string& digest, std::ostream& out,
               const std::string& events_file) {
  std::optional<ledger::Digest> handed_out;
  if (!digest.empty()) {
    handed_out = ParseDigestArgument(digest);
    if (!handed_out) return kExitRejected;
  }
  int exit_code = kExitOk;
  auto answer = Exchange(remote, http::verb::get, "/v1/verify", out, exit_code);
  if (!answer) return exit_code;
  // The embedded verify's JSON type (keys in insertion order, what is added last).
  nlohmann::ordered_json shown = nlohmann::ordered_json::parse(answer->dump());
  if (!events_file.empty()) {
    // The chain verified, so the stored hash at each position is the recomputed one.
    bool asked = true;
    // One connection for every event's digest.
    const auto endpoint = SplitHostPort(remote.http, "--http");
    client::HttpClient digests(endpoint->first, endpoint->second);
    const int verdict = PrintEventsVerdict(
        shown, events_file,
        [&](uint64_t position) -> std::optional<std::string> {
          const Answer stored = Ask(remote, http::verb::get,
                                    "/v1/digest?at=" + std::to_string(position), "", {}, &digests);
          if (stored.ok()) return stored.body.value("hash", std::string());
          if (stored.status != 404) asked = false;
          return std::nullopt;
        },
        out);
    if (!asked) {
      std::cerr << "ledgerctl: ledgerd did not answer every digest: the verdict is incomplete\n";
      return kExitFailure;
    }
    return verdict;
  }
  if (handed_out) {
    // The chain verified, so the stored hash at the digest's position is the recomputed one
    // (as the embedded verify judges it). Only a stored hash that differs is a mismatch.
    const Answer stored =
        Ask(remote, http::verb::get, "/v1/digest?at=" + std::to_string(handed_out->position));
    if (!stored.ok() && stored.status != 404) return Refused(stored, out);
    return PrintDigestVerdict(
        shown, *handed_out,
        stored.ok() ? std::optional<std::string>(stored.body.value("hash", std::string()))
                    : std::nullopt,
        "the ledger ends before that position", out);
  }
  out << answer->dump() << "\n";
  return kExitOk;
}

int HttpBackup(const RemoteOptions& remote, const std::string& name, std::ostream& out) {
  int exit_code = kExitOk;
  auto answer =
      Exchange(remote, http::verb::post, Target("/v1/backup", {{"name", name}}), out, exit_code);
  if (answer) out << answer->dump() << "\n";
  return exit_code;
}

int HttpDigest(const RemoteOptions& remote, std::optional<uint64_t> at, std::ostream& out) {
  return PrintAnswer(
      remote,
      Target("/v1/digest",
             {{"at", at ? std::optional<std::string>(std::to_string(*at)) : std::nullopt}}),
      out);
}

namespace {

// Counts of the server's import summaries, added up over the requests of one file.
struct ImportTotals {
  uint64_t rows = 0, accepted = 0, duplicates = 0, rejected = 0, with_violations = 0;
  json errors = json::array();
  std::optional<json> failure;
  size_t requests = 0;
};

// ledgerd's answer about the rows of an import: 200 when none was rejected, 207 when some were
// and others stored, the first rejection's status (400, 403, 409) when none was stored. A 5xx
// (storage failing, shutting down) is the server's trouble, not the rows': the import stops there
// and exits 1, to be run again.
bool IsSummary(const Answer& answer) {
  return answer.status < 500 && answer.body.is_object() && answer.body.contains("rows") &&
         answer.body.contains("rejected");
}

}  // namespace

int HttpImport(const RemoteOptions& remote, const std::string& file, std::string format,
               std::ostream& out) {
  auto chosen = ChooseImportFormat(file, format, std::cerr);
  if (!chosen) return kExitRejected;  // a command line to fix
  std::ifstream file_stream;
  std::istream* input = OpenInput(file, file_stream, std::cerr, std::ios::in | std::ios::binary);
  if (input == nullptr) return kExitFailure;
  const std::string body{std::istreambuf_iterator<char>(*input), std::istreambuf_iterator<char>()};
  const bool csv = *chosen == ingest::ImportFormat::kCsv;
  const std::string target = std::string("/v1/import?format=") + (csv ? "csv" : "jsonl");
  const std::map<std::string, std::string> headers = {
      {"Content-Type", csv ? "text/csv" : "application/x-ndjson"}};

  // The file goes in requests of whole records under ledgerd's body limit (each request a CSV
  // with the header): a 413 halves the request size and sends the same records again. Importing
  // is idempotent, so a file cut short by a failure can simply be imported again.
  const std::vector<ingest::ImportRowSpan> rows = ingest::ImportRowSpans(body, *chosen);
  auto text = [&](size_t i) {
    return std::string_view(body).substr(rows[i].begin, rows[i].end - rows[i].begin);
  };
  const size_t header = csv && !rows.empty() ? 1 : 0;
  size_t request_bytes_max = size_t{4} << 20;
  ImportTotals totals;
  size_t next = header;
  do {
    std::string chunk(header != 0 ? text(0) : std::string_view());
    size_t end = next;
    while (end < rows.size() &&
           (end == next || chunk.size() + text(end).size() <= request_bytes_max)) {
      chunk += text(end++);
    }
    // The rows of a request follow each other in the file from rows[next]'s line: told so,
    // ledgerd reports the file's lines, in the line fields and in messages that name lines.
    std::string chunk_target = target;
    if (next < rows.size()) chunk_target += "&first_line=" + std::to_string(rows[next].line);
    if (rows.size() <= header) chunk = body;  // nothing but a header: the server says so
    const Answer answer = Ask(remote, http::verb::post, chunk_target, chunk, headers);
    if (answer.status == 413 && next >= rows.size()) {
      return Refused(answer, out);  // not even the CSV header fits in a request
    }
    if (answer.status == 413) {
      if (end - next > 1) {
        request_bytes_max /= 2;
        continue;
      }
      // One row larger than ledgerd takes in a request: rejected, and the import goes on (as a
      // rejected row of the embedded import; nothing of it was stored).
      ++totals.rows;
      ++totals.rejected;
      if (totals.errors.size() < 1000) {
        totals.errors.push_back(
            {{"line", rows[next].line},
             {"error",
              {{"code", "invalid"},
               {"rule", "row_too_large"},
               {"message", "the row is larger than ledgerd takes in one request (" +
                               std::to_string(text(next).size()) + " bytes)"}}}});
      }
      next = end;
      continue;
    }
    if (!IsSummary(answer)) {
      if (totals.requests > 0 || answer.status >= 500) {
        std::cerr << "ledgerctl: the import stopped at line "
                  << (next < rows.size() ? rows[next].line : 0)
                  << "; rows before it (and perhaps some after) were imported, and importing the "
                     "file again skips them\n";
      }
      return Refused(answer, out);
    }
    ++totals.requests;
    const json& summary = answer.body;
    totals.rows += summary.value("rows", uint64_t{0});
    totals.accepted += summary.value("accepted", uint64_t{0});
    totals.duplicates += summary.value("duplicates", uint64_t{0});
    totals.rejected += summary.value("rejected", uint64_t{0});
    totals.with_violations += summary.value("with_violations", uint64_t{0});
    if (summary.contains("errors") && summary["errors"].is_array()) {
      for (const json& error : summary["errors"]) {
        if (totals.errors.size() >= 1000) break;  // as ledgerd lists them
        totals.errors.push_back(error);
      }
    }
    if (summary.contains("failure")) {
      totals.failure = summary["failure"];
      break;
    }
    next = end;
  } while (next < rows.size());

  nlohmann::ordered_json shown = {{"ok", totals.rejected == 0 && !totals.failure},
                                  {"rows", totals.rows},
                                  {"accepted", totals.accepted},
                                  {"duplicates", totals.duplicates},
                                  {"rejected", totals.rejected},
                                  {"with_violations", totals.with_violations},
                                  {"errors", std::move(totals.errors)},
                                  {"requests", totals.requests}};
  if (totals.failure) shown["failure"] = *totals.failure;
  out << shown.dump() << "\n";
  // Exit as the embedded import: a bad CSV header or rejected rows are rejected input.
  if (totals.failure) {
    return totals.failure->value("rule", std::string()) == "bad_header" ? kExitRejected
                                                                        : kExitFailure;
  }
  return totals.rejected > 0 ? kExitRejected : kExitOk;
}

}  // namespace gridledger::cli
