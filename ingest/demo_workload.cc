#include "ingest/demo_workload.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "domain/event_json.h"
#include "domain/workflow.h"
#include "ledger/assert.h"

// How it works. Every source of events is a Process with the time of its next event; a min-heap
// ordered by (time, insertion sequence) picks the next one, so the output is ordered by occurred_at
// and deterministic. Processes:
// - ArrivalProcess walks the working days of the period and accepts `apps` applications spread
//   over them; each becomes an AppProcess holding its whole plan (one Step per event, ~8–30 of
//   them), built at acceptance and checked against domain/workflow.h's rules by construction.
// - MonthProcess wakes on the first working day of each month and spawns one ScriptProcess with
//   that month's report, survey, training and data-access events.
// Times inside a plan are "working day after acceptance" and "second of the working day" (08:30–
// 12:00, 14:00–17:30), turned into dates through the WorkingCalendar when the plan is complete.

namespace gridledger::ingest {
namespace {

using domain::AppEventType;
using domain::Date;

// ---- Bounds ----
constexpr int kWorkSecondsPerDay = 7 * 3600;  // 08:30–12:00 and 14:00–17:30
constexpr int kMorningWorkSeconds = 12600;    // 08:30–12:00
constexpr int kSameDayGapSecondsMin = 300;
constexpr int kSameDayGapSecondsMax = 3600;
constexpr size_t kPlanStepsMax = 128;  // a typical plan has 5–20 steps, the worst ~70
constexpr int kReviewRoundsMax = 3;    // a review/inspection fails at most twice
constexpr int kStaffPerRoleMax = 99;   // ids have two digits
constexpr size_t kOrgsMax = 99;
constexpr int kAccessesPerOrgMonthMax = 40;
constexpr int kTrainingAttendeesMax = 15;
static_assert(kPlanStepsMax < 256, "a plan index fits the step counters");

// ---- The mix (fractions of applications unless said otherwise) ----
constexpr std::array<double, 4> kClassShare = {0.60, 0.25, 0.11, 0.04};  // by customer class
constexpr double kChangeShare = 0.20;
constexpr double kCapacityIncreaseShare = 0.15;
constexpr double kThreeZeroShareOfLv = 0.30;  // of LV new installs / capacity increases
// Residential jobs charged no business fee: their ApplicationAccepted says "fees_apply": false and
// no FeesSettled follows (domain.md stage 4 "when fees apply").
constexpr uint64_t kFeeFreeResidentialPercent = 40;
constexpr std::array<double, 4> kImportantShare = {0, 0, 0.15, 0.60};
constexpr double kSchemeLateRate = 0.10;  // of scheme replies
constexpr double kStageLateRate = 0.08;   // of other timed steps
constexpr double kUrgedWhenLateRate = 0.75;
constexpr double kCommittedDateRate = 0.5;  // of urges
constexpr double kPauseRate = 0.05;
constexpr double kWithdrawRate = 0.02;
constexpr double kViolationRate = 0.015;
constexpr double kReassignRate = 0.03;  // of surveyed applications
constexpr double kOptionalDesignRateHv = 0.25;
constexpr double kOptionalDesignRateLv = 0.05;
constexpr double kOptionalMidRateHv = 0.15;
constexpr double kDesignFailRate = 0.18;
constexpr double kMidFailRate = 0.10;
constexpr double kCompletionFailRate = 0.12;
constexpr double kEarlyContractRate = 0.5;
constexpr double kCallbackRate = 0.90;        // of connections
constexpr double kChangeCallbackRate = 0.40;  // of executed changes
constexpr double kCallbackRetryRate = 0.8;    // after no_answer
constexpr double kDocumentReviewRate = 0.08;
constexpr double kSiteInspectionRate = 0.04;
constexpr double kChangeSurveyRate = 0.4;
constexpr double kReportLateRate = 0.08;
constexpr double kReportCorrectedRate = 0.05;
constexpr double kAccessWithoutApprovalRate = 0.04;

// ---- Vocabulary ----
enum Cls : uint8_t { kResidential, kLvNonresidential, kHvSingle, kHvDual };
constexpr std::array<std::string_view, 4> kClassNames = {"residential", "lv_nonresidential",
                                                         "hv_single", "hv_dual"};
enum Biz : uint8_t { kNewInstall, kCapacityIncrease, kChange };
constexpr std::array<std::string_view, 3> kBusinessNames = {"new_install", "capacity_increase",
                                                            "change"};
constexpr std::array<std::string_view, 12> kChangeKindNames = {
    "capacity_reduction", "suspension",     "temporary_swap", "relocation", "meter_relocation",
    "temporary_removal",  "rename",         "split",          "merge",      "closure",
    "voltage_change",     "category_change"};
constexpr std::array<std::string_view, 12> kChangeSummaries = {
    "完成减容，封停一台变压器",     "完成暂停，变压器已加封",     "完成暂换变压器并验收",
    "完成迁址，新址装表接电",       "完成移表，计量装置已加封",   "完成暂拆，计量装置已拆回",
    "完成更名过户，档案已更新",     "完成分户，新户计量装置安装", "完成并户，计量点合并",
    "完成销户，计量装置已拆除结算", "完成改压，新电压等级送电",   "完成改类，电价类别已调整"};
// Change kinds whose execution is field work (inspector) and those that change the contract.
constexpr std::array<bool, 12> kChangeIsFieldWork = {true,  true, true, true, true, true,
                                                     false, true, true, true, true, false};
constexpr std::array<bool, 12> kChangeNeedsContract = {true, false, false, true,  false, false,
                                                       true, true,  true,  false, true,  true};

enum class Violation : uint8_t { kNone, kConnectBeforeContract, kConnectBeforeFees, kArchiveEarly };

enum class Role : uint8_t { kClerk, kInspector, kCallbackAgent, kDirector };
constexpr std::array<std::string_view, 4> kRoleNames = {"clerk", "inspector", "callback_agent",
                                                        "director"};
constexpr std::array<char, 4> kRoleDigits = {'1', '2', '4', '9'};

struct Limits {
  int scheme, design, mid, completion, connection;
};
// Default profile (domain.md, "Time limits"): working days per stage and class.
constexpr std::array<Limits, 4> kLimits = {
    {{3, 8, 3, 5, 3}, {8, 8, 3, 5, 5}, {20, 20, 5, 7, 7}, {45, 20, 5, 7, 7}}};
constexpr int kChangeLimit = 5;

constexpr std::array<std::string_view, 24> kSurnames = {
    "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙",
    "马", "朱", "胡", "郭", "何", "林", "罗", "高", "段", "普", "施", "杞"};
constexpr std::array<std::string_view, 30> kGivenChars = {
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "秀", "霞", "平", "刚", "桂", "华", "云", "春", "兰", "海", "玉", "建", "志"};
constexpr std::array<std::string_view, 12> kBrands = {
    "鑫盛", "恒达", "云岭", "金碧", "春城", "滇池", "彩云", "银河", "高原", "宏泰", "永安", "福顺"};
constexpr std::array<std::string_view, 14> kIndustries = {
    "精密机械", "商贸",     "物流",     "置业", "食品", "建材",     "酒店管理",
    "科技",     "冷链仓储", "农业科技", "制药", "水泥", "数据服务", "汽车销售"};
constexpr std::array<std::string_view, 3> kCompanySuffixes = {"有限公司", "股份有限公司",
                                                              "有限责任公司"};
constexpr std::array<std::string_view, 10> kShopKinds = {
    "便利店", "餐厅", "五金店", "药房", "理发店", "汽修厂", "小吃店", "超市", "茶室", "建材店"};
constexpr std::array<std::string_view, 10> kLineNames = {
    "滇池", "西华", "普坪", "马街", "金星", "北京路", "穿金", "小板桥", "关上", "龙泉"};
constexpr std::array<std::string_view, 4> kChannels = {"counter", "online", "phone", "mobile_app"};
constexpr std::array<std::string_view, 4> kPauseReasons = {
    "客户资料不全，待补充", "客户要求暂缓办理", "客户受电工程未具备条件", "客户内部审批未完成"};
constexpr std::array<std::string_view, 3> kCorrectionReasons = {
    "客户名称录入错误，按营业执照更正", "报装容量录入错误，按申请书更正",
    "受理时间录入错误，按受理登记表更正"};
constexpr std::array<std::string_view, 4> kWithdrawReasons = {"客户取消用电计划", "项目停建",
                                                              "客户另行选址", "重复申请"};
constexpr std::array<std::string_view, 4> kDesignDefects = {
    "主接线图与供电方案不符", "计量装置配置不符合要求", "继电保护配置缺失", "设计单位资质材料不全"};
constexpr std::array<std::string_view, 3> kMidDefects = {"电缆沟排水不畅", "接地电阻超标",
                                                         "隐蔽工程记录不全"};
constexpr std::array<std::string_view, 5> kCompletionDefects = {
    "变压器试验报告缺失", "接地电阻超标", "安全工器具配置不全", "计量柜封印缺失", "消防设施未完成"};
constexpr std::array<std::string_view, 6> kReviewItems = {
    "用电申请书", "身份证明", "产权证明", "供电方案答复单", "供用电合同", "竣工检验报告"};
constexpr std::array<std::string_view, 4> kSiteItems = {"计量装置", "接线方式", "封印完好",
                                                        "安全距离"};
constexpr std::array<std::string_view, 3> kSiteDefects = {"计量箱未加封", "表计接线错误",
                                                          "用电性质与申请不符"};
constexpr std::array<std::string_view, 3> kUrgeChannels = {"电话", "系统督办单", "协调会"};
constexpr std::array<std::string_view, 3> kComplaints = {"late", "improper_fee",
                                                         "designated_contractor"};
constexpr std::array<std::string_view, 3> kMonthlyReports = {"business_expansion", "time_limit",
                                                             "fees"};
constexpr std::string_view kQuarterlyReport = "kpi_quarterly";
constexpr std::array<std::string_view, 3> kAgencies = {
    "云南零点市场调查有限公司", "昆明思远市场研究有限公司", "云南统计咨询中心"};
constexpr std::array<std::string_view, 5> kSurveyIssues = {"接电时间偏长", "收费标准不够透明",
                                                           "存在指定设计施工单位现象",
                                                           "办电进度查询不便", "上门服务响应慢"};
constexpr std::array<std::string_view, 6> kTrainingTopics = {
    "业扩报装时限管理", "供电营业规则",       "三零服务规范",
    "客户信息保密",     "优质服务与投诉处理", "高压客户受电工程检验"};

struct DistrictCode {
  std::string_view org, name, code;
};
constexpr std::array<DistrictCode, 4> kDistricts = {{{"KM.XS", "西山区", "530112"},
                                                     {"KM.WH", "五华区", "530102"},
                                                     {"KM.GD", "官渡区", "530111"},
                                                     {"KM.PL", "盘龙区", "530103"}}};

// ---- Randomness: SplitMix64, fast and good enough for a workload ----
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }
  // Uniform in [lo, hi].
  int Between(int lo, int hi) {
    return lo + static_cast<int>(Below(static_cast<uint32_t>(hi - lo + 1)));
  }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  template <typename T, size_t N>
  const T& Pick(const std::array<T, N>& items) {
    return items[Below(N)];
  }

 private:
  uint64_t state_;
};

uint64_t Mix(uint64_t a, uint64_t b) { return Rng(a ^ (b * 0xD1B54A32D192ED03ULL)).Next(); }

// Index into `shares` (summing to ~1) chosen by `rng`.
template <size_t N>
size_t PickShare(Rng& rng, const std::array<double, N>& shares) {
  double u = static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;
  for (size_t i = 0; i + 1 < N; ++i) {
    if (u < shares[i]) return i;
    u -= shares[i];
  }
  return N - 1;
}

// ---- Time ----
int LocalSecondOfDay(int work_second) {
  return work_second < kMorningWorkSeconds ? 8 * 3600 + 1800 + work_second
                                           : 14 * 3600 + (work_second - kMorningWorkSeconds);
}
int64_t UnixSeconds(Date date, int local_second) {
  return int64_t{date.days_since_epoch()} * 86400 + local_second - 8 * 3600;
}

// ---- JSON text, written by hand: the generator must not be the bottleneck of a bulk load ----
class JsonOut {
 public:
  explicit JsonOut(std::string* out) : out_(out) {}
  JsonOut& Key(std::string_view key) {
    Separate();
    out_->push_back('"');
    out_->append(key);
    out_->append("\":");
    need_comma_ = false;
    return *this;
  }
  void Str(std::string_view value) {
    Separate();
    out_->push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') out_->push_back('\\');
      if (static_cast<unsigned char>(c) >= 0x20) out_->push_back(c);
    }
    out_->push_back('"');
    need_comma_ = true;
  }
  void Int(int64_t value) {
    Separate();
    char buffer[24];
    auto end = std::to_chars(buffer, buffer + sizeof(buffer), value).ptr;
    out_->append(buffer, end);
    need_comma_ = true;
  }
  void Raw(std::string_view text) {
    Separate();
    out_->append(text);
    need_comma_ = true;
  }
  void Bool(bool value) { Raw(value ? "true" : "false"); }
  void Open(char bracket) {
    Separate();
    out_->push_back(bracket);
    need_comma_ = false;
  }
  void Close(char bracket) {
    out_->push_back(bracket);
    need_comma_ = true;
  }
  template <typename List>
  void StrList(const List& items) {
    Open('[');
    for (std::string_view item : items) Str(item);
    Close(']');
  }

 private:
  void Separate() {
    if (need_comma_) out_->push_back(',');
  }
  std::string* out_;
  bool need_comma_ = false;
};

void AppendPadded(std::string* out, uint64_t value, int width) {
  char buffer[24];
  auto end = std::to_chars(buffer, buffer + sizeof(buffer), value).ptr;
  for (int pad = width - static_cast<int>(end - buffer); pad > 0; --pad) out->push_back('0');
  out->append(buffer, end);
}

// ---- Staff ----
class StaffDirectory {
 public:
  StaffDirectory(size_t orgs, std::array<int, 4> per_role) : per_role_(per_role) {
    for (size_t org = 0; org < orgs; ++org) {
      for (int role = 0; role < 4; ++role) {
        for (int index = 0; index < per_role_[role]; ++index) {
          std::string id = "S";
          AppendPadded(&id, org + 1, 2);
          id.push_back(kRoleDigits[role]);
          AppendPadded(&id, static_cast<uint64_t>(index) + 1, 2);
          ids_.push_back(std::move(id));
        }
      }
    }
  }
  int Count(Role role) const { return per_role_[static_cast<int>(role)]; }
  const std::string& Id(size_t org, Role role, int index) const {
    size_t offset = 0;
    for (int r = 0; r < static_cast<int>(role); ++r) offset += per_role_[r];
    size_t per_org = 0;
    for (int count : per_role_) per_org += count;
    return ids_[org * per_org + offset + static_cast<size_t>(index)];
  }

 private:
  std::array<int, 4> per_role_;
  std::vector<std::string> ids_;  // [org][role][index]
};

// ---- Applications ----
struct PlanStep {
  int64_t at = 0;   // while planning: working day * kWorkSecondsPerDay + second; then Unix seconds
  int32_t arg = 0;  // Urged: committed working day, then the date (days since epoch)
  AppEventType type = AppEventType::kApplicationAccepted;
  uint8_t flag = 0;  // type-specific variant (result, level, outcome, reason index)
};

// Urged.flag: level in the low bits, plus:
constexpr uint8_t kUrgeToInspector = 0x10;
constexpr uint8_t kUrgeCommitted = 0x80;
// CallbackMade.flag: result (bits 0-1), satisfaction (bits 2-3), complaints mask (bits 4-6).

struct App {
  std::string id;      // "KM-2025-000123"
  std::string stream;  // "app/KM-2025-000123"
  uint64_t seed = 0;
  uint64_t accepted_position = 0;
  uint8_t org = 0;
  Cls cls = kResidential;
  Biz business = kNewInstall;
  uint8_t change_kind = 0;
  uint8_t channel = 0;
  uint8_t capacity_index = 0;
  bool important = false;
  bool three_zero = false;
  bool fee_free = false;  // declares fees_apply: false (residential only)
  bool reassigned = false;
  bool late = false;
  Violation violation = Violation::kNone;
  int withdraw_stage = -1;  // the stage boundary at which the customer withdraws, or -1
  int pause_stage = -1;     // the timed stage holding a customer-caused pause, or -1
  uint8_t clerk = 0, inspector = 0, fitter = 0, auditor = 0, agent = 0;
  std::vector<PlanStep> steps;
  size_t next = 0;
};

// Builds one application's plan in working-day time.
class Planner {
 public:
  Planner(App* app, Rng* rng, int accept_second, double correction_rate)
      : app_(app), rng_(rng), second_(accept_second), correction_rate_(correction_rate) {
    Push(AppEventType::kApplicationAccepted, 0, 0);
  }
  Rng& rng() { return *rng_; }
  double correction_rate() const { return correction_rate_; }
  App& app() { return *app_; }
  int wd() const { return wd_; }

  // `type` on working day `target_wd`, never before the last step: a step on the same day follows
  // 5–60 minutes later, or moves to the next working day when the day is over.
  void At(int target_wd, AppEventType type, uint8_t flag = 0, int32_t arg = 0) {
    if (target_wd > wd_) {
      wd_ = target_wd;
      second_ = static_cast<int>(rng_->Below(kWorkSecondsPerDay - kSameDayGapSecondsMax));
    } else {
      const int gap = rng_->Between(kSameDayGapSecondsMin, kSameDayGapSecondsMax);
      if (second_ + gap < kWorkSecondsPerDay) {
        second_ += gap;
      } else {
        ++wd_;
        second_ = static_cast<int>(rng_->Below(kWorkSecondsPerDay / 2));
      }
    }
    Push(type, flag, arg);
  }
  void After(int gap_min, int gap_max, AppEventType type, uint8_t flag = 0) {
    At(wd_ + rng_->Between(gap_min, gap_max), type, flag);
  }

  // A step closing a stage clock that started on `start_wd` with `limit` working days: on time,
  // or late with probability `late_rate` (then usually urged). `stage` may hold the pause.
  void Timed(int stage, int start_wd, int limit, double late_rate, AppEventType type, uint8_t flag,
             bool held_by_inspector);

 private:
  void Push(AppEventType type, uint8_t flag, int32_t arg) {
    LEDGER_ASSERT(app_->steps.size() < kPlanStepsMax);
    app_->steps.push_back(PlanStep{int64_t{wd_} * kWorkSecondsPerDay + second_, arg, type, flag});
  }

  App* app_;
  Rng* rng_;
  int wd_ = 0;
  int second_ = 0;
  double correction_rate_ = 0;
};

void Planner::Timed(int stage, int start_wd, int limit, double late_rate, AppEventType type,
                    uint8_t flag, bool held_by_inspector) {
  const bool late = rng_->Chance(late_rate);
  const int elapsed = late ? limit + rng_->Between(1, std::max(2, limit / 3 + 1))
                           : rng_->Between(std::max(1, limit / 4), limit);
  int paused = 0;
  if (stage >= 0 && app_->pause_stage == stage) {
    At(std::max(wd_, start_wd) + rng_->Between(0, 1), AppEventType::kClockPaused,
       static_cast<uint8_t>(rng_->Below(kPauseReasons.size())));
    const int pause_wd = wd_;
    After(2, 12, AppEventType::kClockResumed);
    paused = wd_ - pause_wd;
  }
  const int end_wd = start_wd + elapsed + paused;
  if (late) app_->late = true;
  if (late && rng_->Chance(kUrgedWhenLateRate)) {
    constexpr std::array<int, 3> kOverdueDaysAtLevel = {1, 3, 6};
    for (int level = 1; level <= 3; ++level) {
      const int urge_wd = start_wd + limit + kOverdueDaysAtLevel[level - 1] + paused;
      if (urge_wd >= end_wd) break;
      uint8_t urge = static_cast<uint8_t>(level);
      if (held_by_inspector) urge |= kUrgeToInspector;
      if (rng_->Chance(kCommittedDateRate)) urge |= kUrgeCommitted;
      At(urge_wd, AppEventType::kUrged, urge, end_wd);
    }
  }
  At(end_wd, type, flag);
}

// Request → result, repeated after a failed result (the customer rectifies and resubmits).
template <size_t N>
void ReviewLoop(Planner& plan, int stage, AppEventType request, AppEventType result, int gap_min,
                int gap_max, int limit, double fail_rate, const std::array<std::string_view, N>&) {
  for (int round = 0; round < kReviewRoundsMax; ++round) {
    plan.After(gap_min, gap_max, request);
    const bool fail =
        round + 1 < kReviewRoundsMax && plan.rng().Chance(round == 0 ? fail_rate : fail_rate / 3);
    const uint8_t flag = fail ? static_cast<uint8_t>(1 + plan.rng().Below(N)) : 0;
    plan.Timed(round == 0 ? stage : -1, plan.wd(), limit, kStageLateRate, result, flag, true);
    if (!fail) return;
    gap_min = 3;
    gap_max = 15;
  }
}

// Stage boundaries where a withdrawal may happen, and the timed stages that may hold the pause.
enum Stage : int {
  kStageScheme = 0,
  kStageDesign,
  kStageCompletion,
  kStageConnection,
  kStageCount
};

bool MaybeWithdraw(Planner& plan, int stage) {
  if (plan.app().withdraw_stage != stage) return false;
  plan.After(1, 10, AppEventType::kWithdrawn,
             static_cast<uint8_t>(plan.rng().Below(kWithdrawReasons.size())));
  if (plan.rng().Chance(0.3)) plan.After(1, 10, AppEventType::kDocumentReviewed, 0);
  return true;
}

uint8_t PlanCallbackFlag(Rng& rng, bool late) {
  const uint32_t roll = rng.Below(100);
  const uint8_t result = roll < 85 ? 0 : roll < 94 ? 1 : roll < 96 ? 2 : 3;
  if (result != 0) return result;
  const uint32_t mood = rng.Below(100);
  const uint32_t dissatisfied_percent = late ? 25 : 4;
  uint8_t satisfaction = mood < dissatisfied_percent ? 2 : mood < dissatisfied_percent + 14 ? 1 : 0;
  uint8_t complaints = 0;
  if (satisfaction == 2) complaints = late ? 1 : static_cast<uint8_t>(1u << rng.Below(3));
  return static_cast<uint8_t>(result | satisfaction << 2 | complaints << 4);
}

// Archive, callbacks and the evidence of section 7.2 that may follow a closed application.
void PlanClose(Planner& plan, bool delivered, double callback_rate) {
  Rng& rng = plan.rng();
  plan.After(1, 5, AppEventType::kArchived);
  if (delivered && rng.Chance(callback_rate)) {
    uint8_t flag = PlanCallbackFlag(rng, plan.app().late);
    plan.After(0, 6, AppEventType::kCallbackMade, flag);
    if ((flag & 3) == 1 && rng.Chance(kCallbackRetryRate)) {
      plan.After(1, 3, AppEventType::kCallbackMade, PlanCallbackFlag(rng, plan.app().late) & 0x7C);
    }
  }
  if (rng.Chance(kDocumentReviewRate)) {
    const uint8_t flag = rng.Chance(0.1) ? static_cast<uint8_t>(1 + rng.Below(5)) : 0;
    plan.After(2, 20, AppEventType::kDocumentReviewed, flag);
  }
  if (delivered && rng.Chance(kSiteInspectionRate)) {
    const uint8_t flag = rng.Chance(0.12) ? static_cast<uint8_t>(1 + rng.Below(3)) : 0;
    plan.After(1, 15, AppEventType::kSiteInspected, flag);
  }
  if (rng.Chance(plan.correction_rate())) {
    plan.After(1, 10, AppEventType::kCorrected, static_cast<uint8_t>(rng.Below(3)));
  }
}

// Survey and scheme reply: the first stage clock of a new install or capacity increase.
void PlanSurveyAndScheme(Planner& plan) {
  App& app = plan.app();
  if (app.cls != kResidential) {
    plan.After(0, 1, AppEventType::kSurveyDispatched);
    if (app.reassigned) plan.After(0, 1, AppEventType::kReassigned);
    plan.After(1, 3, AppEventType::kSiteSurveyed);
  }
  plan.Timed(kStageScheme, 0, kLimits[app.cls].scheme, kSchemeLateRate,
             AppEventType::kSchemeReplied, 0, false);
}

// Design review and mid inspection (required for important HV customers, optional otherwise).
void PlanReviews(Planner& plan) {
  App& app = plan.app();
  Rng& rng = plan.rng();
  const bool hv = app.cls == kHvSingle || app.cls == kHvDual;
  const Limits& limits = kLimits[app.cls];
  const bool design = (hv && (app.important || rng.Chance(kOptionalDesignRateHv))) ||
                      (app.cls == kLvNonresidential && rng.Chance(kOptionalDesignRateLv));
  if (design) {
    ReviewLoop(plan, kStageDesign, AppEventType::kDesignSubmitted, AppEventType::kDesignReviewed, 5,
               25, limits.design, kDesignFailRate, kDesignDefects);
  }
  if (hv && (app.important || rng.Chance(kOptionalMidRateHv))) {
    ReviewLoop(plan, -1, AppEventType::kMidInspectionRequested, AppEventType::kMidInspected, 10, 30,
               limits.mid, kMidFailRate, kMidDefects);
  }
}

// New install or capacity increase, three_zero included.
void PlanDelivery(Planner& plan) {
  App& app = plan.app();
  Rng& rng = plan.rng();
  const Limits& limits = kLimits[app.cls];
  const bool contract_late = app.violation == Violation::kConnectBeforeContract;
  const bool fees_late = app.violation == Violation::kConnectBeforeFees;
  bool contract = false;
  if (app.three_zero) {
    if (!contract_late) plan.After(0, 1, AppEventType::kContractSigned);
    contract = true;
    if (MaybeWithdraw(plan, kStageScheme)) return;
  } else {
    PlanSurveyAndScheme(plan);
    if (MaybeWithdraw(plan, kStageScheme)) return;
    if (!fees_late && !app.fee_free) plan.After(1, 8, AppEventType::kFeesSettled);
    if (!contract_late && rng.Chance(kEarlyContractRate)) {
      plan.After(0, 5, AppEventType::kContractSigned);
      contract = true;
    }
    PlanReviews(plan);
    if (MaybeWithdraw(plan, kStageDesign)) return;
    if (app.cls != kResidential) {
      const int gap_max = app.cls == kLvNonresidential ? 15 : 40;
      ReviewLoop(plan, kStageCompletion, AppEventType::kCompletionReported,
                 AppEventType::kCompletionInspected, 3, gap_max, limits.completion,
                 kCompletionFailRate, kCompletionDefects);
    }
    if (MaybeWithdraw(plan, kStageCompletion)) return;
  }
  if (!contract && !contract_late) plan.After(0, 3, AppEventType::kContractSigned);
  if (app.violation == Violation::kArchiveEarly) {
    PlanClose(plan, false, 0);
    return;
  }
  plan.Timed(kStageConnection, plan.wd(), limits.connection, kStageLateRate,
             AppEventType::kMeterConnected, 0, true);
  if (contract_late) plan.After(1, 5, AppEventType::kContractSigned);
  if (fees_late) plan.After(1, 5, AppEventType::kFeesSettled);
  PlanClose(plan, true, kCallbackRate);
}

void PlanChange(Planner& plan) {
  App& app = plan.app();
  Rng& rng = plan.rng();
  if (rng.Chance(kChangeSurveyRate)) {
    if (rng.Chance(0.5)) plan.After(0, 1, AppEventType::kSurveyDispatched);
    plan.After(0, 2, AppEventType::kSiteSurveyed);
  }
  if (MaybeWithdraw(plan, kStageScheme)) return;
  if (app.violation == Violation::kArchiveEarly) {
    PlanClose(plan, false, 0);
    return;
  }
  plan.Timed(kStageScheme, 0, kChangeLimit, kStageLateRate, AppEventType::kChangeExecuted, 0,
             kChangeIsFieldWork[app.change_kind]);
  if (kChangeNeedsContract[app.change_kind]) plan.After(0, 3, AppEventType::kContractSigned);
  PlanClose(plan, true, kChangeCallbackRate);
}

// Chooses what kind of application this is (the mix) and who handles it.
void ChooseProfile(App& app, Rng& rng, const StaffDirectory& staff) {
  app.cls = static_cast<Cls>(PickShare(rng, kClassShare));
  const double business_roll = static_cast<double>(rng.Below(10000)) / 10000;
  app.business = business_roll < kChangeShare                            ? kChange
                 : business_roll < kChangeShare + kCapacityIncreaseShare ? kCapacityIncrease
                                                                         : kNewInstall;
  if (app.business == kChange) app.change_kind = static_cast<uint8_t>(rng.Below(12));
  const bool lv = app.cls == kResidential || app.cls == kLvNonresidential;
  app.three_zero = lv && app.business != kChange && rng.Chance(kThreeZeroShareOfLv);
  // From the seed, not the stream of draws: the rest of the workload stays as it was.
  app.fee_free = app.cls == kResidential && app.business != kChange && !app.three_zero &&
                 Mix(app.seed, 0xFEE) % 100 < kFeeFreeResidentialPercent;
  app.important = rng.Chance(kImportantShare[app.cls]);
  app.channel = static_cast<uint8_t>(PickShare(rng, std::array<double, 4>{0.45, 0.40, 0.10, 0.05}));
  app.capacity_index = static_cast<uint8_t>(rng.Below(12));
  app.clerk = static_cast<uint8_t>(rng.Below(staff.Count(Role::kClerk)));
  app.inspector = static_cast<uint8_t>(rng.Below(staff.Count(Role::kInspector)));
  app.fitter = static_cast<uint8_t>(rng.Below(staff.Count(Role::kInspector)));
  app.auditor = static_cast<uint8_t>((app.inspector + 1) % staff.Count(Role::kInspector));
  app.agent = static_cast<uint8_t>(rng.Below(staff.Count(Role::kCallbackAgent)));
  if (rng.Chance(kWithdrawRate)) {
    // Changes and three_zero have a single stage boundary before delivery.
    const bool short_flow = app.business == kChange || app.three_zero;
    app.withdraw_stage = short_flow ? kStageScheme : rng.Between(kStageScheme, kStageCompletion);
  } else if (rng.Chance(kViolationRate)) {
    const bool fees_apply = app.business != kChange && !app.three_zero && !app.fee_free;
    const uint32_t pick = rng.Below(3);
    app.violation = pick == 0                 ? Violation::kConnectBeforeContract
                    : pick == 1 && fees_apply ? Violation::kConnectBeforeFees
                                              : Violation::kArchiveEarly;
  }
  if (rng.Chance(kPauseRate)) {
    // A stage this application goes through (design review only where it is planned).
    if (app.business == kChange) {
      app.pause_stage = kStageScheme;
    } else if (app.three_zero) {
      app.pause_stage = kStageConnection;
    } else if (app.cls == kResidential) {
      app.pause_stage = rng.Chance(0.5) ? kStageScheme : kStageConnection;
    } else {
      app.pause_stage = rng.Between(kStageScheme, kStageCount - 1);
    }
  }
  app.reassigned = app.cls != kResidential && rng.Chance(kReassignRate);
}

// Turns working-day times into Unix seconds; drops the steps past `last_day` or the calendar.
void PlaceInCalendar(App& app, Date accept_date, Date last_day,
                     const domain::WorkingCalendar& calendar) {
  for (size_t i = 0; i < app.steps.size(); ++i) {
    PlanStep& step = app.steps[i];
    const int32_t wd = static_cast<int32_t>(step.at / kWorkSecondsPerDay);
    const int second = static_cast<int>(step.at % kWorkSecondsPerDay);
    auto date = calendar.AddWorkingDays(accept_date, wd);
    if (!date.ok() || *date.value > last_day) {
      app.steps.resize(i);
      return;
    }
    step.at = UnixSeconds(*date.value, LocalSecondOfDay(second) + static_cast<int>(app.seed % 60));
    if (step.type == AppEventType::kUrged && (step.flag & kUrgeCommitted) != 0) {
      auto committed = calendar.AddWorkingDays(accept_date, step.arg);
      if (committed.ok()) {
        step.arg = committed.value->days_since_epoch();
      } else {
        step.flag &= static_cast<uint8_t>(~kUrgeCommitted);
      }
    }
  }
}

// ---- Processes ----
class Process;

// What every process reads and writes while it steps.
struct Shared {
  const DemoOptions* options = nullptr;
  const domain::WorkingCalendar* calendar = nullptr;
  std::unique_ptr<StaffDirectory> staff;
  std::string id_tag;  // 8 hex digits of the seed, the first part of every event_id
  uint64_t events_emitted = 0;
  uint64_t apps_started = 0;
  uint64_t apps_per_org_month = 0;
  std::unordered_map<std::string, int64_t> stream_versions;  // report, survey and staff streams
  std::vector<std::unique_ptr<Process>> spawned;
  int32_t cached_day = -1;
  std::string cached_date;  // "YYYY-MM-DD" of cached_day
};

class Process {
 public:
  virtual ~Process() = default;
  virtual bool done() const = 0;
  // Time of the next event (Unix seconds). REQUIRES: !done().
  virtual int64_t next_at() const = 0;
  // Writes the next event into `line` and returns true, or does internal work (spawning) and
  // returns false. Never schedules anything before next_at().
  virtual bool Step(Shared& shared, std::string* line) = 0;
};

// The envelope up to `"data":`, for an event of `stream` whose current version is `version`.
void BeginLine(Shared& shared, std::string* line, std::string_view stream, std::string_view type,
               int64_t version, int64_t at, std::string_view actor_id, Role role,
               std::string_view org) {
  line->clear();
  line->append("{\"stream\":\"").append(stream).append("\",\"type\":\"").append(type);
  line->append("\",\"event_id\":\"").append(shared.id_tag).push_back('/');
  line->append(stream).push_back('/');
  AppendPadded(line, static_cast<uint64_t>(version + 1), 1);
  line->append("\",\"expected_version\":");
  char buffer[24];
  line->append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), version).ptr);
  const int64_t local = at + 8 * 3600;
  const int32_t day = static_cast<int32_t>(local / 86400);
  const int second = static_cast<int>(local % 86400);
  if (day != shared.cached_day) {
    shared.cached_day = day;
    shared.cached_date = Date::FromDaysSinceEpoch(day).ToString();
  }
  line->append(",\"occurred_at\":\"").append(shared.cached_date).push_back('T');
  AppendPadded(line, static_cast<uint64_t>(second / 3600), 2);
  line->push_back(':');
  AppendPadded(line, static_cast<uint64_t>(second / 60 % 60), 2);
  line->push_back(':');
  AppendPadded(line, static_cast<uint64_t>(second % 60), 2);
  line->append("+08:00\",\"actor\":{\"id\":\"").append(actor_id);
  line->append("\",\"role\":\"").append(kRoleNames[static_cast<int>(role)]);
  line->append("\",\"org\":\"").append(org).append("\"},\"import\":true,\"data\":");
}

std::string_view DistrictName(std::string_view org) {
  for (const DistrictCode& district : kDistricts) {
    if (district.org == org) return district.name;
  }
  return "昆明市";
}

std::string_view DistrictCodeOf(std::string_view org) {
  for (const DistrictCode& district : kDistricts) {
    if (district.org == org) return district.code;
  }
  return "530100";
}

std::string CustomerName(const App& app, std::string_view org, uint64_t salt) {
  Rng rng(Mix(app.seed, salt));
  std::string name;
  if (app.cls == kResidential) {
    name.append(rng.Pick(kSurnames)).append(rng.Pick(kGivenChars));
    if (rng.Chance(0.7)) name.append(rng.Pick(kGivenChars));
  } else if (app.cls == kLvNonresidential && rng.Chance(0.6)) {
    name.append(DistrictName(org)).append(rng.Pick(kBrands)).append(rng.Pick(kShopKinds));
  } else {
    name.append("昆明").append(rng.Pick(kBrands)).append(rng.Pick(kIndustries));
    name.append(rng.Pick(kCompanySuffixes));
  }
  return name;
}

struct Capacity {
  std::string_view voltage_kv;
  int capacity_kva;
};

Capacity CapacityOf(const App& app) {
  static constexpr std::array<int, 12> kResidentialKva = {4,  6,  8,  8,  8,  10,
                                                          10, 12, 12, 16, 16, 20};
  static constexpr std::array<int, 12> kLvKva = {15, 20, 30,  30,  50,  50,
                                                 63, 80, 100, 125, 160, 160};
  static constexpr std::array<int, 12> kHvSingleKva = {250,  315,  400,  500,  630,  800,
                                                       1000, 1250, 1600, 2000, 2500, 3150};
  static constexpr std::array<int, 12> kHvDualKva = {1600, 2000, 2500,  3150,  4000,  5000,
                                                     6300, 8000, 10000, 16000, 20000, 31500};
  const int i = app.capacity_index;
  switch (app.cls) {
    case kResidential:
      return {i < 8 ? "0.22" : "0.38", kResidentialKva[i]};
    case kLvNonresidential:
      return {"0.38", kLvKva[i]};
    case kHvSingle:
      return {"10", kHvSingleKva[i]};
    case kHvDual:
      return {i < 6 ? "10" : i < 10 ? "35" : "110", kHvDualKva[i]};
  }
  return {"0.22", 4};
}

class AppProcess : public Process {
 public:
  explicit AppProcess(App app) : app_(std::move(app)) {}
  bool done() const override { return app_.next >= app_.steps.size(); }
  int64_t next_at() const override { return app_.steps[app_.next].at; }
  bool Step(Shared& shared, std::string* line) override;

 private:
  Role RoleOf(AppEventType type) const;
  const std::string& ActorId(const Shared& shared, AppEventType type, Role role) const;
  void WriteData(const Shared& shared, const PlanStep& step, Rng& rng, JsonOut& data) const;
  void WriteAccepted(const Shared& shared, JsonOut& data) const;
  void WriteStageData(const Shared& shared, const PlanStep& step, Rng& rng, JsonOut& data) const;
  void WriteEvidence(const Shared& shared, const PlanStep& step, Rng& rng, JsonOut& data) const;

  App app_;
};

Role AppProcess::RoleOf(AppEventType type) const {
  switch (type) {
    case AppEventType::kSiteSurveyed:
    case AppEventType::kDesignReviewed:
    case AppEventType::kMidInspected:
    case AppEventType::kCompletionInspected:
    case AppEventType::kMeterConnected:
    case AppEventType::kDocumentReviewed:
    case AppEventType::kSiteInspected:
      return Role::kInspector;
    case AppEventType::kChangeExecuted:
      return kChangeIsFieldWork[app_.change_kind] ? Role::kInspector : Role::kClerk;
    case AppEventType::kUrged:
    case AppEventType::kReassigned:
      return Role::kDirector;
    case AppEventType::kCallbackMade:
      return Role::kCallbackAgent;
    default:
      return Role::kClerk;
  }
}

const std::string& AppProcess::ActorId(const Shared& shared, AppEventType type, Role role) const {
  int index = 0;
  switch (role) {
    case Role::kClerk:
      index = app_.clerk;
      break;
    case Role::kInspector:
      index = type == AppEventType::kMeterConnected ? app_.fitter
              : type == AppEventType::kDocumentReviewed || type == AppEventType::kSiteInspected
                  ? app_.auditor
                  : app_.inspector;
      break;
    case Role::kCallbackAgent:
      index = app_.agent;
      break;
    case Role::kDirector:
      break;
  }
  return shared.staff->Id(app_.org, role, index);
}

bool AppProcess::Step(Shared& shared, std::string* line) {
  const PlanStep& step = app_.steps[app_.next];
  const int64_t version = static_cast<int64_t>(app_.next) - 1;
  const Role role = RoleOf(step.type);
  const std::string& org = shared.options->orgs[app_.org];
  BeginLine(shared, line, app_.stream, domain::AppEventTypeName(step.type), version, step.at,
            ActorId(shared, step.type, role), role, org);
  if (step.type == AppEventType::kApplicationAccepted) {
    app_.accepted_position = shared.options->first_position + shared.events_emitted;
  }
  Rng rng(Mix(app_.seed, app_.next));
  JsonOut data(line);
  data.Open('{');
  WriteData(shared, step, rng, data);
  data.Close('}');
  line->push_back('}');
  ++app_.next;
  return true;
}

void AppProcess::WriteAccepted(const Shared& shared, JsonOut& data) const {
  const std::string& org = shared.options->orgs[app_.org];
  std::string customer_id = "C-";
  customer_id.append(DistrictCodeOf(org)).push_back('-');
  AppendPadded(&customer_id, app_.seed % 1000000, 6);
  const Capacity capacity = CapacityOf(app_);
  data.Key("customer_id").Str(customer_id);
  data.Key("customer_name").Str(CustomerName(app_, org, 0));
  data.Key("customer_class").Str(kClassNames[app_.cls]);
  data.Key("business").Str(kBusinessNames[app_.business]);
  if (app_.business == kChange) data.Key("change_kind").Str(kChangeKindNames[app_.change_kind]);
  data.Key("voltage_kv").Raw(capacity.voltage_kv);
  data.Key("capacity_kva").Int(capacity.capacity_kva);
  data.Key("channel").Str(kChannels[app_.channel]);
  data.Key("important").Bool(app_.important);
  data.Key("three_zero").Bool(app_.three_zero);
  if (app_.fee_free) data.Key("fees_apply").Bool(false);
}

std::string SchemeText(const App& app, Rng& rng) {
  std::string text;
  const auto number = [&](int lo, int hi) { AppendPadded(&text, rng.Between(lo, hi), 1); };
  switch (app.cls) {
    case kResidential:
      text.append("220V单相供电，由");
      number(1, 40);
      text.append("号公变低压出线接入，表箱集中计量");
      break;
    case kLvNonresidential:
      text.append("380V三相供电，由");
      number(1, 40);
      text.append("号公变低压侧接入，低供低计");
      break;
    case kHvSingle:
      text.append("10kV单电源供电，由10kV").append(rng.Pick(kLineNames)).append("线");
      number(1, 30);
      text.append("号杆T接，高供高计");
      break;
    case kHvDual: {
      const uint32_t main_line = rng.Below(kLineNames.size());
      const uint32_t backup_line =
          (main_line + 1 + rng.Below(kLineNames.size() - 1)) % kLineNames.size();
      text.append("双电源供电：主供10kV").append(kLineNames[main_line]).append("线，备供10kV");
      text.append(kLineNames[backup_line]).append("线，高供高计，配置备自投");
      break;
    }
  }
  return text;
}

int64_t FeeOf(const App& app, Rng& rng) {
  const int kva = CapacityOf(app).capacity_kva;
  switch (app.cls) {
    case kResidential:
      return rng.Between(50, 300);
    case kLvNonresidential:
      return int64_t{rng.Between(20, 300)} * 100;
    case kHvSingle:
      return int64_t{kva} * rng.Between(20, 60);
    case kHvDual:
      return int64_t{kva} * rng.Between(60, 150);
  }
  return 0;
}

void WriteResult(JsonOut& data, uint8_t flag, std::string_view defect) {
  data.Key("result").Str(flag == 0 ? "pass" : "fail");
  data.Key("defects").Open('[');
  if (flag != 0) data.Str(defect);
  data.Close(']');
}

void WriteUrge(const Shared& shared, const App& app, const PlanStep& step, Rng& rng,
               JsonOut& data) {
  const int level = step.flag & 0x3;
  const Role holder = (step.flag & kUrgeToInspector) != 0 ? Role::kInspector : Role::kClerk;
  const int holder_index = holder == Role::kInspector ? app.inspector : app.clerk;
  constexpr std::array<std::string_view, 3> kNotes = {"已超期1个工作日，请尽快办理",
                                                      "已超期3个工作日，请说明原因并限期办结",
                                                      "已超期6个工作日，升级督办"};
  data.Key("level").Int(level);
  data.Key("to_org").Str(shared.options->orgs[app.org]);
  data.Key("to_person").Str(shared.staff->Id(app.org, holder, holder_index));
  data.Key("channel").Str(rng.Pick(kUrgeChannels));
  data.Key("note").Str(kNotes[level - 1]);
  if ((step.flag & kUrgeCommitted) != 0) {
    data.Key("committed_date").Str(Date::FromDaysSinceEpoch(step.arg).ToString());
  }
}

void WriteCallback(const Shared& shared, const App& app, uint8_t flag, JsonOut& data) {
  constexpr std::array<std::string_view, 4> kResults = {"reached", "no_answer", "refused",
                                                        "wrong_number"};
  constexpr std::array<std::string_view, 3> kSatisfactions = {"satisfied", "basically_satisfied",
                                                              "dissatisfied"};
  constexpr std::array<std::string_view, 3> kComments = {
      "接电及时，服务满意", "整体满意，希望办理进度更透明", "办理时间过长，多次催问"};
  const int result = flag & 0x3;
  const int satisfaction = (flag >> 2) & 0x3;
  data.Key("agent").Str(shared.staff->Id(app.org, Role::kCallbackAgent, app.agent));
  data.Key("result").Str(kResults[result]);
  if (result != 0) return;
  data.Key("satisfaction").Str(kSatisfactions[satisfaction]);
  data.Key("complaints").Open('[');
  for (int i = 0; i < 3; ++i) {
    if ((flag >> (4 + i)) & 1) data.Str(kComplaints[i]);
  }
  data.Close(']');
  data.Key("comment").Str(kComments[satisfaction]);
}

void AppProcess::WriteStageData(const Shared& shared, const PlanStep& step, Rng& rng,
                                JsonOut& data) const {
  const int defect = step.flag == 0 ? 0 : step.flag - 1;
  switch (step.type) {
    case AppEventType::kSurveyDispatched: {
      const int surveyor = app_.reassigned
                               ? (app_.inspector + 1) % shared.staff->Count(Role::kInspector)
                               : app_.inspector;
      data.Key("surveyor").Str(shared.staff->Id(app_.org, Role::kInspector, surveyor));
      break;
    }
    case AppEventType::kReassigned:
      data.Key("to").Str(shared.staff->Id(app_.org, Role::kInspector, app_.inspector));
      break;
    case AppEventType::kSiteSurveyed:
      data.Key("findings")
          .Str(app_.business == kChange ? "现场核实变更内容，具备实施条件"
                                        : "现场具备接电条件，附近线路有余量");
      break;
    case AppEventType::kSchemeReplied:
      data.Key("scheme").Str(SchemeText(app_, rng));
      break;
    case AppEventType::kFeesSettled:
      data.Key("amount_cny").Int(FeeOf(app_, rng));
      break;
    case AppEventType::kDesignReviewed:
      WriteResult(data, step.flag, kDesignDefects[defect % kDesignDefects.size()]);
      break;
    case AppEventType::kMidInspected:
      WriteResult(data, step.flag, kMidDefects[defect % kMidDefects.size()]);
      break;
    case AppEventType::kCompletionInspected:
      WriteResult(data, step.flag, kCompletionDefects[defect % kCompletionDefects.size()]);
      break;
    default:
      break;
  }
}

void AppProcess::WriteEvidence(const Shared& shared, const PlanStep& step, Rng& rng,
                               JsonOut& data) const {
  const std::string& inspector = shared.staff->Id(app_.org, Role::kInspector, app_.auditor);
  const size_t missing = step.flag == 0 ? kReviewItems.size() : step.flag - 1u;
  if (step.type == AppEventType::kDocumentReviewed) {
    data.Key("reviewer").Str(inspector);
    data.Key("items").Open('[');
    const size_t items = app_.cls == kResidential || app_.three_zero ? 5 : 6;
    for (size_t i = 0; i < items; ++i) {
      data.Open('{');
      data.Key("item").Str(kReviewItems[i]);
      data.Key("present").Bool(i != missing || rng.Chance(0.5));
      data.Key("correct").Bool(i != missing);
      data.Close('}');
    }
    data.Close(']');
    data.Key("conclusion").Str(step.flag == 0 ? "pass" : "fail");
    data.Key("defects").Open('[');
    if (step.flag != 0) data.Str(std::string(kReviewItems[missing]) + "缺失或有误");
    data.Close(']');
  } else {
    data.Key("inspector").Str(inspector);
    data.Key("items").StrList(kSiteItems);
    data.Key("defects").Open('[');
    if (step.flag != 0) data.Str(kSiteDefects[(step.flag - 1u) % kSiteDefects.size()]);
    data.Close(']');
    data.Key("conclusion").Str(step.flag == 0 ? "pass" : "fail");
  }
}

void AppProcess::WriteData(const Shared& shared, const PlanStep& step, Rng& rng,
                           JsonOut& data) const {
  switch (step.type) {
    case AppEventType::kApplicationAccepted:
      return WriteAccepted(shared, data);
    case AppEventType::kContractSigned:
      data.Key("contract_id").Str("GY-" + app_.id);
      return;
    case AppEventType::kMeterConnected: {
      std::string meter = "M-0530-";
      AppendPadded(&meter, Mix(app_.seed, 77) % 1000000, 6);
      data.Key("meter_id").Str(meter);
      return;
    }
    case AppEventType::kChangeExecuted:
      data.Key("summary").Str(kChangeSummaries[app_.change_kind]);
      return;
    case AppEventType::kClockPaused:
      data.Key("reason").Str(kPauseReasons[step.flag % kPauseReasons.size()]);
      if (rng.Chance(0.5)) data.Key("note").Str("客户来电申请，已登记");
      return;
    case AppEventType::kUrged:
      return WriteUrge(shared, app_, step, rng, data);
    case AppEventType::kWithdrawn:
      data.Key("reason").Str(kWithdrawReasons[step.flag % kWithdrawReasons.size()]);
      return;
    case AppEventType::kCorrected:
      data.Key("corrects_position").Int(static_cast<int64_t>(app_.accepted_position));
      data.Key("reason").Str(kCorrectionReasons[step.flag % kCorrectionReasons.size()]);
      data.Key("fields").Open('{');
      if (step.flag == 0) {
        data.Key("customer_name").Str(CustomerName(app_, shared.options->orgs[app_.org], 1));
      } else if (step.flag == 1) {
        data.Key("capacity_kva").Int(CapacityOf(app_).capacity_kva + 5);
      } else {
        // Accepted a day earlier than entered: the clocks from acceptance move with it.
        const int64_t accepted_us = (app_.steps.front().at - 86400) * 1'000'000;
        data.Key("occurred_at").Str(domain::FormatTimestamp(accepted_us, 8 * 60));
      }
      data.Close('}');
      return;
    case AppEventType::kDocumentReviewed:
    case AppEventType::kSiteInspected:
      return WriteEvidence(shared, step, rng, data);
    case AppEventType::kCallbackMade:
      return WriteCallback(shared, app_, step.flag, data);
    default:
      return WriteStageData(shared, step, rng, data);
  }
}

// Accepts `apps` applications over the working days of the period, in acceptance order.
class ArrivalProcess : public Process {
 public:
  ArrivalProcess(const Shared& shared, std::vector<Date> days)
      : days_(std::move(days)),
        rng_(Mix(shared.options->seed, 0xA11)),
        apps_(shared.options->apps) {
    Settle();
  }
  bool done() const override { return day_ >= days_.size(); }
  int64_t next_at() const override { return next_at_; }
  bool Step(Shared& shared, std::string* line) override;

 private:
  uint64_t CountOnDay(size_t day) const {
    const uint64_t n = days_.size();
    return (day + 1) * apps_ / n - day * apps_ / n;
  }
  // Moves to the next slot that exists and computes its time.
  void Settle() {
    while (day_ < days_.size() && slot_ >= CountOnDay(day_)) {
      ++day_;
      slot_ = 0;
    }
    if (done()) return;
    const uint64_t count = CountOnDay(day_);
    second_ =
        static_cast<int>((slot_ * kWorkSecondsPerDay + rng_.Below(kWorkSecondsPerDay)) / count);
    next_at_ = UnixSeconds(days_[day_], LocalSecondOfDay(second_));
  }

  std::vector<Date> days_;  // the working days of the period
  Rng rng_;
  uint64_t apps_;
  size_t day_ = 0;
  uint64_t slot_ = 0;
  int second_ = 0;
  int64_t next_at_ = 0;
  int year_ = 0;
  uint64_t year_sequence_ = 0;
};

bool ArrivalProcess::Step(Shared& shared, std::string* /*line*/) {
  const DemoOptions& options = *shared.options;
  const Date date = days_[day_];
  if (date.year() != year_) {
    year_ = date.year();
    year_sequence_ = 0;
  }
  App app;
  app.seed = Mix(options.seed, shared.apps_started + 1);
  Rng rng(app.seed);
  app.org = static_cast<uint8_t>(rng.Below(static_cast<uint32_t>(options.orgs.size())));
  app.id = options.app_id_prefix + "-" + std::to_string(year_) + "-";
  AppendPadded(&app.id, ++year_sequence_, 6);
  app.stream = "app/" + app.id;
  ChooseProfile(app, rng, *shared.staff);
  Planner plan(&app, &rng, second_, options.correction_rate);
  if (app.business == kChange) {
    PlanChange(plan);
  } else {
    PlanDelivery(plan);
  }
  PlaceInCalendar(app, date, options.last_day, *shared.calendar);
  LEDGER_ASSERT(!app.steps.empty() && app.steps[0].at == next_at_ + int64_t(app.seed % 60));
  ++shared.apps_started;
  shared.spawned.push_back(std::make_unique<AppProcess>(std::move(app)));
  ++slot_;
  Settle();
  return false;
}

// ---- Reports, surveys, training and data accesses ----
struct ScriptEvent {
  int64_t at = 0;
  std::string stream;
  std::string_view type;
  uint8_t org = 0;
  Role role = Role::kDirector;
  int staff_index = 0;
  std::string data;  // the data object as JSON text
};

// A month's background events, already rendered except for the envelope.
class ScriptProcess : public Process {
 public:
  explicit ScriptProcess(std::vector<ScriptEvent> events) : events_(std::move(events)) {}
  bool done() const override { return next_ >= events_.size(); }
  int64_t next_at() const override { return events_[next_].at; }
  bool Step(Shared& shared, std::string* line) override {
    const ScriptEvent& event = events_[next_++];
    int64_t& version = shared.stream_versions.try_emplace(event.stream, -1).first->second;
    BeginLine(shared, line, event.stream, event.type, version, event.at,
              shared.staff->Id(event.org, event.role, event.staff_index), event.role,
              shared.options->orgs[event.org]);
    ++version;
    line->append(event.data).push_back('}');
    return true;
  }

 private:
  std::vector<ScriptEvent> events_;
  size_t next_ = 0;
};

class MonthProcess : public Process {
 public:
  explicit MonthProcess(const Shared& shared) : rng_(Mix(shared.options->seed, 0xB0B)) {
    const Date first = shared.options->first_day;
    year_ = first.year();
    month_ = first.month();
    Settle(shared, first);
  }
  bool done() const override { return done_; }
  int64_t next_at() const override { return UnixSeconds(first_working_day_, 8 * 3600); }
  bool Step(Shared& shared, std::string* line) override;

 private:
  // Finds the first working day of the current month on or after `from`; skips months without.
  void Settle(const Shared& shared, Date from);
  std::optional<int64_t> WorkTime(const Shared& shared, int working_days) {
    auto date = shared.calendar->AddWorkingDays(first_working_day_, working_days);
    if (!date.ok() || *date.value > shared.options->last_day) return std::nullopt;
    return UnixSeconds(*date.value,
                       LocalSecondOfDay(static_cast<int>(rng_.Below(kWorkSecondsPerDay))));
  }
  void AddTraining(const Shared& shared, uint8_t org, std::vector<ScriptEvent>& out);
  void AddAccesses(const Shared& shared, uint8_t org, std::vector<ScriptEvent>& out);
  void AddReport(const Shared& shared, uint8_t org, std::string_view type, std::string period,
                 int due_in_days, std::vector<ScriptEvent>& out);
  void AddSurvey(const Shared& shared, const std::string& period, std::vector<ScriptEvent>& out);

  Rng rng_;
  int year_ = 0;
  int month_ = 0;
  bool first_month_ = true;
  bool done_ = false;
  Date first_working_day_;
};

void MonthProcess::Settle(const Shared& shared, Date from) {
  while (true) {
    const Date month_start = *Date::FromCivil(year_, month_, 1);
    if (month_start > shared.options->last_day) {
      done_ = true;
      return;
    }
    for (Date day = std::max(from, month_start);
         day.month() == month_ && day.year() == year_ && day <= shared.options->last_day;
         day = day.AddDays(1)) {
      auto working = shared.calendar->IsWorkingDay(day);
      if (working.ok() && *working.value) {
        first_working_day_ = day;
        return;
      }
    }
    first_month_ = false;  // a month without working days still counts as passed
    if (++month_ > 12) {
      month_ = 1;
      ++year_;
    }
  }
}

std::string PeriodOfMonth(int year, int month) {
  std::string period = std::to_string(year) + "-";
  AppendPadded(&period, static_cast<uint64_t>(month), 2);
  return period;
}

void MonthProcess::AddTraining(const Shared& shared, uint8_t org, std::vector<ScriptEvent>& out) {
  auto at = WorkTime(shared, rng_.Between(2, 15));
  if (!at) return;
  std::string data;
  JsonOut json(&data);
  json.Open('{');
  json.Key("topic").Str(rng_.Pick(kTrainingTopics));
  json.Key("attendees").Open('[');
  const int attendees = rng_.Between(6, kTrainingAttendeesMax);
  for (int i = 0; i < attendees; ++i) {
    const Role role = i % 3 == 0   ? Role::kInspector
                      : i % 3 == 1 ? Role::kClerk
                                   : Role::kCallbackAgent;
    const int count = shared.staff->Count(role);
    if (i / 3 < count) json.Str(shared.staff->Id(org, role, i / 3));
  }
  json.Close(']');
  constexpr std::array<std::string_view, 4> kHours = {"2", "3", "4", "1.5"};
  json.Key("hours").Raw(rng_.Pick(kHours));
  json.Close('}');
  const std::string& director = shared.staff->Id(org, Role::kDirector, 0);
  out.push_back({*at, "staff/" + director, "TrainingHeld", org, Role::kDirector, 0, data});
}

void MonthProcess::AddAccesses(const Shared& shared, uint8_t org, std::vector<ScriptEvent>& out) {
  const int count = static_cast<int>(std::min<uint64_t>(
      kAccessesPerOrgMonthMax, 1 + shared.apps_per_org_month / 150 + rng_.Below(2)));
  for (int i = 0; i < count; ++i) {
    auto at = WorkTime(shared, rng_.Between(0, 18));
    if (!at) continue;
    const Role role = rng_.Chance(0.6) ? Role::kClerk : Role::kInspector;
    const int index = static_cast<int>(rng_.Below(shared.staff->Count(role)));
    std::string data;
    JsonOut json(&data);
    json.Open('{');
    std::string what = rng_.Chance(0.7) ? "查询客户C-" : "导出客户档案清单，起始客户C-";
    what.append(DistrictCodeOf(shared.options->orgs[org])).push_back('-');
    AppendPadded(&what, rng_.Below(1000000), 6);
    what.append("的身份证号及联系方式");
    json.Key("what").Str(what);
    if (!rng_.Chance(kAccessWithoutApprovalRate)) {
      json.Key("approved_by").Str(shared.staff->Id(org, Role::kDirector, 0));
    }
    json.Close('}');
    out.push_back({*at, "staff/" + shared.staff->Id(org, role, index), "SensitiveDataAccessed", org,
                   role, index, data});
  }
}

void MonthProcess::AddReport(const Shared& shared, uint8_t org, std::string_view type,
                             std::string period, int due_in_days, std::vector<ScriptEvent>& out) {
  auto due_date = shared.calendar->AddWorkingDays(first_working_day_, due_in_days);
  auto issued = WorkTime(shared, 0);
  if (!due_date.ok() || !issued) return;
  const std::string stream =
      "report/" + std::string(type) + "." + shared.options->orgs[org] + "/" + period;
  std::string data;
  JsonOut json(&data);
  json.Open('{');
  json.Key("report_type").Str(type);
  json.Key("period").Str(period);
  json.Key("due_date").Str(due_date.value->ToString());
  json.Close('}');
  out.push_back({*issued, stream, "ReportDue", org, Role::kDirector, 0, data});
  const bool late = rng_.Chance(kReportLateRate);
  auto submitted =
      WorkTime(shared, late ? due_in_days + rng_.Between(1, 4) : rng_.Between(1, due_in_days));
  if (!submitted) return;
  out.push_back({std::max(*submitted, *issued + 60), stream, "ReportSubmitted", org,
                 Role::kDirector, 0, "{}"});
  if (!rng_.Chance(kReportCorrectedRate)) return;
  auto corrected = WorkTime(shared, due_in_days + 5 + rng_.Between(1, 10));
  if (!corrected) return;
  out.push_back({std::max(*corrected, out.back().at + 60), stream, "ReportCorrected", org,
                 Role::kDirector, 0,
                 "{\"errors_found\":" + std::to_string(rng_.Between(1, 5)) + "}"});
}

void MonthProcess::AddSurvey(const Shared& shared, const std::string& period,
                             std::vector<ScriptEvent>& out) {
  for (uint8_t org = 0; org < shared.options->orgs.size(); ++org) {
    auto at = WorkTime(shared, rng_.Between(5, 15));
    if (!at) continue;
    std::string data;
    JsonOut json(&data);
    json.Open('{');
    json.Key("agency").Str(rng_.Pick(kAgencies));
    json.Key("sample_size").Int(rng_.Between(100, 400));
    const int tenths = rng_.Between(850, 985);
    json.Key("satisfaction_index")
        .Raw(std::to_string(tenths / 10) + "." + std::to_string(tenths % 10));
    json.Key("issues").Open('[');
    for (std::string_view issue : kSurveyIssues) {
      if (rng_.Chance(0.3)) json.Str(issue);
    }
    json.Close(']');
    json.Close('}');
    out.push_back(
        {*at, "survey/" + period, "ThirdPartySurveyRecorded", org, Role::kDirector, 0, data});
  }
}

bool MonthProcess::Step(Shared& shared, std::string* /*line*/) {
  std::vector<ScriptEvent> events;
  const size_t orgs = shared.options->orgs.size();
  const int prev_year = month_ == 1 ? year_ - 1 : year_;
  const int prev_month = month_ == 1 ? 12 : month_ - 1;
  const bool quarter_start = month_ % 3 == 1;
  std::string quarter = std::to_string(prev_year) + "-Q" + std::to_string((prev_month + 2) / 3);
  for (uint8_t org = 0; org < orgs; ++org) {
    AddTraining(shared, org, events);
    AddAccesses(shared, org, events);
    if (first_month_) continue;
    for (std::string_view type : kMonthlyReports) {
      AddReport(shared, org, type, PeriodOfMonth(prev_year, prev_month), 4, events);
    }
    if (quarter_start) AddReport(shared, org, kQuarterlyReport, quarter, 9, events);
  }
  if (!first_month_ && quarter_start) AddSurvey(shared, quarter, events);
  std::stable_sort(events.begin(), events.end(),
                   [](const ScriptEvent& a, const ScriptEvent& b) { return a.at < b.at; });
  if (!events.empty()) shared.spawned.push_back(std::make_unique<ScriptProcess>(std::move(events)));
  first_month_ = false;
  if (++month_ > 12) {
    month_ = 1;
    ++year_;
  }
  Settle(shared, *Date::FromCivil(year_, month_, 1));
  return false;
}

std::string HexTag(uint64_t seed) {
  constexpr std::string_view kHex = "0123456789abcdef";
  const uint64_t hash = Mix(seed, 0x7A6);
  std::string tag(8, '0');
  for (int i = 0; i < 8; ++i) tag[i] = kHex[(hash >> (4 * i)) & 0xF];
  return tag;
}

}  // namespace

// ---- The queue of processes ----
class DemoWorkload::Impl {
 public:
  Impl(DemoOptions options, const domain::WorkingCalendar& calendar);
  bool Next(std::string* json_line);
  const Shared& shared() const { return shared_; }
  size_t queued() const { return heap_.size(); }

 private:
  struct Entry {
    int64_t at;
    uint64_t sequence;  // ties at equal times go in insertion order: deterministic
    std::unique_ptr<Process> process;
  };
  static bool Later(const Entry& a, const Entry& b) {
    return a.at != b.at ? a.at > b.at : a.sequence > b.sequence;
  }
  void Push(std::unique_ptr<Process> process) {
    if (process->done()) return;
    const int64_t at = process->next_at();
    LEDGER_ASSERT(at >= last_at_);  // the output stays ordered by occurred_at
    heap_.push_back(Entry{at, next_sequence_++, std::move(process)});
    std::push_heap(heap_.begin(), heap_.end(), Later);
  }

  DemoOptions options_;
  Shared shared_;
  std::vector<Entry> heap_;  // a min-heap by Later: open applications and background batches
  uint64_t next_sequence_ = 0;
  int64_t last_at_ = INT64_MIN;
};

DemoWorkload::Impl::Impl(DemoOptions options_in, const domain::WorkingCalendar& calendar)
    : options_(std::move(options_in)) {
  LEDGER_ASSERT(!options_.orgs.empty() && options_.orgs.size() <= kOrgsMax);
  LEDGER_ASSERT(options_.first_day <= options_.last_day);
  shared_.options = &options_;
  shared_.calendar = &calendar;
  shared_.id_tag = HexTag(options_.seed);
  std::vector<Date> days;
  for (Date day = options_.first_day; day <= options_.last_day; day = day.AddDays(1)) {
    auto working = calendar.IsWorkingDay(day);
    if (working.ok() && *working.value) days.push_back(day);
  }
  // Staff grows with the workload: about 6 applications a day per clerk, 4 per inspector.
  const uint64_t per_org_day =
      days.empty() ? 0 : options_.apps / (days.size() * options_.orgs.size()) + 1;
  const auto staff_count = [&](uint64_t divisor, int minimum) {
    return static_cast<int>(
        std::clamp<uint64_t>(per_org_day / divisor + 1, minimum, kStaffPerRoleMax));
  };
  shared_.staff = std::make_unique<StaffDirectory>(
      options_.orgs.size(),
      std::array<int, 4>{staff_count(6, 4), staff_count(4, 6), staff_count(15, 2), 1});
  const uint64_t months = std::max<uint64_t>(1, days.size() / 21);
  shared_.apps_per_org_month = options_.apps / (months * options_.orgs.size());
  if (!days.empty() && options_.apps > 0) Push(std::make_unique<ArrivalProcess>(shared_, days));
  if (options_.background) Push(std::make_unique<MonthProcess>(shared_));
}

bool DemoWorkload::Impl::Next(std::string* json_line) {
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), Later);
    Entry entry = std::move(heap_.back());
    heap_.pop_back();
    last_at_ = entry.at;
    const bool wrote = entry.process->Step(shared_, json_line);
    for (auto& spawned : shared_.spawned) Push(std::move(spawned));
    shared_.spawned.clear();
    Push(std::move(entry.process));
    if (wrote) {
      ++shared_.events_emitted;
      return true;
    }
  }
  return false;
}

DemoWorkload::DemoWorkload(DemoOptions options, const domain::WorkingCalendar& calendar)
    : impl_(std::make_unique<Impl>(std::move(options), calendar)) {}
DemoWorkload::~DemoWorkload() = default;

bool DemoWorkload::Next(std::string* json_line) { return impl_->Next(json_line); }
uint64_t DemoWorkload::events_emitted() const { return impl_->shared().events_emitted; }
uint64_t DemoWorkload::apps_started() const { return impl_->shared().apps_started; }
size_t DemoWorkload::processes_queued() const { return impl_->queued(); }

}  // namespace gridledger::ingest
