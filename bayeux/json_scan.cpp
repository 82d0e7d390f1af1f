// The JSON scanner of Bayeux replies (see json_scan.hpp): the string, number and literal
// readers and the fast search for the end of a plain run of string characters.
#include "bayeux/json_scan.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace sfstream::bayeux {

namespace {

// The end of the run of plain string characters at `p`: no quote, backslash or control
// character, which the reader would copy one by one. Event payloads are long strings, so this
// loop is most of a reply's cost: 32 bytes at a time where the processor has AVX2 (chosen at
// load time), else 16 with SSE2; never reads past `end`.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) const char* plain_run_end_avx2(const char* p,
                                                                 const char* end) noexcept {
  const __m256i quote = _mm256_set1_epi8('"');
  const __m256i backslash = _mm256_set1_epi8('\\');
  const __m256i control = _mm256_set1_epi8(0x1f);
  while (end - p >= 32) {
    const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i special = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpeq_epi8(s, quote), _mm256_cmpeq_epi8(s, backslash)),
        _mm256_cmpeq_epi8(_mm256_max_epu8(s, control), control));
    const auto mask = static_cast<unsigned>(_mm256_movemask_epi8(special));
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 32;
  }
  return p;
}
#endif

}  // namespace

const char* plain_run_end_long(const char* p, const char* end) noexcept {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) p = plain_run_end_avx2(p, end);
#endif
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1f);
  while (end - p >= 16) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(s, quote), _mm_cmpeq_epi8(s, backslash)),
                     _mm_cmpeq_epi8(_mm_max_epu8(s, control), control));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20) break;
  }
  return p;
}

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool json_scanner::read_string(std::string_view& text, bool& copied) {
  const char* const start = ++p_;  // after the opening quote
  p_ = plain_run_end(p_, end_);
  if (p_ == end_) return false;
  if (*p_ == '"') {
    text = std::string_view(start, static_cast<std::size_t>(p_ - start));
    copied = false;
    ++p_;
    return true;
  }
  if (*p_ != '\\') return false;  // a raw control character
  copied = true;
  return read_escaped(start, text);
}

bool json_scanner::read_escaped(const char* start, std::string_view& text) {
  // p_ is at the first backslash; what came before it is plain.
  scratch_.assign(start, p_);
  auto hex4 = [this](std::uint32_t& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int v = hex_value(p_[i]);
      if (v < 0) return false;
      out = out << 4 | static_cast<std::uint32_t>(v);
    }
    p_ += 4;
    return true;
  };
  for (;;) {
    if (p_ == end_) return false;
    const char c = *p_;
    if (c == '"') {
      ++p_;
      text = scratch_;
      return true;
    }
    if (c != '\\') {
      const char* run = plain_run_end(p_, end_);
      if (run == p_) return false;  // a raw control character
      scratch_.append(p_, run);
      p_ = run;
      continue;
    }
    if (++p_ == end_) return false;
    const char e = *p_++;
    switch (e) {
      case '"':
        scratch_.push_back('"');
        break;
      case '\\':
        scratch_.push_back('\\');
        break;
      case '/':
        scratch_.push_back('/');
        break;
      case 'b':
        scratch_.push_back('\b');
        break;
      case 'f':
        scratch_.push_back('\f');
        break;
      case 'n':
        scratch_.push_back('\n');
        break;
      case 'r':
        scratch_.push_back('\r');
        break;
      case 't':
        scratch_.push_back('\t');
        break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!hex4(cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low one.
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          std::uint32_t low = 0;
          if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = (((cp - 0xD800) << 10) | (low - 0xDC00)) + 0x10000;
        }
        append_utf8(scratch_, cp);
        break;
      }
      default:
        return false;
    }
  }
}

bool json_scanner::read_number(std::string_view& text) noexcept {
  const char* const start = p_;
  if (at('-')) ++p_;
  auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
  if (!digit()) return false;
  if (*p_ == '0') {
    ++p_;
  } else {
    const char* first = p_;
    while (digit()) ++p_;
    // RapidJSON refuses integer parts beyond the range of a double: leave those to it.
    if (p_ - first > 300) return false;
  }
  if (at('.')) {
    ++p_;
    if (!digit()) return false;
    while (digit()) ++p_;
  }
  // Exponents have range rules of RapidJSON's own: left to it as well.
  if (at('e') || at('E')) return false;
  text = std::string_view(start, static_cast<std::size_t>(p_ - start));
  return true;
}

bool json_scanner::skip_container(bool object) {
  skipped_.clear();
  skipped_.push_back(object ? 1 : 0);
  std::string_view text;
  bool copied = false;
  bool key = object;
  for (;;) {
    if (key) {
      if (!at('"') || !read_string(text, copied)) return false;
      skip_ws();
      if (!at(':')) return false;
      ++p_;
      skip_ws();
      key = false;
    }
    if (p_ == end_) return false;
    bool done_value = true;
    switch (*p_) {
      case '{':
      case '[': {
        const bool is_object = *p_ == '{';
        ++p_;
        skip_ws();
        if (at(is_object ? '}' : ']')) {
          ++p_;
        } else {
          skipped_.push_back(is_object ? 1 : 0);
          key = is_object;
          done_value = false;
        }
        break;
      }
      case '"':
        if (!read_string(text, copied)) return false;
        break;
      case 't':
        if (!read_literal("true")) return false;
        break;
      case 'f':
        if (!read_literal("false")) return false;
        break;
      case 'n':
        if (!read_literal("null")) return false;
        break;
      default:
        if (!read_number(text)) return false;
        break;
    }
    if (!done_value) continue;
    for (;;) {
      skip_ws();
      if (at(',')) {
        ++p_;
        skip_ws();
        key = skipped_.back() != 0;
        break;
      }
      if (!at(skipped_.back() != 0 ? '}' : ']')) return false;
      if (skipped_.size() == 1) return true;  // the container's own end: left to the caller
      ++p_;
      skipped_.pop_back();
    }
  }
}

bool json_scanner::read_literal(std::string_view word) noexcept {
  if (static_cast<std::size_t>(end_ - p_) < word.size() ||
      std::memcmp(p_, word.data(), word.size()) != 0) {
    return false;
  }
  p_ += word.size();
  return true;
}

}  // namespace sfstream::bayeux
