// The outputs of the Bayeux session: what the runtime must do next. The session never does
// I/O; the runtime drains next_action() and carries out each action in order.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "bayeux/message.hpp"
#include "sfstream/error.hpp"
#include "sfstream/replay.hpp"

namespace sfstream::bayeux {

/// The two HTTP lanes, as CometD clients have: `long_poll` carries /meta/connect only;
/// `control` carries handshake, subscribe, unsubscribe and disconnect. Each lane has at most
/// one exchange outstanding.
enum class lane { control, long_poll };

/// What to do when a replay id cannot be honoured: the public sfstream::replay_policy
/// (earliest = fall back to -2, the default; tip = fall back to -1; fail).
using replay_policy = sfstream::replay_policy;

/// POST `body` (a JSON array) on `lane`; report the outcome with on_reply or
/// on_transport_error (errc::timeout when `deadline` passes without a complete response).
struct send {
  bayeux::lane lane = bayeux::lane::control;
  std::string body;
  std::chrono::milliseconds deadline{0};
};

/// Cancel the exchange in flight on `lane`. The runtime must then report nothing more for
/// that exchange (neither on_reply nor on_transport_error).
struct abort {
  bayeux::lane lane = bayeux::lane::control;
};

/// Call on_timer once `duration` has passed. A new wait replaces any earlier one.
struct wait {
  std::chrono::milliseconds duration{0};
};

/// Obtain credentials (an access token) for the Authorization header, then call
/// on_authenticated or on_authentication_failed. `force_refresh`: the server refused the
/// current token, so a cached one must not be reused.
struct authenticate {
  bool force_refresh = false;
};

/// One event received on a subscribed channel. Its text is not copied: it lies in the reply
/// body, which the events of one reply share.
struct event {
  std::string channel;                      ///< As received (filter included for PushTopics).
  std::string replay_key;                   ///< The channel without its filter.
  std::optional<std::int64_t> replay_id;    ///< data.event.replayId; nullopt when absent.
  std::shared_ptr<const std::string> body;  ///< The reply the event arrived in.
  text_span message;                        ///< The message object within *body.
  text_span data;                           ///< Its `data` value within *body.

  /// The raw message object text; empty without a body.
  std::string_view json() const noexcept { return body ? message.of(*body) : std::string_view{}; }
  /// The `data` value's raw text; empty without a body.
  std::string_view data_json() const noexcept { return body ? data.of(*body) : std::string_view{}; }
};

/// Hand an event to the user's handler; call commit(replay_key, replay_id) once it returned.
struct deliver {
  bayeux::event event;
};

/// The server confirmed a subscription; `replay_from` is the replay id actually sent.
struct subscribed {
  std::string channel;
  std::int64_t replay_from = -1;
};

/// The server refused a subscription (or its replay policy is `fail`); it is dropped and the
/// other channels keep streaming.
struct subscription_failed {
  std::string channel;
  error_info error;
};

/// The channel is no longer subscribed.
struct unsubscribed {
  std::string channel;
};

/// Events of `channel` may have been missed, and the session says so instead of hiding it:
/// * expired: the stored position is older than the channel's retention;
/// * refused: the server refused the replay id;
/// * resubscribed_at_tip: the channel had to be subscribed again with no received replay id
///   to resume from, so events published between `since` and `until` may be missing.
/// For expired and refused the policy was applied: the subscription resumes from
/// `resumed_from` (-2 or -1), or, under `fail`, a subscription_failed follows.
struct gap {
  std::string channel;
  gap_cause cause = gap_cause::refused;
  std::optional<std::int64_t> last_replay_id;  ///< The position that could not be honoured.
  replay_policy taken = replay_policy::earliest;
  std::int64_t resumed_from = -2;
  std::optional<std::chrono::steady_clock::time_point> since;  ///< resubscribed_at_tip only.
  std::optional<std::chrono::steady_clock::time_point> until;  ///< resubscribed_at_tip only.
};

/// How loud a diagnostic is.
enum class diagnostic_level { info, warning, error };

/// Something the runtime should log. Never contains a secret.
struct diagnostic {
  diagnostic_level level = diagnostic_level::info;
  std::string text;
};

/// The session is over; `error.code` is empty after a clean stop. No action follows.
struct finished {
  error_info error;
};

/// Everything the session can ask for.
using action = std::variant<send, abort, wait, authenticate, deliver, subscribed,
                            subscription_failed, unsubscribed, gap, diagnostic, finished>;

}  // namespace sfstream::bayeux
