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
  polling,     ///< A poll connection reading its objects.
  fallback,    ///< Streaming refused (the org's daily event allocation is spent): polling.
  recovering,  ///< Was streaming; now backing off, re-authenticating or re-handshaking.
  failed,      ///< Ended by an error (last_error says which); retried later if retryable.
  stopped,     ///< Deliberately stopped: disabled in the config, or the service is stopping.
  standby,     ///< Replicas share the connections: its lease is not held by this replica.
};

/// "starting", "streaming", "polling", "polling (fallback)", "recovering", "failed", "stopped".
std::string_view to_string(connection_state state) noexcept;

/// Every state, in declaration order (for the state gauge of /metrics).
inline constexpr connection_state all_connection_states[] = {
    connection_state::starting, connection_state::streaming,  connection_state::polling,
    connection_state::fallback, connection_state::recovering, connection_state::failed,
    connection_state::stopped,  connection_state::standby};

/// One channel of one connection.
struct channel_status {
  std::string channel;                          ///< As configured, filter included.
  std::optional<std::int64_t> last_replay_id;   ///< Newest received.
  std::optional<std::chrono::milliseconds> last_event_age;  ///< Since the newest event's time.
  std::optional<std::int64_t> committed_replay_id;          ///< What a restart resumes after.
  std::uint64_t events = 0;                     ///< Events received on this channel.
  std::size_t sink_backlog = 0;                 ///< Handed to the sink, not yet confirmed.
};

/// One polled object of a connection.
struct poll_object_status {
  std::string object;
  std::string channel;            ///< "/poll/<object>": its events' channel and store key.
  std::uint64_t events = 0;       ///< Events the sink confirmed (and the cursor committed).
  std::uint64_t api_calls = 0;    ///< REST calls made for it (queries and pages).
  std::uint64_t polls = 0;        ///< Polls completed.
  std::uint64_t errors = 0;       ///< Failed REST calls (retried or not).
  /// The newest SystemModstamp committed: what the next poll reads after (less the overlap).
  std::optional<std::chrono::system_clock::time_point> cursor_time;
};

/// The polling of a connection: a poll connection's, or a streaming one's fallback.
struct polling_status {
  bool fallback = false;          ///< The fallback of a streaming connection.
  std::uint64_t api_calls = 0;    ///< Every REST call, /limits included.
  /// DailyApiRequests as /limits reported it when polling started.
  std::optional<std::int64_t> api_max;
  std::optional<std::int64_t> api_remaining;
  std::vector<poll_object_status> objects;
};

/// A connection's lease, with a PostgreSQL store shared by replicas.
struct lease_status {
  std::optional<std::string> owner;  ///< The replica holding it (unexpired); empty: free.
  std::int64_t epoch = 0;            ///< Raised by every claim.
  std::string expires_at;            ///< ISO 8601 UTC, the server's clock; empty when never.
  std::int64_t expires_ms = 0;       ///< The same in milliseconds since 1970; 0 when never.
  bool held_here = false;            ///< This replica holds it and streams the connection.
};

/// This replica, with a PostgreSQL store shared by replicas.
struct replica_status {
  std::string replica;
  std::chrono::milliseconds lease_ttl{0};
  std::size_t live_replicas = 0;  ///< With an unexpired heartbeat, this one included.
  std::size_t share = 0;          ///< ceil(connections / live replicas).
  std::size_t held = 0;           ///< Leases held and streamed here.
  std::uint64_t renewals = 0, claims = 0, takeovers = 0, losses = 0, releases = 0;
  std::optional<std::string> last_error;  ///< The keeper's last database failure, redacted.
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
  /// The objects polled now (a poll connection, or a streaming one in fallback); else empty.
  std::optional<polling_status> polling;
  std::uint64_t fallbacks = 0;  ///< Switches of a streaming connection to its fallback polling.
  /// The last gap record (a stored replay id that could not be honoured), as text.
  std::optional<std::string> last_gap;
  std::optional<lease_status> lease;  ///< With replicas sharing a PostgreSQL store.
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
  std::optional<replica_status> replica;       ///< With replicas sharing a PostgreSQL store.
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
///  "dead_letters":…,"backlog":…,"latency_seconds":{"sum":…,"count":…},"last_error":…},
///  "polling":null or {"fallback":…,"api_calls":…,"daily_api_requests":{"max":…,
///  "remaining":…} or null,"objects":[{"object":…,"channel":…,"events":…,"api_calls":…,
///  "polls":…,"errors":…,"last_cursor_time":"…Z" or null}]},"fallbacks":…,"last_gap":…,
///  "lease":{"owner":…,"epoch":…,"expires_at":…,"held_here":…}}]}
/// With replicas, "replica":{"id":…,"lease_ttl_seconds":…,"live_replicas":…,"share":…,
/// "held":…,"renewals":…,"claims":…,"takeovers":…,"losses":…,"releases":…,"last_error":…}
/// follows "ready", and each connection has its "lease".
std::string render_status_json(const service_status& status);

}  // namespace sfstream::serve
