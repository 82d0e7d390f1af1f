// End to end over HTTPS against the org emulator: one client streams every channel kind
// (PushTopic, generic, platform event, CDC) and the exact JSON shape of each is checked; later
// clients replay with -2 and from a stored id; and the emulator's fault controls not covered in
// tests/client leave the handler with exactly the published events.
#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/replay_store.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;

const std::string topic_channel = "/topic/E2EAccounts";
const std::string generic_channel = "/u/e2e";
const std::string event_channel = "/event/Interop_Signal__e";
const std::string cdc_channel = "/data/AccountChangeEvent";
const std::vector<std::string> all_channels = {topic_channel, generic_channel, event_channel, cdc_channel};

/// Events per channel, thread-safe.
struct recorder {
  mutable std::mutex mutex;
  std::map<std::string, std::vector<sfstream::event>> events;
  std::map<std::string, std::vector<std::int64_t>> subscribed_from;
  std::vector<sfstream::error_info> rejections;
  std::vector<sfstream::gap_record> gaps;

  sfstream::subscription_callbacks callbacks(const std::string& channel) {
    sfstream::subscription_callbacks c;
    c.on_event = [this](const sfstream::event& e) {
      std::lock_guard lock{mutex};
      events[e.channel()].push_back(e);
    };
    c.on_subscribed = [this, channel](std::int64_t from) {
      std::lock_guard lock{mutex};
      subscribed_from[channel].push_back(from);
    };
    c.on_rejected = [this](const sfstream::error_info& e) {
      std::lock_guard lock{mutex};
      rejections.push_back(e);
    };
    c.on_gap = [this](const sfstream::gap_record& g) {
      std::lock_guard lock{mutex};
      gaps.push_back(g);
    };
    return c;
  }
  std::size_t count(const std::string& channel) const {
    std::lock_guard lock{mutex};
    auto it = events.find(channel);
    return it == events.end() ? 0 : it->second.size();
  }
  std::size_t subscriptions(const std::string& channel) const {
    std::lock_guard lock{mutex};
    auto it = subscribed_from.find(channel);
    return it == subscribed_from.end() ? 0 : it->second.size();
  }
  std::vector<std::int64_t> replay_ids(const std::string& channel) const {
    std::lock_guard lock{mutex};
    std::vector<std::int64_t> out;
    auto it = events.find(channel);
    if (it == events.end()) return out;
    for (auto& e : it->second) out.push_back(e.replay_id().value_or(-100));
    return out;
  }
  std::vector<sfstream::event> of(const std::string& channel) const {
    std::lock_guard lock{mutex};
    auto it = events.find(channel);
    return it == events.end() ? std::vector<sfstream::event>{} : it->second;
  }
};

sfstream::emulator::emulator_options org_options() {
  auto o = emulator_fixture::default_options();
  sfstream::emulator::data::platform_event_definition signal;
  signal.name = "Interop_Signal__e";
  signal.fields = {{"Message__c", "string", "", false}};
  o.data.platform_events = {signal};
  o.data.cdc_entities = {"Account"};
  return o;
}

sfstream::client_config soap_config(emulator_fixture& org, io_thread& io) {
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
  config.network = net;
  config.jitter_seed = 5;
  return config;
}

using sfstream::testing::running_client;

void create_topic(emulator_fixture& org) {
  auto r = org.call([](org_emulator& o) {
    sfstream::emulator::data::pushtopic_spec spec;
    spec.name = "E2EAccounts";
    spec.query = "SELECT Id, Name FROM Account";
    return o.rest().create_pushtopic(spec);
  });
  REQUIRE(static_cast<bool>(r));
}

void create_generic_channel(emulator_fixture& org) {
  auto r = org.call([](org_emulator& o) { return o.rest().create_streaming_channel(generic_channel); });
  REQUIRE(static_cast<bool>(r));
}

std::string create_account(emulator_fixture& org, const std::string& name) {
  auto r = org.call([&](org_emulator& o) { return o.rest().create_record("Account", "{\"Name\":\"" + name + "\"}"); });
  REQUIRE(static_cast<bool>(r));
  return r.id;
}

/// One event of each kind with the index `i` in its text.
void publish_one_of_each(emulator_fixture& org, int i) {
  const auto n = std::to_string(i);
  create_account(org, "Acct " + n);  // the PushTopic event and the CDC event
  auto pushed = org.call([&](org_emulator& o) { return o.rest().push_generic(generic_channel, "generic " + n); });
  REQUIRE(static_cast<bool>(pushed));
  auto published = org.call([&](org_emulator& o) {
    return o.rest().publish_platform_event("Interop_Signal__e", "{\"Message__c\":\"signal " + n + "\"}");
  });
  REQUIRE(static_cast<bool>(published));
}

const rapidjson::Value* member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string string_at(const rapidjson::Value* v) { return v != nullptr && v->IsString() ? v->GetString() : "<absent>"; }

/// Checks the event's JSON: channel, data.event.replayId matching replay_id(), and the fields of
/// its kind, with `i` the index its text carries.
void check_shape(const sfstream::event& e, int i) {
  CAPTURE(e.json());
  const auto n = std::to_string(i);
  rapidjson::Document doc;
  doc.Parse(e.json().data(), e.json().size());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(string_at(member(doc, "channel")) == e.channel());
  const auto* data = member(doc, "data");
  REQUIRE(data != nullptr);
  const auto* ev = member(*data, "event");
  REQUIRE(ev != nullptr);
  const auto* replay = member(*ev, "replayId");
  REQUIRE(replay != nullptr);
  REQUIRE(replay->IsInt64());
  REQUIRE(e.replay_id().has_value());
  CHECK(replay->GetInt64() == *e.replay_id());
  if (e.channel() == topic_channel) {
    CHECK(e.kind() == sfstream::channel_kind::topic);
    CHECK(string_at(member(*ev, "type")) == "created");
    CHECK(string_at(member(*ev, "createdDate")) != "<absent>");
    const auto* sobject = member(*data, "sobject");
    REQUIRE(sobject != nullptr);
    CHECK(string_at(member(*sobject, "Name")) == "Acct " + n);
    CHECK(string_at(member(*sobject, "Id")).size() == 18);
    const auto typed = e.as_pushtopic();
    CHECK(typed.type == "created");
    CHECK(typed.sobject_json.find("\"Acct " + n + "\"") != std::string::npos);
  } else if (e.channel() == generic_channel) {
    CHECK(e.kind() == sfstream::channel_kind::generic);
    CHECK(string_at(member(*data, "payload")) == "generic " + n);
    CHECK(string_at(member(*ev, "createdDate")) != "<absent>");
    CHECK(e.as_generic().payload == "generic " + n);
  } else if (e.channel() == event_channel) {
    CHECK(e.kind() == sfstream::channel_kind::platform_event);
    CHECK_FALSE(string_at(member(*data, "schema")).empty());
    CHECK(string_at(member(*data, "schema")) != "<absent>");
    const auto* payload = member(*data, "payload");
    REQUIRE(payload != nullptr);
    CHECK(string_at(member(*payload, "Message__c")) == "signal " + n);
    CHECK(string_at(member(*payload, "CreatedById")) != "<absent>");
    CHECK(string_at(member(*payload, "CreatedDate")) != "<absent>");
    CHECK(string_at(member(*ev, "EventUuid")).size() == 36);
    const auto typed = e.as_platform_event();
    CHECK(typed.schema == string_at(member(*data, "schema")));
    REQUIRE(typed.event_uuid.has_value());
    CHECK(*typed.event_uuid == string_at(member(*ev, "EventUuid")));
  } else if (e.channel() == cdc_channel) {
    CHECK(e.kind() == sfstream::channel_kind::change_data_capture);
    CHECK_FALSE(string_at(member(*data, "schema")).empty());
    const auto* payload = member(*data, "payload");
    REQUIRE(payload != nullptr);
    CHECK(string_at(member(*payload, "Name")) == "Acct " + n);
    const auto* header = member(*payload, "ChangeEventHeader");
    REQUIRE(header != nullptr);
    CHECK(string_at(member(*header, "entityName")) == "Account");
    CHECK(string_at(member(*header, "changeType")) == "CREATE");
    const auto* ids = member(*header, "recordIds");
    REQUIRE(ids != nullptr);
    REQUIRE(ids->IsArray());
    CHECK(ids->Size() == 1);
    const auto typed = e.as_change();
    CHECK(typed.entity_name == "Account");
    CHECK(typed.change_type == "CREATE");
    CHECK(typed.record_ids.size() == 1);
  } else {
    FAIL("unexpected channel " << e.channel());
  }
}

/// Waits until each channel has `n` events.
bool all_have(const recorder& seen, std::size_t n, std::chrono::milliseconds limit = 15s) {
  return wait_until(
      [&] {
        for (auto& c : all_channels)
          if (seen.count(c) < n) return false;
        return true;
      },
      limit);
}

}  // namespace

TEST_CASE("every channel kind streams with its exact shape and replays with -1, -2 and a stored id") {
  emulator_fixture org{org_options()};
  create_topic(org);
  create_generic_channel(org);
  std::map<std::string, std::vector<std::int64_t>> first_ids;
  {
    io_thread io;
    recorder seen;
    running_client c{io, soap_config(org, io)};
    for (auto& ch : all_channels) REQUIRE_FALSE(c.client->subscribe(ch, sfstream::replay_new, seen.callbacks(ch)));
    c.run();
    REQUIRE(wait_until([&] {
      for (auto& ch : all_channels)
        if (seen.subscriptions(ch) < 1) return false;
      return true;
    }));
    for (int i = 0; i < 3; ++i) publish_one_of_each(org, i);
    REQUIRE(all_have(seen, 3));
    std::this_thread::sleep_for(300ms);
    for (auto& ch : all_channels) {
      CAPTURE(ch);
      const auto events = seen.of(ch);
      REQUIRE(events.size() == 3);
      for (int i = 0; i < 3; ++i) check_shape(events[static_cast<std::size_t>(i)], i);
      first_ids[ch] = seen.replay_ids(ch);
      CHECK(std::is_sorted(first_ids[ch].begin(), first_ids[ch].end()));
      CHECK(wait_until([&] { return c.client->committed_replay_id(ch) == first_ids[ch].back(); }, 5s));
    }
    std::lock_guard lock{seen.mutex};
    CHECK(seen.rejections.empty());
    CHECK(seen.gaps.empty());
    REQUIRE(c.stop());
    CHECK_FALSE(c.result);
  }
  {
    io_thread io;
    recorder seen;
    running_client c{io, soap_config(org, io)};
    for (auto& ch : all_channels) REQUIRE_FALSE(c.client->subscribe(ch, sfstream::replay_all, seen.callbacks(ch)));
    c.run();
    REQUIRE(all_have(seen, 3));
    std::this_thread::sleep_for(500ms);
    for (auto& ch : all_channels) {
      CAPTURE(ch);
      CHECK(seen.replay_ids(ch) == first_ids[ch]);
      const auto events = seen.of(ch);
      for (std::size_t i = 0; i < events.size(); ++i) check_shape(events[i], static_cast<int>(i));
    }
    REQUIRE(c.stop());
  }
  {
    io_thread io;
    recorder seen;
    auto config = soap_config(org, io);
    auto store = sfstream::make_memory_replay_store();
    std::map<std::string, sfstream::replay_position> positions;
    for (auto& ch : all_channels) positions[ch] = {first_ids[ch][1], std::chrono::system_clock::now()};
    REQUIRE_FALSE(store->save(positions));
    config.store = store;
    running_client c{io, std::move(config)};
    for (auto& ch : all_channels) REQUIRE_FALSE(c.client->subscribe(ch, sfstream::replay_new, seen.callbacks(ch)));
    c.run();
    REQUIRE(all_have(seen, 1));
    std::this_thread::sleep_for(500ms);
    for (auto& ch : all_channels) {
      CAPTURE(ch);
      CHECK(seen.replay_ids(ch) == std::vector<std::int64_t>{first_ids[ch][2]});
      const auto events = seen.of(ch);
      if (!events.empty()) check_shape(events[0], 2);
      std::lock_guard lock{seen.mutex};
      REQUIRE(seen.subscribed_from[ch].size() == 1);
      CHECK(seen.subscribed_from[ch][0] == first_ids[ch][1]);
    }
    std::lock_guard lock{seen.mutex};
    CHECK(seen.gaps.empty());
    REQUIRE(c.stop());
  }
}

namespace {

std::vector<std::string> account_names(const recorder& seen) {
  std::vector<std::string> out;
  for (auto& e : seen.of(topic_channel)) {
    const auto sobject = e.as_pushtopic().sobject_json;
    auto at = sobject.find("\"Name\":\"");
    if (at == std::string::npos) continue;
    at += 8;
    out.push_back(sobject.substr(at, sobject.find('"', at) - at));
  }
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

/// Streams 2 events, applies `fault`, streams 4 more: the handler must see exactly the 6, in
/// order, and the committed id must be the last one's.
template <class Fault>
void run_fault_case(Fault fault, std::chrono::milliseconds limit = 20s,
                    const std::function<void(sfstream::client_config&)>& configure = {},
                    const std::function<void(const sfstream::client_metrics&)>& check = {}) {
  emulator_fixture org{org_options()};
  create_topic(org);
  io_thread io;
  recorder seen;
  auto config = soap_config(org, io);
  if (configure) configure(config);
  running_client c{io, std::move(config)};
  REQUIRE_FALSE(c.client->subscribe(topic_channel, sfstream::replay_new, seen.callbacks(topic_channel)));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscriptions(topic_channel) == 1; }));
  for (auto& name : numbered("F", 0, 2)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.count(topic_channel) == 2; }));
  REQUIRE(wait_until([&] { return c.client->committed_replay_id(topic_channel).has_value(); }));
  org.call([&](org_emulator& o) {
    fault(o);
    return 0;
  });
  for (auto& name : numbered("F", 2, 6)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.count(topic_channel) >= 6; }, limit));
  std::this_thread::sleep_for(300ms);
  CHECK(account_names(seen) == numbered("F", 0, 6));
  const auto ids = seen.replay_ids(topic_channel);
  CHECK(wait_until([&] { return c.client->committed_replay_id(topic_channel) == ids.back(); }, 5s));
  org.call([](org_emulator& o) {
    o.set_reply_delay(0ms);
    return 0;
  });
  if (check) check(c.client->metrics());
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}

}  // namespace

TEST_CASE("delayed replies still deliver exactly the published events") {
  run_fault_case([](org_emulator& o) { o.set_reply_delay(300ms); });
}

TEST_CASE("an unsolicited disconnect of every client re-handshakes and delivers exactly the published events") {
  run_fault_case([](org_emulator& o) { o.disconnect_all_clients(); });
}

TEST_CASE("a rotated affinity cookie after the server forgot the client delivers exactly the published events") {
  run_fault_case([](org_emulator& o) {
    o.rotate_affinity_cookie();
    o.forget_all_clients();
  });
}

// The client backs off at least a minute on a limit error (bayeux session_config), longer than a
// test may take: this checks that it backs off instead of looping, then that a client resuming
// from the same committed store gets exactly the events the first one did not handle.
TEST_CASE("a server too busy makes the client back off, and the committed store resumes exactly the rest") {
  emulator_fixture org{org_options()};
  create_topic(org);
  auto store = sfstream::make_memory_replay_store();
  recorder seen;
  {
    io_thread io;
    auto config = soap_config(org, io);
    config.store = store;
    running_client c{io, std::move(config)};
    REQUIRE_FALSE(c.client->subscribe(topic_channel, sfstream::replay_new, seen.callbacks(topic_channel)));
    c.run();
    REQUIRE(wait_until([&] { return seen.subscriptions(topic_channel) == 1; }));
    for (auto& name : numbered("F", 0, 2)) create_account(org, name);
    REQUIRE(wait_until([&] { return seen.count(topic_channel) == 2; }));
    org.call([](org_emulator& o) {
      o.make_too_busy(1);
      return 0;
    });
    for (auto& name : numbered("F", 2, 6)) create_account(org, name);
    REQUIRE(wait_until([&] { return c.client->state() == sfstream::client_state::backing_off; }, 10s));
    const auto before = c.client->metrics();
    std::this_thread::sleep_for(1s);
    const auto after = c.client->metrics();
    CHECK(after.handshakes == before.handshakes);  // no tight loop against the limit
    CHECK(c.client->state() == sfstream::client_state::backing_off);
    REQUIRE(c.stop());
  }
  const auto first_run = seen.count(topic_channel);
  CHECK(first_run < 6);
  {
    io_thread io;
    auto config = soap_config(org, io);
    config.store = store;
    running_client c{io, std::move(config)};
    REQUIRE_FALSE(c.client->subscribe(topic_channel, sfstream::replay_new, seen.callbacks(topic_channel)));
    c.run();
    REQUIRE(wait_until([&] { return seen.count(topic_channel) >= 6; }));
    std::this_thread::sleep_for(300ms);
    CHECK(account_names(seen) == numbered("F", 0, 6));
    REQUIRE(c.stop());
    CHECK_FALSE(c.result);
  }
}

TEST_CASE("replies that are not JSON are retried and deliver exactly the published events") {
  run_fault_case([](org_emulator& o) { o.fail_next_cometd_requests(2, sfstream::emulator::fault_kind::not_json); });
}

// Salesforce's rarer Bayeux failures, each forced by the
// emulator's fault control: the client rides through every one without losing an event.
using message_fault = sfstream::emulator::fault_kind;

TEST_CASE("connects advised multiple-clients wait their interval and deliver exactly the published events") {
  run_fault_case([](org_emulator& o) { o.inject_bayeux_fault(message_fault::multiple_clients, 2); });
}

TEST_CASE("403::Unknown client with reconnect none re-handshakes and delivers exactly the published events") {
  run_fault_case([](org_emulator& o) { o.inject_bayeux_fault(message_fault::unknown_client_final, 1); },
                 20s, {}, [](const sfstream::client_metrics& m) {
                   auto it = m.rehandshakes_by_cause.find("unknown_client");
                   CHECK((it != m.rehandshakes_by_cause.end() && it->second >= 1));
                 });
}

TEST_CASE("the bare 403 unknown-client page without channel or id re-handshakes and delivers exactly the published events") {
  run_fault_case([](org_emulator& o) { o.inject_bayeux_fault(message_fault::unknown_client_page, 1); },
                 20s, {}, [](const sfstream::client_metrics& m) {
                   // A new handshake, never a connect retried on the forgotten clientId.
                   CHECK(m.handshakes >= 2);
                 });
}

TEST_CASE("a connect refused because the session's user differs from the handshake's logs in again, re-handshakes and delivers exactly the published events") {
  run_fault_case([](org_emulator& o) { o.inject_bayeux_fault(message_fault::session_user_mismatch, 1); },
                 20s, {}, [](const sfstream::client_metrics& m) {
                   CHECK(m.handshakes >= 2);
                   CHECK(m.authentications >= 2);  // a fresh token, not the cached one
                 });
}

TEST_CASE("a handshake refused for the per-server connection limit backs off, then delivers exactly the published events") {
  run_fault_case(
      [](org_emulator& o) {
        o.inject_bayeux_fault(message_fault::connection_limit, 1);
        o.forget_all_clients();  // the next connect earns Unknown client, then a handshake
      },
      20s,
      [](sfstream::client_config& config) {
        config.limit_backoff_initial = 100ms;
        config.limit_backoff_max = 200ms;
      });
}

TEST_CASE("a subscribe failure without a subscription field is reported for its own channel while the other streams") {
  emulator_fixture org{org_options()};
  create_topic(org);
  io_thread io;
  recorder seen;
  running_client c{io, soap_config(org, io)};
  REQUIRE_FALSE(c.client->subscribe(topic_channel, sfstream::replay_new, seen.callbacks(topic_channel)));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscriptions(topic_channel) == 1; }));
  org.call([](org_emulator& o) {
    o.inject_bayeux_fault(message_fault::bare_subscribe_failure, 1);
    return 0;
  });
  REQUIRE_FALSE(c.client->subscribe(generic_channel, sfstream::replay_new, seen.callbacks(generic_channel)));
  REQUIRE(wait_until([&] {
    std::lock_guard lock{seen.mutex};
    return !seen.rejections.empty();
  }));
  {
    std::lock_guard lock{seen.mutex};
    REQUIRE(seen.rejections.size() == 1);
    CHECK(seen.rejections.front().diag.context.find(generic_channel) != std::string::npos);
    CHECK(seen.rejections.front().diag.server_text.find("Restricted channel") != std::string::npos);
  }
  for (auto& name : numbered("S", 0, 3)) create_account(org, name);
  REQUIRE(wait_until([&] { return seen.count(topic_channel) == 3; }));
  CHECK(seen.subscriptions(generic_channel) == 0);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}
