#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
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

// A fresh directory under the system temporary directory, removed at the end of the test.
class scratch_dir {
 public:
  scratch_dir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("sfstream-replay-test-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Calls open_file_replay_store and returns the code it threw (or no code).
sfstream::error_info open_error(const fs::path& path) {
  try {
    auto store = sfstream::open_file_replay_store(path);
    return {};
  } catch (const sfstream::error& e) {
    return e.info();
  }
}

// Waits up to `limit` for a child to exit; kills it if it does not. Returns its wait status.
int wait_bounded(pid_t pid, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0) return -1;
    std::this_thread::sleep_for(5ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

constexpr std::int64_t above_2_53 = 9007199254740993LL;  // 2^53 + 1: not a double.

std::chrono::system_clock::time_point time_of(std::int64_t id) {
  // A distinct, millisecond-exact time per id.
  return std::chrono::system_clock::time_point{1700000000000ms} +
         std::chrono::milliseconds{(id % 1'000'000'000) * 7};
}

}  // namespace

TEST_CASE("a missing store file opens as an empty store") {
  scratch_dir dir;
  auto store = sfstream::open_file_replay_store(dir.path() / "replay.json");
  CHECK(store->load_all().empty());
  CHECK_FALSE(store->load("/topic/A").has_value());
  CHECK_FALSE(fs::exists(dir.path() / "replay.json"));
}

TEST_CASE("saved positions round trip through the file with 64-bit ids and event times exact") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto t1 = std::chrono::system_clock::time_point{1459269608208ms};
  {
    auto store = sfstream::open_file_replay_store(path);
    CHECK_FALSE(store->save({{"/topic/InvoiceStatementUpdates", {13, t1}},
                             {"/event/Low_Ink__e", {above_2_53, t1 + 1500ms}}}));
    CHECK_FALSE(store->save({{"/data/AccountChangeEvent", {INT64_MAX, t1 + 2s}}}));
    CHECK(store->load_all().size() == 3);
  }
  const std::string text = read_text(path);
  CHECK(text.find("9007199254740993") != std::string::npos);
  CHECK(text.find("2016-03-29T16:40:08.208Z") != std::string::npos);

  auto store = sfstream::open_file_replay_store(path);
  const auto all = store->load_all();
  REQUIRE(all.size() == 3);
  CHECK(all.at("/topic/InvoiceStatementUpdates").replay_id == 13);
  CHECK(all.at("/topic/InvoiceStatementUpdates").event_time == t1);
  CHECK(all.at("/event/Low_Ink__e").replay_id == above_2_53);
  CHECK(all.at("/event/Low_Ink__e").event_time == t1 + 1500ms);
  CHECK(all.at("/data/AccountChangeEvent").replay_id == INT64_MAX);
  const auto one = store->load("/event/Low_Ink__e");
  REQUIRE(one.has_value());
  CHECK(one->replay_id == above_2_53);
}

TEST_CASE("save merges into the stored positions and a later id replaces an earlier one") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  {
    auto store = sfstream::open_file_replay_store(path);
    CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
    CHECK_FALSE(store->save({{"/topic/B", {2, time_of(2)}}}));
    CHECK_FALSE(store->save({{"/topic/A", {3, time_of(3)}}}));
  }
  auto store = sfstream::open_file_replay_store(path);
  const auto all = store->load_all();
  REQUIRE(all.size() == 2);
  CHECK(all.at("/topic/A").replay_id == 3);
  CHECK(all.at("/topic/A").event_time == time_of(3));
  CHECK(all.at("/topic/B").replay_id == 2);
}

TEST_CASE("replay keys with quotes, backslashes and unicode survive the file") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const std::string key = "/u/odd \"name\" \\ \xC3\xA9\t";
  {
    auto store = sfstream::open_file_replay_store(path);
    CHECK_FALSE(store->save({{key, {42, time_of(42)}}}));
  }
  auto store = sfstream::open_file_replay_store(path);
  const auto found = store->load(key);
  REQUIRE(found.has_value());
  CHECK(found->replay_id == 42);
}

TEST_CASE("an atomic save replaces the file and leaves no temporary file behind") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto store = sfstream::open_file_replay_store(path);
  for (std::int64_t id = 1; id <= 5; ++id) {
    CHECK_FALSE(store->save({{"/topic/A", {id, time_of(id)}}}));
    CHECK(fs::exists(path));
    CHECK_FALSE(fs::exists(dir.path() / "replay.json.tmp"));
  }
  CHECK(read_text(path).find("\"replayId\": 5") != std::string::npos);
}

TEST_CASE("a stale temporary file from a crash does not stop the store from opening or saving") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  write_text(dir.path() / "replay.json.tmp", "{\"half\":");
  auto store = sfstream::open_file_replay_store(path);
  CHECK(store->load_all().empty());
  CHECK_FALSE(store->save({{"/topic/A", {7, time_of(7)}}}));
  CHECK_FALSE(fs::exists(dir.path() / "replay.json.tmp"));
}

TEST_CASE("a second open of a held store in the same process fails with replay_store_locked") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto first = sfstream::open_file_replay_store(path);
  const auto failed = open_error(path);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(failed.to_string().find(path.string()) != std::string::npos);
  try {
    auto second = sfstream::open_file_replay_store(path);
    FAIL("the second open succeeded");
  } catch (const sfstream::error& e) {
    CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
  }
}

TEST_CASE("the lock is released when the store is destroyed") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  {
    auto first = sfstream::open_file_replay_store(path);
    CHECK_FALSE(first->save({{"/topic/A", {1, time_of(1)}}}));
  }
  auto again = sfstream::open_file_replay_store(path);
  CHECK(again->load("/topic/A").has_value());
}

TEST_CASE("another process cannot open a store this process holds") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto held = sfstream::open_file_replay_store(path);

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 1;
    try {
      auto store = sfstream::open_file_replay_store(path);
      code = 2;
    } catch (const sfstream::error& e) {
      code = e.code() == sfstream::errc::replay_store_locked ? 0 : 3;
    } catch (...) {
      code = 4;
    }
    ::_exit(code);
  }
  const int status = wait_bounded(child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 0: the child saw replay_store_locked.
}

TEST_CASE("a store held by another process cannot be opened here until that process exits") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  int ready[2];
  int release[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(release) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    try {
      auto store = sfstream::open_file_replay_store(path);
      const char ok = 'k';
      if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
      char ignored = 0;
      // Holds the store until the parent closes its end (or dies).
      while (::read(release[0], &ignored, 1) < 0 && errno == EINTR) {
      }
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  pollfd wait_ready{ready[0], POLLIN, 0};
  REQUIRE(::poll(&wait_ready, 1, 10'000) == 1);
  char got = 0;
  REQUIRE(::read(ready[0], &got, 1) == 1);

  const auto failed = open_error(path);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(failed.to_string().find(path.string()) != std::string::npos);

  ::close(release[1]);
  const int status = wait_bounded(child);
  ::close(ready[0]);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(open_error(path));
}

TEST_CASE("a corrupt store file is an error naming the path, never an empty store") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const char* bad_documents[] = {
      "",
      "{not json",
      "[]",
      "{}",
      "{\"version\":2,\"positions\":{}}",
      "{\"version\":1}",
      "{\"version\":1,\"positions\":[]}",
      "{\"version\":1,\"positions\":{\"/topic/A\":13}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":\"13\","
      "\"eventTime\":\"2016-03-29T16:40:08.208Z\"}}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":1.5,"
      "\"eventTime\":\"2016-03-29T16:40:08.208Z\"}}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":18446744073709551615,"
      "\"eventTime\":\"2016-03-29T16:40:08.208Z\"}}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":13}}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":13,\"eventTime\":\"yesterday\"}}}",
      "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":13,"
      "\"eventTime\":\"2016-02-30T16:40:08.208Z\"}}}",
      "{\"version\":1,\"positions\":{}} trailing",
  };
  for (const char* document : bad_documents) {
    INFO("document: " << document);
    write_text(path, document);
    const auto failed = open_error(path);
    CHECK(failed.code == sfstream::errc::replay_store_corrupt);
    CHECK(failed.to_string().find(path.string()) != std::string::npos);
    CHECK(read_text(path) == document);  // Left untouched for the user to inspect.
  }
}

TEST_CASE("a store path that cannot be read is a replay_store_io error naming the path") {
  scratch_dir dir;
  const auto directory_path = dir.path() / "replay.json";
  fs::create_directories(directory_path);
  auto failed = open_error(directory_path);
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.to_string().find(directory_path.string()) != std::string::npos);

  const auto missing_parent = dir.path() / "no" / "such" / "replay.json";
  failed = open_error(missing_parent);
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.to_string().find(missing_parent.string()) != std::string::npos);
}

TEST_CASE("a store file hand-written with a large replay id keeps it exact") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  write_text(path,
             "{\"version\":1,\"positions\":{\"/event/Low_Ink__e\":{\"replayId\":9007199254740993,"
             "\"eventTime\":\"2017-04-09T18:31:40.517Z\"}}}");
  auto store = sfstream::open_file_replay_store(path);
  const auto found = store->load("/event/Low_Ink__e");
  REQUIRE(found.has_value());
  CHECK(found->replay_id == above_2_53);
  CHECK(found->event_time == std::chrono::system_clock::time_point{1491762700517ms});
}

TEST_CASE("a saving process killed at a random moment always leaves a parsable, saved position") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto seed = std::random_device{}();
  INFO("seed: " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_us(0, 20'000);

  std::int64_t next_id = above_2_53;
  constexpr int rounds = 30;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    int reports[2];
    REQUIRE(::pipe(reports) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(reports[0]);
      try {
        auto store = sfstream::open_file_replay_store(path);
        // Bounded: the parent kills the child long before the loop ends.
        for (std::int64_t id = next_id; id < next_id + 1'000'000; ++id) {
          if (store->save({{"/event/Low_Ink__e", {id, time_of(id)}},
                           {"/topic/Counter", {id - above_2_53, time_of(id)}}})) {
            ::_exit(3);
          }
          if (::write(reports[1], &id, sizeof id) != static_cast<ssize_t>(sizeof id)) ::_exit(4);
        }
      } catch (...) {
        ::_exit(5);
      }
      ::_exit(0);
    }
    ::close(reports[1]);

    // Wait for the first durable save, then kill at a random moment.
    pollfd first{reports[0], POLLIN, 0};
    REQUIRE(::poll(&first, 1, 10'000) == 1);
    std::this_thread::sleep_for(std::chrono::microseconds{delay_us(random)});
    ::kill(child, SIGKILL);
    const int status = wait_bounded(child);
    CHECK(WIFSIGNALED(status));

    std::int64_t last_reported = -1;
    std::int64_t id = 0;
    ssize_t got = 0;
    while ((got = ::read(reports[0], &id, sizeof id)) == static_cast<ssize_t>(sizeof id)) {
      last_reported = id;
    }
    ::close(reports[0]);
    REQUIRE(last_reported >= next_id);

    auto store = sfstream::open_file_replay_store(path);
    const auto saved = store->load("/event/Low_Ink__e");
    REQUIRE(saved.has_value());
    // Every reported save was durable; at most one more completed before the kill.
    CHECK(saved->replay_id >= last_reported);
    CHECK(saved->replay_id <= last_reported + 1);
    CHECK(saved->event_time == time_of(saved->replay_id));
    const auto counter = store->load("/topic/Counter");
    REQUIRE(counter.has_value());
    CHECK(counter->replay_id == saved->replay_id - above_2_53);
    next_id = saved->replay_id + 1;
  }
}

TEST_CASE("a failed save reports replay_store_io and keeps both the file and the loaded state") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto store = sfstream::open_file_replay_store(path);
  CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
  const std::string before = read_text(path);

  fs::create_directories(dir.path() / "replay.json.tmp");  // The temporary cannot be created.
  const auto failed = store->save({{"/topic/A", {2, time_of(2)}}});
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.to_string().find(path.string()) != std::string::npos);
  CHECK(read_text(path) == before);
  REQUIRE(store->load("/topic/A").has_value());
  CHECK(store->load("/topic/A")->replay_id == 1);

  fs::remove(dir.path() / "replay.json.tmp");
  CHECK_FALSE(store->save({{"/topic/A", {3, time_of(3)}}}));
  CHECK(store->load("/topic/A")->replay_id == 3);
}

TEST_CASE("saving an empty batch changes nothing and creates no file") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto store = sfstream::open_file_replay_store(path);
  CHECK_FALSE(store->save({}));
  CHECK_FALSE(fs::exists(path));
}
