// Authentication and roles. A principal is who a bearer token stands for (id, role, org); the
// tokens file stores only SHA-256 of each token. Authorization is a pure decision on the
// principal, the action and — for appends — the event and the org of the application it touches.
// The matrix (domain.md "Roles") is documented in ingest/README.md and tabled in auth.cc.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/event_json.h"
#include "ledger/status.h"

namespace gridledger::ingest {

// Bounds of the tokens file and of what a client may present, so neither a hostile header nor a
// runaway file can make authentication do unbounded work.
inline constexpr size_t kTokenBytesMax = 256;       // a presented token; longer is unknown
inline constexpr size_t kTokenLineBytesMax = 1024;  // one line of the tokens file
inline constexpr size_t kTokensMax = 100000;        // lines with a token in one file
inline constexpr size_t kTokenRandomBytes = 32;     // NewToken's entropy (64 hex characters)
static_assert(kTokenRandomBytes * 2 <= kTokenBytesMax, "a new token must be presentable");

enum class Role { kClerk, kInspector, kCallbackAgent, kDirector, kAuditor, kReader, kAdmin };

// "clerk", "inspector", "callback_agent", "director", "auditor", "reader", "admin".
std::optional<Role> ParseRole(std::string_view name);
std::string_view RoleName(Role role);

struct Principal {
  std::string id;
  Role role = Role::kReader;
  std::string org;
  bool operator==(const Principal&) const = default;
};

// What a request does other than appending events.
enum class Access {
  kReadLog,          // stored events by position or of any stream (GET /v1/events, /v1/streams, TCP
                     // read), the staff audit (GET /v1/staff)
  kSubscribe,        // catch-up subscriptions (TCP subscribe)
  kReadApplication,  // one application's state, evidence or events (personal data: the read is
                     // recorded)
  kReadReports,      // overdue lists and KPI tables
  kVerify,           // verify: recompute the chain (a long scan)
  kDigest,           // digests (the hash at a position): no more than the log's readers see
  kImport,           // bulk import (each row is still checked as an append)
  kBackup,           // a copy of the whole ledger (POST /v1/backup)
  kAdmin,            // tokens, profiles, calendar
};

// nullopt when allowed; otherwise one sentence saying why not (answered as 403 / a forbidden
// frame). `org`: the org unit the request is about ("" = all orgs or not org-specific). A
// director's reads of applications and reports reach the orgs below its own (ReachesOrgsBelow).
std::optional<std::string> CheckAccess(const Principal& principal, Access access,
                                       std::string_view org = "");

// Whether org unit `org` is `top` or below it (domain/event_json.h).
using domain::OrgWithin;

// Whether `role` has `access` to the orgs below its own as well as its own (a director reads
// the applications and reports of its org's units); otherwise an own-org right is its org alone.
bool ReachesOrgsBelow(Role role, Access access);

// Whether `approver` is a superior of `reader` (job standard 4.3.4): a director of the reader's
// org or of an org above it (KM above KM.XS), and not the reader.
bool IsSuperior(const Principal& approver, const Principal& reader);

// nullopt when `principal` may append `event`. The event's actor must equal the principal (id,
// role and org); the role must be allowed the event's type; org-bound roles write only their own
// org's applications and reports. `stream_org`: the org the stream belongs to — the actor org of
// its first event (an application's ApplicationAccepted, a report's ReportDue) — "" for a new
// stream or one no org owns (survey/, staff/). `corrected_type`: for a Corrected, the type of the
// event it corrects, which the role must be allowed to append too ("" when that event is not
// found: the workflow rules refuse such a correction).
std::optional<std::string> CheckAppend(const Principal& principal, const domain::ClientEvent& event,
                                       std::string_view stream_org,
                                       std::string_view corrected_type = {});

// Bearer tokens → principals. The file is JSON Lines, one token per line:
//   {"sha256":"<64 hex>","id":"S1001","role":"clerk","org":"KM.XS"}
// Blank lines and lines starting with '#' are ignored; anything else malformed fails Load with the
// line number. id and org are 1..64 of [A-Za-z0-9._:-] (what an event's actor may hold), so every
// principal can write the SensitiveDataAccessed of its own reads to staff/<id>.
// Not thread-safe for writes; a loaded store is immutable and may be read from any thread.
class TokenStore {
 public:
  TokenStore() = default;
  // Errors: kNotFound (no such file), kIoError (unreadable), kCorruption (a malformed line, a
  // duplicate id or hash, more than kTokensMax tokens; the message names the line).
  static ledger::Result<TokenStore> Load(const std::string& path);

  // The principal of `token`, or nullopt for an unknown token.
  std::optional<Principal> Authenticate(std::string_view token) const;
  // The principal with this id (ids are unique in a tokens file), or nullopt.
  std::optional<Principal> FindById(std::string_view id) const;
  size_t size() const { return by_hash_.size(); }

  // Adds a principal in memory (tests, and Load).
  void Insert(const std::string& token_sha256_hex, Principal principal);

  // A new random token: 32 bytes from OpenSSL's RAND_bytes, hex encoded (64 chars).
  static std::string NewToken();
  // Lower-case hex SHA-256 of a token.
  static std::string Sha256Hex(std::string_view token);
  // Appends one line to `path` (created with mode 0600 when missing); refuses a duplicate id.
  // Errors: kInvalid (bad id, org or hash; the id or hash is already in the file), kCorruption
  // (the existing file does not Load), kIoError. Concurrent Adds to one file are serialized by an
  // exclusive flock, so two of them cannot both pass the duplicate check.
  static ledger::Status Add(const std::string& path, const Principal& principal,
                            const std::string& token_sha256_hex);
  // Revokes the token of `id`: rewrites `path` without its line (comments and other tokens kept),
  // by a new file renamed over it, under the same lock as Add. A running ledgerd stops taking
  // the token once it reloads the file (SIGHUP). Errors: kNotFound (no such file, or no token of
  // `id` in it), kCorruption (the file does not Load), kIoError.
  static ledger::Status Remove(const std::string& path, const std::string& id);
  // Replaces the token of `id` by the token whose hash is given, keeping its role and org, in one
  // rewrite as Remove's: the old token stops and the new one starts working at the same reload.
  // Errors: as Remove's; kInvalid for a bad hash or one already in the file.
  static ledger::Status Rotate(const std::string& path, const std::string& id,
                               const std::string& token_sha256_hex);

 private:
  // Remove (no new hash) and Rotate.
  static ledger::Status Rewrite(const std::string& path, const std::string& id,
                                const std::optional<std::string>& new_sha256_hex);

  std::unordered_map<std::string, Principal> by_hash_;
  std::unordered_map<std::string, std::string> hash_by_id_;
};

}  // namespace gridledger::ingest
