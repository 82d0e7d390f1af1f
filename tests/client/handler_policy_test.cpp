// What follows a failed handler or a failed store save, against the org emulator: the
// policies stop, retry and dead_letter, a handler that reports failure by return value, a store
// that cannot save, and a byte-bounded queue that pauses and resumes.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/connector.hpp"
#include "sfstream/credentials.hpp"
#include "support/client_helpers.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::running_client;
using sfstream::testing::wait_until;
using namespace sfstream::testing;

}  // namespace

TEST_CASE(
    "a handler that throws once under the retry policy is called again and its event committed "
    "once") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;
  config.on_handler_failure.action = sfstream::handler_failure::retry;
  config.on_handler_failure.max_retries = 3;
  config.on_handler_failure.retry_backoff_initial = 10ms;
  running_client c{io, std::move(config)};
  calls seen;
  std::atomic<int> throws{0};
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) {
    seen.add(e);
    if (name_of(e) == "R1" && throws.fetch_add(1) == 0) throw std::runtime_error("database busy");
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "R", 0, 3);
  REQUIRE(wait_until([&] { return seen.size() == 4; }));
  const auto last = seen.id_of("R2");
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == last; }));
  CHECK(seen.names() == std::vector<std::string>{"R0", "R1", "R1", "R2"});
  // Positions are saved in increasing order, none twice: the retried event was committed once.
  const auto saved = store->saved_ids();
  CHECK(std::adjacent_find(saved.begin(), saved.end(),
                           [](std::int64_t a, std::int64_t b) { return a >= b; }) == saved.end());
  CHECK(saved.back() == last);
  CHECK(c.client->metrics().handler_failures == 1);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE(
    "a handler that throws under the stop policy ends the run with handler_failed before its "
    "event") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;  // the default policy is stop
  running_client c{io, std::move(config)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) {
    seen.add(e);
    if (name_of(e) == "S1") throw std::runtime_error("cannot write the row");
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "S", 0, 3);
  REQUIRE(wait_until([&] { return c.done.load(); }));
  CHECK(c.result == sfstream::errc::handler_failed);
  CHECK(seen.names() == std::vector<std::string>{"S0", "S1"});
  CHECK(c.client->committed_replay_id(topic) == seen.id_of("S0"));
  CHECK(store->saved_ids() == std::vector<std::int64_t>{seen.id_of("S0")});
  const auto why = c.client->last_error();
  CHECK(why.code == sfstream::errc::handler_failed);
  CHECK(why.diag.server_text == "threw: cannot write the row");
  CHECK(why.diag.context == "handling " + topic + " replay id " + std::to_string(seen.id_of("S1")));
}

TEST_CASE(
    "a handler that throws under a subscription's dead_letter policy has its event appended to "
    "the file and committed past it") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  temp_path dead{"dead-letters.jsonl"};
  auto config = soap_config(org, io);  // the client's own policy stays stop
  running_client c{io, std::move(config)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) {
    seen.add(e);
    if (name_of(e) == "D1") throw std::runtime_error("no such customer");
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  sfstream::handler_failure_policy policy;
  policy.action = sfstream::handler_failure::dead_letter;
  policy.dead_letter_path = dead.path;
  cbs.on_failure = policy;
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "D", 0, 3);
  REQUIRE(wait_until([&] { return seen.size() == 3; }));
  const auto last = seen.id_of("D2");
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == last; }));
  CHECK(seen.names() == numbered("D", 0, 3));
  const auto failed = seen.event_of("D1");
  const std::string id = std::to_string(*failed.replay_id());
  const std::string expected =
      "{\"channel\":\"" + topic + "\",\"replayId\":" + id +
      ",\"error\":\"An event handler failed; its event was not committed. "
      "(handling " +
      topic + " replay id " + id +
      ": threw: no such customer)\",\"event\":" + std::string(failed.json()) + "}";
  CHECK(lines_of(dead.path) == std::vector<std::string>{expected});
  CHECK(c.client->metrics().dead_letters == 1);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE("the dead_letter policy without a file is refused when subscribing") {
  io_thread io;
  sfstream::client_config config;
  config.credentials = sfstream::make_static_token_provider(io.executor(), {});
  sfstream::client c{io.executor(), config};
  sfstream::subscription_callbacks cbs;
  sfstream::handler_failure_policy policy;
  policy.action = sfstream::handler_failure::dead_letter;
  cbs.on_failure = policy;
  CHECK(c.subscribe(topic, sfstream::replay_new, cbs).code == sfstream::errc::invalid_config);
}

TEST_CASE(
    "a handler that returns a failure status ends the run with handler_failed and keeps its "
    "cause") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  running_client c{io, soap_config(org, io)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event_status = [&](const sfstream::event& e) -> sfstream::error_info {
    seen.add(e);
    if (name_of(e) == "T1") {
      return {std::make_error_code(std::errc::no_space_on_device), {"", "warehouse full", ""}};
    }
    return {};
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "T", 0, 3);
  REQUIRE(wait_until([&] { return c.done.load(); }));
  CHECK(c.result == sfstream::errc::handler_failed);
  CHECK(seen.names() == std::vector<std::string>{"T0", "T1"});
  CHECK(c.client->committed_replay_id(topic) == seen.id_of("T0"));
  const auto why = c.client->last_error();
  CHECK(why.cause == std::make_error_code(std::errc::no_space_on_device));
  CHECK(why.diag.server_text.find("warehouse full") != std::string::npos);
}

TEST_CASE("a replay store that cannot save ends the run with replay_store_io after bounded tries") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>(1);  // the first save works, every later one fails
  auto config = soap_config(org, io);
  config.store = store;
  config.store_save_attempts = 3;
  running_client c{io, std::move(config)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) { seen.add(e); };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "W", 0, 1);
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == seen.id_of("W0"); }));
  create_accounts(org, "W", 1, 3);
  REQUIRE(wait_until([&] { return c.done.load(); }));
  CHECK(c.result == sfstream::errc::replay_store_io);
  CHECK(store->attempts() == 1 + 3);
  CHECK(store->saved_ids() == std::vector<std::int64_t>{seen.id_of("W0")});
  CHECK(c.client->committed_replay_id(topic) == seen.id_of("W0"));
  CHECK(c.client->last_error().diag.server_text == "disk full");
}

TEST_CASE(
    "a queue bounded in bytes pauses the stream and resumes it with every event once and in "
    "order") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto config = soap_config(org, io);
  config.queue_max_bytes = 1;  // every event fills the queue
  running_client c{io, std::move(config)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) {
    std::this_thread::sleep_for(20ms);  // a slow handler
    seen.add(e);
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "B", 0, 10);
  REQUIRE(wait_until([&] { return seen.size() >= 10; }, 30s));
  const auto last = seen.id_of("B9");
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == last; }));
  CHECK(seen.names() == numbered("B", 0, 10));
  const auto m = c.client->metrics();
  CHECK(m.pauses >= 1);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE("a connector whose credentials run on its own I/O executor authenticates and streams") {
  emulator_fixture org;
  create_topic(org);
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  sfstream::connector conn{[&](boost::asio::any_io_executor io) {
    sfstream::client_config config;
    config.credentials = sfstream::make_soap_login_provider(io, login, net);
    config.network = net;
    return config;
  }};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) { seen.add(e); };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(conn.subscribe(topic, sfstream::replay_new, cbs));
  conn.start();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "K", 0, 2);
  REQUIRE(wait_until([&] { return seen.size() == 2; }));
  CHECK(seen.names() == numbered("K", 0, 2));
  CHECK_FALSE(conn.stop());
}

TEST_CASE(
    "a stop is not held up by a handler under the retry policy: the waiting retry runs at "
    "once, is the last, and its event stays uncommitted") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;
  config.on_handler_failure.action = sfstream::handler_failure::retry;
  config.on_handler_failure.max_retries = 1000;
  config.on_handler_failure.retry_backoff_initial = 60s;  // far beyond the test's bounds
  config.on_handler_failure.retry_backoff_max = 60s;
  running_client c{io, std::move(config)};
  calls seen;
  sfstream::subscription_callbacks cbs;
  cbs.on_event = [&](const sfstream::event& e) {
    seen.add(e);
    if (name_of(e) == "T1") throw std::runtime_error("receiver down");
  };
  cbs.on_subscribed = [&](std::int64_t) { seen.subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  create_accounts(org, "T", 0, 3);
  REQUIRE(wait_until([&] { return seen.size() == 2; }));  // T0, then T1 failed once
  REQUIRE(wait_until([&] { return c.client->metrics().handler_failures == 1; }));
  std::this_thread::sleep_for(200ms);  // its retry is waiting out the backoff
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(c.stop());  // within 10 s, not after a 60 s backoff
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(c.result == sfstream::errc::handler_failed);
  CHECK(c.client->last_error().diag.context.find("not retried: the client is stopping") !=
        std::string::npos);
  // T1 was tried once more when the stop came, and nothing after it was handled.
  CHECK(seen.names() == std::vector<std::string>{"T0", "T1", "T1"});
  CHECK(c.client->committed_replay_id(topic) == seen.id_of("T0"));
  CHECK(store->saved_ids().back() == seen.id_of("T0"));
}
