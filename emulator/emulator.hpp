// The local Salesforce org: SOAP login, OAuth token endpoint, REST (emulator/data), CometD
// streaming and emulator-only control endpoints, on one loopback HTTP(S) server. Written from
// Salesforce's documented and captured behaviour, not from the client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "emulator/clock.hpp"
#include "emulator/cometd/faults.hpp"
#include "emulator/data/rest_api.hpp"
#include "emulator/event_bus.hpp"

namespace sfstream::emulator {

namespace net {
class exchange;
}
namespace cometd {
class cometd_server;
}

/// A user who can log in (SOAP password + token, OAuth password grant, JWT subject).
struct emulator_user {
  std::string username;
  std::string password;
  std::string security_token;
  std::string user_id;  ///< 18-char User Id (key prefix 005).
  /// When false, a SOAP login with the password alone (no token) is answered with
  /// LOGIN_MUST_USE_SECURITY_TOKEN, as for a caller outside the org's trusted IP ranges.
  /// When true, the password alone is accepted too. Default false: the token is required.
  bool trusted_ip = false;
};

/// A connected app for the OAuth token endpoint.
struct oauth_client {
  std::string client_id;
  std::string client_secret;
  /// PEM public key (or certificate) that verifies JWT bearer assertions (RS256); empty
  /// disables the jwt-bearer grant for this client.
  std::string jwt_public_key_pem;
};

/// Everything configurable about the emulated org. Defaults give a ready demo org.
struct emulator_options {
  std::string address = "127.0.0.1";  ///< Loopback only.
  std::uint16_t port = 0;             ///< 0 picks a free port.
  bool tls = true;                    ///< HTTPS with a CA and certificate made at start.
  std::vector<emulator_user> users = {
      {"demo@sfstream.local", "demo-pass", "DEMOTOKEN0000000000000", "005DM0000000001AAA", false}};
  std::string org_id = "00DDM0000000001AAA";  ///< 18-char org Id; the 15-char form prefixes session ids.
  std::vector<oauth_client> oauth_clients = {{"sfstream-demo-client", "sfstream-demo-secret", ""}};
  std::chrono::milliseconds long_poll_timeout{110'000};  ///< Hold time of a /meta/connect (§5).
  std::chrono::milliseconds client_expiry{40'000};       ///< Forget a client this long after a reply (§5).
  std::size_t concurrent_client_limit = 20;               ///< Developer Edition value (§5).
  std::uint64_t daily_event_limit = 10'000;               ///< Deliveries per rolling 24 h; 0 = unlimited.
  std::chrono::seconds session_lifetime{7'200};           ///< sessionSecondsValid; inactivity expiry.
  data::data_options data;  ///< Schema, CDC entities, platform events: passed to data::rest_api.
  /// Directory where the CA certificate (PEM) is written when tls is on; empty = a fresh
  /// directory under the system temporary directory.
  std::string state_dir;
};

/// How a CometD request is spoiled by the fault-injection control.
enum class cometd_fault {
  http_503,  ///< HTTP 503 with a short text body.
  not_json,  ///< HTTP 200 with a body that is not JSON.
};

/// The emulated org. Construct it on an executor (a single-threaded io_context); it serves at
/// once. All member functions must be called on that executor (e.g. via asio::post) unless the
/// io_context is not running.
class org_emulator {
 public:
  /// Starts listening (throws sfstream::error if it cannot bind or write the CA file).
  org_emulator(boost::asio::any_io_executor executor, emulator_options options);
  ~org_emulator();
  org_emulator(const org_emulator&) = delete;
  org_emulator& operator=(const org_emulator&) = delete;

  /// Stops the server: answers held connects are dropped, listening ends. Idempotent.
  void stop();

  /// "https://127.0.0.1:PORT" (or http://).
  std::string base_url() const;
  /// Base URL + "/services/Soap/u/64.0" style login endpoint root: base_url() (the login host).
  std::string login_url() const;
  /// Path of the PEM CA certificate written at start ("" when tls is off).
  std::string ca_file() const;
  /// One JSON line: base_url, login_url, cometd path, ca_file, username, password,
  /// security_token, client_id, client_secret (emulator test credentials: printing them is
  /// intended).
  std::string startup_json() const;
  const emulator_options& options() const noexcept;

  emulator::clock& clock() noexcept;
  emulator::event_bus& events() noexcept;
  data::rest_api& rest() noexcept;

  /// A valid access token for `username` (as if it had logged in); "" for an unknown user.
  std::string issue_session(const std::string& username);

  // Controls: the same operations as the /_emulator/ endpoints (see emulator/README.md).

  /// Moves the emulator clock forward (retention and session expiry use it).
  void advance_clock(std::chrono::milliseconds by);
  /// Invalidates every session id and access token (refresh tokens stay valid).
  void expire_all_sessions();
  /// Forgets every Bayeux client: their next message gets 403::Unknown client.
  void forget_all_clients();
  /// Changes the sfdc-stream affinity cookie value set on later handshakes and Unknown-client replies.
  void rotate_affinity_cookie();
  /// The next `count` requests (any path) get their head and part of their body, then the
  /// connection is closed.
  void drop_next_connections(std::size_t count);
  /// The next `count` CometD requests are answered with `fault` instead of being processed.
  void fail_next_cometd_requests(std::size_t count, cometd_fault fault);
  /// Every reply is delayed by `delay` (0 turns it off).
  void set_reply_delay(std::chrono::milliseconds delay);
  /// Sends an unsolicited /meta/disconnect to every client (inside its held or next connect
  /// reply) and forgets the client.
  void disconnect_all_clients();
  /// The next `count` handshakes/connects/subscribes are refused with failureReason
  /// "503::Server is too busy.  Please try your request again later." and advice none.
  void make_too_busy(std::size_t count);
  /// The next `count` Bayeux messages that `fault` concerns get that Salesforce failure.
  void inject_bayeux_fault(cometd::message_fault fault, std::size_t count);
  /// Number of Bayeux clients currently known.
  std::size_t client_count() const;
  /// The CometD endpoint, for the controls without a method here (reply faults, raw events).
  cometd::cometd_server& cometd() noexcept;

 private:
  void route(std::shared_ptr<net::exchange> exchange);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sfstream::emulator
