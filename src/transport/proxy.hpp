// Proxy helpers: the proxy URL parser (which, unlike url::parse, accepts user:password@),
// NO_PROXY matching and the base64 encoder for Proxy-Authorization: Basic.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "src/transport/http_client.hpp"

namespace sfstream::transport {

/// Parses "http://[user[:password]@]host[:port][/]" (port defaults to 80; user and password are
/// percent-decoded). Only http:// proxies are supported: the tunnel itself carries the TLS.
/// Errors never repeat the password.
std::optional<proxy_config> parse_proxy_url(std::string_view text, error_info* why = nullptr);

/// True when `host` matches the NO_PROXY list `no_proxy`: comma-separated entries, each `*`
/// (everything), a domain suffix with or without a leading dot ("example.com" and
/// ".example.com" both match "example.com" and "a.example.com"), or an exact host/address.
/// A ":port" on an entry is ignored. Matching is case-insensitive.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

/// Standard base64 (RFC 4648, with padding).
std::string encode_base64(std::string_view bytes);

}  // namespace sfstream::transport
