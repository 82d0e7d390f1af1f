// A hostile server, played by the emulator's raw event publication: 1 MB events while the
// handler does not return (the queue stays within its byte bound and the process's memory with
// it), replay ids that are negative, out of range or not integers (never committed, warned
// about), invalid UTF-8 and pretty-printed JSON (delivered like any other event).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emulator/cometd/cometd_server.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;

const std::string hostile_channel = "/u/Hostile";

/// The resident set size of this process (VmRSS), in bytes; 0 when /proc is not readable.
std::size_t resident_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0)
      return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024;
  }
  return 0;
}

/// The number an event carries: its text holds "#<n>#".
std::optional<int> number_of(std::string_view text) {
  const auto at = text.find('#');
  if (at == std::string_view::npos) return std::nullopt;
  const auto end = text.find('#', at + 1);
  if (end == std::string_view::npos) return std::nullopt;
  int n = 0;
  for (char ch : text.substr(at + 1, end - at - 1)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + (ch - '0');
  }
  return n;
}

struct log_lines {
  std::mutex mutex;
  std::vector<std::string> warnings;
  sfstream::logger logger() {
    sfstream::logger l;
    l.min_level = sfstream::log_level::warning;
    l.sink = [this](sfstream::log_level level, std::string_view text) {
      if (level < sfstream::log_level::warning) return;
      std::lock_guard lock{mutex};
      warnings.emplace_back(text);
    };
    return l;
  }
};

sfstream::client_config client_options(emulator_fixture& org, io_thread& io) {
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
  config.network = net;
  config.jitter_seed = 3;
  config.backoff_initial = 10ms;
  config.backoff_max = 50ms;
  config.disconnect_timeout = 200ms;
  return config;
}

void declare(emulator_fixture& org) {
  org.call([](org_emulator& o) {
    o.events().declare_channel(hostile_channel, sfstream::emulator::retention::hours_24);
    return 0;
  });
}

std::int64_t publish_raw(emulator_fixture& org, const std::string& data) {
  return org.call([&](org_emulator& o) { return o.cometd().publish_raw(hostile_channel, data); });
}

struct delivered {
  std::mutex mutex;
  std::vector<int> numbers;
  std::vector<std::optional<std::int64_t>> replay_ids;
  std::vector<std::string> texts;
  void add(const sfstream::event& e, bool keep_text) {
    std::lock_guard lock{mutex};
    numbers.push_back(number_of(e.json()).value_or(-1));
    replay_ids.push_back(e.replay_id());
    if (keep_text) texts.emplace_back(e.json());
  }
  std::size_t size() {
    std::lock_guard lock{mutex};
    return numbers.size();
  }
};

std::vector<int> upto(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i);
  return out;
}

}  // namespace

// Long end-to-end cases: the doctest suite "heavy" (CTest label heavy) runs once, in the
// normal build; the sanitizer build covers the same code with the other suites.
TEST_SUITE_BEGIN("heavy");

TEST_CASE(
    "1 MB events with a handler that does not return for a while keep the queue within its byte "
    "bound") {
  emulator_fixture org;
  declare(org);
  io_thread io;
  io_thread handlers;
  auto config = client_options(org, io);
  config.queue_max_bytes = 8u << 20;
  const std::size_t body_limit = config.network.max_body_bytes;
  const std::size_t byte_bound = config.queue_max_bytes;
  delivered seen;
  std::atomic<bool> release{false};
  sfstream::client client(io.executor(), handlers.executor(), std::move(config));
  sfstream::subscription_callbacks callbacks;
  callbacks.on_event = [&](const sfstream::event& e) {
    // The first event holds the handler until the test lets go (bounded: 30 s).
    if (seen.size() == 0) wait_until([&] { return release.load(); }, 30s);
    seen.add(e, false);
  };
  std::atomic<int> subscribed{0};
  callbacks.on_subscribed = [&](std::int64_t) { ++subscribed; };
  REQUIRE_FALSE(client.subscribe(hostile_channel, sfstream::replay_all, callbacks));
  std::atomic<bool> done{false};
  client.async_run([&](std::error_code) { done = true; });
  REQUIRE(wait_until([&] { return subscribed.load() >= 1; }));

  const std::size_t rss_before = resident_bytes();
  constexpr int events = 40;
  for (int i = 0; i < events; ++i) {
    const std::string data = R"({"event":{"replayId":{{replayId}}},"payload":"#)" +
                             std::to_string(i) + "#" + std::string(1'000'000, 'x') + "\"}";
    publish_raw(org, data);
  }
  // The stream pauses on the byte bound while the handler is stuck.
  CHECK(wait_until([&] { return client.metrics().pauses >= 1; }, 20s));
  std::this_thread::sleep_for(500ms);
  const auto held = client.metrics();
  const std::size_t rss_held = resident_bytes();
  release = true;
  REQUIRE(wait_until([&] { return seen.size() >= static_cast<std::size_t>(events); }, 60s));
  std::this_thread::sleep_for(300ms);
  const auto after = client.metrics();
  const std::size_t rss_after = resident_bytes();
  std::printf(
      "hostile server: %d events of 1 MB | queue bytes high water %zu (bound %zu) | pauses %llu | "
      "RSS before %zu MiB, "
      "while held %zu MiB, after %zu MiB\n",
      events, after.queue_bytes_high_water, byte_bound,
      static_cast<unsigned long long>(after.pauses), rss_before >> 20, rss_held >> 20,
      rss_after >> 20);
  std::lock_guard lock{seen.mutex};
  CHECK(seen.numbers == upto(events));
  // One reply may arrive on top of a queue just under the bound; never more than that.
  CHECK(held.queue_bytes <= byte_bound + body_limit);
  CHECK(after.queue_bytes_high_water <= byte_bound + body_limit);
  CHECK(after.pauses >= 1);
  // The emulator in this process keeps its 40 MB of events (twice: data and message); the
  // client adds its bounded queue and one reply buffer.
  if (rss_before != 0) CHECK(rss_held < rss_before + (200u << 20));
  client.cancel();
  CHECK(wait_until([&] { return done.load(); }, 10s));
}

TEST_CASE(
    "negative, out-of-range and non-integer replay ids from the server are never committed and are "
    "warned about") {
  emulator_fixture org;
  declare(org);
  io_thread io;
  log_lines logs;
  auto config = client_options(org, io);
  config.log = logs.logger();
  delivered seen;
  sfstream::client client(io.executor(), std::move(config));
  std::atomic<int> subscribed{0};
  sfstream::subscription_callbacks callbacks;
  callbacks.on_event = [&](const sfstream::event& e) { seen.add(e, false); };
  callbacks.on_subscribed = [&](std::int64_t) { ++subscribed; };
  REQUIRE_FALSE(client.subscribe(hostile_channel, sfstream::replay_new, callbacks));
  std::atomic<bool> done{false};
  client.async_run([&](std::error_code) { done = true; });
  REQUIRE(wait_until([&] { return subscribed.load() >= 1; }));

  std::atomic<bool> watching{true};
  std::atomic<int> negative_commits{0};
  std::set<std::int64_t> committed_seen;
  std::mutex committed_mutex;
  std::thread watcher([&] {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (watching && std::chrono::steady_clock::now() < until) {
      if (auto id = client.committed_replay_id(hostile_channel)) {
        if (*id < 0) ++negative_commits;
        std::lock_guard lock{committed_mutex};
        committed_seen.insert(*id);
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  const std::int64_t first =
      publish_raw(org, R"({"event":{"replayId":{{replayId}}},"payload":"#0#"})");
  REQUIRE(wait_until([&] { return client.committed_replay_id(hostile_channel) == first; }));
  const std::vector<std::string> bogus = {
      R"({"event":{"replayId":-5},"payload":"#1#"})",
      R"({"event":{"replayId":-1},"payload":"#2#"})",
      R"({"event":{"replayId":99999999999999999999},"payload":"#3#"})",
      R"({"event":{"replayId":1.5},"payload":"#4#"})",
      R"({"event":{"replayId":"17"},"payload":"#5#"})",
  };
  for (const auto& data : bogus) publish_raw(org, data);
  const std::int64_t last =
      publish_raw(org, R"({"event":{"replayId":{{replayId}}},"payload":"#6#"})");
  REQUIRE(wait_until([&] { return client.committed_replay_id(hostile_channel) == last; }));
  std::this_thread::sleep_for(200ms);
  watching = false;
  watcher.join();

  CHECK(negative_commits.load() == 0);
  {
    std::lock_guard lock{committed_mutex};
    for (auto id : committed_seen) {
      CAPTURE(id);
      CHECK((id == first || id == last));
    }
  }
  {
    // The good events are delivered with their ids; each bogus one is delivered without a
    // position (a string is not an integer either, whatever it spells) or refused.
    std::lock_guard lock{seen.mutex};
    CHECK(seen.numbers.front() == 0);
    CHECK(seen.numbers.back() == 6);
    CHECK(seen.replay_ids.front() == first);
    CHECK(seen.replay_ids.back() == last);
    for (std::size_t i = 0; i < seen.numbers.size(); ++i) {
      CAPTURE(seen.numbers[i]);
      if (seen.numbers[i] >= 1 && seen.numbers[i] <= 5) CHECK_FALSE(seen.replay_ids[i].has_value());
    }
  }
  std::lock_guard lock{logs.mutex};
  std::string warned;
  {
    std::lock_guard seen_lock{seen.mutex};
    for (std::size_t i = 0; i < seen.numbers.size(); ++i) {
      warned += "event #" + std::to_string(seen.numbers[i]) + " replay id " +
                (seen.replay_ids[i] ? std::to_string(*seen.replay_ids[i]) : std::string("none")) +
                "\n";
    }
  }
  for (const auto& w : logs.warnings) warned += w + "\n";
  CAPTURE(warned);
  CHECK(logs.warnings.size() >= bogus.size());
  client.cancel();
  CHECK(wait_until([&] { return done.load(); }, 10s));
}

TEST_CASE("pretty-printed JSON and invalid UTF-8 in events are delivered in order and committed") {
  emulator_fixture org;
  declare(org);
  io_thread io;
  delivered seen;
  sfstream::client client(io.executor(), client_options(org, io));
  std::atomic<int> subscribed{0};
  sfstream::subscription_callbacks callbacks;
  callbacks.on_event = [&](const sfstream::event& e) { seen.add(e, true); };
  callbacks.on_subscribed = [&](std::int64_t) { ++subscribed; };
  REQUIRE_FALSE(client.subscribe(hostile_channel, sfstream::replay_new, callbacks));
  std::atomic<bool> done{false};
  client.async_run([&](std::error_code) { done = true; });
  REQUIRE(wait_until([&] { return subscribed.load() >= 1; }));

  std::vector<std::int64_t> ids;
  ids.push_back(publish_raw(
      org, "{\n  \"event\": {\n    \"replayId\": {{replayId}}\n  },\n  \"payload\": \"#0#\"\n}"));
  ids.push_back(publish_raw(
      org, "{\"event\":{\"replayId\":{{replayId}}},\"payload\":\"#1# \xff\xfe \xc3\x28\"}"));
  ids.push_back(publish_raw(
      org, "{\r\n\t\"payload\" : \"#2#\" ,\r\n\t\"event\" : { \"replayId\" : {{replayId}} }\r\n}"));
  REQUIRE(wait_until([&] { return seen.size() >= 3; }));
  CHECK(wait_until([&] { return client.committed_replay_id(hostile_channel) == ids.back(); }, 5s));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock{seen.mutex};
  CHECK(seen.numbers == upto(3));
  REQUIRE(seen.replay_ids.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(seen.replay_ids[i] == ids[i]);
  client.cancel();
  CHECK(wait_until([&] { return done.load(); }, 10s));
}

TEST_SUITE_END();
