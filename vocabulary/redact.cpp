#include "sfstream/detail/redact.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace sfstream::detail {
namespace {

bool is_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequal_at(std::string_view text, std::size_t pos, std::string_view word) noexcept {
  if (pos + word.size() > text.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (lower(text[pos + i]) != lower(word[i])) return false;
  }
  return true;
}

// Replaces [begin, end) ranges (sorted, possibly overlapping) of `text` by the mark.
std::string apply_masks(std::string_view text,
                        std::vector<std::pair<std::size_t, std::size_t>> masks) {
  if (masks.empty()) return std::string(text);
  std::sort(masks.begin(), masks.end());
  std::vector<std::pair<std::size_t, std::size_t>> merged;
  for (const auto& m : masks) {
    if (!merged.empty() && m.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, m.second);
    } else {
      merged.push_back(m);
    }
  }
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (const auto& [begin, end] : merged) {
    out.append(text.substr(pos, begin - pos));
    out.append(redaction_mark);
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

using mask_list = std::vector<std::pair<std::size_t, std::size_t>>;

// A character that continues a word: a registered secret is masked only where it does not
// run into one of these on a side where the secret itself starts or ends with one.
bool is_word_char(char c) noexcept {
  return is_alnum(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void mask_header_lines(std::string_view text, std::string_view name, mask_list& masks) {
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (!iequal_at(text, pos, name)) continue;
    if (pos > 0 && (is_alnum(text[pos - 1]) || text[pos - 1] == '-')) continue;
    std::size_t value = pos + name.size();
    while (value < text.size() && (text[value] == ' ' || text[value] == '\t')) ++value;
    std::size_t end = text.find_first_of("\r\n", value);
    if (end == std::string_view::npos) end = text.size();
    if (value < end) masks.emplace_back(value, end);
    pos = end;
  }
}

void mask_xml_elements(std::string_view text, std::string_view local, mask_list& masks) {
  for (std::size_t lt = text.find('<'); lt != std::string_view::npos; lt = text.find('<', lt + 1)) {
    std::size_t name = lt + 1;
    if (name < text.size() && (text[name] == '/' || text[name] == '?' || text[name] == '!'))
      continue;
    std::size_t name_end = name;
    while (name_end < text.size() && text[name_end] != '>' && text[name_end] != ' ' &&
           text[name_end] != '/' && text[name_end] != '\t' && text[name_end] != '\n' &&
           text[name_end] != '\r' && text[name_end] != '<') {
      ++name_end;
    }
    std::string_view element = text.substr(name, name_end - name);
    if (auto colon = element.rfind(':'); colon != std::string_view::npos)
      element.remove_prefix(colon + 1);
    if (element.size() != local.size() || !iequal_at(element, 0, local)) continue;
    std::size_t gt = text.find('>', name_end);
    if (gt == std::string_view::npos) {
      masks.emplace_back(name_end, text.size());
      return;
    }
    if (text[gt - 1] == '/') continue;  // <password/>
    std::size_t end = text.find('<', gt + 1);
    if (end == std::string_view::npos) end = text.size();
    if (gt + 1 < end) masks.emplace_back(gt + 1, end);
  }
}

// The quote at `pos`, plain (") or escaped inside another JSON string (\"): its length, or 0.
std::size_t quote_at(std::string_view text, std::size_t pos, bool escaped) noexcept {
  if (escaped) return (pos + 1 < text.size() && text[pos] == '\\' && text[pos + 1] == '"') ? 2 : 0;
  return (pos < text.size() && text[pos] == '"') ? 1 : 0;
}

// "key": "value" masks value; so does \"key\": \"value\" (a JSON document quoted in a string).
void mask_json_members(std::string_view text, std::string_view key, mask_list& masks) {
  const std::string quoted = '"' + std::string(key);
  for (std::size_t pos = text.find(quoted); pos != std::string_view::npos;
       pos = text.find(quoted, pos + 1)) {
    const bool escaped = pos > 0 && text[pos - 1] == '\\';
    std::size_t p = pos + quoted.size();
    const std::size_t key_close = quote_at(text, p, escaped);
    if (key_close == 0) continue;
    p += key_close;
    while (p < text.size() && is_space(text[p])) ++p;
    if (p >= text.size() || text[p] != ':') continue;
    ++p;
    while (p < text.size() && is_space(text[p])) ++p;
    const std::size_t open = quote_at(text, p, escaped);
    if (open == 0) continue;
    const std::size_t begin = p + open;
    std::size_t end = begin;
    if (escaped) {
      end = text.find("\\\"", begin);
      if (end == std::string_view::npos) end = text.size();
    } else {
      while (end < text.size() && text[end] != '"') end += (text[end] == '\\') ? 2 : 1;
      end = std::min(end, text.size());
    }
    if (begin < end) masks.emplace_back(begin, end);
  }
}

// key=value where key starts the text, a query, a form field or a cookie pair.
void mask_form_fields(std::string_view text, std::string_view key, mask_list& masks) {
  for (std::size_t pos = 0; pos + key.size() < text.size(); ++pos) {
    if (text[pos + key.size()] != '=' || !iequal_at(text, pos, key)) continue;
    if (pos > 0 && std::string_view("&? \t\r\n;,").find(text[pos - 1]) == std::string_view::npos) {
      continue;
    }
    const std::size_t begin = pos + key.size() + 1;
    std::size_t end = text.find_first_of("& \t\r\n;\"'", begin);
    if (end == std::string_view::npos) end = text.size();
    if (begin < end) masks.emplace_back(begin, end);
    pos = end - 1;
  }
}

// scheme://user:password@host masks the password.
void mask_url_user_info(std::string_view text, mask_list& masks) {
  for (std::size_t scheme_end = text.find("://"); scheme_end != std::string_view::npos;
       scheme_end = text.find("://", scheme_end + 1)) {
    const std::size_t authority = scheme_end + 3;
    std::size_t authority_end = text.find_first_of("/?# \t\r\n\"'<>", authority);
    if (authority_end == std::string_view::npos) authority_end = text.size();
    const std::size_t at = text.substr(0, authority_end).rfind('@');
    if (at == std::string_view::npos || at < authority) continue;
    const std::size_t colon = text.substr(0, at).find(':', authority);
    if (colon == std::string_view::npos) continue;
    if (colon + 1 < at) masks.emplace_back(colon + 1, at);
  }
}

void mask_private_keys(std::string_view text, mask_list& masks) {
  for (std::size_t begin = text.find("-----BEGIN"); begin != std::string_view::npos;
       begin = text.find("-----BEGIN", begin + 1)) {
    std::size_t line_end = text.find("-----", begin + 10);
    if (line_end == std::string_view::npos) {
      masks.emplace_back(begin, text.size());
      return;
    }
    std::string_view label = text.substr(begin + 10, line_end - begin - 10);
    if (label.find("PRIVATE KEY") == std::string_view::npos) continue;
    std::size_t end = text.find("-----END", line_end + 5);
    if (end == std::string_view::npos) {
      masks.emplace_back(begin, text.size());
      return;
    }
    std::size_t close = text.find("-----", end + 8);
    end = (close == std::string_view::npos) ? text.size() : close + 5;
    masks.emplace_back(begin, end);
    begin = end - 1;
  }
}

bool is_token_char(char c) noexcept {
  return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '!';
}

void mask_session_ids(std::string_view text, mask_list& masks) {
  for (std::size_t pos = text.find("00D"); pos != std::string_view::npos;
       pos = text.find("00D", pos + 1)) {
    if (pos > 0 && is_alnum(text[pos - 1])) continue;
    std::size_t end = pos;
    while (end < text.size() && is_alnum(text[end])) ++end;
    const std::size_t id_length = end - pos;
    if ((id_length != 15 && id_length != 18) || end >= text.size() || text[end] != '!') continue;
    const std::size_t begin = end + 1;
    std::size_t token_end = begin;
    while (token_end < text.size() && is_token_char(text[token_end])) ++token_end;
    if (begin < token_end) masks.emplace_back(begin, token_end);
  }
}

}  // namespace

namespace {

void mask_registered_secrets(std::string_view text, std::span<const std::string> secrets,
                             mask_list& masks) {
  for (const std::string& secret : secrets) {
    if (secret.size() < min_registered_secret_length) continue;
    const bool word_start = is_word_char(secret.front());
    const bool word_end = is_word_char(secret.back());
    for (std::size_t pos = text.find(secret); pos != std::string_view::npos;
         pos = text.find(secret, pos + 1)) {
      const std::size_t end = pos + secret.size();
      if (word_start && pos > 0 && is_word_char(text[pos - 1])) continue;
      if (word_end && end < text.size() && is_word_char(text[end])) continue;
      masks.emplace_back(pos, end);
    }
  }
}

void mask_known_patterns(std::string_view text, mask_list& masks) {
  static constexpr std::array<std::string_view, 5> headers{
      "authorization:", "proxy-authorization:", "cookie:", "set-cookie:", "x-sfdc-session:"};
  for (std::string_view header : headers) mask_header_lines(text, header, masks);
  static constexpr std::array<std::string_view, 3> elements{"sessionId", "password",
                                                            "securityToken"};
  for (std::string_view element : elements) mask_xml_elements(text, element, masks);
  static constexpr std::array<std::string_view, 12> json_keys{
      "access_token", "refresh_token",  "client_secret",    "id_token",
      "password",     "assertion",      "client_assertion", "sessionId",
      "session_id",   "security_token", "securityToken",    "sid"};
  for (std::string_view key : json_keys) mask_json_members(text, key, masks);
  static constexpr std::array<std::string_view, 8> form_keys{
      "password",  "client_secret", "refresh_token",    "access_token",
      "assertion", "id_token",      "client_assertion", "sid"};
  for (std::string_view key : form_keys) mask_form_fields(text, key, masks);
  mask_url_user_info(text, masks);
  mask_private_keys(text, masks);
  mask_session_ids(text, masks);
}

}  // namespace

std::string redact_secrets(std::string_view text, std::span<const std::string> secrets) {
  mask_list masks;
  mask_registered_secrets(text, secrets, masks);
  return apply_masks(text, std::move(masks));
}

std::string redact_known_patterns(std::string_view text) {
  mask_list masks;
  mask_known_patterns(text, masks);
  return apply_masks(text, std::move(masks));
}

std::string redact(std::string_view text, std::span<const std::string> secrets) {
  // Both kinds of mask are found in the original text and merged, so that one never reads
  // the other's marks.
  mask_list masks;
  mask_registered_secrets(text, secrets, masks);
  mask_known_patterns(text, masks);
  return apply_masks(text, std::move(masks));
}

}  // namespace sfstream::detail
