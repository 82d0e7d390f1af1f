#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>
#include <string>

#include "bayeux/channel.hpp"
#include "script.hpp"

using namespace sfstream;
using namespace sfstream::bayeux;
using namespace sfstream::bayeux::test;

namespace {

std::int64_t replay_in(const message& subscribe_request) {
  // ext is {"replay":{"<key>":N}}; read N back with the reply parser.
  auto r = parse_reply(R"([{"data":{"event":{"replayId":)" +
                       subscribe_request.ext.substr(
                           subscribe_request.ext.rfind(':') + 1,
                           subscribe_request.ext.find('}') - subscribe_request.ext.rfind(':') - 1) +
                       R"(}},"channel":"/u/x"}])");
  REQUIRE(r.has_value());
  REQUIRE(r.value()[0].replay_id.has_value());
  return *r.value()[0].replay_id;
}

// Takes the next control send (a subscribe batch) and answers every message successfully;
// returns channel → replay id sent.
std::map<std::string, std::int64_t> answer_subscribe_batch(script& t) {
  auto sd = t.take_send(lane::control);
  std::map<std::string, std::int64_t> sent;
  std::string body = "[";
  for (const auto& m : messages_of(sd.body)) {
    REQUIRE(m.channel == "/meta/subscribe");
    sent[m.subscription] = replay_in(m);
    if (body.size() > 1) body += ",";
    body += subscribe_reply(m, true);
  }
  t.reply(lane::control, body + "]");
  return sent;
}

std::string handshake_id(script& t) {
  t.drain();
  // A re-handshake with no progress since the last handshake comes after a backoff.
  if (!t.outstanding[0] && t.timer) t.fire_timer();
  auto hs = t.take_send(lane::control);
  auto m = messages_of(hs.body);
  REQUIRE(m.size() == 1);
  REQUIRE(m[0].channel == "/meta/handshake");
  t.outstanding[0] = hs;
  return *m[0].id;
}

// Index of the first pending action of type T, or npos.
template <class T>
std::size_t index_of(script& t) {
  t.drain();
  for (std::size_t i = 0; i < t.pending.size(); ++i) {
    if (std::holds_alternative<T>(t.pending[i])) return i;
  }
  return std::string::npos;
}

std::size_t index_of_send(script& t, lane l) {
  t.drain();
  for (std::size_t i = 0; i < t.pending.size(); ++i) {
    if (auto* s = std::get_if<send>(&t.pending[i]); s && s->lane == l) return i;
  }
  return std::string::npos;
}

}  // namespace

TEST_CASE(
    "handshake, then the first connect (advice.timeout 0) on the long-poll lane and every "
    "subscription on the control lane, in as few POST bodies as stay under 32,768 bytes") {
  script t;
  const int n = 600;
  for (int i = 0; i < n; ++i) {
    REQUIRE_FALSE(t.s.subscribe(
        "/event/A_rather_long_platform_event_name_number_" + std::to_string(i) + "__e", -1, t.now));
  }
  t.s.start(t.now);
  t.take<authenticate>();
  t.authenticated();
  CHECK(t.s.state() == session_state::handshaking);
  auto hs = t.take_send(lane::control);
  CHECK(hs.deadline == 30s);
  CHECK(
      hs.body ==
      R"([{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}])");
  t.reply(lane::control, handshake_ok("1"));
  CHECK(t.s.state() == session_state::connected);
  CHECK(t.s.client_id() == "cl1");

  // The first connect comes before the subscriptions and asks for an immediate answer.
  CHECK(index_of_send(t, lane::long_poll) < index_of_send(t, lane::control));
  auto c = t.take_send(lane::long_poll);
  CHECK(c.body.find(R"("advice":{"timeout":0})") != std::string::npos);
  CHECK(c.deadline == 30s);

  std::vector<std::string> bodies;
  std::map<std::string, std::int64_t> all;
  for (int guard = 0; guard < 100 && t.outstanding[0]; ++guard) {
    auto sd = t.take_send(lane::control);
    bodies.push_back(sd.body);
    t.outstanding[0] = sd;
    t.pending.push_front(sd);
    auto sent = answer_subscribe_batch(t);
    all.insert(sent.begin(), sent.end());
  }
  CHECK(all.size() == n);
  CHECK(t.count<subscribed>() == n);
  REQUIRE(bodies.size() >= 2);
  std::size_t total = 0;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    CHECK(bodies[i].size() <= 32768);
    total += bodies[i].size();
    if (i + 1 < bodies.size()) {
      // Full: the next batch's first message would not have fitted.
      auto next = messages_of(bodies[i + 1]);
      CHECK(bodies[i].size() + 1 + next[0].json.size() > 32768);
    }
  }
  CHECK(bodies.size() == (total + 32767) / 32768);
}

TEST_CASE("advice is read from every reply, a successful handshake resets it") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/topic/A", -1, t.now));
  t.connect();
  CHECK(t.s.advice().timeout == 110000);
  CHECK(t.s.advice().interval == 0);
  CHECK(t.s.advice().reconnect == reconnect_advice::retry);
  // The next connect is held by the server: its deadline is advice.timeout + slack.
  auto c = t.take_send(lane::long_poll);
  CHECK(c.deadline == 125s);
  const auto id = messages_of(c.body)[0].id.value();
  t.outstanding[1] = c;
  t.reply(lane::long_poll,
          connect_error(id, "403::Unknown client", R"({"interval":0,"reconnect":"handshake"})"));
  // Read from the failed connect...
  CHECK(t.s.advice().reconnect == reconnect_advice::handshake);
  CHECK(t.s.advice().timeout == 110000);  // partial advice keeps the other fields
  auto hid = handshake_id(t);
  t.reply(lane::control, handshake_ok(hid, "cl2"));
  // ...and reset by the successful handshake, which carries none.
  CHECK(t.s.advice().empty());
  CHECK(t.s.state() == session_state::connected);
}

TEST_CASE(
    "when a connect reply carries events, the next connect is queued before any deliver "
    "action") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/topic/InvoiceStatementUpdates", -1, t.now));
  t.connect();
  t.clear();
  const auto id = t.connect_id();
  const auto e1 = event_message("/topic/InvoiceStatementUpdates", 13);
  const auto e2 = event_message("/topic/InvoiceStatementUpdates", 14);
  t.reply(lane::long_poll, "[" + e1 + "," + e2 + "," + connect_ok_message(id) + "]");
  const auto next = index_of_send(t, lane::long_poll);
  const auto first_delivery = index_of<deliver>(t);
  REQUIRE(next != std::string::npos);
  REQUIRE(first_delivery != std::string::npos);
  CHECK(next < first_delivery);
  auto d1 = t.take<deliver>();
  auto d2 = t.take<deliver>();
  CHECK(d1.event.json() == e1);
  CHECK(d1.event.replay_id == 13);
  CHECK(d1.event.replay_key == "/topic/InvoiceStatementUpdates");
  CHECK(d2.event.replay_id == 14);
  CHECK(t.s.counters().events == 2);
}

TEST_CASE("a connect reply whose id is not the outstanding one is ignored") {
  script t;
  t.connect();
  t.clear();
  const auto id = t.connect_id();
  t.reply(lane::long_poll,
          "[" +
              connect_ok_message(id + "0", "cl1", R"({"interval":7000,"reconnect":"handshake"})") +
              "]");
  // Neither its advice nor its success is taken: no immediate connect, no handshake.
  CHECK(t.s.advice().interval == 0);
  CHECK(t.s.advice().reconnect == reconnect_advice::retry);
  CHECK_FALSE(t.outstanding[1].has_value());
  CHECK_FALSE(t.outstanding[0].has_value());
  CHECK(t.count<diagnostic>() >= 1);
  // The lane is retried after a backoff, never left idle.
  REQUIRE(t.timer.has_value());
  t.fire_timer();
  CHECK(t.outstanding[1].has_value());
}

TEST_CASE(
    "403::Unknown client (or advice reconnect=handshake) re-handshakes without "
    "re-authenticating, then re-subscribes every channel with its last committed replay id, "
    "never the starting one") {
  for (const bool by_advice : {false, true}) {
    CAPTURE(by_advice);
    script t;
    REQUIRE_FALSE(t.s.subscribe("/topic/A?Name='x'", 5, t.now));
    REQUIRE_FALSE(t.s.subscribe("/event/B__e", -2, t.now));
    REQUIRE_FALSE(t.s.subscribe("/data/ChangeEvents", -1, t.now));
    t.connect();
    t.clear();
    auto id = t.connect_id();
    t.reply(lane::long_poll, "[" + event_message("/topic/A", 17) + "," +
                                 event_message("/event/B__e", 99) + "," + connect_ok_message(id) +
                                 "]");
    t.s.commit("/topic/A", 17);
    t.s.commit("/event/B__e", 99);
    CHECK(t.s.committed("/topic/A") == 17);
    t.clear();
    id = t.connect_id();
    if (by_advice) {
      t.reply(lane::long_poll, connect_error(id, "500::Some server hiccup",
                                             R"({"interval":0,"reconnect":"handshake"})"));
    } else {
      t.reply(lane::long_poll,
              connect_error(id, "403::Unknown client", R"({"interval":0,"reconnect":"none"})"));
    }
    CHECK(t.count<authenticate>() == 0);
    CHECK_FALSE(t.auth_pending);
    auto hid = handshake_id(t);
    t.reply(lane::control, handshake_ok(hid, "cl2"));
    auto sent = answer_subscribe_batch(t);
    CHECK(sent.size() == 3);
    CHECK(sent["/topic/A?Name='x'"] == 17);
    CHECK(sent["/event/B__e"] == 99);
    CHECK(sent["/data/ChangeEvents"] == -1);
    CHECK(t.s.counters().rehandshakes_by_cause.at(by_advice ? "advice" : "unknown_client") == 1);
    CHECK(t.s.counters().handshakes == 2);
  }
}

TEST_CASE(
    "a 401 on any message, or a handshake denied for an authentication reason, asks for "
    "authentication with force-refresh and then re-handshakes, a second consecutive "
    "authentication failure ends the session with an authentication error") {
  SUBCASE("401 on connect, then handshake denied for authentication") {
    script t;
    t.connect();
    t.clear();
    auto id = t.connect_id();
    t.reply(lane::long_poll, connect_error(id, "401::Authentication invalid",
                                           R"({"reconnect":"none","interval":0})"));
    CHECK(t.take<authenticate>().force_refresh == true);
    CHECK(t.s.state() == session_state::authenticating);
    t.authenticated();
    auto hid = handshake_id(t);
    t.reply(lane::control, handshake_denied(hid, "401::Authentication invalid"));
    auto f = t.take<finished>();
    CHECK(f.error.code == errc::auth_rejected);
    CHECK(t.s.state() == session_state::closed);
  }
  SUBCASE("handshake denied for authentication, then success") {
    script t;
    t.s.start(t.now);
    t.take<authenticate>();
    t.authenticated();
    auto hid = handshake_id(t);
    t.reply(lane::control, handshake_denied(hid, "401::Authentication invalid"));
    CHECK(t.take<authenticate>().force_refresh == true);
    t.authenticated();
    hid = handshake_id(t);
    t.reply(lane::control, handshake_ok(hid));
    CHECK(t.s.state() == session_state::connected);
    CHECK_FALSE(t.finished_with.has_value());
  }
  SUBCASE("HTTP 401 on a subscribe, and the runtime cannot authenticate") {
    script t;
    t.connect();
    t.clear();
    REQUIRE_FALSE(t.s.subscribe("/topic/A", -1, t.now));
    t.take_send(lane::control);
    t.reply(lane::control, "", 401);
    CHECK(t.take<authenticate>().force_refresh == true);
    CHECK(t.count<bayeux::abort>() == 1);  // the long poll of the refused token is dropped
    t.auth_pending = false;
    t.s.on_authentication_failed(
        error_info{make_error_code(errc::auth_invalid_login), {"INVALID_LOGIN", "", ""}}, t.now);
    t.drain();
    REQUIRE(t.finished_with.has_value());
    CHECK(t.finished_with->code == errc::auth_invalid_login);
  }
}

TEST_CASE(
    "advice reconnect=none without an authentication cause ends the session with a clear "
    "error") {
  SUBCASE("on connect") {
    script t;
    t.connect();
    t.clear();
    auto id = t.connect_id();
    t.reply(lane::long_poll, connect_error(id, "400::Authenticated user id does not match",
                                           R"({"reconnect":"none","interval":0})"));
    auto f = t.take<finished>();
    CHECK(f.error.code == errc::reconnect_none);
    CHECK(f.error.diag.server_text == "400::Authenticated user id does not match");
    CHECK(f.error.diag.server_code == "400");
  }
  SUBCASE("on handshake") {
    script t;
    t.s.start(t.now);
    t.take<authenticate>();
    t.authenticated();
    auto hid = handshake_id(t);
    t.reply(lane::control, handshake_denied(hid, "403::Restricted"));
    auto f = t.take<finished>();
    CHECK(f.error.code == errc::handshake_denied);
    CHECK(f.error.diag.server_text == "403::Restricted");
  }
}

TEST_CASE(
    "a subscription rejected for one channel (does not exist, no access, unknown channel) "
    "yields subscription_failed for that channel while the others keep streaming") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/topic/Good", -1, t.now));
  REQUIRE_FALSE(t.s.subscribe("/topic/Nope", -1, t.now));
  REQUIRE_FALSE(t.s.subscribe("/u/Missing", -1, t.now));
  REQUIRE_FALSE(t.s.subscribe("/data/ChangeEvents", -1, t.now));
  t.s.start(t.now);
  t.take<authenticate>();
  t.authenticated();
  t.reply(lane::control, handshake_ok(handshake_id(t)));
  auto sd = t.take_send(lane::control);
  std::string body = "[";
  for (const auto& m : messages_of(sd.body)) {
    if (body.size() > 1) body += ",";
    if (m.subscription == "/topic/Nope") {
      body += subscribe_reply(m, false,
                              "400::The channel you requested to subscribe to does not exist "
                              "{/topic/Nope}");
    } else if (m.subscription == "/u/Missing") {
      // Salesforce omits `subscription` on some failures.
      body += R"({"clientId":"cl1","channel":"/meta/subscribe","id":")" + *m.id +
              R"(","error":"404::Unknown channel","successful":false})";
    } else if (m.subscription == "/data/ChangeEvents") {
      body += subscribe_reply(
          m, false, "403::User not allowed to subscribe CDC without View All Data permissions");
    } else {
      body += subscribe_reply(m, true);
    }
  }
  t.reply(lane::control, body + "]");
  std::map<std::string, error_info> failed;
  while (auto f = t.find<subscription_failed>()) failed[f->channel] = f->error;
  CHECK(failed.size() == 3);
  CHECK(failed["/topic/Nope"].code == errc::subscription_rejected);
  CHECK(failed["/u/Missing"].diag.server_text == "404::Unknown channel");
  CHECK(failed["/data/ChangeEvents"].code == errc::subscription_rejected);
  CHECK(t.take<subscribed>().channel == "/topic/Good");
  CHECK(t.s.channels() == std::vector<std::string>{"/topic/Good"});
  CHECK(t.s.is_subscribed("/topic/Good"));
  // The good channel keeps streaming.
  auto c = t.take_send(lane::long_poll);
  t.outstanding[1] = c;
  t.reply(lane::long_poll,
          "[" + event_message("/topic/Good", 1) + "," +
              connect_ok_message(*messages_of(c.body)[0].id, "cl1", first_connect_advice()) + "]");
  CHECK(t.take<deliver>().event.channel == "/topic/Good");
  CHECK(t.s.state() == session_state::connected);
  CHECK(t.outstanding[1].has_value());
}

TEST_CASE(
    "400::The replayId {N} you provided was invalid applies the configured replay policy - "
    "fall back to -2, fall back to -1, or fail - and a fallback emits a gap notice "
    "(channel, the id refused, policy taken)") {
  const std::string refused =
      "400::The replayId {4817264} you provided was invalid.  Please provide a valid ID, -2 to "
      "replay all events, or -1 to replay only new events.";
  for (auto policy : {replay_policy::earliest, replay_policy::tip, replay_policy::fail}) {
    CAPTURE(static_cast<int>(policy));
    auto config = script::default_config();
    config.policy = policy;
    script t{config};
    REQUIRE_FALSE(t.s.subscribe("/event/PlatformEvent__e", 4817264, t.now));
    REQUIRE_FALSE(t.s.subscribe("/topic/Other", -1, t.now, replay_policy::fail));
    t.s.start(t.now);
    t.take<authenticate>();
    t.authenticated();
    t.reply(lane::control, handshake_ok(handshake_id(t)));
    auto sd = t.take_send(lane::control);
    std::string body = "[";
    for (const auto& m : messages_of(sd.body)) {
      if (body.size() > 1) body += ",";
      body += m.subscription == "/event/PlatformEvent__e" ? subscribe_reply(m, false, refused)
                                                          : subscribe_reply(m, true);
    }
    t.reply(lane::control, body + "]");
    if (policy == replay_policy::fail) {
      auto g = t.take<gap>();
      CHECK(g.channel == "/event/PlatformEvent__e");
      CHECK(g.taken == replay_policy::fail);
      auto f = t.take<subscription_failed>();
      CHECK(f.channel == "/event/PlatformEvent__e");
      CHECK(f.error.code == errc::replay_gap);
      CHECK_FALSE(t.outstanding[0].has_value());
      continue;
    }
    auto g = t.take<gap>();
    CHECK(g.channel == "/event/PlatformEvent__e");
    CHECK(g.last_replay_id == 4817264);
    CHECK(g.cause == gap_cause::refused);
    CHECK(g.taken == policy);
    const std::int64_t expected = policy == replay_policy::tip ? -1 : -2;
    CHECK(g.resumed_from == expected);
    auto sent = answer_subscribe_batch(t);
    CHECK(sent.size() == 1);
    CHECK(sent["/event/PlatformEvent__e"] == expected);
    auto s = t.take<subscribed>();
    while (s.channel != "/event/PlatformEvent__e") s = t.take<subscribed>();
    CHECK(s.replay_from == expected);
    CHECK(t.s.counters().gaps == 1);
  }
}

TEST_CASE(
    "limit errors (concurrent clients, daily events, 503 too busy, connection limit) back "
    "off long and capped, with a diagnostic naming the limit, never a tight loop") {
  SUBCASE("handshake denied for limits") {
    const std::pair<std::string, std::string> reasons[] = {
        {"403::Organization concurrent user limit exceeded", "concurrent clients"},
        {"503::Server is too busy.  Please try your request again later.", "server too busy"},
        {"403::To protect all customers from excessive use and Denial of Service attacks, we "
         "limit the number of simultaneous connections per server. Your request has been denied "
         "because this limit has been exceeded. Please try your request again later.",
         "connections per server"},
        // As Salesforce's captured replies have it: two spaces after each sentence end.
        {"403::To protect all customers from excessive use and Denial of Service attacks, we "
         "limit the number of simultaneous connections per server.  Your request has been denied "
         "because this limit has been exceeded.  Please try your request again later.",
         "connections per server"}};
    for (const auto& [reason, name] : reasons) {
      CAPTURE(reason);
      script t;
      t.s.start(t.now);
      t.take<authenticate>();
      t.authenticated();
      milliseconds previous{0};
      for (int i = 0; i < 12; ++i) {
        t.reply(lane::control, handshake_denied(handshake_id(t), reason));
        CHECK_FALSE(t.finished_with.has_value());
        auto d = t.take<diagnostic>();
        CHECK(d.level == diagnostic_level::error);
        CHECK(d.text.find(name) != std::string::npos);
        REQUIRE(t.timer.has_value());
        CHECK(*t.timer >= 30s);    // half of limit_backoff_initial at least
        CHECK(*t.timer <= 30min);  // capped
        if (i > 0 && i < 4) CHECK(*t.timer > previous / 2);
        previous = *t.timer;
        CHECK(t.s.state() == session_state::backing_off);
        t.fire_timer();
      }
      CHECK(previous >= 15min);  // grown to the cap's range
    }
  }
  SUBCASE("daily events limit on connect") {
    script t;
    t.connect();
    t.clear();
    auto id = t.connect_id();
    t.reply(lane::long_poll,
            connect_error(id, "403::Organization total events daily limit exceeded", "{}"));
    auto d = t.take<diagnostic>();
    CHECK(d.text.find("daily events") != std::string::npos);
    REQUIRE(t.timer.has_value());
    CHECK(*t.timer >= 30s);
    CHECK_FALSE(t.outstanding[1].has_value());
    CHECK(t.s.counters().reconnects_by_cause.at("limit") == 1);
    // After the long wait the client has expired on the server: the next attempt handshakes.
    t.fire_timer();
    CHECK(t.outstanding[0].has_value());
    CHECK(messages_of(t.outstanding[0]->body)[0].channel == "/meta/handshake");
  }
}

TEST_CASE(
    "connects that never left (resolve, connect, proxy or TLS failures) back off exponentially "
    "with jitter (seedable), reset on success, and re-handshake when the server must have "
    "forgotten the client (40 s since the last reply)") {
  auto run = [](std::uint64_t seed) {
    auto config = script::default_config();
    config.jitter_seed = seed;
    script t{config};
    t.connect();
    t.clear();
    std::vector<milliseconds> waits;
    t.connect_id();
    t.fail(lane::long_poll, errc::connection_failed);
    waits.push_back(*t.timer);
    t.fire_timer();
    REQUIRE(t.outstanding[1].has_value());  // still within 40 s: a connect, not a handshake
    t.take_send(lane::long_poll);
    t.fail(lane::long_poll, errc::proxy_error);
    waits.push_back(*t.timer);
    t.fire_timer();
    REQUIRE(t.outstanding[1].has_value());
    t.take_send(lane::long_poll);
    t.fail(lane::long_poll, errc::tls_error);
    waits.push_back(*t.timer);
    CHECK(t.s.counters().reconnects_by_cause.at("transport") == 3);
    CHECK(t.s.counters().rehandshakes_by_cause.count("lost_reply") == 0);
    return std::make_pair(std::move(t), waits);
  };
  auto [t, waits] = run(7);
  CHECK(waits[0] >= 500ms);
  CHECK(waits[0] <= 1000ms);
  CHECK(waits[1] >= 1000ms);
  CHECK(waits[1] <= 2000ms);
  CHECK(waits[2] >= 2000ms);
  CHECK(waits[2] <= 4000ms);
  CHECK(run(7).second == waits);  // same seed, same delays
  bool differs = false;
  for (std::uint64_t seed = 1; seed < 6 && !differs; ++seed) differs = run(seed).second != waits;
  CHECK(differs);

  // Success resets the backoff.
  t.fire_timer();
  auto c = t.take_send(lane::long_poll);
  t.reply(lane::long_poll, "[" + connect_ok_message(*messages_of(c.body)[0].id) + "]");
  t.take_send(lane::long_poll);
  t.fail(lane::long_poll);
  CHECK(*t.timer <= 1000ms);

  // Failures until 40 s have passed since the last reply: the next attempt is a handshake.
  for (int i = 0; i < 20 && !t.outstanding[0]; ++i) {
    t.fire_timer();
    if (t.outstanding[1]) {
      t.take_send(lane::long_poll);
      t.fail(lane::long_poll);
    }
  }
  REQUIRE(t.outstanding[0].has_value());
  CHECK(messages_of(t.outstanding[0]->body)[0].channel == "/meta/handshake");
  CHECK(t.s.counters().rehandshakes_by_cause.at("expired") == 1);
}

TEST_CASE("an unsolicited /meta/disconnect re-handshakes and re-subscribes") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/event/E__e", -1, t.now));
  t.connect();
  t.clear();
  auto id = t.connect_id();
  t.reply(lane::long_poll,
          R"([{"channel":"/meta/disconnect","clientId":"cl1","successful":true},)" +
              connect_ok_message(id) + "]");
  auto hid = handshake_id(t);
  t.reply(lane::control, handshake_ok(hid, "cl2"));
  auto sent = answer_subscribe_batch(t);
  CHECK(sent.count("/event/E__e") == 1);
  CHECK(t.s.counters().rehandshakes_by_cause.at("disconnect") == 1);
  CHECK(t.s.is_subscribed("/event/E__e"));
}

TEST_CASE(
    "stop sends /meta/disconnect on the control lane with a short deadline and finishes "
    "without waiting forever for a reply Salesforce may never send") {
  SUBCASE("answered") {
    script t;
    t.connect();
    t.clear();
    t.s.stop(t.now);
    t.drain();
    CHECK(t.take<bayeux::abort>().lane == lane::long_poll);
    auto d = t.take_send(lane::control);
    CHECK(d.deadline == 2s);
    CHECK(d.body.find(R"("channel":"/meta/disconnect","clientId":"cl1")") != std::string::npos);
    CHECK(t.s.state() == session_state::disconnecting);
    t.reply(lane::control, R"([{"channel":"/meta/disconnect","clientId":"cl1","id":")" +
                               *messages_of(d.body)[0].id + R"(","successful":true}])");
    REQUIRE(t.finished_with.has_value());
    CHECK_FALSE(t.finished_with->code);
    CHECK(t.s.state() == session_state::closed);
  }
  SUBCASE("never answered") {
    script t;
    t.connect();
    t.s.stop(t.now);
    t.drain();
    REQUIRE(t.timer.has_value());
    CHECK(*t.timer <= 2s);
    t.fire_timer();
    REQUIRE(t.finished_with.has_value());
    CHECK_FALSE(t.finished_with->code);
  }
  SUBCASE("deadline missed") {
    script t;
    t.connect();
    t.s.stop(t.now);
    t.drain();
    t.fail(lane::control, errc::timeout);
    REQUIRE(t.finished_with.has_value());
    CHECK_FALSE(t.finished_with->code);
    CHECK_FALSE(t.s.next_action().has_value());
  }
  SUBCASE("before any handshake") {
    script t;
    t.s.start(t.now);
    t.s.stop(t.now);
    t.drain();
    REQUIRE(t.finished_with.has_value());
    CHECK_FALSE(t.finished_with->code);
  }
}

TEST_CASE(
    "subscribe and unsubscribe while connected are sent at once, while not connected they "
    "are remembered and applied at the next handshake") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/topic/Early", 3, t.now));
  REQUIRE_FALSE(t.s.subscribe("/topic/Dropped", -1, t.now));
  REQUIRE_FALSE(t.s.unsubscribe("/topic/Dropped", t.now));
  CHECK(t.take<unsubscribed>().channel == "/topic/Dropped");
  CHECK(t.count<send>() == 0);
  t.connect();
  CHECK(t.s.channels() == std::vector<std::string>{"/topic/Early"});
  t.clear();
  REQUIRE_FALSE(t.s.subscribe("/topic/Late", -2, t.now));
  auto sd = t.take_send(lane::control);
  auto m = messages_of(sd.body);
  REQUIRE(m.size() == 1);
  CHECK(m[0].subscription == "/topic/Late");
  // While that exchange is out, more control messages queue and go together.
  REQUIRE_FALSE(t.s.unsubscribe("/topic/Early", t.now));
  REQUIRE_FALSE(t.s.subscribe("/topic/Later", -1, t.now));
  t.drain();
  CHECK(t.count<send>() == 0);
  t.reply(lane::control, "[" + subscribe_reply(m[0], true) + "]");
  auto both = t.take_send(lane::control);
  auto bm = messages_of(both.body);
  REQUIRE(bm.size() == 2);
  CHECK(bm[0].channel == "/meta/unsubscribe");
  CHECK(bm[0].subscription == "/topic/Early");
  CHECK(bm[1].subscription == "/topic/Later");
  t.reply(lane::control, R"([{"clientId":"cl1","channel":"/meta/unsubscribe","id":")" + *bm[0].id +
                             R"(","subscription":"/topic/Early","successful":true},)" +
                             subscribe_reply(bm[1], true) + "]");
  CHECK(t.take<unsubscribed>().channel == "/topic/Early");
  CHECK(t.s.is_subscribed("/topic/Later"));
  // Invalid input is refused with a clear error and changes nothing.
  CHECK(t.s.subscribe("/event/NoSuffix", -1, t.now).code == errc::invalid_channel);
  CHECK(t.s.subscribe("/topic/X", -3, t.now).code == errc::invalid_replay_id);
  CHECK(t.s.subscribe("/meta/connect", -1, t.now).code == errc::invalid_channel);
  CHECK(t.s.unsubscribe("/topic/Unknown", t.now).code == errc::invalid_channel);
}

TEST_CASE(
    "pause disconnects and holds no connect, resume re-handshakes and re-subscribes from "
    "committed ids") {
  script t;
  REQUIRE_FALSE(t.s.subscribe("/data/AccountChangeEvent", -1, t.now));
  t.connect();
  t.clear();
  auto id = t.connect_id();
  t.reply(lane::long_poll, "[" + event_message("/data/AccountChangeEvent", 37904280) + "," +
                               connect_ok_message(id) + "]");
  t.clear();
  t.s.pause(t.now);
  t.drain();
  CHECK(t.take<bayeux::abort>().lane == lane::long_poll);
  auto d = t.take_send(lane::control);
  CHECK(d.body.find("/meta/disconnect") != std::string::npos);
  CHECK(t.s.state() == session_state::paused);
  t.reply(lane::control, R"([{"channel":"/meta/disconnect","id":")" + *messages_of(d.body)[0].id +
                             R"(","successful":true}])");
  CHECK_FALSE(t.outstanding[0].has_value());
  CHECK_FALSE(t.outstanding[1].has_value());
  CHECK_FALSE(t.timer.has_value());
  // The handler catches up and commits.
  t.s.commit("/data/AccountChangeEvent", 37904280);
  t.advance(10min);
  t.s.on_timer(t.now);  // a stray timer changes nothing while paused
  t.drain();
  CHECK_FALSE(t.outstanding[1].has_value());
  t.s.resume(t.now);
  auto hid = handshake_id(t);
  t.reply(lane::control, handshake_ok(hid, "cl9"));
  auto sent = answer_subscribe_batch(t);
  CHECK(sent["/data/AccountChangeEvent"] == 37904280);
  CHECK(t.outstanding[1].has_value());
  CHECK(t.s.counters().rehandshakes_by_cause.at("resume") == 1);
}

TEST_CASE(
    "a /meta/connect whose successful reply has been received is re-issued at once "
    "(interval from advice, 0 normally) so the gap between a reply and the next connect "
    "never depends on the handler") {
  script t;
  t.connect();
  // Issued at once after the first reply (interval 0): no timer needed.
  CHECK(t.outstanding[1].has_value());
  CHECK_FALSE(t.timer.has_value());
  t.clear();
  auto id = t.connect_id();
  t.reply(
      lane::long_poll,
      "[" +
          connect_ok_message(
              id, "cl1",
              R"({"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":110000})") +
          "]");
  CHECK(t.s.advice().multiple_clients == true);
  CHECK_FALSE(t.outstanding[1].has_value());
  REQUIRE(t.timer.has_value());
  CHECK(*t.timer == 2000ms);
  t.fire_timer();
  CHECK(t.outstanding[1].has_value());
}

TEST_CASE(
    "when no reply came for client_expiry (40 s) the next attempt is a handshake, not a "
    "connect") {
  script t;
  t.connect();
  t.clear();
  t.connect_id();
  t.advance(45s);
  t.fail(lane::long_poll, errc::connection_closed);
  t.fire_timer();
  REQUIRE(t.outstanding[0].has_value());
  CHECK_FALSE(t.outstanding[1].has_value());
  CHECK(messages_of(t.outstanding[0]->body)[0].channel == "/meta/handshake");
}

TEST_CASE("max_retries bounds consecutive failed attempts with retries_exhausted") {
  auto config = script::default_config();
  config.max_retries = 2;
  script t{config};
  t.s.start(t.now);
  t.authenticated();
  for (int i = 0; i < 3; ++i) {
    t.fail(lane::control);
    if (t.finished_with) break;
    t.fire_timer();
  }
  REQUIRE(t.finished_with.has_value());
  CHECK(t.finished_with->code == errc::retries_exhausted);
}

TEST_CASE("diagnostics and errors never carry the request bodies or credentials") {
  script t;
  t.connect("secretclientid");
  t.clear();
  t.connect_id();
  t.fail(lane::long_poll);
  auto d = t.take<diagnostic>();
  CHECK(d.text.find("secretclientid") == std::string::npos);
}
