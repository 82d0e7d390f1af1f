#include <doctest/doctest.h>

#include <chrono>

#include "sfstream/replay_store.hpp"

using namespace std::chrono_literals;

TEST_CASE("the memory store starts empty and merges saved positions per replay key") {
  auto store = sfstream::make_memory_replay_store();
  CHECK(store->load_all().empty());
  CHECK_FALSE(store->load("/topic/A").has_value());

  const auto t1 = std::chrono::system_clock::time_point{1459269608208ms};
  CHECK_FALSE(store->save({{"/topic/A", {13, t1}}}));
  CHECK_FALSE(store->save({{"/event/B__e", {9007199254740993LL, t1 + 1s}}}));
  CHECK_FALSE(store->save({{"/topic/A", {14, t1 + 2s}}}));

  const auto all = store->load_all();
  REQUIRE(all.size() == 2);
  CHECK(all.at("/topic/A").replay_id == 14);
  CHECK(all.at("/topic/A").event_time == t1 + 2s);
  CHECK(all.at("/event/B__e").replay_id == 9007199254740993LL);
  const auto one = store->load("/event/B__e");
  REQUIRE(one.has_value());
  CHECK(one->event_time == t1 + 1s);
}

TEST_CASE("two memory stores are independent") {
  auto first = sfstream::make_memory_replay_store();
  auto second = sfstream::make_memory_replay_store();
  CHECK_FALSE(first->save({{"/u/x", {1, {}}}}));
  CHECK(second->load_all().empty());
}
