// An org kept in its state directory: a restarted emulator is the same org (records, retained
// events and their replay ids, PushTopics, channels), and a client resumes from its stored
// replay id with no gap and no duplicate. A bad state is a start error, never a fresh org.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/replay_store.hpp"
#include "support/emulator_fixture.hpp"
#include "tests/emulator/emulator_clients.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sfstream::emulator::emulator_options;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::running_client;
using sfstream::testing::wait_until;

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sfstream-persist-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

emulator_options kept_in(const fs::path& dir) {
  auto o = emulator_fixture::default_options();
  o.data.platform_events = {{"Ping__e", {{"Body__c", "string", "", false}}}};
  o.state_dir = dir.string();
  o.persist = true;
  return o;
}

std::int64_t publish(emulator_fixture& fixture, const std::string& body) {
  auto r = fixture.call([&](org_emulator& o) {
    o.rest().publish_platform_event("Ping__e", "{\"Body__c\":\"" + body + "\"}");
    return o.events().last_replay_id("/event/Ping__e");
  });
  return r;
}

}  // namespace

TEST_CASE("persist: a restarted emulator keeps records, PushTopics, channels and replay ids") {
  temp_dir dir;
  std::string account;
  {
    emulator_fixture first(kept_in(dir.path));
    first.call([&](org_emulator& o) {
      sfstream::emulator::data::pushtopic_spec spec;
      spec.name = "Accounts";
      spec.query = "SELECT Id, Name FROM Account";
      REQUIRE(static_cast<bool>(o.rest().create_pushtopic(spec)));
      account = o.rest().create_record("Account", R"({"Name":"Kept"})").id;
      REQUIRE(static_cast<bool>(o.rest().create_streaming_channel("/u/Kept")));
      return 0;
    });
    CHECK(publish(first, "a") == 1);
    CHECK(publish(first, "b") == 2);
  }
  CHECK(fs::exists(dir.path / "org-default.json"));
  emulator_fixture second(kept_in(dir.path));
  second.call([&](org_emulator& o) {
    auto record = o.rest().get_record("Account", account);
    REQUIRE(record.has_value());
    CHECK(record->find(R"("Name":"Kept")") != std::string::npos);
    CHECK(o.events().channel_exists("/u/Kept"));
    CHECK(o.events().channel_exists("/topic/Accounts"));
    CHECK(o.events().events_after("/event/Ping__e", -2).size() == 2);
    CHECK(o.events().last_replay_id("/topic/Accounts") == 1);  // the create of "Kept"
    // The PushTopic still notifies, and a new record never reuses an old id.
    const auto next = o.rest().create_record("Account", R"({"Name":"After"})").id;
    CHECK(next != account);
    CHECK(o.events().last_replay_id("/topic/Accounts") == 2);
    return 0;
  });
  CHECK(publish(second, "c") == 3);
}

TEST_CASE("persist: a client resumes from its stored replay id across an emulator restart, no gap and no duplicate") {
  temp_dir dir;
  auto store = sfstream::make_memory_replay_store();
  emulator_test::received_events seen;
  {
    emulator_fixture first(kept_in(dir.path));
    {
      io_thread io;
      running_client c(io, emulator_test::login_config(first, first.org(), io, store));
      REQUIRE_FALSE(c.client->subscribe("/event/Ping__e", sfstream::replay_all, seen.callbacks()));
      c.run();
      for (int i = 0; i < 3; ++i) publish(first, "e" + std::to_string(i));
      REQUIRE(wait_until([&] { return seen.size() == 3; }));
      REQUIRE(c.stop());
    }
    publish(first, "e3");  // while no client listens: retained, persisted
  }
  emulator_fixture second(kept_in(dir.path));
  publish(second, "e4");
  io_thread io;
  running_client c(io, emulator_test::login_config(second, second.org(), io, store));
  REQUIRE_FALSE(c.client->subscribe("/event/Ping__e", sfstream::replay_all, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.size() >= 5; }));
  std::this_thread::sleep_for(300ms);
  CHECK(c.stop());
  CHECK(seen.body_fields() == std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"});
  std::lock_guard lock{seen.mutex};
  CHECK(seen.ids == std::vector<std::int64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("persist: a corrupt state file or an unusable state directory is a clear start error") {
  temp_dir dir;
  {
    std::ofstream out(dir.path / "org-default.json");
    out << R"({"format":1,"clockOffsetMs":0,"channels":[{"name":"/event/Ping__e","retention":"72h","nextReplayId":2,"events":[{"replayId":5,"at":0,"data":"{}"}]}],"data":{}})";
  }
  sfstream::testing::io_thread io;
  try {
    org_emulator org(io.executor(), kept_in(dir.path));
    FAIL("a corrupt state was accepted");
  } catch (const sfstream::error& e) {
    const std::string text = e.what();
    CHECK(text.find("the emulator state file " + (dir.path / "org-default.json").string() + " is not valid") !=
          std::string::npos);
    CHECK(text.find("replay ids must grow and stay below nextReplayId") != std::string::npos);
  }
  {
    std::ofstream out(dir.path / "org-default.json");
    out << "{not json";
  }
  CHECK_THROWS_WITH_AS(org_emulator(io.executor(), kept_in(dir.path)), doctest::Contains("not JSON"), sfstream::error);
  // The corrupt file is left for a human to look at: nothing overwrote it.
  std::ifstream kept(dir.path / "org-default.json");
  std::string text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  CHECK(text == "{not json");

  std::ofstream(dir.path / "a-file") << "x";
  CHECK_THROWS_WITH_AS(org_emulator(io.executor(), kept_in(dir.path / "a-file" / "sub")),
                       doctest::Contains("cannot create the emulator state directory"), sfstream::error);
  auto no_dir = kept_in(dir.path);
  no_dir.state_dir.clear();
  CHECK_THROWS_WITH_AS(org_emulator(io.executor(), no_dir), doctest::Contains("needs a state directory"), sfstream::error);
}
