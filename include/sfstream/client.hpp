// The Asio-native streaming client.
//
//   sfstream::client c{io.get_executor(), config};
//   c.subscribe("/topic/AccountUpdates", sfstream::replay_new,
//               [](const sfstream::event& e) { std::cout << e.json() << '\n'; });
//   c.async_run([](std::error_code ec) { ... });   // until cancel() or a fatal error
//   io.run();
//
// Handlers never run on the network path: events pass through a bounded queue and handlers
// run on `handler_executor` (the client's executor by default). All member functions may be
// called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include "sfstream/detail/completion.hpp"
#include "sfstream/config.hpp"
#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/replay.hpp"

namespace sfstream {

namespace detail {
class client_runtime;
}

/// The client's state, named as CometD clients name theirs so logs compare.
enum class client_state {
  unconnected,
  authenticating,
  handshaking,
  connected,
  backing_off,
  paused,
  disconnecting,
  closed
};
std::string_view to_string(client_state state) noexcept;

/// How an asynchronous batch handler (subscription_callbacks::on_batch) ends a batch: the first
/// `handled` events are done and may be committed; an `error` fails the event right after them
/// (the one at index `handled`) and the handler failure policy decides what follows: `retry`
/// hands the batch again from that event on, `dead_letter` writes that event to the dead-letter
/// file and hands the rest, `stop` ends the run with it uncommitted. Without an error, the whole
/// batch is done whatever `handled` says.
using batch_done = std::function<void(std::size_t handled, error_info error)>;

/// What happens to one subscription, besides its events.
struct subscription_callbacks {
  /// Each event, in order, after the previous call returned. Throwing fails the event: it is
  /// not committed and the handler failure policy decides what follows.
  std::function<void(const event&)> on_event;
  /// Instead of on_event (used when set): a handler that reports failure by returning an
  /// error (any code; its diagnostics travel into the run's error). An empty error_info is
  /// success. Throwing fails the event as well.
  std::function<error_info(const event&)> on_event_status;
  /// Instead of on_event and on_event_status (used when set): an asynchronous handler that
  /// takes this subscription's events a batch at a time (consecutive events of one reply, in
  /// order) and reports when it is done with them, from any thread, by calling `done` exactly
  /// once (later calls are ignored). The events stay valid until then, and the subscription's
  /// next batch comes only after it; other work (network, other clients) goes on meanwhile.
  std::function<void(std::span<const event> events, batch_done done)> on_batch;
  /// This subscription's handler failure policy; the client's (client_config::
  /// on_handler_failure) when empty.
  std::optional<handler_failure_policy> on_failure;
  /// A gap: a stored position could not be honoured. Called before the fallback's first event.
  std::function<void(const gap_record&)> on_gap;
  /// The server rejected the subscription (or its replay policy is `fail`); it is dropped.
  std::function<void(const error_info&)> on_rejected;
  /// The server confirmed the subscription; `replay_from` is the position actually used.
  std::function<void(std::int64_t replay_from)> on_subscribed;
};

/// Per channel figures.
struct channel_metrics {
  std::uint64_t events = 0;
  std::optional<std::int64_t> last_replay_id;
  std::optional<std::chrono::milliseconds> last_event_age;
};

/// A snapshot of what the client has done.
struct client_metrics {
  std::uint64_t events = 0;
  std::uint64_t bytes = 0;  ///< Response bytes received.
  std::uint64_t handshakes = 0;
  std::map<std::string, std::uint64_t> rehandshakes_by_cause;
  std::map<std::string, std::uint64_t> reconnects_by_cause;
  std::uint64_t authentications = 0;
  std::uint64_t gaps = 0;
  std::size_t queue_depth = 0;  ///< Events held: queued or being handled.
  std::size_t queue_high_water = 0;
  std::size_t queue_bytes = 0;  ///< Bytes of raw event JSON held.
  std::size_t queue_bytes_high_water = 0;
  std::uint64_t pauses = 0;  ///< Times the full queue (events or bytes) made the client disconnect.
  std::uint64_t handler_failures = 0;  ///< Handler calls that threw or returned an error.
  std::uint64_t dead_letters = 0;      ///< Events appended to the dead-letter file.
  std::map<std::string, channel_metrics> channels;
};

class client {
 public:
  /// Network I/O and handlers both on `executor` (handlers are posted, never run inside a
  /// network completion).
  client(boost::asio::any_io_executor executor, client_config config);
  /// Handlers run on `handler_executor` (e.g. a thread pool), network I/O on `executor`.
  client(boost::asio::any_io_executor executor, boost::asio::any_io_executor handler_executor,
         client_config config);
  /// Cancels and waits for nothing: destroying a running client ends it without a clean stop.
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Subscribes now or at the next handshake. A position in the replay store wins over
  /// `replay_from` (-1 new, -2 all retained, N after N). Fails at once for an invalid channel
  /// or replay id. `policy` overrides the client's replay policy for this channel.
  error_info subscribe(const std::string& channel, std::int64_t replay_from,
                       subscription_callbacks callbacks,
                       std::optional<replay_policy> policy = std::nullopt);
  /// Shorthand with only an event handler.
  error_info subscribe(const std::string& channel, std::int64_t replay_from,
                       std::function<void(const event&)> on_event);
  /// Unsubscribes now or at the next handshake.
  void unsubscribe(const std::string& channel);

  /// Runs until cancel() (completes with no error) or a fatal error (completes with its code;
  /// last_error() has the diagnostics): among them errc::handler_failed (a handler failed and
  /// its policy is `stop`, or `retry` ran out), errc::output_failed (a dead letter could not
  /// be written) and errc::replay_store_io (the store could not save a batch). Signature:
  /// void(std::error_code).
  template <typename CompletionToken>
  auto async_run(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler) { start_run(detail::make_completion(std::move(handler))); },
        token);
  }

  /// Graceful stop: stops taking events, lets the handlers drain what is queued, commits,
  /// sends /meta/disconnect without waiting long for a reply, then completes async_run.
  void cancel();

  client_state state() const;
  /// The last committed replay id of a channel (its replay key: no filter).
  std::optional<std::int64_t> committed_replay_id(const std::string& channel) const;
  client_metrics metrics() const;
  /// The error async_run completed with, with its diagnostics.
  error_info last_error() const;

 private:
  void start_run(std::function<void(std::error_code)> done);
  std::shared_ptr<detail::client_runtime> impl_;
};

}  // namespace sfstream
