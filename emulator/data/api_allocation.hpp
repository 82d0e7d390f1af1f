// The org's daily API request allocation (DailyApiRequests in /limits): every REST call takes
// one request from a rolling 24 hours of emulator time; when none is left REST answers
// Salesforce's REQUEST_LIMIT_EXCEEDED. Pure: the caller passes the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

#include "emulator/data/rest_api.hpp"

namespace sfstream::emulator::data {

class api_allocation {
 public:
  using time_point = std::chrono::system_clock::time_point;

  /// `max` requests per rolling 24 h; 0 = unlimited (Remaining then stays at 0 in /limits).
  explicit api_allocation(std::uint64_t max) : max_(max) {}

  /// Takes one request at `now`; the error to answer (HTTP 403) when none is left. A refused
  /// request takes nothing.
  std::optional<api_error> charge(time_point now);
  /// Requests left at `now`.
  std::uint64_t remaining(time_point now) const;
  std::uint64_t max() const noexcept { return max_; }
  /// Replaces the allocation and marks `max - remaining` requests as made at `now` (tests).
  void reset(std::uint64_t max, std::uint64_t remaining, time_point now);

 private:
  void expire(time_point now);

  std::uint64_t max_;
  std::deque<time_point> made_;  // Times of the requests inside the last 24 h, oldest first.
};

/// Salesforce's refusal once the allocation is spent.
api_error request_limit_exceeded();

}  // namespace sfstream::emulator::data
