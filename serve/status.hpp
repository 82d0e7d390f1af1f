// What `sfstream serve` is doing, as one snapshot: the service, each connection, each channel,
// the client's and the sink's figures. The service fills it (under its own locks) whenever the
// admin server asks; the renderers here and in serve/metrics.hpp turn it into /status JSON and
// /metrics text. Nothing in it is a secret: errors are redacted before they are stored here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "serve/sink.hpp"
#include "sfstream/client.hpp"

namespace sfstream::serve {

/// A connection's state as an operator sees it.
enum class connection_state {
  starting,    ///< Not streaming yet: logging in, handshaking, subscribing for the first time.
  streaming,   ///< Connected and long-polling (paused by back-pressure counts as streaming).
  recovering,  ///< Was streaming; now backing off, re-authenticating or re-handshaking.
  failed,      ///< Ended by an error (last_error says which); retried later if retryable.
  stopped,     ///< Deliberately stopped: disabled in the config, or the service is stopping.
};

/// "starting", "streaming", "recovering", "failed", "stopped".
std::string_view to_string(connection_state state) noexcept;

/// Every state, in declaration order (for the state gauge of /metrics).
inline constexpr connection_state all_connection_states[] = {
    connection_state::starting, connection_state::streaming, connection_state::recovering,
    connection_state::failed, connection_state::stopped};

/// One channel of one connection.
struct channel_status {
  std::string channel;                          ///< As configured, filter included.
  std::optional<std::int64_t> last_replay_id;   ///< Newest received.
  std::optional<std::chrono::milliseconds> last_event_age;  ///< Since the newest event's time.
  std::optional<std::int64_t> committed_replay_id;          ///< What a restart resumes after.
  std::uint64_t events = 0;                     ///< Events received on this channel.
  std::size_t sink_backlog = 0;                 ///< Handed to the sink, not yet confirmed.
};

/// One configured connection (one org, one sfstream::client).
struct connection_status {
  std::string name;
  connection_state state = connection_state::starting;
  std::string client_state;               ///< to_string(client_state), for detail.
  std::optional<std::string> last_error;  ///< Redacted, one line.
  std::string sink_kind;                  ///< "stdout", "file", "webhook".
  std::vector<channel_status> channels;
  client_metrics client;  ///< events, bytes, re-handshakes and reconnects by cause, gaps, ...
  sink_figures sink;      ///< The sink's figures (of this connection's deliveries).
};

/// The whole service.
struct service_status {
  std::string version;                         ///< sfstream's version.
  std::chrono::system_clock::time_point started_at{};
  std::chrono::milliseconds uptime{0};
  bool stopping = false;                       ///< SIGTERM received, draining.
  /// Why the replay store cannot be used yet (a PostgreSQL server not reached at start: the
  /// connections wait for it); redacted. Not ready while set.
  std::optional<std::string> store_error;
  std::vector<connection_status> connections;
};

/// True when the store is usable and every connection is streaming or deliberately stopped
/// (what /readyz answers 200 for); `not_ready` (when given) gets the names of the others
/// ("store: <why>" first when the store is not usable).
bool is_ready(const service_status& status, std::vector<std::string>* not_ready = nullptr);

/// The snapshot as one JSON object (what /status serves), pretty enough to read with curl:
/// {"version":…,"started_at":"…Z","uptime_seconds":…,"stopping":false,"ready":true,
///  "connections":[{"name":…,"state":"streaming","client_state":"connected","last_error":null,
///  "channels":[{"channel":…,"last_replay_id":…,"last_event_age_seconds":…,
///  "committed_replay_id":…,"events":…,"sink_backlog":…}],
///  "client":{"events":…,"bytes":…,"handshakes":…,"rehandshakes":{"cause":n},
///  "reconnects":{"cause":n},"authentications":…,"gaps":…,"pauses":…,"queue_depth":…,
///  "queue_bytes":…,"handler_failures":…,"dead_letters":…},
///  "sink":{"kind":…,"batches":…,"events":…,"bytes":…,"retries":…,"failures":…,
///  "dead_letters":…,"backlog":…,"latency_seconds":{"sum":…,"count":…},"last_error":…}}]}
std::string render_status_json(const service_status& status);

}  // namespace sfstream::serve
