// With replicas sharing a PostgreSQL store: the replica's lease figures and each connection's
// lease in /status JSON and /metrics text, promtool judging the exposition.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "serve/metrics.hpp"
#include "serve/status.hpp"
#include "tests/serve/admin_support.hpp"

using namespace sfstream::serve;
using namespace admin_test;

namespace {

service_status with_leases() {
  service_status s = sample_status();
  replica_status r;
  r.replica = "host-a-41";
  r.lease_ttl = std::chrono::milliseconds(15'000);
  r.live_replicas = 3;
  r.share = 1;
  r.held = 1;
  r.renewals = 120;
  r.claims = 4;
  r.takeovers = 2;
  r.losses = 1;
  r.releases = 3;
  s.replica = r;
  lease_status here;
  here.owner = "host-a-41";
  here.epoch = 7;
  here.expires_at = "2026-01-02T03:04:20.500Z";
  here.expires_ms = 1'767'323'060'500;
  here.held_here = true;
  s.connections[0].lease = here;
  lease_status elsewhere;
  elsewhere.owner = "host-b-\"9\"";
  elsewhere.epoch = 3;
  s.connections[1].lease = elsewhere;
  s.connections[1].state = connection_state::standby;
  return s;
}

}  // namespace

TEST_CASE("lease status: /status JSON has the replica's figures and each connection's lease, standby is ready") {
  const auto s = with_leases();
  const auto text = render_status_json(s);
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  REQUIRE_FALSE(doc.HasParseError());
  const auto& r = doc["replica"];
  CHECK(std::string(r["id"].GetString()) == "host-a-41");
  CHECK(r["lease_ttl_seconds"].GetDouble() == doctest::Approx(15.0));
  CHECK(r["live_replicas"].GetUint64() == 3);
  CHECK(r["share"].GetUint64() == 1);
  CHECK(r["renewals"].GetUint64() == 120);
  CHECK(r["claims"].GetUint64() == 4);
  CHECK(r["takeovers"].GetUint64() == 2);
  CHECK(r["losses"].GetUint64() == 1);
  CHECK(r["releases"].GetUint64() == 3);
  CHECK(r["last_error"].IsNull());
  const auto& acme = doc["connections"][0]["lease"];
  CHECK(std::string(acme["owner"].GetString()) == "host-a-41");
  CHECK(acme["epoch"].GetInt64() == 7);
  CHECK(std::string(acme["expires_at"].GetString()) == "2026-01-02T03:04:20.500Z");
  CHECK(acme["held_here"].GetBool());
  const auto& west = doc["connections"][1];
  CHECK(std::string(west["state"].GetString()) == "standby");
  CHECK_FALSE(west["lease"]["held_here"].GetBool());
  CHECK(west["lease"]["expires_at"].IsNull());
  CHECK(is_ready(s));  // the other replica streams it
  // Without replicas there is neither.
  const auto plain = render_status_json(sample_status());
  CHECK(plain.find("\"replica\"") == std::string::npos);
  CHECK(plain.find("\"lease\"") == std::string::npos);
}

TEST_CASE("lease status: /metrics has the lease counters per replica and the lease per connection, promtool agrees") {
  const auto text = render_metrics(with_leases());
  for (const char* line : {
           "sfstream_lease_renewals_total{replica=\"host-a-41\"} 120\n",
           "sfstream_lease_claims_total{replica=\"host-a-41\"} 4\n",
           "sfstream_lease_takeovers_total{replica=\"host-a-41\"} 2\n",
           "sfstream_lease_losses_total{replica=\"host-a-41\"} 1\n",
           "sfstream_lease_releases_total{replica=\"host-a-41\"} 3\n",
           "sfstream_replicas_live{replica=\"host-a-41\"} 3\n",
           "sfstream_leases_held{replica=\"host-a-41\"} 1\n",
           "sfstream_connection_lease_held{connection=\"acme\"} 1\n",
           "sfstream_connection_lease_epoch{connection=\"acme\"} 7\n",
           "sfstream_connection_lease_owner_info{connection=\"acme\",owner=\"host-a-41\"} 1\n",
           "sfstream_connection_lease_expiry_timestamp_seconds{connection=\"acme\"} 1767323060.5\n",
           "sfstream_connection_lease_owner_info{connection=\"we\\\"st\\\\org\\n2\",owner=\"host-b-\\\"9\\\"\"} 1\n",
           "sfstream_connection_state{connection=\"we\\\"st\\\\org\\n2\",state=\"standby\"} 1\n",
       }) {
    CAPTURE(line);
    CHECK(text.find(line) != std::string::npos);
  }
  CHECK(render_metrics(sample_status()).find("sfstream_lease") == std::string::npos);
  const auto promtool = find_program("promtool");
  REQUIRE_MESSAGE(!promtool.empty(),
                  "promtool is missing: install the Debian package prometheus (scripts/setup.sh)");
  temp_dir dir;
  const auto file = dir.write("metrics.prom", text);
  const auto result = run_command("'" + promtool + "' check metrics < '" + file.string() + "'");
  CAPTURE(result.output);
  CHECK(result.exit_code == 0);
  CHECK(result.output.empty());
}
