// The programs in samples/ run as their users run them: each is started as a child process
// against an org emulator serving in this process (HTTPS on 127.0.0.1, a free port), stopped
// with SIGINT as Ctrl-C would stop it, and its whole stdout is asserted. Every child is bounded
// in time and killed when it overstays.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "support/emulator_fixture.hpp"

#if !defined(SFSTREAM_SAMPLE_ASIO_CLIENT) || !defined(SFSTREAM_SAMPLE_THREADED_CONNECTOR)
#error \
    "SFSTREAM_SAMPLE_ASIO_CLIENT and SFSTREAM_SAMPLE_THREADED_CONNECTOR must name the built samples"
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using sfstream::emulator::org_emulator;
using sfstream::testing::emulator_fixture;

/// A scratch directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sfstream-samples-test-XXXXXX").string();
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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

/// A sample running as a child process in `dir`, with `env` added to a cleaned environment;
/// stdout and stderr go to files in `dir`. Killed on destruction if still running.
class sample_process {
 public:
  sample_process(std::string program, const std::vector<std::string>& args,
                 const std::vector<std::pair<std::string, std::string>>& env, const fs::path& dir,
                 const std::string& name)
      : out_(dir / (name + ".out")), err_(dir / (name + ".err")) {
    std::vector<std::string> argv_text{std::move(program)};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out < 0 || err < 0 || ::chdir(dir.c_str()) != 0) ::_exit(127);
      ::dup2(out, 1);
      ::dup2(err, 2);
      for (const char* variable :
           {"SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_ACCESS_TOKEN", "SF_INSTANCE_URL",
            "HTTPS_PROXY", "https_proxy"}) {
        ::unsetenv(variable);
      }
      for (const auto& [variable, value] : env) ::setenv(variable.c_str(), value.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : argv_text) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~sample_process() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  sample_process(const sample_process&) = delete;
  sample_process& operator=(const sample_process&) = delete;

  /// Polls until `pred(stdout, stderr)` holds, the process exits or `limit` passes; true when
  /// it held.
  bool wait_for(const std::function<bool(const std::string&, const std::string&)>& pred,
                std::chrono::milliseconds limit = 30s) {
    const auto end = clock_type::now() + limit;
    while (clock_type::now() < end) {
      if (pred(out(), err())) return true;
      if (reap()) return pred(out(), err());
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  /// Waits until stderr says `channel` was subscribed to.
  bool wait_subscribed(const std::string& channel) {
    return wait_for([&](const std::string&, const std::string& err) {
      return err.find("subscribed to " + channel + " ") != std::string::npos;
    });
  }
  /// Waits until stdout holds `count` lines.
  bool wait_lines(std::size_t count) {
    return wait_for(
        [&](const std::string& out, const std::string&) { return lines_of(out).size() >= count; });
  }

  /// Sends SIGINT and waits up to `limit` for the exit; kills the process when it overstays.
  /// Returns the exit code, -signal when a signal ended it, or -1000 when it had to be killed.
  int interrupt(std::chrono::milliseconds limit = 20s) {
    if (!exited_) ::kill(pid_, SIGINT);
    const auto end = clock_type::now() + limit;
    while (!reap()) {
      if (clock_type::now() >= end) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        code_ = -1000;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    return code_;
  }

  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  bool reap() {
    if (exited_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exited_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return true;
  }

  fs::path out_;
  fs::path err_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

void require_ok(const sfstream::emulator::data::op_result& r) {
  INFO((r.error ? r.error->message : std::string()));
  REQUIRE(static_cast<bool>(r));
}

void create_account(emulator_fixture& org, const std::string& name) {
  org.call([&](org_emulator& emu) {
    require_ok(emu.rest().create_record("Account", R"({"Name":")" + name + R"("})"));
    return 0;
  });
}

/// The JSON document a stdout line holds, from its first '{'.
rapidjson::Document json_of(const std::string& line) {
  rapidjson::Document d;
  const auto brace = line.find('{');
  REQUIRE(brace != std::string::npos);
  d.Parse(line.c_str() + brace, line.size() - brace);
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(d.IsObject());
  return d;
}

/// The Account names of the change events the threaded sample printed, checking that each line
/// is "CREATE Account <the whole message>" for the change channel.
std::vector<std::string> created_account_names(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& line : lines_of(out)) {
    INFO(line);
    CHECK(line.rfind("CREATE Account {", 0) == 0);
    auto d = json_of(line);
    REQUIRE(d.HasMember("channel"));
    CHECK(std::string(d["channel"].GetString()) == "/data/AccountChangeEvent");
    const auto& payload = d["data"]["payload"];
    REQUIRE(payload.HasMember("Name"));
    names.emplace_back(payload["Name"].GetString());
  }
  return names;
}

}  // namespace

TEST_CASE(
    "the Asio sample logs in with SOAP and prints every PushTopic and platform event in order, "
    "then exits 0 on SIGINT") {
  emulator_fixture org;
  std::string login_url;
  std::string ca_file;
  sfstream::emulator::emulator_user user;
  org.call([&](org_emulator& emu) {
    sfstream::emulator::data::pushtopic_spec topic;
    topic.name = "AccountUpdates";
    topic.query = "SELECT Id, Name FROM Account";
    require_ok(emu.rest().create_pushtopic(topic));
    emu.rest().define_platform_event({"Demo_Event__e", {{"Message__c", "string", "", false}}});
    // Published before the sample starts: its replay-all subscription still gets it.
    require_ok(emu.rest().publish_platform_event("Demo_Event__e", R"({"Message__c":"before"})"));
    login_url = emu.login_url();
    ca_file = emu.ca_file();
    user = emu.options().users.front();
    return 0;
  });

  temp_dir dir;
  sample_process sample(SFSTREAM_SAMPLE_ASIO_CLIENT, {login_url, ca_file},
                        {{"SF_USERNAME", user.username},
                         {"SF_PASSWORD", user.password},
                         {"SF_SECURITY_TOKEN", user.security_token}},
                        dir.path, "asio");
  INFO(sample.err());
  REQUIRE(sample.wait_subscribed("/topic/AccountUpdates"));
  REQUIRE(sample.wait_subscribed("/event/Demo_Event__e"));
  create_account(org, "Sample One");
  create_account(org, "Sample Two");
  org.call([&](org_emulator& emu) {
    require_ok(emu.rest().publish_platform_event("Demo_Event__e", R"({"Message__c":"after"})"));
    return 0;
  });
  CHECK(sample.wait_lines(4));
  CHECK(sample.interrupt() == 0);

  std::vector<std::string> accounts;
  std::vector<std::string> messages;
  const auto lines = lines_of(sample.out());
  for (const auto& line : lines) {
    INFO(line);
    auto d = json_of(line);
    const std::string channel = d["channel"].GetString();
    if (channel == "/topic/AccountUpdates") {
      accounts.emplace_back(d["data"]["sobject"]["Name"].GetString());
    } else {
      CHECK(channel == "/event/Demo_Event__e");
      messages.emplace_back(d["data"]["payload"]["Message__c"].GetString());
    }
  }
  CHECK(lines.size() == 4);
  CHECK(accounts == std::vector<std::string>{"Sample One", "Sample Two"});
  CHECK(messages == std::vector<std::string>{"before", "after"});
  const std::string err = sample.err();
  CHECK(err.find(user.password) == std::string::npos);
  CHECK(err.find(user.security_token) == std::string::npos);
  CHECK(err.find("stopped:") == std::string::npos);
}

TEST_CASE(
    "the threaded sample prints each change event with a static token and a restart resumes after "
    "what it printed") {
  emulator_fixture org;
  std::string token;
  std::string instance;
  std::string ca_file;
  org.call([&](org_emulator& emu) {
    token = emu.issue_session(emu.options().users.front().username);
    instance = emu.base_url();
    ca_file = emu.ca_file();
    return 0;
  });
  REQUIRE_FALSE(token.empty());
  const std::vector<std::pair<std::string, std::string>> env{{"SF_ACCESS_TOKEN", token},
                                                             {"SF_INSTANCE_URL", instance}};
  const std::vector<std::string> args{"/data/AccountChangeEvent", ca_file};
  temp_dir dir;

  // Changes made before the first start are retained: the replay-all subscription gets them.
  create_account(org, "Change 1");
  create_account(org, "Change 2");
  {
    sample_process sample(SFSTREAM_SAMPLE_THREADED_CONNECTOR, args, env, dir.path, "run1");
    INFO(sample.err());
    REQUIRE(sample.wait_subscribed("/data/AccountChangeEvent"));
    create_account(org, "Change 3");
    CHECK(sample.wait_lines(3));
    CHECK(sample.interrupt() == 0);
    CHECK(created_account_names(sample.out()) ==
          std::vector<std::string>{"Change 1", "Change 2", "Change 3"});
    CHECK(sample.err().find(token) == std::string::npos);
  }
  CHECK(fs::exists(dir.path / "replay-positions.json"));

  // While it is stopped one more change is made; the restart resumes from the stored position:
  // that change and the next one, nothing printed before.
  create_account(org, "Change 4");
  {
    sample_process sample(SFSTREAM_SAMPLE_THREADED_CONNECTOR, args, env, dir.path, "run2");
    INFO(sample.err());
    REQUIRE(sample.wait_subscribed("/data/AccountChangeEvent"));
    CHECK(sample.wait_lines(1));
    create_account(org, "Change 5");
    CHECK(sample.wait_lines(2));
    CHECK(sample.interrupt() == 0);
    CHECK(created_account_names(sample.out()) == std::vector<std::string>{"Change 4", "Change 5"});
  }
}
