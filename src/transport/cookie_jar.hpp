// Cookies for one streaming session (RFC 6265 subset): every Set-Cookie is accepted, errors
// included, and sent back byte-exact by domain, path, expiry and Secure.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "src/transport/http_types.hpp"

namespace sfstream::transport {

/// RFC 6265 §5 storage model without the public suffix list: Domain/Path/Expires/Max-Age/
/// Secure honoured (Max-Age wins over Expires; an expiry in the past deletes), HttpOnly and
/// SameSite ignored (no scripts here), replace by (name, domain, path) keeping the creation
/// order. Secure cookies go to https:// and to loopback hosts (the plain-http emulator), as
/// browsers treat localhost. Bounded: values over 8 KiB are refused and at most 300 cookies are
/// kept (expired ones go first, then the oldest). Not thread-safe: use it from one executor.
class cookie_jar {
 public:
  using clock = std::chrono::system_clock;

  /// Stores every Set-Cookie header of a response received from `from`.
  void store(const url& from, const header_list& response_headers, clock::time_point now = clock::now());
  /// Stores one Set-Cookie value; malformed values are ignored (and reported false).
  bool store_one(const url& from, std::string_view set_cookie, clock::time_point now = clock::now());
  /// The Cookie header value for a request to `to` ("" when none applies): longer paths
  /// first, then older cookies first; values exactly as received.
  std::string header_for(const url& to, clock::time_point now = clock::now()) const;
  /// Forgets every cookie (a new session starts with a fresh jar).
  void clear() noexcept { cookies_.clear(); }
  std::size_t size() const noexcept { return cookies_.size(); }

 private:
  struct cookie {
    std::string name, value, domain, path;
    bool host_only = true;
    bool secure = false;
    bool persistent = false;
    clock::time_point expires{};
  };
  std::vector<cookie> cookies_;
};

}  // namespace sfstream::transport
