// Goal: the JetStream relay publishes every event of the ledger exactly once and in position order,
// across crashes of the relay and outages of the broker, and never holds up appends.
// Method: a real nats-server (-js, file store in a temp dir, free loopback port) and relay_driver,
// a process that appends the seeded demo workload through the Ingestor while running the Relay.
// The test SIGKILLs the driver twice mid-relay (once with publishes surely in flight: the broker is
// paused across the kill, so it stores messages the relay never saw acknowledged), SIGKILLs the
// broker once and SIGTERMs it once while the driver keeps appending, restarting each. The stream is
// created with a 100 ms duplicate window so the broker's de-duplication cannot hide a repeated
// publish. In the end the stream must hold
// exactly the ledger's events: message i has Nats-Msg-Id i, the subject, hash and body of the
// event at position i. Every step waits on a condition (polled, with a deadline), never on a sleep.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ledger/ledger.h"
#include "projections/engine.h"
#include "server/relay.h"
#include "support/loopback.h"
#include "support/process.h"
#include "support/temp_dir.h"

extern char** environ;

namespace gridledger::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::FreeLoopbackPort;
using testing::PortAccepts;
using testing::ReadFile;
using testing::WaitUntil;

constexpr char kStreamName[] = "GRIDLEDGER";

// A child process with stdout and stderr appended to `log`; killed with SIGKILL if still running
// at destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int spawned = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(spawned, 0) << "spawning " << argv[0];
    if (spawned != 0) pid_ = -1;
  }
  ~Child() {
    if (Running()) Kill(SIGKILL);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reaps the child if it exited; true while it runs.
  bool Running() {
    if (pid_ <= 0 || exited_) return false;
    pid_t reaped = waitpid(pid_, &wait_status_, WNOHANG);
    if (reaped == pid_) exited_ = true;
    return !exited_;
  }
  // Sends `signal` without waiting (SIGSTOP, SIGCONT).
  void Signal(int signal) {
    ASSERT_TRUE(Running());
    kill(pid_, signal);
  }
  // True once the child is stopped by SIGSTOP (state 'T' in /proc/<pid>/stat).
  bool Stopped() const {
    const std::string stat = ReadFile("/proc/" + std::to_string(pid_) + "/stat");
    const size_t after_name = stat.rfind(')');
    return after_name != std::string::npos && after_name + 2 < stat.size() &&
           stat[after_name + 2] == 'T';
  }
  void Kill(int signal) {
    ASSERT_TRUE(Running());
    kill(pid_, signal);
    ASSERT_EQ(waitpid(pid_, &wait_status_, 0), pid_);
    exited_ = true;
  }
  // The exit code once exited normally; nullopt while running or after a signal.
  std::optional<int> ExitCode() {
    if (Running() || !WIFEXITED(wait_status_)) return std::nullopt;
    return WEXITSTATUS(wait_status_);
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int wait_status_ = 0;
};

// nats-server -js on a fixed loopback port and store directory, so a restart recovers the stream.
class Broker {
 public:
  Broker(std::filesystem::path store_dir, std::filesystem::path log)
      : port_(FreeLoopbackPort()), store_dir_(std::move(store_dir)), log_(std::move(log)) {}

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  void Start() {
    ASSERT_EQ(process_, nullptr);
    process_ = std::make_unique<Child>(
        std::vector<std::string>{NATS_SERVER_PATH, "-js", "-a", "127.0.0.1", "-p",
                                 std::to_string(port_), "-sd", store_dir_.string()},
        log_);
    ASSERT_TRUE(WaitUntil([&] { return PortAccepts(port_); }, seconds(10)))
        << "nats-server did not listen on " << port_ << "\n"
        << ReadFile(log_);
  }
  void Stop(int signal) {
    ASSERT_NE(process_, nullptr);
    process_->Kill(signal);
    process_.reset();
  }
  // SIGSTOP / SIGCONT: a paused broker keeps its connections but answers nothing.
  void Pause() {
    process_->Signal(SIGSTOP);
    ASSERT_TRUE(WaitUntil([&] { return process_->Stopped(); }, seconds(5)));
  }
  void Resume() { process_->Signal(SIGCONT); }

 private:
  const uint16_t port_;
  const std::filesystem::path store_dir_;
  const std::filesystem::path log_;
  std::unique_ptr<Child> process_;
};

// The test's own JetStream client: reconnects for ever, so it outlives broker restarts.
class Observer {
 public:
  explicit Observer(const std::string& url) {
    natsOptions* options = nullptr;
    EXPECT_EQ(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, url.c_str());
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 20);
    natsOptions_SetFailRequestsOnDisconnect(options, true);
    // With a connected callback the connect goes on in the background instead of blocking here.
    natsOptions_SetRetryOnFailedConnect(
        options, true, [](natsConnection*, void*) {}, nullptr);
    natsStatus s = natsConnection_Connect(&connection_, options);
    EXPECT_TRUE(s == NATS_OK || s == NATS_NOT_YET_CONNECTED) << natsStatus_GetText(s);
    natsOptions_Destroy(options);
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = 1000;
    EXPECT_EQ(natsConnection_JetStream(&js_, connection_, &js_options), NATS_OK);
  }
  ~Observer() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(connection_);
  }
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // (messages, first sequence, last sequence) of the stream, or nullopt when unavailable.
  struct State {
    uint64_t messages = 0;
    uint64_t first_sequence = 0;
    uint64_t last_sequence = 0;
  };
  std::optional<State> StreamState() {
    jsStreamInfo* info = nullptr;
    if (js_GetStreamInfo(&info, js_, kStreamName, nullptr, nullptr) != NATS_OK) {
      return std::nullopt;
    }
    State state{info->State.Msgs, info->State.FirstSeq, info->State.LastSeq};
    jsStreamInfo_Destroy(info);
    return state;
  }
  uint64_t LastSequence() {
    auto state = StreamState();
    return state ? state->last_sequence : 0;
  }
  // Creates the stream as the relay would, but with a tiny duplicate window.
  void CreateStream(milliseconds duplicate_window) {
    ASSERT_TRUE(
        WaitUntil([&] { return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED; },
                  seconds(10)));
    const char* subjects[] = {"gridledger.>"};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = kStreamName;
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Duplicates = duplicate_window.count() * 1000 * 1000;
    jsStreamInfo* info = nullptr;
    jsErrCode error_code = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&info, js_, &config, nullptr, &error_code);
    ASSERT_EQ(s, NATS_OK) << natsStatus_GetText(s) << " " << error_code;
    jsStreamInfo_Destroy(info);
  }
  void Purge() { ASSERT_EQ(js_PurgeStream(js_, kStreamName, nullptr, nullptr), NATS_OK); }
  // A message of someone else on the relay's subjects (plain NATS, no headers).
  void PublishForeign() {
    natsConnection_PublishString(connection_, "gridledger.foreign.note", "not the relay's");
    natsConnection_FlushTimeout(connection_, 1000);
  }
  natsMsg* GetMessage(uint64_t sequence) {
    natsMsg* msg = nullptr;
    EXPECT_EQ(js_GetMsg(&msg, js_, kStreamName, sequence, nullptr, nullptr), NATS_OK)
        << "sequence " << sequence;
    return msg;
  }

 private:
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

std::string Header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return "";
  return value;
}

TEST(RelaySubjectTest, KindIsTheStreamIdBeforeTheFirstSlash) {
  EXPECT_EQ(SubjectOf("gridledger", "app/KM-2025-000001", "ApplicationAccepted"),
            "gridledger.app.ApplicationAccepted");
  EXPECT_EQ(SubjectOf("gridledger", "report/monthly.KM.XS/2025-01", "ReportDue"),
            "gridledger.report.ReportDue");
  EXPECT_EQ(SubjectOf("gridledger", "survey/2025-Q1", "ThirdPartySurveyRecorded"),
            "gridledger.survey.ThirdPartySurveyRecorded");
  EXPECT_EQ(SubjectOf("gl", "staff/E1001", "TrainingHeld"), "gl.staff.TrainingHeld");
}

// A broker's password (or token) in --nats must not reach the logs or the ready file.
TEST(RelayUrlTest, SecretsOfTheUrlAreNotShown) {
  EXPECT_EQ(UrlWithoutSecrets("nats://alice:s3cret@127.0.0.1:4222"),
            "nats://alice:***@127.0.0.1:4222");
  EXPECT_EQ(UrlWithoutSecrets("nats://t0ken@h:4222"), "nats://***@h:4222");
  // The client takes the user info to the last '@': a password may hold '/' and '@'.
  EXPECT_EQ(UrlWithoutSecrets("nats://alice:pa/ss@h:4222"), "nats://alice:***@h:4222");
  EXPECT_EQ(UrlWithoutSecrets("nats://to/ken@h"), "nats://***@h");
  EXPECT_EQ(UrlWithoutSecrets("tls://a:p@x@h:4222"), "tls://a:***@h:4222");
  EXPECT_EQ(UrlWithoutSecrets("nats://a:b@h1:4222,nats://h2:4222,c:d@h3"),
            "nats://a:***@h1:4222,nats://h2:4222,c:***@h3");
  EXPECT_EQ(UrlWithoutSecrets("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
  EXPECT_EQ(UrlWithoutSecrets(""), "");
}

TEST(RelaySubjectTest, CharactersNatsReservesBecomeUnderscores) {
  EXPECT_EQ(SubjectOf("gridledger", "noslash", "T"), "gridledger.noslash.T");
  EXPECT_EQ(SubjectOf("gridledger", "a.b*>/x", "Ty pe.>"), "gridledger.a_b__.Ty_pe__");
  EXPECT_EQ(SubjectOf("gridledger", "/x", "T"), "gridledger._.T");
  EXPECT_EQ(SubjectOf("gridledger", "app/1", "\t\xe4"), "gridledger.app.__");
}

// What a relay reported (RelayOptions::report), from its thread.
class Reports {
 public:
  std::function<void(bool, const std::string&)> Sink() {
    return [this](bool trouble, const std::string& message) {
      std::lock_guard lock(mutex_);
      reports_.emplace_back(trouble, message);
    };
  }
  // Reports of this kind whose message holds `part`.
  long Count(bool trouble, const std::string& part) const {
    std::lock_guard lock(mutex_);
    return std::count_if(reports_.begin(), reports_.end(), [&](const auto& report) {
      return report.first == trouble && report.second.find(part) != std::string::npos;
    });
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<bool, std::string>> reports_;
};

// The relay in this process, on ledgers of plain events, against a real broker: how it finds its
// resume point, and how quickly it stops.
class RelayInProcessTest : public ::testing::Test {
 protected:
  RelayInProcessTest()
      : broker_(dir_.path() / "nats", dir_.path() / "nats.log"), observer_(broker_.url()) {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(broker_.Start());
    ledger_ = OpenLedger("ledger");
  }

  std::unique_ptr<ledger::Ledger> OpenLedger(const std::string& name) {
    ledger::Options options;
    options.sync = false;  // these tests kill no process
    options.side_families = projections::SideFamilies();
    family_ = AddRelaySideFamily(options.side_families);
    auto opened = ledger::Ledger::Open((dir_.path() / name).string(), options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }
  RelayOptions Options() const {
    RelayOptions options;
    options.url = broker_.url();
    options.checkpoint_family = family_;
    options.retry_backoff_min = milliseconds(20);
    options.retry_backoff_max = milliseconds(200);
    return options;
  }
  // Options() with what the relay reports collected in `reports`.
  RelayOptions ReportingTo(Reports& reports) const {
    RelayOptions options = Options();
    options.report = reports.Sink();
    return options;
  }
  // `count` one-event appends to stream app/<tag>.
  static void Append(ledger::Ledger& ledger, int count, const std::string& tag) {
    for (int i = 0; i < count; ++i) {
      ledger::AppendRequest request;
      request.stream = "app/" + tag;
      ledger::NewEvent event;
      event.event_id = tag + "-" + std::to_string(i);
      event.type = "Noted";
      event.occurred_at_us = 1'700'000'000'000'000;
      event.payload = tag;
      request.events.push_back(std::move(event));
      ASSERT_TRUE(ledger.Append(std::move(request)).ok());
    }
  }
  void WriteCheckpoint(uint64_t position, uint64_t stream_sequence) {
    std::string value;
    for (uint64_t number : {position, stream_sequence}) {
      for (int shift = 56; shift >= 0; shift -= 8) value += static_cast<char>(number >> shift);
    }
    auto batch = ledger_->NewSideBatch();
    batch->Put(family_, std::string("checkpoint/") + kStreamName, value);
    ASSERT_TRUE(ledger_->WriteSide(*batch, true).ok());
  }
  // Stream sequences first..last hold exactly positions first..last of `ledger`.
  void ExpectStreamHolds(ledger::Ledger& ledger, uint64_t first, uint64_t last) {
    auto state = observer_.StreamState();
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->messages, last - first + 1);
    EXPECT_EQ(state->first_sequence, first);
    EXPECT_EQ(state->last_sequence, last);
    for (uint64_t position = first; position <= last; ++position) {
      natsMsg* msg = observer_.GetMessage(position);
      ASSERT_NE(msg, nullptr);
      auto event = ledger.ReadOne(position);
      ASSERT_TRUE(event.ok());
      EXPECT_EQ(Header(msg, "Nats-Msg-Id"), std::to_string(position));
      EXPECT_EQ(Header(msg, "GridLedger-Hash"), ledger::ToHex(event->hash));
      natsMsg_Destroy(msg);
    }
  }

  testing::TempDir dir_;
  Broker broker_;
  Observer observer_;
  ledger::SideFamily family_ = kNoSideFamily;
  std::unique_ptr<ledger::Ledger> ledger_;
};

TEST_F(RelayInProcessTest, ResumesAfterTheStreamsLastMessageWhenTheCheckpointLags) {
  Append(*ledger_, 200, "a");
  {
    Relay relay(*ledger_, Options());
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.WaitForRelayed(200, seconds(10))) << relay.status().last_error;
  }
  // As if the relay had crashed with 150 messages stored by the broker but not checkpointed.
  WriteCheckpoint(50, 50);
  Append(*ledger_, 50, "b");
  Relay relay(*ledger_, Options());
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(250, seconds(10))) << relay.status().last_error;
  EXPECT_EQ(relay.status().published, 50u);  // nothing of 51..200 again
  relay.Stop();
  ExpectStreamHolds(*ledger_, 1, 250);
}

// Someone else publishing on the relay's subjects now and then (a misconfiguration: the stream is
// the relay's own): their messages sit between the relay's, but every position is stored exactly
// once, in order — none skipped when a foreign message takes the sequence the next relayed one
// expected (the relay used to lose the one refused and store the rest after it).
TEST_F(RelayInProcessTest, ForeignMessagesInTheStreamLeaveNoGap) {
  constexpr uint64_t kEvents = 3000;
  Append(*ledger_, static_cast<int>(kEvents), "a");
  std::atomic<bool> stop{false};
  std::atomic<int> foreign{0};
  Relay relay(*ledger_, Options());
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(1, seconds(10))) << relay.status().last_error;
  // Now and then: a few foreign messages after every 300 positions relayed.
  std::thread intruder([&] {
    for (uint64_t next = 300; !stop && next < kEvents; next += 300) {
      while (!stop && relay.status().relayed_position < next) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      for (int i = 0; i < 3; ++i) {
        observer_.PublishForeign();
        ++foreign;
      }
    }
  });
  const bool relayed = relay.WaitForRelayed(kEvents, seconds(30));
  stop = true;
  intruder.join();
  ASSERT_TRUE(relayed) << relay.status().last_error << " relayed "
                       << relay.status().relayed_position << " resyncs " << relay.status().resyncs
                       << " foreign " << foreign;
  relay.Stop();
  auto state = observer_.StreamState();
  ASSERT_TRUE(state.has_value());
  ASSERT_GT(state->messages, kEvents) << "no foreign message landed in the stream";
  std::vector<uint64_t> positions;
  bool foreign_between = false;  // a foreign message before the last relayed one: the case tested
  for (uint64_t sequence = state->first_sequence; sequence <= state->last_sequence; ++sequence) {
    natsMsg* msg = observer_.GetMessage(sequence);
    ASSERT_NE(msg, nullptr);
    const std::string id = Header(msg, "Nats-Msg-Id");
    if (!id.empty()) {
      positions.push_back(std::stoull(id));
    } else if (positions.size() < kEvents) {
      foreign_between = true;
    }
    natsMsg_Destroy(msg);
  }
  EXPECT_TRUE(foreign_between) << "every foreign message came after the relay had finished";
  ASSERT_EQ(positions.size(), kEvents);
  for (uint64_t i = 0; i < kEvents; ++i) ASSERT_EQ(positions[i], i + 1) << "at " << i;
}

TEST_F(RelayInProcessTest, AfterAPurgeResumesFromTheCheckpoint) {
  Append(*ledger_, 100, "a");
  {
    Relay relay(*ledger_, Options());
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.WaitForRelayed(100, seconds(10))) << relay.status().last_error;
  }
  ASSERT_NO_FATAL_FAILURE(observer_.Purge());
  Append(*ledger_, 20, "b");
  Relay relay(*ledger_, Options());
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(120, seconds(10))) << relay.status().last_error;
  relay.Stop();
  ExpectStreamHolds(*ledger_, 101, 120);
}

TEST_F(RelayInProcessTest, RefusesAStreamHoldingAnotherLedgersHistory) {
  Append(*ledger_, 20, "a");
  {
    Relay relay(*ledger_, Options());
    ASSERT_TRUE(relay.Start().ok());
    ASSERT_TRUE(relay.WaitForRelayed(20, seconds(10))) << relay.status().last_error;
  }
  std::unique_ptr<ledger::Ledger> other = OpenLedger("other");
  Append(*other, 30, "b");
  Reports reports;
  RelayOptions options = ReportingTo(reports);
  Relay relay(*other, options);
  ASSERT_TRUE(relay.Start().ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return relay.status().last_error.find("different event at position 20") !=
               std::string::npos;
      },
      seconds(10)))
      << relay.status().last_error;
  EXPECT_EQ(relay.status().relayed_position, 0u);
  // Retried and refused again and again, and said once (the report interval is a minute).
  ASSERT_TRUE(WaitUntil([&] { return relay.status().errors >= 3; }, seconds(10)));
  EXPECT_EQ(reports.Count(true, "different event at position 20"), 1);
  relay.Stop();
  ExpectStreamHolds(*ledger_, 1, 20);
}

TEST_F(RelayInProcessTest, StopReturnsPromptlyWhileTheBrokerHangs) {
  Append(*ledger_, 10, "a");
  RelayOptions options = Options();
  // Without Stop closing the connection, a hung broker would hold the relay for a minute.
  options.request_timeout = std::chrono::minutes(1);
  options.ack_timeout = std::chrono::minutes(1);
  Relay relay(*ledger_, options);
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(10, seconds(10))) << relay.status().last_error;
  ASSERT_NO_FATAL_FAILURE(broker_.Pause());
  const auto appending = steady_clock::now();
  Append(*ledger_, 10, "b");  // appends go on: the relay never holds them up
  EXPECT_LT(steady_clock::now() - appending, seconds(1));
  EXPECT_EQ(relay.status().lag, 10u);
  const auto stopping = steady_clock::now();
  relay.Stop();
  EXPECT_LT(steady_clock::now() - stopping, seconds(1));
  broker_.Resume();
}

TEST_F(RelayInProcessTest, StopReturnsPromptlyWhenTheBrokerIsGone) {
  ASSERT_NO_FATAL_FAILURE(broker_.Stop(SIGKILL));
  Append(*ledger_, 10, "a");
  Relay relay(*ledger_, Options());
  ASSERT_TRUE(relay.Start().ok());
  EXPECT_FALSE(relay.status().connected);
  const auto stopping = steady_clock::now();
  relay.Stop();
  EXPECT_LT(steady_clock::now() - stopping, seconds(1));
  EXPECT_EQ(relay.status().relayed_position, 0u);
}

// An operator is told when the broker cannot be reached, once, and when it can again.
TEST_F(RelayInProcessTest, ReportsTheBrokerGoneOnceAndBackAgain) {
  ASSERT_NO_FATAL_FAILURE(broker_.Stop(SIGKILL));
  Append(*ledger_, 10, "a");
  Reports reports;
  RelayOptions options = ReportingTo(reports);
  Relay relay(*ledger_, options);
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(
      WaitUntil([&] { return reports.Count(true, "relay cannot reach NATS") == 1; }, seconds(10)));
  ASSERT_NO_FATAL_FAILURE(broker_.Start());
  ASSERT_TRUE(relay.WaitForRelayed(10, seconds(10))) << relay.status().last_error;
  EXPECT_TRUE(
      WaitUntil([&] { return reports.Count(false, "relay connected to NATS") == 1; }, seconds(10)));
  EXPECT_EQ(reports.Count(true, ""), 1);  // nothing else went wrong
  relay.Stop();
}

// A broker outage is an error the relay keeps retrying: its count (gridledger_relay_errors_total,
// which the relay alerts point to) keeps rising while the broker is gone, once per backoff, and
// the log says it once. Relaying resumes when the broker is back.
TEST_F(RelayInProcessTest, ABrokerOutageCountsAsErrorsWhileItLasts) {
  Append(*ledger_, 10, "a");
  Reports reports;
  Relay relay(*ledger_, ReportingTo(reports));
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(10, seconds(10))) << relay.status().last_error;
  EXPECT_EQ(relay.status().errors, 0u);
  ASSERT_NO_FATAL_FAILURE(broker_.Stop(SIGKILL));
  ASSERT_TRUE(WaitUntil([&] { return relay.status().errors >= 3; }, seconds(10)))
      << relay.status().errors << " " << relay.status().last_error;
  EXPECT_FALSE(relay.status().connected);
  EXPECT_NE(relay.status().last_error.find("unreachable"), std::string::npos)
      << relay.status().last_error;
  EXPECT_EQ(reports.Count(true, ""), 1);  // "relay lost its connection", nothing more
  ASSERT_NO_FATAL_FAILURE(broker_.Start());
  Append(*ledger_, 10, "b");
  ASSERT_TRUE(relay.WaitForRelayed(20, seconds(10))) << relay.status().last_error;
  relay.Stop();
}

// Errors while the broker hangs are said, and so is publishing again once it answers.
TEST_F(RelayInProcessTest, ReportsPublishingAgainAfterErrors) {
  Append(*ledger_, 10, "a");
  Reports reports;
  RelayOptions options = ReportingTo(reports);
  options.request_timeout = milliseconds(200);
  options.ack_timeout = milliseconds(200);
  Relay relay(*ledger_, options);
  ASSERT_TRUE(relay.Start().ok());
  ASSERT_TRUE(relay.WaitForRelayed(10, seconds(10))) << relay.status().last_error;
  ASSERT_NO_FATAL_FAILURE(broker_.Pause());
  Append(*ledger_, 10, "b");
  const bool failed = WaitUntil([&] { return relay.status().errors >= 1; }, seconds(10));
  broker_.Resume();
  ASSERT_TRUE(failed);
  EXPECT_GE(reports.Count(true, "relay error (retried)"), 1);
  ASSERT_TRUE(relay.WaitForRelayed(20, seconds(10))) << relay.status().last_error;
  EXPECT_TRUE(
      WaitUntil([&] { return reports.Count(false, "relay working again") == 1; }, seconds(10)));
  relay.Stop();
}

class RelayTest : public ::testing::Test {
 protected:
  RelayTest() : broker_(dir_.path() / "nats", dir_.path() / "nats.log"), observer_(broker_.url()) {}

  void StartDriver() {
    driver_ = std::make_unique<Child>(
        std::vector<std::string>{RELAY_DRIVER_PATH, "--data", (dir_.path() / "ledger").string(),
                                 "--nats", broker_.url(), "--status", StatusPath(), "--apps",
                                 "1000", "--events-per-second", "1000"},
        dir_.path() / "driver.log");
  }
  std::string StatusPath() const { return (dir_.path() / "status.json").string(); }
  nlohmann::json Status() const {
    return nlohmann::json::parse(ReadFile(StatusPath()), nullptr, /*allow_exceptions=*/false);
  }
  uint64_t StatusNumber(const char* key) const {
    nlohmann::json status = Status();
    return status.is_object() ? status.value(key, uint64_t{0}) : 0;
  }
  bool DriverDisconnected() const {
    nlohmann::json status = Status();
    return status.is_object() && !status.value("connected", true);
  }
  // Waits until the stream holds `messages` with the driver still running, then kills it.
  void KillDriverAt(uint64_t messages) {
    ASSERT_TRUE(WaitUntil([&] { return observer_.LastSequence() >= messages; }, seconds(15)))
        << Logs();
    ASSERT_TRUE(driver_->Running()) << "the driver finished before it could be killed\n" << Logs();
    driver_->Kill(SIGKILL);
  }
  // Kills the driver at `messages` while its last publishes are surely in flight: the broker is
  // paused until the relay waits for acks with appends going on, then resumed after the kill, so
  // it stores messages whose acks nobody reads and that the checkpoint does not know of.
  void KillDriverInFlightAt(uint64_t messages) {
    ASSERT_TRUE(WaitUntil([&] { return observer_.LastSequence() >= messages; }, seconds(15)))
        << Logs();
    ASSERT_NO_FATAL_FAILURE(broker_.Pause());
    ASSERT_TRUE(WaitUntil([&] { return StatusNumber("lag") > 50; }, seconds(10))) << Logs();
    ASSERT_TRUE(driver_->Running()) << "the driver finished before it could be killed\n" << Logs();
    driver_->Kill(SIGKILL);
    const uint64_t acknowledged = StatusNumber("relayed");
    broker_.Resume();
    ASSERT_TRUE(WaitUntil([&] { return observer_.LastSequence() > acknowledged; }, seconds(10)))
        << "no message was in flight at the kill\n"
        << Logs();
  }
  // Takes the broker down with `signal` at `messages`; while it is down the driver must notice and
  // keep appending; then brings it back.
  void BrokerOutageAt(uint64_t messages, int signal) {
    ASSERT_TRUE(WaitUntil([&] { return observer_.LastSequence() >= messages; }, seconds(15)))
        << Logs();
    ASSERT_TRUE(driver_->Running()) << Logs();
    broker_.Stop(signal);
    ASSERT_TRUE(WaitUntil([&] { return DriverDisconnected(); }, seconds(10))) << Logs();
    const uint64_t head = StatusNumber("head");
    ASSERT_TRUE(WaitUntil([&] { return StatusNumber("head") > head + 100; }, seconds(10)))
        << "appends stalled during the broker outage\n"
        << Logs();
    broker_.Start();
  }
  std::string Logs() const {
    return "status: " + ReadFile(StatusPath()) + "\ndriver log:\n" +
           ReadFile(dir_.path() / "driver.log") + "\nnats log (tail):\n" +
           ReadFile(dir_.path() / "nats.log").substr(0, 4000);
  }

  testing::TempDir dir_;
  Broker broker_;
  Observer observer_;
  std::unique_ptr<Child> driver_;
};

TEST_F(RelayTest, EveryEventExactlyOnceInOrderAcrossCrashesAndBrokerOutages) {
  const auto started = steady_clock::now();
  broker_.Start();
  observer_.CreateStream(milliseconds(100));

  StartDriver();
  ASSERT_TRUE(WaitUntil([&] { return StatusNumber("total") > 0; }, seconds(10))) << Logs();
  const uint64_t total = StatusNumber("total");
  ASSERT_GT(total, 5000u);

  ASSERT_NO_FATAL_FAILURE(KillDriverAt(total * 15 / 100));
  StartDriver();
  ASSERT_NO_FATAL_FAILURE(BrokerOutageAt(total * 30 / 100, SIGKILL));
  ASSERT_NO_FATAL_FAILURE(KillDriverInFlightAt(total * 45 / 100));
  StartDriver();
  ASSERT_NO_FATAL_FAILURE(BrokerOutageAt(total * 65 / 100, SIGTERM));
  ASSERT_TRUE(WaitUntil([&] { return !driver_->Running(); }, seconds(20))) << Logs();
  ASSERT_EQ(driver_->ExitCode(), 0) << Logs();
  const double seconds_taken = std::chrono::duration<double>(steady_clock::now() - started).count();

  // The ledger holds the whole workload, and the stream holds exactly the ledger.
  ledger::Options options;
  options.side_families = projections::SideFamilies();
  const ledger::SideFamily relay_family = AddRelaySideFamily(options.side_families);
  auto opened = ledger::Ledger::Open((dir_.path() / "ledger").string(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ledger::Ledger& ledger = **opened;
  ASSERT_EQ(ledger.Head(), total);
  auto state = observer_.StreamState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->messages, total);
  EXPECT_EQ(state->first_sequence, 1u);
  EXPECT_EQ(state->last_sequence, total);

  uint64_t mismatches = 0;
  for (uint64_t position = 1; position <= total && mismatches < 10; ++position) {
    auto event = ledger.ReadOne(position);
    ASSERT_TRUE(event.ok());
    natsMsg* msg = observer_.GetMessage(position);
    ASSERT_NE(msg, nullptr);
    const std::string body(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    const nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
    bool same = Header(msg, "Nats-Msg-Id") == std::to_string(position) &&
                natsMsg_GetSubject(msg) == SubjectOf("gridledger", event->stream, event->type) &&
                Header(msg, "GridLedger-Hash") == ledger::ToHex(event->hash) &&
                Header(msg, "GridLedger-Stream") == event->stream && json.is_object() &&
                json.value("position", uint64_t{0}) == position &&
                json.value("event_id", "") == event->event_id;
    EXPECT_TRUE(same) << "stream sequence " << position << ": id " << Header(msg, "Nats-Msg-Id")
                      << ", subject " << natsMsg_GetSubject(msg) << ", body " << body;
    mismatches += same ? 0 : 1;
    natsMsg_Destroy(msg);
  }

  auto checkpoint = ledger.GetSide(relay_family, std::string("checkpoint/") + kStreamName);
  ASSERT_TRUE(checkpoint.ok() && checkpoint->has_value());
  std::cout << "relay_test: " << total
            << " events, driver output: " << ReadFile(dir_.path() / "driver.log")
            << "scenario took " << seconds_taken << " s\n";
}

}  // namespace
}  // namespace gridledger::server
