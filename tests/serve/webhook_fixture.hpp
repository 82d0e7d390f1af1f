// What the webhook sink tests share: a receiver, a two-thread pool the sink works on (as in
// the service), events made up for a channel, and a delivery run to its done() with a bound.
#pragma once

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serve/webhook_sink.hpp"
#include "support/webhook_receiver.hpp"

namespace webhook_test {

using namespace std::chrono_literals;
using sfstream::event;
using sfstream::serve::webhook_options;
using sfstream::serve::webhook_sink;

inline constexpr const char* signing_key = "whsec-test-0123456789-abcdefghijklmnop";

/// `count` events of `channel` with replay ids from `first` on, each a PushTopic-shaped message
/// with a name and `padding` bytes of filler.
inline std::vector<event> make_events(const std::string& channel, std::int64_t first,
                                      std::size_t count, std::size_t padding = 0) {
  std::vector<event> out;
  for (std::size_t i = 0; i < count; ++i) {
    const auto id = first + static_cast<std::int64_t>(i);
    out.emplace_back(channel, id,
                     "{\"channel\":\"" + channel + "\",\"data\":{\"event\":{\"replayId\":" +
                         std::to_string(id) + ",\"type\":\"created\"},\"sobject\":{\"Name\":\"n-" +
                         std::to_string(id) + "\",\"Pad\":\"" + std::string(padding, 'x') +
                         "\"}}}");
  }
  return out;
}

/// The replay ids a request body carries, in order (empty when it is not the documented shape).
inline std::vector<std::int64_t> ids_in(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  std::vector<std::int64_t> ids;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("events") ||
      !doc["events"].IsArray()) {
    return ids;
  }
  for (const auto& e : doc["events"].GetArray()) {
    ids.push_back(e["data"]["event"]["replayId"].GetInt64());
  }
  return ids;
}

/// How one deliver() ended.
struct outcome {
  std::size_t handled = 0;
  sfstream::error_info error;
  int calls = 0;
  std::chrono::milliseconds elapsed{0};
};

class delivery {
 public:
  delivery(webhook_sink& sink, const std::string& connection, const std::string& channel,
           std::vector<event> events)
      : state_(std::make_shared<state>()) {
    state_->events = std::move(events);
    state_->started = std::chrono::steady_clock::now();
    auto s = state_;
    sink.deliver(connection, channel, s->events,
                 [s](std::size_t handled, sfstream::error_info error) {
                   std::lock_guard lock(s->mutex);
                   if (++s->result.calls == 1) {
                     s->result.handled = handled;
                     s->result.error = std::move(error);
                     s->result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - s->started);
                     s->promise.set_value();
                   }
                 });
  }
  /// Waits for done() (bounded), then a moment more to see a second call if there is one.
  outcome wait(std::chrono::milliseconds limit = 20s) {
    const bool finished = state_->future.wait_for(limit) == std::future_status::ready;
    REQUIRE_MESSAGE(finished, "done() was not called within the bound");
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(state_->mutex);
    return state_->result;
  }
  bool finished_within(std::chrono::milliseconds limit) {
    return state_->future.wait_for(limit) == std::future_status::ready;
  }

 private:
  struct state {
    std::vector<event> events;
    std::chrono::steady_clock::time_point started;
    std::mutex mutex;
    outcome result;
    std::promise<void> promise;
    std::future<void> future = promise.get_future();
  };
  std::shared_ptr<state> state_;
};

/// A receiver and a sink posting to it; `configure` adjusts the options before the sink is made.
struct fixture {
  std::optional<sfstream::emulator::net::server_tls> tls;
  sfstream::testing::webhook_receiver receiver;
  boost::asio::thread_pool pool{2};
  std::mutex log_mutex;
  std::vector<std::string> log_lines;
  webhook_options options;
  std::shared_ptr<webhook_sink> sink;
  std::filesystem::path dir;

  explicit fixture(std::optional<sfstream::emulator::net::server_tls> server_tls = std::nullopt)
      : tls(server_tls), receiver(signing_key, server_tls) {
    static std::atomic<int> counter{0};
    dir = std::filesystem::temp_directory_path() /
          ("sfstream-webhook-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir);
    options.url = receiver.url("/hook");
    options.signing_key = signing_key;
    options.backoff_initial = 10ms;
    options.backoff_max = 50ms;
    options.request_timeout = 5s;
    options.network.proxy_from_environment = false;
    options.log.min_level = sfstream::log_level::debug;
    options.log.sink = [this](sfstream::log_level, std::string_view line) {
      std::lock_guard lock(log_mutex);
      log_lines.emplace_back(line);
    };
  }
  ~fixture() {
    if (sink) sink->stop();
    pool.stop();
    pool.join();
    sink.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  webhook_sink& start() {
    sfstream::error_info why;
    sink = webhook_sink::create(pool.get_executor(), options, &why);
    REQUIRE_MESSAGE(sink, why.to_string());
    return *sink;
  }

  outcome deliver(const std::string& channel, std::vector<event> events,
                  const std::string& connection = "acme") {
    delivery d(*sink, connection, channel, std::move(events));
    return d.wait();
  }

  std::vector<std::string> logs() {
    std::lock_guard lock(log_mutex);
    return log_lines;
  }
};

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace webhook_test
