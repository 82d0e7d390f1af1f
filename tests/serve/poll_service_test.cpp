// The service's polling against a real emulator, in process: a poll connection delivering
// creates, updates and deletes exactly once to a file sink and resuming from its stored cursor
// after a restart; a streaming connection whose org runs out of daily events switching to its
// fallback polling and back, with every change delivered once per channel, the gap path when
// its stored replay id is no longer retained on return, and a restart while polling.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "emulator/cometd/cometd_server.hpp"
#include "serve/metrics.hpp"
#include "serve/service.hpp"
#include "support/emulator_fixture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace sfstream;
using namespace sfstream::serve;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;
using sfstream::testing::wait_until;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() /
           ("sfstream-serve-poll-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
    std::ofstream(path / "pw") << "demo-pass";
    std::ofstream(path / "token") << "DEMOTOKEN0000000000000";
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// The [service] table and one [[connection]] with its auth, network and file sink; `body`
/// adds the connection's keys (before its sub-tables) and `tables` its other tables.
std::string config_text(const temp_dir& dir, emulator_fixture& org, const std::string& body,
                        const std::string& tables) {
  return "[service]\nstore = \"" + (dir.path / "positions.json").string() +
         "\"\nthreads = 2\nlog_level = \"warning\"\n"
         "[[connection]]\nname = \"acme\"\nrestart_backoff = 0.3\n" +
         body + "[connection.auth]\nlogin_url = \"" + org.org().base_url() +
         "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" + (dir.path / "pw").string() +
         "\"\nsecurity_token_file = \"" + (dir.path / "token").string() +
         "\"\n[connection.network]\nca_file = \"" + org.org().ca_file() +
         "\"\n[connection.sink]\ntype = \"file\"\npath = \"" + (dir.path / "out.jsonl").string() +
         "\"\n" + tables;
}

service_config parse(const std::string& text) {
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "test.toml", problems);
  for (const auto& p : problems) INFO(p.to_string());
  REQUIRE(config.has_value());
  return std::move(*config);
}

/// One line of the file sink: its channel and "<type>:<Id>".
struct line {
  std::string channel;
  std::string change;
};

std::vector<line> lines_of(const fs::path& p) {
  std::vector<line> out;
  std::ifstream in(p);
  for (std::string text; std::getline(in, text);) {
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["connection"].GetString()) == "acme");
    const auto& data = d["data"];
    out.push_back({d["channel"].GetString(), std::string(data["event"]["type"].GetString()) + ":" +
                                                 data["sobject"]["Id"].GetString()});
  }
  return out;
}

/// The changes written on `channel`, as a multiset.
std::multiset<std::string> changes_on(const fs::path& p, const std::string& channel) {
  std::multiset<std::string> out;
  for (const auto& l : lines_of(p))
    if (l.channel == channel) out.insert(l.change);
  return out;
}

std::string create(emulator_fixture& org, const std::string& name) {
  return org.call([&](org_emulator& o) {
    auto r = o.rest().create_record("Account", "{\"Name\":\"" + name + "\"}");
    REQUIRE(static_cast<bool>(r));
    return r.id;
  });
}

void update(emulator_fixture& org, const std::string& id, const std::string& name) {
  org.call([&](org_emulator& o) {
    REQUIRE(
        static_cast<bool>(o.rest().update_record("Account", id, "{\"Name\":\"" + name + "\"}")));
    return 0;
  });
}

void remove(emulator_fixture& org, const std::string& id) {
  org.call([&](org_emulator& o) {
    REQUIRE(static_cast<bool>(o.rest().delete_record("Account", id)));
    return 0;
  });
}

/// Moves the org's clock on, so that the next write of a record gets a new SystemModstamp.
void tick(emulator_fixture& org, std::chrono::milliseconds by = 1s) {
  org.call([by](org_emulator& o) {
    o.advance_clock(by);
    return 0;
  });
}

connection_status acme(const service& svc) {
  auto s = svc.snapshot();
  REQUIRE(s.connections.size() == 1);
  return s.connections[0];
}

std::uint64_t polls(const service& svc) {
  const auto c = acme(svc);
  return c.polling && !c.polling->objects.empty() ? c.polling->objects[0].polls : 0;
}

/// Waits until `n` more polls of the first object completed.
bool wait_polls(const service& svc, std::uint64_t n) {
  const auto target = polls(svc) + n;
  return wait_until([&] { return polls(svc) >= target; }, 15s);
}

std::multiset<std::string> set_of(std::initializer_list<std::string> items) {
  return items;
}

}  // namespace

TEST_CASE(
    "a poll connection delivers creates, updates and deletes once to a file sink and resumes from "
    "its stored cursor after a restart") {
  emulator_fixture org;
  temp_dir dir;
  const fs::path out = dir.path / "out.jsonl";
  const std::string before = create(org, "Before");  // older than the start: never delivered
  const std::string text =
      config_text(dir, org, "kind = \"poll\"\ninterval = 0.2\noverlap = 10\n",
                  "[[connection.object]]\nname = \"Account\"\nfields = [\"Name\"]\n");
  std::string a;
  std::string b;
  {
    service svc(parse(text));
    REQUIRE_FALSE(svc.start());
    REQUIRE(wait_polls(svc, 1));
    CHECK(acme(svc).state == connection_state::polling);
    tick(org);
    a = create(org, "A");
    b = create(org, "B");
    REQUIRE(wait_until([&] { return lines_of(out).size() >= 2; }));
    tick(org);
    update(org, a, "A2");
    remove(org, b);
    REQUIRE(wait_until([&] { return lines_of(out).size() >= 4; }));
    REQUIRE(wait_polls(svc, 2));
    const auto c = acme(svc);
    REQUIRE(c.polling);
    CHECK_FALSE(c.polling->fallback);
    REQUIRE(c.polling->objects.size() == 1);
    CHECK(c.polling->objects[0].channel == "/poll/Account");
    CHECK(c.polling->objects[0].events == 4);
    CHECK(c.polling->objects[0].api_calls >= c.polling->objects[0].polls);
    CHECK(c.polling->objects[0].cursor_time.has_value());
    CHECK(c.polling->api_calls > c.polling->objects[0].api_calls);  // /limits too
    CHECK(c.polling->api_remaining.has_value());
    const std::string metrics = render_metrics(svc.snapshot());
    CHECK(metrics.find("sfstream_poll_events_total{connection=\"acme\",object=\"Account\"} 4") !=
          std::string::npos);
    CHECK(metrics.find("sfstream_connection_state{connection=\"acme\",state=\"polling\"} 1") !=
          std::string::npos);
    const std::string status = render_status_json(svc.snapshot());
    CHECK(status.find("\"last_cursor_time\": \"") != std::string::npos);
    svc.stop();
    svc.wait();
    CHECK(acme(svc).state == connection_state::stopped);
  }
  CHECK(changes_on(out, "/poll/Account") ==
        set_of({"created:" + a, "created:" + b, "updated:" + a, "deleted:" + b}));

  // While the service is stopped.
  tick(org);
  const std::string c = create(org, "C");
  update(org, a, "A3");
  service svc(parse(text));
  REQUIRE_FALSE(svc.start());
  REQUIRE(wait_until([&] { return lines_of(out).size() >= 6; }));
  REQUIRE(wait_polls(svc, 3));
  svc.stop();
  svc.wait();
  const auto all = lines_of(out);
  CHECK(all.size() == 6);
  std::multiset<std::string> second;
  for (std::size_t i = 4; i < all.size(); ++i) second.insert(all[i].change);
  CHECK(second == set_of({"created:" + c, "updated:" + a}));
  CHECK(changes_on(out, "/poll/Account").count("created:" + before) == 0);
}

namespace {

/// An org whose daily event allocation is three events, with a PushTopic on Account.
sfstream::emulator::emulator_options limited_org_options() {
  auto o = emulator_fixture::default_options();
  o.daily_event_limit = 3;
  return o;
}

void create_topic(emulator_fixture& org) {
  auto r = org.call([](org_emulator& o) {
    sfstream::emulator::data::pushtopic_spec spec;
    spec.name = "Accounts";
    spec.query = "SELECT Id, Name FROM Account";
    return o.rest().create_pushtopic(spec);
  });
  REQUIRE(static_cast<bool>(r));
}

std::string fallback_text(const temp_dir& dir, emulator_fixture& org) {
  return config_text(dir, org, "",
                     "[[connection.channel]]\nname = \"/topic/Accounts\"\nstart = -2\n"
                     "[connection.fallback]\nprobe_interval = 0.5\ninterval = 0.2\noverlap = 10\n"
                     "[[connection.fallback.object]]\nname = \"Account\"\nfields = [\"Name\"]\n");
}

/// What the fallback tests share: three changes streamed (the whole daily allocation), one the
/// stream no longer delivers, the switch to polling, and two changes made while polling.
struct fallback_run {
  std::vector<std::string> streamed;  // A1, A2, A3
  std::string undelivered;            // A4: published on the stream, refused by the limit
  std::string made_while_polling;     // B1
  /// What the fallback polls: A4 (it starts after the newest event committed), B1, A1's update.
  std::multiset<std::string> polled() const {
    return {"created:" + undelivered, "created:" + made_while_polling, "updated:" + streamed[0]};
  }
};

fallback_run stream_until_the_limit_then_poll(emulator_fixture& org, service& svc,
                                              const fs::path& out) {
  fallback_run r;
  REQUIRE(wait_until([&] { return acme(svc).state == connection_state::streaming; }));
  for (int i = 1; i <= 3; ++i) r.streamed.push_back(create(org, "A" + std::to_string(i)));
  REQUIRE(wait_until([&] { return changes_on(out, "/topic/Accounts").size() >= 3; }));
  tick(org);
  r.undelivered = create(org, "A4");
  // The next connect is refused with the daily limit: the connection polls instead.
  REQUIRE(wait_until([&] {
    const auto c = acme(svc);
    return c.state == connection_state::fallback && c.polling && c.polling->fallback &&
           c.polling->objects.at(0).polls >= 1;
  }));
  CHECK(acme(svc).fallbacks == 1);
  CHECK(to_string(acme(svc).state) == "polling (fallback)");
  tick(org);
  r.made_while_polling = create(org, "B1");
  update(org, r.streamed[0], "A1-changed");
  REQUIRE(wait_until([&] { return changes_on(out, "/poll/Account").size() >= 3; }));
  CHECK(changes_on(out, "/poll/Account") == r.polled());
  CHECK(changes_on(out, "/topic/Accounts").size() == 3);
  return r;
}

}  // namespace

TEST_CASE(
    "a streaming connection out of daily events polls its fallback objects, streams again when the "
    "limit is lifted, and delivers every change once per channel") {
  emulator_fixture org(limited_org_options());
  create_topic(org);
  temp_dir dir;
  const fs::path out = dir.path / "out.jsonl";
  auto running = std::make_unique<service>(parse(fallback_text(dir, org)));
  service& svc = *running;
  REQUIRE_FALSE(svc.start());
  const auto run = stream_until_the_limit_then_poll(org, svc, out);

  // A new day: the next try of streaming resubscribes after the stored replay id, and the
  // stream replays what changed while polling; the polling stops.
  org.call([](org_emulator& o) {
    o.cometd().set_daily_event_limit(0, true);
    return 0;
  });
  REQUIRE(wait_until([&] {
    const auto c = acme(svc);
    return c.state == connection_state::streaming && !c.polling;
  }));
  const std::string after = create(org, "C1");
  REQUIRE(wait_until([&] { return changes_on(out, "/topic/Accounts").size() >= 7; }));
  std::this_thread::sleep_for(600ms);  // three poll intervals: a poller still running would show
  svc.stop();
  svc.wait();

  // The overlap expected: the changes after the newest event streamed before the limit (the one
  // refused and those made while polling) come twice, once polled (/poll/Account) and once
  // streamed after the return (/topic/Accounts, replayed from the stored id); every other
  // change comes only streamed. Nothing comes twice on one channel.
  const auto& a = run.streamed;
  CHECK(changes_on(out, "/topic/Accounts") ==
        set_of({"created:" + a[0], "created:" + a[1], "created:" + a[2],
                "created:" + run.undelivered, "created:" + run.made_while_polling,
                "updated:" + a[0], "created:" + after}));
  CHECK(changes_on(out, "/poll/Account") == run.polled());
  CHECK(lines_of(out).size() == 10);
  const auto c = acme(svc);
  CHECK(c.fallbacks == 1);
  CHECK_FALSE(c.last_gap.has_value());
  running.reset();
  // The fallback's cursor was retired: a later fallback starts afresh, not from it.
  const auto stored =
      open_file_replay_store(dir.path / "positions.json")->load("acme//poll/Account");
  REQUIRE(stored.has_value());
  CHECK(stored->cursor.empty());
}

TEST_CASE(
    "a fallback whose stored replay id is no longer retained on return logs and shows the gap, and "
    "the polled changes cover it") {
  emulator_fixture org(limited_org_options());
  create_topic(org);
  temp_dir dir;
  const fs::path out = dir.path / "out.jsonl";
  service svc(parse(fallback_text(dir, org)));
  REQUIRE_FALSE(svc.start());
  const auto run = stream_until_the_limit_then_poll(org, svc, out);
  // The sink wrote them; the poller counts them once their confirmation reached it.
  CHECK(wait_until([&] { return acme(svc).polling->objects.at(0).events == 3; }));

  // A day and an hour later the allocation is back, and every retained event is gone.
  tick(org, 25h);
  REQUIRE(wait_until([&] {
    const auto c = acme(svc);
    return c.state == connection_state::streaming && !c.polling && c.last_gap.has_value();
  }));
  const std::string after = create(org, "C1");
  REQUIRE(wait_until([&] { return changes_on(out, "/topic/Accounts").size() >= 4; }));
  const auto c = acme(svc);
  CHECK(c.client.gaps == 1);
  const std::string status = render_status_json(svc.snapshot());
  CHECK(status.find("\"last_gap\": \"") != std::string::npos);
  svc.stop();
  svc.wait();

  // The stream has what it delivered before the limit and after the return; the change it
  // refused and those made while polling come only polled (their stream events expired with
  // the stored id): every change once.
  const auto& a = run.streamed;
  CHECK(changes_on(out, "/topic/Accounts") ==
        set_of({"created:" + a[0], "created:" + a[1], "created:" + a[2], "created:" + after}));
  CHECK(changes_on(out, "/poll/Account") == run.polled());
}

TEST_CASE(
    "a service stopped while polling its fallback resumes the polling from its cursors after a "
    "restart") {
  emulator_fixture org(limited_org_options());
  create_topic(org);
  temp_dir dir;
  const fs::path out = dir.path / "out.jsonl";
  const std::string text = fallback_text(dir, org);
  fallback_run run;
  {
    service svc(parse(text));
    REQUIRE_FALSE(svc.start());
    run = stream_until_the_limit_then_poll(org, svc, out);
    svc.stop();
    svc.wait();
  }
  // While the service is down, and the allocation still spent.
  tick(org);
  const std::string down = create(org, "D1");
  service svc(parse(text));
  REQUIRE_FALSE(svc.start());
  REQUIRE(wait_until([&] { return changes_on(out, "/poll/Account").size() >= 4; }));
  REQUIRE(wait_polls(svc, 2));
  CHECK(acme(svc).state == connection_state::fallback);
  svc.stop();
  svc.wait();
  const auto& a = run.streamed;
  CHECK(changes_on(out, "/poll/Account") ==
        set_of({"created:" + run.undelivered, "created:" + run.made_while_polling,
                "updated:" + a[0], "created:" + down}));
  CHECK(changes_on(out, "/topic/Accounts") ==
        set_of({"created:" + a[0], "created:" + a[1], "created:" + a[2]}));
}
