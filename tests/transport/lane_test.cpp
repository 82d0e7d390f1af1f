// Loopback tests of http_lane and async_http_request against the in-process http_server.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "loopback.hpp"

using namespace loopback;
using sfstream::errc;

namespace {

std::shared_ptr<transport::http_lane> make_lane(
    boost::asio::io_context& io, const std::string& origin,
    const transport::transport_options& options,
    std::shared_ptr<transport::cookie_jar> jar = nullptr) {
  sfstream::error_info why;
  auto tls = transport::make_client_tls_context(options, &why);
  REQUIRE_MESSAGE(tls, why.to_string());
  return transport::http_lane::create(io.get_executor(), parse(origin), tls, options,
                                      std::move(jar));
}

transport::transport_options plain_options() {
  transport::transport_options o;
  o.proxy_from_environment = false;
  return o;
}

}  // namespace

TEST_CASE("a TLS exchange with a CA from make_certificates succeeds") {
  boost::asio::io_context io;
  tls_fixture fx;
  std::string seen_body, seen_host, seen_agent, seen_length;
  net::http_server server(
      io.get_executor(), fx.server_options(), [&](std::shared_ptr<net::exchange> ex) {
        seen_body = ex->request().body;
        seen_host = *transport::find_header(ex->request().headers, "host");
        seen_agent = *transport::find_header(ex->request().headers, "user-agent");
        seen_length = *transport::find_header(ex->request().headers, "content-length");
        ex->respond(ok("[{\"successful\":true}]"));
      });
  auto lane = make_lane(io, server.base_url(), fx.options);
  auto result = exchange(io, *lane, post("/cometd/59.0", "[{\"channel\":\"/meta/handshake\"}]"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.status == 200);
  CHECK(result.response.body == "[{\"successful\":true}]");
  CHECK(seen_body == "[{\"channel\":\"/meta/handshake\"}]");
  CHECK(seen_host == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(seen_agent == "sfstream");
  CHECK(seen_length == "31");
  server.stop();
}

TEST_CASE("a TLS exchange over IPv6 loopback with the name localhost works") {
  boost::asio::io_context io;
  tls_fixture fx;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok()); });
  auto lane = make_lane(io, "https://localhost:" + std::to_string(server.port()), fx.options);
  auto result = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.status == 200);
  server.stop();
}

TEST_CASE("a certificate made for another host name fails with tls_error") {
  boost::asio::io_context io;
  tls_fixture fx({"other.example"});
  int requests = 0;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [&](std::shared_ptr<net::exchange> ex) {
                            ++requests;
                            ex->respond(ok());
                          });
  auto lane = make_lane(io, server.base_url(), fx.options);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::tls_error);
  CHECK_MESSAGE(result.error.diag.server_text.find("mismatch") != std::string::npos,
                result.error.to_string());
  CHECK(requests == 0);
  server.stop();
}

TEST_CASE("a leaf for localhost only fails with tls_error when reached as 127.0.0.1") {
  boost::asio::io_context io;
  tls_fixture fx({"localhost"});
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok()); });
  auto lane = make_lane(io, server.base_url(), fx.options);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::tls_error);
  server.stop();
}

TEST_CASE("a server certificate from an untrusted CA fails with tls_error") {
  boost::asio::io_context io;
  tls_fixture served;
  tls_fixture trusted;  // a different CA
  net::http_server server(io.get_executor(), served.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok()); });
  auto lane = make_lane(io, server.base_url(), trusted.options);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::tls_error);
  CHECK(result.error.diag.server_text.find("certificate") != std::string::npos);
  server.stop();
}

TEST_CASE("an unreadable CA file is a clear configuration error") {
  transport::transport_options o;
  o.ca_file = "/nonexistent/sfstream/ca.pem";
  sfstream::error_info why;
  CHECK(transport::make_client_tls_context(o, &why) == nullptr);
  CHECK(why.code == errc::invalid_config);
  CHECK(why.diag.server_text.find("/nonexistent/sfstream/ca.pem") != std::string::npos);
}

TEST_CASE("plain http to a non-loopback host is refused without a connection attempt") {
  boost::asio::io_context io;
  // 192.0.2.1 is TEST-NET-1: a connection attempt would hang until the deadline, not fail fast.
  auto lane = transport::http_lane::create(io.get_executor(), parse("http://192.0.2.1:8080"),
                                           nullptr, plain_options(), nullptr);
  auto result = exchange(io, *lane, post("/"), 60s);
  CHECK(result.error.code == errc::insecure_url);
  CHECK_FALSE(lane->busy());
}

TEST_CASE("plain http to a loopback server works") {
  boost::asio::io_context io;
  net::http_server server(io.get_executor(), {}, [](std::shared_ptr<net::exchange> ex) {
    ex->respond(ok(ex->request().method + " " + ex->request().target));
  });
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           plain_options(), nullptr);
  transport::http_request get;
  get.method = "GET";
  get.target = "/services/data?x=1";
  auto result = exchange(io, *lane, get);
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.body == "GET /services/data?x=1");
  server.stop();
}

TEST_CASE("keep-alive reuses one connection for several exchanges") {
  boost::asio::io_context io;
  tls_fixture fx;
  int n = 0;
  net::http_server server(
      io.get_executor(), fx.server_options(),
      [&](std::shared_ptr<net::exchange> ex) { ex->respond(ok(std::to_string(++n))); });
  auto lane = make_lane(io, server.base_url(), fx.options);
  for (int i = 1; i <= 5; ++i) {
    auto result = exchange(io, *lane, post("/cometd/59.0"));
    REQUIRE_MESSAGE(!result.error, result.error.to_string());
    CHECK(result.response.body == std::to_string(i));
  }
  CHECK(server.accepted_count() == 1);
  CHECK(server.connection_count() == 1);
  server.stop();
  CHECK(server.connection_count() == 0);
}

TEST_CASE("a stale keep-alive connection closed by the server is retried once on a fresh one") {
  boost::asio::io_context io;
  net::http_server server(io.get_executor(), {},
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok("fine")); });
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           plain_options(), nullptr);
  REQUIRE(!exchange(io, *lane, post("/")).error);
  server.close_idle_connections();
  settle(io);
  auto result = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.body == "fine");
  CHECK(server.accepted_count() == 2);
  server.stop();
}

TEST_CASE("a request marked unsafe to repeat is not resent on a stale keep-alive connection") {
  // A /meta/connect whose bytes may have reached the server must fail visibly, never be sent
  // again silently: the server may have taken its reply's events off its queue.
  boost::asio::io_context io;
  net::http_server server(io.get_executor(), {},
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok("fine")); });
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           plain_options(), nullptr);
  REQUIRE(!exchange(io, *lane, post("/")).error);
  server.close_idle_connections();
  settle(io);
  auto request = post("/");
  request.resend_if_stale = false;
  auto result = exchange(io, *lane, request);
  CHECK(result.error.code == errc::connection_closed);
  CHECK(result.error.cause);
  CHECK(server.accepted_count() == 1);
  auto again = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!again.error, again.error.to_string());
  server.stop();
}

TEST_CASE("cookies round trip byte-exact, including one changed on 403 and 500 replies") {
  boost::asio::io_context io;
  tls_fixture fx;
  std::vector<std::string> cookies_seen;
  int n = 0;
  net::http_server server(
      io.get_executor(), fx.server_options(), [&](std::shared_ptr<net::exchange> ex) {
        const auto* cookie = transport::find_header(ex->request().headers, "Cookie");
        cookies_seen.push_back(cookie ? *cookie : "");
        transport::http_response r = ok();
        switch (++n) {
          case 1:
            r.headers.emplace_back(
                "Set-Cookie",
                "BAYEUX_BROWSER=eb4ajzqv8f0j5yiakirz4ui41ah6; Path=/cometd/; HttpOnly");
            r.headers.emplace_back("Set-Cookie",
                                   "sfdc-stream=!//QiKCt+a/b=c:d==; path=/; SameSite=None; Secure");
            break;
          case 2:
            r.status = 403;
            r.body = "[{\"error\":\"403::Unknown client\"}]";
            r.headers.emplace_back("Set-Cookie", "sfdc-stream=!AAA+/=:!z=; path=/; Secure");
            break;
          case 3:
            r.status = 500;
            r.headers.emplace_back("Set-Cookie", "t=!x/y+z=; path=/cometd/");
            break;
          default:
            break;
        }
        ex->respond(std::move(r));
      });
  auto jar = std::make_shared<transport::cookie_jar>();
  auto lane = make_lane(io, server.base_url(), fx.options, jar);
  auto first = exchange(io, *lane, post("/cometd/59.0"));
  REQUIRE(!first.error);
  auto second = exchange(io, *lane, post("/cometd/59.0"));
  REQUIRE(!second.error);
  CHECK(second.response.status == 403);
  auto third = exchange(io, *lane, post("/cometd/59.0"));
  REQUIRE(!third.error);
  CHECK(third.response.status == 500);
  REQUIRE(!exchange(io, *lane, post("/cometd/59.0")).error);
  REQUIRE(!exchange(io, *lane, post("/services/data")).error);
  REQUIRE(cookies_seen.size() == 5);
  CHECK(cookies_seen[0] == "");
  CHECK(cookies_seen[1] ==
        "BAYEUX_BROWSER=eb4ajzqv8f0j5yiakirz4ui41ah6; sfdc-stream=!//QiKCt+a/b=c:d==");
  CHECK(cookies_seen[2] == "BAYEUX_BROWSER=eb4ajzqv8f0j5yiakirz4ui41ah6; sfdc-stream=!AAA+/=:!z=");
  CHECK(cookies_seen[3] ==
        "BAYEUX_BROWSER=eb4ajzqv8f0j5yiakirz4ui41ah6; t=!x/y+z=; sfdc-stream=!AAA+/=:!z=");
  CHECK(cookies_seen[4] == "sfdc-stream=!AAA+/=:!z=");
  server.stop();
}

TEST_CASE("a 2 MiB body with a 1 MiB limit fails with body_too_large and the lane recovers") {
  boost::asio::io_context io;
  bool big = true;
  net::http_server server(io.get_executor(), {}, [&](std::shared_ptr<net::exchange> ex) {
    ex->respond(ok(big ? std::string(2 * 1024 * 1024, 'x') : std::string("small")));
  });
  auto options = plain_options();
  options.body_limit = 1024 * 1024;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           options, nullptr);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::body_too_large);
  big = false;
  auto again = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!again.error, again.error.to_string());
  CHECK(again.response.body == "small");
  server.stop();
}

TEST_CASE(
    "a held reply misses a 300 ms deadline with timeout and the lane works again afterwards") {
  boost::asio::io_context io;
  tls_fixture fx;
  std::vector<std::shared_ptr<net::exchange>> held;
  bool hold = true;
  bool abandoned = false;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [&](std::shared_ptr<net::exchange> ex) {
                            if (hold) {
                              ex->on_abandoned([&] { abandoned = true; });
                              held.push_back(ex);
                            } else {
                              ex->respond(ok("late but fine"));
                            }
                          });
  auto lane = make_lane(io, server.base_url(), fx.options);
  auto result = exchange(io, *lane, post("/cometd/59.0/connect"), 300ms);
  CHECK(result.error.code == errc::timeout);
  CHECK(run_until(io, [&] { return abandoned; }));
  hold = false;
  auto again = exchange(io, *lane, post("/cometd/59.0/connect"));
  CHECK_MESSAGE(!again.error, again.error.to_string());
  CHECK(again.response.body == "late but fine");
  held.clear();
  server.stop();
}

TEST_CASE("a connection dropped mid-reply fails with connection_closed") {
  boost::asio::io_context io;
  tls_fixture fx;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) {
                            ex->respond_partial_and_drop(ok(std::string(1000, 'y')), 100);
                          });
  auto lane = make_lane(io, server.base_url(), fx.options);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::connection_closed);
  server.stop();
}

TEST_CASE("a connection dropped without any reply fails with connection_closed") {
  boost::asio::io_context io;
  net::http_server server(io.get_executor(), {},
                          [](std::shared_ptr<net::exchange> ex) { ex->drop(); });
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           plain_options(), nullptr);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::connection_closed);
  server.stop();
}

TEST_CASE("cancel gives the handler cancelled exactly once") {
  boost::asio::io_context io;
  std::shared_ptr<net::exchange> held;
  net::http_server server(io.get_executor(), {},
                          [&](std::shared_ptr<net::exchange> ex) { held = ex; });
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           plain_options(), nullptr);
  int calls = 0;
  sfstream::error_info got;
  lane->async_exchange(post("/"), 10s, [&](sfstream::error_info e, transport::http_response) {
    got = e;
    ++calls;
  });
  REQUIRE(run_until(io, [&] { return held != nullptr; }));
  CHECK(lane->busy());
  lane->cancel();
  REQUIRE(run_until(io, [&] { return calls > 0; }));
  held->respond(ok());
  settle(io, 100ms);
  CHECK(calls == 1);
  CHECK(got.code == errc::cancelled);
  CHECK_FALSE(lane->busy());
  server.stop();
}

TEST_CASE("async_http_request sends one request to a full URL") {
  boost::asio::io_context io;
  tls_fixture fx;
  std::string target;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [&](std::shared_ptr<net::exchange> ex) {
                            target = ex->request().target;
                            ex->respond(ok("{\"access_token\":\"redacted\"}"));
                          });
  auto tls = transport::make_client_tls_context(fx.options);
  REQUIRE(tls);
  int calls = 0;
  transport::http_response got;
  transport::async_http_request(
      io.get_executor(), tls, fx.options, parse(server.base_url() + "/services/oauth2/token?x=1"),
      post("/ignored"), 10s, [&](sfstream::error_info e, transport::http_response r) {
        CHECK_MESSAGE(!e, e.to_string());
        got = std::move(r);
        ++calls;
      });
  REQUIRE(run_until(io, [&] { return calls > 0; }));
  CHECK(target == "/services/oauth2/token?x=1");
  CHECK(got.body == "{\"access_token\":\"redacted\"}");
  server.stop();
}

TEST_CASE("a refused connection fails with connection_failed") {
  boost::asio::io_context io;
  std::uint16_t port = 0;
  {
    net::http_server probe(io.get_executor(), {}, [](std::shared_ptr<net::exchange>) {});
    port = probe.port();
    probe.stop();
  }
  auto lane = transport::http_lane::create(io.get_executor(),
                                           parse("http://127.0.0.1:" + std::to_string(port)),
                                           nullptr, plain_options(), nullptr);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::connection_failed);
}

namespace {

/// Sets an environment variable for the scope of the object (empty: unset), then restores it.
struct scoped_env {
  std::string name;
  std::optional<std::string> saved;
  scoped_env(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) saved = v;
    if (value.empty()) {
      ::unsetenv(name.c_str());
    } else {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~scoped_env() {
    if (saved) {
      ::setenv(name.c_str(), saved->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
};

/// The file name OpenSSL looks a CA up by in a hashed directory: its subject hash, ".0".
std::string hashed_name(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert != nullptr);
  char name[32];
  std::snprintf(name, sizeof name, "%08lx.0", X509_subject_name_hash(cert));
  X509_free(cert);
  return name;
}

}  // namespace

TEST_CASE("a CA in a directory searched by subject hash verifies a server without a CA file") {
  boost::asio::io_context io;
  tls_fixture fx;
  temp_dir store;
  store.write(hashed_name(fx.certs.ca_certificate_pem), fx.certs.ca_certificate_pem);
  scoped_env file{"SSL_CERT_FILE", ""};
  scoped_env dir{"SSL_CERT_DIR", store.path().string()};
  REQUIRE(transport::hashed_system_certificate_dir() == store.path().string());
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok()); });
  auto options = fx.options;
  options.ca_file.clear();  // only the "system" directory can vouch for the server
  auto lane = make_lane(io, server.base_url(), options);
  auto result = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.status == 200);
  server.stop();
}

TEST_CASE("a directory without hashed names or a bundle of the user's own is loaded whole") {
  tls_fixture fx;
  temp_dir store;
  store.write("ca.pem", fx.certs.ca_certificate_pem);  // not a hashed name
  {
    scoped_env file{"SSL_CERT_FILE", ""};
    scoped_env dir{"SSL_CERT_DIR", store.path().string()};
    CHECK_FALSE(transport::hashed_system_certificate_dir().has_value());
  }
  store.write(hashed_name(fx.certs.ca_certificate_pem), fx.certs.ca_certificate_pem);
  {
    // SSL_CERT_FILE naming a bundle other than the system's: OpenSSL loads it, so do we.
    scoped_env file{"SSL_CERT_FILE", fx.ca_file};
    scoped_env dir{"SSL_CERT_DIR", store.path().string()};
    CHECK_FALSE(transport::hashed_system_certificate_dir().has_value());
    sfstream::error_info why;
    auto options = fx.options;
    options.ca_file.clear();
    CHECK(transport::make_client_tls_context(options, &why) != nullptr);
  }
}
