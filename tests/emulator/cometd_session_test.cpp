// The CometD session state machine on its own: no sockets, no timers. A recording host stands
// for the HTTP layer; each test feeds POST bodies and timer expiries and checks the replies and
// what the session asked of the host.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "emulator/clock.hpp"
#include "emulator/cometd/cometd_session.hpp"
#include "emulator/event_bus.hpp"

namespace {

using namespace sfstream::emulator;
using namespace sfstream::emulator::cometd;

/// Records what the session asks of the HTTP layer.
struct recording_host : session_host {
  std::multiset<std::string> armed, cancelled, flushes, gone;
  std::map<std::string, std::chrono::milliseconds> holds;
  std::vector<std::pair<std::string, reply_plan>> answered;
  void arm_expiry(const std::string& id) override { armed.insert(id); }
  void cancel_expiry(const std::string& id) override { cancelled.insert(id); }
  void hold(const std::string& id, std::chrono::milliseconds t) override { holds[id] = t; }
  void answer_held(const std::string& id, reply_plan plan) override {
    holds.erase(id);
    answered.emplace_back(id, std::move(plan));
  }
  void flush_soon(const std::string& id) override { flushes.insert(id); }
  void forgotten(const std::string& id) override { gone.insert(id); }
};

struct fixture {
  sfstream::emulator::clock clk;
  event_bus bus{clk};
  recording_host host;
  cometd_settings settings;
  std::unique_ptr<cometd_session> session;

  fixture() {
    settings.long_poll_timeout = std::chrono::milliseconds{400};
    settings.concurrent_client_limit = 2;
    session = std::make_unique<cometd_session>(
        settings, clk, bus,
        [](const std::string& token) -> std::optional<std::string> {
          if (token == "T1") return std::string("005000000000001AAA");
          return std::nullopt;
        },
        host);
    bus.set_publish_listener([this](const stored_event& e) { session->on_event(e); });
  }

  post_outcome post(const std::string& body, const std::string& token = "T1",
                    const std::string& cookie = {}) {
    sfstream::transport::http_request req;
    req.method = "POST";
    req.target = "/cometd/59.0";
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    if (!cookie.empty()) req.headers.emplace_back("Cookie", cookie);
    req.body = body;
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    return session->on_post(req, doc);
  }

  /// Handshakes and returns {clientId, Cookie header}.
  std::pair<std::string, std::string> handshake() {
    auto out = post(R"([{"channel":"/meta/handshake","version":"1.0","id":"1"}])");
    REQUIRE(out.reply);
    static const std::regex re("\"clientId\":\"([0-9a-z]+)\"");
    std::smatch m;
    const std::string body = out.reply->body();
    REQUIRE(std::regex_search(body, m, re));
    std::string cookie;
    for (const auto& c : out.reply->cookies) {
      if (!cookie.empty()) cookie += "; ";
      cookie += c.substr(0, c.find(';'));
    }
    return {m[1].str(), cookie};
  }

  std::string connect(const std::string& cid, const std::string& id) {
    return R"([{"channel":"/meta/connect","clientId":")" + cid +
           R"(","connectionType":"long-polling","id":")" + id + "\"}]";
  }
};

}  // namespace

TEST_CASE("session: a handshake gives a client id, both cookies and an expiry timer") {
  fixture f;
  auto [cid, cookie] = f.handshake();
  CHECK(cid.size() >= 26);
  CHECK(cookie.find("BAYEUX_BROWSER=") == 0);
  CHECK(cookie.find("sfdc-stream=!") != std::string::npos);
  CHECK(f.host.armed.count(cid) == 1);
  CHECK(f.session->client_count() == 1);
}

TEST_CASE("session: the first connect is answered at once, the second is held until flushed") {
  fixture f;
  auto [cid, cookie] = f.handshake();
  auto first = f.post(f.connect(cid, "2"), "T1", cookie);
  REQUIRE(first.reply);
  CHECK(first.reply->body() ==
        "[{\"clientId\":\"" + cid +
            R"(","advice":{"interval":0,"timeout":400,"reconnect":"retry"},"channel":"/meta/connect","id":"2","successful":true}])");
  auto second = f.post(f.connect(cid, "3"), "T1", cookie);
  CHECK_FALSE(second.reply);
  CHECK(second.held_client == cid);
  CHECK(f.host.holds.at(cid) == std::chrono::milliseconds{400});
  f.session->flush(cid);  // the hold timer fired
  REQUIRE(f.host.answered.size() == 1);
  CHECK(f.host.answered[0].second.body() ==
        "[{\"clientId\":\"" + cid + R"(","channel":"/meta/connect","id":"3","successful":true}])");
}

TEST_CASE("session: an event for a held connect asks for a flush and goes out before the connect reply") {
  fixture f;
  f.bus.declare_channel("/u/Notes", retention::hours_24);
  auto [cid, cookie] = f.handshake();
  f.post(f.connect(cid, "2"), "T1", cookie);
  auto sub = f.post(R"([{"channel":"/meta/subscribe","clientId":")" + cid +
                        R"(","subscription":"/u/Notes","id":"3"}])",
                    "T1", cookie);
  REQUIRE(sub.reply);
  CHECK(sub.reply->body() == "[{\"clientId\":\"" + cid +
                                 R"(","channel":"/meta/subscribe","id":"3","subscription":"/u/Notes","successful":true}])");
  CHECK_FALSE(f.post(f.connect(cid, "4"), "T1", cookie).reply);
  f.bus.publish("/u/Notes", [](std::int64_t id, auto) {
    return R"({"event":{"replayId":)" + std::to_string(id) + R"(},"payload":"hi"})";
  });
  CHECK(f.host.flushes.count(cid) == 1);
  f.session->flush(cid);
  REQUIRE(f.host.answered.size() == 1);
  CHECK(f.host.answered[0].second.body() ==
        R"([{"data":{"event":{"replayId":1},"payload":"hi"},"channel":"/u/Notes"},{"clientId":")" +
            cid + R"(","channel":"/meta/connect","id":"4","successful":true}])");
}

TEST_CASE("session: an expired client is forgotten and its next message gets 403::Unknown client") {
  fixture f;
  auto [cid, cookie] = f.handshake();
  f.session->expire(cid);
  CHECK(f.host.gone.count(cid) == 1);
  auto r = f.post(f.connect(cid, "2"), "T1", cookie);
  REQUIRE(r.reply);
  CHECK(r.reply->body() ==
        R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"2","error":"403::Unknown client","successful":false}])");
}

TEST_CASE("session: a client with a held connect does not expire, and does after the connection is abandoned") {
  fixture f;
  auto [cid, cookie] = f.handshake();
  f.post(f.connect(cid, "2"), "T1", cookie);
  CHECK_FALSE(f.post(f.connect(cid, "3"), "T1", cookie).reply);
  f.session->expire(cid);
  CHECK(f.session->client_count() == 1);
  f.session->abandon_held(cid);
  f.session->expire(cid);
  CHECK(f.session->client_count() == 0);
}

TEST_CASE("session: the concurrent client limit denies the handshake with Salesforce's reason") {
  fixture f;
  f.handshake();
  f.handshake();
  auto r = f.post(R"([{"channel":"/meta/handshake","version":"1.0","id":"9"}])");
  REQUIRE(r.reply);
  CHECK(r.reply->body() ==
        R"([{"ext":{"sfdc":{"failureReason":"403::Organization concurrent user limit exceeded"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"9","error":"403::Handshake denied","successful":false}])");
}

TEST_CASE("session: an armed cut spoils only a reply that carries events, and its events count as sent") {
  fixture f;
  f.bus.declare_channel("/u/Notes", retention::hours_24);
  auto [cid, cookie] = f.handshake();
  f.session->spoil_next_event_replies(fault{fault_kind::cut, 10, {}, {}}, 1);
  f.post(f.connect(cid, "2"), "T1", cookie);  // no events: not spoiled
  CHECK(f.session->pending_reply_faults() == 1);
  f.post(R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":"/u/Notes","id":"3"}])",
         "T1", cookie);
  f.bus.publish("/u/Notes", [](std::int64_t id, auto) {
    return R"({"event":{"replayId":)" + std::to_string(id) + "}}";
  });
  auto r = f.post(f.connect(cid, "4"), "T1", cookie);  // events queued: answered at once, cut
  REQUIRE(r.reply);
  CHECK(r.reply->what == reply_plan::action::cut);
  CHECK(r.reply->cut_bytes == 10);
  CHECK(f.session->pending_reply_faults() == 0);
  CHECK(f.session->spoiled_events() == 1);
  CHECK_FALSE(f.post(f.connect(cid, "5"), "T1", cookie).reply);  // nothing left: held
}

TEST_CASE("session: a fault kind is armed only where it applies") {
  fixture f;
  CHECK_THROWS_AS(f.session->inject(fault_kind::cut, 1), std::invalid_argument);
  CHECK_THROWS_AS(f.session->spoil_next_event_replies(fault{fault_kind::connection_limit, 0, {}, {}}, 1),
                  std::invalid_argument);
  CHECK_NOTHROW(f.session->inject(fault_kind::too_busy, 1));
  CHECK_NOTHROW(f.session->spoil_next_event_replies(fault{fault_kind::too_busy, 0, {}, {}}, 1));
}

TEST_CASE("session: forgetting every client answers a held connect with 403::Unknown client") {
  fixture f;
  auto [cid, cookie] = f.handshake();
  f.post(f.connect(cid, "2"), "T1", cookie);
  CHECK_FALSE(f.post(f.connect(cid, "3"), "T1", cookie).reply);
  f.session->forget_all_clients();
  REQUIRE(f.host.answered.size() == 1);
  CHECK(f.host.answered[0].second.response.body ==
        R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"3","error":"403::Unknown client","successful":false}])");
  CHECK(f.host.gone.count(cid) == 1);
}

TEST_CASE("session: handshakes are counted, and a client is active while its connect is held or was recent") {
  fixture f;
  using std::chrono::milliseconds;
  auto [a, cookie_a] = f.handshake();
  auto [b, cookie_b] = f.handshake();
  CHECK(f.session->handshake_count() == 2);
  CHECK(f.session->active_clients(milliseconds{500}) == 0);  // no connect yet
  REQUIRE(f.post(f.connect(a, "2"), "T1", cookie_a).reply);  // answered at once
  CHECK(f.session->active_clients(milliseconds{500}) == 1);
  REQUIRE(f.post(f.connect(b, "2"), "T1", cookie_b).reply);  // b's first, answered at once
  CHECK(f.session->active_clients(milliseconds{500}) == 2);
  CHECK_FALSE(f.post(f.connect(a, "3"), "T1", cookie_a).reply);  // held
  f.clk.advance(milliseconds{1000});
  // a's connect is held: still streaming; b's came a second ago and is not held.
  CHECK(f.session->active_clients(milliseconds{500}) == 1);
  f.session->flush(a);
  CHECK(f.session->active_clients(milliseconds{500}) == 0);
  CHECK(f.session->handshake_count() == 2);
}
