// JWT bearer assertions for the OAuth 2.0 JWT bearer flow: RS256 with OpenSSL 3 EVP.
// Time is an input (expires_at), so the result is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sfstream/error.hpp"

namespace sfstream::auth {

/// The claims Salesforce reads from a JWT bearer assertion.
struct jwt_claims {
  std::string issuer;   ///< iss: the connected app's client id.
  std::string subject;  ///< sub: the username.
  std::string
      audience;  ///< aud: https://login.salesforce.com, https://test.salesforce.com or My Domain.
  std::int64_t expires_at = 0;  ///< exp: seconds since the epoch (now + at most 3 minutes).
};

/// Base64url without padding (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);

/// Signs header {"alg":"RS256","typ":"JWT"} and `claims` with the RSA private key in
/// `private_key_pem` (PKCS#8 or PKCS#1, unencrypted) and writes "header.claims.signature".
/// A key that is missing, encrypted, malformed or not RSA gives errc::invalid_config; the key
/// never appears in the error.
error_info build_jwt_assertion(const jwt_claims& claims, std::string_view private_key_pem,
                               std::string& assertion);

}  // namespace sfstream::auth
