// The PostgreSQL keys of `sfstream serve`'s configuration: the store URI, its password by
// reference only, schema and pool size, and the postgresql sink that needs that store.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "admin_support.hpp"
#include "serve/config.hpp"

using namespace sfstream::serve;

namespace {

const std::string connection =
    "[[connection]]\nname = \"acme\"\n[connection.auth]\nusername = \"u\"\n"
    "password_env = \"ACME_PW\"\n[[connection.channel]]\nname = \"/u/x\"\n";

std::optional<service_config> parse(const std::string& text, std::vector<std::string>& out) {
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "t.toml", problems, [](const std::string& name) {
    if (name == "ACME_PW") return std::optional<std::string>("org-password");
    if (name == "PG_PW") return std::optional<std::string>("db-secret-from-env");
    return std::optional<std::string>();
  });
  for (const auto& p : problems) out.push_back(p.to_string());
  return config;
}

bool has(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a postgresql:// store loads with its password by reference, schema, pool and sink") {
  admin_test::temp_dir dir;
  const auto pw = dir.write("pgpw", "db-secret-from-file\n");
  std::vector<std::string> problems;
  auto config = parse("[service]\nstore = \"postgresql://sfstream@db.example:5433/events"
                      "?sslmode=verify-full\"\nstore_password_file = \"" +
                          pw.string() +
                          "\"\nstore_schema = \"replicas_1\"\nstore_pool = 12\n" + connection +
                          "[connection.sink]\ntype = \"postgresql\"\nnotify = \"sf_events\"\n",
                      problems);
  INFO(problems.size());
  REQUIRE(config.has_value());
  REQUIRE(config->postgresql.has_value());
  CHECK(config->postgresql->conninfo ==
        "postgresql://sfstream@db.example:5433/events?sslmode=verify-full");
  CHECK(config->postgresql->password == "db-secret-from-file");
  CHECK(config->postgresql->schema == "replicas_1");
  CHECK(config->postgresql->pool_size == 12);
  CHECK(config->connections.at(0).sink.type == sink_config::kind::postgresql);
  CHECK(config->connections.at(0).sink.notify == "sf_events");
  // The password is redacted like every other secret.
  CHECK(std::find(config->secrets.begin(), config->secrets.end(), "db-secret-from-file") !=
        config->secrets.end());

  // postgres:// too, the password from the environment, the defaults.
  problems.clear();
  config = parse("[service]\nstore = \"postgres://u@localhost/db\"\nstore_password_env = "
                 "\"PG_PW\"\n" + connection + "[connection.sink]\ntype = \"postgresql\"\n",
                 problems);
  REQUIRE(config.has_value());
  CHECK(config->postgresql->password == "db-secret-from-env");
  CHECK(config->postgresql->schema == "sfstream");
  CHECK(config->postgresql->pool_size == 0);
  CHECK(config->connections.at(0).sink.notify.empty());

  // A path is the file store, as before.
  problems.clear();
  config = parse("[service]\nstore = \"/var/lib/sfstream/p.json\"\n" + connection +
                     "[connection.sink]\ntype = \"stdout\"\n",
                 problems);
  REQUIRE(config.has_value());
  CHECK_FALSE(config->postgresql.has_value());
  CHECK(config->store_path == "/var/lib/sfstream/p.json");
}

TEST_CASE("PostgreSQL store and sink mistakes are refused at their line, no password repeated") {
  for (const std::string uri : {"postgresql://u:hunter2-in-uri@db/x", "postgres://u@db/x?password=hunter2-in-uri",
                                "postgresql://db/x?sslmode=require&password=hunter2-in-uri"}) {
    CAPTURE(uri);
    std::vector<std::string> problems;
    auto config = parse("[service]\nstore = \"" + uri + "\"\n" + connection +
                            "[connection.sink]\ntype = \"stdout\"\n",
                        problems);
    CHECK_FALSE(config.has_value());
    CHECK(has(problems, "t.toml:2: service.store: secrets are not accepted inline"));
    for (const auto& p : problems) CHECK(p.find("hunter2") == std::string::npos);
  }
  // A user name that happens to contain no ':' and a password key elsewhere are fine.
  std::vector<std::string> problems;
  CHECK(parse("[service]\nstore = \"postgresql://user@db/x?application_name=pw\"\n" + connection +
                  "[connection.sink]\ntype = \"stdout\"\n",
              problems)
            .has_value());

  problems.clear();
  CHECK_FALSE(parse("[service]\nstore = \"p.json\"\nstore_schema = \"x\"\nstore_pool = 3\n" +
                        connection + "[connection.sink]\ntype = \"postgresql\"\n",
                    problems)
                  .has_value());
  CHECK(has(problems, "t.toml:3: service.store_schema: only with a PostgreSQL store"));
  CHECK(has(problems, "t.toml:4: service.store_pool: only with a PostgreSQL store"));
  CHECK(has(problems, "connection[0].sink.type: a postgresql sink needs the service's store in "
                      "PostgreSQL"));

  problems.clear();
  CHECK_FALSE(parse("[service]\nstore = \"postgresql://u@db/x\"\nstore_schema = \"1bad-name\"\n"
                    "store_pool = 0\nstore_password = \"inline\"\n" +
                        connection + "[connection.sink]\ntype = \"postgresql\"\nnotify = \"a b\"\n",
                    problems)
                  .has_value());
  CHECK(has(problems, "t.toml:3: service.store_schema: must be 1-63 letters"));
  CHECK(has(problems, "t.toml:4: service.store_pool: must be from 1 to 256"));
  CHECK(has(problems, "t.toml:5: service.store_password: secrets are not accepted inline"));
  CHECK(has(problems, "sink.notify: must be a NOTIFY channel name"));
}
