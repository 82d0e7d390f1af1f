// The streaming client against the emulator's fidelity details: it sends the load balancer's
// cookies back byte for byte (one handshake for a whole stream), and stops in bounded time when
// Salesforce never answers its /meta/disconnect.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"
#include "tests/emulator/emulator_clients.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::running_client;
using sfstream::testing::wait_until;
using emulator_test::login_config;

sfstream::emulator::emulator_options with_ping() {
  auto o = emulator_fixture::default_options();
  o.data.platform_events = {{"Ping__e", {{"Body__c", "string", "", false}}}};
  return o;
}

/// Waits (bounded) until the org has one subscriber of /event/Ping__e.
bool subscribed(emulator_fixture& fixture) {
  return wait_until([&] {
    return fixture.call([](org_emulator& o) {
      return o.events().subscribers("/event/Ping__e", o.options().users.front().user_id) == 1;
    });
  });
}

void publish(emulator_fixture& fixture, int i) {
  auto r = fixture.call([&](org_emulator& o) {
    return o.rest().publish_platform_event("Ping__e", "{\"Body__c\":\"p" + std::to_string(i) + "\"}");
  });
  REQUIRE(static_cast<bool>(r));
}

}  // namespace

TEST_CASE("client fidelity: t, force-stream and sfdc-stream come back byte for byte, so one handshake serves the whole stream") {
  emulator_fixture fixture(with_ping());
  io_thread io;
  emulator_test::received_events seen;
  running_client c(io, login_config(fixture, fixture.org(), io));
  REQUIRE_FALSE(c.client->subscribe("/event/Ping__e", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(subscribed(fixture));
  for (int i = 0; i < 5; ++i) {
    publish(fixture, i);
    REQUIRE(wait_until([&] { return seen.size() == static_cast<std::size_t>(i + 1); }));
  }
  CHECK(c.client->metrics().handshakes == 1);
  CHECK(c.stop());
  CHECK_FALSE(c.result);
}

TEST_CASE("client fidelity: a /meta/disconnect Salesforce never answers does not block the stop") {
  emulator_fixture fixture(with_ping());
  io_thread io;
  emulator_test::received_events seen;
  running_client c(io, login_config(fixture, fixture.org(), io));
  REQUIRE_FALSE(c.client->subscribe("/event/Ping__e", sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return fixture.call([](org_emulator& o) { return o.client_count(); }) == 1; }));
  REQUIRE(subscribed(fixture));
  publish(fixture, 0);
  REQUIRE(wait_until([&] { return seen.size() == 1; }));
  fixture.call([](org_emulator& o) {
    o.inject_bayeux_fault(sfstream::emulator::fault_kind::unanswered_disconnect, 1);
    return 0;
  });
  const auto start = std::chrono::steady_clock::now();
  CHECK(c.stop());  // bounded: 10 s
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < 6s);
  CHECK_FALSE(c.result);
  CHECK(seen.size() == 1);
}
