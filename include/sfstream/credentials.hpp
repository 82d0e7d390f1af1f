// Credentials: where the streaming client gets its access token.
//
// A `credentials_provider` hands out an access token (an OAuth access token or a SOAP session
// id, both sent as `Authorization: Bearer <token>`) and the instance URL it belongs to. The
// client asks again with `force_refresh = true` after a 401 or a handshake denied for
// authentication. Factories below cover SOAP login, the OAuth 2.0 grants Salesforce supports
// for integrations, a fixed token, and a user callback.
//
// Secrets (passwords, security tokens, client secrets, session ids, access and refresh tokens,
// private keys) never appear in `describe()`, in log lines or in error diagnostics.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "sfstream/error.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"

namespace sfstream {

/// Production and Developer Edition login host; the default login URL.
inline constexpr std::string_view production_login_url = "https://login.salesforce.com";
/// Sandbox login host, used when `sandbox` is set and no login URL is given.
inline constexpr std::string_view sandbox_login_url = "https://test.salesforce.com";

/// A token the streaming endpoint accepts, with where it is valid.
struct access_token {
  std::string token;                  ///< The access token or SOAP session id: a secret.
  std::string instance_url;           ///< "https://host[:port]": where REST and CometD calls go.
  std::string user_id;                ///< 18-character user id; empty when the source gives none.
  std::string organization_id;        ///< 18-character org id; empty when the source gives none.
  std::string token_type = "Bearer";  ///< Authorization scheme to send the token with.
};

/// Supplies access tokens to the client. Implementations cache the token and hand out the
/// cached one until asked to refresh. Safe to call from any thread; concurrent requests share
/// one login. The handler always runs on the provider's executor, never inside `async_token`.
/// A login in flight when the client stops still finishes on that executor and may write to the
/// provider's logger, so the logger's sink must outlive the executor's threads.
class credentials_provider {
 public:
  /// Receives either an error (token empty) or a token.
  using token_handler = std::function<void(error_info, access_token)>;

  virtual ~credentials_provider() = default;

  /// Gets a token: the cached one, or a new one when there is none or `force_refresh` is set
  /// (the server refused the cached one). Transport failures (errc::connection_failed,
  /// timeout, tls_error, ...) are passed through unchanged so the caller may retry;
  /// authentication errors (errc::auth_*) are final for these credentials. `done` runs on the
  /// provider's executor (any of its threads): a caller with a strand dispatches onto it.
  virtual void async_token(bool force_refresh, token_handler done) = 0;

  /// One line naming the kind of credentials, user and login host: no secret, fit for logs.
  virtual std::string describe() const = 0;
};

/// SOAP partner login() with username, password and security token.
struct soap_login_options {
  /// Login host, e.g. "https://login.salesforce.com" or a My Domain URL. Empty: production,
  /// or https://test.salesforce.com when `sandbox` is set.
  std::string login_url;
  std::string username;
  std::string password;  ///< A secret.
  std::string
      security_token;  ///< A secret; appended to the password. Empty when the IP is trusted.
  /// SOAP API version of the login call, apart from the streaming API version: login() exists
  /// only in 31.0-64.0 (removed from 65.0), so the default is the last version that has it.
  std::string soap_version = "64.0";
  bool sandbox = false;          ///< Picks the sandbox login host when `login_url` is empty.
  bool enterprise_wsdl = false;  ///< Posts to /services/Soap/c/ instead of the partner /u/.
};

/// Where and as which connected app an OAuth 2.0 grant is asked for.
struct oauth_endpoint {
  /// Token endpoint host: "https://login.salesforce.com" (default), "https://test.salesforce.com"
  /// (`sandbox`), or a My Domain URL. The request goes to <login_url>/services/oauth2/token.
  std::string login_url;
  bool sandbox = false;       ///< Picks the sandbox login host when `login_url` is empty.
  std::string client_id;      ///< The connected app's consumer key.
  std::string client_secret;  ///< The consumer secret: a secret. Optional for some grants.
};

/// OAuth 2.0 username-password grant.
struct oauth_password_options {
  oauth_endpoint endpoint;
  std::string username;
  std::string password;        ///< A secret.
  std::string security_token;  ///< A secret; appended to the password.
};

/// OAuth 2.0 refresh-token grant: every fetch (the first and each forced one) refreshes.
struct oauth_refresh_token_options {
  oauth_endpoint endpoint;
  std::string refresh_token;  ///< A secret. Replaced when the server rotates it.
};

/// OAuth 2.0 client-credentials grant (needs a My Domain login URL on Salesforce).
struct oauth_client_credentials_options {
  oauth_endpoint endpoint;
};

/// OAuth 2.0 JWT bearer grant: an RS256-signed assertion made from a PEM private key.
struct oauth_jwt_options {
  oauth_endpoint endpoint;      ///< `client_secret` is not used.
  std::string username;         ///< The `sub` claim.
  std::string private_key_pem;  ///< RSA private key in PEM (PKCS#8 or PKCS#1): a secret.
  /// The `aud` claim. Empty: the login URL (production, sandbox or the My Domain URL given).
  std::string audience;
  /// How long the assertion is valid (`exp` = now + this). Salesforce allows at most 3 minutes.
  std::chrono::seconds assertion_lifetime{180};
};

/// Logs in with SOAP login() at `options.login_url`. A version outside 31.0-64.0 fails on the
/// first `async_token` without network I/O (65.0+: errc::auth_login_unavailable, pointing to
/// OAuth; below 31.0: errc::unsupported_api_version).
std::shared_ptr<credentials_provider> make_soap_login_provider(
    boost::asio::any_io_executor executor, soap_login_options options, network_options network = {},
    logger log = {});

/// OAuth 2.0 username-password flow.
std::shared_ptr<credentials_provider> make_oauth_password_provider(
    boost::asio::any_io_executor executor, oauth_password_options options,
    network_options network = {}, logger log = {});

/// OAuth 2.0 refresh-token flow; a rotated refresh token returned by the server is kept.
std::shared_ptr<credentials_provider> make_oauth_refresh_token_provider(
    boost::asio::any_io_executor executor, oauth_refresh_token_options options,
    network_options network = {}, logger log = {});

/// OAuth 2.0 client-credentials flow.
std::shared_ptr<credentials_provider> make_oauth_client_credentials_provider(
    boost::asio::any_io_executor executor, oauth_client_credentials_options options,
    network_options network = {}, logger log = {});

/// OAuth 2.0 JWT bearer flow; a fresh assertion is signed for every fetch. A key that cannot be
/// read fails the fetch with errc::invalid_config.
std::shared_ptr<credentials_provider> make_oauth_jwt_provider(boost::asio::any_io_executor executor,
                                                              oauth_jwt_options options,
                                                              network_options network = {},
                                                              logger log = {});

/// A fixed token (e.g. from `sf org display`) with its instance URL. It cannot be refreshed:
/// a forced refresh (the server refused the token) fails at once with
/// errc::auth_invalid_session and a message saying the token expired or was revoked.
std::shared_ptr<credentials_provider> make_static_token_provider(
    boost::asio::any_io_executor executor, access_token token);

/// The user's own source of tokens. `fetch(force_refresh, done)` must call `done` exactly once,
/// from any thread; the result is forwarded on `executor`. Like every provider it caches the
/// token: `fetch` is asked for the first token and for each forced refresh. `description` is
/// what `describe()` returns.
using token_callback =
    std::function<void(bool force_refresh, credentials_provider::token_handler done)>;
std::shared_ptr<credentials_provider> make_callback_provider(
    boost::asio::any_io_executor executor, token_callback fetch,
    std::string description = "user callback");

}  // namespace sfstream
