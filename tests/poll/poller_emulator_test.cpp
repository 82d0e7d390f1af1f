// The poller against a real org emulator on 127.0.0.1: every change emitted exactly once and in
// SystemModstamp order across pages, shared timestamps, late commits, restarts from a file
// store, handler failures, REST failures, re-login and the API allocation.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "sfstream/poll.hpp"
#include "support/client_helpers.hpp"
#include "support/emulator_fixture.hpp"

using namespace std::chrono_literals;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;
namespace fs = std::filesystem;

namespace {

struct seen_event {
  std::string type;
  std::string id;
  std::string stamp;  // data.event.createdDate: the SystemModstamp
  std::string name;
};

seen_event read_event(const sfstream::event& e) {
  const auto p = e.as_pushtopic();
  rapidjson::Document doc;
  doc.Parse(p.sobject_json.c_str());
  seen_event s{p.type, "", p.created_date, ""};
  if (doc.IsObject() && doc.HasMember("Id")) s.id = doc["Id"].GetString();
  if (doc.IsObject() && doc.HasMember("Name") && doc["Name"].IsString()) s.name = doc["Name"].GetString();
  return s;
}

/// Every event handled, in order.
struct recorder {
  mutable std::mutex mutex;
  std::vector<seen_event> events;
  void add(const sfstream::event& e) {
    const std::lock_guard lock(mutex);
    events.push_back(read_event(e));
  }
  std::size_t size() const {
    const std::lock_guard lock(mutex);
    return events.size();
  }
  std::vector<seen_event> all() const {
    const std::lock_guard lock(mutex);
    return events;
  }
};

/// Log lines, thread-safe.
struct log_lines {
  std::mutex mutex;
  std::vector<std::string> lines;
  sfstream::logger make() {
    sfstream::logger l;
    l.min_level = sfstream::log_level::info;
    l.sink = [this](sfstream::log_level, std::string_view text) {
      const std::lock_guard lock(mutex);
      lines.emplace_back(text);
    };
    return l;
  }
  bool any(const std::string& part) {
    const std::lock_guard lock(mutex);
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return l.find(part) != std::string::npos; });
  }
};

sfstream::emulator::emulator_options small_pages() {
  auto o = emulator_fixture::default_options();
  o.data.query_batch_size = 3;
  return o;
}

sfstream::poll_config poll_config_for(emulator_fixture& org, io_thread& io) {
  auto client = sfstream::testing::soap_config(org, io);
  sfstream::poll_config c;
  c.credentials = client.credentials;
  c.network = client.network;
  c.interval = 150ms;
  c.overlap = 10s;
  c.backoff_initial = 50ms;
  c.backoff_max = 200ms;
  return c;
}

/// A poller running on `io`; `done` becomes true when async_run completes.
struct running_poller {
  std::unique_ptr<sfstream::poller> poller;
  std::atomic<bool> done{false};
  std::error_code result;

  running_poller(io_thread& io, sfstream::poll_config config)
      : poller(std::make_unique<sfstream::poller>(io.executor(), std::move(config))) {}
  void run() {
    poller->async_run([this](std::error_code ec) {
      result = ec;
      done = true;
    });
  }
  bool stop() {
    poller->cancel();
    return wait_until([this] { return done.load(); }, 10s);
  }
  std::uint64_t polls(const std::string& object = "Account") const {
    return poller->metrics().objects[object].polls;
  }
  /// Waits until `n` more polls completed.
  bool wait_polls(std::uint64_t n, const std::string& object = "Account") const {
    const auto target = polls(object) + n;
    return wait_until([&] { return polls(object) >= target; }, 15s);
  }
};

std::string create(emulator_fixture& org, const std::string& name) {
  return org.call([&](sfstream::emulator::org_emulator& o) {
    auto r = o.rest().create_record("Account", "{\"Name\":\"" + name + "\"}");
    REQUIRE(static_cast<bool>(r));
    return r.id;
  });
}

std::string create_at(emulator_fixture& org, const std::string& name, std::chrono::system_clock::time_point at) {
  return org.call([&](sfstream::emulator::org_emulator& o) {
    auto r = o.rest().commit_late("Account", "", "{\"Name\":\"" + name + "\"}", at);
    REQUIRE(static_cast<bool>(r));
    return r.id;
  });
}

void update(emulator_fixture& org, const std::string& id, const std::string& name) {
  org.call([&](sfstream::emulator::org_emulator& o) {
    REQUIRE(static_cast<bool>(o.rest().update_record("Account", id, "{\"Name\":\"" + name + "\"}")));
    return 0;
  });
}

void remove(emulator_fixture& org, const std::string& id) {
  org.call([&](sfstream::emulator::org_emulator& o) {
    REQUIRE(static_cast<bool>(o.rest().delete_record("Account", id)));
    return 0;
  });
}

std::chrono::system_clock::time_point org_now(emulator_fixture& org) {
  return org.call([](sfstream::emulator::org_emulator& o) { return o.clock().now(); });
}

/// Each (Id, SystemModstamp) exactly once.
void check_once_each(const std::vector<seen_event>& events) {
  std::multiset<std::pair<std::string, std::string>> versions;
  for (const auto& e : events) versions.emplace(e.id, e.stamp);
  for (const auto& v : versions) {
    INFO(v.first << " @ " << v.second);
    CHECK(versions.count(v) == 1);
  }
}

struct temp_store {
  fs::path path;
  temp_store() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() /
           ("sfstream-poll-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".json");
    fs::remove(path);
  }
  ~temp_store() {
    std::error_code ignored;
    fs::remove(path, ignored);
    fs::remove(fs::path(path.string() + ".lock"), ignored);
  }
  /// Opens the store, waiting for a previous run to let go of it.
  std::shared_ptr<sfstream::replay_store> open() const {
    std::shared_ptr<sfstream::replay_store> store;
    wait_until(
        [&] {
          try {
            store = sfstream::open_file_replay_store(path);
            return true;
          } catch (const sfstream::error&) {
            return false;
          }
        },
        5s);
    REQUIRE(store);
    return store;
  }
};

}  // namespace

TEST_CASE("changes between polls are emitted exactly once in timestamp order across pages, shared stamps and a late commit") {
  emulator_fixture org(small_pages());
  io_thread io;
  recorder seen;
  auto config = poll_config_for(org, io);
  running_poller p(io, config);
  sfstream::poll_object account;
  account.name = "Account";
  account.fields = {"Name"};
  account.start = sfstream::poll_start::beginning;
  REQUIRE_FALSE(p.poller->add(account, [&](const sfstream::event& e) { seen.add(e); }));
  p.run();

  // Seven records with one SystemModstamp: three pages of three.
  const auto shared = org_now(org) - 2s;
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(create_at(org, "Same" + std::to_string(i), shared));
  REQUIRE(wait_until([&] { return seen.size() >= 7; }));
  REQUIRE(p.wait_polls(2));
  CHECK(seen.size() == 7);

  // Updates and a delete between polls.
  org.call([](sfstream::emulator::org_emulator& o) {
    o.advance_clock(1s);
    return 0;
  });
  update(org, ids[0], "Same0-updated");
  update(org, ids[1], "Same1-updated");
  remove(org, ids[2]);
  const std::string fresh = create(org, "Fresh");
  REQUIRE(wait_until([&] { return seen.size() >= 11; }));
  REQUIRE(p.wait_polls(2));

  // A record committed late: stamped 5 s ago, inside the 10 s overlap, older than all above.
  const std::string late = create_at(org, "Late", org_now(org) - 5s);
  REQUIRE(wait_until([&] { return seen.size() >= 12; }));
  REQUIRE(p.wait_polls(3));
  REQUIRE(p.stop());
  CHECK_FALSE(p.result);

  const auto events = seen.all();
  REQUIRE(events.size() == 12);
  check_once_each(events);
  std::map<std::string, std::multiset<std::string>> types;
  for (const auto& e : events) types[e.id].insert(e.type);
  CHECK(types[ids[0]] == std::multiset<std::string>{"created", "updated"});
  CHECK(types[ids[2]] == std::multiset<std::string>{"created", "deleted"});
  CHECK(types[ids[6]] == std::multiset<std::string>{"created"});
  CHECK(types[fresh] == std::multiset<std::string>{"created"});
  CHECK(types[late] == std::multiset<std::string>{"created"});
  CHECK(events.back().id == late);
  // In SystemModstamp order, but for the late one, which comes after what it predates.
  std::vector<std::string> stamps;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) stamps.push_back(events[i].stamp);
  CHECK(std::is_sorted(stamps.begin(), stamps.end()));
  CHECK(events.back().stamp < events[events.size() - 2].stamp);
  const auto m = p.poller->metrics();
  CHECK(m.objects.at("Account").late == 1);
  CHECK(m.objects.at("Account").created == 9);
  CHECK(m.objects.at("Account").updated == 2);
  CHECK(m.objects.at("Account").deleted == 1);
  CHECK(m.objects.at("Account").repeats_dropped > 0);
  CHECK(m.events == 12);
}

TEST_CASE("a restart from the file store emits what changed while stopped, once, and nothing from before") {
  emulator_fixture org(small_pages());
  io_thread io;
  temp_store file;
  recorder first;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(create(org, "Before" + std::to_string(i)));
  {
    auto config = poll_config_for(org, io);
    config.store = file.open();
    running_poller p(io, config);
    sfstream::poll_object account{"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}};
    REQUIRE_FALSE(p.poller->add(account, [&](const sfstream::event& e) { first.add(e); }));
    p.run();
    REQUIRE(wait_until([&] { return first.size() >= 5; }));
    REQUIRE(p.wait_polls(2));
    REQUIRE(p.stop());
  }
  CHECK(first.size() == 5);

  update(org, ids[0], "Changed0");
  update(org, ids[3], "Changed3");
  remove(org, ids[4]);
  const std::string added = create(org, "WhileStopped");

  recorder second;
  auto config = poll_config_for(org, io);
  config.store = file.open();
  const auto stored = config.store->load("/poll/Account");
  REQUIRE(stored);
  CHECK(stored->cursor.rfind("poll1 ", 0) == 0);
  running_poller p(io, config);
  // The start point is ignored: the stored cursor wins.
  sfstream::poll_object account{"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}};
  REQUIRE_FALSE(p.poller->add(account, [&](const sfstream::event& e) { second.add(e); }));
  p.run();
  REQUIRE(wait_until([&] { return second.size() >= 4; }));
  REQUIRE(p.wait_polls(3));
  REQUIRE(p.stop());
  const auto events = second.all();
  REQUIRE(events.size() == 4);
  check_once_each(events);
  std::multiset<std::string> got;
  for (const auto& e : events) got.insert(e.type + ":" + e.id);
  CHECK(got == std::multiset<std::string>{"updated:" + ids[0], "updated:" + ids[3], "deleted:" + ids[4],
                                          "created:" + added});
}

TEST_CASE("starting now skips what exists, and the start point is committed at once") {
  emulator_fixture org;
  io_thread io;
  temp_store file;
  create(org, "Old1");
  create(org, "Old2");
  recorder seen;
  {
    auto config = poll_config_for(org, io);
    config.store = file.open();
    running_poller p(io, config);
    REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::now, {}},
                                [&](const sfstream::event& e) { seen.add(e); }));
    p.run();
    REQUIRE(p.wait_polls(2));
    REQUIRE(p.stop());
  }
  CHECK(seen.size() == 0);
  // Made while nothing runs: the next run starts from the committed start point, not a new now.
  const std::string id = create(org, "New");
  auto config = poll_config_for(org, io);
  config.store = file.open();
  running_poller p(io, config);
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::now, {}},
                              [&](const sfstream::event& e) { seen.add(e); }));
  p.run();
  REQUIRE(wait_until([&] { return seen.size() >= 1; }));
  REQUIRE(p.wait_polls(2));
  REQUIRE(p.stop());
  REQUIRE(seen.size() == 1);
  CHECK(seen.all()[0].id == id);
  CHECK(seen.all()[0].name == "New");
}

TEST_CASE("a failing handler leaves its change uncommitted and a restart emits it again, after what was handled") {
  emulator_fixture org;
  io_thread io;
  temp_store file;
  std::vector<std::string> ids;
  for (const char* name : {"A", "B", "Bad", "C"}) {
    ids.push_back(create(org, name));
    org.call([](sfstream::emulator::org_emulator& o) {
      o.advance_clock(1s);
      return 0;
    });
  }
  recorder first;
  {
    auto config = poll_config_for(org, io);
    config.store = file.open();
    running_poller p(io, config);
    sfstream::poll_callbacks callbacks;
    callbacks.on_event = [&](const sfstream::event& e) {
      first.add(e);
      if (read_event(e).name == "Bad") throw std::runtime_error("cannot handle Bad");
    };
    REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}}, callbacks));
    p.run();
    REQUIRE(wait_until([&] { return p.done.load(); }));
    CHECK(p.result == sfstream::errc::handler_failed);
    const auto why = p.poller->last_error();
    CHECK(why.diag.server_text == "cannot handle Bad");
    CHECK(why.diag.context.find("uncommitted") != std::string::npos);
    CHECK(p.poller->metrics().objects.at("Account").handler_failures == 1);
  }
  REQUIRE(first.size() == 3);
  CHECK(first.all()[2].name == "Bad");

  recorder second;
  auto config = poll_config_for(org, io);
  config.store = file.open();
  running_poller p(io, config);
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}},
                              [&](const sfstream::event& e) { second.add(e); }));
  p.run();
  REQUIRE(wait_until([&] { return second.size() >= 2; }));
  REQUIRE(p.wait_polls(2));
  REQUIRE(p.stop());
  const auto events = second.all();
  REQUIRE(events.size() == 2);
  CHECK(events[0].id == ids[2]);
  CHECK(events[1].id == ids[3]);
}

TEST_CASE("under the retry policy a handler that fails twice gets the change a third time and the poll goes on") {
  emulator_fixture org;
  io_thread io;
  auto config = poll_config_for(org, io);
  config.on_handler_failure.action = sfstream::handler_failure::retry;
  config.on_handler_failure.max_retries = 3;
  config.on_handler_failure.retry_backoff_initial = 10ms;
  running_poller p(io, config);
  std::atomic<int> calls{0};
  recorder seen;
  sfstream::poll_callbacks callbacks;
  callbacks.on_event_status = [&](const sfstream::event& e) -> sfstream::error_info {
    if (++calls <= 2) return {sfstream::errc::output_failed, {"", "sink down", ""}, {}};
    seen.add(e);
    return {};
  };
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::now, {}}, callbacks));
  p.run();
  REQUIRE(p.wait_polls(1));
  create(org, "Once");
  REQUIRE(wait_until([&] { return seen.size() >= 1; }));
  REQUIRE(p.wait_polls(2));
  REQUIRE(p.stop());
  CHECK_FALSE(p.result);
  CHECK(calls == 3);
  CHECK(seen.size() == 1);
  CHECK(p.poller->metrics().objects.at("Account").handler_failures == 2);
}

TEST_CASE("an unknown object or field ends the run at once with Salesforce's INVALID_TYPE or INVALID_FIELD") {
  emulator_fixture org;
  io_thread io;
  {
    running_poller p(io, poll_config_for(org, io));
    REQUIRE_FALSE(p.poller->add({"Acount", {}, "", {}, sfstream::poll_start::beginning, {}}, [](const sfstream::event&) {}));
    p.run();
    REQUIRE(wait_until([&] { return p.done.load(); }));
    CHECK(p.result == sfstream::errc::http_status);
    const auto why = p.poller->last_error();
    CHECK(why.diag.server_code == "INVALID_TYPE");
    CHECK(why.diag.server_text.find("Acount") != std::string::npos);
    CHECK(why.diag.context.find("polling Acount") != std::string::npos);
    CHECK_FALSE(sfstream::is_retryable(why));
  }
  {
    running_poller p(io, poll_config_for(org, io));
    REQUIRE_FALSE(p.poller->add({"Account", {"Nmae"}, "", {}, sfstream::poll_start::beginning, {}}, [](const sfstream::event&) {}));
    p.run();
    REQUIRE(wait_until([&] { return p.done.load(); }));
    const auto why = p.poller->last_error();
    CHECK(why.diag.server_code == "INVALID_FIELD");
    CHECK(why.diag.server_text.find("Nmae") != std::string::npos);
  }
  // Checked before any call.
  running_poller p(io, poll_config_for(org, io));
  CHECK(p.poller->add({"Account; DROP", {}, "", {}, {}, {}}, [](const sfstream::event&) {}).code ==
        sfstream::errc::invalid_config);
  CHECK(p.poller->add({"Account", {"Name,Id"}, "", {}, {}, {}}, [](const sfstream::event&) {}).code ==
        sfstream::errc::invalid_config);
  REQUIRE_FALSE(p.poller->add({"Account", {}, "", {}, {}, {}}, [](const sfstream::event&) {}));
  CHECK(p.poller->add({"Account", {}, "", {}, {}, {}}, [](const sfstream::event&) {}).code ==
        sfstream::errc::invalid_config);
}

TEST_CASE("dropped connections and an expired session are retried, and every change still arrives once") {
  emulator_fixture org;
  io_thread io;
  recorder seen;
  running_poller p(io, poll_config_for(org, io));
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::now, {}},
                              [&](const sfstream::event& e) { seen.add(e); }));
  p.run();
  REQUIRE(p.wait_polls(1));
  create(org, "One");
  org.call([](sfstream::emulator::org_emulator& o) {
    o.drop_next_connections(3);
    return 0;
  });
  REQUIRE(wait_until([&] { return seen.size() >= 1; }));
  org.call([](sfstream::emulator::org_emulator& o) {
    o.expire_all_sessions();
    return 0;
  });
  create(org, "Two");
  REQUIRE(wait_until([&] { return seen.size() >= 2; }));
  REQUIRE(p.wait_polls(2));
  REQUIRE(p.stop());
  CHECK_FALSE(p.result);
  const auto events = seen.all();
  REQUIRE(events.size() == 2);
  CHECK(events[0].name == "One");
  CHECK(events[1].name == "Two");
  CHECK(p.poller->metrics().objects.at("Account").errors >= 1);
}

TEST_CASE("every API call is counted, the allocation is checked at start, and a spent one backs off instead of failing") {
  emulator_fixture org;
  io_thread io;
  org.call([](sfstream::emulator::org_emulator& o) {
    o.rest().set_api_allocation(15000, 40);
    return 0;
  });
  log_lines logs;
  auto config = poll_config_for(org, io);
  config.log = logs.make();
  config.interval = 100ms;
  config.limit_backoff_initial = 100ms;
  config.limit_backoff_max = 100ms;
  recorder seen;
  running_poller p(io, config);
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::now, {}},
                              [&](const sfstream::event& e) { seen.add(e); }));
  p.run();
  REQUIRE(p.wait_polls(2));
  const auto m = p.poller->metrics();
  REQUIRE(m.allocation);
  CHECK(m.allocation->max == 15000);
  CHECK(m.allocation->remaining == 39);  // after its own /limits call
  CHECK(m.allocation->projected > 39);
  CHECK(logs.any("DailyApiRequests remaining"));
  // Spend what is left: polls are refused with REQUEST_LIMIT_EXCEEDED and the run goes on.
  REQUIRE(wait_until([&] { return logs.any("daily API request allocation is spent"); }));
  CHECK_FALSE(p.done.load());
  // One poll is in flight at a time: the count read beside the reset is off by one at most.
  const auto calls = org.call([&](sfstream::emulator::org_emulator& o) {
    o.rest().set_api_allocation(15000, 15000);
    return p.poller->metrics().api_calls;
  });
  create(org, "AfterReset");
  REQUIRE(wait_until([&] { return seen.size() >= 1; }));
  REQUIRE(p.stop());
  CHECK(seen.all()[0].name == "AfterReset");
  // The poller's count of calls is what the org counted (the refused ones take nothing there).
  const auto after = p.poller->metrics();
  CHECK(after.api_calls > calls);
  CHECK(after.objects.at("Account").errors >= 1);
  const auto used = 15000 - org.call([](sfstream::emulator::org_emulator& o) { return o.rest().api_requests_remaining(); });
  const auto made = after.api_calls - calls;
  CHECK(used + 1 >= made);
  CHECK(used <= made + 1);
}

namespace {

/// Batches a batch handler was given, each confirmed later by the test from another thread.
struct held_batches {
  struct batch {
    std::vector<seen_event> events;
    sfstream::batch_done done;
  };
  std::mutex mutex;
  std::vector<batch> batches;
  void add(std::span<const sfstream::event> events, sfstream::batch_done done) {
    batch b;
    for (const auto& e : events) b.events.push_back(read_event(e));
    b.done = std::move(done);
    const std::lock_guard lock(mutex);
    batches.push_back(std::move(b));
  }
  std::size_t size() {
    const std::lock_guard lock(mutex);
    return batches.size();
  }
  std::vector<seen_event> events(std::size_t i) {
    const std::lock_guard lock(mutex);
    return batches.at(i).events;
  }
  /// Confirms batch `i` from a thread of its own, as a sink does.
  void confirm(std::size_t i, std::size_t handled, sfstream::error_info error = {}) {
    sfstream::batch_done done;
    {
      const std::lock_guard lock(mutex);
      done = batches.at(i).done;
    }
    std::thread([done, handled, error] { done(handled, error); }).join();
  }
};

std::string stored_cursor(const sfstream::replay_store& store) {
  const auto position = store.load("/poll/Account");
  return position ? position->cursor : std::string();
}

}  // namespace

TEST_CASE("a batch handler confirms from another thread: only confirmed events are committed, a partial confirmation retries the rest, a cancel waits for the held batch") {
  emulator_fixture org(small_pages());
  io_thread io;
  temp_store file;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(create(org, "Batch" + std::to_string(i)));
  held_batches held;
  std::multiset<std::string> confirmed;  // "<type>:<id>" of every event confirmed
  {
    auto config = poll_config_for(org, io);
    // Read by the test only while the poller waits for a confirmation (it saves on its strand).
    const auto store = file.open();
    config.store = store;
    running_poller p(io, config);
    sfstream::poll_callbacks callbacks;
    callbacks.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
      held.add(events, std::move(done));
    };
    callbacks.on_failure = sfstream::handler_failure_policy{sfstream::handler_failure::retry, 3,
                                                           20ms, 100ms, {}};
    sfstream::poll_object account{"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}};
    REQUIRE_FALSE(p.poller->add(account, std::move(callbacks)));
    config.store.reset();
    p.run();

    // Page one (three records) is one batch; nothing of it is committed while it is held.
    REQUIRE(wait_until([&] { return held.size() == 1; }));
    auto first = held.events(0);
    REQUIRE(first.size() == 3);
    std::this_thread::sleep_for(200ms);
    CHECK(held.size() == 1);  // the next page waits for the confirmation
    CHECK(stored_cursor(*store).find(first[0].id) == std::string::npos);

    // One confirmed, the next failed: the first is committed, the rest handed again.
    sfstream::error_info down;
    down.code = make_error_code(sfstream::errc::output_failed);
    down.diag.server_text = "the destination is down";
    held.confirm(0, 1, down);
    confirmed.insert(first[0].type + ":" + first[0].id);
    REQUIRE(wait_until([&] { return held.size() == 2; }));
    const auto again = held.events(1);
    REQUIRE(again.size() == 2);
    CHECK(again[0].id == first[1].id);
    CHECK(again[1].id == first[2].id);
    const std::string after_one = stored_cursor(*store);
    CHECK(after_one.find(first[0].id) != std::string::npos);
    CHECK(after_one.find(first[1].id) == std::string::npos);
    held.confirm(1, 2);
    for (const auto& e : again) confirmed.insert(e.type + ":" + e.id);

    // Page two is held while the run is cancelled: the run completes only after it is
    // confirmed, and what was confirmed is committed.
    REQUIRE(wait_until([&] { return held.size() == 3; }));
    const auto second = held.events(2);
    REQUIRE(second.size() == 2);
    p.poller->cancel();
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(p.done.load());
    held.confirm(2, 2);
    for (const auto& e : second) confirmed.insert(e.type + ":" + e.id);
    REQUIRE(wait_until([&] { return p.done.load(); }, 10s));
    CHECK_FALSE(p.result);
    CHECK(p.poller->metrics().events == 5);
    CHECK(p.poller->metrics().objects.at("Account").handler_failures == 1);
    CHECK(stored_cursor(*store).find(ids[4]) != std::string::npos);
  }
  held.batches.clear();  // their completions hold the finished poller, and it the store
  std::multiset<std::string> expected;
  for (const auto& id : ids) expected.insert("created:" + id);
  CHECK(confirmed == expected);

  // A restart hands nothing again.
  held_batches later;
  auto config = poll_config_for(org, io);
  config.store = file.open();
  running_poller p(io, config);
  sfstream::poll_callbacks callbacks;
  callbacks.on_batch = [&](std::span<const sfstream::event> events, sfstream::batch_done done) {
    later.add(events, done);
    done(events.size(), {});
  };
  REQUIRE_FALSE(p.poller->add({"Account", {"Name"}, "", {}, sfstream::poll_start::beginning, {}},
                              std::move(callbacks)));
  config.store.reset();
  p.run();
  REQUIRE(p.wait_polls(2));
  REQUIRE(p.stop());
  CHECK(later.size() == 0);
}
