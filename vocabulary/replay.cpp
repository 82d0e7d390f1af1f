#include "sfstream/replay.hpp"

#include <charconv>
#include <limits>

#include "vocabulary/event_time.hpp"

namespace sfstream {

std::string_view to_string(replay_policy policy) noexcept {
  switch (policy) {
    case replay_policy::earliest:
      return "earliest";
    case replay_policy::tip:
      return "tip";
    case replay_policy::fail:
      return "fail";
  }
  return "earliest";
}

std::optional<replay_policy> parse_replay_policy(std::string_view text) noexcept {
  if (text == "earliest") return replay_policy::earliest;
  if (text == "tip") return replay_policy::tip;
  if (text == "fail") return replay_policy::fail;
  return std::nullopt;
}

std::optional<std::int64_t> parse_replay_id(std::string_view text) noexcept {
  if (text == "-1") return replay_new;
  if (text == "-2") return replay_all;
  // Digits only: from_chars alone would accept a leading '-', and we must refuse signs,
  // spaces, exponents and fractions.
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string_view to_string(gap_cause cause) noexcept {
  switch (cause) {
    case gap_cause::expired:
      return "expired";
    case gap_cause::refused:
      return "refused";
    case gap_cause::resubscribed_at_tip:
      return "resubscribed_at_tip";
  }
  return "refused";
}

// Starts with the channel, not with "replay gap": callers prefix their own label.
std::string gap_record::to_string() const {
  std::string out = channel.empty() ? std::string("(unknown channel)") : channel;
  if (cause == gap_cause::resubscribed_at_tip) {
    out +=
        ": subscribed again at -1 with no replay id received to resume from; events "
        "published between ";
    out += since ? detail::format_event_time(*since) : std::string("an unknown time");
    out += " and ";
    out += until ? detail::format_event_time(*until) : std::string("now");
    out += " may be missing";
    return out;
  }
  out += ": last replayId ";
  out += last_replay_id ? std::to_string(*last_replay_id) : std::string("unknown");
  out += " (event time ";
  out += last_event_time ? detail::format_event_time(*last_event_time) : std::string("unknown");
  out += cause == gap_cause::expired ? ") is older than the channel's retention"
                                     : ") was refused by the server";
  out += "; policy ";
  out += sfstream::to_string(policy_taken);
  if (policy_taken == replay_policy::fail) {
    out += " stopped the subscription";
    return out;
  }
  out += " resumed from ";
  out += std::to_string(resumed_from);
  if (resumed_from == replay_all) {
    out += " (all retained events)";
  } else if (resumed_from == replay_new) {
    out += " (new events only)";
  }
  return out;
}

}  // namespace sfstream
