#include "vocabulary/event_time.hpp"

#include <cstdio>
#include <limits>

namespace sfstream::detail {
namespace {

using std::chrono::milliseconds;

// Reads exactly `count` decimal digits at `pos`.
std::optional<int> read_digits(std::string_view text, std::size_t pos, std::size_t count) noexcept {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

std::string format_event_time(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::floor<milliseconds>(time);
  const auto day = std::chrono::floor<std::chrono::days>(ms);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{ms - day};
  char buffer[64];
  const int written = std::snprintf(
      buffer, sizeof buffer, "%04d-%02u-%02u%c%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), 'T',
      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  if (written <= 0) return {};
  return std::string(buffer, static_cast<std::size_t>(written));
}

std::optional<std::chrono::system_clock::time_point> parse_event_time(
    std::string_view text) noexcept {
  // 2016-03-29T16:40:08.208Z
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[23] != 'Z') {
    return std::nullopt;
  }
  const auto year = read_digits(text, 0, 4);
  const auto month = read_digits(text, 5, 2);
  const auto day = read_digits(text, 8, 2);
  const auto hour = read_digits(text, 11, 2);
  const auto minute = read_digits(text, 14, 2);
  const auto second = read_digits(text, 17, 2);
  const auto milli = read_digits(text, 20, 3);
  if (!year || !month || !day || !hour || !minute || !second || !milli) return std::nullopt;
  if (*hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{*year},
                                        std::chrono::month{static_cast<unsigned>(*month)},
                                        std::chrono::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return std::nullopt;
  const auto days_since_epoch = std::chrono::sys_days{ymd}.time_since_epoch().count();
  const std::int64_t total_ms =
      ((static_cast<std::int64_t>(days_since_epoch) * 24 + *hour) * 60 + *minute) * 60'000 +
      static_cast<std::int64_t>(*second) * 1000 + *milli;
  using clock_duration = std::chrono::system_clock::duration;
  const auto limit = std::chrono::duration_cast<milliseconds>(clock_duration::max()).count();
  if (total_ms >= limit || total_ms <= -limit) return std::nullopt;
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<clock_duration>(milliseconds{total_ms})};
}

}  // namespace sfstream::detail
