// Scripted-session test helpers: drive a bayeux::session with a fake clock, take the actions
// it emits, answer its sends with real-shaped Salesforce replies, and check the liveness
// invariant (the session always has a send outstanding, a wait pending, an authentication
// pending, or has finished).
#pragma once

#include <doctest/doctest.h>

#include <ostream>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "bayeux/message.hpp"
#include "bayeux/session.hpp"

namespace sfstream::bayeux::test {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// The messages of a request body (the session's own JSON, parsed back).
inline std::vector<message> messages_of(const std::string& body) {
  auto parsed = parse_reply(body);
  REQUIRE_MESSAGE(parsed.has_value(), "the session sent invalid JSON: " << body);
  return parsed.value();
}

/// Reply builders in Salesforce's shapes.
inline std::string handshake_ok(const std::string& id, const std::string& client = "cl1") {
  return R"([{"ext":{"replay":true,"payload.format":true},"minimumVersion":"1.0","clientId":")" +
         client +
         R"(","supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":")" +
         id + R"(","version":"1.0","successful":true}])";
}
inline std::string handshake_denied(const std::string& id, const std::string& reason,
                                    const std::string& advice = R"({"reconnect":"none"})") {
  return R"([{"ext":{"sfdc":{"failureReason":")" + reason +
         R"("},"replay":true,"payload.format":true},"advice":)" + advice +
         R"(,"channel":"/meta/handshake","error":"403::Handshake denied","successful":false,"id":")" +
         id + R"("}])";
}
inline std::string connect_ok_message(const std::string& id, const std::string& client = "cl1",
                                      const std::string& advice = {}) {
  return R"({"clientId":")" + client + R"(",)" +
         (advice.empty() ? std::string{} : R"("advice":)" + advice + ",") +
         R"("channel":"/meta/connect","id":")" + id + R"(","successful":true})";
}
inline std::string first_connect_advice() {
  return R"({"interval":0,"timeout":110000,"reconnect":"retry"})";
}
inline std::string connect_error(const std::string& id, const std::string& error,
                                 const std::string& advice) {
  return R"([{"advice":)" + advice + R"(,"channel":"/meta/connect","id":")" + id +
         R"(","error":")" + error + R"(","successful":false}])";
}
inline std::string event_message(const std::string& channel, std::int64_t replay_id,
                                 const std::string& payload = R"({"Name":"x"})") {
  return R"({"data":{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":)" +
         std::to_string(replay_id) + R"(,"type":"created"},"sobject":)" + payload +
         R"(},"channel":")" + channel + R"("})";
}
inline std::string subscribe_reply(const message& request, bool ok, const std::string& error = {}) {
  std::string out = R"({"clientId":")" + request.client_id +
                    R"(","channel":"/meta/subscribe","id":")" + request.id.value_or("") +
                    R"(","subscription":")" + request.subscription + R"(","successful":)" +
                    (ok ? "true" : "false");
  if (!error.empty()) out += R"(,"error":")" + error + '"';
  return out + "}";
}

/// A session plus a fake clock and the bookkeeping of what is outstanding.
class script {
 public:
  explicit script(session_config config = default_config()) : s(std::move(config)) {}

  static session_config default_config() {
    session_config c;
    c.jitter_seed = 42;
    return c;
  }

  session s;
  time_point now{std::chrono::hours{1000}};
  std::deque<action> pending;           ///< Drained but not yet taken by the test.
  std::optional<send> outstanding[2];   ///< The send in flight per lane.
  std::optional<milliseconds> timer;    ///< The wait in force.
  std::optional<time_point> timer_due;  ///< When it ends.
  bool auth_pending = false;
  std::optional<error_info> finished_with;

  /// Drains the session into `pending`, tracking sends, aborts, waits and authentication.
  void drain() {
    for (int guard = 0; guard < 100000; ++guard) {
      auto a = s.next_action();
      if (!a) return;
      if (auto* sd = std::get_if<send>(&*a)) {
        auto& slot = outstanding[static_cast<int>(sd->lane)];
        CHECK_MESSAGE(!slot.has_value(), "two exchanges outstanding on one lane");
        slot = *sd;
      } else if (auto* ab = std::get_if<abort>(&*a)) {
        outstanding[static_cast<int>(ab->lane)].reset();
      } else if (auto* w = std::get_if<wait>(&*a)) {
        timer = w->duration;
        timer_due = now + w->duration;
      } else if (std::holds_alternative<authenticate>(*a)) {
        auth_pending = true;
      } else if (auto* f = std::get_if<finished>(&*a)) {
        CHECK_MESSAGE(!finished_with.has_value(), "finished twice");
        finished_with = f->error;
      }
      pending.push_back(std::move(*a));
    }
    FAIL("the session emitted an unbounded number of actions");
  }

  /// True when the session cannot stall: something is in flight, pending or it is over.
  bool live() const {
    return finished_with || auth_pending || outstanding[0] || outstanding[1] || timer;
  }

  template <class T>
  std::optional<T> find() {
    drain();
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (auto* v = std::get_if<T>(&*it)) {
        T out = std::move(*v);
        pending.erase(it);
        return out;
      }
    }
    return std::nullopt;
  }

  /// Takes the first pending action of type T; fails the test when there is none.
  template <class T>
  T take() {
    auto v = find<T>();
    REQUIRE_MESSAGE(v.has_value(), "expected an action of the requested type");
    return std::move(*v);
  }

  /// The outstanding send on `l` (taken from `pending` as well).
  send take_send(lane l) {
    drain();
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (auto* v = std::get_if<send>(&*it); v && v->lane == l) {
        send out = *v;
        pending.erase(it);
        return out;
      }
    }
    FAIL("expected a send on the " << std::string(l == lane::control ? "control" : "long_poll")
                                   << " lane");
    return {};
  }

  template <class T>
  std::size_t count() {
    drain();
    std::size_t n = 0;
    for (const auto& a : pending) n += std::holds_alternative<T>(a) ? 1 : 0;
    return n;
  }

  void clear() {
    drain();
    pending.clear();
  }

  void advance(milliseconds d) { now += d; }

  void reply(lane l, const std::string& body, unsigned status = 200) {
    outstanding[static_cast<int>(l)].reset();
    s.on_reply(l, status, body, now);
    drain();
  }
  void fail(lane l, errc code = errc::connection_failed) {
    outstanding[static_cast<int>(l)].reset();
    s.on_transport_error(l, error_info{make_error_code(code), {}}, now);
    drain();
  }
  void fire_timer() {
    REQUIRE(timer.has_value());
    now = std::max(now, *timer_due);
    timer.reset();
    timer_due.reset();
    s.on_timer(now);
    drain();
  }
  void authenticated() {
    auth_pending = false;
    s.on_authenticated(now);
    drain();
  }

  /// start → authenticate → handshake → first connect answered; subscriptions confirmed.
  /// Returns the client id used.
  std::string connect(const std::string& client = "cl1") {
    s.start(now);
    drain();
    CHECK(take<authenticate>().force_refresh == false);
    authenticated();
    auto hs = take_send(lane::control);
    auto hm = messages_of(hs.body);
    REQUIRE(hm.size() == 1);
    REQUIRE(hm[0].channel == "/meta/handshake");
    reply(lane::control, handshake_ok(*hm[0].id, client));
    answer_subscribes();
    auto c = take_send(lane::long_poll);
    auto cm = messages_of(c.body);
    reply(lane::long_poll,
          "[" + connect_ok_message(*cm[0].id, client, first_connect_advice()) + "]");
    return client;
  }

  /// Answers every subscribe batch on the control lane successfully.
  void answer_subscribes() {
    for (int guard = 0; guard < 1000; ++guard) {
      drain();
      if (!outstanding[0]) return;
      auto sd = take_send(lane::control);
      std::string body = "[";
      for (const auto& m : messages_of(sd.body)) {
        if (body.size() > 1) body += ",";
        REQUIRE(m.channel == "/meta/subscribe");
        body += subscribe_reply(m, true);
      }
      reply(lane::control, body + "]");
    }
  }

  /// The id of the (single) message in an outstanding long-poll send.
  std::string connect_id() {
    drain();
    std::erase_if(pending, [](const action& a) {
      auto* v = std::get_if<send>(&a);
      return v && v->lane == lane::long_poll;
    });
    REQUIRE(outstanding[1].has_value());
    auto m = messages_of(outstanding[1]->body);
    REQUIRE(m.size() == 1);
    REQUIRE(m[0].channel == "/meta/connect");
    return *m[0].id;
  }
};

}  // namespace sfstream::bayeux::test
