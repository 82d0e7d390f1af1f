#include "serve/status.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "vocabulary/event_time.hpp"

namespace sfstream::serve {

std::string_view to_string(connection_state state) noexcept {
  switch (state) {
    case connection_state::starting:
      return "starting";
    case connection_state::streaming:
      return "streaming";
    case connection_state::polling:
      return "polling";
    case connection_state::fallback:
      return "polling (fallback)";
    case connection_state::recovering:
      return "recovering";
    case connection_state::failed:
      return "failed";
    case connection_state::stopped:
      return "stopped";
    case connection_state::standby:
      return "standby";
  }
  return "unknown";
}

bool is_ready(const service_status& status, std::vector<std::string>* not_ready) {
  bool ready = !status.store_error;
  if (status.store_error && not_ready) not_ready->push_back("store: " + *status.store_error);
  for (const auto& c : status.connections) {
    // A connection in fallback delivers (by polling) what streaming would: it is not down.
    // One on standby is another replica's to stream.
    if (c.state == connection_state::streaming || c.state == connection_state::polling ||
        c.state == connection_state::fallback || c.state == connection_state::stopped ||
        c.state == connection_state::standby)
      continue;
    ready = false;
    if (not_ready) not_ready->push_back(c.name);
  }
  return ready;
}

namespace {

using writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void string(writer& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void key(writer& w, std::string_view name) {
  w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
}

void optional_id(writer& w, std::string_view name, const std::optional<std::int64_t>& id) {
  key(w, name);
  if (id) {
    w.Int64(*id);
  } else {
    w.Null();
  }
}

void optional_text(writer& w, std::string_view name, const std::optional<std::string>& text) {
  key(w, name);
  if (text) {
    string(w, *text);
  } else {
    w.Null();
  }
}

void count(writer& w, std::string_view name, std::uint64_t value) {
  key(w, name);
  w.Uint64(value);
}

void by_cause(writer& w, std::string_view name, const std::map<std::string, std::uint64_t>& map) {
  key(w, name);
  w.StartObject();
  for (const auto& [cause, n] : map) count(w, cause, n);
  w.EndObject();
}

void write_channel(writer& w, const channel_status& c) {
  w.StartObject();
  key(w, "channel");
  string(w, c.channel);
  optional_id(w, "last_replay_id", c.last_replay_id);
  key(w, "last_event_age_seconds");
  if (c.last_event_age) {
    w.Double(static_cast<double>(c.last_event_age->count()) / 1000.0);
  } else {
    w.Null();
  }
  optional_id(w, "committed_replay_id", c.committed_replay_id);
  count(w, "events", c.events);
  count(w, "sink_backlog", c.sink_backlog);
  w.EndObject();
}

void write_client(writer& w, const client_metrics& m) {
  key(w, "client");
  w.StartObject();
  count(w, "events", m.events);
  count(w, "bytes", m.bytes);
  count(w, "handshakes", m.handshakes);
  by_cause(w, "rehandshakes", m.rehandshakes_by_cause);
  by_cause(w, "reconnects", m.reconnects_by_cause);
  count(w, "authentications", m.authentications);
  count(w, "gaps", m.gaps);
  count(w, "pauses", m.pauses);
  count(w, "queue_depth", m.queue_depth);
  count(w, "queue_bytes", m.queue_bytes);
  count(w, "handler_failures", m.handler_failures);
  count(w, "dead_letters", m.dead_letters);
  w.EndObject();
}

void write_sink(writer& w, const connection_status& c) {
  const auto& s = c.sink;
  key(w, "sink");
  w.StartObject();
  key(w, "kind");
  string(w, c.sink_kind);
  count(w, "batches", s.batches);
  count(w, "events", s.events);
  count(w, "bytes", s.bytes);
  count(w, "retries", s.retries);
  count(w, "failures", s.failures);
  count(w, "dead_letters", s.dead_letters);
  count(w, "backlog", s.backlog);
  key(w, "latency_seconds");
  w.StartObject();
  key(w, "sum");
  w.Double(s.latency_sum);
  count(w, "count", s.latency_count);
  w.EndObject();
  optional_text(w, "last_error", s.last_error);
  w.EndObject();
}

void write_polling(writer& w, const std::optional<polling_status>& p) {
  key(w, "polling");
  if (!p) {
    w.Null();
    return;
  }
  w.StartObject();
  key(w, "fallback");
  w.Bool(p->fallback);
  count(w, "api_calls", p->api_calls);
  key(w, "daily_api_requests");
  if (p->api_max && p->api_remaining) {
    w.StartObject();
    key(w, "max");
    w.Int64(*p->api_max);
    key(w, "remaining");
    w.Int64(*p->api_remaining);
    w.EndObject();
  } else {
    w.Null();
  }
  key(w, "objects");
  w.StartArray();
  for (const auto& o : p->objects) {
    w.StartObject();
    key(w, "object");
    string(w, o.object);
    key(w, "channel");
    string(w, o.channel);
    count(w, "events", o.events);
    count(w, "api_calls", o.api_calls);
    count(w, "polls", o.polls);
    count(w, "errors", o.errors);
    key(w, "last_cursor_time");
    if (o.cursor_time) {
      string(w, detail::format_event_time(*o.cursor_time));
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void write_lease(writer& w, const lease_status& l) {
  key(w, "lease");
  w.StartObject();
  optional_text(w, "owner", l.owner);
  key(w, "epoch");
  w.Int64(l.epoch);
  optional_text(w, "expires_at",
                l.expires_at.empty() ? std::nullopt : std::optional<std::string>(l.expires_at));
  key(w, "held_here");
  w.Bool(l.held_here);
  w.EndObject();
}

void write_replica(writer& w, const replica_status& r) {
  key(w, "replica");
  w.StartObject();
  key(w, "id");
  string(w, r.replica);
  key(w, "lease_ttl_seconds");
  w.Double(static_cast<double>(r.lease_ttl.count()) / 1000.0);
  count(w, "live_replicas", r.live_replicas);
  count(w, "share", r.share);
  count(w, "held", r.held);
  count(w, "renewals", r.renewals);
  count(w, "claims", r.claims);
  count(w, "takeovers", r.takeovers);
  count(w, "losses", r.losses);
  count(w, "releases", r.releases);
  optional_text(w, "last_error", r.last_error);
  w.EndObject();
}

}  // namespace

std::string render_status_json(const service_status& status) {
  rapidjson::StringBuffer buffer;
  writer w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  key(w, "version");
  string(w, status.version);
  key(w, "started_at");
  string(w, detail::format_event_time(status.started_at));
  key(w, "uptime_seconds");
  w.Double(static_cast<double>(status.uptime.count()) / 1000.0);
  key(w, "stopping");
  w.Bool(status.stopping);
  key(w, "ready");
  w.Bool(is_ready(status));
  if (status.store_error) optional_text(w, "store_error", status.store_error);
  if (status.replica) write_replica(w, *status.replica);
  key(w, "connections");
  w.StartArray();
  for (const auto& c : status.connections) {
    w.StartObject();
    key(w, "name");
    string(w, c.name);
    key(w, "state");
    string(w, to_string(c.state));
    key(w, "client_state");
    string(w, c.client_state);
    optional_text(w, "last_error", c.last_error);
    key(w, "channels");
    w.StartArray();
    for (const auto& ch : c.channels) write_channel(w, ch);
    w.EndArray();
    write_client(w, c.client);
    write_sink(w, c);
    write_polling(w, c.polling);
    count(w, "fallbacks", c.fallbacks);
    optional_text(w, "last_gap", c.last_gap);
    if (c.lease) write_lease(w, *c.lease);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string out{buffer.GetString(), buffer.GetSize()};
  out += '\n';
  return out;
}

}  // namespace sfstream::serve
