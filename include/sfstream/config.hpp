// Configuration of the streaming client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "sfstream/credentials.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"
#include "sfstream/replay.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream {

/// When a replay id counts as handled.
enum class commit_mode {
  after_handler,  ///< After the handler returns: at-least-once (default).
  on_receive,     ///< When the event is received: at-most-once across crashes.
};

/// Everything the client needs. Only `credentials` is required.
struct client_config {
  /// Where tokens and the instance URL come from (SOAP login, OAuth, a static token, ...).
  std::shared_ptr<credentials_provider> credentials;
  /// Streaming API version of the CometD endpoint (/cometd/<version>); 37.0 or later.
  std::string api_version = "59.0";
  network_options network;
  logger log;
  /// Durable positions; null means an in-memory store.
  std::shared_ptr<replay_store> store;
  /// Default policy when a stored id cannot be honoured (per channel: see client::subscribe).
  replay_policy policy = replay_policy::earliest;
  commit_mode commit = commit_mode::after_handler;
  /// Events held between the network and the handlers. When full the client disconnects
  /// cleanly and resumes from the last committed replay id once the handlers catch up.
  std::size_t queue_capacity = 10'000;
  /// Extra time allowed beyond the server's long-poll timeout (110 s on Salesforce).
  std::chrono::milliseconds long_poll_slack{15'000};
  /// How long stop waits for the /meta/disconnect reply Salesforce may never send.
  std::chrono::milliseconds disconnect_timeout{2'000};
  /// Consecutive failed attempts before giving up with errc::retries_exhausted; -1 = never.
  int max_retries = -1;
  /// Backoff after transport errors, 5xx replies and missed deadlines: doubles from `initial`
  /// up to `max`, with jitter.
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  /// Backoff after a Salesforce limit error (concurrent clients, daily events, connections
  /// per server): long and capped, so a client never loops against a limit.
  std::chrono::milliseconds limit_backoff_initial{60'000};
  std::chrono::milliseconds limit_backoff_max{30 * 60'000};
  /// Seed of the reconnect jitter; 0 picks a random seed.
  std::uint64_t jitter_seed = 0;
};

}  // namespace sfstream
