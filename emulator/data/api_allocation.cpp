#include "emulator/data/api_allocation.hpp"

#include <algorithm>

namespace sfstream::emulator::data {

api_error request_limit_exceeded() {
  return {"REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", {}};
}

void api_allocation::expire(time_point now) {
  while (!made_.empty() && made_.front() + std::chrono::hours(24) <= now) made_.pop_front();
}

std::optional<api_error> api_allocation::charge(time_point now) {
  if (max_ == 0) return std::nullopt;
  expire(now);
  if (made_.size() >= max_) return request_limit_exceeded();
  made_.push_back(now);
  return std::nullopt;
}

std::uint64_t api_allocation::remaining(time_point now) const {
  if (max_ == 0) return 0;
  const auto live = made_.end() - std::upper_bound(made_.begin(), made_.end(), now - std::chrono::hours(24));
  return max_ - std::min<std::uint64_t>(max_, static_cast<std::uint64_t>(live));
}

void api_allocation::reset(std::uint64_t max, std::uint64_t remaining, time_point now) {
  max_ = max;
  made_.clear();
  const std::uint64_t used = max - std::min(max, remaining);
  made_.assign(used, now);
}

}  // namespace sfstream::emulator::data
