#include <doctest/doctest.h>

#include <ostream>

#include "src/auth/oauth_reply.hpp"

using namespace sfstream;
using namespace sfstream::auth;

TEST_CASE("a password-grant token reply is parsed and the ids come from the identity URL") {
  const std::string body =
      R"({"access_token":"00DAA0000000001!AQ0SECRETTOKEN","instance_url":"https://acme.my.salesforce.com",
    "id":"https://login.salesforce.com/id/00DAA0000000001AAA/005AA000000000AAAA","token_type":"Bearer",
    "issued_at":"1700000000000","signature":"c2lnbmF0dXJl"})";
  oauth_token t;
  REQUIRE_FALSE(parse_oauth_reply(body, 200, t));
  CHECK(t.access_token == "00DAA0000000001!AQ0SECRETTOKEN");
  CHECK(t.instance_url == "https://acme.my.salesforce.com");
  CHECK(t.organization_id == "00DAA0000000001AAA");
  CHECK(t.user_id == "005AA000000000AAAA");
  CHECK(t.token_type == "Bearer");
  CHECK(t.issued_at == "1700000000000");
  CHECK(t.signature == "c2lnbmF0dXJl");
  CHECK(t.refresh_token.empty());
  CHECK(t.scope.empty());
}

TEST_CASE("a token reply with refresh token and scope keeps both and drops a trailing slash") {
  const std::string body = R"({"access_token":"a","refresh_token":"r","scope":"api refresh_token",
    "instance_url":"http://127.0.0.1:9000/","id":"http://127.0.0.1:9000/id/00DAA0000000001/005AA0000000001","issued_at":"1"})";
  oauth_token t;
  REQUIRE_FALSE(parse_oauth_reply(body, 200, t));
  CHECK(t.refresh_token == "r");
  CHECK(t.scope == "api refresh_token");
  CHECK(t.instance_url == "http://127.0.0.1:9000");
  CHECK(t.organization_id == "00DAA0000000001");
  CHECK(t.token_type == "Bearer");
}

TEST_CASE("an invalid_grant reply gives auth_oauth_error with its description in the diagnostics") {
  oauth_token t;
  const error_info e = parse_oauth_reply(
      R"({"error":"invalid_grant","error_description":"authentication failure"})", 400, t);
  CHECK(e.code == errc::auth_oauth_error);
  CHECK(e.diag.server_code == "invalid_grant");
  CHECK(e.diag.server_text == "authentication failure");
  CHECK(e.to_string().find("invalid_grant: authentication failure") != std::string::npos);
  CHECK(t.access_token.empty());
}

TEST_CASE(
    "invalid_client, unsupported_grant_type and an error without description are OAuth errors") {
  oauth_token t;
  CHECK(
      parse_oauth_reply(
          R"({"error":"invalid_client","error_description":"invalid client credentials"})", 400, t)
          .diag.server_code == "invalid_client");
  CHECK(parse_oauth_reply(R"({"error":"unsupported_grant_type"})", 400, t).code ==
        errc::auth_oauth_error);
  CHECK(parse_oauth_reply(R"({"error":42})", 400, t).diag.server_code == "(unnamed error)");
  const error_info rest_style = parse_oauth_reply(
      R"([{"errorCode":"INVALID_SESSION_ID","message":"Session expired"}])", 401, t);
  CHECK(rest_style.code == errc::auth_oauth_error);
  CHECK(rest_style.diag.server_code == "INVALID_SESSION_ID");
}

TEST_CASE("non-JSON, truncated and HTML token replies give auth_bad_response") {
  oauth_token t;
  CHECK(parse_oauth_reply("", 200, t).diag.server_text == "the token reply is empty");
  const error_info truncated =
      parse_oauth_reply(R"({"access_token":"SECRETXYZ","instance_url":"https://x)", 200, t);
  CHECK(truncated.code == errc::auth_bad_response);
  CHECK(truncated.diag.server_text.find("truncated") != std::string::npos);
  CHECK(truncated.to_string().find("SECRETXYZ") == std::string::npos);
  const error_info html = parse_oauth_reply("<html><body>Bad gateway</body></html>", 502, t);
  CHECK(html.code == errc::auth_bad_response);
  CHECK(html.diag.server_code == "HTTP 502");
  CHECK(html.diag.server_text.find("HTML") != std::string::npos);
  CHECK(parse_oauth_reply("[1,2]", 200, t).code == errc::auth_bad_response);
  CHECK(parse_oauth_reply("{} trailing", 200, t).code == errc::auth_bad_response);
}

TEST_CASE("a token reply without access_token or with a bad instance_url is refused") {
  oauth_token t;
  CHECK(parse_oauth_reply(R"({"instance_url":"https://x"})", 200, t).code ==
        errc::auth_bad_response);
  const error_info e =
      parse_oauth_reply(R"({"access_token":"SECRETXYZ","instance_url":"x.com"})", 200, t);
  CHECK(e.code == errc::auth_bad_response);
  CHECK(e.to_string().find("SECRETXYZ") == std::string::npos);
  CHECK(t.access_token.empty());
}

TEST_CASE("an error description that quotes a token is masked") {
  oauth_token t;
  const error_info e = parse_oauth_reply(
      R"({"error":"invalid_grant","error_description":"bad \"refresh_token\":\"RT123\" or 00DAA0000000001!SECRETPART"})",
      400, t);
  CHECK(e.diag.server_text.find("RT123") == std::string::npos);
  CHECK(e.diag.server_text.find("SECRETPART") == std::string::npos);
}

TEST_CASE("identity URLs of other shapes give no ids") {
  std::string org, user;
  CHECK_FALSE(parse_identity_url("https://login.salesforce.com/id/abc", org, user));
  CHECK_FALSE(parse_identity_url("", org, user));
  CHECK(parse_identity_url("https://login.salesforce.com/id/00DAA0000000001AAA/005AA000000000AAAA/",
                           org, user));
  CHECK(user == "005AA000000000AAAA");
}
