// The bounded queue between the network strand and the handlers: the strand pushes what the
// session delivers, the handler side pops it in batches and reports each batch done once its
// positions are committed. The queue decides when the stream must pause (a bound reached) and
// when it may resume (back at half of both bounds); it never refuses an item, so one event
// larger than the whole budget still passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/replay.hpp"

namespace sfstream::detail {

/// One entry of the queue between the network strand and the handlers.
struct queue_item {
  enum class kind { event, gap, rejected, subscribed, finished };
  kind what = kind::event;
  std::string channel;  ///< Replay key for events; the subscribed channel otherwise.
  sfstream::event ev;
  /// What a gap or a rejection says; null for other items. Out of line, so that an event's
  /// item (the one moved in and out of the queue for every event) stays small.
  std::shared_ptr<const gap_record> gap;
  std::shared_ptr<const error_info> error;
  std::int64_t replay_from = 0;

  /// What the item costs against the byte bound: its event's raw JSON.
  std::size_t bytes() const noexcept { return ev.json().size(); }
};

/// The bounds of a delivery_queue. Items are counted from push until their batch is done
/// (popped and committed), so a batch being handled still holds its budget.
struct delivery_limits {
  std::size_t max_events = 10'000;
  std::size_t max_bytes = 32u << 20;
};

/// Figures of a delivery_queue.
struct delivery_figures {
  std::size_t events = 0;  ///< Held: queued plus popped but not yet done.
  std::size_t bytes = 0;
  std::size_t queued = 0;  ///< Waiting to be popped.
  std::size_t events_high_water = 0;
  std::size_t bytes_high_water = 0;
  std::uint64_t pauses = 0;     ///< Times a push reached a bound.
  std::uint64_t discarded = 0;  ///< Items dropped by halt().
};

/// A batch taken by pop_batch: hand it back to done() once handled and committed.
struct delivery_batch {
  std::vector<queue_item> items;
  std::size_t bytes = 0;
  /// True when the batch is the `finished` marker alone: everything before it was done.
  bool finished = false;
};

/// Thread-safe; one lock per push and per batch.
class delivery_queue {
 public:
  explicit delivery_queue(delivery_limits limits);

  /// Appends `item`. Never refuses: a full queue only asks for a pause. Returns true when
  /// this push reached a bound (events or bytes) while the stream was not paused: pause it now
  /// (an edge: once until done() says resume). After halt(), every item but `finished` is
  /// dropped.
  bool push(queue_item item);
  /// Appends every item of `items` in order under one lock (and empties it): as push, for the
  /// events of one reply.
  bool push_all(std::vector<queue_item>& items);

  /// Takes up to `max_items` from the front in order. A `finished` marker is taken only when
  /// nothing else is held (every earlier batch is done), alone: the run may then complete.
  delivery_batch pop_batch(std::size_t max_items);
  /// The same into `batch` (emptied first), whose vector's capacity is reused.
  void pop_batch(std::size_t max_items, delivery_batch& batch);

  /// Reports `batch` handled and committed: frees its budget. Returns true when the stream was
  /// paused and both figures are now at or below half their bounds: resume it (edge, once).
  bool done(const delivery_batch& batch);

  /// Ends delivery: drops what is queued and everything pushed later, except `finished`.
  /// Used when a handler or the store failed: nothing after the failure is handled.
  void halt();
  bool halted() const;

  /// True when something is queued (the handler side has work).
  bool has_work() const;
  delivery_figures figures() const;
  const delivery_limits& limits() const noexcept { return limits_; }

 private:
  bool over_bounds() const noexcept;
  bool push_locked(queue_item& item);

  /// First in, first out over one vector: taken items are skipped by an index, and the vector
  /// is emptied (keeping its capacity) once all are taken, or compacted when the taken half
  /// grows large. A deque would allocate a node for every two items.
  class fifo {
   public:
    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }
    queue_item& front() noexcept { return items_[head_]; }
    void push_back(queue_item&& item) {
      if (head_ >= 1024 && head_ * 2 >= items_.size()) {
        items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
      items_.push_back(std::move(item));
    }
    void pop_front() {
      if (++head_ == items_.size()) {
        items_.clear();
        head_ = 0;
      }
    }
    /// Keeps only the items `keep` says yes to, in order.
    template <class Keep>
    void retain(Keep keep) {
      std::vector<queue_item> kept;
      for (std::size_t i = head_; i < items_.size(); ++i) {
        if (keep(items_[i])) kept.push_back(std::move(items_[i]));
      }
      items_ = std::move(kept);
      head_ = 0;
    }

   private:
    std::vector<queue_item> items_;
    std::size_t head_ = 0;
  };

  const delivery_limits limits_;
  mutable std::mutex mutex_;
  fifo queue_;
  delivery_figures figures_;
  bool paused_ = false;
  bool halted_ = false;
};

}  // namespace sfstream::detail
