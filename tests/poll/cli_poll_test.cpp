// `sfstream poll` as its users run it: the built binary against an `sfstream emulator` process,
// both children of the test on 127.0.0.1, records written through the REST client. Every
// child is bounded in time and killed when it overstays.
#ifdef SFSTREAM_CLI_PATH

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "sfstream/credentials.hpp"
#include "sfstream/rest.hpp"
#include "support/child_process.hpp"
#include "support/emulator_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct scratch {
  fs::path path;
  scratch() {
    std::string pattern = (fs::temp_directory_path() / "sfstream-poll-cli-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

/// The sfstream binary as a child, the password and token in its environment only.
class child : public sfstream::testing::child_process {
 public:
  child(std::vector<std::string> args, const fs::path& out, const fs::path& err)
      : child_process(with_program(std::move(args)),
                      {{"SF_PASSWORD", "demo-pass"}, {"SF_SECURITY_TOKEN", "DEMOTOKEN0000000000000"}}, out, err) {}

 private:
  static std::vector<std::string> with_program(std::vector<std::string> args) {
    args.insert(args.begin(), SFSTREAM_CLI_PATH);
    return args;
  }
};

/// `sfstream emulator --http` with a data config, and a REST client logged in to it.
struct emulator_process {
  scratch dir;
  std::unique_ptr<child> process;
  std::string base_url;
  sfstream::testing::io_thread io;
  std::unique_ptr<sfstream::rest_client> rest;

  explicit emulator_process(const std::string& config_json) {
    std::ofstream(dir.path / "config.json") << config_json;
    process = std::make_unique<child>(
        std::vector<std::string>{"emulator", "--http", "--config", (dir.path / "config.json").string(), "--state-dir",
                                 dir.path.string()},
        dir.path / "emulator.out", dir.path / "emulator.err");
    const auto until = steady::now() + 10s;
    std::string first;
    while (steady::now() < until) {
      const std::string text = sfstream::testing::read_whole_file(dir.path / "emulator.out");
      if (const auto nl = text.find('\n'); nl != std::string::npos) {
        first = text.substr(0, nl);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    rapidjson::Document doc;
    doc.Parse(first.c_str());
    REQUIRE_MESSAGE(doc.IsObject(), "no startup line; stderr: " << sfstream::testing::read_whole_file(dir.path / "emulator.err"));
    base_url = doc["base_url"].GetString();
    sfstream::soap_login_options login;
    login.login_url = base_url;
    login.username = "demo@sfstream.local";
    login.password = "demo-pass";
    login.security_token = "DEMOTOKEN0000000000000";
    sfstream::rest_options options;
    options.credentials = sfstream::make_soap_login_provider(io.executor(), login, {});
    rest = std::make_unique<sfstream::rest_client>(io.executor(), options);
  }

  /// One REST call, waited for; the reply body.
  std::string call(const std::string& method, const std::string& path, const std::string& body = {}) {
    std::promise<std::pair<sfstream::error_info, std::string>> done;
    auto result = done.get_future();
    boost::asio::post(io.executor(), [&] {
      rest->async_request(method, "/services/data/v59.0" + path, body,
                          [&done](sfstream::error_info e, unsigned, std::string reply) {
                            done.set_value({std::move(e), std::move(reply)});
                          });
    });
    REQUIRE(result.wait_for(20s) == std::future_status::ready);
    auto [error, reply] = result.get();
    REQUIRE_MESSAGE(!error, error.diag.to_string());
    return reply;
  }
  std::string create(const std::string& name) {
    rapidjson::Document doc;
    const auto reply = call("POST", "/sobjects/Account", "{\"Name\":\"" + name + "\"}");
    doc.Parse(reply.c_str());
    return doc["id"].GetString();
  }
  void update(const std::string& id, const std::string& name) {
    call("PATCH", "/sobjects/Account/" + id, "{\"Name\":\"" + name + "\"}");
  }
  void remove(const std::string& id) { call("DELETE", "/sobjects/Account/" + id); }

  std::vector<std::string> poll_args(const fs::path& store, std::vector<std::string> more) const {
    std::vector<std::string> args{"poll", "--login-url", base_url, "--username", "demo@sfstream.local",
                                  "--interval", "0.2", "--overlap", "5", "--replay-store", store.string()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
};

struct change {
  std::string type, id, stamp, name;
};

std::vector<change> changes_of(const std::string& out) {
  std::vector<change> all;
  for (const auto& line : lines_of(out)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    REQUIRE_MESSAGE(doc.IsObject(), line);
    CHECK(std::string(doc["channel"].GetString()) == "/poll/Account");
    const auto& data = doc["data"];
    change c;
    c.type = data["event"]["type"].GetString();
    c.stamp = data["event"]["createdDate"].GetString();
    c.id = data["sobject"]["Id"].GetString();
    if (data["sobject"].HasMember("Name")) c.name = data["sobject"]["Name"].GetString();
    all.push_back(c);
  }
  return all;
}

}  // namespace

TEST_CASE("sfstream poll prints each change of an emulator process once, and a restart from its store only the new ones") {
  emulator_process org(R"({"queryBatchSize":2})");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(org.create("Acme" + std::to_string(i)));
  const fs::path store = org.dir.path / "cursor.json";
  {
    child poll(org.poll_args(store, {"--since", "beginning", "--count", "5", "--timeout", "20", "Account:Name"}),
               org.dir.path / "out1", org.dir.path / "err1");
    REQUIRE(poll.wait(30s) == 0);
    const auto got = changes_of(poll.out());
    REQUIRE(got.size() == 5);
    for (int i = 0; i < 5; ++i) {
      CHECK(got[i].type == "created");
      CHECK(got[i].id == ids[i]);
      CHECK(got[i].name == "Acme" + std::to_string(i));
    }
    const std::string err = poll.err();
    CHECK(err.find("sfstream: poll: ") != std::string::npos);
    CHECK(err.find(" API calls (DailyApiRequests ") != std::string::npos);
    CHECK(err.find("5 changes (Account: 5 created, 0 updated, 0 deleted)") != std::string::npos);
    CHECK(err.find("demo-pass") == std::string::npos);
    CHECK(err.find("DEMOTOKEN") == std::string::npos);
  }
  org.update(ids[1], "Acme1-renamed");
  org.remove(ids[3]);
  const std::string added = org.create("Later");
  child again(org.poll_args(store, {"--count", "3", "--timeout", "20", "Account:Name"}), org.dir.path / "out2",
              org.dir.path / "err2");
  REQUIRE(again.wait(30s) == 0);
  const auto got = changes_of(again.out());
  REQUIRE(got.size() == 3);
  std::multiset<std::string> seen;
  for (const auto& c : got) seen.insert(c.type + ":" + c.id);
  CHECK(seen == std::multiset<std::string>{"updated:" + ids[1], "deleted:" + ids[3], "created:" + added});
}

TEST_CASE("sfstream poll fails fast on an unknown object or field and on bad options, with the summary line") {
  emulator_process org("{}");
  const fs::path store = org.dir.path / "cursor.json";
  {
    child poll(org.poll_args(store, {"--timeout", "20", "Acount"}), org.dir.path / "out", org.dir.path / "err");
    CHECK(poll.wait(30s) == 1);
    CHECK(poll.err().find("INVALID_TYPE") != std::string::npos);
    CHECK(poll.err().find("sObject type 'Acount' is not supported") != std::string::npos);
    CHECK(poll.err().find("sfstream: poll: ") != std::string::npos);
  }
  {
    child poll(org.poll_args(store, {"--timeout", "20", "Account:Nmae"}), org.dir.path / "out", org.dir.path / "err");
    CHECK(poll.wait(30s) == 1);
    CHECK(poll.err().find("INVALID_FIELD") != std::string::npos);
    CHECK(poll.err().find("No such column 'Nmae'") != std::string::npos);
  }
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"poll"}, {"poll", "--interval", "0", "Account"}, {"poll", "--since", "last week", "Account"},
           {"poll", "Account@x"}, {"poll", "Acc ount"}, {"poll", "--api-share", "2", "Account"}}) {
    child poll(bad, org.dir.path / "out", org.dir.path / "err");
    CHECK(poll.wait(10s) == 2);
  }
}

TEST_CASE("sfstream poll warns when its interval would spend too much of the org's DailyApiRequests") {
  emulator_process org(R"({"dailyApiRequests":1000})");
  child poll(org.poll_args(org.dir.path / "cursor.json", {"--timeout", "1", "Account", "Contact@5"}),
             org.dir.path / "out", org.dir.path / "err");
  CHECK(poll.wait(20s) == 0);
  const std::string err = poll.err();
  CHECK(err.find("warning: polling 2 object(s) at the configured interval would make about") != std::string::npos);
  CHECK(err.find("DailyApiRequests remaining (warning above 50%)") != std::string::npos);
  CHECK(err.find("(DailyApiRequests 999 of 1000 left at start)") != std::string::npos);
}

TEST_CASE("sfstream poll killed at random moments re-prints at most the uncommitted page, and loses nothing" *
          doctest::test_suite("heavy")) {
  constexpr int page = 40;
  emulator_process org("{\"queryBatchSize\":" + std::to_string(page) + "}");
  const fs::path store = org.dir.path / "cursor.json";
  const auto seed = std::random_device{}();
  INFO("seed: " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> reads_before_kill(1, 60);
  std::vector<change> printed;
  std::set<std::pair<std::string, std::string>> written;  // what REST made: (id, name)
  int kills = 0;
  int n = 0;
  for (int round = 0; round < 10; ++round) {
    INFO("round " << round);
    for (int i = 0; i < 100; ++i) {
      const std::string name = "K" + std::to_string(n++);
      written.emplace(org.create(name), name);
    }
    // stdout is a 4 KiB pipe read 512 bytes at a time, slowly: the child sits inside a page,
    // lines written and not committed, when the kill comes.
    child poll(org.poll_args(store, {"--since", "beginning", "--timeout", "60", "Account:Name"}), {},
               org.dir.path / ("err" + std::to_string(round)));
    std::string out;
    // Nothing for 300 ms: everything is printed and the child waits for its next poll.
    for (int reads = reads_before_kill(random); reads > 0; --reads) {
      if (poll.read_stdout(out, 512, 300ms) == 0) break;
      std::this_thread::sleep_for(2ms);
    }
    poll.kill(SIGKILL);
    CHECK(poll.wait(10s) == -SIGKILL);
    ++kills;
    while (poll.read_stdout(out, 65536, 1000ms) > 0) {
    }
    // A line cut by the kill was not printed: only whole lines count.
    out.erase(out.rfind('\n') + 1);
    for (auto& c : changes_of(out)) printed.push_back(c);
  }
  // A last run that is allowed to finish: everything made is printed by the end.
  child last(org.poll_args(store, {"--since", "beginning", "--timeout", "4", "Account:Name"}), org.dir.path / "out-last",
             org.dir.path / "err-last");
  CHECK(last.wait(30s) == 0);
  for (auto& c : changes_of(last.out())) printed.push_back(c);

  std::multiset<std::pair<std::string, std::string>> versions;
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& c : printed) {
    versions.emplace(c.id, c.stamp);
    names.emplace(c.id, c.name);
  }
  CHECK(names == written);  // nothing lost
  std::size_t repeats = 0;
  for (auto it = versions.begin(); it != versions.end(); it = versions.upper_bound(*it))
    repeats += versions.count(*it) - 1;
  MESSAGE("kills: " << kills << ", changes printed: " << printed.size() << ", repeated: " << repeats);
  // A kill between a line and its page's commit re-prints at most that page.
  CHECK(repeats <= static_cast<std::size_t>(kills) * page);
  CHECK(repeats > 0);  // the kills did land inside pages
}

#endif  // SFSTREAM_CLI_PATH
