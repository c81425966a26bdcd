// SLA profiles: JSON file → validated limit table and thresholds; clock classification (see
// domain/sla_profile.h).
//
// Profile file grammar (JSON object, unknown keys rejected, every key required unless marked):
//   profile: string                          short name, e.g. "national-2009"
//   source: string                           the regulation or promise the limits come from
//   note: string                             optional
//   limits_working_days: {                   all six clocks, each with all four classes
//     <clock>: {residential: int|null, lv_nonresidential: int|null, hv_single: int|null,
//               hv_dual: int|null, source: string (optional)} }      null = clock not applicable
//   escalation: {level_overdue_days_min: [int, int, int]}              strictly increasing, >= 1
//   warning: {remaining_days_max: int, elapsed_percent_min: int}
//   backdating_tolerance_working_days: int
#include "domain/sla_profile.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

namespace gridledger::domain {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, kSlaClockCount> kClockNames = {
    "scheme_reply", "design_review",     "mid_inspection", "completion_inspection",
    "connection",   "change_completion", "total"};
constexpr std::array<std::string_view, kSlaCustomerClassCount> kClassNames = {
    "residential", "lv_nonresidential", "hv_single", "hv_dual"};

int LineAtByte(std::string_view text, size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + byte, '\n'));
}

// Best effort: the line of the last key of `path`, found as successive quoted keys; 0 if absent.
int LineOfPath(std::string_view text, std::initializer_list<std::string_view> path) {
  size_t at = 0;
  for (std::string_view key : path) {
    at = text.find("\"" + std::string(key) + "\"", at);
    if (at == std::string_view::npos) return 0;
  }
  return path.size() == 0 ? 0 : LineAtByte(text, at);
}

struct Context {
  std::string file;
  std::string_view text;

  DataFileError Error(std::string field, std::string rule, const std::string& what,
                      int line) const {
    std::string message = file;
    if (line > 0) message += ":" + std::to_string(line);
    if (!field.empty()) message += ": " + field;
    message += ": " + what;
    return DataFileError{file, line, std::move(field), std::move(rule), std::move(message)};
  }
};

}  // namespace

// Friend of SlaProfile: fills its private table from validated JSON.
class SlaProfileParser {
 public:
  explicit SlaProfileParser(Context context) : context_(std::move(context)) {}

  SlaProfileResult Run() {
    json root;
    try {
      root = json::parse(context_.text);
    } catch (const json::parse_error& e) {  // the library's only way to report a position
      return context_.Error("", "malformed_json", e.what(), LineAtByte(context_.text, e.byte));
    }
    if (!root.is_object()) return context_.Error("", "wrong_type", "must be a JSON object", 0);
    SlaProfile profile;
    if (auto error = Header(root, profile)) return *error;
    if (auto error = Limits(root["limits_working_days"], profile)) return *error;
    if (auto error = Escalation(root["escalation"], profile.thresholds_)) return *error;
    if (auto error = Warning(root["warning"], profile.thresholds_)) return *error;
    auto tolerance =
        Int(root["backdating_tolerance_working_days"], "backdating_tolerance_working_days", 0,
            kBackdatingToleranceWorkingDaysMax, {"backdating_tolerance_working_days"});
    if (auto* error = std::get_if<DataFileError>(&tolerance)) return *error;
    profile.backdating_tolerance_working_days_ = std::get<int32_t>(tolerance);
    return profile;
  }

 private:
  using Names = std::vector<std::string_view>;

  std::optional<DataFileError> Keys(const json& object, const std::string& path,
                                    const Names& allowed, const Names& required) const {
    for (const auto& [key, value] : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        const std::string field = path.empty() ? key : path + "." + key;
        return context_.Error(field, "unknown_field", "is not a known key here",
                              LineOfPath(context_.text, {key}));
      }
    }
    for (std::string_view key : required) {
      if (!object.contains(key)) {
        const std::string field = path.empty() ? std::string(key) : path + "." + std::string(key);
        return context_.Error(field, "missing_field", "is required", 0);
      }
    }
    return std::nullopt;
  }

  std::variant<int32_t, DataFileError> Int(const json& value, const std::string& field, int32_t min,
                                           int32_t max,
                                           std::initializer_list<std::string_view> path) const {
    if (!value.is_number_integer() || value.get<int64_t>() < min || value.get<int64_t>() > max) {
      return context_.Error(field, value.is_number_integer() ? "bad_value" : "wrong_type",
                            "must be an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "], got " + value.dump(),
                            LineOfPath(context_.text, path));
    }
    return value.get<int32_t>();
  }

  std::optional<DataFileError> NonEmptyString(const json& value, const std::string& field) const {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
      return context_.Error(field, "wrong_type", "must be a non-empty string",
                            LineOfPath(context_.text, {field}));
    }
    return std::nullopt;
  }

  std::optional<DataFileError> Header(const json& root, SlaProfile& profile) const {
    if (auto error = Keys(root, "",
                          {"profile", "source", "note", "limits_working_days", "escalation",
                           "warning", "backdating_tolerance_working_days"},
                          {"profile", "source", "limits_working_days", "escalation", "warning",
                           "backdating_tolerance_working_days"})) {
      return error;
    }
    if (auto error = NonEmptyString(root["profile"], "profile")) return error;
    if (auto error = NonEmptyString(root["source"], "source")) return error;
    if (root.contains("note") && !root["note"].is_string()) {
      return context_.Error("note", "wrong_type", "must be a string",
                            LineOfPath(context_.text, {"note"}));
    }
    profile.name_ = root["profile"].get<std::string>();
    profile.source_ = root["source"].get<std::string>();
    return std::nullopt;
  }

  std::optional<DataFileError> Limits(const json& limits, SlaProfile& profile) const {
    const std::string path = "limits_working_days";
    if (!limits.is_object()) {
      return context_.Error(path, "wrong_type", "must be an object of clocks",
                            LineOfPath(context_.text, {path}));
    }
    const Names clocks(kClockNames.begin(), kClockNames.end());
    const Names required(kClockNames.begin(), kClockNames.begin() + kSlaClockRequiredCount);
    if (auto error = Keys(limits, path, clocks, required)) return error;
    const Names classes(kClassNames.begin(), kClassNames.end());
    Names classes_and_source = classes;
    classes_and_source.push_back("source");
    for (int c = 0; c < kSlaClockCount; ++c) {
      const std::string_view clock = kClockNames[c];
      const std::string clock_path = path + "." + std::string(clock);
      if (c >= kSlaClockRequiredCount && !limits.contains(std::string(clock))) {
        profile.limits_[c].fill(SlaProfile::kNotApplicable);  // an optional clock left out
        continue;
      }
      const json& row = limits[std::string(clock)];
      if (!row.is_object()) {
        return context_.Error(clock_path, "wrong_type", "must be an object of classes",
                              LineOfPath(context_.text, {path, clock}));
      }
      if (auto error = Keys(row, clock_path, classes_and_source, classes)) return error;
      if (row.contains("source") && !row["source"].is_string()) {
        return context_.Error(clock_path + ".source", "wrong_type", "must be a string",
                              LineOfPath(context_.text, {path, clock, "source"}));
      }
      for (int k = 0; k < kSlaCustomerClassCount; ++k) {
        const json& cell = row[std::string(kClassNames[k])];
        if (cell.is_null()) {
          profile.limits_[c][k] = SlaProfile::kNotApplicable;
          continue;
        }
        auto days = Int(cell, clock_path + "." + std::string(kClassNames[k]), 0, kSlaLimitDaysMax,
                        {path, clock, kClassNames[k]});
        if (auto* error = std::get_if<DataFileError>(&days)) return *error;
        profile.limits_[c][k] = std::get<int32_t>(days);
      }
    }
    return std::nullopt;
  }

  std::optional<DataFileError> Escalation(const json& escalation, SlaThresholds& thresholds) const {
    const std::string path = "escalation";
    if (!escalation.is_object()) {
      return context_.Error(path, "wrong_type", "must be an object",
                            LineOfPath(context_.text, {path}));
    }
    if (auto error =
            Keys(escalation, path, {"level_overdue_days_min"}, {"level_overdue_days_min"})) {
      return error;
    }
    const json& levels = escalation["level_overdue_days_min"];
    const std::string field = path + ".level_overdue_days_min";
    const int line = LineOfPath(context_.text, {path, "level_overdue_days_min"});
    if (!levels.is_array() || levels.size() != static_cast<size_t>(kEscalationLevels)) {
      return context_.Error(field, "wrong_type",
                            "must be an array of " + std::to_string(kEscalationLevels) +
                                " integers (overdue days starting levels 1.." +
                                std::to_string(kEscalationLevels) + ")",
                            line);
    }
    for (int i = 0; i < kEscalationLevels; ++i) {
      const int32_t min = i == 0 ? 1 : thresholds.escalation_overdue_days_min[i - 1] + 1;
      auto days = Int(levels[i], field + "[" + std::to_string(i) + "]", min,
                      kEscalationOverdueDaysMax, {path, "level_overdue_days_min"});
      if (auto* error = std::get_if<DataFileError>(&days)) {
        error->message += " (levels start at >= 1 overdue day and strictly increase)";
        return *error;
      }
      thresholds.escalation_overdue_days_min[i] = std::get<int32_t>(days);
    }
    return std::nullopt;
  }

  std::optional<DataFileError> Warning(const json& warning, SlaThresholds& thresholds) const {
    const std::string path = "warning";
    if (!warning.is_object()) {
      return context_.Error(path, "wrong_type", "must be an object",
                            LineOfPath(context_.text, {path}));
    }
    if (auto error = Keys(warning, path, {"remaining_days_max", "elapsed_percent_min"},
                          {"remaining_days_max", "elapsed_percent_min"})) {
      return error;
    }
    auto remaining = Int(warning["remaining_days_max"], path + ".remaining_days_max", 0,
                         kSlaLimitDaysMax, {path, "remaining_days_max"});
    if (auto* error = std::get_if<DataFileError>(&remaining)) return *error;
    auto percent = Int(warning["elapsed_percent_min"], path + ".elapsed_percent_min", 1, 100,
                       {path, "elapsed_percent_min"});
    if (auto* error = std::get_if<DataFileError>(&percent)) return *error;
    thresholds.warning_remaining_days_max = std::get<int32_t>(remaining);
    thresholds.warning_elapsed_percent_min = std::get<int32_t>(percent);
    return std::nullopt;
  }

  Context context_;
};

// ---- names --------------------------------------------------------------------------------------

std::string_view SlaClockName(SlaClock clock) { return kClockNames[static_cast<int>(clock)]; }

std::optional<SlaClock> ParseSlaClock(std::string_view name) {
  for (int i = 0; i < kSlaClockCount; ++i) {
    if (kClockNames[i] == name) return static_cast<SlaClock>(i);
  }
  return std::nullopt;
}

std::string_view SlaCustomerClassName(SlaCustomerClass customer_class) {
  return kClassNames[static_cast<int>(customer_class)];
}

std::optional<SlaCustomerClass> ParseSlaCustomerClass(std::string_view name) {
  for (int i = 0; i < kSlaCustomerClassCount; ++i) {
    if (kClassNames[i] == name) return static_cast<SlaCustomerClass>(i);
  }
  return std::nullopt;
}

std::string_view SlaStateName(SlaState state) {
  switch (state) {
    case SlaState::kOnTrack:
      return "on_track";
    case SlaState::kWarning:
      return "warning";
    case SlaState::kOverdue:
      return "overdue";
    case SlaState::kPaused:
      return "paused";
    case SlaState::kMet:
      return "met";
    case SlaState::kMissed:
      return "missed";
    case SlaState::kCalendarMissing:
      return "calendar_missing";
  }
  return "unknown";
}

// ---- classification -----------------------------------------------------------------------------

SlaStatus ClassifyClock(const ClockReading& reading, const SlaThresholds& thresholds) {
  const int32_t limit = reading.limit_days;
  const int32_t elapsed = reading.elapsed_working_days;
  SlaStatus status;
  status.overdue_days = std::max<int32_t>(0, elapsed - limit);
  if (reading.closed) {
    status.state = elapsed <= limit ? SlaState::kMet : SlaState::kMissed;
    return status;
  }
  if (reading.paused) {
    status.state = SlaState::kPaused;
    return status;
  }
  if (status.overdue_days > 0) {
    status.state = SlaState::kOverdue;
    for (int i = 0; i < kEscalationLevels; ++i) {
      if (status.overdue_days >= thresholds.escalation_overdue_days_min[i]) {
        status.escalation_level = i + 1;
      }
    }
    return status;
  }
  const bool near_end = limit - elapsed <= thresholds.warning_remaining_days_max;
  const bool mostly_used =
      int64_t{elapsed} * 100 >= int64_t{thresholds.warning_elapsed_percent_min} * limit;
  status.state = near_end || mostly_used ? SlaState::kWarning : SlaState::kOnTrack;
  return status;
}

CalendarAnswer<Date> Deadline(const WorkingCalendar& calendar, Date start, int32_t limit_days,
                              int32_t paused_working_days) {
  return calendar.AddWorkingDays(start, limit_days + paused_working_days);
}

CalendarAnswer<int32_t> ElapsedWorkingDays(const WorkingCalendar& calendar, Date start, Date end,
                                           int32_t paused_working_days) {
  CalendarAnswer<int32_t> answer = calendar.WorkingDaysIn(start, end);
  if (answer.ok()) *answer.value -= paused_working_days;
  return answer;
}

// ---- SlaProfile ---------------------------------------------------------------------------------

SlaProfileResult SlaProfile::Parse(std::string_view json_text, const std::string& file) {
  const Context context{file, json_text};
  if (static_cast<int64_t>(json_text.size()) > kSlaProfileFileBytesMax) {
    return context.Error("", "too_large",
                         "exceeds " + std::to_string(kSlaProfileFileBytesMax) + " bytes", 0);
  }
  return SlaProfileParser(context).Run();
}

SlaProfileResult SlaProfile::Load(const std::string& path) {
  const Context context{path, {}};
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return context.Error("", "unreadable", ec.message(), 0);
  if (size > static_cast<uintmax_t>(kSlaProfileFileBytesMax)) {
    return context.Error("", "too_large",
                         "exceeds " + std::to_string(kSlaProfileFileBytesMax) + " bytes", 0);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return context.Error("", "unreadable", "could not be opened", 0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) {
    return context.Error("", "unreadable", "could not be read completely", 0);
  }
  return Parse(text, path);
}

std::optional<int32_t> SlaProfile::LimitDays(std::string_view clock,
                                             std::string_view customer_class) const {
  const std::optional<SlaClock> parsed_clock = ParseSlaClock(clock);
  const std::optional<SlaCustomerClass> parsed_class = ParseSlaCustomerClass(customer_class);
  if (!parsed_clock || !parsed_class) return std::nullopt;
  return LimitDays(*parsed_clock, *parsed_class);
}

std::optional<int32_t> SlaProfile::LimitDays(SlaClock clock,
                                             SlaCustomerClass customer_class) const {
  const int32_t days = limits_[static_cast<int>(clock)][static_cast<int>(customer_class)];
  if (days == kNotApplicable) return std::nullopt;
  return days;
}

bool SlaProfile::Defines(SlaClock clock) const {
  const auto& row = limits_[static_cast<int>(clock)];
  return std::any_of(row.begin(), row.end(), [](int32_t days) { return days != kNotApplicable; });
}

}  // namespace gridledger::domain
