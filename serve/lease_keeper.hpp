// The lease keeper of `sfstream serve` with a PostgreSQL store: this replica's share of the
// connections, each streamed only while its lease is held here.
//
// On its own thread (all of its database I/O, one session of its own), every ttl/3: the
// replica's heartbeat, a renewal of every lease held, then the even share (postgresql/lease.hpp):
// leases beyond it are given up to a replica with room (the connection is stopped first,
// drained and committed under the lease, then the lease released), free or expired ones are
// claimed up to it (the fence set in `ownership`, then the connection started).
//
// A lease is believed held only until the moment its last successful claim or renewal was
// sent plus the ttl, minus a margin: a watchdog thread stops a connection whose lease could not
// be renewed by then, before the lease can expire on the server. A lease found lost (a renewal
// touching no row, or a fenced write reporting ownership::lost) stops its connection at once.
// stop() stops every connection (drain, commit, still fenced), then releases their leases so
// another replica takes them over at once, and ends the heartbeat.
//
// One live process per replica name: the keeper's session holds a lock on the name. A
// process restarted under the same name (the one before it died, its lock gone with its
// connection) takes its predecessor's leases over at once, raising their epochs; a second
// live process of one name claims nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "postgresql/database.hpp"
#include "postgresql/lease.hpp"
#include "postgresql/schema.hpp"
#include "serve/ownership.hpp"
#include "serve/status.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream::serve {

class service_log;

/// "host-pid": the default replica id.
std::string default_replica_id();

/// A replay store whose saves that find the lease lost tell `owner` (which stops the
/// connection); everything else is `inner`'s.
std::shared_ptr<replay_store> report_lost_leases(std::shared_ptr<replay_store> inner,
                                                 std::string connection,
                                                 std::shared_ptr<ownership> owner);

class lease_keeper {
 public:
  struct settings {
    std::string replica;
    std::chrono::milliseconds ttl{15'000};
  };
  /// What the keeper does to a connection (called from the keeper's threads).
  struct hooks {
    /// Start streaming `connection` (its fence is in `ownership` already).
    std::function<void(const std::string& connection)> start;
    /// Stop it; `final` at shutdown; `stopped` called once the run has completed.
    std::function<void(const std::string& connection, bool final, std::function<void()> stopped)>
        stop;
  };

  /// `connections`: the enabled ones, which this keeper may claim. Nothing runs before start().
  lease_keeper(postgresql::connect_options database, postgresql::tables tables,
               std::shared_ptr<ownership> owner, settings s, std::vector<std::string> connections,
               hooks h, const service_log& log);
  ~lease_keeper();
  lease_keeper(const lease_keeper&) = delete;
  lease_keeper& operator=(const lease_keeper&) = delete;

  void start();
  /// Graceful: stops every held connection, releases its lease, retires the replica; then
  /// `done` (once, from the keeper's thread). Idempotent.
  void stop(std::function<void()> done);

  const std::string& replica() const noexcept { return settings_.replica; }
  replica_status figures() const;
  /// Per connection, as last read from the table (and what is held here).
  std::optional<lease_status> lease(const std::string& connection) const;

 private:
  enum class phase { idle, running, releasing, dropping };
  struct lease_slot {
    phase now = phase::idle;
    std::optional<postgresql::fence> held;
    std::chrono::steady_clock::time_point deadline{};
    bool stop_requested = false;
    bool stop_done = false;
    bool lost = false;  // reported by a fenced write
    lease_status seen;
  };

  void run();
  void watch();
  void tick(postgresql::session* s, bool full);
  void renew_all(postgresql::session& s);
  void share(postgresql::session& s);
  void request_stop(const std::string& name, bool final);
  void finish_stops(postgresql::session* s);
  bool stopping() const;

  postgresql::connect_options database_;
  postgresql::tables tables_;
  std::shared_ptr<ownership> owner_;
  settings settings_;
  std::vector<std::string> connections_;
  hooks hooks_;
  const service_log& log_;
  std::chrono::milliseconds margin_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, lease_slot> slots_;
  replica_status figures_;
  bool started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool wake_ = false;
  std::function<void()> done_;
  // keeper thread only: the replica lock is held on its session; another process has it
  bool locked_ = false;
  bool duplicate_ = false;
  std::thread thread_, watchdog_;
};

}  // namespace sfstream::serve
