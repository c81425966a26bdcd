#include "server/service.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "domain/event_json.h"
#include "domain/payload.h"
#include "ingest/event_codec.h"
#include "projections/queries.h"
#include "server/probe.h"

namespace gridledger::server {

ServiceError MakeError(ErrorKind kind, std::string code, std::string message) {
  return {kind, {{"code", std::move(code)}, {"message", std::move(message)}}};
}

ServiceError BusyLimit(std::string limit, std::string message) {
  ServiceError error = MakeError(ErrorKind::kBusy, "busy", std::move(message));
  error.error["limit"] = std::move(limit);  // the name in server/limits.h, as TCP busy frames say
  return error;
}

ServiceError InvalidField(std::string field, std::string rule, std::string message) {
  ServiceError error = MakeError(ErrorKind::kInvalid, "invalid", std::move(message));
  error.error["field"] = std::move(field);
  error.error["rule"] = std::move(rule);
  return error;
}

namespace {

// The refusal of an after hash that is not a hash, or that names nothing (`first`: the first
// position or version, which nothing comes before).
std::optional<ServiceError> MalformedAfterHash(std::string_view after_hash, uint64_t from,
                                               uint64_t first, const ResumeFields& fields) {
  if (after_hash.size() != ledger::kHashBytes) {
    return InvalidField(fields.after_hash, "bad_value",
                        fields.after_hash + " is the SHA-256 hash of an event: " +
                            std::to_string(ledger::kHashBytes) + " bytes, not " +
                            std::to_string(after_hash.size()));
  }
  if (from <= first) {
    return InvalidField(fields.after_hash, "bad_value",
                        fields.after_hash + " names the event before " + fields.from + " " +
                            std::to_string(from) + ", and nothing comes before " +
                            std::to_string(first) + ": leave it out");
  }
  return std::nullopt;
}

// The refusal of a resume point whose event `where` ("position 93", "version 9 of app/X") has
// another hash here than the one the reader sent.
ServiceError Forked(const ResumeFields& fields, const std::string& where, std::string_view sent,
                    const std::string& ours, const std::string& how_to_find) {
  return InvalidField(
      fields.after_hash, "forked",
      "the hash you sent for " + where + " (the event before " + fields.from + ") is " +
          ledger::ToHex(sent) + ", this ledger's event there has " + ours +
          ": your copy parted from this ledger at or before it (this ledger was restored from an "
          "older backup, or it is another ledger), and what you hold from there on is not its "
          "history. " +
          how_to_find);
}

// Refused: `from` (a position, or a version of `stream`) lies past `next`, where the next event
// would be stored.
ServiceError BeyondHead(const ResumeFields& fields, uint64_t from, uint64_t next,
                        const std::string& last_said, const std::string& unit) {
  return InvalidField(
      fields.from, "beyond_head",
      fields.from + " " + std::to_string(from) + " lies past " + last_said +
          ": this ledger never stored " + unit + " " + std::to_string(from - 1) +
          ", so the events up to it came from another history (this ledger before it was "
          "restored from an older backup, or another ledger). Check the events you hold against "
          "this ledger's (their hashes tell which are its own) before going on from " +
          unit + " " + std::to_string(next) + " at most");
}

}  // namespace

std::variant<std::string, ServiceError> CheckResumePoint(const ledger::Ledger& ledger,
                                                         uint64_t from, std::string_view after_hash,
                                                         const ResumeFields& fields) {
  const uint64_t head = ledger.Head();
  if (from > head + 1) {
    return BeyondHead(fields, from, head + 1, "the head " + std::to_string(head) + " + 1",
                      "position");
  }
  if (!after_hash.empty()) {
    if (auto malformed = MalformedAfterHash(after_hash, from, 1, fields)) return *malformed;
  }
  if (from <= 1) return std::string();
  auto before = ledger.ReadOne(from - 1);
  if (!before.ok()) return FromStatus(before.status());
  if (after_hash.empty() || before->hash == after_hash) return std::move(before->hash);
  return Forked(fields, "position " + std::to_string(from - 1), after_hash,
                ledger::ToHex(before->hash),
                "Find the last position P whose hash agrees with this ledger's (GET "
                "/v1/digest?at=P answers it; hashes chain, so every position before an "
                "agreeing one agrees too), drop what you hold after P and go on from P + 1. The "
                "head is " +
                    std::to_string(head));
}

std::variant<std::string, ServiceError> CheckStreamResumePoint(const ledger::Ledger& ledger,
                                                               const std::string& stream,
                                                               uint64_t from_version,
                                                               std::string_view after_hash,
                                                               const ResumeFields& fields) {
  if (!after_hash.empty()) {
    if (auto malformed = MalformedAfterHash(after_hash, from_version, 0, fields)) {
      return *malformed;
    }
  }
  if (from_version == 0) return std::string();  // nothing comes before it, nor past it
  auto last = ledger.StreamVersion(stream);
  if (!last.ok()) return FromStatus(last.status());
  // Versions count from 0: a reader may hold versions 0 .. last, and ask from last + 1 at most.
  const uint64_t next = static_cast<uint64_t>(*last + 1);
  if (from_version > next) {
    return BeyondHead(fields, from_version, next,
                      *last == ledger::kNoStream
                          ? stream + " (it has no events here)"
                          : stream + "'s last version " + std::to_string(*last) + " + 1",
                      "version");
  }
  auto before = ledger.ReadStream(stream, from_version - 1, 1);
  if (!before.ok()) return FromStatus(before.status());
  if (before->empty()) {
    return MakeError(ErrorKind::kInternal, "internal",
                     "version " + std::to_string(from_version - 1) + " of " + stream +
                         " is missing from the stream's index");
  }
  std::string& hash = before->front().hash;
  if (after_hash.empty() || hash == after_hash) return std::move(hash);
  return Forked(fields, "version " + std::to_string(from_version - 1) + " of " + stream, after_hash,
                ledger::ToHex(hash),
                "Find the last version whose hash agrees with this ledger's, drop what you hold "
                "after it and go on from the one after it. The stream's last version is " +
                    std::to_string(*last));
}

ServiceError NotAppendedWithBadBatch(size_t undecodable_index) {
  return MakeError(ErrorKind::kInvalid, "invalid",
                   "not appended: the event at index " + std::to_string(undecodable_index) +
                       " of this batch does not decode, and nothing of such a batch is appended");
}

ServiceError FromStatus(const ledger::Status& status) {
  ErrorKind kind = ErrorKind::kInternal;
  switch (status.code()) {
    case ledger::Code::kInvalid:
      kind = ErrorKind::kInvalid;
      break;
    case ledger::Code::kVersionConflict:
      kind = ErrorKind::kConflict;
      break;
    case ledger::Code::kDuplicateMismatch:
      kind = ErrorKind::kDuplicateMismatch;
      break;
    case ledger::Code::kBusy:
      kind = ErrorKind::kBusy;
      break;
    case ledger::Code::kNotFound:
      kind = ErrorKind::kNotFound;
      break;
    case ledger::Code::kShutdown:
      kind = ErrorKind::kUnavailable;
      break;
    case ledger::Code::kOk:
    case ledger::Code::kCorruption:
    case ledger::Code::kIoError:
    case ledger::Code::kLocked:
      kind = ErrorKind::kInternal;
      break;
  }
  return {kind, ingest::ErrorJson(status)};
}

ServiceError FromIngestError(const ingest::IngestError& error) {
  if (error.forbidden) return MakeError(ErrorKind::kForbidden, "forbidden", error.status.message());
  if (error.rule) return {ErrorKind::kInvalid, ingest::ErrorJson(error.status, *error.rule)};
  return FromStatus(error.status);
}

ServiceError AsOfInFuture() {
  return InvalidField(
      "as_of", "not_in_future",
      std::string("query parameter as_of lies in the future: ") + projections::kAsOfMustHavePassed);
}

ServiceError FromDecodeError(const domain::DecodeError& error) {
  return {ErrorKind::kInvalid, ingest::ErrorJson(error)};
}

namespace {

int64_t SystemNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Service::Service(ServiceParts parts)
    : ledger_(parts.ledger),
      engine_(parts.engine),
      calendar_(parts.calendar),
      profile_(parts.profile),
      tokens_(std::make_shared<const ingest::TokenStore>(std::move(parts.tokens))),
      limits_(parts.limits),
      now_us_(parts.now_us ? std::move(parts.now_us) : std::function<int64_t()>(SystemNowUs)),
      backup_dir_(std::move(parts.backup_dir)),
      ingestor_(parts.ledger, now_us_) {}

std::shared_ptr<const ingest::TokenStore> Service::Tokens() const {
  std::lock_guard lock(tokens_mutex_);
  return tokens_;
}

bool Service::HeadsStaff(const ingest::Principal& principal, std::string_view staff_id) const {
  const std::optional<ingest::Principal> staff = Tokens()->FindById(staff_id);
  return staff && ingest::IsSuperior(principal, *staff);
}

void Service::ReplaceTokens(ingest::TokenStore tokens) {
  auto replacement = std::make_shared<const ingest::TokenStore>(std::move(tokens));
  std::lock_guard lock(tokens_mutex_);
  tokens_ = std::move(replacement);
  tokens_generation_.fetch_add(1, std::memory_order_release);
}

std::optional<ingest::Principal> Service::Authenticate(std::string_view token) const {
  std::optional<ingest::Principal> principal;
  if (!token.empty()) principal = Tokens()->Authenticate(token);
  if (!principal) {
    if (ServerProbe* probe = probe_.load(std::memory_order_acquire)) {
      probe->OnRefused(ErrorKind::kUnauthenticated, "");
    }
  }
  return principal;
}

std::optional<ServiceError> Service::CheckAccess(const ingest::Principal& principal,
                                                 ingest::Access access,
                                                 std::string_view org) const {
  if (auto refusal = ingest::CheckAccess(principal, access, org)) {
    if (ServerProbe* probe = probe_.load(std::memory_order_acquire)) {
      probe->OnRefused(ErrorKind::kForbidden, "");
    }
    return MakeError(ErrorKind::kForbidden, "forbidden", std::move(*refusal));
  }
  return std::nullopt;
}

std::optional<ServiceError> Service::CheckStreamRead(const ingest::Principal& principal,
                                                     const std::string& stream) const {
  const bool reads_log = !ingest::CheckAccess(principal, ingest::Access::kReadLog, "");
  if (reads_log || !HoldsPersonalData(stream) ||
      ingest::CheckAccess(principal, ingest::Access::kReadApplication, principal.org)) {
    return CheckAccess(principal, ingest::Access::kReadLog);  // counted and said as before
  }
  // Decided on the stream's first event, which never changes once written. A stream not opened
  // yet is "not found" at once: it could be opened by another org before its events are read.
  auto first = ledger_.ReadStream(stream, 0, 1);
  if (!first.ok()) return FromStatus(first.status());
  if (first->empty()) return MakeError(ErrorKind::kNotFound, "not_found", "no stream " + stream);
  return CheckApplicationRead(principal, first->front().actor.org);
}

std::optional<ServiceError> Service::CheckApplicationRead(const ingest::Principal& principal,
                                                          const std::string& org) const {
  if (!CheckAccess(principal, ingest::Access::kReadApplication, org)) return std::nullopt;
  const bool below = ingest::ReachesOrgsBelow(principal.role, ingest::Access::kReadApplication);
  return MakeError(ErrorKind::kForbidden, "forbidden",
                   "role " + std::string(ingest::RoleName(principal.role)) + " of org " +
                       principal.org + " may read only its own org's applications" +
                       (below ? " and those of the orgs below it" : ""));
}

void Service::AppendAsync(const ingest::Principal& principal, domain::ClientEvent event,
                          std::function<void(AppendAnswer)> done, bool admitted) {
  const auto import = event.extra.find("import");
  if (import != event.extra.end() && import->is_boolean() && import->get<bool>()) {
    if (auto refused = CheckAccess(principal, ingest::Access::kImport, event.actor.org)) {
      refused->error["message"] =
          "\"import\": true declares a bulk import of historical records, which needs the "
          "import right: " +
          refused->error["message"].get<std::string>();
      return done(std::move(*refused));
    }
  } else if (event.type == "SensitiveDataAccessed") {
    // An approval is its approver's word: one a reader writes into its own record is judged as a
    // read's X-Approved-By is (RecordPersonalDataReadAsync, which submits ledgerd's own records
    // of reads), so an audit of 4.3.4 cannot be padded with approvals nobody gave. (A bulk import
    // declares history under the importer's word: not judged.)
    std::optional<std::string> approved_by;
    domain::ReadPayload<domain::events::SensitiveDataAccessed>(
        event.payload, [&](domain::events::SensitiveDataAccessed::Reader root) {
          if (root.hasApprovedBy()) approved_by = domain::TextOf(root.getApprovedBy());
          return true;
        });
    if (approved_by) {
      if (auto refused = CheckApprover(principal, *approved_by)) {
        refused->error["field"] = "data.approved_by";
        return done(std::move(*refused));
      }
    }
  }
  Submit(principal, std::move(event), std::move(done), admitted);
}

std::optional<ServiceError> Service::AdmitBatch(size_t events) const {
  if (events == 0 || appends_inflight_.load() + events <= limits_.appends_inflight_max) {
    return std::nullopt;
  }
  return BusyLimit("appends_inflight_max",
                   "too many appends in flight (" + std::to_string(limits_.appends_inflight_max) +
                       ") to take these " + std::to_string(events) + " together; retry later");
}

void Service::EndAppend() {
  if (appends_inflight_.fetch_sub(1) == 1) {
    std::lock_guard lock(idle_mutex_);
    idle_cv_.notify_all();
  }
}

void Service::Submit(const ingest::Principal& principal, domain::ClientEvent event,
                     std::function<void(AppendAnswer)> done, bool admitted) {
  ServerProbe* const probe = probe_.load(std::memory_order_acquire);
  const uint32_t type_token = probe != nullptr ? probe->TypeToken(event.type) : 0;
  auto refuse = [&](ServiceError error) {
    if (probe != nullptr) probe->OnAppendAnswered(type_token, error);
    done(std::move(error));
  };
  // Counted in flight before the drain is checked: a drain that begins between the two then
  // either refuses this append here or waits for it (WaitIdle), never neither.
  auto uncount = [this] { EndAppend(); };
  // (A refusal is answered before it stops counting, as an append is: see the callback below.)
  // An event of an admitted batch counts but is never refused here (AdmitBatch).
  if (appends_inflight_.fetch_add(1) >= limits_.appends_inflight_max && !admitted) {
    refuse(BusyLimit("appends_inflight_max", "too many appends in flight (" +
                                                 std::to_string(limits_.appends_inflight_max) +
                                                 "); retry later"));
    return uncount();
  }
  if (draining_.load()) {
    refuse(MakeError(ErrorKind::kUnavailable, "shutdown",
                     "ledgerd is shutting down; retry against the restarted server"));
    return uncount();
  }
  ingestor_.AppendAsync(
      std::move(event), principal,
      [probe, type_token, done = std::move(done), uncount](ingest::IngestAnswer answer) {
        AppendAnswer result =
            std::holds_alternative<ingest::IngestOutcome>(answer)
                ? AppendAnswer(std::get<ingest::IngestOutcome>(std::move(answer)))
                : AppendAnswer(FromIngestError(std::get<ingest::IngestError>(answer)));
        if (probe != nullptr) probe->OnAppendAnswered(type_token, result);
        done(std::move(result));
        uncount();
      });
}

namespace {

// The blocking form of an asynchronous call: `start(done)` begins it; waits for `done(answer)`.
template <typename Answer, typename Start>
Answer Await(Start start) {
  std::promise<Answer> answer;
  std::future<Answer> result = answer.get_future();
  start([&answer](Answer done) { answer.set_value(std::move(done)); });
  return result.get();
}

}  // namespace

AppendAnswer Service::Append(const ingest::Principal& principal, domain::ClientEvent event) {
  return Await<AppendAnswer>(
      [&](auto done) { AppendAsync(principal, std::move(event), std::move(done)); });
}

AppendAnswer Service::AppendImported(const ingest::Principal& importer, domain::ClientEvent event) {
  if (auto refused = CheckAccess(importer, ingest::Access::kImport, event.actor.org)) {
    return *refused;
  }
  // A row keeps its original actor, whom the importer names; someone who holds a token here is
  // who the tokens file says, so an importer cannot move a known person into its own org (and
  // write, say, to that person's staff stream). Legacy staff without a token are taken as named.
  if (auto known = Tokens()->FindById(event.actor.id);
      known && (std::string(ingest::RoleName(known->role)) != event.actor.role ||
                known->org != event.actor.org)) {
    if (ServerProbe* probe = probe_.load(std::memory_order_acquire)) {
      probe->OnRefused(ErrorKind::kForbidden, "");
    }
    // Not saying which role and org: an importer would learn other orgs' staff that way.
    return MakeError(ErrorKind::kForbidden, "forbidden",
                     "the row's actor " + event.actor.id +
                         " holds a token here under another role or org than the row says (" +
                         event.actor.role + " of " + event.actor.org +
                         "): rows keep their actor as the tokens file knows them");
  }
  std::optional<ingest::Role> role = ingest::ParseRole(event.actor.role);
  if (!role) {
    return MakeError(ErrorKind::kForbidden, "forbidden",
                     "actor role " + event.actor.role + " is not a role of domain.md");
  }
  ingest::Principal actor{event.actor.id, *role, event.actor.org};
  // The row is judged as its actor's, and stored with who imported it.
  event.recorded_by =
      domain::Actor{importer.id, std::string(ingest::RoleName(importer.role)), importer.org};
  return Await<AppendAnswer>([&](auto done) { Submit(actor, std::move(event), std::move(done)); });
}

std::variant<nlohmann::json, ServiceError> Service::KpiTableAsOf(
    std::string_view period, const std::optional<std::string>& org, int64_t as_of_us) {
  if (as_of_us > NowUs()) return AsOfInFuture();
  if (replaying_.exchange(true)) {
    return MakeError(ErrorKind::kBusy, "busy",
                     "another as_of replay of the log is running; retry later");
  }
  auto table = projections::KpiTableAsOf(ledger_, period, org, calendar_, profile_, as_of_us);
  replaying_ = false;
  if (!table.ok()) return FromStatus(table.status());
  return std::move(table).value();
}

std::optional<ServiceError> Service::RecordPersonalDataRead(const ingest::Principal& principal,
                                                            std::string_view what,
                                                            std::string_view approved_by) {
  return Await<std::optional<ServiceError>>([&](auto done) {
    RecordPersonalDataReadAsync(principal, what, approved_by, std::move(done));
  });
}

std::optional<ServiceError> Service::CheckApprover(const ingest::Principal& reader,
                                                   std::string_view approved_by) const {
  if (approved_by.empty()) return std::nullopt;  // recorded without approval (a 4.3.4 risk)
  const std::optional<ingest::Principal> approver = Tokens()->FindById(approved_by);
  if (approver && ingest::IsSuperior(*approver, reader)) return std::nullopt;
  // Said as it is: a director who names itself is refused for that, not as if unknown.
  const std::string name(approved_by);
  std::string why;
  if (name == reader.id) {
    why = "approved_by names the reader " + name +
          " itself: nobody approves their own read of personal data";
  } else if (!approver) {
    why = "approved_by names " + name + ", who holds no token here";
  } else if (approver->role != ingest::Role::kDirector) {
    why = "approved_by names " + name + ", whose role is " +
          std::string(ingest::RoleName(approver->role)) + ", not director";
  } else {
    why = "approved_by names " + name + ", a director of org " + approver->org +
          ", which is neither the reader's org " + reader.org + " nor above it";
  }
  return InvalidField("approved_by", "approver_not_superior",
                      why +
                          ": a read of personal data is approved by the reader's superior, a "
                          "director of the reader's org or one above it (job standard 4.3.4); "
                          "without approved_by the read is recorded as not approved");
}

void Service::RecordPersonalDataReadAsync(const ingest::Principal& principal, std::string_view what,
                                          std::string_view approved_by,
                                          std::function<void(std::optional<ServiceError>)> done) {
  if (auto refused = CheckApprover(principal, approved_by)) {
    done(std::move(refused));
    return;
  }
  auto decoded = ingest::PersonalDataReadEvent(
      {principal.id, std::string(ingest::RoleName(principal.role)), principal.org}, what,
      approved_by, now_us_());
  if (auto* error = std::get_if<domain::DecodeError>(&decoded)) {
    // Only a principal id that cannot name a staff stream gets here.
    done(FromDecodeError(*error));
    return;
  }
  // Its approver was judged above, and it declares no import: straight to the ingestor.
  Submit(principal, std::get<domain::ClientEvent>(std::move(decoded)),
         [done = std::move(done)](AppendAnswer answer) {
           auto* error = std::get_if<ServiceError>(&answer);
           done(error != nullptr ? std::optional<ServiceError>(std::move(*error)) : std::nullopt);
         });
}

bool Service::HoldsPersonalData(std::string_view stream) { return stream.starts_with("app/"); }

bool Service::MayDeliverPersonalData(std::string_view stream_prefix,
                                     const std::vector<std::string>& types) {
  constexpr std::string_view kAppStreams = "app/";
  if (!stream_prefix.starts_with(kAppStreams) && !kAppStreams.starts_with(stream_prefix)) {
    return false;
  }
  // A type filter lets application events through only if it names a type they can have: one
  // of application streams, or one not tied to a stream kind.
  return types.empty() || std::any_of(types.begin(), types.end(), [](const std::string& type) {
           const std::string_view kind = domain::StreamKindOfType(type);
           return kind.empty() || kind == "app";
         });
}

std::string Service::LogReadWhat(uint64_t first, uint64_t last) {
  return "log positions " + std::to_string(first) + ".." + std::to_string(last);
}

std::string Service::SubscriptionWhat(uint64_t from_position, std::string_view stream_prefix,
                                      const std::vector<std::string>& types) {
  std::string what = "subscription from position " + std::to_string(from_position);
  if (!stream_prefix.empty()) what += " of streams " + std::string(stream_prefix) + "*";
  for (size_t i = 0; i < types.size(); ++i) what += (i == 0 ? " of types " : ",") + types[i];
  return what;
}

void Service::ReportRejectedInput(const domain::DecodeError& error) {
  if (ServerProbe* probe = probe_.load(std::memory_order_acquire)) {
    probe->OnRefused(ErrorKind::kInvalid, error.rule);
  }
}

std::string Service::AddressKey(const boost::asio::ip::address& address) {
  if (!address.is_v6()) return address.to_string();
  const boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  // Loopback and link-local addresses name one host (with its interface), not a site's block.
  if (v6.is_loopback() || v6.is_link_local()) return v6.to_string();
  boost::asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

const char* Service::Admission::TryAdd(const std::string& address, size_t max,
                                       size_t per_address_max, const char* limit,
                                       const char* per_address_limit) {
  if (total.fetch_add(1) >= max) {
    total.fetch_sub(1);
    return limit;
  }
  std::lock_guard lock(mutex);
  size_t& from_address = by_address[address];
  if (from_address >= per_address_max) {  // (never 0: the limit is >= 1)
    total.fetch_sub(1);
    return per_address_limit;
  }
  ++from_address;
  return nullptr;
}

void Service::Admission::Remove(const std::string& address) {
  {
    std::lock_guard lock(mutex);
    auto it = by_address.find(address);
    if (it != by_address.end() && --it->second == 0) by_address.erase(it);
  }
  total.fetch_sub(1);
}

const char* Service::TryAddConnection(const std::string& address) {
  return connections_.TryAdd(address, limits_.connections_max, limits_.connections_per_address_max,
                             "connections_max", "connections_per_address_max");
}

void Service::RemoveConnection(const std::string& address) { connections_.Remove(address); }

const char* Service::TryAddSubscriber(const std::string& address) {
  return subscribers_.TryAdd(address, limits_.subscribers_max, limits_.subscribers_per_address_max,
                             "subscribers_max", "subscribers_per_address_max");
}

void Service::RemoveSubscriber(const std::string& address) { subscribers_.Remove(address); }

void Service::BeginDrain() { draining_.store(true); }

void Service::SetChainCheck(ChainCheck check) {
  std::lock_guard lock(chain_mutex_);
  chain_check_ = std::move(check);
}

std::optional<Service::ChainCheck> Service::chain_check() const {
  std::lock_guard lock(chain_mutex_);
  return chain_check_;
}

void Service::WaitIdle() {
  std::unique_lock lock(idle_mutex_);
  idle_cv_.wait(lock, [&] { return appends_inflight_.load() == 0; });
}

}  // namespace gridledger::server
