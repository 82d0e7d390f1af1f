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

void mask_json_members(std::string_view text, std::string_view key, mask_list& masks) {
  const std::string quoted = '"' + std::string(key) + '"';
  for (std::size_t pos = text.find(quoted); pos != std::string_view::npos;
       pos = text.find(quoted, pos + 1)) {
    std::size_t p = pos + quoted.size();
    while (p < text.size() &&
           (text[p] == ' ' || text[p] == '\t' || text[p] == '\r' || text[p] == '\n'))
      ++p;
    if (p >= text.size() || text[p] != ':') continue;
    ++p;
    while (p < text.size() &&
           (text[p] == ' ' || text[p] == '\t' || text[p] == '\r' || text[p] == '\n'))
      ++p;
    if (p >= text.size() || text[p] != '"') continue;
    const std::size_t begin = p + 1;
    std::size_t end = begin;
    while (end < text.size() && text[end] != '"') end += (text[end] == '\\') ? 2 : 1;
    end = std::min(end, text.size());
    if (begin < end) masks.emplace_back(begin, end);
  }
}

void mask_form_fields(std::string_view text, std::string_view key, mask_list& masks) {
  const std::string with_eq = std::string(key) + '=';
  for (std::size_t pos = text.find(with_eq); pos != std::string_view::npos;
       pos = text.find(with_eq, pos + 1)) {
    if (pos > 0 && text[pos - 1] != '&' && text[pos - 1] != '?' && text[pos - 1] != ' ' &&
        text[pos - 1] != '\n') {
      continue;
    }
    const std::size_t begin = pos + with_eq.size();
    std::size_t end = text.find_first_of("& \r\n\"'", begin);
    if (end == std::string_view::npos) end = text.size();
    if (begin < end) masks.emplace_back(begin, end);
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

std::string redact_secrets(std::string_view text, std::span<const std::string> secrets) {
  std::vector<std::string_view> ordered;
  for (const auto& secret : secrets) {
    if (!secret.empty()) ordered.emplace_back(secret);
  }
  std::sort(ordered.begin(), ordered.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  mask_list masks;
  for (std::string_view secret : ordered) {
    for (std::size_t pos = text.find(secret); pos != std::string_view::npos;
         pos = text.find(secret, pos + 1)) {
      masks.emplace_back(pos, pos + secret.size());
    }
  }
  return apply_masks(text, std::move(masks));
}

std::string redact_known_patterns(std::string_view text) {
  mask_list masks;
  mask_header_lines(text, "authorization:", masks);
  mask_header_lines(text, "proxy-authorization:", masks);
  mask_header_lines(text, "cookie:", masks);
  mask_header_lines(text, "set-cookie:", masks);
  for (std::string_view element : {std::string_view("sessionId"), std::string_view("password")}) {
    mask_xml_elements(text, element, masks);
  }
  static constexpr std::array<std::string_view, 6> json_keys{
      "access_token", "refresh_token", "client_secret", "id_token", "password", "assertion"};
  for (std::string_view key : json_keys) mask_json_members(text, key, masks);
  static constexpr std::array<std::string_view, 5> form_keys{
      "password", "client_secret", "refresh_token", "access_token", "assertion"};
  for (std::string_view key : form_keys) mask_form_fields(text, key, masks);
  mask_private_keys(text, masks);
  mask_session_ids(text, masks);
  return apply_masks(text, std::move(masks));
}

std::string redact(std::string_view text, std::span<const std::string> secrets) {
  return redact_known_patterns(redact_secrets(text, secrets));
}

}  // namespace sfstream::detail
