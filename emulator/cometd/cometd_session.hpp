// The Bayeux rules of the emulated Salesforce CometD endpoint as a state machine without I/O:
// clients, subscriptions with replay, event queues, held connects, the daily and concurrent
// limits, the affinity cookie and the armed faults. The HTTP layer (cometd_server) feeds it each
// parsed POST and the timer expiries, and carries out what it asks through `session_host`
// (timers, writing a held connect's reply). Tests drive it directly, without sockets.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "emulator/clock.hpp"
#include "emulator/cometd/bayeux_replies.hpp"
#include "emulator/event_bus.hpp"
#include "emulator/faults.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator::cometd {

/// Limits and timings of the endpoint (defaults: Salesforce's, Developer Edition limits).
struct cometd_settings {
  std::chrono::milliseconds long_poll_timeout{110'000};
  std::chrono::milliseconds client_expiry{40'000};
  std::size_t concurrent_client_limit = 20;
  std::uint64_t daily_event_limit = 10'000;  ///< 0 = unlimited.
  std::size_t request_limit = 32'768;        ///< Larger POST bodies get HTTP 413.
  /// Events carried by one /meta/connect reply at most; the rest wait for the next connect,
  /// which is answered at once. Salesforce does not document its batch size.
  std::size_t max_events_per_connect = 1'000;
  /// Bytes of events one /meta/connect reply carries at most (it always carries at least one
  /// event): with 1 MB events a reply stays under the 10 MiB body limit of CometD clients.
  std::size_t max_event_bytes_per_connect = 4u << 20;
  bool secure_cookies = true;  ///< Mark the affinity cookie Secure (HTTPS).
};

/// Who a token belongs to: the user id (005…), or nullopt for an invalid/expired token.
using token_check = std::function<std::optional<std::string>(const std::string& token)>;

/// Shared, immutable bytes of one piece of a reply body (an event serialized once).
using shared_text = std::shared_ptr<const std::string>;

/// How the HTTP layer writes one reply.
struct reply_plan {
  enum class action {
    gather,   ///< 200 with the array head + events + tail, Set-Cookie for each of `cookies`.
    respond,  ///< `response` as it is.
    cut,      ///< `response`'s head and its first `cut_bytes` body bytes, then close.
    drop,     ///< Close the connection without a byte.
    late,     ///< `response` after `delay`; then tell the session `late_reply_written(client)`.
  };
  action what = action::gather;
  std::vector<std::string> head;
  std::vector<shared_text> events;
  std::vector<std::string> tail;
  std::vector<std::string> cookies;
  transport::http_response response;
  std::size_t cut_bytes = 0;
  std::chrono::milliseconds delay{0};
  std::string client_id;  ///< The client the reply is for ("" when none).
  /// The whole body of a gather plan as one text (tests; the HTTP layer writes the pieces).
  std::string body() const;
};

/// What the session needs from the layer that owns timers and connections.
class session_host {
 public:
  virtual ~session_host() = default;
  /// Start (or restart) the client's expiry timer: call session::expire after client_expiry.
  virtual void arm_expiry(const std::string& client_id) = 0;
  virtual void cancel_expiry(const std::string& client_id) = 0;
  /// Start the hold timer of the client's held connect: call session::flush after `timeout`.
  virtual void hold(const std::string& client_id, std::chrono::milliseconds timeout) = 0;
  /// Write `plan` as the reply of the client's held connect (ignore it when that connect's
  /// connection is gone), and stop its hold timer.
  virtual void answer_held(const std::string& client_id, reply_plan plan) = 0;
  /// Events were queued for a client with a held connect: call session::flush soon (after the
  /// current handler, so that events published together go out together).
  virtual void flush_soon(const std::string& client_id) = 0;
  /// The client is gone: stop its timers.
  virtual void forgotten(const std::string& client_id) = 0;
};

/// The outcome of one POST.
struct post_outcome {
  /// The reply to write now; nullopt when the POST's connect is held (held_client is set) or
  /// the POST is never answered (never_answer).
  std::optional<reply_plan> reply;
  std::string held_client;
  /// An unanswered /meta/disconnect (fault_kind::unanswered_disconnect): keep the connection
  /// open without a reply until the peer closes it.
  bool never_answer = false;
};

/// The CometD session state of one org endpoint. Single-threaded.
class cometd_session {
 public:
  /// Keeps references to `clk`, `bus` and `host`, which must outlive it.
  cometd_session(cometd_settings settings, const clock& clk, event_bus& bus, token_check check,
                 session_host& host);
  ~cometd_session();
  cometd_session(const cometd_session&) = delete;
  cometd_session& operator=(const cometd_session&) = delete;

  /// Answers the messages of one POST (already past the method, version and size checks).
  /// `messages` holds the parsed body (an array or one object).
  post_outcome on_post(const transport::http_request& request, const rapidjson::Value& messages);

  /// The hold timer of the client's connect fired, or its events are ready: answer the held
  /// connect with what is queued. No-op without a held connect.
  void flush(const std::string& client_id);
  /// The connection of the client's held connect closed before the reply.
  void abandon_held(const std::string& client_id);
  /// The client's expiry timer fired: forget it unless a connect is held.
  void expire(const std::string& client_id);
  /// A late reply (fault hold) was written: the client's expiry counts from now.
  void late_reply_written(const std::string& client_id);
  /// A new event on the bus (the publish listener).
  void on_event(const stored_event& event);

  /// Forgets every client; a held connect is answered with 403::Unknown client.
  void forget_all_clients();
  /// New sfdc-stream cookie value; requests carrying the old value are re-pinned.
  void rotate_affinity_cookie();
  /// Sends /meta/disconnect to every client in its held (or next) connect reply, then forgets it.
  void disconnect_all_clients();
  /// The next `count` messages that `kind` concerns get it (replaces an earlier count). Throws
  /// std::invalid_argument when `kind` does not apply to messages.
  void inject(fault_kind kind, std::size_t count);
  /// The next `count` /meta/connect replies that carry events get `f` (replaces an earlier
  /// arming). Throws std::invalid_argument when the kind does not apply to event replies.
  void spoil_next_event_replies(fault f, std::size_t count);
  std::size_t pending_reply_faults() const noexcept;
  std::uint64_t spoiled_events() const noexcept;
  std::size_t client_count() const noexcept;
  /// Handshakes that made a client, since the start.
  std::uint64_t handshake_count() const noexcept;
  /// Clients streaming: with a connect held now or one received within `within`.
  std::size_t active_clients(std::chrono::milliseconds within) const;
  /// Clients logged in as `user_id` subscribed to `channel` (any filter).
  std::size_t count_subscribers(const std::string& channel, const std::string& user_id) const;
  /// The users with a client subscribed to `channel` (any filter), sorted, each once.
  std::vector<std::string> online_users(const std::string& channel) const;
  /// Events delivered in the current rolling 24 h (the daily-limit counter).
  std::uint64_t deliveries_today();
  /// Sets the daily event limit (0 = unlimited) and, with `reset`, forgets the deliveries
  /// counted so far (a new day): the next connect and subscribe are judged by the new figures.
  void set_daily_event_limit(std::uint64_t limit, bool reset);
  /// The current Set-Cookie value of the affinity cookie.
  std::string affinity_cookie() const;
  /// Forgets every client without answering anything (the server is stopping).
  void clear();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sfstream::emulator::cometd
