#include "serve/service.hpp"


#include <cstdio>

#include <boost/asio/post.hpp>

#include "postgresql/replay_store.hpp"
#include "serve/file_sink.hpp"
#include "serve/line_sink.hpp"
#include "serve/postgresql_sink.hpp"
#include "serve/webhook_sink.hpp"
#include "sfstream/version.hpp"

namespace sfstream::serve {

service::service(service_config config)
    : config_(std::move(config)),
      log_(config_.format, config_.level, config_.secrets),
      pool_(config_.threads),
      blocking_pool_(config_.sink_threads) {
  if (config_.postgresql) {
    // Nothing is connected yet: start() migrates, so a database that is not up yet is waited for.
    postgresql::connect_options o;
    o.conninfo = config_.postgresql->conninfo;
    o.password = config_.postgresql->password;
    // A replica frozen inside a fenced transaction holds its lease row locked: the server ends
    // that transaction well before the lease expires, so a takeover is never held up by it.
    o.idle_in_transaction_timeout =
        std::max<std::chrono::milliseconds>(config_.postgresql->lease_ttl / 2, std::chrono::milliseconds(500));
    database_ = std::make_shared<postgresql::pool>(
        o, config_.postgresql->pool_size != 0 ? config_.postgresql->pool_size
                                              : config_.sink_threads);
    tables_.emplace(config_.postgresql->schema);
    database_timer_ = std::make_unique<boost::asio::steady_timer>(pool_.get_executor());
    // Every connection is streamed only under its lease, even with one replica: a second one
    // started by mistake must not stream it too.
    std::vector<std::string> enabled;
    for (const auto& conn : config_.connections)
      if (conn.enabled) enabled.push_back(conn.name);
    lease_keeper::hooks hooks;
    hooks.start = [this](const std::string& name) {
      if (auto c = find(name)) c->start();
    };
    hooks.stop = [this](const std::string& name, bool final, std::function<void()> stopped) {
      if (auto c = find(name)) {
        c->stop(std::move(stopped), final);
      } else {
        stopped();
      }
    };
    lease_keeper::settings ls;
    ls.replica = config_.postgresql->replica.empty() ? default_replica_id()
                                                     : config_.postgresql->replica;
    ls.ttl = config_.postgresql->lease_ttl;
    keeper_ = std::make_unique<lease_keeper>(o, *tables_, ownership_, ls, std::move(enabled),
                                             std::move(hooks), log_);
  } else {
    store_ = std::make_unique<shared_store>(open_file_replay_store(config_.store_path));
  }
  for (auto& conn : config_.connections) {
    const logger log = log_.for_connection(conn.name);
    std::shared_ptr<sink> out;
    std::string kind;
    switch (conn.sink.type) {
      case sink_config::kind::stdout_lines:
        out = make_stdout_sink(log);
        kind = "stdout";
        break;
      case sink_config::kind::file:
        out = make_file_sink({conn.sink.path, conn.sink.max_bytes, conn.sink.keep}, log);
        kind = "file";
        break;
      case sink_config::kind::webhook: {
        webhook_options o = conn.sink.webhook;
        o.log = log;
        error_info why;
        out = webhook_sink::create(pool_.get_executor(), std::move(o), &why);
        if (!out) {
          why.diag.context = "the webhook sink of connection " + conn.name;
          throw sfstream::error(why);
        }
        kind = "webhook";
        break;
      }
      case sink_config::kind::postgresql: {
        postgresql_sink_options o;
        o.database = database_;
        o.tables = *tables_;
        o.notify = conn.sink.notify;
        o.backoff_initial = conn.on_failure.retry_backoff_initial;
        o.backoff_max = conn.on_failure.retry_backoff_max;
        o.owner = ownership_;
        o.log = log;
        out = make_postgresql_sink(blocking_pool_.get_executor(), std::move(o));
        kind = "postgresql";
        break;
      }
    }
    sinks_.push_back(out);
    connections_.push_back(std::make_shared<connection>(
        pool_.get_executor(), blocking_pool_.get_executor(), conn, store_for(conn.name), out,
        kind, log_));
  }
}

std::shared_ptr<replay_store> service::store_for(const std::string& connection) {
  if (store_) return store_->view(connection);
  return report_lost_leases(
      postgresql::make_replay_store(
          database_, *tables_, connection,
          [owner = ownership_, connection] { return owner->fence(connection); }),
      connection, ownership_);
}

std::shared_ptr<connection> service::find(const std::string& name) const {
  for (const auto& c : connections_)
    if (c->name() == name) return c;
  return nullptr;
}

error_info service::prepare_database() {
  if (auto why = database_->run([&](postgresql::session& s) { return migrate(s, *tables_); }))
    return why;
  return {};
}

void service::retry_database(std::chrono::milliseconds backoff) {
  char delay[32];
  std::snprintf(delay, sizeof delay, "%.1f", static_cast<double>(backoff.count()) / 1000.0);
  {
    std::lock_guard lock{mutex_};
    if (stopping_) return;
    log_.log(log_level::error, "",
             "the PostgreSQL store is not usable: " + *store_error_ +
                 "; the connections wait for it, trying again in " + delay + " s");
  }
  database_timer_->expires_after(backoff);
  database_timer_->async_wait([this, backoff](boost::system::error_code ec) {
    if (ec) return;
    boost::asio::post(blocking_pool_, [this, backoff] {
      {
        std::lock_guard lock{mutex_};
        if (stopping_) return;
      }
      if (auto why = prepare_database()) {
        {
          std::lock_guard lock{mutex_};
          store_error_ = log_.redact(why.to_string());
        }
        retry_database(std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(30)));
        return;
      }
      {
        std::lock_guard lock{mutex_};
        store_error_.reset();
      }
      log_.log(log_level::info, "", "the PostgreSQL store answers: starting the connections");
      start_connections();
    });
  });
}

void service::start_connections() {
  std::lock_guard lock{mutex_};
  // A stop that came first has stopped every connection already: none may start now.
  if (stopping_) return;
  if (keeper_) {
    // The keeper starts each connection whose lease it claims; a disabled one is listed only.
    for (auto& c : connections_)
      if (!find_config(c->name()).enabled) c->start();
    keeper_->start();
    return;
  }
  for (auto& c : connections_) c->start();
}

const connection_config& service::find_config(const std::string& name) const {
  for (const auto& conn : config_.connections)
    if (conn.name == name) return conn;
  return config_.connections.front();
}

service::~service() {
  stop();
  wait();
}

error_info service::start() {
  started_at_ = std::chrono::system_clock::now();
  started_steady_ = std::chrono::steady_clock::now();
  if (config_.admin_bind) {
    admin_options o;
    o.address = *config_.admin_bind;
    o.port = config_.admin_port;
    admin_ = std::make_unique<admin_server>(pool_.get_executor(), o,
                                            [this] { return snapshot(); });
    if (auto why = admin_->listen()) {
      admin_.reset();
      return why;
    }
    log_.log(log_level::info, "",
             "admin listener on " + o.address + ":" + std::to_string(admin_->port()));
  }
  {
    std::lock_guard lock{mutex_};
    running_ = connections_.size();
  }
  const std::string where =
      config_.postgresql ? "PostgreSQL " + config_.postgresql->conninfo + " (schema " +
                               config_.postgresql->schema + ")"
                         : config_.store_path.string();
  log_.log(log_level::info, "",
           "starting " + std::to_string(connections_.size()) + " connection(s) on " +
               std::to_string(config_.threads) + " I/O and " + std::to_string(config_.sink_threads) +
               " sink thread(s); positions in " + where);
  if (database_) {
    if (auto why = prepare_database()) {
      // Tables newer than this build, a refused login, no such database: no wait helps.
      if (why.code == errc::invalid_config) return why;
      {
        std::lock_guard lock{mutex_};
        store_error_ = log_.redact(why.to_string());
      }
      retry_database(std::chrono::seconds(1));
      return {};
    }
  }
  start_connections();
  return {};
}

void service::stop() {
  std::size_t running = 0;
  {
    std::lock_guard lock{mutex_};
    if (stopping_) return;
    stopping_ = true;
    running = running_;
  }
  if (running == 0) {
    cv_.notify_all();
    return;
  }
  if (database_timer_) boost::asio::post(pool_, [this] { database_timer_->cancel(); });
  log_.log(log_level::info, "", "stopping: draining, committing and disconnecting");
  if (keeper_) {
    // The connections it holds stop first, then their leases are released.
    keeper_->stop([this] {
      std::lock_guard lock{mutex_};
      running_ = 0;
      cv_.notify_all();
    });
    return;
  }
  for (auto& c : connections_) c->stop([this] { connection_stopped(); });
}

void service::connection_stopped() {
  std::lock_guard lock{mutex_};
  if (running_ > 0) --running_;
  if (running_ == 0) cv_.notify_all();
}

void service::wait() {
  {
    std::unique_lock lock{mutex_};
    cv_.wait(lock, [this] { return stopping_ && running_ == 0; });
  }
  if (admin_) admin_->stop();
  for (auto& s : sinks_) s->stop();
  // Every connection has drained and committed: what is left on the pool (idle keep-alive
  // reads, a login nobody waits for) may be dropped.
  pool_.stop();
  blocking_pool_.stop();
  pool_.join();
  blocking_pool_.join();
}

std::uint16_t service::admin_port() const noexcept { return admin_ ? admin_->port() : 0; }

service_status service::snapshot() const {
  service_status s;
  s.version = version_string();
  s.started_at = started_at_;
  s.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_steady_);
  {
    std::lock_guard lock{mutex_};
    s.stopping = stopping_;
    s.store_error = store_error_;
  }
  s.connections.reserve(connections_.size());
  for (const auto& c : connections_) s.connections.push_back(c->status());
  if (keeper_) {
    s.replica = keeper_->figures();
    for (auto& c : s.connections) {
      c.lease = keeper_->lease(c.name);
      // Not held here and not running: another replica's to stream (or nobody's yet).
      const bool idle = c.state == connection_state::stopped ||
                        c.state == connection_state::starting ||
                        c.state == connection_state::failed;
      if (c.lease && !c.lease->held_here && idle && find_config(c.name).enabled)
        c.state = connection_state::standby;
    }
  }
  return s;
}

}  // namespace sfstream::serve
