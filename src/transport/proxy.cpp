// Proxy selection, proxy URL parsing, NO_PROXY matching and base64.
#include "src/transport/proxy.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

namespace sfstream::transport {
namespace {

char lower(char c) noexcept {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

std::optional<proxy_config> refuse(error_info* why, std::string reason) {
  if (why != nullptr) {
    why->code = make_error_code(errc::invalid_config);
    why->diag = {};
    why->diag.context = "parsing the proxy URL";
    why->diag.server_text = std::move(reason);
  }
  return std::nullopt;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

const char* env(const char* upper, const char* lower_name) {
  const char* value = std::getenv(upper);
  if (value == nullptr || *value == '\0') value = std::getenv(lower_name);
  return (value == nullptr || *value == '\0') ? nullptr : value;
}

}  // namespace

std::optional<proxy_config> parse_proxy_url(std::string_view text, error_info* why) {
  text = trim(text);
  std::string_view rest = text;
  if (const auto sep = text.find("://"); sep != std::string_view::npos) {
    if (to_lower(text.substr(0, sep)) != "http") {
      return refuse(why, "only http:// proxies are supported (the CONNECT tunnel carries the TLS)");
    }
    rest = text.substr(sep + 3);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.find_first_not_of('/', slash) != std::string_view::npos) {
      return refuse(why, "a proxy URL takes no path");
    }
    rest = rest.substr(0, slash);
  }
  proxy_config out;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = colon == std::string_view::npos ? std::optional<std::string>(std::string())
                                                    : percent_decode(userinfo.substr(colon + 1));
    if (!user || !password)
      return refuse(why, "the proxy user name or password has a bad %-escape");
    out.username = std::move(*user);
    out.password = std::move(*password);
  }
  std::string address = "http://";
  address += rest;
  error_info inner;
  auto parsed = url::parse(address, &inner);
  if (!parsed) return refuse(why, "the proxy host or port is malformed: " + inner.diag.server_text);
  out.address = std::move(*parsed);
  return out;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host) {
  const std::string wanted = to_lower(host);
  if (wanted.empty()) return false;
  std::size_t start = 0;
  std::size_t guard = 0;
  while (start <= no_proxy.size() && guard++ <= no_proxy.size()) {
    const auto comma = no_proxy.find(',', start);
    std::string_view entry = trim(no_proxy.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? no_proxy.size() + 1 : comma + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    // "[::1]:8080", "host:8080": drop the brackets and the port.
    if (entry.front() == '[') {
      const auto close = entry.find(']');
      entry = close == std::string_view::npos ? entry.substr(1) : entry.substr(1, close - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
      entry = entry.substr(0, entry.find(':'));
    }
    while (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
    if (entry.empty()) continue;
    const std::string suffix = to_lower(entry);
    if (wanted == suffix) return true;
    if (wanted.size() > suffix.size() &&
        wanted.compare(wanted.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        wanted[wanted.size() - suffix.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

std::string encode_base64(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
                   (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                   static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back(alphabet[n & 63]);
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left == 2) n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(left == 2 ? alphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<proxy_config> select_proxy(const transport_options& options, const url& target) {
  if (options.proxy) return options.proxy;
  if (!options.proxy_from_environment || target.is_loopback() || !target.is_https())
    return std::nullopt;
  const char* proxy = env("HTTPS_PROXY", "https_proxy");
  if (proxy == nullptr) return std::nullopt;
  if (const char* no_proxy = env("NO_PROXY", "no_proxy");
      no_proxy != nullptr && no_proxy_matches(no_proxy, target.host)) {
    return std::nullopt;
  }
  return parse_proxy_url(proxy);
}

}  // namespace sfstream::transport
