// A program run by a test as a child process: arguments, environment variables to set (the
// credentials variables are cleared first, so the parent's never leak in), stdout and stderr to
// files, or stdout to a one-page pipe the test reads at its own pace. Waits are bounded; a child
// that overstays, or outlives the object, is killed.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sfstream::testing {

/// The whole of a file ("" when it cannot be read).
inline std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class child_process {
 public:
  using environment = std::vector<std::pair<std::string, std::string>>;

  /// Runs `argv` (argv[0] the program's path). With an empty `out` stdout is a pipe of one
  /// page (4 KiB) read through read_stdout(): a slow reader holds the child in its writes.
  child_process(std::vector<std::string> argv, const environment& env, std::filesystem::path out,
                std::filesystem::path err)
      : out_(std::move(out)), err_(std::move(err)) {
    int pipe_fds[2] = {-1, -1};
    if (out_.empty()) {
      REQUIRE(::pipe(pipe_fds) == 0);
      ::fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);
    }
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int o = out_.empty() ? pipe_fds[1] : ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0) ::_exit(127);
      ::dup2(o, 1);
      ::dup2(e, 2);
      if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
      for (const char* variable : {"SF_LOGIN_URL", "SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN",
                                   "SF_ACCESS_TOKEN", "SF_INSTANCE_URL", "HTTPS_PROXY", "https_proxy"})
        ::unsetenv(variable);
      for (const auto& [variable, value] : env) ::setenv(variable.c_str(), value.c_str(), 1);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
    pipe_ = pipe_fds[0];
  }
  ~child_process() {
    if (pipe_ >= 0) ::close(pipe_);
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  void kill(int sig) { ::kill(pid_, sig); }
  pid_t pid() const noexcept { return pid_; }

  /// True while the child runs (reaps it when it has exited, keeping its code for wait()).
  bool alive() {
    if (exited_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    return !exited_;
  }

  /// Waits up to `limit`: the exit code, -signal, or -1000 when it overstayed and was killed.
  int wait(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!exited_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        code_ = -1000;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return code_;
  }

  /// Reads at most `bytes` of the piped stdout into `into`, waiting up to `wait` for them; 0
  /// when nothing came in that time or the child closed it.
  std::size_t read_stdout(std::string& into, std::size_t bytes,
                          std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
    pollfd ready{pipe_, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(wait.count())) != 1) return 0;
    std::string buffer(bytes, '\0');
    const ssize_t got = ::read(pipe_, buffer.data(), bytes);
    if (got <= 0) return 0;
    into.append(buffer.data(), static_cast<std::size_t>(got));
    return static_cast<std::size_t>(got);
  }

  std::string out() const { return read_whole_file(out_); }
  std::string err() const { return read_whole_file(err_); }

 private:
  std::filesystem::path out_;
  std::filesystem::path err_;
  pid_t pid_ = -1;
  int pipe_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

}  // namespace sfstream::testing
