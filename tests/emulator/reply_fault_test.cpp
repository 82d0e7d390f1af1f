// The reply-fault controls (/_emulator/faults/event-reply), the refused stored replay id and raw
// event publication (/_emulator/cometd/publish-raw): each does exactly what emulator/README.md
// says, and the events of a spoiled reply count as sent (only a replay by id gets them back).
#include <doctest/doctest.h>

#include <rapidjson/document.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <future>

#include "emulator/cometd/cometd_server.hpp"
#include "emulator/event_bus.hpp"
#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::retention;

namespace {

const std::string channel = "/u/Faults";

reply control(harness& h, const std::string& path, const std::string& body = "{}") {
  return h.send("POST", "/_emulator/" + path, body, {{"Content-Type", "application/json"}});
}

std::string connect_body(const std::string& cid, const std::string& id) {
  return R"([{"channel":"/meta/connect","clientId":")" + cid +
         R"(","connectionType":"long-polling","id":")" + id + "\"}]";
}

std::string subscribe_body(const std::string& cid, const std::string& replay) {
  return R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":")" + channel +
         R"(","id":"s","ext":{"replay":{")" + channel + "\":" + replay + "}}}]";
}

/// The data text of event `n` on the test channel, with its replay id.
std::string event_data(std::int64_t replay_id, int n) {
  return R"({"event":{"createdDate":"2026-01-01T00:00:00.000Z","replayId":)" +
         std::to_string(replay_id) + R"(},"payload":"event )" + std::to_string(n) + "\"}";
}

/// Publishes events `from`..`to`-1 on the test channel (declared on first use).
void publish(harness& h, int from, int to) {
  h.run([&] {
    auto& bus = h.org().events();
    bus.declare_channel(channel, retention::hours_24);
    for (int i = from; i < to; ++i) {
      bus.publish(channel, [i](std::int64_t id, auto) { return event_data(id, i); });
    }
    return 0;
  });
}

/// The exact Bayeux text of event `n` (replay id n + 1: the channel's ids start at 1).
std::string event_message(int n) {
  return R"({"data":)" + event_data(n + 1, n) + R"(,"channel":")" + channel + "\"}";
}

/// A client that handshook, made its first connect and subscribed to the channel at -1.
struct subscribed_client {
  std::string token;
  std::string cid;
};

subscribed_client subscribe(harness& h) {
  publish(h, 0, 0);
  subscribed_client c;
  c.token = h.token();
  c.cid = h.handshake(c.token);
  REQUIRE_FALSE(c.cid.empty());
  REQUIRE(h.cometd(connect_body(c.cid, "1"), c.token).body.find("\"successful\":true") !=
          std::string::npos);
  REQUIRE(h.cometd(subscribe_body(c.cid, "-1"), c.token).body.find("\"successful\":true") !=
          std::string::npos);
  return c;
}

/// Sends `body` as a CometD POST on a raw connection and returns every byte received until the
/// server closes it (or `limit` passes).
std::string raw_exchange(harness& h, const std::string& token, const std::string& body,
                         std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), h.port()});
  std::string cookies;
  for (const auto& [k, v] : h.cookies()) cookies += (cookies.empty() ? "" : "; ") + k + "=" + v;
  const std::string request =
      "POST /cometd/59.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Authorization: Bearer " +
      token + "\r\nCookie: " + cookies + "\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request));
  std::string received;
  std::array<char, 4096> chunk{};
  std::function<void()> read_more = [&] {
    socket.async_read_some(asio::buffer(chunk), [&](boost::system::error_code ec, std::size_t n) {
      received.append(chunk.data(), n);
      if (!ec) read_more();
    });
  };
  read_more();
  io.run_for(limit);
  return received;
}

std::string body_of(const std::string& raw) {
  auto at = raw.find("\r\n\r\n");
  return at == std::string::npos ? std::string{} : raw.substr(at + 4);
}

std::string content_length_of(const std::string& raw) {
  const std::string key = "Content-Length: ";
  auto at = raw.find(key);
  if (at == std::string::npos) return {};
  return raw.substr(at + key.size(), raw.find("\r\n", at) - at - key.size());
}

/// Every event text in `body`, as event_message(n) would render them.
std::vector<std::string> events_in(const std::string& body) {
  std::vector<std::string> out;
  for (int n = 0; n < 20; ++n) {
    if (body.find(event_message(n)) != std::string::npos) out.push_back(event_message(n));
  }
  return out;
}

std::vector<std::string> messages(int from, int to) {
  std::vector<std::string> out;
  for (int n = from; n < to; ++n) out.push_back(event_message(n));
  return out;
}

std::uint64_t spoiled(harness& h) {
  return h.run([&] { return h.org().cometd().spoiled_events(); });
}
std::size_t pending(harness& h) {
  return h.run([&] { return h.org().cometd().pending_reply_faults(); });
}

/// After a spoiled reply: the next connect (held to the long-poll timeout) carries none of the
/// spoiled events; a re-subscribe at -2 gets all of them back, in order.
void check_sent_and_replayable(harness& h, subscribed_client& c, int published) {
  auto next = h.cometd(connect_body(c.cid, "9"), c.token);
  CHECK(next.status == 200);
  CHECK(events_in(next.body).empty());
  CHECK(next.body == "[{\"clientId\":\"" + c.cid +
                         R"(","channel":"/meta/connect","id":"9","successful":true}])");
  REQUIRE(h.cometd(subscribe_body(c.cid, "-2"), c.token).body.find("\"successful\":true") !=
          std::string::npos);
  auto replayed = h.cometd(connect_body(c.cid, "10"), c.token);
  CHECK(events_in(replayed.body) == messages(0, published));
}

/// A fresh client after the server forgot the old one gets the events back by replay id.
void check_replayable_by_new_client(harness& h, int published) {
  subscribed_client fresh;
  fresh.token = h.token();
  fresh.cid = h.handshake(fresh.token);
  REQUIRE_FALSE(fresh.cid.empty());
  h.cometd(connect_body(fresh.cid, "1"), fresh.token);
  REQUIRE(h.cometd(subscribe_body(fresh.cid, "-2"), fresh.token).body.find("\"successful\":true") !=
          std::string::npos);
  auto replayed = h.cometd(connect_body(fresh.cid, "2"), fresh.token);
  CHECK(events_in(replayed.body) == messages(0, published));
}

}  // namespace

TEST_CASE(
    "event-reply cut sends the head and exactly the first bytes of the body, then closes, and its "
    "events count as sent") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 3);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"cut","bytes":40})").status == 200);
  CHECK(pending(h) == 1);
  const auto raw = raw_exchange(h, c.token, connect_body(c.cid, "2"));
  const std::string whole = "[" + event_message(0) + "," + event_message(1) + "," +
                            event_message(2) + R"(,{"clientId":")" + c.cid +
                            R"(","channel":"/meta/connect","id":"2","successful":true}])";
  CHECK(raw.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(content_length_of(raw) == std::to_string(whole.size()));
  CHECK(body_of(raw) == whole.substr(0, 40));
  CHECK(pending(h) == 0);
  CHECK(spoiled(h) == 3);
  check_sent_and_replayable(h, c, 3);
}

TEST_CASE("event-reply cut never sends the whole body even when asked for more bytes than it has") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 1);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"cut","bytes":1000000})").status == 200);
  const auto raw = raw_exchange(h, c.token, connect_body(c.cid, "2"));
  const auto body = body_of(raw);
  CHECK(std::to_string(body.size() + 1) == content_length_of(raw));
  CHECK(body.rfind("[" + event_message(0), 0) == 0);
}

TEST_CASE("event-reply reset closes the connection before any byte and its events count as sent") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"reset"})").status == 200);
  CHECK(raw_exchange(h, c.token, connect_body(c.cid, "2")).empty());
  CHECK(spoiled(h) == 2);
  check_sent_and_replayable(h, c, 2);
}

TEST_CASE(
    "event-reply hold sends the whole reply late, or never to a client that gave up, and its "
    "events count as sent") {
  auto options = test_options();
  options.client_expiry = std::chrono::seconds(10);
  harness h(options);
  auto c = subscribe(h);
  publish(h, 0, 2);
  REQUIRE(
      control(h, "faults/event-reply", R"({"kind":"hold","milliseconds":300,"count":2})").status ==
      200);
  auto late = h.cometd(connect_body(c.cid, "2"), c.token, "/cometd/59.0", std::chrono::seconds(5));
  CHECK(late.status == 200);
  CHECK(events_in(late.body) == messages(0, 2));
  // A client whose deadline is far shorter than the hold closes first: the reply is never seen.
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"hold","milliseconds":3000})").status == 200);
  publish(h, 2, 3);
  auto gave_up =
      h.cometd(connect_body(c.cid, "3"), c.token, "/cometd/59.0", std::chrono::milliseconds(100));
  CHECK(gave_up.failed);
  CHECK(spoiled(h) == 3);
  check_sent_and_replayable(h, c, 3);
}

TEST_CASE("event-reply oversize pads the body with JSON whitespace beyond the size given") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"oversize","bytes":50000})").status == 200);
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(r.status == 200);
  CHECK(r.body.size() == 50001);
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d.Size() == 3);
  CHECK(events_in(r.body) == messages(0, 2));
  CHECK(spoiled(h) == 2);
  check_sent_and_replayable(h, c, 2);
}

TEST_CASE("event-reply malformed puts one unparseable message after the first event") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 3);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"malformed"})").status == 200);
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(r.body.rfind("[" + event_message(0) +
                         R"(,{"data":{"event":{"replayId":}},"channel":"/malformed"},)" +
                         event_message(1) + ",",
                     0) == 0);
  rapidjson::Document d;
  CHECK(d.Parse(r.body.c_str(), r.body.size()).HasParseError());
  CHECK(spoiled(h) == 3);
  check_sent_and_replayable(h, c, 3);

  publish(h, 3, 5);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"malformed","message":"{\"channel\":"})")
              .status == 200);
  auto custom = h.cometd(connect_body(c.cid, "11"), c.token);
  CHECK(custom.body.rfind("[" + event_message(3) + R"(,{"channel":,)" + event_message(4), 0) == 0);
}

TEST_CASE(
    "event-reply unknown-client answers 403::Unknown client instead of the events and forgets the "
    "client") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"unknown-client"})").status == 200);
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(
      r.body ==
      R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"2","error":"403::Unknown client","successful":false}])");
  CHECK(h.cometd(connect_body(c.cid, "3"), c.token).body.find("403::Unknown client") !=
        std::string::npos);
  CHECK(spoiled(h) == 2);
  check_replayable_by_new_client(h, 2);
}

TEST_CASE(
    "event-reply rotate-affinity sets a new sfdc-stream cookie with 403::Unknown client instead of "
    "the events") {
  harness h;
  auto c = subscribe(h);
  const auto old_affinity = h.cookies()["sfdc-stream"];
  publish(h, 0, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"rotate-affinity"})").status == 200);
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(r.body.find(R"("error":"403::Unknown client")") != std::string::npos);
  CHECK(events_in(r.body).empty());
  CHECK_FALSE(h.cookies()["sfdc-stream"].empty());
  CHECK(h.cookies()["sfdc-stream"] != old_affinity);
  check_replayable_by_new_client(h, 2);
}

TEST_CASE("event-reply 401, 503 and too-busy answer their failure instead of the events") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 1);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"401"})").status == 200);
  auto unauthorized = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(
      unauthorized.body ==
      "[{\"clientId\":\"" + c.cid +
          R"(","channel":"/meta/connect","id":"2","error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
  publish(h, 1, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"503"})").status == 200);
  auto unavailable = h.cometd(connect_body(c.cid, "3"), c.token);
  CHECK(unavailable.status == 503);
  CHECK(events_in(unavailable.body).empty());
  publish(h, 2, 3);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"too-busy"})").status == 200);
  auto busy = h.cometd(connect_body(c.cid, "4"), c.token);
  CHECK(busy.body ==
        "[{\"clientId\":\"" + c.cid +
            R"(","channel":"/meta/connect","id":"4","ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."}},"error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
  CHECK(events_in(busy.body).empty());
  CHECK(spoiled(h) == 3);
  check_sent_and_replayable(h, c, 3);
}

TEST_CASE(
    "event-reply disconnect sends an unsolicited /meta/disconnect instead of the events and "
    "forgets the client") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 2);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"disconnect"})").status == 200);
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  CHECK(r.body == R"([{"channel":"/meta/disconnect","clientId":")" + c.cid +
                      R"(","successful":true},{"clientId":")" + c.cid +
                      R"(","channel":"/meta/connect","id":"2","successful":true}])");
  CHECK(h.cometd(connect_body(c.cid, "3"), c.token).body.find("403::Unknown client") !=
        std::string::npos);
  check_replayable_by_new_client(h, 2);
}

TEST_CASE("event-reply spares replies without events and spoils a held reply when events arrive") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::seconds(5);
  harness h(options);
  auto c = subscribe(h);
  REQUIRE(control(h, "faults/event-reply", R"({"kind":"reset"})").status == 200);
  // A connect answered without events (the advice timeout 0 asks for an answer at once).
  auto empty =
      h.cometd(R"([{"channel":"/meta/connect","clientId":")" + c.cid +
                   R"(","connectionType":"long-polling","id":"2","advice":{"timeout":0}}])",
               c.token);
  CHECK(empty.body == "[{\"clientId\":\"" + c.cid +
                          R"(","channel":"/meta/connect","id":"2","successful":true}])");
  CHECK(pending(h) == 1);
  auto held = std::async(std::launch::async,
                         [&] { return raw_exchange(h, c.token, connect_body(c.cid, "3")); });
  // Usually the connect is held when the events come; if not, it is answered at once with
  // them: the reply carries events either way and is the one spoiled.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  publish(h, 0, 2);
  CHECK(held.get().empty());
  CHECK(pending(h) == 0);
  CHECK(spoiled(h) == 2);
}

TEST_CASE(
    "faults/bayeux invalid-replay-id refuses the next subscribe with a stored id, and only such a "
    "subscribe") {
  harness h;
  auto c = subscribe(h);
  publish(h, 0, 3);
  REQUIRE(control(h, "faults/bayeux", R"({"kind":"invalid-replay-id","count":1})").status == 200);
  auto tip = h.cometd(subscribe_body(c.cid, "-2"), c.token);
  CHECK(tip.body.find("\"successful\":true") != std::string::npos);
  auto refused = h.cometd(subscribe_body(c.cid, "1"), c.token);
  CHECK(
      refused.body ==
      "[{\"clientId\":\"" + c.cid + R"(","channel":"/meta/subscribe","id":"s","subscription":")" +
          channel +
          R"(","error":"400::The replayId {1} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.","successful":false}])");
  CHECK(h.cometd(subscribe_body(c.cid, "1"), c.token).body.find("\"successful\":true") !=
        std::string::npos);
}

TEST_CASE(
    "cometd/publish-raw delivers the data text as is, with its replay id, index and padding") {
  harness h;
  publish(h, 0, 0);
  subscribed_client c;
  c.token = h.token();
  c.cid = h.handshake(c.token);
  h.cometd(connect_body(c.cid, "1"), c.token);
  const std::string hostile = "/u/Hostile";
  auto declared = control(h, "cometd/publish-raw",
                          R"({"channel":"/u/Hostile","data":"{\"event\":{\"replayId\":-5}}"})");
  CHECK(declared.body == R"({"ok":true,"replayIds":[1]})");
  REQUIRE(
      h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + c.cid +
                   R"(","subscription":"/u/Hostile","id":"s","ext":{"replay":{"/u/Hostile":-2}}}])",
               c.token)
          .body.find("\"successful\":true") != std::string::npos);
  // Pretty-printed JSON, the placeholders, and (base64) bytes that are not UTF-8.
  auto pretty = control(
      h, "cometd/publish-raw",
      R"({"channel":"/u/Hostile","count":2,"pad_bytes":3,"data":"{\n  \"event\": {\"replayId\": {{replayId}}},\n  \"payload\": \"n{{index}} {{pad}}\"\n}"})");
  CHECK(pretty.body == R"({"ok":true,"replayIds":[2,3]})");
  // {"payload":"\xff\xfe"} in base64.
  auto binary = control(h, "cometd/publish-raw",
                        R"({"channel":"/u/Hostile","data_base64":"eyJwYXlsb2FkIjoi//4ifQ=="})");
  CHECK(binary.body == R"({"ok":true,"replayIds":[4]})");
  auto r = h.cometd(connect_body(c.cid, "2"), c.token);
  const std::string expected = R"([{"data":{"event":{"replayId":-5}},"channel":"/u/Hostile"},)"
                               "{\"data\":{\n  \"event\": {\"replayId\": 2},\n  \"payload\": \"n0 "
                               "xxx\"\n},\"channel\":\"/u/Hostile\"},"
                               "{\"data\":{\n  \"event\": {\"replayId\": 3},\n  \"payload\": \"n1 "
                               "xxx\"\n},\"channel\":\"/u/Hostile\"},"
                               "{\"data\":{\"payload\":\"\xff\xfe\"},\"channel\":\"/u/Hostile\"},"
                               "{\"clientId\":\"" +
                               c.cid +
                               R"(","channel":"/meta/connect","id":"2","successful":true}])";
  CHECK(r.body == expected);
}

TEST_CASE("the reply-fault and publish-raw controls refuse bodies they cannot honour") {
  harness h;
  CHECK(control(h, "faults/event-reply", R"({"kind":"gremlins"})").status == 400);
  CHECK(control(h, "faults/event-reply", R"({"kind":"cut"})").status == 400);
  CHECK(control(h, "faults/event-reply", R"({"kind":"oversize","bytes":-1})").status == 400);
  CHECK(control(h, "faults/event-reply", R"({"kind":"hold","milliseconds":0})").status == 400);
  CHECK(control(h, "faults/event-reply", R"({"kind":"reset","count":-2})").status == 400);
  CHECK(control(h, "cometd/publish-raw", R"({"data":"{}"})").status == 400);
  CHECK(control(h, "cometd/publish-raw", R"({"channel":"/u/X"})").status == 400);
  CHECK(control(h, "cometd/publish-raw", R"({"channel":"/u/X","data_base64":"!!"})").status == 400);
  CHECK(control(h, "cometd/publish-raw", R"({"channel":"/u/X","data":"{}","count":0})").status ==
        400);
  auto status = h.send("GET", "/_emulator/status", "");
  CHECK(status.body ==
        R"({"clients":0,"clockOffsetMs":0,"pendingReplyFaults":0,"spoiledEvents":0})");
}
