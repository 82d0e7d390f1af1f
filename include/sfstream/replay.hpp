// Replay vocabulary: where a subscription starts, what to do when a stored position cannot
// be honoured, and the gap record sfstream emits whenever that happens.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sfstream {

/// Replay from "only new events" (Salesforce's -1).
inline constexpr std::int64_t replay_new = -1;
/// Replay "all retained events" (Salesforce's -2).
inline constexpr std::int64_t replay_all = -2;

/// What to do when a stored replay id cannot be honoured (older than its channel's retention,
/// or refused by Salesforce). Every fallback emits a gap_record; nothing is hidden.
enum class replay_policy {
  earliest,  ///< Fall back to -2: replay everything still retained (default; fewest losses).
  tip,       ///< Fall back to -1: only new events.
  fail,      ///< Stop the subscription with errc::replay_gap.
};

/// "earliest", "tip" or "fail".
std::string_view to_string(replay_policy policy) noexcept;
/// Parses "earliest", "tip" or "fail".
std::optional<replay_policy> parse_replay_policy(std::string_view text) noexcept;
/// Parses "-1", "-2" or a non-negative 64-bit integer.
std::optional<std::int64_t> parse_replay_id(std::string_view text) noexcept;

/// Why a gap happened.
enum class gap_cause {
  expired,  ///< The stored id's event is older than the channel's retention window.
  refused,  ///< Salesforce answered "The replayId {N} you provided was invalid".
  /// The channel had to be subscribed again with no received replay id to resume from (it
  /// started at -1 and nothing had arrived yet): events published between `since` and `until`
  /// may have been missed.
  resubscribed_at_tip,
};

/// "expired", "refused" or "resubscribed_at_tip".
std::string_view to_string(gap_cause cause) noexcept;

/// A visible record of events that may have been missed.
struct gap_record {
  std::string channel;                     ///< The replay key (channel without filter).
  std::optional<std::int64_t> last_replay_id;  ///< The position that could not be honoured.
  std::optional<std::chrono::system_clock::time_point> last_event_time;  ///< Its event's time.
  replay_policy policy_taken = replay_policy::earliest;
  gap_cause cause = gap_cause::refused;
  std::int64_t resumed_from = replay_all;  ///< -2 or -1; unused when policy_taken is fail.
  /// For resubscribed_at_tip: when the previous subscription was last known to be live, and
  /// when the new one was sent. Events in between may be missing.
  std::optional<std::chrono::system_clock::time_point> since;
  std::optional<std::chrono::system_clock::time_point> until;

  /// One line for logs and the CLI's stderr.
  std::string to_string() const;
};

}  // namespace sfstream
