// The bounded delivery queue (see delivery_queue.hpp).
#include "src/client/delivery_queue.hpp"

#include <algorithm>

namespace sfstream::detail {

delivery_queue::delivery_queue(delivery_limits limits) : limits_(limits) {}

bool delivery_queue::over_bounds() const noexcept {
  return figures_.events >= std::max<std::size_t>(limits_.max_events, 1) ||
         figures_.bytes >= std::max<std::size_t>(limits_.max_bytes, 1);
}

bool delivery_queue::push(queue_item item) {
  std::lock_guard lock{mutex_};
  return push_locked(item);
}

bool delivery_queue::push_all(std::vector<queue_item>& items) {
  bool full = false;
  {
    std::lock_guard lock{mutex_};
    for (auto& item : items) full = push_locked(item) || full;
  }
  items.clear();
  return full;
}

bool delivery_queue::push_locked(queue_item& item) {
  if (halted_ && item.what != queue_item::kind::finished) {
    ++figures_.discarded;
    return false;
  }
  figures_.events += 1;
  figures_.bytes += item.bytes();
  queue_.push_back(std::move(item));
  figures_.queued = queue_.size();
  figures_.events_high_water = std::max(figures_.events_high_water, figures_.events);
  figures_.bytes_high_water = std::max(figures_.bytes_high_water, figures_.bytes);
  if (paused_ || halted_ || !over_bounds()) return false;
  paused_ = true;
  ++figures_.pauses;
  return true;
}

delivery_batch delivery_queue::pop_batch(std::size_t max_items) {
  delivery_batch batch;
  pop_batch(max_items, batch);
  return batch;
}

void delivery_queue::pop_batch(std::size_t max_items, delivery_batch& batch) {
  batch.items.clear();
  batch.bytes = 0;
  batch.finished = false;
  std::lock_guard lock{mutex_};
  const bool nothing_in_flight = figures_.events == queue_.size();
  while (!queue_.empty() && batch.items.size() < std::max<std::size_t>(max_items, 1)) {
    if (queue_.front().what == queue_item::kind::finished) {
      // The run completes only once everything before the marker was handled and committed.
      if (batch.items.empty() && nothing_in_flight) {
        batch.items.push_back(std::move(queue_.front()));
        queue_.pop_front();
        batch.finished = true;
      }
      break;
    }
    batch.bytes += queue_.front().bytes();
    batch.items.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  figures_.queued = queue_.size();
}

bool delivery_queue::done(const delivery_batch& batch) {
  std::lock_guard lock{mutex_};
  figures_.events -= std::min(figures_.events, batch.items.size());
  figures_.bytes -= std::min(figures_.bytes, batch.bytes);
  if (!paused_) return false;
  if (figures_.events > limits_.max_events / 2 || figures_.bytes > limits_.max_bytes / 2)
    return false;
  paused_ = false;
  return true;
}

void delivery_queue::halt() {
  std::lock_guard lock{mutex_};
  halted_ = true;
  queue_.retain([this](const queue_item& item) {
    if (item.what == queue_item::kind::finished) return true;
    ++figures_.discarded;
    figures_.events -= std::min<std::size_t>(figures_.events, 1);
    figures_.bytes -= std::min(figures_.bytes, item.bytes());
    return false;
  });
  figures_.queued = queue_.size();
}

bool delivery_queue::halted() const {
  std::lock_guard lock{mutex_};
  return halted_;
}

bool delivery_queue::has_work() const {
  std::lock_guard lock{mutex_};
  return !queue_.empty();
}

delivery_figures delivery_queue::figures() const {
  std::lock_guard lock{mutex_};
  return figures_;
}

}  // namespace sfstream::detail
