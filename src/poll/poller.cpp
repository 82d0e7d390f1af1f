// The polling source's runtime: per object, a timer, a paged queryAll, the handler calls and
// the commit of the cursor after each page; on one strand. Decisions about what a record is
// and whether it is new live in poll_cursor and poll_query.
#include "sfstream/poll.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <utility>

#include <rapidjson/document.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "sfstream/rest.hpp"
#include "src/poll/poll_cursor.hpp"
#include "src/poll/poll_query.hpp"

namespace asio = boost::asio;

namespace sfstream {
namespace detail {
namespace {

using poll_detail::poll_cursor;
using poll_detail::polled_record;
using poll_detail::stamp;
using std::chrono::milliseconds;

error_info config_error(std::string text) {
  error_info e;
  e.code = make_error_code(errc::invalid_config);
  e.diag.server_text = std::move(text);
  e.diag.context = "configuring the poller";
  return e;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 80) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

std::string describe_error(const error_info& e) {
  std::string text = e.code.message();
  const std::string diag = e.diag.to_string();
  if (!diag.empty()) text += " (" + diag + ")";
  return text;
}

milliseconds until_end_of_utc_day(std::chrono::system_clock::time_point now) {
  const auto day = std::chrono::floor<std::chrono::days>(now);
  return std::chrono::duration_cast<milliseconds>(day + std::chrono::days(1) - now);
}

}  // namespace

struct polled_object {
  polled_object(asio::strand<asio::any_io_executor>& strand, poll_object s, poll_callbacks c,
                handler_failure_policy p)
      : spec(std::move(s)),
        callbacks(std::move(c)),
        policy(std::move(p)),
        channel(poller::channel_of(spec.name)),
        timer(strand) {}

  poll_object spec;
  poll_callbacks callbacks;
  handler_failure_policy policy;
  std::string channel;
  std::optional<poll_cursor> cursor;
  asio::steady_timer timer;
  int failures = 0;  // Consecutive failed REST calls.
  milliseconds backoff{0};
  // The page being handled: its records from `next`, and where the next page is.
  std::vector<sobject_record> records;
  std::size_t next = 0;
  std::string next_url;
  int handler_tries = 0;  // Failed calls of the handler on records[next].
  milliseconds handler_backoff{0};
  // With a batch handler: the page's new events, their versions and kinds, and the first one
  // not confirmed yet.
  std::vector<event> batch;
  std::vector<std::pair<stamp, std::string>> batch_versions;
  std::size_t batch_from = 0;
  poll_object_metrics metrics;  // Guarded by poll_runtime::mutex_.
};

class poll_runtime : public std::enable_shared_from_this<poll_runtime> {
 public:
  poll_runtime(asio::any_io_executor executor, poll_config config)
      : strand_(asio::make_strand(executor)), config_(std::move(config)) {
    if (!config_.store) config_.store = make_memory_replay_store();
  }

  error_info add(poll_object object, poll_callbacks callbacks) {
    const std::lock_guard lock(mutex_);
    if (state_ != run_state::idle) return config_error("objects are added before async_run");
    if (!valid_name(object.name))
      return config_error("\"" + object.name + "\" is not an sObject API name");
    for (const auto& f : object.fields)
      if (!valid_name(f) && f.find('.') == std::string::npos)
        return config_error("\"" + f + "\" is not a field API name");
    for (const auto& o : objects_)
      if (o->spec.name == object.name)
        return config_error(object.name + " is polled twice: give each object once");
    if (!callbacks.on_event && !callbacks.on_event_status && !callbacks.on_batch)
      return config_error(object.name + " has no event handler");
    const auto policy = callbacks.on_failure.value_or(config_.on_handler_failure);
    if (policy.action == handler_failure::dead_letter)
      return config_error("the poller supports the handler failure policies stop and retry");
    if (object.interval.count() < 0) return config_error(object.name + ": a negative interval");
    objects_.push_back(std::make_unique<polled_object>(strand_, std::move(object),
                                                       std::move(callbacks), policy));
    metrics_.objects[objects_.back()->spec.name];
    return {};
  }

  void start(std::function<void(std::error_code)> done) {
    asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
      self->begin(std::move(done));
    });
  }

  // From a handler (on the strand) the stop takes effect before the next record: what the
  // handler saw last is the last thing committed.
  void cancel() {
    if (strand_.running_in_this_thread()) {
      finish({});
      return;
    }
    asio::post(strand_, [self = shared_from_this()] { self->finish({}); });
  }

  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->done_ = nullptr;
      self->finish({});
    });
  }

  poll_metrics metrics() const {
    const std::lock_guard lock(mutex_);
    poll_metrics m = metrics_;
    for (const auto& o : objects_) m.objects[o->spec.name] = o->metrics;
    return m;
  }

  error_info last_error() const {
    const std::lock_guard lock(mutex_);
    return last_error_;
  }

 private:
  enum class run_state { idle, running, closed };

  // ---- lifecycle ------------------------------------------------------------------------

  void begin(std::function<void(std::error_code)> done) {
    {
      const std::lock_guard lock(mutex_);
      if (state_ != run_state::idle) {
        asio::post(strand_, [done = std::move(done)] {
          done(make_error_code(errc::invalid_config));
        });
        return;
      }
      state_ = run_state::running;
    }
    done_ = std::move(done);
    if (!config_.credentials) {
      fail(config_error("the poller has no credentials provider"));
      return;
    }
    if (objects_.empty()) {
      fail(config_error("no object to poll"));
      return;
    }
    if (config_.overlap.count() < 0 || config_.interval.count() <= 0) {
      fail(config_error("the interval must be positive and the overlap not negative"));
      return;
    }
    rest_options options;
    options.credentials = config_.credentials;
    options.api_version = config_.api_version;
    options.network = config_.network;
    options.batch_size = config_.batch_size;
    rest_ = std::make_unique<rest_client>(strand_, std::move(options));
    if (config_.check_limits)
      read_limits();
    else
      start_objects();
  }

  void finish(error_info error) {
    if (state_ == run_state::closed) return;
    {
      const std::lock_guard lock(mutex_);
      state_ = run_state::closed;
      last_error_ = error;
    }
    for (auto& o : objects_) o->timer.cancel();
    complete_if_idle();
  }

  // A closed run completes once no batch handler holds events: what it confirms is committed
  // first.
  void complete_if_idle() {
    if (state_ != run_state::closed || in_flight_ != 0) return;
    if (auto done = std::exchange(done_, nullptr)) {
      error_info error;
      {
        const std::lock_guard lock(mutex_);
        error = last_error_;
      }
      asio::post(strand_, [done = std::move(done), ec = error.code] { done(ec); });
    }
  }

  void fail(error_info error) {
    if (state_ == run_state::closed) return;
    config_.log.log(log_level::debug, "polling stopped: " + describe_error(error));
    finish(std::move(error));
  }

  bool closed() const { return state_ == run_state::closed; }

  std::chrono::milliseconds interval_of(const polled_object& o) const {
    return o.spec.interval.count() > 0 ? o.spec.interval : config_.interval;
  }

  // ---- REST calls, counted --------------------------------------------------------------

  void count_call(polled_object* o) {
    const std::lock_guard lock(mutex_);
    ++metrics_.api_calls;
    if (o) ++o->metrics.api_calls;
  }

  void query(polled_object& o, const std::string& soql, rest_client::query_handler done) {
    count_call(&o);
    config_.log.log(log_level::debug, "polling " + o.spec.name + ": " + soql);
    rest_->async_query(soql, true, std::move(done));
  }

  void next_page(polled_object& o, const std::string& url, rest_client::query_handler done) {
    count_call(&o);
    rest_->async_next_page(url, std::move(done));
  }

  // ---- the org's API allocation -----------------------------------------------------------

  void read_limits() {
    count_call(nullptr);
    rest_->async_request(
        "GET", "/services/data/v" + config_.api_version + "/limits", {},
        [self = shared_from_this()](error_info e, unsigned, std::string body) {
          if (self->closed()) return;
          if (e) {
            self->config_.log.log(log_level::warning,
                                  "could not read the org's limits: " + describe_error(e));
          } else {
            self->check_allocation(body);
          }
          self->start_objects();
        });
  }

  void check_allocation(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    const rapidjson::Value* api = nullptr;
    if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("DailyApiRequests"))
      api = &doc["DailyApiRequests"];
    if (!api || !api->IsObject() || !api->HasMember("Max") || !api->HasMember("Remaining") ||
        !(*api)["Max"].IsInt64() || !(*api)["Remaining"].IsInt64()) {
      config_.log.log(log_level::warning, "the org's limits have no DailyApiRequests");
      return;
    }
    api_allocation a;
    a.max = (*api)["Max"].GetInt64();
    a.remaining = (*api)["Remaining"].GetInt64();
    const auto left = until_end_of_utc_day(std::chrono::system_clock::now());
    for (const auto& o : objects_) {
      const auto every = std::max<std::int64_t>(1, interval_of(*o).count());
      a.projected += (left.count() + every - 1) / every;
    }
    {
      const std::lock_guard lock(mutex_);
      metrics_.allocation = a;
    }
    const double share = static_cast<double>(a.projected) /
                         static_cast<double>(std::max<std::int64_t>(1, a.remaining));
    config_.log.log(log_level::info, "DailyApiRequests: " + std::to_string(a.remaining) +
                                         " of " + std::to_string(a.max) +
                                         " remaining; polling would use about " +
                                         std::to_string(a.projected) +
                                         " before the end of the UTC day");
    if (share > config_.api_share_warning) {
      config_.log.log(
          log_level::warning,
          "polling " + std::to_string(objects_.size()) + " object(s) at the configured "
              "interval would make about " + std::to_string(a.projected) +
              " API calls before the end of the UTC day, " +
              std::to_string(static_cast<long long>(std::lround(share * 100))) + "% of the " +
              std::to_string(a.remaining) + " DailyApiRequests remaining (warning above " +
              std::to_string(static_cast<long long>(std::lround(config_.api_share_warning * 100))) +
              "%): a longer interval leaves more for other integrations");
    }
  }

  // ---- where each object starts ---------------------------------------------------------

  void start_objects() {
    for (auto& o : objects_) start_object(*o);
  }

  void start_object(polled_object& o) {
    if (closed()) return;
    const auto stored = config_.store->load(o.channel);
    if (stored && !stored->cursor.empty()) {
      std::string why;
      auto cursor = poll_cursor::decode(stored->cursor, config_.overlap, why);
      if (!cursor) {
        error_info e;
        e.code = make_error_code(errc::replay_store_corrupt);
        e.diag.server_text = "the stored cursor of " + o.channel + " is not a polling cursor: " + why;
        e.diag.context = "polling " + o.spec.name;
        fail(std::move(e));
        return;
      }
      o.cursor = std::move(*cursor);
      poll(o);
      return;
    }
    if (stored) {
      error_info e;
      e.code = make_error_code(errc::replay_store_corrupt);
      e.diag.server_text = "the store holds a replay id, not a polling cursor, for " + o.channel;
      e.diag.context = "polling " + o.spec.name;
      fail(std::move(e));
      return;
    }
    if (o.spec.since) {
      const auto ms = std::chrono::duration_cast<milliseconds>(o.spec.since->time_since_epoch());
      o.cursor = poll_cursor::after(stamp{ms.count(), {}}, config_.overlap);
      commit_start(o);
      return;
    }
    if (o.spec.start == poll_start::beginning) {
      o.cursor.emplace(config_.overlap);
      commit_start(o);
      return;
    }
    query(o, poll_detail::build_newest_soql(o.spec.name, o.spec.where),
          [self = shared_from_this(), &o](error_info e, query_page page) {
            if (self->closed()) return;
            if (e) {
              self->on_rest_failure(o, std::move(e), [self, &o] { self->start_object(o); });
              return;
            }
            o.failures = 0;
            std::optional<stamp> newest;
            if (!page.records.empty()) {
              error_info why;
              // Only Id and SystemModstamp are selected: read them without the rest.
              const auto& r = page.records.front();
              const auto* id = r.field("Id");
              const auto* modstamp = r.field("SystemModstamp");
              const auto ms = modstamp ? poll_detail::parse_datetime_ms(modstamp->as_string())
                                       : std::nullopt;
              if (!id || !poll_detail::is_record_id(id->as_string()) || !ms) {
                error_info bad;
                bad.code = make_error_code(errc::protocol_error);
                bad.diag.server_text = "the newest record has no valid Id and SystemModstamp";
                bad.diag.context = "polling " + o.spec.name;
                self->fail(std::move(bad));
                return;
              }
              newest = stamp{*ms, id->as_string()};
            }
            if (newest)
              o.cursor = poll_cursor::after(*newest, self->config_.overlap);
            else
              o.cursor.emplace(self->config_.overlap);
            self->commit_start(o);
          });
  }

  // The start point is committed at once: a run stopped before any change still resumes from
  // where it began, not from a later "now".
  void commit_start(polled_object& o) {
    if (!commit(o)) return;
    poll(o);
  }

  // ---- one poll ---------------------------------------------------------------------------

  void poll(polled_object& o) {
    if (closed()) return;
    const auto soql =
        poll_detail::build_poll_soql(o.spec.name, o.spec.fields, o.spec.where, o.cursor->lower_bound());
    query(o, soql, [self = shared_from_this(), &o](error_info e, query_page page) {
      self->on_page(o, std::move(e), std::move(page), [self, &o] { self->poll(o); });
    });
  }

  void on_page(polled_object& o, error_info e, query_page page, std::function<void()> again) {
    if (closed()) return;
    if (e) {
      on_rest_failure(o, std::move(e), std::move(again));
      return;
    }
    o.failures = 0;
    {
      const std::lock_guard lock(mutex_);
      ++o.metrics.pages;
    }
    o.records = std::move(page.records);
    o.next = 0;
    o.next_url = page.done ? std::string() : page.next_records_url;
    o.handler_tries = 0;
    handle_records(o);
  }

  void handle_records(polled_object& o) {
    if (o.callbacks.on_batch) {
      handle_batch(o);
      return;
    }
    bool emitted = false;
    while (!closed() && o.next < o.records.size()) {
      error_info why;
      auto record = poll_detail::read_polled_record(o.records[o.next], o.spec.fields, why);
      if (!record) {
        why.diag.context = "polling " + o.spec.name;
        fail(std::move(why));
        return;
      }
      if (!o.cursor->is_new(record->version)) {
        const std::lock_guard lock(mutex_);
        ++o.metrics.repeats_dropped;
        ++o.next;
        continue;
      }
      const event ev(o.channel, std::nullopt, poll_detail::build_poll_event(o.channel, *record));
      error_info failure = call_handler(o, ev);
      if (failure) {
        if (emitted && !commit(o)) return;
        on_handler_failure(o, std::move(failure));
        return;
      }
      emitted = true;
      {
        const std::lock_guard lock(mutex_);
        auto& m = o.metrics;
        if (o.cursor->is_late(record->version)) ++m.late;
        ++(record->type == "created" ? m.created : record->type == "deleted" ? m.deleted : m.updated);
        ++metrics_.events;
      }
      o.cursor->mark_emitted(record->version);
      o.handler_tries = 0;
      ++o.next;
    }
    // Handled records are committed even when the run was cancelled meanwhile.
    if (emitted && !commit(o)) return;
    page_handled(o);
  }

  // The next page of this poll, or the wait for the next poll.
  void page_handled(polled_object& o) {
    if (closed()) return;
    o.records.clear();
    if (!o.next_url.empty()) {
      fetch_page(o, std::exchange(o.next_url, {}));
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      ++o.metrics.polls;
    }
    wait_then(o, interval_of(o), [self = shared_from_this(), &o] { self->poll(o); });
  }

  // The next page of a poll. A failure a retry can fix asks for the same page again; a locator
  // the server no longer knows (INVALID_QUERY_LOCATOR: it expired) starts a fresh poll, which
  // reads again from the committed cursor.
  void fetch_page(polled_object& o, const std::string& url) {
    next_page(o, url, [self = shared_from_this(), &o, url](error_info e, query_page page) {
      if (self->closed()) return;
      if (e && e.diag.server_code == "INVALID_QUERY_LOCATOR") {
        self->config_.log.log(log_level::warning, "polling " + o.spec.name +
                                                      ": the query locator expired; polling again");
        self->poll(o);
        return;
      }
      self->on_page(o, std::move(e), std::move(page), [self, &o, url] { self->fetch_page(o, url); });
    });
  }

  // ---- the batch handler ------------------------------------------------------------------

  void handle_batch(polled_object& o) {
    if (closed()) return;
    if (o.batch_from == o.batch.size()) {
      o.batch.clear();
      o.batch_versions.clear();
      o.batch_from = 0;
      for (; o.next < o.records.size(); ++o.next) {
        error_info why;
        auto record = poll_detail::read_polled_record(o.records[o.next], o.spec.fields, why);
        if (!record) {
          why.diag.context = "polling " + o.spec.name;
          fail(std::move(why));
          return;
        }
        if (!o.cursor->is_new(record->version)) {
          const std::lock_guard lock(mutex_);
          ++o.metrics.repeats_dropped;
          continue;
        }
        o.batch.emplace_back(o.channel, std::nullopt,
                             poll_detail::build_poll_event(o.channel, *record));
        o.batch_versions.emplace_back(record->version, record->type);
      }
      if (o.batch.empty()) {
        page_handled(o);
        return;
      }
    }
    ++in_flight_;
    const std::span<const event> events(o.batch.data() + o.batch_from,
                                        o.batch.size() - o.batch_from);
    auto once = std::make_shared<std::atomic<bool>>(false);
    batch_done done = [self = shared_from_this(), &o, once](std::size_t handled, error_info e) {
      if (once->exchange(true)) return;
      asio::post(self->strand_, [self, &o, handled, e = std::move(e)]() mutable {
        self->on_batch_done(o, handled, std::move(e));
      });
    };
    try {
      o.callbacks.on_batch(events, done);
    } catch (...) {
      done(0, handler_exception());
    }
  }

  void on_batch_done(polled_object& o, std::size_t handled, error_info failure) {
    --in_flight_;
    const std::size_t left = o.batch.size() - o.batch_from;
    if (!failure) handled = left;
    handled = std::min(handled, left);
    {
      const std::lock_guard lock(mutex_);
      auto& m = o.metrics;
      for (std::size_t i = o.batch_from; i < o.batch_from + handled; ++i) {
        const auto& [version, type] = o.batch_versions[i];
        if (o.cursor->is_late(version)) ++m.late;
        ++(type == "created" ? m.created : type == "deleted" ? m.deleted : m.updated);
        ++metrics_.events;
        o.cursor->mark_emitted(version);
      }
    }
    o.batch_from += handled;
    if (handled > 0) o.handler_tries = 0;
    // What the handler confirmed is committed even when the run was cancelled meanwhile.
    if (handled > 0 && !commit(o)) {
      complete_if_idle();
      return;
    }
    if (closed()) {
      complete_if_idle();
      return;
    }
    if (failure) {
      on_handler_failure(o, std::move(failure));
      return;
    }
    page_handled(o);
  }

  error_info call_handler(polled_object& o, const event& ev) {
    try {
      if (o.callbacks.on_event_status) return o.callbacks.on_event_status(ev);
      o.callbacks.on_event(ev);
      return {};
    } catch (...) {
      return handler_exception();
    }
  }

  // The failure of a handler that threw: called inside a catch block.
  static error_info handler_exception() {
    error_info e;
    e.code = make_error_code(errc::handler_failed);
    try {
      throw;
    } catch (const std::exception& ex) {
      e.diag.server_text = ex.what();
    } catch (...) {
      e.diag.server_text = "the handler threw a non-standard exception";
    }
    return e;
  }

  void on_handler_failure(polled_object& o, error_info failure) {
    {
      const std::lock_guard lock(mutex_);
      ++o.metrics.handler_failures;
    }
    const std::string what = "the handler failed on a " + o.spec.name + " change: " +
                             describe_error(failure);
    if (o.policy.action == handler_failure::retry && o.handler_tries < o.policy.max_retries) {
      ++o.handler_tries;
      o.handler_backoff = o.handler_tries == 1
                              ? o.policy.retry_backoff_initial
                              : std::min(o.handler_backoff * 2, o.policy.retry_backoff_max);
      config_.log.log(log_level::warning, what + "; retry " + std::to_string(o.handler_tries) +
                                              " of " + std::to_string(o.policy.max_retries));
      wait_then(o, o.handler_backoff, [self = shared_from_this(), &o] { self->handle_records(o); });
      return;
    }
    error_info e;
    e.code = make_error_code(errc::handler_failed);
    e.diag = failure.diag;
    if (e.diag.server_text.empty()) e.diag.server_text = failure.code.message();
    e.diag.context = "handling a change of " + o.spec.name + " (left uncommitted)";
    fail(std::move(e));
  }

  // ---- failures of REST calls -------------------------------------------------------------

  void on_rest_failure(polled_object& o, error_info e, std::function<void()> again) {
    {
      const std::lock_guard lock(mutex_);
      ++o.metrics.errors;
    }
    if (e.diag.context.empty()) e.diag.context = "polling " + o.spec.name;
    const bool limit = e.diag.server_code == "REQUEST_LIMIT_EXCEEDED";
    if (!limit && !is_retryable(e)) {
      e.diag.context = "polling " + o.spec.name + " (" + e.diag.context + ")";
      fail(std::move(e));
      return;
    }
    ++o.failures;
    if (config_.max_retries >= 0 && o.failures > config_.max_retries) {
      error_info out;
      out.code = make_error_code(errc::retries_exhausted);
      out.diag = e.diag;
      out.cause = e.code;
      fail(std::move(out));
      return;
    }
    const auto initial = limit ? config_.limit_backoff_initial : config_.backoff_initial;
    const auto cap = limit ? config_.limit_backoff_max : config_.backoff_max;
    o.backoff = o.failures == 1 ? initial : std::min(o.backoff * 2, cap);
    config_.log.log(log_level::warning,
                    std::string(limit ? "the org's daily API request allocation is spent: " : "") +
                        "polling " + o.spec.name + " failed: " + describe_error(e) +
                        "; trying again in " + std::to_string(o.backoff.count()) + " ms");
    wait_then(o, o.backoff, std::move(again));
  }

  void wait_then(polled_object& o, milliseconds delay, std::function<void()> next) {
    o.timer.expires_after(delay);
    o.timer.async_wait([self = shared_from_this(), next = std::move(next)](boost::system::error_code ec) {
      if (ec || self->closed()) return;
      next();
    });
  }

  // ---- commit -----------------------------------------------------------------------------

  bool commit(polled_object& o) {
    replay_position position;
    position.cursor = o.cursor->encode();
    if (const auto& newest = o.cursor->newest())
      position.event_time = std::chrono::system_clock::time_point(milliseconds(newest->ms));
    error_info failed;
    for (int attempt = 0; attempt < std::max(1, config_.store_save_attempts); ++attempt) {
      failed = config_.store->save({{o.channel, position}});
      if (!failed) break;
    }
    if (failed) {
      if (failed.code != errc::replay_store_locked) failed.code = make_error_code(errc::replay_store_io);
      // A cancelled run still reports it: the store is behind what the handler saw.
      if (closed()) {
        const std::lock_guard lock(mutex_);
        last_error_ = failed;
      }
      fail(std::move(failed));
      return false;
    }
    const std::lock_guard lock(mutex_);
    o.metrics.window = o.cursor->window_size();
    o.metrics.cursor_time = o.cursor->newest()
                                ? std::optional(position.event_time)
                                : std::nullopt;
    return true;
  }

  asio::strand<asio::any_io_executor> strand_;
  poll_config config_;
  std::unique_ptr<rest_client> rest_;
  std::vector<std::unique_ptr<polled_object>> objects_;
  std::function<void(std::error_code)> done_;
  std::size_t in_flight_ = 0;  // Batches a batch handler holds (strand only).
  mutable std::mutex mutex_;
  run_state state_ = run_state::idle;  // Written under mutex_, read on the strand.
  poll_metrics metrics_;
  error_info last_error_;
};

}  // namespace detail

poller::poller(asio::any_io_executor executor, poll_config config)
    : impl_(std::make_shared<detail::poll_runtime>(std::move(executor), std::move(config))) {}

poller::~poller() {
  impl_->shutdown();
}

error_info poller::add(poll_object object, poll_callbacks callbacks) {
  return impl_->add(std::move(object), std::move(callbacks));
}

error_info poller::add(poll_object object, std::function<void(const event&)> on_event) {
  poll_callbacks callbacks;
  callbacks.on_event = std::move(on_event);
  return impl_->add(std::move(object), std::move(callbacks));
}

void poller::start_run(std::function<void(std::error_code)> done) {
  impl_->start(std::move(done));
}

void poller::cancel() {
  impl_->cancel();
}

poll_metrics poller::metrics() const {
  return impl_->metrics();
}

error_info poller::last_error() const {
  return impl_->last_error();
}

std::string poller::channel_of(const std::string& object) {
  return "/poll/" + object;
}

}  // namespace sfstream
