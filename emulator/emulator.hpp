// The local Salesforce org: SOAP login, OAuth token endpoint, REST (emulator/data), CometD
// streaming and emulator-only control endpoints, on one loopback HTTP(S) server. Written from
// Salesforce's documented and captured behaviour, not from the client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "emulator/clock.hpp"
#include "emulator/faults.hpp"
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

/// One more org served by the same emulator process: its own port (instance URL), org id, users,
/// sessions, records, channels, Bayeux clients and limits. Timings, TLS and the state directory
/// are the primary org's (emulator_options).
struct org_options {
  /// A label, unique among the orgs (e.g. "west"); startup_json and org_named() use it.
  std::string name;
  std::string org_id;  ///< 18-char org Id; must differ from the other orgs'.
  /// Its users. A username belongs to one org: logging in anywhere reaches this org.
  std::vector<emulator_user> users;
  /// Its connected apps; empty = the primary org's.
  std::vector<oauth_client> oauth_clients;
  std::size_t concurrent_client_limit = 20;
  std::uint64_t daily_event_limit = 10'000;  ///< 0 = unlimited.
  data::data_options data;                    ///< Its schema, CDC entities, platform events.
  std::uint16_t port = 0;                     ///< 0 picks a free port.

  /// An org named `name` with one user "demo@<name>.sfstream.local" / "demo-pass" / token
  /// "DEMOTOKEN0000000000000", and ids made from `number` (2…99): org "00DDM00000000NNAAA",
  /// user "005DM00000000NNAAA".
  static org_options demo(const std::string& name, int number);
  /// Reads the "orgs" array of the emulator config file: [{"name", "orgId", "users":[{"username",
  /// "password", "securityToken", "userId", "trustedIp"}], "dailyEventLimit",
  /// "concurrentClientLimit", "port", and the data keys of data_options::parse_json}]. No
  /// "orgs" key gives an empty list. Returns nullopt with the reason in `why` for malformed input.
  static std::optional<std::vector<org_options>> parse_json_list(const std::string& json,
                                                                 error_info* why = nullptr);
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
  /// Keep the org across restarts in `state_dir` (which must be set): its records, retained
  /// events with their replay ids, PushTopics, channels and clock offset, in
  /// `<state_dir>/org-<name>.json` (one file per org). Loaded at start (a file that is not a
  /// valid state is a start error, never a fresh org in its place), written when the org has
  /// been idle for half a second and at stop. `sfstream emulator --state-dir` turns it on.
  bool persist = false;
  /// The name of the org these options describe (the primary org) among several.
  std::string org_name = "default";
  /// More orgs served by the same process, each on a port of its own, all trusting the one CA
  /// certificate. Any org's login endpoints (SOAP login, OAuth token) accept every org's users
  /// and answer with the instance URL of the user's org, as login.salesforce.com does: a
  /// client logs in at login_url() and is sent to its org. E.g. two orgs:
  ///   emulator_options o;                                 // org "default", demo@sfstream.local
  ///   o.more_orgs.push_back(org_options::demo("west", 2)); // demo@west.sfstream.local
  ///   org_emulator emu(io.get_executor(), o);
  ///   emu.org_named("west")->rest().publish_platform_event(…);  // only west's clients see it
  std::vector<org_options> more_orgs;
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
  /// intended), and "orgs": for each org (this one first) its name, org_id, base_url,
  /// login_url and its first user's username, password and security_token.
  std::string startup_json() const;
  /// The orgs this emulator serves: 1 + options().more_orgs.size().
  std::size_t org_count() const noexcept;
  /// Org `index` (0 = this one, then more_orgs in order); each has this whole interface.
  org_emulator& org(std::size_t index);
  /// The org with this name, or nullptr.
  org_emulator* org_named(const std::string& name);
  /// This org's name (emulator_options::org_name or org_options::name).
  const std::string& org_name() const noexcept;
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
  /// The next `count` CometD requests are answered with `kind` (fault_kind::http_503 or
  /// fault_kind::not_json) instead of being processed; another kind throws
  /// std::invalid_argument.
  void fail_next_cometd_requests(std::size_t count, fault_kind kind);
  /// Every reply is delayed by `delay` (0 turns it off).
  void set_reply_delay(std::chrono::milliseconds delay);
  /// Sends an unsolicited /meta/disconnect to every client (inside its held or next connect
  /// reply) and forgets the client.
  void disconnect_all_clients();
  /// The next `count` handshakes/connects/subscribes are refused with failureReason
  /// "503::Server is too busy.  Please try your request again later." and advice none.
  void make_too_busy(std::size_t count);
  /// The next `count` Bayeux messages that `kind` concerns get that Salesforce failure (a kind
  /// that does not apply to messages throws std::invalid_argument).
  void inject_bayeux_fault(fault_kind kind, std::size_t count);
  /// The next `count` /meta/connect replies that carry events get `f` (a kind that does not
  /// apply to event replies throws std::invalid_argument). Their events count as sent: a client
  /// gets them back only by replay id, as on Salesforce.
  void spoil_next_event_replies(fault f, std::size_t count = 1);
  /// Event-reply faults armed and not yet given.
  std::size_t pending_reply_faults() const;
  /// Number of Bayeux clients currently known.
  std::size_t client_count() const;
  /// The CometD endpoint, for the controls without a method here (reply faults, raw events).
  cometd::cometd_server& cometd() noexcept;

 private:
  struct shared_orgs;
  org_emulator(boost::asio::any_io_executor executor, emulator_options options,
               std::shared_ptr<shared_orgs> shared);
  void route(std::shared_ptr<net::exchange> exchange);
  /// The org a login request is for: the org of the user it names, else this one.
  org_emulator& login_owner(const transport::http_request& request);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sfstream::emulator
