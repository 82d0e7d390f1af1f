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

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "emulator/emulator.hpp"

namespace emulator_test {

namespace asio = boost::asio;
using sfstream::emulator::emulator_options;
using sfstream::emulator::org_emulator;

struct reply {
  unsigned status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool failed = false;  ///< Transport failure (connection closed, timeout, partial body).

  /// Every value of the header `name` (case-insensitive), in order.
  std::vector<std::string> all(const std::string& name) const;
  /// The first value of the header `name`, or "".
  std::string header(const std::string& name) const;
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
             std::chrono::milliseconds deadline = std::chrono::seconds(10));

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
  void remember_cookie(const std::string& set_cookie);

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<org_emulator> org_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  bool tls_ = false;
  std::map<std::string, std::string> cookies_;
};

}  // namespace emulator_test
