#include "serve/postgresql_sink.hpp"

#include <cstdio>
#include <mutex>
#include <set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bayeux/channel.hpp"
#include "sfstream/detail/json_text.hpp"

namespace sfstream::serve {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

bool transient_database_error(const error_info& why) {
  if (why.code != errc::replay_store_io) return false;
  const std::string& state = why.diag.server_code;
  // No SQLSTATE: the server was not reached or the connection broke.
  if (state.size() != 5) return true;
  const std::string_view cls = std::string_view(state).substr(0, 2);
  return cls == "08" ||  // connection exception
         cls == "40" ||  // serialization failure, deadlock, commit outcome unknown
         cls == "53" ||  // insufficient resources (too many connections, disk full)
         cls == "57" ||  // shutdown, restart, statement timeout
         cls == "58" ||  // system error (I/O)
         state == "55P03";  // lock not available
}

namespace {

/// The latency histogram's upper bounds, in seconds.
constexpr double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,     2.5,  5,     10,   30,  60};

error_info make_error(errc code, std::string context, std::string text) {
  error_info e;
  e.code = make_error_code(code);
  e.diag.context = std::move(context);
  e.diag.server_text = std::move(text);
  return e;
}

class postgresql_sink final : public sink, public std::enable_shared_from_this<postgresql_sink> {
 public:
  postgresql_sink(asio::any_io_executor blocking, postgresql_sink_options options)
      : blocking_(std::move(blocking)), options_(std::move(options)) {
    for (const double b : latency_bounds) figures_.latency_buckets[b] = 0;
  }

  void deliver(const std::string& connection, const std::string& channel,
               std::span<const event> events, batch_done done) override {
    auto b = std::make_shared<batch>(blocking_);
    b->connection = connection;
    b->key = std::string(bayeux::replay_key_of(channel));
    b->events = events;
    b->done = std::move(done);
    b->handed = clock::now();
    {
      std::lock_guard lock{mutex_};
      figures_.backlog += events.size();
    }
    asio::post(blocking_, [self = shared_from_this(), b] { self->attempt(b); });
  }

  void stop() override {
    std::lock_guard lock{mutex_};
    stopped_ = true;
    for (const auto& b : waiting_) b->timer.cancel();
  }

  sink_figures figures() const override {
    std::lock_guard lock{mutex_};
    return figures_;
  }

 private:
  struct batch {
    explicit batch(const asio::any_io_executor& ex) : timer(ex) {}
    std::string connection;
    std::string key;  // the channel's replay key: the rows' channel and the position's key
    std::span<const event> events;
    batch_done done;
    clock::time_point handed;
    unsigned attempts = 0;
    asio::steady_timer timer;
  };

  std::string where(const batch& b) const {
    return "storing events of " + b.connection + " " + b.key + " in PostgreSQL";
  }

  void attempt(const std::shared_ptr<batch>& b) {
    const auto f = options_.owner->fence(b->connection);
    if (!f) {
      finish(b, 0,
             make_error(errc::lease_lost, where(*b),
                        "this replica does not hold the connection's lease"));
      return;
    }
    std::size_t stored = 0;
    error_info why = write(*b, *f, stored);
    if (!why) {
      finish(b, b->events.size(), {});
      return;
    }
    if (why.code == errc::lease_lost) {
      options_.log.log(log_level::warning, why.to_string() + ": the batch is not stored");
      options_.owner->lost(b->connection);
      finish(b, 0, why);
      return;
    }
    const std::string text = why.to_string();
    const bool transient = stored == 0 && transient_database_error(why);
    std::unique_lock lock{mutex_};
    ++figures_.failures;
    figures_.last_error = text;
    if (!transient) {
      lock.unlock();
      // What no retry of the database fixes (an event it refuses): the first `stored` events
      // are in; the connection's handler failure policy decides about the next one.
      options_.log.log(log_level::error, text);
      why.code = make_error_code(errc::output_failed);
      finish(b, stored, why);
      return;
    }
    if (stopped_) {
      lock.unlock();
      finish(b, 0, make_error(errc::cancelled, where(*b), "the sink stopped; not retried: " + text));
      return;
    }
    ++figures_.retries;
    ++b->attempts;
    auto wait = options_.backoff_initial;
    for (unsigned i = 1; i < b->attempts && wait < options_.backoff_max; ++i) wait *= 2;
    wait = std::min(wait, options_.backoff_max);
    char delay[32];
    std::snprintf(delay, sizeof delay, "%.1f", static_cast<double>(wait.count()) / 1000.0);
    options_.log.log(log_level::warning, text + "; trying again in " + delay + " s (try " +
                                             std::to_string(b->attempts + 1) + ")");
    waiting_.insert(b);
    b->timer.expires_after(wait);
    b->timer.async_wait([self = shared_from_this(), b](boost::system::error_code) {
      bool stopped = false;
      {
        std::lock_guard held{self->mutex_};
        self->waiting_.erase(b);
        stopped = self->stopped_;
      }
      if (stopped) {
        self->finish(b, 0,
                     make_error(errc::cancelled, self->where(*b),
                                "the sink stopped while waiting to retry"));
        return;
      }
      self->attempt(b);
    });
  }

  /// One transaction: the fence, the rows, the position, the NOTIFY. `stored` is the number
  /// of events committed when only the first of them could be (an event the server refused).
  error_info write(const batch& b, const postgresql::fence& f, std::size_t& stored) {
    stored = 0;
    // The events as one JSON array of [replay id, event] pairs, unpacked by the server.
    std::string rows = "[";
    std::optional<std::int64_t> last;
    for (const auto& e : b.events) {
      if (!e.replay_id()) {
        options_.log.log(log_level::warning, "an event of " + b.key +
                                                 " without a replay id is not stored");
        continue;
      }
      if (rows.size() > 1) rows += ',';
      rows += '[';
      rows += std::to_string(*e.replay_id());
      rows += ',';
      rows += body(e);
      rows += ']';
      last = e.replay_id();
    }
    rows += ']';
    error_info why = options_.database->run([&](postgresql::session& s) {
      return s.transaction([&]() -> error_info {
        if (auto e = postgresql::check_fence(s, options_.tables, b.connection, f)) return e;
        if (!last) return error_info{};
        if (auto e = s.exec("INSERT INTO " + options_.tables.events +
                                " (connection, channel, replay_id, event) SELECT $1, $2,"
                                " (x->>0)::bigint, x->1 FROM jsonb_array_elements($3::jsonb) x"
                                " ON CONFLICT DO NOTHING",
                            {b.connection, b.key, rows}))
          return e;
        return commit_position(s, b, f, *last, b.events.size());
      });
    });
    if (why && !transient_database_error(why) && why.code != errc::lease_lost &&
        why.diag.server_code.starts_with("22"))
      return write_one_by_one(b, f, stored);
    return why;
  }

  /// After the server refused the batch's data: the events one at a time, the good ones before
  /// the first it refuses committed with their position.
  error_info write_one_by_one(const batch& b, const postgresql::fence& f, std::size_t& stored) {
    error_info refused;
    error_info why = options_.database->run([&](postgresql::session& s) {
      stored = 0;
      refused = {};
      return s.transaction([&]() -> error_info {
        if (auto e = postgresql::check_fence(s, options_.tables, b.connection, f)) return e;
        std::optional<std::int64_t> last;
        std::size_t i = 0;
        for (; i < b.events.size(); ++i) {
          const event& e = b.events[i];
          if (!e.replay_id()) continue;
          if (auto bad = s.exec("SAVEPOINT one")) return bad;
          const std::string id = std::to_string(*e.replay_id());
          if (auto bad = s.exec("INSERT INTO " + options_.tables.events +
                                    " (connection, channel, replay_id, event)"
                                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                                {b.connection, b.key, id, body(e)})) {
            if (transient_database_error(bad)) return bad;
            refused = bad;
            if (auto back = s.exec("ROLLBACK TO SAVEPOINT one")) return back;
            break;
          }
          last = e.replay_id();
        }
        stored = i;
        if (!last) return error_info{};
        return commit_position(s, b, f, *last, i);
      });
    });
    if (why) {
      stored = 0;
      return why;
    }
    if (refused) {
      refused.diag.context = where(b) + ": the event after the first " + std::to_string(stored) +
                             " was refused";
      return refused;
    }
    return {};
  }

  error_info commit_position(postgresql::session& s, const batch& b, const postgresql::fence& f,
                             std::int64_t last, std::size_t count) {
    replay_position p;
    p.replay_id = last;
    p.event_time = std::chrono::system_clock::now();
    if (auto e = postgresql::write_positions(s, options_.tables, b.connection, {{b.key, p}},
                                             f.epoch))
      return e;
    if (options_.notify.empty()) return {};
    std::string payload = "{\"connection\":";
    detail::append_json_string(payload, b.connection);
    payload += ",\"channel\":";
    detail::append_json_string(payload, b.key);
    payload += ",\"last_replay_id\":" + std::to_string(last) +
               ",\"events\":" + std::to_string(count) + "}";
    return s.exec("SELECT pg_notify($1, $2)", {options_.notify, payload});
  }

  /// What goes into the `event` column: the message's `data` member as received (the whole
  /// message when it has none).
  static std::string_view body(const event& e) {
    return e.data_json().empty() ? e.json() : e.data_json();
  }

  void finish(const std::shared_ptr<batch>& b, std::size_t handled, error_info why) {
    {
      std::lock_guard lock{mutex_};
      figures_.backlog -= std::min(figures_.backlog, b->events.size());
      if (!why) {
        ++figures_.batches;
        figures_.events += handled;
        for (const auto& e : b->events) figures_.bytes += body(e).size();
        const double seconds =
            std::chrono::duration<double>(clock::now() - b->handed).count();
        for (const double bound : latency_bounds) {
          if (seconds <= bound) ++figures_.latency_buckets[bound];
        }
        figures_.latency_sum += seconds;
        ++figures_.latency_count;
      }
    }
    auto done = std::move(b->done);
    done(handled, std::move(why));
  }

  asio::any_io_executor blocking_;
  postgresql_sink_options options_;
  mutable std::mutex mutex_;
  sink_figures figures_;
  bool stopped_ = false;
  std::set<std::shared_ptr<batch>> waiting_;
};

}  // namespace

std::shared_ptr<sink> make_postgresql_sink(asio::any_io_executor blocking,
                                           postgresql_sink_options options) {
  return std::make_shared<postgresql_sink>(std::move(blocking), std::move(options));
}

}  // namespace sfstream::serve
