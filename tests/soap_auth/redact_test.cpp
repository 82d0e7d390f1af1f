// Tests of the shared redaction helper (sfstream/detail/redact.hpp, in sfstream_vocabulary).
#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <vector>

#include "sfstream/detail/redact.hpp"

using sfstream::detail::redact;
using sfstream::detail::redact_known_patterns;
using sfstream::detail::redact_secrets;

TEST_CASE("every whole-token occurrence of every registered secret is masked, longest first") {
  const std::vector<std::string> secrets{"abcdefgh", "abcdefgh-ijkl", ""};
  CHECK(redact_secrets("x abcdefgh-ijkl y abcdefgh z (abcdefgh)", secrets) ==
        "x [REDACTED] y [REDACTED] z ([REDACTED])");
  CHECK(redact_secrets("nothing here", secrets) == "nothing here");
  CHECK(redact_secrets("", secrets).empty());
}

TEST_CASE("a registered secret inside a word is left alone") {
  const std::vector<std::string> secrets{"hunter22"};
  const std::string text = "xhunter22 hunter22x hunter22_ _hunter22 hunter220";
  CHECK(redact_secrets(text, secrets) == text);
  CHECK(redact_secrets("hunter22.", secrets) == "[REDACTED].");
  CHECK(redact_secrets("=hunter22&", secrets) == "=[REDACTED]&");
}

TEST_CASE("a secret edge that is not a word character may touch a word") {
  // Password and security token as SOAP sends them, run together.
  const std::vector<std::string> secrets{"Pa$$w0rd&<secret>", "SECTOKEN9876543210"};
  CHECK(redact_secrets("bad password Pa$$w0rd&<secret>SECTOKEN9876543210 for", secrets) ==
        "bad password [REDACTED] for");  // Adjacent masks merge into one.
}

TEST_CASE("overlapping occurrences of a secret are hidden whole") {
  const std::vector<std::string> secrets{"-x-x-x-x-"};
  CHECK(redact_secrets("-x-x-x-x-x-!", secrets) == "[REDACTED]!");
}

TEST_CASE("a registered secret shorter than 8 characters is never searched for in free text") {
  CHECK(sfstream::detail::min_registered_secret_length == 8);
  const std::vector<std::string> secrets{"p", "pass", "passwor"};
  CHECK(redact("Invalid username, password, security token; or user locked out.", secrets) ==
        "Invalid username, password, security token; or user locked out.");
  CHECK(redact("Invalid username, password", std::vector<std::string>{"p"}) ==
        "Invalid username, password");
  CHECK(redact("pass passwor", secrets) == "pass passwor");
  // Where it stands as a value it is masked all the same.
  CHECK(redact("username=u&password=p", secrets) == "username=u&password=[REDACTED]");
  CHECK(redact("<urn:password>p</urn:password>", secrets) ==
        "<urn:password>[REDACTED]</urn:password>");
  CHECK(redact(R"({"password":"p"})", secrets) == R"({"password":"[REDACTED]"})");
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

TEST_CASE("redact applies the registered secrets and the value positions together") {
  const std::vector<std::string> secrets{"hunter2hunter2"};
  CHECK(redact("pw hunter2hunter2 Authorization: OAuth x", secrets) ==
        "pw [REDACTED] Authorization: [REDACTED]");
  // Both are found in the original text: a secret inside a masked value is hidden once.
  CHECK(redact("password=hunter2hunter2&x=1", secrets) == "password=[REDACTED]&x=1");
}

TEST_CASE("X-SFDC-Session headers, securityToken elements and session members are masked") {
  CHECK(redact_known_patterns("X-SFDC-Session: 00Dxx!abc\r\nHost: h") ==
        "X-SFDC-Session: [REDACTED]\r\nHost: h");
  CHECK(redact_known_patterns("<securityToken>T0K</securityToken>") ==
        "<securityToken>[REDACTED]</securityToken>");
  CHECK(redact_known_patterns(R"({"sessionId": "S", "session_id":"T", "sid":"U", "n":"V"})") ==
        R"({"sessionId": "[REDACTED]", "session_id":"[REDACTED]", "sid":"[REDACTED]", "n":"V"})");
  CHECK(redact_known_patterns(R"({"client_assertion":"eyJ","security_token":"st"})") ==
        R"({"client_assertion":"[REDACTED]","security_token":"[REDACTED]"})");
}

TEST_CASE("JSON members quoted inside another JSON string are masked") {
  CHECK(redact_known_patterns(R"({"body":"{\"access_token\":\"tok\",\"id\":\"x\"}"})") ==
        R"({"body":"{\"access_token\":\"[REDACTED]\",\"id\":\"x\"}"})");
}

TEST_CASE("form, query and cookie fields are masked at a field start only") {
  CHECK(redact_known_patterns("https://h/frontdoor.jsp?sid=SESSION&retURL=/x") ==
        "https://h/frontdoor.jsp?sid=[REDACTED]&retURL=/x");
  CHECK(redact_known_patterns("sid=abc; path=/; BrowserId=b") ==
        "sid=[REDACTED]; path=/; BrowserId=b");
  CHECK(redact_known_patterns("a=1;sid=abc") == "a=1;sid=[REDACTED]");
  CHECK(redact_known_patterns("grant_type=urn:jwt-bearer&assertion=eyJ.x.y") ==
        "grant_type=urn:jwt-bearer&assertion=[REDACTED]");
  CHECK(redact_known_patterns("Password=p1 id_token=i2") ==
        "Password=[REDACTED] id_token=[REDACTED]");
  // Not a field start: part of a longer name.
  const std::string text = "old_password=x mysid=y resid=z";
  CHECK(redact_known_patterns(text) == text);
}

TEST_CASE("the password of URL user info is masked and the user and host are kept") {
  CHECK(redact_known_patterns("proxy http://proxyuser:s3cr3t@proxy.example:3128 refused") ==
        "proxy http://proxyuser:[REDACTED]@proxy.example:3128 refused");
  CHECK(redact_known_patterns("https://u:p%40ss@h/path?q=1") == "https://u:[REDACTED]@h/path?q=1");
  const std::string kept = "https://user@host/a https://host:8443/b@c mailto:a@b";
  CHECK(redact_known_patterns(kept) == kept);
}

TEST_CASE("server text without a value position is never changed") {
  const std::vector<std::string> secrets{"p", "pw", "secret"};
  for (const std::string text :
       {"Invalid username, password, security token; or user locked out.",
        "INVALID_LOGIN: Invalid username, password, security token; or user locked out.",
        "403::Unknown client", "400::The replayId {5} you provided was invalid.",
        "The password has expired; passwordExpired=true is not a field here: password is",
        "authorization failed", "see https://help.salesforce.com/s/articleView?id=sf.x"}) {
    CAPTURE(text);
    CHECK(redact(text, secrets) == text);
  }
}

TEST_CASE("ordinary text with key=value pairs that are not secrets is left alone") {
  const std::string text = "exit code=3 status=500 user=u@example.com";
  CHECK(redact_known_patterns(text) == text);
}
