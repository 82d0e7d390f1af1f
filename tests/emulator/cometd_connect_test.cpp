// Conformance of /meta/connect, /meta/subscribe, /meta/unsubscribe and /meta/disconnect:
// request shapes, replies, advice, errors and timeouts as Salesforce answers them.
#include <doctest/doctest.h>

#include "emulator/event_bus.hpp"
#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::retention;

namespace {

std::string connect_body(const std::string& cid, const std::string& id) {
  return R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":")" + id + "\"}]";
}

std::string subscribe_body(const std::string& cid, const std::string& channel, const std::string& ext = "") {
  return R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":")" + channel + R"(","id":"2")" +
         (ext.empty() ? "" : ",\"ext\":" + ext) + "}]";
}

/// Declares /topic/Test and publishes `count` created events on it.
void publish_topic(harness& h, int count, const std::string& name = "A", const std::string& channel = "/topic/Test") {
  h.run([&] {
    auto& bus = h.org().events();
    bus.declare_channel(channel, retention::hours_24);
    for (int i = 0; i < count; ++i) {
      bus.publish(channel, [&](std::int64_t id, auto) {
        return R"({"event":{"createdDate":"2026-01-01T00:00:00.000Z","replayId":)" + std::to_string(id) +
               R"(,"type":"created"},"sobject":{"Id":"001DM000000000)" + std::to_string(100 + i) + R"(AAA","Name":")" + name + "\"}}";
      });
    }
    return 0;
  });
}

}  // namespace

TEST_CASE("the first connect after a handshake is answered at once with advice interval 0, timeout and retry") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body == "[{\"clientId\":\"" + cid +
                      R"(","advice":{"interval":0,"timeout":400,"reconnect":"retry"},"channel":"/meta/connect","id":"2","successful":true}])");
}

TEST_CASE("a later connect is held until the long-poll timeout and answered without advice") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body == "[{\"clientId\":\"" + cid + R"(","channel":"/meta/connect","id":"3","successful":true}])");
}

TEST_CASE("the default long-poll advice timeout is 110000 ms") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::milliseconds{110'000};
  harness h(options);
  const auto token = h.token();
  const auto cid = h.handshake(token);
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body.find(R"("advice":{"interval":0,"timeout":110000,"reconnect":"retry"})") != std::string::npos);
}

TEST_CASE("events published while a connect is held are delivered ahead of the connect reply in one array") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::seconds(5);
  harness h(options);
  const auto token = h.token();
  const auto cid = h.handshake(token);
  publish_topic(h, 0);
  CHECK(h.cometd(subscribe_body(cid, "/topic/Test"), token).body.find("\"successful\":true") != std::string::npos);
  h.cometd(connect_body(cid, "3"), token);
  auto pending = std::async(std::launch::async, [&] { return h.cometd(connect_body(cid, "4"), token); });
  publish_topic(h, 2);
  auto r = pending.get();
  CHECK(r.body ==
        R"([{"data":{"event":{"createdDate":"2026-01-01T00:00:00.000Z","replayId":1,"type":"created"},"sobject":{"Id":"001DM000000000100AAA","Name":"A"}},"channel":"/topic/Test"},)"
        R"({"data":{"event":{"createdDate":"2026-01-01T00:00:00.000Z","replayId":2,"type":"created"},"sobject":{"Id":"001DM000000000101AAA","Name":"A"}},"channel":"/topic/Test"},)"
        R"({"clientId":")" + cid + R"(","channel":"/meta/connect","id":"4","successful":true}])");
}

TEST_CASE("a message without the BAYEUX_BROWSER cookie gets the exact missing-cookie error") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  auto r = h.send("POST", "/cometd/59.0", connect_body(cid, "2"),
                  {{"Authorization", "Bearer " + token}, {"Cookie", "other=1"}});
  CHECK(r.body == "[{\"clientId\":\"" + cid + R"(","channel":"/meta/connect","id":"2","error":"400::Client {)" + cid +
                      R"(} has established a session, but no BAYEUX_BROWSER cookie present","successful":false}])");
}

TEST_CASE("a client that does not reconnect within the expiry is forgotten: 403::Unknown client with reconnect handshake") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  // The expiry (300 ms) runs on the emulator's timer; wait for the client count to drop.
  for (int i = 0; i < 100 && h.run([&] { return h.org().client_count(); }) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body ==
        R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"3","error":"403::Unknown client","successful":false}])");
}

TEST_CASE("an expired session on an established client gets 401::Authentication invalid with reconnect none") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.run([&] {
    h.org().expire_all_sessions();
    return 0;
  });
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body == "[{\"clientId\":\"" + cid +
                      R"(","channel":"/meta/connect","id":"2","error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
}

TEST_CASE("subscribe, unsubscribe and disconnect replies have Salesforce's shapes") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  publish_topic(h, 0);
  auto s = h.cometd(subscribe_body(cid, "/topic/Test"), token);
  CHECK(s.body == "[{\"clientId\":\"" + cid + R"(","channel":"/meta/subscribe","id":"2","subscription":"/topic/Test","successful":true}])");
  auto u = h.cometd(R"([{"channel":"/meta/unsubscribe","clientId":")" + cid + R"(","subscription":"/topic/Test","id":"3"}])", token);
  CHECK(u.body == "[{\"clientId\":\"" + cid + R"(","channel":"/meta/unsubscribe","id":"3","subscription":"/topic/Test","successful":true}])");
  auto d = h.cometd(R"([{"channel":"/meta/disconnect","clientId":")" + cid + R"(","id":"4"}])", token);
  CHECK(d.body == R"([{"channel":"/meta/disconnect","clientId":")" + cid + R"(","id":"4","successful":true}])");
  CHECK(h.run([&] { return h.org().client_count(); }) == 0);
}

TEST_CASE("a disconnect releases the client's held connect") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::seconds(30);
  harness h(options);
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  auto pending = std::async(std::launch::async, [&] { return h.cometd(connect_body(cid, "3"), token); });
  // Wait until the connect is held (bounded), then disconnect.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  h.cometd(R"([{"channel":"/meta/disconnect","clientId":")" + cid + R"(","id":"4"}])", token);
  auto r = pending.get();
  CHECK_FALSE(r.failed);
  CHECK(r.body.find(R"("channel":"/meta/connect")") != std::string::npos);
}

TEST_CASE("subscribing to a PushTopic that does not exist gets the exact does-not-exist text") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  auto r = h.cometd(subscribe_body(cid, "/topic/AccountUpdates"), token);
  CHECK(r.body.find(R"("error":"400::The channel you requested to subscribe to does not exist {/topic/AccountUpdates}","successful":false)") !=
        std::string::npos);
}

TEST_CASE("subscribing to a generic channel that does not exist gets 404::Unknown channel") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  auto r = h.cometd(subscribe_body(cid, "/u/nothing"), token);
  CHECK(r.body.find(R"("error":"404::Unknown channel","successful":false)") != std::string::npos);
}

TEST_CASE("a filtered PushTopic subscription delivers only events whose sobject fields equal the filter") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::milliseconds(200);
  harness h(options);
  const auto token = h.token();
  const auto cid = h.handshake(token);
  publish_topic(h, 0);
  auto s = h.cometd(subscribe_body(cid, "/topic/Test?Name='Smith'"), token);
  CHECK(s.body.find("\"successful\":true") != std::string::npos);
  h.cometd(connect_body(cid, "3"), token);
  publish_topic(h, 1, "Jones");
  publish_topic(h, 1, "Smith");
  auto r = h.cometd(connect_body(cid, "4"), token);
  CHECK(r.body.find("Jones") == std::string::npos);
  CHECK(r.body.find(R"("Name":"Smith"}},"channel":"/topic/Test?Name='Smith'"})") != std::string::npos);
}

TEST_CASE("the daily delivery limit stops deliveries with Salesforce's text on connect and subscribe") {
  auto options = test_options();
  options.daily_event_limit = 2;
  options.long_poll_timeout = std::chrono::milliseconds(200);
  harness h(options);
  const auto token = h.token();
  const auto cid = h.handshake(token);
  publish_topic(h, 3);
  h.cometd(subscribe_body(cid, "/topic/Test", R"({"replay":{"/topic/Test":-2}})"), token);
  auto first = h.cometd(connect_body(cid, "3"), token);
  CHECK(first.body.find("\"replayId\":2") != std::string::npos);
  CHECK(first.body.find("\"replayId\":3") == std::string::npos);
  auto second = h.cometd(connect_body(cid, "4"), token);
  CHECK(second.body.find(R"("error":"403::Organization total events daily limit exceeded")") != std::string::npos);
  auto sub = h.cometd(subscribe_body(cid, "/topic/Test"), token);
  CHECK(sub.body.find(R"("error":"403::Organization total events daily limit exceeded")") != std::string::npos);
}

TEST_CASE("a generic push with userIds is delivered to those users' clients only, live and on replay") {
  harness h;
  const auto token = h.token();
  const std::string me = h.run([&h] { return h.org().options().users.front().user_id; });
  const std::string someone_else = "005DM0000000999AAA";
  const std::vector<std::pair<std::string, std::string>> rest_headers = {
      {"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  auto created = h.send("POST", "/services/data/v59.0/sobjects/StreamingChannel",
                        R"({"Name":"/u/targeted"})", rest_headers);
  REQUIRE(created.status == 201);
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "3"), token);
  REQUIRE(h.cometd(subscribe_body(cid, "/u/targeted"), token).body.find("\"successful\":true") !=
          std::string::npos);
  const auto id_at = created.body.find("\"id\":\"") + 6;
  const std::string id = created.body.substr(id_at, created.body.find('"', id_at) - id_at);
  auto pushed = h.send("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push",
                       R"({"pushEvents":[{"payload":"not mine","userIds":[")" + someone_else + R"("]},)"
                       R"({"payload":"mine","userIds":[")" + me + R"("]},{"payload":"everyone's"}]})",
                       rest_headers);
  REQUIRE(pushed.status == 200);
  CHECK(pushed.body == R"([{"fanoutCount":0,"userOnlineStatus":{")" + someone_else +
                           R"(":false}},{"fanoutCount":1,"userOnlineStatus":{")" + me +
                           R"(":true}},{"fanoutCount":-1,"userOnlineStatus":{}}])");
  auto live = h.cometd(connect_body(cid, "4"), token);
  CHECK(live.body.find("\"payload\":\"mine\"") != std::string::npos);
  CHECK(live.body.find("\"payload\":\"everyone's\"") != std::string::npos);
  CHECK(live.body.find("not mine") == std::string::npos);

  // Replay from -2 for another client of the same user: the same two, never the other's.
  const auto second = h.handshake(token);
  h.cometd(connect_body(second, "5"), token);
  auto replayed = h.cometd(subscribe_body(second, "/u/targeted", R"({"replay":{"/u/targeted":-2}})"), token);
  REQUIRE(replayed.body.find("\"successful\":true") != std::string::npos);
  auto delivered = h.cometd(connect_body(second, "6"), token);
  CHECK(delivered.body.find("\"payload\":\"mine\"") != std::string::npos);
  CHECK(delivered.body.find("\"payload\":\"everyone's\"") != std::string::npos);
  CHECK(delivered.body.find("not mine") == std::string::npos);
}
