// The tables sfstream keeps in PostgreSQL, in one schema of their own (default "sfstream"):
//   schema_version  one row: the version of the tables below; migrated forward on start.
//   positions       (connection, replay_key) → replay id or cursor, event time, and the lease
//                   epoch of the write.
//   leases          connection → owner replica, epoch (raised by every takeover), expiry.
//   replicas        replica → expiry: the live replicas, for an even share of connections.
//   events          (connection, channel, replay_id) unique → the event as jsonb, received
//                   time, a serial `id` in insertion order for consumers.
// Expiries are the server's clock (now()), so replicas' clocks never need to agree.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "postgresql/database.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream::postgresql {

/// The version this build writes; a database at a newer one is refused.
inline constexpr int schema_version = 1;

/// Every table's name, qualified by the (quoted) schema.
struct tables {
  explicit tables(std::string_view schema_name = "sfstream");
  std::string schema_name;
  std::string schema, version, positions, leases, replicas, events;
};

/// Creates the schema and its tables when missing and migrates older versions forward, under
/// a transaction-scoped advisory lock so replicas starting together do it once. A database
/// whose version is newer than this build is errc::invalid_config (upgrade sfstream).
error_info migrate(session& s, const tables& t);

/// The lease a write claims to hold.
struct fence {
  std::string owner;
  std::int64_t epoch = 0;
};

/// Inside a transaction: locks `connection`'s lease row against a takeover until the end of
/// the transaction, and checks that `f` still holds it, unexpired. errc::lease_lost when not.
error_info check_fence(session& s, const tables& t, std::string_view connection, const fence& f);

/// Upserts `positions` of `connection`, recording `epoch` (NULL when unfenced).
error_info write_positions(session& s, const tables& t, std::string_view connection,
                           const std::map<std::string, replay_position>& positions,
                           std::optional<std::int64_t> epoch);

/// Every stored position of `connection`.
error_info read_positions(session& s, const tables& t, std::string_view connection,
                          std::map<std::string, replay_position>& out);

}  // namespace sfstream::postgresql
