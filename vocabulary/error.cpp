#include "sfstream/error.hpp"

namespace sfstream {
namespace {

class sfstream_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sfstream"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_config: return "The configuration is missing a value or has a malformed one.";
      case errc::invalid_url: return "The URL could not be parsed.";
      case errc::insecure_url: return "Plain http:// is allowed only to loopback hosts; use https://.";
      case errc::invalid_channel: return "The channel name is not a valid Salesforce streaming channel.";
      case errc::invalid_replay_id: return "The replay id must be -1, -2 or a non-negative 64-bit integer.";
      case errc::unsupported_api_version: return "The API version cannot be used for this call.";
      case errc::auth_invalid_login: return "Login failed: invalid username, password or security token, or the user is locked out.";
      case errc::auth_must_use_security_token: return "Login failed: this login needs the security token appended to the password.";
      case errc::auth_invalid_session: return "The session id or access token is not valid.";
      case errc::auth_api_disabled: return "The API is not enabled for this organization or user.";
      case errc::auth_unsupported_api_version: return "The login server does not support this API version.";
      case errc::auth_login_unavailable: return "SOAP login() is not available at this API version or in this org; use OAuth 2.0.";
      case errc::auth_password_expired: return "The password has expired; the session can only be used to set a new password.";
      case errc::auth_fault: return "The login server returned a fault.";
      case errc::auth_oauth_error: return "The OAuth token endpoint refused the request.";
      case errc::auth_bad_response: return "The login or token reply could not be understood.";
      case errc::auth_rejected: return "The streaming endpoint rejected the credentials again after a fresh login.";
      case errc::auth_no_credentials: return "No credentials are configured.";
      case errc::protocol_error: return "The server's reply breaks the Bayeux protocol or is malformed.";
      case errc::handshake_denied: return "The server denied the Bayeux handshake.";
      case errc::subscription_rejected: return "The server rejected the subscription.";
      case errc::reconnect_none: return "The server advised not to reconnect.";
      case errc::limit_exceeded: return "A Salesforce limit was exceeded.";
      case errc::unknown_client: return "The server no longer knows this client.";
      case errc::connection_failed: return "Could not connect to the server.";
      case errc::tls_error: return "The TLS handshake or certificate verification failed.";
      case errc::timeout: return "The exchange did not complete before its deadline.";
      case errc::body_too_large: return "The response body exceeds the configured size limit.";
      case errc::http_status: return "The server answered with an unexpected HTTP status.";
      case errc::proxy_error: return "The HTTP proxy refused or broke the tunnel.";
      case errc::connection_closed: return "The connection closed before the exchange completed.";
      case errc::retries_exhausted: return "The configured number of retries ran out.";
      case errc::replay_gap: return "A stored replay id could not be honoured and the replay policy is 'fail'.";
      case errc::replay_store_locked: return "The replay store is locked by another process.";
      case errc::replay_store_io: return "The replay store could not be read or written.";
      case errc::replay_store_corrupt: return "The replay store's contents could not be parsed.";
      case errc::lease_lost:
        return "This replica no longer holds the connection's lease: another replica owns it.";
      case errc::cancelled: return "The operation was cancelled.";
      case errc::queue_full: return "The event queue is full.";
      case errc::handler_failed: return "An event handler failed; its event was not committed.";
      case errc::output_failed: return "Writing the output failed; nothing after the failure was committed.";
    }
    return "Unknown sfstream error.";
  }
};

void append_part(std::string& out, const std::string& part) {
  if (part.empty()) return;
  if (!out.empty()) out += ": ";
  out += part;
}

}  // namespace

const std::error_category& category() noexcept {
  static const sfstream_category instance;
  return instance;
}

std::string diagnostics::to_string() const {
  std::string out;
  append_part(out, context);
  // Salesforce texts often start with their own code ("INVALID_LOGIN: Invalid username…",
  // "400::The channel…"): the code is said once.
  const bool text_has_code =
      !server_code.empty() && server_text.compare(0, server_code.size(), server_code) == 0;
  if (!text_has_code) append_part(out, server_code);
  append_part(out, server_text);
  return out;
}

std::string error_info::to_string() const {
  std::string out = code ? code.message() : std::string("success");
  const std::string detail = diag.to_string();
  if (!detail.empty()) {
    out += " (";
    out += detail;
    out += ")";
  }
  return out;
}

namespace {

class http_status_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "http"; }
  std::string message(int value) const override { return "HTTP status " + std::to_string(value); }
};

}  // namespace

const std::error_category& http_category() noexcept {
  static const http_status_category instance;
  return instance;
}

bool is_certificate_error(const error_info& error) noexcept {
  if (error.code != errc::tls_error) return false;
  // OpenSSL reports verification failures as SSL_R_CERTIFICATE_VERIFY_FAILED (134) in the
  // "ssl" library; the transport keeps that code as the cause. A text match covers causes
  // that were lost on the way.
  if (error.cause && error.cause.category().name() == std::string_view("asio.ssl") &&
      (error.cause.value() & 0xfff) == 134) {
    return true;
  }
  const auto& text = error.diag.server_text;
  return text.find("certificate verify failed") != std::string::npos ||
         text.find("verify failed") != std::string::npos;
}

bool is_retryable(const error_info& error) noexcept {
  if (!error.code) return false;
  if (error.code.category() != category()) return true;  // a system error: network weather
  switch (static_cast<errc>(error.code.value())) {
    case errc::http_status:
      if (error.cause && error.cause.category() == http_category()) {
        const int status = error.cause.value();
        return status == 408 || status == 429 || status >= 500;
      }
      return true;
    case errc::connection_failed:
    case errc::timeout:
    case errc::body_too_large:
    case errc::proxy_error:
    case errc::connection_closed:
    case errc::protocol_error:
    case errc::limit_exceeded:
    case errc::unknown_client:
    case errc::queue_full:
      return true;
    case errc::tls_error:
      return !is_certificate_error(error);
    default:
      return false;
  }
}

error::error(error_info info) : std::system_error(info.code, info.diag.to_string()), info_(std::move(info)) {}

}  // namespace sfstream
