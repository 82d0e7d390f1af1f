#include <doctest/doctest.h>

#include <ostream>

#include <tinyxml2.h>

#include "soap_auth/login_request.hpp"

using namespace sfstream;
using namespace sfstream::soap_auth;

namespace {

const std::string* header(const login_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

// Reads the text of the element with local name `local` anywhere under `e`.
const tinyxml2::XMLElement* find_local(const tinyxml2::XMLElement* e, std::string_view local) {
  for (; e; e = e->NextSiblingElement()) {
    std::string_view name = e->Name();
    if (auto c = name.rfind(':'); c != std::string_view::npos) name.remove_prefix(c + 1);
    if (name == local) return e;
    if (auto* found = find_local(e->FirstChildElement(), local)) return found;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a password with XML special characters and non-ASCII survives the envelope round trip") {
  const std::string password = "p&<>\"'\xC3\x9F;x]]>&amp;";
  const std::string username = "user+<tag>@example.com";
  login_request request;
  REQUIRE_FALSE(build_login_request(username, password, "64.0", wsdl::partner, request));

  tinyxml2::XMLDocument doc;
  REQUIRE(doc.Parse(request.body.data(), request.body.size()) == tinyxml2::XML_SUCCESS);
  const auto* user = find_local(doc.RootElement(), "username");
  const auto* pass = find_local(doc.RootElement(), "password");
  REQUIRE(user);
  REQUIRE(pass);
  CHECK(std::string(user->GetText()) == username);
  CHECK(std::string(pass->GetText()) == password);
  CHECK(std::string_view(pass->Parent()->ToElement()->Name()) == "urn:login");
}

TEST_CASE("the partner login request targets /services/Soap/u/<version> with SOAP 1.1 headers") {
  login_request request;
  REQUIRE_FALSE(build_login_request("u@example.com", "pw", "64.0", wsdl::partner, request));
  CHECK(request.target == "/services/Soap/u/64.0");
  REQUIRE(header(request, "Content-Type"));
  CHECK(*header(request, "Content-Type") == "text/xml; charset=utf-8");
  REQUIRE(header(request, "SOAPAction"));
  CHECK(*header(request, "SOAPAction") == "\"\"");
  CHECK(request.body.find("urn:partner.soap.sforce.com") != std::string::npos);
  CHECK(request.body.find("http://schemas.xmlsoap.org/soap/envelope/") != std::string::npos);
}

TEST_CASE("the enterprise login request targets /services/Soap/c/ and its namespace") {
  login_request request;
  REQUIRE_FALSE(build_login_request("u@example.com", "pw", "59", wsdl::enterprise, request));
  CHECK(request.target == "/services/Soap/c/59.0");
  CHECK(request.body.find("urn:enterprise.soap.sforce.com") != std::string::npos);
}

TEST_CASE("SOAP login versions 31.0 to 64.0 are accepted and 64.0 is the default") {
  std::string canonical;
  CHECK_FALSE(check_login_version("31.0", &canonical));
  CHECK(canonical == "31.0");
  CHECK_FALSE(check_login_version("64.0", &canonical));
  CHECK(canonical == "64.0");
  CHECK_FALSE(check_login_version("48", &canonical));
  CHECK(canonical == "48.0");
  CHECK(default_login_version == "64.0");
}

TEST_CASE("SOAP login version 65.0 and later fails at once and points to OAuth 2.0") {
  for (const char* v : {"65.0", "66.0", "67", "100.0"}) {
    const error_info e = check_login_version(v);
    CHECK(e.code == errc::auth_login_unavailable);
    CHECK(e.to_string().find("removed from API 65.0") != std::string::npos);
    CHECK(e.to_string().find("OAuth 2.0") != std::string::npos);
  }
  login_request request;
  CHECK(build_login_request("u", "p", "65.0", wsdl::partner, request).code ==
        errc::auth_login_unavailable);
  CHECK(request.body.empty());
}

TEST_CASE("SOAP login versions before 31.0 are refused as unsupported") {
  CHECK(check_login_version("30.0").code == errc::unsupported_api_version);
  CHECK(check_login_version("21.0").code == errc::unsupported_api_version);
}

TEST_CASE("malformed SOAP login versions are configuration errors") {
  for (const char* v : {"", "v64", "64.", "64.5", "64.0.1", ".0", "-1", "64.0 ", "1234.0"}) {
    CHECK_MESSAGE(check_login_version(v).code == errc::invalid_config, v);
  }
}

TEST_CASE(
    "an empty username or a control character in the credentials is refused without echoing it") {
  login_request request;
  CHECK(build_login_request("", "pw", "64.0", wsdl::partner, request).code == errc::invalid_config);
  const std::string secret(
      "se\x01"
      "cret",
      7);
  const error_info e = build_login_request("u@example.com", secret, "64.0", wsdl::partner, request);
  CHECK(e.code == errc::invalid_config);
  CHECK(e.to_string().find("cret") == std::string::npos);
  const std::string with_nul("pw\0tail", 7);
  CHECK(build_login_request("u@example.com", with_nul, "64.0", wsdl::partner, request).code ==
        errc::invalid_config);
}
