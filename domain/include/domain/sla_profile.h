// SLA time-limit profiles and the classification of a stage clock (../shared/domain.md, "Time
// limits", "Counting", "SLA states").
//
// Limits are data: a profile file (domain/data/sla/*.json, format in domain/README.md) maps
// clock × customer class → working days, with its source, and carries the escalation thresholds,
// the warning rule and the backdating tolerance. An administrator replaces the file; no limit is in
// code.
//
// Thread-safety: SlaProfile is an immutable value; every function here is pure. Nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "domain/calendar.h"

namespace gridledger::domain {

// The stage clocks of domain.md. Values index SlaProfile's table.
enum class SlaClock : uint8_t {
  kSchemeReply,           // scheme_reply: ApplicationAccepted → SchemeReplied
  kDesignReview,          // design_review: DesignSubmitted → DesignReviewed
  kMidInspection,         // mid_inspection: MidInspectionRequested → MidInspected
  kCompletionInspection,  // completion_inspection: CompletionReported → CompletionInspected
  kConnection,            // connection: latest prerequisite → MeterConnected
  kChangeCompletion,      // change_completion: ApplicationAccepted (change) → ChangeExecuted
  // total: ApplicationAccepted → MeterConnected of a new install / capacity increase, the whole
  // wait a company may promise a limit for (domain.md: "totals of 6/22/32 working days"). Its
  // row is optional in a profile file; without one it has no limit for any class.
  kTotal,
};
inline constexpr int kSlaClockCount = 7;
// The clocks a profile file must list (all but kTotal).
inline constexpr int kSlaClockRequiredCount = 6;

// The customer classes that select a limit.
enum class SlaCustomerClass : uint8_t { kResidential, kLvNonResidential, kHvSingle, kHvDual };
inline constexpr int kSlaCustomerClassCount = 4;

std::string_view SlaClockName(SlaClock clock);  // "scheme_reply", …
std::optional<SlaClock> ParseSlaClock(std::string_view name);
std::string_view SlaCustomerClassName(SlaCustomerClass customer_class);  // "residential", …
std::optional<SlaCustomerClass> ParseSlaCustomerClass(std::string_view name);

// Bounds on profile values; anything outside is a typo in the file.
inline constexpr int32_t kSlaLimitDaysMax = 365;
inline constexpr int kEscalationLevels = 3;  // 催办/督办 levels 1..3 (Urged.level)
inline constexpr int32_t kEscalationOverdueDaysMax = 365;
inline constexpr int32_t kBackdatingToleranceWorkingDaysMax = 30;
inline constexpr int64_t kSlaProfileFileBytesMax = 64 * 1024;

// The rules that turn (limit, elapsed) into a state. Defaults mirror data/sla/national-2009.json so
// a default-constructed value is usable in tests; production reads them from the profile.
struct SlaThresholds {
  // Overdue days at which escalation level i+1 starts; strictly increasing, first >= 1.
  // Default: {1, 3, 6} (level 1: 1–2 days, level 2: 3–5, level 3: 6 or more).
  std::array<int32_t, kEscalationLevels> escalation_overdue_days_min = {1, 3, 6};
  // Warning when not overdue and (limit − elapsed <= warning_remaining_days_max or
  // elapsed * 100 >= warning_elapsed_percent_min * limit). Default: 1 and 80.
  int32_t warning_remaining_days_max = 1;
  int32_t warning_elapsed_percent_min = 80;
};

enum class SlaState : uint8_t {
  kOnTrack,
  kWarning,
  kOverdue,
  kPaused,
  kMet,
  kMissed,
  kCalendarMissing,  // decided by the caller: the calendar could not answer
};
std::string_view SlaStateName(SlaState state);  // "on_track", "warning", … "calendar_missing"

// What the caller knows about one clock at the evaluation time.
struct ClockReading {
  int32_t limit_days = 0;
  int32_t elapsed_working_days = 0;  // working days in (start, end or T], minus paused working days
  bool paused = false;               // open and currently paused (ignored when closed)
  bool closed = false;               // the ending event happened
};

struct SlaStatus {
  SlaState state = SlaState::kOnTrack;
  int32_t overdue_days = 0;  // max(0, elapsed − limit), also for missed and paused clocks
  int escalation_level = 0;  // 1..kEscalationLevels when overdue, else 0
};

// closed → met (elapsed <= limit) / missed; paused → paused; then overdue / warning / on_track.
SlaStatus ClassifyClock(const ClockReading& reading, const SlaThresholds& thresholds);

// The date on which elapsed reaches the limit: AddWorkingDays(start, limit + paused_working_days).
CalendarAnswer<Date> Deadline(const WorkingCalendar& calendar, Date start, int32_t limit_days,
                              int32_t paused_working_days);
// Working days in (start, end] minus paused working days (the clock's elapsed value).
CalendarAnswer<int32_t> ElapsedWorkingDays(const WorkingCalendar& calendar, Date start, Date end,
                                           int32_t paused_working_days);

class SlaProfile;
using SlaProfileResult = std::variant<SlaProfile, DataFileError>;

class SlaProfile {
 public:
  // Reads and validates a profile file; errors name the file, the field and the line when known.
  static SlaProfileResult Load(const std::string& path);
  // Validates JSON text; `file` is only used to name it in errors.
  static SlaProfileResult Parse(std::string_view json_text, const std::string& file = "<text>");

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

  // The limit in working days; nullopt when the clock does not apply to the class (the "–" cells)
  // or when a name is unknown.
  std::optional<int32_t> LimitDays(std::string_view clock, std::string_view customer_class) const;
  std::optional<int32_t> LimitDays(SlaClock clock, SlaCustomerClass customer_class) const;
  // False when no class has a limit for the clock (e.g. a profile without a `total` row): such a
  // clock is still folded, but not shown.
  bool Defines(SlaClock clock) const;

  const SlaThresholds& thresholds() const { return thresholds_; }
  // An event whose occurred_at lies more than this many working days before its recorded_at is
  // flagged as backdated.
  int32_t backdating_tolerance_working_days() const { return backdating_tolerance_working_days_; }

  SlaStatus Classify(const ClockReading& reading) const {
    return ClassifyClock(reading, thresholds_);
  }

 private:
  friend class SlaProfileParser;
  static constexpr int32_t kNotApplicable = -1;

  std::string name_;
  std::string source_;
  // limits_[clock][class] in working days, or kNotApplicable.
  std::array<std::array<int32_t, kSlaCustomerClassCount>, kSlaClockCount> limits_{};
  SlaThresholds thresholds_;
  int32_t backdating_tolerance_working_days_ = 1;
};

}  // namespace gridledger::domain
