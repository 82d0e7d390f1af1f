// The Asio runtime of the streaming client: one strand owns the Bayeux session, one pump()
// carries out the actions the session asks for and feeds every completion back as an input.
// Events go through a bounded queue to the handlers, which run on the handler executor.
#include "sfstream/client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <system_error>
#include <variant>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "bayeux/channel.hpp"
#include "bayeux/session.hpp"
#include "src/client/client_impl.hpp"
#include "src/client/durable_append.hpp"
#include "src/transport/cookie_jar.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/options.hpp"

namespace sfstream {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

std::string_view to_string(client_state state) noexcept {
  switch (state) {
    case client_state::unconnected:
      return "unconnected";
    case client_state::authenticating:
      return "authenticating";
    case client_state::handshaking:
      return "handshaking";
    case client_state::connected:
      return "connected";
    case client_state::backing_off:
      return "backing_off";
    case client_state::paused:
      return "paused";
    case client_state::disconnecting:
      return "disconnecting";
    case client_state::closed:
      return "closed";
  }
  return "unconnected";
}

std::string_view to_string(handler_failure policy) noexcept {
  switch (policy) {
    case handler_failure::stop:
      return "stop";
    case handler_failure::retry:
      return "retry";
    case handler_failure::dead_letter:
      return "dead_letter";
  }
  return "stop";
}

namespace {

client_state to_client_state(bayeux::session_state s) {
  switch (s) {
    case bayeux::session_state::unconnected:
      return client_state::unconnected;
    case bayeux::session_state::authenticating:
      return client_state::authenticating;
    case bayeux::session_state::handshaking:
      return client_state::handshaking;
    case bayeux::session_state::connected:
      return client_state::connected;
    case bayeux::session_state::backing_off:
      return client_state::backing_off;
    case bayeux::session_state::paused:
      return client_state::paused;
    case bayeux::session_state::disconnecting:
      return client_state::disconnecting;
    case bayeux::session_state::closed:
      return client_state::closed;
  }
  return client_state::unconnected;
}

log_level to_log_level(bayeux::diagnostic_level level) {
  switch (level) {
    case bayeux::diagnostic_level::info:
      return log_level::info;
    case bayeux::diagnostic_level::warning:
      return log_level::warning;
    case bayeux::diagnostic_level::error:
      return log_level::error;
  }
  return log_level::info;
}

bayeux::session_config make_session_config(const client_config& config) {
  bayeux::session_config out;
  out.policy = config.policy;
  out.control_timeout = config.network.request_timeout;
  out.network_slack = config.long_poll_slack;
  out.disconnect_timeout = config.disconnect_timeout;
  out.max_retries = config.max_retries;
  out.backoff_initial = config.backoff_initial;
  out.backoff_max = config.backoff_max;
  out.limit_backoff_initial = config.limit_backoff_initial;
  out.limit_backoff_max = config.limit_backoff_max;
  out.jitter_seed = config.jitter_seed != 0 ? config.jitter_seed : std::random_device{}();
  return out;
}

}  // namespace

namespace detail {

client_runtime::client_runtime(asio::any_io_executor io, asio::any_io_executor handlers,
                               client_config config)
    : strand_(asio::make_strand(io)),
      handlers_(std::move(handlers)),
      config_(std::move(config)),
      session_(make_session_config(config_)),
      timer_(strand_),
      retry_timer_(strand_),
      queue_(delivery_limits{config_.queue_capacity, config_.queue_max_bytes}) {
  if (!config_.store) config_.store = make_memory_replay_store();
  // Stored positions become each subscription's starting point in subscribe(), where their
  // age is checked against the channel's retention first.
  positions_ = config_.store->load_all();
}

client_runtime::~client_runtime() = default;

void client_runtime::log(log_level level, std::string_view text) const {
  config_.log.log(level, text);
}

error_info client_runtime::subscribe(const std::string& channel, std::int64_t replay_from,
                                     subscription_callbacks callbacks,
                                     std::optional<replay_policy> policy) {
  auto parsed = bayeux::parse_channel(channel);
  if (!parsed) return parsed.error();
  if (!parsed->subscribable()) {
    return {errc::invalid_channel,
            {"", "meta channels cannot be subscribed to", "subscribing to " + channel}};
  }
  if (replay_from < replay_all) {
    return {errc::invalid_replay_id,
            {"", std::to_string(replay_from), "subscribing to " + channel}};
  }
  const std::string key{parsed->replay_key()};
  // A stored position wins over replay_from: that is what makes a restart lossless. The
  // session checks it against the channel's retention and applies the replay policy.
  std::optional<bayeux::stored_position> stored;
  {
    std::lock_guard lock{mutex_};
    if (auto it = positions_.find(key); it != positions_.end()) {
      stored = bayeux::stored_position{it->second.replay_id, it->second.event_time,
                                       std::chrono::system_clock::now()};
    }
    ++subscriptions_version_;
    subscriptions_[channel] = subscription{
        key, std::make_shared<const subscription_callbacks>(std::move(callbacks))};
  }
  asio::dispatch(strand_, [self = shared_from_this(), channel, replay_from, policy, stored] {
    if (auto e = self->session_.subscribe(channel, replay_from, steady::now(), policy, stored)) {
      self->log(log_level::error, "subscribe " + channel + ": " + e.to_string());
      // The session refused it (e.g. a stored position that is negative): say so to the
      // subscription rather than leave it waiting.
      self->enqueue(queue_item{queue_item::kind::rejected, channel, {}, nullptr,
                               std::make_shared<const error_info>(e), 0});
    }
    self->pump();
  });
  return {};
}

void client_runtime::unsubscribe(const std::string& channel) {
  asio::dispatch(strand_, [self = shared_from_this(), channel] {
    self->session_.unsubscribe(channel, steady::now());
    self->pump();
  });
}

void client_runtime::start_run(std::function<void(std::error_code)> done) {
  asio::dispatch(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    // One run per client: the queue and the session keep what a run did.
    if (self->run_ != run_state::idle) {
      asio::post(self->handlers_, [done = std::move(done)] { done(errc::invalid_config); });
      return;
    }
    self->run_ = run_state::running;
    self->run_done_ = std::move(done);
    if (!self->config_.credentials) {
      self->finish_run(
          {errc::auth_no_credentials, {"", "client_config.credentials is empty", "starting"}});
      return;
    }
    const auto& failure = self->config_.on_handler_failure;
    if (failure.action == handler_failure::dead_letter && failure.dead_letter_path.empty()) {
      self->finish_run(
          {errc::invalid_config,
           {"", "handler failure policy dead_letter needs a dead_letter_path", "starting"}});
      return;
    }
    self->session_.start(steady::now());
    self->pump();
  });
}

void client_runtime::cancel() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    const auto r = self->run_.load();
    if (r != run_state::running && r != run_state::paused) return;
    self->run_ = run_state::stopping;
    self->log(log_level::info, "stopping: disconnecting and draining the event queue");
    self->session_.stop(steady::now());
    self->pump();
    // A handler retry waiting out its backoff runs now, and is its event's last try: a stop
    // is never held up by a destination that keeps failing (the event stays uncommitted and
    // the next run gets it again).
    std::lock_guard lock{self->retry_mutex_};
    self->retry_timer_.cancel();
  });
}

void client_runtime::shutdown() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->run_ = run_state::closed;
    self->timer_.cancel();
    for (auto& lane : self->lanes_) {
      if (lane) lane->cancel();
    }
    std::lock_guard lock{self->retry_mutex_};
    self->retry_timer_.cancel();
  });
}

client_state client_runtime::state() const {
  return state_.load();
}

std::optional<std::int64_t> client_runtime::committed_replay_id(const std::string& channel) const {
  std::lock_guard lock{mutex_};
  auto it = positions_.find(std::string(bayeux::replay_key_of(channel)));
  if (it == positions_.end()) return std::nullopt;
  return it->second.replay_id;
}

client_metrics client_runtime::metrics() const {
  const auto q = queue_.figures();
  std::lock_guard lock{mutex_};
  client_metrics m = metrics_;
  m.queue_depth = q.events;
  m.queue_high_water = q.events_high_water;
  m.queue_bytes = q.bytes;
  m.queue_bytes_high_water = q.bytes_high_water;
  const auto now = std::chrono::system_clock::now();
  for (auto& [key, c] : m.channels) {
    auto it = last_event_time_.find(key);
    if (it != last_event_time_.end()) {
      c.last_event_age = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second);
    }
  }
  return m;
}

error_info client_runtime::last_error() const {
  std::lock_guard lock{mutex_};
  return last_error_;
}

// --- the pump: carry out what the session asks, on the strand ------------------------------

void client_runtime::pump() {
  for (;;) {
    auto next = session_.next_action();
    if (!next) {
      if (staged_.empty()) break;
      deliver_staged();  // may pause the stream: its actions are carried out next
      continue;
    }
    if (auto* d = std::get_if<bayeux::deliver>(&*next)) {
      carry_out(*d);
      continue;
    }
    deliver_staged();  // events before any other action, in order
    std::visit([this](auto& a) { carry_out(a); }, *next);
  }
  state_ = to_client_state(session_.state());
  std::lock_guard lock{mutex_};
  const auto& c = session_.counters();
  metrics_.handshakes = c.handshakes;
  metrics_.rehandshakes_by_cause = c.rehandshakes_by_cause;
  metrics_.reconnects_by_cause = c.reconnects_by_cause;
}

void client_runtime::carry_out(bayeux::send& a) {
  auto& lane = lanes_[static_cast<std::size_t>(a.lane)];
  if (!lane) {
    session_.on_transport_error(
        a.lane, {errc::connection_failed, {"", "no instance URL yet", "sending"}}, steady::now());
    return;
  }
  transport::http_request request;
  request.method = "POST";
  request.target = cometd_path_;
  request.headers.emplace_back("Content-Type", "application/json");
  request.headers.emplace_back("Authorization", token_.token_type + " " + token_.token);
  request.body = std::move(a.body);
  request.resend_if_stale = a.lane != bayeux::lane::long_poll;
  if (config_.log.enabled(log_level::debug)) log(log_level::debug, "→ " + request.body);
  const auto which = a.lane;
  const auto generation = ++generation_[static_cast<std::size_t>(which)];
  lane->async_exchange(
      std::move(request), a.deadline,
      asio::bind_executor(strand_, [self = shared_from_this(), which, generation](
                                       error_info error, transport::http_response response) {
        self->on_exchange(which, generation, std::move(error), std::move(response));
      }));
}

void client_runtime::on_exchange(bayeux::lane which, std::uint64_t generation, error_info error,
                                 transport::http_response response) {
  if (run_ == run_state::closed || generation != generation_[static_cast<std::size_t>(which)]) {
    return;  // aborted
  }
  const auto now = steady::now();
  if (error) {
    log(log_level::debug, "exchange failed: " + error.to_string());
    session_.on_transport_error(which, std::move(error), now);
  } else {
    {
      std::lock_guard lock{mutex_};
      metrics_.bytes += response.body.size();
    }
    if (config_.log.enabled(log_level::debug)) {
      log(log_level::debug, "← " + std::to_string(response.status) + " " + response.body);
    }
    // The body moves into the buffer the reply's events share: no byte is copied.
    session_.on_reply(which, response.status,
                      std::make_shared<const std::string>(std::move(response.body)), now);
  }
  pump();
}

void client_runtime::carry_out(bayeux::abort& a) {
  ++generation_[static_cast<std::size_t>(a.lane)];
  auto& lane = lanes_[static_cast<std::size_t>(a.lane)];
  if (!lane) return;
  // A cancelled exchange still unwinds its I/O for a while; the next exchange gets a fresh
  // connection rather than sharing the lane with that unwinding operation.
  lane->cancel();
  lane = transport::http_lane::create(strand_, *instance_, tls_, transport_options_, cookies_);
}

void client_runtime::carry_out(bayeux::wait& a) {
  timer_.expires_after(a.duration);
  timer_.async_wait(
      [self = shared_from_this(), target = timer_.expiry()](boost::system::error_code ec) {
        if (ec || self->run_ == run_state::closed || self->timer_.expiry() != target) {
          return;  // replaced or cancelled
        }
        self->session_.on_timer(steady::now());
        self->pump();
      });
}

void client_runtime::carry_out(bayeux::authenticate& a) {
  {
    std::lock_guard lock{mutex_};
    ++metrics_.authentications;
  }
  log(log_level::info,
      std::string(a.force_refresh ? "refreshing credentials: " : "authenticating: ") +
          config_.credentials->describe());
  // The provider keeps this callback until its login completes, and the runtime keeps the
  // provider: a weak reference, so a runtime abandoned mid-login is freed, not kept in a cycle.
  // The provider calls it on its own executor (a std::function has no associated executor):
  // the runtime's state is touched only on its strand.
  config_.credentials->async_token(a.force_refresh, [weak = weak_from_this()](
                                                        error_info error, access_token token) {
    const auto self = weak.lock();
    if (!self) return;
    asio::dispatch(self->strand_, [self, error = std::move(error),
                                   token = std::move(token)]() mutable {
        if (self->run_ == run_state::closed) return;
        const auto now = steady::now();
        if (error) {
          // A failure the session retries is worth a warning; one that ends the run is
          // reported once, by whoever receives the run's error.
          self->log(is_retryable(error) ? log_level::warning : log_level::debug,
                    "authentication failed: " + error.to_string());
          self->session_.on_authentication_failed(std::move(error), now);
        } else if (auto bad = self->use_token(std::move(token))) {
          self->session_.on_authentication_failed(std::move(bad), now);
        } else {
          self->session_.on_authenticated(now);
        }
        self->pump();
    });
  });
}

error_info client_runtime::use_token(access_token token) {
  error_info why;
  auto instance = transport::url::parse(token.instance_url, &why);
  if (!instance) {
    why.diag.context = "reading the instance URL of the token";
    return why;
  }
  instance->target = "/";
  const bool same_origin = instance_ && instance_->origin() == instance->origin();
  token_ = std::move(token);
  if (token_.token_type.empty()) token_.token_type = "Bearer";
  if (same_origin && lanes_[0] && lanes_[1]) return {};

  error_info bad;
  auto options = transport::make_transport_options(config_.network, &bad);
  if (bad) return bad;
  if (!tls_ && instance->is_https()) {
    tls_ = transport::make_client_tls_context(options, &bad);
    if (bad) return bad;
  }
  instance_ = instance;
  transport_options_ = options;
  cometd_path_ = "/cometd/" + config_.api_version;
  cookies_ = std::make_shared<transport::cookie_jar>();
  for (auto& lane : lanes_) {
    if (lane) lane->cancel();
    lane = transport::http_lane::create(strand_, *instance_, tls_, options, cookies_);
  }
  log(log_level::info, "streaming endpoint: " + instance_->origin() + cometd_path_);
  return {};
}

void client_runtime::carry_out(bayeux::deliver& a) {
  // Staged: the events of one reply reach the queue together (deliver_staged), with one lock
  // for the figures, one for the queue and one wake-up of the handler side.
  std::optional<std::int64_t> id = a.event.replay_id;
  std::string key = std::move(a.event.replay_key);
  const std::string_view json = a.event.json();
  const std::string_view data = a.event.data_json();
  event ev{std::move(a.event.channel), id, std::move(a.event.body), json, data};
  if (config_.commit == commit_mode::on_receive && id) {
    session_.commit(key, *id);
  }
  staged_.push_back(
      queue_item{queue_item::kind::event, std::move(key), std::move(ev), nullptr, nullptr, 0});
}

void client_runtime::deliver_staged() {
  if (staged_.empty()) return;
  {
    std::lock_guard lock{mutex_};
    const auto now = std::chrono::system_clock::now();
    metrics_.events += staged_.size();
    const std::string* last_key = nullptr;
    channel_metrics* c = nullptr;
    for (const auto& item : staged_) {
      if (last_key == nullptr || *last_key != item.channel) {
        last_key = &item.channel;
        c = &metrics_.channels[item.channel];
        last_event_time_[item.channel] = now;
      }
      ++c->events;
      c->last_replay_id = item.ev.replay_id();
    }
  }
  const bool full = queue_.push_all(staged_);
  schedule_dispatch();
  if (full) pause_stream();
}

void client_runtime::pause_stream() {
  // Back-pressure: a full queue (events or bytes) disconnects cleanly instead of growing
  // memory or letting the long poll lapse; the session resumes from the last received ids,
  // which makes the pause lossless.
  if (run_ != run_state::running) return;
  run_ = run_state::paused;
  const auto q = queue_.figures();
  {
    std::lock_guard lock{mutex_};
    ++metrics_.pauses;
  }
  log(log_level::warning, "event queue full (" + std::to_string(q.events) + " events, " +
                              std::to_string(q.bytes) +
                              " bytes): disconnecting until the handlers catch up");
  session_.pause(steady::now());
}

void client_runtime::carry_out(bayeux::subscribed& a) {
  log(log_level::info,
      "subscribed to " + a.channel + " from replay id " + std::to_string(a.replay_from));
  enqueue(queue_item{queue_item::kind::subscribed, a.channel, {}, nullptr, nullptr, a.replay_from});
}

void client_runtime::carry_out(bayeux::subscription_failed& a) {
  // Reported once: to the subscription's on_rejected when it has one (its receiver says it),
  // else in the log.
  bool reported = false;
  {
    std::lock_guard lock{mutex_};
    if (auto it = subscriptions_.find(a.channel); it != subscriptions_.end()) {
      reported = it->second.callbacks && it->second.callbacks->on_rejected;
    }
  }
  log(reported ? log_level::debug : log_level::error,
      "subscription to " + a.channel + " rejected: " + a.error.to_string());
  enqueue(queue_item{queue_item::kind::rejected, a.channel, {}, nullptr,
                     std::make_shared<const error_info>(a.error), 0});
}

void client_runtime::carry_out(bayeux::unsubscribed& a) {
  log(log_level::info, "unsubscribed from " + a.channel);
  std::lock_guard lock{mutex_};
  ++subscriptions_version_;
  subscriptions_.erase(a.channel);
}

void client_runtime::carry_out(bayeux::gap& a) {
  gap_record g;
  g.channel = std::string(bayeux::replay_key_of(a.channel));
  g.last_replay_id = a.last_replay_id;
  g.cause = a.cause;
  g.policy_taken = a.taken;
  g.resumed_from = a.resumed_from;
  // The session's times are steady-clock readings; the record speaks wall-clock time.
  const auto steady_now = steady::now();
  const auto wall_now = std::chrono::system_clock::now();
  auto wall = [&](steady::time_point t) {
    return wall_now -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - t);
  };
  if (a.since) g.since = wall(*a.since);
  if (a.until) g.until = wall(*a.until);
  {
    std::lock_guard lock{mutex_};
    if (auto it = positions_.find(g.channel);
        it != positions_.end() && a.last_replay_id && it->second.replay_id == *a.last_replay_id) {
      g.last_event_time = it->second.event_time;
    }
    ++metrics_.gaps;
  }
  log(log_level::warning, "replay gap: " + g.to_string());
  enqueue(queue_item{queue_item::kind::gap, a.channel, {},
                     std::make_shared<const gap_record>(std::move(g)), nullptr, 0});
}

void client_runtime::carry_out(bayeux::diagnostic& a) {
  log(to_log_level(a.level), a.text);
}

void client_runtime::carry_out(bayeux::finished& a) {
  timer_.cancel();
  finish_run(std::move(a.error));
}

void client_runtime::finish_run(error_info error) {
  // A failure reported by the handler side (handler, dead letter, store) stays the run's
  // error: the disconnect it asked for finishes the session without one.
  if (!final_error_) final_error_ = std::move(error);
  // The run's error goes to async_run's completion (and last_error()), whose receiver reports
  // it: logging it here as well would report one failure twice.
  if (final_error_) log(log_level::debug, "client finished: " + final_error_.to_string());
  {
    std::lock_guard lock{mutex_};
    last_error_ = final_error_;
  }
  if (run_ != run_state::closed) run_ = run_state::finished;
  // The run completes once the handlers have drained what is queued and the positions are
  // committed: a graceful stop hands nothing back unhandled.
  enqueue(queue_item{queue_item::kind::finished, {}, {}, nullptr, nullptr, 0});
}

void client_runtime::fail_run(error_info error) {
  // Handler side. Nothing queued or pushed later is handled: the committed position stays
  // before the failure, where a restarted process resumes.
  stopped_ = true;
  queue_.halt();
  asio::dispatch(strand_, [self = shared_from_this(), error = std::move(error)]() mutable {
    if (!self->final_error_) self->final_error_ = std::move(error);
    const auto r = self->run_.load();
    if (r != run_state::running && r != run_state::paused) return;  // finishing already
    self->run_ = run_state::stopping;
    // The run's error: async_run's receiver reports it.
    self->log(log_level::debug, "stopping: " + self->final_error_.to_string());
    self->session_.stop(steady::now());
    self->pump();
  });
}

// --- the handler side ---------------------------------------------------------------------

void client_runtime::enqueue(queue_item item) {
  const bool full = queue_.push(std::move(item));
  schedule_dispatch();
  if (full) asio::dispatch(strand_, [self = shared_from_this()] { self->pause_stream(); });
}

void client_runtime::schedule_dispatch() {
  if (dispatch_scheduled_.exchange(true)) return;
  asio::post(handlers_, [self = shared_from_this()] { self->dispatch_queue(); });
}

void client_runtime::dispatch_queue() {
  // Runs on the handler executor, one dispatch at a time, items in order. One lock takes a
  // batch; its positions are saved once, after its handlers returned (at-least-once), or
  // before them with commit-on-receive. A failed handler or save may leave the batch half
  // done: the dispatcher then waits on retry_timer_ and comes back here to go on with it.
  constexpr std::size_t batch_limit = 256;
  constexpr int batches_per_dispatch = 16;  // then let other work on the executor run
  if (run_ == run_state::closed) return;    // the client is gone: no handler runs any more
  for (int round = 0; round < batches_per_dispatch; ++round) {
    if (batch_.items.empty()) {
      queue_.pop_batch(batch_limit, batch_);
      if (batch_.items.empty()) break;
      next_ = 0;
      attempts_ = 0;
      save_attempts_ = 0;
      failure_.reset();
      pending_.clear();
      presaved_ = config_.commit != commit_mode::on_receive;
      if (batch_.finished) {
        queue_.done(batch_);
        batch_ = {};
        dispatch_scheduled_ = false;
        asio::dispatch(strand_, [self = shared_from_this()] { self->complete_run(); });
        return;
      }
      if (!presaved_) {
        for (const auto& item : batch_.items) {
          if (item.what == queue_item::kind::event && item.ev.replay_id()) {
            pending_[item.channel] =
                replay_position{*item.ev.replay_id(), std::chrono::system_clock::now()};
          }
        }
      }
    }
    if (!stopped_ && !presaved_) {
      if (!commit_pending()) {
        if (!stopped_) return;  // a retry of the save is scheduled
      } else {
        presaved_ = true;
      }
    }
    while (!stopped_ && !failure_ && next_ < batch_.items.size()) {
      const auto& item = batch_.items[next_];
      if (item.what == queue_item::kind::event) {
        if (auto cbs = callbacks_for(item); cbs && cbs->on_batch) {
          // Asynchronous: the dispatch goes on in on_batch_done (dispatch_scheduled_ stays
          // set meanwhile, so nothing else of this client is handled before).
          start_batch(std::move(cbs));
          return;
        }
      }
      handler_failure_policy policy = config_.on_handler_failure;
      if (auto failure = run_callbacks(item, policy)) {
        if (!on_handler_failed(item, std::move(failure), policy)) {
          if (failure_) break;  // stop: commit what came before it, then end the run
          return;               // a retry is scheduled
        }
      } else if (item.what == queue_item::kind::event && item.ev.replay_id() &&
                 config_.commit == commit_mode::after_handler) {
        pending_[item.channel] =
            replay_position{*item.ev.replay_id(), std::chrono::system_clock::now()};
      }
      ++next_;
      attempts_ = 0;
    }
    if (!stopped_ && !commit_pending() && !stopped_) return;  // a retry of the save is scheduled
    if (failure_ && !stopped_) fail_run(*failure_);
    const bool resume = queue_.done(batch_);
    batch_.items.clear();  // keeps the vector's capacity for the next batch
    batch_.bytes = 0;
    if (resume && !stopped_) {
      asio::dispatch(strand_, [self = shared_from_this()] { self->maybe_resume(); });
    }
  }
  dispatch_scheduled_ = false;
  if (queue_.has_work()) schedule_dispatch();
}

bool client_runtime::on_handler_failed(const queue_item& item, error_info failure,
                                       const handler_failure_policy& policy) {
  {
    std::lock_guard lock{mutex_};
    ++metrics_.handler_failures;
  }
  const std::string what =
      "handler failed on " + item.channel +
      (item.ev.replay_id() ? " replay id " + std::to_string(*item.ev.replay_id()) : "");
  switch (policy.action) {
    case handler_failure::retry:
      if (run_ == run_state::stopping || run_ == run_state::finished) {
        failure.diag.context += " (not retried: the client is stopping)";
        break;
      }
      if (attempts_ < policy.max_retries) {
        ++attempts_;
        auto delay = policy.retry_backoff_initial;
        for (int i = 1; i < attempts_ && delay < policy.retry_backoff_max; ++i) delay *= 2;
        delay = std::min(delay, policy.retry_backoff_max);
        log(log_level::warning, what + " (retry " + std::to_string(attempts_) + " of " +
                                    std::to_string(policy.max_retries) + " in " +
                                    std::to_string(delay.count()) + " ms): " + failure.to_string());
        retry_later(delay);
        return false;
      }
      failure.diag.context += " (after " + std::to_string(policy.max_retries) + " retries)";
      break;
    case handler_failure::dead_letter:
      if (auto bad = write_dead_letter(item, failure, policy)) {
        log(log_level::error,
            what + " and its dead letter could not be written: " + bad.to_string());
        failure_ = std::move(bad);
        return false;
      }
      log(log_level::warning, what + ", written to the dead-letter file: " + failure.to_string());
      {
        std::lock_guard lock{mutex_};
        ++metrics_.dead_letters;
      }
      if (item.ev.replay_id() && config_.commit == commit_mode::after_handler) {
        pending_[item.channel] =
            replay_position{*item.ev.replay_id(), std::chrono::system_clock::now()};
      }
      return true;
    case handler_failure::stop:
      break;
  }
  // It ends the run: the run's error, which async_run's receiver reports.
  log(log_level::debug, what + ": stopping, the event stays uncommitted: " + failure.to_string());
  failure_ = std::move(failure);
  return false;
}

void client_runtime::retry_later(std::chrono::milliseconds delay) {
  std::lock_guard lock{retry_mutex_};
  retry_timer_.expires_after(delay);
  // The timer lives on the I/O strand, like every other I/O object of the runtime: the handler
  // executor's context may be gone before the runtime is (the runtime's last owner can be a
  // strand job), and an I/O object must not outlive its context.
  retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code) {
    // Cut short by cancel() or not, the retry runs; after shutdown nothing does.
    if (self->run_ == run_state::closed) return;
    asio::post(self->handlers_, [self] { self->dispatch_queue(); });
  });
}

error_info client_runtime::write_dead_letter(const queue_item& item, const error_info& failure,
                                             const handler_failure_policy& policy) {
  // One compact JSON line: the event's message re-written without its insignificant
  // whitespace, so a pretty-printed message still takes one line.
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const std::string message = failure.to_string();
  w.StartObject();
  w.Key("channel");
  w.String(item.ev.channel().data(), static_cast<rapidjson::SizeType>(item.ev.channel().size()));
  w.Key("replayId");
  if (item.ev.replay_id()) {
    w.Int64(*item.ev.replay_id());
  } else {
    w.Null();
  }
  w.Key("error");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.Key("event");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(item.ev.json().data(), item.ev.json().size());
  if (doc.HasParseError()) {
    w.String(item.ev.json().data(), static_cast<rapidjson::SizeType>(item.ev.json().size()));
  } else {
    doc.Accept(w);
  }
  w.EndObject();
  std::string line{buffer.GetString(), buffer.GetSize()};
  line += '\n';

  return append_durably(policy.dead_letter_path, line, "writing a dead letter");
}

bool client_runtime::commit_pending() {
  if (pending_.empty()) return true;
  if (auto error = config_.store->save(pending_)) {
    ++save_attempts_;
    const int attempts = std::max(config_.store_save_attempts, 1);
    if (save_attempts_ < attempts) {
      const auto delay = std::chrono::milliseconds(50) * (1 << std::min(save_attempts_ - 1, 6));
      log(log_level::warning,
          "could not save replay positions (try " + std::to_string(save_attempts_) + " of " +
              std::to_string(attempts) + "), trying again: " + error.to_string());
      retry_later(delay);
      return false;
    }
    // A store that cannot be written would freeze the position while the stream goes on: a
    // restart would then replay everything since, or lose it past retention. End the run.
    error_info fatal{errc::replay_store_io, error.diag, error.cause ? error.cause : error.code};
    fatal.diag.context = "saving replay positions (" + std::to_string(attempts) + " tries)";
    fail_run(std::move(fatal));
    return false;
  }
  save_attempts_ = 0;
  {
    std::lock_guard lock{mutex_};
    for (auto& [key, position] : pending_) positions_[key] = position;
  }
  if (config_.commit == commit_mode::after_handler) {
    asio::dispatch(strand_, [self = shared_from_this(), positions = pending_] {
      for (auto& [key, position] : positions) self->session_.commit(key, position.replay_id);
    });
  }
  pending_.clear();
  return true;
}

std::shared_ptr<const subscription_callbacks> client_runtime::callbacks_for(
    const queue_item& item) {
  // The exact channel first, else a subscription with the same replay key (a filtered
  // PushTopic subscription may see events named by the topic alone). The last answer for an
  // event's channel is kept while no subscription changed: consecutive events of one channel
  // take no lock and no lookup.
  const bool is_event = item.what == queue_item::kind::event;
  if (is_event && lookup_.callbacks && lookup_.version == subscriptions_version_.load() &&
      lookup_.channel == item.ev.channel()) {
    return lookup_.callbacks;
  }
  std::lock_guard lock{mutex_};
  auto it = subscriptions_.find(item.what == queue_item::kind::event ? item.ev.channel()
                                                                     : item.channel);
  if (it == subscriptions_.end()) {
    const auto key = bayeux::replay_key_of(
        item.what == queue_item::kind::event ? item.ev.channel() : item.channel);
    for (auto s = subscriptions_.begin(); s != subscriptions_.end(); ++s) {
      if (s->second.replay_key == key) {
        it = s;
        break;
      }
    }
  }
  if (it == subscriptions_.end()) return nullptr;
  auto held = it->second.callbacks;
  if (item.what == queue_item::kind::rejected) {
    ++subscriptions_version_;
    subscriptions_.erase(it);
  }
  if (is_event) lookup_ = {item.ev.channel(), subscriptions_version_.load(), held};
  return held;
}

void client_runtime::start_batch(std::shared_ptr<const subscription_callbacks> cbs) {
  batch_events_.clear();
  for (std::size_t i = next_; i < batch_.items.size(); ++i) {
    const auto& item = batch_.items[i];
    if (item.what != queue_item::kind::event) break;
    if (i != next_ && callbacks_for(item) != cbs) break;
    batch_events_.push_back(item.ev);
  }
  batch_callbacks_ = cbs;
  const std::uint64_t call = ++batch_call_;
  auto once = std::make_shared<std::atomic<bool>>(false);
  batch_done done = [weak = weak_from_this(), call, once](std::size_t handled, error_info error) {
    if (once->exchange(true)) return;
    auto self = weak.lock();
    if (!self || self->run_ == run_state::closed) return;
    asio::post(self->handlers_, [self, call, handled, error = std::move(error)]() mutable {
      self->on_batch_done(call, handled, std::move(error));
    });
  };
  try {
    cbs->on_batch(std::span<const event>(batch_events_), done);
  } catch (const std::exception& e) {
    done(0, error_info{errc::handler_failed, {"", std::string("threw: ") + e.what(), ""}});
  } catch (...) {
    done(0, error_info{errc::handler_failed, {"", "threw a non-standard exception", ""}});
  }
}

void client_runtime::on_batch_done(std::uint64_t call, std::size_t handled, error_info error) {
  if (run_ == run_state::closed || call != batch_call_ || !batch_callbacks_) return;
  const std::size_t count = batch_events_.size();
  if (!error || handled > count) handled = count;
  for (std::size_t i = 0; i < handled; ++i) {
    const auto& item = batch_.items[next_ + i];
    if (item.ev.replay_id() && config_.commit == commit_mode::after_handler) {
      pending_[item.channel] =
          replay_position{*item.ev.replay_id(), std::chrono::system_clock::now()};
    }
  }
  next_ += handled;
  if (handled > 0) attempts_ = 0;
  auto cbs = std::move(batch_callbacks_);
  batch_callbacks_.reset();
  batch_events_.clear();
  if (error && handled < count) {
    const auto& item = batch_.items[next_];
    handler_failure_policy policy = cbs->on_failure ? *cbs->on_failure : config_.on_handler_failure;
    const std::string doing =
        "handling " + item.ev.channel() +
        (item.ev.replay_id() ? " replay id " + std::to_string(*item.ev.replay_id()) : std::string());
    error_info failure{errc::handler_failed, {"", error.to_string(), doing}, error.code};
    if (on_handler_failed(item, std::move(failure), policy)) {
      ++next_;
      attempts_ = 0;
    } else if (!failure_) {
      return;  // a retry is scheduled: it hands the batch again from this event
    }
  }
  dispatch_queue();
}

error_info client_runtime::run_callbacks(const queue_item& item, handler_failure_policy& policy) {
  std::shared_ptr<const subscription_callbacks> held = callbacks_for(item);
  if (!held) return {};
  const subscription_callbacks& cbs = *held;
  if (cbs.on_failure) policy = *cbs.on_failure;
  // Built only when a handler failed: the hot path allocates nothing here.
  auto doing = [&item] {
    return item.what == queue_item::kind::event
               ? "handling " + item.ev.channel() +
                     (item.ev.replay_id() ? " replay id " + std::to_string(*item.ev.replay_id())
                                          : std::string())
               : "reporting to the subscription of " + item.channel;
  };
  error_info failure;
  try {
    switch (item.what) {
      case queue_item::kind::event:
        if (cbs.on_event_status) {
          if (auto reported = cbs.on_event_status(item.ev)) {
            failure = {errc::handler_failed, {"", reported.to_string(), doing()}, reported.code};
          }
        } else if (cbs.on_event) {
          cbs.on_event(item.ev);
        }
        break;
      case queue_item::kind::gap:
        if (cbs.on_gap && item.gap) cbs.on_gap(*item.gap);
        break;
      case queue_item::kind::rejected:
        if (cbs.on_rejected && item.error) cbs.on_rejected(*item.error);
        break;
      case queue_item::kind::subscribed:
        if (cbs.on_subscribed) cbs.on_subscribed(item.replay_from);
        break;
      case queue_item::kind::finished:
        break;
    }
  } catch (const std::exception& e) {
    failure = {errc::handler_failed, {"", std::string("threw: ") + e.what(), doing()}};
  } catch (...) {
    failure = {errc::handler_failed, {"", "threw a non-standard exception", doing()}};
  }
  if (failure && item.what != queue_item::kind::event) {
    // Only an event has a position to hold back; a failed gap, rejection or subscription
    // callback is reported and the stream goes on.
    log(log_level::error, failure.to_string());
    return {};
  }
  return failure;
}

void client_runtime::maybe_resume() {
  if (run_ != run_state::paused) return;
  run_ = run_state::running;
  log(log_level::info, "handlers caught up: resuming from the last received replay ids");
  session_.resume(steady::now());
  pump();
}

void client_runtime::complete_run() {
  if (!run_done_) return;
  if (run_ != run_state::closed) run_ = run_state::completed;
  state_ = client_state::closed;
  {
    std::lock_guard lock{mutex_};
    last_error_ = final_error_;
  }
  auto done = std::move(run_done_);
  run_done_ = nullptr;
  asio::post(handlers_, [done = std::move(done), ec = final_error_.code] { done(ec); });
}

}  // namespace detail

// --- the public facade ----------------------------------------------------------------------

client::client(asio::any_io_executor executor, client_config config)
    : impl_(std::make_shared<detail::client_runtime>(executor, executor, std::move(config))) {}

client::client(asio::any_io_executor executor, asio::any_io_executor handler_executor,
               client_config config)
    : impl_(std::make_shared<detail::client_runtime>(
          std::move(executor), std::move(handler_executor), std::move(config))) {}

client::~client() {
  if (impl_) impl_->shutdown();
}

error_info client::subscribe(const std::string& channel, std::int64_t replay_from,
                             subscription_callbacks callbacks,
                             std::optional<replay_policy> policy) {
  if (callbacks.on_failure && callbacks.on_failure->action == handler_failure::dead_letter &&
      callbacks.on_failure->dead_letter_path.empty()) {
    return {errc::invalid_config,
            {"", "handler failure policy dead_letter needs a dead_letter_path",
             "subscribing to " + channel}};
  }
  return impl_->subscribe(channel, replay_from, std::move(callbacks), policy);
}

error_info client::subscribe(const std::string& channel, std::int64_t replay_from,
                             std::function<void(const event&)> on_event) {
  subscription_callbacks cbs;
  cbs.on_event = std::move(on_event);
  return impl_->subscribe(channel, replay_from, std::move(cbs), std::nullopt);
}

void client::unsubscribe(const std::string& channel) {
  impl_->unsubscribe(channel);
}
void client::cancel() {
  impl_->cancel();
}
client_state client::state() const {
  return impl_->state();
}
std::optional<std::int64_t> client::committed_replay_id(const std::string& channel) const {
  return impl_->committed_replay_id(channel);
}
client_metrics client::metrics() const {
  return impl_->metrics();
}
error_info client::last_error() const {
  return impl_->last_error();
}
void client::start_run(std::function<void(std::error_code)> done) {
  impl_->start_run(std::move(done));
}

}  // namespace sfstream
