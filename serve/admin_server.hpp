// The admin HTTP listener of `sfstream serve`: /healthz, /readyz, /status and /metrics for
// systemd, load balancers, operators and Prometheus. Plain HTTP (bind it to loopback or a
// management network); it serves no secret and accepts only small GET/HEAD requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "serve/status.hpp"
#include "sfstream/error.hpp"

namespace sfstream::serve {

struct admin_options {
  std::string address = "127.0.0.1";  ///< Bind address (IPv4 or IPv6 literal).
  std::uint16_t port = 0;             ///< 0 picks a free port (see admin_server::port()).
  std::size_t max_request_bytes = 8 * 1024;  ///< Head and body; larger requests get 431/413.
  std::size_t max_connections = 64;   ///< Further connections are closed at once.
  std::chrono::milliseconds idle_timeout{30'000};  ///< A kept-alive connection idle this long closes.
};

/// Answers
///  * GET /healthz: 200 "ok" while the process runs;
///  * GET /readyz: 200 "ready" when is_ready(snapshot), else 503 with one not-ready
///    connection name per line;
///  * GET /status: render_status_json(snapshot);
///  * GET /metrics: render_metrics(snapshot);
///  * anything else: 404 (405 for a method other than GET/HEAD on a known path).
/// Keep-alive; the snapshot function is called once per /readyz, /status or /metrics request,
/// on the server's executor.
class admin_server {
 public:
  using snapshot_function = std::function<service_status()>;

  admin_server(boost::asio::any_io_executor executor, admin_options options,
               snapshot_function snapshot);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  /// Binds and starts accepting; fails with errc::invalid_config for a bad address and
  /// errc::connection_failed when the port cannot be bound (the diagnostics say which).
  error_info listen();
  /// The bound port (after listen()).
  std::uint16_t port() const noexcept;
  /// Stops accepting and closes every connection. Idempotent; safe from any thread.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sfstream::serve
