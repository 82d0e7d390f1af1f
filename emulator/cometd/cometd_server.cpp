#include "emulator/cometd/cometd_server.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "emulator/auth/session_registry.hpp"

namespace sfstream::emulator::cometd {

namespace {

namespace asio = boost::asio;
using writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view base36 = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view too_busy_text =
    "503::Server is too busy.  Please try your request again later.";
constexpr std::string_view daily_limit_text = "403::Organization total events daily limit exceeded";
constexpr std::string_view connection_limit_text =
    "403::To protect all customers from excessive use and Denial of Service attacks, we limit the "
    "number of simultaneous connections per server. Your request has been denied because this "
    "limit has been exceeded. Please try your request again later.";
constexpr std::string_view uri_example = "URI format: '/cometd/66.0'";

void put(writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void key(writer& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void raw(writer& w, std::string_view json, rapidjson::Type type) {
  w.RawValue(json.data(), json.size(), type);
}

/// The id of a request message, echoed as it came (a string in every capture; numbers kept).
struct message_id {
  std::string json;  // serialized value, empty when absent
  rapidjson::Type type = rapidjson::kStringType;
};

message_id read_id(const rapidjson::Value& message) {
  message_id id;
  auto it = message.FindMember("id");
  if (it == message.MemberEnd() || it->value.IsNull()) {
    return id;
  }
  if (it->value.IsString() || it->value.IsNumber()) {
    rapidjson::StringBuffer sb;
    writer w(sb);
    it->value.Accept(w);
    id.json = sb.GetString();
    id.type = it->value.GetType();
  }
  return id;
}

void put_id(writer& w, const message_id& id) {
  if (!id.json.empty()) {
    key(w, "id");
    raw(w, id.json, id.type);
  }
}

std::string string_member(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) {
    return {};
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<int> parse_version_tenths(std::string_view text) {
  auto dot = text.find('.');
  std::string_view major_text = text.substr(0, dot);
  int major = 0;
  auto [p, ec] = std::from_chars(major_text.data(), major_text.data() + major_text.size(), major);
  if (major_text.empty() || ec != std::errc{} || p != major_text.data() + major_text.size() ||
      major > 10000) {
    return std::nullopt;
  }
  int minor = 0;
  if (dot != std::string_view::npos) {
    std::string_view minor_text = text.substr(dot + 1);
    if (minor_text.empty() || minor_text.size() > 3) return std::nullopt;
    for (char c : minor_text) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    minor = minor_text[0] - '0';
  }
  return major * 10 + minor;
}

std::optional<std::string> cookie_value(const transport::header_list& headers,
                                        std::string_view name) {
  for (const auto& [header, value] : headers) {
    if (header.size() != 6 || (header[0] != 'C' && header[0] != 'c') ||
        header.substr(1) != "ookie") {
      continue;
    }
    std::string_view rest = value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        return std::string(pair.substr(eq + 1));
      }
    }
  }
  return std::nullopt;
}

std::string bearer_token(const transport::http_request& request) {
  const std::string* header = transport::find_header(request.headers, "Authorization");
  if (header == nullptr) {
    return {};
  }
  std::string_view value = *header;
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  auto space = value.find(' ');
  if (space != std::string_view::npos) {
    std::string scheme(value.substr(0, space));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "bearer" || scheme == "oauth") {
      value.remove_prefix(space + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
  }
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return std::string(value);
}

std::string percent_decode_lenient(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(text[i + 1]);
      int lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

/// Java Map.toString() of the replay extension map, as Salesforce quotes it in errors.
std::string java_map(const rapidjson::Value& map) {
  std::string out = "{";
  bool first = true;
  for (auto it = map.MemberBegin(); it != map.MemberEnd(); ++it) {
    if (!first) out += ", ";
    first = false;
    out.append(it->name.GetString(), it->name.GetStringLength());
    out += '=';
    if (it->value.IsNull()) {
      out += "null";
    } else if (it->value.IsString()) {
      out.append(it->value.GetString(), it->value.GetStringLength());
    } else {
      rapidjson::StringBuffer sb;
      writer w(sb);
      it->value.Accept(w);
      out += sb.GetString();
    }
  }
  out += '}';
  return out;
}

transport::http_response json_http(unsigned status, std::string reason, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = std::move(reason);
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

}  // namespace

bool is_cometd_path(const std::string& target) {
  std::string_view path = target;
  path = path.substr(0, path.find('?'));
  return path == "/cometd" || path.substr(0, 8) == "/cometd/";
}

struct cometd_server::impl : std::enable_shared_from_this<impl> {
  struct subscription {
    std::string base;
    std::vector<std::pair<std::string, std::string>> filters;
  };
  struct held_connect {
    std::shared_ptr<net::exchange> exchange;
    std::vector<std::string> prefix;
    std::vector<std::string> cookies;
    message_id id;
  };
  struct client {
    std::string id;
    std::string user_id;
    std::string browser;
    bool connected_once = false;
    bool pending_disconnect = false;
    bool flush_posted = false;
    std::map<std::string, subscription> subscriptions;
    std::deque<net::shared_bytes> queue;  ///< Event messages not yet sent, oldest first.
    std::optional<held_connect> held;
    asio::steady_timer hold_timer;
    asio::steady_timer expiry_timer;
    explicit client(asio::any_io_executor ex) : hold_timer(ex), expiry_timer(ex) {}
  };
  using client_ptr = std::shared_ptr<client>;

  /// What one POST produced so far.
  struct batch {
    std::vector<std::string> replies;
    std::vector<std::string> cookies;
    client_ptr connect_client;
    message_id connect_id;
    bool connect_advice = false;
    bool connect_multiple_clients = false;  // advise interval 2000, "multiple-clients":true
    bool hold = false;
  };

  asio::any_io_executor executor;
  cometd_settings settings;
  const clock& clk;
  event_bus& bus;
  token_check check;
  std::map<std::string, client_ptr> clients;
  std::string affinity;
  std::size_t fail_count = 0;
  injected_fault fail_kind = injected_fault::http_503;
  std::map<message_fault, std::size_t> faults;  // injected replies still to give
  reply_fault armed_reply_fault;                // spoils the next replies that carry events
  std::size_t reply_fault_count = 0;
  std::uint64_t spoiled = 0;                                    // events in spoiled replies
  std::vector<std::weak_ptr<asio::steady_timer>> late_replies;  // held replies (reply_fault hold)

  /// True (and one fewer to give) when `fault` is armed.
  bool take(message_fault fault) {
    auto it = faults.find(fault);
    if (it == faults.end() || it->second == 0) return false;
    --it->second;
    return true;
  }
  std::deque<clock::time_point> deliveries;
  bool stopped = false;

  impl(asio::any_io_executor ex, cometd_settings s, const clock& c, event_bus& b, token_check t)
      : executor(std::move(ex)), settings(s), clk(c), bus(b), check(std::move(t)) {
    affinity = new_affinity();
  }

  static std::string new_affinity() {
    return "!" +
           auth::random_text(56,
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") +
           "=";
  }

  std::string affinity_cookie() const {
    std::string c = "sfdc-stream=" + affinity + "; path=/; SameSite=None";
    if (settings.secure_cookies) c += "; Secure";
    return c;
  }

  // ---- daily limit ------------------------------------------------------------------------
  void purge_deliveries() {
    const auto horizon = clk.now() - std::chrono::hours{24};
    while (!deliveries.empty() && deliveries.front() < horizon) deliveries.pop_front();
  }
  bool daily_limit_reached() {
    if (settings.daily_event_limit == 0) return false;
    purge_deliveries();
    return deliveries.size() >= settings.daily_event_limit;
  }

  // ---- reply builders -----------------------------------------------------------------------
  static std::string handshake_denied(const message_id& id, std::string_view reason) {
    rapidjson::StringBuffer sb;
    writer w(sb);
    w.StartObject();
    key(w, "ext");
    w.StartObject();
    key(w, "sfdc");
    w.StartObject();
    key(w, "failureReason");
    put(w, reason);
    w.EndObject();
    key(w, "replay");
    w.Bool(true);
    key(w, "payload.format");
    w.Bool(true);
    w.EndObject();
    key(w, "advice");
    w.StartObject();
    key(w, "reconnect");
    put(w, "none");
    w.EndObject();
    key(w, "channel");
    put(w, "/meta/handshake");
    put_id(w, id);
    key(w, "error");
    put(w, "403::Handshake denied");
    key(w, "successful");
    w.Bool(false);
    w.EndObject();
    return sb.GetString();
  }

  static std::string unknown_client(std::string_view channel, const message_id& id,
                                    std::string_view reconnect = "handshake") {
    rapidjson::StringBuffer sb;
    writer w(sb);
    w.StartObject();
    key(w, "advice");
    w.StartObject();
    key(w, "interval");
    w.Int(0);
    key(w, "reconnect");
    put(w, reconnect);
    w.EndObject();
    key(w, "channel");
    put(w, channel);
    put_id(w, id);
    key(w, "error");
    put(w, "403::Unknown client");
    key(w, "successful");
    w.Bool(false);
    w.EndObject();
    return sb.GetString();
  }

  enum class advice_kind { none, stop, retry_first, multiple_clients };

  static std::string reply(std::string_view client_id, std::string_view channel,
                           const message_id& id, const std::string* subscription,
                           std::string_view error, advice_kind advice,
                           std::string_view failure_reason = {},
                           std::chrono::milliseconds timeout = {}) {
    rapidjson::StringBuffer sb;
    writer w(sb);
    w.StartObject();
    if (!client_id.empty()) {
      key(w, "clientId");
      put(w, client_id);
    }
    if (advice == advice_kind::multiple_clients) {
      // As captured:
      // {"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":110000}.
      key(w, "advice");
      w.StartObject();
      key(w, "interval");
      w.Int(2000);
      key(w, "multiple-clients");
      w.Bool(true);
      key(w, "reconnect");
      put(w, "retry");
      key(w, "timeout");
      w.Int64(timeout.count());
      w.EndObject();
    }
    if (advice == advice_kind::retry_first) {
      key(w, "advice");
      w.StartObject();
      key(w, "interval");
      w.Int(0);
      key(w, "timeout");
      w.Int64(timeout.count());
      key(w, "reconnect");
      put(w, "retry");
      w.EndObject();
    }
    key(w, "channel");
    put(w, channel);
    put_id(w, id);
    if (subscription != nullptr) {
      key(w, "subscription");
      put(w, *subscription);
    }
    if (!failure_reason.empty()) {
      key(w, "ext");
      w.StartObject();
      key(w, "sfdc");
      w.StartObject();
      key(w, "failureReason");
      put(w, failure_reason);
      w.EndObject();
      w.EndObject();
    }
    if (!error.empty()) {
      key(w, "error");
      put(w, error);
    }
    if (advice == advice_kind::stop) {
      key(w, "advice");
      w.StartObject();
      key(w, "reconnect");
      put(w, "none");
      key(w, "interval");
      w.Int(0);
      w.EndObject();
    }
    key(w, "successful");
    w.Bool(error.empty());
    w.EndObject();
    return sb.GetString();
  }

  static std::string server_disconnect(std::string_view client_id) {
    rapidjson::StringBuffer sb;
    writer w(sb);
    w.StartObject();
    key(w, "channel");
    put(w, "/meta/disconnect");
    key(w, "clientId");
    put(w, client_id);
    key(w, "successful");
    w.Bool(true);
    w.EndObject();
    return sb.GetString();
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string body = "[";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i != 0) body += ',';
      body += parts[i];
    }
    body += ']';
    return body;
  }

  static transport::http_response bayeux_http(std::vector<std::string> parts,
                                              const std::vector<std::string>& cookies) {
    auto r = json_http(200, "OK", join(parts));
    for (const auto& c : cookies) r.headers.emplace_back("Set-Cookie", c);
    return r;
  }

  /// Answers with the array `before`, `events`, `after` in one gather write: the event bytes
  /// are the ones kept with each event, never copied or serialized again.
  static void respond_with_events(net::exchange& ex, const std::vector<std::string>& before,
                                  std::vector<net::shared_bytes> events,
                                  const std::vector<std::string>& after,
                                  const std::vector<std::string>& cookies) {
    static const auto open = std::make_shared<const std::string>("[");
    static const auto comma = std::make_shared<const std::string>(",");
    static const auto close = std::make_shared<const std::string>("]");
    std::vector<net::shared_bytes> pieces;
    pieces.reserve(2 * (before.size() + events.size() + after.size()) + 1);
    pieces.push_back(open);
    auto add = [&](net::shared_bytes piece) {
      if (pieces.size() > 1) pieces.push_back(comma);
      pieces.push_back(std::move(piece));
    };
    for (const auto& text : before) add(std::make_shared<const std::string>(text));
    for (auto& event : events) add(std::move(event));
    for (const auto& text : after) add(std::make_shared<const std::string>(text));
    pieces.push_back(close);
    auto head = json_http(200, "OK", {});
    for (const auto& c : cookies) head.headers.emplace_back("Set-Cookie", c);
    ex.respond_gather(std::move(head), std::move(pieces));
  }

  // ---- timers -------------------------------------------------------------------------------
  void arm_expiry(const client_ptr& c) {
    c->expiry_timer.expires_after(settings.client_expiry);
    std::weak_ptr<impl> weak = shared_from_this();
    std::weak_ptr<client> weak_client = c;
    c->expiry_timer.async_wait([weak, weak_client](boost::system::error_code ec) {
      auto self = weak.lock();
      auto cl = weak_client.lock();
      if (ec || !self || !cl || cl->held) return;
      auto it = self->clients.find(cl->id);
      if (it != self->clients.end() && it->second == cl) self->erase_client(cl);
    });
  }

  void erase_client(const client_ptr& c) {
    c->hold_timer.cancel();
    c->expiry_timer.cancel();
    clients.erase(c->id);
  }

  // ---- delivery -----------------------------------------------------------------------------
  /// Takes up to `max_events_per_connect` queued events, and no more than
  /// `max_event_bytes_per_connect` bytes of them past the first, for one reply; the rest wait
  /// for the next connect, which is then answered at once.
  std::vector<net::shared_bytes> drain(client& c) {
    std::vector<net::shared_bytes> out;
    std::size_t bytes = 0;
    while (!c.queue.empty() && out.size() < settings.max_events_per_connect) {
      if (daily_limit_reached()) break;
      const std::size_t next = c.queue.front() ? c.queue.front()->size() : 0;
      if (!out.empty() && bytes + next > settings.max_event_bytes_per_connect) break;
      bytes += next;
      out.push_back(std::move(c.queue.front()));
      c.queue.pop_front();
      if (settings.daily_event_limit != 0) deliveries.push_back(clk.now());
    }
    return out;
  }

  /// Answers the client's held connect with its queued events (and an optional disconnect).
  void flush_held(const client_ptr& c, bool with_disconnect = false) {
    if (!c->held) return;
    held_connect held = std::move(*c->held);
    c->held.reset();
    c->hold_timer.cancel();
    auto events = drain(*c);
    std::vector<std::string> tail;
    if (with_disconnect) tail.push_back(server_disconnect(c->id));
    tail.push_back(reply(c->id, "/meta/connect", held.id, nullptr, {}, advice_kind::none));
    arm_expiry(c);
    if (!held.exchange->answered()) {
      answer_connect(held.exchange, c, held.id, std::move(held.prefix), std::move(events),
                     std::move(tail), std::move(held.cookies));
    }
  }

  /// Sends a connect reply: `head` (replies to the other messages of the POST), the events, then
  /// `tail` (the connect reply, after an unsolicited disconnect if any). An armed reply fault
  /// spoils it when it carries events; those events stay sent, as Salesforce's would.
  void answer_connect(const std::shared_ptr<net::exchange>& ex, const client_ptr& c,
                      const message_id& id, std::vector<std::string> head,
                      std::vector<net::shared_bytes> events, std::vector<std::string> tail,
                      std::vector<std::string> cookies) {
    if (events.empty() || reply_fault_count == 0) {
      respond_with_events(*ex, head, std::move(events), tail, cookies);
      return;
    }
    --reply_fault_count;
    const reply_fault fault = armed_reply_fault;
    spoiled += events.size();
    auto whole = [&] {
      for (auto& e : events) head.push_back(*e);
      for (auto& t : tail) head.push_back(std::move(t));
      return std::move(head);
    };
    switch (fault.kind) {
      case reply_fault_kind::cut: {
        auto r = bayeux_http(whole(), cookies);
        const std::size_t bytes = std::min(fault.bytes, r.body.size() - 1);  // never the whole body
        ex->respond_partial_and_drop(std::move(r), bytes);
        return;
      }
      case reply_fault_kind::reset:
        ex->drop();
        return;
      case reply_fault_kind::hold: {
        auto timer = std::make_shared<asio::steady_timer>(executor, fault.delay);
        std::erase_if(late_replies, [](const auto& weak) { return weak.expired(); });
        late_replies.push_back(timer);
        // The client's expiry counts from the reply actually sent, as for any reply.
        timer->async_wait(
            [timer, ex, weak = weak_from_this(), weak_client = std::weak_ptr<client>(c),
             r = bayeux_http(whole(), cookies)](boost::system::error_code ec) mutable {
              if (ec || ex->answered()) return;
              ex->respond(std::move(r));
              auto self = weak.lock();
              auto cl = weak_client.lock();
              if (self && cl && !cl->held && self->clients.count(cl->id) != 0) self->arm_expiry(cl);
            });
        return;
      }
      case reply_fault_kind::oversize: {
        auto r = bayeux_http(whole(), cookies);
        if (r.body.size() <= fault.bytes) r.body.insert(1, fault.bytes + 1 - r.body.size(), ' ');
        ex->respond(std::move(r));
        return;
      }
      case reply_fault_kind::malformed:
        events.insert(
            events.begin() + 1,
            std::make_shared<const std::string>(
                fault.message.empty() ? R"({"data":{"event":{"replayId":}},"channel":"/malformed"})"
                                      : fault.message));
        ex->respond(bayeux_http(whole(), cookies));
        return;
      case reply_fault_kind::rotate_affinity:
        affinity = new_affinity();
        [[fallthrough]];
      case reply_fault_kind::unknown_client:
        head.push_back(unknown_client("/meta/connect", id));
        cookies.push_back(affinity_cookie());
        erase_client(c);
        ex->respond(bayeux_http(std::move(head), cookies));
        return;
      case reply_fault_kind::unauthorized:
        head.push_back(reply(c->id, "/meta/connect", id, nullptr, "401::Authentication invalid",
                             advice_kind::stop));
        ex->respond(bayeux_http(std::move(head), cookies));
        return;
      case reply_fault_kind::http_503: {
        transport::http_response r;
        r.status = 503;
        r.reason = "Service Unavailable";
        r.headers = {{"Content-Type", "text/html;charset=UTF-8"}};
        r.body = "<html><body><h1>503 Service Unavailable</h1></body></html>";
        ex->respond(std::move(r));
        return;
      }
      case reply_fault_kind::too_busy:
        head.push_back(reply(c->id, "/meta/connect", id, nullptr, too_busy_text, advice_kind::stop,
                             too_busy_text));
        ex->respond(bayeux_http(std::move(head), cookies));
        return;
      case reply_fault_kind::disconnect:
        head.push_back(server_disconnect(c->id));
        head.push_back(reply(c->id, "/meta/connect", id, nullptr, {}, advice_kind::none));
        erase_client(c);
        ex->respond(bayeux_http(std::move(head), cookies));
        return;
    }
  }

  std::int64_t publish_raw(const std::string& channel, const std::string& data) {
    if (!bus.channel_exists(channel)) {
      const bool long_kept = channel.rfind("/event/", 0) == 0 || channel.rfind("/data/", 0) == 0;
      bus.declare_channel(channel, long_kept ? retention::hours_72 : retention::hours_24);
    }
    return bus.publish(channel, [&data](std::int64_t replay_id, clock::time_point) {
      constexpr std::string_view placeholder = "{{replayId}}";
      const std::string id = std::to_string(replay_id);
      std::string out;
      std::size_t from = 0;
      for (auto at = data.find(placeholder); at != std::string::npos;
           at = data.find(placeholder, from)) {
        out.append(data, from, at - from);
        out += id;
        from = at + placeholder.size();
      }
      out.append(data, from, std::string::npos);
      return out;
    });
  }

  void schedule_flush(const client_ptr& c) {
    if (!c->held || c->flush_posted) return;
    c->flush_posted = true;
    std::weak_ptr<impl> weak = shared_from_this();
    asio::post(executor, [weak, c] {
      c->flush_posted = false;
      auto self = weak.lock();
      if (!self || self->clients.count(c->id) == 0) return;
      self->flush_held(c);
    });
  }

  static bool filter_matches(const subscription& sub, const std::string& data) {
    if (sub.filters.empty()) return true;
    rapidjson::Document doc;
    if (doc.Parse(data.c_str()).HasParseError() || !doc.IsObject()) return false;
    auto so = doc.FindMember("sobject");
    if (so == doc.MemberEnd() || !so->value.IsObject()) return false;
    for (const auto& [field, value] : sub.filters) {
      auto f = so->value.FindMember(field.c_str());
      if (f == so->value.MemberEnd()) return false;
      std::string text;
      if (f->value.IsString()) {
        text.assign(f->value.GetString(), f->value.GetStringLength());
      } else if (f->value.IsNull()) {
        text = "null";
      } else {
        rapidjson::StringBuffer sb;
        writer w(sb);
        f->value.Accept(w);
        text = sb.GetString();
      }
      if (text != value) return false;
    }
    return true;
  }

  /// The event as a message for the subscription `channel`: the bytes serialized when the event
  /// was published when the subscription is the event's channel itself (no filter).
  static net::shared_bytes event_message(const std::string& channel, const stored_event& event) {
    if (event.message && channel == event.channel) return event.message;
    return std::make_shared<const std::string>(render_event_message(channel, event.data));
  }

  void on_event(const stored_event& event) {
    for (auto& [id, c] : clients) {
      if (!is_for_user(event, c->user_id)) continue;  // a push for other users
      bool queued = false;
      for (const auto& [name, sub] : c->subscriptions) {
        if (sub.base == event.channel && filter_matches(sub, event.data)) {
          c->queue.push_back(event_message(name, event));
          queued = true;
        }
      }
      if (queued) schedule_flush(c);
    }
  }

  /// Clients logged in as `user_id` subscribed to `channel` (any filter).
  std::size_t count_subscribers(const std::string& channel, const std::string& user_id) const {
    std::size_t n = 0;
    for (const auto& [id, c] : clients) {
      if (c->user_id != user_id) continue;
      for (const auto& [name, sub] : c->subscriptions) {
        if (sub.base == channel) {
          ++n;
          break;
        }
      }
    }
    return n;
  }

  // ---- request handling ---------------------------------------------------------------------
  void handle(const std::shared_ptr<net::exchange>& ex) {
    const auto& req = ex->request();
    if (req.method != "POST") {
      transport::http_response r;
      r.status = 405;
      r.reason = "Only POST allowed";
      r.headers = {{"Content-Type", "text/plain;charset=UTF-8"}, {"Allow", "POST"}};
      r.body = "Only POST allowed";
      ex->respond(std::move(r));
      return;
    }
    std::string_view path = req.target;
    path = path.substr(0, path.find('?'));
    std::string_view rest = path.size() > 8 ? path.substr(8) : std::string_view{};
    std::string_view version = rest.substr(0, rest.find('/'));
    auto tenths = parse_version_tenths(version);
    if (!tenths) {
      ex->respond(version_error(
          req, "400::API version in the URI is mandatory. " + std::string(uri_example)));
      return;
    }
    if (*tenths < 370) {
      ex->respond(version_error(
          req, "400::Unsupported API version. Only API versions '37.0' and later are supported. " +
                   std::string(uri_example)));
      return;
    }
    if (req.body.size() > settings.request_limit) {
      auto r = json_http(413, "Maximum Request Size Exceeded", "");
      r.headers = {{"Content-Type", "text/plain;charset=UTF-8"}};
      r.body = "Maximum Request Size Exceeded";
      ex->respond(std::move(r));
      return;
    }
    if (fail_count > 0) {
      --fail_count;
      transport::http_response r;
      if (fail_kind == injected_fault::http_503) {
        r.status = 503;
        r.reason = "Service Unavailable";
        r.headers = {{"Content-Type", "text/html;charset=UTF-8"}};
        r.body = "<html><body><h1>503 Service Unavailable</h1></body></html>";
      } else {
        r.status = 200;
        r.reason = "OK";
        r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
        r.body = "<html><body>Upstream proxy error</body></html>";
      }
      ex->respond(std::move(r));
      return;
    }
    rapidjson::Document doc;
    if (doc.Parse(req.body.c_str(), req.body.size()).HasParseError() ||
        !(doc.IsArray() || doc.IsObject())) {
      ex->respond(json_http(
          400, "Bad Request",
          R"([{"error":"400::Unable to parse the request body as a Bayeux message","successful":false}])"));
      return;
    }
    std::vector<const rapidjson::Value*> messages;
    if (doc.IsArray()) {
      for (auto& m : doc.GetArray()) messages.push_back(&m);
    } else {
      messages.push_back(&doc);
    }

    batch b;
    const std::string token = bearer_token(req);
    auto sent_affinity = cookie_value(req.headers, "sfdc-stream");
    if (sent_affinity && *sent_affinity != affinity) b.cookies.push_back(affinity_cookie());
    for (const rapidjson::Value* m : messages) {
      if (!m->IsObject()) {
        b.replies.push_back(R"({"error":"400::Bad message format","successful":false})");
        continue;
      }
      on_message(*m, req, token, b);
    }

    if (b.connect_client && b.hold && b.connect_client->queue.empty() &&
        !b.connect_client->pending_disconnect) {
      auto c = b.connect_client;
      c->held = held_connect{ex, std::move(b.replies), std::move(b.cookies), b.connect_id};
      c->expiry_timer.cancel();
      c->hold_timer.expires_after(settings.long_poll_timeout);
      std::weak_ptr<impl> weak = shared_from_this();
      std::weak_ptr<client> weak_client = c;
      c->hold_timer.async_wait([weak, weak_client](boost::system::error_code ec) {
        auto self = weak.lock();
        auto cl = weak_client.lock();
        if (ec || !self || !cl) return;
        self->flush_held(cl);
      });
      ex->on_abandoned([weak, weak_client, ex_weak = std::weak_ptr<net::exchange>(ex)] {
        auto self = weak.lock();
        auto cl = weak_client.lock();
        auto abandoned = ex_weak.lock();
        if (!self || !cl || !cl->held || cl->held->exchange != abandoned) return;
        cl->held.reset();
        cl->hold_timer.cancel();
        if (self->clients.count(cl->id) != 0) self->arm_expiry(cl);
      });
      return;
    }
    if (b.connect_client) {
      auto c = b.connect_client;
      auto events = drain(*c);
      std::vector<std::string> tail;
      if (c->pending_disconnect) {
        tail.push_back(server_disconnect(c->id));
      }
      const advice_kind advice = b.connect_multiple_clients ? advice_kind::multiple_clients
                                 : b.connect_advice         ? advice_kind::retry_first
                                                            : advice_kind::none;
      tail.push_back(reply(c->id, "/meta/connect", b.connect_id, nullptr, {}, advice, {},
                           settings.long_poll_timeout));
      if (c->pending_disconnect) {
        erase_client(c);
      } else if (clients.count(c->id) != 0) {
        arm_expiry(c);
      }
      answer_connect(ex, c, b.connect_id, std::move(b.replies), std::move(events), std::move(tail),
                     std::move(b.cookies));
      return;
    }
    ex->respond(bayeux_http(std::move(b.replies), b.cookies));
  }

  transport::http_response version_error(const transport::http_request& req,
                                         const std::string& error) {
    std::string channel = "/meta/handshake";
    message_id id;
    rapidjson::Document doc;
    if (!doc.Parse(req.body.c_str(), req.body.size()).HasParseError()) {
      const rapidjson::Value* first =
          doc.IsArray() && doc.Size() > 0 ? &doc[0] : (doc.IsObject() ? &doc : nullptr);
      if (first != nullptr && first->IsObject()) {
        std::string ch = string_member(*first, "channel");
        if (!ch.empty()) channel = ch;
        id = read_id(*first);
      }
    }
    return json_http(400, "Bad Request",
                     join({reply({}, channel, id, nullptr, error, advice_kind::none)}));
  }

  void on_message(const rapidjson::Value& m, const transport::http_request& req,
                  const std::string& token, batch& b) {
    const std::string channel = string_member(m, "channel");
    const message_id id = read_id(m);
    if (channel == "/meta/handshake") {
      on_handshake(id, token, b);
      return;
    }
    if (channel.empty()) {
      b.replies.push_back(
          reply({}, "", id, nullptr, "400::Channel name not specified", advice_kind::none));
      return;
    }
    const std::string client_id = string_member(m, "clientId");
    auto it = clients.find(client_id);
    if (it == clients.end()) {
      b.replies.push_back(unknown_client(channel, id));
      b.cookies.push_back(affinity_cookie());
      return;
    }
    client_ptr c = it->second;
    auto browser = cookie_value(req.headers, "BAYEUX_BROWSER");
    if (!browser || *browser != c->browser) {
      b.replies.push_back(
          reply(c->id, channel, id, nullptr,
                "400::Client {" + c->id +
                    "} has established a session, but no BAYEUX_BROWSER cookie present",
                advice_kind::none));
      return;
    }
    c->expiry_timer.cancel();
    auto user = token.empty() ? std::nullopt : check(token);
    if (!user) {
      b.replies.push_back(
          reply(c->id, channel, id, nullptr, "401::Authentication invalid", advice_kind::stop));
      if (!c->held) arm_expiry(c);
      return;
    }
    if (*user != c->user_id) {
      b.replies.push_back(reply(c->id, channel, id, nullptr,
                                "400::Authenticated user id does not match the session's user id",
                                advice_kind::stop));
      if (!c->held) arm_expiry(c);
      return;
    }
    if (channel == "/meta/connect") {
      on_connect(m, c, id, b);
    } else if (channel == "/meta/subscribe") {
      on_subscribe(m, c, id, b);
    } else if (channel == "/meta/unsubscribe") {
      std::string sub = string_member(m, "subscription");
      c->subscriptions.erase(sub);
      b.replies.push_back(reply(c->id, "/meta/unsubscribe", id, &sub, {}, advice_kind::none));
    } else if (channel == "/meta/disconnect") {
      rapidjson::StringBuffer sb;
      writer w(sb);
      w.StartObject();
      key(w, "channel");
      put(w, "/meta/disconnect");
      key(w, "clientId");
      put(w, c->id);
      put_id(w, id);
      key(w, "successful");
      w.Bool(true);
      w.EndObject();
      b.replies.push_back(sb.GetString());
      flush_held(c);
      if (b.connect_client == c) b.connect_client.reset();
      erase_client(c);
      return;
    } else if (channel.rfind("/meta/", 0) == 0) {
      b.replies.push_back(
          reply(c->id, channel, id, nullptr, "404::Unknown channel", advice_kind::none));
    } else {
      b.replies.push_back(
          reply(c->id, channel, id, nullptr, "403::Restricted channel", advice_kind::none));
    }
    if (!c->held && b.connect_client != c) arm_expiry(c);
  }

  void on_handshake(const message_id& id, const std::string& token, batch& b) {
    if (take(message_fault::too_busy)) {
      b.replies.push_back(handshake_denied(id, too_busy_text));
      return;
    }
    if (take(message_fault::connection_limit)) {
      b.replies.push_back(handshake_denied(id, connection_limit_text));
      return;
    }
    if (token.empty()) {
      b.replies.push_back(handshake_denied(id, "401::Request requires authentication"));
      return;
    }
    auto user = check(token);
    if (!user) {
      b.replies.push_back(handshake_denied(id, "401::Authentication invalid"));
      return;
    }
    if (clients.size() >= settings.concurrent_client_limit) {
      b.replies.push_back(handshake_denied(id, "403::Organization concurrent user limit exceeded"));
      return;
    }
    auto c = std::make_shared<client>(executor);
    do {
      const std::size_t length =
          26 + static_cast<std::size_t>(auth::random_text(1, "0123")[0] - '0');
      c->id = auth::random_text(length, base36);
    } while (clients.count(c->id) != 0);
    c->user_id = *user;
    c->browser = auth::random_text(28, base36);
    clients[c->id] = c;
    b.cookies.push_back("BAYEUX_BROWSER=" + c->browser + "; Path=/cometd/; HttpOnly");
    b.cookies.push_back(affinity_cookie());

    rapidjson::StringBuffer sb;
    writer w(sb);
    w.StartObject();
    key(w, "ext");
    w.StartObject();
    key(w, "replay");
    w.Bool(true);
    key(w, "payload.format");
    w.Bool(true);
    w.EndObject();
    key(w, "minimumVersion");
    put(w, "1.0");
    key(w, "clientId");
    put(w, c->id);
    key(w, "supportedConnectionTypes");
    w.StartArray();
    put(w, "long-polling");
    w.EndArray();
    key(w, "channel");
    put(w, "/meta/handshake");
    put_id(w, id);
    key(w, "version");
    put(w, "1.0");
    key(w, "successful");
    w.Bool(true);
    w.EndObject();
    b.replies.push_back(sb.GetString());
    arm_expiry(c);
  }

  void on_connect(const rapidjson::Value& m, const client_ptr& c, const message_id& id, batch& b) {
    if (take(message_fault::too_busy)) {
      b.replies.push_back(reply(c->id, "/meta/connect", id, nullptr, too_busy_text,
                                advice_kind::stop, too_busy_text));
      arm_expiry(c);
      return;
    }
    if (take(message_fault::unknown_client_final)) {
      if (c->held) flush_held(c);
      erase_client(c);
      b.replies.push_back(unknown_client("/meta/connect", id, "none"));
      return;
    }
    const std::string type = string_member(m, "connectionType");
    if (m.HasMember("connectionType") && type != "long-polling") {
      b.replies.push_back(reply(c->id, "/meta/connect", id, nullptr,
                                "400::Invalid connection type {" + type + "}", advice_kind::none));
      arm_expiry(c);
      return;
    }
    if (daily_limit_reached()) {
      b.replies.push_back(
          reply(c->id, "/meta/connect", id, nullptr, daily_limit_text, advice_kind::none));
      arm_expiry(c);
      return;
    }
    if (c->held) {
      flush_held(c);  // a newer connect replaces the held one
    }
    if (b.connect_client == c) {
      // Two connects in one POST: answer the first at once.
      b.replies.push_back(
          reply(c->id, "/meta/connect", b.connect_id, nullptr, {}, advice_kind::none));
    }
    b.connect_client = c;
    b.connect_id = id;
    b.connect_advice = !c->connected_once;
    b.hold = false;
    if (!c->connected_once) {
      c->connected_once = true;
      return;
    }
    if (take(message_fault::multiple_clients)) {
      b.connect_multiple_clients = true;  // answered at once; the advice spaces the next one
      return;
    }
    bool immediate = c->pending_disconnect || !c->queue.empty();
    auto advice = m.FindMember("advice");
    if (advice != m.MemberEnd() && advice->value.IsObject()) {
      auto t = advice->value.FindMember("timeout");
      if (t != advice->value.MemberEnd() && t->value.IsNumber() && t->value.GetDouble() <= 0)
        immediate = true;
    }
    b.hold = !immediate;
  }

  void on_subscribe(const rapidjson::Value& m, const client_ptr& c, const message_id& id,
                    batch& b) {
    std::string sub = string_member(m, "subscription");
    auto fail = [&](const std::string& error, bool with_subscription = true) {
      b.replies.push_back(reply(c->id, "/meta/subscribe", id, with_subscription ? &sub : nullptr,
                                error, advice_kind::none));
    };
    if (sub.empty()) {
      fail("400::Channel name not specified", false);
      return;
    }
    if (sub.front() != '/') {
      fail("400::Channel subscriptions must start with a leading '/'");
      return;
    }
    if (take(message_fault::too_busy)) {
      b.replies.push_back(reply(c->id, "/meta/subscribe", id, &sub, too_busy_text,
                                advice_kind::stop, too_busy_text));
      return;
    }
    if (take(message_fault::bare_subscribe_failure)) {
      fail("403::Restricted channel", false);
      return;
    }
    if (daily_limit_reached()) {
      fail(std::string(daily_limit_text));
      return;
    }
    subscription s;
    auto q = sub.find('?');
    s.base = sub.substr(0, q);
    const bool is_topic = s.base.rfind("/topic/", 0) == 0;
    const bool is_generic = s.base.rfind("/u/", 0) == 0;
    const bool is_event = s.base.rfind("/event/", 0) == 0;
    const bool is_data = s.base.rfind("/data/", 0) == 0;
    if (!is_topic && !is_generic && !is_event && !is_data) {
      fail("403::Restricted channel");
      return;
    }
    if (q != std::string::npos) {
      std::string_view query = std::string_view(sub).substr(q + 1);
      while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = pair.find('=');
        if (pair.empty() || eq == std::string_view::npos || eq == 0) continue;
        std::string value = percent_decode_lenient(pair.substr(eq + 1));
        if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
            value.back() == value.front()) {
          value = value.substr(1, value.size() - 2);
        }
        s.filters.emplace_back(percent_decode_lenient(pair.substr(0, eq)), std::move(value));
      }
    }
    if (!bus.channel_exists(s.base) || (!is_topic && q != std::string::npos)) {
      if (is_generic) {
        fail("404::Unknown channel");
      } else {
        fail("400::The channel you requested to subscribe to does not exist {" + sub + "}");
      }
      return;
    }

    std::int64_t replay = -1;
    auto ext = m.FindMember("ext");
    if (ext != m.MemberEnd() && ext->value.IsObject()) {
      auto map = ext->value.FindMember("replay");
      if (map != ext->value.MemberEnd() && map->value.IsObject()) {
        const std::string not_found =
            "400::The replayId for channel {" + s.base +
            "} wasn't found using the provided replay ID map {" + java_map(map->value) +
            "}. Ensure that the channel name you provided in the replay map is valid and "
            "matches the channel name used for subscribing.";
        auto entry = map->value.FindMember(s.base.c_str());
        if (entry != map->value.MemberEnd()) {
          const auto& v = entry->value;
          if (v.IsInt64()) {
            replay = v.GetInt64();
          } else if (v.IsString() && std::string_view(v.GetString()) == "-2") {
            replay = -2;
          } else {
            fail(not_found);
            return;
          }
        } else {
          for (auto it = map->value.MemberBegin(); it != map->value.MemberEnd(); ++it) {
            std::string_view k(it->name.GetString(), it->name.GetStringLength());
            if (k.size() > s.base.size() && k.substr(0, s.base.size()) == s.base &&
                k[s.base.size()] == '?') {
              fail(not_found);
              return;
            }
          }
        }
      }
    }
    if (replay < -2 || bus.check_replay(s.base, replay) != replay_check::ok ||
        (replay >= 0 && take(message_fault::invalid_replay_id))) {
      fail("400::The replayId {" + std::to_string(replay) +
           "} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 "
           "to replay only new events.");
      return;
    }
    bus.visit_after(s.base, replay, [&](const stored_event& e) {
      if (is_for_user(e, c->user_id) && filter_matches(s, e.data)) {
        c->queue.push_back(event_message(sub, e));
      }
    });
    c->subscriptions[sub] = std::move(s);
    b.replies.push_back(reply(c->id, "/meta/subscribe", id, &sub, {}, advice_kind::none));
    if (!c->queue.empty()) schedule_flush(c);
  }

  void stop() {
    stopped = true;
    for (auto& weak : late_replies) {
      if (auto timer = weak.lock()) timer->cancel();
    }
    late_replies.clear();
    for (auto& [id, c] : clients) {
      c->hold_timer.cancel();
      c->expiry_timer.cancel();
      if (c->held && !c->held->exchange->answered()) c->held->exchange->drop();
      c->held.reset();
    }
    clients.clear();
  }
};

cometd_server::cometd_server(asio::any_io_executor executor, cometd_settings settings,
                             const clock& clk, event_bus& bus, token_check check)
    : impl_(std::make_shared<impl>(std::move(executor), settings, clk, bus, std::move(check))) {
  std::weak_ptr<impl> weak = impl_;
  bus.set_publish_listener([weak](const stored_event& e) {
    if (auto self = weak.lock()) self->on_event(e);
  });
  bus.set_subscriber_counter([weak](const std::string& channel, const std::string& user_id) {
    auto self = weak.lock();
    return self ? self->count_subscribers(channel, user_id) : std::size_t{0};
  });
}

cometd_server::~cometd_server() {
  impl_->bus.set_publish_listener(nullptr);
  impl_->bus.set_subscriber_counter(nullptr);
  impl_->stop();
}

void cometd_server::handle(std::shared_ptr<net::exchange> exchange) {
  impl_->handle(exchange);
}

void cometd_server::forget_all_clients() {
  auto clients = std::move(impl_->clients);
  impl_->clients.clear();
  for (auto& [id, c] : clients) {
    c->hold_timer.cancel();
    c->expiry_timer.cancel();
    if (c->held) {
      auto held = std::move(*c->held);
      c->held.reset();
      auto parts = std::move(held.prefix);
      parts.push_back(impl::unknown_client("/meta/connect", held.id));
      held.cookies.push_back(impl_->affinity_cookie());
      if (!held.exchange->answered())
        held.exchange->respond(impl::bayeux_http(std::move(parts), held.cookies));
    }
  }
}

void cometd_server::rotate_affinity_cookie() {
  impl_->affinity = impl::new_affinity();
}

void cometd_server::fail_next_requests(std::size_t count, injected_fault fault) {
  impl_->fail_count = count;
  impl_->fail_kind = fault;
}

void cometd_server::disconnect_all_clients() {
  std::vector<impl::client_ptr> all;
  for (auto& [id, c] : impl_->clients) all.push_back(c);
  for (auto& c : all) {
    if (c->held) {
      impl_->flush_held(c, true);
      impl_->erase_client(c);
    } else {
      c->pending_disconnect = true;
    }
  }
}

void cometd_server::make_too_busy(std::size_t count) {
  inject(message_fault::too_busy, count);
}

void cometd_server::inject(message_fault fault, std::size_t count) {
  impl_->faults[fault] = count;
}

void cometd_server::spoil_next_event_replies(reply_fault fault, std::size_t count) {
  impl_->armed_reply_fault = std::move(fault);
  impl_->reply_fault_count = count;
}

std::size_t cometd_server::pending_reply_faults() const noexcept {
  return impl_->reply_fault_count;
}

std::uint64_t cometd_server::spoiled_events() const noexcept {
  return impl_->spoiled;
}

std::int64_t cometd_server::publish_raw(const std::string& channel, const std::string& data) {
  return impl_->publish_raw(channel, data);
}

std::size_t cometd_server::client_count() const noexcept {
  return impl_->clients.size();
}

std::uint64_t cometd_server::deliveries_today() const {
  impl_->purge_deliveries();
  return impl_->deliveries.size();
}

void cometd_server::stop() {
  impl_->stop();
}

}  // namespace sfstream::emulator::cometd
