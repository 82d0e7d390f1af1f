// Helpers for the loopback transport tests: drive an io_context in bounded steps, run one
// exchange synchronously, keep PEM files in a temporary directory.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "emulator/net/http_server.hpp"
#include "src/transport/cookie_jar.hpp"
#include "src/transport/http_client.hpp"

namespace loopback {

namespace net = sfstream::emulator::net;
namespace transport = sfstream::transport;
using namespace std::chrono_literals;

/// Runs `io` until `done()` holds or `limit` passes (bounded in time; the loop re-arms the
/// context when it runs out of work).
template <class Predicate>
bool run_until(boost::asio::io_context& io, Predicate done, std::chrono::milliseconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_for(20ms);
  }
  return done();
}

/// Lets pending handlers run for a short while (e.g. closes and aborted operations).
inline void settle(boost::asio::io_context& io, std::chrono::milliseconds span = 50ms) {
  const auto end = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_for(5ms);
  }
}

struct outcome {
  sfstream::error_info error;
  transport::http_response response;
  int calls = 0;
};

/// Runs one exchange on `lane` to completion (or the 20 s safety bound).
inline outcome exchange(boost::asio::io_context& io, transport::http_lane& lane,
                        transport::http_request request, std::chrono::milliseconds deadline = 10s) {
  auto result = std::make_shared<outcome>();
  lane.async_exchange(std::move(request), deadline,
                      [result](sfstream::error_info e, transport::http_response r) {
                        result->error = std::move(e);
                        result->response = std::move(r);
                        ++result->calls;
                      });
  REQUIRE(run_until(io, [&] { return result->calls > 0; }));
  settle(io, 10ms);
  CHECK(result->calls == 1);
  return *result;
}

inline transport::http_request post(std::string target, std::string body = "[]") {
  transport::http_request r;
  r.method = "POST";
  r.target = std::move(target);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

inline transport::url parse(const std::string& text) {
  auto u = transport::url::parse(text);
  REQUIRE(u.has_value());
  return *u;
}

inline transport::http_response ok(std::string body = "[]") {
  transport::http_response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

/// A directory under the system temp dir, removed at scope end.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sfstream-transport-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A TLS server with a fresh CA plus a client TLS context trusting that CA.
struct tls_fixture {
  net::certificate_set certs;
  temp_dir dir;
  std::string ca_file;
  transport::transport_options options;

  explicit tls_fixture(std::vector<std::string> names = {"127.0.0.1", "localhost", "::1"})
      : certs(net::make_certificates(std::move(names))) {
    ca_file = dir.write("ca.pem", certs.ca_certificate_pem);
    options.ca_file = ca_file;
    options.proxy_from_environment = false;
  }

  net::server_options server_options() const {
    net::server_options o;
    o.tls = net::server_tls{certs.certificate_pem, certs.private_key_pem};
    return o;
  }
};

}  // namespace loopback
