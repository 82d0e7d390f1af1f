#include "postgresql/database.hpp"

#include <poll.h>

#include <charconv>
#include <cstdlib>

#include <libpq-fe.h>

namespace sfstream::postgresql {

namespace {

error_info io_error(std::string context, std::string text, std::string code = {}) {
  error_info e;
  e.code = make_error_code(errc::replay_store_io);
  e.diag.context = std::move(context);
  e.diag.server_code = std::move(code);
  e.diag.server_text = std::move(text);
  return e;
}

/// libpq's messages end with a newline and may span lines: one line, trimmed.
std::string one_line(const char* message) {
  std::string s = message ? message : "";
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

/// True when the server answered a connection attempt and refused it for a reason no retry
/// fixes: the login (password, role, pg_hba.conf) or a database that does not exist. A server
/// starting up, shutting down or out of connection slots is worth waiting for.
bool refused_for_good(std::string_view message) {
  const auto has = [&](std::string_view s) { return message.find(s) != std::string_view::npos; };
  return has("password authentication failed") || has("authentication failed for user") ||
         has("no pg_hba.conf entry") || has("password is required") ||
         (has("FATAL:") && has("\" does not exist"));
}

}  // namespace

result::result(pg_result* r) : r_(r, [](pg_result* p) { PQclear(p); }) {}

int result::rows() const noexcept { return r_ ? PQntuples(r_.get()) : 0; }

bool result::is_null(int row, int column) const noexcept {
  return !r_ || PQgetisnull(r_.get(), row, column) != 0;
}

std::string_view result::text(int row, int column) const noexcept {
  if (!r_) return {};
  return {PQgetvalue(r_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(r_.get(), row, column))};
}

std::int64_t result::integer(int row, int column) const noexcept {
  const std::string_view t = text(row, column);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::int64_t result::affected() const noexcept {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::unique_ptr<session> session::open(const connect_options& options, error_info& error) {
  const std::string timeout = std::to_string(options.connect_timeout.count());
  std::vector<const char*> keys{"dbname", "connect_timeout", "application_name",
                                // Dead peers are noticed by the kernel, not by a hung read.
                                "keepalives", "keepalives_idle", "keepalives_interval",
                                "keepalives_count"};
  std::vector<const char*> values{options.conninfo.c_str(), timeout.c_str(),
                                  options.application_name.c_str(), "1", "10", "5", "3"};
  if (!options.password.empty()) {
    keys.push_back("password");
    values.push_back(options.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname: `dbname` holds the whole connection string; the keys after it override.
  std::unique_ptr<session> s(new session());
  s->conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
  if (!s->conn_) {
    error = io_error("connecting to PostgreSQL", "out of memory");
    return nullptr;
  }
  const char* host = PQhost(s->conn_);
  const char* port = PQport(s->conn_);
  const char* db = PQdb(s->conn_);
  s->where_ = std::string(host ? host : "?") + ":" + (port ? port : "?") + "/" + (db ? db : "?");
  if (PQstatus(s->conn_) != CONNECTION_OK) {
    std::string message = one_line(PQerrorMessage(s->conn_));
    if (refused_for_good(message)) {
      error.code = make_error_code(errc::invalid_config);
      error.diag.context = "connecting to PostgreSQL at " + s->where_ +
                           " (no retry helps: correct the user, password or database of the "
                           "connection string and password setting)";
      error.diag.server_text = std::move(message);
      error.cause = {};
      return nullptr;
    }
    error = io_error("connecting to PostgreSQL at " + s->where_, std::move(message));
    return nullptr;
  }
  // The server's notices ("already exists, skipping") are not ours to print.
  PQsetNoticeProcessor(s->conn_, [](void*, const char*) {}, nullptr);
  for (const auto& [name, value] :
       {std::pair{"statement_timeout", options.statement_timeout},
        std::pair{"idle_in_transaction_session_timeout", options.idle_in_transaction_timeout}}) {
    if (value.count() <= 0) continue;
    if (auto e = s->exec("SET " + std::string(name) + " = " + std::to_string(value.count()))) {
      error = e;
      return nullptr;
    }
  }
  error = {};
  return s;
}

session::~session() {
  if (conn_) PQfinish(conn_);
}

bool session::healthy() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

error_info session::failure(std::string_view what, pg_result* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = state ? state : "";
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string text = primary ? one_line(primary) : one_line(PQerrorMessage(conn_));
  if (text.empty()) text = "the server connection broke";
  return io_error(std::string(what) + " on PostgreSQL at " + where_, std::move(text), sqlstate_);
}

error_info session::exec(std::string_view sql, std::initializer_list<param> params, result* out) {
  return exec(sql, std::vector<param>(params), out);
}

error_info session::exec(std::string_view sql, const std::vector<param>& params, result* out) {
  sqlstate_.clear();
  const std::string text(sql);
  // Parameters as NUL-terminated text (libpq's text format).
  std::vector<std::string> owned;
  owned.reserve(params.size());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    if (p) {
      owned.emplace_back(*p);
      values.push_back(owned.back().c_str());
    } else {
      values.push_back(nullptr);
    }
  }
  // Without parameters the text may hold several statements (a migration step).
  pg_result* r = values.empty() ? PQexec(conn_, text.c_str())
                                : PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()),
                                               nullptr, values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    // The statement's first word names what failed ("INSERT", "UPDATE", ...), never its data.
    const std::string verb = text.substr(0, text.find_first_of(" \n"));
    error_info e = failure(verb, r);
    if (r) PQclear(r);
    return e;
  }
  if (out)
    *out = result(r);
  else
    PQclear(r);
  return {};
}

error_info session::transaction(const std::function<error_info()>& fn) {
  if (auto e = exec("BEGIN")) return e;
  if (auto e = fn()) {
    const std::string state = sqlstate_;
    if (healthy()) exec("ROLLBACK");
    sqlstate_ = state;
    return e;
  }
  return exec("COMMIT");
}

std::vector<std::string> session::notifications(std::chrono::milliseconds wait) {
  std::vector<std::string> out;
  const auto collect = [&] {
    PQconsumeInput(conn_);
    while (PGnotify* n = PQnotifies(conn_)) {
      out.emplace_back(n->extra ? n->extra : "");
      PQfreemem(n);
    }
  };
  collect();
  if (!out.empty() || wait.count() <= 0) return out;
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (p.fd >= 0 && ::poll(&p, 1, static_cast<int>(wait.count())) > 0) collect();
  return out;
}

std::string quote_identifier(std::string_view name) {
  std::string q = "\"";
  for (char c : name) {
    if (c == '"') q += '"';
    q += c;
  }
  q += '"';
  return q;
}

pool::pool(connect_options options, std::size_t size)
    : options_(std::move(options)), size_(size == 0 ? 1 : size) {}

pool::~pool() = default;

std::unique_ptr<session> pool::acquire(error_info& error) {
  {
    std::unique_lock lock{mutex_};
    free_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
    ++open_;
  }
  auto s = session::open(options_, error);
  if (!s) {
    std::lock_guard lock{mutex_};
    --open_;
    free_.notify_one();
  }
  return s;
}

void pool::release(std::unique_ptr<session> s) {
  std::lock_guard lock{mutex_};
  if (s && s->healthy()) {
    idle_.push_back(std::move(s));
  } else {
    --open_;
  }
  free_.notify_one();
}

error_info pool::run(const std::function<error_info(session&)>& fn) {
  error_info last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto s = acquire(last);
    if (!s) return last;
    last = fn(*s);
    const bool broken = !s->healthy();
    const bool again = broken || s->sqlstate() == sqlstate_serialization_failure ||
                       s->sqlstate() == sqlstate_deadlock;
    release(std::move(s));
    if (!last || !again) return last;
  }
  return last;
}

}  // namespace sfstream::postgresql
