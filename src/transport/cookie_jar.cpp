// cookie_jar: the RFC 6265 storage model (sections 5.1-5.4), minus the public suffix list.
// Values are stored and sent back byte for byte: Salesforce's affinity cookies carry
// / + = : ! and a proxy that re-encoded them caused "403::Unknown client" (dialect §2.1).
#include "src/transport/cookie_jar.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace sfstream::transport {
namespace {

/// Bounds that keep a hostile server from growing the jar without limit.
constexpr std::size_t max_cookie_bytes = 8192;
constexpr std::size_t max_cookies = 300;

char lower(char c) noexcept {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_ip_address(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

/// RFC 6265 §5.1.3.
bool domain_match(const std::string& host, const std::string& domain) {
  if (host == domain) return true;
  return host.size() > domain.size() &&
         host.compare(host.size() - domain.size(), domain.size(), domain) == 0 &&
         host[host.size() - domain.size() - 1] == '.' && !is_ip_address(host);
}

std::string_view request_path(const url& u) {
  std::string_view path = u.target;
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  return path;
}

/// RFC 6265 §5.1.4.
std::string default_path(const url& u) {
  const std::string_view path = request_path(u);
  if (path.empty() || path.front() != '/') return "/";
  const auto last = path.rfind('/');
  if (last == 0) return "/";
  return std::string(path.substr(0, last));
}

/// RFC 6265 §5.1.4.
bool path_match(std::string_view request, const std::string& cookie_path) {
  if (request == cookie_path) return true;
  if (request.size() <= cookie_path.size() ||
      request.compare(0, cookie_path.size(), cookie_path) != 0)
    return false;
  return cookie_path.back() == '/' || request[cookie_path.size()] == '/';
}

bool is_date_delimiter(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x09 || (u >= 0x20 && u <= 0x2f) || (u >= 0x3b && u <= 0x40) ||
         (u >= 0x5b && u <= 0x60) || (u >= 0x7b && u <= 0x7e);
}

/// Reads 1..max_digits leading digits of `token`; the rest must not start with a digit.
std::optional<int> leading_number(std::string_view token, std::size_t min_digits,
                                  std::size_t max_digits, std::string_view* rest = nullptr) {
  std::size_t n = 0;
  int value = 0;
  while (n < token.size() && std::isdigit(static_cast<unsigned char>(token[n]))) {
    if (n == max_digits) return std::nullopt;
    value = value * 10 + (token[n] - '0');
    ++n;
  }
  if (n < min_digits) return std::nullopt;
  if (rest != nullptr) *rest = token.substr(n);
  return value;
}

/// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

/// The cookie-date algorithm of RFC 6265 §5.1.1.
std::optional<cookie_jar::clock::time_point> parse_cookie_date(std::string_view text) {
  std::optional<std::array<int, 3>> time;
  std::optional<int> day, month, year;
  static constexpr std::array<std::string_view, 12> months = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_date_delimiter(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_date_delimiter(text[i])) ++i;
    const std::string_view token = text.substr(start, i - start);
    if (token.empty()) continue;
    if (!time) {
      std::string_view rest;
      auto h = leading_number(token, 1, 2, &rest);
      if (h && !rest.empty() && rest.front() == ':') {
        auto m = leading_number(rest.substr(1), 1, 2, &rest);
        if (m && !rest.empty() && rest.front() == ':') {
          auto s = leading_number(rest.substr(1), 1, 2, &rest);
          if (s) {
            time = std::array<int, 3>{*h, *m, *s};
            continue;
          }
        }
      }
    }
    if (!day) {
      if (auto d = leading_number(token, 1, 2)) {
        day = d;
        continue;
      }
    }
    if (!month && token.size() >= 3) {
      const std::string prefix = to_lower(token.substr(0, 3));
      const auto it = std::find(months.begin(), months.end(), prefix);
      if (it != months.end()) {
        month = static_cast<int>(it - months.begin()) + 1;
        continue;
      }
    }
    if (!year) {
      if (auto y = leading_number(token, 2, 4)) {
        year = y;
        continue;
      }
    }
  }
  if (!time || !day || !month || !year) return std::nullopt;
  int y = *year;
  if (y >= 70 && y <= 99) y += 1900;
  if (y >= 0 && y <= 69) y += 2000;
  if (*day < 1 || *day > 31 || y < 1601 || (*time)[0] > 23 || (*time)[1] > 59 || (*time)[2] > 59)
    return std::nullopt;
  const long long days =
      days_from_civil(y, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  const long long seconds = days * 86400 + (*time)[0] * 3600 + (*time)[1] * 60 + (*time)[2];
  return cookie_jar::clock::time_point(std::chrono::seconds(seconds));
}

bool secure_channel(const url& u) {
  return u.is_https() || u.is_loopback();
}

}  // namespace

void cookie_jar::store(const url& from, const header_list& response_headers,
                       clock::time_point now) {
  for (const auto& [name, value] : response_headers) {
    if (iequals(name, "Set-Cookie")) store_one(from, value, now);
  }
}

bool cookie_jar::store_one(const url& from, std::string_view set_cookie, clock::time_point now) {
  if (set_cookie.size() > max_cookie_bytes) return false;
  for (char c : set_cookie) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  const auto first_semicolon = set_cookie.find(';');
  const std::string_view pair = set_cookie.substr(0, first_semicolon);
  const auto equals = pair.find('=');
  if (equals == std::string_view::npos) return false;
  cookie c;
  c.name = std::string(trim(pair.substr(0, equals)));
  c.value = std::string(trim(pair.substr(equals + 1)));
  if (c.name.empty()) return false;

  std::optional<clock::time_point> expires_attr;
  std::optional<clock::time_point> max_age_attr;
  std::optional<std::string> domain_attr;
  std::optional<std::string> path_attr;
  std::string_view attributes = first_semicolon == std::string_view::npos
                                    ? std::string_view{}
                                    : set_cookie.substr(first_semicolon + 1);
  while (!attributes.empty()) {
    const auto next = attributes.find(';');
    const std::string_view av = attributes.substr(0, next);
    attributes = next == std::string_view::npos ? std::string_view{} : attributes.substr(next + 1);
    const auto eq = av.find('=');
    const std::string_view key = trim(av.substr(0, eq));
    const std::string_view val =
        eq == std::string_view::npos ? std::string_view{} : trim(av.substr(eq + 1));
    if (iequals(key, "expires")) {
      if (auto when = parse_cookie_date(val)) expires_attr = when;
    } else if (iequals(key, "max-age")) {
      if (val.empty()) continue;
      const bool negative = val.front() == '-';
      const std::string_view digits = negative ? val.substr(1) : val;
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char d) {
            return std::isdigit(static_cast<unsigned char>(d));
          })) {
        continue;
      }
      long long seconds = 0;
      for (char d : digits) {
        seconds = seconds * 10 + (d - '0');
        if (seconds > 400LL * 24 * 3600) {
          seconds = 400LL * 24 * 3600;  // RFC 6265bis caps lifetimes at 400 days
          break;
        }
      }
      max_age_attr = (negative || seconds == 0) ? clock::time_point::min()
                                                : now + std::chrono::seconds(seconds);
    } else if (iequals(key, "domain")) {
      std::string_view d = val;
      if (!d.empty() && d.front() == '.') d.remove_prefix(1);
      if (!d.empty()) domain_attr = to_lower(d);
    } else if (iequals(key, "path")) {
      path_attr =
          (val.empty() || val.front() != '/') ? std::optional<std::string>() : std::string(val);
    } else if (iequals(key, "secure")) {
      c.secure = true;
    }
    // HttpOnly has no meaning for a non-browser client; SameSite and unknown attributes are
    // ignored.
  }

  if (max_age_attr) {
    c.persistent = true;
    c.expires = *max_age_attr;
  } else if (expires_attr) {
    c.persistent = true;
    c.expires = *expires_attr;
  }

  const std::string host = to_lower(from.host);
  if (domain_attr) {
    if (!domain_match(host, *domain_attr)) return false;
    c.host_only = false;
    c.domain = *domain_attr;
  } else {
    c.host_only = true;
    c.domain = host;
  }
  c.path = path_attr ? *path_attr : default_path(from);

  const auto same = std::find_if(cookies_.begin(), cookies_.end(), [&](const cookie& old) {
    return old.name == c.name && old.domain == c.domain && old.path == c.path;
  });
  if (c.persistent && c.expires <= now) {
    if (same != cookies_.end()) cookies_.erase(same);
    return true;
  }
  if (same != cookies_.end()) {
    *same = std::move(c);  // keeps the old cookie's place, i.e. its creation order
    return true;
  }
  if (cookies_.size() >= max_cookies) {
    cookies_.erase(
        std::remove_if(cookies_.begin(), cookies_.end(),
                       [&](const cookie& old) { return old.persistent && old.expires <= now; }),
        cookies_.end());
    if (cookies_.size() >= max_cookies) cookies_.erase(cookies_.begin());
  }
  cookies_.push_back(std::move(c));
  return true;
}

std::string cookie_jar::header_for(const url& to, clock::time_point now) const {
  const std::string host = to_lower(to.host);
  const std::string_view path = request_path(to);
  const std::string_view effective_path = path.empty() ? std::string_view("/") : path;
  std::vector<const cookie*> matches;
  for (const auto& c : cookies_) {
    if (c.persistent && c.expires <= now) continue;
    if (c.host_only ? host != c.domain : !domain_match(host, c.domain)) continue;
    if (!path_match(effective_path, c.path)) continue;
    if (c.secure && !secure_channel(to)) continue;
    matches.push_back(&c);
  }
  std::stable_sort(matches.begin(), matches.end(), [](const cookie* a, const cookie* b) {
    return a->path.size() > b->path.size();
  });
  std::string out;
  for (const cookie* c : matches) {
    if (!out.empty()) out += "; ";
    out += c->name;
    out += '=';
    out += c->value;
  }
  return out;
}

}  // namespace sfstream::transport
