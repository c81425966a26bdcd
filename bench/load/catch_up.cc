#include "catch_up.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "load_events.h"

namespace gridledger::bench {
namespace {

// Filling is set-up, not measured: a few connections with large batches is the fastest way in.
// 8 x 400 events stay below ledgerd's default appends_inflight_max (4096); a busy answer (nothing
// stored) is retried after a pause, at most kFillBusyRetriesMax times in a row.
constexpr size_t kFillConnections = 8;
constexpr uint32_t kFillBatchEventsMax = 400;
constexpr int kFillBusyRetriesMax = 500;
constexpr auto kFillBusyPause = std::chrono::milliseconds(20);

// Appends `batch`, retrying while the server is busy. Returns "" or why it failed.
std::string AppendBatch(client::Client& connection, const std::vector<std::string>& batch) {
  for (int retry = 0;; ++retry) {
    auto answered = connection.Append(batch);
    if (!answered.ok()) {
      if (answered.error().code != "busy" || retry == kFillBusyRetriesMax) {
        return answered.error().ToString();
      }
      std::this_thread::sleep_for(kFillBusyPause);
      continue;
    }
    for (const client::AppendResult& result : *answered) {
      if (!result.ok()) return result.error->ToString();
    }
    return "";
  }
}

// One filler connection: appends batches while `remaining` lasts. Returns "" or why it failed.
std::string FillFrom(uint16_t tcp_port, const std::string& token, int client,
                     std::atomic<int64_t>& remaining) {
  auto connected = client::Client::Connect("127.0.0.1", tcp_port, token);
  if (!connected.ok()) return connected.error().ToString();
  client::Client& connection = **connected;
  const uint32_t batch_max =
      std::min(kFillBatchEventsMax, std::max<uint32_t>(1, connection.welcome().batch_events_max));
  LoadEventMaker maker('C', 0, client);
  std::vector<std::string> batch;
  while (true) {
    const int64_t taken = remaining.fetch_sub(batch_max);
    if (taken <= 0) return "";
    batch.clear();
    for (int64_t i = 0; i < std::min<int64_t>(taken, batch_max); ++i) {
      batch.push_back(maker.Next().json);
    }
    if (std::string failed = AppendBatch(connection, batch); !failed.empty()) return failed;
  }
}

}  // namespace

uint64_t FillLedger(uint16_t tcp_port, const std::vector<std::string>& clerk_tokens, uint64_t head,
                    uint64_t target_events, std::string* error) {
  if (head >= target_events) return head;
  std::atomic<int64_t> remaining{static_cast<int64_t>(target_events - head)};
  std::mutex mutex;
  std::vector<std::thread> threads;
  const size_t connections = std::min(kFillConnections, clerk_tokens.size());
  for (size_t client = 0; client < connections; ++client) {
    threads.emplace_back([&, client] {
      std::string failed =
          FillFrom(tcp_port, clerk_tokens[client], static_cast<int>(client), remaining);
      std::lock_guard lock(mutex);
      if (!failed.empty() && error->empty()) *error = "filling the ledger: " + failed;
    });
  }
  for (std::thread& thread : threads) thread.join();
  return error->empty() ? target_events : 0;
}

uint64_t LedgerHead(uint16_t tcp_port, const std::string& reader_token, std::string* error) {
  auto connected = client::Client::Connect("127.0.0.1", tcp_port, reader_token);
  if (!connected.ok()) {
    *error = "reader connect: " + connected.error().ToString();
    return 0;
  }
  client::SubscribeOptions options;
  options.credit = 1;
  auto subscribed = (*connected)->Subscribe(options);
  if (!subscribed.ok()) {
    *error = "subscribe: " + subscribed.error().ToString();
    return 0;
  }
  return (*subscribed)->head_at_start();
}

CatchUpRead ReadLedger(uint16_t tcp_port, const std::string& reader_token, std::string* error) {
  CatchUpRead read;
  auto connected = client::Client::Connect("127.0.0.1", tcp_port, reader_token);
  if (!connected.ok()) {
    *error = "subscriber connect: " + connected.error().ToString();
    return read;
  }
  client::SubscribeOptions options;
  options.from_position = 1;
  options.credit = std::max<uint32_t>(options.credit, (*connected)->welcome().credit_max);
  const auto started = std::chrono::steady_clock::now();
  auto subscribed = (*connected)->Subscribe(options);
  if (!subscribed.ok()) {
    *error = "subscribe: " + subscribed.error().ToString();
    return read;
  }
  client::Subscription& subscription = **subscribed;
  const uint64_t head = subscription.head_at_start();
  uint64_t next_position = 1;
  while (next_position <= head) {
    auto frame = subscription.Next();
    if (!frame.ok()) {
      *error = "subscription: " + frame.error().ToString();
      return read;
    }
    read.events += frame->events.size();
    for (size_t i = 0; i < frame->events.size(); ++i) {
      read.envelope_bytes += frame->events.envelope(i).size();
    }
    next_position = frame->next_position;
  }
  read.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (read.events != head) {
    *error = "subscription delivered " + std::to_string(read.events) + " events, head " +
             std::to_string(head);
  }
  return read;
}

}  // namespace gridledger::bench
