// Tests of the loopback http_server itself and of make_certificates.
#include <doctest/doctest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "loopback.hpp"

using namespace loopback;
using sfstream::errc;
namespace asio = boost::asio;

TEST_CASE("the server refuses a non-loopback address") {
  asio::io_context io;
  net::server_options o;
  o.address = "0.0.0.0";
  CHECK_THROWS_AS(net::http_server(io.get_executor(), o, [](std::shared_ptr<net::exchange>) {}),
                  sfstream::error);
  o.address = "not an address";
  CHECK_THROWS_AS(net::http_server(io.get_executor(), o, [](std::shared_ptr<net::exchange>) {}),
                  sfstream::error);
}

TEST_CASE("the server listens on IPv6 loopback and reports its base URL") {
  asio::io_context io;
  net::server_options o;
  o.address = "::1";
  std::unique_ptr<net::http_server> server;
  try {
    server = std::make_unique<net::http_server>(
        io.get_executor(), o, [](std::shared_ptr<net::exchange> ex) { ex->respond(ok("v6")); });
  } catch (const sfstream::error& e) {
    MESSAGE("IPv6 loopback is not available here: " << e.what());
    return;
  }
  CHECK(server->base_url() == "http://[::1]:" + std::to_string(server->port()));
  transport::transport_options options;
  options.proxy_from_environment = false;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server->base_url()), nullptr,
                                           options, nullptr);
  auto result = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.body == "v6");
  server->stop();
}

TEST_CASE("the server answers 413 Maximum Request Size Exceeded over its body limit") {
  asio::io_context io;
  net::server_options o;
  o.body_limit = 32768;
  int handled = 0;
  net::http_server server(io.get_executor(), o, [&](std::shared_ptr<net::exchange> ex) {
    ++handled;
    ex->respond(ok());
  });
  transport::transport_options options;
  options.proxy_from_environment = false;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           options, nullptr);
  auto result = exchange(io, *lane, post("/cometd/59.0", std::string(100000, 'a')));
  REQUIRE_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.status == 413);
  CHECK(result.response.body == "Maximum Request Size Exceeded");
  CHECK(handled == 0);
  auto small = exchange(io, *lane, post("/cometd/59.0", std::string(1000, 'a')));
  CHECK_MESSAGE(!small.error, small.error.to_string());
  CHECK(small.response.status == 200);
  CHECK(handled == 1);
  server.stop();
}

TEST_CASE("the server reports a client that closes while its reply is held") {
  asio::io_context io;
  std::shared_ptr<net::exchange> held;
  int abandoned = 0;
  net::http_server server(io.get_executor(), {}, [&](std::shared_ptr<net::exchange> ex) {
    held = ex;
    ex->on_abandoned([&] { ++abandoned; });
  });
  asio::ip::tcp::socket client(io);
  client.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  const std::string request = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n[]";
  asio::write(client, asio::buffer(request));
  REQUIRE(run_until(io, [&] { return held != nullptr; }));
  CHECK(held->remote_address() == "127.0.0.1");
  CHECK(server.connection_count() == 1);
  client.close();
  REQUIRE(run_until(io, [&] { return abandoned > 0; }));
  CHECK(held->answered());
  held->respond(ok());
  settle(io);
  CHECK(abandoned == 1);
  CHECK(server.connection_count() == 0);
  server.stop();
}

TEST_CASE("an exchange released without an answer closes its connection") {
  asio::io_context io;
  net::http_server server(io.get_executor(), {}, [](std::shared_ptr<net::exchange>) {});
  transport::transport_options options;
  options.proxy_from_environment = false;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           options, nullptr);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::connection_closed);
  server.stop();
}

TEST_CASE("stop closes held connections, is idempotent, and the destructor stops too") {
  asio::io_context io;
  std::shared_ptr<net::exchange> held;
  auto server =
      std::make_unique<net::http_server>(io.get_executor(), net::server_options{},
                                         [&](std::shared_ptr<net::exchange> ex) { held = ex; });
  transport::transport_options options;
  options.proxy_from_environment = false;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server->base_url()), nullptr,
                                           options, nullptr);
  int calls = 0;
  sfstream::error_info got;
  lane->async_exchange(post("/"), 10s, [&](sfstream::error_info e, transport::http_response) {
    got = e;
    ++calls;
  });
  REQUIRE(run_until(io, [&] { return held != nullptr; }));
  server->stop();
  server->stop();
  REQUIRE(run_until(io, [&] { return calls > 0; }));
  CHECK(got.code == errc::connection_closed);
  held->respond(ok());  // harmless after stop
  server.reset();
  settle(io);
}

TEST_CASE("a handler that throws yields a 500 reply, not a crash") {
  asio::io_context io;
  net::http_server server(io.get_executor(), {},
                          [](std::shared_ptr<net::exchange>) { throw std::runtime_error("boom"); });
  transport::transport_options options;
  options.proxy_from_environment = false;
  auto lane = transport::http_lane::create(io.get_executor(), parse(server.base_url()), nullptr,
                                           options, nullptr);
  auto result = exchange(io, *lane, post("/"));
  REQUIRE(!result.error);
  CHECK(result.response.status == 500);
  server.stop();
}

TEST_CASE("make_certificates makes a CA and a leaf with IP and DNS subject alternative names") {
  auto certs = net::make_certificates({"127.0.0.1", "localhost", "::1"});
  auto load = [](const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return cert;
  };
  X509* ca = load(certs.ca_certificate_pem);
  X509* leaf = load(certs.certificate_pem);
  REQUIRE(ca != nullptr);
  REQUIRE(leaf != nullptr);
  CHECK(X509_check_ca(ca) >= 1);
  CHECK(X509_check_ca(leaf) == 0);
  CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(leaf, "::1", 0) == 1);
  CHECK(X509_check_host(leaf, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(leaf, "example.com", 0, 0, nullptr) != 1);
  EVP_PKEY* ca_key = X509_get0_pubkey(ca);
  CHECK(X509_verify(leaf, ca_key) == 1);
  CHECK(certs.private_key_pem.find("PRIVATE KEY") != std::string::npos);
  auto other = net::make_certificates({"localhost"});
  CHECK(other.ca_certificate_pem != certs.ca_certificate_pem);
  X509_free(ca);
  X509_free(leaf);
}
