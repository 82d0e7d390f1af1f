// How `sfstream serve` carries many connections: N connections (default 1,000) of one service
// against an in-process emulator, first idle-streaming (long polls held), then receiving E
// events each (default 10) on one platform event channel. Prints the service's peak RSS and CPU
// time per phase, read from /proc. Figures, not assertions.
//
//   bench_serve_scale SFSTREAM_BINARY [--connections N] [--events E] [--idle S] [--threads T]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "emulator/cometd/cometd_server.hpp"
#include "support/emulator_fixture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct proc_figures {
  double cpu_seconds = 0;  // user + system
  long rss_kib = 0;
  long peak_rss_kib = 0;
  long threads = 0;
  long fds = 0;
};

proc_figures read_proc(pid_t pid) {
  proc_figures f;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {
      if (i == 14) utime = std::stoul(field);
      if (i == 15) {
        stime = std::stoul(field);
        break;
      }
    }
    f.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) f.rss_kib = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) f.peak_rss_kib = std::stol(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) f.threads = std::stol(line.substr(8));
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    ++f.fds;
  return f;
}

std::size_t count_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::size_t n = 0;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) n += buffer[i] == '\n' ? 1 : 0;
    if (!in) break;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_serve_scale SFSTREAM_BINARY [--connections N] [--events E] "
                 "[--idle S] [--threads T]\n");
    return 2;
  }
  const std::string binary = argv[1];
  int connections = 1000, events = 10, idle_seconds = 10, threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (opt == "--connections") connections = v;
    if (opt == "--events") events = v;
    if (opt == "--idle") idle_seconds = v;
    if (opt == "--threads") threads = v;
  }

  sfstream::emulator::emulator_options o;
  o.tls = false;  // loopback HTTP: the figures are the service's, not TLS's
  o.long_poll_timeout = 20s;
  o.concurrent_client_limit = static_cast<std::size_t>(connections) + 100;
  o.daily_event_limit = 0;
  sfstream::testing::emulator_fixture org(o);

  const fs::path dir = fs::temp_directory_path() / ("sfstream-serve-scale-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "pw") << "demo-pass";
  std::ofstream(dir / "token") << "DEMOTOKEN0000000000000";
  org.call([](auto& e) { return e.cometd().publish_raw("/event/Scale__e", "{\"event\":{\"replayId\":{{replayId}}}}"); });
  {
    std::ofstream config(dir / "serve.toml");
    config << "[service]\nstore = \"" << (dir / "positions.json").string() << "\"\nthreads = "
           << threads << "\nlog_level = \"warning\"\n";
    for (int i = 0; i < connections; ++i) {
      config << "[[connection]]\nname = \"c" << i << "\"\nqueue_max_bytes = \"1MiB\"\n"
             << "[connection.auth]\nlogin_url = \"" << org.org().base_url()
             << "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" << (dir / "pw").string()
             << "\"\nsecurity_token_file = \"" << (dir / "token").string()
             << "\"\n[connection.sink]\ntype = \"stdout\"\n"
             << "[[connection.channel]]\nname = \"/event/Scale__e\"\nstart = -1\n";
    }
  }
  const fs::path out = dir / "out.jsonl";
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open((dir / "serve.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::dup2(err, 2);
    std::string a0 = binary, a1 = "serve", a2 = "--config", a3 = (dir / "serve.toml").string();
    char* args[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
    ::execv(args[0], args);
    ::_exit(127);
  }
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  // Up: every connection has a Bayeux client at the emulator (bounded wait).
  const bool up = sfstream::testing::wait_until(
      [&] {
        return org.call([](auto& e) { return e.client_count(); }) >=
               static_cast<std::size_t>(connections);
      },
      std::chrono::milliseconds(300'000));
  const double up_seconds = seconds_since(started);
  std::this_thread::sleep_for(1s);
  const auto at_up = read_proc(pid);
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  const auto after_idle = read_proc(pid);

  const auto publish_start = std::chrono::steady_clock::now();
  for (int i = 0; i < events; ++i) {
    org.call([i](auto& e) {
      return e.cometd().publish_raw("/event/Scale__e", "{\"event\":{\"replayId\":{{replayId}}},"
                                                       "\"payload\":{\"n\":" + std::to_string(i) + "}}");
    });
  }
  const auto wanted = static_cast<std::size_t>(connections) * static_cast<std::size_t>(events);
  const bool all = sfstream::testing::wait_until([&] { return count_lines(out) >= wanted; },
                                                 std::chrono::milliseconds(300'000));
  const double deliver_seconds = seconds_since(publish_start);
  const auto after_events = read_proc(pid);

  const auto stop_start = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double stop_seconds = seconds_since(stop_start);

  std::printf("connections %d, threads %d, %d events each (plain HTTP loopback emulator in this process)\n",
              connections, threads, events);
  std::printf("all streaming: %s after %.1f s; RSS %ld KiB, %ld threads, %ld fds, CPU %.2f s\n",
              up ? "yes" : "NO", up_seconds, at_up.rss_kib, at_up.threads, at_up.fds,
              at_up.cpu_seconds);
  std::printf("idle %d s: CPU %.2f s (%.1f%% of one core), RSS %ld KiB\n", idle_seconds,
              after_idle.cpu_seconds - at_up.cpu_seconds,
              100.0 * (after_idle.cpu_seconds - at_up.cpu_seconds) / idle_seconds,
              after_idle.rss_kib);
  std::printf("%zu events delivered: %s in %.2f s, CPU %.2f s, peak RSS %ld KiB\n", wanted,
              all ? "all" : "NOT all", deliver_seconds,
              after_events.cpu_seconds - after_idle.cpu_seconds, after_events.peak_rss_kib);
  std::printf("SIGTERM: exit %d after %.2f s\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              stop_seconds);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return up && all ? 0 : 1;
}
