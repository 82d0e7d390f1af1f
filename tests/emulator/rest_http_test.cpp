// REST over HTTP through the org emulator's router: the Authorization check, sobjects and
// query round trips, and the streaming events those requests produce on the bus.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "emulator/event_bus.hpp"
#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;

namespace {

emulator_options rest_options() {
  emulator_options o = test_options();
  o.data.cdc_entities = {"Account"};
  return o;
}

std::vector<std::pair<std::string, std::string>> auth(const std::string& token) {
  return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_MESSAGE(!d.HasParseError(), text);
  return d;
}

}  // namespace

TEST_CASE("REST without a valid session answers 401 INVALID_SESSION_ID") {
  harness h(rest_options());
  auto r = h.send("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account", "");
  CHECK(r.status == 401);
  CHECK(r.body == R"([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])");
  auto bad = h.send("GET", "/services/data/v59.0/limits", "", auth("00Dnot!a-session"));
  CHECK(bad.status == 401);
}

TEST_CASE("a record created, read, updated, queried and deleted over HTTP behaves as in an org") {
  harness h(rest_options());
  const std::string token = h.token();
  auto created = h.send("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"Acme","Industry":"Energy"})", auth(token));
  REQUIRE_MESSAGE(created.status == 201, created.body);
  CHECK(created.header("Content-Type").find("application/json") == 0);
  const std::string id = parse(created.body)["id"].GetString();
  CHECK(id.substr(0, 3) == "001");

  auto read = h.send("GET", "/services/data/v59.0/sobjects/Account/" + id, "", auth(token));
  REQUIRE(read.status == 200);
  CHECK(std::string(parse(read.body)["Industry"].GetString()) == "Energy");

  auto patched = h.send("PATCH", "/services/data/v59.0/sobjects/Account/" + id, R"({"Industry":"Media"})", auth(token));
  CHECK(patched.status == 204);
  CHECK(patched.body.empty());

  auto query = h.send("GET", "/services/data/v59.0/query?q=SELECT+Id,Industry+FROM+Account+WHERE+Industry+=+'Media'", "",
                      auth(token));
  REQUIRE(query.status == 200);
  auto page = parse(query.body);
  CHECK(page["totalSize"].GetInt() == 1);
  CHECK(std::string(page["records"][0]["Id"].GetString()) == id);

  CHECK(h.send("DELETE", "/services/data/v59.0/sobjects/Account/" + id, "", auth(token)).status == 204);
  auto gone = h.send("GET", "/services/data/v59.0/sobjects/Account/" + id, "", auth(token));
  CHECK(gone.status == 404);
  CHECK(gone.body == R"([{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}])");

  // CREATE, UPDATE and DELETE reached both CDC channels, each with its own replay ids.
  CHECK(h.run([&] { return h.org().events().events_after("/data/AccountChangeEvent", -2).size(); }) == 3);
  CHECK(h.run([&] { return h.org().events().events_after("/data/ChangeEvents", -2).size(); }) == 3);
}

TEST_CASE("a PushTopic created over HTTP declares its channel and receives matching changes") {
  harness h(rest_options());
  const std::string token = h.token();
  auto topic = h.send("POST", "/services/data/v59.0/sobjects/PushTopic",
                      R"({"Name":"AccountUpdates","Query":"SELECT Id, Name FROM Account","ApiVersion":59.0,)"
                      R"("NotifyForOperationCreate":true,"NotifyForOperationUpdate":true,"NotifyForOperationDelete":true,)"
                      R"("NotifyForOperationUndelete":true,"NotifyForFields":"Referenced"})",
                      auth(token));
  REQUIRE_MESSAGE(topic.status == 201, topic.body);
  CHECK(std::string(parse(topic.body)["id"].GetString()).substr(0, 3) == "0IF");
  REQUIRE(h.send("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"Acme"})", auth(token)).status == 201);
  auto events = h.run([&] { return h.org().events().events_after("/topic/AccountUpdates", -2); });
  REQUIRE(events.size() == 1);
  auto data = parse(events[0].data);
  CHECK(std::string(data["event"]["type"].GetString()) == "created");
  CHECK(std::string(data["sobject"]["Name"].GetString()) == "Acme");
}
