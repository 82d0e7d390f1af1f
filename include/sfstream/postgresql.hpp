// Replay positions in PostgreSQL (library sfstream::postgresql, linking libpq): for services
// that already run a database, and for several processes sharing positions.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "sfstream/replay_store.hpp"

namespace sfstream {

struct postgresql_store_options {
  /// A libpq connection string (`postgresql://user@host:5432/db?sslmode=verify-full` or
  /// `host=... dbname=...`), without the password.
  std::string conninfo;
  /// The password, a secret (never logged); empty: libpq's PGPASSWORD or password file.
  std::string password;
  /// The database schema holding sfstream's tables; created when missing.
  std::string schema = "sfstream";
  /// Whose positions these are: rows are keyed (scope, replay key), so many connectors can
  /// share one database.
  std::string scope = "default";
  std::chrono::seconds connect_timeout{10};
};

/// A store in table `<schema>.positions`. Opening connects, creates or migrates the tables
/// (schema versioned; several processes may open at once) and throws sfstream::error
/// (errc::replay_store_io with the server's message when it cannot be reached,
/// errc::invalid_config when it refuses the login or has no such database, or for tables
/// newer than this build) when it cannot. Each save is one short transaction; a broken connection is
/// opened again on the next call, and a save whose commit was cut is retried once (saving the
/// same positions twice is harmless). Errors name the server, never the password.
std::shared_ptr<replay_store> open_postgresql_replay_store(const postgresql_store_options& options);

}  // namespace sfstream
