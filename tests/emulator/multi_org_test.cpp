// Several orgs in one emulator: each with its own port, org id, users, sessions, channels and
// limits. A login anywhere reaches the user's org; events and limits never cross orgs.
#include <doctest/doctest.h>

#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "emulator/cometd/cometd_server.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"
#include "tests/emulator/cometd_harness.hpp"
#include "tests/emulator/emulator_clients.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::emulator_options;
using sfstream::emulator::org_emulator;
using sfstream::emulator::org_options;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::running_client;
using sfstream::testing::wait_until;
using emulator_test::login_config;
using emulator_test::received_events;

emulator_options two_orgs() {
  auto o = emulator_fixture::default_options();
  o.data.platform_events = {{"Ping__e", {{"Body__c", "string", "", false}}}};
  auto west = org_options::demo("west", 2);
  west.data.platform_events = o.data.platform_events;
  o.more_orgs.push_back(west);
  return o;
}

std::string soap_login_body(const std::string& user, const std::string& password) {
  return R"(<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:n1="urn:partner.soap.sforce.com"><env:Body><n1:login><n1:username>)" +
         user + "</n1:username><n1:password>" + password + "</n1:password></n1:login></env:Body></env:Envelope>";
}

void publish(emulator_fixture& fixture, const std::string& org, const std::string& body) {
  auto r = fixture.call([&](org_emulator& o) {
    return o.org_named(org)->rest().publish_platform_event("Ping__e", "{\"Body__c\":\"" + body + "\"}");
  });
  REQUIRE(static_cast<bool>(r));
}

}  // namespace

TEST_CASE("orgs: each org has its own port, org id and user, and startup_json lists them all") {
  emulator_fixture fixture(two_orgs());
  auto& primary = fixture.org();
  REQUIRE(primary.org_count() == 2);
  org_emulator* west = primary.org_named("west");
  REQUIRE(west != nullptr);
  CHECK(&primary.org(1) == west);
  CHECK(primary.org_named("nowhere") == nullptr);
  CHECK(west->base_url() != primary.base_url());
  CHECK(west->ca_file() == primary.ca_file());
  CHECK(west->options().org_id == "00DDM0000000002AAA");
  const std::string line = primary.startup_json();
  CHECK(line.find(R"("orgs":[{"name":"default","org_id":"00DDM0000000001AAA","base_url":")" +
                  primary.base_url()) != std::string::npos);
  CHECK(line.find(R"({"name":"west","org_id":"00DDM0000000002AAA","base_url":")" + west->base_url() +
                  R"(","login_url":")" + west->login_url() +
                  R"(","username":"demo@west.sfstream.local")") != std::string::npos);
}

TEST_CASE("orgs: a SOAP login at any org's login URL answers with the user's org and its session works only there") {
  auto options = two_orgs();
  options.tls = false;
  emulator_test::harness h(options);
  const std::string west_url = h.run([&] { return h.org().org_named("west")->base_url(); });
  auto r = h.send("POST", "/services/Soap/u/59.0",
                  soap_login_body("demo@west.sfstream.local", "demo-passDEMOTOKEN0000000000000"),
                  {{"Content-Type", "text/xml"}, {"SOAPAction", "login"}});
  REQUIRE(r.status == 200);
  CHECK(r.body.find("<serverUrl>" + west_url + "/services/Soap/u/59.0/00DDM0000000002") != std::string::npos);
  CHECK(r.body.find("<organizationId>00DDM0000000002AAA</organizationId>") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.body, m, std::regex("<sessionId>([^<]+)</sessionId>")));
  const std::string session = m[1].str();
  CHECK(session.rfind("00DDM0000000002!", 0) == 0);
  // The primary org does not know west's session.
  auto here = h.send("GET", "/services/data/v59.0/limits", "", {{"Authorization", "Bearer " + session}});
  CHECK(here.status == 401);
}

TEST_CASE("orgs: an event published in one org reaches only that org's client") {
  emulator_fixture fixture(two_orgs());
  io_thread io;
  org_emulator* west = fixture.call([](org_emulator& o) { return o.org_named("west"); });
  received_events seen_default, seen_west;
  running_client a(io, login_config(fixture, fixture.org(), io));
  running_client b(io, login_config(fixture, *west, io));
  REQUIRE_FALSE(a.client->subscribe("/event/Ping__e", sfstream::replay_new, seen_default.callbacks()));
  REQUIRE_FALSE(b.client->subscribe("/event/Ping__e", sfstream::replay_new, seen_west.callbacks()));
  a.run();
  b.run();
  REQUIRE(wait_until([&] {
    return fixture.call([](org_emulator& o) {
      return o.events().subscribers("/event/Ping__e", o.options().users.front().user_id) == 1 &&
             o.org_named("west")->events().subscribers("/event/Ping__e",
                                                        o.org_named("west")->options().users.front().user_id) == 1;
    });
  }));
  for (int i = 0; i < 3; ++i) {
    publish(fixture, "default", "to-default-" + std::to_string(i));
    publish(fixture, "west", "to-west-" + std::to_string(i));
  }
  REQUIRE(wait_until([&] { return seen_default.size() >= 3 && seen_west.size() >= 3; }));
  std::this_thread::sleep_for(300ms);  // nothing else may arrive
  CHECK(seen_default.size() == 3);
  CHECK(seen_west.size() == 3);
  CHECK(seen_default.count("to-default-") == 3);
  CHECK(seen_west.count("to-west-") == 3);
  CHECK(seen_default.count("to-west-") == 0);
  CHECK(seen_west.count("to-default-") == 0);
  CHECK(a.stop());
  CHECK(b.stop());
}

TEST_CASE("orgs: one org's daily event limit does not limit the other org") {
  auto options = two_orgs();
  options.daily_event_limit = 2;  // the default org only
  emulator_fixture fixture(options);
  io_thread io;
  org_emulator* west = fixture.call([](org_emulator& o) { return o.org_named("west"); });
  received_events seen_default, seen_west;
  running_client a(io, login_config(fixture, fixture.org(), io));
  running_client b(io, login_config(fixture, *west, io));
  REQUIRE_FALSE(a.client->subscribe("/event/Ping__e", sfstream::replay_new, seen_default.callbacks()));
  REQUIRE_FALSE(b.client->subscribe("/event/Ping__e", sfstream::replay_new, seen_west.callbacks()));
  a.run();
  b.run();
  REQUIRE(wait_until([&] {
    return fixture.call([](org_emulator& o) {
      return o.client_count() == 1 && o.org_named("west")->client_count() == 1;
    });
  }));
  // Give both subscriptions time to be answered before publishing.
  REQUIRE(wait_until([&] {
    return fixture.call([](org_emulator& o) {
      return o.events().subscribers("/event/Ping__e", o.options().users.front().user_id) == 1 &&
             o.org_named("west")->events().subscribers("/event/Ping__e",
                                                        o.org_named("west")->options().users.front().user_id) == 1;
    });
  }));
  for (int i = 0; i < 5; ++i) {
    publish(fixture, "default", "to-default-" + std::to_string(i));
    publish(fixture, "west", "to-west-" + std::to_string(i));
  }
  REQUIRE(wait_until([&] { return seen_west.size() >= 5; }));
  CHECK(seen_west.count("to-west-") == 5);
  CHECK(wait_until([&] { return seen_default.size() >= 2; }));
  std::this_thread::sleep_for(300ms);
  CHECK(seen_default.size() == 2);  // the default org stopped at its limit
  CHECK(fixture.call([](org_emulator& o) { return o.cometd().deliveries_today(); }) == 2);
  a.stop();
  CHECK(b.stop());
}
