// The OAuth 2.0 token endpoint POST /services/oauth2/token: password, refresh_token,
// client_credentials and JWT bearer (RS256, verified with OpenSSL) grants, with Salesforce's
// JSON replies and error objects.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/auth/session_registry.hpp"
#include "emulator/emulator.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator::auth {

/// Decodes an application/x-www-form-urlencoded body ('+' is a space, %XX escapes); nullopt
/// on a malformed escape. Later duplicates of a key are ignored.
std::optional<std::map<std::string, std::string>> parse_form(std::string_view body);

/// The username a token request names before it is checked: the `username` of a password
/// grant, the unverified `sub` claim of a JWT bearer assertion; "" otherwise. For routing a
/// login to the user's org.
std::string oauth_login_username(const std::string& body);

/// The token endpoint.
class oauth_server {
 public:
  /// Keeps references to `options`, `clk` and `sessions`.
  oauth_server(const emulator_options& options, const clock& clk, session_registry& sessions);

  /// Answers POST /services/oauth2/token. `base_url` is the org's origin: instance_url and the
  /// identity URL. JWT assertions must name `audience` (the login URL the request came to;
  /// empty = base_url).
  transport::http_response handle(const transport::http_request& request, const std::string& base_url,
                                  const std::string& audience = {});

 private:
  const emulator_options& options_;
  const clock& clock_;
  session_registry& sessions_;
};

}  // namespace sfstream::emulator::auth
