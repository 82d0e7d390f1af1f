// The lease keeper against a real PostgreSQL 15 server, with connections it starts and stops
// recorded instead of streamed: the even share, a graceful hand-over, a lost lease, and a
// database out of reach.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "postgresql/lease.hpp"
#include "serve/lease_keeper.hpp"
#include "serve/service_log.hpp"
#include "support/postgres_session.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::postgres_server;
namespace pg = sfstream::postgresql;
namespace serve = sfstream::serve;
using steady = std::chrono::steady_clock;

postgres_server& server() {
  static postgres_server s;
  return s;
}

pg::connect_options database() {
  auto c = sfstream::testing::connect_options_of(server());
  c.connect_timeout = std::chrono::seconds(2);
  return c;
}

const std::vector<std::string> six{"c0", "c1", "c2", "c3", "c4", "c5"};

// What every replica of the test streams: a connection started by two at once is a failure.
struct streams {
  std::mutex mutex;
  std::map<std::string, std::string> by;  // connection → replica streaming it
  std::size_t doubles = 0;
  std::map<std::string, std::vector<std::pair<std::string, std::chrono::system_clock::time_point>>>
      stops;  // replica → (connection, when its stop began)

  serve::lease_keeper::hooks hooks(const std::string& replica) {
    serve::lease_keeper::hooks h;
    h.start = [this, replica](const std::string& c) {
      std::lock_guard lock{mutex};
      if (by.count(c)) ++doubles;
      by[c] = replica;
    };
    h.stop = [this, replica](const std::string& c, bool, std::function<void()> stopped) {
      {
        std::lock_guard lock{mutex};
        stops[replica].emplace_back(c, std::chrono::system_clock::now());
        if (by.count(c) && by[c] == replica) by.erase(c);
      }
      stopped();
    };
    return h;
  }
  std::size_t held_by(const std::string& replica) {
    std::lock_guard lock{mutex};
    std::size_t n = 0;
    for (const auto& [c, r] : by) n += r == replica;
    return n;
  }
};

template <class F>
bool eventually(F done, std::chrono::milliseconds limit) {
  const auto until = steady::now() + limit;
  for (int i = 0; i < 2000 && steady::now() < until; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

struct replica {
  std::shared_ptr<serve::ownership> owner = std::make_shared<serve::ownership>();
  std::unique_ptr<serve::lease_keeper> keeper;
  replica(const std::string& id, const std::string& schema, std::chrono::milliseconds ttl,
          const std::vector<std::string>& connections, streams& s, const serve::service_log& log) {
    keeper = std::make_unique<serve::lease_keeper>(database(), pg::tables(schema), owner,
                                                   serve::lease_keeper::settings{id, ttl},
                                                   connections, s.hooks(id), log);
  }
  bool stop(std::chrono::milliseconds limit) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    keeper->stop([done] { *done = true; });
    return eventually([&] { return done->load(); }, limit);
  }
};

}  // namespace

TEST_CASE("lease keeper: replicas share evenly, a lost lease stops at once, one name runs once, a graceful stop hands over without waiting for expiry") {
  const serve::service_log log(serve::log_format::text, sfstream::log_level::warning, {});
  streams s;
  replica a("a", "keeper_share", 900ms, six, s, log);
  replica b("b", "keeper_share", 900ms, six, s, log);
  a.keeper->start();
  b.keeper->start();
  REQUIRE(eventually([&] { return s.held_by("a") == 3 && s.held_by("b") == 3; }, 8s));
  CHECK(a.keeper->figures().share == 3);
  CHECK(a.keeper->figures().live_replicas == 2);
  CHECK(b.keeper->figures().held == 3);

  // A fenced write of "b" found one of its leases superseded: that connection stops at once.
  std::string lost;
  {
    std::lock_guard lock{s.mutex};
    for (const auto& [c, r] : s.by)
      if (r == "b") {
        lost = c;
        break;
      }
  }
  const auto epoch_before = b.owner->fence(lost)->epoch;
  const auto told = std::chrono::system_clock::now();
  b.owner->lost(lost);
  CHECK_FALSE(b.owner->fence(lost).has_value());
  REQUIRE(eventually([&] { return s.held_by("b") == 2; }, 2s));
  {
    std::lock_guard lock{s.mutex};
    REQUIRE_FALSE(s.stops["b"].empty());
    CHECK(s.stops["b"].back().first == lost);
    CHECK(s.stops["b"].back().second - told < 500ms);
  }
  CHECK(b.keeper->figures().losses == 1);
  // Its lease expires (nobody renews it) and it is claimed again, at a higher epoch.
  REQUIRE(eventually([&] { return s.held_by("a") + s.held_by("b") == 6; }, 5s));
  const auto again = a.owner->fence(lost) ? a.owner->fence(lost) : b.owner->fence(lost);
  REQUIRE(again);
  CHECK(again->epoch > epoch_before);

  // A second live process under the name "a" claims nothing, not even "a"'s leases.
  {
    streams s2;
    replica dup("a", "keeper_share", 900ms, six, s2, log);
    dup.keeper->start();
    std::this_thread::sleep_for(1200ms);
    CHECK(s2.held_by("a") == 0);
    CHECK(dup.keeper->figures().claims == 0);
    REQUIRE(dup.stop(5s));
  }
  CHECK(s.held_by("a") + s.held_by("b") == 6);

  // "a" stops gracefully: its connections stop, then their leases are released, and "b"
  // holds all six well before a lease could have expired.
  const auto a_held = s.held_by("a");
  const auto released_before = a.keeper->figures().releases;
  const auto t0 = steady::now();
  REQUIRE(a.stop(5s));
  // Every lease "a" held is released (a loaded machine may have moved one between the two
  // readings above, as the even share allows: at least those it held then).
  CHECK(a.keeper->figures().releases - released_before >= a_held);
  CHECK(s.held_by("a") == 0);
  const auto takeovers_before = b.keeper->figures().takeovers;
  REQUIRE(eventually([&] { return s.held_by("b") == 6; }, 5s));
  const auto handover = steady::now() - t0;
  MESSAGE("hand-over of " << a_held << " connection(s) after a graceful stop: "
                          << std::chrono::duration_cast<std::chrono::milliseconds>(handover).count()
                          << " ms (lease ttl 900 ms)");
  CHECK(handover < 900ms);
  CHECK(b.keeper->figures().takeovers == takeovers_before);  // released, not expired
  {
    std::lock_guard lock{s.mutex};
    CHECK(s.doubles == 0);
  }
  REQUIRE(b.stop(5s));
  CHECK(s.held_by("b") == 0);
}

TEST_CASE("lease keeper: a replica that cannot renew stops its connections before the lease expires, and claims them again once the database is back") {
  const serve::service_log log(serve::log_format::text, sfstream::log_level::error, {});
  streams s;
  const std::vector<std::string> two{"x", "y"};
  replica a("a", "keeper_deadline", 1500ms, two, s, log);
  a.keeper->start();
  REQUIRE(eventually([&] { return s.held_by("a") == 2; }, 8s));
  const auto first_epoch = a.owner->fence("x")->epoch;

  // The leases' expiry on the server, read just before it goes away (a later renewal only
  // moves it later).
  std::int64_t expiry_ms = 0;
  {
    sfstream::error_info e;
    auto session = pg::session::open(database(), e);
    REQUIRE(session);
    std::vector<pg::lease_row> rows;
    REQUIRE_FALSE(pg::read_leases(*session, pg::tables("keeper_deadline"), two, rows));
    REQUIRE(rows.size() == 2);
    expiry_ms = std::min(rows[0].expires_ms, rows[1].expires_ms);
  }
  server().stop();
  REQUIRE(eventually([&] { return s.held_by("a") == 0; }, 3s));
  {
    std::lock_guard lock{s.mutex};
    REQUIRE(s.stops["a"].size() == 2);
    for (const auto& [c, when] : s.stops["a"]) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          when.time_since_epoch()).count();
      CAPTURE(c);
      CHECK(ms < expiry_ms);  // stopped before the lease could expire
    }
  }
  CHECK(a.keeper->figures().losses == 2);
  server().start();
  REQUIRE(eventually([&] { return s.held_by("a") == 2; }, 10s));
  CHECK(a.owner->fence("x")->epoch > first_epoch);
  REQUIRE(a.stop(5s));
  CHECK(s.doubles == 0);
}
