// The delivery queue on its own, without a network: bounds in events and bytes, the pause and
// resume edges, batches, the finished marker and halting.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/client/delivery_queue.hpp"

namespace {

using sfstream::detail::delivery_batch;
using sfstream::detail::delivery_limits;
using sfstream::detail::delivery_queue;
using sfstream::detail::queue_item;

/// An event item of `bytes` bytes of JSON with replay id `id`.
queue_item event_of(std::int64_t id, std::size_t bytes = 10) {
  queue_item item;
  item.what = queue_item::kind::event;
  item.channel = "/topic/T";
  item.ev = sfstream::event{"/topic/T", id, std::string(bytes, 'x')};
  return item;
}

queue_item marker(queue_item::kind what) {
  queue_item item;
  item.what = what;
  item.channel = "/topic/T";
  return item;
}

std::vector<std::int64_t> ids_of(const delivery_batch& batch) {
  std::vector<std::int64_t> out;
  for (const auto& item : batch.items) out.push_back(item.ev.replay_id().value_or(-100));
  return out;
}

}  // namespace

TEST_CASE("the queue asks for a pause once when the event bound is reached and resumes at half") {
  delivery_queue q{delivery_limits{4, 1'000'000}};
  std::vector<bool> pauses;
  for (int i = 0; i < 6; ++i) pauses.push_back(q.push(event_of(i)));
  CHECK(pauses == std::vector<bool>{false, false, false, true, false, false});
  CHECK(q.figures().events == 6);
  CHECK(q.figures().pauses == 1);

  auto first = q.pop_batch(3);
  CHECK(ids_of(first) == std::vector<std::int64_t>{0, 1, 2});
  // Popped items still count until their batch is done.
  CHECK(q.figures().events == 6);
  CHECK(q.figures().queued == 3);
  CHECK_FALSE(q.done(first));  // 3 held: above half of 4
  auto second = q.pop_batch(1);
  CHECK(ids_of(second) == std::vector<std::int64_t>{3});
  CHECK(q.done(second));                  // 2 held: at half, resume
  CHECK_FALSE(q.done(delivery_batch{}));  // the edge is reported once
  CHECK(q.figures().events == 2);
}

TEST_CASE("the queue asks for a pause when the byte bound is reached before the event bound") {
  delivery_queue q{delivery_limits{1000, 100}};
  CHECK_FALSE(q.push(event_of(1, 40)));
  CHECK_FALSE(q.push(event_of(2, 40)));
  CHECK(q.push(event_of(3, 40)));  // 120 bytes >= 100
  CHECK(q.figures().bytes == 120);
  CHECK(q.figures().bytes_high_water == 120);
  auto batch = q.pop_batch(2);
  CHECK(batch.bytes == 80);
  CHECK(q.done(batch));  // 40 bytes left: at most half of 100
  CHECK(q.figures().bytes == 40);
  CHECK(q.figures().events == 1);
}

TEST_CASE(
    "one event larger than the whole byte budget still passes and the stream resumes after it") {
  delivery_queue q{delivery_limits{1000, 100}};
  CHECK(q.push(event_of(7, 5'000)));
  auto batch = q.pop_batch(256);
  REQUIRE(batch.items.size() == 1);
  CHECK(batch.items[0].ev.json().size() == 5'000);
  CHECK(q.done(batch));
  CHECK(q.figures().bytes == 0);
  CHECK(q.figures().events == 0);
  CHECK_FALSE(q.push(event_of(8, 10)));  // no longer paused: below the bounds again
}

TEST_CASE("a batch keeps the order of pushes and stops before the finished marker") {
  delivery_queue q{delivery_limits{100, 1'000'000}};
  q.push(event_of(1));
  q.push(marker(queue_item::kind::subscribed));
  q.push(event_of(2));
  q.push(marker(queue_item::kind::finished));
  q.push(event_of(3));
  auto batch = q.pop_batch(256);
  REQUIRE(batch.items.size() == 3);
  CHECK(batch.items[0].what == queue_item::kind::event);
  CHECK(batch.items[1].what == queue_item::kind::subscribed);
  CHECK(batch.items[2].what == queue_item::kind::event);
  CHECK_FALSE(batch.finished);
  // The marker is not taken while the earlier batch is still being handled.
  CHECK(q.pop_batch(256).items.empty());
  q.done(batch);
  auto end = q.pop_batch(256);
  REQUIRE(end.items.size() == 1);
  CHECK(end.finished);
  q.done(end);
  CHECK(ids_of(q.pop_batch(256)) == std::vector<std::int64_t>{3});
}

TEST_CASE(
    "a halted queue drops what is queued and what comes later but keeps the finished marker") {
  delivery_queue q{delivery_limits{3, 1'000'000}};
  q.push(event_of(1));
  q.push(event_of(2));
  auto batch = q.pop_batch(1);
  q.halt();
  CHECK(q.halted());
  CHECK_FALSE(q.push(event_of(3)));
  CHECK_FALSE(q.push(event_of(4)));  // would reach the bound, but a halted queue never pauses
  q.push(marker(queue_item::kind::finished));
  CHECK(q.figures().discarded == 3);
  CHECK(q.figures().events == 2);  // the popped batch and the marker
  CHECK(q.pop_batch(256).items.empty());
  q.done(batch);
  auto end = q.pop_batch(256);
  CHECK(end.finished);
  q.done(end);
  CHECK(q.figures().events == 0);
  CHECK_FALSE(q.has_work());
}

TEST_CASE("a batch is at most the asked number of items and the rest stays queued in order") {
  delivery_queue q{delivery_limits{1000, 1'000'000}};
  for (int i = 0; i < 10; ++i) q.push(event_of(i));
  CHECK(ids_of(q.pop_batch(4)) == std::vector<std::int64_t>{0, 1, 2, 3});
  CHECK(ids_of(q.pop_batch(4)) == std::vector<std::int64_t>{4, 5, 6, 7});
  CHECK(ids_of(q.pop_batch(4)) == std::vector<std::int64_t>{8, 9});
  CHECK(q.figures().events_high_water == 10);
}
