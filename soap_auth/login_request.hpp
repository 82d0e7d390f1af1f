// SOAP login() request: version rules and the envelope builder. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sfstream/error.hpp"

namespace sfstream::soap_auth {

/// Which WSDL's endpoint the login goes to: partner (/services/Soap/u/) or enterprise (/c/).
enum class wsdl { partner, enterprise };

/// Oldest and newest API versions that still have SOAP login().
inline constexpr int oldest_login_version = 31;
inline constexpr int newest_login_version = 64;
/// The default SOAP login version: the newest that has login().
inline constexpr std::string_view default_login_version = "64.0";

/// An HTTP request, ready for any transport.
struct login_request {
  std::string target;                                        ///< "/services/Soap/u/64.0".
  std::vector<std::pair<std::string, std::string>> headers;  ///< Content-Type and SOAPAction.
  std::string body;  ///< The envelope; holds the password: never log it.
};

/// Checks a SOAP login version ("64.0" or "64") and writes its canonical form ("64.0") to
/// `canonical`. Malformed: errc::invalid_config. Below 31.0: errc::unsupported_api_version.
/// 65.0 or later: errc::auth_login_unavailable, because login() is removed from API 65.0 on and
/// the way forward is OAuth 2.0.
error_info check_login_version(std::string_view version, std::string* canonical = nullptr);

/// Builds the login() envelope with tinyxml2, so every character of the username and password
/// is escaped. `password_with_token` is the password with the security token appended.
/// Fails (leaving `out` untouched) on a bad version, an empty username, or a control character
/// that XML cannot carry (errc::invalid_config; the offending value is never echoed).
error_info build_login_request(std::string_view username, std::string_view password_with_token,
                               std::string_view soap_version, wsdl kind, login_request& out);

}  // namespace sfstream::soap_auth
