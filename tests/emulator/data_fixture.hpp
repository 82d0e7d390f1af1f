// Shared fixture of the emulator data tests: a clock, an event bus that records every
// published event, and a rest_api driven through handle() or the direct calls.
#pragma once

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <set>
#include <string>
#include <vector>

#include "emulator/clock.hpp"
#include "emulator/data/rest_api.hpp"
#include "emulator/event_bus.hpp"

namespace data_test {

using namespace sfstream::emulator;

inline data::data_options default_options() {
  data::data_options o;
  o.seed = 42;
  o.custom_objects.push_back({"Invoice__c", "", {{"Amount__c", "number", "", false}, {"Status__c", "string", "", false},
                                                  {"Paid__c", "boolean", "", false}, {"Due__c", "date", "", false}}});
  o.platform_events.push_back({"Low_Ink__e", {{"Printer_Model__c", "string", "", false},
                                              {"Serial_Number__c", "string", "", true},
                                              {"Ink_Percentage__c", "number", "", false}}});
  o.cdc_entities = {"Account", "Contact", "Invoice__c"};
  return o;
}

/// A parsed JSON document that outlives the helper call.
struct json {
  rapidjson::Document doc;
  explicit json(const std::string& text) {
    doc.Parse(text.c_str(), text.size());
    REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " << text);
  }
  const rapidjson::Value& operator*() const { return doc; }
  const rapidjson::Value* operator->() const { return &doc; }
};

inline std::set<std::string> keys(const rapidjson::Value& object) {
  std::set<std::string> out;
  for (const auto& m : object.GetObject()) out.insert(m.name.GetString());
  return out;
}

struct fixture {
  sfstream::emulator::clock clk;
  event_bus bus{clk};
  data::rest_api api;
  std::vector<stored_event> events;
  data::caller who{"0055f000000AbCdAAE", "00D5f000000EmUlAAK", "admin@emulator.local"};

  explicit fixture(data::data_options options = default_options()) : api(clk, bus, std::move(options)) {
    bus.set_publish_listener([this](const stored_event& e) { events.push_back(e); });
  }

  sfstream::transport::http_response call(const std::string& method, const std::string& target,
                                          const std::string& body = {},
                                          sfstream::transport::header_list headers = {}) {
    sfstream::transport::http_request req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    return api.handle(req, who);
  }

  /// Creates through REST and returns the new id (checks the 201 reply shape).
  std::string create(const std::string& object, const std::string& body) {
    auto r = call("POST", "/services/data/v59.0/sobjects/" + object, body);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    json reply(r.body);
    REQUIRE(reply->IsObject());
    CHECK(keys(*reply) == std::set<std::string>{"id", "success", "errors"});
    CHECK((*reply)["success"].GetBool());
    return (*reply)["id"].GetString();
  }

  std::vector<stored_event> on(const std::string& channel) const {
    std::vector<stored_event> out;
    for (const auto& e : events)
      if (e.channel == channel) out.push_back(e);
    return out;
  }
};

/// Checks a Salesforce REST error reply: status and the single error's code.
inline void check_error(const sfstream::transport::http_response& r, unsigned status, const std::string& code) {
  CHECK_MESSAGE(r.status == status, r.body);
  json reply(r.body);
  REQUIRE(reply->IsArray());
  REQUIRE(reply->Size() == 1);
  const auto& e = (*reply)[0];
  CHECK(e["errorCode"].GetString() == code);
  CHECK(e["message"].IsString());
}

}  // namespace data_test
