// Unit tests of url::parse, origin(), is_loopback() and find_header.
#include <doctest/doctest.h>

#include "src/transport/http_types.hpp"

using sfstream::errc;
using sfstream::transport::find_header;
using sfstream::transport::url;

TEST_CASE("url::parse splits an https URL and fills the default port") {
  auto u = url::parse("HTTPS://MyDomain.my.salesforce.com/cometd/59.0?a=b");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "mydomain.my.salesforce.com");
  CHECK(u->port == 443);
  CHECK(u->target == "/cometd/59.0?a=b");
  CHECK(u->origin() == "https://mydomain.my.salesforce.com");
  CHECK(u->to_string() == "https://mydomain.my.salesforce.com/cometd/59.0?a=b");
  CHECK(u->is_https());
}

TEST_CASE("url::parse keeps an explicit port and gives a bare host the target /") {
  auto u = url::parse("http://127.0.0.1:8080");
  REQUIRE(u);
  CHECK(u->port == 8080);
  CHECK(u->target == "/");
  CHECK(u->origin() == "http://127.0.0.1:8080");
  auto q = url::parse("http://localhost?x=1");
  REQUIRE(q);
  CHECK(q->target == "/?x=1");
  auto d = url::parse("http://example.com:80/");
  REQUIRE(d);
  CHECK(d->origin() == "http://example.com");
}

TEST_CASE("url::parse accepts bracketed IPv6 addresses") {
  auto u = url::parse("https://[::1]:8443/x");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 8443);
  CHECK(u->origin() == "https://[::1]:8443");
  CHECK(u->is_loopback());
  auto v = url::parse("http://[2001:db8::1]/");
  REQUIRE(v);
  CHECK(v->port == 80);
  CHECK_FALSE(v->is_loopback());
}

TEST_CASE("url::parse refuses userinfo, fragments, other schemes and bad ports with invalid_url") {
  const char* bad[] = {"https://user:secret@example.com/",
                       "https://example.com/#frag",
                       "ftp://example.com/",
                       "example.com/path",
                       "https://",
                       "https://:443/",
                       "https://example.com:0/",
                       "https://example.com:65536/",
                       "https://example.com:12a/",
                       "https://example.com:/",
                       "https://[::1/",
                       "https://[127.0.0.1]/",
                       "https://exa mple.com/",
                       "https://example.com/\r\nX: y",
                       ""};
  for (const char* text : bad) {
    CAPTURE(text);
    sfstream::error_info why;
    CHECK_FALSE(url::parse(text, &why));
    CHECK(why.code == errc::invalid_url);
    CHECK_FALSE(why.diag.server_text.empty());
    CHECK(why.to_string().find("secret") == std::string::npos);
  }
}

TEST_CASE("is_loopback is true for 127.0.0.0/8, ::1 and localhost only") {
  CHECK(url::parse("http://127.0.0.1/")->is_loopback());
  CHECK(url::parse("http://127.45.6.7/")->is_loopback());
  CHECK(url::parse("http://LOCALHOST/")->is_loopback());
  CHECK(url::parse("http://[0:0:0:0:0:0:0:1]/")->is_loopback());
  CHECK_FALSE(url::parse("http://128.0.0.1/")->is_loopback());
  CHECK_FALSE(url::parse("http://localhost.example.com/")->is_loopback());
  CHECK_FALSE(url::parse("http://127.0.0.1.nip.io/")->is_loopback());
  CHECK_FALSE(url::parse("http://[::2]/")->is_loopback());
}

TEST_CASE("find_header matches names case-insensitively and returns the first") {
  sfstream::transport::header_list h{
      {"Set-Cookie", "a=1"}, {"content-type", "text/xml"}, {"SET-COOKIE", "b=2"}};
  REQUIRE(find_header(h, "set-cookie"));
  CHECK(*find_header(h, "set-cookie") == "a=1");
  CHECK(*find_header(h, "Content-Type") == "text/xml");
  CHECK(find_header(h, "Content-Length") == nullptr);
}
