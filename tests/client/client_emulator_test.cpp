// The streaming client against the org emulator over HTTPS on loopback: the real Asio, Beast,
// TLS, SOAP login and CometD path, with the emulator's fault controls.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/connector.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;

/// What one subscription saw, thread-safe.
struct recorder {
  mutable std::mutex mutex;
  std::vector<sfstream::event> events;
  std::vector<sfstream::gap_record> gaps;
  std::vector<sfstream::error_info> rejections;
  std::vector<std::int64_t> subscribed_from;
  std::vector<std::string> log_lines;

  sfstream::subscription_callbacks callbacks() {
    sfstream::subscription_callbacks c;
    c.on_event = [this](const sfstream::event& e) {
      std::lock_guard lock{mutex};
      events.push_back(e);
    };
    c.on_gap = [this](const sfstream::gap_record& g) {
      std::lock_guard lock{mutex};
      gaps.push_back(g);
    };
    c.on_rejected = [this](const sfstream::error_info& e) {
      std::lock_guard lock{mutex};
      rejections.push_back(e);
    };
    c.on_subscribed = [this](std::int64_t from) {
      std::lock_guard lock{mutex};
      subscribed_from.push_back(from);
    };
    return c;
  }
  std::size_t event_count() const {
    std::lock_guard lock{mutex};
    return events.size();
  }
  std::size_t subscribed_count() const {
    std::lock_guard lock{mutex};
    return subscribed_from.size();
  }
  std::vector<std::int64_t> replay_ids() const {
    std::lock_guard lock{mutex};
    std::vector<std::int64_t> out;
    for (auto& e : events) out.push_back(e.replay_id().value_or(-100));
    return out;
  }
  std::vector<std::string> names() const {
    std::lock_guard lock{mutex};
    std::vector<std::string> out;
    for (auto& e : events) {
      auto p = e.as_pushtopic();
      auto at = p.sobject_json.find("\"Name\":\"");
      if (at == std::string::npos) continue;
      at += 8;
      out.push_back(p.sobject_json.substr(at, p.sobject_json.find('"', at) - at));
    }
    return out;
  }
};

/// A client configuration that logs in through SOAP with the emulator's demo user.
sfstream::client_config soap_config(emulator_fixture& org, io_thread& io,
                                    sfstream::logger log = {}) {
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net, log);
  config.network = net;
  config.log = std::move(log);
  config.jitter_seed = 7;
  return config;
}

void create_topic(emulator_fixture& org, const std::string& name = "AccountUpdates") {
  auto result = org.call([&](sfstream::emulator::org_emulator& o) {
    sfstream::emulator::data::pushtopic_spec spec;
    spec.name = name;
    spec.query = "SELECT Id, Name FROM Account";
    return o.rest().create_pushtopic(spec);
  });
  REQUIRE(static_cast<bool>(result));
}

std::string create_account(emulator_fixture& org, const std::string& name) {
  auto result = org.call([&](sfstream::emulator::org_emulator& o) {
    return o.rest().create_record("Account", "{\"Name\":\"" + name + "\"}");
  });
  REQUIRE(static_cast<bool>(result));
  return result.id;
}

std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

using sfstream::testing::running_client;

}  // namespace

TEST_CASE("the client streams PushTopic events from the emulator in order and commits them") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  for (auto& name : numbered("Acme ", 0, 5)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.event_count() == 5; }));
  CHECK(seen.names() == numbered("Acme ", 0, 5));
  const auto ids = seen.replay_ids();
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == 5);
  REQUIRE(wait_until(
      [&] { return c.client->committed_replay_id("/topic/AccountUpdates") == ids.back(); }));
  const auto m = c.client->metrics();
  CHECK(m.events == 5);
  CHECK(m.handshakes >= 1);
  CHECK(m.channels.at("/topic/AccountUpdates").events == 5);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
  CHECK(c.client->state() == sfstream::client_state::closed);
}

TEST_CASE(
    "a client the emulator forgot re-handshakes and resumes from the committed id without loss") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  for (auto& name : numbered("A", 0, 3)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.event_count() == 3; }));
  REQUIRE(wait_until(
      [&] { return c.client->committed_replay_id("/topic/AccountUpdates").has_value(); }));
  org.call([](sfstream::emulator::org_emulator& o) {
    o.forget_all_clients();
    return 0;
  });
  for (auto& name : numbered("A", 3, 8)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.event_count() >= 8; }));
  std::this_thread::sleep_for(300ms);
  CHECK(seen.names() == numbered("A", 0, 8));
  CHECK(c.client->metrics().handshakes >= 2);
  REQUIRE(c.stop());
}

TEST_CASE("an expired session is refreshed through a new login and the stream continues") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  create_account(org, "before");
  REQUIRE(wait_until([&] { return seen.event_count() == 1; }));
  org.call([](sfstream::emulator::org_emulator& o) {
    o.expire_all_sessions();
    return 0;
  });
  // The held connect is answered with 401 at the latest when the hold ends.
  REQUIRE(wait_until([&] { return c.client->metrics().authentications >= 2; }));
  REQUIRE(wait_until([&] { return seen.subscribed_count() >= 2; }));
  create_account(org, "after");
  REQUIRE(wait_until([&] { return seen.event_count() == 2; }));
  CHECK(seen.names() == std::vector<std::string>{"before", "after"});
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE("a full queue pauses the client and it resumes from the committed id with every event") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder seen;
  auto config = soap_config(org, io);
  config.queue_capacity = 4;
  running_client c{io, std::move(config)};
  auto callbacks = seen.callbacks();
  auto record = callbacks.on_event;
  callbacks.on_event = [record](const sfstream::event& e) {
    std::this_thread::sleep_for(40ms);  // a slow handler
    record(e);
  };
  // Handlers share the I/O thread here: slow handlers must still not lose anything.
  REQUIRE_FALSE(c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, callbacks));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  org.call([](sfstream::emulator::org_emulator& o) {
    for (int i = 0; i < 20; ++i)
      o.rest().create_record("Account", "{\"Name\":\"S" + std::to_string(i) + "\"}");
    return 0;
  });
  REQUIRE(wait_until([&] { return seen.event_count() >= 20; }, 30s));
  std::this_thread::sleep_for(300ms);
  const auto names = seen.names();
  // At-least-once: every event arrives, in order after removing re-deliveries.
  std::vector<std::string> unique;
  for (auto& n : names) {
    if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
  }
  CHECK(unique == numbered("S", 0, 20));
  CHECK(c.client->metrics().queue_high_water <= 4 + 20);
  REQUIRE(c.stop());
}

TEST_CASE(
    "a restarted client resumes from its file replay store and receives exactly the missed "
    "events") {
  emulator_fixture org;
  create_topic(org);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sfstream-client-store-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "replay.json";
  std::filesystem::remove(path);
  {
    io_thread io;
    recorder seen;
    auto config = soap_config(org, io);
    config.store = sfstream::open_file_replay_store(path);
    running_client c{io, std::move(config)};
    REQUIRE_FALSE(
        c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
    c.run();
    REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
    for (auto& name : numbered("R", 0, 3)) create_account(org, name);
    REQUIRE(wait_until([&] { return seen.event_count() == 3; }));
    REQUIRE(c.stop());
  }
  for (auto& name : numbered("R", 3, 6)) create_account(org, name);  // while no client runs
  {
    io_thread io;
    recorder seen;
    auto config = soap_config(org, io);
    config.store = sfstream::open_file_replay_store(path);
    running_client c{io, std::move(config)};
    REQUIRE_FALSE(
        c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
    c.run();
    REQUIRE(wait_until([&] { return seen.event_count() == 3; }));
    std::this_thread::sleep_for(300ms);
    CHECK(seen.names() == numbered("R", 3, 6));
    REQUIRE(c.stop());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "a stored position older than the channel's retention yields a gap record and falls back to "
    "-2") {
  emulator_fixture org;
  create_topic(org);
  create_account(org, "retained");
  io_thread io;
  recorder seen;
  auto config = soap_config(org, io);
  auto store = sfstream::make_memory_replay_store();
  REQUIRE_FALSE(store->save(
      {{"/topic/AccountUpdates", {5, std::chrono::system_clock::now() - std::chrono::hours(30)}}}));
  config.store = store;
  running_client c{io, std::move(config)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.event_count() == 1; }));
  {
    std::lock_guard lock{seen.mutex};
    REQUIRE(seen.gaps.size() == 1);
    CHECK(seen.gaps[0].cause == sfstream::gap_cause::expired);
    CHECK(seen.gaps[0].last_replay_id == 5);
    CHECK(seen.gaps[0].policy_taken == sfstream::replay_policy::earliest);
    CHECK(seen.gaps[0].resumed_from == sfstream::replay_all);
    REQUIRE(seen.subscribed_from.size() == 1);
    CHECK(seen.subscribed_from[0] == sfstream::replay_all);
  }
  CHECK(seen.names() == std::vector<std::string>{"retained"});
  REQUIRE(c.stop());
}

TEST_CASE("a rejected channel is reported while the other channels keep streaming") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder good, bad;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, good.callbacks()));
  REQUIRE_FALSE(c.client->subscribe("/topic/NoSuchTopic", sfstream::replay_new, bad.callbacks()));
  c.run();
  REQUIRE(wait_until([&] {
    std::lock_guard lock{bad.mutex};
    return !bad.rejections.empty();
  }));
  {
    std::lock_guard lock{bad.mutex};
    CHECK(bad.rejections[0].code == sfstream::errc::subscription_rejected);
    CHECK(bad.rejections[0].diag.to_string().find("does not exist") != std::string::npos);
  }
  REQUIRE(wait_until([&] { return good.subscribed_count() == 1; }));
  create_account(org, "still streaming");
  REQUIRE(wait_until([&] { return good.event_count() == 1; }));
  REQUIRE(c.stop());
}

TEST_CASE("dropped connections and 503 replies are retried without losing an event") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  create_account(org, "F0");
  REQUIRE(wait_until([&] { return seen.event_count() == 1; }));
  REQUIRE(wait_until(
      [&] { return c.client->committed_replay_id("/topic/AccountUpdates").has_value(); }));
  org.call([](sfstream::emulator::org_emulator& o) {
    o.drop_next_connections(1);
    o.fail_next_cometd_requests(2, sfstream::emulator::fault_kind::http_503);
    return 0;
  });
  for (auto& name : numbered("F", 1, 6)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.event_count() >= 6; }, 30s));
  std::this_thread::sleep_for(300ms);
  auto names = seen.names();
  std::vector<std::string> unique;
  for (auto& n : names) {
    if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
  }
  CHECK(unique == numbered("F", 0, 6));
  // A failed connect whose request was written is a lost reply (re-handshake); one that never
  // reached the server is a plain reconnect: either way the failures left a trace.
  const auto m = c.client->metrics();
  CHECK(m.reconnects_by_cause.size() + m.rehandshakes_by_cause.size() > 0);
  REQUIRE(c.stop());
}

TEST_CASE("the connector runs handlers on its own worker thread and stops gracefully") {
  emulator_fixture org;
  create_topic(org);
  io_thread login_io;
  auto config = soap_config(org, login_io);
  sfstream::connector conn{std::move(config)};
  std::mutex mutex;
  std::set<std::thread::id> handler_threads;
  std::atomic<int> events{0};
  std::atomic<bool> subscribed{false};
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event&) {
    std::lock_guard lock{mutex};
    handler_threads.insert(std::this_thread::get_id());
    ++events;
  };
  cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
  REQUIRE_FALSE(conn.subscribe("/topic/AccountUpdates", sfstream::replay_new, cbs));
  conn.start();
  REQUIRE(wait_until([&] { return subscribed.load(); }));
  for (auto& name : numbered("C", 0, 3)) create_account(org, name);
  REQUIRE(wait_until([&] { return events.load() == 3; }));
  CHECK(conn.running());
  auto result = conn.stop();
  CHECK_FALSE(result);
  CHECK_FALSE(conn.running());
  std::lock_guard lock{mutex};
  REQUIRE(handler_threads.size() == 1);
  CHECK(*handler_threads.begin() != std::this_thread::get_id());
}

TEST_CASE("no log line of a streaming client holds the password, token or session id") {
  emulator_fixture org;
  create_topic(org);
  std::mutex mutex;
  std::vector<std::string> lines;
  sfstream::logger log;
  log.min_level = sfstream::log_level::trace;
  log.sink = [&](sfstream::log_level, std::string_view text) {
    std::lock_guard lock{mutex};
    lines.emplace_back(text);
  };
  // The I/O thread is joined before the sink's lines go: a token fetch still in flight when
  // the client stops finishes (and logs) on that thread.
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io, log)};
  REQUIRE_FALSE(
      c.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed_count() == 1; }));
  create_account(org, "logged");
  REQUIRE(wait_until([&] { return seen.event_count() == 1; }));
  org.call([](sfstream::emulator::org_emulator& o) {
    o.expire_all_sessions();
    return 0;
  });
  REQUIRE(wait_until([&] { return c.client->metrics().authentications >= 2; }));
  REQUIRE(c.stop());
  const auto& user = org.org().options().users.front();
  std::lock_guard lock{mutex};
  REQUIRE(lines.size() > 5);
  const std::string org15 = org.org().options().org_id.substr(0, 15) + "!";
  for (auto& line : lines) {
    CHECK(line.find(user.password) == std::string::npos);
    CHECK(line.find(user.security_token) == std::string::npos);
    CHECK(line.find(org15) == std::string::npos);  // session ids are "<org15>!<token>"
  }
}

TEST_CASE(
    "the limit backoff is configurable: a client refused at the concurrent-client limit "
    "joins soon after a slot frees") {
  auto options = emulator_fixture::default_options();
  options.concurrent_client_limit = 1;
  emulator_fixture org(options);
  create_topic(org);
  std::atomic<int> refusals{0};
  sfstream::logger log;
  log.sink = [&](sfstream::log_level, std::string_view text) {
    if (text.find("concurrent clients") != std::string_view::npos) ++refusals;
  };
  io_thread io;  // joined before `refusals` goes
  recorder first_seen;
  auto first = std::make_unique<running_client>(io, soap_config(org, io));
  REQUIRE_FALSE(first->client->subscribe("/topic/AccountUpdates", sfstream::replay_new,
                                         first_seen.callbacks()));
  first->run();
  REQUIRE(wait_until([&] { return first_seen.subscribed_count() == 1; }));

  // The default would wait a minute or more after the refusal; this client retries quickly.
  auto config = soap_config(org, io, log);
  config.limit_backoff_initial = std::chrono::milliseconds(100);
  config.limit_backoff_max = std::chrono::milliseconds(200);
  recorder seen;
  running_client second{io, config};
  REQUIRE_FALSE(
      second.client->subscribe("/topic/AccountUpdates", sfstream::replay_new, seen.callbacks()));
  second.run();
  REQUIRE(wait_until([&] { return refusals.load() >= 2; }));  // refused, retried, refused
  CHECK(seen.subscribed_count() == 0);
  REQUIRE(first->stop());
  first.reset();
  REQUIRE(
      wait_until([&] { return seen.subscribed_count() == 1; }, std::chrono::milliseconds(10000)));
  create_account(org, "after the limit");
  REQUIRE(wait_until([&] { return seen.event_count() == 1; }));
  REQUIRE(second.stop());
}
