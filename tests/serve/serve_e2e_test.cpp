// sfstream serve end to end: a real `sfstream serve` process, three real emulated orgs (one
// with a wrong password, one whose sessions expire mid-stream, one whose webhook receiver fails
// for a while), the four channel kinds, kill -9 and SIGTERM.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "admin_support.hpp"
#include "emulator/cometd/cometd_server.hpp"
#include "support/child_process.hpp"
#include "support/emulator_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sfstream::testing::emulator_fixture;
using sfstream::testing::wait_until;
using sfstream::testing::webhook_receiver;

namespace {

const std::vector<std::string> channels{"/topic/Orders", "/u/Notices", "/event/Order__e",
                                        "/data/AccountChangeEvent"};
constexpr const char* hook_key = "whsec-e2e-0123456789-abcdefghijklmnop";

/// `sfstream serve --config FILE` as a child process; its logs (stderr) go to `log`.
std::unique_ptr<sfstream::testing::child_process> start_serve(const fs::path& config,
                                                              const fs::path& log) {
  return std::make_unique<sfstream::testing::child_process>(
      std::vector<std::string>{SFSTREAM_CLI_PATH, "serve", "--config", config.string()},
      sfstream::testing::child_process::environment{}, fs::path(log.string() + ".out"), log);
}

std::string read_file(const fs::path& p) { return sfstream::testing::read_whole_file(p); }

std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(read_file(p));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// (channel, replay id) of each line of a file sink, in file order.
std::vector<std::pair<std::string, std::int64_t>> file_events(const fs::path& p,
                                                              std::size_t from_line = 0) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  const auto lines = lines_of(p);
  for (std::size_t i = from_line; i < lines.size(); ++i) {
    rapidjson::Document d;
    d.Parse(lines[i].c_str(), lines[i].size());
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(std::string(d["connection"].GetString()) == "expiring");
    out.emplace_back(d["channel"].GetString(), d["replayId"].GetInt64());
  }
  return out;
}

/// (channel, replay id) of every event the receiver accepted, in arrival order, from request
/// `from` on.
std::vector<std::pair<std::string, std::int64_t>> hook_events(const webhook_receiver& r,
                                                              std::size_t from = 0) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  const auto accepted = r.accepted();
  for (std::size_t i = from; i < accepted.size(); ++i) {
    const auto& req = accepted[i];
    CHECK(req.signature_valid);
    rapidjson::Document d;
    d.Parse(req.body.c_str(), req.body.size());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["connection"].GetString()) == "hooked");
    const std::string channel = d["channel"].GetString();
    for (const auto& e : d["events"].GetArray())
      out.emplace_back(channel, e["data"]["event"]["replayId"].GetInt64());
  }
  return out;
}

/// Publishes `n` events on each channel of `org`; returns the ids per channel.
std::map<std::string, std::vector<std::int64_t>> publish(emulator_fixture& org, int n) {
  std::map<std::string, std::vector<std::int64_t>> ids;
  for (const auto& ch : channels) {
    for (int i = 0; i < n; ++i) {
      ids[ch].push_back(org.call([&](auto& o) {
        return o.cometd().publish_raw(
            ch, "{\"event\":{\"replayId\":{{replayId}}},\"payload\":{\"n\":" + std::to_string(i) +
                    "}}");
      }));
    }
  }
  return ids;
}

void merge(std::map<std::string, std::vector<std::int64_t>>& into,
           const std::map<std::string, std::vector<std::int64_t>>& more) {
  for (const auto& [ch, ids] : more) into[ch].insert(into[ch].end(), ids.begin(), ids.end());
}

/// The events per channel, in order.
std::map<std::string, std::vector<std::int64_t>> by_channel(
    const std::vector<std::pair<std::string, std::int64_t>>& events) {
  std::map<std::string, std::vector<std::int64_t>> out;
  for (const auto& [ch, id] : events) out[ch].push_back(id);
  return out;
}

bool has_all(const std::vector<std::pair<std::string, std::int64_t>>& got,
             const std::map<std::string, std::vector<std::int64_t>>& wanted) {
  std::multiset<std::pair<std::string, std::int64_t>> have(got.begin(), got.end());
  for (const auto& [ch, ids] : wanted) {
    for (const auto id : ids) {
      if (have.count({ch, id}) == 0) return false;
    }
  }
  return true;
}

/// Every wanted event exactly once, in order per channel.
void check_exactly_once(const std::vector<std::pair<std::string, std::int64_t>>& got,
                        const std::map<std::string, std::vector<std::int64_t>>& wanted,
                        const char* what) {
  INFO(what);
  const auto per = by_channel(got);
  for (const auto& [ch, ids] : wanted) {
    INFO(ch);
    auto it = per.find(ch);
    REQUIRE(it != per.end());
    CHECK(it->second == ids);
  }
  CHECK(per.size() == wanted.size());
}

std::uint16_t admin_port_of(const fs::path& log) {
  for (const auto& line : lines_of(log)) {
    const auto at = line.find("admin listener on 127.0.0.1:");
    if (at == std::string::npos) continue;
    return static_cast<std::uint16_t>(std::stoi(line.substr(at + 28)));
  }
  return 0;
}

}  // namespace

TEST_CASE("serve runs three orgs: a wrong password, expiring sessions and a failing webhook, "
          "exactly once apart from a kill -9" *
          doctest::test_suite("heavy")) {
  admin_test::temp_dir dir;
  emulator_fixture wrong, expiring, hooked;
  webhook_receiver receiver(hook_key);
  // The webhook fails for a while: every channel's first requests get 503.
  receiver.fail_next(24, 503);

  const auto pw = dir.write("pw", "demo-pass\n");
  const auto bad = dir.write("bad", "not-the-password\n");
  const auto token = dir.write("token", "DEMOTOKEN0000000000000");
  const auto key = dir.write("hook.key", hook_key);
  auto connection = [&](const std::string& name, emulator_fixture& org, const fs::path& password,
                        const std::string& sink) {
    std::string s = "\n[[connection]]\nname = \"" + name + "\"\n[connection.auth]\nlogin_url = \"" +
                    org.org().base_url() + "\"\nusername = \"demo@sfstream.local\"\n" +
                    "password_file = \"" + password.string() + "\"\nsecurity_token_file = \"" +
                    token.string() + "\"\n[connection.network]\nca_file = \"" +
                    org.org().ca_file() + "\"\n[connection.on_failure]\naction = \"retry\"\n" +
                    "max_retries = 1000\nbackoff_initial = 0.1\nbackoff_max = 0.5\n" + sink;
    for (const auto& ch : channels)
      s += "[[connection.channel]]\nname = \"" + ch + "\"\nstart = -2\n";
    return s;
  };
  const fs::path out_file = dir.path / "expiring.jsonl";
  const std::string config =
      "[service]\nstore = \"" + (dir.path / "positions.json").string() +
      "\"\nthreads = 2\nlog_format = \"json\"\nlog_level = \"info\"\n[admin]\nport = 0\n" +
      connection("wrong", wrong, bad, "[connection.sink]\ntype = \"file\"\npath = \"" +
                                          (dir.path / "wrong.jsonl").string() + "\"\n") +
      connection("expiring", expiring, pw,
                 "[connection.sink]\ntype = \"file\"\npath = \"" + out_file.string() + "\"\n") +
      connection("hooked", hooked, pw,
                 "[connection.sink]\ntype = \"webhook\"\nurl = \"" + receiver.url() +
                     "\"\nsigning_key_file = \"" + key.string() +
                     "\"\nbackoff_initial = 0.3\nbackoff_max = 1\n");
  const auto config_file = dir.write("serve.toml", config);
  // One log per run of the service.
  std::vector<fs::path> logs;
  auto next_log = [&] {
    logs.push_back(dir.path / ("serve-" + std::to_string(logs.size()) + ".log"));
    return logs.back();
  };

  // Round 1, before the service starts (the channels start at -2: all retained).
  std::map<std::string, std::vector<std::int64_t>> want_b = publish(expiring, 5);
  std::map<std::string, std::vector<std::int64_t>> want_c = publish(hooked, 5);
  publish(wrong, 1);

  auto svc = start_serve(config_file, next_log());
  // The org whose webhook fails and the org that cannot log in do not delay this one.
  REQUIRE(wait_until([&] { return has_all(file_events(out_file), want_b); }, 20s));
  CHECK(receiver.accepted().empty());
  REQUIRE(wait_until([&] { return has_all(hook_events(receiver), want_c); }, 60s));

  // Round 2: the sessions of one org expire mid-stream.
  expiring.call([](auto& o) {
    o.expire_all_sessions();
    return 0;
  });
  merge(want_b, publish(expiring, 5));
  merge(want_c, publish(hooked, 5));
  REQUIRE(wait_until([&] { return has_all(file_events(out_file), want_b); }, 30s));
  REQUIRE(wait_until([&] { return has_all(hook_events(receiver), want_c); }, 30s));
  check_exactly_once(file_events(out_file), want_b, "file sink before the kill");
  check_exactly_once(hook_events(receiver), want_c, "webhook before the kill");

  // /status: the wrong password is a failed connection with its error; the others stream.
  const std::uint16_t port = admin_port_of(logs.front());
  REQUIRE(port != 0);
  {
    admin_test::http_client http(port);
    const auto r = http.get("/status");
    CHECK(r.result_int() == 200);
    rapidjson::Document d;
    d.Parse(r.body().c_str(), r.body().size());
    REQUIRE_FALSE(d.HasParseError());
    std::map<std::string, std::string> states;
    for (const auto& c : d["connections"].GetArray()) {
      states[c["name"].GetString()] = c["state"].GetString();
      if (std::string(c["name"].GetString()) == "wrong") {
        REQUIRE(c["last_error"].IsString());
        CHECK(std::string(c["last_error"].GetString()).find("INVALID_LOGIN") != std::string::npos);
      }
      if (std::string(c["name"].GetString()) == "expiring") {
        CHECK(c["client"]["authentications"].GetUint64() >= 2);  // logged in again
      }
    }
    CHECK(states["wrong"] == "failed");
    CHECK(states["expiring"] == "streaming");
    CHECK(states["hooked"] == "streaming");
    CHECK(http.get("/readyz").result_int() == 503);
  }

  // Round 3 and a kill -9 while it is being delivered; the restart gets the rest.
  const std::size_t b_before_kill = file_events(out_file).size();
  const std::size_t c_before_kill = hook_events(receiver).size();
  const auto round3_b = publish(expiring, 5);
  const auto round3_c = publish(hooked, 5);
  merge(want_b, round3_b);
  merge(want_c, round3_c);
  std::this_thread::sleep_for(300ms);
  svc->kill(SIGKILL);
  CHECK(svc->wait(10s) == -SIGKILL);
  svc = start_serve(config_file, next_log());
  merge(want_b, publish(expiring, 5));
  merge(want_c, publish(hooked, 5));
  REQUIRE(wait_until([&] { return has_all(file_events(out_file), want_b); }, 30s));
  REQUIRE(wait_until([&] { return has_all(hook_events(receiver), want_c); }, 30s));
  // Every event at least once; a repeat only of round 3 (the batch uncommitted at the kill),
  // and in order per channel within each run.
  auto check_repeats = [](const std::vector<std::pair<std::string, std::int64_t>>& got,
                          const std::map<std::string, std::vector<std::int64_t>>& round3,
                          std::size_t before, const char* what) {
    INFO(what);
    std::multiset<std::pair<std::string, std::int64_t>> seen(got.begin(), got.end());
    for (const auto& [ch, id] : std::set<std::pair<std::string, std::int64_t>>(got.begin(),
                                                                               got.end())) {
      const auto n = seen.count({ch, id});
      CHECK(n <= 2);
      if (n == 2) {
        const auto& r3 = round3.at(ch);
        CHECK(std::find(r3.begin(), r3.end(), id) != r3.end());
      }
    }
    (void)before;
  };
  check_repeats(file_events(out_file), round3_b, b_before_kill, "file sink after the kill");
  check_repeats(hook_events(receiver), round3_c, c_before_kill, "webhook after the kill");

  // SIGTERM: drains, commits, exits 0.
  svc->kill(SIGTERM);
  CHECK(svc->wait(20s) == 0);
  const std::size_t b_after_term = file_events(out_file).size();
  const std::size_t c_after_term = hook_events(receiver).size();
  // A restart delivers nothing twice: only what is new, exactly once.
  svc = start_serve(config_file, next_log());
  const auto round5_b = publish(expiring, 2);
  const auto round5_c = publish(hooked, 2);
  REQUIRE(wait_until([&] { return has_all(file_events(out_file, b_after_term), round5_b); }, 30s));
  REQUIRE(wait_until([&] { return has_all(hook_events(receiver, 0), round5_c); }, 30s));
  std::this_thread::sleep_for(2s);  // time for anything repeated to show up
  check_exactly_once(file_events(out_file, b_after_term), round5_b, "file sink after SIGTERM");
  {
    // The webhook's requests after the stop: count the events of requests not seen before.
    const auto all = hook_events(receiver);
    std::vector<std::pair<std::string, std::int64_t>> after(all.begin() +
                                                                 static_cast<long>(c_after_term),
                                                             all.end());
    check_exactly_once(after, round5_c, "webhook after SIGTERM");
  }
  svc->kill(SIGTERM);
  CHECK(svc->wait(20s) == 0);

  // The logs: JSON lines; the wrong password reported once per run, no secret anywhere.
  std::size_t invalid_login = 0;
  std::size_t starts = 0;
  for (const auto& log : logs) {
    const std::string text = read_file(log);
    CHECK(text.find("demo-pass") == std::string::npos);
    CHECK(text.find("not-the-password") == std::string::npos);
    CHECK(text.find(hook_key) == std::string::npos);
    for (const auto& line : lines_of(log)) {
      rapidjson::Document d;
      d.Parse(line.c_str(), line.size());
      INFO(line);
      REQUIRE_FALSE(d.HasParseError());
      REQUIRE(d.IsObject());
      CHECK(d.HasMember("time"));
      CHECK(d.HasMember("level"));
      CHECK(d.HasMember("connection"));
      REQUIRE(d.HasMember("message"));
      const std::string message = d["message"].GetString();
      if (message.find("INVALID_LOGIN") != std::string::npos) {
        ++invalid_login;
        CHECK(message.find("INVALID_LOGIN: INVALID_LOGIN") == std::string::npos);
        CHECK(std::string(d["connection"].GetString()) == "wrong");
      }
      if (message.starts_with("starting ")) ++starts;
    }
  }
  CHECK(starts == 3);
  CHECK(invalid_login == starts);
}

TEST_CASE("serve --check lists every problem of a bad file and starts nothing") {
  admin_test::temp_dir dir;
  const auto bad = dir.write("bad.toml", R"([service]
threads = 0
[[connection]]
name = "acme"
[connection.auth]
username = "u"
password = "inline-secret-value"
[connection.sink]
type = "stdout"
[[connection.channel]]
name = "/event/NoSuffix"
)");
  const auto r = admin_test::run_command(std::string(SFSTREAM_CLI_PATH) + " serve --check " +
                                         bad.string());
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find(bad.string() + ":2: service.threads: must be from 1 to 256") !=
        std::string::npos);
  CHECK(r.output.find(bad.string() + ":7: connection[0].auth.password: secrets are not accepted "
                                     "inline") != std::string::npos);
  CHECK(r.output.find(bad.string() + ":11: connection[0].channel[0].name: bad channel") !=
        std::string::npos);
  CHECK(r.output.find("4 problems in " + bad.string() + ": nothing was started") !=
        std::string::npos);
  CHECK(r.output.find("inline-secret-value") == std::string::npos);

  // --config refuses the same file the same way, before anything starts.
  const auto run = admin_test::run_command(std::string(SFSTREAM_CLI_PATH) + " serve --config " +
                                           bad.string());
  CHECK(run.exit_code == 2);
  CHECK(run.output == r.output);

  const auto pw = dir.write("pw", "a-password-here");
  const auto good = dir.write("good.toml", "[[connection]]\nname = \"acme\"\n[connection.auth]\n"
                                           "username = \"u\"\npassword_file = \"" +
                                               pw.string() +
                                               "\"\n[connection.sink]\ntype = \"stdout\"\n"
                                               "[[connection.channel]]\nname = \"/u/x\"\n");
  const auto ok = admin_test::run_command(std::string(SFSTREAM_CLI_PATH) + " serve --check " +
                                          good.string());
  CHECK(ok.exit_code == 0);
  CHECK(ok.output == good.string() + ": good: 1 connection\n");
}

TEST_CASE("a second service on the same store is refused at start, the first goes on") {
  admin_test::temp_dir dir;
  const auto pw = dir.write("pw", "a-password-here");
  // An org that cannot be reached: the connection keeps retrying, the service keeps running.
  const auto config = dir.write(
      "serve.toml", "[service]\nstore = \"" + (dir.path / "positions.json").string() +
                        "\"\n[[connection]]\nname = \"acme\"\n[connection.auth]\n"
                        "login_url = \"http://127.0.0.1:9\"\nusername = \"u\"\npassword_file = \"" +
                        pw.string() +
                        "\"\n[connection.sink]\ntype = \"stdout\"\n"
                        "[[connection.channel]]\nname = \"/u/x\"\n");
  auto first = start_serve(config, dir.path / "first.log");
  REQUIRE(wait_until(
      [&] { return read_file(dir.path / "first.log").find("starting 1 connection") != std::string::npos; },
      10s));
  const auto second =
      admin_test::run_command(std::string(SFSTREAM_CLI_PATH) + " serve --config " + config.string());
  INFO(second.output);
  CHECK(second.exit_code == 1);
  CHECK(second.output.find("cannot start") != std::string::npos);
  CHECK(second.output.find("positions.json") != std::string::npos);
  first->kill(SIGTERM);
  CHECK(first->wait(15s) == 0);
  CHECK(read_file(dir.path / "first.log").find("a-password-here") == std::string::npos);
}
