#include "serve/connection.hpp"

#include <cstdio>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include "serve/connection_credentials.hpp"
#include "serve/poll_run.hpp"
#include "serve/service_log.hpp"

namespace sfstream::serve {

namespace asio = boost::asio;

/// Events handed to the sink and not confirmed yet, per configured channel (shared with the
/// client's callbacks, which may outlive a run).
struct connection::channel_counters {
  std::mutex mutex;
  std::map<std::string, std::size_t> backlog;
};

connection::connection(asio::any_io_executor executor, asio::any_io_executor blocking,
                       connection_config config,
                       std::shared_ptr<replay_store> store, std::shared_ptr<sink> out,
                       std::string sink_kind, const service_log& log)
    : config_(std::move(config)),
      strand_(asio::make_strand(executor)),
      restart_timer_(strand_),
      probe_timer_(strand_),
      blocking_(std::move(blocking)),
      store_(std::move(store)),
      sink_(std::move(out)),
      sink_kind_(std::move(sink_kind)),
      log_(log.for_connection(config_.name)),
      redact_([log](std::string_view text) { return log.redact(text); }),
      counters_(std::make_shared<channel_counters>()) {
  credentials_ = make_credentials(executor, config_.auth, config_.network, log_);
  for (const auto& ch : config_.channels) counters_->backlog[ch.name] = 0;
}

connection::~connection() = default;

void connection::start() {
  if (!config_.enabled) {
    std::lock_guard lock{mutex_};
    state_ = connection_state::stopped;
    log_.log(log_level::info, "disabled in the configuration: not started");
    return;
  }
  asio::dispatch(strand_, [self = shared_from_this()] {
    if (self->running_) return;
    // A start after a completed stop begins afresh.
    ++self->runs_;
    self->stopping_ = false;
    self->fallback_ = false;  // streaming is tried first; the limit brings the fallback back
    self->backoff_ = std::chrono::milliseconds(0);
    {
      std::lock_guard lock{self->mutex_};
      self->state_ = connection_state::starting;
      self->last_error_.reset();
    }
    self->start_run();
  });
}

void connection::start_run() {
  // One run at a time: a second client would replace (and destroy) the running one.
  if (stopping_ || running_) return;
  if (config_.kind == connection_kind::poll) {
    start_polling();
    return;
  }
  client_config cc;
  cc.credentials = credentials_;
  cc.api_version = config_.api_version;
  cc.network = config_.network;
  cc.log = client_log();
  cc.store = store_;
  cc.policy = config_.policy;
  cc.on_handler_failure = config_.on_failure;
  cc.queue_capacity = config_.queue_capacity;
  cc.queue_max_bytes = config_.queue_max_bytes;
  std::shared_ptr<client> c;
  try {
    c = std::make_shared<client>(strand_.get_inner_executor(), blocking_, cc);
  } catch (const sfstream::error& e) {
    // The store could not be read (a database out of reach): a run that failed at once.
    error_info why = e.info();
    if (why.code != errc::replay_store_io && why.code != errc::lease_lost) {
      why.cause = why.code;
      why.code = make_error_code(errc::replay_store_io);
    }
    retry_or_fail(why);
    return;
  }
  streamed_ = false;
  for (const auto& ch : config_.channels) {
    subscription_callbacks cbs;
    const std::string channel = ch.name;
    cbs.on_batch = [out = sink_, counters = counters_, name = config_.name, channel](
                       std::span<const event> events, batch_done done) {
      {
        std::lock_guard lock{counters->mutex};
        counters->backlog[channel] += events.size();
      }
      out->deliver(name, channel, events,
                   [counters, channel, n = events.size(), done = std::move(done)](
                       std::size_t handled, error_info error) {
                     {
                       std::lock_guard lock{counters->mutex};
                       auto& b = counters->backlog[channel];
                       b -= std::min(b, n);
                     }
                     done(handled, std::move(error));
                   });
    };
    // The client logs the subscription itself.
    cbs.on_subscribed = [weak = weak_from_this()](std::int64_t) {
      auto self = weak.lock();
      if (!self) return;
      self->streamed_ = true;  // a later failure backs off afresh
      if (self->fallback_) asio::post(self->strand_, [self] { self->on_stream_back(); });
    };
    cbs.on_gap = [weak = weak_from_this(), log = log_](const gap_record& gap) {
      log.log(log_level::warning, "gap: " + gap.to_string());
      if (auto self = weak.lock()) {
        std::lock_guard lock{self->mutex_};
        self->last_gap_ = gap.to_string();
      }
    };
    // A rejected subscription is logged by the client itself (once).
    if (auto why = c->subscribe(ch.name, ch.start, std::move(cbs), ch.policy)) {
      // The configuration was checked; a channel the client still refuses is this
      // connection's failure alone.
      std::lock_guard lock{mutex_};
      state_ = connection_state::failed;
      last_error_ = redact_(why.to_string());
      log_.log(log_level::error, "cannot subscribe to " + ch.name + ": " + *last_error_);
      return;
    }
  }
  {
    std::lock_guard lock{mutex_};
    client_ = c;
    if (state_ == connection_state::failed) state_ = connection_state::recovering;
  }
  running_ = true;
  c->async_run(asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec) {
    self->on_run_finished(ec);
  }));
}

bool connection::restartable(const error_info& why) const {
  if (is_retryable(why)) return true;
  // A sink that kept failing under `retry`, an unwritable dead letter or replay store: the
  // destination may come back (a receiver restarted, space freed). A restart resumes from
  // the committed positions, losing nothing.
  return why.code == errc::handler_failed || why.code == errc::output_failed ||
         why.code == errc::replay_store_io;
}

void connection::on_run_finished(std::error_code ec) {
  running_ = false;
  std::shared_ptr<client> finished;
  error_info why;
  {
    std::lock_guard lock{mutex_};
    finished = std::move(client_);
  }
  if (finished) {
    why = finished->last_error();
    if (!why.code) why.code = ec;
  }
  // The client is destroyed later, outside its own completion.
  asio::post(strand_, [finished] {});
  if (stopping_) {
    {
      std::lock_guard lock{mutex_};
      state_ = connection_state::stopped;
    }
    if (why.code && why.code != errc::cancelled)
      log_.log(log_level::error, "stopped with an error: " + redact_(why.to_string()));
    if (auto done = std::move(stopped_)) done();
    return;
  }
  if (fallback_) {
    // The client committed what the sink confirmed: the polling starts after it.
    start_fallback_polling();
    probe_later();
    return;
  }
  retry_or_fail(why);
}

void connection::retry_or_fail(const error_info& why) {
  const std::string text = redact_(why.code ? why.to_string() : std::string("the run ended"));
  const bool again = why.code && restartable(why);
  {
    std::lock_guard lock{mutex_};
    state_ = connection_state::failed;
    last_error_ = text;
  }
  if (!again) {
    log_.log(log_level::error, "failed: " + text +
                                   "; not retried (no retry can fix this: correct the "
                                   "configuration and restart the service)");
    return;
  }
  if (streamed_) backoff_ = std::chrono::milliseconds(0);
  backoff_ = backoff_.count() == 0 ? config_.restart_backoff
                                   : std::min(backoff_ * 2, config_.restart_backoff_max);
  char delay[32];
  std::snprintf(delay, sizeof delay, "%.1f", static_cast<double>(backoff_.count()) / 1000.0);
  log_.log(log_level::error, "failed: " + text + "; starting again in " + delay + " s");
  restart_timer_.expires_after(backoff_);
  // A stop (or a stop and a new start) after the timer fired, with its handler still queued,
  // must not start a second run: only the run this wait belongs to is restarted.
  restart_timer_.async_wait([self = shared_from_this(), runs = runs_](boost::system::error_code wait) {
    if (!wait && runs == self->runs_) self->start_run();
  });
}

void connection::stop(std::function<void()> stopped, bool final) {
  asio::dispatch(strand_, [self = shared_from_this(), stopped = std::move(stopped),
                           final]() mutable {
    if (self->stopping_) {
      // Stopped already, or a stop under way: `stopped` comes when that one completes.
      if (final) self->sink_->stop();
      if (!self->running_) {
        stopped();
        return;
      }
      self->stopped_ = [first = std::move(self->stopped_), then = std::move(stopped)] {
        if (first) first();
        then();
      };
      return;
    }
    self->stopping_ = true;
    ++self->runs_;
    self->restart_timer_.cancel();
    self->probe_timer_.cancel();
    if (final) self->sink_->stop();
    stopped = self->stop_polling(std::move(stopped));
    std::shared_ptr<client> c;
    {
      std::lock_guard lock{self->mutex_};
      c = self->client_;
    }
    if (!self->running_ || !c) {
      {
        std::lock_guard lock{self->mutex_};
        if (self->state_ != connection_state::failed) self->state_ = connection_state::stopped;
      }
      stopped();
      return;
    }
    self->stopped_ = std::move(stopped);
    c->cancel();
  });
}

connection_status connection::status() const {
  connection_status s;
  s.name = config_.name;
  s.sink_kind = sink_kind_;
  std::shared_ptr<client> c;
  {
    std::lock_guard lock{mutex_};
    c = client_;
    s.state = state_;
    s.last_error = last_error_;
  }
  if (c) {
    const client_state cs = c->state();
    s.client_state = std::string(to_string(cs));
    s.client = c->metrics();
    if (s.state != connection_state::stopped) {
      switch (cs) {
        case client_state::connected:
        case client_state::paused:
          s.state = streamed_ ? connection_state::streaming : connection_state::starting;
          break;
        case client_state::disconnecting:
        case client_state::closed:
          break;
        default:
          s.state = s.client.handshakes > 0 || streamed_ ? connection_state::recovering
                                                         : s.state == connection_state::failed
                                                               ? connection_state::recovering
                                                               : connection_state::starting;
          break;
      }
    }
  } else {
    s.client_state = "closed";
  }
  std::map<std::string, std::size_t> backlog;
  {
    std::lock_guard lock{counters_->mutex};
    backlog = counters_->backlog;
  }
  for (const auto& ch : config_.channels) {
    channel_status cs;
    cs.channel = ch.name;
    const std::string key = ch.name.substr(0, ch.name.find('?'));
    if (auto it = s.client.channels.find(key); it != s.client.channels.end()) {
      cs.events = it->second.events;
      cs.last_replay_id = it->second.last_replay_id;
      cs.last_event_age = it->second.last_event_age;
    } else if (auto it2 = s.client.channels.find(ch.name); it2 != s.client.channels.end()) {
      cs.events = it2->second.events;
      cs.last_replay_id = it2->second.last_replay_id;
      cs.last_event_age = it2->second.last_event_age;
    }
    if (c) cs.committed_replay_id = c->committed_replay_id(ch.name);
    cs.sink_backlog = backlog[ch.name];
    s.channels.push_back(std::move(cs));
  }
  s.sink = sink_->figures();
  {
    std::lock_guard lock{mutex_};
    if (polling_) s.polling = polling_->status();
    s.fallbacks = fallbacks_;
    s.last_gap = last_gap_;
  }
  if (fallback_ && s.state != connection_state::stopped) s.state = connection_state::fallback;
  return s;
}

}  // namespace sfstream::serve
