#include "ingest/ingestor.h"

#include "ingest/event_codec.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <vector>

#include "domain/correction.h"
#include "domain/roles.h"
#include "projections/application.h"

namespace gridledger::ingest {

namespace {

bool IsAppStream(const domain::ClientEvent& event) {
  return domain::StreamKindOfType(event.type) == "app";
}

IngestError FromStatus(ledger::Status status) { return {std::move(status), std::nullopt}; }

IngestError Forbidden(std::string reason) {
  return {ledger::Status(ledger::Code::kInvalid, std::move(reason)), std::nullopt, true};
}

// The earliest business date of each connection prerequisite, as the application projection
// keeps it (its milestones).
void NotePrerequisiteDate(domain::PrerequisiteDates& dates, const domain::WorkflowEvent& event,
                          int64_t occurred_at_us) {
  std::optional<domain::Date>* date = nullptr;
  switch (event.type) {
    case domain::AppEventType::kSchemeReplied:
      date = &dates.scheme_replied;
      break;
    case domain::AppEventType::kFeesSettled:
      date = &dates.fees_settled;
      break;
    case domain::AppEventType::kContractSigned:
      date = &dates.contract_signed;
      break;
    case domain::AppEventType::kCompletionInspected:
      if (event.passed) date = &dates.completion_passed;
      break;
    default:
      break;
  }
  const domain::Date on = domain::LocalDateOf(occurred_at_us);
  if (date != nullptr && (!*date || on < **date)) *date = on;
}

// A Corrected must name an earlier event of its own stream (not another org's application, not a
// position that does not exist), apply to it, and leave no event of the stream invalid by the
// workflow rules (domain/correction.h, judged there as every fold judges it). nullopt when it may
// be appended.
std::optional<domain::RuleBreach> JudgeCorrection(const std::vector<ledger::StoredEvent>& stored,
                                                  const domain::ClientEvent& event,
                                                  int64_t now_us) {
  std::vector<domain::CorrectableEvent> events = Correctable(stored);
  // Not yet stored, so it has no position: any above the stream's last one orders it last.
  const uint64_t candidate = (stored.empty() ? 0 : stored.back().position) + 1;
  events.push_back(
      {candidate, event.type, event.payload, event.occurred_at_us, now_us, event.actor.role});
  const domain::AppliedCorrections applied = domain::ApplyCorrections(events);
  if (auto refused = applied.refused.find(candidate); refused != applied.refused.end()) {
    return refused->second;
  }
  // An acceptance as corrected keeps the front door's rules for a new one (the folds apply a
  // stored correction without them: see domain::CheckAcceptanceRules).
  const std::optional<domain::CorrectionRequest> request = domain::ReadCorrection(event.payload);
  const auto target = std::find_if(events.begin(), events.end(), [&](const auto& stored_event) {
    return request && stored_event.position == request->corrects_position;
  });
  const auto corrected =
      request ? applied.values.find(request->corrects_position) : applied.values.end();
  if (target != events.end() && target->type == "ApplicationAccepted" &&
      corrected != applied.values.end()) {
    const domain::Decoded<nlohmann::json> data =
        domain::PayloadToJson(target->type, corrected->second.payload);
    if (const auto* fields = std::get_if<nlohmann::json>(&data)) {
      if (std::optional<domain::DecodeError> error = domain::CheckAcceptanceRules(*fields)) {
        return domain::CorrectedValueBreach(*error, target->type, target->position);
      }
    }
  }
  return std::nullopt;
}

// The type of the event a Corrected names in its stream, which decides who may correct it
// (CheckAppend); "" for another type, or when it names no event of the stream.
std::string_view CorrectedType(const std::vector<ledger::StoredEvent>& stored,
                               const domain::ClientEvent& event) {
  if (event.type != "Corrected") return {};
  const std::optional<domain::CorrectionRequest> request = domain::ReadCorrection(event.payload);
  if (!request) return {};
  for (const ledger::StoredEvent& earlier : stored) {
    if (earlier.position == request->corrects_position) return earlier.type;
  }
  return {};
}

}  // namespace

Ingestor::Ingestor(ledger::Ledger& ledger, std::function<int64_t()> now_us)
    : ledger_(ledger), now_us_(std::move(now_us)) {
  if (!now_us_) {
    now_us_ = [] {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

void Ingestor::FoldFacts(StoredStream& stored) {
  const std::vector<domain::CorrectableEvent> events = Correctable(stored.events);
  const domain::AppliedCorrections corrections = domain::ApplyCorrections(events);
  for (const ledger::StoredEvent& event : stored.events) {
    if (event.version == 0) stored.org = event.actor.org;
    stored.version = static_cast<int64_t>(event.version);
  }
  domain::WorkflowFacts& facts = stored.facts;
  for (const domain::CorrectableEvent& event : events) {
    std::string_view payload = event.payload;
    int64_t occurred_at_us = event.occurred_at_us;
    if (auto corrected = corrections.values.find(event.position);
        corrected != corrections.values.end()) {
      payload = corrected->second.payload;
      occurred_at_us = corrected->second.occurred_at_us;
    }
    auto decoded = domain::DecodeWorkflowEvent(event.type, payload);
    auto* workflow = std::get_if<domain::WorkflowEvent>(&decoded);
    if (workflow == nullptr || !domain::Judge(facts, *workflow).valid()) continue;
    // The first connection (a change's execution): what an archive or callback follows.
    const bool done = domain::Delivered(facts);
    domain::Apply(facts, *workflow);
    const domain::Date on = domain::LocalDateOf(occurred_at_us);
    NotePrerequisiteDate(stored.dates, *workflow, occurred_at_us);
    if (!done && domain::Delivered(facts)) {
      stored.done_on = on;
    }
    domain::FoldDates(stored.dated, workflow->type, on);
  }
}

ledger::Result<Ingestor::StoredStream> Ingestor::ReadFacts(const std::string& stream,
                                                           uint64_t versions_max) {
  auto events = ledger_.ReadStream(stream, 0, versions_max);
  if (!events.ok()) return events.status();
  StoredStream stored;
  stored.events = std::move(events).value();
  FoldFacts(stored);
  return stored;
}

// One event on its way in; shared by the callbacks of its (re-)judgements.
struct Ingestor::Attempt {
  domain::ClientEvent event;
  std::optional<Principal> principal;
  std::function<void(IngestAnswer)> done;
  int judgements = 0;
};

IngestAnswer Ingestor::Append(domain::ClientEvent event, const Principal* principal) {
  std::promise<IngestAnswer> answer;
  std::future<IngestAnswer> result = answer.get_future();
  AppendAsync(std::move(event), principal ? std::optional<Principal>(*principal) : std::nullopt,
              [&answer](IngestAnswer done) { answer.set_value(std::move(done)); });
  return result.get();
}

IngestAnswer Ingestor::AppendAsItsActor(domain::ClientEvent event) {
  const std::optional<Role> role = ParseRole(event.actor.role);
  if (!role) {
    return Forbidden("actor role " + event.actor.role + " is not a role of domain.md (they are " +
                     domain::RoleList(domain::kAllRoles) + ")");
  }
  const Principal actor{event.actor.id, *role, event.actor.org};
  return Append(std::move(event), &actor);
}

void Ingestor::AppendAsync(domain::ClientEvent event, std::optional<Principal> principal,
                           std::function<void(IngestAnswer)> done) {
  if (event.occurred_at_us > now_us_() + kFutureToleranceUs) {
    domain::RuleBreach breach{
        "occurred_in_future",
        "occurred_at " +
            domain::FormatTimestamp(event.occurred_at_us, event.occurred_at_offset_minutes) +
            " lies in the future: only what has happened can be recorded "
            "(rule occurred_in_future)"};
    return done(IngestError{ledger::Status(ledger::Code::kInvalid, breach.message), breach});
  }
  auto attempt = std::make_shared<Attempt>(
      Attempt{std::move(event), std::move(principal), std::move(done), 0});
  if (attempt->principal && domain::StreamKindOfType(attempt->event.type) == "report") {
    return AppendToReport(std::move(attempt));
  }
  if (!IsAppStream(attempt->event)) {
    // No workflow rules and no owning org: only the role decides.
    if (attempt->principal) {
      if (auto refusal = CheckAppend(*attempt->principal, attempt->event, "")) {
        return attempt->done(Forbidden(std::move(*refusal)));
      }
    }
    return ledger_.AppendAsync(ToAppendRequest(attempt->event),
                               [attempt](ledger::Result<ledger::AppendResult> appended) {
                                 if (!appended.ok()) {
                                   return attempt->done(FromStatus(appended.status()));
                                 }
                                 attempt->done(IngestOutcome{appended->events.front(), {}, {}});
                               });
  }
  if (attempt->event.expected_version == ledger::kNoStream) {
    return AppendOpening(std::move(attempt));
  }
  Judge(std::move(attempt));
}

// An event that must open its application (expected_version -1) is judged as Judge would judge it
// on a stream that does not exist — no facts, no org — and appended with -1, without reading the
// stream and the event ids first: the ledger checks both as it stages the event. Every answer that
// a stored stream or event_id could have made different — a version conflict (the stream exists),
// a retry or a mismatch of a stored event_id, a refusal here — goes the ordinary way through
// Judge, so the answers are exactly Judge's.
void Ingestor::AppendOpening(std::shared_ptr<Attempt> attempt) {
  const domain::ClientEvent& event = attempt->event;
  if (attempt->principal && CheckAppend(*attempt->principal, event, "")) {
    return Judge(std::move(attempt));
  }
  domain::Verdict verdict = domain::Judge(domain::WorkflowFacts{}, event.type, event.payload);
  if (!verdict.valid()) return Judge(std::move(attempt));
  ledger_.AppendAsync(
      ToAppendRequest(event), [this, attempt, violations = std::move(verdict.violations)](
                                  ledger::Result<ledger::AppendResult> appended) mutable {
        if (appended.ok() && !appended->events.front().duplicate) {
          return attempt->done(IngestOutcome{appended->events.front(), std::move(violations), {}});
        }
        const ledger::Code code = appended.status().code();
        if (appended.ok() || code == ledger::Code::kVersionConflict ||
            code == ledger::Code::kDuplicateMismatch) {
          return Judge(std::move(attempt));
        }
        attempt->done(FromStatus(appended.status()));
      });
}

// Only the org that opened a report stream (its ReportDue, usually) writes to it: its KPIs count
// toward that org, and another org's late ReportSubmitted would fail them. A stream not opened yet
// is opened with expected_version -1 unless the client chose a version, so two orgs racing to open
// it cannot both pass: the one that loses is checked again against the stored stream.
void Ingestor::AppendToReport(std::shared_ptr<Attempt> attempt) {
  const domain::ClientEvent& event = attempt->event;
  if (++attempt->judgements > kJudgeRetriesMax) {
    return attempt->done(FromStatus(ledger::Status(
        ledger::Code::kBusy, "stream " + event.stream + " kept changing while being checked")));
  }
  auto first = ledger_.ReadStream(event.stream, 0, 1);
  if (!first.ok()) return attempt->done(FromStatus(first.status()));
  const std::string owner = first->empty() ? std::string() : first->front().actor.org;
  if (auto refusal = CheckAppend(*attempt->principal, event, owner)) {
    return attempt->done(Forbidden(std::move(*refusal)));
  }
  ledger::AppendRequest request = ToAppendRequest(event);
  const bool opening = first->empty() && !event.expected_version;
  if (opening) request.expected_version = ledger::kNoStream;
  ledger_.AppendAsync(
      std::move(request), [this, attempt, opening](ledger::Result<ledger::AppendResult> appended) {
        if (appended.ok()) return attempt->done(IngestOutcome{appended->events.front(), {}, {}});
        if (opening && appended.status().code() == ledger::Code::kVersionConflict) {
          return AppendToReport(std::move(attempt));  // opened meanwhile: check its owner
        }
        attempt->done(FromStatus(appended.status()));
      });
}

domain::Verdict Ingestor::JudgeOn(const StoredStream& stored, const domain::ClientEvent& event,
                                  int64_t recorded_at_us) {
  domain::Verdict verdict = domain::Judge(stored.facts, event.type, event.payload);
  const std::optional<domain::AppEventType> type = domain::ParseAppEventType(event.type);
  if (!verdict.valid() || !type) return verdict;  // (a valid event has a workflow type)
  const domain::Date on = domain::LocalDateOf(event.occurred_at_us);
  verdict.invalid = domain::JudgeDates(stored.dated, *type, on);
  if (verdict.valid() && *type == domain::AppEventType::kCorrected) {
    verdict.invalid = JudgeCorrection(stored.events, event, recorded_at_us);
  }
  if (!verdict.valid()) return verdict;
  // A prerequisite recorded first but dated after this event, and an archive or callback dated
  // before a connection (execution) recorded earlier, as the application projection flags them.
  for (domain::RuleBreach& later :
       domain::PrerequisiteDateViolations(stored.facts, stored.dates, *type, on)) {
    verdict.violations.push_back(std::move(later));
  }
  if (stored.done_on) {
    for (domain::RuleBreach& earlier :
         domain::ClosingDateViolations(stored.facts, *type, *stored.done_on, on)) {
      verdict.violations.push_back(std::move(earlier));
    }
  }
  return verdict;
}

std::vector<Settled> Ingestor::SettledBy(const StoredStream& stored,
                                         const domain::ClientEvent& event, int64_t recorded_at_us) {
  const std::optional<domain::AppEventType> type = domain::ParseAppEventType(event.type);
  if (!type || stored.events.empty()) return {};
  // Most events settle nothing: fold the application only when an event that may carry a
  // violation this one could settle (were it a passed inspection) is stored.
  domain::WorkflowEvent probe;
  probe.type = *type;
  probe.passed = true;
  const std::vector<std::string_view> rules = domain::RulesSettledBy(probe);
  const bool may_settle = std::any_of(rules.begin(), rules.end(), [&](std::string_view rule) {
    const std::optional<domain::AppEventType> on = domain::ViolationFlaggedOn(rule);
    const std::string_view on_type = on ? domain::AppEventTypeName(*on) : std::string_view();
    return std::any_of(stored.events.begin(), stored.events.end(),
                       [&](const ledger::StoredEvent& e) { return e.type == on_type; });
  });
  if (!may_settle) return {};
  projections::ApplicationState app = projections::FoldStream(stored.events);
  const size_t settled_before = app.settled.size();
  projections::EventRecord record;
  record.position = stored.events.back().position + 1;  // any position after the stored ones
  record.stream = event.stream;
  record.type = event.type;
  record.actor_id = event.actor.id;
  record.actor_org = event.actor.org;
  record.occurred_at_us = event.occurred_at_us;
  record.recorded_at_us = recorded_at_us;
  record.payload = event.payload;
  // (Whether it is a declared import matters only to backdating, not to what it settles.)
  projections::Fold(app, record);
  std::vector<Settled> settles;
  for (size_t i = settled_before; i < app.settled.size(); ++i) {
    const projections::ViolationRecord& v = app.settled[i].violation;
    settles.push_back(Settled{
        v.rule, v.position,
        "settles " + v.rule + " of the " + v.type + " at position " + std::to_string(v.position) +
            " (" + v.date.ToString() + "): " + event.type + " dated " +
            domain::LocalDateOf(event.occurred_at_us).ToString() + ", on or before it"});
  }
  return settles;
}

// The original was judged on the events of its stream before it and appended with that version
// (Judge, AppendOpening), and stored events never change: judging it again on them gives exactly
// the violations (and settlements) it was stored with. A retry is rare, so one read of the stream
// is cheap enough.
ledger::Result<IngestOutcome> Ingestor::OriginalOutcome(const domain::ClientEvent& event,
                                                        const ledger::AppendedEvent& original) {
  auto before = ReadFacts(event.stream, original.version);
  if (!before.ok()) return before.status();
  auto stored = ledger_.ReadOne(original.position);
  if (!stored.ok()) return stored.status();
  IngestOutcome outcome{original, {}, {}};
  domain::Verdict verdict = JudgeOn(*before, event, stored->recorded_at_us);
  // An event the rules now call invalid (stored by an older version of them) has no violations.
  if (!verdict.valid()) return outcome;
  outcome.violations = std::move(verdict.violations);
  outcome.settles = SettledBy(*before, event, stored->recorded_at_us);
  return outcome;
}

// Judges an application event on its stream as stored and appends it with the version judged on.
// Runs on the caller's thread first and on the completer thread after a lost race (or after an
// opening append that the stored stream answered; see AppendOpening).
void Ingestor::Judge(std::shared_ptr<Attempt> attempt) {
  const domain::ClientEvent& event = attempt->event;
  if (++attempt->judgements > kJudgeRetriesMax) {
    return attempt->done(FromStatus(ledger::Status(
        ledger::Code::kBusy, "stream " + event.stream + " kept changing while being judged")));
  }
  auto stored = ReadFacts(event.stream);
  if (!stored.ok()) return attempt->done(FromStatus(stored.status()));
  if (attempt->principal) {
    if (auto refusal = CheckAppend(*attempt->principal, event, stored->org,
                                   CorrectedType(stored->events, event))) {
      return attempt->done(Forbidden(std::move(*refusal)));
    }
  }
  auto retry_of = ledger_.FindEventId(event.event_id);
  if (!retry_of.ok()) return attempt->done(FromStatus(retry_of.status()));
  if (retry_of->has_value()) {
    // A retry: the ledger answers it with the original position (or duplicate_mismatch), and the
    // client that lost the first answer gets all of it, the violations included.
    return ledger_.AppendAsync(
        ToAppendRequest(event), [this, attempt](ledger::Result<ledger::AppendResult> appended) {
          if (!appended.ok()) {
            return attempt->done(FromStatus(appended.status()));
          }
          auto outcome = OriginalOutcome(attempt->event, appended->events.front());
          if (!outcome.ok()) return attempt->done(FromStatus(outcome.status()));
          attempt->done(std::move(outcome).value());
        });
  }
  const int64_t version = stored->version;
  if (event.expected_version && *event.expected_version != version) {
    return attempt->done(FromStatus(ledger::Status(ledger::Code::kVersionConflict,
                                                   "stream " + event.stream + " is at version " +
                                                       std::to_string(version) + ", expected " +
                                                       std::to_string(*event.expected_version))
                                        .WithCurrentVersion(version)));
  }
  const int64_t now_us = now_us_();
  domain::Verdict verdict = JudgeOn(*stored, event, now_us);
  if (!verdict.valid()) {
    return attempt->done(IngestError{
        ledger::Status(ledger::Code::kInvalid, verdict.invalid->message), verdict.invalid});
  }
  ledger::AppendRequest request = ToAppendRequest(event);
  request.expected_version = version;  // the version the judgement was made on
  ledger_.AppendAsync(
      std::move(request), [this, attempt, violations = std::move(verdict.violations),
                           settles = SettledBy(*stored, event, now_us)](
                              ledger::Result<ledger::AppendResult> appended) mutable {
        if (appended.ok()) {
          return attempt->done(
              IngestOutcome{appended->events.front(), std::move(violations), std::move(settles)});
        }
        if (appended.status().code() == ledger::Code::kVersionConflict &&
            !attempt->event.expected_version) {
          // Another writer appended to this stream after we read it: judge again on the new
          // facts.
          return Judge(std::move(attempt));
        }
        attempt->done(FromStatus(appended.status()));
      });
}

}  // namespace gridledger::ingest
