// The emulator's control endpoints (/_emulator/…): each one does what emulator/README.md says.
#include <doctest/doctest.h>

#include "emulator/event_bus.hpp"
#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::retention;

namespace {

reply control(harness& h, const std::string& path, const std::string& body = "{}") {
  return h.send("POST", "/_emulator/" + path, body, {{"Content-Type", "application/json"}});
}

std::string connect_body(const std::string& cid, const std::string& id) {
  return R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":")" + id + "\"}]";
}

}  // namespace

TEST_CASE("clock/advance moves the emulator clock forward") {
  harness h;
  auto before = h.run([&] { return h.org().clock().now(); });
  CHECK(control(h, "clock/advance", R"({"hours":25})").body == R"({"ok":true})");
  auto after = h.run([&] { return h.org().clock().now(); });
  CHECK(after - before >= std::chrono::hours(25));
  CHECK(control(h, "clock/advance", R"({"hours":-1})").status == 400);
}

TEST_CASE("sessions/expire invalidates every session id") {
  harness h;
  const auto token = h.token();
  CHECK(control(h, "sessions/expire").status == 200);
  auto r = h.cometd(R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])", token);
  CHECK(r.body.find("401::Authentication invalid") != std::string::npos);
}

TEST_CASE("cometd/forget-clients makes the next message of a client get 403::Unknown client") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  CHECK(control(h, "cometd/forget-clients").status == 200);
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body.find(R"("error":"403::Unknown client")") != std::string::npos);
  CHECK(r.body.find(R"("reconnect":"handshake")") != std::string::npos);
}

TEST_CASE("cometd/rotate-affinity re-pins a client that sends the old affinity cookie") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  const auto old_value = h.cookies()["sfdc-stream"];
  CHECK(control(h, "cometd/rotate-affinity").status == 200);
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body.find("\"successful\":true") != std::string::npos);
  CHECK_FALSE(h.cookies()["sfdc-stream"].empty());
  CHECK(h.cookies()["sfdc-stream"] != old_value);
}

TEST_CASE("faults/drop-connections cuts the next reply mid-body and later replies are whole") {
  harness h;
  const auto token = h.token();
  CHECK(control(h, "faults/drop-connections", R"({"count":1})").status == 200);
  auto cut = h.cometd(R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])", token);
  CHECK(cut.failed);
  CHECK_FALSE(h.handshake(token).empty());
}

TEST_CASE("faults/cometd answers the next CometD requests with 503 or with a body that is not JSON") {
  harness h;
  const auto token = h.token();
  CHECK(control(h, "faults/cometd", R"({"count":1,"kind":"503"})").status == 200);
  CHECK(h.cometd(R"([{"channel":"/meta/handshake","id":"1"}])", token).status == 503);
  CHECK(control(h, "faults/cometd", R"({"count":1,"kind":"not-json"})").status == 200);
  auto r = h.cometd(R"([{"channel":"/meta/handshake","id":"1"}])", token);
  CHECK(r.status == 200);
  CHECK(r.body.front() != '[');
  CHECK_FALSE(h.handshake(token).empty());
  CHECK(control(h, "faults/cometd", R"({"count":1,"kind":"teapot"})").status == 400);
}

TEST_CASE("faults/delay delays replies and can be turned off") {
  harness h;
  CHECK(control(h, "faults/delay", R"({"milliseconds":50})").status == 200);
  CHECK_FALSE(h.handshake(h.token()).empty());
  CHECK(control(h, "faults/delay", R"({"milliseconds":0})").status == 200);
  CHECK_FALSE(h.handshake(h.token()).empty());
}

TEST_CASE("cometd/disconnect sends an unsolicited /meta/disconnect in the next connect reply and forgets the client") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  CHECK(control(h, "cometd/disconnect").status == 200);
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body.find(R"({"channel":"/meta/disconnect","clientId":")" + cid + R"(","successful":true})") != std::string::npos);
  auto after = h.cometd(connect_body(cid, "4"), token);
  CHECK(after.body.find("403::Unknown client") != std::string::npos);
}

TEST_CASE("faults/too-busy denies the next handshake with the 503 too-busy failure reason") {
  harness h;
  CHECK(control(h, "faults/too-busy", R"({"count":1})").status == 200);
  auto r = h.cometd(R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])", h.token());
  CHECK(r.body.find(R"("failureReason":"503::Server is too busy.  Please try your request again later.")") != std::string::npos);
  CHECK(r.body.find(R"("advice":{"reconnect":"none"})") != std::string::npos);
  CHECK_FALSE(h.handshake(h.token()).empty());
}

TEST_CASE("faults/bayeux gives each Salesforce failure exactly once per count and refuses an unknown kind") {
  harness h;
  const auto token = h.token();

  CHECK(control(h, "faults/bayeux", R"({"count":1,"kind":"connection-limit"})").status == 200);
  auto denied = h.cometd(R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])", token);
  CHECK(denied.body.find(R"("failureReason":"403::To protect all customers from excessive use and Denial of Service attacks, we limit the number of simultaneous connections per server.  Your request has been denied because this limit has been exceeded.  Please try your request again later.")") != std::string::npos);
  CHECK(denied.body.find(R"("error":"403::Handshake denied")") != std::string::npos);
  const auto cid = h.handshake(token);
  REQUIRE_FALSE(cid.empty());
  h.cometd(connect_body(cid, "2"), token);  // the first connect, answered at once

  CHECK(control(h, "faults/bayeux", R"({"count":1,"kind":"multiple-clients"})").status == 200);
  auto advised = h.cometd(connect_body(cid, "3"), token);  // answered at once, not held
  CHECK(advised.body.find(R"("advice":{"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":400})") != std::string::npos);
  CHECK(advised.body.find(R"("successful":true)") != std::string::npos);

  CHECK(control(h, "faults/bayeux", R"({"count":1,"kind":"bare-subscribe-failure"})").status == 200);
  auto refused = h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid +
                              R"(","subscription":"/topic/Anything","id":"4"}])", token);
  CHECK(refused.body.find(R"("error":"403::Restricted channel")") != std::string::npos);
  CHECK(refused.body.find("subscription") == std::string::npos);

  CHECK(control(h, "faults/bayeux", R"({"count":1,"kind":"unknown-client-final"})").status == 200);
  auto forgotten = h.cometd(connect_body(cid, "5"), token);
  CHECK(forgotten.body.find(R"("advice":{"interval":0,"reconnect":"none"})") != std::string::npos);
  CHECK(forgotten.body.find(R"("error":"403::Unknown client")") != std::string::npos);
  auto after = h.cometd(connect_body(cid, "6"), token);  // the client is gone for good
  CHECK(after.body.find(R"("reconnect":"handshake")") != std::string::npos);

  CHECK(control(h, "faults/bayeux", R"({"count":1,"kind":"gremlins"})").status == 400);
}

TEST_CASE("the CDC controls forward to the data side and reject a missing entity") {
  auto options = test_options();
  options.data.cdc_entities = {"Account"};
  harness h(options);
  CHECK(control(h, "cdc/gap", R"({"changeType":"GAP_CREATE"})").status == 400);
  CHECK(control(h, "cdc/gap", R"({"entity":"Account","changeType":"GAP_UPDATE","ids":["001DM0000000001"]})").status == 200);
  CHECK(control(h, "cdc/overflow", R"({"entity":"Account"})").status == 200);
  CHECK(h.run([&] { return h.org().events().last_replay_id("/data/AccountChangeEvent"); }) >= 2);
}

TEST_CASE("unknown control paths get 404 and bodies that are not JSON objects get 400") {
  harness h;
  CHECK(control(h, "nothing").status == 404);
  CHECK(control(h, "faults/delay", "[1]").status == 400);
  CHECK(h.send("GET", "/_emulator/status", "").status == 200);
  CHECK(h.send("GET", "/_emulator/faults/delay", "").status == 405);
}

TEST_CASE("startup_json lists the URLs and the demo credentials on one line") {
  harness h;
  const auto line = h.org().startup_json();
  CHECK(line.find('\n') == std::string::npos);
  for (const char* key : {"\"base_url\"", "\"login_url\"", "\"cometd_path\"", "\"ca_file\"", "\"username\"", "\"password\"",
                          "\"security_token\"", "\"client_id\"", "\"client_secret\""}) {
    CHECK(line.find(key) != std::string::npos);
  }
}
