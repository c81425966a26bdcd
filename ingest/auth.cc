#include "ingest/auth.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/roles.h"
#include "ledger/assert.h"

namespace gridledger::ingest {

namespace {

using ledger::Code;
using ledger::Result;
using ledger::Status;

constexpr size_t kRoleCount = 7;
constexpr size_t kAccessCount = 9;
static_assert(static_cast<size_t>(Role::kAdmin) + 1 == kRoleCount);
static_assert(static_cast<size_t>(Access::kAdmin) + 1 == kAccessCount);

// Same order as enum Role: the role names an event's actor may carry, whose bits the recording
// rules use (domain/roles.h).
constexpr const std::array<std::string_view, kRoleCount>& kRoleNames = domain::kRoleNames;

// The whole tokens file is read at once; this bounds it even if it is full of comment lines.
constexpr size_t kTokensFileBytesMax = 64 << 20;
static_assert(kTokensMax * 256 <= kTokensFileBytesMax, "a full file of typical lines must fit");
constexpr size_t kSha256HexChars = 64;
constexpr size_t kPrincipalFieldBytesMax = domain::kIdBytesMax;

// ---- The role matrix (domain.md "Roles"; documented in ../README.md) ----

using RoleSet = domain::RoleBits;  // bit i: kRoleNames[i]
static_assert(kRoleCount <= 8 * sizeof(RoleSet));
constexpr RoleSet Bit(Role role) { return static_cast<RoleSet>(1u << static_cast<int>(role)); }

// Who may append each type is domain::RecordingRuleOf's (domain/roles.h). Every writer of an app/*
// type is bound to its own org's applications (see CheckAppend); report/, survey/ and staff/
// streams carry no org. SensitiveDataAccessed has no rule: every role may record its own reads,
// and only its own (see CheckSensitiveDataAccess).
constexpr std::string_view kSensitiveDataAccessed = "SensitiveDataAccessed";

// What each role may do besides appending. kOwnOrg: only with the request's org equal to the
// principal's (so "" = all orgs is refused); kOrgTree: the principal's org or one below it
// (OrgWithin); kAnyOrg: any org, or all of them. A director heads its org and the units below it
// (it approves their staff's reads, IsSuperior), so it reads their applications and reports too;
// it still appends only to its own org's (CheckAppend).
enum class Scope : uint8_t { kNo, kOwnOrg, kOrgTree, kAnyOrg };
constexpr Scope N = Scope::kNo;
constexpr Scope O = Scope::kOwnOrg;
constexpr Scope T = Scope::kOrgTree;
constexpr Scope A = Scope::kAnyOrg;
// clang-format off
constexpr std::array<std::array<Scope, kAccessCount>, kRoleCount> kAccessMatrix = {{
    //                     ReadLog Subscribe ReadApplication ReadReports Verify Digest Import Backup Admin
    /* clerk */          {{N,      N,        O,              O,          N,     N,     N,     N,     N}},
    /* inspector */      {{N,      N,        O,              O,          N,     N,     N,     N,     N}},
    /* callback_agent */ {{N,      N,        O,              O,          N,     N,     N,     N,     N}},
    /* director */       {{N,      N,        T,              T,          N,     N,     O,     N,     N}},
    /* auditor */        {{A,      A,        A,              A,          A,     A,     N,     N,     N}},
    /* reader */         {{A,      A,        N,              N,          N,     A,     N,     N,     N}},
    /* admin */          {{N,      N,        N,              N,          A,     A,     A,     A,     A}},
}};
// clang-format on
// Import loads history recorded elsewhere (the legacy marketing system), so its rows keep their
// original actors: the importer needs kImport for the org of each row's actor (a director for its
// own org, an admin for any), and each row is still judged by CheckAppend as appended by its own
// actor, and stored with the import flag.

struct AccessInfo {
  std::string_view action;       // "role X may not <action>"
  std::string_view why_refused;  // why the roles without it do not have it
};
constexpr std::array<AccessInfo, kAccessCount> kAccessInfo = {{
    {"read the event log or staff audits",
     "they hold every org's events, customers' personal data and each staff member's actions"},
    {"subscribe to events", "subscriptions stream every org's events and personal data"},
    {"read applications", "an application holds a customer's personal data"},
    {"read reports", "overdue lists and KPI tables assess the staff of an org"},
    {"verify the ledger", "verification is an audit and administration task"},
    {"read the ledger's digests",
     "a digest commits to every org's events; the log's readers see every hash anyway"},
    {"import events", "imported rows are appends of work-order and management events"},
    {"back up the ledger",
     "a backup is a copy of every org's events and customers' personal data, kept by the "
     "administration"},
    {"administer tokens, profiles or the calendar",
     "it changes who may act and how time limits count"},
}};

Scope ScopeOf(Role role, Access access) {
  return kAccessMatrix[static_cast<size_t>(role)][static_cast<size_t>(access)];
}

// "auditor and reader", "clerk, inspector and director".
std::string JoinRoles(RoleSet roles) { return domain::RoleList(roles); }

RoleSet RolesWith(Access access) {
  RoleSet roles = 0;
  for (size_t role = 0; role < kRoleCount; ++role) {
    if (ScopeOf(static_cast<Role>(role), access) != Scope::kNo) roles |= 1u << role;
  }
  return roles;
}

std::string Describe(std::string_view id, std::string_view role, std::string_view org) {
  return std::string(id) + " (" + std::string(role) + ", " + std::string(org) + ")";
}

std::optional<std::string> CheckActor(const Principal& principal, const domain::Actor& actor) {
  const std::string_view role = RoleName(principal.role);
  if (actor.id == principal.id && actor.role == role && actor.org == principal.org) {
    return std::nullopt;
  }
  return "actor " + Describe(actor.id, actor.role, actor.org) +
         " does not match the authenticated principal " +
         Describe(principal.id, role, principal.org) + ": nobody can write in another's name.";
}

// A read of personal data is recorded by its reader, so each principal writes only its own stream.
std::optional<std::string> CheckSensitiveDataAccess(const Principal& principal,
                                                    const domain::ClientEvent& event) {
  const std::string own_stream = "staff/" + principal.id;
  if (event.stream == own_stream) return std::nullopt;
  return "role " + std::string(RoleName(principal.role)) + " may append " +
         std::string(kSensitiveDataAccessed) + " only to its own stream " + own_stream +
         ", not to " + event.stream + ": each read of personal data is recorded by its reader.";
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  for (size_t role = 0; role < kRoleCount; ++role) {
    if (kRoleNames[role] == name) return static_cast<Role>(role);
  }
  return std::nullopt;
}

std::string_view RoleName(Role role) {
  const auto index = static_cast<size_t>(role);
  LEDGER_ASSERT(index < kRoleCount);
  return kRoleNames[index];
}

bool ReachesOrgsBelow(Role role, Access access) { return ScopeOf(role, access) == Scope::kOrgTree; }

bool IsSuperior(const Principal& approver, const Principal& reader) {
  return approver.role == Role::kDirector && approver.id != reader.id &&
         OrgWithin(reader.org, approver.org);
}

std::optional<std::string> CheckAccess(const Principal& principal, Access access,
                                       std::string_view org) {
  const AccessInfo& info = kAccessInfo[static_cast<size_t>(access)];
  const std::string role(RoleName(principal.role));
  switch (ScopeOf(principal.role, access)) {
    case Scope::kAnyOrg:
      return std::nullopt;
    case Scope::kOwnOrg:
      if (org == principal.org) return std::nullopt;
      if (org.empty()) {
        return "role " + role + " may " + std::string(info.action) + " only of its own org " +
               principal.org + ", and this request is about all orgs.";
      }
      return "role " + role + " of org " + principal.org + " may not " + std::string(info.action) +
             " of org " + std::string(org) + ": it sees only its own org.";
    case Scope::kOrgTree:
      if (OrgWithin(org, principal.org)) return std::nullopt;
      if (org.empty()) {
        return "role " + role + " may " + std::string(info.action) + " only of its own org " +
               principal.org + " and the orgs below it, and this request is about all orgs.";
      }
      return "role " + role + " of org " + principal.org + " may not " + std::string(info.action) +
             " of org " + std::string(org) + ": it sees only its own org and the orgs below it (" +
             principal.org + ".*).";
    case Scope::kNo:
      break;
  }
  return "role " + role + " may not " + std::string(info.action) + ": only " +
         JoinRoles(RolesWith(access)) + " may, since " + std::string(info.why_refused) + ".";
}

std::optional<std::string> CheckAppend(const Principal& principal, const domain::ClientEvent& event,
                                       std::string_view stream_org,
                                       std::string_view corrected_type) {
  if (auto mismatch = CheckActor(principal, event.actor)) return mismatch;
  const std::string role(RoleName(principal.role));
  const std::string_view kind = domain::StreamKindOfType(event.type);
  if (kind.empty()) {
    return "role " + role + " may not append " + event.type +
           ": it is not an event type of the domain.";
  }
  // DecodeClientEvent already ties the stream to the type; checked again because this decision
  // must not depend on how the event was built.
  if (event.stream.size() <= kind.size() || event.stream.compare(0, kind.size(), kind) != 0 ||
      event.stream[kind.size()] != '/') {
    return "role " + role + " may not append " + event.type + " to " + event.stream +
           ": that type belongs to a " + std::string(kind) + "/ stream.";
  }
  if (event.type == kSensitiveDataAccessed) return CheckSensitiveDataAccess(principal, event);

  const domain::RecordingRule* rule = domain::RecordingRuleOf(event.type);
  LEDGER_ASSERT(rule != nullptr);  // every known type but SensitiveDataAccessed has a row
  if ((rule->roles & Bit(principal.role)) == 0) {
    return "role " + role + " may not append " + event.type + ": it is reserved to " +
           JoinRoles(rule->roles) + ", since " + std::string(rule->why_reserved) + ".";
  }
  if (event.type == "Corrected" && !corrected_type.empty()) {
    const domain::RecordingRule* corrected = domain::RecordingRuleOf(corrected_type);
    if (corrected != nullptr && (corrected->roles & Bit(principal.role)) == 0) {
      return "role " + role + " may not correct a " + std::string(corrected_type) +
             ": correcting it is reserved to " + JoinRoles(corrected->roles) +
             ", who record it, since " + std::string(corrected->why_reserved) + ".";
    }
  }
  // An empty stream_org is a new stream, which then belongs to its first actor's org, that is the
  // principal's; the workflow rules refuse any other type on an application never accepted.
  if ((kind == "app" || kind == "report") && !stream_org.empty() && stream_org != principal.org) {
    return "role " + role + " of org " + principal.org + " may not append " + event.type + " to " +
           event.stream + " of org " + std::string(stream_org) + ": it writes only its own org's " +
           (kind == "app" ? "applications." : "reports.");
  }
  return std::nullopt;
}

// ---- Tokens ----

namespace {

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// What an event's actor id/org may hold (domain/event_json.h), so every principal can be an actor.
bool IsPrincipalField(std::string_view text) {
  if (text.empty() || text.size() > kPrincipalFieldBytesMax) return false;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> CheckPrincipal(const Principal& principal) {
  if (!IsPrincipalField(principal.id)) return "id must be 1..64 of [A-Za-z0-9._:-]";
  if (!IsPrincipalField(principal.org)) return "org must be 1..64 of [A-Za-z0-9._:-]";
  return std::nullopt;
}

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0x0f]);
  }
  return hex;
}

std::string ErrnoText() { return std::strerror(errno); }

// Closes the descriptor on every path out of Load and Add.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  // The caller closes it from now on.
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Result<std::string> ReadWhole(int fd, const std::string& path) {
  std::string content;
  std::array<char, 64 * 1024> buffer;
  for (off_t offset = 0;;) {
    const ssize_t got = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status(Code::kIoError, "cannot read " + path + ": " + ErrnoText());
    if (got == 0) return content;
    content.append(buffer.data(), static_cast<size_t>(got));
    offset += got;
    if (content.size() > kTokensFileBytesMax) {
      return Status(Code::kCorruption, "tokens file " + path + " is larger than " +
                                           std::to_string(kTokensFileBytesMax) + " bytes");
    }
  }
}

Status WriteWhole(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) return Status(Code::kIoError, "cannot write " + path + ": " + ErrnoText());
    bytes.remove_prefix(static_cast<size_t>(wrote));
  }
  if (::fsync(fd) != 0) return Status(Code::kIoError, "cannot sync " + path + ": " + ErrnoText());
  return Status::Ok();
}

Status LineError(const std::string& path, size_t line_number, const std::string& why) {
  return Status(Code::kCorruption,
                "tokens file " + path + " line " + std::to_string(line_number) + ": " + why);
}

// Parses one token line; nlohmann would keep the last of two equal keys, which would make a line
// such as {"role":"reader",...,"role":"admin"} mean something its reader may not see, so
// duplicate keys are refused.
std::variant<std::pair<std::string, Principal>, std::string> ParseTokenLine(std::string_view line) {
  using json = nlohmann::json;
  if (line.size() > kTokenLineBytesMax) {
    return "longer than " + std::to_string(kTokenLineBytesMax) + " bytes";
  }
  std::set<std::string> keys;
  bool duplicate_key = false;
  const json parsed = json::parse(
      line,
      [&](int depth, json::parse_event_t event, json& value) {
        if (event == json::parse_event_t::key && depth == 1 &&
            !keys.insert(value.get<std::string>()).second) {
          duplicate_key = true;
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::string("not valid JSON");
  if (duplicate_key) return std::string("a key appears twice");
  if (!parsed.is_object()) return std::string("not a JSON object");
  for (const auto& [key, value] : parsed.items()) {
    if (key != "sha256" && key != "id" && key != "role" && key != "org") {
      return "unknown key \"" + key + "\" (expected sha256, id, role, org)";
    }
    if (!value.is_string()) return "\"" + key + "\" must be a string";
  }
  for (const char* key : {"sha256", "id", "role", "org"}) {
    if (!parsed.contains(key)) return "missing \"" + std::string(key) + "\"";
  }
  const std::string hash = parsed["sha256"].get<std::string>();
  if (!IsLowerHex(hash, kSha256HexChars)) return std::string("sha256 must be 64 lower-case hex");
  const std::optional<Role> role = ParseRole(parsed["role"].get<std::string>());
  if (!role) {
    return "unknown role \"" + parsed["role"].get<std::string>() +
           "\" (expected clerk, inspector, callback_agent, director, auditor, reader or admin)";
  }
  Principal principal{parsed["id"].get<std::string>(), *role, parsed["org"].get<std::string>()};
  if (auto error = CheckPrincipal(principal)) return *error;
  return std::make_pair(hash, std::move(principal));
}

std::string_view TrimLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  return line;
}

// Parses a whole file. Ids and hashes must be unique: one token per person, so revoking a person
// is removing one line.
Result<TokenStore> ParseTokensFile(std::string_view content, const std::string& path) {
  TokenStore store;
  std::unordered_map<std::string, size_t> line_of_id;
  std::unordered_map<std::string, size_t> line_of_hash;
  size_t line_number = 0;
  while (!content.empty()) {
    ++line_number;
    const size_t end = content.find('\n');
    const std::string_view line = TrimLine(content.substr(0, end));
    content.remove_prefix(end == std::string_view::npos ? content.size() : end + 1);
    if (line.empty() || line.front() == '#') continue;
    auto parsed = ParseTokenLine(line);
    if (auto* why = std::get_if<std::string>(&parsed)) return LineError(path, line_number, *why);
    auto& [hash, principal] = std::get<std::pair<std::string, Principal>>(parsed);
    if (store.size() >= kTokensMax) {
      return LineError(path, line_number, "more than " + std::to_string(kTokensMax) + " tokens");
    }
    if (auto [it, added] = line_of_id.emplace(principal.id, line_number); !added) {
      return LineError(
          path, line_number,
          "id " + principal.id + " already has a token on line " + std::to_string(it->second));
    }
    if (auto [it, added] = line_of_hash.emplace(hash, line_number); !added) {
      return LineError(path, line_number,
                       "the same token hash is on line " + std::to_string(it->second));
    }
    store.Insert(hash, std::move(principal));
  }
  return store;
}

}  // namespace

Result<TokenStore> TokenStore::Load(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const Code code = errno == ENOENT ? Code::kNotFound : Code::kIoError;
    return Status(code, "cannot open tokens file " + path + ": " + ErrnoText());
  }
  // Shared with other readers, not with a token add or remove writing it.
  if (::flock(fd.get(), LOCK_SH) != 0) {
    return Status(Code::kIoError, "cannot lock tokens file " + path + ": " + ErrnoText());
  }
  // A token's hash is all that stands for it: a file others may write lets them add one, an
  // admin's say. Refused, as ssh refuses such a key file.
  struct stat file {};
  if (::fstat(fd.get(), &file) != 0) {
    return Status(Code::kIoError, "cannot stat tokens file " + path + ": " + ErrnoText());
  }
  if ((file.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(file.st_mode & 07777));
    return Status(Code::kInvalid,
                  "tokens file " + path + " is writable by others than its owner (mode " + mode +
                      "): anyone who can write it can add a token; chmod go-w " + path);
  }
  auto content = ReadWhole(fd.get(), path);
  if (!content.ok()) return content.status();
  return ParseTokensFile(*content, path);
}

std::optional<Principal> TokenStore::Authenticate(std::string_view token) const {
  // Only hashes are kept, and the lookup is by the hash of what was presented: comparing
  // secrets byte by byte would leak, through timing, how much of a guess was right.
  if (token.empty() || token.size() > kTokenBytesMax) return std::nullopt;
  const auto it = by_hash_.find(Sha256Hex(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

void TokenStore::Insert(const std::string& token_sha256_hex, Principal principal) {
  LEDGER_ASSERT(IsLowerHex(token_sha256_hex, kSha256HexChars));
  hash_by_id_[principal.id] = token_sha256_hex;
  by_hash_[token_sha256_hex] = std::move(principal);
}

std::optional<Principal> TokenStore::FindById(std::string_view id) const {
  auto hash = hash_by_id_.find(std::string(id));
  if (hash == hash_by_id_.end()) return std::nullopt;
  auto principal = by_hash_.find(hash->second);
  if (principal == by_hash_.end()) return std::nullopt;
  return principal->second;
}

std::string TokenStore::NewToken() {
  std::array<unsigned char, kTokenRandomBytes> bytes{};
  // A token from a failed generator would be guessable; there is no safe fallback.
  LEDGER_ASSERT(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1);
  return Hex(bytes.data(), bytes.size());
}

std::string TokenStore::Sha256Hex(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_length = 0;
  const bool ok = EVP_Digest(token.data(), token.size(), digest.data(), &digest_length,
                             EVP_sha256(), nullptr) == 1;
  LEDGER_ASSERT(ok && digest_length * 2 == kSha256HexChars);
  return Hex(digest.data(), digest_length);
}

namespace {

// Opens `path` for appending, creating it with mode 0600: it names every principal, and a
// token's hash is all that stands for it. fchmod makes the mode independent of the umask.
Result<int> OpenForAppend(const std::string& path) {
  constexpr int kFlags = O_RDWR | O_APPEND | O_CLOEXEC;
  int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
  if (fd >= 0) {
    if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
      const std::string why = ErrnoText();
      ::close(fd);
      return Status(Code::kIoError, "cannot set mode 0600 on " + path + ": " + why);
    }
    return fd;
  }
  if (errno == EEXIST) fd = ::open(path.c_str(), kFlags);
  if (fd < 0) return Status(Code::kIoError, "cannot open tokens file " + path + ": " + ErrnoText());
  // An existing file others may write is closed to them (see Load).
  struct stat file {};
  if (::fstat(fd, &file) == 0 && (file.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
      ::fchmod(fd, file.st_mode & 07777 & ~(S_IWGRP | S_IWOTH)) != 0) {
    const std::string why = ErrnoText();
    ::close(fd);
    return Status(Code::kIoError, "cannot take write access from others on " + path + ": " + why);
  }
  return fd;
}

// Whether `fd` is still the file at `path`: a Remove replaces the file (a new one renamed over
// it), so a writer that waited for the lock of the old one must open the path again.
bool StillAt(int fd, const std::string& path) {
  struct stat open_file {};
  struct stat at_path {};
  return ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &at_path) == 0 &&
         open_file.st_dev == at_path.st_dev && open_file.st_ino == at_path.st_ino;
}

// Opens `path` (with `open`) and takes its exclusive flock, on the file that is at `path` then.
template <typename Opener>
Result<int> OpenLocked(const std::string& path, Opener open) {
  for (;;) {
    auto opened = open(path);
    if (!opened.ok()) return opened.status();
    FileDescriptor fd(*opened);
    // Held until the descriptor closes: reading, checking and writing are one step for others.
    if (::flock(fd.get(), LOCK_EX) != 0) {
      return Status(Code::kIoError, "cannot lock tokens file " + path + ": " + ErrnoText());
    }
    if (StillAt(fd.get(), path)) return fd.release();
  }
}

// One line of a tokens file (without its newline), as ParseTokenLine reads it.
std::string TokenLine(const std::string& token_sha256_hex, const Principal& principal) {
  return nlohmann::ordered_json{{"sha256", token_sha256_hex},
                                {"id", principal.id},
                                {"role", RoleName(principal.role)},
                                {"org", principal.org}}
      .dump();
}

}  // namespace

Status TokenStore::Add(const std::string& path, const Principal& principal,
                       const std::string& token_sha256_hex) {
  if (auto error = CheckPrincipal(principal)) {
    return Status(Code::kInvalid, "cannot add a token: " + *error);
  }
  if (!IsLowerHex(token_sha256_hex, kSha256HexChars)) {
    return Status(Code::kInvalid, "cannot add a token: the hash must be 64 lower-case hex");
  }
  // Locked until fd closes, so the duplicate check and the append are one step for other writers.
  auto opened = OpenLocked(path, OpenForAppend);
  if (!opened.ok()) return opened.status();
  FileDescriptor fd(*opened);
  auto content = ReadWhole(fd.get(), path);
  if (!content.ok()) return content.status();
  auto existing = ParseTokensFile(*content, path);
  if (!existing.ok()) return existing.status();
  for (const auto& [hash, known] : existing->by_hash_) {
    if (known.id == principal.id) {
      return Status(Code::kInvalid, "id " + principal.id + " already has a token in " + path +
                                        ": remove its line first to replace it");
    }
    if (hash == token_sha256_hex) {
      return Status(Code::kInvalid, "that token hash is already in " + path);
    }
  }
  // A hand-edited file may lack its last newline; the new line must not join it.
  std::string bytes = !content->empty() && content->back() != '\n' ? "\n" : "";
  bytes += TokenLine(token_sha256_hex, principal) + "\n";
  LEDGER_ASSERT(bytes.size() <= kTokenLineBytesMax + 2);  // and two newlines
  return WriteWhole(fd.get(), bytes, path);
}

Status TokenStore::Remove(const std::string& path, const std::string& id) {
  return Rewrite(path, id, std::nullopt);
}

Status TokenStore::Rotate(const std::string& path, const std::string& id,
                          const std::string& token_sha256_hex) {
  if (!IsLowerHex(token_sha256_hex, kSha256HexChars)) {
    return Status(Code::kInvalid, "cannot rotate a token: the hash must be 64 lower-case hex");
  }
  return Rewrite(path, id, token_sha256_hex);
}

Status TokenStore::Rewrite(const std::string& given_path, const std::string& id,
                           const std::optional<std::string>& new_sha256_hex) {
  // The file itself, not a symlink to it: the symlink stays and points at the new file.
  std::error_code resolve_error;
  const std::filesystem::path resolved = std::filesystem::canonical(given_path, resolve_error);
  const std::string path = resolve_error ? given_path : resolved.string();
  auto opened = OpenLocked(path, [](const std::string& at) -> Result<int> {
    const int fd = ::open(at.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
    const Code code = errno == ENOENT ? Code::kNotFound : Code::kIoError;
    return Status(code, "cannot open tokens file " + at + ": " + ErrnoText());
  });
  if (!opened.ok()) return opened.status();
  FileDescriptor fd(*opened);
  auto content = ReadWhole(fd.get(), path);
  if (!content.ok()) return content.status();
  auto valid = ParseTokensFile(*content, path);
  if (!valid.ok()) return valid.status();
  if (new_sha256_hex && valid->by_hash_.contains(*new_sha256_hex)) {
    return Status(Code::kInvalid, "that token hash is already in " + path);
  }
  // Every line but the token of `id` (ids are unique; rotated: its line with the new hash),
  // comments and blank lines kept.
  std::string kept;
  bool removed = false;
  for (std::string_view rest = *content; !rest.empty();) {
    const size_t end = rest.find('\n');
    const std::string_view line =
        rest.substr(0, end == std::string_view::npos ? rest.size() : end + 1);
    rest.remove_prefix(line.size());
    const std::string_view text = TrimLine(line.substr(0, line.find('\n')));
    if (!text.empty() && text.front() != '#') {
      auto parsed = ParseTokenLine(text);
      const auto& [hash, principal] = std::get<std::pair<std::string, Principal>>(parsed);
      if (principal.id == id) {
        removed = true;
        if (new_sha256_hex) {
          kept += TokenLine(*new_sha256_hex, principal) + "\n";
        }
        continue;
      }
    }
    kept += line;
  }
  if (!removed) return Status(Code::kNotFound, "no token of id " + id + " in " + path);
  // The new file keeps the old one's owner, group and mode (ledgerd must still read it, and
  // nobody else), whoever runs this.
  struct stat old_file {};
  if (::fstat(fd.get(), &old_file) != 0) {
    return Status(Code::kIoError, "cannot stat " + path + ": " + ErrnoText());
  }
  // A new file renamed over the old: a crash leaves one or the other, never half of one. Writers
  // waiting for the old file's lock see that it was replaced and open the new one (OpenLocked).
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  FileDescriptor out(
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR));
  if (out.get() < 0) {
    return Status(Code::kIoError, "cannot create " + temporary + ": " + ErrnoText());
  }
  Status written = Status::Ok();
  if (::fchown(out.get(), old_file.st_uid, old_file.st_gid) != 0 ||
      ::fchmod(out.get(), old_file.st_mode & 07777 & ~(S_IWGRP | S_IWOTH)) != 0) {
    written = Status(Code::kIoError, "cannot give the new " + path +
                                         " the owner and mode of the old one (run this as its "
                                         "owner or as root): " +
                                         ErrnoText());
  }
  if (written.ok()) written = WriteWhole(out.get(), kept, temporary);
  if (written.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    written = Status(Code::kIoError, "cannot replace " + path + ": " + ErrnoText());
  }
  if (!written.ok()) {
    ::unlink(temporary.c_str());
    return written;
  }
  const std::string parent = std::filesystem::path(path).parent_path().string();
  FileDescriptor directory(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_CLOEXEC));
  if (directory.get() < 0 || ::fsync(directory.get()) != 0) {
    return Status(Code::kIoError, "cannot sync the directory of " + path + ": " + ErrnoText());
  }
  return Status::Ok();
}

}  // namespace gridledger::ingest
