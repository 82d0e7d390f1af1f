// Conformance of the emulator's CometD endpoint at the HTTP level and for /meta/handshake,
// against Salesforce's documented handshake behaviour.
#include <doctest/doctest.h>

#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;

namespace {
const std::string handshake_body =
    R"([{"ext":{"replay":true},"supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":"1","version":"1.0"}])";
}

TEST_CASE("a successful handshake reply is exactly Salesforce's, key order included, with no advice") {
  harness h;
  auto r = h.cometd(handshake_body, h.token());
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type").find("application/json") == 0);
  CHECK(mask_client_id(r.body) ==
        R"([{"ext":{"replay":true,"payload.format":true},"minimumVersion":"1.0","clientId":"CID","supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":"1","version":"1.0","successful":true}])");
  const auto id = client_id_of(r.body);
  CHECK(id.size() >= 26);
  CHECK(id.size() <= 29);
}

TEST_CASE("the handshake sets an HttpOnly BAYEUX_BROWSER cookie on /cometd/ and an sfdc-stream affinity cookie on /") {
  harness h;
  auto r = h.cometd(handshake_body, h.token());
  bool browser = false;
  bool affinity = false;
  for (const auto& c : r.all("Set-Cookie")) {
    if (c.rfind("BAYEUX_BROWSER=", 0) == 0) {
      browser = c.find("Path=/cometd/") != std::string::npos && c.find("HttpOnly") != std::string::npos;
    }
    if (c.rfind("sfdc-stream=!", 0) == 0) {
      affinity = c.find("path=/;") != std::string::npos && c.find('=', 13) != std::string::npos;
    }
  }
  CHECK(browser);
  CHECK(affinity);
}

TEST_CASE("a handshake without an Authorization header is denied with 401::Request requires authentication") {
  harness h;
  auto r = h.cometd(handshake_body, "");
  CHECK(r.status == 200);
  CHECK(r.body ==
        R"([{"ext":{"sfdc":{"failureReason":"401::Request requires authentication"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}])");
}

TEST_CASE("a handshake with an invalid token is denied with 401::Authentication invalid") {
  harness h;
  auto r = h.cometd(handshake_body, "00DDM0000000001!not-a-session");
  CHECK(r.body ==
        R"([{"ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}])");
}

TEST_CASE("the Authorization header is accepted as Bearer, OAuth or a bare token") {
  harness h;
  const auto token = h.token();
  for (const std::string& value : std::vector<std::string>{"Bearer " + token, "OAuth " + token, token}) {
    auto r = h.send("POST", "/cometd/59.0", handshake_body, {{"Content-Type", "application/json"}, {"Authorization", value}});
    CHECK(r.body.find("\"successful\":true") != std::string::npos);
  }
}

TEST_CASE("the CometD endpoint answers only POST, with 405 Only POST allowed") {
  harness h;
  auto r = h.send("GET", "/cometd/59.0", "");
  CHECK(r.status == 405);
  CHECK(r.reason == "Only POST allowed");
}

TEST_CASE("a CometD path without a version gets the exact mandatory-version error") {
  harness h;
  auto r = h.cometd(handshake_body, h.token(), "/cometd");
  CHECK(r.status == 400);
  CHECK(r.body ==
        R"([{"channel":"/meta/handshake","id":"1","error":"400::API version in the URI is mandatory. URI format: '/cometd/66.0'","successful":false}])");
}

TEST_CASE("a CometD version below 37.0 gets the exact unsupported-version error") {
  harness h;
  auto r = h.cometd(handshake_body, h.token(), "/cometd/36.0");
  CHECK(r.status == 400);
  CHECK(r.body ==
        R"([{"channel":"/meta/handshake","id":"1","error":"400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/66.0'","successful":false}])");
}

TEST_CASE("the CometD Java client's message-type suffix paths are served like the base path") {
  harness h;
  auto r = h.cometd(handshake_body, h.token(), "/cometd/64.0/handshake");
  CHECK(r.body.find("\"successful\":true") != std::string::npos);
}

TEST_CASE("a request body over 32,768 bytes gets HTTP 413") {
  harness h;
  std::string big = R"([{"channel":"/meta/handshake","id":"1","version":"1.0","pad":")" + std::string(33'000, 'x') + "\"}]";
  auto r = h.cometd(big, h.token());
  CHECK(r.status == 413);
}

TEST_CASE("handshakes beyond the concurrent client limit are denied with Salesforce's limit text") {
  auto options = test_options();
  options.concurrent_client_limit = 2;
  options.client_expiry = std::chrono::seconds(30);
  harness h(options);
  const auto token = h.token();
  CHECK_FALSE(h.handshake(token).empty());
  CHECK_FALSE(h.handshake(token).empty());
  auto r = h.cometd(handshake_body, token);
  CHECK(r.body.find(R"("failureReason":"403::Organization concurrent user limit exceeded")") != std::string::npos);
  CHECK(r.body.find(R"("error":"403::Handshake denied")") != std::string::npos);
}

TEST_CASE("the emulator serves HTTPS with a certificate signed by the CA file it writes") {
  auto options = test_options();
  options.tls = true;
  harness h(options);
  CHECK(h.org().base_url().rfind("https://127.0.0.1:", 0) == 0);
  CHECK_FALSE(h.org().ca_file().empty());
  auto r = h.cometd(handshake_body, h.token());
  CHECK(r.body.find("\"successful\":true") != std::string::npos);
}
