// The streaming client for middleware that does not use Asio: it runs its own I/O thread and
// calls handlers on its own worker thread.
//
//   sfstream::connector c{config};
//   c.subscribe("/event/Order__e", sfstream::replay_all, [](const sfstream::event& e) {...});
//   c.start();
//   ...
//   c.stop();   // graceful: drains, commits, disconnects
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "sfstream/client.hpp"

namespace sfstream {

class connector {
 public:
  /// `config.credentials` must complete on an executor that some thread runs (a provider
  /// posts its results to the executor it was made with): one of the caller's, or the
  /// connector's own through the other constructor.
  explicit connector(client_config config);
  /// Builds the configuration with the connector's I/O executor, for credentials providers
  /// that need one and have no executor of their own to run:
  ///   sfstream::connector c{[&](boost::asio::any_io_executor io) {
  ///     config.credentials = sfstream::make_static_token_provider(io, token);
  ///     return config;
  ///   }};
  explicit connector(std::function<client_config(boost::asio::any_io_executor io)> make_config);
  /// Stops (gracefully) if still running.
  ~connector();
  connector(const connector&) = delete;
  connector& operator=(const connector&) = delete;

  /// As client::subscribe; callbacks run on the connector's worker thread.
  error_info subscribe(const std::string& channel, std::int64_t replay_from,
                       subscription_callbacks callbacks,
                       std::optional<replay_policy> policy = std::nullopt);
  error_info subscribe(const std::string& channel, std::int64_t replay_from,
                       std::function<void(const event&)> on_event);
  void unsubscribe(const std::string& channel);

  /// Starts the I/O and worker threads. Calling it twice has no effect.
  void start();
  /// Stops gracefully and joins the threads; returns the error the client ended with, if any.
  error_info stop();
  /// Blocks until the client ends by itself (a fatal error) or stop() is called.
  error_info wait();
  bool running() const;

  client_state state() const;
  std::optional<std::int64_t> committed_replay_id(const std::string& channel) const;
  client_metrics metrics() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sfstream
