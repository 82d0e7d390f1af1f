#include <doctest/doctest.h>

#include <ostream>

#include <string>

#include "soap_auth/login_response.hpp"

using namespace sfstream;
using namespace sfstream::soap_auth;

namespace {

const std::string session_id = "00D30ACACA00RnR!AQQAQHLrSECRETxyzSECRETxyz.SECRET_tail";

// A real-shaped partner response, pretty-printed.
const std::string pretty_response = R"(<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body><loginResponse><result>
  <metadataServerUrl>https://foobar.my.salesforce.com/services/Soap/m/37.0/00D30ACACA00RnR</metadataServerUrl>
  <passwordExpired>false</passwordExpired>
  <sandbox>false</sandbox>
  <serverUrl>https://foobar.my.salesforce.com/services/Soap/u/37.0/00D30ACACA00RnR</serverUrl>
  <sessionId>)" + session_id + R"(</sessionId>
  <userId>000606060606WH5AAO</userId>
  <userInfo>
   <accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>
   <orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>
   <orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>
   <orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>
   <orgHasPersonAccounts>false</orgHasPersonAccounts>
   <organizationId>0090909ACA00RnREAU</organizationId>
   <organizationMultiCurrency>false</organizationMultiCurrency>
   <organizationName>Foo Bar, Inc.</organizationName>
   <profileId>0fdfdfdfdfdfdwfAAC</profileId><roleId>00E84884800njJZEAY</roleId>
   <sessionSecondsValid>14400</sessionSecondsValid>
   <userDefaultCurrencyIsoCode xsi:nil="true"/>
   <userEmail>foobar.homer@foobar.com</userEmail><userFullName>FooBar Homer</userFullName>
   <userLanguage>en_US</userLanguage><userId>000606060606WH5AAO</userId>
   <userLocale>en_US</userLocale><userName>foobar.homer@foobar.com</userName>
   <userTimeZone>America/New_York</userTimeZone><userType>Standard</userType>
   <userUiSkin>Theme3</userUiSkin>
  </userInfo>
 </result></loginResponse></soapenv:Body>
</soapenv:Envelope>
)";

// Single line, SOAP-ENV: prefix, prefixed partner elements, a port in the server URL.
const std::string single_line_prefixed =
    R"(<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:p="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><SOAP-ENV:Body><p:loginResponse><p:result><p:metadataServerUrl xsi:nil="true"/><p:passwordExpired>false</p:passwordExpired><p:sandbox>true</p:sandbox><p:serverUrl>https://acme--dev.sandbox.my.salesforce.com:8443/services/Soap/u/64.0/00DAA0000000001</p:serverUrl><p:sessionId>)" +
    session_id +
    R"(</p:sessionId><p:userId>005AA000000000AAAA</p:userId><p:userInfo><p:organizationId>00DAA0000000001AAA</p:organizationId><p:sessionSecondsValid>7200</p:sessionSecondsValid><p:userId>005AA000000000AAAA</p:userId></p:userInfo></p:result></p:loginResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>)";

// No prefixes at all: default namespaces only, env-less layout, CRLF line ends.
const std::string unprefixed =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Envelope "
    "xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">\r\n"
    "<Body>\r\n<loginResponse xmlns=\"urn:partner.soap.sforce.com\">\r\n<result>\r\n"
    "<passwordExpired>false</passwordExpired>\r\n"
    "<serverUrl>http://127.0.0.1:8080/services/Soap/u/64.0/00DAA0000000001</serverUrl>\r\n"
    "<sessionId>" +
    session_id +
    "</sessionId>\r\n"
    "<userInfo><userId>005AA000000000BBBB</userId><organizationId>00DAA0000000001AAA</"
    "organizationId></userInfo>\r\n"
    "</result>\r\n</loginResponse>\r\n</Body>\r\n</Envelope>\r\n";

std::string fault(std::string_view faultcode, std::string_view exception_code,
                  std::string_view message, std::string_view env = "soapenv") {
  std::string e(env);
  return R"(<?xml version="1.0" encoding="UTF-8"?><)" + e + R"(:Envelope xmlns:)" + e +
         R"(="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><)" +
         e + ":Body><" + e + ":Fault><faultcode>" + std::string(faultcode) +
         "</faultcode><faultstring>" + std::string(exception_code) + ": " + std::string(message) +
         R"(</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>)" +
         std::string(exception_code) + "</sf:exceptionCode><sf:exceptionMessage>" +
         std::string(message) + "</sf:exceptionMessage></sf:LoginFault></detail></" + e +
         ":Fault></" + e + ":Body></" + e + ":Envelope>";
}

void check_no_session_id(const error_info& e) {
  CHECK(e.to_string().find("SECRET") == std::string::npos);
  CHECK(e.diag.to_string().find("SECRET") == std::string::npos);
}

}  // namespace

TEST_CASE("a pretty-printed partner login response with a default namespace is parsed") {
  login_result r;
  REQUIRE_FALSE(parse_login_response(pretty_response, 200, r));
  CHECK(r.session_id == session_id);
  CHECK(r.server_url == "https://foobar.my.salesforce.com/services/Soap/u/37.0/00D30ACACA00RnR");
  CHECK(r.instance_url == "https://foobar.my.salesforce.com");
  CHECK(r.user_id == "000606060606WH5AAO");
  CHECK(r.organization_id == "0090909ACA00RnREAU");
  CHECK(r.session_seconds_valid == 14400);
  CHECK_FALSE(r.password_expired);
  CHECK_FALSE(r.sandbox);
  CHECK(r.metadata_server_url ==
        "https://foobar.my.salesforce.com/services/Soap/m/37.0/00D30ACACA00RnR");
}

TEST_CASE(
    "a single-line response with SOAP-ENV and element prefixes keeps the port and reads nil as "
    "empty") {
  login_result r;
  REQUIRE_FALSE(parse_login_response(single_line_prefixed, 200, r));
  CHECK(r.session_id == session_id);
  CHECK(r.instance_url == "https://acme--dev.sandbox.my.salesforce.com:8443");
  CHECK(r.user_id == "005AA000000000AAAA");
  CHECK(r.organization_id == "00DAA0000000001AAA");
  CHECK(r.session_seconds_valid == 7200);
  CHECK(r.sandbox);
  CHECK(r.metadata_server_url.empty());
}

TEST_CASE("a response without prefixes takes the user id from userInfo when result has none") {
  login_result r;
  REQUIRE_FALSE(parse_login_response(unprefixed, 200, r));
  CHECK(r.instance_url == "http://127.0.0.1:8080");
  CHECK(r.user_id == "005AA000000000BBBB");
  CHECK(r.session_seconds_valid == 0);
}

TEST_CASE("an env: prefixed envelope is parsed like any other") {
  std::string body = single_line_prefixed;
  for (std::size_t pos; (pos = body.find("SOAP-ENV")) != std::string::npos;)
    body.replace(pos, 8, "env");
  login_result r;
  CHECK_FALSE(parse_login_response(body, 200, r));
  CHECK(r.session_id == session_id);
}

TEST_CASE("passwordExpired=true gives auth_password_expired without the session id in the text") {
  std::string body = pretty_response;
  body.replace(body.find("<passwordExpired>false"), 22, "<passwordExpired>true");
  login_result r;
  const error_info e = parse_login_response(body, 200, r);
  CHECK(e.code == errc::auth_password_expired);
  CHECK(r.password_expired);
  check_no_session_id(e);
}

TEST_CASE("each known login fault maps to its own error with bare and sf: prefixed faultcodes") {
  struct row {
    const char* code;
    errc expected;
    const char* message;
  };
  const row rows[] = {
      {"INVALID_LOGIN", errc::auth_invalid_login,
       "Invalid username, password, security token; or user locked out."},
      {"LOGIN_MUST_USE_SECURITY_TOKEN", errc::auth_must_use_security_token,
       "Invalid username, password, security token; or user locked out. Are you at a new "
       "location?"},
      {"INVALID_SESSION_ID", errc::auth_invalid_session,
       "Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing "
       "session hash: "
       "abc=\nThis error usually occurs after a session expires or a user logs out. "},
      {"API_DISABLED_FOR_ORG", errc::auth_api_disabled,
       "API is not enabled for this Organization or Partner"},
      {"UNSUPPORTED_API_VERSION", errc::auth_unsupported_api_version,
       "Invalid Api version specified on URL"},
      {"INVALID_OPERATION", errc::auth_login_unavailable,
       "The SOAP Login operation is not available in the API version specified (65.0). Refer to "
       "the "
       "documentation for supported versions."},
      {"LOGIN_RATE_EXCEEDED", errc::auth_fault, "Login Rate Exceeded"},
  };
  for (const auto& r : rows) {
    for (const std::string& faultcode : {std::string(r.code), "sf:" + std::string(r.code)}) {
      CAPTURE(faultcode);
      login_result result;
      const error_info e = parse_login_response(fault(faultcode, r.code, r.message), 500, result);
      CHECK(e.code == r.expected);
      CHECK(e.diag.server_code == r.code);
      CHECK(e.diag.server_text.find(r.code) == 0);
      CHECK(result.session_id.empty());
    }
  }
}

TEST_CASE("the exceptionCode in the fault detail wins over a generic faultcode") {
  login_result r;
  const error_info e = parse_login_response(
      fault("soapenv:Server", "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.", "SOAP-ENV"),
      500, r);
  CHECK(e.code == errc::auth_invalid_login);
  CHECK(e.diag.server_code == "INVALID_LOGIN");
}

TEST_CASE("a fault without detail uses the faultcode without its prefix") {
  const std::string body =
      R"(<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:MUTUAL_AUTHENTICATION_FAILED</faultcode><faultstring>MUTUAL_AUTHENTICATION_FAILED: This org requires mutual authentication.</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>)";
  login_result r;
  const error_info e = parse_login_response(body, 500, r);
  CHECK(e.code == errc::auth_fault);
  CHECK(e.diag.server_code == "MUTUAL_AUTHENTICATION_FAILED");
  CHECK(e.to_string().find("MUTUAL_AUTHENTICATION_FAILED") != std::string::npos);
}

TEST_CASE("an HTML error page gives auth_bad_response naming the page and status") {
  const std::string body =
      "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><p>Down for "
      "maintenance</p><br></body></html>";
  login_result r;
  const error_info e = parse_login_response(body, 503, r);
  CHECK(e.code == errc::auth_bad_response);
  CHECK(e.diag.server_code == "HTTP 503");
  CHECK(e.diag.server_text.find("HTML page") != std::string::npos);
  CHECK(e.diag.server_text.find("Service Unavailable") != std::string::npos);
}

TEST_CASE("a well-formed XHTML page is also reported as an HTML page") {
  login_result r;
  const error_info e = parse_login_response("<html><body>oops</body></html>", 500, r);
  CHECK(e.code == errc::auth_bad_response);
  CHECK(e.diag.server_text.find("HTML page") != std::string::npos);
}

TEST_CASE("a truncated response gives auth_bad_response and never echoes the session id") {
  for (std::size_t cut :
       {std::size_t{10}, pretty_response.find("</sessionId>") - 3, pretty_response.size() - 20}) {
    CAPTURE(cut);
    login_result r;
    const error_info e = parse_login_response(pretty_response.substr(0, cut), 200, r);
    CHECK(e.code == errc::auth_bad_response);
    CHECK(e.diag.server_text.find("truncated") != std::string::npos);
    CHECK(r.session_id.empty());
    check_no_session_id(e);
  }
}

TEST_CASE("empty, non-XML and non-SOAP bodies give auth_bad_response with a clear text") {
  login_result r;
  CHECK(parse_login_response("", 200, r).diag.server_text == "the login reply is empty");
  CHECK(parse_login_response("{\"error\":\"x\"}", 400, r).code == errc::auth_bad_response);
  const error_info other = parse_login_response("<feed><entry/></feed>", 200, r);
  CHECK(other.code == errc::auth_bad_response);
  CHECK(other.diag.server_text.find("not a SOAP envelope") != std::string::npos);
  const error_info empty_body = parse_login_response(
      R"(<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>)",
      200, r);
  CHECK(empty_body.code == errc::auth_bad_response);
}

TEST_CASE("a loginResponse without sessionId or with a relative serverUrl is refused") {
  std::string no_session = pretty_response;
  no_session.erase(no_session.find("<sessionId>"),
                   no_session.find("</sessionId>") + 12 - no_session.find("<sessionId>"));
  login_result r;
  CHECK(parse_login_response(no_session, 200, r).code == errc::auth_bad_response);

  std::string relative = pretty_response;
  const auto at = relative.find("<serverUrl>") + 11;
  relative.replace(at, relative.find("</serverUrl>") - at, "/services/Soap/u/37.0");
  const error_info e = parse_login_response(relative, 200, r);
  CHECK(e.code == errc::auth_bad_response);
  check_no_session_id(e);
}
