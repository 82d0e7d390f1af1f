// `[service] replica` and `lease_ttl`: how a process shares a PostgreSQL store's connections.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "serve/config.hpp"

using namespace sfstream::serve;

namespace {

const std::string connection =
    "[[connection]]\nname = \"acme\"\n[connection.auth]\nusername = \"u\"\n"
    "password_env = \"ACME_PW\"\n[[connection.channel]]\nname = \"/u/x\"\n"
    "[connection.sink]\ntype = \"stdout\"\n";

std::optional<service_config> parse(const std::string& service, std::vector<std::string>& out) {
  std::vector<config_problem> problems;
  auto config = parse_service_config("[service]\n" + service + connection, "t.toml", problems,
                                     [](const std::string&) {
                                       return std::optional<std::string>("org-password");
                                     });
  for (const auto& p : problems) out.push_back(p.to_string());
  return config;
}

}  // namespace

TEST_CASE("replica and lease_ttl: defaults, values, and mistakes refused at their line") {
  std::vector<std::string> problems;
  auto config = parse("store = \"postgresql://u@db/x\"\n", problems);
  INFO((problems.empty() ? std::string() : problems.front()));
  REQUIRE(config);
  CHECK(config->postgresql->replica.empty());  // the host name and process id
  CHECK(config->postgresql->lease_ttl == std::chrono::seconds(15));

  config = parse("store = \"postgresql://u@db/x\"\nreplica = \"eu-1.b\"\nlease_ttl = 2.5\n",
                 problems);
  REQUIRE(config);
  CHECK(config->postgresql->replica == "eu-1.b");
  CHECK(config->postgresql->lease_ttl == std::chrono::milliseconds(2500));

  problems.clear();
  CHECK_FALSE(parse("store = \"/tmp/p.json\"\nreplica = \"a\"\nlease_ttl = 5\n", problems));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "t.toml:3: service.replica: only with a PostgreSQL store: replicas share "
                       "connections through it");
  CHECK(problems[1].starts_with("t.toml:4: service.lease_ttl: only with a PostgreSQL store"));

  problems.clear();
  CHECK_FALSE(parse("store = \"postgresql://u@db/x\"\nreplica = \"two words\"\nlease_ttl = 0.5\n",
                    problems));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "t.toml:3: service.replica: must be 1-200 characters without spaces or "
                       "control characters");
  CHECK(problems[1].starts_with("t.toml:4: service.lease_ttl: must be 1 to 600 seconds"));
}
