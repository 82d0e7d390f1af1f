// The emulated Salesforce CometD endpoint /cometd/<version>[/<suffix>]:
// handshake, long-poll connect with held replies and batched events, subscribe with replay,
// unsubscribe, disconnect, client expiry, limits, cookies and fault injection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "emulator/clock.hpp"
#include "emulator/cometd/faults.hpp"
#include "emulator/event_bus.hpp"
#include "emulator/net/http_server.hpp"

namespace sfstream::emulator::cometd {

/// Limits and timings of the endpoint (defaults: Salesforce's, Developer Edition limits).
struct cometd_settings {
  std::chrono::milliseconds long_poll_timeout{110'000};
  std::chrono::milliseconds client_expiry{40'000};
  std::size_t concurrent_client_limit = 20;
  std::uint64_t daily_event_limit = 10'000;  ///< 0 = unlimited.
  std::size_t request_limit = 32'768;        ///< Larger POST bodies get HTTP 413.
  /// Events carried by one /meta/connect reply at most; the rest wait for the next connect,
  /// which is answered at once. Salesforce does not document its batch size.
  std::size_t max_events_per_connect = 1'000;
  /// Bytes of events one /meta/connect reply carries at most (it always carries at least one
  /// event): with 1 MB events a reply stays under the 10 MiB body limit of CometD clients.
  std::size_t max_event_bytes_per_connect = 4u << 20;
  bool secure_cookies = true;  ///< Mark the affinity cookie Secure (HTTPS).
};

/// Who a token belongs to: the user id (005…), or nullopt for an invalid/expired token.
using token_check = std::function<std::optional<std::string>(const std::string& token)>;

/// How the next CometD requests are spoiled by the fault-injection control.
enum class injected_fault { http_503, not_json };

/// True when `target` is /cometd or starts with /cometd/ (the paths this server answers).
bool is_cometd_path(const std::string& target);

/// The CometD server. Single-threaded: all calls on `executor`.
class cometd_server {
 public:
  /// Registers itself as the publish listener of `bus`. `check` resolves Authorization tokens.
  cometd_server(boost::asio::any_io_executor executor, cometd_settings settings, const clock& clk,
                event_bus& bus, token_check check);
  ~cometd_server();
  cometd_server(const cometd_server&) = delete;
  cometd_server& operator=(const cometd_server&) = delete;

  /// Answers (now or later, for a held connect) one request on a CometD path.
  void handle(std::shared_ptr<net::exchange> exchange);

  /// Forgets every client; a held connect is answered with 403::Unknown client.
  void forget_all_clients();
  /// New sfdc-stream cookie value; requests carrying the old value are re-pinned.
  void rotate_affinity_cookie();
  /// The next `count` requests get `fault` instead of being processed.
  void fail_next_requests(std::size_t count, injected_fault fault);
  /// Sends /meta/disconnect to every client in its held (or next) connect reply, then forgets it.
  void disconnect_all_clients();
  /// The next `count` handshake/connect/subscribe messages get the 503 too-busy failure.
  void make_too_busy(std::size_t count);
  /// The next `count` messages that `fault` concerns get it (replaces an earlier count).
  void inject(message_fault fault, std::size_t count);
  /// The next `count` /meta/connect replies that carry events get `fault` (replaces an earlier
  /// arming). Their events count as sent: a client gets them back only by replay id.
  void spoil_next_event_replies(reply_fault fault, std::size_t count = 1);
  /// Reply faults armed and not yet given.
  std::size_t pending_reply_faults() const noexcept;
  /// Events that were in spoiled replies since the server started.
  std::uint64_t spoiled_events() const noexcept;
  /// Publishes an event whose `data` object is the raw text `data` (not checked: it may be
  /// pretty-printed, carry invalid UTF-8 or any replayId), with each "{{replayId}}" in it
  /// replaced by the replay id the bus assigns. Declares the channel first when it does not
  /// exist (72 h retention for /event/ and /data/, else 24 h). Returns the assigned id.
  std::int64_t publish_raw(const std::string& channel, const std::string& data);
  /// Known clients.
  std::size_t client_count() const noexcept;
  /// Events delivered in the current rolling 24 h (the daily-limit counter).
  std::uint64_t deliveries_today() const;
  /// Drops every held connect and timer; later requests are still answered. Idempotent.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sfstream::emulator::cometd
