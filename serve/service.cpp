#include "serve/service.hpp"

#include "serve/file_sink.hpp"
#include "serve/line_sink.hpp"
#include "serve/webhook_sink.hpp"
#include "sfstream/version.hpp"

namespace sfstream::serve {

service::service(service_config config)
    : config_(std::move(config)),
      log_(config_.format, config_.level, config_.secrets),
      pool_(config_.threads),
      blocking_pool_(config_.sink_threads) {
  store_ = std::make_unique<shared_store>(open_file_replay_store(config_.store_path));
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
    }
    sinks_.push_back(out);
    connections_.push_back(std::make_shared<connection>(
        pool_.get_executor(), blocking_pool_.get_executor(), conn, store_->view(conn.name), out,
        kind, log_));
  }
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
  log_.log(log_level::info, "",
           "starting " + std::to_string(connections_.size()) + " connection(s) on " +
               std::to_string(config_.threads) + " I/O and " + std::to_string(config_.sink_threads) +
               " sink thread(s); positions in " +
               config_.store_path.string());
  for (auto& c : connections_) c->start();
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
  log_.log(log_level::info, "", "stopping: draining, committing and disconnecting");
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
  }
  s.connections.reserve(connections_.size());
  for (const auto& c : connections_) s.connections.push_back(c->status());
  return s;
}

}  // namespace sfstream::serve
