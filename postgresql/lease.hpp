// Leases on connections, in the `leases` and `replicas` tables: which replica of
// `sfstream serve` streams each connection, under which epoch, until when. Every statement is
// one short UPDATE or INSERT decided by the server's clock (now()), so replicas never compare
// their clocks and a statement that raced another simply touches no row:
//   claim    a free lease (no owner) or an expired one: owner = me, epoch + 1.
//   renew    my lease, same epoch, not expired yet: a later expiry. No row: the lease is lost.
//   release  my lease, same epoch: no owner, expired now, so any replica claims it at once.
// The replicas table is a heartbeat: the live replicas give the even share of connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "postgresql/database.hpp"
#include "postgresql/schema.hpp"

namespace sfstream::postgresql {

/// A connection's lease as the table holds it.
struct lease_row {
  std::string connection;
  std::optional<std::string> owner;  ///< Empty: released or never claimed.
  std::int64_t epoch = 0;
  bool live = false;                 ///< Owned and expires_at > now().
  std::string expires_at;            ///< ISO 8601 UTC text; empty when NULL.
  std::int64_t expires_ms = 0;       ///< The same in milliseconds since 1970; 0 when NULL.
};

/// A successful claim.
struct claimed_lease {
  fence held;
  /// The lease was held by another replica and had expired (not released): a takeover.
  bool takeover = false;
  std::optional<std::string> previous_owner;
};

/// Inserts a free lease row for each of `connections` that has none.
error_info ensure_leases(session& s, const tables& t, const std::vector<std::string>& connections);

/// Claims `connection` for `owner` when it is free or expired; `out` is empty when another
/// replica holds it. With `own_too` also when `owner` holds it already: a predecessor of the
/// same name that is gone (only with the replica lock, see lock_replica()).
error_info claim_lease(session& s, const tables& t, std::string_view connection,
                       std::string_view owner, std::chrono::milliseconds ttl,
                       std::optional<claimed_lease>& out, bool own_too = false);

/// Takes the replica lock of `replica` for the life of session `s` (a session advisory lock):
/// `locked` false when another live process holds it (the same replica name twice). The lock
/// of a process that died goes with its connection, so a replica restarted under the same
/// name may take its predecessor's leases over at once.
error_info lock_replica(session& s, const tables& t, std::string_view replica, bool& locked);

/// Extends `held` by `ttl` from now; `renewed` false when the lease was lost (expired,
/// taken over or released).
error_info renew_lease(session& s, const tables& t, std::string_view connection, const fence& held,
                       std::chrono::milliseconds ttl, bool& renewed);

/// Gives `held` up: no owner, expired now. `released` false when it was not held any more.
error_info release_lease(session& s, const tables& t, std::string_view connection,
                         const fence& held, bool& released);

/// The leases of `connections` (rows missing from the table are left out).
error_info read_leases(session& s, const tables& t, const std::vector<std::string>& connections,
                       std::vector<lease_row>& out);

/// Records `replica` alive for `ttl` more; forgets replicas dead for an hour.
error_info heartbeat(session& s, const tables& t, std::string_view replica,
                     std::chrono::milliseconds ttl);
/// Replicas whose heartbeat has not expired (`replica` itself counted when alive).
error_info live_replicas(session& s, const tables& t, std::vector<std::string>& out);
/// A replica that stops: its heartbeat ends now, so the share of the others grows at once.
error_info retire_replica(session& s, const tables& t, std::string_view replica);

/// ceil(connections / replicas), replicas counted at least 1.
std::size_t fair_share(std::size_t connections, std::size_t replicas) noexcept;

/// What one replica should do with the leases, given the table and the live replicas.
struct lease_plan {
  std::vector<std::string> claim;    ///< Free or expired leases to try, in this order...
  std::size_t want = 0;              ///< ...until this many more are held (the share).
  std::vector<std::string> release;  ///< Held beyond the share while another has room.
};

/// The even share: `me` holds no more than fair_share() while another live replica holds less
/// than it, and claims free or expired leases up to it. `held` are the leases `me` holds (and
/// keeps renewing); `rows` the table's rows of every configured connection.
/// With `own_too`, leases still held under the name `me` but not in `held` (a predecessor's)
/// are claimable too, first.
lease_plan plan_leases(std::string_view me, const std::set<std::string>& held,
                       const std::vector<lease_row>& rows, const std::vector<std::string>& live,
                       bool own_too = false);

}  // namespace sfstream::postgresql
