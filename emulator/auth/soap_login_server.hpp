// SOAP login() on /services/Soap/u/<v> (partner) and /services/Soap/c/<v> (enterprise), as the
// Salesforce's login() has: versions 31.0–64.0, the real fault shapes, single-line
// success replies.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "emulator/auth/session_registry.hpp"
#include "emulator/emulator.hpp"
#include "src/transport/http_types.hpp"

namespace tinyxml2 {
class XMLElement;
}

namespace sfstream::emulator::auth {

/// Finds the user whose password (with the token appended, or alone when trusted) matches.
/// Sets `needs_token` when the password alone was given by an untrusted user.
const emulator_user* check_password(const std::vector<emulator_user>& users, const std::string& username,
                                    const std::string& password, bool* needs_token = nullptr);

/// The username a SOAP login() envelope names ("" when the body is not one); for routing a
/// login to the user's org before it is checked.
std::string soap_login_username(const std::string& body);

/// The SOAP login endpoint.
class soap_login_server {
 public:
  /// Keeps references to `options` and `sessions`.
  soap_login_server(const emulator_options& options, session_registry& sessions);

  /// Answers a request whose path starts with /services/Soap/. `base_url` is the emulator's
  /// origin (serverUrl is built from it).
  transport::http_response handle(const transport::http_request& request, const std::string& base_url);

 private:
  /// A call other than login(): logout() ends the SessionHeader's session; an invalid or
  /// expired session gets INVALID_SESSION_ID with Salesforce's text.
  transport::http_response handle_session_call(bool enterprise, const tinyxml2::XMLElement& envelope,
                                               std::string_view operation);
  const emulator_options& options_;
  session_registry& sessions_;
};

}  // namespace sfstream::emulator::auth
