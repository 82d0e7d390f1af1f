// The streaming client for middleware that does not use Asio: it runs its own I/O thread and
// calls handlers on its own worker thread.
//
//   sfstream::connector c{config};
//   c.subscribe("/event/Order__e", sfstream::replay_all, [](const sfstream::event& e) {...});
//   c.start();
//   ...
//   c.stop();   // graceful: drains, commits, disconnects
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sfstream/client.hpp"

namespace sfstream {

class connector {
 public:
  explicit connector(client_config config);
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
