// The polling source's position in one object: the newest (SystemModstamp, Id) handled, and
// the changes already emitted inside the overlap window that every poll reads again. Pure: no
// clock, no I/O; times are milliseconds since the Unix epoch.
//
// Each poll asks for `SystemModstamp >= lower_bound()` ordered by SystemModstamp, Id. The
// window reaches back `overlap` behind the newest stamp (floored to the whole second, the
// precision of a SOQL datetime literal) because a record committed late (a long transaction)
// carries the stamp of its start: earlier than records already seen. A record is new unless
// its (Id, SystemModstamp) is in the window set, so records sharing a stamp are neither
// skipped nor repeated, late ones are caught, and the set never holds more than one window.
#pragma once

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace sfstream::poll_detail {

/// A record version: its SystemModstamp (ms since the epoch) and Id.
struct stamp {
  std::int64_t ms = 0;
  std::string id;
  friend auto operator<=>(const stamp&, const stamp&) = default;
  friend bool operator==(const stamp&, const stamp&) = default;
};

/// Parses a Salesforce datetime: "YYYY-MM-DDTHH:MM:SS[.mmm]" then "Z", "+hhmm", "-hhmm",
/// "+hh:mm" or "-hh:mm" (REST writes "2024-04-09T20:26:27.000+0000"). nullopt otherwise.
std::optional<std::int64_t> parse_datetime_ms(std::string_view text) noexcept;

/// "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_ms(std::int64_t ms);

/// A SOQL datetime literal for the whole second at or before `ms`: "YYYY-MM-DDTHH:MM:SSZ".
std::string soql_datetime(std::int64_t ms);

/// True for a 15- or 18-character alphanumeric Salesforce id.
bool is_record_id(std::string_view id) noexcept;

class poll_cursor {
 public:
  /// From the beginning: every record is new.
  explicit poll_cursor(std::chrono::milliseconds overlap);
  /// Only records after `floor` (a start time, or the newest record when polling began) are
  /// new; `floor.id` empty means every record stamped at floor.ms or later.
  static poll_cursor after(stamp floor, std::chrono::milliseconds overlap);
  /// Reads encode()'s text back; nullopt with `why` when it is not a polling cursor. A
  /// different overlap than the one it was written with is fine: the window never reaches
  /// back further than what its set covers.
  static std::optional<poll_cursor> decode(std::string_view text,
                                           std::chrono::milliseconds overlap, std::string& why);
  /// Text for the replay store (ids are alphanumeric, so the separators are unambiguous):
  /// "poll1 newest=<ms>/<id> floor=<ms>/<id> from=<ms> seen=<ms>/<id>,<ms>/<id>…".
  std::string encode() const;

  /// The next query's lower bound (SystemModstamp >= it), a whole second; nullopt: no bound.
  std::optional<std::int64_t> lower_bound() const;
  /// True when `s` was not emitted yet and is after the floor.
  bool is_new(const stamp& s) const;
  /// True when `s` is older than the newest stamp emitted: a record committed late.
  bool is_late(const stamp& s) const;
  /// Records that `s` was emitted and handled; advances the newest stamp and drops from the
  /// set what fell behind the window.
  void mark_emitted(const stamp& s);

  const std::optional<stamp>& newest() const noexcept { return newest_; }
  std::size_t window_size() const noexcept { return window_.size(); }

 private:
  void prune();

  std::chrono::milliseconds overlap_;
  std::optional<stamp> newest_;
  std::optional<stamp> floor_;
  // The set holds every emitted record stamped at or after covered_from_ (all of them when
  // unset): a lower bound earlier than it would re-read records it no longer knows.
  std::optional<std::int64_t> covered_from_;
  std::set<stamp> window_;
};

}  // namespace sfstream::poll_detail
