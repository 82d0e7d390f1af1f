// The error-injection helper: a small in-memory Salesforce that answers every send of a
// scripted session, and a runner that replays the whole script with one failure injected at
// each step in turn.
#pragma once

#include <map>
#include <set>
#include <string>

#include "script.hpp"

namespace sfstream::bayeux::test {

/// Answers the session's requests as Salesforce would: handshakes,
/// connects (the first at once with advice, later ones with events), subscribes,
/// unsubscribes and disconnects. A request with a stale clientId gets 403::Unknown client.
class fake_salesforce {
 public:
  std::string client;  ///< The clientId the server knows; "" after a disconnect.
  int generation = 0;
  std::int64_t next_replay = 100;
  std::set<std::string> subscribed;  ///< Server-side subscriptions of the current client.
  std::map<std::string, std::int64_t> last_subscribe_replay;

  std::string answer(const std::string& body) {
    std::string out = "[";
    auto add = [&](const std::string& m) {
      if (out.size() > 1) out += ",";
      out += m;
    };
    for (const auto& m : messages_of(body)) {
      const std::string id = m.id.value_or("");
      if (m.channel == "/meta/handshake") {
        client = "client" + std::to_string(++generation);
        subscribed.clear();
        add(handshake_ok(id, client).substr(1, handshake_ok(id, client).size() - 2));
      } else if (m.client_id != client || client.empty()) {
        add(R"({"advice":{"interval":0,"reconnect":"handshake"},"channel":")" + m.channel +
            R"(","id":")" + id + R"(","error":"403::Unknown client","successful":false})");
      } else if (m.channel == "/meta/connect") {
        const bool first = m.json.find(R"("timeout":0)") != std::string::npos;
        if (!first) {
          for (const auto& ch : subscribed) add(event_message(ch, next_replay++));
        }
        add(connect_ok_message(id, client, first ? first_connect_advice() : std::string{}));
      } else if (m.channel == "/meta/subscribe") {
        subscribed.insert(m.subscription);
        const auto colon = m.ext.rfind(':');
        last_subscribe_replay[m.subscription] =
            std::stoll(m.ext.substr(colon + 1, m.ext.find('}') - colon - 1));
        add(subscribe_reply(m, true));
      } else if (m.channel == "/meta/unsubscribe") {
        subscribed.erase(m.subscription);
        add(R"({"clientId":")" + client + R"(","channel":"/meta/unsubscribe","id":")" + id +
            R"(","subscription":")" + m.subscription + R"(","successful":true})");
      } else if (m.channel == "/meta/disconnect") {
        client.clear();
        add(R"({"channel":"/meta/disconnect","id":")" + id + R"(","successful":true})");
      }
    }
    return out + "]";
  }
};

/// How a step fails.
enum class injected { connection_failed, timeout, http_503, garbage, unknown_client };

/// Runs the session against fake_salesforce for `steps` exchanges; at exchange `fail_at`
/// (if any) the answer is replaced by `how`. After every input it checks that the session
/// cannot stall. Every delivered event is committed, as the runtime would.
struct injection_run {
  script t;
  fake_salesforce server;
  int exchanges = 0;
  std::map<std::string, std::int64_t> committed;

  void step(std::optional<int> fail_at, injected how) {
    t.drain();
    while (!t.pending.empty()) {
      action a = std::move(t.pending.front());
      t.pending.pop_front();
      if (auto* d = std::get_if<deliver>(&a)) {
        if (d->event.replay_id) {
          t.s.commit(d->event.replay_key, *d->event.replay_id);
          committed[d->event.replay_key] = *d->event.replay_id;
        }
      }
      CHECK_FALSE(std::holds_alternative<subscription_failed>(a));
      CHECK_FALSE(std::holds_alternative<finished>(a));
    }
    REQUIRE_MESSAGE(t.live(), "the session has nothing in flight and nothing scheduled");
    if (t.auth_pending) {
      t.authenticated();
      return;
    }
    // A held long poll lasts until the server has something to say; a wait that ends
    // before Salesforce's 110 s hold fires first.
    const bool timer_first =
        t.timer && !t.outstanding[0] && (!t.outstanding[1] || *t.timer_due - t.now < 110s);
    const int l = t.outstanding[0] ? 0 : (t.outstanding[1] ? 1 : -1);
    if (l < 0 || timer_first) {
      t.fire_timer();
      return;
    }
    const lane on = l == 0 ? lane::control : lane::long_poll;
    const std::string body = t.outstanding[l]->body;
    t.advance(on == lane::long_poll && server.subscribed.size() > 0 ? 1s : 10ms);
    if (fail_at && *fail_at == exchanges++) {
      switch (how) {
        case injected::connection_failed:
          t.fail(on, errc::connection_failed);
          return;
        case injected::timeout:
          t.fail(on, errc::timeout);
          return;
        case injected::http_503:
          t.reply(on, "Service Unavailable", 503);
          return;
        case injected::garbage:
          t.reply(on, "<html>proxy error</html>");
          return;
        case injected::unknown_client:
          server.client = "forgotten";
          break;
      }
    } else if (!fail_at) {
      ++exchanges;
    }
    t.reply(on, server.answer(body));
  }
};

}  // namespace sfstream::bayeux::test
