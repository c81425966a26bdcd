// The events of the load benchmark: each one opens a new application — stream
// app/LB-<door><round>-<client>-<sequence>, type ApplicationAccepted, expected_version -1, actor
// the client's own clerk — with a `data` object of exactly kDataBytes bytes of JSON (customer_name
// is padded), like examples/sample-application.jsonl's first line. Every event is valid and passes
// the workflow rules, so the server does its full work for each (decode, authorize, validate,
// hash, durable append) and refuses none.
//
// ledgerd gets the JSON text; PostgreSQL gets the same fields as columns (stream, version 0, type,
// event_id, occurred_at, actor and data as jsonb). Doors differ only in the letter of the stream,
// so all three see events of the same length.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace gridledger::bench {

// Size of each event's `data` object as JSON text (the same 300 bytes as append_bench's payload);
// the whole client event, envelope included, is about 470 bytes.
inline constexpr size_t kDataBytes = 300;
inline constexpr char kClerkOrg[] = "KM.XS";

// The clerk principal of client `client` (each connection authenticates as its own clerk).
inline std::string ClerkId(int client) {
  char id[16];
  std::snprintf(id, sizeof id, "S%04d", 1100 + client);
  return id;
}

struct LoadEvent {
  std::string stream;
  std::string event_id;
  std::string type;
  std::string occurred_at;  // RFC 3339, +08:00
  std::string actor_json;
  std::string data_json;
  std::string json;  // the whole client event, as sent to ledgerd
};

// One per client thread. `door` is one letter ('T' TCP, 'H' HTTP, 'P' PostgreSQL); `run` (two
// digits) keeps the streams of successive runs apart. Not thread-safe.
class LoadEventMaker {
 public:
  LoadEventMaker(char door, int run, int client) : client_(client) {
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "LB-%c%02d-%02d-", door, run % 100, client % 100);
    prefix_ = prefix;
    occurred_at_ = ShanghaiTimeMinuteAgo();
    event_.type = "ApplicationAccepted";
    event_.occurred_at = occurred_at_;
    event_.actor_json =
        "{\"id\":\"" + ClerkId(client) + "\",\"role\":\"clerk\",\"org\":\"" + kClerkOrg + "\"}";
  }

  // The next event, valid until the next call.
  const LoadEvent& Next() {
    char sequence[16];
    std::snprintf(sequence, sizeof sequence, "%07" PRIu64, sequence_++);
    const std::string id = prefix_ + sequence;
    event_.stream = "app/" + id;
    event_.event_id = id + "-01";
    event_.data_json = Data(id);
    event_.json = "{\"stream\":\"" + event_.stream + "\",\"type\":\"" + event_.type +
                  "\",\"event_id\":\"" + event_.event_id +
                  "\",\"expected_version\":-1,\"occurred_at\":\"" + occurred_at_ +
                  "\",\"actor\":" + event_.actor_json + ",\"data\":" + event_.data_json + "}";
    return event_;
  }

  int client() const { return client_; }

 private:
  static std::string Data(const std::string& id) {
    static constexpr char kName[] =
        "Kunming Xishan Precision Machinery Co. Ltd., No. 2 workshop and office building, ";
    std::string data = "{\"customer_id\":\"C-" + id + "\",\"customer_name\":\"";
    const std::string tail =
        "\",\"customer_class\":\"hv_single\",\"business\":\"new_install\",\"voltage_kv\":10,"
        "\"capacity_kva\":800,\"channel\":\"counter\",\"important\":false,\"three_zero\":false}";
    while (data.size() + tail.size() < kDataBytes) data.append(kName);
    data.resize(kDataBytes - tail.size());
    return data + tail;
  }

  // A minute ago in Asia/Shanghai: in the past (the server refuses events from the future) and
  // recent (not backdated).
  static std::string ShanghaiTimeMinuteAgo() {
    const std::time_t shanghai = std::time(nullptr) - 60 + 8 * 3600;
    std::tm fields{};
    gmtime_r(&shanghai, &fields);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+08:00", &fields);
    return text;
  }

  int client_;
  std::string prefix_;
  std::string occurred_at_;
  uint64_t sequence_ = 0;
  LoadEvent event_;
};

}  // namespace gridledger::bench
