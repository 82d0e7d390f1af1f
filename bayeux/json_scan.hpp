// A JSON scanner for Bayeux replies: one pass over a body held in memory, handing a SAX
// handler (the same calls RapidJSON's reader makes: StartObject, Key, String, RawNumber, ...)
// views into the body itself. Strings without escapes are never copied; their ends are found
// 16 or 32 bytes at a time. The grammar is RFC 8259's, and what it accepts and refuses is
// RapidJSON's (iterative, numbers as strings), so that the reply parser may use either; for
// the rare inputs where matching that reader exactly would take more code than it is worth (a
// number with an exponent, an integer part of hundreds of digits, any error) it says `unsure`
// and the caller asks RapidJSON, whose diagnostics then name the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sfstream::bayeux {

/// plain_run_end past its first 16 bytes: AVX2 where the processor has it, else SSE2.
const char* plain_run_end_long(const char* p, const char* end) noexcept;

/// The end of the run at `p` of string characters that need no care: no quote, no backslash,
/// no control character. Never reads past `end`. Most strings of a reply (keys, ids, dates)
/// end within 16 bytes: that case is one vector compare, inline.
inline const char* plain_run_end(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  if (end - p >= 16) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i special = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(s, _mm_set1_epi8('"')), _mm_cmpeq_epi8(s, _mm_set1_epi8('\\'))),
        _mm_cmpeq_epi8(_mm_max_epu8(s, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f)));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    return plain_run_end_long(p + 16, end);
  }
#endif
  for (; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20) break;
  }
  return p;
}

enum class scan_result { ok, unsure };

/// Positions as RapidJSON's iterative reader reports them through its stream's Tell(): at
/// StartObject/StartArray the offset of the bracket, at EndObject/EndArray the offset of the
/// closing bracket (not yet consumed), at a key or a scalar the offset just after it.
class json_scanner {
 public:
  explicit json_scanner(std::string_view body) noexcept
      : begin_(body.data()), p_(body.data()), end_(body.data() + body.size()) {}

  std::size_t Tell() const noexcept { return static_cast<std::size_t>(p_ - begin_); }

  /// Scans the whole body as one JSON value with optional whitespace around it. `ok`: valid,
  /// and every event was handed to `h` (which returned true each time). Right after each
  /// StartObject or StartArray the scanner asks `h.skip_children()`: when true, what the
  /// container holds is checked but not handed over, and its EndObject/EndArray comes next.
  template <class Handler>
  scan_result scan(Handler& h);

 private:
  void skip_ws() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at(char c) const noexcept { return p_ != end_ && *p_ == c; }
  /// Reads the string at p_ (its opening quote); the text is a view into the body or into
  /// scratch_ when it had escapes.
  bool read_string(std::string_view& text, bool& copied);
  bool read_escaped(const char* start, std::string_view& text);
  bool read_number(std::string_view& text) noexcept;
  bool read_literal(std::string_view word) noexcept;
  /// Checks the members or elements of the container whose opening bracket was just read (it
  /// is not empty) and stops at its closing bracket, not consuming it.
  bool skip_container(bool object);

  const char* const begin_;
  const char* p_;
  const char* const end_;
  std::string scratch_;
  std::vector<char> stack_;  ///< Open containers, innermost last: 1 for an object, 0 an array.
  std::vector<char> skipped_;  ///< The same inside a container being skipped.
};

template <class Handler>
scan_result json_scanner::scan(Handler& h) {
  using size_type = unsigned;
  std::string_view text;
  bool copied = false;
  skip_ws();
  // Each turn reads one value; `key` says that a member name comes first.
  bool key = false;
  for (;;) {
    if (key) {
      if (!at('"') || !read_string(text, copied)) return scan_result::unsure;
      if (!h.Key(text.data(), static_cast<size_type>(text.size()), copied)) {
        return scan_result::unsure;
      }
      skip_ws();
      if (!at(':')) return scan_result::unsure;
      ++p_;
      skip_ws();
      key = false;
    }
    if (p_ == end_) return scan_result::unsure;
    bool done_value = true;  // false when a container was opened
    switch (*p_) {
      case '{':
        if (!h.StartObject()) return scan_result::unsure;
        ++p_;
        skip_ws();
        if (at('}')) {
          if (!h.EndObject(0)) return scan_result::unsure;
          ++p_;
        } else if (h.skip_children()) {
          if (!skip_container(true) || !h.EndObject(0)) return scan_result::unsure;
          ++p_;
        } else {
          stack_.push_back(1);
          key = true;
          done_value = false;
        }
        break;
      case '[':
        if (!h.StartArray()) return scan_result::unsure;
        ++p_;
        skip_ws();
        if (at(']')) {
          if (!h.EndArray(0)) return scan_result::unsure;
          ++p_;
        } else if (h.skip_children()) {
          if (!skip_container(false) || !h.EndArray(0)) return scan_result::unsure;
          ++p_;
        } else {
          stack_.push_back(0);
          done_value = false;
        }
        break;
      case '"':
        if (!read_string(text, copied)) return scan_result::unsure;
        if (!h.String(text.data(), static_cast<size_type>(text.size()), copied)) {
          return scan_result::unsure;
        }
        break;
      case 't':
        if (!read_literal("true") || !h.Bool(true)) return scan_result::unsure;
        break;
      case 'f':
        if (!read_literal("false") || !h.Bool(false)) return scan_result::unsure;
        break;
      case 'n':
        if (!read_literal("null") || !h.Null()) return scan_result::unsure;
        break;
      default:
        if (!read_number(text) ||
            !h.RawNumber(text.data(), static_cast<size_type>(text.size()), false)) {
          return scan_result::unsure;
        }
        break;
    }
    if (!done_value) continue;
    // After a value: the next member or element, or the end of containers.
    for (;;) {
      skip_ws();
      if (stack_.empty()) return p_ == end_ ? scan_result::ok : scan_result::unsure;
      if (at(',')) {
        ++p_;
        skip_ws();
        key = stack_.back() != 0;
        break;
      }
      const bool object = stack_.back() != 0;
      if (!at(object ? '}' : ']')) return scan_result::unsure;
      const bool ok = object ? h.EndObject(0) : h.EndArray(0);
      if (!ok) return scan_result::unsure;
      ++p_;
      stack_.pop_back();
    }
  }
}

}  // namespace sfstream::bayeux
