#include "projections/application_codec.h"

#include <optional>

#include "byte_codec.h"
#include "clock_codec.h"

namespace gridledger::projections {

namespace {

using codec::Reader;
using codec::Writer;
using domain::Date;

// The flags of WorkflowFacts, one bit each, in this order (the format: append only).
// fees_apply and customer_works take two bits each: given, and the value.
constexpr int kFactFlagCount = 24;
// Two enums, 20 bools and two optional<bool>s. A field added to WorkflowFacts and not encoded here
// would vanish whenever a state is reloaded from the store (round trips of encodings do not see
// it), so its size is pinned: a new field fails this until it is in FactBits and GetFacts (and
// kFoldVersion in engine.cc is raised, for states stored without it).
static_assert(sizeof(domain::WorkflowFacts) == 2 + 20 + 2 * sizeof(std::optional<bool>),
              "WorkflowFacts changed: encode every field in PutFacts / GetFacts");

uint64_t FactBits(const domain::WorkflowFacts& f) {
  const bool flags[kFactFlagCount] = {f.accepted,
                                      f.important,
                                      f.three_zero,
                                      f.archived,
                                      f.withdrawn,
                                      f.paused,
                                      f.survey_dispatched,
                                      f.surveyed,
                                      f.scheme_replied,
                                      f.fees_settled,
                                      f.design_pending,
                                      f.design_passed,
                                      f.mid_pending,
                                      f.mid_passed,
                                      f.completion_pending,
                                      f.completion_passed,
                                      f.contract_signed,
                                      f.meter_connected,
                                      f.change_executed,
                                      f.callback_made,
                                      f.fees_apply.has_value(),
                                      f.fees_apply.value_or(false),
                                      f.customer_works.has_value(),
                                      f.customer_works.value_or(false)};
  uint64_t bits = 0;
  for (int i = 0; i < kFactFlagCount; ++i) bits |= static_cast<uint64_t>(flags[i]) << i;
  return bits;
}

void PutFacts(Writer& w, const domain::WorkflowFacts& f) {
  w.U8(static_cast<uint8_t>(f.business));
  w.U8(static_cast<uint8_t>(f.customer_class));
  w.Varint(FactBits(f));
}

domain::WorkflowFacts GetFacts(Reader& r) {
  domain::WorkflowFacts f;
  f.business = r.EnumBelow<domain::Business>(3);
  f.customer_class = r.EnumBelow<domain::SlaCustomerClass>(domain::kSlaCustomerClassCount);
  const uint64_t bits = r.Varint();
  if (bits >> kFactFlagCount != 0) r.Fail();
  bool fees_apply_given = false;
  bool fees_apply = false;
  bool customer_works_given = false;
  bool customer_works = false;
  bool* flags[kFactFlagCount] = {
      &f.accepted,        &f.important,       &f.three_zero,         &f.archived,
      &f.withdrawn,       &f.paused,          &f.survey_dispatched,  &f.surveyed,
      &f.scheme_replied,  &f.fees_settled,    &f.design_pending,     &f.design_passed,
      &f.mid_pending,     &f.mid_passed,      &f.completion_pending, &f.completion_passed,
      &f.contract_signed, &f.meter_connected, &f.change_executed,    &f.callback_made,
      &fees_apply_given,  &fees_apply,        &customer_works_given, &customer_works};
  for (int i = 0; i < kFactFlagCount; ++i) *flags[i] = ((bits >> i) & 1) != 0;
  if (fees_apply_given) f.fees_apply = fees_apply;
  if (customer_works_given) f.customer_works = customer_works;
  return f;
}

void PutMilestone(Writer& w, const std::optional<Milestone>& m) {
  w.Bool(m.has_value());
  if (!m) return;
  w.Date(m->date);
  w.Varint(m->position);
}

std::optional<Milestone> GetMilestone(Reader& r) {
  if (!r.Bool()) return std::nullopt;
  Milestone m;
  m.date = r.Date();
  m.position = r.Varint();
  return m;
}

template <typename T, typename F>
void PutList(Writer& w, const std::vector<T>& items, F&& one) {
  w.Varint(items.size());
  for (const T& item : items) one(w, item);
}

template <typename T, typename F>
void GetList(Reader& r, std::vector<T>& items, F&& one) {
  const size_t count = r.Count();
  items.reserve(items.size() + count);
  for (size_t i = 0; i < count && r.ok(); ++i) items.push_back(one(r));
}

void PutViolation(Writer& w, const ViolationRecord& v) {
  w.String(v.rule);
  w.Varint(v.position);
  w.String(v.type);
  w.String(v.message);
  w.Date(v.date);
}

ViolationRecord GetViolation(Reader& r) {
  ViolationRecord v;
  v.rule = r.String();
  v.position = r.Varint();
  v.type = r.String();
  v.message = r.String();
  v.date = r.Date();
  return v;
}

void PutRecords(Writer& w, const ApplicationState& s) {
  PutList(w, s.violations, PutViolation);
  PutList(w, s.late_records, [](Writer& w, const LateRecord& l) {
    w.Varint(l.position);
    w.String(l.type);
    w.Signed(l.occurred_at_us);
    w.Signed(l.recorded_at_us);
  });
  PutList(w, s.urges, [](Writer& w, const UrgeRecord& u) {
    w.Varint(u.position);
    w.Signed(u.level);
    w.String(u.to_org);
    w.String(u.to_person);
    w.String(u.channel);
    w.OptionalString(u.committed_date);
    w.Signed(u.occurred_at_us);
    w.String(u.by);
  });
  PutList(w, s.corrections, [](Writer& w, const CorrectionRecord& c) {
    w.Varint(c.position);
    w.Varint(c.corrects_position);
    w.String(c.reason);
    w.String(c.fields);
  });
  PutList(w, s.rejected, [](Writer& w, const RejectedRecord& r) {
    w.Varint(r.position);
    w.String(r.type);
    w.String(r.rule);
    w.String(r.message);
  });
}

void GetRecords(Reader& r, ApplicationState& s) {
  GetList(r, s.violations, GetViolation);
  GetList(r, s.late_records, [](Reader& r) {
    LateRecord l;
    l.position = r.Varint();
    l.type = r.String();
    l.occurred_at_us = r.Signed();
    l.recorded_at_us = r.Signed();
    return l;
  });
  GetList(r, s.urges, [](Reader& r) {
    UrgeRecord u;
    u.position = r.Varint();
    u.level = r.Int32();
    u.to_org = r.String();
    u.to_person = r.String();
    u.channel = r.String();
    u.committed_date = r.OptionalString();
    u.occurred_at_us = r.Signed();
    u.by = r.String();
    return u;
  });
  GetList(r, s.corrections, [](Reader& r) {
    CorrectionRecord c;
    c.position = r.Varint();
    c.corrects_position = r.Varint();
    c.reason = r.String();
    c.fields = r.String();
    return c;
  });
  GetList(r, s.rejected, [](Reader& r) {
    RejectedRecord x;
    x.position = r.Varint();
    x.type = r.String();
    x.rule = r.String();
    x.message = r.String();
    return x;
  });
}

}  // namespace

namespace {

void PutPauses(codec::Writer& w, const std::vector<PauseInterval>& pauses) {
  w.Varint(pauses.size());
  for (const PauseInterval& p : pauses) {
    w.Date(p.from);
    w.OptionalDate(p.to);
    w.Varint(p.from_position);
    w.Varint(p.to_position);
  }
}

void GetPauses(codec::Reader& r, std::vector<PauseInterval>& pauses) {
  const size_t count = r.Count();
  pauses.reserve(count);
  for (size_t i = 0; i < count && r.ok(); ++i) {
    PauseInterval p;
    p.from = r.Date();
    p.to = r.OptionalDate();
    p.from_position = r.Varint();
    p.to_position = r.Varint();
    pauses.push_back(p);
  }
}

}  // namespace

void PutClock(codec::Writer& w, const Clock& c) {
  w.U8(static_cast<uint8_t>(c.name));
  w.Signed(c.attempt);
  w.Date(c.start);
  w.OptionalDate(c.end);
  w.Varint(c.start_position);
  w.Varint(c.end_position);
  w.Bool(c.stopped_by.has_value());
  if (c.stopped_by) w.U8(static_cast<uint8_t>(*c.stopped_by));
  PutPauses(w, c.pauses);
}

Clock GetClock(codec::Reader& r) {
  Clock c;
  c.name = r.EnumBelow<domain::SlaClock>(domain::kSlaClockCount);
  c.attempt = r.Int32();
  c.start = r.Date();
  c.end = r.OptionalDate();
  c.start_position = r.Varint();
  c.end_position = r.Varint();
  if (r.Bool()) c.stopped_by = r.EnumBelow<domain::AppEventType>(domain::kAppEventTypeCount);
  GetPauses(r, c.pauses);
  return c;
}

void EncodeApplicationTo(const ApplicationState& s, std::string& out) {
  Writer w(out);
  w.U8(kApplicationCodecVersion);
  w.String(s.stream);
  w.String(s.org);
  PutFacts(w, s.facts);
  w.Varint(s.last_position);
  w.Varint(s.events_applied);
  w.Varint(s.revision);
  w.OptionalDate(s.accepted_date);
  PutMilestone(w, s.scheme_replied);
  PutMilestone(w, s.fees_settled);
  PutMilestone(w, s.contract_signed);
  PutMilestone(w, s.completion_passed);
  PutList(w, s.clocks, [](Writer& w, const Clock& c) { PutClock(w, c); });
  PutRecords(w, s);
  PutPauses(w, s.pauses);
  PutList(w, s.settled, [](Writer& w, const SettledViolation& settled) {
    PutViolation(w, settled.violation);
    w.Varint(settled.by_position);
    w.String(settled.by_type);
    w.Date(settled.by_date);
  });
}

std::string EncodeApplication(const ApplicationState& state) {
  std::string out;
  EncodeApplicationTo(state, out);
  return out;
}

std::optional<ApplicationState> DecodeApplication(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kApplicationCodecVersion) return std::nullopt;
  ApplicationState s;
  s.stream = r.String();
  s.org = r.String();
  s.facts = GetFacts(r);
  s.last_position = r.Varint();
  s.events_applied = r.Varint();
  s.revision = r.Uint32();
  s.accepted_date = r.OptionalDate();
  s.scheme_replied = GetMilestone(r);
  s.fees_settled = GetMilestone(r);
  s.contract_signed = GetMilestone(r);
  s.completion_passed = GetMilestone(r);
  GetList(r, s.clocks, [](Reader& r) { return GetClock(r); });
  GetRecords(r, s);
  GetPauses(r, s.pauses);
  GetList(r, s.settled, [](Reader& r) {
    SettledViolation settled;
    settled.violation = GetViolation(r);
    settled.by_position = r.Varint();
    settled.by_type = r.String();
    settled.by_date = r.Date();
    return settled;
  });
  if (!r.Done()) return std::nullopt;
  return s;
}

}  // namespace gridledger::projections
