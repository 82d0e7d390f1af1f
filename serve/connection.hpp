// One connection of `sfstream serve`: one org, one sfstream::client, its sink. The connection
// keeps its client running: a run that ends with an error a later try can fix (an outage past
// the client's own retries, a sink that kept failing, a store that could not be written) is
// started again after a long, doubling backoff; one no retry can fix (refused credentials, an
// unsupported API version) leaves the connection failed with its error, and the rest of the
// service goes on. Everything runs on the service's thread pool, on the connection's strand.
//
// A poll connection (kind = "poll") runs a poll_run instead of a client, with the same
// restarts. A streaming connection with a [connection.fallback] switches to polling those
// objects while the org's daily event allocation is spent (the client reports the limit, the
// connection stops it), tries streaming again every probe interval, and once a subscription is
// confirmed stops the polling (after its batch in flight) and streams on from the stored
// replay ids. The polling side lives in serve/connection_polling.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "serve/config.hpp"
#include "serve/sink.hpp"
#include "serve/status.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"

namespace sfstream::serve {

class service_log;
class poll_run;

class connection : public std::enable_shared_from_this<connection> {
 public:
  /// Network I/O on `executor`; sink calls and commits on `blocking`.
  connection(boost::asio::any_io_executor executor, boost::asio::any_io_executor blocking,
             connection_config config,
             std::shared_ptr<replay_store> store, std::shared_ptr<sink> out,
             std::string sink_kind, const service_log& log);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Starts a run; again after a stop has completed (replicas: a lease claimed once more).
  void start();
  /// Graceful stop: ends a restart wait, cancels the client (which drains what it holds and
  /// commits) and calls `stopped` once the run has completed. `final` (the service stops):
  /// the sink ends its retry waits too, and is not used again.
  void stop(std::function<void()> stopped, bool final = true);

  const std::string& name() const noexcept { return config_.name; }
  /// A snapshot for /status and /metrics; safe from any thread.
  connection_status status() const;

 private:
  struct channel_counters;
  void start_run();
  void on_run_finished(std::error_code ec);
  /// After a run ended with `why` (not stopping): a restart after the backoff, or failed.
  void retry_or_fail(const error_info& why);
  bool restartable(const error_info& why) const;

  // serve/connection_polling.cpp
  void start_polling();
  /// The client's logger: with a fallback, one that reports the daily event limit.
  logger client_log();
  void on_daily_limit(std::uint64_t run);
  void start_fallback_polling();
  void on_stream_back();
  void probe_later();
  /// `stopped`, or a callback that calls it once the polling has stopped too.
  std::function<void()> stop_polling(std::function<void()> stopped);

  connection_config config_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer restart_timer_;
  boost::asio::steady_timer probe_timer_;  // fallback: the next try of streaming
  boost::asio::any_io_executor blocking_;
  std::shared_ptr<replay_store> store_;
  std::shared_ptr<sink> sink_;
  std::string sink_kind_;
  logger log_;
  std::function<std::string(std::string_view)> redact_;
  std::shared_ptr<credentials_provider> credentials_;
  std::shared_ptr<channel_counters> counters_;

  mutable std::mutex mutex_;  // guards what status() reads
  std::shared_ptr<client> client_;
  connection_state state_ = connection_state::starting;
  std::optional<std::string> last_error_;
  std::atomic<bool> streamed_{false};  // the current run has had a subscription confirmed
  std::shared_ptr<poll_run> polling_;  // a poll connection's, or the fallback's
  std::atomic<bool> fallback_{false};  // streaming refused by the daily limit: polling
  std::uint64_t fallbacks_ = 0;
  std::optional<std::string> last_gap_;

  // strand only
  bool stopping_ = false;
  bool running_ = false;
  std::uint64_t runs_ = 0;  // raised by every start() and stop(): a stale restart wait is void
  std::chrono::milliseconds backoff_{0};
  std::function<void()> stopped_;
  std::uint64_t run_ = 0;     // client runs started, to tell a stale limit report
  bool limit_seen_ = false;   // the current run reported the daily limit
};

}  // namespace sfstream::serve
