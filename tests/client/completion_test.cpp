// async_run completes on the executor its handler is bound to (bind_executor), as an Asio
// operation must, whatever pool thread finished the run.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "support/client_helpers.hpp"

using namespace std::chrono_literals;
using namespace sfstream::testing;

TEST_CASE("async_run completes on the strand its handler is bound to") {
  emulator_fixture org;
  create_topic(org);
  io_thread login_io;
  boost::asio::thread_pool pool(4);
  auto strand = boost::asio::make_strand(pool.get_executor());
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    // Handlers on the pool: the run's last step happens on any of its threads.
    sfstream::client c(pool.get_executor(), pool.get_executor(), soap_config(org, login_io));
    std::atomic<bool> subscribed{false};
    sfstream::subscription_callbacks cbs;
    cbs.on_subscribed = [&](std::int64_t) { subscribed = true; };
    REQUIRE_FALSE(c.subscribe(topic, sfstream::replay_new, std::move(cbs)));
    std::atomic<int> completed{0};
    std::atomic<bool> on_strand{false};
    c.async_run(boost::asio::bind_executor(strand, [&](std::error_code) {
      on_strand = strand.running_in_this_thread();
      ++completed;
    }));
    REQUIRE(wait_until([&] { return subscribed.load(); }, 10s));
    c.cancel();
    REQUIRE(wait_until([&] { return completed.load() == 1; }, 10s));
    CHECK(on_strand.load());
  }
  pool.join();
}
