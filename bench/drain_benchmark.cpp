// Drains N events from a local org emulator and prints the client's figures: events per
// second, CPU milliseconds per 1,000 events and peak RSS. The emulator runs in a child process
// so that the figures are the client's alone.
//
//   bench_drain [EVENTS=20000] [--http] [--payload BYTES=200]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "emulator/emulator.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"

namespace {

struct emulator_child {
  pid_t pid = -1;
  std::string base_url;
  std::string ca_file;
  std::string token;
};

/// Forks a process that runs the emulator, publishes `events` generic events on /u/bench, and
/// writes "base_url ca_file token" to the pipe; it serves until SIGTERM.
emulator_child start_emulator(std::size_t events, std::size_t payload_bytes, bool tls) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    boost::asio::io_context io{1};
    sfstream::emulator::emulator_options options;
    options.tls = tls;
    options.daily_event_limit = 0;
    sfstream::emulator::org_emulator org{io.get_executor(), options};
    org.rest().create_streaming_channel("/u/bench");
    const std::string payload(payload_bytes, 'x');
    for (std::size_t i = 0; i < events; ++i) org.rest().push_generic("/u/bench", payload);
    const std::string line = org.base_url() + " " + (tls ? org.ca_file() : "-") + " " +
                             org.issue_session(options.users.front().username) + "\n";
    if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(1);
    close(fds[1]);
    boost::asio::signal_set stop{io, SIGTERM};
    stop.async_wait([&](auto, int) {
      org.stop();
      io.stop();
    });
    io.run();
    std::_Exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
  close(fds[0]);
  emulator_child child;
  child.pid = pid;
  const auto a = text.find(' ');
  const auto b = text.find(' ', a + 1);
  child.base_url = text.substr(0, a);
  child.ca_file = text.substr(a + 1, b - a - 1);
  child.token = text.substr(b + 1, text.find('\n') - b - 1);
  return child;
}

double cpu_ms() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t events = 20'000;
  std::size_t payload = 200;
  bool tls = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--http") == 0) {
      tls = false;
    } else if (std::strcmp(argv[i], "--payload") == 0 && i + 1 < argc) {
      payload = std::strtoul(argv[++i], nullptr, 10);
    } else {
      events = std::strtoul(argv[i], nullptr, 10);
    }
  }
  std::printf("bench_drain: %zu generic events of %zu payload bytes over %s\n", events, payload,
              tls ? "HTTPS" : "HTTP");
  std::fflush(stdout);
  auto child = start_emulator(events, payload, tls);

  boost::asio::io_context io{1};
  sfstream::client_config config;
  if (tls) config.network.ca_file = child.ca_file;
  sfstream::access_token token;
  token.token = child.token;
  token.instance_url = child.base_url;
  config.credentials = sfstream::make_static_token_provider(io.get_executor(), token);
  sfstream::client client{io.get_executor(), config};

  std::size_t received = 0;
  std::uint64_t checksum = 0;
  const double cpu_before = cpu_ms();
  const auto start = std::chrono::steady_clock::now();
  auto finished_at = start;
  client.subscribe("/u/bench", sfstream::replay_all, [&](const sfstream::event& e) {
    checksum += static_cast<std::uint64_t>(e.replay_id().value_or(0)) + e.json().size();
    if (++received == events) {
      finished_at = std::chrono::steady_clock::now();
      client.cancel();
    }
  });
  int status = 0;
  client.async_run([&](std::error_code ec) {
    if (ec) {
      std::fprintf(stderr, "bench_drain: client ended: %s\n", client.last_error().to_string().c_str());
      status = 1;
    }
  });
  // Bounded: give up after two minutes.
  io.run_for(std::chrono::minutes(2));
  const double cpu = cpu_ms() - cpu_before;
  kill(child.pid, SIGTERM);
  waitpid(child.pid, nullptr, 0);

  if (received < events) {
    std::fprintf(stderr, "bench_drain: only %zu of %zu events arrived\n", received, events);
    return 1;
  }
  const double seconds = std::chrono::duration<double>(finished_at - start).count();
  std::printf("events/s: %.0f\n", static_cast<double>(received) / seconds);
  std::printf("wall s (login to last event): %.3f\n", seconds);
  std::printf("client CPU ms per 1,000 events: %.2f\n", cpu * 1000.0 / static_cast<double>(received));
  std::printf("client peak RSS MiB: %.1f\n", static_cast<double>(peak_rss_kib()) / 1024.0);
  std::printf("checksum: %llu\n", static_cast<unsigned long long>(checksum));
  return status;
}
