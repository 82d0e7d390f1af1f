// Unit tests of cookie_jar: RFC 6265 domain, path, expiry, Max-Age, Secure, ordering.
#include <doctest/doctest.h>

#include "src/transport/cookie_jar.hpp"

using sfstream::transport::cookie_jar;
using sfstream::transport::url;
using namespace std::chrono_literals;

namespace {

url at(const char* text) {
  auto u = url::parse(text);
  REQUIRE(u);
  return *u;
}

const cookie_jar::clock::time_point t0 =
    cookie_jar::clock::time_point(std::chrono::seconds(1'700'000'000));

}  // namespace

TEST_CASE("cookie values are sent back byte-exact") {
  cookie_jar jar;
  CHECK(jar.store_one(at("https://na1.salesforce.com/cometd/59.0"),
                      "sfdc-stream=!//QiKCt+xtw=:a!b==; path=/", t0));
  CHECK(jar.store_one(at("https://na1.salesforce.com/"), "q=\"quoted value\"", t0));
  CHECK(jar.header_for(at("https://na1.salesforce.com/"), t0) ==
        "sfdc-stream=!//QiKCt+xtw=:a!b==; q=\"quoted value\"");
}

TEST_CASE("a host-only cookie goes to its host only, a Domain cookie to subdomains too") {
  cookie_jar jar;
  CHECK(jar.store_one(at("https://a.example.com/"), "host=1", t0));
  CHECK(jar.store_one(at("https://a.example.com/"), "dom=2; Domain=.Example.COM", t0));
  CHECK(jar.header_for(at("https://a.example.com/"), t0) == "host=1; dom=2");
  CHECK(jar.header_for(at("https://b.example.com/"), t0) == "dom=2");
  CHECK(jar.header_for(at("https://example.com/"), t0) == "dom=2");
  CHECK(jar.header_for(at("https://x.a.example.com/"), t0) == "dom=2");
  CHECK(jar.header_for(at("https://badexample.com/"), t0) == "");
}

TEST_CASE("a Domain attribute that does not cover the sending host is rejected") {
  cookie_jar jar;
  CHECK_FALSE(jar.store_one(at("https://a.example.com/"), "x=1; Domain=other.com", t0));
  CHECK_FALSE(jar.store_one(at("https://example.com/"), "x=1; Domain=a.example.com", t0));
  CHECK_FALSE(jar.store_one(at("https://127.0.0.1/"), "x=1; Domain=0.0.1", t0));
  CHECK(jar.size() == 0);
}

TEST_CASE("the default path is the request path up to its last slash") {
  cookie_jar jar;
  CHECK(jar.store_one(at("https://h.example/cometd/59.0"), "a=1", t0));
  CHECK(jar.header_for(at("https://h.example/cometd/59.0/connect"), t0) == "a=1");
  CHECK(jar.header_for(at("https://h.example/cometd"), t0) == "a=1");
  CHECK(jar.header_for(at("https://h.example/cometd/"), t0) == "a=1");
  CHECK(jar.header_for(at("https://h.example/cometdx"), t0) == "");
  CHECK(jar.header_for(at("https://h.example/"), t0) == "");
  cookie_jar top;
  CHECK(top.store_one(at("https://h.example/login?x=/a/b"), "b=2", t0));
  CHECK(top.header_for(at("https://h.example/anything"), t0) == "b=2");
}

TEST_CASE("a Path attribute limits the cookie to that path and below") {
  cookie_jar jar;
  CHECK(jar.store_one(at("https://h.example/"), "t=1; Path=/cometd/", t0));
  CHECK(jar.store_one(at("https://h.example/"), "p=2; Path=relative",
                      t0));  // ignored: default path "/"
  CHECK(jar.header_for(at("https://h.example/cometd/59.0?x=1"), t0) == "t=1; p=2");
  CHECK(jar.header_for(at("https://h.example/cometd"), t0) == "p=2");
  CHECK(jar.header_for(at("https://h.example/services/data"), t0) == "p=2");
}

TEST_CASE("longer paths come first, then the order of creation") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  CHECK(jar.store_one(from, "root1=a; Path=/", t0));
  CHECK(jar.store_one(from, "deep=b; Path=/cometd/59.0", t0));
  CHECK(jar.store_one(from, "mid=c; Path=/cometd", t0));
  CHECK(jar.store_one(from, "root2=d; Path=/", t0));
  CHECK(jar.header_for(at("https://h.example/cometd/59.0"), t0) ==
        "deep=b; mid=c; root1=a; root2=d");
}

TEST_CASE("a cookie is replaced by name, domain and path, keeping its place") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  CHECK(jar.store_one(from, "a=1; Path=/", t0));
  CHECK(jar.store_one(from, "b=2; Path=/", t0));
  CHECK(jar.store_one(from, "a=3; Path=/", t0));
  CHECK(jar.store_one(from, "a=4; Path=/x", t0));
  CHECK(jar.size() == 3);
  CHECK(jar.header_for(at("https://h.example/x"), t0) == "a=4; a=3; b=2");
}

TEST_CASE("Expires in the past deletes a cookie, in the future keeps it until then") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  CHECK(jar.store_one(from, "s=1; Path=/", t0));
  CHECK(jar.store_one(from, "s=1; Path=/; Expires=Sun, 24-Sep-2023 19:55:37 GMT", t0));
  CHECK(jar.size() == 0);
  // t0 is 2023-11-14T22:13:20Z.
  CHECK(jar.store_one(from, "f=2; Expires=Wed, 15 Nov 2023 00:00:00 GMT", t0));
  CHECK(jar.header_for(from, t0) == "f=2");
  CHECK(jar.header_for(from, t0 + 2h) == "");
  CHECK(jar.store_one(from, "g=3; expires=Thursday, 16-Nov-23 08:49:37 GMT", t0));
  CHECK(jar.store_one(from, "h=4; expires=Fri Nov 17 08:49:37 2023", t0));
  CHECK(jar.header_for(from, t0 + 3h) == "g=3; h=4");
  CHECK(jar.header_for(from, t0 + 48h) == "h=4");
}

TEST_CASE("Max-Age sets the lifetime, wins over Expires, and zero or negative deletes") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  CHECK(jar.store_one(from, "m=1; Max-Age=10; Expires=Sun, 24-Sep-2023 19:55:37 GMT", t0));
  CHECK(jar.header_for(from, t0 + 9s) == "m=1");
  CHECK(jar.header_for(from, t0 + 10s) == "");
  CHECK(jar.store_one(from, "n=1", t0));
  CHECK(jar.store_one(from, "n=1; Max-Age=0", t0));
  CHECK(jar.header_for(from, t0) == "m=1");
  CHECK(jar.store_one(from, "m=1; Max-Age=-5", t0));
  CHECK(jar.size() == 0);
  CHECK(jar.store_one(from, "k=1; Max-Age=abc", t0));  // a malformed Max-Age is ignored
  CHECK(jar.header_for(from, t0 + 1000h) == "k=1");
}

TEST_CASE("Secure cookies are sent only over https (and to loopback hosts)") {
  cookie_jar jar;
  CHECK(jar.store_one(at("https://h.example/"), "sec=1; Secure; HttpOnly; SameSite=None", t0));
  CHECK(jar.store_one(at("https://h.example/"), "plain=2", t0));
  CHECK(jar.header_for(at("https://h.example/"), t0) == "sec=1; plain=2");
  CHECK(jar.header_for(at("http://h.example/"), t0) == "plain=2");
  cookie_jar local;
  CHECK(local.store_one(at("http://127.0.0.1:8080/"), "sec=1; Secure", t0));
  CHECK(local.header_for(at("http://127.0.0.1:8080/"), t0) == "sec=1");
}

TEST_CASE("malformed Set-Cookie values are ignored") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  CHECK_FALSE(jar.store_one(from, "", t0));
  CHECK_FALSE(jar.store_one(from, "noequals", t0));
  CHECK_FALSE(jar.store_one(from, "=value", t0));
  CHECK_FALSE(jar.store_one(from, "  =value; Path=/", t0));
  CHECK_FALSE(jar.store_one(from, std::string("a=b\0c", 5), t0));
  CHECK_FALSE(jar.store_one(from, "a=b\r\nInjected: yes", t0));
  CHECK_FALSE(jar.store_one(from, std::string(10000, 'x') + "=1", t0));
  CHECK(jar.store_one(from, "ok=1; Expires=garbage; Domain=; Path=; Max-Age=", t0));
  CHECK(jar.size() == 1);
}

TEST_CASE("store takes every Set-Cookie header of a response and clear empties the jar") {
  cookie_jar jar;
  jar.store(at("https://h.example/cometd/59.0"),
            {{"Set-Cookie", "BrowserId=x; Path=/"},
             {"Content-Type", "application/json"},
             {"set-cookie", "BAYEUX_BROWSER=y; Path=/cometd/"},
             {"SET-COOKIE", "broken"}},
            t0);
  CHECK(jar.size() == 2);
  CHECK(jar.header_for(at("https://h.example/cometd/59.0"), t0) == "BAYEUX_BROWSER=y; BrowserId=x");
  jar.clear();
  CHECK(jar.size() == 0);
  CHECK(jar.header_for(at("https://h.example/cometd/59.0"), t0) == "");
}

TEST_CASE("the jar stays bounded however many cookies a server sets") {
  cookie_jar jar;
  const url from = at("https://h.example/");
  for (int i = 0; i < 1000; ++i) jar.store_one(from, "c" + std::to_string(i) + "=v", t0);
  CHECK(jar.size() <= 300);
  CHECK(jar.header_for(from, t0).find("c999=v") != std::string::npos);
}
