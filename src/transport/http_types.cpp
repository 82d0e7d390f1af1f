// URL parsing and header lookup: the plain vocabulary of the transport.
#include "src/transport/http_types.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace sfstream::transport {
namespace {

char lower(char c) noexcept {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<url> refuse(error_info* why, std::string reason) {
  if (why != nullptr) {
    why->code = make_error_code(errc::invalid_url);
    why->diag = {};
    why->diag.context = "parsing a URL";
    why->diag.server_text = std::move(reason);
  }
  return std::nullopt;
}

std::uint16_t default_port(std::string_view scheme) noexcept {
  return scheme == "https" ? 443 : 80;
}

}  // namespace

const std::string* find_header(const header_list& headers, std::string_view name) noexcept {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return &value;
  }
  return nullptr;
}

std::optional<url> url::parse(std::string_view text, error_info* why) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return refuse(why, "the URL contains a space or a control character");
  }
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos)
    return refuse(why, "the URL has no scheme (expected https://)");
  url out;
  out.scheme.reserve(scheme_end);
  for (char c : text.substr(0, scheme_end)) out.scheme.push_back(lower(c));
  if (out.scheme != "http" && out.scheme != "https") {
    return refuse(why, "only http:// and https:// URLs are supported");
  }
  if (text.find('#') != std::string_view::npos)
    return refuse(why, "fragments (#...) are not allowed");
  std::string_view rest = text.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return refuse(why, "user information (user:password@) is not allowed in a URL");
  }
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return refuse(why, "an IPv6 address lacks its closing ']'");
    host = authority.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos)
      return refuse(why, "brackets are only for IPv6 addresses");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return refuse(why, "unexpected text after an IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.find_first_of("[]") != std::string_view::npos)
      return refuse(why, "the host name is malformed");
  }
  if (host.empty()) return refuse(why, "the URL has no host");
  for (char c : host) out.host.push_back(lower(c));
  if (has_port) {
    unsigned value = 0;
    const auto* first = port_text.data();
    const auto* last = first + port_text.size();
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (port_text.empty() || ec != std::errc{} || ptr != last || value == 0 || value > 65535) {
      return refuse(why, "the port must be a number from 1 to 65535");
    }
    out.port = static_cast<std::uint16_t>(value);
  } else {
    out.port = default_port(out.scheme);
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/";
    out.target += target;
  } else {
    out.target = std::string(target);
  }
  return out;
}

std::string url::origin() const {
  std::string out = scheme + "://";
  if (host.find(':') != std::string::npos) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  if (port != default_port(scheme)) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

std::string url::to_string() const {
  return origin() + target;
}

bool url::is_loopback() const noexcept {
  if (iequals(host, "localhost")) return true;
  unsigned char buffer[16];
  if (inet_pton(AF_INET, host.c_str(), buffer) == 1) return buffer[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), buffer) == 1) {
    for (int i = 0; i < 15; ++i) {
      if (buffer[i] != 0) return false;
    }
    return buffer[15] == 1;
  }
  return false;
}

}  // namespace sfstream::transport
