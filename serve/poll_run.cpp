#include "serve/poll_run.hpp"

#include <cstdio>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace sfstream::serve {

namespace asio = boost::asio;

namespace {

// The connection's store as the poller sees it: an entry without a cursor under a polling key
// is a retired cursor (what retire() leaves), read as none.
class cursor_view : public replay_store {
 public:
  explicit cursor_view(std::shared_ptr<replay_store> inner) : inner_(std::move(inner)) {}

  std::optional<replay_position> load(const std::string& key) const override {
    auto p = inner_->load(key);
    if (p && p->cursor.empty()) return std::nullopt;
    return p;
  }
  std::map<std::string, replay_position> load_all() const override { return inner_->load_all(); }
  error_info save(const std::map<std::string, replay_position>& positions) override {
    return inner_->save(positions);
  }

 private:
  std::shared_ptr<replay_store> inner_;
};

void add_run(polling_status& into, const poll_metrics& m) {
  into.api_calls += m.api_calls;
  if (m.allocation) {
    into.api_max = m.allocation->max;
    into.api_remaining = m.allocation->remaining;
  }
  for (auto& o : into.objects) {
    const auto it = m.objects.find(o.object);
    if (it == m.objects.end()) continue;
    const auto& om = it->second;
    o.events += om.created + om.updated + om.deleted;
    o.api_calls += om.api_calls;
    o.polls += om.polls;
    o.errors += om.errors;
    if (om.cursor_time) o.cursor_time = om.cursor_time;
  }
}

}  // namespace

poll_run::poll_run(asio::any_io_executor io, asio::any_io_executor blocking,
                   asio::any_io_executor callbacks, settings s,
                   std::shared_ptr<credentials_provider> credentials,
                   std::shared_ptr<replay_store> store, std::shared_ptr<sink> out, logger log)
    : io_(std::move(io)),
      blocking_(std::move(blocking)),
      callbacks_(std::move(callbacks)),
      settings_(std::move(s)),
      credentials_(std::move(credentials)),
      store_(std::make_shared<cursor_view>(store)),
      inner_(std::move(store)),
      sink_(std::move(out)),
      log_(std::move(log)) {
  totals_.fallback = settings_.fallback;
  for (const auto& o : settings_.polling.objects)
    totals_.objects.push_back({o.name, poller::channel_of(o.name), 0, 0, 0, 0, std::nullopt});
}

poll_run::~poll_run() = default;

void poll_run::start(std::function<void(const error_info&)> finished,
                     std::optional<std::chrono::system_clock::time_point> since) {
  if (running_) return;
  poll_config pc;
  pc.credentials = credentials_;
  pc.api_version = settings_.api_version;
  pc.network = settings_.network;
  pc.log = log_;
  pc.store = store_;
  pc.interval = settings_.polling.interval;
  pc.overlap = settings_.polling.overlap;
  pc.on_handler_failure = settings_.on_failure;
  if (pc.on_handler_failure.action == handler_failure::dead_letter)
    pc.on_handler_failure.action = handler_failure::retry;
  auto p = std::make_unique<poller>(io_, pc);
  for (const auto& o : settings_.polling.objects) {
    poll_callbacks cbs;
    cbs.on_batch = [out = sink_, blocking = blocking_, name = settings_.connection,
                    channel = poller::channel_of(o.name)](std::span<const event> events,
                                                          batch_done done) {
      // Off the I/O threads, as the streamed batches: a slow disk never holds a poll.
      asio::post(blocking, [out, name, channel, events, done = std::move(done)]() mutable {
        out->deliver(name, channel, events, std::move(done));
      });
    };
    if (auto why =
            p->add({o.name, o.fields, o.where, o.interval, poll_start::now, since}, std::move(cbs))) {
      asio::post(callbacks_, [finished, why] { finished(why); });
      return;
    }
  }
  finished_ = std::move(finished);
  running_ = true;
  {
    std::lock_guard lock{mutex_};
    poller_ = std::move(p);
  }
  char every[32];
  std::snprintf(every, sizeof every, "%.1f",
                static_cast<double>(settings_.polling.interval.count()) / 1000.0);
  log_.log(log_level::info, std::string(settings_.fallback ? "fallback polling: " : "polling: ") +
                                std::to_string(settings_.polling.objects.size()) +
                                " object(s) every " + every + " s");
  poller_->async_run(asio::bind_executor(
      callbacks_, [self = shared_from_this()](std::error_code ec) { self->on_finished(ec); }));
}

void poll_run::on_finished(std::error_code ec) {
  running_ = false;
  error_info why;
  {
    std::lock_guard lock{mutex_};
    if (poller_) {
      why = poller_->last_error();
      add_run(totals_, poller_->metrics());
    }
    // The poller goes later, outside its own completion.
    asio::post(callbacks_, [gone = std::shared_ptr<poller>(std::move(poller_))] {});
  }
  if (!why.code) why.code = ec;
  if (auto stopped = std::exchange(stopped_, nullptr)) {
    finished_ = nullptr;
    stopped();
    return;
  }
  if (auto finished = std::exchange(finished_, nullptr)) finished(why);
}

void poll_run::stop(std::function<void()> stopped) {
  if (!running_) {
    stopped();
    return;
  }
  if (stopped_) {  // a stop is under way already: this one ends with it
    stopped_ = [first = std::move(stopped_), then = std::move(stopped)] {
      first();
      then();
    };
    return;
  }
  stopped_ = std::move(stopped);
  std::lock_guard lock{mutex_};
  if (poller_) poller_->cancel();
}

bool poll_run::running() const {
  return running_;
}

void poll_run::retire() {
  std::map<std::string, replay_position> retired;
  for (const auto& o : settings_.polling.objects) {
    replay_position p;
    p.event_time = std::chrono::system_clock::now();
    retired[poller::channel_of(o.name)] = p;
  }
  if (auto why = inner_->save(retired))
    log_.log(log_level::error, "could not retire the fallback's cursors: " + why.to_string() +
                                   "; the next fallback resumes from them");
}

polling_status poll_run::status() const {
  std::lock_guard lock{mutex_};
  polling_status s = totals_;
  if (poller_) add_run(s, poller_->metrics());
  return s;
}

logger watch_daily_event_limit(logger inner, std::function<void()> on_limit) {
  logger out;
  out.min_level = inner.min_level;  // at most error: the watched lines always pass
  out.sink = [inner = std::move(inner), on_limit = std::move(on_limit)](log_level level,
                                                                        std::string_view text) {
    if (level == log_level::error &&
        text.find("Salesforce limit reached (daily events)") != std::string_view::npos)
      on_limit();
    inner.log(level, text);
  };
  return out;
}

}  // namespace sfstream::serve
