#include "ingest/ingestor.h"

#include "ingest/event_codec.h"

#include <chrono>

namespace gridledger::ingest {

namespace {

bool IsAppStream(const domain::ClientEvent& event) {
  return domain::StreamKindOfType(event.type) == "app";
}

IngestError FromStatus(ledger::Status status) { return {std::move(status), std::nullopt}; }

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

ledger::Result<std::pair<domain::WorkflowFacts, int64_t>> Ingestor::StoredFacts(
    const std::string& stream) {
  auto events = ledger_.ReadStream(stream);
  if (!events.ok()) return events.status();
  domain::WorkflowFacts facts;
  int64_t version = ledger::kNoStream;
  for (const ledger::StoredEvent& stored : *events) {
    version = static_cast<int64_t>(stored.version);
    auto decoded = domain::DecodeWorkflowEvent(stored.type, stored.payload);
    if (auto* event = std::get_if<domain::WorkflowEvent>(&decoded)) {
      // A stored event that the rules call invalid (an old import) is skipped, as the
      // application projection does, so both see the same facts.
      if (domain::Judge(facts, *event).valid()) domain::Apply(facts, *event);
    }
  }
  return std::make_pair(facts, version);
}

std::variant<IngestOutcome, IngestError> Ingestor::Append(domain::ClientEvent event) {
  if (event.occurred_at_us > now_us_() + kFutureToleranceUs) {
    domain::RuleBreach breach{
        "occurred_in_future",
        "occurred_at " +
            domain::FormatTimestamp(event.occurred_at_us, event.occurred_at_offset_minutes) +
            " lies in the future: only what has happened can be recorded "
            "(rule occurred_in_future)"};
    return IngestError{ledger::Status(ledger::Code::kInvalid, breach.message), breach};
  }
  auto stored = ledger_.FindEventId(event.event_id);
  if (!stored.ok()) return FromStatus(stored.status());
  if (!IsAppStream(event) || stored->has_value()) {
    // Not an application stream (no workflow rules), or a retry the ledger answers by itself.
    auto appended = ledger_.Append(ToAppendRequest(std::move(event)));
    if (!appended.ok()) return FromStatus(appended.status());
    return IngestOutcome{appended->events.front(), {}};
  }

  const std::optional<int64_t> client_expected = event.expected_version;
  for (int attempt = 0; attempt < kJudgeRetriesMax; ++attempt) {
    auto facts = StoredFacts(event.stream);
    if (!facts.ok()) return FromStatus(facts.status());
    auto& [workflow, version] = *facts;
    if (client_expected && *client_expected != version) {
      return FromStatus(ledger::Status(ledger::Code::kVersionConflict,
                                       "stream " + event.stream + " is at version " +
                                           std::to_string(version) + ", expected " +
                                           std::to_string(*client_expected))
                            .WithCurrentVersion(version));
    }
    domain::Verdict verdict = domain::Judge(workflow, event.type, event.payload);
    if (!verdict.valid()) {
      return IngestError{ledger::Status(ledger::Code::kInvalid, verdict.invalid->message),
                         verdict.invalid};
    }
    ledger::AppendRequest request = ToAppendRequest(event);
    request.expected_version = version;  // the version the judgement was made on
    auto appended = ledger_.Append(std::move(request));
    if (appended.ok()) return IngestOutcome{appended->events.front(), verdict.violations};
    if (appended.status().code() != ledger::Code::kVersionConflict || client_expected) {
      return FromStatus(appended.status());
    }
    // Another writer appended to this stream after we read it: judge again on the new facts.
  }
  return FromStatus(ledger::Status(ledger::Code::kBusy,
                                   "stream " + event.stream + " kept changing while being judged"));
}

}  // namespace gridledger::ingest
