#include "projections/application_codec.h"

#include <nlohmann/json.hpp>

namespace gridledger::projections {

namespace {

using domain::Date;
using nlohmann::json;

json DateJson(const std::optional<Date>& date) {
  return date ? json(date->days_since_epoch()) : json(nullptr);
}
std::optional<Date> DateOf(const json& value) {
  if (value.is_null()) return std::nullopt;
  return Date::FromDaysSinceEpoch(value.get<int32_t>());
}

json FactsJson(const domain::WorkflowFacts& f) {
  return json::array({f.accepted,
                      static_cast<int>(f.business),
                      static_cast<int>(f.customer_class),
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
                      f.callback_made});
}
domain::WorkflowFacts FactsOf(const json& a) {
  domain::WorkflowFacts f;
  size_t i = 0;
  f.accepted = a.at(i++);
  f.business = static_cast<domain::Business>(a.at(i++).get<int>());
  f.customer_class = static_cast<domain::SlaCustomerClass>(a.at(i++).get<int>());
  for (bool* flag :
       {&f.important, &f.three_zero, &f.archived, &f.withdrawn, &f.paused, &f.survey_dispatched,
        &f.surveyed, &f.scheme_replied, &f.fees_settled, &f.design_pending, &f.design_passed,
        &f.mid_pending, &f.mid_passed, &f.completion_pending, &f.completion_passed,
        &f.contract_signed, &f.meter_connected, &f.change_executed, &f.callback_made}) {
    *flag = a.at(i++).get<bool>();
  }
  return f;
}

json MilestoneJson(const std::optional<Milestone>& m) {
  return m ? json::array({m->date.days_since_epoch(), m->position}) : json(nullptr);
}
std::optional<Milestone> MilestoneOf(const json& a) {
  if (a.is_null()) return std::nullopt;
  return Milestone{Date::FromDaysSinceEpoch(a.at(0).get<int32_t>()), a.at(1).get<uint64_t>()};
}

json ClockJson(const Clock& c) {
  json pauses = json::array();
  for (const PauseInterval& p : c.pauses) {
    pauses.push_back({p.from.days_since_epoch(), DateJson(p.to), p.from_position, p.to_position});
  }
  return json::array({static_cast<int>(c.name), c.attempt, c.start.days_since_epoch(),
                      DateJson(c.end), c.start_position, c.end_position,
                      c.stopped_by ? json(static_cast<int>(*c.stopped_by)) : json(nullptr),
                      std::move(pauses)});
}
Clock ClockOf(const json& a) {
  Clock c;
  c.name = static_cast<domain::SlaClock>(a.at(0).get<int>());
  c.attempt = a.at(1).get<int>();
  c.start = Date::FromDaysSinceEpoch(a.at(2).get<int32_t>());
  c.end = DateOf(a.at(3));
  c.start_position = a.at(4).get<uint64_t>();
  c.end_position = a.at(5).get<uint64_t>();
  if (!a.at(6).is_null()) c.stopped_by = static_cast<domain::AppEventType>(a.at(6).get<int>());
  for (const json& p : a.at(7)) {
    c.pauses.push_back({Date::FromDaysSinceEpoch(p.at(0).get<int32_t>()), DateOf(p.at(1)),
                        p.at(2).get<uint64_t>(), p.at(3).get<uint64_t>()});
  }
  return c;
}

template <typename T, typename F>
json ListJson(const std::vector<T>& items, F&& one) {
  json list = json::array();
  for (const T& item : items) list.push_back(one(item));
  return list;
}

json RecordsJson(const ApplicationState& s) {
  return json::array({
      ListJson(s.violations,
               [](const ViolationRecord& v) {
                 return json::array({v.rule, v.position, v.type, v.message});
               }),
      ListJson(s.late_records,
               [](const LateRecord& l) {
                 return json::array({l.position, l.type, l.occurred_at_us, l.recorded_at_us});
               }),
      ListJson(s.urges,
               [](const UrgeRecord& u) {
                 return json::array({u.position, u.level, u.to_org, u.to_person, u.channel,
                                     u.committed_date ? json(*u.committed_date) : json(nullptr),
                                     u.occurred_at_us});
               }),
      ListJson(s.corrections,
               [](const CorrectionRecord& c) {
                 return json::array({c.position, c.corrects_position, c.reason});
               }),
      ListJson(s.rejected,
               [](const RejectedRecord& r) {
                 return json::array({r.position, r.type, r.rule, r.message});
               }),
  });
}

void RecordsOf(const json& a, ApplicationState& s) {
  for (const json& v : a.at(0)) s.violations.push_back({v.at(0), v.at(1), v.at(2), v.at(3)});
  for (const json& l : a.at(1)) s.late_records.push_back({l.at(0), l.at(1), l.at(2), l.at(3)});
  for (const json& u : a.at(2)) {
    UrgeRecord urge{u.at(0), u.at(1), u.at(2), u.at(3), u.at(4), std::nullopt, u.at(6)};
    if (!u.at(5).is_null()) urge.committed_date = u.at(5).get<std::string>();
    s.urges.push_back(std::move(urge));
  }
  for (const json& c : a.at(3)) s.corrections.push_back({c.at(0), c.at(1), c.at(2)});
  for (const json& r : a.at(4)) s.rejected.push_back({r.at(0), r.at(1), r.at(2), r.at(3)});
}

}  // namespace

std::string EncodeApplication(const ApplicationState& s) {
  json state = json::array({
      kApplicationCodecVersion,
      s.stream,
      s.org,
      FactsJson(s.facts),
      s.last_position,
      s.events_applied,
      DateJson(s.accepted_date),
      json::array({MilestoneJson(s.scheme_replied), MilestoneJson(s.fees_settled),
                   MilestoneJson(s.contract_signed), MilestoneJson(s.completion_passed)}),
      ListJson(s.clocks, ClockJson),
      RecordsJson(s),
  });
  std::vector<uint8_t> bytes = json::to_msgpack(state);
  return std::string(bytes.begin(), bytes.end());
}

std::optional<ApplicationState> DecodeApplication(std::string_view bytes) {
  try {
    json a = json::from_msgpack(bytes.begin(), bytes.end());
    if (!a.is_array() || a.at(0).get<int>() != kApplicationCodecVersion) return std::nullopt;
    ApplicationState s;
    s.stream = a.at(1).get<std::string>();
    s.org = a.at(2).get<std::string>();
    s.facts = FactsOf(a.at(3));
    s.last_position = a.at(4).get<uint64_t>();
    s.events_applied = a.at(5).get<uint64_t>();
    s.accepted_date = DateOf(a.at(6));
    const json& milestones = a.at(7);
    s.scheme_replied = MilestoneOf(milestones.at(0));
    s.fees_settled = MilestoneOf(milestones.at(1));
    s.contract_signed = MilestoneOf(milestones.at(2));
    s.completion_passed = MilestoneOf(milestones.at(3));
    for (const json& clock : a.at(8)) s.clocks.push_back(ClockOf(clock));
    RecordsOf(a.at(9), s);
    return s;
  } catch (const json::exception&) {
    return std::nullopt;  // not this codec's bytes: the caller reports corruption
  }
}

}  // namespace gridledger::projections
