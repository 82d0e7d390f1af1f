// The PostgreSQL replay store against a real PostgreSQL 15 server started by the test.
#include <doctest/doctest.h>

#include <atomic>
#include <limits>
#include <thread>

#include "postgresql/replay_store.hpp"
#include "sfstream/postgresql.hpp"
#include "support/postgres_server.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::postgres_server;
namespace pg = sfstream::postgresql;

postgres_server& server() {
  static postgres_server s;
  return s;
}

sfstream::postgresql_store_options options(const std::string& scope = "default",
                                           const std::string& schema = "sfstream") {
  sfstream::postgresql_store_options o;
  o.conninfo = server().conninfo();
  o.password = server().password();
  o.scope = scope;
  o.schema = schema;
  o.connect_timeout = std::chrono::seconds(5);
  return o;
}

std::unique_ptr<pg::session> admin() {
  pg::connect_options c;
  c.conninfo = server().conninfo();
  c.password = server().password();
  sfstream::error_info e;
  auto s = pg::session::open(c, e);
  REQUIRE_MESSAGE(s != nullptr, e.to_string());
  return s;
}

sfstream::replay_position stream_at(std::int64_t id, std::int64_t ms) {
  sfstream::replay_position p;
  p.replay_id = id;
  p.event_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  return p;
}

}  // namespace

TEST_CASE("a PostgreSQL replay store keeps stream ids and cursors exactly, per scope and schema") {
  auto store = sfstream::open_postgresql_replay_store(options("acme"));
  std::map<std::string, sfstream::replay_position> saved;
  saved["/topic/A"] = stream_at(std::numeric_limits<std::int64_t>::max(), 1'700'000'000'123);
  saved["/data/AccountChangeEvent"] = stream_at(0, 0);
  sfstream::replay_position cursor;
  cursor.cursor = "2026-12-01T10:00:00.000+0000|001xx'\"\\ é|[\"a\",\"b\"]";
  cursor.event_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(42));
  saved["/poll/Account"] = cursor;
  REQUIRE_FALSE(store->save(saved));
  // Merged, not replaced.
  REQUIRE_FALSE(store->save({{"/topic/A", stream_at(7, 1'700'000'000'999)}}));
  saved["/topic/A"] = stream_at(7, 1'700'000'000'999);

  auto again = sfstream::open_postgresql_replay_store(options("acme"));
  const auto loaded = again->load_all();
  REQUIRE(loaded.size() == 3);
  for (const auto& [key, p] : saved) {
    CAPTURE(key);
    REQUIRE(loaded.count(key) == 1);
    CHECK(loaded.at(key).replay_id == p.replay_id);
    CHECK(loaded.at(key).event_time == p.event_time);
    CHECK(loaded.at(key).cursor == p.cursor);
  }
  CHECK(again->load("/topic/A")->replay_id == 7);
  CHECK_FALSE(again->load("/topic/B").has_value());
  // Another scope and another schema see nothing of these.
  CHECK(sfstream::open_postgresql_replay_store(options("globex"))->load_all().empty());
  CHECK(sfstream::open_postgresql_replay_store(options("acme", "other schema"))->load_all().empty());
}

TEST_CASE("replicas opening together migrate once and a newer schema is refused with advice") {
  std::atomic<int> failures{0};
  std::vector<std::thread> openers;
  for (int i = 0; i < 6; ++i)
    openers.emplace_back([&] {
      try {
        sfstream::open_postgresql_replay_store(options("x", "together"));
      } catch (const sfstream::error&) {
        ++failures;
      }
    });
  for (auto& t : openers) t.join();
  CHECK(failures == 0);
  auto s = admin();
  pg::result r;
  REQUIRE_FALSE(s->exec("SELECT version FROM together.schema_version", {}, &r));
  REQUIRE(r.rows() == 1);
  CHECK(r.integer(0, 0) == pg::schema_version);

  REQUIRE_FALSE(s->exec("UPDATE together.schema_version SET version = 99"));
  try {
    sfstream::open_postgresql_replay_store(options("x", "together"));
    FAIL("a schema newer than this build was opened");
  } catch (const sfstream::error& e) {
    CHECK(e.info().code == sfstream::errc::invalid_config);
    CHECK(std::string(e.what()).find("upgrade sfstream") != std::string::npos);
  }
}

TEST_CASE("a store outlives a server restart and its errors name the server never the password") {
  auto store = sfstream::open_postgresql_replay_store(options("restart"));
  REQUIRE_FALSE(store->save({{"/topic/A", stream_at(1, 1)}}));
  server().stop();
  const auto down = store->save({{"/topic/A", stream_at(2, 2)}});
  REQUIRE(down.code == sfstream::errc::replay_store_io);
  const std::string text = down.to_string();
  CHECK(text.find("127.0.0.1:" + std::to_string(server().port())) != std::string::npos);
  CHECK(text.find(server().password()) == std::string::npos);
  server().start();
  // The next save opens a new session.
  REQUIRE_FALSE(store->save({{"/topic/A", stream_at(3, 3)}}));
  CHECK(store->load("/topic/A")->replay_id == 3);

  auto wrong = options("restart");
  wrong.password = "not-the-password-xyz";
  try {
    sfstream::open_postgresql_replay_store(wrong);
    FAIL("a wrong password was accepted");
  } catch (const sfstream::error& e) {
    const std::string what = e.what();
    // The server refused the login: no retry helps.
    CHECK(e.info().code == sfstream::errc::invalid_config);
    CHECK(what.find("password authentication failed") != std::string::npos);
    CHECK(what.find("correct the user, password or database") != std::string::npos);
    CHECK(what.find("not-the-password-xyz") == std::string::npos);
  }
  // A database that does not exist: the same.
  auto missing = options("restart");
  missing.conninfo = server().conninfo("no_such_db");
  try {
    sfstream::open_postgresql_replay_store(missing);
    FAIL("a missing database was accepted");
  } catch (const sfstream::error& e) {
    CHECK(e.info().code == sfstream::errc::invalid_config);
    CHECK(std::string(e.what()).find("\"no_such_db\" does not exist") != std::string::npos);
  }
}

TEST_CASE("a fenced write by a superseded or expired lease changes nothing") {
  sfstream::open_postgresql_replay_store(options("fenced"));  // migrates
  auto s = admin();
  REQUIRE_FALSE(s->exec("INSERT INTO sfstream.leases (connection, owner, epoch, expires_at) "
                        "VALUES ('fenced', 'a', 1, now() + interval '30 seconds')"));
  pg::connect_options c;
  c.conninfo = server().conninfo();
  c.password = server().password();
  auto pool = std::make_shared<pg::pool>(c, 2);
  std::optional<pg::fence> held = pg::fence{"a", 1};
  auto store = pg::make_replay_store(pool, pg::tables("sfstream"), "fenced", [&] { return held; });
  REQUIRE_FALSE(store->save({{"/topic/A", stream_at(10, 10)}}));

  pg::result r;
  REQUIRE_FALSE(s->exec("SELECT epoch FROM sfstream.positions WHERE connection = 'fenced'", {}, &r));
  REQUIRE(r.rows() == 1);
  CHECK(r.integer(0, 0) == 1);

  // Taken over by b at epoch 2: a's write is refused and the position stays.
  REQUIRE_FALSE(s->exec("UPDATE sfstream.leases SET owner = 'b', epoch = 2 WHERE connection = 'fenced'"));
  auto refused = store->save({{"/topic/A", stream_at(11, 11)}});
  CHECK(refused.code == sfstream::errc::lease_lost);
  CHECK(refused.to_string().find("superseded by 2") != std::string::npos);
  CHECK(store->load("/topic/A")->replay_id == 10);

  // b's own lease, once expired, writes nothing either.
  held = pg::fence{"b", 2};
  REQUIRE_FALSE(store->save({{"/topic/A", stream_at(12, 12)}}));
  REQUIRE_FALSE(s->exec("UPDATE sfstream.leases SET expires_at = now() - interval '1 second'"));
  CHECK(store->save({{"/topic/A", stream_at(13, 13)}}).code == sfstream::errc::lease_lost);
  // No lease at all: refused before any statement.
  held.reset();
  CHECK(store->save({{"/topic/A", stream_at(14, 14)}}).code == sfstream::errc::lease_lost);
  CHECK(store->load("/topic/A")->replay_id == 12);
}
