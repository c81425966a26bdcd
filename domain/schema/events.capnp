@0xb7c52130d1093e98;
# The domain's events (shared/domain.md, "Streams and types"): one struct per event type, named
# exactly like the type. domain/event_json.cc maps JSON to these structs by reflection only, so this
# file is the single definition of every event's `data`:
#
#   JSON key     = snake_case of the field name (customerClass -> "customer_class").
#   enum value   = snake_case of the enumerant name (lvNonresidential -> "lv_nonresidential").
#   required     = every field without $optional; a required Text must not be empty.
#   optional     = $optional. Text / List / struct fields record presence as pointer has-ness; a
#                  scalar (Bool, number, enum) has a companion `has<Name> :Bool $presence` that is
#                  true exactly when the JSON key was given. Readers must check it first.
#   amounts      = Float64 in yuan (CNY), as clients write them ("amount_cny": 1280.5).
#   dates        = Text "YYYY-MM-DD" marked $date, validated as a real calendar date.
#
# Adding a type: add its struct here (ending with `extra :Text $extra`) and a member to
# EventRegistry; nothing else changes.
# Field ordinals and enumerant order are part of the stored format: only ever append.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("gridledger::domain::events");

# ---- Annotations read by event_json.cc (ids are fixed; event_json.cc names them) ----

annotation optional @0xd5a8a1f0c3a1e001 (field) :Void;
# The JSON key may be absent.

annotation presence @0xd5a8a1f0c3a1e002 (field) :Void;
# Companion `has<Name>` of an optional scalar field <name>; never a JSON key.

annotation date @0xd5a8a1f0c3a1e003 (field) :Void;
# Text holding a calendar date "YYYY-MM-DD".

annotation jsonObject @0xd5a8a1f0c3a1e004 (field) :Void;
# Text holding a free JSON object, stored compact (Corrected.fields).

annotation range @0xd5a8a1f0c3a1e005 (field) :Range;
# Inclusive bounds of a number field.

annotation stream @0xd5a8a1f0c3a1e006 (struct) :StreamKind;
# Which stream kind an event type is appended to.

annotation distinct @0xd5a8a1f0c3a1e007 (field) :Void;
# A list of Text whose elements are all different (rule duplicate_value).

annotation extra @0xd5a8a1f0c3a1e008 (field) :Void;
# Text holding the data keys the type does not define, as a compact JSON object (keys sorted):
# domain.md's data fields are the minimum, more are welcome. Never a JSON key itself: rendering
# puts its keys back beside the type's own fields. Absent when there were none.

struct Range {
  min @0 :Float64 = -inf;
  max @1 :Float64 = inf;
}

enum StreamKind {
  app @0;     # app/<id>
  report @1;  # report/<report type>/<period>
  survey @2;  # survey/<period>
  staff @3;   # staff/<id>
}

# ---- Closed vocabularies ----

enum CustomerClass {
  residential @0;
  lvNonresidential @1;
  hvSingle @2;
  hvDual @3;
}

enum Business {
  newInstall @0;
  capacityIncrease @1;
  change @2;
}

enum ChangeKind {
  capacityReduction @0;  # 减容
  suspension @1;         # 暂停
  temporarySwap @2;      # 暂换
  relocation @3;         # 迁址
  meterRelocation @4;    # 移表
  temporaryRemoval @5;   # 暂拆
  rename @6;             # 更名/过户
  split @7;              # 分户
  merge @8;              # 并户
  closure @9;            # 销户
  voltageChange @10;     # 改压
  categoryChange @11;    # 改类
}

enum Result {
  pass @0;
  fail @1;
}

enum CallbackResult {
  reached @0;
  noAnswer @1;
  refused @2;
  wrongNumber @3;
}

enum Satisfaction {
  satisfied @0;
  basicallySatisfied @1;
  dissatisfied @2;
}

enum Complaint {
  late @0;
  improperFee @1;
  designatedContractor @2;
}

# ---- app/<id>: one customer application (work order) ----

struct ApplicationAccepted $stream(app) {
  customerId @0 :Text;
  customerName @1 :Text;
  customerClass @2 :CustomerClass;
  business @3 :Business;
  changeKind @4 :ChangeKind $optional;  # given for business "change"
  hasChangeKind @5 :Bool $presence;
  voltageKv @6 :Float64 $range(min = 0);
  capacityKva @7 :Float64 $range(min = 0);
  channel @8 :Text;  # where it was accepted: counter, online, phone, ...
  important @9 :Bool;
  threeZero @10 :Bool;
  # Whether business fees are charged (stage 4, "when fees apply"); absent: they are, except for
  # three_zero. A fee-free job says false, and its connection waits for no FeesSettled.
  feesApply @11 :Bool $optional;
  hasFeesApply @12 :Bool $presence;
  # Whether the customer builds works that need a completion inspection (stage 7, HV and LV
  # non-residential "with customer works"); absent: they do. Residential and three_zero never.
  customerWorks @13 :Bool $optional;
  hasCustomerWorks @14 :Bool $presence;
  extra @15 :Text $extra;  # data keys beyond the minimum
}

struct SurveyDispatched $stream(app) {
  surveyor @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct SiteSurveyed $stream(app) {
  findings @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct SchemeReplied $stream(app) {
  scheme @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct FeesSettled $stream(app) {
  amountCny @0 :Float64 $range(min = 0);
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct DesignSubmitted $stream(app) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct DesignReviewed $stream(app) {
  result @0 :Result;
  defects @1 :List(Text) $optional;
  extra @2 :Text $extra;  # data keys beyond the minimum
}

struct MidInspectionRequested $stream(app) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct MidInspected $stream(app) {
  result @0 :Result;
  defects @1 :List(Text) $optional;
  extra @2 :Text $extra;  # data keys beyond the minimum
}

struct CompletionReported $stream(app) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct CompletionInspected $stream(app) {
  result @0 :Result;
  defects @1 :List(Text) $optional;
  extra @2 :Text $extra;  # data keys beyond the minimum
}

struct ContractSigned $stream(app) {
  contractId @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct MeterConnected $stream(app) {
  meterId @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct ChangeExecuted $stream(app) {
  summary @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct Archived $stream(app) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct ClockPaused $stream(app) {
  reason @0 :Text;
  note @1 :Text $optional;
  extra @2 :Text $extra;  # data keys beyond the minimum
}

struct ClockResumed $stream(app) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct Urged $stream(app) {
  level @0 :UInt8 $range(min = 1, max = 3);
  toOrg @1 :Text;
  toPerson @2 :Text;
  channel @3 :Text;  # free text: phone, system notice, meeting, ...
  note @4 :Text $optional;
  committedDate @5 :Text $optional $date;  # newly promised date; never moves the deadline
  extra @6 :Text $extra;  # data keys beyond the minimum
}

struct Reassigned $stream(app) {
  to @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct Withdrawn $stream(app) {
  reason @0 :Text;
  extra @1 :Text $extra;  # data keys beyond the minimum
}

struct Corrected $stream(app) {
  correctsPosition @0 :UInt64 $range(min = 1);  # global position of the corrected event
  reason @1 :Text;
  fields @2 :Text $jsonObject;  # the corrected data fields and their new values
  extra @3 :Text $extra;  # data keys beyond the minimum
}

struct ReviewItem {
  item @0 :Text;
  present @1 :Bool;
  correct @2 :Bool;
}

struct DocumentReviewed $stream(app) {
  reviewer @0 :Text;
  items @1 :List(ReviewItem);
  conclusion @2 :Result;
  defects @3 :List(Text) $optional;
  extra @4 :Text $extra;  # data keys beyond the minimum
}

struct SiteInspected $stream(app) {
  inspector @0 :Text;
  items @1 :List(Text);  # what was checked on site
  defects @2 :List(Text) $optional;
  conclusion @3 :Result;
  extra @4 :Text $extra;  # data keys beyond the minimum
}

struct CallbackMade $stream(app) {
  agent @0 :Text;
  result @1 :CallbackResult;
  satisfaction @2 :Satisfaction $optional;  # only when the customer was reached
  hasSatisfaction @3 :Bool $presence;
  complaints @4 :List(Complaint) $optional;
  comment @5 :Text $optional;
  extra @6 :Text $extra;  # data keys beyond the minimum
}

# ---- report/<type>/<period> ----

struct ReportDue $stream(report) {
  reportType @0 :Text;
  period @1 :Text;
  dueDate @2 :Text $date;
  extra @3 :Text $extra;  # data keys beyond the minimum
}

struct ReportSubmitted $stream(report) {
  extra @0 :Text $extra;  # data keys beyond the minimum
}

struct ReportCorrected $stream(report) {
  errorsFound @0 :UInt32 $range(min = 1);  # how many errors the correction fixed
  extra @1 :Text $extra;  # data keys beyond the minimum
}

# ---- survey/<period> ----

struct ThirdPartySurveyRecorded $stream(survey) {
  agency @0 :Text;
  sampleSize @1 :UInt32 $range(min = 1);
  satisfactionIndex @2 :Float64 $range(min = 0, max = 100);
  issues @3 :List(Text) $optional;
  extra @4 :Text $extra;  # data keys beyond the minimum
}

# ---- staff/<id> ----

struct TrainingHeld $stream(staff) {
  topic @0 :Text;
  attendees @1 :List(Text) $distinct;  # hours are credited per person
  hours @2 :Float64 $range(min = 0);
  extra @3 :Text $extra;  # data keys beyond the minimum
}

struct SensitiveDataAccessed $stream(staff) {
  what @0 :Text;
  approvedBy @1 :Text $optional;  # absent = accessed without approval (4.3.4)
  extra @2 :Text $extra;  # data keys beyond the minimum
}

# ---- Registry ----

struct EventRegistry {
  # Every event type, one member each, named lowerCamel of its struct. event_json.cc finds a type's
  # schema here; the union itself is never stored.
  union {
    applicationAccepted @0 :ApplicationAccepted;
    surveyDispatched @1 :SurveyDispatched;
    siteSurveyed @2 :SiteSurveyed;
    schemeReplied @3 :SchemeReplied;
    feesSettled @4 :FeesSettled;
    designSubmitted @5 :DesignSubmitted;
    designReviewed @6 :DesignReviewed;
    midInspectionRequested @7 :MidInspectionRequested;
    midInspected @8 :MidInspected;
    completionReported @9 :CompletionReported;
    completionInspected @10 :CompletionInspected;
    contractSigned @11 :ContractSigned;
    meterConnected @12 :MeterConnected;
    changeExecuted @13 :ChangeExecuted;
    archived @14 :Archived;
    clockPaused @15 :ClockPaused;
    clockResumed @16 :ClockResumed;
    urged @17 :Urged;
    reassigned @18 :Reassigned;
    withdrawn @19 :Withdrawn;
    corrected @20 :Corrected;
    documentReviewed @21 :DocumentReviewed;
    siteInspected @22 :SiteInspected;
    callbackMade @23 :CallbackMade;
    reportDue @24 :ReportDue;
    reportSubmitted @25 :ReportSubmitted;
    reportCorrected @26 :ReportCorrected;
    thirdPartySurveyRecorded @27 :ThirdPartySurveyRecorded;
    trainingHeld @28 :TrainingHeld;
    sensitiveDataAccessed @29 :SensitiveDataAccessed;
  }
}
