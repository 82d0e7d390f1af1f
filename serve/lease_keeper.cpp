#include "serve/lease_keeper.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "serve/service_log.hpp"

namespace sfstream::serve {

namespace pg = sfstream::postgresql;
using steady = std::chrono::steady_clock;

std::string default_replica_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "replica");
  return std::string(host) + "-" + std::to_string(::getpid());
}

namespace {

class lost_reporting_store final : public replay_store {
 public:
  lost_reporting_store(std::shared_ptr<replay_store> inner, std::string connection,
                       std::shared_ptr<ownership> owner)
      : inner_(std::move(inner)), connection_(std::move(connection)), owner_(std::move(owner)) {}
  std::optional<replay_position> load(const std::string& key) const override {
    return inner_->load(key);
  }
  std::map<std::string, replay_position> load_all() const override { return inner_->load_all(); }
  error_info save(const std::map<std::string, replay_position>& positions) override {
    error_info e = inner_->save(positions);
    if (e.code == errc::lease_lost) owner_->lost(connection_);
    return e;
  }

 private:
  std::shared_ptr<replay_store> inner_;
  std::string connection_;
  std::shared_ptr<ownership> owner_;
};

}  // namespace

std::shared_ptr<replay_store> report_lost_leases(std::shared_ptr<replay_store> inner,
                                                 std::string connection,
                                                 std::shared_ptr<ownership> owner) {
  return std::make_shared<lost_reporting_store>(std::move(inner), std::move(connection),
                                                std::move(owner));
}

lease_keeper::lease_keeper(pg::connect_options database, pg::tables tables,
                           std::shared_ptr<ownership> owner, settings s,
                           std::vector<std::string> connections, hooks h, const service_log& log)
    : database_(std::move(database)),
      tables_(std::move(tables)),
      owner_(std::move(owner)),
      settings_(std::move(s)),
      connections_(std::move(connections)),
      hooks_(std::move(h)),
      log_(log),
      margin_(settings_.ttl / 4) {
  // The keeper's statements must end well inside a lease: a renewal held longer is useless.
  database_.statement_timeout = std::max<std::chrono::milliseconds>(settings_.ttl / 3,
                                                                    std::chrono::milliseconds(200));
  database_.application_name = "sfstream lease keeper";
  for (const auto& c : connections_) slots_[c];
  figures_.replica = settings_.replica;
  figures_.lease_ttl = settings_.ttl;
  owner_->on_lost([this](const std::string& connection) {
    std::lock_guard lock{mutex_};
    if (auto it = slots_.find(connection); it != slots_.end()) it->second.lost = true;
    wake_ = true;
    cv_.notify_all();
  });
}

lease_keeper::~lease_keeper() {
  {
    std::lock_guard lock{mutex_};
    finished_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
  owner_->on_lost({});
}

void lease_keeper::start() {
  {
    std::lock_guard lock{mutex_};
    if (started_ || stopping_) return;
    started_ = true;
  }
  log_.log(log_level::info, "",
           "replica " + settings_.replica + ": leases of " + std::to_string(connections_.size()) +
               " connection(s), ttl " + std::to_string(settings_.ttl.count()) + " ms");
  thread_ = std::thread([this] { run(); });
  watchdog_ = std::thread([this] { watch(); });
}

void lease_keeper::stop(std::function<void()> done) {
  std::vector<std::string> running;
  bool now = false;
  {
    std::lock_guard lock{mutex_};
    if (stopping_) return;
    stopping_ = true;
    done_ = std::move(done);
    now = !started_;
    for (auto& [name, s] : slots_)
      if (s.now == phase::running) {
        s.now = phase::releasing;
        running.push_back(name);
      }
    wake_ = true;
    cv_.notify_all();
  }
  if (now) {
    std::function<void()> d;
    {
      std::lock_guard lock{mutex_};
      d = std::move(done_);
    }
    if (d) d();
    return;
  }
  for (const auto& name : running) request_stop(name, true);
}

void lease_keeper::request_stop(const std::string& name, bool final) {
  {
    std::lock_guard lock{mutex_};
    auto& s = slots_.at(name);
    if (s.stop_requested) return;
    s.stop_requested = true;
    s.stop_done = false;
  }
  hooks_.stop(name, final, [this, name] {
    std::lock_guard lock{mutex_};
    slots_.at(name).stop_done = true;
    wake_ = true;
    cv_.notify_all();
  });
}

void lease_keeper::run() {
  std::unique_ptr<pg::session> s;
  const auto period = std::max<std::chrono::milliseconds>(settings_.ttl / 3,
                                                          std::chrono::milliseconds(50));
  auto next_full = steady::now();
  bool prepared = false;
  for (;;) {
    {
      std::unique_lock lock{mutex_};
      cv_.wait_until(lock, next_full, [&] { return wake_ || finished_; });
      wake_ = false;
      if (finished_) return;
    }
    const bool full = steady::now() >= next_full;
    if (full) next_full = steady::now() + period;
    if (!s || !s->healthy()) {
      s.reset();
      error_info why;
      if (full) s = pg::session::open(database_, why);
      locked_ = false;
      if (!s && full) {
        std::lock_guard lock{mutex_};
        figures_.last_error = log_.redact(why.to_string());
        log_.log(log_level::warning, "", "lease keeper: " + *figures_.last_error);
      }
    }
    if (s && !prepared) {
      prepared = !pg::migrate(*s, tables_) && !pg::ensure_leases(*s, tables_, connections_);
    }
    if (s && prepared && !locked_ && full) {
      // One live process per replica name: the lock lives as long as this session.
      bool was = duplicate_;
      if (!pg::lock_replica(*s, tables_, settings_.replica, locked_)) {
        duplicate_ = !locked_;
        if (duplicate_ && !was)
          log_.log(log_level::error, "",
                   "another live process runs as replica " + settings_.replica +
                       ": this one claims no connection until it is gone (give each replica "
                       "its own [service] replica)");
      }
    }
    tick(s && prepared ? s.get() : nullptr, full);
    // The stop is complete once every connection has stopped and its lease was given up.
    std::function<void()> done;
    {
      std::lock_guard lock{mutex_};
      if (!stopping_) continue;
      const bool all_idle = std::all_of(slots_.begin(), slots_.end(),
                                        [](const auto& kv) { return kv.second.now == phase::idle; });
      if (!all_idle) continue;
      done = std::move(done_);
    }
    // (A second process of this name leaves the first one's heartbeat alone.)
    if (s && prepared && locked_) pg::retire_replica(*s, tables_, settings_.replica);
    {
      std::lock_guard lock{mutex_};
      figures_.held = 0;
    }
    log_.log(log_level::info, "", "replica " + settings_.replica + ": every lease given up");
    if (done) done();
    return;
  }
}

void lease_keeper::finish_stops(pg::session* s) {
  // A lost lease (told by a fenced write) stops its connection at once.
  std::vector<std::string> lost;
  {
    std::lock_guard lock{mutex_};
    for (auto& [name, slot] : slots_) {
      if (slot.lost && (slot.now == phase::running || slot.now == phase::releasing)) {
        slot.now = phase::dropping;
        slot.held.reset();
        ++figures_.losses;
        lost.push_back(name);
      }
      slot.lost = false;
    }
  }
  for (const auto& name : lost) {
    log_.log(log_level::warning, name,
             "lease lost (a fenced write found it superseded or expired): stopping the connection");
    request_stop(name, stopping());
  }
  // Connections whose stop completed: a lease given up is released (another replica takes it
  // at once), a lost one only forgotten.
  std::vector<std::pair<std::string, pg::fence>> to_release;
  {
    std::lock_guard lock{mutex_};
    for (auto& [name, slot] : slots_) {
      if (slot.now == phase::idle || !slot.stop_requested || !slot.stop_done) continue;
      if (slot.now == phase::releasing && slot.held) to_release.emplace_back(name, *slot.held);
      owner_->release(name);
      slot.now = phase::idle;
      slot.held.reset();
      slot.stop_requested = slot.stop_done = false;
    }
  }
  for (const auto& [name, f] : to_release) {
    bool released = false;
    if (s)
      if (auto e = pg::release_lease(*s, tables_, name, f, released))
        log_.log(log_level::warning, name,
                 "could not release the lease (it expires by itself): " + log_.redact(e.to_string()));
    if (released) {
      std::lock_guard lock{mutex_};
      ++figures_.releases;
    }
    log_.log(log_level::info, name,
             std::string(released ? "lease released" : "lease given up") + " (epoch " +
                 std::to_string(f.epoch) + ")");
  }
}

bool lease_keeper::stopping() const {
  std::lock_guard lock{mutex_};
  return stopping_;
}

void lease_keeper::renew_all(pg::session& s) {
  std::vector<std::pair<std::string, pg::fence>> held;
  {
    std::lock_guard lock{mutex_};
    for (const auto& [name, slot] : slots_)
      if (slot.held && (slot.now == phase::running || slot.now == phase::releasing))
        held.emplace_back(name, *slot.held);
  }
  for (const auto& [name, f] : held) {
    const auto sent = steady::now();
    bool renewed = false;
    if (auto e = pg::renew_lease(s, tables_, name, f, settings_.ttl, renewed)) {
      // Not known either way: the watchdog stops the connection at the deadline.
      std::lock_guard lock{mutex_};
      figures_.last_error = log_.redact(e.to_string());
      log_.log(log_level::warning, name, "could not renew the lease: " + *figures_.last_error);
      if (!s.healthy()) return;
      continue;
    }
    bool lost = false;
    {
      std::lock_guard lock{mutex_};
      auto& slot = slots_.at(name);
      if (!slot.held || slot.held->epoch != f.epoch) continue;
      if (renewed) {
        slot.deadline = sent + settings_.ttl - margin_;
        ++figures_.renewals;
      } else if (slot.now != phase::dropping) {
        owner_->release(name);
        // A connection already being stopped (by the watchdog: counted there) stops anyway.
        if (!slot.stop_requested) ++figures_.losses;
        slot.now = phase::dropping;
        slot.held.reset();
        lost = true;
      }
    }
    if (lost) {
      log_.log(log_level::warning, name,
               "lease lost (expired or taken over before it was renewed): stopping the connection");
      request_stop(name, stopping());
    }
  }
}

void lease_keeper::share(pg::session& s) {
  std::vector<std::string> live;
  std::vector<pg::lease_row> rows;
  if (auto e = pg::live_replicas(s, tables_, live); e || (e = pg::read_leases(s, tables_, connections_, rows))) {
    std::lock_guard lock{mutex_};
    figures_.last_error = log_.redact(e.to_string());
    return;
  }
  std::set<std::string> held;
  pg::lease_plan plan;
  {
    std::lock_guard lock{mutex_};
    for (const auto& [name, slot] : slots_)
      if (slot.now == phase::running) held.insert(name);
    for (const auto& row : rows) {
      auto it = slots_.find(row.connection);
      if (it == slots_.end()) continue;
      it->second.seen.owner = row.live ? row.owner : std::nullopt;
      it->second.seen.epoch = row.epoch;
      it->second.seen.expires_at = row.expires_at;
      it->second.seen.expires_ms = row.expires_ms;
    }
    plan = pg::plan_leases(settings_.replica, held, rows, live, locked_);
    // Without the replica lock (the name is in use elsewhere, or not checked yet) nothing is
    // claimed: two processes of one name would take each other's leases.
    if (!locked_) plan.claim.clear();
    figures_.live_replicas = std::max<std::size_t>(live.size(), 1);
    figures_.share = pg::fair_share(connections_.size(), figures_.live_replicas);
    figures_.last_error.reset();
    for (const auto& name : plan.release) slots_.at(name).now = phase::releasing;
  }
  for (const auto& name : plan.release) {
    log_.log(log_level::info, name,
             "giving the lease up to a replica with room (share " +
                 std::to_string(pg::fair_share(connections_.size(), live.size())) + ")");
    request_stop(name, false);
  }
  std::size_t want = plan.want;
  for (const auto& name : plan.claim) {
    if (want == 0) break;
    {
      std::lock_guard lock{mutex_};
      if (stopping_) return;
      if (slots_.at(name).now != phase::idle) continue;
    }
    const auto sent = steady::now();
    std::optional<pg::claimed_lease> got;
    if (auto e = pg::claim_lease(s, tables_, name, settings_.replica, settings_.ttl, got,
                                 locked_)) {
      std::lock_guard lock{mutex_};
      figures_.last_error = log_.redact(e.to_string());
      // A row locked by a transaction that does not end (its statement timed out): the
      // next candidate may be free.
      if (!s.healthy()) return;
      continue;
    }
    if (!got) continue;
    --want;
    if (stopping()) {
      // The service began to stop meanwhile: give the lease straight back.
      bool released = false;
      pg::release_lease(s, tables_, name, got->held, released);
      return;
    }
    {
      std::lock_guard lock{mutex_};
      auto& slot = slots_.at(name);
      slot.now = phase::running;
      slot.held = got->held;
      slot.deadline = sent + settings_.ttl - margin_;
      slot.seen.owner = settings_.replica;
      slot.seen.epoch = got->held.epoch;
      ++figures_.claims;
      if (got->takeover) ++figures_.takeovers;
      owner_->hold(name, got->held);
    }
    log_.log(log_level::info, name,
             "lease claimed (epoch " + std::to_string(got->held.epoch) +
                 (got->takeover ? ", taken over from " + *got->previous_owner + " after it expired"
                  : got->previous_owner ? ", from a predecessor of this name that is gone"
                                        : std::string()) +
                 "): starting");
    hooks_.start(name);
  }
}

void lease_keeper::tick(pg::session* s, bool full) {
  finish_stops(s);
  if (!s || !full) return;
  // Renewals first, the heartbeat after: once this replica's heartbeat has expired, so have
  // its leases, and another replica that counts it dead finds them claimable.
  renew_all(*s);
  if (auto e = pg::heartbeat(*s, tables_, settings_.replica, settings_.ttl)) {
    std::lock_guard lock{mutex_};
    figures_.last_error = log_.redact(e.to_string());
  }
  if (!stopping()) share(*s);
  finish_stops(s);
}

void lease_keeper::watch() {
  const auto step = std::clamp<std::chrono::milliseconds>(margin_ / 4, std::chrono::milliseconds(10),
                                                          std::chrono::milliseconds(200));
  for (;;) {
    std::vector<std::string> late;
    bool final = false;
    {
      std::unique_lock lock{mutex_};
      cv_.wait_for(lock, step, [&] { return finished_; });
      if (finished_) return;
      const auto now = steady::now();
      for (auto& [name, slot] : slots_) {
        if (!slot.held || slot.stop_requested || slot.deadline > now) continue;
        if (slot.now != phase::running && slot.now != phase::releasing) continue;
        slot.now = phase::releasing;
        ++figures_.losses;
        late.push_back(name);
      }
      final = stopping_;
      if (!late.empty()) wake_ = true;
    }
    for (const auto& name : late) {
      log_.log(log_level::warning, name,
               "the lease could not be renewed in time: stopping the connection before it can "
               "expire");
      request_stop(name, final);
    }
  }
}

replica_status lease_keeper::figures() const {
  std::lock_guard lock{mutex_};
  replica_status r = figures_;
  r.held = 0;
  for (const auto& [name, slot] : slots_)
    if (slot.held && slot.now == phase::running) ++r.held;
  return r;
}

std::optional<lease_status> lease_keeper::lease(const std::string& connection) const {
  std::lock_guard lock{mutex_};
  auto it = slots_.find(connection);
  if (it == slots_.end()) return std::nullopt;
  lease_status l = it->second.seen;
  l.held_here = it->second.held.has_value() && it->second.now != phase::idle;
  if (l.held_here) {
    l.owner = settings_.replica;
    l.epoch = it->second.held->epoch;
  }
  return l;
}

}  // namespace sfstream::serve
