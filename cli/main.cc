// ledgerctl: the command line of GridLedger. See cli/README.md.
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <limits>

#include "commands.h"
#include "demo_command.h"
#include "domain/event_json.h"
#include "http_commands.h"
#include "import_command.h"
#include "projection_commands.h"
#include "server_commands.h"
#include "token_command.h"

int main(int argc, char** argv) {
  // Data directories, backups and imports hold customers' personal data: what ledgerctl creates
  // is its user's alone (0700 directories, 0600 files), whatever the shell's umask.
  ::umask(077);
  using namespace gridledger::cli;
  CLI::App app{"ledgerctl — GridLedger's command line: append, read, verify and replay history"};
  app.require_subcommand(1);
  DataOptions data{"", DefaultCalendarDir(), DefaultProfilePath()};
  std::string& data_dir = data.data_dir;
  app.add_option("--data", data_dir, "data directory of an embedded ledger")
      ->envname("GRIDLEDGER_DATA");
  RemoteOptions remote;
  app.add_option("--server", remote.server,
                 "a running ledgerd's TCP address (HOST:PORT) instead of --data")
      ->envname("GRIDLEDGER_SERVER");
  app.add_option("--http", remote.http,
                 "a running ledgerd's HTTP address (HOST:PORT) for app, overdue, kpi, evidence, "
                 "staff, verify, digest, import and backup instead of --data")
      ->envname("GRIDLEDGER_HTTP");
  app.add_option("--token", remote.token,
                 "bearer token for --server / --http (ledgerctl token add)")
      ->envname("GRIDLEDGER_TOKEN");
  app.add_option("--approved-by", remote.approved_by,
                 "with --server / --http: who approved reading customers' personal data "
                 "(recorded by ledgerd with every read of application events)");
  app.add_option("--calendar", data.calendar_dir, "directory of working-day calendar year files")
      ->capture_default_str();
  app.add_option("--profile", data.profile_path, "SLA time-limit profile (JSON)")
      ->capture_default_str();

  std::string append_file = "-";
  auto* append = app.add_subcommand("append", "append JSON events, one per line (- = stdin)");
  append->add_option("file", append_file, "JSONL file of events");

  ReadOptions read_options;
  uint64_t from_position = 0;
  auto* read = app.add_subcommand("read", "print stored events as JSON lines");
  auto* stream_option = read->add_option("--stream", read_options.stream, "one stream's events");
  read->add_option("--from-version", read_options.from_version, "first version (with --stream)")
      ->needs(stream_option);
  auto* from_option = read->add_option("--from", from_position, "first global position");
  read->add_flag("--envelopes", read_options.envelopes,
                 "add each event's stored envelope (base64), which `check` verifies offline");
  read->add_option("--limit", read_options.limit,
                   "at most this many events (more remain: stderr says where to go on)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000}))
      ->capture_default_str();
  stream_option->excludes(from_option);

  std::string history_stream;
  auto* history = app.add_subcommand("history", "a readable table of one stream's events");
  history->add_option("stream", history_stream, "stream id, e.g. app/XS-2026-000123")->required();

  auto* verify = app.add_subcommand("verify", "recompute the hash chain from position 1");
  std::string verify_digest;
  std::string verify_events;
  auto* events_option =
      verify->add_option("--events", verify_events,
                         "FILE of events as `read --envelopes` prints them (e.g. handed out for "
                         "a dispute): also prove that each is in this ledger's history, "
                         "unchanged (each line is held to its own hash first, as by `check`)");
  auto* digest_option =
      verify
          ->add_option("--digest", verify_digest,
                       "POSITION:HASH handed out earlier (ledgerctl digest): also prove that "
                       "history up to POSITION is unchanged since")
          ->excludes(events_option);
  bool verify_projections = false;
  verify
      ->add_flag("--projections", verify_projections,
                 "also compare every stored projection state (what app, kpi, evidence and staff "
                 "answer from) with a fresh fold of the log, made in a copy that is removed "
                 "afterwards (.gridledger-verify-* beside the data directory: hard links, plus "
                 "room for the folded states); --data only — for a running ledgerd, verify a "
                 "backup of it")
      ->excludes(events_option)
      ->excludes(digest_option);

  std::string check_file;
  auto* check = app.add_subcommand(
      "check", "verify events printed by `read --envelopes` without the ledger (disputes)");
  check->add_option("file", check_file, "JSON lines from `read --envelopes` (- = stdin)")
      ->required();

  std::string backup_dest;
  auto* backup = app.add_subcommand(
      "backup", "a verified copy of the whole ledger (projections included) in a new directory");
  backup
      ->add_option("dest", backup_dest,
                   "directory to create (with --http: a name under ledgerd's --backup-dir)")
      ->required();

  std::optional<uint64_t> digest_at;
  auto* digest = app.add_subcommand("digest", "print (position, hash) of the head or of --at P");
  digest->add_option("--at", digest_at, "position (1 or more)")
      ->check(CLI::Range(uint64_t{1}, std::numeric_limits<uint64_t>::max()));

  std::string app_id;
  std::optional<std::string> app_at;
  std::optional<std::string> app_as_of;
  auto* application = app.add_subcommand("app", "state and SLA clocks of one application");
  application->add_option("id", app_id, "application id (XS-2026-000123 or app/XS-2026-000123)")
      ->required();
  application->add_option("--at", app_at, "business time T: events that occurred by T");
  application->add_option("--as-of", app_as_of, "recorded time R: what the ledger knew at R");

  // An org unit as events carry it. An empty or malformed --org would match no org and answer
  // an empty list or an all-null table as if that were the org's; it is a bad command line.
  const CLI::Validator org_unit(
      [](std::string& org) {
        return gridledger::domain::IsOrgUnitId(org)
                   ? std::string()
                   : "an org unit id is 1 to 64 of [A-Za-z0-9._:-] in non-empty "
                     "dot-separated parts (e.g. KM.XS), not \"" +
                         org + "\"";
      },
      "ORG");

  std::optional<std::string> overdue_at;
  std::optional<std::string> overdue_org;
  bool overdue_table = false;
  auto* overdue = app.add_subcommand("overdue", "clocks overdue at a time, most escalated first");
  overdue->add_option("--at", overdue_at, "time (YYYY-MM-DD = end of that day); default now");
  overdue->add_option("--org", overdue_org, "only this org unit and those below it")
      ->check(org_unit);
  overdue->add_flag("--table", overdue_table, "a readable table instead of JSON lines");

  std::string kpi_period;
  std::optional<std::string> kpi_org;
  std::optional<std::string> kpi_as_of;
  bool kpi_json = false;
  auto* kpi = app.add_subcommand("kpi", "the KPI table of a month or quarter (section 7.1)");
  kpi->add_option("--period", kpi_period, "YYYY-MM or YYYY-Qn")->required();
  kpi->add_option("--org", kpi_org, "only this org unit (default: all merged)")->check(org_unit);
  kpi->add_option("--as-of", kpi_as_of,
                  "recorded time R: the table as it could be reported then, before later entries "
                  "and corrections (replays the log)");
  kpi->add_flag("--json", kpi_json, "JSON with kpis[].{id,numerator,denominator,value,target,met}");

  std::string evidence_id;
  std::string evidence_period;
  std::optional<std::string> evidence_org;
  auto* evidence = app.add_subcommand(
      "evidence", "evaluation evidence (7.2) of one application, or with --period of a period");
  auto* evidence_app = evidence->add_option("id", evidence_id, "application id");
  auto* evidence_for_period =
      evidence->add_option("--period", evidence_period,
                           "YYYY-MM or YYYY-Qn: coverage of reviews, inspections and callbacks, "
                           "and the third-party surveys");
  evidence
      ->add_option("--org", evidence_org, "only this org unit and those below it (with --period)")
      ->check(org_unit)
      ->needs(evidence_for_period);
  evidence_app->excludes(evidence_for_period);
  evidence->require_option(1, 2);

  std::string staff_id;
  auto* staff = app.add_subcommand(
      "staff", "staff audit of one staff member: actions, sensitive-data accesses, training");
  staff->add_option("id", staff_id, "staff id, e.g. S1001")->required();

  auto* rebuild = app.add_subcommand("rebuild", "rebuild every projection from position 1");

  uint64_t demo_apps = 1000;
  uint64_t demo_seed = 1;
  auto* demo =
      app.add_subcommand("demo", "load a generated 2025–2026 workload (all kinds/classes)");
  demo->add_option("--apps", demo_apps, "applications to generate")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}))
      ->capture_default_str();
  demo->add_option("--seed", demo_seed, "random seed (same seed, same log)")->capture_default_str();

  std::string import_file;
  std::string import_format;
  auto* import = app.add_subcommand("import", "bulk import of a JSONL or CSV file (idempotent)");
  import->add_option("file", import_file, "JSONL or CSV file (see ingest/IMPORT.md)")->required();
  import->add_option("--format", import_format, "jsonl or csv (default: by file extension)")
      ->check(CLI::IsMember({"jsonl", "csv"}));

  std::string tokens_file;
  std::string token_id;
  std::string token_role;
  std::string token_org;
  auto* token = app.add_subcommand("token", "bearer tokens of ledgerd");
  token->require_subcommand(1);
  auto* token_add =
      token->add_subcommand("add", "make a new token; prints it once, stores its hash");
  token_add->add_option("--tokens", tokens_file, "tokens file of ledgerd (created when missing)")
      ->required();
  token_add->add_option("--id", token_id, "principal id, e.g. S1001")->required();
  token_add
      ->add_option("--role", token_role,
                   "clerk, inspector, callback_agent, director, auditor, reader or admin")
      ->required();
  token_add->add_option("--org", token_org, "org unit, e.g. KM.XS")->required();
  auto* token_remove = token->add_subcommand(
      "remove", "revoke the token of a principal; a running ledgerd drops it on SIGHUP");
  token_remove->add_option("--tokens", tokens_file, "tokens file of ledgerd")->required();
  token_remove->add_option("--id", token_id, "principal id whose token is revoked")->required();
  auto* token_rotate = token->add_subcommand(
      "rotate", "replace the token of a principal by a new one (same role and org); prints it once");
  token_rotate->add_option("--tokens", tokens_file, "tokens file of ledgerd")->required();
  token_rotate->add_option("--id", token_id, "principal id whose token is replaced")->required();
  token_rotate->footer(
      "The old token stops and the new one starts working when a running ledgerd reloads the "
      "file: kill -HUP <ledgerd pid>.");
  token_add->footer(
      "A running ledgerd takes the new token once it reloads the file: kill -HUP <ledgerd pid>.");

  SubscribeCommandOptions subscribe_options;
  auto* subscribe =
      app.add_subcommand("subscribe", "events from a position as JSON lines (needs --server)");
  subscribe->add_option("--from", subscribe_options.from_position, "first position")
      ->capture_default_str();
  subscribe->add_option("--after-hash", subscribe_options.after_hash,
                        "hash of the event at --from - 1 as you hold it (a checkpoint line's "
                        "hash): refused (rule forked) when the server's event there differs");
  subscribe->add_option("--prefix", subscribe_options.stream_prefix,
                        "only streams with this prefix");
  subscribe->add_option("--type", subscribe_options.types, "only these event types (repeatable)");
  subscribe->add_flag("--follow", subscribe_options.follow,
                      "keep following new events (default: stop at the head)");
  subscribe->add_flag("--checkpoints", subscribe_options.checkpoints,
                      "also print {\"checkpoint\":N,\"hash\":H} lines: positions below N were "
                      "examined (resume with --from N --after-hash H), also where the filter "
                      "matched nothing");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad command line is rejected input: 2, as README.md says
    // (CLI11's own codes, 105, 106, ..., are not ledgerctl's).
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitRejected;
  }

  // A flag on the command line wins over the environment: `--data DIR` asks that directory even
  // when GRIDLEDGER_SERVER / GRIDLEDGER_HTTP name a server, and `--server` / `--http` ask the
  // server even when GRIDLEDGER_DATA names a directory.
  auto given = [&](std::string_view flag) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == flag ||
          (arg.starts_with(flag) && arg.size() > flag.size() && arg[flag.size()] == '=')) {
        return true;
      }
    }
    return false;
  };
  if (given("--data") && !given("--server") && !given("--http")) {
    remote.server.clear();
    remote.http.clear();
  }
  // A malformed address is a bad command line (2), like any other.
  if (!*token_add && !*token_remove && !*token_rotate &&
      ((!remote.server.empty() && !SplitHostPort(remote.server, "--server")) ||
       (!remote.http.empty() && !SplitHostPort(remote.http, "--http")))) {
    return kExitRejected;
  }
  if (*token_add) {
    return TokenAddCommand(tokens_file, token_id, token_role, token_org, std::cout, std::cerr);
  }
  if (*token_remove) return TokenRemoveCommand(tokens_file, token_id, std::cerr);
  if (*token_rotate) return TokenRotateCommand(tokens_file, token_id, std::cout, std::cerr);
  if (*check) return CheckCommand(check_file, std::cout);
  // A running ledgerd: the TCP door carries appends, reads and subscriptions; the HTTP door the
  // projections' reads, verify, digest and import.
  const bool tcp_command = *append || *read || *history || *subscribe;
  const bool http_command = *application || *overdue || *kpi || *evidence || *staff || *verify ||
                            *digest || *import || *backup;
  if (!remote.server.empty() && tcp_command) {
    if (*append) return RemoteAppend(remote, append_file, std::cout);
    if (*read) {
      if (*from_option) read_options.from_position = from_position;
      return RemoteRead(remote, read_options, std::cout);
    }
    if (*history) return RemoteHistory(remote, history_stream, std::cout);
    return RemoteSubscribe(remote, subscribe_options, std::cout);
  }
  if (!remote.http.empty() && http_command) {
    if (*application) return HttpApp(remote, app_id, app_at, app_as_of, std::cout);
    if (*overdue) return HttpOverdue(remote, overdue_at, overdue_org, overdue_table, std::cout);
    if (*kpi) return HttpKpi(remote, kpi_period, kpi_org, kpi_as_of, kpi_json, std::cout);
    if (*evidence && !evidence_period.empty()) {
      return HttpEvidenceCoverage(remote, evidence_period, evidence_org, std::cout);
    }
    if (*evidence) return HttpEvidence(remote, evidence_id, std::cout);
    if (*staff) return HttpStaff(remote, staff_id, std::cout);
    if (*verify && verify_projections) {
      std::cerr << "ledgerctl: verify --projections works on a data directory (--data): take a "
                   "backup of the running ledgerd (ledgerctl --http HOST:PORT backup NAME) and "
                   "verify that, with --data BACKUP_DIR/NAME\n";
      return kExitFailure;
    }
    if (*verify) return HttpVerify(remote, verify_digest, std::cout, verify_events);
    if (*digest) return HttpDigest(remote, digest_at, std::cout);
    if (*backup) return HttpBackup(remote, backup_dest, std::cout);
    return HttpImport(remote, import_file, import_format, std::cout);
  }
  if (!remote.server.empty() || !remote.http.empty()) {
    std::cerr << "ledgerctl: against a running ledgerd, append, read, history and subscribe take "
                 "--server HOST:PORT (its TCP door); app, overdue, kpi, evidence, staff, verify, "
                 "digest, import and backup take --http HOST:PORT (its HTTP door); rebuild and "
                 "demo work on a data directory no ledgerd holds\n";
    return kExitFailure;
  }
  if (*subscribe) {
    std::cerr << "ledgerctl: subscribe needs --server HOST:PORT of a running ledgerd\n";
    return kExitFailure;
  }
  if (!remote.approved_by.empty()) {
    // Not dropped in silence: the auditor would take the read for an approved one.
    std::cerr << "ledgerctl: --approved-by is judged by a running ledgerd (--server / --http); on "
                 "a data directory no token stands behind it, and reads of personal data are "
                 "recorded as local:<user> without an approver\n";
    return kExitRejected;
  }
  if (data_dir.empty()) {
    std::cerr << "ledgerctl: --data DIR (or GRIDLEDGER_DATA) is required for this command\n";
    return kExitFailure;
  }
  if (*import) return ImportCommand(data, import_file, import_format, std::cout, std::cerr);

  if (*append) return Append(data_dir, append_file, std::cout);
  if (*read) {
    if (*from_option) read_options.from_position = from_position;
    return Read(data_dir, read_options, std::cout);
  }
  if (*history) return History(data_dir, history_stream, std::cout);
  if (*verify) {
    return Verify(data_dir, verify_digest, std::cout, verify_events, verify_projections);
  }
  if (*backup) return BackupCommand(data_dir, backup_dest, std::cout);
  if (*digest) return DigestCommand(data_dir, digest_at, std::cout);
  if (*application) return AppCommand(data, app_id, app_at, app_as_of, std::cout);
  if (*overdue) return OverdueCommand(data, overdue_at, overdue_org, overdue_table, std::cout);
  if (*rebuild) return RebuildCommand(data, std::cout);
  if (*kpi) return KpiCommand(data, kpi_period, kpi_org, kpi_as_of, kpi_json, std::cout);
  if (*evidence && !evidence_period.empty()) {
    return EvidenceCoverageCommand(data, evidence_period, evidence_org, std::cout);
  }
  if (*evidence) return EvidenceCommand(data, evidence_id, std::cout);
  if (*staff) return StaffCommand(data, staff_id, std::cout);
  if (*demo) return DemoCommand(data, demo_apps, demo_seed, std::cout);
  return kExitFailure;
}
