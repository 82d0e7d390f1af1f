// The webhook sink of `sfstream serve`: each channel's events are POSTed as signed JSON
// batches to one HTTPS endpoint, in order, one request in flight per channel. A 2xx confirms
// a request; 408, 429, 5xx and network failures are retried with exponential backoff and full
// jitter (429 and 503 wait at least their Retry-After); any other status sends the request's
// events to the dead-letter file at once. docs/webhooks.md describes what a receiver sees and
// how it verifies a request.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "serve/sink.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"

namespace sfstream::serve {

/// How a webhook sink posts. Only `url` and `signing_key` are required.
struct webhook_options {
  /// Where batches are POSTed: https://host[:port]/path (http:// only for loopback hosts).
  std::string url;
  /// The HMAC-SHA256 key that signs every request (a secret: never logged, never in an error).
  std::string signing_key;
  /// Most events in one request; a larger delivery is split into several requests, in order.
  std::size_t max_batch_events = 100;
  /// Most bytes of one request body (events are never cut: an event larger than this goes
  /// alone in its own request).
  std::size_t max_batch_bytes = 1024 * 1024;
  /// Deadline of one request: connect, write and the whole response.
  std::chrono::milliseconds request_timeout{30'000};
  /// Retry waits: a random time in [0, min(backoff_max, backoff_initial * 2^(n-1))] before the
  /// n-th retry ("full jitter": many senders retrying after an outage do not come back in step).
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{300'000};
  /// The longest Retry-After honoured; a receiver asking for more waits this long.
  std::chrono::milliseconds retry_after_max{3'600'000};
  /// Retries of one request before its events go to the dead-letter file; empty = retry
  /// without limit (the default: a receiver that is down holds the stream back, loses nothing).
  std::optional<unsigned> max_retries;
  /// Where refused events go: one JSON line per event, fsynced before the batch is confirmed.
  /// Empty: a refused request (or one out of retries) fails the batch instead, and the
  /// connection's handler failure policy decides.
  std::filesystem::path dead_letter_path;
  /// Proxy, extra CA file and connect timeout, as for Salesforce (request_timeout above wins
  /// over network.request_timeout).
  network_options network;
  /// Where retries and refusals are reported (warnings); never with the key.
  logger log;
};

/// The wait a Retry-After value asks for: delay-seconds ("120") or an HTTP-date (the three
/// forms of RFC 9110; a date in the past is no wait). Empty for anything else.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

/// Checks `options` (URL, key present, bounds > 0) without connecting.
error_info validate(const webhook_options& options);

/// The sink. deliver() may be called from any thread; the sink works on `executor` (a strand
/// per channel is made from it, so a thread pool is fine). Destroy it only after stop() and
/// after every pending done() has been called, or after the executor stopped running.
class webhook_sink final : public sink {
 public:
  /// Fails with errc::invalid_config / invalid_url / insecure_url when validate() does.
  static std::shared_ptr<webhook_sink> create(boost::asio::any_io_executor executor,
                                              webhook_options options,
                                              error_info* why = nullptr);
  ~webhook_sink() override;
  webhook_sink(const webhook_sink&) = delete;
  webhook_sink& operator=(const webhook_sink&) = delete;

  void deliver(const std::string& connection, const std::string& channel,
               std::span<const event> events, batch_done done) override;
  void stop() override;
  sink_figures figures() const override;

  struct impl;

 private:
  explicit webhook_sink(std::shared_ptr<impl> impl);
  std::shared_ptr<impl> impl_;
};

}  // namespace sfstream::serve
