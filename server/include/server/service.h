// Service: what ledgerd does, independent of the front door. The HTTP and TCP front doors parse
// their requests, call the Service, and render its answers; authentication, authorization,
// admission limits and the workflow rules live here (and below, in ingest/), so both doors refuse
// exactly the same things.
//
// Thread-safe: every method may be called from any thread (the front doors' I/O threads).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "domain/calendar.h"
#include "domain/sla_profile.h"
#include "ingest/auth.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "projections/engine.h"
#include "server/limits.h"

namespace gridledger::server {

// Why a request was refused, in front-door-neutral terms. HTTP maps each to a status code (401,
// 403, 400, 409, 409, 503, 404, 503, 500); the TCP protocol sends it as an error frame.
enum class ErrorKind {
  kUnauthenticated,    // no token or an unknown token
  kForbidden,          // the principal's role or org does not allow it
  kInvalid,            // malformed input or a workflow rule (the body names field/rule)
  kConflict,           // expected_version does not match (the body carries current_version)
  kDuplicateMismatch,  // event_id already stored with different content
  kBusy,               // a limit was reached; retry later, nothing was done
  kNotFound,
  kUnavailable,  // shutting down
  kInternal,     // storage failure or corruption
};

struct ServiceError {
  ErrorKind kind = ErrorKind::kInternal;
  // {"code": "...", "message": "...", and "field"/"rule"/"current_version" when they apply}:
  // the same body ledgerctl prints for a rejected line.
  nlohmann::ordered_json error;
};

ServiceError MakeError(ErrorKind kind, std::string code, std::string message);
// Rejected input (400, code "invalid") naming the field at fault and the rule it broke.
ServiceError InvalidField(std::string field, std::string rule, std::string message);
// Field names of a resume point in one front door's words ("fromPosition"/"afterHash" over TCP,
// "from"/"after_hash" over HTTP).
struct ResumeFields {
  std::string from;
  std::string after_hash;
};
// Whether a read or subscription may start at position `from` of `ledger`: the raw hash of the
// event at from - 1 ("" when from is 1), the hash to resume with until an event is sent; else a
// refusal (400). No client of this ledger can have been given a position past head + 1 (rule
// beyond_head): such a position comes from another history — the same ledger before it was
// restored from an older backup, say — and answered, the client would go on at positions this
// ledger fills with other events, its copy forked without a word. A position at most head + 1
// may still be one of another history once the ledger has refilled the gap: `after_hash`, the raw
// hash of the event at from - 1 as the client holds it ("" = not given), tells, and when this
// ledger's event there has another hash the start is refused too (rule forked). A hash that is
// not 32 bytes, or one given with from 1 (nothing comes before it), is refused as bad_value.
std::variant<std::string, ServiceError> CheckResumePoint(const ledger::Ledger& ledger,
                                                         uint64_t from, std::string_view after_hash,
                                                         const ResumeFields& fields);
// The same for a read of `stream` from version `from_version`, by the event at version
// from_version - 1: past the stream's last version + 1 (past 0 for a stream with no events) is
// refused (beyond_head); bad_value for a hash with from_version 0.
std::variant<std::string, ServiceError> CheckStreamResumePoint(const ledger::Ledger& ledger,
                                                               const std::string& stream,
                                                               uint64_t from_version,
                                                               std::string_view after_hash,
                                                               const ResumeFields& fields);
// A 503 / busy refusal by the limit of server/limits.h named `limit` (the body's "limit").
ServiceError BusyLimit(std::string limit, std::string message);
ServiceError FromStatus(const ledger::Status& status);
ServiceError FromIngestError(const ingest::IngestError& error);
ServiceError FromDecodeError(const domain::DecodeError& error);
// A query's as_of after now (400, rule not_in_future).
ServiceError AsOfInFuture();
// The answer for each decodable event of a batch that also holds an event that does not decode
// (the first at `undecodable_index`): nothing of such a batch is appended — bad input changes
// nothing — so the client fixes it and sends the whole batch again.
ServiceError NotAppendedWithBadBatch(size_t undecodable_index);

using AppendAnswer = std::variant<ingest::IngestOutcome, ServiceError>;

class ServerProbe;  // probe.h

struct ServiceParts {
  ledger::Ledger& ledger;
  projections::Engine& engine;
  const domain::WorkingCalendar& calendar;
  const domain::SlaProfile& profile;
  ingest::TokenStore tokens;
  Limits limits;
  std::function<int64_t()> now_us;  // default: the system clock
  // Where POST /v1/backup puts its copies (each in a new directory under it); empty: off.
  std::string backup_dir;
};

class Service {
 public:
  explicit Service(ServiceParts parts);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // The principal of a bearer token; nullopt when unknown.
  std::optional<ingest::Principal> Authenticate(std::string_view token) const;
  // Takes `tokens` in place of the tokens held (ledgerd: the file reloaded on SIGHUP): from the
  // next request on, a removed token is unknown and an added one works. Requests being answered
  // keep the principal they were admitted with.
  void ReplaceTokens(ingest::TokenStore tokens);
  // Moves on with every ReplaceTokens: a connection that authenticated once checks its token
  // again when this changed (the TCP door).
  uint64_t tokens_generation() const { return tokens_generation_.load(std::memory_order_acquire); }

  // nullopt when `principal` may do `access` (about `org`, "" = all); else a kForbidden error.
  std::optional<ServiceError> CheckAccess(const ingest::Principal& principal, ingest::Access access,
                                          std::string_view org = "") const;
  // nullopt when `principal` may read the events of `stream`: whoever reads the log reads any
  // stream, and an application's stream is also read by whoever may read that application (the
  // org of the actor who accepted it). Errors: kForbidden (another org's application: the org is
  // not named), kNotFound (an application stream not opened yet, for those who do not read the
  // log), or the store's.
  std::optional<ServiceError> CheckStreamRead(const ingest::Principal& principal,
                                              const std::string& stream) const;
  // nullopt when `principal` may read an application of `org`; else kForbidden without naming
  // `org` (the answer does not tell whose application it is).
  std::optional<ServiceError> CheckApplicationRead(const ingest::Principal& principal,
                                                   const std::string& org) const;

  // Appends one client event as `principal`: authorization (the actor must be the principal; the
  // role and org must allow the type and the application), the workflow rules, the ledger.
  // `done` is called exactly once, on some thread (possibly before AppendAsync returns), when the
  // event is durable or refused. Over limits.appends_inflight_max → kBusy at once. An event that
  // declares itself a bulk import ("import": true, never flagged as backdated) needs the import
  // right for its org, as POST /v1/import does: otherwise any clerk could hide a late entry.
  // With `admitted`, the event belongs to a batch AdmitBatch admitted: it is counted in flight but
  // never refused by appends_inflight_max.
  void AppendAsync(const ingest::Principal& principal, domain::ClientEvent event,
                   std::function<void(AppendAnswer)> done, bool admitted = false);
  // A batch is taken whole or refused whole by appends_inflight_max (nothing of it stored):
  // admitted when its `events` fit under the limit now (each then passed to AppendAsync with
  // `admitted`), else the busy refusal. Nothing is held for an admitted batch's later events (a
  // batch is appended event by event, or stream by stream); so the count may pass the limit by
  // the events of batches admitted together, never by more.
  std::optional<ServiceError> AdmitBatch(size_t events) const;
  // The blocking form of AppendAsync.
  AppendAnswer Append(const ingest::Principal& principal, domain::ClientEvent event);

  // Appends one row of a bulk import by `importer`. Imported history keeps its original actors:
  // the importer needs kImport for the org of the row's actor, and the row is judged as appended
  // by that actor (role, org and workflow rules). Blocking.
  AppendAnswer AppendImported(const ingest::Principal& importer, domain::ClientEvent event);

  // The KPI table of `period` as it could be reported at `as_of_us` (projections::KpiTableAsOf:
  // a replay of the log). One replay runs at a time (it reads the whole log on a query thread):
  // another gets kBusy. An as-of time in the future is refused (kInvalid): the figures of a
  // period not yet over would be judged as if it were.
  std::variant<nlohmann::json, ServiceError> KpiTableAsOf(std::string_view period,
                                                          const std::optional<std::string>& org,
                                                          int64_t as_of_us);

  // Records that `principal` read personal data (`what`, e.g. "app/XS-2026-000123") by appending
  // SensitiveDataAccessed to staff/<principal id>; `approved_by` may be empty. Reads of personal
  // data are refused when this cannot be recorded.
  std::optional<ServiceError> RecordPersonalDataRead(const ingest::Principal& principal,
                                                     std::string_view what,
                                                     std::string_view approved_by);
  // The same without blocking: `done` gets nullopt once the record is durable, or why it was
  // refused — on the calling thread when refused at once, otherwise on the ledger's completer
  // thread (so it must not block).
  void RecordPersonalDataReadAsync(const ingest::Principal& principal, std::string_view what,
                                   std::string_view approved_by,
                                   std::function<void(std::optional<ServiceError>)> done);
  // Whether events of `stream` carry a customer's personal data (application streams do), and
  // whether a subscription filtered by `stream_prefix` and `types` (empty: all) can deliver such
  // events. A reader never gets a record of access it could not have had: the staff audit counts
  // these records.
  static bool HoldsPersonalData(std::string_view stream);
  static bool MayDeliverPersonalData(std::string_view stream_prefix,
                                     const std::vector<std::string>& types);
  // What a read of the log from `first` to `last`, and a subscription from `from_position`
  // filtered by `stream_prefix` and `types`, are recorded as.
  static std::string LogReadWhat(uint64_t first, uint64_t last);
  static std::string SubscriptionWhat(uint64_t from_position, std::string_view stream_prefix,
                                      const std::vector<std::string>& types);

  // Admission of a connection (HTTP and TCP together) from `address` (AddressKey of the peer):
  // nullptr, or the name of the limit that refuses it (connections_max,
  // connections_per_address_max). Each admitted one is released with RemoveConnection(address).
  // What connections_per_address_max counts by: an IPv4 address as itself, also when it comes as
  // an IPv4-mapped IPv6 address (::ffff:a.b.c.d, a dual-stack listener); an IPv6 address by its
  // /64 prefix ("2001:db8:1:2::/64"), the block one host or site is given and can pick any
  // address from; a loopback or link-local IPv6 address (with its scope) as itself.
  static std::string AddressKey(const boost::asio::ip::address& address);
  const char* TryAddConnection(const std::string& address);
  void RemoveConnection(const std::string& address);
  // Admission of a subscription of a connection from `address` (AddressKey): nullptr, or the
  // name of the limit that refuses it (subscribers_max, subscribers_per_address_max). Pair each
  // admitted one with RemoveSubscriber(address).
  const char* TryAddSubscriber(const std::string& address);
  void RemoveSubscriber(const std::string& address);

  // Draining (SIGTERM): new appends are refused with kUnavailable; WaitIdle returns when no
  // append is in flight.
  void BeginDrain();
  bool draining() const { return draining_.load(); }

  // The last verification of the hash chain (ledgerd verifies at start and every
  // --verify-every-hours): nullopt before the first ends, else whether it passed and, if not,
  // why. /healthz reports it and is not ok once one failed.
  struct ChainCheck {
    bool ok = false;
    uint64_t head = 0;  // verified up to (when ok)
    std::string error;
  };
  void SetChainCheck(ChainCheck check);
  std::optional<ChainCheck> chain_check() const;
  void WaitIdle();
  size_t appends_inflight() const { return appends_inflight_.load(); }

  ledger::Ledger& ledger() { return ledger_; }
  projections::Engine& engine() { return engine_; }
  const domain::WorkingCalendar& calendar() const { return calendar_; }
  const domain::SlaProfile& profile() const { return profile_; }
  const Limits& limits() const { return limits_; }
  int64_t NowUs() const { return now_us_(); }
  const std::string& backup_dir() const { return backup_dir_; }

  // Whether `principal` heads staff member `staff_id`: a director of the org the tokens file
  // gives them, or of one above it (ingest::IsSuperior, as for approving reads). Staff without a
  // token here (legacy actors) are nobody's: their audits stay the log readers'.
  bool HeadsStaff(const ingest::Principal& principal, std::string_view staff_id) const;

  // A front door refused input before it reached the Service (an event that did not decode):
  // counted by the probe like the Service's own refusals.
  void ReportRejectedInput(const domain::DecodeError& error);

  // Installs the metrics probe (probe.h; nullptr removes it). Not owned: it must outlive every
  // call into the Service. Default: none.
  void SetProbe(ServerProbe* probe) { probe_.store(probe, std::memory_order_release); }

 private:
  // AppendAsync without its checks of the import flag and of a SensitiveDataAccessed's approver
  // (AppendImported checked the importer; RecordPersonalDataReadAsync, the approver).
  void Submit(const ingest::Principal& principal, domain::ClientEvent event,
              std::function<void(AppendAnswer)> done, bool admitted = false);
  // Frees one slot of appends_inflight_max; wakes WaitIdle when none is left.
  void EndAppend();

  ledger::Ledger& ledger_;
  projections::Engine& engine_;
  const domain::WorkingCalendar& calendar_;
  const domain::SlaProfile& profile_;
  std::shared_ptr<const ingest::TokenStore> Tokens() const;
  // nullopt when `approved_by` is empty or names the reader's superior (a director, holding a
  // token here, of the reader's org or one above it); else a kInvalid error naming the field.
  std::optional<ServiceError> CheckApprover(const ingest::Principal& reader,
                                            std::string_view approved_by) const;

  mutable std::mutex tokens_mutex_;
  std::shared_ptr<const ingest::TokenStore> tokens_;  // guarded by tokens_mutex_ (the pointer)
  std::atomic<uint64_t> tokens_generation_{0};
  const Limits limits_;
  std::function<int64_t()> now_us_;
  const std::string backup_dir_;
  ingest::Ingestor ingestor_;

  std::atomic<bool> draining_{false};
  std::atomic<bool> replaying_{false};  // a KpiTableAsOf is running
  std::atomic<size_t> appends_inflight_{0};
  // Admitted connections, or subscriptions: in all, and by client address (AddressKey).
  struct Admission {
    // nullptr, or the limit that refuses one more from `address` (`limit` over `max` in all,
    // `per_address_limit` over `per_address_max` from it).
    const char* TryAdd(const std::string& address, size_t max, size_t per_address_max,
                       const char* limit, const char* per_address_limit);
    void Remove(const std::string& address);

    std::atomic<size_t> total{0};
    std::mutex mutex;
    std::unordered_map<std::string, size_t> by_address;  // guarded by mutex
  };
  Admission connections_;
  Admission subscribers_;
  mutable std::mutex chain_mutex_;
  std::optional<ChainCheck> chain_check_;  // guarded by chain_mutex_
  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
  std::atomic<ServerProbe*> probe_{nullptr};
};

}  // namespace gridledger::server
