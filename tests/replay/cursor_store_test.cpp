// Text positions (replay_position::cursor, the polling source's cursor) in the replay stores:
// beside replay ids in one file, round trip exact, stores without cursors written as before,
// malformed entries refused, and a process killed while saving leaves a saved cursor.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "sfstream/replay_store.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct cursor_dir {
  fs::path path;
  cursor_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("sfstream-cursor-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~cursor_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string text_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void put_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

sfstream::replay_position cursor_at(std::string cursor, std::chrono::milliseconds at) {
  sfstream::replay_position p;
  p.cursor = std::move(cursor);
  p.event_time = std::chrono::system_clock::time_point{at};
  return p;
}

sfstream::replay_position id_at(std::int64_t id, std::chrono::milliseconds at) {
  sfstream::replay_position p;
  p.replay_id = id;
  p.event_time = std::chrono::system_clock::time_point{at};
  return p;
}

}  // namespace

TEST_CASE("cursors and replay ids share one file store and read back byte for byte") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  // Quotes, backslashes, spaces, newlines and non-ASCII text: the store treats it as opaque.
  const std::string cursor = "2026-12-02T00:31:05.000Z 001xx000003DGb2AAG\n\"q\" \\ \xc3\xa9 ;,|";
  {
    auto store = sfstream::open_file_replay_store(path);
    REQUIRE_FALSE(store->save({{"/poll/Account", cursor_at(cursor, 1'764'635'465'000ms)},
                               {"/topic/X", id_at(9'007'199'254'740'993, 1'764'635'465'123ms)}}));
  }
  auto store = sfstream::open_file_replay_store(path);
  const auto polled = store->load("/poll/Account");
  REQUIRE(polled.has_value());
  CHECK(polled->cursor == cursor);
  CHECK(polled->replay_id == 0);
  CHECK(polled->event_time == std::chrono::system_clock::time_point{1'764'635'465'000ms});
  const auto streamed = store->load("/topic/X");
  REQUIRE(streamed.has_value());
  CHECK(streamed->cursor.empty());
  CHECK(streamed->replay_id == 9'007'199'254'740'993);
  CHECK(store->load_all().size() == 2);
}

TEST_CASE("a later cursor replaces the earlier one and leaves other keys alone") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  auto store = sfstream::open_file_replay_store(path);
  REQUIRE_FALSE(store->save({{"/poll/Account", cursor_at("a", 1000ms)}, {"/topic/X", id_at(3, 1000ms)}}));
  REQUIRE_FALSE(store->save({{"/poll/Account", cursor_at("b", 2000ms)}}));
  CHECK(store->load("/poll/Account")->cursor == "b");
  CHECK(store->load("/topic/X")->replay_id == 3);
  store.reset();
  auto again = sfstream::open_file_replay_store(path);
  CHECK(again->load("/poll/Account")->cursor == "b");
  CHECK(again->load("/topic/X")->replay_id == 3);
}

TEST_CASE("a store without cursors is written exactly as before cursors existed") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  auto store = sfstream::open_file_replay_store(path);
  REQUIRE_FALSE(store->save({{"/topic/X", id_at(13, 1'459'269'608'208ms)}}));
  CHECK(text_of(path) ==
        "{\n  \"format\": \"sfstream-replay-store\",\n  \"version\": 1,\n  \"positions\": {\n"
        "    \"/topic/X\": {\n      \"replayId\": 13,\n      \"eventTime\": "
        "\"2016-03-29T16:40:08.208Z\"\n    }\n  }\n}\n");
}

TEST_CASE("a store file written before cursors existed opens unchanged") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  put_text(path,
           "{\"format\":\"sfstream-replay-store\",\"version\":1,\"positions\":{\"/topic/X\":"
           "{\"replayId\":13,\"eventTime\":\"2016-03-29T16:40:08.208Z\"}}}");
  auto store = sfstream::open_file_replay_store(path);
  const auto found = store->load("/topic/X");
  REQUIRE(found.has_value());
  CHECK(found->replay_id == 13);
  CHECK(found->cursor.empty());
  REQUIRE_FALSE(store->save({{"/poll/Lead", cursor_at("c", 1000ms)}}));
  CHECK(text_of(path).find("\"replayId\": 13") != std::string::npos);
  CHECK(text_of(path).find("\"cursor\": \"c\"") != std::string::npos);
}

TEST_CASE("malformed cursor entries are replay_store_corrupt naming the key") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  const char* const bodies[] = {
      "{\"cursor\":\"\",\"eventTime\":\"2016-03-29T16:40:08.208Z\"}",
      "{\"cursor\":7,\"eventTime\":\"2016-03-29T16:40:08.208Z\"}",
      "{\"cursor\":\"a\",\"replayId\":3,\"eventTime\":\"2016-03-29T16:40:08.208Z\"}",
      "{\"cursor\":\"a\"}",
  };
  for (const char* body : bodies) {
    INFO(body);
    put_text(path, std::string("{\"version\":1,\"positions\":{\"/poll/Account\":") + body + "}}");
    try {
      sfstream::open_file_replay_store(path);
      FAIL("a malformed cursor entry opened");
    } catch (const sfstream::error& e) {
      CHECK(e.code() == sfstream::errc::replay_store_corrupt);
      CHECK(e.info().diag.server_text.find("/poll/Account") != std::string::npos);
    }
  }
}

TEST_CASE("the memory store keeps cursors") {
  auto store = sfstream::make_memory_replay_store();
  REQUIRE_FALSE(store->save({{"/poll/Account", cursor_at("x y", 5ms)}}));
  CHECK(store->load("/poll/Account")->cursor == "x y");
}

TEST_CASE("a process killed while saving cursors leaves the last or the next saved cursor") {
  cursor_dir dir;
  const auto path = dir.path / "positions.json";
  const auto seed = std::random_device{}();
  INFO("seed: " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_us(0, 20'000);
  long next = 0;
  // A cursor as large as a busy overlap window makes it (a few kilobytes).
  auto cursor_of = [](long n) { return "n=" + std::to_string(n) + ";" + std::string(4000, 'x'); };
  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    int reports[2];
    REQUIRE(::pipe(reports) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(reports[0]);
      try {
        auto store = sfstream::open_file_replay_store(path);
        for (long n = next; n < next + 1'000'000; ++n) {
          if (store->save({{"/poll/Account", cursor_at(cursor_of(n), std::chrono::milliseconds(n))}}))
            ::_exit(3);
          if (::write(reports[1], &n, sizeof n) != static_cast<ssize_t>(sizeof n)) ::_exit(4);
        }
      } catch (...) {
        ::_exit(5);
      }
      ::_exit(0);
    }
    ::close(reports[1]);
    pollfd first{reports[0], POLLIN, 0};
    REQUIRE(::poll(&first, 1, 10'000) == 1);
    std::this_thread::sleep_for(std::chrono::microseconds{delay_us(random)});
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    long last = -1;
    long n = 0;
    while (::read(reports[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) last = n;
    ::close(reports[0]);
    REQUIRE(last >= next);
    auto store = sfstream::open_file_replay_store(path);
    const auto saved = store->load("/poll/Account");
    REQUIRE(saved.has_value());
    const long got = std::chrono::duration_cast<std::chrono::milliseconds>(
                         saved->event_time.time_since_epoch())
                         .count();
    CHECK(got >= last);
    CHECK(got <= last + 1);
    CHECK(saved->cursor == cursor_of(got));
    next = got + 1;
  }
}
