// A real webhook receiver for the tests: an HTTP(S) server on 127.0.0.1 and a free port, on its
// own thread, that checks each request's signature the way docs/webhooks.md tells receivers
// to (its own HMAC code, not the sink's), records every request, and can be told to misbehave
// for the next N requests: answer a status (with Retry-After), be slow, close the connection
// without answering, or send half a reply and close.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "emulator/net/http_server.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::testing {

/// One request as the receiver saw it.
struct webhook_request {
  std::string target;
  transport::header_list headers;
  std::string body;
  std::string timestamp;        ///< X-Sfstream-Timestamp.
  std::string signature;        ///< X-Sfstream-Signature.
  std::string idempotency_key;  ///< Idempotency-Key.
  bool signature_valid = false;  ///< Verified against the body with the receiver's key.
  bool timestamp_fresh = false;  ///< Within 300 s of the receiver's clock.
  std::chrono::steady_clock::time_point arrived;
  /// What the receiver did: the status sent, 0 when it closed without a (whole) answer.
  unsigned answered = 0;

  /// The value of a header (case-insensitive), empty when absent.
  std::string header(std::string_view name) const;
};

/// What the receiver does with one request.
struct webhook_behaviour {
  enum class kind { answer, close, partial };
  kind what = kind::answer;
  unsigned status = 200;
  std::string body;                        ///< Response body.
  std::optional<std::string> retry_after;  ///< A Retry-After header.
  std::chrono::milliseconds delay{0};      ///< Wait this long before doing it.
};

class webhook_receiver {
 public:
  /// Plain HTTP, or HTTPS with `tls`. Verifies signatures with `signing_key`.
  explicit webhook_receiver(std::string signing_key,
                            std::optional<emulator::net::server_tls> tls = std::nullopt);
  ~webhook_receiver();
  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;

  /// "http://127.0.0.1:PORT" + path (https:// with TLS).
  std::string url(const std::string& path = "/hook") const;

  /// The next `n` requests get `behaviour` (queued after earlier plans); the rest 200 "ok".
  void plan(std::size_t n, webhook_behaviour behaviour);
  /// Shorthands.
  void fail_next(std::size_t n, unsigned status,
                 std::optional<std::string> retry_after = std::nullopt,
                 std::string body = "failed");
  void close_next(std::size_t n);
  void slow_next(std::size_t n, std::chrono::milliseconds delay, unsigned status = 200);

  /// Every request so far, in arrival order.
  std::vector<webhook_request> requests() const;
  /// Those answered 2xx.
  std::vector<webhook_request> accepted() const;
  /// Waits until at least `n` requests have been answered (or dropped) or `limit` passes.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(15)) const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The verification docs/webhooks.md describes, in C++: HMAC-SHA256 of timestamp + "." + body
/// under `key`, lower-case hex, compared in constant time with each "v1=" entry of `header`.
bool receiver_verifies(const std::string& key, const std::string& timestamp,
                       const std::string& body, const std::string& header);

}  // namespace sfstream::testing
