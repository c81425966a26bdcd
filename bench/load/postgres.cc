#include "postgres.h"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "child_process.h"

namespace gridledger::bench {
namespace {

namespace fs = std::filesystem;

constexpr char kPostgresUser[] = "postgres";
constexpr char kRunuser[] = "/usr/sbin/runuser";
constexpr auto kToolTimeout = std::chrono::seconds(120);
// How long Commits waits for the run's connections to end, and how often it looks.
constexpr auto kClientsGoneTimeout = std::chrono::seconds(10);
constexpr auto kClientsGonePoll = std::chrono::milliseconds(10);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// argv of a PostgreSQL tool, run as the postgres user when we are root (PostgreSQL refuses root).
std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  argv.insert(argv.begin(), {kRunuser, "-u", kPostgresUser, "--"});
  return argv;
}

bool RunTool(std::vector<std::string> argv, const fs::path& log, std::string* error) {
  const std::string tool = argv.front();
  std::optional<int> status = RunToCompletion(AsPostgres(std::move(argv)), log, kToolTimeout);
  if (status == 0) return true;
  *error = tool + " failed (" + (status ? "exit " + std::to_string(*status) : "did not run") +
           "); see " + log.string();
  return false;
}

// Hands `dir` to the postgres user when we are root.
bool GiveToPostgres(const fs::path& dir, std::string* error) {
  if (::geteuid() != 0) return true;
  const passwd* user = ::getpwnam(kPostgresUser);
  if (user == nullptr || ::chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
    *error = "cannot give " + dir.string() + " to user postgres (is PostgreSQL installed?)";
    return false;
  }
  return true;
}

std::string ResultError(PGconn* connection, PGresult* result) {
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(connection);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

// A connection for the cluster's own statements; nullptr with `*error` set when it fails.
std::unique_ptr<PGconn, void (*)(PGconn*)> Open(const std::string& conninfo, std::string* error) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> connection(PQconnectdb(conninfo.c_str()), PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    *error = "PostgreSQL connect: " + ResultError(connection.get(), nullptr);
    connection.reset();
  }
  return connection;
}

}  // namespace

std::string PostgresBinDir() {
  const char* bin = std::getenv("GRIDLEDGER_PG_BIN");
  return bin != nullptr && *bin != '\0' ? bin : "/usr/lib/postgresql/15/bin";
}

std::unique_ptr<PostgresCluster> PostgresCluster::Start(const fs::path& run_dir,
                                                        std::string* error) {
  const fs::path dir = run_dir / "postgres";
  const fs::path log = run_dir / "postgres-tools.log";
  std::error_code code;
  fs::create_directories(dir, code);
  if (code || !GiveToPostgres(dir, error)) {
    if (code) *error = "cannot create " + dir.string() + ": " + code.message();
    return nullptr;
  }
  const std::string bin = PostgresBinDir();
  // --no-sync: initdb's own files need not survive a crash of this throwaway cluster; the server
  // itself runs with fsync=on.
  if (!RunTool({bin + "/initdb", "-D", dir / "data", "-U", kPostgresUser, "-A", "trust", "-E",
                "UTF8", "--no-locale", "--no-sync"},
               log, error)) {
    return nullptr;
  }
  const uint16_t port = FreePort();
  const std::string options =
      "-c port=" + std::to_string(port) +
      " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + dir.string() +
      " -c fsync=on -c synchronous_commit=on";
  if (!RunTool({bin + "/pg_ctl", "-D", dir / "data", "-l", dir / "server.log", "-w", "-t", "60",
                "-o", options, "start"},
               log, error)) {
    return nullptr;
  }
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(dir, port));
  auto connection = Open(cluster->conninfo(), error);
  if (connection == nullptr) return nullptr;  // the destructor stops the server
  cluster->version_ = PQparameterStatus(connection.get(), "server_version");
  return cluster;
}

PostgresCluster::~PostgresCluster() {
  std::string error;
  RunTool({PostgresBinDir() + "/pg_ctl", "-D", dir_ / "data", "-m", "fast", "-w", "stop"},
          dir_.parent_path() / "postgres-tools.log", &error);
  // The server's log is kept with the run's other logs (load_bench --keep); the cluster goes.
  std::error_code ignored;  // the whole run directory is removed afterwards anyway
  fs::copy_file(dir_ / "server.log", dir_.parent_path() / "postgres-server.log",
                fs::copy_options::overwrite_existing, ignored);
  fs::remove_all(dir_, ignored);
}

std::string PostgresCluster::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
}

bool PostgresCluster::Execute(const std::string& sql, std::string* error) {
  auto connection = Open(conninfo(), error);
  if (connection == nullptr) return false;
  PGresult* result = PQexec(connection.get(), sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  if (!ok) *error = "PostgreSQL: " + ResultError(connection.get(), result);
  PQclear(result);
  return ok;
}

bool PostgresCluster::CreateEventsTable(std::string* error) {
  return Execute(
      "CREATE TABLE events ("
      "  position bigserial PRIMARY KEY,"
      "  stream text NOT NULL,"
      "  version integer NOT NULL,"
      "  type text NOT NULL,"
      "  event_id text NOT NULL UNIQUE,"
      "  occurred_at timestamptz NOT NULL,"
      "  recorded_at timestamptz NOT NULL DEFAULT now(),"
      "  actor jsonb NOT NULL,"
      "  payload jsonb NOT NULL,"
      "  UNIQUE (stream, version))",
      error);
}

uint64_t PostgresCluster::Commits(std::string* error) {
  auto connection = Open(conninfo(), error);
  if (connection == nullptr) return 0;
  // A single-row, single-column query; its value, or nullopt with `*error` set.
  auto number = [&](const char* sql) -> std::optional<uint64_t> {
    PGresult* result = PQexec(connection.get(), sql);
    std::optional<uint64_t> value;
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1) {
      value = std::strtoull(PQgetvalue(result, 0, 0), nullptr, 10);
    } else {
      *error = "PostgreSQL: " + ResultError(connection.get(), result);
    }
    PQclear(result);
    return value;
  };
  const auto deadline = std::chrono::steady_clock::now() + kClientsGoneTimeout;
  while (true) {
    std::optional<uint64_t> others = number(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()");
    if (!others) return 0;
    if (*others == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      *error = "PostgreSQL: client backends still running after the run";
      return 0;
    }
    std::this_thread::sleep_for(kClientsGonePoll);
  }
  // Each statement here runs in a transaction of its own, so it reads fresh statistics.
  std::optional<uint64_t> commits =
      number("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
  return commits.value_or(0);
}

uint64_t PostgresCluster::FillTo(uint64_t rows, std::string* error) {
  // The pipelined and batched runs may have stored more rows than the ledger holds: the newest go.
  // They lie at the end of the heap, which the VACUUM below then truncates.
  const std::string drop_rows =
      "DELETE FROM events WHERE position > "
      "(SELECT position FROM events ORDER BY position OFFSET " +
      std::to_string(rows - 1) + " LIMIT 1)";
  const std::string copy_rows =
      "INSERT INTO events (stream, version, type, event_id, occurred_at, actor, payload) "
      "SELECT 'app/CU-' || g, 0, e.type, 'CU-' || g || '-01', e.occurred_at, e.actor, e.payload "
      "FROM (SELECT * FROM events ORDER BY position LIMIT 1) e, generate_series(1, " +
      std::to_string(rows) + " - (SELECT count(*) FROM events)) g";
  if (!Execute(drop_rows, error) || !Execute(copy_rows, error) ||
      !Execute("VACUUM ANALYZE events", error)) {
    return 0;
  }
  auto connection = Open(conninfo(), error);
  if (connection == nullptr) return 0;
  PGresult* result = PQexec(connection.get(), "SELECT count(*) FROM events");
  uint64_t stored = 0;
  if (PQresultStatus(result) == PGRES_TUPLES_OK) {
    stored = std::strtoull(PQgetvalue(result, 0, 0), nullptr, 10);
  } else {
    *error = "PostgreSQL: " + ResultError(connection.get(), result);
  }
  PQclear(result);
  return stored;
}

uint64_t PostgresCluster::ReadAll(std::string* error) {
  auto connection = Open(conninfo(), error);
  if (connection == nullptr) return 0;
  PGresult* result = PQexec(connection.get(),
                            "COPY (SELECT position, stream, version, type, event_id, occurred_at, "
                            "recorded_at, actor, payload FROM events ORDER BY position) TO STDOUT");
  const bool copying = PQresultStatus(result) == PGRES_COPY_OUT;
  if (!copying) *error = "PostgreSQL: " + ResultError(connection.get(), result);
  PQclear(result);
  if (!copying) return 0;
  uint64_t rows = 0;
  char* row = nullptr;
  int length = 0;
  while ((length = PQgetCopyData(connection.get(), &row, 0)) > 0) {
    rows += row[length - 1] == '\n' ? 1 : 0;  // one row per message, ended by a newline
    PQfreemem(row);
  }
  if (length == -2) *error = "PostgreSQL COPY: " + ResultError(connection.get(), nullptr);
  PQclear(PQgetResult(connection.get()));
  return rows;
}

std::unique_ptr<PostgresAppender> PostgresAppender::Connect(const std::string& conninfo,
                                                            std::string* error) {
  PGconn* connection = PQconnectdb(conninfo.c_str());
  std::unique_ptr<PostgresAppender> appender(new PostgresAppender(connection));
  if (PQstatus(connection) != CONNECTION_OK) {
    *error = "PostgreSQL connect: " + ResultError(connection, nullptr);
    return nullptr;
  }
  PGresult* result = PQprepare(connection, "append",
                               "INSERT INTO events (stream, version, type, event_id, occurred_at, "
                               "actor, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                               7, nullptr);
  const bool prepared = PQresultStatus(result) == PGRES_COMMAND_OK;
  if (!prepared) *error = "PostgreSQL prepare: " + ResultError(connection, result);
  PQclear(result);
  if (!prepared) return nullptr;
  // The connection stays in blocking mode: a client keeps at most a few dozen small units in
  // flight, far less than the socket buffers hold, so sending cannot wait on unread answers.
  if (PQenterPipelineMode(connection) != 1) {
    *error = "PostgreSQL pipeline mode: " + ResultError(connection, nullptr);
    return nullptr;
  }
  return appender;
}

PostgresAppender::~PostgresAppender() { PQfinish(connection_); }

bool PostgresAppender::Send(const std::vector<LoadEvent>& events, uint64_t tag,
                            std::string* error) {
  for (const LoadEvent& event : events) {
    // expected_version -1 (a new stream) stores version 0; unique (stream, version) refuses a
    // second writer of the same version, as the ledger's expected-version check does.
    const char* values[7] = {event.stream.c_str(),      "0",
                             event.type.c_str(),        event.event_id.c_str(),
                             event.occurred_at.c_str(), event.actor_json.c_str(),
                             event.data_json.c_str()};
    if (PQsendQueryPrepared(connection_, "append", 7, values, nullptr, nullptr, 0) != 1) {
      *error = "PostgreSQL send: " + ResultError(connection_, nullptr);
      return false;
    }
  }
  if (PQpipelineSync(connection_) != 1) {
    *error = "PostgreSQL sync: " + ResultError(connection_, nullptr);
    return false;
  }
  in_flight_.push_back({tag, ""});
  return true;
}

void PostgresAppender::TakeResults(std::vector<Answer>* answers) {
  // Each statement's result is followed by a null; the unit ends with its PGRES_PIPELINE_SYNC.
  // With a unit in flight a result is always expected, so the loop ends when none has arrived.
  while (!in_flight_.empty() && PQisBusy(connection_) == 0) {
    PGresult* result = PQgetResult(connection_);
    if (result == nullptr) continue;
    Unit& unit = in_flight_.front();
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_PIPELINE_SYNC) {
      answers->push_back({unit.tag, unit.error.empty(), unit.error});
      in_flight_.pop_front();
    } else if (status != PGRES_COMMAND_OK && unit.error.empty()) {
      unit.error = "PostgreSQL: " + ResultError(connection_, result);
    }
    PQclear(result);
  }
}

bool PostgresAppender::Receive(std::chrono::steady_clock::time_point deadline,
                               std::vector<Answer>* answers, std::string* error) {
  const size_t answered = answers->size();
  while (true) {
    TakeResults(answers);
    if (answers->size() > answered) return true;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    // ppoll, not poll: an open-loop client's next send is due at the deadline, and poll's
    // millisecond timeout would send it late (the lateness counts in its latency).
    const timespec timeout{static_cast<time_t>(left.count() / 1'000'000'000),
                           static_cast<long>(left.count() % 1'000'000'000)};
    pollfd socket{PQsocket(connection_), POLLIN, 0};
    const int ready = ::ppoll(&socket, 1, &timeout, nullptr);
    if (ready < 0 && errno != EINTR) {
      *error = std::string("PostgreSQL poll: ") + std::strerror(errno);
      return false;
    }
    if (ready > 0 && PQconsumeInput(connection_) != 1) {
      *error = "PostgreSQL: " + ResultError(connection_, nullptr);
      return false;
    }
  }
}

}  // namespace gridledger::bench
