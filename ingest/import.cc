// Bulk import (import.h, IMPORT.md). Three layers, each only talking to the next:
//   ByteReader  — the input in chunks, with a byte offset for progress;
//   RowSource   — JSONL lines or CSV records (RFC 4180) decoded into ClientEvents; a CSV row is
//                 turned into the JSON text of the event contract first, so both formats share
//                 DecodeClientEvent's rules and messages;
//   Pipeline    — a window of rows in line order, per-stream queues, and worker threads that append
//                 one row per stream at a time.
#include "ingest/import.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/event_json.h"
#include "ingest/event_codec.h"
#include "ledger/assert.h"

namespace gridledger::ingest {

namespace {

using nlohmann::json;

// Bytes read from the input at a time.
constexpr size_t kReadChunkBytes = 64 * 1024;
// on_progress is called after this many reported rows (and once at the end).
constexpr uint64_t kProgressRowsEvery = 256;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// ---- Formats ----

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

std::string_view TrimSpaces(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool IsBlank(std::string_view line) { return line.find_first_not_of(" \t\r") == line.npos; }

// ---- Input ----

// The input in chunks of kReadChunkBytes. Nothing throws: a failing stream ends the input and
// failed() tells an I/O error from the end.
class ByteReader {
 public:
  static constexpr int kEnd = -1;

  explicit ByteReader(std::istream& in) : in_(in), buffer_(kReadChunkBytes) {}

  int Get() {
    if (pos_ == end_ && !Fill()) return kEnd;
    ++offset_;
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  int Peek() {
    if (pos_ == end_ && !Fill()) return kEnd;
    return static_cast<unsigned char>(buffer_[pos_]);
  }

  // Skips a UTF-8 byte order mark (spreadsheet exports write one). Call before anything else.
  void SkipByteOrderMark() {
    if (pos_ == end_) Fill();
    if (end_ - pos_ >= kUtf8Bom.size() &&
        std::string_view(buffer_.data() + pos_, kUtf8Bom.size()) == kUtf8Bom) {
      pos_ += kUtf8Bom.size();
      offset_ += kUtf8Bom.size();
    }
  }

  // Reads through the next '\n' or to the end, keeping at most `max` bytes of the line (without
  // the '\n') in *line; *too_long when there were more. false when the input had ended.
  bool ReadLine(std::string* line, size_t max, bool* too_long) {
    line->clear();
    *too_long = false;
    bool any = false;
    for (;;) {
      if (pos_ == end_ && !Fill()) return any;
      any = true;
      const char* start = buffer_.data() + pos_;
      const size_t available = end_ - pos_;
      const auto* newline = static_cast<const char*>(std::memchr(start, '\n', available));
      const size_t length = newline != nullptr ? static_cast<size_t>(newline - start) : available;
      const size_t room = max - std::min(max, line->size());
      *too_long = *too_long || length > room;
      line->append(start, std::min(length, room));
      const size_t consumed = length + (newline != nullptr ? 1 : 0);
      pos_ += consumed;
      offset_ += consumed;
      if (newline != nullptr) return true;
    }
  }

  uint64_t offset() const { return offset_; }
  bool failed() const { return in_.bad(); }

 private:
  bool Fill() {
    if (!in_.good()) return false;
    in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    pos_ = 0;
    end_ = static_cast<size_t>(in_.gcount());
    return end_ > 0;
  }

  std::istream& in_;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t end_ = 0;
  uint64_t offset_ = 0;
};

// ---- JSON text ----

// The length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629), or 0.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // no overlong forms
    if (lead == 0xED) second_max = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const auto byte = static_cast<unsigned char>(text[i + k]);
    if (byte < (k == 1 ? second_min : 0x80) || byte > (k == 1 ? second_max : 0xBF)) return 0;
  }
  return length;
}

bool IsUtf8Text(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
    } else if (const size_t length = Utf8SequenceLength(text, i); length > 0) {
      i += length;
    } else {
      return false;
    }
  }
  return true;
}

bool AllUtf8(const std::vector<std::string>& fields) {
  return std::all_of(fields.begin(), fields.end(),
                     [](const std::string& field) { return IsUtf8Text(field); });
}

// Appends `text` as a JSON string literal; false when it is not valid UTF-8.
bool AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) {
      const size_t length = Utf8SequenceLength(text, i);
      if (length == 0) return false;
      out->append(text.substr(i, length));
      i += length;
      continue;
    }
    if (byte == '"' || byte == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(byte));
    } else if (byte == '\n') {
      out->append("\\n");
    } else if (byte == '\r') {
      out->append("\\r");
    } else if (byte == '\t') {
      out->append("\\t");
    } else if (byte < 0x20) {
      std::array<char, 8> escaped{};
      std::snprintf(escaped.data(), escaped.size(), "\\u%04x", byte);
      out->append(escaped.data());
    } else {
      out->push_back(static_cast<char>(byte));
    }
    ++i;
  }
  out->push_back('"');
  return true;
}

// Members of one JSON object being written as text: `"key":value` pairs.
class ObjectText {
 public:
  // `key` is one of the contract's keys or a schema field name: plain ASCII, never escaped.
  void AddRaw(std::string_view key, std::string_view raw_json) {
    Key(key);
    text_.append(raw_json);
  }
  bool AddString(std::string_view key, std::string_view value) {
    Key(key);
    return AppendJsonString(value, &text_);
  }
  bool empty() const { return text_.empty(); }
  std::string Close() const { return "{" + text_ + "}"; }

 private:
  void Key(std::string_view key) {
    if (!text_.empty()) text_.push_back(',');
    text_.append("\"").append(key).append("\":");
  }
  std::string text_;
};

// ---- What each data field holds (from the schema, domain/schema/events.capnp) ----

// How a CSV cell becomes a JSON value: a string as written, true/false, or JSON text.
enum class CellKind { kText, kBool, kJson };

CellKind CellKindOf(domain::DataValueKind kind) {
  switch (kind) {
    case domain::DataValueKind::kString:
      return CellKind::kText;
    case domain::DataValueKind::kBool:
      return CellKind::kBool;
    case domain::DataValueKind::kOther:
      break;
  }
  return CellKind::kJson;
}

class DataFieldKinds {
 public:
  DataFieldKinds() {
    for (const std::string& type : domain::KnownTypes()) {
      auto& fields = kinds_[type];
      for (domain::DataField& field : domain::DataFieldsOf(type)) {
        fields.emplace(std::move(field.key), CellKindOf(field.kind));
      }
    }
  }

  // nullopt when `type` is unknown or has no such field: the cell is passed on as a string and
  // DecodeClientEvent names the problem.
  std::optional<CellKind> Find(std::string_view type, std::string_view field) const {
    const auto fields = kinds_.find(type);
    if (fields == kinds_.end()) return std::nullopt;
    const auto kind = fields->second.find(field);
    if (kind == fields->second.end()) return std::nullopt;
    return kind->second;
  }

 private:
  std::map<std::string, std::map<std::string, CellKind, std::less<>>, std::less<>> kinds_;
};

// ---- CSV records (RFC 4180) ----

struct CsvRecord {
  uint64_t line = 0;  // physical line on which the record starts
  std::vector<std::string> fields;
  std::optional<std::string> error;  // why the record is malformed
  bool blank = false;                // an empty physical line
};

// Reads records of comma-separated fields: a field is quoted when it starts with '"', and then
// holds commas, line breaks and doubled quotes ("") as data. Records end at LF or CRLF. A quote
// inside an unquoted field is data; anything but a comma or a line break after a closing quote
// makes the record malformed. A record keeps at most kImportRowBytesMax bytes and kCsvColumnsMax
// fields; the rest is read to the record's end and dropped, and the record is malformed.
class CsvReader {
 public:
  explicit CsvReader(ByteReader& reader) : reader_(reader) {}

  // The next record's lines are counted from `line` (see ImportOptions::first_line).
  void NumberLinesFrom(uint64_t line) { line_ = line; }

  // false at the end of the input.
  bool Next(CsvRecord* record) {
    record->line = line_;
    record->fields.clear();
    record->error.reset();
    record->blank = false;
    record_bytes_ = 0;
    too_many_fields_ = false;
    if (reader_.Peek() == ByteReader::kEnd) return false;
    field_.clear();
    State state = State::kFieldStart;
    bool ended = false;
    bool any_byte = false;
    while (!ended) {
      const int c = reader_.Get();
      if (c == ByteReader::kEnd) {
        if (state == State::kQuoted) {
          Malformed(record, "a quoted field starting on line " + std::to_string(record->line) +
                                " is not closed before the end of the file");
        }
        EndField(record);
        break;
      }
      if (c == '\n') ++line_;
      const bool line_break = c == '\n' || (c == '\r' && reader_.Peek() == '\n');
      if (line_break && c == '\r' && state != State::kQuoted) continue;  // CRLF ends it too
      any_byte = any_byte || c != '\n';
      ended = Step(static_cast<char>(c), &state, record);
    }
    record->blank = !any_byte && record->fields.size() == 1 && record->fields[0].empty();
    return true;
  }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kClosingQuote };

  // One byte; true when it ended the record.
  bool Step(char c, State* state, CsvRecord* record) {
    switch (*state) {
      case State::kFieldStart:
        if (c == '"') {
          *state = State::kQuoted;
          return false;
        }
        [[fallthrough]];
      case State::kUnquoted:
        *state = State::kUnquoted;
        return Delimit(c, state, record);
      case State::kQuoted:
        if (c == '"') {
          *state = State::kClosingQuote;
        } else {
          Add(c, record);
        }
        return false;
      case State::kClosingQuote:
        if (c == '"') {  // a doubled quote is one quote of data
          Add('"', record);
          *state = State::kQuoted;
          return false;
        }
        if (c != ',' && c != '\n') {
          Malformed(record, "line " + std::to_string(line_) +
                                ": only a comma or the end of the line may follow a closing quote");
        }
        *state = State::kUnquoted;
        return Delimit(c, state, record);
    }
    return false;
  }

  // An unquoted byte: a field separator, the end of the record, or data.
  bool Delimit(char c, State* state, CsvRecord* record) {
    if (c == ',') {
      EndField(record);
      *state = State::kFieldStart;
      return false;
    }
    if (c == '\n') {
      EndField(record);
      return true;
    }
    Add(c, record);
    return false;
  }

  void Add(char c, CsvRecord* record) {
    if (++record_bytes_ > kImportRowBytesMax) {
      if (record_bytes_ == kImportRowBytesMax + 1) {
        Malformed(record,
                  "the record is longer than " + std::to_string(kImportRowBytesMax) + " bytes");
      }
      return;
    }
    field_.push_back(c);
  }

  void EndField(CsvRecord* record) {
    if (record->fields.size() == kCsvColumnsMax) {
      if (!too_many_fields_) {
        Malformed(record, "the record has more than " + std::to_string(kCsvColumnsMax) + " fields");
      }
      too_many_fields_ = true;
    } else {
      record->fields.push_back(std::move(field_));
    }
    field_.clear();
  }

  // The first reason wins; the record is still read to its end.
  static void Malformed(CsvRecord* record, std::string why) {
    if (!record->error) record->error = std::move(why);
  }

  ByteReader& reader_;
  uint64_t line_ = 1;
  std::string field_;
  size_t record_bytes_ = 0;
  bool too_many_fields_ = false;
};

// ---- CSV column mapping (IMPORT.md) ----

enum class Column {
  kStream,
  kType,
  kEventId,
  kOccurredAt,
  kActorId,
  kActorRole,
  kActorOrg,
  kExpectedVersion,
  kImport,
  kData,       // the whole data object as JSON
  kDataField,  // data.<field>
};

struct ColumnName {
  std::string_view name;
  Column column;
  bool required;
};

constexpr std::array<ColumnName, 10> kEnvelopeColumns = {{
    {"stream", Column::kStream, true},
    {"type", Column::kType, true},
    {"event_id", Column::kEventId, true},
    {"occurred_at", Column::kOccurredAt, true},
    {"actor_id", Column::kActorId, true},
    {"actor_role", Column::kActorRole, true},
    {"actor_org", Column::kActorOrg, true},
    {"expected_version", Column::kExpectedVersion, false},
    {"import", Column::kImport, false},
    {"data", Column::kData, false},
}};

constexpr std::string_view kDataFieldPrefix = "data.";

struct ColumnSpec {
  Column column;
  std::string field;  // kDataField: the data field's name
};

domain::DecodeError CellError(std::string path, std::string rule, std::string_view what) {
  std::string message = path + ": " + std::string(what);
  return domain::DecodeError{std::move(path), std::move(rule), std::move(message)};
}

class CsvMapping {
 public:
  // The mapping of a header record, or why the header cannot be mapped.
  static std::variant<CsvMapping, std::string> FromHeader(const std::vector<std::string>& names) {
    CsvMapping mapping;
    std::set<std::string, std::less<>> seen;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string name(TrimSpaces(names[i]));
      if (name.empty()) return "column " + std::to_string(i + 1) + " has no name";
      if (!seen.insert(name).second) return "column \"" + name + "\" appears twice";
      std::optional<ColumnSpec> spec = mapping.SpecOf(name);
      if (!spec) {
        return "unknown column \"" + name +
               "\": columns are stream, type, event_id, occurred_at, actor_id, actor_role, "
               "actor_org, optionally expected_version and import, and the data either as one "
               "\"data\" column (a JSON object) or as \"data.<name>\" columns (a name of UTF-8 "
               "text)";
      }
      if (spec->column == Column::kType) mapping.type_index_ = i;
      if (spec->column == Column::kStream) mapping.stream_index_ = i;
      mapping.columns_.push_back(std::move(*spec));
    }
    for (const ColumnName& column : kEnvelopeColumns) {
      if (column.required && !seen.contains(column.name)) {
        return "the header lacks the required column \"" + std::string(column.name) + "\"";
      }
    }
    const bool data_fields =
        std::any_of(mapping.columns_.begin(), mapping.columns_.end(),
                    [](const auto& c) { return c.column == Column::kDataField; });
    if (data_fields && seen.contains("data")) {
      return "give the data either as one \"data\" column or as \"data.<field>\" columns, not both";
    }
    return mapping;
  }

  size_t columns() const { return columns_.size(); }
  // The stream cell of a record of columns() cells (the header requires the column).
  const std::string& Stream(const std::vector<std::string>& cells) const {
    LEDGER_ASSERT(cells.size() == columns_.size());
    return cells[stream_index_];
  }

  // The JSON text of the event contract for one record of columns() cells. An empty cell is an
  // absent key (an empty data is {}), so DecodeClientEvent reports missing fields as such.
  std::variant<std::string, domain::DecodeError> EventJson(
      const std::vector<std::string>& cells) const {
    LEDGER_ASSERT(cells.size() == columns_.size());
    ObjectText event;
    ObjectText actor;
    ObjectText data;
    std::optional<std::string_view> data_json;
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string& cell = cells[i];
      if (cell.empty()) continue;
      const ColumnSpec& spec = columns_[i];
      std::optional<domain::DecodeError> error;
      switch (spec.column) {
        case Column::kActorId:
        case Column::kActorRole:
        case Column::kActorOrg:
          error = String(actor, "actor", ActorKey(spec.column), cell);
          break;
        case Column::kExpectedVersion:
          event.AddRaw("expected_version", IntegerLiteral(cell));
          break;
        case Column::kImport:
          error = Bool(event, "", "import", cell);
          break;
        case Column::kData:
          data_json = cell;
          break;
        case Column::kDataField:
          error = DataField(data, cells[type_index_], spec.field, cell);
          break;
        default:
          error = String(event, "", EnvelopeKey(spec.column), cell);
          break;
      }
      if (error) return *std::move(error);
    }
    if (!actor.empty()) event.AddRaw("actor", actor.Close());
    if (data_json) {
      const std::string_view trimmed = TrimSpaces(*data_json);
      if (trimmed.empty() || trimmed.front() != '{' || !json::accept(trimmed)) {
        return CellError("data", "malformed_json",
                         "the data column must hold one JSON object, such as "
                         "{\"scheme\":\"10kV single source\"}");
      }
      event.AddRaw("data", trimmed);
    } else {
      event.AddRaw("data", data.Close());
    }
    return event.Close();
  }

 private:
  CsvMapping() = default;

  std::optional<ColumnSpec> SpecOf(const std::string& name) const {
    for (const ColumnName& column : kEnvelopeColumns) {
      if (column.name == name) return ColumnSpec{column.column, ""};
    }
    // Any data key: data fields are the minimum and more are welcome (domain.md), and the decoder
    // keeps keys beyond a type's own. A misspelt field (another case or separator, one letter
    // off) is refused by the decoder in each row that fills it, with its hint, like in JSONL.
    std::string unused;
    if (name.starts_with(kDataFieldPrefix) && name.size() > kDataFieldPrefix.size() &&
        AppendJsonString(name, &unused)) {
      return ColumnSpec{Column::kDataField, name.substr(kDataFieldPrefix.size())};
    }
    return std::nullopt;
  }

  static std::string_view EnvelopeKey(Column column) {
    for (const ColumnName& known : kEnvelopeColumns) {
      if (known.column == column) return known.name;
    }
    LEDGER_ASSERT(false);
    return {};
  }

  static std::string_view ActorKey(Column column) {
    return column == Column::kActorId ? "id" : column == Column::kActorRole ? "role" : "org";
  }

  static std::string Path(std::string_view parent, std::string_view key) {
    return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
  }

  static std::optional<domain::DecodeError> String(ObjectText& object, std::string_view parent,
                                                   std::string_view key, std::string_view cell) {
    if (object.AddString(key, cell)) return std::nullopt;
    return CellError(Path(parent, key), "bad_value", "is not valid UTF-8");
  }

  // true/false in any letter case; anything else is passed on as a string (wrong_type).
  static std::optional<domain::DecodeError> Bool(ObjectText& object, std::string_view parent,
                                                 std::string_view key, std::string_view cell) {
    const std::string lower = Lower(TrimSpaces(cell));
    if (lower == "true" || lower == "false") {
      object.AddRaw(key, lower);
      return std::nullopt;
    }
    return String(object, parent, key, cell);
  }

  // An optional '-' and digits as a JSON number; anything else as a string (wrong_type).
  static std::string IntegerLiteral(std::string_view cell) {
    const std::string_view trimmed = TrimSpaces(cell);
    const std::string_view digits = trimmed.starts_with('-') ? trimmed.substr(1) : trimmed;
    // JSON has no leading zeros; 19 digits keep it an int64 for DecodeClientEvent's own check.
    const bool integer = !digits.empty() && digits.size() <= 19 &&
                         digits.find_first_not_of("0123456789") == std::string_view::npos &&
                         (digits.size() == 1 || digits.front() != '0');
    std::string out;
    if (integer) return std::string(trimmed);
    if (!AppendJsonString(cell, &out)) out = "\"\"";  // not UTF-8: any string is wrong_type
    return out;
  }

  // A cell by the kind of its field in the row's type. A column that is no field of that type (an
  // extra key, or another type's field) is a string: a cell's meaning never depends on guessing
  // whether it looks like a number.
  std::optional<domain::DecodeError> DataField(ObjectText& data, std::string_view type,
                                               const std::string& field,
                                               std::string_view cell) const {
    switch (kinds_.Find(type, field).value_or(CellKind::kText)) {
      case CellKind::kText:
        return String(data, "data", field, cell);
      case CellKind::kBool:
        return Bool(data, "data", field, cell);
      case CellKind::kJson:
        break;
    }
    const std::string_view trimmed = TrimSpaces(cell);
    if (json::accept(trimmed)) {
      data.AddRaw(field, trimmed);
      return std::nullopt;
    }
    if (trimmed.starts_with('[') || trimmed.starts_with('{')) {
      return CellError(Path("data", field), "malformed_json", "is not valid JSON");
    }
    return String(data, "data", field, cell);  // "80kVA" for a number: wrong_type
  }

  DataFieldKinds kinds_;
  std::vector<ColumnSpec> columns_;
  size_t type_index_ = 0;
  size_t stream_index_ = 0;
};

// ---- Rows ----

struct SourceRow {
  uint64_t line = 0;
  uint64_t end_offset = 0;  // input bytes up to the end of this row
  domain::Decoded<domain::ClientEvent> event = domain::DecodeError{};
  // A row that did not decode: the stream it names when that much can be read, else "". Its
  // stream's later rows are held back (Pipeline).
  std::string stream;
};

// The "stream" string of a JSON object line that did not decode as an event, or "".
std::string StreamNamed(std::string_view line) {
  const json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return "";
  const auto stream = object.find("stream");
  return stream != object.end() && stream->is_string() ? stream->get<std::string>() : "";
}

class RowSource {
 public:
  virtual ~RowSource() = default;
  // The next non-blank row; false at the end of the input or after a failure.
  virtual bool Next(SourceRow* row) = 0;
  const std::optional<ImportFailure>& failure() const { return failure_; }

 protected:
  explicit RowSource(ByteReader& reader) : reader_(reader) { reader_.SkipByteOrderMark(); }

  // At the end of the input: an I/O error is a failure, not the end.
  bool End(uint64_t line) {
    if (reader_.failed() && !failure_) {
      failure_ = ImportFailure{line, "read_error", "reading the input failed"};
    }
    return false;
  }

  ByteReader& reader_;
  std::optional<ImportFailure> failure_;
};

class JsonlSource final : public RowSource {
 public:
  JsonlSource(ByteReader& reader, uint64_t first_line)
      : RowSource(reader), line_number_(first_line == 0 ? 0 : first_line - 1) {}

  bool Next(SourceRow* row) override {
    bool too_long = false;
    while (reader_.ReadLine(&line_, kImportRowBytesMax, &too_long)) {
      ++line_number_;
      if (!too_long && IsBlank(line_)) continue;
      row->line = line_number_;
      row->end_offset = reader_.offset();
      if (too_long) {
        row->event = domain::DecodeError{
            "", "malformed_json",
            "the line is longer than " + std::to_string(kImportRowBytesMax) + " bytes"};
        row->stream.clear();  // not read: it holds nothing back
      } else {
        row->event = domain::DecodeClientEvent(std::string_view(line_));
        row->stream.clear();
        if (std::holds_alternative<domain::DecodeError>(row->event)) {
          row->stream = StreamNamed(line_);
        }
      }
      return true;
    }
    return End(line_number_);
  }

 private:
  std::string line_;
  uint64_t line_number_;  // of the last line read
};

class CsvSource final : public RowSource {
 public:
  CsvSource(ByteReader& reader, uint64_t first_line) : RowSource(reader), csv_(reader) {
    ReadHeader();
    if (mapping_ && first_line != 0) csv_.NumberLinesFrom(first_line);
  }

  bool Next(SourceRow* row) override {
    if (!mapping_) return false;
    while (csv_.Next(&record_)) {
      if (record_.blank) continue;
      row->line = record_.line;
      row->end_offset = reader_.offset();
      row->event = Decode();
      row->stream.clear();
      if (std::holds_alternative<domain::DecodeError>(row->event) && !record_.error &&
          record_.fields.size() == mapping_->columns()) {
        row->stream = mapping_->Stream(record_.fields);
      }
      return true;
    }
    return End(record_.line);
  }

 private:
  void ReadHeader() {
    while (csv_.Next(&record_)) {
      if (record_.blank) continue;
      if (record_.error) {
        failure_ = ImportFailure{record_.line, "bad_header", "the header row: " + *record_.error};
        return;
      }
      if (!AllUtf8(record_.fields)) {
        failure_ = ImportFailure{record_.line, "bad_header",
                                 std::string("the header row: ") + domain::kNotUtf8Text};
        return;
      }
      auto mapping = CsvMapping::FromHeader(record_.fields);
      if (auto* why = std::get_if<std::string>(&mapping)) {
        failure_ = ImportFailure{record_.line, "bad_header", *why};
      } else {
        mapping_.emplace(std::move(std::get<CsvMapping>(mapping)));
      }
      return;
    }
    End(record_.line);
    if (!failure_) {
      failure_ =
          ImportFailure{1, "bad_header", "the file is empty: a CSV import needs a header row"};
    }
  }

  domain::Decoded<domain::ClientEvent> Decode() const {
    if (record_.error) return domain::DecodeError{"", "malformed_csv", *record_.error};
    if (!AllUtf8(record_.fields))
      return domain::DecodeError{"", "malformed_csv", domain::kNotUtf8Text};
    if (record_.fields.size() != mapping_->columns()) {
      return domain::DecodeError{"", "malformed_csv",
                                 "the row has " + std::to_string(record_.fields.size()) +
                                     " fields, the header " + std::to_string(mapping_->columns())};
    }
    auto text = mapping_->EventJson(record_.fields);
    if (auto* error = std::get_if<domain::DecodeError>(&text)) return *error;
    return domain::DecodeClientEvent(std::string_view(std::get<std::string>(text)));
  }

  CsvReader csv_;
  CsvRecord record_;
  std::optional<CsvMapping> mapping_;
};

// ---- Appending ----

using AppendOutcome = std::variant<IngestOutcome, IngestError>;

bool IsBusy(const AppendOutcome& outcome) {
  const auto* error = std::get_if<IngestError>(&outcome);
  return error != nullptr && !error->rule && error->status.code() == ledger::Code::kBusy;
}

bool IsDuplicateMismatch(const AppendOutcome& outcome) {
  const auto* error = std::get_if<IngestError>(&outcome);
  return error != nullptr && error->status.code() == ledger::Code::kDuplicateMismatch;
}

struct PendingRow {
  uint64_t sequence = 0;
  domain::ClientEvent event;
  bool import_defaulted = false;  // the row did not set "import"; the importer set it to true
};

// Rows in line order (the window), per-stream queues of rows to append, and the workers.
// Lock order: only mutex_. Callbacks and appends run without it.
class Pipeline {
 public:
  Pipeline(const AppendFunction& append, const ImportOptions& options,
           const ImportRowCallback& on_row, const ImportProgressCallback& on_progress,
           uint64_t bytes_total)
      : append_(append),
        rows_buffered_max_(options.rows_buffered_max),
        on_row_(on_row),
        on_progress_(on_progress) {
    progress_.bytes_total = bytes_total;
    for (size_t i = 0; i < options.streams_in_flight_max; ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  ~Pipeline() { StopWorkers(); }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Takes one row, waiting while the window is full; reports the rows finished meanwhile.
  void Add(SourceRow source) {
    std::vector<Slot> finished;
    {
      std::unique_lock lock(mutex_);
      done_cv_.wait(lock, [&] {
        return worker_error_ || window_.size() < rows_buffered_max_ || window_.front().done;
      });
      if (worker_error_) {
        lock.unlock();
        RethrowWorkerError();
      }
      TakeFinished(&finished);
      Enqueue(std::move(source));
    }
    Deliver(&finished);
  }

  // Waits for every row, reports it, stops the workers. `bytes_read`: the input consumed, for the
  // last progress report (blank lines after the last row count as done).
  ImportSummary Finish(std::optional<ImportFailure> failure, uint64_t bytes_read) {
    for (;;) {
      std::vector<Slot> finished;
      {
        std::unique_lock lock(mutex_);
        done_cv_.wait(lock,
                      [&] { return worker_error_ || window_.empty() || window_.front().done; });
        if (worker_error_ || window_.empty()) break;
        TakeFinished(&finished);
      }
      Deliver(&finished);
    }
    RethrowWorkerError();
    StopWorkers();
    progress_.bytes_done = std::max(progress_.bytes_done, bytes_read);
    if (on_progress_) on_progress_(progress_);
    summary_.failure = std::move(failure);
    return summary_;
  }

 private:
  struct Slot {
    ImportRowOutcome outcome;
    uint64_t end_offset = 0;
    bool done = false;
  };
  struct StreamRows {
    std::deque<PendingRow> rows;
    bool busy = false;  // a worker is appending its front row; it is not in ready_
  };

  // REQUIRES: mutex_ held and room in the window.
  void Enqueue(SourceRow source) {
    const uint64_t sequence = window_first_ + window_.size();
    Slot& slot = window_.emplace_back();
    slot.outcome.line = source.line;
    slot.end_offset = source.end_offset;
    if (auto* error = std::get_if<domain::DecodeError>(&source.event)) {
      slot.outcome.rejection = std::move(*error);
      slot.done = true;
      if (!source.stream.empty()) Hold(source.stream, sequence, source.line);
      return;
    }
    PendingRow row{sequence, std::get<domain::ClientEvent>(std::move(source.event)), false};
    slot.outcome.stream = row.event.stream;
    slot.outcome.event_id = row.event.event_id;
    if (!row.event.extra.contains("import")) {
      row.event.extra["import"] = true;
      row.import_defaulted = true;
    }
    auto [it, inserted] = streams_.try_emplace(row.event.stream);
    it->second.rows.push_back(std::move(row));
    if (!it->second.busy && it->second.rows.size() == 1) {
      ready_.push_back(it->first);
      work_cv_.notify_one();
    }
  }

  // REQUIRES: mutex_ held. Moves the finished rows at the front of the window to *finished.
  void TakeFinished(std::vector<Slot>* finished) {
    while (!window_.empty() && window_.front().done) {
      finished->push_back(std::move(window_.front()));
      window_.pop_front();
      ++window_first_;
    }
  }

  void Deliver(std::vector<Slot>* finished) {
    for (Slot& slot : *finished) {
      const ImportRowOutcome& row = slot.outcome;
      ++summary_.rows;
      if (row.rejection) {
        ++summary_.rejected;
      } else {
        if (row.duplicate()) {
          ++summary_.duplicates;
        } else {
          ++summary_.accepted;
        }
        // A duplicate reports the violations its original was stored with, so importing a file
        // again counts them as the first import did.
        if (!row.stored->violations.empty()) ++summary_.with_violations;
      }
      if (on_row_) on_row_(row);
      progress_.rows = summary_.rows;
      progress_.bytes_done = slot.end_offset;
      if (on_progress_ && progress_.rows % kProgressRowsEvery == 0) on_progress_(progress_);
    }
  }

  void Work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      std::string stream = std::move(ready_.front());
      ready_.pop_front();
      StreamRows& queue = streams_.at(stream);  // stays valid: only its busy worker erases it
      PendingRow row = std::move(queue.rows.front());
      queue.rows.pop_front();
      queue.busy = true;
      std::optional<IngestError> held_back = HeldBack(row);
      lock.unlock();
      AppendOutcome outcome;
      try {
        if (held_back) {
          outcome = *std::move(held_back);
        } else {
          outcome = AppendRow(row);
        }
      } catch (...) {
        // Not handled here: Run's caller gets it once every worker stopped.
        lock.lock();
        if (!worker_error_) worker_error_ = std::current_exception();
        stopping_ = true;
        work_cv_.notify_all();
        done_cv_.notify_all();
        return;
      }
      lock.lock();
      Complete(row.sequence, std::move(outcome));
      if (queue.rows.empty()) {
        streams_.erase(stream);
      } else {
        queue.busy = false;
        ready_.push_back(std::move(stream));
      }
    }
  }

  // REQUIRES: mutex_ held. Rows of `stream` after the row `sequence` (at `line`) are not appended.
  void Hold(const std::string& stream, uint64_t sequence, uint64_t line) {
    auto [held, inserted] = held_.try_emplace(stream, Held{sequence, line});
    if (!inserted && sequence < held->second.sequence) held->second = Held{sequence, line};
  }

  // REQUIRES: mutex_ held. Why `row` is not appended (an earlier row of its stream was rejected:
  // it would be judged without that row, stored with violations it does not have, and the
  // corrected row could then come too late — after an Archived, say — to be stored at all), or
  // nullopt when it may be.
  std::optional<IngestError> HeldBack(const PendingRow& row) const {
    const auto held = held_.find(row.event.stream);
    if (held == held_.end() || held->second.sequence > row.sequence) return std::nullopt;
    std::string message = "not appended: line " + std::to_string(held->second.line) + " of " +
                          row.event.stream +
                          ", before it, was rejected, and the stream's later rows wait for it; "
                          "fix that row and import the file again (stored rows are skipped)";
    return IngestError{ledger::Status(ledger::Code::kInvalid, message),
                       domain::RuleBreach{"held_back", message}, false};
  }

  // REQUIRES: mutex_ held.
  void Complete(uint64_t sequence, AppendOutcome outcome) {
    LEDGER_ASSERT(sequence >= window_first_ && sequence - window_first_ < window_.size());
    Slot& slot = window_[sequence - window_first_];
    LEDGER_ASSERT(!slot.done);
    if (auto* stored = std::get_if<IngestOutcome>(&outcome)) {
      slot.outcome.stored = std::move(*stored);
    } else {
      slot.outcome.rejection = std::get<IngestError>(std::move(outcome));
      Hold(slot.outcome.stream, sequence, slot.outcome.line);
    }
    slot.done = true;
    if (sequence == window_first_) done_cv_.notify_one();
  }

  AppendOutcome AppendRow(const PendingRow& row) const {
    AppendOutcome outcome = AppendRetryingBusy(row.event);
    if (row.import_defaulted && IsDuplicateMismatch(outcome)) {
      // The flag is part of an event's content. The same record appended earlier without it (a
      // live append, an older import) is the same fact: the retry without the flag answers it
      // as a duplicate. A real mismatch stays one, and the first answer is reported.
      domain::ClientEvent live = row.event;
      live.extra.erase("import");
      AppendOutcome as_live = AppendRetryingBusy(live);
      if (std::holds_alternative<IngestOutcome>(as_live)) return as_live;
    }
    return outcome;
  }

  AppendOutcome AppendRetryingBusy(const domain::ClientEvent& event) const {
    auto backoff = std::chrono::microseconds(kImportBusyBackoffUsMin);
    AppendOutcome outcome = append_(event);
    for (int retry = 0; retry < kImportBusyRetriesMax && IsBusy(outcome); ++retry) {
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
      outcome = append_(event);
    }
    return outcome;
  }

  void StopWorkers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

  void RethrowWorkerError() {
    std::exception_ptr error;
    {
      std::lock_guard lock(mutex_);
      error = worker_error_;
    }
    if (error) {
      StopWorkers();
      std::rethrow_exception(error);
    }
  }

  const AppendFunction& append_;
  const size_t rows_buffered_max_;
  const ImportRowCallback& on_row_;
  const ImportProgressCallback& on_progress_;

  std::mutex mutex_;
  std::condition_variable work_cv_;  // a stream became ready, or stopping_
  std::condition_variable done_cv_;  // the window's first row finished, or a worker failed
  std::deque<Slot> window_;          // rows not yet reported, in line order
  uint64_t window_first_ = 0;        // the sequence number of window_.front()
  std::unordered_map<std::string, StreamRows> streams_;  // streams with rows not yet appended
  std::deque<std::string> ready_;  // streams with rows and no worker, in the order they got ready
  struct Held {
    uint64_t sequence = 0;  // of the stream's first rejected row
    uint64_t line = 0;      // its line
  };
  std::unordered_map<std::string, Held> held_;  // streams with a rejected row
  bool stopping_ = false;
  std::exception_ptr worker_error_;
  std::vector<std::thread> workers_;

  // Only the thread of Run touches these.
  ImportSummary summary_;
  ImportProgress progress_;
};

}  // namespace

std::optional<ImportFormat> ParseImportFormat(std::string_view name) {
  if (name == "jsonl") return ImportFormat::kJsonl;
  if (name == "csv") return ImportFormat::kCsv;
  return std::nullopt;
}

std::vector<ImportRowSpan> ImportRowSpans(std::string_view body, ImportFormat format) {
  std::istringstream in{std::string(body)};
  ByteReader reader(in);
  std::vector<ImportRowSpan> rows;
  if (format == ImportFormat::kCsv) {
    CsvReader csv(reader);
    CsvRecord record;
    for (size_t begin = 0; csv.Next(&record); begin = reader.offset()) {
      rows.push_back({begin, static_cast<size_t>(reader.offset()), record.line});
    }
    return rows;
  }
  std::string ignored;
  bool too_long = false;
  for (uint64_t line = 1;; ++line) {
    const size_t begin = reader.offset();
    if (!reader.ReadLine(&ignored, 0, &too_long)) break;
    rows.push_back({begin, static_cast<size_t>(reader.offset()), line});
  }
  return rows;
}

std::optional<ImportFormat> ImportFormatOfPath(std::string_view path) {
  const std::string lower = Lower(path);
  if (lower.ends_with(".jsonl") || lower.ends_with(".ndjson")) return ImportFormat::kJsonl;
  if (lower.ends_with(".csv")) return ImportFormat::kCsv;
  return std::nullopt;
}

nlohmann::ordered_json AppendedJson(const std::string& stream, const IngestOutcome& outcome) {
  nlohmann::ordered_json result = {{"ok", true},
                                   {"position", outcome.appended.position},
                                   {"stream", stream},
                                   {"version", outcome.appended.version},
                                   {"duplicate", outcome.appended.duplicate}};
  if (!outcome.violations.empty()) {
    nlohmann::ordered_json violations = nlohmann::ordered_json::array();
    for (const auto& violation : outcome.violations) {
      violations.push_back({{"rule", violation.rule}, {"message", violation.message}});
    }
    result["violations"] = std::move(violations);
  }
  if (!outcome.settles.empty()) {
    nlohmann::ordered_json settles = nlohmann::ordered_json::array();
    for (const auto& settled : outcome.settles) {
      settles.push_back(
          {{"rule", settled.rule}, {"position", settled.position}, {"message", settled.message}});
    }
    result["settles"] = std::move(settles);
  }
  return result;
}

nlohmann::ordered_json RejectionJson(const Rejection& rejection) {
  if (const auto* decode = std::get_if<domain::DecodeError>(&rejection)) return ErrorJson(*decode);
  const auto& refused = std::get<IngestError>(rejection);
  if (refused.forbidden) return {{"code", "forbidden"}, {"message", refused.status.message()}};
  return refused.rule ? ErrorJson(refused.status, *refused.rule) : ErrorJson(refused.status);
}

Importer::Importer(AppendFunction append, ImportOptions options)
    : append_(std::move(append)), options_(options) {
  LEDGER_ASSERT(append_);
  LEDGER_ASSERT(options_.streams_in_flight_max >= 1 &&
                options_.streams_in_flight_max <= kImportStreamsInFlightMax);
  LEDGER_ASSERT(options_.rows_buffered_max >= 1);
}

ImportSummary Importer::Run(std::istream& in, ImportFormat format, const ImportRowCallback& on_row,
                            const ImportProgressCallback& on_progress, uint64_t bytes_total) {
  ByteReader reader(in);
  std::unique_ptr<RowSource> source;
  if (format == ImportFormat::kCsv) {
    source = std::make_unique<CsvSource>(reader, options_.first_line);
  } else {
    source = std::make_unique<JsonlSource>(reader, options_.first_line);
  }
  Pipeline pipeline(append_, options_, on_row, on_progress, bytes_total);
  const auto stopped = [this] { return options_.stop != nullptr && options_.stop->load(); };
  uint64_t last_line = 0;
  for (SourceRow row; !stopped() && source->Next(&row);) {
    last_line = row.line;
    pipeline.Add(std::move(row));
  }
  std::optional<ImportFailure> failure = source->failure();
  if (!failure && stopped()) {
    failure = ImportFailure{
        last_line, "interrupted",
        "stopped after line " + std::to_string(last_line) +
            ": the rows after it were not read (importing the file again appends only what is "
            "missing)"};
  }
  return pipeline.Finish(failure, reader.offset());
}

}  // namespace gridledger::ingest
