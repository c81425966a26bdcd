// Goal: authentication and the role matrix (ingest/auth.h, domain.md "Roles") do what
// ingest/README.md promises. Method: the matrix is restated here as tables of cases written from
// the README, not from auth.cc, and every case runs through CheckAppend / CheckAccess; the tokens
// file is exercised through real files in a temporary directory (Add -> Load -> Authenticate,
// malformed lines).
#include "ingest/auth.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace gridledger::ingest {
namespace {

constexpr std::string_view kOrg = "KM.XS";
constexpr std::string_view kOtherOrg = "KM.GD";
constexpr std::array<Role, 7> kAllRoles = {Role::kClerk,    Role::kInspector, Role::kCallbackAgent,
                                           Role::kDirector, Role::kAuditor,   Role::kReader,
                                           Role::kAdmin};

Principal Who(Role role, std::string id = "P1", std::string org = std::string(kOrg)) {
  return Principal{std::move(id), role, std::move(org)};
}

// An event written in the principal's own name; CheckAppend looks only at the envelope.
domain::ClientEvent EventBy(const Principal& principal, std::string type, std::string stream) {
  domain::ClientEvent event;
  event.stream = std::move(stream);
  event.type = std::move(type);
  event.event_id = "e-1";
  event.actor = {principal.id, std::string(RoleName(principal.role)), principal.org};
  return event;
}

std::string StreamFor(std::string_view type, const Principal& principal) {
  const std::string_view kind = domain::StreamKindOfType(type);
  if (kind == "app") return "app/KM-2026-000123";
  if (kind == "report") return "report/monthly/2026-03";
  if (kind == "survey") return "survey/2026-Q1";
  return "staff/" + principal.id;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

// ---- Roles ----

TEST(RoleTest, EveryRoleNameParsesBackToItsRole) {
  for (Role role : kAllRoles) {
    const std::optional<Role> parsed = ParseRole(RoleName(role));
    ASSERT_TRUE(parsed.has_value()) << RoleName(role);
    EXPECT_EQ(*parsed, role);
  }
  EXPECT_EQ(RoleName(Role::kCallbackAgent), "callback_agent");
}

TEST(RoleTest, UnknownOrMiscasedNamesAreRefused) {
  for (std::string_view name : {"", "Clerk", "CLERK", "clerk ", "callback-agent", "root"}) {
    EXPECT_FALSE(ParseRole(name).has_value()) << name;
  }
}

// ---- Appends ----

struct AppendCase {
  Role role;
  std::string type;
  std::string app_org;  // "" = a new application or not an application
  bool allowed;
};

std::string Name(const AppendCase& c) {
  return std::string(RoleName(c.role)) + " " + c.type + " app_org=" + c.app_org;
}

const std::string kOwn(kOrg);
const std::string kOther(kOtherOrg);

const std::vector<AppendCase> kAppendCases = {
    // clerk: the work order of its own org, nothing reserved to others.
    {Role::kClerk, "ApplicationAccepted", "", true},
    {Role::kClerk, "SchemeReplied", kOwn, true},
    {Role::kClerk, "ContractSigned", kOwn, true},
    {Role::kClerk, "MeterConnected", kOwn, true},
    {Role::kClerk, "ClockPaused", kOwn, true},
    {Role::kClerk, "Reassigned", kOwn, true},
    {Role::kClerk, "Corrected", kOwn, true},
    {Role::kClerk, "Withdrawn", kOwn, true},
    {Role::kClerk, "SchemeReplied", kOther, false},
    {Role::kClerk, "Reassigned", kOther, false},
    {Role::kClerk, "Urged", kOwn, false},
    {Role::kClerk, "DocumentReviewed", kOwn, false},
    {Role::kClerk, "SiteInspected", kOwn, false},
    {Role::kClerk, "DesignReviewed", kOwn, false},
    {Role::kClerk, "MidInspected", kOwn, false},
    {Role::kClerk, "CompletionInspected", kOwn, false},
    {Role::kClerk, "SiteSurveyed", kOwn, false},
    {Role::kClerk, "CallbackMade", kOwn, false},
    {Role::kClerk, "ReportDue", "", false},
    {Role::kClerk, "ReportSubmitted", "", false},
    {Role::kClerk, "ThirdPartySurveyRecorded", "", false},
    {Role::kClerk, "TrainingHeld", "", false},
    // inspector: reviews, inspections and surveys of its own org.
    {Role::kInspector, "DocumentReviewed", kOwn, true},
    {Role::kInspector, "SiteInspected", kOwn, true},
    {Role::kInspector, "DesignReviewed", kOwn, true},
    {Role::kInspector, "MidInspected", kOwn, true},
    {Role::kInspector, "CompletionInspected", kOwn, true},
    {Role::kInspector, "SiteSurveyed", kOwn, true},
    {Role::kInspector, "Corrected", kOwn, true},  // of what it records (CorrectionTest)
    {Role::kInspector, "CompletionInspected", kOther, false},
    {Role::kInspector, "DocumentReviewed", kOther, false},
    {Role::kInspector, "ApplicationAccepted", "", false},
    {Role::kInspector, "SchemeReplied", kOwn, false},
    {Role::kInspector, "CallbackMade", kOwn, false},
    {Role::kInspector, "Urged", kOwn, false},
    {Role::kInspector, "Reassigned", kOwn, false},
    {Role::kInspector, "ReportDue", "", false},
    {Role::kInspector, "TrainingHeld", "", false},
    // callback_agent: callbacks of its own org.
    {Role::kCallbackAgent, "CallbackMade", kOwn, true},
    {Role::kCallbackAgent, "CallbackMade", kOther, false},
    {Role::kCallbackAgent, "Corrected", kOwn, true},
    {Role::kCallbackAgent, "Corrected", kOther, false},
    {Role::kCallbackAgent, "SchemeReplied", kOwn, false},
    {Role::kCallbackAgent, "DocumentReviewed", kOwn, false},
    {Role::kCallbackAgent, "ThirdPartySurveyRecorded", "", false},
    // director: everything of its own org, reports, surveys, training.
    {Role::kDirector, "ApplicationAccepted", "", true},
    {Role::kDirector, "Urged", kOwn, true},
    {Role::kDirector, "Reassigned", kOwn, true},
    {Role::kDirector, "CompletionInspected", kOwn, true},
    {Role::kDirector, "CallbackMade", kOwn, true},
    {Role::kDirector, "Urged", kOther, false},
    {Role::kDirector, "SchemeReplied", kOther, false},
    {Role::kDirector, "ReportDue", "", true},
    {Role::kDirector, "ReportSubmitted", "", true},
    {Role::kDirector, "ReportCorrected", "", true},
    {Role::kDirector, "ReportSubmitted", kOwn, true},
    {Role::kDirector, "ReportSubmitted", kOther, false},
    {Role::kDirector, "ReportCorrected", kOther, false},
    {Role::kDirector, "ThirdPartySurveyRecorded", "", true},
    {Role::kDirector, "TrainingHeld", "", true},
    // auditor, reader, admin: no business appends.
    {Role::kAuditor, "SchemeReplied", kOwn, false},
    {Role::kAuditor, "ApplicationAccepted", "", false},
    {Role::kAuditor, "Corrected", kOwn, false},
    {Role::kReader, "Corrected", kOwn, false},
    {Role::kAuditor, "ReportCorrected", "", false},
    {Role::kReader, "ApplicationAccepted", "", false},
    {Role::kReader, "TrainingHeld", "", false},
    {Role::kAdmin, "ApplicationAccepted", "", false},
    {Role::kAdmin, "ReportDue", "", false},
    {Role::kAdmin, "TrainingHeld", "", false},
};

TEST(CheckAppendTest, FollowsTheRoleMatrix) {
  for (const AppendCase& c : kAppendCases) {
    const Principal principal = Who(c.role);
    const auto refusal =
        CheckAppend(principal, EventBy(principal, c.type, StreamFor(c.type, principal)), c.app_org);
    EXPECT_EQ(!refusal.has_value(), c.allowed) << Name(c) << ": " << refusal.value_or("allowed");
  }
}

TEST(CheckAppendTest, RefusalIsOneSentenceNamingRoleTypeAndReason) {
  for (const AppendCase& c : kAppendCases) {
    if (c.allowed) continue;
    const Principal principal = Who(c.role);
    const auto refusal =
        CheckAppend(principal, EventBy(principal, c.type, StreamFor(c.type, principal)), c.app_org);
    ASSERT_TRUE(refusal.has_value()) << Name(c);
    EXPECT_NE(refusal->find("role " + std::string(RoleName(c.role))), std::string::npos)
        << *refusal;
    EXPECT_NE(refusal->find(c.type), std::string::npos) << *refusal;
    EXPECT_NE(refusal->find(": "), std::string::npos) << "no reason given: " << *refusal;
    EXPECT_EQ(refusal->find('\n'), std::string::npos) << *refusal;
    EXPECT_EQ(refusal->back(), '.') << *refusal;
  }
}

TEST(CheckAppendTest, WrongOrgRefusalNamesBothOrgs) {
  const Principal clerk = Who(Role::kClerk);
  const auto refusal = CheckAppend(clerk, EventBy(clerk, "SchemeReplied", "app/A1"), kOtherOrg);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find(std::string(kOrg)), std::string::npos) << *refusal;
  EXPECT_NE(refusal->find(std::string(kOtherOrg)), std::string::npos) << *refusal;
  EXPECT_NE(refusal->find("app/A1"), std::string::npos) << *refusal;
}

TEST(CheckAppendTest, UrgedIsReservedToTheDirector) {
  const Principal clerk = Who(Role::kClerk);
  const auto refusal = CheckAppend(clerk, EventBy(clerk, "Urged", "app/A1"), kOrg);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("reserved to director,"), std::string::npos) << *refusal;
}

// A correction is judged by the type it corrects: whoever may record that type, and only they.
TEST(CheckAppendTest, ACorrectionNeedsTheRightToRecordWhatItCorrects) {
  for (const std::string& corrected : domain::KnownTypes()) {
    if (domain::StreamKindOfType(corrected) != "app" || corrected == "SensitiveDataAccessed") {
      continue;
    }
    for (Role role : {Role::kClerk, Role::kInspector, Role::kCallbackAgent, Role::kDirector}) {
      const Principal principal = Who(role);
      const bool records = !CheckAppend(principal, EventBy(principal, corrected, "app/A1"), kOrg);
      const auto refusal =
          CheckAppend(principal, EventBy(principal, "Corrected", "app/A1"), kOrg, corrected);
      EXPECT_EQ(!refusal.has_value(), records)
          << RoleName(role) << " correcting " << corrected << ": " << refusal.value_or("allowed");
      if (refusal) {
        EXPECT_NE(refusal->find("may not correct a " + corrected + ":"), std::string::npos)
            << *refusal;
      }
    }
  }
  // And by hand, the cases the rule is for (the loop holds corrections to the append rights,
  // which kAppendCases pins by hand).
  struct ByHand {
    Role role;
    std::string corrected;
    bool allowed;
  };
  for (const ByHand& c : std::vector<ByHand>{{Role::kClerk, "CompletionInspected", false},
                                             {Role::kClerk, "CallbackMade", false},
                                             {Role::kClerk, "Urged", false},
                                             {Role::kClerk, "SchemeReplied", true},
                                             {Role::kInspector, "CompletionInspected", true},
                                             {Role::kInspector, "Urged", false},
                                             {Role::kCallbackAgent, "CallbackMade", true},
                                             {Role::kDirector, "Urged", true}}) {
    const Principal principal = Who(c.role);
    EXPECT_EQ(!CheckAppend(principal, EventBy(principal, "Corrected", "app/A1"), kOrg, c.corrected),
              c.allowed)
        << RoleName(c.role) << " correcting " << c.corrected;
  }
}

TEST(CheckAppendTest, DirectorMayAppendEveryKnownTypeOfItsOwnOrg) {
  const Principal director = Who(Role::kDirector, "D1");
  for (const std::string& type : domain::KnownTypes()) {
    const auto refusal =
        CheckAppend(director, EventBy(director, type, StreamFor(type, director)), kOrg);
    EXPECT_FALSE(refusal.has_value()) << type << ": " << *refusal;
  }
}

TEST(CheckAppendTest, AuditorReaderAndAdminAppendNothingButTheirOwnReads) {
  for (Role role : {Role::kAuditor, Role::kReader, Role::kAdmin}) {
    const Principal principal = Who(role, "X1");
    for (const std::string& type : domain::KnownTypes()) {
      const auto refusal =
          CheckAppend(principal, EventBy(principal, type, StreamFor(type, principal)), kOrg);
      EXPECT_EQ(refusal.has_value(), type != "SensitiveDataAccessed")
          << RoleName(role) << " " << type;
    }
  }
}

TEST(CheckAppendTest, EveryRoleRecordsItsOwnSensitiveDataAccessOnly) {
  for (Role role : kAllRoles) {
    const Principal principal = Who(role, "U7");
    EXPECT_FALSE(CheckAppend(principal, EventBy(principal, "SensitiveDataAccessed", "staff/U7"), "")
                     .has_value())
        << RoleName(role);
    const auto refusal =
        CheckAppend(principal, EventBy(principal, "SensitiveDataAccessed", "staff/U8"), "");
    ASSERT_TRUE(refusal.has_value()) << RoleName(role);
    EXPECT_NE(refusal->find("staff/U7"), std::string::npos) << *refusal;
  }
}

TEST(CheckAppendTest, ActorMustMatchThePrincipalInEveryField) {
  const Principal clerk = Who(Role::kClerk, "S1001");
  struct Mismatch {
    std::string field;
    domain::Actor actor;
  };
  const std::vector<Mismatch> mismatches = {
      {"id", {"S1002", "clerk", kOwn}},
      {"role", {"S1001", "director", kOwn}},
      {"org", {"S1001", "clerk", kOther}},
      {"id case", {"s1001", "clerk", kOwn}},
      {"empty", {"", "", ""}},
  };
  for (const Mismatch& m : mismatches) {
    domain::ClientEvent event = EventBy(clerk, "SchemeReplied", "app/A1");
    event.actor = m.actor;
    // The org of the application is the actor's, so only the actor check can refuse.
    const auto refusal = CheckAppend(clerk, event, m.actor.org);
    ASSERT_TRUE(refusal.has_value()) << m.field;
    EXPECT_NE(refusal->find("does not match the authenticated principal S1001 (clerk, KM.XS)"),
              std::string::npos)
        << *refusal;
    EXPECT_NE(refusal->find("nobody can write in another's name"), std::string::npos) << *refusal;
  }
}

TEST(CheckAppendTest, ClaimingAHigherRoleDoesNotGrantIt) {
  // A clerk writing as "director" would be allowed Urged if the claimed role counted.
  const Principal clerk = Who(Role::kClerk, "S1001");
  domain::ClientEvent event = EventBy(Who(Role::kDirector, "S1001"), "Urged", "app/A1");
  const auto refusal = CheckAppend(clerk, event, kOrg);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("does not match"), std::string::npos) << *refusal;
}

TEST(CheckAppendTest, UnknownTypeAndWrongStreamAreRefused) {
  const Principal director = Who(Role::kDirector);
  EXPECT_TRUE(CheckAppend(director, EventBy(director, "Teleported", "app/A1"), kOrg).has_value());
  // An app/* type put on a report stream must not escape the org check.
  const auto refusal =
      CheckAppend(director, EventBy(director, "Urged", "report/monthly/2026-03"), kOtherOrg);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("app/ stream"), std::string::npos) << *refusal;
  EXPECT_TRUE(CheckAppend(director, EventBy(director, "Urged", "app"), "").has_value());
}

// ---- Other access ----

// The expected scope of each role for each Access, in enum order:
// ReadLog, Subscribe, ReadApplication, ReadReports, Verify, Digest, Import, Backup, Admin.
// 'A' = any org (and all orgs), 'O' = own org only, 'T' = own org and the orgs below it,
// '-' = never.
struct AccessRow {
  Role role;
  std::string_view scopes;
};
constexpr std::array<AccessRow, 7> kExpectedAccess = {{
    {Role::kClerk, "--OO-----"},
    {Role::kInspector, "--OO-----"},
    {Role::kCallbackAgent, "--OO-----"},
    {Role::kDirector, "--TT--O--"},
    {Role::kAuditor, "AAAAAA---"},
    {Role::kReader, "AA---A---"},
    {Role::kAdmin, "----AAAAA"},
}};
constexpr std::array<Access, 9> kAllAccess = {
    Access::kReadLog,     Access::kSubscribe, Access::kReadApplication,
    Access::kReadReports, Access::kVerify,    Access::kDigest,
    Access::kImport,      Access::kBackup,    Access::kAdmin};

TEST(CheckAccessTest, FollowsTheRoleMatrixForOwnOtherAndAllOrgs) {
  for (const AccessRow& row : kExpectedAccess) {
    const Principal principal = Who(row.role);
    for (size_t i = 0; i < kAllAccess.size(); ++i) {
      const char scope = row.scopes[i];
      const std::string label = std::string(RoleName(row.role)) + " access #" + std::to_string(i);
      EXPECT_EQ(!CheckAccess(principal, kAllAccess[i], kOrg).has_value(), scope != '-') << label;
      EXPECT_EQ(!CheckAccess(principal, kAllAccess[i], kOtherOrg).has_value(), scope == 'A')
          << label;
      EXPECT_EQ(!CheckAccess(principal, kAllAccess[i], "").has_value(), scope == 'A') << label;
      const std::string below = std::string(kOrg) + ".OPS";
      EXPECT_EQ(!CheckAccess(principal, kAllAccess[i], below).has_value(),
                scope == 'A' || scope == 'T')
          << label;
    }
  }
}

// A director heads its org and the units below it: it approves their staff's reads (IsSuperior),
// so it reads their applications and reports too — but not a sibling's, nor one whose id merely
// starts with its own.
TEST(CheckAccessTest, ADirectorReadsTheOrgsBelowItsOwn) {
  const Principal chief = Who(Role::kDirector, "D0", "KM");
  for (Access access : {Access::kReadApplication, Access::kReadReports}) {
    EXPECT_FALSE(CheckAccess(chief, access, "KM").has_value());
    EXPECT_FALSE(CheckAccess(chief, access, "KM.XS").has_value());
    EXPECT_FALSE(CheckAccess(chief, access, "KM.XS.OPS").has_value());
    EXPECT_TRUE(CheckAccess(chief, access, "KMX").has_value());
    EXPECT_TRUE(CheckAccess(chief, access, "QJ").has_value());
    EXPECT_TRUE(CheckAccess(chief, access, "").has_value());
  }
  const auto sibling =
      CheckAccess(Who(Role::kDirector, "D1", "KM.XS"), Access::kReadReports, "KM.GD");
  ASSERT_TRUE(sibling.has_value());
  EXPECT_NE(sibling->find("its own org and the orgs below it"), std::string::npos) << *sibling;
  // Still its own org only for a clerk, and for a director's appends.
  EXPECT_TRUE(
      CheckAccess(Who(Role::kClerk, "S1", "KM"), Access::kReadApplication, "KM.XS").has_value());
  EXPECT_TRUE(CheckAccess(chief, Access::kImport, "KM.XS").has_value());
  EXPECT_TRUE(OrgWithin("KM.XS", "KM"));
  EXPECT_FALSE(OrgWithin("KM", "KM.XS"));
  EXPECT_FALSE(OrgWithin("KMX", "KM"));
}

TEST(CheckAccessTest, RefusalsNameTheRoleAndTheReason) {
  const auto log = CheckAccess(Who(Role::kClerk), Access::kReadLog);
  ASSERT_TRUE(log.has_value());
  EXPECT_NE(
      log->find(
          "role clerk may not read the event log or staff audits: only auditor and reader may"),
      std::string::npos)
      << *log;

  const auto all_orgs = CheckAccess(Who(Role::kInspector), Access::kReadReports, "");
  ASSERT_TRUE(all_orgs.has_value());
  EXPECT_NE(all_orgs->find("role inspector"), std::string::npos) << *all_orgs;
  EXPECT_NE(all_orgs->find("all orgs"), std::string::npos) << *all_orgs;

  const auto other = CheckAccess(Who(Role::kDirector), Access::kReadApplication, kOtherOrg);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(other->find("role director of org KM.XS"), std::string::npos) << *other;
  EXPECT_NE(other->find("KM.GD"), std::string::npos) << *other;
  EXPECT_EQ(other->back(), '.');
}

// ---- Tokens ----

TEST(TokenTest, Sha256HexMatchesKnownDigests) {
  EXPECT_EQ(TokenStore::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenStore::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokenTest, NewTokenIs64LowerHexAndFresh) {
  const std::string first = TokenStore::NewToken();
  const std::string second = TokenStore::NewToken();
  ASSERT_EQ(first.size(), 64u);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos) << first;
  EXPECT_NE(first, second);
}

TEST(TokenTest, InsertedHashAuthenticatesOnlyItsToken) {
  TokenStore store;
  store.Insert(TokenStore::Sha256Hex("secret-1"), Who(Role::kAuditor, "A1"));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.Authenticate("secret-1"), Who(Role::kAuditor, "A1"));
  EXPECT_FALSE(store.Authenticate("secret-2").has_value());
  EXPECT_FALSE(store.Authenticate("").has_value());
  // Presenting the stored hash itself must not work: the hash is not the secret.
  EXPECT_FALSE(store.Authenticate(TokenStore::Sha256Hex("secret-1")).has_value());
  EXPECT_FALSE(store.Authenticate(std::string(kTokenBytesMax + 1, 'a')).has_value());
}

// 4.3.4: a superior is a director of the reader's org or of one above it, never the reader.
TEST(SuperiorTest, ADirectorOfTheReadersOrgOrAboveIt) {
  const Principal clerk = Who(Role::kClerk, "S1", "KM.XS");
  EXPECT_TRUE(IsSuperior(Who(Role::kDirector, "D1", "KM.XS"), clerk));
  EXPECT_TRUE(IsSuperior(Who(Role::kDirector, "D0", "KM"), clerk));
  EXPECT_FALSE(IsSuperior(Who(Role::kDirector, "D2", "KM.GD"), clerk));  // another org
  EXPECT_FALSE(IsSuperior(Who(Role::kDirector, "D3", "KM.X"), clerk));   // a prefix, not above
  EXPECT_FALSE(IsSuperior(Who(Role::kClerk, "S2", "KM.XS"), clerk));     // a peer
  EXPECT_FALSE(IsSuperior(Who(Role::kAuditor, "A1", "KM"), clerk));      // not a director
  EXPECT_FALSE(
      IsSuperior(Who(Role::kDirector, "D1", "KM.XS"), Who(Role::kDirector, "D1", "KM.XS")));
}

TEST(TokenFileTest, AddLoadAuthenticateRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  const std::string clerk_token = TokenStore::NewToken();
  const std::string auditor_token = TokenStore::NewToken();
  const Principal clerk = Who(Role::kClerk, "S1001");
  const Principal auditor = Who(Role::kAuditor, "A1", "KM");
  ASSERT_TRUE(TokenStore::Add(path, clerk, TokenStore::Sha256Hex(clerk_token)).ok());
  ASSERT_TRUE(TokenStore::Add(path, auditor, TokenStore::Sha256Hex(auditor_token)).ok());

  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->size(), 2u);
  EXPECT_EQ(store->Authenticate(clerk_token), clerk);
  EXPECT_EQ(store->Authenticate(auditor_token), auditor);
  EXPECT_FALSE(store->Authenticate(TokenStore::NewToken()).has_value());
}

TEST(TokenFileTest, FileHoldsOnlyHashesAndIsCreatedWithMode0600) {
  // umask 0 would reveal a mode wider than 0600; umask 0277 one that relies on the umask.
  for (const mode_t mask : {mode_t{0}, mode_t{0277}}) {
    testing::TempDir dir;
    const std::string path = dir.str() + "/tokens.jsonl";
    const std::string token = TokenStore::NewToken();
    const mode_t previous_umask = ::umask(mask);
    const ledger::Status added =
        TokenStore::Add(path, Who(Role::kClerk, "S1001"), TokenStore::Sha256Hex(token));
    ::umask(previous_umask);
    ASSERT_TRUE(added.ok()) << added.ToString();

    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << "umask " << mask;
    const std::string content = ReadFile(path);
    EXPECT_EQ(content.find(token), std::string::npos) << content;
    EXPECT_EQ(content, "{\"sha256\":\"" + TokenStore::Sha256Hex(token) +
                           "\",\"id\":\"S1001\",\"role\":\"clerk\",\"org\":\"KM.XS\"}\n");
  }
}

// A tokens file others may write lets them add a token (an admin's, say): it is not loaded,
// with the reason and the fix; adding or removing a token takes that write access away.
TEST(TokenFileTest, AFileOthersMayWriteIsRefusedAndClosedToThemOnChange) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S1"), TokenStore::Sha256Hex("t1")).ok());
  for (const mode_t mode : {mode_t{0666}, mode_t{0620}}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto refused = TokenStore::Load(path);
    ASSERT_FALSE(refused.ok()) << std::oct << mode;
    EXPECT_NE(refused.status().message().find("writable by others"), std::string::npos)
        << refused.status().ToString();
    EXPECT_NE(refused.status().message().find("chmod go-w"), std::string::npos);
  }
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S2"), TokenStore::Sha256Hex("t2")).ok());
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);  // 0620 less the group's write
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  ASSERT_TRUE(TokenStore::Remove(path, "S2").ok());
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
  auto loaded = TokenStore::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->size(), 1u);
}

TEST(TokenFileTest, DuplicateIdOrHashIsRefusedAndTheFileUnchanged) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  const std::string hash = TokenStore::Sha256Hex(TokenStore::NewToken());
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S1001"), hash).ok());
  const std::string before = ReadFile(path);

  const ledger::Status same_id = TokenStore::Add(path, Who(Role::kDirector, "S1001"),
                                                 TokenStore::Sha256Hex(TokenStore::NewToken()));
  EXPECT_EQ(same_id.code(), ledger::Code::kInvalid);
  EXPECT_NE(same_id.message().find("S1001"), std::string::npos) << same_id.message();
  const ledger::Status same_hash = TokenStore::Add(path, Who(Role::kClerk, "S1002"), hash);
  EXPECT_EQ(same_hash.code(), ledger::Code::kInvalid);
  EXPECT_EQ(ReadFile(path), before);
}

TEST(TokenFileTest, BadInputIsRefusedWithoutCreatingTheFile) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  const std::string hash = TokenStore::Sha256Hex("t");
  struct BadAdd {
    std::string label;
    Principal principal;
    std::string hash;
  };
  const std::vector<BadAdd> cases = {
      {"empty id", Who(Role::kClerk, ""), hash},
      {"id with a space", Who(Role::kClerk, "S 1"), hash},
      {"id too long", Who(Role::kClerk, std::string(65, 'x')), hash},
      {"empty org", Who(Role::kClerk, "S1", ""), hash},
      {"org with a slash", Who(Role::kClerk, "S1", "KM/XS"), hash},
      {"short hash", Who(Role::kClerk, "S1"), hash.substr(1)},
      {"upper-case hash", Who(Role::kClerk, "S1"), std::string(64, 'A')},
      {"plaintext token", Who(Role::kClerk, "S1"), "not-a-hash"},
  };
  for (const BadAdd& c : cases) {
    const ledger::Status status = TokenStore::Add(path, c.principal, c.hash);
    EXPECT_EQ(status.code(), ledger::Code::kInvalid) << c.label;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TokenFileTest, CommentsBlankLinesAndCrlfAreAccepted) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  const std::string hash = TokenStore::Sha256Hex("t1");
  WriteFile(path, "# issued 2026-03-01\n\n  \r\n{\"sha256\":\"" + hash +
                      "\",\"id\":\"R1\",\"role\":\"reader\",\"org\":\"KM\"}\r\n");
  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->Authenticate("t1"), Who(Role::kReader, "R1", "KM"));
}

TEST(TokenFileTest, MalformedLineFailsLoadNamingItsLineNumber) {
  const std::string hash = TokenStore::Sha256Hex("t1");
  const std::string good =
      "{\"sha256\":\"" + hash + "\",\"id\":\"S1\",\"role\":\"clerk\",\"org\":\"KM\"}";
  const std::string other_hash = TokenStore::Sha256Hex("t2");
  auto line = [&](const std::string& fields) {
    return "{\"sha256\":\"" + other_hash + "\"," + fields + "}";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "{\"sha256\":"},
      {"not an object", "[1,2]"},
      {"unknown role", line("\"id\":\"S2\",\"role\":\"root\",\"org\":\"KM\"")},
      {"missing org", line("\"id\":\"S2\",\"role\":\"clerk\"")},
      {"plaintext key", line("\"id\":\"S2\",\"role\":\"clerk\",\"org\":\"KM\",\"token\":\"x\"")},
      {"duplicate key",
       line("\"id\":\"S2\",\"role\":\"reader\",\"org\":\"KM\",\"role\":\"admin\"")},
      {"id not a string", line("\"id\":2,\"role\":\"clerk\",\"org\":\"KM\"")},
      {"bad id", line("\"id\":\"\",\"role\":\"clerk\",\"org\":\"KM\"")},
      {"bad hash", "{\"sha256\":\"abc\",\"id\":\"S2\",\"role\":\"clerk\",\"org\":\"KM\"}"},
      {"duplicate id",
       "{\"sha256\":\"" + other_hash + "\",\"id\":\"S1\",\"role\":\"clerk\",\"org\":\"KM\"}"},
      {"duplicate hash",
       "{\"sha256\":\"" + hash + "\",\"id\":\"S2\",\"role\":\"clerk\",\"org\":\"KM\"}"},
      {"too long", line("\"id\":\"S2\",\"role\":\"clerk\",\"org\":\"KM\",\"x\":\"" +
                        std::string(kTokenLineBytesMax, 'x') + "\"")},
  };
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  for (const auto& [label, bad] : cases) {
    // Line 1 good, line 2 a comment, line 3 the bad one.
    WriteFile(path, good + "\n# comment\n" + bad + "\n");
    auto store = TokenStore::Load(path);
    ASSERT_FALSE(store.ok()) << label;
    EXPECT_EQ(store.status().code(), ledger::Code::kCorruption) << label;
    EXPECT_NE(store.status().message().find("line 3"), std::string::npos)
        << label << ": " << store.status().message();
  }
}

// Rotate: the principal's new token works and its old one does not, with role and org kept;
// the other tokens and the comments stay. An unknown id, a bad hash or one already in the file
// change nothing.
TEST(TokenFileTest, RotateReplacesOneTokenKeepingRoleAndOrg) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  WriteFile(path, "# issued by the service center\n");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S1"), TokenStore::Sha256Hex("t1")).ok());
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kAdmin, "ADM"), TokenStore::Sha256Hex("t3")).ok());

  ASSERT_TRUE(TokenStore::Rotate(path, "S1", TokenStore::Sha256Hex("t1-new")).ok());
  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->size(), 2u);
  EXPECT_FALSE(store->Authenticate("t1").has_value());
  EXPECT_EQ(store->Authenticate("t1-new"), Who(Role::kClerk, "S1"));
  EXPECT_EQ(store->Authenticate("t3"), Who(Role::kAdmin, "ADM"));
  EXPECT_EQ(ReadFile(path).rfind("# issued by the service center\n", 0), 0u) << ReadFile(path);

  const std::string before = ReadFile(path);
  EXPECT_EQ(TokenStore::Rotate(path, "S9", TokenStore::Sha256Hex("t9")).code(),
            ledger::Code::kNotFound);
  EXPECT_EQ(TokenStore::Rotate(path, "S1", "not-a-hash").code(), ledger::Code::kInvalid);
  EXPECT_EQ(TokenStore::Rotate(path, "S1", TokenStore::Sha256Hex("t3")).code(),
            ledger::Code::kInvalid);
  EXPECT_EQ(ReadFile(path), before);
}

TEST(TokenFileTest, RemoveRevokesOneTokenAndKeepsTheRestOfTheFile) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  WriteFile(path, "# issued by the service center\n");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S1"), TokenStore::Sha256Hex("t1")).ok());
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, "S2"), TokenStore::Sha256Hex("t2")).ok());
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kAdmin, "ADM"), TokenStore::Sha256Hex("t3")).ok());

  ASSERT_TRUE(TokenStore::Remove(path, "S2").ok());
  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->size(), 2u);
  EXPECT_FALSE(store->Authenticate("t2").has_value());
  EXPECT_EQ(store->Authenticate("t1"), Who(Role::kClerk, "S1"));
  EXPECT_EQ(store->Authenticate("t3"), Who(Role::kAdmin, "ADM"));
  EXPECT_EQ(ReadFile(path).rfind("# issued by the service center\n", 0), 0u) << ReadFile(path);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  // Nobody of that id any more, or no file: not found, and nothing changes.
  const std::string before = ReadFile(path);
  EXPECT_EQ(TokenStore::Remove(path, "S2").code(), ledger::Code::kNotFound);
  EXPECT_EQ(ReadFile(path), before);
  EXPECT_EQ(TokenStore::Remove(dir.str() + "/absent.jsonl", "S1").code(), ledger::Code::kNotFound);
  // Through a symlink: the symlink stays, the file it names loses the token; the mode is kept.
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  const std::string link = dir.str() + "/link.jsonl";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  ASSERT_TRUE(TokenStore::Remove(link, "S1").ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640u);
  auto after = TokenStore::Load(path);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_FALSE(after->FindById("S1").has_value());
  EXPECT_TRUE(after->FindById("ADM").has_value());
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  const std::string remaining = ReadFile(path);
  // A malformed file is not rewritten.
  WriteFile(path, remaining + "garbage\n");
  EXPECT_EQ(TokenStore::Remove(path, "ADM").code(), ledger::Code::kCorruption);
  EXPECT_EQ(ReadFile(path), remaining + "garbage\n");
}

// Remove replaces the file; an Add waiting for the old file's lock must not append to the file
// that was replaced (its token would be lost).
TEST(TokenFileTest, ConcurrentAddsAndRemovesLoseNothing) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  constexpr int kEach = 16;
  for (int i = 0; i < kEach; ++i) {
    const std::string id = "R" + std::to_string(i);
    ASSERT_TRUE(TokenStore::Add(path, Who(Role::kClerk, id), TokenStore::Sha256Hex(id)).ok());
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kEach; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = "A" + std::to_string(i);
      EXPECT_TRUE(TokenStore::Add(path, Who(Role::kClerk, id), TokenStore::Sha256Hex(id)).ok());
    });
    threads.emplace_back(
        [&, i] { EXPECT_TRUE(TokenStore::Remove(path, "R" + std::to_string(i)).ok()); });
  }
  for (std::thread& thread : threads) thread.join();
  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->size(), static_cast<size_t>(kEach));
  for (int i = 0; i < kEach; ++i) {
    EXPECT_TRUE(store->FindById("A" + std::to_string(i)).has_value()) << i;
    EXPECT_FALSE(store->FindById("R" + std::to_string(i)).has_value()) << i;
  }
}

TEST(TokenFileTest, LoadOfAMissingFileIsNotFound) {
  testing::TempDir dir;
  auto store = TokenStore::Load(dir.str() + "/absent.jsonl");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), ledger::Code::kNotFound);
}

TEST(TokenFileTest, AddRefusesToExtendAMalformedFile) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  WriteFile(path, "garbage\n");
  const ledger::Status status =
      TokenStore::Add(path, Who(Role::kClerk, "S1"), TokenStore::Sha256Hex("t"));
  EXPECT_EQ(status.code(), ledger::Code::kCorruption);
  EXPECT_EQ(ReadFile(path), "garbage\n");
}

TEST(TokenFileTest, AddStartsANewLineAfterAFileWithoutFinalNewline) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/tokens.jsonl";
  WriteFile(path, "{\"sha256\":\"" + TokenStore::Sha256Hex("t1") +
                      "\",\"id\":\"S1\",\"role\":\"clerk\",\"org\":\"KM\"}");
  ASSERT_TRUE(TokenStore::Add(path, Who(Role::kAdmin, "ADM"), TokenStore::Sha256Hex("t2")).ok());
  auto store = TokenStore::Load(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->Authenticate("t1"), Who(Role::kClerk, "S1", "KM"));
  EXPECT_EQ(store->Authenticate("t2"), Who(Role::kAdmin, "ADM"));
}

}  // namespace
}  // namespace gridledger::ingest
