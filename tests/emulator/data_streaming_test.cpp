// Generic streaming (StreamingChannel push) and platform event publish: REST replies and the
// Salesforce's exact event shapes.
#include "data_fixture.hpp"

#include <regex>

using namespace data_test;

TEST_CASE("a push to a StreamingChannel answers fanoutCount -1 and publishes the raw payload") {
  fixture f;
  const std::string id = f.create("StreamingChannel", R"({"Name":"/u/notifications/ExampleUserChannel"})");
  auto r = f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push",
                  R"({"pushEvents":[{"payload":"Broadcast message to all subscribers","userIds":[]}]})");
  REQUIRE(r.status == 200);
  CHECK(r.body == R"([{"fanoutCount":-1,"userOnlineStatus":{}}])");
  auto events = f.on("/u/notifications/ExampleUserChannel");
  REQUIRE(events.size() == 1);
  json data(events[0].data);
  CHECK(keys(*data) == std::set<std::string>{"event", "payload"});
  CHECK(keys((*data)["event"]) == std::set<std::string>{"createdDate", "replayId"});
  CHECK(std::string((*data)["payload"].GetString()) == "Broadcast message to all subscribers");
  CHECK((*data)["event"]["replayId"].GetInt64() == events[0].replay_id);
  CHECK(f.bus.channel_retention("/u/notifications/ExampleUserChannel") == retention::hours_24);

  auto get = f.call("GET", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push");
  REQUIRE(get.status == 200);
  CHECK(get.body == R"({"OnlineUserIds":[],"ChannelName":"/u/notifications/ExampleUserChannel"})");
}

TEST_CASE("a push payload over 3,000 characters is refused and publishes nothing") {
  fixture f;
  const std::string id = f.create("StreamingChannel", R"({"Name":"/u/big"})");
  auto r = f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push",
                  "{\"pushEvents\":[{\"payload\":\"" + std::string(3001, 'x') + "\",\"userIds\":[]}]}");
  check_error(r, 400, "STRING_TOO_LONG");
  CHECK(f.on("/u/big").empty());
  check_error(f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push", R"({"events":[]})"), 400,
              "JSON_PARSER_ERROR");
  REQUIRE(f.api.push_generic("/u/big", std::string(3000, 'y')));
  CHECK(f.on("/u/big").size() == 1);
  CHECK_FALSE(f.api.push_generic("/u/none", "x"));
}

TEST_CASE("a platform event publish answers 201 with OPERATION_ENQUEUED and publishes schema, payload and EventUuid") {
  fixture f;
  auto r = f.call("POST", "/services/data/v59.0/sobjects/Low_Ink__e",
                  R"({"Printer_Model__c":"XZO-5","Serial_Number__c":"12345","Ink_Percentage__c":0.2})");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  json reply(r.body);
  CHECK(std::string((*reply)["id"].GetString()).substr(0, 3) == "e00");
  CHECK((*reply)["success"].GetBool());
  REQUIRE((*reply)["errors"].Size() == 1);
  CHECK(std::string((*reply)["errors"][0]["statusCode"].GetString()) == "OPERATION_ENQUEUED");

  auto events = f.on("/event/Low_Ink__e");
  REQUIRE(events.size() == 1);
  json data(events[0].data);
  CHECK(keys(*data) == std::set<std::string>{"schema", "payload", "event"});
  CHECK(std::string((*data)["schema"].GetString()).size() == 22);
  CHECK(keys((*data)["payload"]) ==
        std::set<std::string>{"CreatedDate", "CreatedById", "Printer_Model__c", "Serial_Number__c", "Ink_Percentage__c"});
  CHECK((*data)["payload"]["Ink_Percentage__c"].GetDouble() == doctest::Approx(0.2));
  CHECK(std::string((*data)["payload"]["CreatedById"].GetString()) == f.who.user_id);
  CHECK(keys((*data)["event"]) == std::set<std::string>{"EventUuid", "replayId"});
  const std::string uuid = (*data)["event"]["EventUuid"].GetString();
  CHECK(std::regex_match(uuid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  CHECK(std::string((*reply)["errors"][0]["message"].GetString()) == uuid);
  CHECK(f.bus.channel_retention("/event/Low_Ink__e") == retention::hours_72);
}

TEST_CASE("a platform event published on REST v51.0 has no uuid in the reply but keeps its EventUuid for subscribers") {
  fixture f;
  auto r = f.call("POST", "/services/data/v51.0/sobjects/Low_Ink__e", R"({"Serial_Number__c":"1"})");
  REQUIRE(r.status == 201);
  CHECK(json(r.body).doc["errors"].Size() == 0);
  json data(f.on("/event/Low_Ink__e").at(0).data);
  // The subscriber's endpoint version decides whether it sees the EventUuid (CometD side).
  CHECK(keys((*data)["event"]) == std::set<std::string>{"EventUuid", "replayId"});
  CHECK((*data)["payload"]["Printer_Model__c"].IsNull());
}

TEST_CASE("platform event field errors and redefinition change the schema id") {
  fixture f;
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Low_Ink__e", R"({"Printer_Model__c":"x"})"), 400,
              "REQUIRED_FIELD_MISSING");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Low_Ink__e", R"({"Serial_Number__c":"1","Nope__c":1})"), 400,
              "INVALID_FIELD");
  check_error(f.call("GET", "/services/data/v59.0/sobjects/Low_Ink__e/e005f0000000001AAA"), 404, "NOT_FOUND");
  REQUIRE(f.api.publish_platform_event("Low_Ink__e", R"({"Serial_Number__c":"1"})"));
  f.api.define_platform_event({"Low_Ink__e", {{"Serial_Number__c", "string", "", true}, {"Color__c", "string", "", false}}});
  REQUIRE(f.api.publish_platform_event("Low_Ink__e", R"({"Serial_Number__c":"2","Color__c":"cyan"})"));
  auto events = f.on("/event/Low_Ink__e");
  REQUIRE(events.size() == 2);
  CHECK(std::string(json(events[0].data).doc["schema"].GetString()) != std::string(json(events[1].data).doc["schema"].GetString()));
  CHECK(events[0].replay_id < events[1].replay_id);
}

TEST_CASE("a push with userIds reaches only those users, counts their subscribers and says who is online") {
  fixture f;
  const std::string id = f.create("StreamingChannel", R"({"Name":"/u/targeted"})");
  // The CometD server counts subscribers; here user 005A has two clients on the channel.
  f.bus.set_subscriber_counter([](const std::string& channel, const std::string& user) -> std::size_t {
    return channel == "/u/targeted" && user == "005A00000000001AAA" ? 2 : 0;
  });
  auto r = f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push",
                  R"({"pushEvents":[{"payload":"for A and B","userIds":["005A00000000001AAA","005B00000000001AAA"]},)"
                  R"({"payload":"for everyone"}]})");
  REQUIRE(r.status == 200);
  CHECK(r.body ==
        R"([{"fanoutCount":2,"userOnlineStatus":{"005A00000000001AAA":true,"005B00000000001AAA":false}},)"
        R"({"fanoutCount":-1,"userOnlineStatus":{}}])");
  auto events = f.on("/u/targeted");
  REQUIRE(events.size() == 2);
  CHECK(events[0].audience == std::vector<std::string>{"005A00000000001AAA", "005B00000000001AAA"});
  CHECK(sfstream::emulator::is_for_user(events[0], "005A00000000001AAA"));
  CHECK_FALSE(sfstream::emulator::is_for_user(events[0], "005C00000000001AAA"));
  CHECK(events[1].audience.empty());
  CHECK(sfstream::emulator::is_for_user(events[1], "005C00000000001AAA"));
  check_error(f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel/" + id + "/push",
                     R"({"pushEvents":[{"payload":"x","userIds":[42]}]})"),
              400, "JSON_PARSER_ERROR");
}
