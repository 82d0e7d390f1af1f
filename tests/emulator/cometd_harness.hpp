// Test harness for the emulator conformance tests: an org_emulator on its own io_context
// thread, a minimal raw HTTP(S) client with a cookie map, and helpers to run code on the
// emulator's thread. Every request is bounded in time; the destructor stops the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "emulator/emulator.hpp"

namespace emulator_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using sfstream::emulator::emulator_options;
using sfstream::emulator::org_emulator;

struct reply {
  unsigned status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool failed = false;  ///< Transport failure (connection closed, timeout, partial body).

  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (beast::iequals(k, name)) out.push_back(v);
    }
    return out;
  }
  std::string header(const std::string& name) const {
    auto v = all(name);
    return v.empty() ? std::string{} : v.front();
  }
};

/// Options suited to tests: plain HTTP, short timings.
inline emulator_options test_options() {
  emulator_options o;
  o.tls = false;
  o.long_poll_timeout = std::chrono::milliseconds{400};
  o.client_expiry = std::chrono::milliseconds{300};
  return o;
}

/// Replaces every clientId value by "CID" so replies compare as exact text.
inline std::string mask_client_id(const std::string& body) {
  static const std::regex re("\"clientId\":\"[0-9a-z]{26,29}\"");
  return std::regex_replace(body, re, "\"clientId\":\"CID\"");
}

/// Extracts the first clientId of a reply body.
inline std::string client_id_of(const std::string& body) {
  static const std::regex re("\"clientId\":\"([0-9a-z]+)\"");
  std::smatch m;
  return std::regex_search(body, m, re) ? m[1].str() : std::string{};
}

class harness {
 public:
  explicit harness(emulator_options options = test_options()) : work_(asio::make_work_guard(ioc_)) {
    org_ = std::make_unique<org_emulator>(ioc_.get_executor(), std::move(options));
    const std::string base = org_->base_url();
    port_ = static_cast<std::uint16_t>(std::stoi(base.substr(base.rfind(':') + 1)));
    tls_ = base.rfind("https", 0) == 0;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~harness() {
    run([this] { org_->stop(); });
    run([this] { org_.reset(); });
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;

  /// Runs `f` on the emulator's thread and waits for it (bounded: 10 s).
  template <class F>
  auto run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(ioc_, [&task] { task(); });
    if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      throw std::runtime_error("emulator thread did not answer within 10 s");
    }
    return fut.get();
  }

  org_emulator& org() { return *org_; }
  std::uint16_t port() const { return port_; }

  /// A fresh session id for the demo user.
  std::string token() {
    return run([this] { return org_->issue_session("demo@sfstream.local"); });
  }

  /// Sends one request on a new connection; records Set-Cookie values in the cookie map.
  reply send(const std::string& method, const std::string& target, const std::string& body,
             std::vector<std::pair<std::string, std::string>> headers = {},
             std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
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
            http::async_read(*tls_stream, buffer, parser, [&](beast::error_code ec4, std::size_t) { finish(ec4); });
          });
        });
      });
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
      plain->async_connect(ep, [&](beast::error_code ec) {
        if (ec) return finish(ec);
        http::async_write(*plain, req, [&](beast::error_code ec3, std::size_t) {
          if (ec3) return finish(ec3);
          http::async_read(*plain, buffer, parser, [&](beast::error_code ec4, std::size_t) { finish(ec4); });
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

  /// POSTs a Bayeux body to /cometd/59.0 with the bearer token.
  reply cometd(const std::string& body, const std::string& token, const std::string& path = "/cometd/59.0",
               std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return send("POST", path, body, h, deadline);
  }

  /// Handshakes and returns the client id ("" on failure).
  std::string handshake(const std::string& token) {
    auto r = cometd(R"([{"channel":"/meta/handshake","id":"1","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true}}])",
                    token);
    return client_id_of(r.body);
  }

  std::map<std::string, std::string>& cookies() { return cookies_; }

 private:
  static bool has_header(const std::vector<std::pair<std::string, std::string>>& h, const std::string& name) {
    for (const auto& [k, v] : h) {
      if (beast::iequals(k, name)) return true;
    }
    return false;
  }
  void remember_cookie(const std::string& set_cookie) {
    auto semi = set_cookie.find(';');
    std::string pair = set_cookie.substr(0, semi);
    auto eq = pair.find('=');
    if (eq == std::string::npos) return;
    cookies_[pair.substr(0, eq)] = pair.substr(eq + 1);
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<org_emulator> org_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  bool tls_ = false;
  std::map<std::string, std::string> cookies_;
};

}  // namespace emulator_test
