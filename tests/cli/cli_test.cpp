// Tests of the `sfstream` command: they run the built binary (SFSTREAM_CLI_PATH) as a child
// process against an org emulator running in this process, on 127.0.0.1 only. Every child is
// bounded in time and killed when it overstays; every emulator is stopped by its test.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "cli/json_line.hpp"
#include "emulator/cometd/cometd_server.hpp"
#include "emulator/emulator.hpp"
#include "sfstream/replay_store.hpp"

#ifndef SFSTREAM_CLI_PATH
#error "SFSTREAM_CLI_PATH must name the built sfstream binary"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// A scratch directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sfstream-cli-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size()))
    ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

rapidjson::Document parse_line(const std::string& line) {
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(d.IsObject());
  return d;
}

std::string member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject() || !v.HasMember(name) || !v[name].IsString()) return {};
  return v[name].GetString();
}

/// The JSON records ({"gap":…} or {"rejected":…}) among stderr's lines.
std::vector<std::string> records_of(const std::string& err, const std::string& kind) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(err)) {
    if (line.rfind("{\"" + kind + "\":", 0) == 0) out.push_back(line);
  }
  return out;
}

/// Where a child's stdout goes: a file of its own (the default), a pipe the test reads, or a
/// given path such as /dev/full.
struct stdout_to {
  bool pipe = false;
  fs::path path;
};

/// A child process running the sfstream binary, its stdout and stderr going to files.
class child {
 public:
  child(const std::vector<std::string>& args, const fs::path& dir, const std::string& name,
        const stdout_to& target = {})
      : out_(target.path.empty() ? dir / (name + ".out") : target.path),
        err_(dir / (name + ".err")) {
    std::vector<std::string> argv_text{SFSTREAM_CLI_PATH};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    int pipe_fds[2] = {-1, -1};
    if (target.pipe) REQUIRE(::pipe(pipe_fds) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int out =
          target.pipe ? pipe_fds[1] : ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out < 0 || err < 0) ::_exit(127);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (target.pipe) ::close(pipe_fds[0]);
      for (const char* variable :
           {"SF_LOGIN_URL", "SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_ACCESS_TOKEN",
            "SF_INSTANCE_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET", "SF_REFRESH_TOKEN",
            "SF_JWT_KEY_FILE", "HTTPS_PROXY", "https_proxy"}) {
        ::unsetenv(variable);
      }
      std::vector<char*> argv;
      for (auto& a : argv_text) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (target.pipe) {
      ::close(pipe_fds[1]);
      read_fd_ = pipe_fds[0];
    }
  }
  ~child() {
    close_pipe();
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Waits up to `limit` for the exit; kills the child when it overstays. Returns the exit
  /// code, or -signal when a signal ended it, or -1000 when it had to be killed.
  int wait(std::chrono::milliseconds limit) {
    const auto end = clock_type::now() + limit;
    while (!exited_) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;
      }
      if (clock_type::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        code_ = -1000;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    return code_;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  /// Limits the size of every file the child writes from now on (RLIMIT_FSIZE): a write past
  /// it fails as on a full disk, also for root, which file permissions do not stop.
  bool limit_file_size(rlim_t bytes) {
    const rlimit limit{bytes, bytes};
    return ::prlimit(pid_, RLIMIT_FSIZE, &limit, nullptr) == 0;
  }

  /// With a pipe for stdout: reads (bounded by `limit`) until `lines` whole lines arrived; returns
  /// what was read.
  std::string read_lines(std::size_t lines, std::chrono::milliseconds limit) {
    const auto end = clock_type::now() + limit;
    while (read_fd_ >= 0 && count_lines(piped_) < lines && clock_type::now() < end) {
      ::pollfd p{read_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const ::ssize_t n = ::read(read_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      piped_.append(buffer, static_cast<std::size_t>(n));
    }
    return piped_;
  }
  /// Closes the reading end of the stdout pipe: the child's next write gets EPIPE.
  void close_pipe() {
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
  }

  /// Polls until `pred(stdout, stderr)` holds or `limit` passes; true when it held.
  template <typename Pred>
  bool wait_for_output(Pred pred, std::chrono::milliseconds limit) {
    const auto end = clock_type::now() + limit;
    while (clock_type::now() < end) {
      if (pred(out(), err())) return true;
      int status = 0;
      if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (exited_) return pred(out(), err());
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  /// Waits (bounded) until stderr says the command subscribed to every channel given.
  bool wait_subscribed(const std::vector<std::string>& channels,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return wait_for_output(
        [&](const std::string&, const std::string& err) {
          for (const auto& channel : channels) {
            if (err.find("subscribed to " + channel) == std::string::npos) return false;
          }
          return true;
        },
        limit);
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  static std::size_t count_lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }

  fs::path out_;
  fs::path err_;
  int read_fd_ = -1;
  std::string piped_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

/// Runs the binary to completion (bounded) and returns {code, stdout, stderr}.
struct run_result {
  int code;
  std::string out;
  std::string err;
};
run_result run_cli(const std::vector<std::string>& args, std::chrono::milliseconds limit = 30s) {
  temp_dir dir;
  child c(args, dir.path, "run");
  const int code = c.wait(limit);
  return {code, c.out(), c.err()};
}

/// An org emulator on its own thread, over HTTPS with its CA file.
class running_org {
 public:
  explicit running_org(const std::function<void(sfstream::emulator::org_emulator&)>& setup = {}) {
    sfstream::emulator::emulator_options options;
    options.state_dir = dir_.path.string();
    options.long_poll_timeout = 20s;
    emu_ = std::make_unique<sfstream::emulator::org_emulator>(io_.get_executor(), options);
    if (setup) setup(*emu_);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~running_org() {
    asio::post(io_, [this] {
      emu_->stop();
      io_.stop();
    });
    work_.reset();
    thread_.join();
    emu_.reset();
  }

  /// Runs `f` on the emulator's thread and returns its result.
  template <typename F>
  auto on_emulator(F f) {
    std::packaged_task<decltype(f(std::declval<sfstream::emulator::org_emulator&>()))(
        sfstream::emulator::org_emulator&)>
        task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task, this] { task(*emu_); });
    return result.get();
  }

  std::vector<std::string> login_args(std::string password = {}) const {
    const auto& u = emu_->options().users.front();
    return {"--login-url",      emu_->login_url(),
            "--ca-file",        emu_->ca_file(),
            "--username",       u.username,
            "--password",       password.empty() ? u.password : password,
            "--security-token", u.security_token};
  }
  const sfstream::emulator::emulator_user& user() const { return emu_->options().users.front(); }

 private:
  temp_dir dir_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<sfstream::emulator::org_emulator> emu_;
  std::thread thread_;
};

void create_account_updates_topic(sfstream::emulator::org_emulator& emu) {
  sfstream::emulator::data::pushtopic_spec spec;
  spec.name = "AccountUpdates";
  spec.query = "SELECT Id, Name, Industry FROM Account";
  auto r = emu.rest().create_pushtopic(spec);
  REQUIRE(static_cast<bool>(r));
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Checks one stdout line has exactly the members channel, replayId (integer), data (object).
void check_event_line(const std::string& line, const std::string& channel) {
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(d.IsObject());
  CHECK(d.MemberCount() == 3);
  REQUIRE(d.HasMember("channel"));
  CHECK(std::string(d["channel"].GetString()) == channel);
  REQUIRE(d.HasMember("replayId"));
  CHECK(d["replayId"].IsInt64());
  REQUIRE(d.HasMember("data"));
  CHECK(d["data"].IsObject());
}

}  // namespace

TEST_CASE("sfstream --help lists every exit code") {
  auto r = run_cli({"--help"});
  CHECK(r.code == 0);
  for (const char* code : {"0 ", "2 ", "3 ", "4 ", "5 ", "6 ", "7 ", "8 ", "9 ", "10 ", "130"})
    CHECK(r.out.find(code) != std::string::npos);
  CHECK(r.out.find("output failed") != std::string::npos);
  CHECK(r.out.find("authentication failed") != std::string::npos);
  auto s = run_cli({"subscribe", "--help"});
  CHECK(s.code == 0);
  CHECK(s.out.find("--replay-policy") != std::string::npos);
  CHECK(s.out.find("130") != std::string::npos);
  for (const char* part :
       {"8 output failed", "9 the reader of stdout went away",
        "10 the replay store could not be saved", "{\"gap\":{", "{\"rejected\":{"}) {
    CHECK(s.out.find(part) != std::string::npos);
  }
}

TEST_CASE("usage errors exit with code 2 and say what is wrong") {
  CHECK(run_cli({}).code == 2);
  auto unknown = run_cli({"frobnicate"});
  CHECK(unknown.code == 2);
  CHECK(unknown.err.find("unknown command") != std::string::npos);
  auto no_channel =
      run_cli({"subscribe", "--access-token", "x", "--instance-url", "https://127.0.0.1:1"});
  CHECK(no_channel.code == 2);
  CHECK(no_channel.err.find("CHANNEL") != std::string::npos);
  auto bad_option = run_cli({"subscribe", "--bogus", "/topic/X"});
  CHECK(bad_option.code == 2);
  CHECK(bad_option.err.find("--bogus") != std::string::npos);
  auto bad_replay = run_cli({"subscribe", "--replay", "abc", "/topic/X"});
  CHECK(bad_replay.code == 2);
  auto missing_value = run_cli({"subscribe", "/topic/X", "--count"});
  CHECK(missing_value.code == 2);
  CHECK(missing_value.err.find("needs a value") != std::string::npos);
  auto no_credentials = run_cli({"subscribe", "/topic/X"});
  CHECK(no_credentials.code == 2);
  CHECK(no_credentials.err.find("credentials") != std::string::npos);
  auto bad_policy = run_cli({"subscribe", "--replay-policy=sometimes", "/topic/X"});
  CHECK(bad_policy.code == 2);
  auto bad_oauth = run_cli({"login", "--oauth", "magic", "--client-id", "x"});
  CHECK(bad_oauth.code == 2);
  auto bad_publish = run_cli({"publish", "/topic/X", "payload"});
  CHECK(bad_publish.code == 2);
}

TEST_CASE("login prints the instance url, user id and organization id and no session id") {
  running_org org;
  auto r = run_cli(concat({"login"}, org.login_args()));
  REQUIRE(r.code == 0);
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(d.IsObject());
  CHECK(d.HasMember("instance_url"));
  CHECK(d.HasMember("user_id"));
  CHECK(d.HasMember("organization_id"));
  CHECK_FALSE(d.HasMember("access_token"));
  CHECK(std::string(d["user_id"].GetString()) == org.user().user_id);
  CHECK(std::string(d["instance_url"].GetString()).rfind("https://127.0.0.1:", 0) == 0);
  // Salesforce-style session ids are "<org id>!<secret>": none may be printed.
  CHECK(r.out.find('!') == std::string::npos);
  CHECK(r.err.find('!') == std::string::npos);
  CHECK(r.out.find(org.user().password) == std::string::npos);

  auto shown = run_cli(concat({"login", "--show-token"}, org.login_args()));
  REQUIRE(shown.code == 0);
  CHECK(shown.out.find("\"access_token\"") != std::string::npos);
}

TEST_CASE(
    "login with an access token checks it and prints whose it is, and a refused token exits 3") {
  running_org org;
  auto shown = run_cli(concat({"login", "--show-token"}, org.login_args()));
  REQUIRE(shown.code == 0);
  rapidjson::Document first;
  first.Parse(shown.out.c_str(), shown.out.size());
  REQUIRE(first.IsObject());
  const std::string token = first["access_token"].GetString();
  const std::string instance = first["instance_url"].GetString();
  const std::string ca =
      org.on_emulator([](sfstream::emulator::org_emulator& emu) { return emu.ca_file(); });

  auto r = run_cli({"login", "--access-token", token, "--instance-url", instance, "--ca-file", ca});
  REQUIRE(r.code == 0);
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  REQUIRE(d.IsObject());
  CHECK(std::string(d["user_id"].GetString()) == org.user().user_id);
  CHECK(std::string(d["organization_id"].GetString()) == first["organization_id"].GetString());
  CHECK(r.out.find(token) == std::string::npos);
  CHECK(r.err.find(token) == std::string::npos);

  const std::string forged = token.substr(0, token.find('!') + 1) + "forged-session-value";
  auto refused =
      run_cli({"login", "--access-token", forged, "--instance-url", instance, "--ca-file", ca});
  CHECK(refused.code == 3);
  CHECK(refused.err.find("refused") != std::string::npos);
  CHECK(refused.out.empty());
  CHECK(refused.err.find("forged-session-value") == std::string::npos);
}

TEST_CASE("a wrong password exits 3 with INVALID_LOGIN and the password appears nowhere") {
  running_org org;
  const std::string wrong = "Wrong-Secret-p4ss";
  auto r = run_cli(concat({"login", "-v"}, org.login_args(wrong)));
  CHECK(r.code == 3);
  CHECK(r.err.find("INVALID_LOGIN") != std::string::npos);
  CHECK(r.out.find(wrong) == std::string::npos);
  CHECK(r.err.find(wrong) == std::string::npos);
  CHECK(r.err.find(org.user().security_token) == std::string::npos);

  auto s = run_cli(
      concat({"subscribe", "--timeout", "20", "/topic/AccountUpdates"}, org.login_args(wrong)));
  CHECK(s.code == 3);
  CHECK(s.err.find(wrong) == std::string::npos);
  CHECK(s.out.empty());
}

TEST_CASE("subscribe --count 2 prints two PushTopic events as JSON lines of the exact shape") {
  running_org org(create_account_updates_topic);
  temp_dir dir;
  child c(concat({"subscribe", "--count", "2", "--timeout", "60", "/topic/AccountUpdates"},
                 org.login_args()),
          dir.path, "sub");
  REQUIRE(c.wait_subscribed({"/topic/AccountUpdates"}));
  for (const char* name : {"Acme", "Globex", "Initech"}) {
    auto r = org.on_emulator([name](sfstream::emulator::org_emulator& emu) {
      return emu.rest().create_record(
          "Account", std::string(R"({"Name":")") + name + R"(","Industry":"Energy"})");
    });
    REQUIRE(static_cast<bool>(r));
  }
  CHECK(c.wait(60s) == 0);
  const auto lines = lines_of(c.out());
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) {
    check_event_line(line, "/topic/AccountUpdates");
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    CHECK(d["data"].HasMember("event"));
    CHECK(d["data"].HasMember("sobject"));
  }
  CHECK(lines[0].find("Acme") != std::string::npos);
  CHECK(lines[1].find("Globex") != std::string::npos);
}

TEST_CASE("subscribing only to a topic that does not exist exits 4") {
  running_org org;
  auto r =
      run_cli(concat({"subscribe", "--timeout", "30", "/topic/NoSuchTopic"}, org.login_args()));
  CHECK(r.code == 4);
  CHECK(r.err.find("/topic/NoSuchTopic") != std::string::npos);
  // One JSON record, and no log line saying it again: one failure is reported once.
  const auto rejected = records_of(r.err, "rejected");
  REQUIRE(rejected.size() == 1);
  auto record = parse_line(rejected[0]);
  CHECK(member(record["rejected"], "channel") == "/topic/NoSuchTopic");
  CHECK(member(record["rejected"], "error").find("does not exist") != std::string::npos);
  CHECK(count_of(r.err, "does not exist") == 1);
  CHECK(r.out.empty());
}

TEST_CASE("demo exits 0 and prints events of the four kinds") {
  auto r = run_cli({"demo"}, 60s);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::set<std::string> channels;
  for (const auto& line : lines_of(r.out)) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(d.IsObject());
    REQUIRE(d.HasMember("channel"));
    channels.insert(d["channel"].GetString());
  }
  CHECK(channels.count("/topic/AccountUpdates") == 1);
  CHECK(channels.count("/u/demo") == 1);
  CHECK(channels.count("/event/Demo_Event__e") == 1);
  CHECK(channels.count("/data/AccountChangeEvent") == 1);
  CHECK(r.err.find("demo-pass") == std::string::npos);
}

TEST_CASE(
    "after kill -9 a restart with the same replay store loses nothing and repeats only uncommitted "
    "events") {
  running_org org(create_account_updates_topic);
  temp_dir dir;
  const std::string store = (dir.path / "replay.json").string();
  const auto args =
      concat({"subscribe", "--replay", "-2", "--replay-store", store, "/topic/AccountUpdates"},
             org.login_args());
  constexpr int records = 40;

  // Records are created on another thread while the first run streams.
  std::atomic<int> created{0};
  std::vector<std::string> names;
  for (int i = 0; i < records; ++i) names.push_back("Crash Test " + std::to_string(i));
  std::thread creator;
  std::multimap<long long, std::string> first_run;
  long long committed = -1;
  {
    child run1(args, dir.path, "run1");
    REQUIRE(run1.wait_for_output(
        [](const std::string&, const std::string& err) {
          return err.find("subscribed to") != std::string::npos;
        },
        30s));
    creator = std::thread([&] {
      for (int i = 0; i < records; ++i) {
        org.on_emulator([&](sfstream::emulator::org_emulator& emu) {
          return emu.rest().create_record(
              "Account", R"({"Name":")" + names[static_cast<std::size_t>(i)] + R"("})");
        });
        ++created;
        std::this_thread::sleep_for(30ms);
      }
    });
    const bool streaming = run1.wait_for_output(
        [](const std::string& out, const std::string&) { return lines_of(out).size() >= 10; }, 30s);
    run1.signal(SIGKILL);
    run1.wait(10s);
    REQUIRE(streaming);
    CHECK(created.load() < records);  // killed mid-stream
    for (const auto& line : lines_of(run1.out())) {
      rapidjson::Document d;
      d.Parse(line.c_str(), line.size());
      if (d.HasParseError() || !d.IsObject()) continue;  // a line cut by the kill
      first_run.emplace(d["replayId"].GetInt64(), d["data"]["sobject"]["Name"].GetString());
    }
    const std::string stored = read_file(store);
    rapidjson::Document s;
    s.Parse(stored.c_str(), stored.size());
    if (!s.HasParseError() && s.IsObject() && s.HasMember("positions") &&
        s["positions"].HasMember("/topic/AccountUpdates")) {
      committed = s["positions"]["/topic/AccountUpdates"]["replayId"].GetInt64();
    }
  }
  creator.join();
  CHECK(committed >= 0);
  // The store never runs ahead of what was printed.
  REQUIRE_FALSE(first_run.empty());
  CHECK(committed <= first_run.rbegin()->first);

  std::multimap<long long, std::string> second_run;
  {
    child run2(args, dir.path, "run2");
    const bool all = run2.wait_for_output(
        [&](const std::string& out, const std::string&) {
          std::set<std::string> seen;
          for (const auto& [id, name] : first_run) seen.insert(name);
          for (const auto& line : lines_of(out)) {
            rapidjson::Document d;
            d.Parse(line.c_str(), line.size());
            if (!d.HasParseError() && d.IsObject())
              seen.insert(d["data"]["sobject"]["Name"].GetString());
          }
          return seen.size() >= static_cast<std::size_t>(records);
        },
        30s);
    run2.signal(SIGTERM);
    CHECK(run2.wait(15s) == 130);
    CHECK(all);
    for (const auto& line : lines_of(run2.out())) {
      rapidjson::Document d;
      d.Parse(line.c_str(), line.size());
      REQUIRE_FALSE(d.HasParseError());
      second_run.emplace(d["replayId"].GetInt64(), d["data"]["sobject"]["Name"].GetString());
    }
  }
  // Every record's event arrived across the two runs, each run printed it at most once, and a
  // repeat (printed by both runs) is only of an event after the killed run's last commit.
  std::multiset<std::string> in_first;
  std::multiset<std::string> in_both;
  std::map<std::string, long long> first_id;
  for (const auto& [id, name] : first_run) {
    in_first.insert(name);
    in_both.insert(name);
    first_id[name] = id;
  }
  std::multiset<std::string> in_second;
  for (const auto& [id, name] : second_run) {
    in_second.insert(name);
    in_both.insert(name);
    CHECK(id > committed);  // nothing at or before the commit is delivered again
  }
  for (const auto& name : names) {
    INFO(name);
    CHECK(in_first.count(name) <= 1);
    CHECK(in_second.count(name) <= 1);
    CHECK(in_both.count(name) >= 1);
    if (in_both.count(name) == 2) CHECK(first_id[name] > committed);
  }
  for (const auto& name : in_both)
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
}

TEST_CASE("a refused replay id under --replay-policy fail exits 5 and reports the gap") {
  running_org org(create_account_updates_topic);
  auto r = run_cli(concat(
      {"subscribe", "--replay-policy", "fail", "--timeout", "30", "/topic/AccountUpdates=999999"},
      org.login_args()));
  CHECK(r.code == 5);
  CHECK(r.err.find("999999") != std::string::npos);
  const auto rejected = records_of(r.err, "rejected");
  REQUIRE(rejected.size() == 1);
  CHECK(member(parse_line(rejected[0])["rejected"], "channel") == "/topic/AccountUpdates");
  CHECK(rejected[0].find("999999") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("with --max-retries the command gives up on an unreachable org with exit 6") {
  // Port 1 on loopback: nothing listens there, so every attempt is refused at once.
  auto r = run_cli({"subscribe", "--access-token", "not-a-real-token", "--instance-url",
                    "https://127.0.0.1:1", "--max-retries", "1", "--timeout", "60", "/topic/X"},
                   90s);
  CHECK(r.code == 6);
  CHECK(r.err.find("not-a-real-token") == std::string::npos);
}

TEST_CASE("topic create, list and delete manage PushTopics, and publish reaches both event kinds") {
  running_org org([](sfstream::emulator::org_emulator& emu) {
    emu.rest().define_platform_event({"Note__e", {{"Text__c", "string", "", false}}});
    REQUIRE(static_cast<bool>(emu.rest().create_streaming_channel("/u/notes")));
  });
  auto created =
      run_cli(concat({"topic", "create", "Leads", "SELECT Id, Name FROM Lead"}, org.login_args()));
  REQUIRE(created.code == 0);
  CHECK(created.out.find("\"channel\":\"/topic/Leads\"") != std::string::npos);
  auto listed = run_cli(concat({"topic", "list"}, org.login_args()));
  REQUIRE(listed.code == 0);
  CHECK(listed.out.find("SELECT Id, Name FROM Lead") != std::string::npos);
  auto deleted = run_cli(concat({"topic", "delete", "Leads"}, org.login_args()));
  CHECK(deleted.code == 0);
  auto again = run_cli(concat({"topic", "delete", "Leads"}, org.login_args()));
  CHECK(again.code == 1);
  CHECK(again.err.find("no PushTopic named 'Leads'") != std::string::npos);

  temp_dir dir;
  child sub(concat({"subscribe", "--count", "2", "--timeout", "60", "/event/Note__e", "/u/notes"},
                   org.login_args()),
            dir.path, "sub");
  REQUIRE(sub.wait_subscribed({"/event/Note__e", "/u/notes"}));
  auto event = run_cli(
      concat({"publish", "/event/Note__e", R"({"Text__c":"from the CLI"})"}, org.login_args()));
  CHECK(event.code == 0);
  auto pushed = run_cli(concat({"publish", "/u/notes", "pushed \"text\""}, org.login_args()));
  CHECK(pushed.code == 0);
  CHECK(sub.wait(60s) == 0);
  const auto lines = lines_of(sub.out());
  REQUIRE(lines.size() == 2);
  const std::string both = lines[0] + lines[1];
  CHECK(both.find("from the CLI") != std::string::npos);
  CHECK(both.find(R"(pushed \"text\")") != std::string::npos);
}

namespace {

/// An org with CDC on Account, one live account ("Kept") and one in the recycle bin ("Gone").
struct cdc_org {
  std::string kept;
  std::string gone;
  running_org org{[this](sfstream::emulator::org_emulator& emu) {
    REQUIRE(static_cast<bool>(emu.rest().enable_cdc("Account")));
    auto a = emu.rest().create_record("Account", R"({"Name":"Kept","Industry":"Energy"})");
    auto b = emu.rest().create_record("Account", R"({"Name":"Gone","Industry":"Retail"})");
    REQUIRE(static_cast<bool>(a));
    REQUIRE(static_cast<bool>(b));
    REQUIRE(static_cast<bool>(emu.rest().delete_record("Account", b.id)));
    kept = a.id;
    gone = b.id;
  }};

  void gap_update() {
    auto r = org.on_emulator([this](sfstream::emulator::org_emulator& emu) {
      return emu.rest().emit_gap_events("Account", {kept, gone},
                                        sfstream::emulator::data::gap_type::gap_update);
    });
    REQUIRE(static_cast<bool>(r));
  }
};

bool has_line_with(const std::string& out, const std::string& text) {
  return out.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("subscribe prints a CDC gap's and an overflow's reconciled records after their events") {
  cdc_org data;
  temp_dir dir;
  const std::string channel = "/data/AccountChangeEvent";
  child c(concat({"subscribe", "--count", "3", "--timeout", "60", "--reconcile-fields",
                  "Account=Name,Industry", channel},
                 data.org.login_args()),
          dir.path, "sub");
  REQUIRE(c.wait_subscribed({channel}));
  data.gap_update();
  REQUIRE(
      c.wait_for_output([&](const std::string& out,
                            const std::string&) { return has_line_with(out, "\"reconciled\""); },
                        30s));
  auto overflow = data.org.on_emulator(
      [](sfstream::emulator::org_emulator& emu) { return emu.rest().emit_overflow("Account"); });
  REQUIRE(static_cast<bool>(overflow));
  REQUIRE(
      c.wait_for_output([&](const std::string& out,
                            const std::string&) { return has_line_with(out, R"("resync":"end")"); },
                        30s));
  auto created = data.org.on_emulator([](sfstream::emulator::org_emulator& emu) {
    return emu.rest().create_record("Account", R"({"Name":"Fresh"})");
  });
  REQUIRE(static_cast<bool>(created));
  REQUIRE(c.wait(60s) == 0);

  const auto lines = lines_of(c.out());
  // GAP_UPDATE, its two reconciled records; GAP_OVERFLOW, begin, the live record, the
  // recycle-bin record, end; CREATE.
  REQUIRE(lines.size() == 9);
  std::vector<rapidjson::Document> docs;
  for (const auto& line : lines) {
    docs.push_back(parse_line(line));
    CHECK(member(docs.back(), "channel") == channel);
  }
  auto change_type = [](const rapidjson::Document& d) {
    if (!d.HasMember("data") || !d["data"].HasMember("payload")) return std::string();
    return member(d["data"]["payload"]["ChangeEventHeader"], "changeType");
  };
  CHECK(change_type(docs[0]) == "GAP_UPDATE");
  CHECK(docs[0]["replayId"].IsInt64());
  // The two gap records, in either order: the live one as an upsert with its fields, the
  // deleted one as a delete.
  std::map<std::string, std::string> action_by_id;
  for (std::size_t i : {1u, 2u}) {
    CHECK_FALSE(docs[i].HasMember("replayId"));
    CHECK(docs[i]["fromGap"].IsTrue());
    CHECK(member(docs[i], "entity") == "Account");
    action_by_id[member(docs[i], "id")] = member(docs[i], "reconciled");
    if (member(docs[i], "id") == data.kept) {
      CHECK(member(docs[i]["record"], "Name") == "Kept");
      CHECK(member(docs[i]["record"], "Industry") == "Energy");
    }
  }
  CHECK(action_by_id[data.kept] == "upsert");
  CHECK(action_by_id[data.gone] == "delete");

  CHECK(change_type(docs[3]) == "GAP_OVERFLOW");
  CHECK(member(docs[4], "resync") == "begin");
  CHECK(member(docs[4], "entity") == "Account");
  CHECK(member(docs[5], "resync") == "record");
  CHECK(member(docs[5], "id") == data.kept);
  CHECK(member(docs[5]["record"], "Name") == "Kept");
  CHECK(member(docs[6], "reconciled") == "delete");
  CHECK(member(docs[6], "id") == data.gone);
  CHECK(docs[6]["fromGap"].IsFalse());
  CHECK(member(docs[7], "resync") == "end");
  CHECK(change_type(docs[8]) == "CREATE");
}

TEST_CASE("a CDC gap that cannot be reconciled exits 7 and is not committed, so a rerun gets it") {
  cdc_org data;
  temp_dir dir;
  const std::string channel = "/data/AccountChangeEvent";
  const std::string store = (dir.path / "positions").string();
  {
    child c(concat({"subscribe", "--timeout", "60", "--replay-store", store, "--reconcile-fields",
                    "Account=NoSuchField__c", channel},
                   data.org.login_args()),
            dir.path, "bad");
    REQUIRE(c.wait_subscribed({channel}));
    // The gap and a later change in one batch: nothing after the failed gap may be printed or
    // committed, or the stored position would pass the gap.
    auto r = data.org.on_emulator([&data](sfstream::emulator::org_emulator& emu) {
      auto gap = emu.rest().emit_gap_events("Account", {data.kept, data.gone},
                                            sfstream::emulator::data::gap_type::gap_update);
      auto later = emu.rest().create_record("Account", R"({"Name":"Later"})");
      return static_cast<bool>(gap) && static_cast<bool>(later);
    });
    REQUIRE(r);
    CHECK(c.wait(60s) == 7);
    CHECK(has_line_with(c.err(), "cannot reconcile"));
    CHECK(has_line_with(c.err(), "INVALID_FIELD"));
    const auto lines = lines_of(c.out());
    REQUIRE(lines.size() == 1);  // the gap event itself, printed but not committed
    CHECK_FALSE(has_line_with(c.out(), "Later"));
  }
  // The rerun replays everything retained (nothing was committed) and reconciles the gap.
  child again(concat({"subscribe", "--timeout", "60", "--replay-store", store, "--reconcile-fields",
                      "Account=Name", channel + "=-2"},
                     data.org.login_args()),
              dir.path, "again");
  REQUIRE(again.wait_for_output(
      [&](const std::string& out, const std::string&) {
        return has_line_with(out, "\"GAP_UPDATE\"") &&
               has_line_with(out, R"("reconciled":"delete")") &&
               has_line_with(out, R"("reconciled":"upsert")");
      },
      30s));
  again.signal(SIGINT);
  CHECK(again.wait(30s) == 130);
}

namespace {

/// A generic event's data with its own replay id, as the emulator fills it in.
const std::string plain_event =
    R"({"payload":"event {{replayId}}","event":{"replayId":{{replayId}}}})";

/// Publishes `n` events whose data is the raw text `data` on `channel`; returns their ids.
std::vector<std::int64_t> publish_raw(running_org& org, const std::string& channel,
                                      const std::string& data, int n = 1) {
  return org.on_emulator([&](sfstream::emulator::org_emulator& emu) {
    std::vector<std::int64_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back(emu.cometd().publish_raw(channel, data));
    return ids;
  });
}

/// The replay ids of the event lines in `out`, in order.
std::vector<std::int64_t> ids_of(const std::string& out) {
  std::vector<std::int64_t> ids;
  for (const auto& line : lines_of(out)) {
    auto d = parse_line(line);
    REQUIRE(d.HasMember("replayId"));
    REQUIRE(d["replayId"].IsInt64());
    ids.push_back(d["replayId"].GetInt64());
  }
  return ids;
}

/// The replay id a store file holds for `key`, read the way a restarted command reads it.
std::optional<std::int64_t> stored_id(const std::string& path, const std::string& key) {
  const std::string text = read_file(path);
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("positions") ||
      !d["positions"].IsObject() || !d["positions"].HasMember(key.c_str())) {
    return std::nullopt;
  }
  return d["positions"][key.c_str()]["replayId"].GetInt64();
}

}  // namespace

TEST_CASE("stdout on a full disk exits 8 and commits nothing, so a rerun prints every event") {
  running_org org;
  const auto ids = publish_raw(org, "/u/Out", plain_event, 3);
  temp_dir dir;
  const std::string store = (dir.path / "replay.json").string();
  const auto args = concat({"subscribe", "--replay", "-2", "--replay-store", store, "--count", "3",
                            "--timeout", "60", "/u/Out"},
                           org.login_args());
  {
    child full(args, dir.path, "full", stdout_to{false, "/dev/full"});
    CHECK(full.wait(60s) == 8);
    CHECK(full.err().find("cannot write events to stdout: No space left on device") !=
          std::string::npos);
  }
  CHECK_FALSE(stored_id(store, "/u/Out").has_value());
  child again(args, dir.path, "again");
  CHECK(again.wait(60s) == 0);
  CHECK(ids_of(again.out()) == ids);
  CHECK(stored_id(store, "/u/Out") == ids.back());
}

TEST_CASE("a reader that closes stdout exits 9 and nothing after its last line is committed") {
  running_org org;
  const auto first = publish_raw(org, "/u/Pipe", plain_event);
  temp_dir dir;
  const std::string store = (dir.path / "replay.json").string();
  const auto args = concat({"subscribe", "--replay-store", store, "--timeout", "60", "/u/Pipe=-2"},
                           org.login_args());
  std::string read;
  {
    child c(args, dir.path, "pipe", stdout_to{true, {}});
    read = c.read_lines(1, 30s);
    REQUIRE(ids_of(read) == first);
    c.close_pipe();
    const auto second = publish_raw(org, "/u/Pipe", plain_event);
    REQUIRE(second.size() == 1);
    CHECK(c.wait(60s) == 9);
    CHECK(c.err().find("broken pipe") != std::string::npos);
  }
  CHECK(stored_id(store, "/u/Pipe") == first.front());
  // The rerun resumes after the last line the reader got.
  child again(
      concat({"subscribe", "--replay-store", store, "--count", "1", "--timeout", "60", "/u/Pipe"},
             org.login_args()),
      dir.path, "again");
  CHECK(again.wait(60s) == 0);
  CHECK(ids_of(again.out()) == std::vector<std::int64_t>{first.front() + 1});
}

TEST_CASE("a replay store that cannot be saved any more ends the run with exit 10") {
  running_org org;
  const auto first = publish_raw(org, "/u/Store", plain_event);
  temp_dir dir;
  const std::string store = (dir.path / "replay.json").string();
  // stdout goes to /dev/null, which no file size limit concerns: only the store fails.
  child c(concat({"subscribe", "--replay-store", store, "--timeout", "60", "/u/Store=-2"},
                 org.login_args()),
          dir.path, "store", stdout_to{false, "/dev/null"});
  REQUIRE(c.wait_for_output(
      [&](const std::string&, const std::string&) {
        return stored_id(store, "/u/Store") == first.front();
      },
      30s));
  // Root writes through any permission: a file size limit makes the next save fail instead.
  REQUIRE(c.limit_file_size(1));
  publish_raw(org, "/u/Store", plain_event);
  CHECK(c.wait(60s) == 10);
  // (stderr is a file too, which the limit stops growing: its message cannot be checked here.)
  CHECK(stored_id(store, "/u/Store") == first.front());
}

TEST_CASE(
    "an expired stored position under --replay-policy fail exits 5 at once with a gap record") {
  running_org org;
  publish_raw(org, "/u/Old", plain_event);
  temp_dir dir;
  const std::string store = (dir.path / "replay.json").string();
  sfstream::open_file_replay_store(store)->save(
      {{"/u/Old", {1, std::chrono::system_clock::now() - std::chrono::hours(48)}}});
  // A --timeout far beyond the run: exit 5 (not the timeout's 0, not a kill) shows it stopped
  // by itself.
  auto r = run_cli(concat({"subscribe", "--replay-store", store, "--replay-policy", "fail",
                           "--timeout", "600", "/u/Old"},
                          org.login_args()),
                   120s);
  CHECK(r.code == 5);
  CHECK(r.out.empty());
  const auto gaps = records_of(r.err, "gap");
  REQUIRE(gaps.size() == 1);
  auto gap = parse_line(gaps[0]);
  CHECK(member(gap["gap"], "channel") == "/u/Old");
  CHECK(member(gap["gap"], "reason") == "expired");
  CHECK(member(gap["gap"], "policy") == "fail");
  CHECK(gap["gap"]["lastReplayId"].GetInt64() == 1);
  CHECK(gap["gap"]["resumedFrom"].IsNull());
}

TEST_CASE("a malformed or too old --api-version exits 2 before any request") {
  for (const char* version : {"36.0", "abc", "59", "59.0.1", "-1.0"}) {
    INFO(version);
    // Nothing listens on port 1: a request would be refused and retried until --timeout.
    auto r = run_cli({"subscribe", "--api-version", version, "--access-token", "x",
                      "--instance-url", "https://127.0.0.1:1", "--timeout", "600", "/topic/X"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--api-version") != std::string::npos);
  }
  auto r = run_cli({"topic", "list", "--api-version", "20.0", "--access-token", "x",
                    "--instance-url", "https://127.0.0.1:1"});
  CHECK(r.code == 2);
  CHECK(r.err.find("37.0 or later") != std::string::npos);
}

TEST_CASE("a refused --access-token ends the run with exit 3 and says the token expired") {
  running_org org;
  auto shown = run_cli(concat({"login", "--show-token"}, org.login_args()));
  REQUIRE(shown.code == 0);
  auto login = parse_line(shown.out);
  const std::string instance = member(login, "instance_url");
  const std::string token = member(login, "access_token");
  const std::string forged = token.substr(0, token.find('!') + 1) + "revoked-session-value";
  const std::string ca =
      org.on_emulator([](sfstream::emulator::org_emulator& emu) { return emu.ca_file(); });
  auto r = run_cli({"subscribe", "--access-token", forged, "--instance-url", instance, "--ca-file",
                    ca, "--timeout", "600", "/topic/X"},
                   120s);
  CHECK(r.code == 3);
  CHECK(r.err.find("has expired or was revoked") != std::string::npos);
  CHECK(r.err.find("sfstream login") != std::string::npos);
  CHECK(r.err.find("revoked-session-value") == std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("a certificate that cannot be verified ends the run and the message names --ca-file") {
  running_org org;
  const auto& u = org.user();
  const std::string url =
      org.on_emulator([](sfstream::emulator::org_emulator& emu) { return emu.login_url(); });
  const std::vector<std::string> no_ca{
      "--login-url", url,        "--username",       u.username,
      "--password",  u.password, "--security-token", u.security_token};
  auto r = run_cli(concat({"subscribe", "--timeout", "600", "/topic/X"}, no_ca), 120s);
  CHECK(r.code == 1);
  CHECK(r.err.find("--ca-file") != std::string::npos);
  auto login = run_cli(concat({"login"}, no_ca));
  CHECK(login.code == 1);
  CHECK(login.err.find("--ca-file") != std::string::npos);
}

TEST_CASE("pretty-printed events and invalid UTF-8 still make one valid JSON line per event") {
  running_org org;
  const auto pretty =
      publish_raw(org, "/u/Hostile",
                  "{\n  \"payload\": \"pretty {{replayId}}\",\n  \"event\": {\n    \"replayId\": "
                  "{{replayId}}\n  }\n}");
  const auto broken = publish_raw(
      org, "/u/Hostile",
      "{\"payload\":\"bad \xff\xfe end \xe2\x82\",\"event\":{\"replayId\":{{replayId}}}}");
  auto r = run_cli(
      concat({"subscribe", "--replay", "-2", "--count", "2", "--timeout", "60", "/u/Hostile"},
             org.login_args()),
      90s);
  REQUIRE(r.code == 0);
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 2);
  std::vector<std::string> payloads;
  for (const auto& line : lines) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
    REQUIRE_FALSE(d.HasParseError());
    check_event_line(line, "/u/Hostile");
    payloads.push_back(member(d["data"], "payload"));
  }
  CHECK(payloads == std::vector<std::string>{"pretty " + std::to_string(pretty.front()),
                                             "bad \xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD"});
  CHECK(ids_of(r.out) == std::vector<std::int64_t>{pretty.front(), broken.front()});
  CHECK(count_of(r.err, "U+FFFD") == 1);  // one warning, for the one event
}

TEST_CASE("the word-at-a-time byte scan finds control and non-ASCII bytes at every position") {
  // Every byte value at every position of texts of 1 to 19 bytes, against what it must find.
  int scanned = 0;
  for (std::size_t length = 1; length < 20; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int value = 0; value < 256; ++value) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(value);
        const auto found = sfstream::cli::classify_bytes(text);
        ++scanned;
        if (found.control != (value < 0x20) || found.non_ascii != (value >= 0x80)) {
          FAIL("length " << length << " position " << at << " byte " << value);
        }
      }
    }
  }
  CHECK(scanned == 190 * 256);
  // A byte of 0x80 or above next to a control byte, in one word: both found.
  const auto both = sfstream::cli::classify_bytes(std::string("ab\x80\x1f" "cdefgh"));
  CHECK(both.control);
  CHECK(both.non_ascii);
  CHECK_FALSE(sfstream::cli::classify_bytes("").control);
}

TEST_CASE("the line writer keeps valid compact JSON as is and repairs the rest") {
  using sfstream::cli::append_json_line;
  auto line = [](std::string_view json, sfstream::cli::json_line_fix* fix = nullptr) {
    std::string out;
    const auto made = append_json_line(out, json);
    if (fix != nullptr) *fix = made;
    return out;
  };
  sfstream::cli::json_line_fix fix;
  const std::string compact = "{\"a\":\"x y\\\" \\n\",\"b\":[1,2.50,-3e+2],\"c\":\"\xC3\xA9\"}";
  CHECK(line(compact, &fix) == compact);
  CHECK_FALSE(fix.any());
  CHECK(line("{\n  \"a\" : \"x y\\\" \\n\",\r\n\t\"b\": [1, 2.50, -3e+2],\"c\":\"\xC3\xA9\"\n}",
             &fix) == compact);
  CHECK(fix.compacted);
  CHECK_FALSE(fix.replaced_utf8);
  // Each invalid sequence becomes one U+FFFD: a stray continuation byte, an overlong form, a
  // surrogate, a code point above U+10FFFF, a sequence cut short by the end of the string.
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(line("[\"\x80\"]", &fix) == "[\"" + fffd + "\"]");
  CHECK(fix.replaced_utf8);
  CHECK(line("[\"\xC0\x80\"]") == "[\"" + fffd + fffd + "\"]");
  CHECK(line("[\"\xED\xA0\x80\"]") == "[\"" + fffd + fffd + fffd + "\"]");
  CHECK(line("[\"\xF4\x90\x80\x80\"]") == "[\"" + fffd + fffd + fffd + fffd + "\"]");
  CHECK(line("[\"\xF0\x9F\x98\"]") == "[\"" + fffd + "\"]");
  CHECK(line("[\"\xF0\x9F\x98\x80\"]") == "[\"\xF0\x9F\x98\x80\"]");
  // A raw control character inside a string is escaped; whitespace inside strings stays.
  CHECK(line("{\"a\":\"tab\there\"}", &fix) == "{\"a\":\"tab\\u0009here\"}");
  CHECK(fix.escaped_control);
  // Spaces on one line are valid JSON Lines: kept. With a newline the value is compacted.
  CHECK(line("{ \"a b\" : \"c  d\" }", &fix) == "{ \"a b\" : \"c  d\" }");
  CHECK_FALSE(fix.any());
  CHECK(line("{ \"a b\" :\n \"c  d\" }") == "{\"a b\":\"c  d\"}");
  CHECK(sfstream::cli::valid_utf8("ok \xFF") == "ok " + fffd);
}

TEST_CASE("emulator --orgs serves more orgs, lists each in its startup line and refuses bad names") {
  temp_dir dir;
  child c({"emulator", "--http", "--orgs", "west,east"}, dir.path, "emulator");
  REQUIRE(c.wait_for_output(
      [](const std::string& out, const std::string&) { return out.find('\n') != std::string::npos; },
      20s));
  const std::string line = lines_of(c.out()).front();
  CHECK(line.find(R"("orgs":[{"name":"default","org_id":"00DDM0000000001AAA")") != std::string::npos);
  CHECK(line.find(R"({"name":"west","org_id":"00DDM0000000002AAA")") != std::string::npos);
  CHECK(line.find(R"({"name":"east","org_id":"00DDM0000000003AAA")") != std::string::npos);
  CHECK(line.find(R"("username":"demo@east.sfstream.local")") != std::string::npos);
  c.signal(SIGTERM);
  CHECK(c.wait(10s) == 0);

  auto bad = run_cli({"emulator", "--orgs", "West!"});
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--orgs needs names") != std::string::npos);
  auto twice = run_cli({"emulator", "--http", "--orgs", "west,west"});
  CHECK(twice.code == 1);
  CHECK(twice.err.find("two orgs are named 'west'") != std::string::npos);
}
