#include "token_command.h"

#include <optional>

#include "commands.h"
#include "ingest/auth.h"

namespace gridledger::cli {

int TokenAddCommand(const std::string& tokens_file, const std::string& id, const std::string& role,
                    const std::string& org, std::ostream& out, std::ostream& err) {
  const std::optional<ingest::Role> parsed_role = ingest::ParseRole(role);
  if (!parsed_role) {
    err << "ledgerctl: unknown role \"" << role
        << "\": expected clerk, inspector, callback_agent, director, auditor, reader or admin\n";
    return kExitRejected;
  }
  if (id.empty()) {
    err << "ledgerctl: --id must not be empty: it names the person the token stands for\n";
    return kExitRejected;
  }
  const ingest::Principal principal{id, *parsed_role, org};
  const std::string token = ingest::TokenStore::NewToken();
  const ledger::Status added =
      ingest::TokenStore::Add(tokens_file, principal, ingest::TokenStore::Sha256Hex(token));
  if (!added.ok()) {
    err << "ledgerctl: " << added.message() << "\n";
    return added.code() == ledger::Code::kInvalid ? kExitRejected : kExitFailure;
  }
  // stdout carries the token alone so `TOKEN=$(ledgerctl token add ...)` works; the note goes to
  // stderr because the token cannot be shown again.
  out << token << "\n";
  err << "ledgerctl: added a token for " << id << " (" << role << ", " << org << ") to "
      << tokens_file << "; only its hash is stored, so this is the only time it is shown"
      << "; a running ledgerd takes it on SIGHUP (kill -HUP <pid>)\n";
  return kExitOk;
}

int TokenRemoveCommand(const std::string& tokens_file, const std::string& id, std::ostream& err) {
  const ledger::Status removed = ingest::TokenStore::Remove(tokens_file, id);
  if (!removed.ok()) {
    err << "ledgerctl: " << removed.message() << "\n";
    return removed.code() == ledger::Code::kNotFound ? kExitRejected : kExitFailure;
  }
  err << "ledgerctl: removed the token of " << id << " from " << tokens_file
      << "; a running ledgerd refuses it once it reloads the file (kill -HUP <pid>)\n";
  return kExitOk;
}

int TokenRotateCommand(const std::string& tokens_file, const std::string& id, std::ostream& out,
                       std::ostream& err) {
  const std::string token = ingest::TokenStore::NewToken();
  const ledger::Status rotated =
      ingest::TokenStore::Rotate(tokens_file, id, ingest::TokenStore::Sha256Hex(token));
  if (!rotated.ok()) {
    err << "ledgerctl: " << rotated.message() << "\n";
    return rotated.code() == ledger::Code::kNotFound ? kExitRejected : kExitFailure;
  }
  out << token << "\n";
  err << "ledgerctl: replaced the token of " << id << " in " << tokens_file
      << " (role and org kept); only its hash is stored, so this is the only time it is shown; "
         "a running ledgerd takes the new one and refuses the old one once it reloads the file "
         "(kill -HUP <pid>)\n";
  return kExitOk;
}

}  // namespace gridledger::cli
