// Plain HTTP vocabulary shared by the client transport, the loopback test server and the
// emulator: a URL, a request and a response. No Asio, no Beast: safe to include anywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sfstream/error.hpp"

namespace sfstream::transport {

/// Header list in wire order; names compare case-insensitively through `find`.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// Returns the first header value named `name` (case-insensitive), or nullptr.
const std::string* find_header(const header_list& headers, std::string_view name) noexcept;

/// An absolute http(s) URL, split.
struct url {
  std::string scheme;  ///< "https" or "http" (lower case).
  std::string host;    ///< Host name or address, without brackets for IPv6.
  std::uint16_t port = 0;  ///< Explicit or the scheme's default (443 / 80).
  std::string target;  ///< Path and query, at least "/".

  /// Parses "scheme://host[:port][/path][?query]"; userinfo and fragments are refused.
  static std::optional<url> parse(std::string_view text, error_info* why = nullptr);
  /// "scheme://host[:port]" with the port only when it is not the scheme's default.
  std::string origin() const;
  /// origin() + target.
  std::string to_string() const;
  bool is_https() const noexcept { return scheme == "https"; }
  /// True for 127.0.0.0/8, ::1 and "localhost".
  bool is_loopback() const noexcept;
};

/// An HTTP request as the transport sends it. The transport adds Host, Content-Length,
/// User-Agent and Cookie; callers add everything else.
struct http_request {
  std::string method = "POST";
  std::string target = "/";  ///< Path and query.
  header_list headers;
  std::string body;
  /// When a kept-alive connection turns out closed before any byte of the reply arrived, send
  /// once more on a fresh connection. Off for requests whose effect on the server is not safe
  /// to repeat blindly (a /meta/connect: its reply's events leave the server's queue).
  bool resend_if_stale = true;
};

/// An HTTP response as received; the body is complete (bounded by the body limit).
struct http_response {
  unsigned status = 0;
  std::string reason;
  header_list headers;
  std::string body;
};

}  // namespace sfstream::transport
