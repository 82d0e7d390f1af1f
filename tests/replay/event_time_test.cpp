#include <doctest/doctest.h>

#include <chrono>
#include <ostream>

#include "vocabulary/event_time.hpp"

using namespace std::chrono_literals;
using sfstream::detail::format_event_time;
using sfstream::detail::parse_event_time;
using time_point = std::chrono::system_clock::time_point;

TEST_CASE("event times format as ISO-8601 UTC with milliseconds and parse back exactly") {
  const time_point t{1459269608208ms};
  CHECK(format_event_time(t) == "2016-03-29T16:40:08.208Z");
  CHECK(parse_event_time("2016-03-29T16:40:08.208Z") == t);
  CHECK(format_event_time(time_point{}) == "1970-01-01T00:00:00.000Z");
  CHECK(parse_event_time("1970-01-01T00:00:00.000Z") == time_point{});
  const time_point before_epoch{-1ms};
  CHECK(format_event_time(before_epoch) == "1969-12-31T23:59:59.999Z");
  CHECK(parse_event_time("1969-12-31T23:59:59.999Z") == before_epoch);
  CHECK(parse_event_time("2024-02-29T23:59:59.999Z").has_value());
}

TEST_CASE("event times below a millisecond are floored when formatted") {
  const time_point t = time_point{1459269608208ms} + 999us;
  CHECK(format_event_time(t) == "2016-03-29T16:40:08.208Z");
}

TEST_CASE("event time text that is not exactly YYYY-MM-DDTHH:MM:SS.mmmZ is refused") {
  for (const char* text :
       {"", "2016-03-29T16:40:08Z", "2016-03-29T16:40:08.208+0000", "2016-03-29 16:40:08.208Z",
        "2016-13-29T16:40:08.208Z", "2023-02-29T16:40:08.208Z", "2016-03-29T24:00:00.000Z",
        "2016-03-29T16:60:08.208Z", "2016-03-29T16:40:60.208Z", "2016-03-29T16:40:08.20aZ",
        "2016-03-29T16:40:08.208Zx", "9999-12-31T23:59:59.999Z", "1000-01-01T00:00:00.000Z"}) {
    INFO("text: " << text);
    CHECK_FALSE(parse_event_time(text).has_value());
  }
}
