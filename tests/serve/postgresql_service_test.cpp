// The service in process with its store in a real PostgreSQL server: a server that is down at
// start is waited for (the log and /readyz say so), then the positions live in its tables and
// a postgresql sink's rows in its events table.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "admin_support.hpp"
#include "emulator/cometd/cometd_server.hpp"
#include "serve/service.hpp"
#include "support/emulator_fixture.hpp"
#include "support/postgres_server.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace sfstream;
using namespace sfstream::serve;
using sfstream::testing::emulator_fixture;
using sfstream::testing::postgres_server;
using sfstream::testing::wait_until;

namespace {

std::size_t line_count(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

std::unique_ptr<postgresql::session> open_session(const postgres_server& db) {
  postgresql::connect_options c;
  c.conninfo = db.conninfo();
  c.password = db.password();
  error_info e;
  auto s = postgresql::session::open(c, e);
  REQUIRE_MESSAGE(s != nullptr, e.to_string());
  return s;
}

}  // namespace

TEST_CASE("a service whose PostgreSQL store is down at start waits for it, then keeps its "
          "positions there") {
  postgres_server db;
  emulator_fixture org;
  admin_test::temp_dir dir;
  const auto pw = dir.write("pw", "demo-pass");
  const auto token = dir.write("token", "DEMOTOKEN0000000000000");
  const auto dbpw = dir.write("dbpw", db.password());
  const fs::path out = dir.path / "out.jsonl";
  const std::string text =
      "[service]\nstore = \"" + db.conninfo() + "\"\nstore_password_file = \"" + dbpw.string() +
      "\"\nstore_schema = \"svc\"\nthreads = 2\nsink_threads = 2\nlog_level = \"warning\"\n"
      "[[connection]]\nname = \"acme\"\n[connection.auth]\nlogin_url = \"" +
      org.org().base_url() + "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" +
      pw.string() + "\"\nsecurity_token_file = \"" + token.string() +
      "\"\n[connection.network]\nca_file = \"" + org.org().ca_file() +
      "\"\n[connection.sink]\ntype = \"file\"\npath = \"" + out.string() +
      "\"\n[[connection.channel]]\nname = \"/event/Order__e\"\nstart = -2\n"
      // The same org's events into the store's events table.
      "[[connection]]\nname = \"rows\"\n[connection.auth]\nlogin_url = \"" +
      org.org().base_url() + "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" +
      pw.string() + "\"\nsecurity_token_file = \"" + token.string() +
      "\"\n[connection.network]\nca_file = \"" + org.org().ca_file() +
      "\"\n[connection.sink]\ntype = \"postgresql\"\n"
      "[[connection.channel]]\nname = \"/event/Order__e\"\nstart = -2\n";
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "test.toml", problems);
  for (const auto& p : problems) INFO(p.to_string());
  REQUIRE(config.has_value());
  for (int i = 0; i < 3; ++i) {
    org.call([](auto& o) {
      return o.cometd().publish_raw("/event/Order__e", "{\"event\":{\"replayId\":{{replayId}}}}");
    });
  }

  db.stop();
  {
    service svc(std::move(*config));
    REQUIRE_FALSE(svc.start());
    // Not ready, and saying why, naming the server (never its password).
    auto s = svc.snapshot();
    REQUIRE(s.store_error.has_value());
    CHECK(s.store_error->find("127.0.0.1:" + std::to_string(db.port())) != std::string::npos);
    CHECK(s.store_error->find(db.password()) == std::string::npos);
    std::vector<std::string> not_ready;
    CHECK_FALSE(is_ready(s, &not_ready));
    REQUIRE_FALSE(not_ready.empty());
    CHECK(not_ready.front().starts_with("store: "));
    CHECK(render_status_json(s).find("\"store_error\"") != std::string::npos);
    CHECK(line_count(out) == 0);

    db.start();
    REQUIRE(wait_until([&] { return line_count(out) == 3; }, 20s));
    REQUIRE(wait_until(
        [&] {
          const auto now = svc.snapshot();
          return !now.store_error && now.connections.size() == 2 &&
                 now.connections[0].channels.at(0).committed_replay_id == 3 &&
                 now.connections[1].channels.at(0).committed_replay_id == 3 &&
                 now.connections[1].sink.events == 3;
        },
        15s));
    svc.stop();
    svc.wait();
  }
  CHECK(line_count(out) == 3);
  // The positions are in the store's schema, written under the connection's lease, which the
  // graceful stop released (no owner) for another replica to take at once.
  auto s = open_session(db);
  postgresql::result r;
  REQUIRE_FALSE(s->exec("SELECT p.replay_id, p.epoch = l.epoch, l.owner IS NULL FROM "
                        "svc.positions p JOIN svc.leases l USING (connection) WHERE "
                        "p.connection = 'acme' AND p.replay_key = '/event/Order__e'",
                        {}, &r));
  REQUIRE(r.rows() == 1);
  CHECK(r.integer(0, 0) == 3);
  CHECK(r.text(0, 1) == "t");
  CHECK(r.text(0, 2) == "t");
  REQUIRE_FALSE(s->exec("SELECT count(*), count(DISTINCT replay_id), max(replay_id) FROM "
                        "svc.events WHERE connection = 'rows' AND channel = '/event/Order__e'",
                        {}, &r));
  CHECK(r.integer(0, 0) == 3);
  CHECK(r.integer(0, 1) == 3);
  CHECK(r.integer(0, 2) == 3);

  // Tables newer than this build: the start fails at once, saying what to do.
  REQUIRE_FALSE(s->exec("UPDATE svc.schema_version SET version = 99"));
  problems.clear();
  auto again = parse_service_config(text, "test.toml", problems);
  REQUIRE(again.has_value());
  service newer(std::move(*again));
  const auto why = newer.start();
  CHECK(why.code == errc::invalid_config);
  CHECK(why.to_string().find("upgrade sfstream") != std::string::npos);
  newer.stop();
  newer.wait();

  // A refused login: the start fails at once too, naming the server, never the password.
  { std::ofstream(dbpw, std::ios::trunc) << "wrong-db-password-123"; }
  problems.clear();
  auto refused_config = parse_service_config(text, "test.toml", problems);
  REQUIRE(refused_config.has_value());
  service refused(std::move(*refused_config));
  const auto refusal = refused.start();
  CHECK(refusal.code == errc::invalid_config);
  CHECK(refusal.to_string().find("password authentication failed") != std::string::npos);
  CHECK(refusal.to_string().find("127.0.0.1:" + std::to_string(db.port())) != std::string::npos);
  CHECK(refusal.to_string().find("wrong-db-password-123") == std::string::npos);
  refused.stop();
  refused.wait();
}
