// The PostgreSQL 15 anchor of the load benchmark: a throwaway cluster started for the run, an
// events table as an event store would keep it in PostgreSQL, one appender per client connection,
// and a reader of the whole table in position order.
//
// The cluster: initdb into <run dir>/postgres, started with pg_ctl on 127.0.0.1 and a free port,
// fsync=on and synchronous_commit=on (acknowledged = flushed to the WAL on disk), every other
// setting PostgreSQL's default. PostgreSQL refuses to run as root, so when the benchmark runs as
// root its tools run as the `postgres` user (runuser), which then owns the cluster's directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "appender.h"

struct pg_conn;

namespace gridledger::bench {

// Where initdb, pg_ctl and postgres are. Default: /usr/lib/postgresql/15/bin; the environment
// variable GRIDLEDGER_PG_BIN overrides it.
std::string PostgresBinDir();

class PostgresCluster {
 public:
  // initdb + start; nullptr with `*error` set (and the logs' path in it) when that fails.
  // REQUIRES: `run_dir` exists and is traversable by the postgres user.
  static std::unique_ptr<PostgresCluster> Start(const std::filesystem::path& run_dir,
                                                std::string* error);
  // Stops the cluster (pg_ctl stop -m fast), copies its log to <run_dir>/postgres-server.log and
  // removes its directory.
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // libpq connection string: TCP on 127.0.0.1, like the clients of ledgerd.
  std::string conninfo() const;
  std::string version() const { return version_; }

  // Creates the events table: position bigserial primary key, unique (stream, version), unique
  // event_id, recorded_at default now(), actor and payload jsonb.
  bool CreateEventsTable(std::string* error);

  // Transactions committed in the database so far (pg_stat_database.xact_commit), read once the
  // benchmark's client connections have gone (a backend reports its counts as it exits); 0 with
  // `*error` set when that fails.
  uint64_t Commits(std::string* error);

  // CHECKPOINT: writes every dirty page back and syncs it.
  bool Checkpoint(std::string* error) { return Execute("CHECKPOINT", error); }

  // Deletes the rows past the first `rows` (by position) or adds copies of a stored row until the
  // table holds `rows` rows, then VACUUM ANALYZE (so the reader does not pay for setting hint
  // bits). Returns the table's row count, 0 on error. REQUIRES: rows >= 1.
  uint64_t FillTo(uint64_t rows, std::string* error);

  // One connection reads every row in position order (COPY (SELECT … ORDER BY position) TO
  // STDOUT: PostgreSQL's fastest way to stream a table to a client). Returns the rows read.
  uint64_t ReadAll(std::string* error);

 private:
  PostgresCluster(std::filesystem::path dir, uint16_t port) : dir_(std::move(dir)), port_(port) {}
  bool Execute(const std::string& sql, std::string* error);

  std::filesystem::path dir_;
  uint16_t port_;
  std::string version_;
};

// One client connection appending with a prepared INSERT per event, in libpq's pipeline mode
// (PQenterPipelineMode, libpq 14+). A unit is one transaction: the INSERT of each of its events,
// then a sync point (PQpipelineSync). The statements before a sync form one implicit transaction,
// committed there; with synchronous_commit=on its answer comes once the commit is flushed. So a
// unit of one event is autocommit — one synchronous commit per event — and several units may be
// in flight, sent without waiting and executed by the server one after the other in order.
class PostgresAppender final : public Appender {
 public:
  static std::unique_ptr<PostgresAppender> Connect(const std::string& conninfo, std::string* error);
  ~PostgresAppender() override;
  bool Send(const std::vector<LoadEvent>& events, uint64_t tag, std::string* error) override;
  bool Receive(std::chrono::steady_clock::time_point deadline, std::vector<Answer>* answers,
               std::string* error) override;

 private:
  struct Unit {
    uint64_t tag = 0;
    std::string error;  // the first statement of the unit that failed
  };

  explicit PostgresAppender(pg_conn* connection) : connection_(connection) {}
  // Takes the results that have arrived; a unit is answered at its sync point.
  void TakeResults(std::vector<Answer>* answers);

  pg_conn* connection_;         // owned; PQfinish in the destructor
  std::deque<Unit> in_flight_;  // in the order sent, which is the order of the answers
};

}  // namespace gridledger::bench
