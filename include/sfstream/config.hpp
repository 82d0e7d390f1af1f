// Configuration of the streaming client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

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

/// What follows when a handler fails on an event (it throws, or its on_event_status returns
/// an error): like Kafka Connect's `errors.tolerance`, the failed event is never committed
/// silently.
enum class handler_failure {
  /// End the run with errc::handler_failed (default). The event stays uncommitted and nothing
  /// after it is handled or committed: a restart with the same store gets it again.
  stop,
  /// Call the handler again with the same event, up to `max_retries` times, waiting
  /// `retry_backoff_initial`, doubling up to `retry_backoff_max` between tries (on the handler
  /// side; the stream keeps its own pace and pauses when the queue fills). When every retry
  /// failed, as `stop`.
  retry,
  /// Append the event and the error durably (write + fsync) as one JSON line to
  /// `dead_letter_path`, then commit the event and go on:
  /// {"channel":…,"replayId":…,"error":"…","event":{the event's message, compact}}.
  /// A dead letter that cannot be written ends the run with errc::output_failed, the event
  /// uncommitted.
  dead_letter,
};

/// "stop", "retry" or "dead_letter".
std::string_view to_string(handler_failure policy) noexcept;

/// The handler failure policy of a client (client_config::on_handler_failure) or of one
/// subscription (subscription_callbacks::on_failure).
struct handler_failure_policy {
  handler_failure action = handler_failure::stop;
  /// For `retry`: calls after the first failure before giving up.
  int max_retries = 3;
  std::chrono::milliseconds retry_backoff_initial{100};
  std::chrono::milliseconds retry_backoff_max{2'000};
  /// For `dead_letter`: the file the failed events are appended to (created 0600 when
  /// missing). Required with `dead_letter`: async_run (or subscribe) fails with
  /// errc::invalid_config without it.
  std::filesystem::path dead_letter_path;
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
  /// Events held between the network and the handlers (queued or being handled). When full
  /// the client disconnects cleanly and resumes losslessly, from the last received replay
  /// ids, once the handlers are back at half.
  std::size_t queue_capacity = 10'000;
  /// The same bound in bytes of raw event JSON: reaching either bound pauses the stream. The
  /// default keeps the queue's share of memory near 32 MiB whatever the event size (one reply
  /// may overshoot by at most its body limit); a single event larger than the budget still
  /// passes, alone.
  std::size_t queue_max_bytes = 32u << 20;
  /// What follows a failed handler (default: the run stops, the event uncommitted).
  handler_failure_policy on_handler_failure;
  /// Tries of replay_store::save for one batch, with a short backoff (50 ms, doubling) in
  /// between; when all failed the run ends with errc::replay_store_io and nothing after the
  /// batch is committed.
  int store_save_attempts = 3;
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
