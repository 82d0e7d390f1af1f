// The service of `sfstream serve`: every configured connection on one shared thread pool, one
// replay store, the admin listener, and the orderly stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "postgresql/database.hpp"
#include "postgresql/schema.hpp"
#include "serve/admin_server.hpp"
#include "serve/config.hpp"
#include "serve/connection.hpp"
#include "serve/lease_keeper.hpp"
#include "serve/ownership.hpp"
#include "serve/service_log.hpp"
#include "serve/shared_store.hpp"
#include "serve/status.hpp"

namespace sfstream::serve {

class service {
 public:
  /// Opens the store (throws sfstream::error when it cannot be locked or read), makes every
  /// connection and sink; starts nothing yet.
  explicit service(service_config config);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Starts the admin listener (when configured) and every connection. A listener that cannot
  /// be bound is returned as an error and nothing is started. A PostgreSQL store is migrated
  /// first: tables newer than this build are an error; a server out of reach is tried again
  /// with a doubling backoff (logged, and in /readyz), the connections starting once it
  /// answers.
  error_info start();
  /// Begins the graceful stop (idempotent, any thread): every connection drains, commits and
  /// disconnects (with a PostgreSQL store, then its lease is released, so another replica
  /// takes it over at once); then the admin listener closes.
  void stop();
  /// Blocks until the stop has completed, then joins the pool.
  void wait();

  service_status snapshot() const;
  boost::asio::any_io_executor executor() { return pool_.get_executor(); }
  const service_log& log() const noexcept { return log_; }
  /// The admin listener's port (0 when there is none).
  std::uint16_t admin_port() const noexcept;

 private:
  void connection_stopped();
  std::shared_ptr<replay_store> store_for(const std::string& connection);
  std::shared_ptr<connection> find(const std::string& name) const;
  const connection_config& find_config(const std::string& name) const;
  /// Migrates the PostgreSQL tables.
  error_info prepare_database();
  /// Tries prepare_database again after `backoff` (doubling), then starts the connections.
  void retry_database(std::chrono::milliseconds backoff);
  void start_connections();

  service_config config_;
  service_log log_;
  boost::asio::thread_pool pool_;
  boost::asio::thread_pool blocking_pool_;  // sinks' writes and fsyncs, store commits
  std::unique_ptr<shared_store> store_;  // a file store
  // A PostgreSQL store: one pool for the stores and sinks of every connection.
  std::shared_ptr<postgresql::pool> database_;
  std::optional<postgresql::tables> tables_;
  std::shared_ptr<ownership> ownership_ = std::make_shared<ownership>();
  std::unique_ptr<boost::asio::steady_timer> database_timer_;
  std::optional<std::string> store_error_;  // guarded by mutex_
  std::vector<std::shared_ptr<sink>> sinks_;
  std::vector<std::shared_ptr<connection>> connections_;
  // With a PostgreSQL store: which connections this replica streams (its enabled ones).
  // Declared after the connections: it goes first, its threads with it.
  std::unique_ptr<lease_keeper> keeper_;
  std::unique_ptr<admin_server> admin_;
  std::chrono::system_clock::time_point started_at_;
  std::chrono::steady_clock::time_point started_steady_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t running_ = 0;
};

}  // namespace sfstream::serve
