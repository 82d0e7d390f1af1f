#include "src/poll/poll_cursor.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "vocabulary/event_time.hpp"

namespace sfstream::poll_detail {
namespace {

constexpr std::string_view cursor_tag = "poll1";

std::int64_t floor_to_second(std::int64_t ms) {
  std::int64_t s = ms / 1000;
  if (ms % 1000 < 0) --s;
  return s * 1000;
}

bool parse_int(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool two_digits(std::string_view text, std::size_t at, int& out) {
  if (at + 2 > text.size() || !std::isdigit(static_cast<unsigned char>(text[at])) ||
      !std::isdigit(static_cast<unsigned char>(text[at + 1])))
    return false;
  out = (text[at] - '0') * 10 + (text[at + 1] - '0');
  return true;
}

// "<ms>/<id>" with an alphanumeric id, or "<ms>/" when `id_optional`.
std::optional<stamp> parse_stamp(std::string_view text, bool id_optional) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  stamp s;
  if (!parse_int(text.substr(0, slash), s.ms)) return std::nullopt;
  s.id = std::string(text.substr(slash + 1));
  if (s.id.empty() ? !id_optional : !is_record_id(s.id)) return std::nullopt;
  return s;
}

std::string stamp_text(const stamp& s) {
  return std::to_string(s.ms) + "/" + s.id;
}

}  // namespace

std::optional<std::int64_t> parse_datetime_ms(std::string_view text) noexcept {
  if (text.size() < 20) return std::nullopt;
  std::string normal(text.substr(0, 19));
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    const auto digits_end = text.find_first_not_of("0123456789", at + 1);
    const std::size_t n = (digits_end == std::string_view::npos ? text.size() : digits_end) - at - 1;
    if (n == 0) return std::nullopt;
    std::string millis(text.substr(at + 1, std::min<std::size_t>(n, 3)));
    millis.resize(3, '0');
    normal += "." + millis;
    at += 1 + n;
  } else {
    normal += ".000";
  }
  normal += 'Z';
  std::int64_t offset_minutes = 0;
  const std::string_view zone = text.substr(at);
  if (zone != "Z") {
    if (zone.size() != 5 && zone.size() != 6) return std::nullopt;
    if (zone[0] != '+' && zone[0] != '-') return std::nullopt;
    int hours = 0;
    int minutes = 0;
    const std::size_t minutes_at = zone.size() == 6 ? 4 : 3;
    if (zone.size() == 6 && zone[3] != ':') return std::nullopt;
    if (!two_digits(zone, 1, hours) || !two_digits(zone, minutes_at, minutes) || minutes > 59)
      return std::nullopt;
    offset_minutes = (hours * 60 + minutes) * (zone[0] == '-' ? -1 : 1);
  }
  const auto parsed = detail::parse_event_time(normal);
  if (!parsed) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(parsed->time_since_epoch()).count() -
         offset_minutes * 60'000;
}

std::string format_ms(std::int64_t ms) {
  return detail::format_event_time(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

std::string soql_datetime(std::int64_t ms) {
  std::string text = format_ms(floor_to_second(ms));
  return text.substr(0, 19) + "Z";
}

bool is_record_id(std::string_view id) noexcept {
  return (id.size() == 15 || id.size() == 18) &&
         std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

poll_cursor::poll_cursor(std::chrono::milliseconds overlap) : overlap_(overlap) {}

poll_cursor poll_cursor::after(stamp floor, std::chrono::milliseconds overlap) {
  poll_cursor c(overlap);
  c.floor_ = std::move(floor);
  return c;
}

std::optional<std::int64_t> poll_cursor::lower_bound() const {
  std::optional<std::int64_t> lower;
  if (newest_) lower = floor_to_second(newest_->ms - overlap_.count());
  if (floor_) lower = std::max(lower.value_or(INT64_MIN), floor_to_second(floor_->ms));
  if (covered_from_) lower = std::max(lower.value_or(INT64_MIN), *covered_from_);
  return lower;
}

bool poll_cursor::is_new(const stamp& s) const {
  if (floor_ && (s < *floor_ || s == *floor_)) return false;
  if (covered_from_ && s.ms < *covered_from_) return false;
  return window_.find(s) == window_.end();
}

bool poll_cursor::is_late(const stamp& s) const {
  return newest_ && s < *newest_;
}

void poll_cursor::mark_emitted(const stamp& s) {
  window_.insert(s);
  if (!newest_ || *newest_ < s) newest_ = s;
  prune();
}

void poll_cursor::prune() {
  const auto lower = lower_bound();
  if (!lower) return;
  covered_from_ = *lower;
  window_.erase(window_.begin(), window_.lower_bound(stamp{*lower, {}}));
}

std::string poll_cursor::encode() const {
  std::string out(cursor_tag);
  if (newest_) out += " newest=" + stamp_text(*newest_);
  if (floor_) out += " floor=" + stamp_text(*floor_);
  if (covered_from_) out += " from=" + std::to_string(*covered_from_);
  out += " seen=";
  bool first = true;
  for (const auto& s : window_) {
    if (!first) out += ',';
    first = false;
    out += stamp_text(s);
  }
  return out;
}

std::optional<poll_cursor> poll_cursor::decode(std::string_view text,
                                               std::chrono::milliseconds overlap,
                                               std::string& why) {
  std::vector<std::string_view> words;
  for (std::size_t at = 0; at <= text.size();) {
    const auto space = std::min(text.find(' ', at), text.size());
    words.push_back(text.substr(at, space - at));
    at = space + 1;
  }
  if (words.empty() || words[0] != cursor_tag) {
    why = "it does not start with \"poll1\"";
    return std::nullopt;
  }
  poll_cursor c(overlap);
  bool seen_given = false;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const auto word = words[i];
    const auto eq = word.find('=');
    if (eq == std::string_view::npos) {
      why = "\"" + std::string(word.substr(0, 40)) + "\" is not key=value";
      return std::nullopt;
    }
    const auto key = word.substr(0, eq);
    const auto value = word.substr(eq + 1);
    if (key == "newest" || key == "floor") {
      auto s = parse_stamp(value, key == "floor");
      if (!s) {
        why = "\"" + std::string(key) + "\" is not <milliseconds>/<record id>";
        return std::nullopt;
      }
      (key == "newest" ? c.newest_ : c.floor_) = std::move(*s);
    } else if (key == "from") {
      std::int64_t ms = 0;
      if (!parse_int(value, ms)) {
        why = "\"from\" is not a number of milliseconds";
        return std::nullopt;
      }
      c.covered_from_ = ms;
    } else if (key == "seen") {
      seen_given = true;
      for (std::size_t at = 0; at < value.size();) {
        const auto comma = std::min(value.find(',', at), value.size());
        auto s = parse_stamp(value.substr(at, comma - at), false);
        if (!s) {
          why = "an entry of \"seen\" is not <milliseconds>/<record id>";
          return std::nullopt;
        }
        c.window_.insert(std::move(*s));
        at = comma + 1;
      }
    } else {
      why = "unknown key \"" + std::string(key.substr(0, 40)) + "\"";
      return std::nullopt;
    }
  }
  if (!seen_given) {
    why = "it has no \"seen\" list";
    return std::nullopt;
  }
  c.prune();
  return c;
}

}  // namespace sfstream::poll_detail
