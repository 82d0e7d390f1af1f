// OAuth 2.0 token endpoint replies (Salesforce /services/oauth2/token). Pure.
#pragma once

#include <string>
#include <string_view>

#include "sfstream/error.hpp"

namespace sfstream::auth {

/// A successful token reply.
struct oauth_token {
  std::string access_token;     ///< A secret.
  std::string instance_url;     ///< "https://host[:port]" (a trailing slash is removed).
  std::string id;               ///< Identity URL: https://login.salesforce.com/id/<orgId>/<userId>.
  std::string token_type;       ///< "Bearer" when the server gives none.
  std::string issued_at;        ///< Milliseconds since the epoch, as sent.
  std::string signature;        ///< Base64 HMAC of id + issued_at, as sent.
  std::string refresh_token;    ///< A secret; empty unless the grant returns one.
  std::string scope;            ///< Empty when absent.
  std::string organization_id;  ///< From the `id` URL; empty if it has no /id/<org>/<user>.
  std::string user_id;          ///< From the `id` URL.
};

/// Parses a token endpoint reply.
///  * JSON with access_token and instance_url: fills `token`, returns success (whatever the
///    HTTP status, since the body is authoritative).
///  * JSON {error, error_description}: errc::auth_oauth_error, diagnostics server_code = error
///    (e.g. "invalid_grant", "invalid_client"), server_text = error_description.
///  * anything else (non-JSON, truncated, HTML, JSON without the required members):
///    errc::auth_bad_response with a clear text.
/// Never throws; token values never appear in the returned diagnostics.
error_info parse_oauth_reply(std::string_view body, unsigned http_status, oauth_token& token);

/// Splits an identity URL ".../id/<orgId>/<userId>" into its ids; false if it has another shape.
bool parse_identity_url(std::string_view id_url, std::string& organization_id,
                        std::string& user_id);

}  // namespace sfstream::auth
