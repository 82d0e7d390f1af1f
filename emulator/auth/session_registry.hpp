// The emulated org's sessions: session ids / access tokens and refresh tokens, each bound to a
// user, with inactivity expiry on the emulator clock, as Salesforce expires idle sessions.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/clock.hpp"

namespace sfstream::emulator::auth {

/// `length` random characters from `alphabet` (OpenSSL's generator).
std::string random_text(std::size_t length, std::string_view alphabet);

/// The Set-Cookie value of the BrowserId cookie Salesforce sets on every login reply.
std::string browser_id_cookie();

/// Sessions and refresh tokens. Single-threaded (the emulator executor).
class session_registry {
 public:
  /// `org_id15` prefixes session ids ("<15-char org id>!<opaque>"); `lifetime` is the
  /// inactivity timeout (Salesforce default 2 h), measured on `clk`.
  session_registry(const clock& clk, std::chrono::seconds lifetime, std::string org_id15);

  /// A new session id for `username`.
  std::string create_session(const std::string& username);
  /// A new refresh token for `username` (never expires; survives expire_all).
  std::string create_refresh_token(const std::string& username);
  /// The user of a live session, extending it (any use resets the inactivity timer);
  /// nullopt when unknown or expired.
  std::optional<std::string> use_session(const std::string& session_id);
  /// The user a refresh token belongs to.
  std::optional<std::string> refresh_token_user(const std::string& refresh_token) const;
  /// Ends every session (refresh tokens stay valid).
  void expire_all();
  /// Ends one session (SOAP logout()); false when it was not live.
  bool end_session(const std::string& session_id);
  std::chrono::seconds lifetime() const noexcept { return lifetime_; }

 private:
  struct session {
    std::string username;
    clock::time_point last_used;
  };
  const clock& clock_;
  std::chrono::seconds lifetime_;
  std::string org_id15_;
  std::map<std::string, session, std::less<>> sessions_;
  std::map<std::string, std::string, std::less<>> refresh_tokens_;
};

}  // namespace sfstream::emulator::auth
