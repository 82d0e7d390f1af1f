// The JSON Lines sinks of sfstream serve: the line shape, the file sink's rotation and its
// behaviour on a full disk (a real ENOSPC from /dev/full).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "serve/event_line.hpp"
#include "serve/file_sink.hpp"
#include "sfstream/event.hpp"

namespace fs = std::filesystem;
using namespace sfstream;
using namespace sfstream::serve;

namespace {

std::vector<event> events_of(const std::string& channel, std::int64_t first, std::size_t n,
                             std::size_t pad = 0) {
  std::vector<event> out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = first + static_cast<std::int64_t>(i);
    out.emplace_back(channel, id,
                     "{\"channel\":\"" + channel + "\",\"data\":{\"event\":{\"replayId\":" +
                         std::to_string(id) + "},\"payload\":\"" + std::string(pad, 'x') +
                         "\"}}");
  }
  return out;
}

struct recorded_log {
  std::mutex mutex;
  std::vector<std::pair<log_level, std::string>> lines;
  logger make() {
    logger l;
    l.min_level = log_level::debug;
    l.sink = [this](log_level level, std::string_view text) {
      std::lock_guard lock{mutex};
      lines.emplace_back(level, std::string(text));
    };
    return l;
  }
  std::size_t count(log_level level) {
    std::lock_guard lock{mutex};
    std::size_t n = 0;
    for (const auto& [l, t] : lines) n += l == level ? 1 : 0;
    return n;
  }
};

struct outcome {
  bool called = false;
  std::size_t handled = 0;
  error_info error;
};

outcome deliver(sink& s, const std::vector<event>& events, const std::string& channel) {
  outcome o;
  s.deliver("acme", channel, events, [&o](std::size_t handled, error_info error) {
    o.called = true;
    o.handled = handled;
    o.error = std::move(error);
  });
  return o;
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct temp_dir {
  fs::path path = fs::temp_directory_path() /
                  ("sfstream-line-sinks-" + std::to_string(::getpid()));
  temp_dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("an event line is the subscribe line with the connection first") {
  const auto events = events_of("/topic/X", 7, 1);
  std::string out;
  CHECK_FALSE(append_event_line(out, "acme", events[0]));
  CHECK(out ==
        "{\"connection\":\"acme\",\"channel\":\"/topic/X\",\"replayId\":7,\"data\":{\"event\":{"
        "\"replayId\":7},\"payload\":\"\"}}\n");
  // Pretty-printed data still makes one line of valid JSON.
  event pretty("/u/x", std::nullopt, "{\"data\":{\n  \"a\": \"b\\u0041\xff\"\n}}");
  out.clear();
  CHECK(append_event_line(out, "acme", pretty));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  rapidjson::Document d;
  d.Parse(out.c_str(), out.size() - 1);
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["replayId"].IsNull());
  CHECK(std::string(d["connection"].GetString()) == "acme");
}

TEST_CASE("the file sink appends every batch whole and rotates by size, keeping N files") {
  temp_dir dir;
  recorded_log log;
  const fs::path path = dir.path / "out.jsonl";
  auto s = make_file_sink({path, 4096, 2}, log.make());
  std::int64_t next = 1;
  std::vector<std::int64_t> ids;
  for (int batch = 0; batch < 12; ++batch) {
    const auto events = events_of("/event/E__e", next, 5, 100);  // ~1 KiB a batch
    next += 5;
    const auto o = deliver(*s, events, "/event/E__e");
    REQUIRE(o.called);
    CHECK_FALSE(o.error);
    CHECK(o.handled == 5);
  }
  // PATH, PATH.1 and PATH.2 exist; nothing older; each at most max_bytes.
  REQUIRE(fs::exists(path));
  REQUIRE(fs::exists(dir.path / "out.jsonl.1"));
  REQUIRE(fs::exists(dir.path / "out.jsonl.2"));
  CHECK_FALSE(fs::exists(dir.path / "out.jsonl.3"));
  for (const char* name : {"out.jsonl", "out.jsonl.1", "out.jsonl.2"})
    CHECK(fs::file_size(dir.path / name) <= 4096);
  // Oldest to newest, the kept files hold the last events in order, none twice, none cut.
  std::vector<std::int64_t> seen;
  for (const char* name : {"out.jsonl.2", "out.jsonl.1", "out.jsonl"}) {
    for (const auto& line : lines_of(dir.path / name)) {
      rapidjson::Document d;
      d.Parse(line.c_str(), line.size());
      REQUIRE_FALSE(d.HasParseError());
      seen.push_back(d["replayId"].GetInt64());
    }
  }
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back() == next - 1);
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] == seen[i - 1] + 1);
  const auto f = s->figures();
  CHECK(f.batches == 12);
  CHECK(f.events == 60);
  CHECK(f.failures == 0);
  CHECK(f.latency_count == 12);
  CHECK(f.backlog == 0);
}

TEST_CASE("a full disk fails the batch with nothing handled and is reported once") {
  recorded_log log;
  auto s = make_file_sink({"/dev/full", 1 << 20, 2}, log.make());
  for (int i = 0; i < 5; ++i) {
    const auto o = deliver(*s, events_of("/topic/X", 1, 3), "/topic/X");
    REQUIRE(o.called);
    CHECK(o.handled == 0);
    CHECK(o.error.code == errc::output_failed);
    CHECK(o.error.cause == std::error_code(ENOSPC, std::generic_category()));
  }
  CHECK(log.count(log_level::error) == 1);
  const auto f = s->figures();
  CHECK(f.failures == 5);
  CHECK(f.events == 0);
  REQUIRE(f.last_error.has_value());
  CHECK(f.last_error->find("/dev/full") != std::string::npos);
}

TEST_CASE("a file sink whose directory is missing fails its batches until it appears") {
  temp_dir dir;
  recorded_log log;
  const fs::path path = dir.path / "later" / "out.jsonl";
  auto s = make_file_sink({path, 1 << 20, 1}, log.make());
  auto o = deliver(*s, events_of("/u/x", 1, 2), "/u/x");
  CHECK(o.handled == 0);
  CHECK(o.error.code == errc::output_failed);
  o = deliver(*s, events_of("/u/x", 1, 2), "/u/x");
  CHECK(o.error.code == errc::output_failed);
  CHECK(log.count(log_level::error) == 1);
  fs::create_directories(path.parent_path());
  o = deliver(*s, events_of("/u/x", 1, 2), "/u/x");
  CHECK_FALSE(o.error);
  CHECK(o.handled == 2);
  CHECK(lines_of(path).size() == 2);
  CHECK(log.count(log_level::info) == 1);  // "works again", once
}
