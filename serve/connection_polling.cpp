// The polling side of a connection: a poll connection's runs, and a streaming connection's
// fallback while the org's daily event allocation is spent. Everything here runs on the
// connection's strand.
#include <cstdio>

#include <boost/asio/post.hpp>

#include "serve/connection.hpp"
#include "serve/poll_run.hpp"

namespace sfstream::serve {

namespace asio = boost::asio;

namespace {

std::string seconds_text(std::chrono::milliseconds ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(ms.count()) / 1000.0);
  return text;
}

}  // namespace

void connection::start_polling() {
  if (!polling_) {
    poll_run::settings s{config_.name,       config_.polling,     false,
                         config_.on_failure, config_.api_version, config_.network};
    auto p = std::make_shared<poll_run>(strand_.get_inner_executor(), blocking_, strand_,
                                        std::move(s), credentials_, store_, sink_, log_);
    std::lock_guard lock{mutex_};
    polling_ = std::move(p);
  }
  if (polling_->running()) {
    // A stop still finishing (the connection was started again at once): start after it.
    polling_->stop([self = shared_from_this()] {
      if (!self->stopping_) self->start_polling();
    });
    return;
  }
  {
    std::lock_guard lock{mutex_};
    state_ = connection_state::polling;
  }
  polling_->start([self = shared_from_this()](const error_info& why) { self->retry_or_fail(why); });
}

logger connection::client_log() {
  ++run_;
  limit_seen_ = false;
  if (!config_.fallback) return log_;
  return watch_daily_event_limit(log_, [weak = weak_from_this(), run = run_] {
    if (auto self = weak.lock())
      asio::post(self->strand_, [self, run] { self->on_daily_limit(run); });
  });
}

void connection::on_daily_limit(std::uint64_t run) {
  if (stopping_ || run != run_ || limit_seen_ || !config_.fallback) return;
  limit_seen_ = true;
  const std::string every = seconds_text(config_.fallback->probe_interval);
  if (!fallback_) {
    fallback_ = true;
    {
      std::lock_guard lock{mutex_};
      ++fallbacks_;
    }
    log_.log(log_level::warning,
             "the org's daily event allocation is spent: streaming stops, polling " +
                 std::to_string(config_.fallback->polling.objects.size()) +
                 " object(s) instead (channels /poll/<Object>); trying streaming again every " +
                 every + " s");
  } else {
    log_.log(log_level::info,
             "streaming is still refused (daily event allocation spent): polling goes on; "
             "next try in " +
                 every + " s");
  }
  std::shared_ptr<client> c;
  {
    std::lock_guard lock{mutex_};
    c = client_;
  }
  // The client drains and commits what it holds; its end starts the polling (after the newest
  // event committed) and arms the next try (on_run_finished).
  if (c) {
    c->cancel();
    return;
  }
  start_fallback_polling();
  probe_later();
}

void connection::start_fallback_polling() {
  if (!polling_) {
    poll_run::settings s{config_.name,       config_.fallback->polling, true,
                         config_.on_failure, config_.api_version,       config_.network};
    auto p = std::make_shared<poll_run>(strand_.get_inner_executor(), blocking_, strand_,
                                        std::move(s), credentials_, store_, sink_, log_);
    std::lock_guard lock{mutex_};
    polling_ = std::move(p);
  }
  if (polling_->running()) return;
  // Just after the newest event committed on any channel: what the stream had not delivered
  // when it was refused is polled too.
  std::optional<std::chrono::system_clock::time_point> since;
  try {
    for (const auto& ch : config_.channels) {
      const auto p = store_->load(ch.name.substr(0, ch.name.find('?')));
      if (!p || !p->cursor.empty() || p->event_time.time_since_epoch().count() == 0) continue;
      const auto after = p->event_time + std::chrono::milliseconds(1);
      if (!since || *since < after) since = after;
    }
  } catch (const sfstream::error& e) {
    log_.log(log_level::warning,
             "the fallback starts at the newest records: the stored positions could not be "
             "read (" + redact_(e.info().to_string()) + ")");
    since.reset();
  }
  polling_->start(
      [weak = weak_from_this()](const error_info& why) {
        auto self = weak.lock();
        if (!self) return;
        // Started again at the next try of streaming, if streaming is still refused then.
        self->log_.log(log_level::error,
                       "the fallback polling ended: " + self->redact_(why.to_string()) +
                           "; polling again at the next try of streaming");
      },
      since);
}

void connection::probe_later() {
  probe_timer_.expires_after(config_.fallback->probe_interval);
  probe_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->stopping_ || !self->fallback_) return;
    self->start_fallback_polling();  // if it had ended
    self->log_.log(log_level::info, "trying streaming again, from the stored replay ids");
    self->start_run();
  });
}

void connection::on_stream_back() {
  if (!fallback_ || stopping_) return;
  fallback_ = false;
  probe_timer_.cancel();
  log_.log(log_level::info,
           "streaming works again (resubscribed from the stored replay ids): the fallback "
           "polling stops once the sink confirmed its batch in flight");
  std::shared_ptr<poll_run> p;
  {
    std::lock_guard lock{mutex_};
    p = polling_;
  }
  if (!p) return;
  p->stop([self = shared_from_this(), p] {
    if (self->stopping_) return;
    if (self->fallback_) {
      // The allocation ran out again meanwhile: polling goes on from the committed cursors.
      self->start_fallback_polling();
      return;
    }
    p->retire();
    {
      std::lock_guard lock{self->mutex_};
      self->polling_.reset();
    }
    self->log_.log(log_level::info, "the fallback polling stopped: its cursors are committed");
  });
}

std::function<void()> connection::stop_polling(std::function<void()> stopped) {
  std::shared_ptr<poll_run> p;
  {
    std::lock_guard lock{mutex_};
    p = polling_;
  }
  if (!p || !p->running()) return stopped;
  auto left = std::make_shared<int>(2);
  auto part = [left, stopped = std::move(stopped)] {
    if (--*left == 0) stopped();
  };
  p->stop(part);
  return part;
}

}  // namespace sfstream::serve
