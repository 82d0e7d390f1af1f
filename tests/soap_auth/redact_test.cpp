// Tests of the shared redaction helper (sfstream/detail/redact.hpp, in sfstream_vocabulary).
#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <vector>

#include "sfstream/detail/redact.hpp"

using sfstream::detail::redact;
using sfstream::detail::redact_known_patterns;
using sfstream::detail::redact_secrets;

TEST_CASE("every occurrence of every given secret is replaced, longest first") {
  const std::vector<std::string> secrets{"abc", "abcdef", ""};
  CHECK(redact_secrets("x abcdef y abc z", secrets) == "x [REDACTED] y [REDACTED] z");
  CHECK(redact_secrets("nothing here", secrets) == "nothing here");
  CHECK(redact_secrets("", secrets).empty());
}

TEST_CASE("overlapping occurrences of secrets are hidden whole") {
  const std::vector<std::string> secrets{"aXa"};
  CHECK(redact_secrets("aXaXa!", secrets) == "[REDACTED]!");
}

TEST_CASE(
    "Authorization, Proxy-Authorization and cookie header values are masked to the end of the "
    "line") {
  CHECK(redact_known_patterns("POST / HTTP/1.1\r\nauthorization: Bearer tok123\r\nHost: x\r\n") ==
        "POST / HTTP/1.1\r\nauthorization: [REDACTED]\r\nHost: x\r\n");
  CHECK(redact_known_patterns("Proxy-Authorization: Basic dXNlcjpwYXNz") ==
        "Proxy-Authorization: [REDACTED]");
  CHECK(redact_known_patterns("Set-Cookie: sid=abc; path=/") == "Set-Cookie: [REDACTED]");
}

TEST_CASE("sessionId and password element contents are masked whatever the prefix") {
  CHECK(redact_known_patterns("<sessionId>S1</sessionId><urn:password>p&amp;w</urn:password>") ==
        "<sessionId>[REDACTED]</sessionId><urn:password>[REDACTED]</urn:password>");
  CHECK(redact_known_patterns("<p:sessionId xsi:type=\"x\">S2") ==
        "<p:sessionId xsi:type=\"x\">[REDACTED]");
  CHECK(redact_known_patterns("<password/><passwordExpired>true</passwordExpired>") ==
        "<password/><passwordExpired>true</passwordExpired>");
}

TEST_CASE("JSON token members and form fields are masked") {
  CHECK(redact_known_patterns(R"({"access_token" : "a\"b", "refresh_token":"r1","id":"x"})") ==
        R"({"access_token" : "[REDACTED]", "refresh_token":"[REDACTED]","id":"x"})");
  CHECK(redact_known_patterns(
            "grant_type=password&client_id=c&client_secret=s&username=u&password=p%26") ==
        "grant_type=password&client_id=c&client_secret=[REDACTED]&username=u&password=[REDACTED]");
  CHECK(redact_known_patterns("grant_type=refresh_token&refresh_token=rt") ==
        "grant_type=refresh_token&refresh_token=[REDACTED]");
}

TEST_CASE("PEM private key blocks are masked whole and certificates are left alone") {
  const std::string key = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----";
  const std::string rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----";
  CHECK(redact_known_patterns("k=" + key + " end") == "k=[REDACTED] end");
  CHECK(redact_known_patterns(rsa) == "[REDACTED]");
  CHECK(redact_known_patterns(cert) == cert);
  CHECK(redact_known_patterns("-----BEGIN PRIVATE KEY-----\nMIIE") == "[REDACTED]");
}

TEST_CASE("Salesforce session ids keep their org id and lose their token part") {
  CHECK(redact_known_patterns("token 00D30ACACA00RnR!AQQAQHLr.x_y-z done") ==
        "token 00D30ACACA00RnR![REDACTED] done");
  CHECK(redact_known_patterns("00DAA0000000001AAA!abc") == "00DAA0000000001AAA![REDACTED]");
  CHECK(redact_known_patterns("00D123!short") == "00D123!short");
}

TEST_CASE("redact applies the given secrets and the known patterns together") {
  const std::vector<std::string> secrets{"hunter2"};
  CHECK(redact("pw hunter2 Authorization: OAuth x", secrets) ==
        "pw [REDACTED] Authorization: [REDACTED]");
}

TEST_CASE("ordinary text with key=value pairs that are not secrets is left alone") {
  const std::string text = "exit code=3 status=500 user=u@example.com";
  CHECK(redact_known_patterns(text) == text);
}
