// The session's position model, asserted as whole transcripts: every action the session emits,
// one line each, in order. Received ids drive every re-subscribe; committed ids are only what
// a store keeps; re-deliveries are dropped; lost replies re-handshake; unknown positions are
// reported as gaps.
#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <vector>

#include "script.hpp"

using namespace sfstream;
using namespace sfstream::bayeux;
using namespace sfstream::bayeux::test;

namespace {

std::string replay_of(const message& m) {
  // ext is {"replay":{"<key>":N}}.
  const auto colon = m.ext.rfind(':');
  return m.ext.substr(colon + 1, m.ext.find('}') - colon - 1);
}

// One line per action. Waits show no duration (jitter is tested elsewhere) and diagnostics
// only their level, so a transcript states the protocol, not the wording.
std::string render(const action& a) {
  struct visitor {
    std::string operator()(const send& s) const {
      std::string out = std::string("send ") + (s.lane == lane::control ? "control" : "long_poll");
      for (const auto& m : messages_of(s.body)) {
        out += " " + m.channel;
        if (m.channel == "/meta/subscribe") out += " " + m.subscription + "@" + replay_of(m);
        if (m.channel == "/meta/connect" && m.advice && m.advice->timeout == 0) out += "(t=0)";
      }
      return out;
    }
    std::string operator()(const bayeux::abort& a) const {
      return std::string("abort ") + (a.lane == lane::control ? "control" : "long_poll");
    }
    std::string operator()(const wait&) const { return "wait"; }
    std::string operator()(const authenticate& a) const {
      return a.force_refresh ? "authenticate refresh" : "authenticate";
    }
    std::string operator()(const deliver& d) const {
      return "deliver " + d.event.channel + " " +
             (d.event.replay_id ? std::to_string(*d.event.replay_id) : std::string("-"));
    }
    std::string operator()(const subscribed& s) const {
      return "subscribed " + s.channel + "@" + std::to_string(s.replay_from);
    }
    std::string operator()(const subscription_failed& f) const {
      return "subscription_failed " + f.channel + " " + f.error.code.message();
    }
    std::string operator()(const unsubscribed& u) const { return "unsubscribed " + u.channel; }
    std::string operator()(const gap& g) const {
      std::string out = "gap " + g.channel + " " + std::string(to_string(g.cause));
      if (g.last_replay_id) out += " last=" + std::to_string(*g.last_replay_id);
      if (g.cause != gap_cause::resubscribed_at_tip) {
        out += " " + std::string(to_string(g.taken));
        if (g.taken != replay_policy::fail) out += "->" + std::to_string(g.resumed_from);
      }
      return out;
    }
    std::string operator()(const diagnostic& d) const {
      return d.level == diagnostic_level::info      ? "info"
             : d.level == diagnostic_level::warning ? "warning"
                                                    : "error";
    }
    std::string operator()(const finished& f) const {
      return "finished " + (f.error.code ? f.error.code.message() : std::string("ok"));
    }
  };
  return std::visit(visitor{}, a);
}

// A script that records the transcript of everything it drains, and answers the usual
// exchanges in Salesforce's shapes.
struct recorder {
  script t;
  std::vector<std::string> lines;

  explicit recorder(session_config c = script::default_config()) : t(std::move(c)) {}

  // Moves what the session emitted into `lines` (keeping the script's bookkeeping), and
  // returns what was added.
  std::vector<std::string> take() {
    t.drain();
    std::vector<std::string> out;
    for (const auto& a : t.pending) out.push_back(render(a));
    t.pending.clear();
    lines.insert(lines.end(), out.begin(), out.end());
    return out;
  }

  std::string body_of(lane l) {
    t.drain();
    REQUIRE_MESSAGE(t.outstanding[static_cast<int>(l)].has_value(), "nothing outstanding");
    return t.outstanding[static_cast<int>(l)]->body;
  }
  std::string id_of(lane l) { return *messages_of(body_of(l))[0].id; }

  void handshake_ok(const std::string& client) {
    t.reply(lane::control, test::handshake_ok(id_of(lane::control), client));
  }
  void subscribes_ok() {
    std::string body = "[";
    for (const auto& m : messages_of(body_of(lane::control))) {
      if (body.size() > 1) body += ",";
      body += subscribe_reply(m, true);
    }
    t.reply(lane::control, body + "]");
  }
  void subscribes_refused(const std::string& error) {
    std::string body = "[";
    for (const auto& m : messages_of(body_of(lane::control))) {
      if (body.size() > 1) body += ",";
      body += subscribe_reply(m, false, error);
    }
    t.reply(lane::control, body + "]");
  }
  // Answers the outstanding connect, with events before the connect reply.
  void connect_ok(const std::vector<std::string>& events, const std::string& client,
                  const std::string& advice = {}) {
    std::string body = "[";
    for (const auto& e : events) body += e + ",";
    t.reply(lane::long_poll, body + connect_ok_message(id_of(lane::long_poll), client, advice) + "]");
  }
  // start → authenticate → handshake → subscribes → first connect; returns the transcript.
  std::vector<std::string> start(const std::string& client = "cl1") {
    t.s.start(t.now);
    t.take<authenticate>();
    t.authenticated();
    handshake_ok(client);
    subscribes_ok();
    connect_ok({}, client, first_connect_advice());
    return take();
  }
};

using lines = std::vector<std::string>;

std::string ev(const std::string& channel, std::int64_t id) { return event_message(channel, id); }

}  // namespace

TEST_CASE("a re-handshake re-subscribes from the last received ids, not the committed ones") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
  REQUIRE_FALSE(r.t.s.subscribe("/event/E__e", 10, r.t.now));
  CHECK(r.start() == lines{"send control /meta/handshake", "send long_poll /meta/connect(t=0)",
                           "send control /meta/subscribe /event/E__e@10 /meta/subscribe /topic/A@-2",
                           "subscribed /event/E__e@10", "subscribed /topic/A@-2",
                           "send long_poll /meta/connect"});
  // Events arrive; the handler is slow: only the first of each is committed.
  r.connect_ok({ev("/topic/A", 1), ev("/topic/A", 2), ev("/event/E__e", 11), ev("/event/E__e", 12)},
               "cl1");
  CHECK(r.take() == lines{"send long_poll /meta/connect", "deliver /topic/A 1", "deliver /topic/A 2",
                          "deliver /event/E__e 11", "deliver /event/E__e 12"});
  r.t.s.commit("/topic/A", 1);
  r.t.s.commit("/event/E__e", 11);
  // The server forgets the client.
  r.t.reply(lane::long_poll, connect_error(r.id_of(lane::long_poll), "403::Unknown client",
                                           R"({"interval":0,"reconnect":"handshake"})"));
  CHECK(r.take() == lines{"info", "send control /meta/handshake"});
  r.handshake_ok("cl2");
  CHECK(r.take() ==
        lines{"send long_poll /meta/connect(t=0)",
              "send control /meta/subscribe /event/E__e@12 /meta/subscribe /topic/A@2"});
  r.subscribes_ok();
  // The server replays from the positions sent; a server that re-sends the last one is
  // answered by dropping it.
  r.connect_ok({ev("/topic/A", 2), ev("/topic/A", 3), ev("/event/E__e", 12), ev("/event/E__e", 13)},
               "cl2", first_connect_advice());
  CHECK(r.take() == lines{"subscribed /event/E__e@12", "subscribed /topic/A@2",
                          "send long_poll /meta/connect", "deliver /topic/A 3",
                          "deliver /event/E__e 13"});
  CHECK(r.t.s.received("/topic/A") == 3);
  CHECK(r.t.s.committed("/topic/A") == 1);
  CHECK(r.t.s.counters().redeliveries_dropped == 2);
}

TEST_CASE("a connect reply lost in flight re-handshakes instead of reconnecting on the same client") {
  const std::vector<std::pair<std::string, int>> faults = {
      {"connection reset", 0}, {"deadline", 1}, {"body over the limit", 2},
      {"truncated body", 3},   {"HTTP 502", 4}};
  for (const auto& [name, kind] : faults) {
    CAPTURE(name);
    recorder r;
    REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
    r.start();
    r.connect_ok({ev("/topic/A", 1), ev("/topic/A", 2)}, "cl1");
    r.take();
    switch (kind) {
      case 0: r.t.fail(lane::long_poll, errc::connection_closed); break;
      case 1: r.t.fail(lane::long_poll, errc::timeout); break;
      case 2: r.t.fail(lane::long_poll, errc::body_too_large); break;
      case 3:
        r.t.reply(lane::long_poll, "[" + ev("/topic/A", 3) + "," + ev("/topic/A", 4).substr(0, 20));
        break;
      default: r.t.reply(lane::long_poll, "<html>Bad gateway</html>", 502); break;
    }
    CHECK(r.take() == lines{"warning", "info", "send control /meta/handshake"});
    CHECK(r.t.s.counters().rehandshakes_by_cause.at("lost_reply") == 1);
    r.handshake_ok("cl2");
    CHECK(r.take() == lines{"send long_poll /meta/connect(t=0)",
                            "send control /meta/subscribe /topic/A@2"});
  }
}

TEST_CASE("a connect that never left (connection refused) is simply sent again after a backoff") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
  r.start();
  r.t.fail(lane::long_poll, errc::connection_failed);
  CHECK(r.take() == lines{"warning", "wait"});
  r.t.fire_timer();
  CHECK(r.take() == lines{"send long_poll /meta/connect"});
}

TEST_CASE("a channel subscribed at -1 that received nothing reports a gap when it must be subscribed again") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/u/Quiet", -1, r.t.now));
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now));
  r.start();
  r.connect_ok({ev("/topic/A", 7)}, "cl1");
  r.take();
  const auto lost_at = r.t.now;
  r.t.advance(5s);
  r.t.fail(lane::long_poll, errc::connection_closed);
  r.take();
  r.handshake_ok("cl2");
  CHECK(r.take() ==
        lines{"send long_poll /meta/connect(t=0)",
              "send control /meta/subscribe /topic/A@7 /meta/subscribe /u/Quiet@-1"});
  r.t.advance(1s);
  r.subscribes_ok();
  CHECK(r.take() == lines{"subscribed /topic/A@7", "gap /u/Quiet resubscribed_at_tip",
                          "subscribed /u/Quiet@-1"});
  // The gap spans from the last moment the old subscription was known live to the new one.
  recorder again;
  REQUIRE_FALSE(again.t.s.subscribe("/u/Quiet", -1, again.t.now));
  again.start();
  // The held connect goes out now and is answered 2 s later with nothing on the channel: no
  // event was published on it since the connect was sent, so that is where a gap would start
  // (an event published between the send and the reply would have been in the reply).
  const auto live = again.t.now;
  again.t.advance(2s);
  again.connect_ok({}, "cl1");
  again.take();
  again.t.advance(3s);
  again.t.fail(lane::long_poll, errc::timeout);
  again.handshake_ok("cl2");
  again.t.advance(2s);
  again.subscribes_ok();
  auto g = again.t.take<gap>();
  CHECK(g.since == live);
  CHECK(g.until == again.t.now);
  CHECK(again.t.s.counters().gaps == 1);
  (void)lost_at;
}

TEST_CASE("a channel never confirmed and started at -1 reports no gap when the first handshake is retried") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/u/Quiet", -1, r.t.now));
  r.t.s.start(r.t.now);
  r.t.take<authenticate>();
  r.t.authenticated();
  r.handshake_ok("cl1");
  r.t.fail(lane::control, errc::connection_closed);  // the subscribe batch is lost
  r.take();
  r.t.fire_timer();
  r.subscribes_ok();
  CHECK(r.t.count<gap>() == 0);
}

TEST_CASE("back-pressure pause and resume re-subscribe from the last received id") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/event/E__e", -2, r.t.now));
  r.start();
  r.connect_ok({ev("/event/E__e", 1), ev("/event/E__e", 2), ev("/event/E__e", 3)}, "cl1");
  r.take();
  r.t.s.commit("/event/E__e", 1);
  r.t.s.pause(r.t.now);
  CHECK(r.take() == lines{"abort long_poll", "send control /meta/disconnect"});
  r.t.reply(lane::control, R"([{"channel":"/meta/disconnect","successful":true}])");
  r.t.s.resume(r.t.now);
  CHECK(r.take() == lines{"send control /meta/handshake"});
  r.handshake_ok("cl2");
  CHECK(r.take() == lines{"send long_poll /meta/connect(t=0)",
                          "send control /meta/subscribe /event/E__e@3"});
}

TEST_CASE("after a refused replay id the gap is reported and lower ids of a renumbered server are delivered") {
  const std::string refused =
      "400::The replayId {900} you provided was invalid.  Please provide a valid ID, -2 to "
      "replay all events, or -1 to replay only new events.";
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/event/E__e", 900, r.t.now));
  r.t.s.start(r.t.now);
  r.t.take<authenticate>();
  r.t.authenticated();
  r.handshake_ok("cl1");
  r.take();
  r.subscribes_refused(refused);
  CHECK(r.take() == lines{"gap /event/E__e refused last=900 earliest->-2",
                          "send control /meta/subscribe /event/E__e@-2"});
  r.subscribes_ok();
  r.connect_ok({ev("/event/E__e", 5), ev("/event/E__e", 6)}, "cl1", first_connect_advice());
  CHECK(r.take() == lines{"subscribed /event/E__e@-2", "send long_poll /meta/connect",
                          "deliver /event/E__e 5", "deliver /event/E__e 6"});
}

TEST_CASE("a stored position older than retention is one gap path with a refused one") {
  for (auto policy : {replay_policy::earliest, replay_policy::tip, replay_policy::fail}) {
    CAPTURE(static_cast<int>(policy));
    recorder r;
    const auto wall = std::chrono::system_clock::now();
    stored_position old{41, wall - std::chrono::hours{80}, wall};  // platform events: 72 h
    REQUIRE_FALSE(r.t.s.subscribe("/event/E__e", -1, r.t.now, policy, old));
    stored_position fresh{77, wall - std::chrono::hours{1}, wall};
    REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now, std::nullopt, fresh));
    if (policy == replay_policy::fail) {
      CHECK(r.take() == lines{"gap /event/E__e expired last=41 fail",
                              "subscription_failed /event/E__e " +
                                  make_error_code(errc::replay_gap).message()});
      CHECK(r.t.s.channels() == std::vector<std::string>{"/topic/A"});
    } else {
      const std::string to = policy == replay_policy::tip ? "tip->-1" : "earliest->-2";
      CHECK(r.take() == lines{"gap /event/E__e expired last=41 " + to});
    }
    r.start();
    const std::string from = policy == replay_policy::tip ? "-1" : "-2";
    const std::string batch =
        policy == replay_policy::fail
            ? "send control /meta/subscribe /topic/A@77"
            : "send control /meta/subscribe /event/E__e@" + from + " /meta/subscribe /topic/A@77";
    CHECK(std::find(r.lines.begin(), r.lines.end(), batch) != r.lines.end());
  }
}

TEST_CASE("a stored id replays strictly after it: the server re-sending it is a re-delivery") {
  recorder r;
  const auto wall = std::chrono::system_clock::now();
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now, std::nullopt,
                                stored_position{20, wall, wall}));
  r.start();
  r.connect_ok({ev("/topic/A", 20), ev("/topic/A", 21)}, "cl1");
  CHECK(r.take() == lines{"send long_poll /meta/connect", "deliver /topic/A 21"});
}

TEST_CASE("a replay id that is negative or not an integer is never taken as a position") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
  r.start();
  const std::string bad_string =
      R"({"data":{"event":{"replayId":"abc"},"sobject":{}},"channel":"/topic/A"})";
  const std::string too_big =
      R"({"data":{"event":{"replayId":99999999999999999999999},"sobject":{}},"channel":"/topic/A"})";
  r.connect_ok({ev("/topic/A", 3), ev("/topic/A", -5), bad_string, too_big}, "cl1");
  CHECK(r.take() == lines{"send long_poll /meta/connect", "deliver /topic/A 3", "warning",
                          "deliver /topic/A -", "warning", "deliver /topic/A -", "warning",
                          "deliver /topic/A -"});
  CHECK(r.t.s.received("/topic/A") == 3);
  const std::string negative = R"(-7)";
  stored_position bad{-7, std::chrono::system_clock::now(), std::chrono::system_clock::now()};
  CHECK(r.t.s.subscribe("/topic/B", -1, r.t.now, std::nullopt, bad).code == errc::invalid_replay_id);
  (void)negative;
}

TEST_CASE("re-handshakes that repeat without a held connect back off and count toward max_retries") {
  auto config = script::default_config();
  config.max_retries = 3;
  recorder r{config};
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now));
  r.start();
  std::vector<milliseconds> waits;
  for (int round = 0; round < 10 && !r.t.finished_with; ++round) {
    r.t.reply(lane::long_poll, connect_error(r.id_of(lane::long_poll), "403::Unknown client",
                                             R"({"interval":0,"reconnect":"handshake"})"));
    r.take();
    if (r.t.finished_with) break;
    REQUIRE(r.t.timer.has_value());
    waits.push_back(*r.t.timer);
    r.t.fire_timer();
    r.handshake_ok("cl" + std::to_string(round + 2));
    r.subscribes_ok();
    r.connect_ok({}, "cl", first_connect_advice());
    r.take();
  }
  REQUIRE(r.t.finished_with.has_value());
  CHECK(r.t.finished_with->code == errc::retries_exhausted);
  REQUIRE(waits.size() == 3);
  CHECK(waits[0] >= 500ms);
  CHECK(waits[1] >= 1000ms);
  CHECK(waits[2] >= 2000ms);
  CHECK(r.t.s.counters().handshakes == 4);
}

TEST_CASE("an unsupported API version and a certificate that fails verification end the session at once") {
  SUBCASE("unsupported API version") {
    recorder r;
    REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now));
    r.t.s.start(r.t.now);
    r.t.take<authenticate>();
    r.t.authenticated();
    r.t.reply(lane::control,
              R"([{"channel":"/meta/handshake","error":"400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/66.0'","successful":false}])",
              400);
    REQUIRE(r.t.finished_with.has_value());
    CHECK(r.t.finished_with->code == errc::unsupported_api_version);
  }
  SUBCASE("certificate verification") {
    recorder r;
    REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -1, r.t.now));
    r.t.s.start(r.t.now);
    r.t.take<authenticate>();
    r.t.authenticated();
    r.t.outstanding[0].reset();
    error_info tls{make_error_code(errc::tls_error),
                   {"", "certificate verify failed: unable to get local issuer certificate",
                    "TLS handshake with example.my.salesforce.com:443"}};
    r.t.s.on_transport_error(lane::control, tls, r.t.now);
    r.take();
    REQUIRE(r.t.finished_with.has_value());
    CHECK(r.t.finished_with->code == errc::tls_error);
  }
}

TEST_CASE("a bare 403 unknown client error page with neither channel nor id re-handshakes") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
  r.start();
  r.connect_ok({ev("/topic/A", 1)}, "cl1");
  r.take();
  r.t.reply(lane::long_poll,
            R"({"error":"403::Unknown client","successful":false,"advice":{"interval":0,"reconnect":"handshake"}})",
            403);
  CHECK(r.take() == lines{"info", "send control /meta/handshake"});
  CHECK(r.t.s.counters().rehandshakes_by_cause.at("unknown_client") == 1);
  r.handshake_ok("cl2");
  CHECK(r.take() == lines{"send long_poll /meta/connect(t=0)",
                          "send control /meta/subscribe /topic/A@1"});
}

TEST_CASE("a connect refused because the session's user differs from the handshake's re-authenticates") {
  recorder r;
  REQUIRE_FALSE(r.t.s.subscribe("/topic/A", -2, r.t.now));
  r.start();
  r.connect_ok({ev("/topic/A", 4)}, "cl1");
  r.take();
  r.t.reply(lane::long_poll,
            connect_error(r.id_of(lane::long_poll),
                          "400::Authenticated user id does not match the session's user id",
                          R"({"reconnect":"none","interval":0})"));
  CHECK(r.take() == lines{"warning", "authenticate refresh"});
  r.t.authenticated();
  r.handshake_ok("cl2");
  CHECK(r.take() == lines{"send control /meta/handshake", "send long_poll /meta/connect(t=0)",
                          "send control /meta/subscribe /topic/A@4"});
  CHECK_FALSE(r.t.finished_with.has_value());
}
