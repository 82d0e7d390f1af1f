#include "postgresql/lease.hpp"

#include <algorithm>
#include <functional>
#include <map>

namespace sfstream::postgresql {

namespace {

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// now() + ttl, the ttl given in milliseconds as the statement's parameter `n`.
std::string expiry(int n) {
  return "now() + $" + std::to_string(n) + "::bigint * interval '1 millisecond'";
}

}  // namespace

error_info ensure_leases(session& s, const tables& t, const std::vector<std::string>& connections) {
  for (const auto& c : connections)
    if (auto e = s.exec("INSERT INTO " + t.leases +
                            " (connection) VALUES ($1) ON CONFLICT (connection) DO NOTHING",
                        {c}))
      return e;
  return {};
}

error_info claim_lease(session& s, const tables& t, std::string_view connection,
                       std::string_view owner, std::chrono::milliseconds ttl,
                       std::optional<claimed_lease>& out, bool own_too) {
  out.reset();
  // `old` is the row as the statement found it (its snapshot), so the previous owner comes
  // back with the new epoch; a concurrent claim makes this one re-check its WHERE and miss.
  result r;
  if (auto e = s.exec("UPDATE " + t.leases + " l SET owner = $2, epoch = l.epoch + 1, "
                      "expires_at = " + expiry(3) + ", acquired_at = now(), renewed_at = now() "
                      "FROM " + t.leases + " old WHERE l.connection = $1 AND "
                      "old.connection = l.connection AND "
                      "(l.owner IS NULL OR l.expires_at < now() OR ($4 AND l.owner = $2)) "
                      "RETURNING l.epoch, old.owner",
                      {connection, owner, millis(ttl), own_too ? "true" : "false"}, &r))
    return e;
  if (r.rows() != 1) return {};
  claimed_lease c;
  c.held.owner = std::string(owner);
  c.held.epoch = r.integer(0, 0);
  if (!r.is_null(0, 1)) {
    c.previous_owner = std::string(r.text(0, 1));
    c.takeover = *c.previous_owner != owner;
  }
  out = std::move(c);
  return {};
}

error_info lock_replica(session& s, const tables& t, std::string_view replica, bool& locked) {
  result r;
  locked = false;
  if (auto e = s.exec("SELECT pg_try_advisory_lock(hashtext('sfstream replica ' || $1 || ' ' || $2))",
                      {t.schema_name, replica}, &r))
    return e;
  locked = r.rows() == 1 && r.text(0, 0) == "t";
  return {};
}

error_info renew_lease(session& s, const tables& t, std::string_view connection, const fence& held,
                       std::chrono::milliseconds ttl, bool& renewed) {
  result r;
  renewed = false;
  if (auto e = s.exec("UPDATE " + t.leases + " SET expires_at = " + expiry(4) +
                          ", renewed_at = now() WHERE connection = $1 AND owner = $2 AND "
                          "epoch = $3 AND expires_at > now()",
                      {connection, held.owner, std::to_string(held.epoch), millis(ttl)}, &r))
    return e;
  renewed = r.affected() == 1;
  return {};
}

error_info release_lease(session& s, const tables& t, std::string_view connection,
                         const fence& held, bool& released) {
  result r;
  released = false;
  if (auto e = s.exec("UPDATE " + t.leases + " SET owner = NULL, expires_at = now() "
                          "WHERE connection = $1 AND owner = $2 AND epoch = $3",
                      {connection, held.owner, std::to_string(held.epoch)}, &r))
    return e;
  released = r.affected() == 1;
  return {};
}

error_info read_leases(session& s, const tables& t, const std::vector<std::string>& connections,
                       std::vector<lease_row>& out) {
  out.clear();
  std::string list = "{";
  for (std::size_t i = 0; i < connections.size(); ++i) {
    if (i) list += ',';
    list += '"';
    for (char c : connections[i]) {
      if (c == '"' || c == '\\') list += '\\';
      list += c;
    }
    list += '"';
  }
  list += '}';
  result r;
  if (auto e = s.exec("SELECT connection, owner, epoch, owner IS NOT NULL AND expires_at > now(), "
                      "coalesce(to_char(expires_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), ''), "
                      "coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0) FROM " +
                          t.leases + " WHERE connection = ANY($1::text[]) ORDER BY connection",
                      {list}, &r))
    return e;
  for (int i = 0; i < r.rows(); ++i) {
    lease_row row;
    row.connection = std::string(r.text(i, 0));
    if (!r.is_null(i, 1)) row.owner = std::string(r.text(i, 1));
    row.epoch = r.integer(i, 2);
    row.live = r.text(i, 3) == "t";
    row.expires_at = std::string(r.text(i, 4));
    row.expires_ms = r.integer(i, 5);
    out.push_back(std::move(row));
  }
  return {};
}

error_info heartbeat(session& s, const tables& t, std::string_view replica,
                     std::chrono::milliseconds ttl) {
  if (auto e = s.exec("INSERT INTO " + t.replicas + " (replica, expires_at) VALUES ($1, " +
                          expiry(2) + ") ON CONFLICT (replica) DO UPDATE SET expires_at = " +
                          "EXCLUDED.expires_at",
                      {replica, millis(ttl)}))
    return e;
  return s.exec("DELETE FROM " + t.replicas + " WHERE expires_at < now() - interval '1 hour'");
}

error_info live_replicas(session& s, const tables& t, std::vector<std::string>& out) {
  out.clear();
  result r;
  if (auto e = s.exec("SELECT replica FROM " + t.replicas +
                          " WHERE expires_at > now() ORDER BY replica",
                      {}, &r))
    return e;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0));
  return {};
}

error_info retire_replica(session& s, const tables& t, std::string_view replica) {
  return s.exec("UPDATE " + t.replicas + " SET expires_at = now() WHERE replica = $1", {replica});
}

std::size_t fair_share(std::size_t connections, std::size_t replicas) noexcept {
  if (replicas == 0) replicas = 1;
  return (connections + replicas - 1) / replicas;
}

lease_plan plan_leases(std::string_view me, const std::set<std::string>& held,
                       const std::vector<lease_row>& rows, const std::vector<std::string>& live,
                       bool own_too) {
  std::set<std::string> replicas(live.begin(), live.end());
  replicas.emplace(me);
  const std::size_t share = fair_share(rows.size(), replicas.size());
  std::map<std::string, std::size_t, std::less<>> holding;
  for (const auto& r : replicas) holding[r] = 0;
  for (const auto& row : rows)
    if (row.live && row.owner && *row.owner != me) ++holding[*row.owner];
  holding[std::string(me)] = held.size();

  lease_plan plan;
  if (held.size() > share) {
    const bool room = std::any_of(replicas.begin(), replicas.end(), [&](const std::string& r) {
      return r != me && holding[r] < share;
    });
    if (room) {
      // The last ones by name: a stable choice, so a replica does not give up one lease now
      // and another at the next look.
      auto it = held.rbegin();
      for (std::size_t n = held.size() - share; n > 0; --n, ++it) plan.release.push_back(*it);
    }
    return plan;
  }
  std::vector<std::string> predecessor;
  for (const auto& row : rows) {
    if (held.count(row.connection)) continue;
    if (!row.live)
      plan.claim.push_back(row.connection);
    else if (own_too && row.owner == me)
      predecessor.push_back(row.connection);
  }
  // Replicas that look at the same moment start at different places, so they race for fewer
  // of the same rows; a lost race only means trying the next one.
  if (!plan.claim.empty()) {
    const std::size_t start = std::hash<std::string_view>{}(me) % plan.claim.size();
    std::rotate(plan.claim.begin(), plan.claim.begin() + static_cast<std::ptrdiff_t>(start),
                plan.claim.end());
  }
  plan.claim.insert(plan.claim.begin(), predecessor.begin(), predecessor.end());
  plan.want = share - held.size();
  return plan;
}

}  // namespace sfstream::postgresql
