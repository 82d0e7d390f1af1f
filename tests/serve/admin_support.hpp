// What the admin and metrics tests share: a snapshot with every kind of figure (and names that
// need escaping), a temporary directory, running a command, and a plain HTTP client on a real
// socket that keeps its connection between requests.
#pragma once

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "serve/status.hpp"

namespace admin_test {

using namespace sfstream::serve;

inline service_status sample_status() {
  service_status s;
  s.version = "9.9.9";
  s.started_at = std::chrono::sys_days{std::chrono::year{2026} / 1 / 2} + std::chrono::hours(3) +
                 std::chrono::minutes(4) + std::chrono::seconds(5);
  s.uptime = std::chrono::milliseconds(3'600'000);

  connection_status acme;
  acme.name = "acme";
  acme.state = connection_state::streaming;
  acme.client_state = "connected";
  acme.sink_kind = "webhook";
  acme.client.events = 1234;
  acme.client.bytes = 987654;
  acme.client.handshakes = 3;
  acme.client.rehandshakes_by_cause = {{"unknown_client", 2}};
  acme.client.reconnects_by_cause = {{"transport_error", 5}};
  acme.client.authentications = 2;
  acme.client.gaps = 1;
  acme.client.pauses = 3;
  acme.client.queue_depth = 17;
  acme.client.queue_bytes = 4096;
  acme.sink.batches = 11;
  acme.sink.events = 1000;
  acme.sink.bytes = 50'000;
  acme.sink.retries = 4;
  acme.sink.failures = 5;
  acme.sink.dead_letters = 2;
  acme.sink.backlog = 9;
  acme.sink.latency_buckets = {{0.05, 3}, {0.5, 8}, {5.0, 10}};
  acme.sink.latency_sum = 12.75;
  acme.sink.latency_count = 11;
  channel_status orders;
  orders.channel = "/topic/Orders?Status=\"New\"";
  orders.events = 1000;
  channel_status cdc;
  cdc.channel = "/data/AccountChangeEvent";
  cdc.events = 234;
  cdc.last_replay_id = 9007199254740993;
  cdc.committed_replay_id = 9007199254740990;
  cdc.last_event_age = std::chrono::milliseconds(2250);
  cdc.sink_backlog = 3;
  acme.channels = {orders, cdc};

  connection_status west;
  west.name = "we\"st\\org\n2";
  west.state = connection_state::failed;
  west.client_state = "closed";
  west.sink_kind = "file";
  west.last_error = "The login was refused: INVALID_LOGIN: Invalid username, password, security token";
  west.client.events = 7;
  s.connections = {acme, west};
  return s;
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("sfstream-admin-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

/// The full path of `name` on PATH (or in /usr/bin, /usr/sbin), empty when absent.
inline std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/sbin:/bin";
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

struct command_result {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together.
};

/// Runs `command` with /bin/sh, capturing stdout and stderr.
inline command_result run_command(const std::string& command) {
  command_result r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.output.append(buffer, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// A blocking HTTP/1.1 client on one TCP connection (kept alive between requests).
class http_client {
 public:
  explicit http_client(std::uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    // Bounded: a server that never answers fails the read after 10 s instead of hanging.
    timeval limit{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }

  boost::beast::http::response<boost::beast::http::string_body> request(
      boost::beast::http::verb method, const std::string& target, const std::string& body = {},
      bool keep_alive = true) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(keep_alive);
    if (!body.empty()) req.body() = body;
    req.prepare_payload();
    http::write(socket_, req);
    return read(method == http::verb::head);
  }
  boost::beast::http::response<boost::beast::http::string_body> get(const std::string& target) {
    return request(boost::beast::http::verb::get, target);
  }
  /// Writes raw bytes (e.g. an oversized head) and reads one response.
  boost::beast::http::response<boost::beast::http::string_body> raw(const std::string& bytes) {
    boost::asio::write(socket_, boost::asio::buffer(bytes));
    return read(false);
  }
  /// True when the server closed the connection (a read returns end of stream).
  bool closed_by_server() {
    boost::system::error_code ec;
    char byte;
    socket_.read_some(boost::asio::buffer(&byte, 1), ec);
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }

 private:
  boost::beast::http::response<boost::beast::http::string_body> read(bool head) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    http::read(socket_, buffer_, parser);
    return parser.release();
  }
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace admin_test
