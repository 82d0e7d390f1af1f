// The library alone: drains N events with sfstream::client and a handler that only counts them,
// and prints the client's figures: events per second, CPU milliseconds per 1,000 events and peak
// RSS.
//
//   bench_drain [EVENTS=20000] [--http] [--payload BYTES=200]
//       starts an emulator in a child process (so that the figures are the client's alone),
//       publishes EVENTS generic events on /u/bench and drains them with a static token;
//   SF_PASSWORD=P SF_SECURITY_TOKEN=T bench_drain --login-url URL [--ca-file PEM] --username U
//               --channel CH --count N [--replay -2] [--latency]
//       logs in with SOAP against a running emulator and drains CH. It prints one JSON line:
//       wall-clock microseconds since the epoch of its start, first and last event, events per
//       second between them, CPU and RSS from getrusage, and with --latency the publish-to-
//       receive latency of each event (its "SentAt__c" field) as p50, p99 and max.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

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
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
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
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

/// Drains a channel of a running emulator (the second form in the header comment).
int drain_external(std::map<std::string, std::string> opt, bool latency) {
  // Secrets come from the environment (SF_PASSWORD, SF_SECURITY_TOKEN) unless given.
  for (const auto& [flag, var] : {std::pair{"--password", "SF_PASSWORD"},
                                  std::pair{"--security-token", "SF_SECURITY_TOKEN"}}) {
    if (const char* v = std::getenv(var); opt[flag].empty() && v != nullptr) opt[flag] = v;
  }
  const std::int64_t start_us = now_us();
  const std::size_t events = std::strtoull(opt["--count"].c_str(), nullptr, 10);
  const std::int64_t replay = std::strtoll(opt["--replay"].c_str(), nullptr, 10);
  boost::asio::io_context io{1};
  sfstream::client_config config;
  if (!opt["--ca-file"].empty()) config.network.ca_file = opt["--ca-file"];
  sfstream::soap_login_options login;
  login.login_url = opt["--login-url"];
  login.username = opt["--username"];
  login.password = opt["--password"];
  login.security_token = opt["--security-token"];
  config.credentials = sfstream::make_soap_login_provider(io.get_executor(), login, config.network);
  sfstream::client client{io.get_executor(), config};

  std::size_t received = 0;
  std::int64_t first_us = 0;
  std::int64_t last_us = 0;
  std::vector<std::int64_t> latencies;
  if (latency) latencies.reserve(events);
  constexpr std::string_view sent = "\"SentAt__c\":\"";
  client.subscribe(opt["--channel"], replay, [&](const sfstream::event& e) {
    const std::int64_t at = now_us();
    if (received == 0) first_us = at;
    last_us = at;
    if (latency) {
      const std::string_view text = e.json();
      if (auto p = text.find(sent); p != std::string_view::npos) {
        // The digits end at the closing quote, inside the message text.
        latencies.push_back(at - std::strtoll(text.data() + p + sent.size(), nullptr, 10));
      }
    }
    if (++received == events) client.cancel();
  });
  int status = 0;
  client.async_run([&](std::error_code ec) {
    if (ec && received < events) {
      std::fprintf(stderr, "bench_drain: client ended: %s\n",
                   client.last_error().to_string().c_str());
      status = 1;
    }
  });
  io.run_for(std::chrono::minutes(10));  // bounded
  if (received < events) {
    std::fprintf(stderr, "bench_drain: only %zu of %zu events arrived\n", received, events);
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double seconds = static_cast<double>(last_us - first_us) / 1e6;
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "{\"client\":\"bench_drain\",\"events\":%zu,\"start_us\":%lld,\"first_us\":%lld,"
      "\"last_us\":%lld,\"events_per_s\":%.0f,\"cpu_ms_per_1000\":%.2f,\"peak_rss_mib\":%.1f",
      received, static_cast<long long>(start_us), static_cast<long long>(first_us),
      static_cast<long long>(last_us), seconds > 0 ? static_cast<double>(received) / seconds : 0.0,
      cpu_ms() * 1000.0 / static_cast<double>(received),
      static_cast<double>(usage.ru_maxrss) / 1024.0);
  if (latency) {
    std::printf(",\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld}",
                static_cast<long long>(percentile(latencies, 0.50)),
                static_cast<long long>(percentile(latencies, 0.99)),
                static_cast<long long>(latencies.empty() ? 0 : latencies.back()));
  }
  std::printf("}\n");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  {
    std::map<std::string, std::string> opt{{"--replay", "-2"}};
    bool latency = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--latency") {
        latency = true;
      } else if (a != "--http" && a != "--payload" && a.rfind("--", 0) == 0 && i + 1 < argc) {
        opt[a] = argv[++i];
      }
    }
    if (!opt["--login-url"].empty()) {
      if (opt["--channel"].empty() || opt["--count"].empty()) {
        std::fprintf(stderr, "bench_drain: --login-url needs --channel and --count\n");
        return 2;
      }
      return drain_external(std::move(opt), latency);
    }
  }
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
      std::fprintf(stderr, "bench_drain: client ended: %s\n",
                   client.last_error().to_string().c_str());
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
  std::printf("client CPU ms per 1,000 events: %.2f\n",
              cpu * 1000.0 / static_cast<double>(received));
  std::printf("client peak RSS MiB: %.1f\n", static_cast<double>(peak_rss_kib()) / 1024.0);
  std::printf("checksum: %llu\n", static_cast<unsigned long long>(checksum));
  return status;
}
