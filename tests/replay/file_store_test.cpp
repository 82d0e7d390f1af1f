#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
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

// Runs `body` in a forked child and hands back the error_info it returned (code, cause and
// one-line text), or an info whose text starts with "child:" when the child itself failed.
// The child never returns into doctest: it reports through a pipe and _exits.
sfstream::error_info in_child(const std::function<sfstream::error_info()>& body) {
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(report[0]);
    std::string text;
    try {
      const sfstream::error_info info = body();
      text = std::to_string(info.code.value()) + "\n" + std::to_string(info.cause.value()) + "\n" +
             info.to_string();
    } catch (const sfstream::error& e) {
      text = std::to_string(e.code().value()) + "\n" + std::to_string(e.info().cause.value()) +
             "\n" + e.info().to_string();
    } catch (const std::exception& e) {
      text = std::string("0\n0\nchild: ") + e.what();
    } catch (...) {
      text = "0\n0\nchild: unknown exception";
    }
    std::string_view rest = text;
    while (!rest.empty()) {
      const ssize_t written = ::write(report[1], rest.data(), rest.size());
      if (written <= 0) ::_exit(2);
      rest.remove_prefix(static_cast<std::size_t>(written));
    }
    ::_exit(0);
  }
  ::close(report[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd readable{report[0], POLLIN, 0};
    if (::poll(&readable, 1, 1000) <= 0) continue;
    const ssize_t got = ::read(report[0], buffer, sizeof buffer);
    if (got <= 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(report[0]);
  const int status = wait_bounded(child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const auto first = text.find('\n');
  const auto second = text.find('\n', first + 1);
  REQUIRE(second != std::string::npos);
  sfstream::error_info info;
  if (const int code = std::stoi(text.substr(0, first))) {
    info.code = std::error_code(code, sfstream::category());
  }
  if (const int cause = std::stoi(text.substr(first + 1, second - first - 1))) {
    info.cause = std::error_code(cause, std::generic_category());
  }
  info.diag.server_text = text.substr(second + 1);
  return info;
}

// open_file_replay_store in another process: what it threw, or no code when it opened.
sfstream::error_info open_error_in_child(const fs::path& path) {
  return in_child([&] {
    auto store = sfstream::open_file_replay_store(path);
    return sfstream::error_info{};
  });
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
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

TEST_CASE(
    "a second open through a symbolic link to the store file is refused in this and another "
    "process") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto link = dir.path() / "link.json";
  fs::create_symlink("replay.json", link);
  auto held = sfstream::open_file_replay_store(path);

  auto failed = open_error(link);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(contains(failed.to_string(), link.string()));
  CHECK(contains(failed.to_string(), path.string() + ".lock is locked"));

  failed = open_error_in_child(link);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK_FALSE(fs::exists(dir.path() / "link.json.lock"));
}

TEST_CASE("the store held through a symbolic link refuses a second open by its real path") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto link = dir.path() / "link.json";
  fs::create_symlink(path, link);
  auto held = sfstream::open_file_replay_store(link);
  CHECK_FALSE(held->save({{"/topic/A", {1, time_of(1)}}}));
  CHECK(open_error_in_child(path).code == sfstream::errc::replay_store_locked);
}

TEST_CASE("a second open through a symbolic link to the store's directory is refused") {
  scratch_dir dir;
  fs::create_directories(dir.path() / "real");
  const auto linked_directory = dir.path() / "linked";
  fs::create_directory_symlink(dir.path() / "real", linked_directory);
  auto held = sfstream::open_file_replay_store(dir.path() / "real" / "replay.json");

  CHECK(open_error_in_child(linked_directory / "replay.json").code ==
        sfstream::errc::replay_store_locked);
  CHECK(open_error_in_child(dir.path() / "linked" / ".." / "real" / "replay.json").code ==
        sfstream::errc::replay_store_locked);
}

TEST_CASE("a second open through a hard link to the store file is refused") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto hard = dir.path() / "hard.json";
  {
    auto first = sfstream::open_file_replay_store(path);
    CHECK_FALSE(first->save({{"/topic/A", {1, time_of(1)}}}));
  }
  fs::create_hard_link(path, hard);
  auto held = sfstream::open_file_replay_store(path);

  auto failed = open_error_in_child(hard);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(contains(failed.to_string(), hard.string()));
  CHECK(contains(failed.to_string(), "(a hard link?)"));

  // A hard link made to the file the store has just written is refused too.
  CHECK_FALSE(held->save({{"/topic/A", {2, time_of(2)}}}));
  const auto later = dir.path() / "later.json";
  fs::create_hard_link(path, later);
  CHECK(open_error_in_child(later).code == sfstream::errc::replay_store_locked);
  CHECK(open_error(later).code == sfstream::errc::replay_store_locked);
}

TEST_CASE("after the lock file is deleted under a running store a second open is still refused") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto lock = dir.path() / "replay.json.lock";
  auto held = sfstream::open_file_replay_store(path);
  CHECK_FALSE(held->save({{"/topic/A", {1, time_of(1)}}}));
  REQUIRE(fs::remove(lock));

  auto failed = open_error_in_child(path);
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(contains(failed.to_string(), "the store file is locked"));

  // The child's attempt left a fresh, unheld lock file: the holder's next save takes that
  // over, and saving goes on.
  CHECK_FALSE(held->save({{"/topic/A", {2, time_of(2)}}}));
  CHECK(held->load("/topic/A")->replay_id == 2);
  REQUIRE(fs::remove(lock));
  CHECK_FALSE(held->save({{"/topic/A", {3, time_of(3)}}}));
  CHECK(fs::exists(lock));
  CHECK(open_error_in_child(path).code == sfstream::errc::replay_store_locked);
  CHECK(contains(read_text(path), "\"replayId\": 3"));
}

TEST_CASE(
    "a second store that got in after the lock file was deleted stops the first store's saves") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto lock = dir.path() / "replay.json.lock";
  // No document exists yet, so only the lock file kept others out, and it is deleted.
  auto first = sfstream::open_file_replay_store(path);
  REQUIRE(fs::remove(lock));
  auto second = sfstream::open_file_replay_store(path);

  auto failed = first->save({{"/topic/A", {1, time_of(1)}}});
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(contains(failed.to_string(), path.string()));
  CHECK(
      contains(failed.to_string(),
               lock.string() +
                   " was replaced while this store held it, and another store holds the new one"));
  CHECK_FALSE(fs::exists(path));
  CHECK(first->load_all().empty());

  CHECK_FALSE(second->save({{"/topic/B", {7, time_of(7)}}}));
  const std::string written = read_text(path);
  // Once lost, exclusivity stays lost: every later save of the first store fails alike.
  CHECK(first->save({{"/topic/A", {2, time_of(2)}}}).code == sfstream::errc::replay_store_locked);
  CHECK(read_text(path) == written);
  CHECK(second->load("/topic/B")->replay_id == 7);
  CHECK_FALSE(second->load("/topic/A").has_value());
}

TEST_CASE("a store file written by another writer stops this store's saves") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  auto store = sfstream::open_file_replay_store(path);
  CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
  const auto foreign = dir.path() / "foreign.json";
  write_text(foreign, "{\"version\":1,\"positions\":{}}");
  fs::rename(foreign, path);

  const auto failed = store->save({{"/topic/A", {2, time_of(2)}}});
  CHECK(failed.code == sfstream::errc::replay_store_locked);
  CHECK(contains(failed.to_string(), "the store file was written by another process"));
  CHECK(read_text(path) == "{\"version\":1,\"positions\":{}}");
}

TEST_CASE("saves through a symbolic link write the target and the link stays a link") {
  scratch_dir dir;
  fs::create_directories(dir.path() / "data");
  const auto target = dir.path() / "data" / "replay.json";
  const auto link = dir.path() / "link.json";
  fs::create_symlink(fs::path("data") / "replay.json", link);  // Dangling until the first save.
  {
    auto store = sfstream::open_file_replay_store(link);
    for (std::int64_t id = 1; id <= 3; ++id) {
      CHECK_FALSE(store->save({{"/topic/A", {id, time_of(id)}}}));
      CHECK(fs::is_symlink(link));
      CHECK(fs::read_symlink(link) == fs::path("data") / "replay.json");
    }
  }
  CHECK(contains(read_text(target), "\"replayId\": 3"));
  CHECK(fs::exists(dir.path() / "data" / "replay.json.lock"));
  CHECK_FALSE(fs::exists(dir.path() / "data" / "replay.json.tmp"));
  CHECK_FALSE(fs::exists(dir.path() / "link.json.lock"));
  CHECK_FALSE(fs::exists(dir.path() / "link.json.tmp"));

  auto reopened = sfstream::open_file_replay_store(link);
  CHECK(reopened->load("/topic/A")->replay_id == 3);
}

TEST_CASE(
    "a chain of symbolic links is followed to the store and a loop is a replay_store_io error") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  fs::create_symlink("replay.json", dir.path() / "one.json");
  fs::create_symlink("one.json", dir.path() / "two.json");
  auto held = sfstream::open_file_replay_store(dir.path() / "two.json");
  CHECK_FALSE(held->save({{"/topic/A", {1, time_of(1)}}}));
  CHECK(fs::is_regular_file(fs::symlink_status(path)));
  CHECK(open_error(path).code == sfstream::errc::replay_store_locked);

  fs::create_symlink("loop-b.json", dir.path() / "loop-a.json");
  fs::create_symlink("loop-a.json", dir.path() / "loop-b.json");
  const auto failed = open_error(dir.path() / "loop-a.json");
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.cause == std::errc::too_many_symbolic_link_levels);
  CHECK(contains(failed.to_string(), "too many levels of symbolic links"));
}

TEST_CASE("a symbolic link planted at the temporary name is replaced, never written through") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  const auto victim = dir.path() / "victim.txt";
  write_text(victim, "keep me");
  fs::create_symlink(victim, dir.path() / "replay.json.tmp");
  auto store = sfstream::open_file_replay_store(path);
  CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
  CHECK(read_text(victim) == "keep me");
  CHECK(contains(read_text(path), "\"replayId\": 1"));
  CHECK_FALSE(fs::exists(fs::symlink_status(dir.path() / "replay.json.tmp")));
}

// Root ignores file permissions, so a read-only directory proves nothing where tests run as
// root. Resource limits bind root too: RLIMIT_FSIZE makes a write fail as a full disk does,
// and RLIMIT_NOFILE makes creating the temporary fail. Each runs in a child process.
TEST_CASE(
    "a save whose write fails returns replay_store_io with the cause and keeps the old file") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  {
    auto store = sfstream::open_file_replay_store(path);
    CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
  }
  const std::string before = read_text(path);

  const auto failed = in_child([&] {
    auto store = sfstream::open_file_replay_store(path);
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{static_cast<rlim_t>(before.size()), static_cast<rlim_t>(before.size())};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) throw std::runtime_error("setrlimit failed");
    auto info = store->save({{"/topic/A", {2, time_of(2)}}, {"/topic/Longer", {3, time_of(3)}}});
    // The store's own view is unchanged too.
    if (store->load("/topic/A")->replay_id != 1 || store->load("/topic/Longer")) {
      throw std::runtime_error("the failed save changed the loaded positions");
    }
    return info;
  });
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.cause == std::errc::file_too_large);
  CHECK(contains(failed.to_string(), "cannot write " + path.string() + ".tmp"));
  CHECK(contains(failed.to_string(), path.string()));
  CHECK(read_text(path) == before);
  CHECK_FALSE(fs::exists(dir.path() / "replay.json.tmp"));

  auto store = sfstream::open_file_replay_store(path);
  CHECK(store->load("/topic/A")->replay_id == 1);
  CHECK_FALSE(store->save({{"/topic/A", {4, time_of(4)}}}));
}

TEST_CASE("a save that cannot create its temporary returns replay_store_io with the cause") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  {
    auto store = sfstream::open_file_replay_store(path);
    CHECK_FALSE(store->save({{"/topic/A", {1, time_of(1)}}}));
  }
  const std::string before = read_text(path);

  const auto failed = in_child([&] {
    auto store = sfstream::open_file_replay_store(path);
    // Every descriptor from the lowest free one up is out of reach.
    const int lowest_free = ::dup(0);
    if (lowest_free < 0) throw std::runtime_error("dup failed");
    ::close(lowest_free);
    const rlimit limit{static_cast<rlim_t>(lowest_free), static_cast<rlim_t>(lowest_free)};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) throw std::runtime_error("setrlimit failed");
    return store->save({{"/topic/A", {2, time_of(2)}}});
  });
  CHECK(failed.code == sfstream::errc::replay_store_io);
  CHECK(failed.cause == std::errc::too_many_files_open);
  CHECK(contains(failed.to_string(), "cannot create " + path.string() + ".tmp"));
  CHECK(read_text(path) == before);
  CHECK_FALSE(fs::exists(dir.path() / "replay.json.tmp"));
}

TEST_CASE("a corrupt store file names the path and says what is wrong") {
  scratch_dir dir;
  const auto path = dir.path() / "replay.json";
  write_text(path, "{\"version\":1,\"positions\":{\"/topic/A\":{\"replayId\":\"13\"}}}");
  auto failed = open_error(path);
  CHECK(failed.code == sfstream::errc::replay_store_corrupt);
  CHECK(failed.diag.context == "replay store " + path.string());
  CHECK(failed.diag.server_text == "the entry of \"/topic/A\" has no 64-bit integer \"replayId\"");

  write_text(path, "{not json");
  failed = open_error(path);
  CHECK(failed.code == sfstream::errc::replay_store_corrupt);
  CHECK(failed.diag.server_text == "not valid JSON at byte 1: Missing a name for object member.");
}
