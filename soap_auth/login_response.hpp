// SOAP login() response and fault parser. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sfstream/error.hpp"

namespace sfstream::soap_auth {

/// What a successful login() returns (LoginResult).
struct login_result {
  std::string session_id;                  ///< A secret: never log it.
  std::string server_url;                  ///< https://host/services/Soap/u/<ver>/<orgId>.
  std::string instance_url;                ///< scheme://host[:port] of server_url.
  std::string user_id;                     ///< result/userId (else userInfo/userId).
  std::string organization_id;             ///< userInfo/organizationId; empty if absent.
  std::int64_t session_seconds_valid = 0;  ///< userInfo/sessionSecondsValid; 0 if absent.
  bool password_expired = false;
  bool sandbox = false;
  std::string metadata_server_url;  ///< Empty if absent or nil.
};

/// Parses a login() reply of any namespace prefix style and line layout.
///  * loginResponse: fills `result`; passwordExpired=true still fills it and returns
///    errc::auth_password_expired (the session can only set a new password).
///  * soap Fault: the code is detail/*/exceptionCode, else faultcode without its prefix;
///    INVALID_LOGIN, LOGIN_MUST_USE_SECURITY_TOKEN, INVALID_SESSION_ID, API_DISABLED_FOR_ORG,
///    UNSUPPORTED_API_VERSION and INVALID_OPERATION have their own errc, any other code is
///    errc::auth_fault. diagnostics: server_code = the code, server_text = faultstring.
///  * anything else (not XML, truncated, an HTML page, another document):
///    errc::auth_bad_response with a description of what arrived.
/// Never throws; the session id never appears in the returned diagnostics.
error_info parse_login_response(std::string_view body, unsigned http_status, login_result& result);

/// The errc a login fault code maps to (errc::auth_fault for unknown codes).
errc login_fault_errc(std::string_view code) noexcept;

}  // namespace sfstream::soap_auth
