#include "emulator/data/values.hpp"

#include <cctype>
#include <cstdio>

namespace sfstream::emulator::data {
namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

unsigned days_in_month(int y, int m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29u : days[m - 1];
}

bool valid_date(int y, int m, int d) {
  return y >= 1700 && y <= 4000 && m >= 1 && m <= 12 && d >= 1 && static_cast<unsigned>(d) <= days_in_month(y, m);
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(y), m, d);
  return buf;
}

std::optional<std::string> parse_date(std::string_view text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !digits(text, 0, 4, y) || !digits(text, 5, 2, m) ||
      !digits(text, 8, 2, d) || !valid_date(y, m, d))
    return std::nullopt;
  return std::string(text);
}

std::optional<std::string> parse_datetime(std::string_view text) {
  int h = 0, mi = 0, s = 0, ms = 0;
  if (text.size() < 16 || !parse_date(text.substr(0, 10)) || (text[10] != 'T' && text[10] != 't') ||
      !digits(text, 11, 2, h) || text[13] != ':' || !digits(text, 14, 2, mi) || h > 23 || mi > 59)
    return std::nullopt;
  std::size_t at = 16;
  if (at < text.size() && text[at] == ':') {
    if (!digits(text, at + 1, 2, s) || s > 59) return std::nullopt;
    at += 3;
    if (at < text.size() && text[at] == '.') {
      ++at;
      std::size_t n = 0;
      int scale = 100;
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
        if (n < 3) ms += (text[at] - '0') * scale;
        scale /= 10;
        ++n;
        ++at;
      }
      if (n == 0) return std::nullopt;
    }
  }
  std::int64_t offset_minutes = 0;
  const std::string_view zone = text.substr(at);
  if (zone == "Z" || zone == "z") {
  } else if (!zone.empty() && (zone[0] == '+' || zone[0] == '-')) {
    int oh = 0, om = 0;
    if (zone.size() == 6 && zone[3] == ':' && digits(zone, 1, 2, oh) && digits(zone, 4, 2, om)) {
    } else if (zone.size() == 5 && digits(zone, 1, 2, oh) && digits(zone, 3, 2, om)) {
    } else {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_minutes = (zone[0] == '-' ? -1 : 1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  int y = 0, mo = 0, d = 0;
  digits(text, 0, 4, y);
  digits(text, 5, 2, mo);
  digits(text, 8, 2, d);
  const std::int64_t total_ms =
      ((days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 1440 + h * 60 + mi - offset_minutes) * 60 + s) *
          1000 +
      ms;
  return format_datetime(std::chrono::system_clock::time_point(std::chrono::milliseconds(total_ms)));
}

std::int64_t epoch_ms(std::string_view c) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (c.size() < 24 || !digits(c, 0, 4, y) || !digits(c, 5, 2, mo) || !digits(c, 8, 2, d) || !digits(c, 11, 2, h) ||
      !digits(c, 14, 2, mi) || !digits(c, 17, 2, s) || !digits(c, 20, 3, ms))
    return 0;
  return ((days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 1440 + h * 60 + mi) * 60 + s) * 1000 + ms;
}

std::string format_datetime(std::chrono::system_clock::time_point at) {
  const std::int64_t total = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  std::int64_t days = total / 86'400'000;
  std::int64_t rest = total % 86'400'000;
  if (rest < 0) {
    rest += 86'400'000;
    --days;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d.%03dZ", static_cast<int>(rest / 3'600'000),
                static_cast<int>(rest / 60'000 % 60), static_cast<int>(rest / 1000 % 60), static_cast<int>(rest % 1000));
  return civil_from_days(days) + buf;
}

std::string rest_datetime(const std::string& canonical) {
  if (!canonical.empty() && canonical.back() == 'Z') return canonical.substr(0, canonical.size() - 1) + "+0000";
  return canonical;
}

}  // namespace sfstream::emulator::data
