// Where a connection of `sfstream serve` hands its events: stdout, a rotating file, a webhook.
// A sink takes one channel's events a batch at a time and reports when they are safe at the
// destination; only then does the connection commit their replay ids. That is what makes the
// service at-least-once across crashes and exactly-once apart from them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "sfstream/client.hpp"
#include "sfstream/error.hpp"
#include "sfstream/event.hpp"

namespace sfstream::serve {

/// What a sink has done, for /status and /metrics.
struct sink_figures {
  std::uint64_t batches = 0;         ///< Batches confirmed.
  std::uint64_t events = 0;          ///< Events confirmed.
  std::uint64_t bytes = 0;           ///< Bytes written or posted and confirmed.
  std::uint64_t retries = 0;         ///< Attempts that failed and were tried again.
  std::uint64_t failures = 0;        ///< Attempts that failed (retried or not).
  std::uint64_t dead_letters = 0;    ///< Events written to the dead-letter file.
  std::size_t backlog = 0;           ///< Events handed to the sink and not yet confirmed.
  /// Time from a batch being handed to its confirmation, in seconds: Prometheus histogram
  /// buckets (upper bound → cumulative count), plus the sum and count.
  std::map<double, std::uint64_t> latency_buckets;
  double latency_sum = 0;
  std::uint64_t latency_count = 0;
  std::optional<std::string> last_error;  ///< Redacted text of the last failure.
};

class sink {
 public:
  virtual ~sink() = default;

  /// Delivers `events` (consecutive events of `channel`, in order) for `connection`, and calls
  /// `done` exactly once, from any thread: done(events.size(), {}) once all are safe at the
  /// destination, or done(k, error) when only the first k are and the next one failed in a way
  /// the sink will not retry any more (the connection's handler failure policy decides then).
  /// The events stay valid until `done` is called. At most one batch per connection and
  /// channel is in flight: the next of that channel comes after `done`. Batches of different
  /// channels of one connection may overlap (its streaming client and its poller while it
  /// returns from a fallback), so a sink keeps its per-connection state thread-safe.
  virtual void deliver(const std::string& connection, const std::string& channel,
                       std::span<const event> events, batch_done done) = 0;

  /// Shutdown: a batch still waiting for a retry ends with done(k, error) at once, so a dead
  /// receiver never holds the service's stop; a batch being written is finished first.
  virtual void stop() = 0;

  /// A snapshot, safe from any thread.
  virtual sink_figures figures() const = 0;
};

}  // namespace sfstream::serve
