#include <doctest/doctest.h>

#include <ostream>

#include "bayeux/channel.hpp"
#include "injection.hpp"

using namespace sfstream;
using namespace sfstream::bayeux;
using namespace sfstream::bayeux::test;

namespace {

const char* const channels[] = {"/topic/A?Name='x'", "/event/B__e", "/data/ChangeEvents",
                                "/u/notifications/C"};

void subscribe_all(script& t) {
  std::int64_t start = 5;
  for (const char* c : channels) REQUIRE_FALSE(t.s.subscribe(c, start++, t.now));
}

// The whole script: start, handshake, subscribe, a few connects with events, a late
// subscribe and unsubscribe.
int baseline_exchanges() {
  injection_run run;
  subscribe_all(run.t);
  run.t.s.start(run.t.now);
  for (int i = 0; i < 30; ++i) run.step(std::nullopt, injected::connection_failed);
  return run.exchanges;
}

}  // namespace

TEST_CASE(
    "the error-injection helper replays the script with a failure injected at each step: "
    "the session retries or re-handshakes, never crashes, never waits forever, never drops "
    "a subscription") {
  const int total = baseline_exchanges();
  REQUIRE(total >= 20);
  for (auto how : {injected::connection_failed, injected::timeout, injected::http_503,
                   injected::garbage, injected::unknown_client}) {
    for (int k = 0; k < total; ++k) {
      CAPTURE(static_cast<int>(how));
      CAPTURE(k);
      injection_run run;
      subscribe_all(run.t);
      run.t.s.start(run.t.now);
      // Enough steps for any backoff and re-handshake to complete.
      for (int i = 0; i < 30 + 40; ++i) run.step(k, how);
      CHECK(run.t.s.state() == session_state::connected);
      for (const char* c : channels) {
        CHECK_MESSAGE(run.t.s.is_subscribed(c), c);
        CHECK(run.server.subscribed.count(c) == 1);
      }
      // Every subscription started from its starting id or from an id that was delivered
      // and committed, never from anything else.
      std::int64_t start = 5;
      for (const char* c : channels) {
        const auto sent = run.server.last_subscribe_replay[c];
        const auto key = std::string(replay_key_of(c));
        const bool from_start = sent == start++;
        const bool from_commit =
            run.committed.count(key) && sent >= 100 && sent <= run.committed[key];
        CHECK_MESSAGE((from_start || from_commit), c << " resubscribed from " << sent);
      }
      CHECK_FALSE(run.t.finished_with.has_value());
    }
  }
}

TEST_CASE("a resubscription after an injected failure uses the committed replay id") {
  injection_run run;
  subscribe_all(run.t);
  run.t.s.start(run.t.now);
  for (int i = 0; i < 20; ++i) run.step(std::nullopt, injected::connection_failed);
  REQUIRE(run.committed.count("/event/B__e") == 1);
  const auto committed = run.committed["/event/B__e"];
  run.server.client = "forgotten";  // the server drops the client
  for (int i = 0; i < 10; ++i) run.step(std::nullopt, injected::connection_failed);
  CHECK(run.server.last_subscribe_replay["/event/B__e"] >= committed);
  CHECK(run.server.last_subscribe_replay["/event/B__e"] != 6);
  CHECK(run.t.s.counters().rehandshakes_by_cause.at("unknown_client") >= 1);
}
