// The data controls a polling test drives over HTTP: a late commit and the API allocation,
// through the emulator's control router.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "emulator/cometd/cometd_server.hpp"
#include "emulator/control/control_api.hpp"
#include "support/emulator_fixture.hpp"

using sfstream::testing::emulator_fixture;

namespace {

sfstream::transport::http_response control(emulator_fixture& org, const std::string& path, const std::string& body) {
  return org.call([&](sfstream::emulator::org_emulator& o) {
    sfstream::transport::http_request req;
    req.method = "POST";
    req.target = path;
    req.body = body;
    return sfstream::emulator::control::handle_control(o, req);
  });
}

std::string field_of(const std::string& json, const char* name) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  return doc.IsObject() && doc.HasMember(name) && doc[name].IsString() ? doc[name].GetString() : std::string();
}

}  // namespace

TEST_CASE("the commit-late control writes a record stamped in the past and names it") {
  emulator_fixture org;
  auto made = control(org, "/_emulator/data/commit-late",
                      R"({"object":"Account","fields":{"Name":"Slow"},"systemModstamp":"2020-01-02T03:04:05.678Z"})");
  REQUIRE_MESSAGE(made.status == 200, made.body);
  const std::string id = field_of(made.body, "id");
  REQUIRE(id.size() == 18);
  const auto record = org.call([&](sfstream::emulator::org_emulator& o) { return *o.rest().get_record("Account", id); });
  CHECK(field_of(record, "SystemModstamp") == "2020-01-02T03:04:05.678+0000");
  CHECK(field_of(record, "CreatedDate") == "2020-01-02T03:04:05.678+0000");
  auto updated = control(org, "/_emulator/data/commit-late",
                         R"({"object":"Account","id":")" + id + R"(","fields":{"Name":"Slower"},"secondsAgo":1})");
  REQUIRE_MESSAGE(updated.status == 200, updated.body);
  const auto after = org.call([&](sfstream::emulator::org_emulator& o) { return *o.rest().get_record("Account", id); });
  CHECK(field_of(after, "Name") == "Slower");
  CHECK(field_of(after, "SystemModstamp") > "2020-01-02T03:04:05.678+0000");
  CHECK(field_of(after, "CreatedDate") == "2020-01-02T03:04:05.678+0000");
  // Bad bodies are 400 with a reason; the future is refused.
  for (const char* bad : {R"({"fields":{"Name":"x"},"secondsAgo":1})", R"({"object":"Account","secondsAgo":1})",
                          R"({"object":"Account","fields":{"Name":"x"}})",
                          R"({"object":"Account","fields":{"Name":"x"},"systemModstamp":"soon"})",
                          R"({"object":"Account","fields":{"Name":"x"},"systemModstamp":"2100-01-01T00:00:00Z"})",
                          R"({"object":"Nope","fields":{"Name":"x"},"secondsAgo":1})"}) {
    INFO(std::string(bad));
    const auto r = control(org, "/_emulator/data/commit-late", bad);
    CHECK(r.status == 400);
    CHECK_FALSE(field_of(r.body, "error").empty());
  }
}

TEST_CASE("the api-allocation control sets DailyApiRequests") {
  emulator_fixture org;
  auto set = control(org, "/_emulator/data/api-allocation", R"({"max":100,"remaining":7})");
  REQUIRE_MESSAGE(set.status == 200, set.body);
  CHECK(org.call([](sfstream::emulator::org_emulator& o) { return o.rest().api_requests_remaining(); }) == 7);
  CHECK(control(org, "/_emulator/data/api-allocation", R"({"max":-1})").status == 400);
  CHECK(control(org, "/_emulator/data/nothing", "{}").status == 404);
}

TEST_CASE("the daily-event-limit control sets the limit and a reset starts a new day") {
  auto options = emulator_fixture::default_options();
  options.daily_event_limit = 2;
  emulator_fixture org(options);
  auto set = control(org, "/_emulator/cometd/daily-event-limit", R"({"limit":0})");
  REQUIRE_MESSAGE(set.status == 200, set.body);
  CHECK(control(org, "/_emulator/cometd/daily-event-limit", R"({"limit":3,"reset":true})").status == 200);
  CHECK(org.call([](sfstream::emulator::org_emulator& o) { return o.cometd().deliveries_today(); }) == 0);
  const auto bad = control(org, "/_emulator/cometd/daily-event-limit", R"({"limit":-1})");
  CHECK(bad.status == 400);
  CHECK(field_of(bad.body, "error").find("limit") != std::string::npos);
  CHECK(control(org, "/_emulator/cometd/daily-event-limit", R"({"reset":true})").status == 400);
}
