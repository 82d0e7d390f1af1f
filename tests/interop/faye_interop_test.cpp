// The sfstream client against a real Faye server (npm package `faye`, run with node) over
// long-polling on 127.0.0.1: a Bayeux implementation other than our emulator. Faye has no
// replay ids, no Salesforce extensions and its own error texts ("401:<id>:Unknown client").
// When node, npm or the faye package cannot be had, each test says it is skipped and why.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;
namespace fs = std::filesystem;

const std::string channel = "/topic/Interop";

/// The first executable called `name` on PATH, or nullopt.
std::optional<fs::path> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string all = path;
  std::size_t start = 0;
  while (start <= all.size()) {
    auto end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    fs::path candidate = fs::path(all.substr(start, end - start)) / name;
    if (!candidate.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

/// Where faye is installed: <build dir>/interop/node_modules.
fs::path faye_prefix() { return fs::path(SFSTREAM_BINARY_DIR) / "interop"; }

/// Makes sure node and faye are available; returns the reason when they are not.
std::optional<std::string> prepare_faye() {
  static std::mutex mutex;
  static std::optional<std::optional<std::string>> verdict;
  std::lock_guard lock{mutex};
  if (verdict) return *verdict;
  auto decide = [&]() -> std::optional<std::string> {
    if (!find_on_path("node")) return "node is not installed (not found on PATH)";
    // Test cases run as parallel processes: one installs while the others wait on the lock,
    // and "installed" means the marker written after npm finished, not a half-extracted tree.
    fs::create_directories(faye_prefix());
    const fs::path marker = faye_prefix() / "faye.installed";
    const int lock_fd = ::open((faye_prefix() / "install.lock").c_str(), O_CREAT | O_RDWR, 0600);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX) != 0) {
      if (lock_fd >= 0) ::close(lock_fd);
      return "cannot lock " + (faye_prefix() / "install.lock").string();
    }
    struct unlock {
      int fd;
      ~unlock() { ::close(fd); }  // closing releases the lock
    } release{lock_fd};
    if (fs::exists(marker)) return std::nullopt;
    auto npm = find_on_path("npm");
    if (!npm) return "faye is not installed and npm is not found on PATH";
    const std::string command = "timeout 180 \"" + npm->string() + "\" install --no-audit --no-fund --prefix \"" +
                                faye_prefix().string() + "\" faye >\"" +
                                (faye_prefix() / "npm-install.log").string() + "\" 2>&1";
    const int rc = std::system(command.c_str());
    if (rc != 0 || !fs::exists(faye_prefix() / "node_modules" / "faye" / "package.json")) {
      return "`npm install faye` failed (exit status " + std::to_string(rc) + ", no registry?); see " +
             (faye_prefix() / "npm-install.log").string();
    }
    std::ofstream{marker} << "ok\n";
    return std::nullopt;
  };
  verdict = decide();
  return *verdict;
}

/// Reports a skip visibly: a warning in doctest's output and a line on stderr.
void report_skip(const std::string& why) {
  std::fprintf(stderr, "SKIPPED (interop): %s\n", why.c_str());
  WARN_MESSAGE(false, "skipped: " << why);
}

/// node faye_server.js as a child process; killed and reaped on destruction, always.
class faye_server {
 public:
  faye_server() {
    int out[2];
    int in[2];
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::pipe(in) == 0);
    const auto node = find_on_path("node").value();
    const std::string script = (fs::path(SFSTREAM_SOURCE_DIR) / "tests" / "interop" / "faye_server.js").string();
    const std::string node_path = (faye_prefix() / "node_modules").string();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[0]);
      ::close(in[1]);
      ::close(out[0]);
      ::close(out[1]);
      ::setenv("NODE_PATH", node_path.c_str(), 1);
      ::execl(node.c_str(), "node", script.c_str(), "/cometd/59.0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    port_ = read_port();
  }
  ~faye_server() {
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  faye_server(const faye_server&) = delete;
  faye_server& operator=(const faye_server&) = delete;

  /// The listening port; 0 when node did not report one within 15 s.
  std::uint16_t port() const noexcept { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// GET on the control route; the body, or "" on failure (bounded by 5 s).
  std::string control(const std::string& target) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return "";
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      if (::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
        char buffer[4096];
        for (int i = 0; i < 1000; ++i) {
          const auto n = ::recv(fd, buffer, sizeof buffer, 0);
          if (n <= 0) break;
          response.append(buffer, static_cast<std::size_t>(n));
        }
      }
    }
    ::close(fd);
    const auto body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return "";
    return response.substr(body + 4);
  }

 private:
  std::uint16_t read_port() {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[256];
      const auto n = ::read(stdout_, buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<std::size_t>(n));
    }
    const auto at = line.find("\"port\":");
    if (at == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::strtoul(line.c_str() + at + 7, nullptr, 10));
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::uint16_t port_ = 0;
};

/// What the subscription saw, thread-safe.
struct recorder {
  mutable std::mutex mutex;
  std::vector<sfstream::event> events;
  std::vector<sfstream::error_info> rejections;
  std::atomic<int> subscribed{0};

  sfstream::subscription_callbacks callbacks() {
    sfstream::subscription_callbacks c;
    c.on_event = [this](const sfstream::event& e) {
      std::lock_guard lock{mutex};
      events.push_back(e);
    };
    c.on_rejected = [this](const sfstream::error_info& e) {
      std::lock_guard lock{mutex};
      rejections.push_back(e);
    };
    c.on_subscribed = [this](std::int64_t) { ++subscribed; };
    return c;
  }
  std::size_t count() const {
    std::lock_guard lock{mutex};
    return events.size();
  }
  std::vector<std::string> names() const {
    std::lock_guard lock{mutex};
    std::vector<std::string> out;
    for (auto& e : events) {
      const auto sobject = e.as_pushtopic().sobject_json;
      auto at = sobject.find("\"Name\":\"");
      if (at == std::string::npos) {
        out.emplace_back("?");
        continue;
      }
      at += 8;
      out.push_back(sobject.substr(at, sobject.find('"', at) - at));
    }
    return out;
  }
};

sfstream::client_config faye_config(io_thread& io, const faye_server& faye) {
  sfstream::access_token token;
  token.token = "interop-token";
  token.instance_url = faye.url();
  sfstream::client_config config;
  config.credentials = sfstream::make_static_token_provider(io.executor(), token);
  config.api_version = "59.0";
  config.jitter_seed = 11;
  config.disconnect_timeout = 1000ms;
  return config;
}

using sfstream::testing::running_client;

/// Subscribed on Faye's side too (the client's on_subscribed fires on the reply).
bool faye_has_subscriber(const faye_server& faye) {
  return faye.control("/control/stats").find(channel) != std::string::npos;
}

}  // namespace

TEST_CASE("the client handshakes, subscribes, receives, unsubscribes and disconnects against Faye") {
  if (auto why = prepare_faye()) {
    report_skip(*why);
    return;
  }
  faye_server faye;
  REQUIRE_MESSAGE(faye.port() != 0, "node faye_server.js did not report its port");
  io_thread io;
  recorder seen;
  running_client c{io, faye_config(io, faye)};
  REQUIRE_FALSE(c.client->subscribe(channel, sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load() == 1; }, 10s));
  REQUIRE(wait_until([&] { return faye_has_subscriber(faye); }, 5s));
  CHECK(c.client->state() == sfstream::client_state::connected);
  for (int i = 0; i < 3; ++i) REQUIRE(faye.control("/control/publish?name=N" + std::to_string(i)) == "ok");
  REQUIRE(wait_until([&] { return seen.count() == 3; }, 10s));
  CHECK(seen.names() == std::vector<std::string>{"N0", "N1", "N2"});
  {
    std::lock_guard lock{seen.mutex};
    for (auto& e : seen.events) {
      CHECK(e.channel() == channel);
      CHECK_FALSE(e.replay_id().has_value());  // Faye has no replay ids
      CHECK(e.as_pushtopic().type == "created");
    }
    CHECK(seen.rejections.empty());
  }
  CHECK(c.client->metrics().events == 3);
  c.client->unsubscribe(channel);
  REQUIRE(wait_until([&] { return !faye_has_subscriber(faye); }, 5s));
  REQUIRE(faye.control("/control/publish?name=after-unsubscribe") == "ok");
  std::this_thread::sleep_for(500ms);
  CHECK(seen.count() == 3);
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
  CHECK(c.client->state() == sfstream::client_state::closed);
}

TEST_CASE("a client Faye forgot re-handshakes, re-subscribes and receives later messages") {
  if (auto why = prepare_faye()) {
    report_skip(*why);
    return;
  }
  faye_server faye;
  REQUIRE_MESSAGE(faye.port() != 0, "node faye_server.js did not report its port");
  io_thread io;
  recorder seen;
  running_client c{io, faye_config(io, faye)};
  REQUIRE_FALSE(c.client->subscribe(channel, sfstream::replay_new, seen.callbacks()));
  c.run();
  REQUIRE(wait_until([&] { return seen.subscribed.load() == 1; }, 10s));
  REQUIRE(wait_until([&] { return faye_has_subscriber(faye); }, 5s));
  REQUIRE(faye.control("/control/publish?name=before") == "ok");
  REQUIRE(wait_until([&] { return seen.count() == 1; }, 10s));
  const auto handshakes_before = c.client->metrics().handshakes;
  REQUIRE(faye.control("/control/forget") == "1");
  REQUIRE(wait_until([&] { return seen.subscribed.load() >= 2 && faye_has_subscriber(faye); }, 15s));
  CHECK(c.client->metrics().handshakes > handshakes_before);
  REQUIRE(faye.control("/control/publish?name=after") == "ok");
  REQUIRE(wait_until([&] { return seen.count() == 2; }, 10s));
  CHECK(seen.names() == std::vector<std::string>{"before", "after"});
  REQUIRE(c.stop());
  CHECK_FALSE(c.result);
}
