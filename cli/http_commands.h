// ledgerctl against a running ledgerd's HTTP/JSON door (--http HOST:PORT --token T): the reads of
// the projections (app, overdue, kpi, evidence, staff), verify, digest and import — what the Cap'n
// Proto TCP door (server_commands.h) does not carry. Each asks the endpoint of server/openapi.json
// and prints what the embedded command prints (same JSON, same tables), so scripts work either way
// — but import, which prints the server's one summary line (rejected rows under "errors"). Exit
// codes as commands.h: a 4xx answer is rejected input (2), an unreachable server or a 5xx answer a
// failure (1).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "server_commands.h"

namespace gridledger::cli {

int HttpApp(const RemoteOptions& remote, const std::string& id,
            const std::optional<std::string>& at, const std::optional<std::string>& as_of,
            std::ostream& out);
int HttpOverdue(const RemoteOptions& remote, const std::optional<std::string>& at,
                const std::optional<std::string>& org, bool table, std::ostream& out);
int HttpKpi(const RemoteOptions& remote, const std::string& period,
            const std::optional<std::string>& org, const std::optional<std::string>& as_of,
            bool as_json, std::ostream& out);
int HttpEvidence(const RemoteOptions& remote, const std::string& id, std::ostream& out);
// GET /v1/evidence?period=&org=: the period's coverage and surveys.
int HttpEvidenceCoverage(const RemoteOptions& remote, const std::string& period,
                         const std::optional<std::string>& org, std::ostream& out);
int HttpStaff(const RemoteOptions& remote, const std::string& staff_id, std::ostream& out);
// With `digest` (POSITION:HASH): also whether history up to POSITION is the one it was made of.
int HttpVerify(const RemoteOptions& remote, const std::string& digest, std::ostream& out,
               const std::string& events_file = "");
int HttpDigest(const RemoteOptions& remote, std::optional<uint64_t> at, std::ostream& out);
// POST /v1/backup?name=NAME: ledgerd's verified copy in its --backup-dir/NAME (role admin).
int HttpBackup(const RemoteOptions& remote, const std::string& name, std::ostream& out);
// `format` "jsonl" or "csv" ("" = by the file's extension). Sent in requests of whole rows under
// the server's body limit; one summary line, the requests' counts added up.
int HttpImport(const RemoteOptions& remote, const std::string& file, std::string format,
               std::ostream& out);

}  // namespace gridledger::cli
