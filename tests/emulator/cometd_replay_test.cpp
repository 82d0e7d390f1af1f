// Conformance of replay on /meta/subscribe: -1, -2 and N, retention on the emulator clock, and
// Salesforce's exact error texts.
#include <doctest/doctest.h>

#include "emulator/event_bus.hpp"
#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::retention;

namespace {

struct replay_fixture {
  harness h;
  std::string token;
  std::string cid;

  explicit replay_fixture(int events, retention keep = retention::hours_24, const std::string& channel = "/topic/Test")
      : h([] {
          auto o = test_options();
          o.long_poll_timeout = std::chrono::milliseconds(100);
          o.client_expiry = std::chrono::seconds(30);
          return o;
        }()) {
    token = h.token();
    cid = h.handshake(token);
    h.run([&] {
      auto& bus = h.org().events();
      bus.declare_channel(channel, keep);
      for (int i = 0; i < events; ++i) {
        bus.publish(channel, [](std::int64_t id, auto) {
          return R"({"event":{"replayId":)" + std::to_string(id) + R"(},"payload":"p)" + std::to_string(id) + "\"}";
        });
      }
      return 0;
    });
    h.cometd(R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":"c1"}])", token);
  }

  reply subscribe(const std::string& channel, const std::string& ext) {
    return h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":")" + channel +
                        R"(","id":"s","ext":)" + ext + "}]",
                    token);
  }
  reply connect() {
    return h.cometd(R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":"c2"}])", token);
  }
};

}  // namespace

TEST_CASE("replay -2 delivers every retained event of the channel in replay id order") {
  replay_fixture f(3, retention::hours_24, "/u/notes");
  CHECK(f.subscribe("/u/notes", R"({"replay":{"/u/notes":-2}})").body.find("\"successful\":true") != std::string::npos);
  auto r = f.connect();
  auto p1 = r.body.find("\"p1\"");
  auto p2 = r.body.find("\"p2\"");
  auto p3 = r.body.find("\"p3\"");
  CHECK(p1 != std::string::npos);
  CHECK(p2 > p1);
  CHECK(p3 > p2);
}

TEST_CASE("replay N delivers only the events after N") {
  replay_fixture f(3, retention::hours_24, "/u/notes");
  f.subscribe("/u/notes", R"({"replay":{"/u/notes":1}})");
  auto r = f.connect();
  CHECK(r.body.find("\"p1\"") == std::string::npos);
  CHECK(r.body.find("\"p2\"") != std::string::npos);
  CHECK(r.body.find("\"p3\"") != std::string::npos);
}

TEST_CASE("replay -1 (and no replay entry) delivers no stored events") {
  replay_fixture f(2, retention::hours_24, "/u/notes");
  f.subscribe("/u/notes", R"({"replay":{"/u/notes":-1}})");
  auto r = f.connect();
  CHECK(r.body.find("\"payload\"") == std::string::npos);
}

TEST_CASE("replay -2 given as a JSON string is accepted") {
  replay_fixture f(1, retention::hours_24, "/u/notes");
  CHECK(f.subscribe("/u/notes", R"({"replay":{"/u/notes":"-2"}})").body.find("\"successful\":true") != std::string::npos);
}

TEST_CASE("an unknown replay id gets the exact invalid-replayId text with two spaces") {
  replay_fixture f(2);
  auto r = f.subscribe("/topic/Test", R"({"replay":{"/topic/Test":99}})");
  CHECK(r.body.find(
            R"("error":"400::The replayId {99} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.","successful":false)") !=
        std::string::npos);
}

TEST_CASE("events older than 24 hours on the emulator clock are no longer replayable on a PushTopic") {
  replay_fixture f(2);
  f.h.run([&] {
    f.h.org().advance_clock(std::chrono::hours(25));
    return 0;
  });
  f.token = f.h.token();  // the 2-hour session expired with the clock jump
  auto r = f.subscribe("/topic/Test", R"({"replay":{"/topic/Test":1}})");
  CHECK(r.body.find("400::The replayId {1} you provided was invalid.") != std::string::npos);
  auto all = f.subscribe("/topic/Test", R"({"replay":{"/topic/Test":-2}})");
  CHECK(all.body.find("\"successful\":true") != std::string::npos);
  CHECK(f.connect().body.find("\"payload\"") == std::string::npos);
}

TEST_CASE("platform event channels keep events for 72 hours") {
  replay_fixture f(2, retention::hours_72, "/event/Low_Ink__e");
  f.h.run([&] {
    f.h.org().advance_clock(std::chrono::hours(48));
    return 0;
  });
  f.token = f.h.token();
  CHECK(f.subscribe("/event/Low_Ink__e", R"({"replay":{"/event/Low_Ink__e":1}})").body.find("\"successful\":true") != std::string::npos);
  CHECK(f.connect().body.find("\"p2\"") != std::string::npos);
}

TEST_CASE("a replay map keyed with the filter query gets the exact wasn't-found text") {
  replay_fixture f(1, retention::hours_24, "/topic/TestContact1");
  auto r = f.subscribe("/topic/TestContact1?LastName='Smith'", R"({"replay":{"/topic/TestContact1?LastName='Smith'":-1}})");
  CHECK(r.body.find(
            R"("error":"400::The replayId for channel {/topic/TestContact1} wasn't found using the provided replay ID map {{/topic/TestContact1?LastName='Smith'=-1}}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing.")") !=
        std::string::npos);
}

TEST_CASE("a null replay id gets the exact wasn't-found text") {
  replay_fixture f(1, retention::hours_72, "/data/ChangeEvents");
  auto r = f.subscribe("/data/ChangeEvents", R"({"replay":{"/data/ChangeEvents":null}})");
  CHECK(r.body.find(
            R"("error":"400::The replayId for channel {/data/ChangeEvents} wasn't found using the provided replay ID map {{/data/ChangeEvents=null}}. Ensure)") !=
        std::string::npos);
}
