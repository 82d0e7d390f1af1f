// One JSON value as one line of valid UTF-8: what makes stdout JSON Lines whatever the server
// sent. A server may pretty-print its JSON (newlines inside one event) or put bytes that are
// not UTF-8 inside a string; both would break a JSON Lines consumer. Pure functions, header
// only, so the command and its tests share them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <charconv>
#include <string_view>

#include "sfstream/detail/json_text.hpp"
#include "sfstream/event.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sfstream::cli {

/// What append_json_line changed to make its line.
struct json_line_fix {
  bool compacted = false;        ///< Whitespace outside strings was removed.
  bool replaced_utf8 = false;    ///< Invalid UTF-8 was replaced by U+FFFD.
  bool escaped_control = false;  ///< A raw control character inside a string was escaped.

  bool any() const noexcept { return compacted || replaced_utf8 || escaped_control; }
};

namespace utf8 {

/// The length of the valid UTF-8 sequence at the start of `s` (1 to 4), or 0 when it is not
/// valid; then `bad` is the length of its maximal ill-formed prefix (at least 1), which one
/// U+FFFD replaces (Unicode's "maximal subpart" rule). Overlong forms, surrogates and code
/// points above U+10FFFF are invalid.
inline std::size_t sequence_length(std::string_view s, std::size_t& bad) noexcept {
  const auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  bad = 1;
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong three-byte forms
    if (lead == 0xED) high = 0x9F;  // no UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // no overlong four-byte forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t i = 1; i < length; ++i) {
    if (i >= s.size()) return 0;
    const unsigned char c = byte(i);
    const unsigned char lo = i == 1 ? low : 0x80;
    const unsigned char hi = i == 1 ? high : 0xBF;
    if (c < lo || c > hi) return 0;
    bad = i + 1;
  }
  return length;
}

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

}  // namespace utf8

/// Appends `text` to `out` with every invalid UTF-8 sequence replaced by U+FFFD; returns true
/// when something was replaced.
inline bool append_valid_utf8(std::string& out, std::string_view text) {
  bool replaced = false;
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      out.push_back(text[i++]);
      continue;
    }
    std::size_t bad = 1;
    const std::size_t n = utf8::sequence_length(text.substr(i), bad);
    if (n == 0) {
      out += utf8::replacement_character;
      replaced = true;
      i += bad;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return replaced;
}

/// `text` with invalid UTF-8 replaced by U+FFFD.
inline std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_valid_utf8(out, text);
  return out;
}

/// What a scan of `text` found: a byte below 0x20 (a control character or a newline) and a
/// byte of 0x80 or above (not ASCII). Sixteen bytes at a time with SSE2, else eight: this runs
/// over every byte of every event the command prints.
struct byte_classes {
  bool control = false;
  bool non_ascii = false;
};
inline byte_classes classify_bytes(std::string_view text) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  const char* p = text.data();
  std::size_t n = text.size();
  bool wide_control = false;
  bool wide_high = false;
#if defined(__SSE2__)
  {
    const __m128i limit = _mm_set1_epi8(0x1f);
    __m128i seen_high = _mm_setzero_si128();
    __m128i seen_low = _mm_setzero_si128();
    for (; n >= 16; p += 16, n -= 16) {
      const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      seen_high = _mm_or_si128(seen_high, s);
      seen_low = _mm_or_si128(seen_low, _mm_cmpeq_epi8(_mm_max_epu8(s, limit), limit));
    }
    wide_high = _mm_movemask_epi8(seen_high) != 0;
    wide_control = _mm_movemask_epi8(seen_low) != 0;
  }
#endif
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    high |= w;
    // The high bit of a byte of (w - 0x20…) & ~w is set only when that byte, or one below it
    // in the word (whose borrow runs up), is below 0x20: exact for "is there one".
    low |= (w - 0x20 * ones) & ~w;
  }
  byte_classes found;
  found.non_ascii = wide_high || (high & highs) != 0;
  found.control = wide_control || (low & highs) != 0;
  for (; n > 0; ++p, --n) {
    const auto u = static_cast<unsigned char>(*p);
    found.non_ascii |= u >= 0x80;
    found.control |= u < 0x20;
  }
  return found;
}

/// Appends the JSON value `json` (as received) to `out` as one line of valid UTF-8. Valid
/// input without control characters is copied byte for byte (the fast path). Otherwise
/// whitespace outside strings is dropped, a raw control character inside a string becomes its
/// \u00XX escape and invalid UTF-8 becomes U+FFFD; strings, escapes and numbers are otherwise
/// copied as they are, never re-encoded.
inline json_line_fix append_json_line(std::string& out, std::string_view json) {
  json_line_fix fix;
  const byte_classes found = classify_bytes(json);
  bool plain = !found.control;
  const bool ascii = !found.non_ascii;
  if (plain && !ascii) {
    for (std::size_t i = 0; i < json.size() && plain;) {
      if (static_cast<unsigned char>(json[i]) < 0x80) {
        ++i;
        continue;
      }
      std::size_t bad = 1;
      const std::size_t n = utf8::sequence_length(json.substr(i), bad);
      if (n == 0) plain = false;
      i += n;
    }
  }
  if (plain) {
    out.append(json);
    return fix;
  }

  static constexpr char hex[] = "0123456789abcdef";
  bool in_string = false;
  std::size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      std::size_t bad = 1;
      const std::size_t n = utf8::sequence_length(json.substr(i), bad);
      if (n == 0) {
        out += utf8::replacement_character;
        fix.replaced_utf8 = true;
        i += bad;
      } else {
        out.append(json.substr(i, n));
        i += n;
      }
      continue;
    }
    if (!in_string) {
      ++i;
      if (u < 0x20 || c == ' ') {
        fix.compacted = true;  // insignificant whitespace (or a stray control byte)
        continue;
      }
      if (c == '"') in_string = true;
      out.push_back(c);
      continue;
    }
    if (u < 0x20) {
      out += "\\u00";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0x0F]);
      fix.escaped_control = true;
      ++i;
      continue;
    }
    out.push_back(c);
    ++i;
    if (c == '"') {
      in_string = false;
    } else if (c == '\\' && i < json.size() && static_cast<unsigned char>(json[i]) >= 0x20 &&
               static_cast<unsigned char>(json[i]) < 0x80) {
      out.push_back(json[i++]);  // the escaped character, e.g. \" or \\, stays in the string
    }
  }
  return fix;
}

/// Appends an event's JSON line (without its newline):
/// {["connection":…,]"channel":…,"replayId":…,"data":{…}}, the line `sfstream subscribe`
/// prints and the service's line sinks write (with their connection's name). The data is copied
/// as received unless it would not make one line of valid JSON (append_json_line); `fix` (when
/// given) says what was repaired. `channel_json`, when given, is the channel already written as
/// a JSON string (the events of a batch share it). replayId is null when the server sent none.
inline void append_event_json(std::string& out, const event& e, json_line_fix* fix = nullptr,
                              std::string_view channel_json = {},
                              std::string_view connection = {}) {
  const std::string_view data = e.data_json();
  out.push_back('{');
  if (!connection.empty()) {
    out += "\"connection\":";
    detail::append_json_string(out, valid_utf8(connection));
    out.push_back(',');
  }
  out += "\"channel\":";
  if (!channel_json.empty()) {
    out += channel_json;
  } else if (classify_bytes(e.channel()).non_ascii) {
    detail::append_json_string(out, valid_utf8(e.channel()));
  } else {
    detail::append_json_string(out, e.channel());
  }
  out += ",\"replayId\":";
  if (e.replay_id()) {
    char digits[24];
    const auto last = std::to_chars(digits, digits + sizeof digits, *e.replay_id()).ptr;
    out.append(digits, last);
  } else {
    out += "null";
  }
  out += ",\"data\":";
  if (data.empty()) {
    out += "null";
  } else {
    const json_line_fix made = append_json_line(out, data);
    if (fix != nullptr) *fix = made;
  }
  out.push_back('}');
}

}  // namespace sfstream::cli
