#include "bayeux/session.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "bayeux/channel.hpp"

namespace sfstream::bayeux {
namespace {

using std::chrono::milliseconds;

constexpr std::int64_t salesforce_hold_ms = 110'000;  // Salesforce holds a connect up to 110 s

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool contains(std::string_view s, std::string_view part) noexcept {
  return s.find(part) != std::string_view::npos;
}

// The Bayeux error texts of one reply message: `error` and ext.sfdc.failureReason.
struct reply_error {
  std::string_view error;
  std::string_view reason;

  bool has(std::string_view part) const noexcept {
    return contains(error, part) || contains(reason, part);
  }
  bool code_is(std::string_view code) const noexcept {
    return starts_with(error, code) || starts_with(reason, code);
  }
  // The most specific text: failureReason when present (it carries the real cause of a
  // "403::Handshake denied": the error text alone does not say why).
  std::string_view cause() const noexcept { return reason.empty() ? error : reason; }
};

// Salesforce's limit errors (concurrent clients, daily events, too busy, connections per
// server): a name for the diagnostic, or "" when not a limit.
std::string_view limit_name(const reply_error& e) noexcept {
  if (e.has("Organization concurrent user limit exceeded")) return "concurrent clients";
  if (e.has("Organization total events daily limit exceeded")) return "daily events";
  if (e.code_is("503::")) return "server too busy";
  if (e.has("we limit the number of simultaneous connections per server")) {
    return "connections per server";
  }
  return {};
}

bool is_auth_error(const reply_error& e) noexcept {
  // A connect whose session belongs to another user than the handshake's: Salesforce expects
  // the client to authenticate again (as one user) and handshake anew.
  return e.code_is("401::") || e.has("does not match the session's user id");
}

bool is_unknown_client(const reply_error& e) noexcept {
  return e.has("::Unknown client") || e.has("Client has not completed handshake") ||
         (e.has("has established a session, but no") && e.has("cookie present"));
}

// "400::The replayId {N} you provided was invalid..." → N.
std::optional<std::int64_t> refused_replay_id(std::string_view error) noexcept {
  constexpr std::string_view head = "The replayId {";
  const auto at = error.find(head);
  if (at == std::string_view::npos || !contains(error, "} you provided was invalid")) {
    return std::nullopt;
  }
  const auto first = error.data() + at + head.size();
  const auto last = error.data() + error.size();
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(first, last, id);
  if (ec != std::errc{} || ptr == last || *ptr != '}') return std::nullopt;
  return id;
}

error_info make_error(errc code, std::string server_text, std::string context) {
  error_info e{make_error_code(code), {}};
  if (auto sep = server_text.find("::"); sep != std::string::npos && sep <= 3) {
    e.diag.server_code = server_text.substr(0, sep);
  }
  e.diag.server_text = std::move(server_text);
  e.diag.context = std::move(context);
  return e;
}

// The request never left: resolving, connecting, the proxy tunnel or the TLS handshake failed.
// Anything later may have reached the server.
bool never_sent(const std::error_code& code) noexcept {
  return code == errc::connection_failed || code == errc::proxy_error || code == errc::tls_error;
}

bool is_unsupported_version(const reply_error& e) noexcept {
  return e.has("Unsupported API version") || e.has("API version in the URI is mandatory");
}

}  // namespace

std::string_view to_string(session_state state) noexcept {
  switch (state) {
    case session_state::unconnected:
      return "unconnected";
    case session_state::authenticating:
      return "authenticating";
    case session_state::handshaking:
      return "handshaking";
    case session_state::connected:
      return "connected";
    case session_state::backing_off:
      return "backing_off";
    case session_state::paused:
      return "paused";
    case session_state::disconnecting:
      return "disconnecting";
    case session_state::closed:
      return "closed";
  }
  return "unknown";
}

session::session(session_config config)
    : config_(std::move(config)), rng_state_(config_.jitter_seed) {}

// ---- emission ---------------------------------------------------------------------------

void session::emit(action a) {
  if (state_ == session_state::closed) return;
  actions_.push_back(std::move(a));
}

void session::diag(diagnostic_level level, std::string text) {
  emit(diagnostic{level, std::move(text)});
}

void session::finish(error_info error) {
  if (state_ == session_state::closed) return;
  drop_connection();
  step_ = step::none;
  step_due_.reset();
  emit(finished{std::move(error)});
  state_ = session_state::closed;
}

std::optional<action> session::next_action() {
  // A vector drained from the front and emptied once drained: its capacity serves every
  // reply, where a deque would allocate a node for every few actions (one per event).
  if (next_action_ == actions_.size()) {
    actions_.clear();
    next_action_ = 0;
    return std::nullopt;
  }
  action a = std::move(actions_[next_action_++]);
  if (next_action_ == actions_.size()) {
    actions_.clear();
    next_action_ = 0;
  }
  return a;
}

std::string session::next_id() {
  return std::to_string(next_id_++);
}

// ---- queries ----------------------------------------------------------------------------

std::optional<std::int64_t> session::committed(std::string_view replay_key) const {
  auto it = committed_.find(replay_key);
  if (it == committed_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> session::channels() const {
  std::vector<std::string> out;
  out.reserve(subscriptions_.size());
  for (const auto& [name, entry] : subscriptions_) out.push_back(name);
  return out;
}

bool session::is_subscribed(std::string_view channel) const {
  auto it = subscriptions_.find(channel);
  return it != subscriptions_.end() && it->second.confirmed;
}

replay_policy session::policy_for(const std::string& channel) const {
  auto it = subscriptions_.find(channel);
  if (it != subscriptions_.end() && it->second.policy) return *it->second.policy;
  auto key = std::string(replay_key_of(channel));
  if (auto p = config_.channel_policies.find(key); p != config_.channel_policies.end()) {
    return p->second;
  }
  return config_.policy;
}

std::optional<std::int64_t> session::received(std::string_view replay_key) const {
  auto it = received_.find(replay_key);
  if (it == received_.end()) return std::nullopt;
  return it->second;
}

std::int64_t session::resume_from(const std::string& channel) const {
  auto it = subscriptions_.find(channel);
  if (it == subscriptions_.end()) return -1;
  // The last received id first: events still queued for the handler are neither lost nor
  // delivered twice. The committed id only when nothing newer was received in this process.
  if (auto r = received_.find(it->second.replay_key); r != received_.end()) return r->second;
  if (auto c = committed_.find(it->second.replay_key); c != committed_.end()) return c->second;
  return it->second.start;
}

std::int64_t session::resubscribe_position(const std::string& channel, time_point now) {
  const std::int64_t from = resume_from(channel);
  auto it = subscriptions_.find(channel);
  if (it == subscriptions_.end()) return from;
  auto& entry = it->second;
  if (from >= 0) floor_[entry.replay_key] = from;
  // A channel that was live and has no position to resume from comes back at -1: whatever was
  // published since it was last known live is gone. Say so (reported when confirmed).
  if (from == -1 && entry.live_at && !entry.gap_since) entry.gap_since = entry.live_at;
  (void)now;
  return from;
}

void session::forget_position(const std::string& replay_key) {
  committed_.erase(replay_key);
  received_.erase(replay_key);
  floor_.erase(replay_key);
}

void session::subscription_dropped(const std::string& channel, error_info why) {
  subscriptions_.erase(channel);
  emit(subscription_failed{channel, std::move(why)});
  if (subscriptions_.empty()) {
    diag(diagnostic_level::error, "no subscription is left: the last one (" + channel +
                                      ") was refused or stopped");
  }
}

bool session::expired(time_point now) const {
  return !last_reply_ || now - *last_reply_ >= config_.client_expiry;
}

// ---- user inputs ------------------------------------------------------------------------

void session::start(time_point now) {
  if (state_ != session_state::unconnected) return;
  (void)now;
  // The runtime owns credentials; the handshake needs a token first.
  state_ = session_state::authenticating;
  emit(authenticate{false});
}

error_info session::subscribe(std::string_view channel, std::int64_t replay_from, time_point now,
                              std::optional<replay_policy> policy,
                              std::optional<stored_position> stored) {
  auto parsed = parse_channel(channel);
  if (!parsed) return parsed.error();
  if (!parsed->subscribable()) {
    return make_error(errc::invalid_channel, "meta channels cannot be subscribed to",
                      "subscribing to " + std::string(channel));
  }
  if (replay_from < -2) {
    return make_error(errc::invalid_replay_id,
                      "replay ids are -1, -2 or a non-negative 64-bit integer",
                      "subscribing to " + std::string(channel));
  }
  if (state_ == session_state::closed) {
    return make_error(errc::cancelled, "the session is closed",
                      "subscribing to " + std::string(channel));
  }
  if (subscriptions_.contains(channel)) return {};
  if (stored && stored->replay_id < 0) {
    return make_error(errc::invalid_replay_id, "a stored replay id is never negative",
                      "subscribing to " + std::string(channel));
  }
  subscription_entry entry;
  entry.replay_key = std::string(parsed->replay_key());
  entry.start = stored ? stored->replay_id : replay_from;
  entry.policy = policy;
  const std::string name(channel);
  if (stored && stored->now - stored->event_time > parsed->retention()) {
    // The stored position is older than the channel's retention: Salesforce would refuse it
    // (or worse, skip silently). Apply the policy now; it is the same gap as a refused id.
    const replay_policy taken = policy.value_or(policy_for(name));
    const std::int64_t fallback = taken == replay_policy::tip ? -1 : -2;
    ++counters_.gaps;
    emit(gap{name, gap_cause::expired, stored->replay_id, taken, fallback, {}, {}});
    if (taken == replay_policy::fail) {
      emit(subscription_failed{
          name, make_error(errc::replay_gap,
                           "replay id " + std::to_string(stored->replay_id) +
                               " is older than the channel's retention",
                           "subscribing to " + name)});
      return {};
    }
    entry.start = fallback;
  }
  if (entry.start >= 0) floor_[entry.replay_key] = entry.start;
  subscriptions_.emplace(name, std::move(entry));
  // While there is a live client the subscription goes out at once; otherwise the next
  // handshake sends it with every other channel.
  if (!client_id_.empty()) queue_control({pending_kind::subscribe, name, replay_from, {}}, now);
  return {};
}

error_info session::unsubscribe(std::string_view channel, time_point now) {
  auto it = subscriptions_.find(channel);
  if (it == subscriptions_.end()) {
    return make_error(errc::invalid_channel, "the channel is not subscribed",
                      "unsubscribing from " + std::string(channel));
  }
  const std::string name(channel);
  subscriptions_.erase(it);
  std::erase_if(control_queue_, [&](const pending_message& p) {
    return p.kind == pending_kind::subscribe && p.channel == name;
  });
  if (!client_id_.empty()) {
    queue_control({pending_kind::unsubscribe, name, -1, {}}, now);
  } else {
    // No server-side subscription exists without a client: forgetting it is enough.
    emit(unsubscribed{name});
  }
  return {};
}

void session::commit(std::string_view replay_key, std::int64_t replay_id) {
  auto it = committed_.find(replay_key);
  if (it == committed_.end()) {
    committed_.emplace(std::string(replay_key), replay_id);
  } else {
    it->second = replay_id;
  }
}

void session::on_authenticated(time_point now) {
  if (state_ != session_state::authenticating) return;
  send_handshake(now);
}

void session::on_authentication_failed(error_info error, time_point now) {
  if (state_ != session_state::authenticating) return;
  if (is_retryable(error)) {
    // The login endpoint was unreachable: that is a transport failure, not a refusal.
    fail_attempt(failure_kind::transport, step::authenticate,
                 "authentication failed: " + error.to_string(), now);
    return;
  }
  if (!error.code) error.code = make_error_code(errc::auth_rejected);
  finish(std::move(error));
}

void session::pause(time_point now) {
  if (state_ == session_state::unconnected || state_ == session_state::paused ||
      state_ == session_state::disconnecting || state_ == session_state::closed) {
    return;
  }
  const std::string client = client_id_;
  drop_connection();
  state_ = session_state::paused;
  // Back-pressure: tell Salesforce we are gone rather than letting the client expire, and
  // hold no connect until resume(): the resume re-subscribes from the received ids.
  if (!client.empty()) send_disconnect(client, now);
}

void session::resume(time_point now) {
  if (state_ != session_state::paused) return;
  drop_connection();
  ++counters_.rehandshakes_by_cause["resume"];
  send_handshake(now);
}

void session::stop(time_point now) {
  if (state_ == session_state::closed || state_ == session_state::disconnecting) return;
  const std::string client = client_id_;
  drop_connection();
  if (client.empty()) {
    finish({});
    return;
  }
  state_ = session_state::disconnecting;
  send_disconnect(client, now);
  // Salesforce may never answer a disconnect: finish on our own deadline too.
  schedule(step::finish, config_.disconnect_timeout, now);
}

// ---- lanes ------------------------------------------------------------------------------

void session::send_handshake(time_point now) {
  (void)now;
  drop_connection();
  state_ = session_state::handshaking;
  pending_message hs{pending_kind::handshake, {}, -1, next_id()};
  std::string body = "[" + encode_handshake(hs.id) + "]";
  control_outstanding_.push_back(std::move(hs));
  control_busy_ = true;
  emit(send{lane::control, std::move(body), config_.control_timeout});
}

void session::send_disconnect(const std::string& client, time_point now) {
  (void)now;
  pending_message dc{pending_kind::disconnect, {}, -1, next_id()};
  std::string body = "[" + encode_disconnect(client, dc.id) + "]";
  control_outstanding_.push_back(std::move(dc));
  control_busy_ = true;
  emit(send{lane::control, std::move(body), config_.disconnect_timeout});
}

void session::send_connect(time_point now) {
  (void)now;
  if (long_poll_busy_ || client_id_.empty()) return;
  state_ = session_state::connected;
  connect_id_ = next_id();
  // The first connect asks for an immediate answer (advice.timeout 0), so its deadline is a
  // control deadline; later ones are held up to advice.timeout by the server.
  const milliseconds deadline =
      first_connect_
          ? config_.control_timeout
          : milliseconds{advice_.timeout.value_or(salesforce_hold_ms)} + config_.network_slack;
  long_poll_busy_ = true;
  connect_sent_at_ = now;
  emit(send{lane::long_poll, "[" + encode_connect(client_id_, connect_id_, first_connect_) + "]",
            std::max(deadline, milliseconds{1})});
}

void session::queue_control(pending_message m, time_point now) {
  control_queue_.push_back(std::move(m));
  flush_control(now);
}

void session::flush_control(time_point now) {
  if (control_busy_ || control_queue_.empty() || control_due_ || client_id_.empty()) return;
  std::vector<std::string> parts;
  std::size_t size = 2;
  while (!control_queue_.empty()) {
    pending_message& p = control_queue_.front();
    std::string encoded;
    if (p.kind == pending_kind::subscribe) {
      auto it = subscriptions_.find(p.channel);
      if (it == subscriptions_.end()) {
        control_queue_.pop_front();
        continue;
      }
      p.replay_from = resubscribe_position(p.channel, now);
      p.id = next_id();
      encoded = encode_subscribe(client_id_, p.channel, it->second.replay_key, p.replay_from, p.id);
    } else if (p.kind == pending_kind::unsubscribe) {
      p.id = next_id();
      encoded = encode_unsubscribe(client_id_, p.channel, p.id);
    } else {
      control_queue_.pop_front();
      continue;
    }
    // As few POSTs as fit under Salesforce's 32,768-byte request limit (it answers 413 above);
    // one message always goes, even if alone it is larger.
    if (!parts.empty() && size + 1 + encoded.size() > config_.max_request_bytes) break;
    size += encoded.size() + (parts.empty() ? 0 : 1);
    parts.push_back(std::move(encoded));
    control_outstanding_.push_back(std::move(p));
    control_queue_.pop_front();
  }
  if (parts.empty()) return;
  control_busy_ = true;
  control_sent_at_ = now;
  emit(send{lane::control, encode_batch(parts), config_.control_timeout});
}

void session::drop_connection() {
  if (long_poll_busy_) emit(abort{lane::long_poll});
  if (control_busy_) emit(abort{lane::control});
  long_poll_busy_ = false;
  control_busy_ = false;
  for (const auto& p : control_outstanding_) {
    if (p.kind == pending_kind::unsubscribe) emit(unsubscribed{p.channel});
  }
  for (const auto& p : control_queue_) {
    if (p.kind == pending_kind::unsubscribe) emit(unsubscribed{p.channel});
  }
  control_outstanding_.clear();
  control_queue_.clear();
  client_id_.clear();
  connect_id_.clear();
  step_ = step::none;
  step_due_.reset();
  control_due_.reset();
  for (auto& [name, entry] : subscriptions_) entry.confirmed = false;
  ++epoch_;
}

// ---- timers -----------------------------------------------------------------------------

void session::schedule(step what, milliseconds delay, time_point now) {
  step_ = what;
  step_due_ = now + delay;
  arm_timer(now);
}

void session::schedule_control_retry(milliseconds delay, time_point now) {
  control_due_ = now + delay;
  arm_timer(now);
}

void session::arm_timer(time_point now) {
  std::optional<time_point> target = step_due_;
  if (control_due_ && (!target || *control_due_ < *target)) target = control_due_;
  if (!target) return;
  if (timer_target_ && *timer_target_ == *target) return;
  timer_target_ = target;
  auto left = std::chrono::duration_cast<milliseconds>(*target - now);
  if (*target - now > left) ++left;  // round up: never fire before the target
  emit(wait{std::max(left, milliseconds{0})});
}

void session::on_timer(time_point now) {
  if (state_ == session_state::closed) return;
  timer_target_.reset();
  if (step_due_ && now >= *step_due_) {
    const step what = step_;
    step_ = step::none;
    step_due_.reset();
    switch (what) {
      case step::none:
        break;
      case step::authenticate:
        state_ = session_state::authenticating;
        emit(authenticate{auth_retried_});
        break;
      case step::handshake:
        send_handshake(now);
        break;
      case step::connect:
        if (client_id_.empty() || expired(now)) {
          // Salesforce forgets a client 40 s after its last reply:
          // a connect now would only earn "403::Unknown client".
          ++counters_.rehandshakes_by_cause["expired"];
          send_handshake(now);
        } else {
          send_connect(now);
        }
        break;
      case step::finish:
        finish({});
        return;
    }
  }
  if (control_due_ && now >= *control_due_) {
    control_due_.reset();
    flush_control(now);
  }
  arm_timer(now);
}

// ---- failure reactions ------------------------------------------------------------------

std::uint64_t session::random() {
  // splitmix64: small, seedable, good enough to decorrelate reconnecting clients.
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

milliseconds session::jittered(milliseconds initial, milliseconds cap, unsigned& attempts) {
  const unsigned shift = std::min(attempts, 30u);
  ++attempts;
  const std::int64_t base_ms = std::max<std::int64_t>(initial.count(), 1);
  const std::int64_t cap_ms = std::max<std::int64_t>(cap.count(), base_ms);
  std::int64_t full = base_ms;
  for (unsigned i = 0; i < shift && full < cap_ms; ++i) full *= 2;
  full = std::min(full, cap_ms);
  // "Equal jitter": half fixed, half random, so a delay never collapses towards zero.
  const std::int64_t half = full / 2;
  const auto spread = static_cast<std::uint64_t>(full - half) + 1;
  return milliseconds{half + static_cast<std::int64_t>(random() % spread)};
}

bool session::count_failure() {
  ++failures_;
  if (config_.max_retries >= 0 && failures_ > config_.max_retries) {
    finish(make_error(errc::retries_exhausted, {},
                      std::to_string(failures_) + " consecutive failed attempts"));
    return false;
  }
  return true;
}

const char* session::to_cause(failure_kind kind) noexcept {
  switch (kind) {
    case failure_kind::transport:
      return "transport";
    case failure_kind::http_status:
      return "http_status";
    case failure_kind::timeout:
      return "timeout";
    case failure_kind::protocol:
      return "protocol";
    case failure_kind::limit:
      return "limit";
    case failure_kind::retry_advice:
      return "retry_advice";
  }
  return "other";
}

void session::fail_attempt(failure_kind kind, step retry, std::string text, time_point now,
                           milliseconds at_least) {
  if (!count_failure()) return;
  milliseconds delay =
      kind == failure_kind::limit
          ? jittered(config_.limit_backoff_initial, config_.limit_backoff_max, limit_attempts_)
          : jittered(config_.backoff_initial, config_.backoff_max, backoff_attempts_);
  delay = std::max(delay, at_least);
  if (retry == step::connect) ++counters_.reconnects_by_cause[to_cause(kind)];
  state_ = session_state::backing_off;
  diag(kind == failure_kind::limit ? diagnostic_level::error : diagnostic_level::warning,
       text + "; retrying in " + std::to_string(delay.count()) + " ms");
  schedule(retry, delay, now);
}

void session::rehandshake(const char* cause, time_point now) {
  ++counters_.rehandshakes_by_cause[cause];
  if (!progress_since_handshake_ && counters_.handshakes > 0) {
    // Nothing was held or delivered since the last handshake (a server that keeps forgetting
    // the client, or replies that keep getting lost): back off, and count it toward
    // max_retries, rather than spend one of the org's concurrent-client slots per attempt.
    drop_connection();
    fail_attempt(failure_kind::protocol, step::handshake,
                 std::string("re-handshake (") + cause + ") before any successful connect", now);
    return;
  }
  diag(diagnostic_level::info, std::string("re-handshaking: ") + cause);
  send_handshake(now);
}

void session::reauthenticate(std::string text, time_point now) {
  (void)now;
  if (auth_retried_) {
    // A fresh token was refused as well: retrying would loop.
    finish(make_error(errc::auth_rejected, std::move(text), "streaming endpoint"));
    return;
  }
  auth_retried_ = true;
  ++counters_.rehandshakes_by_cause["authentication"];
  drop_connection();
  diag(diagnostic_level::warning, "authentication refused (" + text + "); re-authenticating");
  state_ = session_state::authenticating;
  emit(authenticate{true});
}

void session::read_advice(const message& m) {
  if (!m.advice) return;
  const auto& a = *m.advice;
  if (a.reconnect) advice_.reconnect = a.reconnect;
  if (a.interval) advice_.interval = a.interval;
  if (a.timeout) advice_.timeout = a.timeout;
  if (a.multiple_clients) advice_.multiple_clients = a.multiple_clients;
}

// ---- replies ----------------------------------------------------------------------------

void session::on_transport_error(lane on, error_info error, time_point now) {
  if (state_ == session_state::closed) return;
  bool& busy = on == lane::control ? control_busy_ : long_poll_busy_;
  if (!busy) return;
  busy = false;
  if (!is_retryable(error) && error.code != errc::cancelled &&
      state_ != session_state::disconnecting) {
    // A certificate that fails verification (or any other error no retry can fix): fail fast.
    finish(std::move(error));
    return;
  }
  const auto kind = error.code == errc::timeout ? failure_kind::timeout : failure_kind::transport;
  std::string text = (on == lane::control ? "control exchange failed: " : "long poll failed: ") +
                     error.to_string();
  if (on == lane::control) {
    control_lane_failed(std::move(text), kind, now);
  } else if (never_sent(error.code)) {
    long_poll_failed(std::move(text), kind, now);
  } else {
    lost_reply(std::move(text), now);
  }
}

void session::on_reply(lane on, unsigned http_status, std::string_view body, time_point now) {
  on_reply(on, http_status, std::make_shared<const std::string>(body), now);
}

void session::on_reply(lane on, unsigned http_status, std::shared_ptr<const std::string> body,
                       time_point now) {
  if (state_ == session_state::closed) return;
  bool& busy = on == lane::control ? control_busy_ : long_poll_busy_;
  if (!busy) return;
  busy = false;
  if (http_status == 401) {
    if (on == lane::control) {
      if (state_ == session_state::disconnecting) return finish({});
      if (state_ == session_state::paused) return control_outstanding_.clear();
    } else if (state_ != session_state::connected) {
      return;
    }
    control_outstanding_.clear();
    reauthenticate("HTTP 401", now);
    return;
  }
  if (!body) body = std::make_shared<const std::string>();
  // Parsed into a vector kept between replies: a reply costs no allocation of messages once
  // the first ones have sized it.
  std::vector<message>& messages = reply_messages_;
  const error_info unparsed = parse_reply_spans(*body, messages);
  if (unparsed || http_status >= 500) {
    const auto kind = http_status >= 500 ? failure_kind::http_status : failure_kind::protocol;
    std::string text = "HTTP " + std::to_string(http_status) +
                       (!unparsed ? std::string{} : ": " + unparsed.diag.server_text);
    if (on == lane::control) {
      control_lane_failed(std::move(text), kind, now);
    } else {
      lost_reply(std::move(text), now);
    }
    return;
  }
  // The events of this reply refer to its body; the session keeps it only while handling.
  reply_body_ = std::move(body);
  if (on == lane::control) {
    handle_control_reply(messages, now);
  } else {
    handle_long_poll_reply(messages, now);
  }
  reply_body_.reset();
}

void session::control_lane_failed(std::string text, failure_kind kind, time_point now) {
  auto outstanding = std::exchange(control_outstanding_, {});
  if (state_ == session_state::disconnecting) return finish({});
  if (state_ == session_state::paused) return;
  const bool handshake = std::any_of(outstanding.begin(), outstanding.end(), [](const auto& p) {
    return p.kind == pending_kind::handshake;
  });
  if (handshake) {
    fail_attempt(kind, step::handshake, "handshake failed: " + text, now);
    return;
  }
  // Subscribe/unsubscribe exchanges: put them back and retry after a backoff; the long poll
  // is unaffected.
  for (auto it = outstanding.rbegin(); it != outstanding.rend(); ++it) {
    if (it->kind == pending_kind::subscribe || it->kind == pending_kind::unsubscribe) {
      control_queue_.push_front(std::move(*it));
    }
  }
  if (!count_failure()) return;
  const auto delay = jittered(config_.backoff_initial, config_.backoff_max, backoff_attempts_);
  diag(diagnostic_level::warning, text + "; retrying in " + std::to_string(delay.count()) + " ms");
  schedule_control_retry(delay, now);
}

void session::long_poll_failed(std::string text, failure_kind kind, time_point now) {
  if (state_ != session_state::connected && state_ != session_state::backing_off) return;
  fail_attempt(kind, step::connect, std::move(text), now);
}

void session::lost_reply(std::string text, time_point now) {
  if (state_ != session_state::connected && state_ != session_state::backing_off) return;
  // The /meta/connect was written; its reply never arrived whole. Salesforce takes events off
  // the client's queue when it writes a reply, so a plain reconnect on the same clientId
  // would lose them. A new handshake re-subscribes every channel from its last received id.
  diag(diagnostic_level::warning,
       text + "; the reply may have carried events: re-handshaking to resume from the last "
              "received replay ids");
  last_reply_.reset();
  rehandshake("lost_reply", now);
}

void session::deliver_events(std::vector<message>& messages) {
  for (auto& m : messages) {
    if (m.is_meta() || !m.has_data || m.channel.empty()) continue;
    std::string key(replay_key_of(m.channel));
    std::optional<std::int64_t> id = m.replay_id;
    if (m.has_replay_id && (!id || *id < 0)) {
      // A position that cannot be resumed from must never become one: deliver the event
      // without an id (it is not committed) and say so.
      diag(diagnostic_level::warning, "an event on " + m.channel +
                                          " carries a replayId that is not a non-negative "
                                          "64-bit integer: delivered without a position");
      id.reset();
    }
    if (id) {
      if (auto f = floor_.find(key); f != floor_.end() && *id <= f->second) {
        // At or below the position the subscription resumed from: a re-delivery.
        ++counters_.redeliveries_dropped;
        continue;
      }
      received_[key] = *id;
    }
    ++counters_.events;
    emit(deliver{event{std::move(m.channel), std::move(key), id, reply_body_, m.object, m.data}});
  }
}

void session::handle_long_poll_reply(std::vector<message>& messages, time_point now) {
  if (state_ != session_state::connected && state_ != session_state::backing_off) return;
  const message* reply = nullptr;
  bool disconnect = false;
  for (const auto& m : messages) {
    if (m.channel == "/meta/connect") {
      if (!m.id || *m.id == connect_id_) {
        if (!reply) reply = &m;
      } else {
        diag(diagnostic_level::info, "ignored a /meta/connect reply with id " + *m.id +
                                         " (outstanding " + connect_id_ + ")");
      }
    } else if (m.channel == "/meta/disconnect") {
      disconnect = true;
    }
  }
  if (!reply) {
    // Salesforce's error page answers a connect with a bare failure that names neither the
    // channel nor the id ({"error":"403::Unknown client","successful":false,...}): it is the
    // answer to the outstanding connect all the same.
    for (const auto& m : messages) {
      if (m.channel.empty() && !m.id && !m.error.empty() && !m.successful.value_or(true)) {
        reply = &m;
        break;
      }
    }
  }

  if (disconnect) {
    // Streaming API ≥ 64.0 may disconnect a client on its own (an unsolicited
    // /meta/disconnect on the long poll).
    rehandshake("disconnect", now);
  } else if (!reply) {
    fail_attempt(failure_kind::protocol, step::connect,
                 "the long-poll reply has no answer to the outstanding /meta/connect", now);
  } else {
    last_reply_ = now;
    read_advice(*reply);
    const reply_error e{reply->error, reply->failure_reason};
    if (reply->successful.value_or(false)) {
      const bool carried_events = std::any_of(messages.begin(), messages.end(), [](const auto& m) {
        return !m.is_meta() && m.has_data;
      });
      if (!first_connect_ || carried_events) {
        // A held connect (or one that delivered): the session works; reset the backoffs.
        failures_ = 0;
        backoff_attempts_ = 0;
        limit_attempts_ = 0;
        progress_since_handshake_ = true;
      }
      auth_retried_ = false;
      first_connect_ = false;
      for (auto& [name, entry] : subscriptions_) {
        // The server wrote this reply after the connect was sent: a channel with nothing in it
        // had nothing published since then. The send time is the safe start of a later gap.
        if (entry.confirmed) entry.live_at = std::max(entry.live_at.value_or(connect_sent_at_),
                                                      connect_sent_at_);
      }
      state_ = session_state::connected;
      if (advice_.reconnect == reconnect_advice::handshake) {
        rehandshake("advice", now);
      } else {
        // The next connect goes out before any delivery, so a slow handler can never make
        // the client miss Salesforce's 40-second window.
        const auto interval = milliseconds{std::max<std::int64_t>(advice_.interval.value_or(0), 0)};
        if (interval.count() > 0) {
          schedule(step::connect, interval, now);
        } else {
          send_connect(now);
        }
      }
    } else if (auto limit = limit_name(e); !limit.empty()) {
      // Over a limit Salesforce disconnects the subscription: come back with
      // a handshake, not a connect.
      last_reply_.reset();
      fail_attempt(
          failure_kind::limit, step::connect,
          "Salesforce limit reached (" + std::string(limit) + "): " + std::string(e.cause()), now);
    } else if (is_auth_error(e)) {
      reauthenticate(std::string(e.cause()), now);
    } else if (is_unknown_client(e) || advice_.reconnect == reconnect_advice::handshake) {
      rehandshake(is_unknown_client(e) ? "unknown_client" : "advice", now);
    } else if (advice_.reconnect == reconnect_advice::none) {
      finish(make_error(errc::reconnect_none, std::string(e.cause()), "/meta/connect"));
    } else {
      fail_attempt(failure_kind::retry_advice, step::connect,
                   "/meta/connect failed: " + std::string(e.cause()), now,
                   milliseconds{std::max<std::int64_t>(advice_.interval.value_or(0), 0)});
    }
  }
  deliver_events(messages);
}

void session::handle_control_reply(std::vector<message>& messages, time_point now) {
  auto outstanding = std::exchange(control_outstanding_, {});
  if (state_ == session_state::disconnecting) return finish({});
  if (state_ == session_state::paused) return;
  const std::uint64_t epoch = epoch_;
  std::vector<bool> answered(outstanding.size(), false);

  auto match = [&](const message& m) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < outstanding.size(); ++i) {
      if (!answered[i] && m.id && *m.id == outstanding[i].id) return i;
    }
    // Salesforce has answered failed subscribes without `subscription` and, in captures, id
    // echoes are reliable; still fall back on channel + subscription when the id is absent.
    if (m.id) return std::nullopt;
    for (std::size_t i = 0; i < outstanding.size(); ++i) {
      const auto& p = outstanding[i];
      if (answered[i]) continue;
      const bool kind_ok =
          (p.kind == pending_kind::handshake && m.channel == "/meta/handshake") ||
          (p.kind == pending_kind::subscribe && m.channel == "/meta/subscribe") ||
          (p.kind == pending_kind::unsubscribe && m.channel == "/meta/unsubscribe") ||
          (p.kind == pending_kind::disconnect && m.channel == "/meta/disconnect");
      if (kind_ok && (m.subscription.empty() || m.subscription == p.channel)) return i;
    }
    return std::nullopt;
  };

  bool unsolicited_disconnect = false;
  for (const auto& m : messages) {
    if (epoch != epoch_ || state_ == session_state::closed) break;
    if (!m.is_meta()) continue;
    auto i = match(m);
    if (!i) {
      if (m.channel == "/meta/disconnect") {
        unsolicited_disconnect = true;
      } else {
        diag(diagnostic_level::info, "ignored an unexpected " + m.channel + " reply");
      }
      continue;
    }
    answered[*i] = true;
    const pending_message& p = outstanding[*i];
    switch (p.kind) {
      case pending_kind::handshake:
        handle_handshake_reply(m, now);
        break;
      case pending_kind::subscribe:
        handle_subscribe_reply(p, m, now);
        break;
      case pending_kind::unsubscribe:
        handle_unsubscribe_reply(p, m, now);
        break;
      case pending_kind::disconnect:
        break;
    }
  }

  if (epoch == epoch_ && state_ != session_state::closed) {
    if (unsolicited_disconnect) {
      rehandshake("disconnect", now);
    } else {
      bool lost = false;
      for (std::size_t i = 0; i < outstanding.size(); ++i) {
        if (answered[i]) continue;
        auto& p = outstanding[i];
        if (p.kind == pending_kind::handshake) {
          fail_attempt(failure_kind::protocol, step::handshake,
                       "the handshake reply has no /meta/handshake answer", now);
          break;
        }
        if (p.kind == pending_kind::subscribe || p.kind == pending_kind::unsubscribe) {
          control_queue_.push_back(std::move(p));
          lost = true;
        }
      }
      if (lost && count_failure()) {
        const auto delay =
            jittered(config_.backoff_initial, config_.backoff_max, backoff_attempts_);
        diag(diagnostic_level::warning, "a control reply left requests unanswered; retrying in " +
                                            std::to_string(delay.count()) + " ms");
        schedule_control_retry(delay, now);
      }
    }
  }
  deliver_events(messages);
  if (state_ != session_state::closed) flush_control(now);
}

void session::handle_handshake_reply(const message& m, time_point now) {
  const reply_error e{m.error, m.failure_reason};
  if (m.successful.value_or(false) && !m.client_id.empty()) {
    // Salesforce sends no advice on a successful handshake; a stale reconnect=handshake
    // would loop forever.
    advice_ = {};
    read_advice(m);
    client_id_ = m.client_id;
    ++counters_.handshakes;
    last_reply_ = now;
    progress_since_handshake_ = false;
    first_connect_ = true;
    send_connect(now);
    // Every (re)handshake re-subscribes every channel from its last received replay id.
    for (const auto& [name, entry] : subscriptions_) {
      control_queue_.push_back({pending_kind::subscribe, name, entry.start, {}});
    }
    flush_control(now);
    return;
  }
  read_advice(m);
  if (m.successful.value_or(false)) {
    fail_attempt(failure_kind::protocol, step::handshake, "the handshake reply has no clientId",
                 now);
  } else if (is_unsupported_version(e)) {
    // The endpoint version is wrong for this org: no retry can fix it.
    finish(make_error(errc::unsupported_api_version, std::string(e.cause()), "/meta/handshake"));
  } else if (auto limit = limit_name(e); !limit.empty()) {
    fail_attempt(failure_kind::limit, step::handshake,
                 "Salesforce limit reached (" + std::string(limit) + "): " + std::string(e.cause()),
                 now);
  } else if (is_auth_error(e)) {
    reauthenticate(std::string(e.cause()), now);
  } else if (m.advice && m.advice->reconnect == reconnect_advice::none) {
    finish(make_error(errc::handshake_denied, std::string(e.cause()), "/meta/handshake"));
  } else {
    fail_attempt(failure_kind::protocol, step::handshake,
                 "handshake denied: " + std::string(e.cause()), now);
  }
}

void session::handle_subscribe_reply(const pending_message& p, const message& m, time_point now) {
  auto it = subscriptions_.find(p.channel);
  if (m.successful.value_or(false)) {
    if (it == subscriptions_.end()) return;  // unsubscribed meanwhile; the unsubscribe follows
    last_reply_ = now;
    auto& entry = it->second;
    entry.confirmed = true;
    // Live on the server from when it handled the subscribe, which is after it was sent.
    entry.live_at = control_sent_at_;
    if (entry.gap_since) {
      ++counters_.gaps;
      emit(gap{p.channel, gap_cause::resubscribed_at_tip, std::nullopt, policy_for(p.channel), -1,
               entry.gap_since, now});
      entry.gap_since.reset();
    }
    emit(subscribed{p.channel, p.replay_from});
    return;
  }
  read_advice(m);
  const reply_error e{m.error, m.failure_reason};
  if (auto refused = refused_replay_id(m.error); refused && it != subscriptions_.end()) {
    const replay_policy policy = policy_for(p.channel);
    if (p.replay_from < 0) {
      subscription_dropped(p.channel,
                           make_error(errc::replay_gap, m.error, "subscribing to " + p.channel));
      return;
    }
    // The position is gone (too old, or the server's numbering changed, e.g. after an org
    // migration): apply the policy and say so loudly. Positions below the old id are not
    // re-deliveries any more.
    const std::int64_t from = policy == replay_policy::tip ? -1 : -2;
    forget_position(it->second.replay_key);
    ++counters_.gaps;
    emit(gap{p.channel, gap_cause::refused, *refused, policy, from, {}, {}});
    if (policy == replay_policy::fail) {
      subscription_dropped(p.channel,
                           make_error(errc::replay_gap, m.error, "subscribing to " + p.channel));
      return;
    }
    it->second.start = from;
    control_queue_.push_back({pending_kind::subscribe, p.channel, from, {}});
    return;
  }
  if (auto limit = limit_name(e); !limit.empty()) {
    control_queue_.push_back({pending_kind::subscribe, p.channel, p.replay_from, {}});
    const auto delay =
        jittered(config_.limit_backoff_initial, config_.limit_backoff_max, limit_attempts_);
    diag(diagnostic_level::error, "Salesforce limit reached (" + std::string(limit) +
                                      ") subscribing to " + p.channel + ": " +
                                      std::string(e.cause()) + "; retrying in " +
                                      std::to_string(delay.count()) + " ms");
    schedule_control_retry(delay, now);
    return;
  }
  if (is_auth_error(e)) {
    reauthenticate(std::string(e.cause()), now);
    return;
  }
  if (is_unknown_client(e)) {
    rehandshake("unknown_client", now);
    return;
  }
  if (it == subscriptions_.end()) return;
  // Rejected for this channel only (does not exist, no access, unknown channel): the others
  // keep streaming.
  subscription_dropped(p.channel, make_error(errc::subscription_rejected,
                                             m.error.empty() ? std::string("subscription refused")
                                                             : m.error,
                                             "subscribing to " + p.channel));
}

void session::handle_unsubscribe_reply(const pending_message& p, const message& m, time_point now) {
  if (!m.successful.value_or(false)) {
    const reply_error e{m.error, m.failure_reason};
    if (is_unknown_client(e) || is_auth_error(e)) {
      // The server-side subscription is gone with the client either way.
      emit(unsubscribed{p.channel});
      if (is_auth_error(e)) {
        reauthenticate(std::string(e.cause()), now);
      } else {
        rehandshake("unknown_client", now);
      }
      return;
    }
    diag(diagnostic_level::warning,
         "unsubscribe from " + p.channel + " failed: " + std::string(e.cause()));
  }
  emit(unsubscribed{p.channel});
}

}  // namespace sfstream::bayeux
