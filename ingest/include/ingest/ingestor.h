// Ingestor: the one way client events enter the ledger. It judges each event of an application
// stream against the workflow rules (domain/workflow.h) on the application's facts as stored, then
// appends it with the version it judged against, so the judgement and the append agree even under
// concurrent writers.
//
//   occurred_at in the future   → rejected (rule occurred_in_future): not yet a fact
//   retry of a stored event_id  → passed to the ledger unjudged (returns the original position),
//                                 answered with the violations the original was stored with
//   stale expected_version      → version_conflict, before any judgement
//   expected_version -1         → judged on no facts and appended without reading the stream first
//                                 (the ledger checks that it is new); the same answers as above
//   invalid by a workflow rule  → rejected with the rule id, nothing stored (also: a Corrected
//                                 naming a position that is not an event of its stream, rule
//                                 correction_target, or one that domain/correction.h refuses)
//   corrections                 → every judgement is made on the stream's events as corrected
//                                 (domain/correction.h), as the projections fold them
//   report/ stream of another org → forbidden (the org of the stream's first event owns it)
//   violations                  → stored; the violations are returned and the projections flag them
//   a late fact settling one     → stored; the settled violations of earlier events are returned
//                                 (`settles`) and the projections list them as settled
//
// Thread-safe: any number of threads may call Append.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/correction.h"
#include "domain/event_json.h"
#include "domain/workflow.h"
#include "ingest/auth.h"
#include "ledger/ledger.h"

namespace gridledger::ingest {

// How often an append without expected_version re-judges after losing a race on its stream.
inline constexpr int kJudgeRetriesMax = 16;
// How far occurred_at may lie after the ledger's clock (clients' clocks drift).
inline constexpr int64_t kFutureToleranceUs = domain::kFutureToleranceUs;

// A violation of an earlier event that an appended event settles: the fact it missed, entered
// late but dated on or before it (domain::RulesSettledBy; projections/application.h).
struct Settled {
  std::string rule;
  uint64_t position = 0;  // of the event the violation was flagged on
  std::string message;
};

struct IngestOutcome {
  ledger::AppendedEvent appended;
  std::vector<domain::RuleBreach> violations;
  std::vector<Settled> settles;
};

// Why an event was refused: a ledger status (version_conflict, busy, …) or a workflow rule.
struct IngestError {
  ledger::Status status;                   // kInvalid for workflow rules and refusals by role
  std::optional<domain::RuleBreach> rule;  // set when a workflow rule refused the event
  bool forbidden = false;                  // the principal may not append this event
};

using IngestAnswer = std::variant<IngestOutcome, IngestError>;

class Ingestor {
 public:
  // `now_us`: the clock that bounds occurred_at; default the system clock.
  explicit Ingestor(ledger::Ledger& ledger, std::function<int64_t()> now_us = {});

  // Appends one event. With a `principal`, the event must also be one that principal may append
  // (ingest/auth.h CheckAppend, judged on the application's org as stored); refusals by role
  // come back with `forbidden` set and change nothing.
  IngestAnswer Append(domain::ClientEvent event, const Principal* principal = nullptr);
  // Appends one event judged as its own actor's (Append with the principal its actor names), as
  // ledgerd judges an imported row: the actor's role must be one of domain.md's, allowed the
  // event's type, and of the org whose application it is. For writes no token stands behind
  // (ledgerctl on a data directory), so that a file stores what ledgerd would store of it.
  IngestAnswer AppendAsItsActor(domain::ClientEvent event);

  // The same without waiting for the commit: `done` is called exactly once, on the calling
  // thread when the event is refused before reaching the ledger, otherwise on the ledger's
  // completer thread (where a lost race is re-judged). `done` must not block.
  void AppendAsync(domain::ClientEvent event, std::optional<Principal> principal,
                   std::function<void(IngestAnswer)> done);

 private:
  struct Attempt;
  struct StoredStream {
    domain::WorkflowFacts facts;
    int64_t version = ledger::kNoStream;
    std::string org;                  // the actor org of the stream's first event ("" when none)
    domain::PrerequisiteDates dates;  // of the connection's prerequisites, by business date
    domain::DatedFacts dated;         // what the date rules judge by, as corrected
    // Business date of the first MeterConnected (a change's ChangeExecuted), as corrected.
    std::optional<domain::Date> done_on;
    std::vector<ledger::StoredEvent> events;  // as stored (a Corrected is judged on them)
  };
  // Folds the workflow facts, dates and org of `stored.events` into `stored`, with the
  // corrections among them applied. An event the rules call invalid (an old import) is skipped,
  // as the application projection does, so both see the same facts.
  static void FoldFacts(StoredStream& stored);
  // The workflow facts of `stream` as stored (of its first `versions_max` events), and the
  // stream's version they reflect.
  ledger::Result<StoredStream> ReadFacts(const std::string& stream,
                                         uint64_t versions_max = ledger::Ledger::kReadAll);
  // The verdict of the workflow rules on `event` appended after `stored`, recorded at
  // `recorded_at_us` (the time a Corrected is judged at).
  domain::Verdict JudgeOn(const StoredStream& stored, const domain::ClientEvent& event,
                          int64_t recorded_at_us);
  // The violations of earlier events of `stored` that `event`, appended after them and recorded
  // at `recorded_at_us`, settles. Folds the application only when it may settle one (an event
  // of a settling type, after an event of the type the violation is flagged on).
  static std::vector<Settled> SettledBy(const StoredStream& stored,
                                        const domain::ClientEvent& event, int64_t recorded_at_us);
  // What `original`, the stored event a retry of `event` was answered with, was answered with:
  // its violations and settlements.
  ledger::Result<IngestOutcome> OriginalOutcome(const domain::ClientEvent& event,
                                                const ledger::AppendedEvent& original);
  void Judge(std::shared_ptr<Attempt> attempt);
  // The fast way of an event with expected_version -1: judged on no facts, without reading.
  void AppendOpening(std::shared_ptr<Attempt> attempt);
  // An event of a report/ stream: the stream belongs to the org of its first event.
  void AppendToReport(std::shared_ptr<Attempt> attempt);

  ledger::Ledger& ledger_;
  std::function<int64_t()> now_us_;
};

}  // namespace gridledger::ingest
