#include "commands.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <variant>

#include <kj/encoding.h>
#include <nlohmann/json.hpp>

#include "context.h"
#include "domain/correction.h"
#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "ingest/import.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "projections/check.h"
#include "projections/engine.h"

namespace gridledger::cli {

namespace {

using json = nlohmann::ordered_json;

// Opens the ledger or prints why not (to stderr, as JSON on stdout for scripts). Only a command
// that writes creates one where there is none: reading a mistyped path must not answer "empty".
std::unique_ptr<ledger::Ledger> OpenOrReport(const std::string& data_dir, std::ostream& out,
                                             bool create = false) {
  ledger::Options options;
  options.create_if_missing = create;
  options.side_families = projections::SideFamilies();
  auto opened = ledger::Ledger::Open(data_dir, options);
  if (!opened.ok()) {
    out << json{{"ok", false}, {"error", ingest::ErrorJson(opened.status())}}.dump() << "\n";
    std::cerr << "ledgerctl: " << opened.status().message() << "\n";
    return nullptr;
  }
  return std::move(opened).value();
}

json AppendLine(ingest::Ingestor& ingestor, const domain::Actor& writer, const std::string& line,
                uint64_t line_number) {
  domain::Decoded<domain::ClientEvent> decoded = domain::DecodeClientEvent(line);
  if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
    return {{"ok", false}, {"line", line_number}, {"error", ingest::ErrorJson(*error)}};
  }
  std::get<domain::ClientEvent>(decoded).recorded_by = writer;
  std::string stream = std::get<domain::ClientEvent>(decoded).stream;
  auto outcome = ingestor.AppendAsItsActor(std::move(std::get<domain::ClientEvent>(decoded)));
  if (auto* error = std::get_if<ingest::IngestError>(&outcome)) {
    // As import prints a rejected row (and ledgerd answers): a refusal by role says forbidden.
    return {{"ok", false}, {"line", line_number}, {"error", ingest::RejectionJson(*error)}};
  }
  return ingest::AppendedJson(stream, std::get<ingest::IngestOutcome>(outcome));
}

// At most `width` bytes, cut at a character boundary (never inside a UTF-8 sequence).
std::string Shorten(std::string text, size_t width) {
  if (text.size() <= width) return text;
  size_t cut = width - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

// "2026-03-02T09:15:00+08:00": a time in Asia/Shanghai, whole seconds — the clocks' time zone,
// whatever offset the client wrote.
std::string ShanghaiSeconds(int64_t unix_us) {
  std::string text = domain::FormatTimestamp(unix_us, domain::kShanghaiUtcOffsetMinutes);
  if (size_t dot = text.find('.'); dot != std::string::npos) {
    text.erase(dot, text.find_first_of("+-Z", dot) - dot);
  }
  return text;
}

}  // namespace

domain::Actor LocalOperator() {
  // The effective user (`sudo ledgerctl` is root's doing); its uid when it has no name.
  std::string user = "uid-" + std::to_string(geteuid());
  if (const passwd* entry = getpwuid(geteuid()); entry != nullptr && entry->pw_name != nullptr) {
    user = entry->pw_name;
  }
  // An actor id is 1..64 of [A-Za-z0-9._:-] (domain/event_json.h).
  std::string id = "local:";
  for (char c : user) {
    const bool allowed = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
                         c == ':' || c == '-';
    id.push_back(allowed ? c : '_');
  }
  id.resize(std::min<size_t>(id.size(), 64));
  return {id, "admin", "local"};
}

bool RecordLocalRead(ledger::Ledger& ledger, std::string_view what) {
  auto decoded = ingest::PersonalDataReadEvent(LocalOperator(), what, "", NowUs());
  if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
    std::cerr << "ledgerctl: cannot record this read of personal data: " << error->message << "\n";
    return false;
  }
  ingest::Ingestor ingestor(ledger);
  auto outcome = ingestor.Append(std::get<domain::ClientEvent>(std::move(decoded)));
  if (auto* error = std::get_if<ingest::IngestError>(&outcome)) {
    std::cerr << "ledgerctl: cannot record this read of personal data, so it is not shown: "
              << error->status.message() << "\n";
    return false;
  }
  return true;
}

nlohmann::ordered_json ReadLine(const ledger::StoredEvent& event, bool envelope) {
  nlohmann::ordered_json line = ingest::StoredEventToJson(event);
  if (envelope) {
    const std::string bytes = event.CanonicalEnvelope();
    line["envelope"] =
        std::string(kj::encodeBase64(
                        kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()))
                        .cStr());
  }
  return line;
}

namespace {

// One line of `read --envelopes` checked without the ledger: its envelope decodes and hashes to
// its hash, and the line is byte for byte what `read --envelopes` prints for that envelope (the
// JSON is what people read: a duplicate key or 170.0 for 170 would compare equal as JSON).
struct LineVerdict {
  std::optional<ledger::StoredEvent> event;  // set when the line passed
  std::string code;                          // else: malformed, corruption or mismatch
  std::string message;
};

LineVerdict CheckEventLine(const std::string& text) {
  const nlohmann::ordered_json line = nlohmann::ordered_json::parse(text, nullptr, false);
  if (line.is_discarded() || !line.is_object() || !line.contains("envelope") ||
      !line["envelope"].is_string()) {
    return {std::nullopt, "malformed",
            "not a line of `read --envelopes` (a JSON object with \"envelope\")"};
  }
  const std::string encoded = line["envelope"].get<std::string>();
  auto decoded = kj::decodeBase64(kj::arrayPtr(encoded.data(), encoded.size()));
  if (decoded.hadErrors) return {std::nullopt, "malformed", "envelope is not base64"};
  auto checked = ledger::CheckEnvelope(
      std::string_view(reinterpret_cast<const char*>(decoded.begin()), decoded.size()));
  if (!checked.ok()) {
    return {std::nullopt,
            checked.status().code() == ledger::Code::kInvalid ? "malformed" : "corruption",
            checked.status().message()};
  }
  std::string_view raw = text;
  while (!raw.empty() && (raw.back() == '\r' || raw.back() == ' ' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  if (raw != ReadLine(*checked, true).dump()) {
    return {std::nullopt, "mismatch",
            "the line's fields differ from its envelope's (position " +
                std::to_string(checked->position) + ")"};
  }
  return {std::move(*checked), "", ""};
}

}  // namespace

int CheckCommand(const std::string& file, std::ostream& out) {
  std::ifstream file_stream;
  std::istream* input = OpenInput(file, file_stream, std::cerr);
  if (input == nullptr) return kExitFailure;
  uint64_t events = 0;
  uint64_t failed = 0;
  uint64_t malformed = 0;
  std::string text;
  for (uint64_t line_number = 1; std::getline(*input, text); ++line_number) {
    if (Blank(text)) continue;
    ++events;
    auto report = [&](const char* code, const std::string& message) {
      out << json{{"ok", false},
                  {"line", line_number},
                  {"error", {{"code", code}, {"message", message}}}}
                 .dump()
          << "\n";
    };
    const LineVerdict checked = CheckEventLine(text);
    if (!checked.event) {
      checked.code == "malformed" ? ++malformed : ++failed;
      report(checked.code.c_str(), checked.message);
      continue;
    }
    out << json{{"ok", true},
                {"line", line_number},
                {"position", checked.event->position},
                {"hash", ledger::ToHex(checked.event->hash)}}
               .dump()
        << "\n";
  }
  const bool ok = failed == 0 && malformed == 0 && events > 0;
  json summary = {{"ok", ok}, {"events", events}, {"failed", failed}, {"malformed", malformed}};
  if (ok) {
    // Each event is consistent with its own hash; that the hashes are the ledger's (so the
    // events are in its history, unchanged) is for the ledger to say, event by event: a forger
    // can make a consistent envelope with any content, but not the ledger's hash at its position.
    summary["prove_with"] = "ledgerctl verify --events " + file + " (against the ledger)";
  }
  out << summary.dump() << "\n";
  if (failed > 0) return kExitFailure;
  return ok ? kExitOk : kExitRejected;
}

int Append(const std::string& data_dir, const std::string& file, std::ostream& out) {
  std::ifstream file_stream;
  std::istream* input = OpenInput(file, file_stream, std::cerr);
  if (input == nullptr) return kExitFailure;
  std::istream& in = *input;
  auto ledger = OpenOrReport(data_dir, out, /*create=*/true);
  if (!ledger) return kExitFailure;
  // Projections follow inline: their states land in the same synced batch as the events.
  projections::Engine engine(*ledger);
  ledger::Status attached = engine.Attach();
  if (!attached.ok()) {
    std::cerr << "ledgerctl: projections: " << attached.message() << "\n";
    return kExitFailure;
  }
  ingest::Ingestor ingestor(*ledger);
  const domain::Actor writer = LocalOperator();
  bool any_rejected = false;
  std::string line;
  for (uint64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (Blank(line)) continue;
    json result = AppendLine(ingestor, writer, line, line_number);
    any_rejected |= !result["ok"].get<bool>();
    out << result.dump() << "\n";
  }
  return any_rejected ? kExitRejected : kExitOk;
}

int Read(const std::string& data_dir, const ReadOptions& options, std::ostream& out) {
  auto ledger = OpenOrReport(data_dir, out);
  if (!ledger) return kExitFailure;
  auto events = options.stream
                    ? ledger->ReadStream(*options.stream, options.from_version, options.limit)
                    : ledger->ReadFrom(options.from_position.value_or(1), options.limit);
  if (!events.ok()) {
    out << json{{"ok", false}, {"error", ingest::ErrorJson(events.status())}}.dump() << "\n";
    return kExitFailure;
  }
  // Before the read is recorded: that record is not more of what was asked for.
  const uint64_t head = ledger->Head();
  const bool personal = std::any_of(events->begin(), events->end(), [](const auto& event) {
    return event.stream.starts_with("app/");
  });
  if (personal) {
    const std::string what = options.stream
                                 ? *options.stream
                                 : "log positions " + std::to_string(events->front().position) +
                                       ".." + std::to_string(events->back().position);
    if (!RecordLocalRead(*ledger, what)) return kExitFailure;
  }
  for (const ledger::StoredEvent& event : *events) {
    out << ReadLine(event, options.envelopes).dump() << "\n";
  }
  // A page may not be all there is: say where to go on, so nobody takes it for the whole log.
  if (!events->empty() && events->size() >= options.limit) {
    const ledger::StoredEvent& last = events->back();
    bool more = head > last.position;
    if (options.stream) {
      auto version = ledger->StreamVersion(*options.stream);
      more = version.ok() && *version > static_cast<int64_t>(last.version);
    }
    if (more) {
      SayMoreFollow(std::cerr, events->size(), options,
                    options.stream ? last.version + 1 : last.position + 1);
    }
  }
  return kExitOk;
}

void SayMoreFollow(std::ostream& err, uint64_t shown, const ReadOptions& options, uint64_t next) {
  err << "ledgerctl: " << shown << " events shown (--limit); more follow: "
      << (options.stream ? "--from-version " : "--from ") << next << "\n";
}

void PrintHistory(const std::string& stream, const std::vector<ledger::StoredEvent>& events,
                  std::ostream& out) {
  out << "history of " << stream << " (" << events.size() << " events)\n";
  // Times in Asia/Shanghai (the clocks count its dates), whatever offset a client wrote; "yes"
  // under import marks a declared bulk import (never flagged as backdated). Backdating and
  // violations are judged by the projections: `app` shows them.
  out << std::left << std::setw(8) << "pos" << std::setw(4) << "ver" << std::setw(27)
      << "occurred_at" << std::setw(27) << "recorded_at" << std::setw(24) << "type" << std::setw(22)
      << "actor" << std::setw(18) << "recorded_by" << std::setw(7) << "import"
      << "data\n";
  // Corrections among the events (domain/correction.h): what each corrected, and which were not
  // applied, noted under the events, since the rows show the events as stored.
  const domain::AppliedCorrections corrections =
      domain::ApplyCorrections(ingest::Correctable(events));
  std::map<uint64_t, std::vector<std::string>> notes;  // by the position they are noted under
  for (const ledger::StoredEvent& e : events) {
    if (e.type != "Corrected") continue;
    if (auto refused = corrections.refused.find(e.position); refused != corrections.refused.end()) {
      notes[e.position].push_back("not applied: " + refused->second.message);
      continue;
    }
    if (auto request = domain::ReadCorrection(e.payload)) {
      notes[request->corrects_position].push_back("corrected by " + std::to_string(e.position) +
                                                  ": " + request->fields);
    }
  }
  for (const ledger::StoredEvent& event : events) {
    json shown = ingest::StoredEventToJson(event);
    std::string actor = event.actor.id + "/" + event.actor.role;
    // Blank: the actor appended it.
    std::string recorded_by = event.recorded_by ? event.recorded_by->id : "";
    out << std::left << std::setw(8) << event.position << std::setw(4) << event.version
        << std::setw(27) << ShanghaiSeconds(event.occurred_at_us) << std::setw(27)
        << ShanghaiSeconds(event.recorded_at_us) << std::setw(24) << event.type << std::setw(22)
        << Shorten(actor, 21) << std::setw(18) << Shorten(recorded_by, 17) << std::setw(7)
        << (event.imported ? "yes" : "") << Shorten(shown["data"].dump(), 60) << "\n";
    if (auto noted = notes.find(event.position); noted != notes.end()) {
      for (const std::string& note : noted->second) {
        out << std::string(12, ' ') << "↳ " << Shorten(note, 160) << "\n";
      }
    }
  }
  out << "last hash " << ledger::ToHex(events.back().hash) << "\n";
}

int History(const std::string& data_dir, const std::string& stream, std::ostream& out) {
  auto ledger = OpenOrReport(data_dir, out);
  if (!ledger) return kExitFailure;
  auto events = ledger->ReadStream(stream);
  if (!events.ok()) {
    std::cerr << "ledgerctl: " << events.status().ToString() << "\n";
    return kExitFailure;
  }
  if (events->empty()) {
    out << "stream " << stream << " has no events\n";
    return kExitRejected;
  }
  if (stream.starts_with("app/") && !RecordLocalRead(*ledger, stream)) return kExitFailure;
  PrintHistory(stream, *events, out);
  return kExitOk;
}

std::optional<ledger::Digest> ParseDigestArgument(const std::string& digest) {
  const size_t colon = digest.find(':');
  uint64_t position = 0;
  const char* begin = digest.data();
  const char* end = begin + (colon == std::string::npos ? 0 : colon);
  const bool hex = colon != std::string::npos &&
                   std::all_of(digest.begin() + colon + 1, digest.end(),
                               [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (colon == std::string::npos || std::from_chars(begin, end, position).ptr != end ||
      position == 0 || digest.size() - colon - 1 != 2 * ledger::kHashBytes || !hex) {
    std::cerr << "ledgerctl: --digest takes POSITION:HASH (64 hex digits), e.g. from "
                 "ledgerctl digest\n";
    return std::nullopt;
  }
  std::string hash = digest.substr(colon + 1);
  std::transform(hash.begin(), hash.end(), hash.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ledger::Digest{position, hash};
}

namespace {

constexpr std::string_view kScratchPrefix = ".gridledger-verify-";

// Removes what an earlier check beside `parent` left when it was killed (.gridledger-verify-PID-*
// of a process that is gone): hard links that keep deleted table files on the disk.
void RemoveLeftScratch(const std::filesystem::path& parent) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(parent, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kScratchPrefix)) continue;
    const std::string_view rest = std::string_view(name).substr(kScratchPrefix.size());
    pid_t pid = 0;
    const auto [end, parsed] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (parsed != std::errc() || end == rest.data() || *end != '-' || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // still running (or not ours to judge)
    std::error_code ignored;
    std::filesystem::remove_all(entry.path(), ignored);
  }
}

// A new empty directory beside the data directory (the same file system, so the copy's table
// files are hard links), for CheckProjections' copy; "" and why on stderr when none can be made.
std::string ScratchBeside(const std::string& data_dir) {
  std::error_code error;
  std::filesystem::path data = std::filesystem::absolute(data_dir, error).lexically_normal();
  if (!data.has_filename()) data = data.parent_path();  // "dir/" names dir
  RemoveLeftScratch(data.parent_path());
  std::string pattern = (data.parent_path() / (std::string(kScratchPrefix) +
                                               std::to_string(::getpid()) + "-XXXXXX"))
                            .string();
  if (error || mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "ledgerctl: cannot make a scratch directory beside " << data.string()
              << " for the fresh fold: " << std::strerror(errno) << "\n";
    return "";
  }
  return pattern;
}

// A state key as text: split states' item keys end in a binary index (split_state.h), whose bytes
// are neither text nor UTF-8 (JSON could not even hold them). Printable ASCII stays, a backslash
// and every other byte become \\ and \xNN.
std::string KeyText(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\\') {
      text += "\\\\";
    } else if (byte >= 0x20 && byte < 0x7f) {
      text += c;
    } else {
      text += "\\x";
      text += kHex[byte >> 4];
      text += kHex[byte & 0xf];
    }
  }
  return text;
}

// The projections' verdict: {ok, head, hash, projections} — the head and hash those of the copy
// the fresh fold was made in, which Ledger::Backup verified (the log's own: ledgerctl holds the
// data directory). The status when the check could not be made.
ledger::Result<json> ProjectionsVerdict(ledger::Ledger& ledger, const std::string& data_dir) {
  const std::string scratch = ScratchBeside(data_dir);
  if (scratch.empty()) {
    return ledger::Status(ledger::Code::kIoError,
                          "no scratch directory beside the data directory for the fresh fold");
  }
  ProgressBar bar("folding afresh");
  auto checked = projections::CheckProjections(
      ledger, scratch + "/copy", [&](uint64_t done, uint64_t head) { bar.Update(done, head); });
  bar.Finish();
  std::error_code ignored;  // the copy inside is gone already; an empty directory may stay
  std::filesystem::remove_all(scratch, ignored);
  if (!checked.ok()) return checked.status();
  json first = json::array();
  for (const projections::ProjectionDifference& difference : checked->first) {
    first.push_back({{"family", difference.family},
                     {"key", KeyText(difference.key)},
                     {"difference", projections::StateDifferenceName(difference.difference)}});
  }
  const uint64_t head = checked->head.position;
  json answer = {{"ok", checked->ok()}, {"head", head}, {"hash", checked->head.hash_hex}};
  answer["projections"] = {{"ok", checked->ok()},
                           {"checkpoint", checked->checkpoint},
                           // Events not folded yet (not checked): the next catch-up folds them.
                           {"behind", head - std::min(head, checked->checkpoint)},
                           {"states", checked->states},
                           {"differences", checked->differences},
                           {"first", std::move(first)}};
  if (!checked->ok()) {
    const projections::ProjectionDifference& shown = checked->first.front();
    std::cerr << "ledgerctl: " << checked->differences << " of the " << checked->states
              << " projection states compared (stored or folded) are not what a fresh fold of the "
                 "log up to position "
              << checked->checkpoint << " gives (first: " << shown.family << " "
              << KeyText(shown.key) << ", "
              << projections::StateDifferenceName(shown.difference)
              << "); `ledgerctl rebuild` replaces them with the fold\n";
  }
  return answer;
}

}  // namespace

int Verify(const std::string& data_dir, const std::string& digest, std::ostream& out,
           const std::string& events_file, bool projections) {
  std::optional<ledger::Digest> handed_out;
  if (!digest.empty()) {
    handed_out = ParseDigestArgument(digest);
    if (!handed_out) return kExitRejected;
  }
  auto ledger = OpenOrReport(data_dir, out);
  if (!ledger) return kExitFailure;
  std::optional<ledger::Status> not_compared;
  if (projections) {
    // The chain is verified once, in the copy the fold is made in. When the check cannot be made,
    // the chain is verified here (naming where it breaks, if that is why) and reported with why.
    auto verdict = ProjectionsVerdict(*ledger, data_dir);
    if (verdict.ok()) {
      out << verdict->dump() << "\n";
      return (*verdict)["ok"].get<bool>() ? kExitOk : kExitFailure;
    }
    not_compared = verdict.status();
  }
  auto verified = ledger->Verify();
  if (!verified.ok()) {
    json failure = {{"ok", false}, {"error", ingest::ErrorJson(verified.status())}};
    if (verified.status().position()) failure["position"] = *verified.status().position();
    std::cerr << "ledgerctl: verification failed: " << verified.status().message() << "\n";
    out << failure.dump() << "\n";
    return kExitFailure;
  }
  json answer = {{"ok", true}, {"head", verified->position}, {"hash", verified->hash_hex}};
  if (not_compared) {
    std::cerr << "ledgerctl: the projections could not be compared: " << not_compared->message()
              << "\n";
    answer["ok"] = false;
    answer["error"] = ingest::ErrorJson(*not_compared);
    out << answer.dump() << "\n";
    return kExitFailure;
  }
  if (!events_file.empty()) {
    return PrintEventsVerdict(
        answer, events_file,
        [&](uint64_t position) -> std::optional<std::string> {
          if (position == 0 || position > verified->position) return std::nullopt;
          auto stored = ledger->DigestAt(position);
          return stored.ok() ? std::optional<std::string>(stored->hash_hex) : std::nullopt;
        },
        out);
  }
  if (handed_out) {
    // The chain verified, so the stored hash at the digest's position is the recomputed one.
    auto stored = handed_out->position <= verified->position
                      ? ledger->DigestAt(handed_out->position)
                      : ledger::Result<ledger::Digest>(ledger::Status(
                            ledger::Code::kNotFound, "the ledger ends at " +
                                                         std::to_string(verified->position) +
                                                         ", before the digest's position"));
    return PrintDigestVerdict(
        answer, *handed_out,
        stored.ok() ? std::optional<std::string>(stored->hash_hex) : std::nullopt,
        stored.ok() ? "" : stored.status().message(), out);
  }
  out << answer.dump() << "\n";
  return kExitOk;
}

int PrintEventsVerdict(nlohmann::ordered_json& answer, const std::string& events_file,
                       const std::function<std::optional<std::string>(uint64_t)>& stored_hash,
                       std::ostream& out) {
  std::ifstream file_stream;
  std::istream* input = OpenInput(events_file, file_stream, std::cerr);
  if (input == nullptr) return kExitFailure;
  constexpr size_t kMismatchesShownMax = 100;
  uint64_t checked = 0;
  uint64_t matching = 0;
  nlohmann::ordered_json mismatches = nlohmann::ordered_json::array();
  std::string text;
  for (uint64_t line_number = 1; std::getline(*input, text); ++line_number) {
    if (Blank(text)) continue;
    // The ledger holds hashes, so a line is first held to its own hash, as `check` does: its
    // fields and envelope must be what hashes to it. Otherwise a line with edited fields and the
    // original hash would pass.
    const LineVerdict line = CheckEventLine(text);
    if (line.code == "malformed") {
      std::cerr << "ledgerctl: " << events_file << " line " << line_number << ": " << line.message
                << "; export the events with `read --envelopes`\n";
      return kExitRejected;
    }
    ++checked;
    std::optional<std::string> stored;
    nlohmann::ordered_json mismatch = {{"line", line_number}};
    if (line.event) {
      const std::string hash = ledger::ToHex(line.event->hash);
      stored = stored_hash(line.event->position);
      if (stored == hash) {
        ++matching;
        continue;
      }
      mismatch["position"] = line.event->position;
      mismatch["hash"] = hash;
      mismatch["ledger_hash"] = stored ? json(*stored) : json(nullptr);
      mismatch["reason"] = stored ? "the ledger holds another event at this position"
                                  : "the ledger has no event at this position";
    } else {
      mismatch["reason"] = line.message;  // the line is not what its own hash stands for
    }
    if (mismatches.size() < kMismatchesShownMax) mismatches.push_back(std::move(mismatch));
  }
  const bool all = checked > 0 && matching == checked;
  answer["ok"] = all;
  answer["events"] = {{"checked", checked}, {"matching", matching}, {"mismatches", mismatches}};
  out << answer.dump() << "\n";
  if (checked == 0) {
    std::cerr << "ledgerctl: " << events_file << " holds no events\n";
    return kExitRejected;
  }
  return all ? kExitOk : kExitFailure;
}

int BackupCommand(const std::string& data_dir, const std::string& dest, std::ostream& out) {
  if (dest.empty()) {
    std::cerr << "ledgerctl: backup needs a directory to create\n";
    return kExitRejected;
  }
  auto ledger = OpenOrReport(data_dir, out);
  if (!ledger) return kExitFailure;
  const std::string absolute = std::filesystem::absolute(dest).string();
  auto backed_up = ledger->Backup(absolute);
  if (!backed_up.ok()) {
    out << json{{"ok", false}, {"error", ingest::ErrorJson(backed_up.status())}}.dump() << "\n";
    std::cerr << "ledgerctl: backup failed: " << backed_up.status().message() << "\n";
    return backed_up.status().code() == ledger::Code::kInvalid ? kExitRejected : kExitFailure;
  }
  out << json{{"ok", true},
              {"backup", absolute},
              {"head", backed_up->position},
              {"hash", backed_up->hash_hex}}
             .dump()
      << "\n";
  return kExitOk;
}

int PrintDigestVerdict(nlohmann::ordered_json& answer, const ledger::Digest& handed_out,
                       const std::optional<std::string>& stored_hash, std::string_view why_none,
                       std::ostream& out) {
  const bool matches = stored_hash == handed_out.hash_hex;
  answer["ok"] = matches;
  answer["digest"] = {
      {"position", handed_out.position}, {"hash", handed_out.hash_hex}, {"matches", matches}};
  out << answer.dump() << "\n";
  if (matches) return kExitOk;
  std::cerr << "ledgerctl: history up to position " << handed_out.position
            << " is not the one the digest was made of"
            << (stored_hash ? "" : ": " + std::string(why_none)) << "\n";
  return kExitFailure;
}

int DigestCommand(const std::string& data_dir, std::optional<uint64_t> at, std::ostream& out) {
  auto ledger = OpenOrReport(data_dir, out);
  if (!ledger) return kExitFailure;
  ledger::Digest digest = ledger->HeadDigest();
  if (at) {
    auto found = ledger->DigestAt(*at);
    if (!found.ok()) {
      out << json{{"ok", false}, {"error", ingest::ErrorJson(found.status())}}.dump() << "\n";
      return kExitRejected;
    }
    digest = *found;
  }
  out << json{{"position", digest.position}, {"hash", digest.hash_hex}}.dump() << "\n";
  return kExitOk;
}

}  // namespace gridledger::cli
