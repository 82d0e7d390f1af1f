// The signature of a webhook request: HMAC-SHA256 over `timestamp + "." + body`, hex encoded,
// sent as `X-Sfstream-Signature: v1=<64 lower-case hex digits>` beside
// `X-Sfstream-Timestamp: <Unix seconds>`. Signing the timestamp with the body lets a receiver
// refuse a replayed request by its age; the "v1=" scheme prefix leaves room for a second
// algorithm (a receiver accepts any listed signature it can verify). docs/webhooks.md is the
// receiver's side.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sfstream::serve {

inline constexpr std::string_view signature_header = "X-Sfstream-Signature";
inline constexpr std::string_view timestamp_header = "X-Sfstream-Timestamp";
inline constexpr std::string_view idempotency_header = "Idempotency-Key";

/// Lower-case hex of HMAC-SHA256(key, timestamp + "." + body).
std::string sign_webhook(std::string_view key, std::int64_t timestamp, std::string_view body);

/// The signature header's value: "v1=" + sign_webhook(...).
std::string signature_header_value(std::string_view key, std::int64_t timestamp,
                                   std::string_view body);

/// True when `header` (a signature header's value: "v1=<hex>", possibly several
/// comma-separated) holds a v1 signature of `timestamp + "." + body` under `key`; compared in
/// constant time.
bool verify_webhook(std::string_view key, std::string_view timestamp, std::string_view body,
                    std::string_view header);

/// True when `a` and `b` are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace sfstream::serve
