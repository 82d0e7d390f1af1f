// Conformance of the emulator's SOAP login() server against Salesforce's documented login() behaviour.
#include <doctest/doctest.h>

#include <regex>

#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;

namespace {

std::string envelope(const std::string& username, const std::string& password) {
  return R"(<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login><urn:username>)" +
         username + "</urn:username><urn:password>" + password +
         "</urn:password></urn:login></soapenv:Body></soapenv:Envelope>";
}

reply login(harness& h, const std::string& path, const std::string& body) {
  return h.send("POST", path, body, {{"Content-Type", "text/xml; charset=utf-8"}, {"SOAPAction", "\"\""}});
}

const std::string good_password = "demo-passDEMOTOKEN0000000000000";

}  // namespace

TEST_CASE("a partner login succeeds with a single-line result in Salesforce's element order") {
  harness h;
  auto r = login(h, "/services/Soap/u/59.0", envelope("demo@sfstream.local", good_password));
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "text/xml; charset=utf-8");
  CHECK(r.body.find('\n') == std::string::npos);
  CHECK(r.body.rfind(R"(<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result><metadataServerUrl>)",
                     0) == 0);
  const std::string base = h.org().base_url();
  const std::regex order(
      "<metadataServerUrl>" + base + "/services/Soap/m/59.0/00DDM0000000001</metadataServerUrl><passwordExpired>false</passwordExpired>"
      "<sandbox>false</sandbox><serverUrl>" + base + "/services/Soap/u/59.0/00DDM0000000001</serverUrl>"
      "<sessionId>00DDM0000000001![A-Za-z0-9._]+</sessionId><userId>005DM0000000001AAA</userId><userInfo>.*"
      "<sessionSecondsValid>7200</sessionSecondsValid>.*<userId>005DM0000000001AAA</userId>.*</userInfo></result></loginResponse>");
  CHECK(std::regex_search(r.body, order));
  bool browser_id = false;
  for (const auto& c : r.all("Set-Cookie")) browser_id = browser_id || c.rfind("BrowserId=", 0) == 0;
  CHECK(browser_id);
}

TEST_CASE("the session id returned by login opens a CometD handshake") {
  harness h;
  auto r = login(h, "/services/Soap/u/64.0/", envelope("demo@sfstream.local", good_password));
  std::smatch m;
  REQUIRE(std::regex_search(r.body, m, std::regex("<sessionId>([^<]+)</sessionId>")));
  CHECK_FALSE(h.handshake(m[1].str()).empty());
}

TEST_CASE("the default-namespace envelope form with an empty Header and CallOptions is accepted") {
  harness h;
  const std::string body =
      R"(<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header><CallOptions xmlns="urn:partner.soap.sforce.com"><client>x</client></CallOptions></env:Header><env:Body><login xmlns="urn:partner.soap.sforce.com"><username>demo@sfstream.local</username><password>)" +
      good_password + "</password></login></env:Body></env:Envelope>";
  CHECK(login(h, "/services/Soap/u/59.0", body).status == 200);
}

TEST_CASE("the enterprise path answers in the enterprise namespace") {
  harness h;
  auto r = login(h, "/services/Soap/c/59.0", envelope("demo@sfstream.local", good_password));
  CHECK(r.status == 200);
  CHECK(r.body.find(R"(xmlns="urn:enterprise.soap.sforce.com")") != std::string::npos);
}

TEST_CASE("a wrong password gets the exact INVALID_LOGIN LoginFault with a bare faultcode and HTTP 500") {
  harness h;
  auto r = login(h, "/services/Soap/u/59.0", envelope("demo@sfstream.local", "wrong"));
  CHECK(r.status == 500);
  CHECK(r.header("Content-Type") == "text/xml; charset=utf-8");
  CHECK(r.body ==
        R"(<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>)");
}

TEST_CASE("the password without the token from an untrusted IP gets LOGIN_MUST_USE_SECURITY_TOKEN") {
  harness h;
  auto r = login(h, "/services/Soap/u/59.0", envelope("demo@sfstream.local", "demo-pass"));
  CHECK(r.status == 500);
  CHECK(r.body.find("<faultcode>LOGIN_MUST_USE_SECURITY_TOKEN</faultcode><faultstring>LOGIN_MUST_USE_SECURITY_TOKEN: Invalid username, password, security token; or user locked out. Are you at a new location?") !=
        std::string::npos);
}

TEST_CASE("the password alone is accepted for a user marked as on a trusted network") {
  auto options = test_options();
  options.users.front().trusted_ip = true;
  harness h(options);
  CHECK(login(h, "/services/Soap/u/59.0", envelope("demo@sfstream.local", "demo-pass")).status == 200);
}

TEST_CASE("login at API 65.0 and later gets the INVALID_OPERATION fault with the exact text") {
  harness h;
  auto r = login(h, "/services/Soap/u/65.0", envelope("demo@sfstream.local", good_password));
  CHECK(r.status == 500);
  CHECK(r.body.find("<faultcode>sf:INVALID_OPERATION</faultcode><faultstring>INVALID_OPERATION: The SOAP Login operation is not available in the API version specified (65.0). Refer to the documentation for supported versions.</faultstring><detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\">") !=
        std::string::npos);
}

TEST_CASE("login below API 31.0 gets sf:UNSUPPORTED_API_VERSION") {
  harness h;
  auto r = login(h, "/services/Soap/u/30.0", envelope("demo@sfstream.local", good_password));
  CHECK(r.status == 500);
  CHECK(r.body.find("<faultcode>sf:UNSUPPORTED_API_VERSION</faultcode><faultstring>UNSUPPORTED_API_VERSION: Invalid Api version specified on URL</faultstring>") !=
        std::string::npos);
}

TEST_CASE("XML special characters in the password are unescaped before checking") {
  auto options = test_options();
  options.users.front().password = "a<b&c";
  harness h(options);
  CHECK(login(h, "/services/Soap/u/59.0", envelope("demo@sfstream.local", "a&lt;b&amp;cDEMOTOKEN0000000000000")).status == 200);
}

TEST_CASE("a body that is not XML gets a SOAP client fault, not a crash") {
  harness h;
  auto r = login(h, "/services/Soap/u/59.0", "<<<not xml");
  CHECK(r.status == 500);
  CHECK(r.body.find("<faultcode>soapenv:Client</faultcode>") != std::string::npos);
}
