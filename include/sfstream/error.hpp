// sfstream error model: one std::error_code category, enumerators grouped by origin, messages
// written as sentences. Server text (a Bayeux `error`, a SOAP `faultstring`, an OAuth
// `error_description`, an HTTP status line) never goes into the code's message; it travels
// beside the code in `diagnostics`.
//
// Secrets (passwords, security tokens, session ids, access/refresh tokens, private keys) never
// appear in any message or diagnostics text produced by sfstream.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace sfstream {

/// Every error sfstream reports. Values are stable within a major version.
enum class errc {
  // configuration (1xx)
  invalid_config = 100,       ///< A configuration value is missing or malformed.
  invalid_url,                ///< A URL could not be parsed.
  insecure_url,               ///< Plain http:// to a host that is not loopback.
  invalid_channel,            ///< A channel name is not a valid Salesforce streaming channel.
  invalid_replay_id,          ///< A replay id is not -1, -2 or a non-negative 64-bit integer.
  unsupported_api_version,    ///< The configured API version cannot be used for this call.

  // authentication (2xx)
  auth_invalid_login = 200,           ///< INVALID_LOGIN: wrong username, password or token.
  auth_must_use_security_token,       ///< LOGIN_MUST_USE_SECURITY_TOKEN.
  auth_invalid_session,               ///< INVALID_SESSION_ID: the session is not valid.
  auth_api_disabled,                  ///< API_DISABLED_FOR_ORG.
  auth_unsupported_api_version,       ///< UNSUPPORTED_API_VERSION from the login server.
  auth_login_unavailable,             ///< INVALID_OPERATION: SOAP login() unavailable here.
  auth_password_expired,              ///< passwordExpired=true: the session is restricted.
  auth_fault,                         ///< Any other SOAP login fault.
  auth_oauth_error,                   ///< The OAuth token endpoint answered with an error.
  auth_bad_response,                  ///< The login/token reply is not what it should be.
  auth_rejected,                      ///< The streaming endpoint refused the credentials twice.
  auth_no_credentials,                ///< No credentials were configured.

  // Bayeux / streaming protocol (3xx)
  protocol_error = 300,       ///< A reply is malformed or breaks the Bayeux protocol.
  handshake_denied,           ///< The server denied the handshake for a non-auth reason.
  subscription_rejected,      ///< The server refused a subscription.
  reconnect_none,             ///< The server advised reconnect=none without an auth cause.
  limit_exceeded,             ///< An org or server limit was hit.
  unknown_client,             ///< The server no longer knows the client.

  // transport (4xx)
  connection_failed = 400,    ///< Resolve or connect failed.
  tls_error,                  ///< TLS handshake or certificate verification failed.
  timeout,                    ///< An exchange missed its deadline.
  body_too_large,             ///< A response body exceeded the configured limit.
  http_status,                ///< An HTTP status that the caller cannot use.
  proxy_error,                ///< The HTTP proxy refused or broke the CONNECT tunnel.
  connection_closed,          ///< The peer closed the connection mid-exchange.
  retries_exhausted,          ///< The user-bounded number of retries ran out.

  // replay (5xx)
  replay_gap = 500,           ///< A replay id could not be honoured and policy is `fail`.
  replay_store_locked,        ///< Another process holds the replay store.
  replay_store_io,            ///< The replay store could not be read or written.
  replay_store_corrupt,       ///< The replay store's contents could not be parsed.
  lease_lost,                 ///< Another replica owns the connection now (its lease moved on).

  // lifecycle (6xx)
  cancelled = 600,            ///< The operation was cancelled by the user.
  queue_full,                 ///< The event queue is full (back-pressure in effect).
  handler_failed,             ///< A user handler threw or reported failure; the event stays uncommitted.
  output_failed,              ///< Writing an event's output (stdout, a file) failed.
};

/// The sfstream error category ("sfstream").
const std::error_category& category() noexcept;

/// Makes an error_code in the sfstream category.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// Server-side detail that explains an error: kept apart from the code so that codes compare
/// and messages stay stable. Never holds a secret.
struct diagnostics {
  std::string server_code;  ///< e.g. "INVALID_LOGIN", "invalid_grant", "403".
  std::string server_text;  ///< e.g. a faultstring, error_description or Bayeux `error`.
  std::string context;      ///< What sfstream was doing, e.g. "subscribing to /topic/X".

  bool empty() const noexcept {
    return server_code.empty() && server_text.empty() && context.empty();
  }
  /// One line: "context: server_code: server_text" with the empty parts left out.
  std::string to_string() const;
};

/// An error code with its diagnostics: what sfstream's fallible calls hand back.
struct error_info {
  std::error_code code;
  diagnostics diag;
  /// The underlying system, TLS or resolver error when there is one (e.g. a certificate
  /// verification failure under errc::tls_error); empty otherwise.
  std::error_code cause{};

  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  /// The code's message followed by the diagnostics, one line.
  std::string to_string() const;
};

/// The category of HTTP status codes kept as an error_info's `cause` ("http"): value = status.
const std::error_category& http_category() noexcept;
/// An HTTP status as an error_code in http_category(), for error_info::cause.
inline std::error_code make_http_status_code(unsigned status) noexcept {
  return {static_cast<int>(status), http_category()};
}

/// True when trying again (after a backoff) can succeed: transport failures, timeouts,
/// server errors, limits and a forgotten client; an HTTP status kept as the cause is
/// retryable only when it is 408, 429 or 5xx. False for what no retry can fix: bad
/// configuration, refused credentials, an unsupported API version, a certificate that fails
/// verification, a replay gap under policy `fail`, a replay store that cannot be written, a
/// failed handler, cancellation. The session, the CDC handler and the CLI all decide with it.
bool is_retryable(const error_info& error) noexcept;

/// True when `error` is a TLS certificate verification failure (bad chain, unknown CA,
/// host name mismatch): a configuration problem, fixed by trusting the right CA.
bool is_certificate_error(const error_info& error) noexcept;

/// Exception thrown by sfstream's synchronous, throwing entry points.
class error : public std::system_error {
 public:
  explicit error(error_info info);
  const diagnostics& diag() const noexcept { return info_.diag; }
  const error_info& info() const noexcept { return info_; }

 private:
  error_info info_;
};

}  // namespace sfstream

template <>
struct std::is_error_code_enum<sfstream::errc> : std::true_type {};
