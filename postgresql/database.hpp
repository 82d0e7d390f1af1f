// A thin layer over libpq: sessions (one server connection each) that run parameterised
// statements and transactions, and a small pool of them shared by many callers. Every failure
// is an error_info naming the server (host, port, database: never a password) with the
// server's message and SQLSTATE. A session whose connection broke is thrown away and the next
// use opens a new one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sfstream/error.hpp"

struct pg_conn;
struct pg_result;

namespace sfstream::postgresql {

/// How to reach the server.
struct connect_options {
  /// A libpq connection string: a `postgresql://` URI or `key=value` pairs. It should not hold
  /// the password (give `password`, or let libpq read PGPASSWORD or its password file).
  std::string conninfo;
  /// A secret: never logged, never in an error.
  std::string password;
  std::chrono::seconds connect_timeout{10};
  /// Each statement's limit on the server (statement_timeout); 0: the server's default.
  std::chrono::milliseconds statement_timeout{15'000};
  /// A transaction left idle this long is ended by the server, its locks freed
  /// (idle_in_transaction_session_timeout): a client frozen inside one (SIGSTOP, a VM paused)
  /// must not hold a lease row another replica needs. 0: the server's default.
  std::chrono::milliseconds idle_in_transaction_timeout{0};
  std::string application_name = "sfstream";
};

/// One statement's rows, as text.
class result {
 public:
  result() = default;
  explicit result(pg_result* r);
  int rows() const noexcept;
  bool is_null(int row, int column) const noexcept;
  std::string_view text(int row, int column) const noexcept;
  std::int64_t integer(int row, int column) const noexcept;
  /// Rows an INSERT, UPDATE or DELETE touched.
  std::int64_t affected() const noexcept;

 private:
  std::shared_ptr<pg_result> r_;
};

/// A statement parameter: text, or SQL NULL.
using param = std::optional<std::string_view>;

/// SQLSTATEs a caller may act on.
inline constexpr std::string_view sqlstate_unique_violation = "23505";
inline constexpr std::string_view sqlstate_serialization_failure = "40001";
inline constexpr std::string_view sqlstate_deadlock = "40P01";

class session {
 public:
  /// Connects; errc::replay_store_io (with the server's message) when it cannot, or
  /// errc::invalid_config when the server refused the login or knows no such database (no
  /// retry helps).
  static std::unique_ptr<session> open(const connect_options& options, error_info& error);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Runs one statement with `params` ($1, $2, ...). On failure: errc::replay_store_io, the
  /// message naming the server, `sqlstate()` set.
  error_info exec(std::string_view sql, std::initializer_list<param> params = {},
                  result* out = nullptr);
  error_info exec(std::string_view sql, const std::vector<param>& params, result* out = nullptr);
  /// BEGIN, fn, COMMIT; ROLLBACK when fn returns an error (which is returned). A COMMIT whose
  /// outcome is unknown (the connection broke) is an error too: callers make their writes
  /// idempotent so that retrying is safe.
  error_info transaction(const std::function<error_info()>& fn);
  /// The SQLSTATE of the last failure ("" when none or no server answer).
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// False once the connection broke: the session must be discarded.
  bool healthy() const noexcept;
  /// "host:port/database", for messages.
  const std::string& where() const noexcept { return where_; }
  /// Waits up to `wait` for NOTIFY messages (after LISTEN); returns their payloads.
  std::vector<std::string> notifications(std::chrono::milliseconds wait);

 private:
  session() = default;
  error_info failure(std::string_view what, pg_result* r);

  pg_conn* conn_ = nullptr;
  std::string where_;
  std::string sqlstate_;
};

/// An identifier quoted for SQL: a"b → "a""b".
std::string quote_identifier(std::string_view name);

/// Up to `size` sessions shared by any number of threads; a caller waits for a free one.
class pool {
 public:
  pool(connect_options options, std::size_t size);
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// Runs fn on a session (opened when needed). A session left unhealthy is discarded. When
  /// fn fails with a broken connection or a serialization failure, it is run once more on a
  /// fresh session: fn must be safe to repeat (idempotent writes, in one transaction).
  error_info run(const std::function<error_info(session&)>& fn);
  const connect_options& options() const noexcept { return options_; }

 private:
  std::unique_ptr<session> acquire(error_info& error);
  void release(std::unique_ptr<session> s);

  connect_options options_;
  std::size_t size_;
  std::mutex mutex_;
  std::condition_variable_any free_;
  std::vector<std::unique_ptr<session>> idle_;
  std::size_t open_ = 0;
};

}  // namespace sfstream::postgresql
