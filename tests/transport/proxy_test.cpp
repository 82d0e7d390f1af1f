// Proxy tests: CONNECT through a small in-test tunnelling proxy (with and without basic auth),
// proxy URL parsing, NO_PROXY matching, proxy selection from the environment, base64.
#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <istream>

#include "loopback.hpp"
#include "src/transport/options.hpp"
#include "src/transport/proxy.hpp"

using namespace loopback;
using sfstream::errc;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

/// A minimal HTTP CONNECT proxy on 127.0.0.1: checks Proxy-Authorization when asked to,
/// answers 407 on a mismatch, else connects to the target and copies bytes both ways.
class connect_proxy {
 public:
  explicit connect_proxy(asio::io_context& io, std::string expected_authorization = {})
      : io_(io),
        acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}),
        expected_(std::move(expected_authorization)) {
    accept();
  }
  ~connect_proxy() { stop(); }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& weak : sockets_) {
      if (auto s = weak.lock()) s->close(ec);
    }
  }

  int connects = 0;
  std::string last_target;
  std::string last_authorization;

 private:
  struct tunnel {
    std::shared_ptr<tcp::socket> client;
    std::shared_ptr<tcp::socket> server;
    asio::streambuf head;
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto t = std::make_shared<tunnel>();
      t->client = std::make_shared<tcp::socket>(std::move(socket));
      t->server = std::make_shared<tcp::socket>(io_);
      sockets_.push_back(t->client);
      sockets_.push_back(t->server);
      read_head(t);
      accept();
    });
  }

  void read_head(const std::shared_ptr<tunnel>& t) {
    asio::async_read_until(
        *t->client, t->head, "\r\n\r\n", [this, t](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          std::string head(asio::buffers_begin(t->head.data()),
                           asio::buffers_begin(t->head.data()) + static_cast<long>(n));
          t->head.consume(n);
          ++connects;
          const auto first_space = head.find(' ');
          const auto second_space = head.find(' ', first_space + 1);
          const std::string method = head.substr(0, first_space);
          last_target = head.substr(first_space + 1, second_space - first_space - 1);
          last_authorization.clear();
          const std::string key = "\r\nProxy-Authorization: ";
          if (const auto at = head.find(key); at != std::string::npos) {
            const auto end = head.find("\r\n", at + key.size());
            last_authorization = head.substr(at + key.size(), end - at - key.size());
          }
          if (method != "CONNECT" || (!expected_.empty() && last_authorization != expected_)) {
            reply_and_close(
                t, method != "CONNECT"
                       ? "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
                       : "HTTP/1.1 407 Proxy Authentication Required\r\n"
                         "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n");
            return;
          }
          const auto colon = last_target.rfind(':');
          const tcp::endpoint target(
              asio::ip::make_address(last_target.substr(0, colon)),
              static_cast<std::uint16_t>(std::stoi(last_target.substr(colon + 1))));
          t->server->async_connect(target, [this, t](boost::system::error_code ec2) {
            if (ec2) {
              reply_and_close(t, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
              return;
            }
            auto ok = std::make_shared<std::string>("HTTP/1.1 200 Connection established\r\n\r\n");
            asio::async_write(*t->client, asio::buffer(*ok),
                              [this, t, ok](boost::system::error_code ec3, std::size_t) {
                                if (ec3) return;
                                pump(t->client, t->server);
                                pump(t->server, t->client);
                              });
          });
        });
  }

  void reply_and_close(const std::shared_ptr<tunnel>& t, std::string text) {
    auto data = std::make_shared<std::string>(std::move(text));
    asio::async_write(*t->client, asio::buffer(*data),
                      [t, data](boost::system::error_code, std::size_t) {
                        boost::system::error_code ignored;
                        t->client->shutdown(tcp::socket::shutdown_both, ignored);
                        t->client->close(ignored);
                      });
  }

  void pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    auto buffer = std::make_shared<std::array<char, 16384>>();
    from->async_read_some(asio::buffer(*buffer), [this, from, to, buffer](
                                                     boost::system::error_code ec, std::size_t n) {
      if (ec) {
        boost::system::error_code ignored;
        to->shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      asio::async_write(*to, asio::buffer(buffer->data(), n),
                        [this, from, to, buffer](boost::system::error_code ec2, std::size_t) {
                          if (!ec2) pump(from, to);
                        });
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::string expected_;
  std::vector<std::weak_ptr<tcp::socket>> sockets_;
};

/// Sets (or unsets, for nullptr) an environment variable for the scope, then restores it.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::shared_ptr<transport::http_lane> lane_through(asio::io_context& io, const tls_fixture& fx,
                                                   const net::http_server& server,
                                                   transport::proxy_config proxy) {
  auto options = fx.options;
  options.proxy = std::move(proxy);
  auto tls = transport::make_client_tls_context(options);
  REQUIRE(tls);
  return transport::http_lane::create(io.get_executor(), parse(server.base_url()), tls, options,
                                      nullptr);
}

}  // namespace

TEST_CASE("an exchange through a CONNECT proxy without authentication reaches the TLS server") {
  asio::io_context io;
  tls_fixture fx;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok("tunnelled")); });
  connect_proxy proxy(io);
  auto config = transport::parse_proxy_url("http://127.0.0.1:" + std::to_string(proxy.port()));
  REQUIRE(config);
  auto lane = lane_through(io, fx, server, *config);
  auto result = exchange(io, *lane, post("/cometd/59.0"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.body == "tunnelled");
  auto again = exchange(io, *lane, post("/cometd/59.0"));
  CHECK(again.response.body == "tunnelled");
  CHECK(proxy.connects == 1);
  CHECK(proxy.last_target == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(proxy.last_authorization.empty());
  proxy.stop();
  server.stop();
}

TEST_CASE("an exchange through a CONNECT proxy sends Proxy-Authorization: Basic") {
  asio::io_context io;
  tls_fixture fx;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [](std::shared_ptr<net::exchange> ex) { ex->respond(ok("authorised")); });
  connect_proxy proxy(io, "Basic " + transport::encode_base64("proxyuser:p@ss:w0rd"));
  auto config = transport::parse_proxy_url("http://proxyuser:p%40ss%3Aw0rd@127.0.0.1:" +
                                           std::to_string(proxy.port()));
  REQUIRE(config);
  CHECK(config->password == "p@ss:w0rd");
  auto lane = lane_through(io, fx, server, *config);
  auto result = exchange(io, *lane, post("/"));
  CHECK_MESSAGE(!result.error, result.error.to_string());
  CHECK(result.response.body == "authorised");
  CHECK(proxy.last_authorization == "Basic cHJveHl1c2VyOnBAc3M6dzByZA==");
  proxy.stop();
  server.stop();
}

TEST_CASE(
    "a wrong proxy password gets 407 and fails with proxy_error without revealing the password") {
  asio::io_context io;
  tls_fixture fx;
  int requests = 0;
  net::http_server server(io.get_executor(), fx.server_options(),
                          [&](std::shared_ptr<net::exchange> ex) {
                            ++requests;
                            ex->respond(ok());
                          });
  connect_proxy proxy(io, "Basic " + transport::encode_base64("proxyuser:right"));
  transport::proxy_config config;
  config.address = parse("http://127.0.0.1:" + std::to_string(proxy.port()));
  config.username = "proxyuser";
  config.password = "Wr0ngSecret";
  auto lane = lane_through(io, fx, server, config);
  auto result = exchange(io, *lane, post("/"));
  CHECK(result.error.code == errc::proxy_error);
  CHECK(result.error.diag.server_code == "407");
  CHECK(result.error.diag.server_text == "Proxy Authentication Required");
  CHECK(result.error.to_string().find("Wr0ngSecret") == std::string::npos);
  CHECK(result.error.to_string().find(transport::encode_base64("proxyuser:Wr0ngSecret")) ==
        std::string::npos);
  CHECK(requests == 0);
  proxy.stop();
  server.stop();
}

TEST_CASE("parse_proxy_url reads host, port and optional credentials") {
  auto a = transport::parse_proxy_url("http://proxy.corp:3128");
  REQUIRE(a);
  CHECK(a->address.host == "proxy.corp");
  CHECK(a->address.port == 3128);
  CHECK(a->username.empty());
  auto b = transport::parse_proxy_url("proxy.corp:8080/");
  REQUIRE(b);
  CHECK(b->address.port == 8080);
  auto c = transport::parse_proxy_url("http://u%20ser:pa:ss@[::1]:3128");
  REQUIRE(c);
  CHECK(c->username == "u ser");
  CHECK(c->password == "pa:ss");
  CHECK(c->address.host == "::1");
  auto d = transport::parse_proxy_url("http://user@proxy");
  REQUIRE(d);
  CHECK(d->username == "user");
  CHECK(d->password.empty());
  CHECK(d->address.port == 80);
}

TEST_CASE("parse_proxy_url refuses bad proxy URLs without repeating the password") {
  const char* bad[] = {"https://u:TopSecret1@proxy:443", "http://u:TopSecret1@proxy:99999",
                       "http://u:TopSecret1@/", "http://u:Top%zzSecret1@proxy:1",
                       "http://u:TopSecret1@proxy:1/path"};
  for (const char* text : bad) {
    CAPTURE(text);
    sfstream::error_info why;
    CHECK_FALSE(transport::parse_proxy_url(text, &why));
    CHECK(why.code == errc::invalid_config);
    CHECK(why.to_string().find("TopSecret1") == std::string::npos);
  }
}

TEST_CASE("NO_PROXY entries match by exact host, domain suffix with or without a dot, and *") {
  CHECK(transport::no_proxy_matches("*", "anything.example"));
  CHECK(transport::no_proxy_matches("example.com", "example.com"));
  CHECK(transport::no_proxy_matches("example.com", "a.b.example.com"));
  CHECK(transport::no_proxy_matches(".example.com", "a.example.com"));
  CHECK(transport::no_proxy_matches(".example.com", "example.com"));
  CHECK_FALSE(transport::no_proxy_matches("example.com", "badexample.com"));
  CHECK(transport::no_proxy_matches("localhost, .Salesforce.COM ,10.0.0.1", "na1.salesforce.com"));
  CHECK(transport::no_proxy_matches("localhost,10.0.0.1", "10.0.0.1"));
  CHECK(transport::no_proxy_matches("internal.corp:8443", "internal.corp"));
  CHECK(transport::no_proxy_matches("[::1]:8080", "::1"));
  CHECK_FALSE(transport::no_proxy_matches("", "example.com"));
  CHECK_FALSE(transport::no_proxy_matches(",,, ,", "example.com"));
  CHECK_FALSE(transport::no_proxy_matches("example.com", ""));
}

TEST_CASE("select_proxy prefers the explicit proxy, else HTTPS_PROXY unless NO_PROXY matches") {
  scoped_env upper("HTTPS_PROXY", "http://envuser:envpass@proxy.corp:3128");
  scoped_env lower("https_proxy", nullptr);
  scoped_env no_upper("NO_PROXY", ".internal.corp");
  scoped_env no_lower("no_proxy", nullptr);
  transport::transport_options options;
  auto from_env = transport::select_proxy(options, parse("https://na1.salesforce.com/"));
  REQUIRE(from_env);
  CHECK(from_env->address.host == "proxy.corp");
  CHECK(from_env->username == "envuser");
  CHECK(from_env->password == "envpass");
  CHECK_FALSE(transport::select_proxy(options, parse("https://api.internal.corp/")));
  CHECK_FALSE(transport::select_proxy(options, parse("https://127.0.0.1:8443/")));
  CHECK_FALSE(transport::select_proxy(options, parse("https://localhost/")));
  options.proxy_from_environment = false;
  CHECK_FALSE(transport::select_proxy(options, parse("https://na1.salesforce.com/")));
  options.proxy = transport::parse_proxy_url("http://explicit:8080");
  auto explicit_proxy = transport::select_proxy(options, parse("https://api.internal.corp/"));
  REQUIRE(explicit_proxy);
  CHECK(explicit_proxy->address.host == "explicit");
}

TEST_CASE("select_proxy reads the lower-case https_proxy and no_proxy too") {
  scoped_env upper("HTTPS_PROXY", nullptr);
  scoped_env lower("https_proxy", "http://lower.proxy:8080");
  scoped_env no_upper("NO_PROXY", nullptr);
  scoped_env no_lower("no_proxy", "skip.me");
  transport::transport_options options;
  auto chosen = transport::select_proxy(options, parse("https://login.salesforce.com/"));
  REQUIRE(chosen);
  CHECK(chosen->address.host == "lower.proxy");
  CHECK_FALSE(transport::select_proxy(options, parse("https://x.skip.me/")));
}

TEST_CASE("encode_base64 follows the RFC 4648 test vectors") {
  CHECK(transport::encode_base64("") == "");
  CHECK(transport::encode_base64("f") == "Zg==");
  CHECK(transport::encode_base64("fo") == "Zm8=");
  CHECK(transport::encode_base64("foo") == "Zm9v");
  CHECK(transport::encode_base64("foob") == "Zm9vYg==");
  CHECK(transport::encode_base64("fooba") == "Zm9vYmE=");
  CHECK(transport::encode_base64("foobar") == "Zm9vYmFy");
  CHECK(transport::encode_base64(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("make_transport_options takes a proxy URL with or without credentials") {
  sfstream::network_options network;
  network.proxy = sfstream::proxy_options{"http://user:se%23cret@proxy.corp:3128", "", ""};
  sfstream::error_info why;
  auto options = transport::make_transport_options(network, &why);
  CHECK_FALSE(why);
  REQUIRE(options.proxy);
  CHECK(options.proxy->address.host == "proxy.corp");
  CHECK(options.proxy->address.port == 3128);
  CHECK(options.proxy->username == "user");
  CHECK(options.proxy->password == "se#cret");
  network.proxy = sfstream::proxy_options{"http://proxy.corp:3128", "other", "pw"};
  options = transport::make_transport_options(network, &why);
  REQUIRE(options.proxy);
  CHECK(options.proxy->username == "other");
  CHECK(options.proxy->password == "pw");
  network.proxy = sfstream::proxy_options{"https://u:Hidden9@proxy.corp:3128", "", ""};
  options = transport::make_transport_options(network, &why);
  CHECK(why.code == errc::invalid_url);
  CHECK_FALSE(options.proxy);
  CHECK(why.to_string().find("Hidden9") == std::string::npos);
}
