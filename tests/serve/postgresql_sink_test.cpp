// The PostgreSQL sink against a real PostgreSQL 15 server: rows exactly once with their
// position in one transaction, NOTIFY on commit, the lease fence, a server restarted under
// load, an event the server refuses.
#include <doctest/doctest.h>

#include <future>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/thread_pool.hpp>

#include "serve/postgresql_sink.hpp"
#include "support/postgres_server.hpp"

using namespace std::chrono_literals;
using namespace sfstream;
using namespace sfstream::serve;
using sfstream::testing::postgres_server;

namespace {

postgres_server& server() {
  static postgres_server s;
  return s;
}

postgresql::connect_options connect() {
  postgresql::connect_options c;
  c.conninfo = server().conninfo();
  c.password = server().password();
  c.connect_timeout = std::chrono::seconds(2);
  return c;
}

/// A migrated schema, connection "acme" leased to "me" at epoch 1 and held in `owner`.
struct fixture {
  postgresql::tables tables{"sink_test"};
  std::shared_ptr<postgresql::pool> pool = std::make_shared<postgresql::pool>(connect(), 2);
  std::shared_ptr<ownership> owner = std::make_shared<ownership>();
  boost::asio::thread_pool threads{2};
  std::unique_ptr<postgresql::session> admin;

  fixture() {
    error_info e;
    admin = postgresql::session::open(connect(), e);
    REQUIRE_MESSAGE(admin != nullptr, e.to_string());
    REQUIRE_FALSE(admin->exec("DROP SCHEMA IF EXISTS " + tables.schema + " CASCADE"));
    REQUIRE_FALSE(postgresql::migrate(*admin, tables));
    REQUIRE_FALSE(admin->exec("INSERT INTO " + tables.leases +
                              " (connection, owner, epoch, expires_at) VALUES ('acme', 'me', 1, "
                              "now() + interval '1 hour')"));
    owner->hold("acme", {"me", 1});
  }
  ~fixture() { threads.join(); }

  std::shared_ptr<sink> make(std::string notify = {}) {
    postgresql_sink_options o;
    o.database = pool;
    o.tables = tables;
    o.notify = std::move(notify);
    o.backoff_initial = 50ms;
    o.backoff_max = 200ms;
    o.owner = owner;
    return make_postgresql_sink(threads.get_executor(), std::move(o));
  }

  /// (channel, replay id) of every row of acme.
  std::multiset<std::pair<std::string, std::int64_t>> rows() {
    postgresql::result r;
    REQUIRE_FALSE(admin->exec("SELECT channel, replay_id FROM " + tables.events +
                                  " WHERE connection = 'acme'",
                              {}, &r));
    std::multiset<std::pair<std::string, std::int64_t>> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace(std::string(r.text(i, 0)), r.integer(i, 1));
    return out;
  }

  std::optional<std::int64_t> position(const std::string& key) {
    postgresql::result r;
    REQUIRE_FALSE(admin->exec("SELECT replay_id FROM " + tables.positions +
                                  " WHERE connection = 'acme' AND replay_key = $1",
                              {key}, &r));
    if (r.rows() == 0) return std::nullopt;
    return r.integer(0, 0);
  }
};

std::vector<event> numbered(const std::string& channel, std::int64_t from, std::int64_t to) {
  std::vector<event> out;
  for (std::int64_t id = from; id <= to; ++id) {
    out.emplace_back(channel, id,
                     "{\"channel\":\"" + channel + "\",\"data\":{\"event\":{\"replayId\":" +
                         std::to_string(id) + "},\"payload\":{\"n\":" + std::to_string(id) + "}}}");
  }
  return out;
}

struct outcome {
  std::size_t handled = 0;
  error_info error;
};

/// Hands `events` to the sink and waits (bounded) for its done.
outcome deliver(sink& s, const std::string& channel, const std::vector<event>& events,
                std::chrono::seconds limit = 20s) {
  auto p = std::make_shared<std::promise<outcome>>();
  auto f = p->get_future();
  s.deliver("acme", channel, events,
            [p](std::size_t n, error_info why) { p->set_value({n, std::move(why)}); });
  REQUIRE(f.wait_for(limit) == std::future_status::ready);
  return f.get();
}

std::multiset<std::pair<std::string, std::int64_t>> expected(const std::string& channel,
                                                             std::int64_t from, std::int64_t to) {
  std::multiset<std::pair<std::string, std::int64_t>> out;
  for (std::int64_t id = from; id <= to; ++id) out.emplace(channel, id);
  return out;
}

}  // namespace

TEST_CASE("the postgresql sink stores each event once with its position, and NOTIFY tells "
          "a LISTEN session on commit") {
  fixture fx;
  error_info e;
  auto listener = postgresql::session::open(connect(), e);
  REQUIRE(listener != nullptr);
  REQUIRE_FALSE(listener->exec("LISTEN sf_events"));
  auto out = fx.make("sf_events");

  const auto first = numbered("/event/Order__e", 1, 5);
  const auto second = numbered("/event/Order__e", 6, 10);
  auto r = deliver(*out, "/event/Order__e", first);
  CHECK(r.handled == 5);
  CHECK_FALSE(r.error);
  r = deliver(*out, "/event/Order__e", second);
  CHECK(r.handled == 5);
  CHECK_FALSE(r.error);
  // Delivered again (as after a crash before the client's commit): nothing twice.
  r = deliver(*out, "/event/Order__e", second);
  CHECK(r.handled == 5);
  CHECK_FALSE(r.error);
  CHECK(fx.rows() == expected("/event/Order__e", 1, 10));
  CHECK(fx.position("/event/Order__e") == 10);

  // The row holds the event's data as jsonb; a filtered channel is stored under its replay key.
  postgresql::result row;
  REQUIRE_FALSE(fx.admin->exec("SELECT event->'payload'->>'n', event->'event'->>'replayId', epoch "
                               "FROM " + fx.tables.events + " e JOIN " + fx.tables.positions +
                                   " p USING (connection) WHERE e.replay_id = 7 AND p.replay_key = "
                                   "'/event/Order__e'",
                               {}, &row));
  REQUIRE(row.rows() == 1);
  CHECK(row.text(0, 0) == "7");
  CHECK(row.text(0, 1) == "7");
  CHECK(row.integer(0, 2) == 1);
  r = deliver(*out, "/topic/Orders?Status=New", numbered("/topic/Orders", 1, 2));
  CHECK(r.handled == 2);
  CHECK(fx.rows().count({"/topic/Orders", 2}) == 1);
  CHECK(fx.position("/topic/Orders") == 2);

  // One notification per committed batch, in order, bounded in time.
  std::vector<std::string> told;
  for (int i = 0; i < 50 && told.size() < 4; ++i) {
    for (auto& n : listener->notifications(100ms)) told.push_back(std::move(n));
  }
  REQUIRE(told.size() == 4);
  CHECK(told[0] == R"({"connection":"acme","channel":"/event/Order__e","last_replay_id":5,"events":5})");
  CHECK(told[1].find("\"last_replay_id\":10") != std::string::npos);
  CHECK(told[3] == R"({"connection":"acme","channel":"/topic/Orders","last_replay_id":2,"events":2})");

  const auto f = out->figures();
  CHECK(f.batches == 4);
  CHECK(f.events == 17);
  CHECK(f.bytes > 0);
  CHECK(f.failures == 0);
  CHECK(f.backlog == 0);
  CHECK(f.latency_count == 4);
  out->stop();
}

TEST_CASE("a postgresql sink whose lease epoch was superseded inserts nothing and reports the "
          "connection lost") {
  fixture fx;
  auto out = fx.make();
  REQUIRE_FALSE(deliver(*out, "/u/Notices", numbered("/u/Notices", 1, 3)).error);
  std::string lost;
  fx.owner->on_lost([&](const std::string& name) { lost = name; });
  // Another replica took the connection over.
  REQUIRE_FALSE(fx.admin->exec("UPDATE " + fx.tables.leases +
                               " SET owner = 'other', epoch = 2 WHERE connection = 'acme'"));
  auto r = deliver(*out, "/u/Notices", numbered("/u/Notices", 4, 6));
  CHECK(r.handled == 0);
  CHECK(r.error.code == errc::lease_lost);
  CHECK(lost == "acme");
  CHECK_FALSE(fx.owner->fence("acme").has_value());
  CHECK(fx.rows() == expected("/u/Notices", 1, 3));
  CHECK(fx.position("/u/Notices") == 3);
  // No longer held here: nothing is even tried.
  r = deliver(*out, "/u/Notices", numbered("/u/Notices", 4, 6));
  CHECK(r.error.code == errc::lease_lost);
  CHECK(fx.rows() == expected("/u/Notices", 1, 3));
  out->stop();
}

TEST_CASE("PostgreSQL restarted while a postgresql sink writes: every batch is retried until "
          "it is in, nothing lost or twice, and a stop ends a retry wait at once") {
  fixture fx;
  auto out = fx.make();
  std::vector<outcome> results;
  std::thread writer([&] {
    for (std::int64_t b = 0; b < 20; ++b) {
      results.push_back(deliver(*out, "/data/AccountChangeEvent",
                                numbered("/data/AccountChangeEvent", b * 5 + 1, b * 5 + 5), 60s));
      std::this_thread::sleep_for(20ms);
    }
  });
  std::this_thread::sleep_for(100ms);
  server().stop();
  std::this_thread::sleep_for(500ms);
  server().start();
  writer.join();
  REQUIRE(results.size() == 20);
  for (const auto& r : results) {
    CHECK(r.handled == 5);
    CHECK_FALSE(r.error);
  }
  fx.admin.reset();  // its connection broke with the restart
  error_info e;
  fx.admin = postgresql::session::open(connect(), e);
  REQUIRE(fx.admin != nullptr);
  CHECK(fx.rows() == expected("/data/AccountChangeEvent", 1, 100));
  CHECK(fx.position("/data/AccountChangeEvent") == 100);
  CHECK(out->figures().retries > 0);
  CHECK(out->figures().last_error.has_value());

  // The server down: the batch waits for a retry; stop() ends it at once, unstored.
  server().stop();
  auto p = std::make_shared<std::promise<outcome>>();
  auto f = p->get_future();
  const auto pending = numbered("/data/AccountChangeEvent", 101, 102);
  const auto retries = out->figures().retries;
  out->deliver("acme", "/data/AccountChangeEvent", pending,
               [p](std::size_t n, error_info why) { p->set_value({n, std::move(why)}); });
  for (int i = 0; i < 200 && out->figures().retries == retries; ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(out->figures().retries > retries);
  out->stop();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  const auto r = f.get();
  CHECK(r.handled == 0);
  CHECK(r.error.code == errc::cancelled);
  server().start();
}

TEST_CASE("an event PostgreSQL refuses ends a postgresql sink's batch after the events before "
          "it, for the handler failure policy") {
  fixture fx;
  auto out = fx.make();
  auto events = numbered("/event/Order__e", 1, 2);
  // jsonb has no NUL character: the server refuses this event whatever is tried.
  events.emplace_back("/event/Order__e", 3,
                      R"({"channel":"/event/Order__e","data":{"event":{"replayId":3},)"
                      R"("payload":{"text":"a\u0000b"}}})");
  const auto after = numbered("/event/Order__e", 4, 4);
  events.insert(events.end(), after.begin(), after.end());
  const auto r = deliver(*out, "/event/Order__e", events);
  CHECK(r.handled == 2);
  CHECK(r.error.code == errc::output_failed);
  CHECK(r.error.to_string().find("after the first 2") != std::string::npos);
  CHECK(fx.rows() == expected("/event/Order__e", 1, 2));
  CHECK(fx.position("/event/Order__e") == 2);
  CHECK(out->figures().retries == 0);
  CHECK(out->figures().failures == 1);
  out->stop();
}
