#include "emulator/cometd/cometd_session.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/auth/session_registry.hpp"
#include "emulator/cometd/request_fields.hpp"

namespace sfstream::emulator::cometd {

namespace {

constexpr std::string_view base36 = "0123456789abcdefghijklmnopqrstuvwxyz";

struct subscription {
  std::string base;
  std::vector<std::pair<std::string, std::string>> filters;
};

/// A connect the session holds open; the HTTP layer keeps its connection and timer.
struct held_connect {
  std::vector<std::string> prefix;  ///< Replies to the other messages of its POST.
  std::vector<std::string> cookies;
  message_id id;
};

struct client {
  std::string id;
  std::string user_id;
  std::string browser;
  int endpoint_tenths = 0;  ///< The endpoint version of its handshake, e.g. 590 for /cometd/59.0.
  bool connected_once = false;
  bool pending_disconnect = false;
  std::map<std::string, subscription> subscriptions;
  std::deque<shared_text> queue;  ///< Event messages not yet sent, oldest first.
  std::optional<held_connect> held;
  std::optional<clock::time_point> last_connect;  ///< When its latest /meta/connect came.
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
  bool unanswered_disconnect = false;  // a disconnect left without its reply
};

bool filter_matches(const subscription& sub, const std::string& data) {
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
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      f->value.Accept(w);
      text = sb.GetString();
    }
    if (text != value) return false;
  }
  return true;
}

/// Platform events carry EventUuid for subscribers on endpoint 52.0 and later only.
constexpr int event_uuid_version = 520;

/// `data` without its "EventUuid":"…", member (platform events for an older endpoint).
std::string without_event_uuid(const std::string& data) {
  constexpr std::string_view key = "\"EventUuid\":\"";
  const auto at = data.find(key);
  if (at == std::string::npos) return data;
  const auto end = data.find('"', at + key.size());
  if (end == std::string::npos) return data;
  std::size_t stop = end + 1;
  if (stop < data.size() && data[stop] == ',') ++stop;
  return data.substr(0, at) + data.substr(stop);
}

/// The event as a message for the subscription `channel` of a client on endpoint version
/// `tenths`: the bytes serialized when the event was published when the subscription is the
/// event's channel itself (no filter) and nothing is left out for the endpoint version.
shared_text event_message(const std::string& channel, const stored_event& event, int tenths) {
  const bool strip_uuid = tenths < event_uuid_version && event.channel.rfind("/event/", 0) == 0;
  if (event.message && channel == event.channel && !strip_uuid) return event.message;
  return std::make_shared<const std::string>(
      render_event_message(channel, strip_uuid ? without_event_uuid(event.data) : event.data));
}

/// A load-balancer cookie value with each of '!', '/', '+' and '=' in it, as Salesforce's
/// `t` and `force-stream` values have: a client must send them back byte for byte.
std::string cookie_token() {
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return "!" + auth::random_text(20, alphabet) + "/" + auth::random_text(12, alphabet) + "+" +
         auth::random_text(10, alphabet) + "=";
}

std::string new_affinity() {
  return "!" +
         auth::random_text(56, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") +
         "=";
}

}  // namespace

std::string reply_plan::body() const {
  std::vector<std::string> all = head;
  for (const auto& e : events) all.push_back(*e);
  all.insert(all.end(), tail.begin(), tail.end());
  return join_messages(all);
}

struct cometd_session::impl {
  cometd_settings settings;
  const clock& clk;
  event_bus& bus;
  token_check check;
  session_host& host;
  std::map<std::string, client_ptr> clients;
  std::string affinity = new_affinity();
  std::string force_stream = cookie_token();
  std::map<std::string, std::string> browsers;  // BAYEUX_BROWSER value → its `t` cookie value
  std::map<fault_kind, std::size_t> faults;  // message faults still to give
  fault armed_reply_fault;                   // spoils the next replies that carry events
  std::size_t reply_fault_count = 0;
  std::uint64_t spoiled = 0;  // events in spoiled replies
  std::deque<clock::time_point> deliveries;
  std::uint64_t handshakes = 0;  // that made a client

  impl(cometd_settings s, const clock& c, event_bus& b, token_check t, session_host& h)
      : settings(s), clk(c), bus(b), check(std::move(t)), host(h) {}

  /// True (and one fewer to give) when `kind` is armed.
  bool take(fault_kind kind) {
    auto it = faults.find(kind);
    if (it == faults.end() || it->second == 0) return false;
    --it->second;
    return true;
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

  void arm_expiry(const client_ptr& c) { host.arm_expiry(c->id); }

  void erase_client(const client_ptr& c) {
    clients.erase(c->id);
    host.forgotten(c->id);
  }

  // ---- delivery -----------------------------------------------------------------------------
  /// Takes up to `max_events_per_connect` queued events, and no more than
  /// `max_event_bytes_per_connect` bytes of them past the first, for one reply; the rest wait
  /// for the next connect, which is then answered at once.
  std::vector<shared_text> drain(client& c) {
    std::vector<shared_text> out;
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
    auto events = drain(*c);
    std::vector<std::string> tail;
    if (with_disconnect) tail.push_back(build_server_disconnect(c->id));
    tail.push_back(build_reply(c->id, "/meta/connect", held.id, nullptr, {}, advice_kind::none));
    arm_expiry(c);
    host.answer_held(c->id, plan_connect(c, held.id, std::move(held.prefix), std::move(events),
                                         std::move(tail), std::move(held.cookies)));
  }

  /// The reply to a connect: `head` (replies to the other messages of the POST), the events,
  /// then `tail` (the connect reply, after an unsolicited disconnect if any). An armed reply
  /// fault spoils it when it carries events; those events stay sent, as Salesforce's would.
  reply_plan plan_connect(const client_ptr& c, const message_id& id, std::vector<std::string> head,
                          std::vector<shared_text> events, std::vector<std::string> tail,
                          std::vector<std::string> cookies) {
    reply_plan plan;
    plan.client_id = c->id;
    if (events.empty() || reply_fault_count == 0) {
      plan.head = std::move(head);
      plan.events = std::move(events);
      plan.tail = std::move(tail);
      plan.cookies = std::move(cookies);
      return plan;
    }
    --reply_fault_count;
    const fault f = armed_reply_fault;
    spoiled += events.size();
    auto whole = [&] {
      for (auto& e : events) head.push_back(*e);
      for (auto& t : tail) head.push_back(std::move(t));
      return std::move(head);
    };
    auto respond = [&](transport::http_response r) {
      plan.what = reply_plan::action::respond;
      plan.response = std::move(r);
      return std::move(plan);
    };
    switch (f.kind) {
      case fault_kind::cut: {
        plan.what = reply_plan::action::cut;
        plan.response = bayeux_http(whole(), cookies);
        plan.cut_bytes = std::min(f.bytes, plan.response.body.size() - 1);  // never the whole body
        return plan;
      }
      case fault_kind::reset:
        plan.what = reply_plan::action::drop;
        return plan;
      case fault_kind::hold:
        // The client's expiry counts from the reply actually sent, as for any reply.
        plan.what = reply_plan::action::late;
        plan.response = bayeux_http(whole(), cookies);
        plan.delay = f.delay;
        return plan;
      case fault_kind::oversize: {
        auto r = bayeux_http(whole(), cookies);
        if (r.body.size() <= f.bytes) r.body.insert(1, f.bytes + 1 - r.body.size(), ' ');
        return respond(std::move(r));
      }
      case fault_kind::malformed:
        events.insert(events.begin() + 1,
                      std::make_shared<const std::string>(
                          f.message.empty() ? R"({"data":{"event":{"replayId":}},"channel":"/malformed"})"
                                            : f.message));
        return respond(bayeux_http(whole(), cookies));
      case fault_kind::rotate_affinity:
        affinity = new_affinity();
        [[fallthrough]];
      case fault_kind::unknown_client:
        head.push_back(build_unknown_client("/meta/connect", id));
        cookies.push_back(affinity_cookie());
        erase_client(c);
        return respond(bayeux_http(head, cookies));
      case fault_kind::unauthorized:
        head.push_back(build_reply(c->id, "/meta/connect", id, nullptr,
                                   "401::Authentication invalid", advice_kind::stop));
        return respond(bayeux_http(head, cookies));
      case fault_kind::http_503:
        return respond(http_503_page());
      case fault_kind::too_busy:
        head.push_back(build_reply(c->id, "/meta/connect", id, nullptr, too_busy_error,
                                   advice_kind::stop, too_busy_text));
        return respond(bayeux_http(head, cookies));
      case fault_kind::disconnect:
        head.push_back(build_server_disconnect(c->id));
        head.push_back(build_reply(c->id, "/meta/connect", id, nullptr, {}, advice_kind::none));
        erase_client(c);
        return respond(bayeux_http(head, cookies));
      default:  // not an event-reply kind: spoil_next_event_replies refuses to arm it
        plan.head = std::move(head);
        plan.events = std::move(events);
        plan.tail = std::move(tail);
        plan.cookies = std::move(cookies);
        return plan;
    }
  }

  void schedule_flush(const client_ptr& c) {
    if (c->held) host.flush_soon(c->id);
  }

  void on_event(const stored_event& event) {
    for (auto& [id, c] : clients) {
      if (!is_for_user(event, c->user_id)) continue;  // a push for other users
      bool queued = false;
      for (const auto& [name, sub] : c->subscriptions) {
        if (sub.base == event.channel && filter_matches(sub, event.data)) {
          c->queue.push_back(event_message(name, event, c->endpoint_tenths));
          queued = true;
        }
      }
      if (queued) schedule_flush(c);
    }
  }

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
  post_outcome on_post(const transport::http_request& req, const rapidjson::Value& doc) {
    std::vector<const rapidjson::Value*> messages;
    if (doc.IsArray()) {
      for (const auto& m : doc.GetArray()) messages.push_back(&m);
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

    post_outcome out;
    if (b.connect_client && b.hold && b.connect_client->queue.empty() &&
        !b.connect_client->pending_disconnect) {
      auto c = b.connect_client;
      c->held = held_connect{std::move(b.replies), std::move(b.cookies), b.connect_id};
      host.cancel_expiry(c->id);
      host.hold(c->id, settings.long_poll_timeout);
      out.held_client = c->id;
      return out;
    }
    if (b.connect_client) {
      auto c = b.connect_client;
      auto events = drain(*c);
      std::vector<std::string> tail;
      if (c->pending_disconnect) tail.push_back(build_server_disconnect(c->id));
      const advice_kind advice = b.connect_multiple_clients ? advice_kind::multiple_clients
                                 : b.connect_advice         ? advice_kind::retry_first
                                                            : advice_kind::none;
      tail.push_back(build_reply(c->id, "/meta/connect", b.connect_id, nullptr, {}, advice, {},
                                 settings.long_poll_timeout));
      if (c->pending_disconnect) {
        erase_client(c);
      } else if (clients.count(c->id) != 0) {
        arm_expiry(c);
      }
      out.reply = plan_connect(c, b.connect_id, std::move(b.replies), std::move(events),
                               std::move(tail), std::move(b.cookies));
      return out;
    }
    if (b.unanswered_disconnect && b.replies.empty()) {
      out.never_answer = true;
      return out;
    }
    reply_plan plan;
    plan.head = std::move(b.replies);
    plan.cookies = std::move(b.cookies);
    out.reply = std::move(plan);
    return out;
  }

  void on_message(const rapidjson::Value& m, const transport::http_request& req,
                  const std::string& token, batch& b) {
    const std::string channel = string_member(m, "channel");
    const message_id id = read_id(m);
    if (channel == "/meta/handshake") {
      on_handshake(id, req, token, b);
      return;
    }
    if (channel.empty()) {
      b.replies.push_back(
          build_reply({}, "", id, nullptr, "400::Channel name not specified", advice_kind::none));
      return;
    }
    const std::string client_id = string_member(m, "clientId");
    auto it = clients.find(client_id);
    if (it == clients.end()) {
      b.replies.push_back(build_unknown_client(channel, id));
      b.cookies.push_back(affinity_cookie());
      return;
    }
    client_ptr c = it->second;
    // The load balancer's cookies come back byte for byte, or the request reaches a server
    // that does not know the client.
    auto t = cookie_value(req.headers, "t");
    auto stream = cookie_value(req.headers, "force-stream");
    if ((t && *t != browsers[c->browser]) || (stream && *stream != force_stream)) {
      b.replies.push_back(build_unknown_client(channel, id));
      b.cookies.push_back(affinity_cookie());
      return;
    }
    auto browser = cookie_value(req.headers, "BAYEUX_BROWSER");
    if (!browser || *browser != c->browser) {
      b.replies.push_back(
          build_reply(c->id, channel, id, nullptr,
                      "400::Client {" + c->id +
                          "} has established a session, but no BAYEUX_BROWSER cookie present",
                      advice_kind::none));
      return;
    }
    host.cancel_expiry(c->id);
    auto user = token.empty() ? std::nullopt : check(token);
    if (!user) {
      b.replies.push_back(build_reply(c->id, channel, id, nullptr, "401::Authentication invalid",
                                      advice_kind::stop));
      if (!c->held) arm_expiry(c);
      return;
    }
    if (*user != c->user_id ||
        (channel == "/meta/connect" && take(fault_kind::session_user_mismatch))) {
      b.replies.push_back(
          build_reply(c->id, channel, id, nullptr,
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
      b.replies.push_back(build_reply(c->id, "/meta/unsubscribe", id, &sub, {}, advice_kind::none));
    } else if (channel == "/meta/disconnect") {
      if (take(fault_kind::unanswered_disconnect)) {
        b.unanswered_disconnect = true;
      } else {
        b.replies.push_back(build_disconnect_reply(c->id, id));
      }
      flush_held(c);
      if (b.connect_client == c) b.connect_client.reset();
      erase_client(c);
      return;
    } else if (channel.rfind("/meta/", 0) == 0) {
      b.replies.push_back(
          build_reply(c->id, channel, id, nullptr, "404::Unknown channel", advice_kind::none));
    } else {
      b.replies.push_back(
          build_reply(c->id, channel, id, nullptr, "403::Restricted channel", advice_kind::none));
    }
    if (!c->held && b.connect_client != c) arm_expiry(c);
  }

  void on_handshake(const message_id& id, const transport::http_request& req,
                    const std::string& token, batch& b) {
    if (take(fault_kind::too_busy)) {
      b.replies.push_back(build_handshake_denied(id, too_busy_text));
      return;
    }
    if (take(fault_kind::connection_limit)) {
      b.replies.push_back(build_handshake_denied(id, connection_limit_text));
      return;
    }
    if (token.empty()) {
      b.replies.push_back(build_handshake_denied(id, "401::Request requires authentication"));
      return;
    }
    auto user = check(token);
    if (!user) {
      b.replies.push_back(build_handshake_denied(id, "401::Authentication invalid"));
      return;
    }
    if (clients.size() >= settings.concurrent_client_limit) {
      b.replies.push_back(
          build_handshake_denied(id, "403::Organization concurrent user limit exceeded"));
      return;
    }
    auto c = std::make_shared<client>();
    do {
      const std::size_t length =
          26 + static_cast<std::size_t>(auth::random_text(1, "0123")[0] - '0');
      c->id = auth::random_text(length, base36);
    } while (clients.count(c->id) != 0);
    c->user_id = *user;
    c->endpoint_tenths = endpoint_version(req.target).value_or(0);
    // One browser (one cookie jar) may hold several clients: a handshake that brings a
    // BAYEUX_BROWSER cookie the server issued keeps it, as CometD does.
    auto browser = cookie_value(req.headers, "BAYEUX_BROWSER");
    if (browser && browsers.count(*browser) != 0) {
      c->browser = *browser;
    } else {
      c->browser = auth::random_text(28, base36);
      browsers[c->browser] = cookie_token();
      b.cookies.push_back("BAYEUX_BROWSER=" + c->browser + "; Path=/cometd/; HttpOnly");
    }
    clients[c->id] = c;
    ++handshakes;
    b.cookies.push_back("t=" + browsers[c->browser] + "; Path=/cometd/; HttpOnly" +
                        std::string(settings.secure_cookies ? "; Secure" : ""));
    b.cookies.push_back("force-stream=" + force_stream + "; Path=/; SameSite=None" +
                        std::string(settings.secure_cookies ? "; Secure" : ""));
    b.cookies.push_back(affinity_cookie());
    b.replies.push_back(build_handshake(id, c->id));
    arm_expiry(c);
  }

  void on_connect(const rapidjson::Value& m, const client_ptr& c, const message_id& id, batch& b) {
    c->last_connect = clk.now();
    if (take(fault_kind::too_busy)) {
      b.replies.push_back(build_reply(c->id, "/meta/connect", id, nullptr, too_busy_error,
                                      advice_kind::stop, too_busy_text));
      arm_expiry(c);
      return;
    }
    if (take(fault_kind::unknown_client_final)) {
      if (c->held) flush_held(c);
      erase_client(c);
      b.replies.push_back(build_unknown_client("/meta/connect", id, "none", c->id));
      return;
    }
    if (take(fault_kind::unknown_client_page)) {
      if (c->held) flush_held(c);
      erase_client(c);
      b.replies.push_back(
          R"({"error":"403::Unknown client","successful":false,)"
          R"("advice":{"interval":0,"reconnect":"handshake"}})");
      return;
    }
    const std::string type = string_member(m, "connectionType");
    if (m.HasMember("connectionType") && type != "long-polling") {
      b.replies.push_back(build_reply(c->id, "/meta/connect", id, nullptr,
                                      "400::Invalid connection type {" + type + "}",
                                      advice_kind::none));
      arm_expiry(c);
      return;
    }
    if (daily_limit_reached()) {
      b.replies.push_back(
          build_reply(c->id, "/meta/connect", id, nullptr, daily_limit_text, advice_kind::none));
      arm_expiry(c);
      return;
    }
    if (c->held) {
      flush_held(c);  // a newer connect replaces the held one
    }
    if (b.connect_client == c) {
      // Two connects in one POST: answer the first at once.
      b.replies.push_back(
          build_reply(c->id, "/meta/connect", b.connect_id, nullptr, {}, advice_kind::none));
    }
    b.connect_client = c;
    b.connect_id = id;
    b.connect_advice = !c->connected_once;
    b.hold = false;
    if (!c->connected_once) {
      c->connected_once = true;
      return;
    }
    if (take(fault_kind::multiple_clients)) {
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
    if (!immediate && browser_holds_another(*c)) {
      // One long poll per browser: another client of this browser already waits, so this
      // connect is answered at once and told to space its polls.
      b.connect_multiple_clients = true;
      return;
    }
    b.hold = !immediate;
  }

  static std::vector<std::pair<std::string, std::string>> parse_filters(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> filters;
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
      filters.emplace_back(percent_decode_lenient(pair.substr(0, eq)), std::move(value));
    }
    return filters;
  }

  void on_subscribe(const rapidjson::Value& m, const client_ptr& c, const message_id& id,
                    batch& b) {
    std::string sub = string_member(m, "subscription");
    auto fail = [&](const std::string& error, bool with_subscription = true) {
      b.replies.push_back(build_reply(c->id, "/meta/subscribe", id,
                                      with_subscription ? &sub : nullptr, error,
                                      advice_kind::none));
    };
    if (sub.empty()) {
      fail("400::Channel name not specified", false);
      return;
    }
    if (sub.front() != '/') {
      fail("400::Channel subscriptions must start with a leading '/'");
      return;
    }
    if (take(fault_kind::too_busy)) {
      b.replies.push_back(build_reply(c->id, "/meta/subscribe", id, &sub, too_busy_error,
                                      advice_kind::stop, too_busy_text));
      return;
    }
    if (take(fault_kind::bare_subscribe_failure)) {
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
    if (q != std::string::npos) s.filters = parse_filters(std::string_view(sub).substr(q + 1));
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
        (replay >= 0 && take(fault_kind::invalid_replay_id))) {
      fail("400::The replayId {" + std::to_string(replay) +
           "} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 "
           "to replay only new events.");
      return;
    }
    bus.visit_after(s.base, replay, [&](const stored_event& e) {
      if (is_for_user(e, c->user_id) && filter_matches(s, e.data)) {
        c->queue.push_back(event_message(sub, e, c->endpoint_tenths));
      }
    });
    c->subscriptions[sub] = std::move(s);
    b.replies.push_back(build_reply(c->id, "/meta/subscribe", id, &sub, {}, advice_kind::none));
    if (!c->queue.empty()) schedule_flush(c);
  }

  /// True when another client of `c`'s browser has a held connect.
  bool browser_holds_another(const client& c) const {
    for (const auto& [id, other] : clients) {
      if (other.get() != &c && other->browser == c.browser && other->held) return true;
    }
    return false;
  }

  client_ptr find(const std::string& client_id) const {
    auto it = clients.find(client_id);
    return it == clients.end() ? nullptr : it->second;
  }
};

cometd_session::cometd_session(cometd_settings settings, const clock& clk, event_bus& bus,
                               token_check check, session_host& host)
    : impl_(std::make_unique<impl>(settings, clk, bus, std::move(check), host)) {}

cometd_session::~cometd_session() = default;

post_outcome cometd_session::on_post(const transport::http_request& request,
                                     const rapidjson::Value& messages) {
  return impl_->on_post(request, messages);
}

void cometd_session::flush(const std::string& client_id) {
  if (auto c = impl_->find(client_id)) impl_->flush_held(c);
}

void cometd_session::abandon_held(const std::string& client_id) {
  auto c = impl_->find(client_id);
  if (!c || !c->held) return;
  c->held.reset();
  impl_->arm_expiry(c);
}

void cometd_session::expire(const std::string& client_id) {
  auto c = impl_->find(client_id);
  if (c && !c->held) impl_->erase_client(c);
}

void cometd_session::late_reply_written(const std::string& client_id) {
  auto c = impl_->find(client_id);
  if (c && !c->held) impl_->arm_expiry(c);
}

void cometd_session::on_event(const stored_event& event) {
  impl_->on_event(event);
}

void cometd_session::forget_all_clients() {
  auto clients = std::move(impl_->clients);
  impl_->clients.clear();
  for (auto& [id, c] : clients) {
    if (c->held) {
      auto held = std::move(*c->held);
      c->held.reset();
      reply_plan plan;
      plan.what = reply_plan::action::respond;
      plan.client_id = id;
      auto parts = std::move(held.prefix);
      parts.push_back(build_unknown_client("/meta/connect", held.id));
      held.cookies.push_back(impl_->affinity_cookie());
      plan.response = bayeux_http(parts, held.cookies);
      impl_->host.answer_held(id, std::move(plan));
    }
    impl_->host.forgotten(id);
  }
}

void cometd_session::rotate_affinity_cookie() {
  impl_->affinity = new_affinity();
}

void cometd_session::disconnect_all_clients() {
  std::vector<client_ptr> all;
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

void cometd_session::inject(fault_kind kind, std::size_t count) {
  if (!applies_to(kind, fault_target::messages))
    throw std::invalid_argument("this fault kind does not apply to Bayeux messages");
  impl_->faults[kind] = count;
}

void cometd_session::spoil_next_event_replies(fault f, std::size_t count) {
  if (!applies_to(f.kind, fault_target::event_replies))
    throw std::invalid_argument("this fault kind does not apply to event replies");
  impl_->armed_reply_fault = std::move(f);
  impl_->reply_fault_count = count;
}

std::size_t cometd_session::pending_reply_faults() const noexcept {
  return impl_->reply_fault_count;
}

std::uint64_t cometd_session::spoiled_events() const noexcept {
  return impl_->spoiled;
}

std::size_t cometd_session::client_count() const noexcept {
  return impl_->clients.size();
}

std::uint64_t cometd_session::handshake_count() const noexcept { return impl_->handshakes; }

std::size_t cometd_session::active_clients(std::chrono::milliseconds within) const {
  const auto since = impl_->clk.now() - within;
  std::size_t n = 0;
  for (const auto& [id, c] : impl_->clients)
    if (c->held || (c->last_connect && *c->last_connect >= since)) ++n;
  return n;
}

std::size_t cometd_session::count_subscribers(const std::string& channel,
                                              const std::string& user_id) const {
  return impl_->count_subscribers(channel, user_id);
}

std::vector<std::string> cometd_session::online_users(const std::string& channel) const {
  std::set<std::string> users;
  for (const auto& [id, c] : impl_->clients) {
    for (const auto& [name, sub] : c->subscriptions) {
      if (sub.base == channel) users.insert(c->user_id);
    }
  }
  return {users.begin(), users.end()};
}

void cometd_session::set_daily_event_limit(std::uint64_t limit, bool reset) {
  impl_->settings.daily_event_limit = limit;
  if (reset || limit == 0) impl_->deliveries.clear();
}

std::uint64_t cometd_session::deliveries_today() {
  impl_->purge_deliveries();
  return impl_->deliveries.size();
}

std::string cometd_session::affinity_cookie() const {
  return impl_->affinity_cookie();
}

void cometd_session::clear() {
  for (auto& [id, c] : impl_->clients) impl_->host.forgotten(id);
  impl_->clients.clear();
}

}  // namespace sfstream::emulator::cometd
