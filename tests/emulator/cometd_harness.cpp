// The harness's raw HTTP(S) client: the only part of the emulator tests that uses Beast, kept
// in one file so the test files compile without it.
#include "tests/emulator/cometd_harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace emulator_test {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

bool has_header(const std::vector<std::pair<std::string, std::string>>& headers,
                const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> reply::all(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) out.push_back(v);
  }
  return out;
}

std::string reply::header(const std::string& name) const {
  auto v = all(name);
  return v.empty() ? std::string{} : v.front();
}

reply harness::send(const std::string& method, const std::string& target, const std::string& body,
                    std::vector<std::pair<std::string, std::string>> headers,
                    std::chrono::milliseconds deadline) {
  asio::io_context ioc;
  reply out;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.insert(k, v);
  if (!cookies_.empty() && !has_header(headers, "Cookie")) {
    std::string c;
    for (const auto& [k, v] : cookies_) c += (c.empty() ? "" : "; ") + k + "=" + v;
    req.set(http::field::cookie, c);
  }
  req.body() = body;
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  beast::flat_buffer buffer;
  beast::error_code final_ec = asio::error::timed_out;
  bool done = false;
  auto finish = [&](beast::error_code ec) {
    final_ec = ec;
    done = true;
  };
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
  std::unique_ptr<asio::ssl::context> ctx;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  std::unique_ptr<beast::tcp_stream> plain;
  if (tls_) {
    ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->load_verify_file(org_->ca_file());
    ctx->set_verify_mode(asio::ssl::verify_peer);
    tls_stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ctx);
    beast::get_lowest_layer(*tls_stream).async_connect(ep, [&](beast::error_code ec) {
      if (ec) return finish(ec);
      tls_stream->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec2) {
        if (ec2) return finish(ec2);
        http::async_write(*tls_stream, req, [&](beast::error_code ec3, std::size_t) {
          if (ec3) return finish(ec3);
          http::async_read(*tls_stream, buffer, parser,
                           [&](beast::error_code ec4, std::size_t) { finish(ec4); });
        });
      });
    });
  } else {
    plain = std::make_unique<beast::tcp_stream>(ioc);
    plain->async_connect(ep, [&](beast::error_code ec) {
      if (ec) return finish(ec);
      http::async_write(*plain, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return finish(ec3);
        http::async_read(*plain, buffer, parser,
                         [&](beast::error_code ec4, std::size_t) { finish(ec4); });
      });
    });
  }
  ioc.run_for(deadline);
  if (!done || final_ec) {
    out.failed = true;
    return out;
  }
  auto& res = parser.get();
  out.status = res.result_int();
  out.reason = std::string(res.reason());
  for (const auto& f : res) {
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (beast::iequals(f.name_string(), "Set-Cookie")) remember_cookie(std::string(f.value()));
  }
  out.body = res.body();
  return out;
}

void harness::remember_cookie(const std::string& set_cookie) {
  auto semi = set_cookie.find(';');
  std::string pair = set_cookie.substr(0, semi);
  auto eq = pair.find('=');
  if (eq == std::string::npos) return;
  cookies_[pair.substr(0, eq)] = pair.substr(eq + 1);
}

}  // namespace emulator_test
