// The polling of one connection of `sfstream serve`: a poll connection's objects, or a
// streaming connection's fallback while the org's daily event allocation is spent. It runs one
// sfstream::poller at a time, hands each page's new events to the connection's sink like
// streamed ones (channel "/poll/<Object>", on the blocking pool) and lets the poller commit its
// cursor once the sink confirmed them; cursors live in the connection's view of the service's
// store, beside its replay ids (the keys never collide).
//
// A fallback starts each object just after the newest event the connection committed (at its
// newest record when it has none), so what the stream had not delivered yet when it was refused
// is polled too; unless the store holds a live cursor of an earlier fallback that never ended
// (the service stopped while polling): then it resumes from it.
// When streaming works again the connection stops the fallback and retires its cursors, so
// the next fallback does not poll again what the stream delivered in between.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "serve/config.hpp"
#include "serve/sink.hpp"
#include "serve/status.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/poll.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream::serve {

class poll_run : public std::enable_shared_from_this<poll_run> {
 public:
  struct settings {
    std::string connection;  ///< The connection's name, written with each event.
    polling_config polling;
    bool fallback = false;
    /// The connection's handler failure policy for the sink's failures (`dead_letter` is
    /// applied as `retry`: a sink keeps its own dead letters).
    handler_failure_policy on_failure;
    std::string api_version;
    network_options network;
  };

  /// The poller runs on `io`; the sink is called on `blocking`; start's and stop's callbacks
  /// come on `callbacks` (the connection's strand), where start and stop are called.
  poll_run(boost::asio::any_io_executor io, boost::asio::any_io_executor blocking,
           boost::asio::any_io_executor callbacks, settings s,
           std::shared_ptr<credentials_provider> credentials, std::shared_ptr<replay_store> store,
           std::shared_ptr<sink> out, logger log);
  ~poll_run();
  poll_run(const poll_run&) = delete;
  poll_run& operator=(const poll_run&) = delete;

  /// Starts polling; `finished` gets the error that ended the run (not called after stop()).
  /// An object without a stored cursor starts with the changes stamped at or after `since`,
  /// or at its newest record when there is none.
  void start(std::function<void(const error_info&)> finished,
             std::optional<std::chrono::system_clock::time_point> since = std::nullopt);
  /// Cancels the run: `stopped` comes once the batch the sink holds was confirmed and its
  /// cursor committed (at once when not running).
  void stop(std::function<void()> stopped);
  bool running() const;
  /// Marks every object's cursor as left behind (after a fallback ended): the next fallback
  /// starts at its own beginning. Errors are logged.
  void retire();
  /// A snapshot, safe from any thread; figures add up over the runs of this object.
  polling_status status() const;

 private:
  void on_finished(std::error_code ec);

  boost::asio::any_io_executor io_;
  boost::asio::any_io_executor blocking_;
  boost::asio::any_io_executor callbacks_;
  settings settings_;
  std::shared_ptr<credentials_provider> credentials_;
  std::shared_ptr<replay_store> store_;  // the cursor view (retired cursors read as none)
  std::shared_ptr<replay_store> inner_;
  std::shared_ptr<sink> sink_;
  logger log_;

  mutable std::mutex mutex_;  // guards poller_ and totals_ for status()
  std::unique_ptr<poller> poller_;
  polling_status totals_;  // of the runs that ended

  // callbacks_ only
  std::function<void(const error_info&)> finished_;
  std::function<void()> stopped_;
  bool running_ = false;
};

/// A logger that passes every line to `inner` and calls `on_limit` for each error line that
/// says the org's daily event allocation is spent (the client reports it this way both when a
/// connect and when a subscription is refused, and then waits out its long limit backoff).
logger watch_daily_event_limit(logger inner, std::function<void()> on_limit);

}  // namespace sfstream::serve
