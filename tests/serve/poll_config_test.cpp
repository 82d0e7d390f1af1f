// The poll connection and the fallback table of `sfstream serve`'s configuration: a good file
// loads whole, every problem is FILE:LINE: key: problem.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "serve/config.hpp"

using namespace sfstream;
using namespace sfstream::serve;

namespace {

const std::string head =
    "[[connection]]\n"                      // 1
    "name = \"acme\"\n"                     // 2
    "[connection.auth]\n"                   // 3
    "login_url = \"http://127.0.0.1:9\"\n"  // 4
    "username = \"u\"\n"                    // 5
    "password_env = \"PW\"\n"               // 6
    "[connection.sink]\n"                   // 7
    "type = \"stdout\"\n";                  // 8

std::optional<std::string> env(const std::string&) {
  return "pw";
}

std::optional<service_config> parse(const std::string& text, std::vector<std::string>& out) {
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "serve.toml", problems, env);
  for (const auto& p : problems) out.push_back(p.to_string());
  return config;
}

}  // namespace

TEST_CASE("a poll connection reads its objects, interval and overlap") {
  std::vector<std::string> problems;
  const std::string text =
      "[[connection]]\nname = \"acme\"\nkind = \"poll\"\ninterval = 15\noverlap = 90\n"
      "[connection.auth]\nlogin_url = \"http://127.0.0.1:9\"\nusername = \"u\"\n"
      "password_env = \"PW\"\n[connection.sink]\ntype = \"stdout\"\n"
      "[[connection.object]]\nname = \"Account\"\nfields = [\"Name\", \"Owner.Name\"]\n"
      "where = \"Industry = 'Energy'\"\ninterval = 5\n"
      "[[connection.object]]\nname = \"Invoice__c\"\n";
  const auto good = parse(text, problems);
  CHECK(problems.empty());
  REQUIRE(good);
  const auto& c = good->connections.at(0);
  CHECK(c.kind == connection_kind::poll);
  CHECK(c.channels.empty());
  CHECK(c.polling.interval == std::chrono::seconds(15));
  CHECK(c.polling.overlap == std::chrono::seconds(90));
  REQUIRE(c.polling.objects.size() == 2);
  CHECK(c.polling.objects[0].name == "Account");
  CHECK(c.polling.objects[0].fields == std::vector<std::string>{"Name", "Owner.Name"});
  CHECK(c.polling.objects[0].where == "Industry = 'Energy'");
  CHECK(c.polling.objects[0].interval == std::chrono::seconds(5));
  CHECK(c.polling.objects[1].interval == std::chrono::milliseconds(0));
  CHECK_FALSE(c.fallback);
}

TEST_CASE("a streaming connection reads its fallback table") {
  std::vector<std::string> problems;
  const auto config = parse(head +
                                "[[connection.channel]]\nname = \"/topic/Accounts\"\n"  // 9-10
                                "[connection.fallback]\nprobe_interval = 120\ninterval = 20\n"
                                "[[connection.fallback.object]]\nname = \"Account\"\n"
                                "fields = [\"Name\"]\n",
                            problems);
  CHECK(problems.empty());
  REQUIRE(config);
  const auto& c = config->connections.at(0);
  CHECK(c.kind == connection_kind::stream);
  REQUIRE(c.fallback);
  CHECK(c.fallback->probe_interval == std::chrono::seconds(120));
  CHECK(c.fallback->polling.interval == std::chrono::seconds(20));
  CHECK(c.fallback->polling.overlap == std::chrono::seconds(60));
  REQUIRE(c.fallback->polling.objects.size() == 1);
  CHECK(c.fallback->polling.objects[0].fields == std::vector<std::string>{"Name"});
}

TEST_CASE("poll and fallback mistakes are each named with their line and key") {
  std::vector<std::string> problems;
  const std::string text =
      "[[connection]]\n"                         // 1
      "name = \"p\"\n"                           // 2
      "kind = \"poll\"\n"                        // 3
      "[connection.auth]\n"                      // 4
      "login_url = \"http://127.0.0.1:9\"\n"     // 5
      "username = \"u\"\n"                       // 6
      "password_env = \"PW\"\n"                  // 7
      "[connection.sink]\n"                      // 8
      "type = \"stdout\"\n"                      // 9
      "[[connection.channel]]\n"                 // 10
      "name = \"/topic/X\"\n"                    // 11
      "[[connection.object]]\n"                  // 12
      "name = \"1Account\"\n"                    // 13
      "fields = [\"Name\", \"bad field\", 3]\n"  // 14
      "color = \"red\"\n"                        // 15
      "[[connection.object]]\n"                  // 16
      "name = \"Contact\"\n"                     // 17
      "interval = 0\n"                           // 18
      "[[connection.object]]\n"                  // 19
      "name = \"Contact\"\n"                     // 20
      "[[connection]]\n"                         // 21
      "name = \"s\"\n"                           // 22
      "kind = \"pull\"\n"                        // 23
      "[connection.auth]\n"                      // 24
      "login_url = \"http://127.0.0.1:9\"\n"     // 25
      "username = \"u\"\n"                       // 26
      "password_env = \"PW\"\n"                  // 27
      "[connection.sink]\n"                      // 28
      "type = \"stdout\"\n"                      // 29
      "[[connection]]\n"                         // 30
      "name = \"f\"\n"                           // 31
      "overlap = 5\n"                            // 32
      "[connection.auth]\n"                      // 33
      "login_url = \"http://127.0.0.1:9\"\n"     // 34
      "username = \"u\"\n"                       // 35
      "password_env = \"PW\"\n"                  // 36
      "[connection.sink]\n"                      // 37
      "type = \"stdout\"\n"                      // 38
      "[[connection.channel]]\n"                 // 39
      "name = \"/topic/X\"\n"                    // 40
      "[connection.fallback]\n"                  // 41
      "probe_interval = \"soon\"\n";             // 42
  CHECK_FALSE(parse(text, problems));
  const std::vector<std::string> expected{
      "serve.toml:10: connection[0].channel: a poll connection reads [[connection.object]] "
      "tables, not channels",
      "serve.toml:13: connection[0].object[0].name: '1Account' is not an sObject API name (e.g. "
      "Account, Invoice__c)",
      "serve.toml:14: connection[0].object[0].fields: 'bad field' is not a field API name",
      "serve.toml:14: connection[0].object[0].fields: must hold strings, not an integer",
      "serve.toml:15: connection[0].object[0].color: unknown key",
      "serve.toml:18: connection[0].object[1].interval: must be more than 0 and at most a week "
      "of seconds",
      "serve.toml:19: connection[0].object[2].name: object 'Contact' is polled twice (also at "
      "line 16)",
      "serve.toml:21: connection[1].channel: missing (required): at least one "
      "[[connection.channel]]",
      "serve.toml:23: connection[1].kind: must be stream or poll (got 'pull')",
      "serve.toml:32: connection[2].overlap: only with kind = \"poll\" (a streaming connection "
      "polls in [connection.fallback])",
      "serve.toml:41: connection[2].fallback.object: missing (required): at least one "
      "[[connection.fallback.object]]",
      "serve.toml:42: connection[2].fallback.probe_interval: must be a number of seconds, not a "
      "string"};
  CHECK(problems == expected);
}

TEST_CASE("polled events cannot go to a postgresql sink, which keys its rows by replay id") {
  const std::string auth =
      "[connection.auth]\nlogin_url = \"http://127.0.0.1:9\"\nusername = \"u\"\n"
      "password_env = \"PW\"\n";
  std::vector<std::string> problems;
  CHECK_FALSE(
      parse("[[connection]]\nname = \"p\"\nkind = \"poll\"\n" + auth +
                "[connection.sink]\ntype = \"postgresql\"\n"  // line 8
                "[[connection.object]]\nname = \"Account\"\n"
                "[[connection]]\nname = \"s\"\n" +
                auth +
                "[connection.sink]\ntype = \"postgresql\"\n"  // line 18
                "[[connection.channel]]\nname = \"/topic/X\"\n"
                "[connection.fallback]\n[[connection.fallback.object]]\nname = \"Account\"\n",
            problems));
  const auto has = [&](const std::string& wanted) {
    for (const auto& p : problems)
      if (p == wanted) return true;
    return false;
  };
  for (const auto& p : problems) INFO(p);
  CHECK(
      has("serve.toml:8: connection[0].sink.type: a poll connection needs a stdout, file or "
          "webhook sink: the postgresql sink stores events by replay id, and polled events "
          "have none"));
  CHECK(
      has("serve.toml:18: connection[1].sink.type: a [connection.fallback] needs a stdout, "
          "file or webhook sink: the postgresql sink stores events by replay id, and polled "
          "events have none"));
}
