// Leases against a real PostgreSQL 15 server started by the test, and the even share (pure).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "postgresql/lease.hpp"
#include "support/postgres_session.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::postgres_server;
namespace pg = sfstream::postgresql;
using steady = std::chrono::steady_clock;

postgres_server& server() {
  static postgres_server s;
  return s;
}

std::unique_ptr<pg::session> open_session() { return sfstream::testing::open_session(server()); }

std::unique_ptr<pg::session> migrated(const pg::tables& t) {
  auto s = open_session();
  REQUIRE_FALSE(pg::migrate(*s, t));
  return s;
}

std::optional<pg::claimed_lease> claim(pg::session& s, const pg::tables& t, const std::string& c,
                                       const std::string& owner, std::chrono::milliseconds ttl) {
  std::optional<pg::claimed_lease> out;
  const auto e = pg::claim_lease(s, t, c, owner, ttl, out);
  REQUIRE_MESSAGE(!e, e.to_string());
  return out;
}

pg::lease_row row(const std::string& c, std::optional<std::string> owner, bool live) {
  pg::lease_row r;
  r.connection = c;
  r.owner = std::move(owner);
  r.live = live;
  return r;
}

}  // namespace

TEST_CASE("leases: claim, renew, expiry, takeover and release, by the server's clock") {
  const pg::tables t("lease_basics");
  auto a = migrated(t);
  auto b = open_session();
  REQUIRE_FALSE(pg::ensure_leases(*a, t, {"acme", "globex"}));
  REQUIRE_FALSE(pg::ensure_leases(*b, t, {"acme"}));  // idempotent

  auto first = claim(*a, t, "acme", "r1", 400ms);
  REQUIRE(first);
  CHECK(first->held.epoch == 1);
  CHECK_FALSE(first->takeover);
  CHECK_FALSE(claim(*b, t, "acme", "r2", 400ms));  // held and live: nobody else gets it
  bool ok = false;
  REQUIRE_FALSE(pg::renew_lease(*a, t, "acme", first->held, 400ms, ok));
  CHECK(ok);
  // A fenced write under the held lease passes; under a wrong epoch it does not.
  CHECK_FALSE(pg::check_fence(*a, t, "acme", first->held));
  CHECK(pg::check_fence(*a, t, "acme", {"r1", 7}).code == sfstream::errc::lease_lost);

  std::this_thread::sleep_for(600ms);
  REQUIRE_FALSE(pg::renew_lease(*a, t, "acme", first->held, 400ms, ok));
  CHECK_FALSE(ok);  // expired: renewing it is refused
  CHECK(pg::check_fence(*a, t, "acme", first->held).code == sfstream::errc::lease_lost);
  auto second = claim(*b, t, "acme", "r2", 10s);
  REQUIRE(second);
  CHECK(second->held.epoch == 2);  // the takeover raised the epoch
  CHECK(second->takeover);
  CHECK(second->previous_owner == "r1");
  CHECK(pg::check_fence(*a, t, "acme", first->held).code == sfstream::errc::lease_lost);
  CHECK_FALSE(pg::check_fence(*b, t, "acme", second->held));

  // The old owner's release touches nothing; the holder's frees the lease at once.
  REQUIRE_FALSE(pg::release_lease(*a, t, "acme", first->held, ok));
  CHECK_FALSE(ok);
  CHECK_FALSE(claim(*a, t, "acme", "r1", 10s));
  REQUIRE_FALSE(pg::release_lease(*b, t, "acme", second->held, ok));
  CHECK(ok);
  auto third = claim(*a, t, "acme", "r1", 10s);
  REQUIRE(third);
  CHECK(third->held.epoch == 3);
  CHECK_FALSE(third->takeover);  // released, not expired: no takeover
  CHECK(pg::check_fence(*b, t, "acme", second->held).code == sfstream::errc::lease_lost);

  std::vector<pg::lease_row> rows;
  REQUIRE_FALSE(pg::read_leases(*b, t, {"acme", "globex", "absent"}, rows));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].connection == "acme");
  CHECK(rows[0].owner == "r1");
  CHECK(rows[0].epoch == 3);
  CHECK(rows[0].live);
  CHECK(rows[0].expires_at.size() == 24);
  CHECK(rows[0].expires_at.back() == 'Z');
  CHECK(rows[1].connection == "globex");
  CHECK_FALSE(rows[1].owner);
  CHECK_FALSE(rows[1].live);

  // One live process per replica name; the one holding the name may take over a lease still
  // held under it (a predecessor's), at a new epoch; without the flag nobody may.
  bool locked = false;
  REQUIRE_FALSE(pg::lock_replica(*a, t, "r1", locked));
  CHECK(locked);
  REQUIRE_FALSE(pg::lock_replica(*b, t, "r1", locked));
  CHECK_FALSE(locked);
  REQUIRE_FALSE(pg::lock_replica(*b, t, "r2", locked));
  CHECK(locked);
  CHECK_FALSE(claim(*b, t, "acme", "r1", 10s));
  std::optional<pg::claimed_lease> own;
  REQUIRE_FALSE(pg::claim_lease(*a, t, "acme", "r1", 10s, own, true));
  REQUIRE(own);
  CHECK(own->held.epoch == 4);
  CHECK_FALSE(own->takeover);
  CHECK(pg::check_fence(*a, t, "acme", third->held).code == sfstream::errc::lease_lost);
  REQUIRE_FALSE(pg::claim_lease(*b, t, "acme", "r2", 10s, own, true));
  CHECK_FALSE(own);  // another name's live lease stays its own
  {
    // The lock goes with its session.
    auto gone = open_session();
    REQUIRE_FALSE(pg::lock_replica(*gone, t, "r9", locked));
    CHECK(locked);
  }
  // (the server lets go of it once it has seen the connection close)
  for (int i = 0; i < 100; ++i) {
    REQUIRE_FALSE(pg::lock_replica(*b, t, "r9", locked));
    if (locked) break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(locked);

  // Heartbeats: live replicas until their expiry or retirement.
  REQUIRE_FALSE(pg::heartbeat(*a, t, "r1", 10s));
  REQUIRE_FALSE(pg::heartbeat(*b, t, "r2", 300ms));
  REQUIRE_FALSE(pg::heartbeat(*b, t, "r3", 10s));
  std::vector<std::string> live;
  REQUIRE_FALSE(pg::live_replicas(*a, t, live));
  CHECK(live == std::vector<std::string>{"r1", "r2", "r3"});
  std::this_thread::sleep_for(400ms);
  REQUIRE_FALSE(pg::retire_replica(*b, t, "r3"));
  REQUIRE_FALSE(pg::live_replicas(*a, t, live));
  CHECK(live == std::vector<std::string>{"r1"});
}

TEST_CASE("leases: racing replicas never both believe they hold one, and every epoch has one owner") {
  const pg::tables t("lease_race");
  migrated(t);
  const std::vector<std::string> connections{"c0", "c1", "c2", "c3", "c4", "c5"};
  REQUIRE_FALSE(pg::ensure_leases(*open_session(), t, connections));
  constexpr auto ttl = 150ms;
  // Each replica's belief: from a claim's or renewal's reply until the moment the statement
  // was sent plus the ttl (the server's expiry can only be later), or until its release was
  // sent. One process, one steady clock: beliefs of different replicas are comparable.
  struct belief {
    std::string owner;
    steady::time_point from, until;
  };
  std::mutex mutex;
  std::map<std::string, std::vector<belief>> beliefs;
  std::multiset<std::pair<std::string, std::int64_t>> epochs;  // (connection, epoch) claimed
  std::atomic<int> claims{0}, takeovers{0}, releases{0};

  const auto racer = [&](std::string me, unsigned seed) {
    auto s = open_session();
    std::mt19937 random(seed);
    std::map<std::string, std::pair<pg::fence, belief>> held;
    const auto until = steady::now() + 1500ms;
    for (int round = 0; round < 2000 && steady::now() < until; ++round) {
      const std::string& c = connections[random() % connections.size()];
      auto it = held.find(c);
      const auto sent = steady::now();
      if (it == held.end()) {
        std::optional<pg::claimed_lease> got;
        REQUIRE_FALSE(pg::claim_lease(*s, t, c, me, ttl, got));
        if (!got) continue;
        ++claims;
        if (got->takeover) ++takeovers;
        std::lock_guard lock{mutex};
        epochs.emplace(c, got->held.epoch);
        held[c] = {got->held, belief{me, steady::now(), sent + ttl}};
      } else if (random() % 4 == 0) {
        bool ok = false;
        REQUIRE_FALSE(pg::release_lease(*s, t, c, it->second.first, ok));
        if (ok) ++releases;
        it->second.second.until = std::min(it->second.second.until, sent);
        std::lock_guard lock{mutex};
        beliefs[c].push_back(it->second.second);
        held.erase(it);
      } else if (random() % 3 == 0) {
        // Sometimes a replica is slow to renew: its lease expires and another takes it.
        std::this_thread::sleep_for(ttl + 20ms);
      } else {
        bool ok = false;
        REQUIRE_FALSE(pg::renew_lease(*s, t, c, it->second.first, ttl, ok));
        if (ok) {
          it->second.second.until = sent + ttl;
        } else {
          std::lock_guard lock{mutex};
          beliefs[c].push_back(it->second.second);
          held.erase(it);
        }
      }
    }
    std::lock_guard lock{mutex};
    for (auto& [c, h] : held) beliefs[c].push_back(h.second);
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 3; ++i)
    threads.emplace_back([&, i] { racer("r" + std::to_string(i), 17 + i); });
  for (auto& th : threads) th.join();

  for (const auto& e : epochs) {
    CAPTURE(e.first);
    CAPTURE(e.second);
    CHECK(epochs.count(e) == 1);  // one claimer per epoch
  }
  std::size_t overlaps = 0, intervals = 0;
  for (auto& [c, list] : beliefs) {
    std::sort(list.begin(), list.end(),
              [](const belief& x, const belief& y) { return x.from < y.from; });
    for (std::size_t i = 0; i + 1 < list.size(); ++i)
      if (list[i].until > list[i + 1].from && list[i].owner != list[i + 1].owner) ++overlaps;
    intervals += list.size();
  }
  MESSAGE("claims " << claims.load() << ", takeovers " << takeovers.load() << ", releases "
                    << releases.load() << ", holding intervals " << intervals);
  CHECK(overlaps == 0);
  CHECK(claims.load() > 20);
  CHECK(takeovers.load() > 0);
  CHECK(releases.load() > 0);
}

TEST_CASE("leases: the even share is ceil(connections / live replicas), extras released only to a replica with room") {
  CHECK(pg::fair_share(12, 3) == 4);
  CHECK(pg::fair_share(12, 2) == 6);
  CHECK(pg::fair_share(10, 3) == 4);
  CHECK(pg::fair_share(3, 0) == 3);
  CHECK(pg::fair_share(0, 2) == 0);

  std::vector<pg::lease_row> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(row("c" + std::to_string(i), std::nullopt, false));
  // Alone: everything is claimable.
  auto plan = pg::plan_leases("a", {}, rows, {"a"});
  CHECK(plan.want == 6);
  CHECK(plan.claim.size() == 6);
  CHECK(plan.release.empty());

  // Three replicas, "a" holds c0..c3, "b" holds c4, c5 free: share 2; "c" has room.
  for (int i = 0; i < 4; ++i) rows[i] = row("c" + std::to_string(i), "a", true);
  rows[4] = row("c4", "b", true);
  plan = pg::plan_leases("a", {"c0", "c1", "c2", "c3"}, rows, {"a", "b", "c"});
  CHECK(plan.release == std::vector<std::string>{"c3", "c2"});
  CHECK(plan.claim.empty());
  plan = pg::plan_leases("c", {}, rows, {"a", "b", "c"});
  CHECK(plan.want == 2);
  CHECK(plan.claim == std::vector<std::string>{"c5"});  // only the free one; none taken
  plan = pg::plan_leases("b", {"c4"}, rows, {"a", "b", "c"});
  CHECK(plan.want == 1);
  CHECK(plan.release.empty());

  // Two replicas: "b" has room for one more of the four "a" holds; at the share, nothing moves.
  rows[4] = row("c4", "b", true);
  rows[5] = row("c5", "b", true);
  plan = pg::plan_leases("a", {"c0", "c1", "c2", "c3"}, rows, {"a", "b"});
  CHECK(plan.release == std::vector<std::string>{"c3"});
  rows[3] = row("c3", "b", true);
  plan = pg::plan_leases("a", {"c0", "c1", "c2"}, rows, {"a", "b"});
  CHECK(plan.release.empty());
  CHECK(plan.want == 0);
  // A third replica joins with nothing: the share drops to 2 and "a" gives one up to it.
  plan = pg::plan_leases("a", {"c0", "c1", "c2"}, rows, {"a", "b", "c"});
  CHECK(plan.release == std::vector<std::string>{"c2"});
  rows[3] = row("c3", "a", true);
  rows[4] = row("c4", "a", true);
  plan = pg::plan_leases("a", {"c0", "c1", "c2", "c3", "c4"}, rows, {"a", "b"});
  CHECK(plan.release == std::vector<std::string>{"c4", "c3"});
  rows[4] = row("c4", "b", true);
  // An expired lease of a dead replica is claimable; a dead replica is not counted.
  rows[5] = row("c5", "dead", false);
  plan = pg::plan_leases("b", {"c4"}, rows, {"a", "b"});
  CHECK(plan.want == 2);
  CHECK(plan.claim == std::vector<std::string>{"c5"});
  // Leases still held under my name but not by me (a predecessor's): claimable first with the
  // replica lock, never without.
  rows[0] = row("c0", "b", true);
  plan = pg::plan_leases("b", {"c4"}, rows, {"a", "b"}, true);
  CHECK(plan.claim == std::vector<std::string>{"c0", "c5"});
  plan = pg::plan_leases("b", {"c4"}, rows, {"a", "b"}, false);
  CHECK(plan.claim == std::vector<std::string>{"c5"});
  rows[0] = row("c0", "a", true);
  // A replica missing from the live list (its heartbeat failed) still counts itself.
  plan = pg::plan_leases("b", {"c4"}, rows, {"a"});
  CHECK(plan.want == 2);
}
