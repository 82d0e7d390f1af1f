#include "postgresql/schema.hpp"

#include <string>

namespace sfstream::postgresql {

namespace {

/// Version 1: every table. Later versions append their steps after it.
std::string version_1(const tables& t) {
  return "CREATE TABLE IF NOT EXISTS " + t.positions + " ("
         "connection text NOT NULL, replay_key text NOT NULL, "
         "replay_id bigint NOT NULL DEFAULT 0, event_time timestamptz, "
         "cursor text NOT NULL DEFAULT '', epoch bigint, "
         "updated_at timestamptz NOT NULL DEFAULT now(), "
         "PRIMARY KEY (connection, replay_key));"
         "CREATE TABLE IF NOT EXISTS " + t.leases + " ("
         "connection text PRIMARY KEY, owner text, epoch bigint NOT NULL DEFAULT 0, "
         "expires_at timestamptz, acquired_at timestamptz, renewed_at timestamptz);"
         "CREATE TABLE IF NOT EXISTS " + t.replicas + " ("
         "replica text PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now(), "
         "expires_at timestamptz NOT NULL);"
         "CREATE TABLE IF NOT EXISTS " + t.events + " ("
         "id bigserial UNIQUE, connection text NOT NULL, channel text NOT NULL, "
         "replay_id bigint NOT NULL, event jsonb NOT NULL, "
         "received_at timestamptz NOT NULL DEFAULT now(), "
         "PRIMARY KEY (connection, channel, replay_id));";
}

}  // namespace

tables::tables(std::string_view name)
    : schema_name(name),
      schema(quote_identifier(name)),
      version(schema + ".schema_version"),
      positions(schema + ".positions"),
      leases(schema + ".leases"),
      replicas(schema + ".replicas"),
      events(schema + ".events") {}

error_info migrate(session& s, const tables& t) {
  return s.transaction([&]() -> error_info {
    // One migrator at a time across replicas (released at the end of the transaction). The
    // key is the schema's name, so two schemas in one database migrate independently.
    if (auto e = s.exec("SELECT pg_advisory_xact_lock(hashtext('sfstream schema ' || $1))",
                        {t.schema_name}))
      return e;
    if (auto e = s.exec("CREATE SCHEMA IF NOT EXISTS " + t.schema)) return e;
    if (auto e = s.exec("CREATE TABLE IF NOT EXISTS " + t.version + " (version integer NOT NULL)"))
      return e;
    result r;
    if (auto e = s.exec("SELECT version FROM " + t.version, {}, &r)) return e;
    int current = r.rows() > 0 ? static_cast<int>(r.integer(0, 0)) : 0;
    if (current > schema_version) {
      error_info e;
      e.code = make_error_code(errc::invalid_config);
      e.diag.context = "opening the PostgreSQL store at " + s.where();
      e.diag.server_text = "its tables are at version " + std::to_string(current) +
                           ", newer than this sfstream's " + std::to_string(schema_version) +
                           ": upgrade sfstream";
      return e;
    }
    if (current < 1) {
      if (auto e = s.exec(version_1(t))) return e;
      current = 1;
    }
    if (r.rows() == 0)
      return s.exec("INSERT INTO " + t.version + " (version) VALUES ($1)",
                    {std::to_string(current)});
    return s.exec("UPDATE " + t.version + " SET version = $1", {std::to_string(current)});
  });
}

error_info check_fence(session& s, const tables& t, std::string_view connection, const fence& f) {
  result r;
  // FOR SHARE: a takeover (an UPDATE of this row) waits for this transaction to end, and this
  // transaction waits for a takeover in progress.
  if (auto e = s.exec("SELECT owner, epoch, expires_at > now() FROM " + t.leases +
                          " WHERE connection = $1 FOR SHARE",
                      {connection}, &r))
    return e;
  const bool held = r.rows() == 1 && !r.is_null(0, 0) && r.text(0, 0) == f.owner &&
                    r.integer(0, 1) == f.epoch && r.text(0, 2) == "t";
  if (held) return {};
  error_info e;
  e.code = make_error_code(errc::lease_lost);
  e.diag.context = "writing the positions of " + std::string(connection);
  if (r.rows() == 0)
    e.diag.server_text = "the connection has no lease";
  else if (r.integer(0, 1) != f.epoch)
    e.diag.server_text = "lease epoch " + std::to_string(f.epoch) + " was superseded by " +
                         std::string(r.text(0, 1)) + " (owner " +
                         std::string(r.is_null(0, 0) ? "none" : r.text(0, 0)) + ")";
  else
    e.diag.server_text = "lease epoch " + std::to_string(f.epoch) + " expired";
  return e;
}

error_info write_positions(session& s, const tables& t, std::string_view connection,
                           const std::map<std::string, replay_position>& positions,
                           std::optional<std::int64_t> epoch) {
  const std::string sql =
      "INSERT INTO " + t.positions +
      " (connection, replay_key, replay_id, event_time, cursor, epoch, updated_at)"
      " VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0), $5, $6, now())"
      " ON CONFLICT (connection, replay_key) DO UPDATE SET replay_id = EXCLUDED.replay_id,"
      " event_time = EXCLUDED.event_time, cursor = EXCLUDED.cursor, epoch = EXCLUDED.epoch,"
      " updated_at = now()";
  const std::optional<std::string> epoch_text =
      epoch ? std::optional<std::string>(std::to_string(*epoch)) : std::nullopt;
  for (const auto& [key, p] : positions) {
    const std::string id = std::to_string(p.replay_id);
    const std::string ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              p.event_time.time_since_epoch())
                                              .count());
    if (auto e = s.exec(sql, {connection, key, id, ms, p.cursor,
                              epoch_text ? param(*epoch_text) : param()}))
      return e;
  }
  return {};
}

error_info read_positions(session& s, const tables& t, std::string_view connection,
                          std::map<std::string, replay_position>& out) {
  result r;
  if (auto e = s.exec("SELECT replay_key, replay_id, "
                      "coalesce((extract(epoch FROM event_time) * 1000)::bigint, 0), cursor FROM " +
                          t.positions + " WHERE connection = $1",
                      {connection}, &r))
    return e;
  out.clear();
  for (int i = 0; i < r.rows(); ++i) {
    replay_position p;
    p.replay_id = r.integer(i, 1);
    p.event_time = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(r.integer(i, 2)));
    p.cursor = std::string(r.text(i, 3));
    out.emplace(std::string(r.text(i, 0)), std::move(p));
  }
  return {};
}

}  // namespace sfstream::postgresql
