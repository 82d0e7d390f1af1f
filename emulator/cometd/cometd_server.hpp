// The emulated Salesforce CometD endpoint /cometd/<version>[/<suffix>] over HTTP: the request
// checks Salesforce makes before reading a message (POST only, version, size), the request-level
// faults, the held connects' connections and every timer. The Bayeux rules themselves are
// cometd_session's; this layer drives it.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "emulator/clock.hpp"
#include "emulator/cometd/cometd_session.hpp"
#include "emulator/event_bus.hpp"
#include "emulator/faults.hpp"
#include "emulator/net/http_server.hpp"

namespace sfstream::emulator::cometd {

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
  /// The next `count` requests get `kind` (http_503 or not_json) instead of being processed.
  /// Throws std::invalid_argument for another kind.
  void fail_next_requests(std::size_t count, fault_kind kind);
  /// Sends /meta/disconnect to every client in its held (or next) connect reply, then forgets it.
  void disconnect_all_clients();
  /// The next `count` handshake/connect/subscribe messages get the 503 too-busy failure.
  void make_too_busy(std::size_t count);
  /// The next `count` messages that `kind` concerns get it (replaces an earlier count).
  void inject(fault_kind kind, std::size_t count);
  /// The next `count` /meta/connect replies that carry events get `f` (replaces an earlier
  /// arming). Their events count as sent: a client gets them back only by replay id.
  void spoil_next_event_replies(fault f, std::size_t count = 1);
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
  /// Handshakes that made a client, since the start.
  std::uint64_t handshake_count() const noexcept;
  /// Clients streaming: with a connect held now or one received within `within`.
  std::size_t active_clients(std::chrono::milliseconds within) const;
  /// Events delivered in the current rolling 24 h (the daily-limit counter).
  std::uint64_t deliveries_today() const;
  /// The daily event limit (0 = unlimited); `reset` forgets the deliveries counted so far.
  void set_daily_event_limit(std::uint64_t limit, bool reset);
  /// Drops every held connect and timer; later requests are still answered. Idempotent.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sfstream::emulator::cometd
