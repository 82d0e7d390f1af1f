#include <doctest/doctest.h>

#include <ostream>

#include "sfstream/error.hpp"

TEST_CASE("every sfstream error code has a sentence for a message") {
  using sfstream::errc;
  for (errc e : {errc::invalid_config, errc::auth_invalid_login, errc::protocol_error,
                 errc::connection_failed, errc::replay_gap, errc::cancelled}) {
    const std::error_code ec = e;
    CHECK(ec.category().name() == std::string("sfstream"));
    CHECK(ec.message().size() > 10);
    CHECK(ec.message().back() == '.');
    CHECK(ec.message() != "Unknown sfstream error.");
  }
}

TEST_CASE("error info joins the code message and the diagnostics on one line") {
  sfstream::error_info info{sfstream::errc::auth_invalid_login,
                            {"INVALID_LOGIN", "Invalid username.", "logging in"}};
  const std::string text = info.to_string();
  CHECK(text.find("Login failed") == 0);
  CHECK(text.find("(logging in: INVALID_LOGIN: Invalid username.)") != std::string::npos);
  CHECK(static_cast<bool>(info));
  sfstream::error thrown{info};
  CHECK(thrown.code() == sfstream::errc::auth_invalid_login);
  CHECK(thrown.diag().server_code == "INVALID_LOGIN");
}

TEST_CASE("is_retryable says whether trying again can help") {
  using sfstream::errc;
  using sfstream::error_info;
  auto of = [](errc code) { return error_info{make_error_code(code), {}}; };
  for (auto code : {errc::connection_failed, errc::timeout, errc::connection_closed,
                    errc::body_too_large, errc::proxy_error, errc::protocol_error,
                    errc::limit_exceeded, errc::unknown_client, errc::http_status}) {
    CAPTURE(static_cast<int>(code));
    CHECK(sfstream::is_retryable(of(code)));
  }
  for (auto code : {errc::invalid_config, errc::unsupported_api_version, errc::auth_invalid_login,
                    errc::auth_invalid_session, errc::auth_rejected, errc::replay_gap,
                    errc::replay_store_io, errc::replay_store_locked, errc::handler_failed,
                    errc::output_failed, errc::cancelled, errc::subscription_rejected}) {
    CAPTURE(static_cast<int>(code));
    CHECK_FALSE(sfstream::is_retryable(of(code)));
  }
  CHECK_FALSE(sfstream::is_retryable(error_info{}));
  // TLS: a handshake cut short is weather; a certificate that fails verification is not.
  error_info tls = of(errc::tls_error);
  tls.diag.server_text = "stream truncated";
  CHECK(sfstream::is_retryable(tls));
  CHECK_FALSE(sfstream::is_certificate_error(tls));
  tls.diag.server_text = "certificate verify failed: unable to get local issuer certificate";
  CHECK_FALSE(sfstream::is_retryable(tls));
  CHECK(sfstream::is_certificate_error(tls));
  // An HTTP status kept as the cause: only 408, 429 and 5xx are worth another try.
  for (unsigned status : {400u, 403u, 404u}) {
    error_info e = of(errc::http_status);
    e.cause = sfstream::make_http_status_code(status);
    CHECK_FALSE(sfstream::is_retryable(e));
  }
  for (unsigned status : {408u, 429u, 500u, 503u}) {
    error_info e = of(errc::http_status);
    e.cause = sfstream::make_http_status_code(status);
    CHECK(sfstream::is_retryable(e));
  }
  CHECK(sfstream::make_http_status_code(429).message() == "HTTP status 429");
}

TEST_CASE("a server text that starts with its code names the code once") {
  sfstream::error_info e{sfstream::make_error_code(sfstream::errc::auth_invalid_login),
                         {"INVALID_LOGIN", "INVALID_LOGIN: Invalid username, password, security token; or user locked out.", "SOAP login"}};
  CHECK(e.diag.to_string() ==
        "SOAP login: INVALID_LOGIN: Invalid username, password, security token; or user locked "
        "out.");
  CHECK(e.to_string().find("INVALID_LOGIN: INVALID_LOGIN") == std::string::npos);
  sfstream::diagnostics bayeux{"400", "400::The channel you requested to subscribe to does not exist", ""};
  CHECK(bayeux.to_string() == "400::The channel you requested to subscribe to does not exist");
  // A text that does not start with the code keeps both.
  sfstream::diagnostics other{"invalid_grant", "authentication failure", "OAuth"};
  CHECK(other.to_string() == "OAuth: invalid_grant: authentication failure");
}
