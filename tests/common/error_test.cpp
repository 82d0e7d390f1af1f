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
