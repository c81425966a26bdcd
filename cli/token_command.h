// ledgerctl token add / remove / rotate: issues a bearer token for a principal (ingest/auth.h). The token is
// shown once and never stored; the tokens file keeps only its SHA-256, so a leaked file grants
// nothing.
#pragma once

#include <ostream>
#include <string>

namespace gridledger::cli {

// Adds a principal (id, role, org) to `tokens_file` (created with mode 0600) with a new random
// token, and prints the token alone on one line of `out`, for scripts to capture. Returns kExitOk;
// kExitRejected with a message on `err` for a bad role, id or org, or an id that already has a
// token; kExitFailure when the file cannot be read, written or parsed.
int TokenAddCommand(const std::string& tokens_file, const std::string& id, const std::string& role,
                    const std::string& org, std::ostream& out, std::ostream& err);
// Revokes the token of `id` in `tokens_file` (TokenStore::Remove) and says so on `err`, with how
// a running ledgerd drops it. kExitOk; kExitRejected when `id` has no token there; kExitFailure
// when the file cannot be read, parsed or written.
int TokenRemoveCommand(const std::string& tokens_file, const std::string& id, std::ostream& err);
// Replaces the token of `id` by a new random one (TokenStore::Rotate: role and org kept) and
// prints it alone on `out`, as TokenAddCommand does. Exit codes as TokenRemoveCommand's.
int TokenRotateCommand(const std::string& tokens_file, const std::string& id, std::ostream& out,
                       std::ostream& err);

}  // namespace gridledger::cli
