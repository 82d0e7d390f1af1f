#include "serve/metrics.hpp"

#include <charconv>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

namespace sfstream::serve {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

using labels = std::vector<std::pair<std::string_view, std::string_view>>;

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return ec == std::errc{} ? std::string(text, end) : std::string("NaN");
}

// One metric family: HELP and TYPE, then its samples; left out whole when it has none.
class family {
 public:
  family(std::string name, std::string_view type, std::string_view help)
      : name_(std::move(name)), type_(type), help_(help) {}

  void sample(const labels& l, std::string_view value, std::string_view suffix = {}) {
    body_ += name_;
    body_ += suffix;
    if (!l.empty()) {
      body_ += '{';
      bool first = true;
      for (const auto& [k, v] : l) {
        if (!first) body_ += ',';
        first = false;
        body_ += k;
        body_ += "=\"";
        body_ += escape_label_value(v);
        body_ += '"';
      }
      body_ += '}';
    }
    body_ += ' ';
    body_ += value;
    body_ += '\n';
  }
  void count(const labels& l, std::uint64_t value) { sample(l, std::to_string(value)); }
  void gauge(const labels& l, double value) { sample(l, format_number(value)); }
  void integer(const labels& l, std::int64_t value) { sample(l, std::to_string(value)); }

  void append_to(std::string& out) const {
    if (body_.empty()) return;
    out += "# HELP " + name_ + ' ';
    for (const char c : help_) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\n# TYPE " + name_ + ' ';
    out += type_;
    out += '\n';
    out += body_;
  }

 private:
  std::string name_;
  std::string_view type_;
  std::string_view help_;
  std::string body_;
};

struct connection_counter {
  std::string_view name;
  std::string_view help;
  std::function<std::uint64_t(const connection_status&)> value;
};

// With replicas sharing a PostgreSQL store: each connection's lease, this replica's figures.
void render_lease_metrics(const service_status& status, std::string& out) {
  if (!status.replica) return;
  const auto& r = *status.replica;
  const labels me{{"replica", r.replica}};
  const std::pair<std::string_view, std::uint64_t> totals[] = {
      {"sfstream_lease_renewals_total", r.renewals},
      {"sfstream_lease_claims_total", r.claims},
      {"sfstream_lease_takeovers_total", r.takeovers},
      {"sfstream_lease_losses_total", r.losses},
      {"sfstream_lease_releases_total", r.releases}};
  const std::string_view help[] = {
      "Leases renewed by this replica.",
      "Leases claimed by this replica (free or expired).",
      "Claims of an expired lease another replica held.",
      "Leases this replica lost (expired, taken over, or not renewed in time).",
      "Leases this replica released (at shutdown or to even the share)."};
  for (std::size_t i = 0; i < std::size(totals); ++i) {
    family f(std::string(totals[i].first), "counter", help[i]);
    f.count(me, totals[i].second);
    f.append_to(out);
  }
  family live("sfstream_replicas_live", "gauge",
              "Replicas with an unexpired heartbeat, this one included.");
  live.count(me, r.live_replicas);
  live.append_to(out);
  family share("sfstream_lease_share", "gauge",
               "The even share: ceil(connections / live replicas).");
  share.count(me, r.share);
  share.append_to(out);
  family held("sfstream_leases_held", "gauge", "Leases this replica holds and streams.");
  held.count(me, r.held);
  held.append_to(out);

  family here("sfstream_connection_lease_held", "gauge",
              "1 when this replica holds the connection's lease, else 0.");
  family epoch("sfstream_connection_lease_epoch", "gauge",
               "The connection's lease epoch, raised by every claim.");
  family owner("sfstream_connection_lease_owner_info", "gauge",
               "The replica holding the connection's lease (always 1).");
  family expiry("sfstream_connection_lease_expiry_timestamp_seconds", "gauge",
                "When the connection's lease expires unless renewed (the database's clock).");
  for (const auto& c : status.connections) {
    if (!c.lease) continue;
    const labels l{{"connection", c.name}};
    here.integer(l, c.lease->held_here ? 1 : 0);
    epoch.integer(l, c.lease->epoch);
    if (c.lease->owner) owner.sample({{"connection", c.name}, {"owner", *c.lease->owner}}, "1");
    if (c.lease->expires_ms != 0)
      expiry.gauge(l, static_cast<double>(c.lease->expires_ms) / 1000.0);
  }
  here.append_to(out);
  epoch.append_to(out);
  owner.append_to(out);
  expiry.append_to(out);
}

}  // namespace

std::string render_metrics(const service_status& status) {
  std::string out;

  family info("sfstream_build_info", "gauge", "The running sfstream version (always 1).");
  info.sample({{"version", status.version}}, "1");
  info.append_to(out);
  family uptime("sfstream_uptime_seconds", "gauge", "Seconds since the service started.");
  uptime.gauge({}, static_cast<double>(status.uptime.count()) / 1000.0);
  uptime.append_to(out);
  family ready("sfstream_ready", "gauge",
               "1 when every connection is streaming or deliberately stopped, else 0.");
  ready.integer({}, is_ready(status) ? 1 : 0);
  ready.append_to(out);
  family stopping("sfstream_stopping", "gauge", "1 while the service drains after SIGTERM.");
  stopping.integer({}, status.stopping ? 1 : 0);
  stopping.append_to(out);

  family state("sfstream_connection_state", "gauge",
               "1 for the state each connection is in, 0 for the others.");
  for (const auto& c : status.connections) {
    for (const auto s : all_connection_states) {
      state.integer({{"connection", c.name}, {"state", to_string(s)}}, c.state == s ? 1 : 0);
    }
  }
  state.append_to(out);

  // Per connection counters and gauges: the client's, then the sink's.
  const connection_counter counters[] = {
      {"sfstream_received_events_total", "Events received from the streaming API.",
       [](const connection_status& c) { return c.client.events; }},
      {"sfstream_received_bytes_total", "Response bytes received from the streaming API.",
       [](const connection_status& c) { return c.client.bytes; }},
      {"sfstream_handshakes_total", "Bayeux handshakes completed.",
       [](const connection_status& c) { return c.client.handshakes; }},
      {"sfstream_authentications_total", "Logins and token requests made.",
       [](const connection_status& c) { return c.client.authentications; }},
      {"sfstream_gaps_total", "Stored positions that could not be honoured (replay gaps).",
       [](const connection_status& c) { return c.client.gaps; }},
      {"sfstream_pauses_total", "Times a full queue made the client pause the stream.",
       [](const connection_status& c) { return c.client.pauses; }},
      {"sfstream_handler_failures_total", "Batches the sink failed (the failure policy decided).",
       [](const connection_status& c) { return c.client.handler_failures; }},
      {"sfstream_client_dead_letters_total",
       "Events the connection's failure policy wrote to its dead-letter file.",
       [](const connection_status& c) { return c.client.dead_letters; }},
      {"sfstream_sink_batches_total", "Batches the sink confirmed.",
       [](const connection_status& c) { return c.sink.batches; }},
      {"sfstream_sink_events_total", "Events the sink confirmed.",
       [](const connection_status& c) { return c.sink.events; }},
      {"sfstream_sink_bytes_total", "Bytes the sink wrote or posted and had confirmed.",
       [](const connection_status& c) { return c.sink.bytes; }},
      {"sfstream_sink_retries_total", "Sink attempts that failed and were tried again.",
       [](const connection_status& c) { return c.sink.retries; }},
      {"sfstream_sink_failures_total", "Sink attempts that failed (retried or not).",
       [](const connection_status& c) { return c.sink.failures; }},
      {"sfstream_sink_dead_letters_total", "Events the sink wrote to its dead-letter file.",
       [](const connection_status& c) { return c.sink.dead_letters; }},
  };
  for (const auto& counter : counters) {
    family f(std::string(counter.name), "counter", counter.help);
    for (const auto& c : status.connections) f.count({{"connection", c.name}}, counter.value(c));
    f.append_to(out);
  }

  family rehandshakes("sfstream_rehandshakes_total", "counter",
                      "Re-handshakes after the first, by cause.");
  family reconnects("sfstream_reconnects_total", "counter",
                    "Reconnects (new long polls after a failure), by cause.");
  for (const auto& c : status.connections) {
    for (const auto& [cause, n] : c.client.rehandshakes_by_cause) {
      rehandshakes.count({{"connection", c.name}, {"cause", cause}}, n);
    }
    for (const auto& [cause, n] : c.client.reconnects_by_cause) {
      reconnects.count({{"connection", c.name}, {"cause", cause}}, n);
    }
  }
  rehandshakes.append_to(out);
  reconnects.append_to(out);

  family queue_events("sfstream_queue_events", "gauge",
                      "Events held between the network and the sink.");
  family queue_bytes("sfstream_queue_bytes", "gauge", "Bytes of event JSON held in the queue.");
  family backlog("sfstream_sink_backlog_events", "gauge",
                 "Events handed to the sink and not yet confirmed.");
  for (const auto& c : status.connections) {
    const labels l{{"connection", c.name}};
    queue_events.count(l, c.client.queue_depth);
    queue_bytes.count(l, c.client.queue_bytes);
    backlog.count(l, c.sink.backlog);
  }
  queue_events.append_to(out);
  queue_bytes.append_to(out);
  backlog.append_to(out);

  family latency("sfstream_sink_latency_seconds", "histogram",
                 "Time from a batch handed to the sink to its confirmation.");
  for (const auto& c : status.connections) {
    const auto& s = c.sink;
    for (const auto& [bound, n] : s.latency_buckets) {
      if (std::isinf(bound) || std::isnan(bound)) continue;
      const std::string le = format_number(bound);
      latency.sample({{"connection", c.name}, {"le", le}}, std::to_string(n), "_bucket");
    }
    latency.sample({{"connection", c.name}, {"le", "+Inf"}}, std::to_string(s.latency_count),
                   "_bucket");
    latency.sample({{"connection", c.name}}, format_number(s.latency_sum), "_sum");
    latency.sample({{"connection", c.name}}, std::to_string(s.latency_count), "_count");
  }
  latency.append_to(out);

  family channel_events("sfstream_channel_events_total", "counter",
                        "Events received on each channel.");
  family last_id("sfstream_channel_last_replay_id", "gauge",
                 "The newest replay id received on each channel.");
  family committed("sfstream_channel_committed_replay_id", "gauge",
                   "The replay id a restart resumes after, per channel.");
  family age("sfstream_channel_last_event_age_seconds", "gauge",
             "Seconds since the newest event of each channel was created.");
  family channel_backlog("sfstream_channel_sink_backlog_events", "gauge",
                         "Events of each channel handed to the sink and not yet confirmed.");
  for (const auto& c : status.connections) {
    for (const auto& ch : c.channels) {
      const labels l{{"connection", c.name}, {"channel", ch.channel}};
      channel_events.count(l, ch.events);
      if (ch.last_replay_id) last_id.integer(l, *ch.last_replay_id);
      if (ch.committed_replay_id) committed.integer(l, *ch.committed_replay_id);
      if (ch.last_event_age) {
        age.gauge(l, static_cast<double>(ch.last_event_age->count()) / 1000.0);
      }
      channel_backlog.count(l, ch.sink_backlog);
    }
  }
  family poll_events("sfstream_poll_events_total", "counter",
                     "Polled events the sink confirmed, per object.");
  family poll_calls("sfstream_poll_api_calls_total", "counter",
                    "REST calls made to poll each object (queries and pages).");
  family poll_cursor("sfstream_poll_cursor_timestamp_seconds", "gauge",
                     "The newest SystemModstamp committed per polled object (Unix seconds).");
  family fallbacks("sfstream_fallbacks_total", "counter",
                   "Switches of a streaming connection to polling (daily event allocation spent).");
  for (const auto& c : status.connections) {
    fallbacks.count({{"connection", c.name}}, c.fallbacks);
    if (!c.polling) continue;
    for (const auto& o : c.polling->objects) {
      const labels l{{"connection", c.name}, {"object", o.object}};
      poll_events.count(l, o.events);
      poll_calls.count(l, o.api_calls);
      if (o.cursor_time) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            o.cursor_time->time_since_epoch());
        poll_cursor.gauge(l, static_cast<double>(ms.count()) / 1000.0);
      }
    }
  }
  poll_events.append_to(out);
  poll_calls.append_to(out);
  poll_cursor.append_to(out);
  fallbacks.append_to(out);

  channel_events.append_to(out);
  last_id.append_to(out);
  committed.append_to(out);
  age.append_to(out);
  channel_backlog.append_to(out);
  render_lease_metrics(status, out);
  return out;
}

}  // namespace sfstream::serve
