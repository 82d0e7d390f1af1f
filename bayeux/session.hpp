// The I/O-free Bayeux client session: explicit states, `on_` inputs, a queue of actions.
//
// The session never reads a clock, a socket or a file: every input carries `now`, and every
// output is an action the runtime drains with next_action() and carries out.
//
//   session s{config};
//   s.subscribe("/topic/AccountUpdates", -1, now);
//   s.start(now);
//   while (auto a = s.next_action()) std::visit(runtime_handler, *a);
//   ... on completion: s.on_reply(lane::control, 200, body, now); drain again ...
//
// Contract for the runtime:
// * start() asks for `authenticate{false}` first; answer with on_authenticated (a cached token
//   is fine) or on_authentication_failed.
// * Each `send` is one HTTP POST on its lane; its outcome comes back as exactly one
//   on_reply(lane, status, body) or on_transport_error(lane, error) (errc::timeout when the
//   deadline passed), unless the session asked to `abort` that lane first — then nothing.
// * `wait` replaces any earlier wait; call on_timer(now) when it ends.
// * After `deliver`, call commit(replay_key, replay_id) once the handler returned.
//
// Positions. Per replay key the session knows the last *received* replay id (the newest event
// handed to the runtime in a deliver) and the last *committed* one (reported by commit()).
// Every re-subscribe inside the process resumes from the received id, so events still queued
// for a slow handler are neither lost nor delivered twice; the committed id is what a durable
// store keeps and what a restarted process resumes from. After a subscribe from id X an event
// at or below X is a re-delivery and is dropped. A /meta/connect whose reply never arrived
// whole may have carried events the server will not send again on the same client: the
// session then re-handshakes and re-subscribes from the received ids, never reconnects plainly.
// * After `finished`, no further action comes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bayeux/action.hpp"
#include "bayeux/message.hpp"
#include "sfstream/error.hpp"

namespace sfstream::bayeux {

/// The session never reads a clock; inputs carry the runtime's steady-clock time.
using time_point = std::chrono::steady_clock::time_point;

/// The session's state, named as CometD clients name theirs so logs compare.
enum class session_state {
  unconnected,     ///< Not started yet.
  authenticating,  ///< Waiting for on_authenticated.
  handshaking,     ///< A /meta/handshake is in flight.
  connected,       ///< Handshake done; the /meta/connect loop runs.
  backing_off,     ///< Waiting before the next attempt after a failure.
  paused,          ///< Disconnected on purpose (back-pressure); resume() re-handshakes.
  disconnecting,   ///< stop(): the /meta/disconnect is in flight.
  closed,          ///< finished was emitted.
};

/// "unconnected", "authenticating", ...
std::string_view to_string(session_state state) noexcept;

/// Tuning of the session. The defaults follow Salesforce's timeouts and limits.
struct session_config {
  /// What to do when Salesforce refuses a replay id (default: fall back to -2).
  replay_policy policy = replay_policy::earliest;
  /// Per-channel overrides of `policy`, keyed by replay key (channel without filter).
  std::map<std::string, replay_policy> channel_policies;
  /// Deadline of control exchanges and of the first connect after a handshake.
  std::chrono::milliseconds control_timeout{30'000};
  /// Added to advice.timeout (110 s on Salesforce) to make the long-poll deadline.
  std::chrono::milliseconds network_slack{15'000};
  /// Deadline of /meta/disconnect: Salesforce may never answer it.
  std::chrono::milliseconds disconnect_timeout{2'000};
  /// Largest POST body; Salesforce answers 413 above 32,768 bytes.
  std::size_t max_request_bytes = 32'768;
  /// Exponential backoff for transport errors, 5xx and missed deadlines.
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  /// Long, capped backoff for org/server limit errors: never a tight loop against a limit.
  std::chrono::milliseconds limit_backoff_initial{60'000};
  std::chrono::milliseconds limit_backoff_max{30 * 60'000};
  /// Salesforce forgets a client 40 s after a reply without a new connect; past this the
  /// next attempt is a handshake.
  std::chrono::milliseconds client_expiry{40'000};
  /// Seed of the jitter PRNG (splitmix64): same seed, same delays.
  std::uint64_t jitter_seed = 0;
  /// -1: retry forever. Otherwise the session finishes with errc::retries_exhausted after
  /// this many consecutive failed attempts (reset by a successful connect).
  int max_retries = -1;
};

/// A position from a durable store, with the time of its event and the wall-clock time now, so
/// the session can tell whether it is still within the channel's retention.
struct stored_position {
  std::int64_t replay_id = 0;
  std::chrono::system_clock::time_point event_time;
  std::chrono::system_clock::time_point now;
};

/// Figures the runtime can report.
struct session_counters {
  std::uint64_t handshakes = 0;  ///< Successful handshakes.
  /// Re-handshakes by cause: "unknown_client", "advice", "expired", "disconnect",
  /// "authentication", "resume", "lost_reply".
  std::map<std::string, std::uint64_t> rehandshakes_by_cause;
  /// Connects re-sent after a failure, by cause: "transport", "http_status", "timeout",
  /// "protocol", "retry_advice", "limit".
  std::map<std::string, std::uint64_t> reconnects_by_cause;
  std::uint64_t events = 0;  ///< deliver actions emitted.
  std::uint64_t gaps = 0;    ///< gap actions emitted.
  std::uint64_t redeliveries_dropped = 0;  ///< Events at or below a resume position, dropped.
};

/// The Bayeux client session. Not thread-safe: one owner drives it (the runtime's strand).
/// No member throws on bad input from the network.
class session {
 public:
  explicit session(session_config config = {});

  /// Begins: asks for authentication, then handshakes.
  void start(time_point now);
  /// Adds a subscription. `replay_from` is -1 (new events), -2 (all retained) or a replay id
  /// >= 0. Sent at once when connected, otherwise at the next handshake. `policy` overrides
  /// the configured replay policy for this channel. A `stored` position wins over
  /// `replay_from`; when it is older than the channel's retention the policy is applied at
  /// once and a gap (cause expired) is emitted — under `fail` followed by
  /// subscription_failed (errc::replay_gap), and the channel is not subscribed.
  /// Subscribing to a channel already subscribed changes nothing. Errors:
  /// errc::invalid_channel, errc::invalid_replay_id, errc::cancelled once finished.
  error_info subscribe(std::string_view channel, std::int64_t replay_from, time_point now,
                       std::optional<replay_policy> policy = std::nullopt,
                       std::optional<stored_position> stored = std::nullopt);
  /// Removes a subscription; `unsubscribed` follows (at once when not connected).
  /// Error: errc::invalid_channel when the channel is not subscribed.
  error_info unsubscribe(std::string_view channel, time_point now);
  /// Records that the event `replay_id` of `replay_key` was handled (the durable position).
  void commit(std::string_view replay_key, std::int64_t replay_id);

  void on_authenticated(time_point now);
  void on_authentication_failed(error_info error, time_point now);
  /// A reply whose body is copied once into a buffer the delivered events share.
  void on_reply(lane on, unsigned http_status, std::string_view body, time_point now);
  /// A reply handed over whole: the delivered events refer to `body` instead of copying it.
  void on_reply(lane on, unsigned http_status, std::shared_ptr<const std::string> body,
                time_point now);
  void on_transport_error(lane on, error_info error, time_point now);
  void on_timer(time_point now);
  /// Back-pressure: sends /meta/disconnect, aborts the long poll, holds no connect.
  void pause(time_point now);
  /// Re-handshakes and re-subscribes every channel from its last received replay id.
  void resume(time_point now);
  /// Sends /meta/disconnect (short deadline) and finishes when it is answered or fails.
  void stop(time_point now);

  /// The next action to carry out, or nullopt when the session waits for an input.
  std::optional<action> next_action();

  session_state state() const noexcept { return state_; }
  /// The clientId of the current handshake; "" when there is none.
  const std::string& client_id() const noexcept { return client_id_; }
  /// The advice in force (reset by a successful handshake).
  const bayeux::advice& advice() const noexcept { return advice_; }
  /// The last committed replay id of `replay_key`.
  std::optional<std::int64_t> committed(std::string_view replay_key) const;
  /// The last received replay id of `replay_key` (handed out in a deliver).
  std::optional<std::int64_t> received(std::string_view replay_key) const;
  const session_counters& counters() const noexcept { return counters_; }
  /// Channels currently wanted (confirmed or not), in name order.
  std::vector<std::string> channels() const;
  /// True when the server confirmed `channel` since the last handshake.
  bool is_subscribed(std::string_view channel) const;

 private:
  enum class pending_kind { handshake, subscribe, unsubscribe, disconnect };
  struct pending_message {
    pending_kind kind = pending_kind::handshake;
    std::string channel;
    std::int64_t replay_from = -1;
    std::string id;
  };
  struct subscription_entry {
    std::string replay_key;
    std::int64_t start = -1;  ///< replay_from given to subscribe (or a policy fallback).
    std::optional<replay_policy> policy;
    bool confirmed = false;
    /// From when the server-side subscription is known to have been live with nothing lost:
    /// the send time of its subscribe, then of each connect answered while it was confirmed
    /// (the server wrote the reply after that). Unset before the first confirmation.
    std::optional<time_point> live_at;
    /// Set when the channel is re-subscribed at -1 with nothing received: the gap it opens
    /// starts here and is reported once the new subscription is confirmed.
    std::optional<time_point> gap_since;
  };
  enum class step { none, authenticate, handshake, connect, finish };
  enum class failure_kind { transport, http_status, timeout, protocol, limit, retry_advice };
  static const char* to_cause(failure_kind kind) noexcept;

  // Emission.
  void emit(action a);
  void diag(diagnostic_level level, std::string text);
  void finish(error_info error);
  std::string next_id();

  // Lanes and timers.
  void send_handshake(time_point now);
  void send_disconnect(const std::string& client, time_point now);
  void send_connect(time_point now);
  void queue_control(pending_message m, time_point now);
  void flush_control(time_point now);
  void drop_connection();
  void schedule(step what, std::chrono::milliseconds delay, time_point now);
  void schedule_control_retry(std::chrono::milliseconds delay, time_point now);
  void arm_timer(time_point now);

  // Reactions.
  void rehandshake(const char* cause, time_point now);
  void reauthenticate(std::string text, time_point now);
  void fail_attempt(failure_kind kind, step retry, std::string text, time_point now,
                    std::chrono::milliseconds at_least = std::chrono::milliseconds{0});
  bool count_failure();
  std::chrono::milliseconds jittered(std::chrono::milliseconds initial,
                                     std::chrono::milliseconds cap, unsigned& attempts);
  std::uint64_t random();
  void read_advice(const message& m);
  bool expired(time_point now) const;
  replay_policy policy_for(const std::string& channel) const;
  std::int64_t resume_from(const std::string& channel) const;

  // Replies.
  void control_lane_failed(std::string text, failure_kind kind, time_point now);
  void long_poll_failed(std::string text, failure_kind kind, time_point now);
  void handle_control_reply(std::vector<message>& messages, time_point now);
  void handle_long_poll_reply(std::vector<message>& messages, time_point now);
  void handle_handshake_reply(const message& m, time_point now);
  void handle_subscribe_reply(const pending_message& p, const message& m, time_point now);
  void handle_unsubscribe_reply(const pending_message& p, const message& m, time_point now);
  void deliver_events(std::vector<message>& messages);
  void lost_reply(std::string text, time_point now);
  /// The position a (re-)subscribe of `channel` sends; notes a gap when there is none.
  std::int64_t resubscribe_position(const std::string& channel, time_point now);
  void forget_position(const std::string& replay_key);
  void subscription_dropped(const std::string& channel, error_info why);

  session_config config_;
  session_state state_ = session_state::unconnected;
  std::vector<action> actions_;   ///< Emitted, from actions_[next_action_] on not yet taken.
  std::size_t next_action_ = 0;
  std::string client_id_;
  bayeux::advice advice_;
  std::map<std::string, subscription_entry, std::less<>> subscriptions_;
  std::map<std::string, std::int64_t, std::less<>> committed_;
  std::map<std::string, std::int64_t, std::less<>> received_;
  /// Per replay key: the position the last subscribe resumed from; events at or below it are
  /// re-deliveries.
  std::map<std::string, std::int64_t, std::less<>> floor_;
  std::deque<pending_message> control_queue_;
  std::vector<pending_message> control_outstanding_;
  bool control_busy_ = false;
  bool long_poll_busy_ = false;
  std::string connect_id_;
  bool first_connect_ = false;
  std::uint64_t next_id_ = 1;
  std::optional<time_point> last_reply_;
  time_point connect_sent_at_{};  ///< When the outstanding (or last) connect was sent.
  time_point control_sent_at_{};  ///< When the outstanding (or last) control batch was sent.
  /// The body of the reply being handled, shared with the events it carries; null otherwise.
  std::shared_ptr<const std::string> reply_body_;
  std::vector<message> reply_messages_;  ///< The last reply's messages: their capacity is reused.
  step step_ = step::none;
  std::optional<time_point> step_due_;
  std::optional<time_point> control_due_;
  std::optional<time_point> timer_target_;
  unsigned backoff_attempts_ = 0;
  unsigned limit_attempts_ = 0;
  int failures_ = 0;
  bool auth_retried_ = false;
  /// A connect was held or delivered events since the last handshake: re-handshakes that
  /// repeat without this back off.
  bool progress_since_handshake_ = false;
  std::uint64_t epoch_ = 0;
  std::uint64_t rng_state_ = 0;
  session_counters counters_;
};

}  // namespace sfstream::bayeux
