// The Asio runtime of the streaming client: one strand owns the Bayeux session, one pump()
// carries out the actions the session asks for and feeds every completion back as an input.
// Events go through a bounded queue to the handlers, which run on the handler executor.
#include "sfstream/client.hpp"

#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <variant>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "bayeux/channel.hpp"
#include "bayeux/session.hpp"
#include "src/client/client_impl.hpp"
#include "src/transport/cookie_jar.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/options.hpp"

namespace sfstream {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

std::string_view to_string(client_state state) noexcept {
  switch (state) {
    case client_state::unconnected: return "unconnected";
    case client_state::authenticating: return "authenticating";
    case client_state::handshaking: return "handshaking";
    case client_state::connected: return "connected";
    case client_state::backing_off: return "backing_off";
    case client_state::paused: return "paused";
    case client_state::disconnecting: return "disconnecting";
    case client_state::closed: return "closed";
  }
  return "unconnected";
}

namespace {

client_state to_client_state(bayeux::session_state s) {
  switch (s) {
    case bayeux::session_state::unconnected: return client_state::unconnected;
    case bayeux::session_state::authenticating: return client_state::authenticating;
    case bayeux::session_state::handshaking: return client_state::handshaking;
    case bayeux::session_state::connected: return client_state::connected;
    case bayeux::session_state::backing_off: return client_state::backing_off;
    case bayeux::session_state::paused: return client_state::paused;
    case bayeux::session_state::disconnecting: return client_state::disconnecting;
    case bayeux::session_state::closed: return client_state::closed;
  }
  return client_state::unconnected;
}

log_level to_log_level(bayeux::diagnostic_level level) {
  switch (level) {
    case bayeux::diagnostic_level::info: return log_level::info;
    case bayeux::diagnostic_level::warning: return log_level::warning;
    case bayeux::diagnostic_level::error: return log_level::error;
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
      timer_(strand_) {
  if (!config_.store) config_.store = make_memory_replay_store();
  // Stored positions become each subscription's starting point in subscribe(), where their
  // age is checked against the channel's retention first.
  positions_ = config_.store->load_all();
}

client_runtime::~client_runtime() = default;

void client_runtime::log(log_level level, std::string_view text) const { config_.log.log(level, text); }

error_info client_runtime::subscribe(const std::string& channel, std::int64_t replay_from,
                                     subscription_callbacks callbacks,
                                     std::optional<replay_policy> policy) {
  auto parsed = bayeux::parse_channel(channel);
  if (!parsed) return parsed.error();
  if (!parsed->subscribable()) {
    return {errc::invalid_channel, {"", "meta channels cannot be subscribed to", "subscribing to " + channel}};
  }
  if (replay_from < replay_all) {
    return {errc::invalid_replay_id, {"", std::to_string(replay_from), "subscribing to " + channel}};
  }
  const std::string key{parsed->replay_key()};
  const replay_policy taken = policy.value_or(config_.policy);

  // A stored position wins over replay_from: that is what makes a restart lossless. A stored
  // position older than the channel's retention cannot be honoured: apply the policy now and
  // say so, rather than let Salesforce refuse it (or worse, silently skip).
  std::optional<gap_record> gap;
  std::int64_t start = replay_from;
  {
    std::lock_guard lock{mutex_};
    if (auto it = positions_.find(key); it != positions_.end()) {
      start = it->second.replay_id;
      const auto age = std::chrono::system_clock::now() - it->second.event_time;
      if (age > parsed->retention()) {
        gap_record g;
        g.channel = key;
        g.last_replay_id = it->second.replay_id;
        g.last_event_time = it->second.event_time;
        g.policy_taken = taken;
        g.cause = gap_cause::expired;
        g.resumed_from = taken == replay_policy::tip ? replay_new : replay_all;
        start = g.resumed_from;
        gap = g;
      }
    }
    subscriptions_[channel] = subscription{key, std::move(callbacks)};
  }
  if (gap) {
    log(log_level::warning, "replay gap: " + gap->to_string());
    enqueue(queue_item{queue_item::kind::gap, channel, {}, *gap, {}, 0});
    if (taken == replay_policy::fail) {
      error_info refused{errc::replay_gap,
                         {"", gap->to_string(), "subscribing to " + channel}};
      enqueue(queue_item{queue_item::kind::rejected, channel, {}, {}, refused, 0});
      std::lock_guard lock{mutex_};
      subscriptions_.erase(channel);
      return {};
    }
  }
  asio::dispatch(strand_, [self = shared_from_this(), channel, start, policy] {
    if (auto e = self->session_.subscribe(channel, start, steady::now(), policy)) {
      self->log(log_level::error, "subscribe " + channel + ": " + e.to_string());
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
    if (self->running_) {
      asio::post(self->handlers_, [done = std::move(done)] { done(errc::invalid_config); });
      return;
    }
    self->running_ = true;
    self->run_done_ = std::move(done);
    if (!self->config_.credentials) {
      self->finish_run({errc::auth_no_credentials, {"", "client_config.credentials is empty", "starting"}});
      return;
    }
    self->session_.start(steady::now());
    self->pump();
  });
}

void client_runtime::cancel() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    if (!self->running_ || self->stopping_) return;
    self->stopping_ = true;
    self->log(log_level::info, "stopping: disconnecting and draining the event queue");
    self->session_.stop(steady::now());
    self->pump();
  });
}

void client_runtime::shutdown() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->closed_ = true;
    self->timer_.cancel();
    for (auto& lane : self->lanes_) {
      if (lane) lane->cancel();
    }
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
  std::lock_guard lock{mutex_};
  client_metrics m = metrics_;
  m.queue_depth = queue_.size();
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
  while (auto next = session_.next_action()) {
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
    session_.on_transport_error(a.lane, {errc::connection_failed, {"", "no instance URL yet", "sending"}},
                                steady::now());
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
  if (closed_ || generation != generation_[static_cast<std::size_t>(which)]) return;  // aborted
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
    session_.on_reply(which, response.status, response.body, now);
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
  timer_.async_wait([self = shared_from_this(), target = timer_.expiry()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->timer_.expiry() != target) return;  // replaced or cancelled
    self->session_.on_timer(steady::now());
    self->pump();
  });
}

void client_runtime::carry_out(bayeux::authenticate& a) {
  {
    std::lock_guard lock{mutex_};
    ++metrics_.authentications;
  }
  log(log_level::info, std::string(a.force_refresh ? "refreshing credentials: " : "authenticating: ") +
                           config_.credentials->describe());
  config_.credentials->async_token(
      a.force_refresh,
      asio::bind_executor(strand_, [self = shared_from_this()](error_info error, access_token token) {
        if (self->closed_) return;
        const auto now = steady::now();
        if (error) {
          self->log(log_level::error, "authentication failed: " + error.to_string());
          self->session_.on_authentication_failed(std::move(error), now);
        } else if (auto bad = self->use_token(std::move(token))) {
          self->session_.on_authentication_failed(std::move(bad), now);
        } else {
          self->session_.on_authenticated(now);
        }
        self->pump();
      }));
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
  std::optional<std::int64_t> id = a.event.replay_id;
  std::string key = std::move(a.event.replay_key);
  event ev{std::move(a.event.channel), id, std::move(a.event.json)};
  if (config_.commit == commit_mode::on_receive && id) {
    session_.commit(key, *id);
  }
  std::size_t depth = 0;
  {
    std::lock_guard lock{mutex_};
    ++metrics_.events;
    auto& c = metrics_.channels[key];
    ++c.events;
    c.last_replay_id = id;
    last_event_time_[key] = std::chrono::system_clock::now();
    queue_.push_back(queue_item{queue_item::kind::event, std::move(key), std::move(ev), {}, {}, 0});
    depth = queue_.size();
    metrics_.queue_high_water = std::max(metrics_.queue_high_water, depth);
  }
  schedule_dispatch();
  // Back-pressure: a full queue disconnects cleanly instead of growing memory or letting the
  // long poll lapse; replay from the committed id makes the pause lossless.
  if (depth >= config_.queue_capacity && !paused_ && !stopping_) {
    paused_ = true;
    {
      std::lock_guard lock{mutex_};
      ++metrics_.pauses;
    }
    log(log_level::warning, "event queue full (" + std::to_string(depth) +
                                " events): disconnecting until the handlers catch up");
    session_.pause(steady::now());
  }
}

void client_runtime::carry_out(bayeux::subscribed& a) {
  log(log_level::info, "subscribed to " + a.channel + " from replay id " + std::to_string(a.replay_from));
  enqueue(queue_item{queue_item::kind::subscribed, a.channel, {}, {}, {}, a.replay_from});
}

void client_runtime::carry_out(bayeux::subscription_failed& a) {
  log(log_level::error, "subscription to " + a.channel + " rejected: " + a.error.to_string());
  enqueue(queue_item{queue_item::kind::rejected, a.channel, {}, {}, a.error, 0});
}

void client_runtime::carry_out(bayeux::unsubscribed& a) {
  log(log_level::info, "unsubscribed from " + a.channel);
  std::lock_guard lock{mutex_};
  subscriptions_.erase(a.channel);
}

void client_runtime::carry_out(bayeux::gap& a) {
  gap_record g;
  g.channel = std::string(bayeux::replay_key_of(a.channel));
  g.last_replay_id = a.refused_id;
  {
    std::lock_guard lock{mutex_};
    if (auto it = positions_.find(g.channel); it != positions_.end() && it->second.replay_id == a.refused_id) {
      g.last_event_time = it->second.event_time;
    }
    ++metrics_.gaps;
  }
  g.policy_taken = a.taken;
  g.cause = gap_cause::refused;
  g.resumed_from = a.resumed_from;
  log(log_level::warning, "replay gap: " + g.to_string());
  enqueue(queue_item{queue_item::kind::gap, a.channel, {}, std::move(g), {}, 0});
}

void client_runtime::carry_out(bayeux::diagnostic& a) { log(to_log_level(a.level), a.text); }

void client_runtime::carry_out(bayeux::finished& a) {
  timer_.cancel();
  finish_run(std::move(a.error));
}

void client_runtime::finish_run(error_info error) {
  if (error) log(log_level::error, "client finished: " + error.to_string());
  {
    std::lock_guard lock{mutex_};
    last_error_ = error;
  }
  finished_ = true;
  final_error_ = std::move(error);
  // The run completes once the handlers have drained what is queued and the positions are
  // committed: a graceful stop hands nothing back unhandled.
  enqueue(queue_item{queue_item::kind::finished, {}, {}, {}, {}, 0});
}

// --- the handler side ---------------------------------------------------------------------

void client_runtime::enqueue(queue_item item) {
  {
    std::lock_guard lock{mutex_};
    queue_.push_back(std::move(item));
  }
  schedule_dispatch();
}

void client_runtime::schedule_dispatch() {
  if (dispatch_scheduled_.exchange(true)) return;
  asio::post(handlers_, [self = shared_from_this()] { self->dispatch_queue(); });
}

void client_runtime::dispatch_queue() {
  // Runs on the handler executor, one item at a time, in order. Positions are saved once per
  // batch: after the handlers returned (at-least-once), or before them with commit-on-receive.
  constexpr std::size_t batch_limit = 256;
  std::vector<queue_item> batch;
  bool finished = false;
  {
    std::lock_guard lock{mutex_};
    while (!queue_.empty() && batch.size() < batch_limit) {
      if (queue_.front().what == queue_item::kind::finished) {
        // Only once everything before it was handled.
        if (batch.empty()) {
          queue_.pop_front();
          finished = true;
        }
        break;
      }
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  std::map<std::string, replay_position> positions;
  for (const auto& item : batch) {
    if (item.what == queue_item::kind::event && item.ev.replay_id()) {
      positions[item.channel] = replay_position{*item.ev.replay_id(), std::chrono::system_clock::now()};
    }
  }
  const bool before = config_.commit == commit_mode::on_receive;
  if (before && !positions.empty()) save_positions(positions);
  for (const auto& item : batch) run_callbacks(item);
  if (!before && !positions.empty()) save_positions(positions);

  dispatch_scheduled_ = false;
  std::size_t depth = 0;
  {
    std::lock_guard lock{mutex_};
    depth = queue_.size();
  }
  if (finished) {
    asio::dispatch(strand_, [self = shared_from_this()] { self->complete_run(); });
    return;
  }
  if (depth > 0) schedule_dispatch();
  if (depth <= config_.queue_capacity / 2) {
    asio::dispatch(strand_, [self = shared_from_this()] { self->maybe_resume(); });
  }
}

void client_runtime::save_positions(const std::map<std::string, replay_position>& positions) {
  {
    std::lock_guard lock{mutex_};
    for (auto& [key, position] : positions) positions_[key] = position;
  }
  if (auto error = config_.store->save(positions)) {
    log(log_level::error, "could not save replay positions: " + error.to_string());
  }
  if (config_.commit == commit_mode::after_handler) {
    asio::dispatch(strand_, [self = shared_from_this(), positions] {
      for (auto& [key, position] : positions) self->session_.commit(key, position.replay_id);
    });
  }
}

void client_runtime::run_callbacks(const queue_item& item) {
  // Find the subscription: the exact channel first, else one with the same replay key (a
  // filtered PushTopic subscription may see events named by the topic alone).
  subscription_callbacks cbs;
  {
    std::lock_guard lock{mutex_};
    auto it = subscriptions_.find(item.what == queue_item::kind::event ? item.ev.channel() : item.channel);
    if (it == subscriptions_.end()) {
      const auto key = bayeux::replay_key_of(item.what == queue_item::kind::event ? item.ev.channel() : item.channel);
      for (auto s = subscriptions_.begin(); s != subscriptions_.end(); ++s) {
        if (s->second.replay_key == key) {
          it = s;
          break;
        }
      }
    }
    if (it == subscriptions_.end()) return;
    cbs = it->second.callbacks;
    if (item.what == queue_item::kind::rejected) subscriptions_.erase(it);
  }
  try {
    switch (item.what) {
      case queue_item::kind::event:
        if (cbs.on_event) cbs.on_event(item.ev);
        break;
      case queue_item::kind::gap:
        if (cbs.on_gap) cbs.on_gap(item.gap);
        break;
      case queue_item::kind::rejected:
        if (cbs.on_rejected) cbs.on_rejected(item.error);
        break;
      case queue_item::kind::subscribed:
        if (cbs.on_subscribed) cbs.on_subscribed(item.replay_from);
        break;
      case queue_item::kind::finished:
        break;
    }
  } catch (const std::exception& e) {
    // A throwing handler must not take the stream down or skip the event silently: report it
    // loudly; the event counts as handled (at-least-once would replay it forever otherwise).
    log(log_level::error, std::string("handler threw on ") + item.channel + ": " + e.what());
  } catch (...) {
    log(log_level::error, "handler threw on " + item.channel);
  }
}

void client_runtime::maybe_resume() {
  if (!paused_ || stopping_ || finished_) return;
  paused_ = false;
  log(log_level::info, "handlers caught up: resuming from the committed replay ids");
  session_.resume(steady::now());
  pump();
}

void client_runtime::complete_run() {
  if (!run_done_) return;
  running_ = false;
  state_ = client_state::closed;
  auto done = std::move(run_done_);
  run_done_ = nullptr;
  asio::post(handlers_, [done = std::move(done), ec = final_error_.code] { done(ec); });
}

}  // namespace detail

// --- the public facade ----------------------------------------------------------------------

client::client(asio::any_io_executor executor, client_config config)
    : impl_(std::make_shared<detail::client_runtime>(executor, executor, std::move(config))) {}

client::client(asio::any_io_executor executor, asio::any_io_executor handler_executor, client_config config)
    : impl_(std::make_shared<detail::client_runtime>(std::move(executor), std::move(handler_executor), std::move(config))) {}

client::~client() {
  if (impl_) impl_->shutdown();
}

error_info client::subscribe(const std::string& channel, std::int64_t replay_from,
                             subscription_callbacks callbacks, std::optional<replay_policy> policy) {
  return impl_->subscribe(channel, replay_from, std::move(callbacks), policy);
}

error_info client::subscribe(const std::string& channel, std::int64_t replay_from,
                             std::function<void(const event&)> on_event) {
  subscription_callbacks cbs;
  cbs.on_event = std::move(on_event);
  return impl_->subscribe(channel, replay_from, std::move(cbs), std::nullopt);
}

void client::unsubscribe(const std::string& channel) { impl_->unsubscribe(channel); }
void client::cancel() { impl_->cancel(); }
client_state client::state() const { return impl_->state(); }
std::optional<std::int64_t> client::committed_replay_id(const std::string& channel) const {
  return impl_->committed_replay_id(channel);
}
client_metrics client::metrics() const { return impl_->metrics(); }
error_info client::last_error() const { return impl_->last_error(); }
void client::start_run(std::function<void(std::error_code)> done) { impl_->start_run(std::move(done)); }

}  // namespace sfstream
