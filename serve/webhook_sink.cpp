// The webhook sink: per (connection, channel) a worker on its own strand with its own
// keep-alive lane, so channels post in parallel and each channel strictly in order.
#include "serve/webhook_sink.hpp"
#include "src/client/durable_append.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "serve/signature.hpp"
#include "sfstream/detail/json_text.hpp"
#include "sfstream/detail/redact.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/options.hpp"

namespace sfstream::serve {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

error_info make_error(errc code, std::string context, std::string text = {},
                      std::error_code cause = {}) {
  error_info info;
  info.code = make_error_code(code);
  info.diag.context = std::move(context);
  info.diag.server_text = std::move(text);
  info.cause = cause;
  return info;
}

/// The latency histogram's upper bounds, in seconds.
constexpr double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60,  300};

/// Text of a response safe to keep: the first bytes, control characters as spaces, secrets
/// (the signing key, anything shaped like a token) masked.
std::string excerpt(std::string_view body, const std::string& key) {
  constexpr std::size_t limit = 200;
  std::size_t cut = std::min(limit, body.size());
  // Never end inside a UTF-8 sequence: back up to the start of the character cut through.
  if (cut < body.size()) {
    while (cut > 0 && (static_cast<unsigned char>(body[cut]) & 0xc0) == 0x80) --cut;
  }
  std::string text(body.substr(0, cut));
  for (auto& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (body.size() > limit) text += "...";
  const std::string secrets[] = {key};
  return detail::redact(text, secrets);
}

/// A part of the idempotency key: header values carry only visible ASCII, so anything else is
/// percent-encoded, and so are '%' and the key's separator ':'.
std::string header_safe(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '%' || c == ':') {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 0x0f];
    } else {
      out += c;
    }
  }
  return out;
}

std::string id_text(const event& e) {
  return e.replay_id() ? std::to_string(*e.replay_id()) : std::string("none");
}

bool retryable_status(unsigned status) {
  return status == 408 || status == 429 || status >= 500;
}

error_info append_durably(const std::filesystem::path& path, const std::string& text) {
  return detail::append_durably(path, text, "writing a dead letter");
}

/// True when `text` is one well-formed JSON value.
bool is_json(std::string_view text) {
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::MemoryStream bytes(text.data(), text.size());
  return !reader.Parse(bytes, ignore).IsError();
}

int month_index(std::string_view name) {
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (name == months[i]) return i;
  }
  return -1;
}

/// Parses the three HTTP-date forms (RFC 9110 §5.6.7): IMF-fixdate
/// "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime
/// "Sun Nov  6 08:49:37 1994".
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  char weekday[16] = {}, month[4] = {}, zone[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  const std::string s(text);
  bool ok = false;
  if (std::sscanf(s.c_str(), "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d %3s", weekday, &day, month,
                  &year, &hour, &minute, &second, zone) == 8) {
    ok = std::string_view(zone) == "GMT";
  } else if (std::sscanf(s.c_str(), "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s", weekday, &day,
                         month, &year, &hour, &minute, &second, zone) == 8) {
    // A two-digit year more than 50 years ahead is in the past century (RFC 9110).
    year += year < 70 ? 2000 : 1900;
    ok = std::string_view(zone) == "GMT";
  } else if (std::sscanf(s.c_str(), "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d", weekday, month, &day,
                         &hour, &minute, &second, &year) == 7) {
    ok = true;
  }
  const int m = month_index(month);
  if (!ok || m < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 ||
      year < 1970) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(m + 1)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::milliseconds(std::chrono::hours(24 * 365));
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  const auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  if (*when <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(*when - now);
}

error_info validate(const webhook_options& options) {
  error_info why;
  const auto url = transport::url::parse(options.url, &why);
  if (!url) {
    why.code = make_error_code(errc::invalid_url);
    why.diag.context = "reading the webhook URL";
    return why;
  }
  if (!url->is_https() && !url->is_loopback()) {
    return make_error(errc::insecure_url, "reading the webhook URL",
                      "plain http:// is only accepted for loopback hosts");
  }
  if (options.signing_key.empty()) {
    return make_error(errc::invalid_config, "configuring the webhook sink",
                      "a signing key is required");
  }
  if (options.max_batch_events == 0 || options.max_batch_bytes == 0) {
    return make_error(errc::invalid_config, "configuring the webhook sink",
                      "max_batch_events and max_batch_bytes must be at least 1");
  }
  if (options.request_timeout.count() <= 0) {
    return make_error(errc::invalid_config, "configuring the webhook sink",
                      "the request timeout must be positive");
  }
  if (options.backoff_initial.count() < 0 || options.backoff_max < options.backoff_initial) {
    return make_error(errc::invalid_config, "configuring the webhook sink",
                      "backoff_initial must be at least 0 and at most backoff_max");
  }
  error_info proxy;
  (void)transport::make_transport_options(options.network, &proxy);
  if (proxy) return proxy;
  return {};
}

/// What every worker of one sink shares: settings, figures, the dead-letter file.
struct webhook_sink::impl {
  asio::any_io_executor executor;
  webhook_options options;
  transport::url url;
  transport::transport_options transport;
  std::shared_ptr<asio::ssl::context> tls;

  mutable std::mutex mutex;  // guards everything below
  sink_figures figures;
  bool stopped = false;
  std::mt19937_64 random{std::random_device{}()};
  std::mutex dead_letter_mutex;  // one writer at a time, lines never interleave

  struct worker;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<worker>> workers;

  bool is_stopped() const {
    std::lock_guard lock(mutex);
    return stopped;
  }
  void note_failure(const std::string& text, bool retry) {
    std::lock_guard lock(mutex);
    ++figures.failures;
    if (retry) ++figures.retries;
    figures.last_error = text;
  }
  std::chrono::milliseconds jitter(std::chrono::milliseconds cap) {
    std::lock_guard lock(mutex);
    std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(cap.count(), 0));
    return std::chrono::milliseconds(pick(random));
  }
};

/// One channel of one connection: its batches in order, one request at a time.
struct webhook_sink::impl::worker : std::enable_shared_from_this<worker> {
  struct batch {
    std::span<const event> events;
    batch_done done;
    clock::time_point handed;
  };

  std::shared_ptr<impl> sink;
  std::string connection;
  std::string channel;
  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;
  std::shared_ptr<transport::http_lane> lane;

  std::deque<batch> pending;  // the first is being sent
  bool busy = false;
  bool waiting = false;      // in a retry wait
  std::size_t next = 0;      // first event of the current batch not yet confirmed or refused
  std::size_t end = 0;       // one past the last event of the request being sent
  std::string body;          // of the request being sent
  unsigned attempts = 0;     // of the request being sent

  worker(std::shared_ptr<impl> owner, std::string conn, std::string chan)
      : sink(std::move(owner)),
        connection(std::move(conn)),
        channel(std::move(chan)),
        strand(asio::make_strand(sink->executor)),
        timer(strand) {}

  void enqueue(batch b) {
    pending.push_back(std::move(b));
    if (!busy) start_batch();
  }

  void start_batch() {
    if (pending.empty()) {
      busy = false;
      return;
    }
    busy = true;
    next = 0;
    send_next();
  }

  /// Builds the next request of the current batch from `next` on, within both bounds.
  void send_next() {
    const auto& events = pending.front().events;
    if (next >= events.size()) {
      finish({});
      return;
    }
    body.clear();
    body += "{\"connection\":";
    detail::append_json_string(body, connection);
    body += ",\"channel\":";
    detail::append_json_string(body, channel);
    body += ",\"events\":[";
    end = next;
    const auto& options = sink->options;
    while (end < events.size() && end - next < options.max_batch_events) {
      const auto json = events[end].json();
      // The closing "]}" is two more bytes.
      if (end > next && body.size() + 1 + json.size() + 2 > options.max_batch_bytes) break;
      if (end > next) body += ',';
      body += json;
      ++end;
    }
    body += "]}";
    attempts = 0;
    post();
  }

  std::string idempotency_key() const {
    const auto& events = pending.front().events;
    return header_safe(connection) + ":" + header_safe(channel) + ":" + id_text(events[next]) +
           "-" + id_text(events[end - 1]);
  }

  std::string where() const {
    // Origin and path only: a query string may carry a token of the receiver's.
    auto target = sink->url.target;
    target = target.substr(0, target.find('?'));
    return "posting " + std::to_string(end - next) + " event(s) of " + channel + " to " +
           sink->url.origin() + target;
  }

  void post() {
    if (!lane) {
      lane = transport::http_lane::create(strand, sink->url, sink->tls, sink->transport, nullptr);
    }
    transport::http_request request;
    request.method = "POST";
    request.target = sink->url.target;
    const auto now = std::chrono::system_clock::now();
    const auto timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    request.headers.emplace_back("Content-Type", "application/json");
    request.headers.emplace_back(std::string(timestamp_header), std::to_string(timestamp));
    request.headers.emplace_back(
        std::string(signature_header),
        signature_header_value(sink->options.signing_key, timestamp, body));
    request.headers.emplace_back(std::string(idempotency_header), idempotency_key());
    request.headers.emplace_back("X-Sfstream-Attempt", std::to_string(attempts + 1));
    request.body = body;
    // A kept-alive connection the receiver closed before answering: sending again is safe,
    // the idempotency key lets the receiver see a repeat.
    request.resend_if_stale = true;
    lane->async_exchange(std::move(request), sink->options.request_timeout,
                         [self = shared_from_this()](error_info error,
                                                     transport::http_response response) {
                           self->on_response(std::move(error), std::move(response));
                         });
  }

  void on_response(error_info error, transport::http_response response) {
    if (!error && response.status >= 200 && response.status < 300) {
      {
        std::lock_guard lock(sink->mutex);
        ++sink->figures.batches;
        sink->figures.events += end - next;
        sink->figures.bytes += body.size();
      }
      next = end;
      send_next();
      return;
    }
    const bool retryable = error ? true : retryable_status(response.status);
    std::string text;
    if (error) {
      text = where() + ": " + error.to_string();
    } else {
      text = where() + ": HTTP " + std::to_string(response.status);
      if (!response.reason.empty()) text += " " + response.reason;
      const auto answer = excerpt(response.body, sink->options.signing_key);
      if (!answer.empty()) text += ": " + answer;
    }
    const std::string secrets[] = {sink->options.signing_key};
    text = detail::redact(text, secrets);
    const auto& options = sink->options;
    const bool out_of_retries = options.max_retries && attempts >= *options.max_retries;
    const bool stopping = sink->is_stopped();
    const bool retry = retryable && !out_of_retries && !stopping;
    sink->note_failure(text, retry);
    if (retry) {
      ++attempts;
      auto wait = sink->jitter(std::min(
          options.backoff_max,
          options.backoff_initial * (std::int64_t{1} << std::min<unsigned>(attempts - 1, 30))));
      if (!error && (response.status == 429 || response.status == 503)) {
        if (const auto* value = transport::find_header(response.headers, "Retry-After")) {
          if (auto asked = parse_retry_after(*value, std::chrono::system_clock::now())) {
            wait = std::min(*asked, options.retry_after_max);
          }
        }
      }
      sink->options.log.log(log_level::warning,
                            text + "; retry " + std::to_string(attempts) + " in " +
                                std::to_string(wait.count()) + " ms");
      waiting = true;
      timer.expires_after(wait);
      timer.async_wait([self = shared_from_this()](boost::system::error_code) {
        self->waiting = false;
        if (self->sink->is_stopped()) {
          self->finish(make_error(errc::cancelled, self->where(),
                                  "the sink stopped while waiting to retry"));
          return;
        }
        self->post();
      });
      return;
    }
    if (stopping && retryable) {
      finish(make_error(errc::cancelled, where(), "the sink stopped; not retried: " + text));
      return;
    }
    error_info failure =
        error ? error
              : make_error(errc::http_status, where(), text,
                           make_http_status_code(response.status));
    if (out_of_retries) {
      failure = make_error(errc::retries_exhausted, where(),
                           std::to_string(attempts) + " retries failed; last: " + text,
                           error ? error.code : make_http_status_code(response.status));
    }
    failure.diag.server_text = text;
    if (options.dead_letter_path.empty()) {
      sink->options.log.log(log_level::error, text + "; no dead-letter file: the batch fails");
      finish(failure);
      return;
    }
    dead_letter(error ? 0u : response.status, error ? std::string() : excerpt(response.body,
                                                                              options.signing_key),
                text);
  }

  void dead_letter(unsigned status, const std::string& answer, const std::string& text) {
    const auto& events = pending.front().events;
    const auto now = std::chrono::system_clock::now();
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    std::string lines;
    for (std::size_t i = next; i < end; ++i) {
      lines += "{\"time\":" + std::to_string(seconds) + ",\"connection\":";
      detail::append_json_string(lines, connection);
      lines += ",\"channel\":";
      detail::append_json_string(lines, channel);
      lines += ",\"replayId\":";
      lines += events[i].replay_id() ? std::to_string(*events[i].replay_id()) : "null";
      lines += ",\"status\":" + std::to_string(status) + ",\"attempts\":" +
               std::to_string(attempts + 1) + ",\"response\":";
      detail::append_json_string(lines, answer);
      lines += ",\"error\":";
      detail::append_json_string(lines, text);
      // The event's JSON as received, on one line: a pretty-printed message keeps its
      // meaning with line breaks turned into spaces (JSON allows no raw line break in a
      // string). Text that is not JSON is kept as a JSON string, so the line still parses.
      lines += ",\"event\":";
      const auto json = events[i].json();
      if (is_json(json)) {
        for (const char c : json) lines += (c == '\n' || c == '\r') ? ' ' : c;
      } else {
        detail::append_json_string(lines, json);
      }
      lines += "}\n";
    }
    error_info wrote;
    {
      std::lock_guard lock(sink->dead_letter_mutex);
      wrote = append_durably(sink->options.dead_letter_path, lines);
    }
    if (wrote) {
      sink->options.log.log(log_level::error, wrote.to_string());
      {
        std::lock_guard lock(sink->mutex);
        sink->figures.last_error = wrote.to_string();
      }
      finish(wrote);
      return;
    }
    {
      std::lock_guard lock(sink->mutex);
      sink->figures.dead_letters += end - next;
    }
    sink->options.log.log(log_level::warning,
                          text + "; " + std::to_string(end - next) +
                              " event(s) written to the dead-letter file");
    next = end;
    send_next();
  }

  /// Ends the current batch: all of it confirmed (or dead-lettered) without an error, else
  /// the first `next` events with `error`.
  void finish(error_info error) {
    auto b = std::move(pending.front());
    pending.pop_front();
    const std::size_t handled = error ? next : b.events.size();
    {
      std::lock_guard lock(sink->mutex);
      auto& f = sink->figures;
      f.backlog -= std::min(f.backlog, b.events.size());
      if (!error) {
        const double seconds =
            std::chrono::duration<double>(clock::now() - b.handed).count();
        for (const double bound : latency_bounds) {
          if (seconds <= bound) ++f.latency_buckets[bound];
        }
        f.latency_sum += seconds;
        ++f.latency_count;
      }
    }
    body.clear();
    start_batch();
    b.done(handled, std::move(error));
  }

  void stop() {
    if (waiting) timer.cancel();
  }
};

std::shared_ptr<webhook_sink> webhook_sink::create(asio::any_io_executor executor,
                                                   webhook_options options, error_info* why) {
  if (auto bad = validate(options)) {
    if (why) *why = bad;
    return nullptr;
  }
  auto state = std::make_shared<impl>();
  state->executor = std::move(executor);
  state->url = *transport::url::parse(options.url);
  state->transport = transport::make_transport_options(options.network);
  state->transport.request_timeout = options.request_timeout;
  state->transport.user_agent = "sfstream-webhook";
  if (state->url.is_https()) {
    error_info bad;
    state->tls = transport::make_client_tls_context(state->transport, &bad);
    if (!state->tls) {
      if (why) *why = bad;
      return nullptr;
    }
  }
  for (const double bound : latency_bounds) state->figures.latency_buckets[bound] = 0;
  state->options = std::move(options);
  return std::shared_ptr<webhook_sink>(new webhook_sink(std::move(state)));
}

webhook_sink::webhook_sink(std::shared_ptr<impl> state) : impl_(std::move(state)) {}

webhook_sink::~webhook_sink() {
  stop();
  // Workers hold the shared state; the state's map holds the workers: let go of them here, so
  // each worker goes once its last operation has completed, and the state after the last one.
  std::lock_guard lock(impl_->mutex);
  impl_->workers.clear();
}

void webhook_sink::deliver(const std::string& connection, const std::string& channel,
                           std::span<const event> events, batch_done done) {
  std::shared_ptr<impl::worker> w;
  {
    std::lock_guard lock(impl_->mutex);
    auto& slot = impl_->workers[{connection, channel}];
    if (!slot) slot = std::make_shared<impl::worker>(impl_, connection, channel);
    w = slot;
    impl_->figures.backlog += events.size();
  }
  if (events.empty()) {
    asio::post(w->strand, [done = std::move(done)] { done(0, {}); });
    return;
  }
  asio::post(w->strand, [w, b = impl::worker::batch{events, std::move(done), clock::now()}]() mutable {
    w->enqueue(std::move(b));
  });
}

void webhook_sink::stop() {
  std::vector<std::shared_ptr<impl::worker>> all;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopped = true;
    for (auto& [key, w] : impl_->workers) all.push_back(w);
  }
  for (auto& w : all) asio::post(w->strand, [w] { w->stop(); });
}

sink_figures webhook_sink::figures() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->figures;
}

}  // namespace sfstream::serve
