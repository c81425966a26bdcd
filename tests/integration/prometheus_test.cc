// Goal: ledgerd's metrics work against a real Prometheus — the scrape passes `promtool check
// metrics`; every PromQL expression of the Grafana dashboard and of the alert rules evaluates
// without error and returns series; the alerts fire on real data; and the key figures (open
// applications, overdue clocks and applications at the evaluation time, KPIs per org) equal what
// ledgerctl reports for the same data.
// Method: `ledgerctl demo --apps 300 --seed 7` fills a data directory; ledgerd starts on it with
// --metrics and a JetStream relay to a real nats-server; four applications are appended over HTTP
// on dates chosen so that one is in SLA warning, two are overdue (levels 1 and 3) and one needs an
// unloaded calendar year, plus one invalid append and one unauthenticated request. A real
// prometheus (Debian's package) scrapes ledgerd every second and loads monitoring/alerts/*.yml.
// Once it has scraped the figures of the final head, every expression is evaluated at one instant
// through the HTTP API. Then ledgerd stops and ledgerctl reads the same data directory: `read` for
// the open applications, `overdue --at <the SLA evaluation time>`, `kpi --period <previous month>
// --org <org> --json`. Every wait polls a condition with a deadline.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "domain/calendar.h"
#include "domain/event_json.h"
#include "support/http_client.h"
#include "support/ledgerd.h"
#include "support/loopback.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace gridledger::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr char kClerkOrg[] = "KM.XS";

bool Installed(const std::string& path) {
  return path.find("NOTFOUND") == std::string::npos && ::access(path.c_str(), X_OK) == 0;
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- Expressions ----

// Every target expression of the dashboard, with Grafana's variables replaced by what a user
// selecting the orgs `org` (a regex; every org by default) at a 1-minute rate interval would send.
std::vector<std::string> DashboardExpressions(const std::string& path,
                                              const std::string& org = ".*") {
  json dashboard = json::parse(ReadFile(path));
  std::vector<std::string> expressions;
  std::function<void(const json&)> visit = [&](const json& panels) {
    for (const json& panel : panels) {
      if (panel.contains("panels")) visit(panel["panels"]);
      for (const json& target : panel.value("targets", json::array())) {
        std::string expr = target.at("expr").get<std::string>();
        expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "1m");
        expr = std::regex_replace(expr, std::regex(R"(\$org)"), org);
        expressions.push_back(expr);
      }
    }
  };
  visit(dashboard.at("panels"));
  return expressions;
}

// `expr` with every comparison made a `bool` comparison, so that it returns its series whether
// or not the condition holds: what the alert's figures are, not whether it fires. Comparisons
// inside label matchers and strings are left alone.
std::string WithBoolComparisons(const std::string& expr) {
  std::string out;
  int braces = 0;
  char quote = 0;
  for (size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    out += c;
    if (quote != 0) {
      if (c == '\\' && i + 1 < expr.size()) out += expr[++i];
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') quote = c;
    if (c == '{') ++braces;
    if (c == '}') --braces;
    if (braces > 0) continue;
    const char next = i + 1 < expr.size() ? expr[i + 1] : '\0';
    const bool comparison = ((c == '>' || c == '<') && next != '=') ||
                            ((c == '=' || c == '!' || c == '>' || c == '<') && next == '=');
    if (!comparison) continue;
    if (next == '=') out += expr[++i];
    if (expr.compare(i + 1, 5, " bool") != 0) out += " bool";
  }
  return out;
}

size_t CountAlertsInRuleFiles(const std::filesystem::path& dir) {
  size_t alerts = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yml") continue;
    std::istringstream lines(ReadFile(entry.path()));
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_search(line, std::regex(R"(^\s*-\s*alert:)"))) ++alerts;
    }
  }
  return alerts;
}

// ---- Prometheus ----

class PrometheusServer {
 public:
  PrometheusServer(const std::filesystem::path& dir, uint16_t target_port)
      : port_(FreeLoopbackPort()), log_((dir / "prometheus.log").string()) {
    const std::string config = (dir / "prometheus.yml").string();
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "rule_files:\n"
                             "  - "
                          << SOURCE_DIR
                          << "/monitoring/alerts/*.yml\n"
                             "scrape_configs:\n"
                             "  - job_name: ledgerd\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:"
                          << target_port << "']\n";
    process_ = std::make_unique<Process>(
        std::vector<std::string>{PROMETHEUS_PATH, "--config.file=" + config,
                                 "--storage.tsdb.path=" + (dir / "tsdb").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--log.level=warn"},
        log_);
    http_ = std::make_unique<HttpClient>("127.0.0.1", port_);
  }
  ~PrometheusServer() {
    process_->Signal(SIGTERM);
    process_->Wait(seconds(30));
  }

  bool WaitReady() {
    return WaitUntil([&] { return !process_->running() || http_->Get("/-/ready").status == 200; },
                     seconds(60)) &&
           process_->running();
  }
  json Get(const std::string& target) {
    HttpResponse response = http_->Get(target);
    json body = json::parse(response.body, nullptr, false);
    return body.is_discarded() ? json{{"status", "error"}, {"error", response.body}} : body;
  }
  json Query(const std::string& expr, double time) {
    char at[32];
    std::snprintf(at, sizeof at, "%.3f", time);
    return Get("/api/v1/query?query=" + UrlEncode(expr) + "&time=" + at);
  }
  // The value of a query that returns one sample (nullopt otherwise).
  std::optional<double> Value(const std::string& expr, double time) {
    json answer = Query(expr, time);
    if (answer.value("status", "") != "success") return std::nullopt;
    const json& result = answer["data"]["result"];
    if (answer["data"]["resultType"] == "scalar") return std::stod(result[1].get<std::string>());
    if (!result.is_array() || result.size() != 1) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }
  std::string Log() const { return ReadFile(log_); }

 private:
  uint16_t port_;
  std::string log_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<HttpClient> http_;
};

// ---- Applications on chosen dates ----

// The latest date D <= today with exactly `working_days` working days in (D, today].
domain::Date DaysBack(const domain::WorkingCalendar& calendar, domain::Date today,
                      int working_days) {
  domain::Date date = today;
  for (int step = 0; step < 60; ++step, date = date.AddDays(-1)) {
    auto elapsed = calendar.WorkingDaysIn(date, today);
    if (elapsed.ok() && *elapsed.value == working_days) return date;
  }
  ADD_FAILURE() << "no date " << working_days << " working days back";
  return today;
}

json Accepted(const std::string& id, domain::Date date) {
  return {{"stream", "app/" + id},
          {"type", "ApplicationAccepted"},
          {"event_id", id + "-accepted"},
          {"expected_version", -1},
          {"occurred_at", date.ToString() + "T09:00:00+08:00"},
          {"actor", {{"id", "S1001"}, {"role", "clerk"}, {"org", kClerkOrg}}},
          {"data",
           {{"customer_id", "C-530102-900001"},
            {"customer_name", "monitoring test"},
            {"customer_class", "residential"},
            {"business", "new_install"},
            {"voltage_kv", 0.4},
            {"capacity_kva", 8},
            {"channel", "counter"},
            {"important", false},
            {"three_zero", false}}}};
}

// ---- ledgerctl ----

std::string Ledgerctl(const std::string& data_dir, const std::string& arguments) {
  auto [status, output] = RunCommand(std::string(LEDGERCTL_PATH) + " --data " + data_dir + " " +
                                     arguments + " 2>/dev/null");
  EXPECT_EQ(status, 0) << "ledgerctl " << arguments << "\n" << output;
  return output;
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

TEST(PrometheusTest, DashboardAndAlertsWorkOnARealPrometheusAndAgreeWithLedgerctl) {
  ASSERT_TRUE(Installed(PROMETHEUS_PATH))
      << "prometheus not found (" << PROMETHEUS_PATH
      << "): install Debian's prometheus package (scripts/install-deps.sh)";
  ASSERT_TRUE(Installed(PROMTOOL_PATH))
      << "promtool not found (" << PROMTOOL_PATH
      << "): install Debian's prometheus package (scripts/install-deps.sh)";
  TempDir dir;

  // The broker of the relay.
  const uint16_t nats_port = FreeLoopbackPort();
  Process nats({NATS_SERVER_PATH, "-js", "-a", "127.0.0.1", "-p", std::to_string(nats_port), "-sd",
                dir.str() + "/nats"},
               dir.str() + "/nats.log");
  ASSERT_TRUE(WaitUntil([&] { return PortAccepts(nats_port) || !nats.running(); }, seconds(10)) &&
              nats.running())
      << nats.Log();

  // ledgerd on the demo data.
  uint64_t demo_head = 0;
  Ledgerd ledgerd(
      {"--metrics", "127.0.0.1:0", "--nats", "nats://127.0.0.1:" + std::to_string(nats_port)},
      [&](const std::string& data_dir) {
        auto [status, output] = RunCommand(std::string(LEDGERCTL_PATH) + " --data " + data_dir +
                                           " demo --apps 300 --seed 7 2>/dev/null");
        ASSERT_EQ(status, 0) << output;
        demo_head = json::parse(output)["head"].get<uint64_t>();
      });
  ASSERT_GT(demo_head, 0u);
  ASSERT_NE(ledgerd.metrics_port(), 0) << ledgerd.Log();
  HttpClient api("127.0.0.1", ledgerd.http_port());
  HttpClient metrics("127.0.0.1", ledgerd.metrics_port());

  // A downstream system that took its first frame and grants no more credit: it stays behind,
  // so the per-subscriber lag has a series.
  auto subscriber =
      client::Client::Connect("127.0.0.1", ledgerd.tcp_port(), ledgerd.token("reader"));
  ASSERT_TRUE(subscriber.ok()) << subscriber.error().ToString();
  client::SubscribeOptions slow;
  slow.credit = 10;
  slow.auto_credit = false;
  auto subscription = (*subscriber)->Subscribe(slow);
  ASSERT_TRUE(subscription.ok()) << subscription.error().ToString();
  auto first_frame = (*subscription)->Next();
  ASSERT_TRUE(first_frame.ok()) << first_frame.error().ToString();
  {
    // Its lag: everything after the 10 events it was given.
    const std::string scrape = metrics.Get("/metrics").body;
    const std::string series = "gridledger_subscription_lag_events{subscriber=\"R0001\"} ";
    const size_t at = scrape.find(series);
    ASSERT_NE(at, std::string::npos) << "no subscriber lag series";
    // The subscription was recorded as a read of personal data, one event past demo_head.
    EXPECT_EQ(std::stoull(scrape.substr(at + series.size())), demo_head + 1 - 10);
  }

  // Applications on dates that put them in known SLA states now (residential scheme reply: 3
  // working days): warning (2 days elapsed), overdue level 1 (4), level 3 (10), and one accepted
  // in 2024, a year the calendar does not hold.
  auto calendar = domain::WorkingCalendar::Load(std::string(SOURCE_DIR) + "/domain/data/calendar");
  ASSERT_TRUE(std::holds_alternative<domain::WorkingCalendar>(calendar));
  const domain::Date today = domain::LocalDateOf(static_cast<int64_t>(NowSeconds() * 1e6));
  const auto& working = std::get<domain::WorkingCalendar>(calendar);
  const std::vector<std::pair<std::string, domain::Date>> crafted = {
      {"MON-WARNING", DaysBack(working, today, 2)},
      {"MON-OVERDUE1", DaysBack(working, today, 4)},
      {"MON-OVERDUE3", DaysBack(working, today, 10)},
      {"MON-NOCALENDAR", *domain::Date::FromCivil(2024, 12, 20)}};
  for (const auto& [id, date] : crafted) {
    HttpResponse response =
        api.Post("/v1/events", ledgerd.token("clerk"), Accepted(id, date).dump());
    ASSERT_TRUE(response.status == 200 || response.status == 201) << response.body;
  }
  json again = Accepted("MON-WARNING", crafted[0].second);
  again["event_id"] = "MON-WARNING-accepted-again";
  again.erase("expected_version");
  EXPECT_EQ(api.Post("/v1/events", ledgerd.token("clerk"), again.dump()).status, 400);
  EXPECT_EQ(api.Get("/v1/verify", "not-a-token").status, 401);
  EXPECT_EQ(api.Get("/v1/verify", ledgerd.token("auditor")).status, 200);
  const uint64_t head = demo_head + 1 + crafted.size();  // + the subscription's recorded read

  // The projections reach the head, as the metrics endpoint reports it.
  std::string scrape;
  auto gauge = [&](const std::string& name) {
    std::smatch match;
    std::regex line("\n" + name + " ([0-9.e+]+)");
    return std::regex_search(scrape, match, line) ? std::stod(match[1]) : -1.0;
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        scrape = metrics.Get("/metrics").body;
        return gauge("gridledger_ledger_head_position") == static_cast<double>(head) &&
               gauge("gridledger_projection_lag_events") == 0;
      },
      seconds(30)))
      << scrape.substr(0, 2000);
  // `api` keeps its connection open between requests: it is counted.
  EXPECT_GE(gauge("gridledger_http_connections"), 1.0) << scrape.substr(0, 2000);

  // promtool's lint of a real scrape.
  const std::string scrape_file = dir.str() + "/scrape.txt";
  std::ofstream(scrape_file) << scrape;
  auto [lint_status, lint_output] =
      RunCommand(std::string(PROMTOOL_PATH) + " check metrics < " + scrape_file + " 2>&1");
  EXPECT_EQ(lint_status, 0) << lint_output;
  EXPECT_EQ(lint_output, "");

  // A real Prometheus scraping ledgerd and evaluating the alert rules.
  std::filesystem::create_directories(dir.path() / "prometheus");
  PrometheusServer prometheus(dir.path() / "prometheus", ledgerd.metrics_port());
  ASSERT_TRUE(prometheus.WaitReady()) << prometheus.Log();
  const size_t alerts_in_files =
      CountAlertsInRuleFiles(std::filesystem::path(SOURCE_DIR) / "monitoring/alerts");
  std::vector<std::pair<std::string, std::string>> rules;  // (name, query)
  ASSERT_TRUE(WaitUntil(
      [&] {
        const double now = NowSeconds();
        // The SLA figures of the final head, rates over at least three samples, every rule
        // evaluated without error, the relay caught up.
        if (prometheus.Value("gridledger_sla_evaluated_checkpoint_position", now) !=
                static_cast<double>(head) ||
            prometheus.Value("count_over_time(gridledger_ledger_head_position[1m])", now)
                    .value_or(0) < 3 ||
            prometheus.Value("gridledger_relay_lag_events", now) != 0.0) {
          return false;
        }
        json groups = prometheus.Get("/api/v1/rules")["data"]["groups"];
        rules.clear();
        for (const json& group : groups) {
          for (const json& rule : group["rules"]) {
            if (rule["health"] != "ok") return false;
            rules.emplace_back(rule["name"], rule["query"]);
          }
        }
        return !rules.empty();
      },
      seconds(45)))
      << prometheus.Log() << "\n"
      << prometheus.Get("/api/v1/rules").dump().substr(0, 3000);
  EXPECT_EQ(rules.size(), alerts_in_files);

  // Every expression at one instant: no error, and series.
  const double t = NowSeconds();
  auto expect_series = [&](const std::string& where, const std::string& expr) {
    json answer = prometheus.Query(expr, t);
    ASSERT_EQ(answer.value("status", ""), "success") << where << ": " << expr << "\n" << answer;
    const json& result = answer["data"]["result"];
    EXPECT_TRUE(answer["data"]["resultType"] == "scalar" || !result.empty())
        << where << " returns no series: " << expr;
  };
  const std::vector<std::string> dashboard =
      DashboardExpressions(std::string(SOURCE_DIR) + "/monitoring/dashboards/gridledger.json");
  ASSERT_GT(dashboard.size(), 30u);
  for (const std::string& expr : dashboard) expect_series("dashboard", expr);
  // A KPI with an empty denominator has no value (domain.md): a panel that divides by
  // denominators shows no point there, not NaN. A single org's KPIs of the previous month have
  // empty denominators in the demo data.
  for (const std::string org : {"KM.XS", "KM.WH", "KM.GD", "KM.PL"}) {
    const std::string path = std::string(SOURCE_DIR) + "/monitoring/dashboards/gridledger.json";
    for (const std::string& expr : DashboardExpressions(path, org)) {
      if (expr.find("gridledger_kpi_denominator") == std::string::npos) continue;
      const json answer = prometheus.Query(expr, t);
      for (const json& sample : answer["data"]["result"]) {
        if (!sample.contains("value")) continue;
        EXPECT_NE(sample["value"][1], "NaN") << "dashboard: " << expr << " " << sample.dump();
      }
    }
  }
  for (const auto& [name, query] : rules) {
    json answer = prometheus.Query(query, t);
    EXPECT_EQ(answer.value("status", ""), "success") << name << ": " << query << "\n" << answer;
    expect_series(name, WithBoolComparisons(query));
  }

  // The figures at t.
  const double open = prometheus.Value("sum(gridledger_sla_open_applications)", t).value_or(-1);
  const double overdue_clocks =
      prometheus.Value("sum(gridledger_sla_overdue_clocks)", t).value_or(-1);
  const double overdue_apps =
      prometheus.Value("sum(gridledger_sla_overdue_applications)", t).value_or(-1);
  const double evaluated_at =
      prometheus.Value("gridledger_sla_evaluation_timestamp_seconds", t).value_or(0);
  json period =
      prometheus.Query(R"(gridledger_kpi_period_info{period="previous",kind="month"})", t);
  ASSERT_EQ(period["data"]["result"].size(), 1u) << period;
  const std::string previous_month = period["data"]["result"][0]["metric"]["name"];
  std::map<std::pair<std::string, std::string>, double> kpis;  // (org, kpi) → value
  json values = prometheus.Query(
      R"(gridledger_kpi_value{period="previous",kpi=~"timeliness|callback_satisfaction"})", t);
  for (const json& sample : values["data"]["result"]) {
    kpis[{sample["metric"]["org"], sample["metric"]["kpi"]}] =
        std::stod(sample["value"][1].get<std::string>());
  }
  EXPECT_FALSE(kpis.empty());
  // The probes: four stored client appends and the subscription's recorded read, one invalid,
  // one unknown token.
  EXPECT_EQ(prometheus.Value(R"(sum(gridledger_appends_total{result="ok"}))", t), 5.0);
  EXPECT_EQ(prometheus.Value(R"(sum(gridledger_appends_total{result="invalid"}))", t), 1.0);
  EXPECT_GE(
      prometheus.Value(R"(sum(gridledger_rejected_inputs_total{reason="unauthenticated"}))", t)
          .value_or(0),
      1.0);
  // ledgerd's own verification at start (--verify-every-hours) and the auditor's request.
  EXPECT_EQ(prometheus.Value(R"(gridledger_ledger_verifications_total{result="ok"})", t), 2.0);
  EXPECT_EQ(prometheus.Value("gridledger_relay_connected", t), 1.0);
  // The crafted states, and the alerts they raise (pending: their `for` has not passed).
  EXPECT_GE(prometheus.Value(R"(sum(gridledger_sla_open_applications{sla_state="warning"}))", t)
                .value_or(0),
            1.0);
  EXPECT_GE(prometheus.Value(R"(sum(gridledger_sla_open_clocks{sla_state="calendar_missing"}))", t)
                .value_or(0),
            1.0);
  // Rules are evaluated every second, so the alerts may trail the figures by one evaluation.
  const std::set<std::string> expected_alerts = {"GridLedgerApplicationsOverdueLevel1/KM.XS",
                                                 "GridLedgerApplicationsOverdueLevel3/KM.XS",
                                                 "GridLedgerClocksCalendarMissing/"};
  std::set<std::string> raised;
  EXPECT_TRUE(WaitUntil(
      [&] {
        raised.clear();
        const json alerts = prometheus.Get("/api/v1/alerts")["data"]["alerts"];
        for (const json& alert : alerts) {
          raised.insert(alert["labels"]["alertname"].get<std::string>() + "/" +
                        alert["labels"].value("org", ""));
        }
        return std::includes(raised.begin(), raised.end(), expected_alerts.begin(),
                             expected_alerts.end());
      },
      seconds(30)))
      << "raised: " << json(raised).dump();

  // The same data through ledgerctl, with ledgerd stopped.
  ASSERT_EQ(ledgerd.Stop(), 0) << ledgerd.Log();
  const std::string data = ledgerd.data_dir();
  std::set<std::string> accepted;
  std::set<std::string> closed;
  for (const json& event : JsonLines(Ledgerctl(data, "read --limit 100000"))) {
    const std::string type = event["type"];
    if (type == "ApplicationAccepted") accepted.insert(event["stream"].get<std::string>());
    if (type == "Archived" || type == "Withdrawn")
      closed.insert(event["stream"].get<std::string>());
  }
  size_t open_by_ledgerctl = 0;
  for (const std::string& stream : accepted) open_by_ledgerctl += closed.count(stream) ? 0 : 1;
  EXPECT_EQ(open, static_cast<double>(open_by_ledgerctl));

  const std::string at = domain::FormatTimestamp(static_cast<int64_t>(evaluated_at * 1e6),
                                                 domain::kShanghaiUtcOffsetMinutes);
  // Clocks the calendar cannot judge follow the overdue ones, with their own state.
  std::vector<json> overdue;
  size_t calendar_missing = 0;
  for (json& row : JsonLines(Ledgerctl(data, "overdue --at " + at))) {
    if (row["state"] == "calendar_missing") {
      ++calendar_missing;
      continue;
    }
    EXPECT_EQ(row["state"], "overdue") << row.dump();
    overdue.push_back(std::move(row));
  }
  EXPECT_GE(calendar_missing, 1u);  // the crafted one
  std::set<std::string> overdue_streams;
  for (const json& row : overdue) overdue_streams.insert(row["stream"].get<std::string>());
  EXPECT_EQ(overdue_clocks, static_cast<double>(overdue.size()));
  EXPECT_EQ(overdue_apps, static_cast<double>(overdue_streams.size()));
  EXPECT_GE(overdue_apps, 2.0);  // at least the two crafted ones

  size_t compared = 0;
  for (const std::string org : {"KM.XS", "KM.WH", "KM.GD", "KM.PL"}) {
    json table = json::parse(
        Ledgerctl(data, "kpi --period " + previous_month + " --org " + org + " --json"));
    for (const json& kpi : table["kpis"]) {
      const std::string id = kpi["id"];
      if (id != "timeliness" && id != "callback_satisfaction") continue;
      auto found = kpis.find({org, id});
      EXPECT_EQ(found != kpis.end(), kpi["value"].is_number()) << org << " " << id;
      if (found == kpis.end() || !kpi["value"].is_number()) continue;
      EXPECT_NEAR(found->second, kpi["value"].get<double>(), 1e-9) << org << " " << id;
      ++compared;
    }
  }
  EXPECT_GT(compared, 0u);
}

}  // namespace
}  // namespace gridledger::testing
