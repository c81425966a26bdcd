// Stored forms of KpiState (see projections/include/projections/kpi.h, "Encoding").
#include "kpi_codec.h"

#include "clock_codec.h"

namespace gridledger::projections {

using codec::Reader;
using codec::Writer;

namespace {

void PutCheck(Writer& w, const KpiCheck& c) {
  w.String(c.app);
  w.Varint(c.position);
  w.Bool(c.passed);
  w.Varint(c.revision);
}

KpiCheck GetCheck(Reader& r) {
  KpiCheck c;
  c.app = r.String();
  c.position = r.Varint();
  c.passed = r.Bool();
  c.revision = r.Uint32();
  return c;
}

}  // namespace

void PutKpiArchived(Writer& w, const KpiArchived& a) {
  w.String(a.app);
  w.Varint(a.position);
  w.U8(static_cast<uint8_t>(a.business));
  w.U8(static_cast<uint8_t>(a.customer_class));
  w.Bool(a.connected);
  w.Varint(a.clocks.size());
  for (const Clock& clock : a.clocks) PutClock(w, clock);
  w.Varint(a.violations.size());
  for (const std::string& rule : a.violations) w.String(rule);
  w.Varint(a.revision);
}

KpiArchived GetKpiArchived(Reader& r) {
  KpiArchived a;
  a.app = r.String();
  a.position = r.Varint();
  a.business = r.EnumBelow<domain::Business>(3);
  a.customer_class = r.EnumBelow<domain::SlaCustomerClass>(domain::kSlaCustomerClassCount);
  a.connected = r.Bool();
  const size_t clocks = r.Count();
  a.clocks.reserve(clocks);
  for (size_t i = 0; i < clocks && r.ok(); ++i) a.clocks.push_back(GetClock(r));
  const size_t violations = r.Count();
  for (size_t i = 0; i < violations && r.ok(); ++i) a.violations.push_back(r.String());
  a.revision = r.Uint32();
  return a;
}

void PutKpiChange(Writer& w, const KpiChange& c) {
  w.String(c.app);
  w.U8(static_cast<uint8_t>(c.customer_class));
  PutClock(w, c.clock);
  w.Bool(c.executed);
  w.Bool(c.withdrawn);
  w.Varint(c.revision);
}

KpiChange GetKpiChange(Reader& r) {
  KpiChange c;
  c.app = r.String();
  c.customer_class = r.EnumBelow<domain::SlaCustomerClass>(domain::kSlaCustomerClassCount);
  c.clock = GetClock(r);
  c.executed = r.Bool();
  c.withdrawn = r.Bool();
  c.revision = r.Uint32();
  return c;
}

void PutKpiCallback(Writer& w, const KpiCallback& c) {
  w.String(c.app);
  w.Varint(c.position);
  w.String(c.result);
  w.String(c.satisfaction);
  w.Bool(c.premature);
  w.Varint(c.revision);
}

KpiCallback GetKpiCallback(Reader& r) {
  KpiCallback c;
  c.app = r.String();
  c.position = r.Varint();
  c.result = r.String();
  c.satisfaction = r.String();
  c.premature = r.Bool();
  c.revision = r.Uint32();
  return c;
}

void PutKpiConnection(Writer& w, const KpiConnection& c) {
  w.String(c.app);
  w.Varint(c.position);
  w.Bool(c.contract_before);
  w.Varint(c.revision);
}

KpiConnection GetKpiConnection(Reader& r) {
  KpiConnection c;
  c.app = r.String();
  c.position = r.Varint();
  c.contract_before = r.Bool();
  c.revision = r.Uint32();
  return c;
}

void PutKpiCheck(Writer& w, const KpiCheck& c) { PutCheck(w, c); }
KpiCheck GetKpiCheck(Reader& r) { return GetCheck(r); }

void PutKpiViolation(Writer& w, const KpiViolation& v) {
  w.String(v.app);
  w.Varint(v.position);
  w.String(v.rule);
  w.Varint(v.revision);
}

KpiViolation GetKpiViolation(Reader& r) {
  KpiViolation v;
  v.app = r.String();
  v.position = r.Varint();
  v.rule = r.String();
  v.revision = r.Uint32();
  return v;
}

void PutKpiLate(Writer& w, const KpiLate& l) {
  w.String(l.stream);
  w.Varint(l.position);
  w.Signed(l.occurred_at_us);
  w.Signed(l.recorded_at_us);
  w.Varint(l.revision);
}

KpiLate GetKpiLate(Reader& r) {
  KpiLate l;
  l.stream = r.String();
  l.position = r.Varint();
  l.occurred_at_us = r.Signed();
  l.recorded_at_us = r.Signed();
  l.revision = r.Uint32();
  return l;
}

void PutKpiUrge(Writer& w, const KpiUrge& u) {
  w.String(u.app);
  w.Varint(u.position);
  w.Signed(u.level);
  w.Varint(u.revision);
}

KpiUrge GetKpiUrge(Reader& r) {
  KpiUrge u;
  u.app = r.String();
  u.position = r.Varint();
  u.level = r.Int32();
  u.revision = r.Uint32();
  return u;
}

void PutKpiTraining(Writer& w, const KpiTraining& t) {
  w.String(t.stream);
  w.Varint(t.position);
  w.Double(t.hours);
  w.Varint(t.attendees);
}

KpiTraining GetKpiTraining(Reader& r) {
  KpiTraining t;
  t.stream = r.String();
  t.position = r.Varint();
  t.hours = r.Double();
  t.attendees = r.Uint32();
  return t;
}

void PutKpiRevision(Writer& w, const KpiRevision& v) {
  w.String(v.app);
  w.Varint(v.position);
  w.Varint(v.revision);
}

KpiRevision GetKpiRevision(Reader& r) {
  KpiRevision v;
  v.app = r.String();
  v.position = r.Varint();
  v.revision = r.Uint32();
  return v;
}

void PutKpiSettled(Writer& w, const KpiSettled& v) {
  w.String(v.app);
  w.Varint(v.position);
  w.Date(v.date);
  w.String(v.rule);
  w.Varint(v.by_position);
  w.Varint(v.revision);
}

KpiSettled GetKpiSettled(Reader& r) {
  KpiSettled v;
  v.app = r.String();
  v.position = r.Varint();
  v.date = r.Date();
  v.rule = r.String();
  v.by_position = r.Varint();
  v.revision = r.Uint32();
  return v;
}

void PutKpiScalars(Writer& w, const KpiState& s) {
  w.String(s.org);
  w.String(s.month);
  w.String(s.report_stream);
  w.Varint(s.last_position);
  w.Bool(s.report.has_value());
  if (!s.report) return;
  const KpiReport& r = *s.report;
  w.String(r.report_type);
  w.String(r.period);
  w.Date(r.due_date);
  w.Varint(r.due_position);
  w.OptionalDate(r.submitted_date);
  w.Varint(r.submitted_position);
  w.Varint(r.corrections);
  w.Varint(r.errors_found);
}

void GetKpiScalars(Reader& r, KpiState& s) {
  s.org = r.String();
  s.month = r.String();
  s.report_stream = r.String();
  s.last_position = r.Varint();
  if (!r.Bool()) return;
  KpiReport& report = s.report.emplace();
  report.report_type = r.String();
  report.period = r.String();
  report.due_date = r.Date();
  report.due_position = r.Varint();
  report.submitted_date = r.OptionalDate();
  report.submitted_position = r.Varint();
  report.corrections = r.Uint32();
  report.errors_found = r.Varint();
}

namespace {

template <typename T>
void PutAll(Writer& w, const std::vector<T>& items, void (*put)(Writer&, const T&)) {
  w.Varint(items.size());
  for (const T& item : items) put(w, item);
}

template <typename T>
void GetAll(Reader& r, std::vector<T>& items, T (*get)(Reader&)) {
  const size_t count = r.Count();
  items.reserve(count);
  for (size_t i = 0; i < count && r.ok(); ++i) items.push_back(get(r));
}

}  // namespace

std::string Encode(const KpiState& s) {
  std::string out;
  Writer w(out);
  w.U8(kKpiCodecVersion);
  PutKpiScalars(w, s);
  PutAll(w, s.archived, &PutKpiArchived);
  PutAll(w, s.changes, &PutKpiChange);
  PutAll(w, s.callbacks, &PutKpiCallback);
  PutAll(w, s.connections, &PutKpiConnection);
  PutAll(w, s.document_reviews, &PutKpiCheck);
  PutAll(w, s.site_inspections, &PutKpiCheck);
  PutAll(w, s.violations, &PutKpiViolation);
  PutAll(w, s.late, &PutKpiLate);
  PutAll(w, s.urges, &PutKpiUrge);
  PutAll(w, s.trainings, &PutKpiTraining);
  PutAll(w, s.revisions, &PutKpiRevision);
  PutAll(w, s.settled, &PutKpiSettled);
  return out;
}

std::optional<KpiState> DecodeKpiState(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kKpiCodecVersion) return std::nullopt;
  KpiState s;
  GetKpiScalars(r, s);
  GetAll(r, s.archived, &GetKpiArchived);
  GetAll(r, s.changes, &GetKpiChange);
  GetAll(r, s.callbacks, &GetKpiCallback);
  GetAll(r, s.connections, &GetKpiConnection);
  GetAll(r, s.document_reviews, &GetKpiCheck);
  GetAll(r, s.site_inspections, &GetKpiCheck);
  GetAll(r, s.violations, &GetKpiViolation);
  GetAll(r, s.late, &GetKpiLate);
  GetAll(r, s.urges, &GetKpiUrge);
  GetAll(r, s.trainings, &GetKpiTraining);
  GetAll(r, s.revisions, &GetKpiRevision);
  GetAll(r, s.settled, &GetKpiSettled);
  if (!r.Done()) return std::nullopt;
  return s;
}

}  // namespace gridledger::projections
