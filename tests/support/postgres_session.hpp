// A session on a test's PostgreSQL server, for tests that link sfstream_postgresql: to set up
// tables and read what the code under test wrote.
#pragma once

#include <doctest/doctest.h>

#include <memory>

#include "postgresql/database.hpp"
#include "support/postgres_server.hpp"

namespace sfstream::testing {

/// The server's connection options (its password included).
inline postgresql::connect_options connect_options_of(const postgres_server& server) {
  postgresql::connect_options c;
  c.conninfo = server.conninfo();
  c.password = server.password();
  return c;
}

/// A session as the superuser; the test fails when it cannot be opened.
inline std::unique_ptr<postgresql::session> open_session(const postgres_server& server) {
  error_info e;
  auto s = postgresql::session::open(connect_options_of(server), e);
  REQUIRE_MESSAGE(s != nullptr, e.to_string());
  return s;
}

}  // namespace sfstream::testing
