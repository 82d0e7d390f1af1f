// The asynchronous batch handler (subscription_callbacks::on_batch) against the org emulator:
// batches in order, completed later from another thread, committed only once done; a partial
// completion with an error under the retry, dead_letter and stop policies; a repeated or late
// completion.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <set>
#include <thread>

#include "support/client_helpers.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sfstream::testing;

/// Batches handed to on_batch and not yet completed, completed by the test's own thread.
struct pending_batches {
  struct one {
    std::vector<sfstream::event> events;
    sfstream::batch_done done;
  };
  std::mutex mutex;
  std::deque<one> waiting;
  std::vector<std::size_t> sizes;  ///< Size of every batch handed, in order.

  void add(std::span<const sfstream::event> events, sfstream::batch_done done) {
    std::lock_guard lock{mutex};
    waiting.push_back({{events.begin(), events.end()}, std::move(done)});
    sizes.push_back(events.size());
  }
  /// Takes the oldest batch handed out, waiting for it up to a bound.
  std::optional<one> take() {
    std::optional<one> out;
    wait_until([&] {
      std::lock_guard lock{mutex};
      if (waiting.empty()) return false;
      out = std::move(waiting.front());
      waiting.pop_front();
      return true;
    });
    return out;
  }
  std::size_t handed() {
    std::lock_guard lock{mutex};
    return sizes.size();
  }
};

std::vector<std::string> names_of(const std::vector<sfstream::event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(name_of(e));
  return out;
}

}  // namespace

TEST_CASE(
    "an asynchronous batch handler gets every event once in order and its positions are "
    "committed only after it is done") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;
  running_client c{io, std::move(config)};
  pending_batches batches;
  std::atomic<bool> subscribed{false};
  sfstream::subscription_callbacks cbs;
  cbs.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
    batches.add(events, std::move(done));
  };
  cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return subscribed.load(); }));
  create_accounts(org, "B", 0, 40);

  std::multiset<std::string> seen;
  std::vector<std::string> order;
  std::int64_t last_id = -1;
  while (order.size() < 40) {
    auto batch = batches.take();
    REQUIRE(batch.has_value());
    REQUIRE_FALSE(batch->events.empty());
    // Nothing of a batch is committed while its handler is not done.
    std::this_thread::sleep_for(20ms);
    CHECK(c.client->committed_replay_id(topic).value_or(-1) == last_id);
    for (const auto& name : names_of(batch->events)) {
      seen.insert(name);
      order.push_back(name);
    }
    last_id = *batch->events.back().replay_id();
    // Completed from this thread, not the handler executor's.
    batch->done(batch->events.size(), {});
    REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == last_id; }));
  }
  CHECK(order == numbered("B", 0, 40));
  for (const auto& name : numbered("B", 0, 40)) CHECK(seen.count(name) == 1);
  CHECK(store->saved_ids().back() == last_id);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE(
    "a batch done in part with an error under the retry policy is handed again from the "
    "failed event and each event is committed once") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;
  config.on_handler_failure.action = sfstream::handler_failure::retry;
  config.on_handler_failure.max_retries = 5;
  config.on_handler_failure.retry_backoff_initial = 10ms;
  running_client c{io, std::move(config)};
  pending_batches batches;
  std::atomic<bool> subscribed{false};
  sfstream::subscription_callbacks cbs;
  cbs.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
    batches.add(events, std::move(done));
  };
  cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
  // A retained backlog: the first reply carries all six events, so the first batch has them.
  create_accounts(org, "P", 0, 6);
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_all, cbs));
  c.run();

  // The first batch: confirm one event, fail the next. The same batch comes back from the
  // failed event on, and a completion of the old call changes nothing.
  std::vector<std::string> confirmed;
  auto first = batches.take();
  REQUIRE(first.has_value());
  const auto first_names = names_of(first->events);
  confirmed.push_back(first_names.front());
  const sfstream::batch_done stale = first->done;
  first->done(1, {sfstream::errc::handler_failed, {"", "receiver answered 503", "posting"}});
  stale(first->events.size(), {});  // a second completion of the same call is ignored
  auto again = batches.take();
  REQUIRE(again.has_value());
  REQUIRE(first_names.size() == 6);
  CHECK(names_of(again->events) == std::vector<std::string>(first_names.begin() + 1, first_names.end()));
  for (const auto& n : names_of(again->events)) confirmed.push_back(n);
  again->done(again->events.size(), {});
  while (confirmed.size() < 6) {
    auto more = batches.take();
    REQUIRE(more.has_value());
    for (const auto& n : names_of(more->events)) confirmed.push_back(n);
    more->done(more->events.size(), {});
  }
  CHECK(confirmed == numbered("P", 0, 6));
  const auto saved = store->saved_ids();
  CHECK(std::adjacent_find(saved.begin(), saved.end(),
                           [](std::int64_t a, std::int64_t b) { return a >= b; }) == saved.end());
  CHECK(c.client->metrics().handler_failures == 1);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE(
    "a batch failing at one event under the dead_letter policy writes that event and hands "
    "the rest") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  temp_path dead{"batch-dead-letters.jsonl"};
  auto config = soap_config(org, io);
  running_client c{io, std::move(config)};
  std::mutex mutex;
  std::vector<std::string> handled;
  std::atomic<bool> subscribed{false};
  sfstream::subscription_callbacks cbs;
  // Completes on a thread of its own; "D2" fails every time.
  cbs.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
    std::vector<sfstream::event> copy(events.begin(), events.end());
    std::thread([&, copy = std::move(copy), done = std::move(done)] {
      std::size_t ok = 0;
      for (; ok < copy.size(); ++ok) {
        if (name_of(copy[ok]) == "D2") break;
        std::lock_guard lock{mutex};
        handled.push_back(name_of(copy[ok]));
      }
      if (ok < copy.size()) {
        done(ok, {sfstream::errc::handler_failed, {"", "receiver answered 422", "posting"}});
      } else {
        done(ok, {});
      }
    }).detach();
  };
  cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
  sfstream::handler_failure_policy policy;
  policy.action = sfstream::handler_failure::dead_letter;
  policy.dead_letter_path = dead.path;
  cbs.on_failure = policy;
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return subscribed.load(); }));
  create_accounts(org, "D", 0, 5);
  REQUIRE(wait_until([&] {
    std::lock_guard lock{mutex};
    return handled.size() == 4;
  }));
  {
    std::lock_guard lock{mutex};
    CHECK(handled == std::vector<std::string>{"D0", "D1", "D3", "D4"});
  }
  const auto lines = lines_of(dead.path);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("\\\"Name\\\":\\\"D2\\\"") == std::string::npos);  // event kept as JSON
  CHECK(lines[0].find("\"Name\":\"D2\"") != std::string::npos);
  CHECK(lines[0].find("receiver answered 422") != std::string::npos);
  CHECK(c.client->metrics().dead_letters == 1);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE(
    "a batch failing under the stop policy ends the run with the events before the failure "
    "committed and the rest not") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  auto store = std::make_shared<recording_store>();
  auto config = soap_config(org, io);
  config.store = store;
  running_client c{io, std::move(config)};
  pending_batches batches;
  std::atomic<bool> subscribed{false};
  sfstream::subscription_callbacks cbs;
  cbs.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
    batches.add(events, std::move(done));
  };
  cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
  REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
  c.run();
  REQUIRE(wait_until([&] { return subscribed.load(); }));
  create_accounts(org, "S", 0, 1);
  auto first = batches.take();
  REQUIRE(first.has_value());
  first->done(first->events.size(), {});
  const auto committed = *first->events.back().replay_id();
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic) == committed; }));
  create_accounts(org, "S", 1, 3);
  auto second = batches.take();
  REQUIRE(second.has_value());
  second->done(0, {sfstream::errc::handler_failed, {"", "disk full", "writing the batch"}});
  REQUIRE(wait_until([&] { return c.done.load(); }));
  CHECK(c.result == sfstream::errc::handler_failed);
  CHECK(c.client->committed_replay_id(topic) == committed);
  CHECK(store->saved_ids().back() == committed);
  CHECK(c.client->last_error().to_string().find("disk full") != std::string::npos);
}

TEST_CASE("a batch completed after its client was destroyed is ignored") {
  emulator_fixture org;
  create_topic(org);
  io_thread io;
  pending_batches batches;
  std::atomic<bool> subscribed{false};
  {
    auto config = soap_config(org, io);
    running_client c{io, std::move(config)};
    sfstream::subscription_callbacks cbs;
    cbs.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
      batches.add(events, std::move(done));
    };
    cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
    REQUIRE_FALSE(c.client->subscribe(topic, sfstream::replay_new, cbs));
    c.run();
    REQUIRE(wait_until([&] { return subscribed.load(); }));
    create_accounts(org, "L", 0, 2);
    REQUIRE(wait_until([&] { return batches.handed() >= 1; }));
  }
  auto late = batches.take();
  REQUIRE(late.has_value());
  late->done(late->events.size(), {});  // the runtime is gone: nothing happens, nothing leaks
  CHECK(late->events.front().json().find("L0") != std::string_view::npos);
}
