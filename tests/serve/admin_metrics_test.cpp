// The status snapshot rendered as /status JSON and /metrics text: exact output where the
// format is strict, and Prometheus's own promtool as the judge of the exposition format.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "serve/metrics.hpp"
#include "serve/status.hpp"
#include "tests/serve/admin_support.hpp"

using namespace sfstream::serve;
using namespace admin_test;

TEST_CASE("label values escape backslash, double quote and line feed, nothing else") {
  CHECK(escape_label_value("plain /topic/X?Name='a'") == "plain /topic/X?Name='a'");
  CHECK(escape_label_value("a\\b") == "a\\\\b");
  CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(escape_label_value("two\nlines") == "two\\nlines");
  CHECK(escape_label_value("caf\xc3\xa9\t") == "caf\xc3\xa9\t");
}

TEST_CASE("a service without connections renders exactly its service families") {
  service_status s;
  s.version = "1.2.3";
  s.uptime = std::chrono::milliseconds(61'500);
  CHECK(render_metrics(s) ==
        "# HELP sfstream_build_info The running sfstream version (always 1).\n"
        "# TYPE sfstream_build_info gauge\n"
        "sfstream_build_info{version=\"1.2.3\"} 1\n"
        "# HELP sfstream_uptime_seconds Seconds since the service started.\n"
        "# TYPE sfstream_uptime_seconds gauge\n"
        "sfstream_uptime_seconds 61.5\n"
        "# HELP sfstream_ready 1 when every connection is streaming or deliberately stopped, "
        "else 0.\n"
        "# TYPE sfstream_ready gauge\n"
        "sfstream_ready 1\n"
        "# HELP sfstream_stopping 1 while the service drains after SIGTERM.\n"
        "# TYPE sfstream_stopping gauge\n"
        "sfstream_stopping 0\n");
}

TEST_CASE("metrics of a connection: counters with _total, the state gauge, labels escaped") {
  const auto text = render_metrics(sample_status());
  auto has = [&](const std::string& line) {
    CAPTURE(line);
    CHECK(text.find("\n" + line + "\n") != std::string::npos);
  };
  has("# TYPE sfstream_received_events_total counter");
  has("sfstream_received_events_total{connection=\"acme\"} 1234");
  has("sfstream_received_events_total{connection=\"we\\\"st\\\\org\\n2\"} 7");
  has("sfstream_received_bytes_total{connection=\"acme\"} 987654");
  has("sfstream_rehandshakes_total{connection=\"acme\",cause=\"unknown_client\"} 2");
  has("sfstream_reconnects_total{connection=\"acme\",cause=\"transport_error\"} 5");
  has("sfstream_gaps_total{connection=\"acme\"} 1");
  has("sfstream_pauses_total{connection=\"acme\"} 3");
  has("sfstream_queue_events{connection=\"acme\"} 17");
  has("sfstream_connection_state{connection=\"acme\",state=\"streaming\"} 1");
  has("sfstream_connection_state{connection=\"acme\",state=\"failed\"} 0");
  has("sfstream_connection_state{connection=\"we\\\"st\\\\org\\n2\",state=\"failed\"} 1");
  has("sfstream_ready 0");
  has("sfstream_sink_retries_total{connection=\"acme\"} 4");
  has("sfstream_sink_dead_letters_total{connection=\"acme\"} 2");
  has("sfstream_sink_backlog_events{connection=\"acme\"} 9");
  has("sfstream_channel_events_total{connection=\"acme\",channel=\"/topic/Orders?Status=\\\"New\\\"\"} 1000");
  has("sfstream_channel_last_replay_id{connection=\"acme\",channel=\"/data/AccountChangeEvent\"} 9007199254740993");
  has("sfstream_channel_committed_replay_id{connection=\"acme\",channel=\"/data/AccountChangeEvent\"} 9007199254740990");
  has("sfstream_channel_last_event_age_seconds{connection=\"acme\",channel=\"/data/AccountChangeEvent\"} 2.25");
  // A channel with no id yet has no last/committed sample rather than a made-up number.
  CHECK(text.find("sfstream_channel_last_replay_id{connection=\"acme\",channel=\"/topic/Orders") ==
        std::string::npos);
  // Every TYPE is preceded by its HELP, and a family appears once.
  std::istringstream in(text);
  std::string previous;
  std::map<std::string, int> types;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto name = line.substr(7, line.find(' ', 7) - 7);
      ++types[name];
      CHECK(previous.rfind("# HELP " + name + " ", 0) == 0);
    }
    previous = line;
  }
  for (const auto& [name, n] : types) {
    CAPTURE(name);
    CHECK(n == 1);
    if (name.size() > 6 && name.substr(name.size() - 6) == "_total") {
      CHECK(text.find("# TYPE " + name + " counter\n") != std::string::npos);
    }
  }
}

TEST_CASE("the sink latency is a cumulative histogram with +Inf, _sum and _count") {
  const auto text = render_metrics(sample_status());
  const std::string expected =
      "# HELP sfstream_sink_latency_seconds Time from a batch handed to the sink to its "
      "confirmation.\n"
      "# TYPE sfstream_sink_latency_seconds histogram\n"
      "sfstream_sink_latency_seconds_bucket{connection=\"acme\",le=\"0.05\"} 3\n"
      "sfstream_sink_latency_seconds_bucket{connection=\"acme\",le=\"0.5\"} 8\n"
      "sfstream_sink_latency_seconds_bucket{connection=\"acme\",le=\"5\"} 10\n"
      "sfstream_sink_latency_seconds_bucket{connection=\"acme\",le=\"+Inf\"} 11\n"
      "sfstream_sink_latency_seconds_sum{connection=\"acme\"} 12.75\n"
      "sfstream_sink_latency_seconds_count{connection=\"acme\"} 11\n"
      "sfstream_sink_latency_seconds_bucket{connection=\"we\\\"st\\\\org\\n2\",le=\"+Inf\"} 0\n"
      "sfstream_sink_latency_seconds_sum{connection=\"we\\\"st\\\\org\\n2\"} 0\n"
      "sfstream_sink_latency_seconds_count{connection=\"we\\\"st\\\\org\\n2\"} 0\n";
  CHECK(text.find(expected) != std::string::npos);
}

TEST_CASE("promtool check metrics accepts the exposition (promtool must be installed)") {
  const auto promtool = find_program("promtool");
  REQUIRE_MESSAGE(!promtool.empty(),
                  "promtool is missing: install the Debian package prometheus (scripts/setup.sh)");
  temp_dir dir;
  for (const auto& status : {sample_status(), service_status{}}) {
    const auto file = dir.write("metrics.prom", render_metrics(status));
    const auto result = run_command("'" + promtool + "' check metrics < '" + file.string() + "'");
    CAPTURE(result.output);
    CHECK(result.exit_code == 0);
    // Lint findings are printed even when the format parses: there must be none.
    CHECK(result.output.empty());
  }
  // And promtool does find faults: the check is not vacuous.
  const auto bad = dir.write("bad.prom", "# TYPE x_total gauge\nx_total{a=\"1} 2\n");
  CHECK(run_command("'" + promtool + "' check metrics < '" + bad.string() + "'").exit_code != 0);
}

TEST_CASE("/status JSON carries the service, each connection, channel, client and sink figures") {
  const auto text = render_status_json(sample_status());
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["version"].GetString()) == "9.9.9");
  CHECK(std::string(doc["started_at"].GetString()) == "2026-01-02T03:04:05.000Z");
  CHECK(doc["uptime_seconds"].GetDouble() == doctest::Approx(3600.0));
  CHECK_FALSE(doc["ready"].GetBool());
  REQUIRE(doc["connections"].Size() == 2);
  const auto& acme = doc["connections"][0];
  CHECK(std::string(acme["name"].GetString()) == "acme");
  CHECK(std::string(acme["state"].GetString()) == "streaming");
  CHECK(std::string(acme["client_state"].GetString()) == "connected");
  CHECK(acme["last_error"].IsNull());
  CHECK(acme["client"]["events"].GetUint64() == 1234);
  CHECK(acme["client"]["rehandshakes"]["unknown_client"].GetUint64() == 2);
  CHECK(acme["client"]["reconnects"]["transport_error"].GetUint64() == 5);
  CHECK(std::string(acme["sink"]["kind"].GetString()) == "webhook");
  CHECK(acme["sink"]["retries"].GetUint64() == 4);
  CHECK(acme["sink"]["latency_seconds"]["count"].GetUint64() == 11);
  const auto& cdc = acme["channels"][1];
  CHECK(std::string(cdc["channel"].GetString()) == "/data/AccountChangeEvent");
  CHECK(cdc["last_replay_id"].GetInt64() == 9007199254740993);  // exact beyond 2^53
  CHECK(cdc["committed_replay_id"].GetInt64() == 9007199254740990);
  CHECK(cdc["last_event_age_seconds"].GetDouble() == doctest::Approx(2.25));
  CHECK(cdc["sink_backlog"].GetUint64() == 3);
  CHECK(acme["channels"][0]["last_replay_id"].IsNull());
  const auto& west = doc["connections"][1];
  CHECK(std::string(west["name"].GetString()) == "we\"st\\org\n2");
  CHECK(std::string(west["state"].GetString()) == "failed");
  CHECK(std::string(west["last_error"].GetString()) ==
        "The login was refused: INVALID_LOGIN: Invalid username, password, security token");
}

TEST_CASE("readiness: every connection streaming or deliberately stopped") {
  service_status s;
  CHECK(is_ready(s));
  s.connections.resize(3);
  s.connections[0].name = "a";
  s.connections[0].state = connection_state::streaming;
  s.connections[1].name = "b";
  s.connections[1].state = connection_state::stopped;
  s.connections[2].name = "c";
  s.connections[2].state = connection_state::streaming;
  CHECK(is_ready(s));
  for (const auto state :
       {connection_state::starting, connection_state::recovering, connection_state::failed}) {
    s.connections[2].state = state;
    std::vector<std::string> names;
    CHECK_FALSE(is_ready(s, &names));
    CHECK(names == std::vector<std::string>{"c"});
  }
  CHECK(to_string(connection_state::recovering) == "recovering");
}
