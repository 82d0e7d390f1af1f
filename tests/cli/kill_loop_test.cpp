// The kill -9 loop: `sfstream subscribe --replay-store` is killed with SIGKILL at random moments
// while a stream of numbered records goes on, and restarted each time with the same store. The
// union of the outputs has every event; an event is printed again only when it came after the
// last commit of the run that was killed (the store is read before each restart); one run never
// prints an event twice. Counted with a multiset, so a repeat cannot hide.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "emulator/emulator.hpp"

#ifndef SFSTREAM_CLI_PATH
#error "SFSTREAM_CLI_PATH must name the built sfstream binary"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "sfstream-kill-loop-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The sfstream binary as a child process, stdout and stderr to files; killed if it overstays.
class cli_process {
 public:
  cli_process(const std::vector<std::string>& args, const fs::path& out, const fs::path& err)
      : out_(out), err_(err) {
    std::vector<std::string> argv_text{SFSTREAM_CLI_PATH};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0) ::_exit(127);
      ::dup2(o, 1);
      ::dup2(e, 2);
      for (const char* variable :
           {"SF_LOGIN_URL", "SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_ACCESS_TOKEN",
            "SF_INSTANCE_URL", "HTTPS_PROXY", "https_proxy"}) {
        ::unsetenv(variable);
      }
      std::vector<char*> argv;
      for (auto& a : argv_text) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~cli_process() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  cli_process(const cli_process&) = delete;
  cli_process& operator=(const cli_process&) = delete;

  void signal(int sig) { ::kill(pid_, sig); }
  /// Waits up to `limit`; kills when it overstays. Exit code, -signal, or -1000 when killed here.
  int wait(std::chrono::milliseconds limit) {
    const auto end = steady::now() + limit;
    while (!exited_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;
      }
      if (steady::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        code_ = -1000;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    return code_;
  }
  bool exited() {
    int status = 0;
    if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    return exited_;
  }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }

 private:
  fs::path out_;
  fs::path err_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

/// An org emulator over HTTPS on its own thread.
class org_thread {
 public:
  org_thread() {
    sfstream::emulator::emulator_options options;
    options.state_dir = dir_.path.string();
    options.long_poll_timeout = 5s;
    // Each killed run leaves its Bayeux client behind until the server expires it (40 s): more
    // than 20 kills need the larger editions' concurrent-client allocation.
    options.concurrent_client_limit = 1000;
    emu_ = std::make_unique<sfstream::emulator::org_emulator>(io_.get_executor(), options);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~org_thread() {
    asio::post(io_, [this] {
      emu_->stop();
      io_.stop();
    });
    work_.reset();
    thread_.join();
    emu_.reset();
  }
  template <typename F>
  auto call(F f) {
    std::packaged_task<decltype(f(std::declval<sfstream::emulator::org_emulator&>()))(
        sfstream::emulator::org_emulator&)>
        task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task, this] { task(*emu_); });
    return result.get();
  }
  std::vector<std::string> login_args() const {
    const auto& u = emu_->options().users.front();
    return {"--login-url", emu_->login_url(), "--ca-file", emu_->ca_file(),    "--username",
            u.username,    "--password",      u.password,  "--security-token", u.security_token};
  }

 private:
  scratch_dir dir_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<sfstream::emulator::org_emulator> emu_;
  std::thread thread_;
};

/// One printed event: its replay id and the record number its name carries.
struct printed {
  long long replay_id;
  int number;
};

/// The complete event lines of a run's stdout (a last line cut by the kill is left out).
std::vector<printed> events_of(const std::string& out) {
  std::vector<printed> events;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("replayId") || !d["replayId"].IsInt64())
      continue;
    const auto& data = d["data"];
    if (!data.IsObject() || !data.HasMember("sobject")) continue;
    const std::string name = data["sobject"]["Name"].GetString();
    events.push_back({d["replayId"].GetInt64(), std::stoi(name.substr(name.find('#') + 1))});
  }
  return events;
}

/// The committed replay id of the channel in the store file, -1 when none.
long long committed_in(const fs::path& store, const std::string& channel) {
  const std::string text = slurp(store);
  rapidjson::Document s;
  s.Parse(text.c_str(), text.size());
  if (s.HasParseError() || !s.IsObject() || !s.HasMember("positions")) return -1;
  const auto& positions = s["positions"];
  if (!positions.IsObject() || !positions.HasMember(channel.c_str())) return -1;
  const auto& p = positions[channel.c_str()];
  if (!p.IsObject() || !p.HasMember("replayId") || !p["replayId"].IsInt64()) return -1;
  return p["replayId"].GetInt64();
}

}  // namespace

// Long end-to-end cases: the doctest suite "heavy" (CTest label heavy) runs once, in the
// normal build; the sanitizer build covers the same code with the other suites.
TEST_SUITE_BEGIN("heavy");

TEST_CASE(
    "twenty kill -9 of subscribe --replay-store during a stream lose nothing and repeat only "
    "uncommitted events") {
  org_thread org;
  const std::string channel = "/topic/KillLoop";
  REQUIRE(static_cast<bool>(org.call([](sfstream::emulator::org_emulator& emu) {
    sfstream::emulator::data::pushtopic_spec spec;
    spec.name = "KillLoop";
    spec.query = "SELECT Id, Name FROM Account";
    return emu.rest().create_pushtopic(spec);
  })));
  scratch_dir dir;
  const fs::path store = dir.path / "replay.json";
  std::vector<std::string> args = {"subscribe",      "--replay",     "-2",
                                   "--replay-store", store.string(), channel};
  const auto login = org.login_args();
  args.insert(args.end(), login.begin(), login.end());

  // The stream: one record every 10 ms until the loop is over.
  std::atomic<bool> streaming{true};
  std::atomic<int> created{0};
  std::thread creator([&] {
    const auto until = steady::now() + 80s;
    while (streaming && steady::now() < until) {
      const int n = created.load();
      auto r = org.call([n](sfstream::emulator::org_emulator& emu) {
        return emu.rest().create_record("Account",
                                        R"({"Name":"Kill #)" + std::to_string(n) + R"(#"})");
      });
      if (!r) break;
      ++created;
      std::this_thread::sleep_for(10ms);
    }
  });

  constexpr int kills = 22;
  std::mt19937 random(20260101u);
  std::uniform_int_distribution<int> delay_ms(50, 1500);
  std::multiset<long long> all_ids;
  std::set<int> all_numbers;
  int repeats = 0;
  int bad_repeats = 0;       // printed again though at or below the killed run's commit
  int repeats_in_a_run = 0;  // the same event twice in one run
  long long committed = -1;  // the store's position when the current run started
  std::vector<long long> committed_after;
  std::string runs_summary;  // per run: what it printed and the store after its kill
  std::string last_run_stderr;
  const auto loop_end = steady::now() + 75s;
  int run = 0;
  for (; run < kills && steady::now() < loop_end; ++run) {
    cli_process p(args, dir.path / ("run" + std::to_string(run) + ".out"),
                  dir.path / ("run" + std::to_string(run) + ".err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    const bool died_early = p.exited();
    p.signal(SIGKILL);
    p.wait(10s);
    CHECK_FALSE(died_early);
    if (died_early) MESSAGE("run " << run << " ended by itself: " << p.err());
    std::multiset<long long> this_run;
    for (const auto& e : events_of(p.out())) {
      if (this_run.count(e.replay_id) != 0) ++repeats_in_a_run;
      this_run.insert(e.replay_id);
      if (all_ids.count(e.replay_id) != 0) ++repeats;
      // Nothing at or below the position the run resumed from is printed again.
      if (e.replay_id <= committed) ++bad_repeats;
      all_ids.insert(e.replay_id);
      all_numbers.insert(e.number);
    }
    committed = committed_in(store, channel);
    committed_after.push_back(committed);
    const auto printed_events = events_of(p.out());
    runs_summary += "run " + std::to_string(run) + ": printed " +
                    std::to_string(printed_events.size()) +
                    (printed_events.empty()
                         ? std::string()
                         : " (ids " + std::to_string(printed_events.front().replay_id) + ".." +
                               std::to_string(printed_events.back().replay_id) + ")") +
                    ", committed after the kill " + std::to_string(committed) + "\n";
  }
  streaming = false;
  creator.join();
  const int total = created.load();
  REQUIRE(total > 0);

  // A last run, not killed, catches up with what is left.
  {
    cli_process last(args, dir.path / "last.out", dir.path / "last.err");
    const auto until = steady::now() + 30s;
    auto complete = [&] {
      std::set<int> numbers = all_numbers;
      for (const auto& e : events_of(last.out())) numbers.insert(e.number);
      return static_cast<int>(numbers.size()) >= total;
    };
    while (!complete() && !last.exited() && steady::now() < until)
      std::this_thread::sleep_for(50ms);
    std::this_thread::sleep_for(300ms);
    last.signal(SIGTERM);
    CHECK(last.wait(15s) == 130);
    last_run_stderr = last.err();
    std::multiset<long long> this_run;
    for (const auto& e : events_of(last.out())) {
      if (this_run.count(e.replay_id) != 0) ++repeats_in_a_run;
      this_run.insert(e.replay_id);
      if (all_ids.count(e.replay_id) != 0) ++repeats;
      if (e.replay_id <= committed) ++bad_repeats;
      all_ids.insert(e.replay_id);
      all_numbers.insert(e.number);
    }
  }

  int missing = 0;
  std::string missing_numbers;
  for (int n = 0; n < total; ++n) {
    if (all_numbers.count(n) != 0) continue;
    ++missing;
    missing_numbers += " " + std::to_string(n);
  }
  CAPTURE(missing_numbers);
  CAPTURE(runs_summary);
  CAPTURE(last_run_stderr);
  std::ostringstream summary;
  summary << "kill loop: " << run << " kills, " << total << " records, " << all_ids.size()
          << " lines printed, " << missing << " missing, " << repeats << " repeats after a commit, "
          << bad_repeats << " repeats at or below a commit, " << repeats_in_a_run
          << " repeats within one run";
  std::printf("%s\n", summary.str().c_str());
  MESSAGE(summary.str());
  CHECK(run >= 20);
  CHECK(missing == 0);
  CHECK(bad_repeats == 0);
  CHECK(repeats_in_a_run == 0);
  // The store moved forward over the loop (the runs got somewhere before being killed).
  REQUIRE_FALSE(committed_after.empty());
  CHECK(committed_after.back() > 0);
}

TEST_SUITE_END();
