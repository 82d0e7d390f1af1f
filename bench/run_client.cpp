// Runs one benchmark client as a child process and measures it from the outside: its CPU time
// and peak RSS from wait4's rusage (the whole process, start-up and login included), and the
// wall-clock times of its start, first event and exit.
//
//   bench_run [--stdout null|capture|lines] [--stderr FILE] [--timeout S] -- PROGRAM ARGS...
//
//   null     stdout goes to /dev/null; the first event is the child's first write to stdout,
//            seen in /proc/PID/io ("wchar" beyond what went to the stderr file).
//   capture  stdout is read whole and its last line (the client's own JSON report) is kept.
//   lines    stdout is read line by line as it arrives: the first line is the first event, and
//            a line with "SentAt__c":"<microseconds since the epoch>" gives that event's latency.
//
// It prints one JSON line: spawn_us, first_us, exit_us (microseconds since the Unix epoch),
// exit (status), cpu_ms, peak_rss_kib, lines, latency_us {p50, p99, max} (lines mode) and child
// (capture mode: the client's report).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "bench_run: %s\n", why.c_str());
  std::exit(2);
}

/// Bytes the process wrote with write(2) and friends so far, or -1 once it is gone.
long long written_bytes(pid_t pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  long long value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return -1;
}

long long file_size(const std::string& path) {
  struct stat st {};
  return path.empty() || stat(path.c_str(), &st) != 0 ? 0 : static_cast<long long>(st.st_size);
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "capture";
  std::string stderr_file;
  double timeout_s = 600;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) fail("option " + a + " needs a value");
    if (a == "--stdout") {
      mode = argv[++i];
    } else if (a == "--stderr") {
      stderr_file = argv[++i];
    } else if (a == "--timeout") {
      timeout_s = std::strtod(argv[++i], nullptr);
    } else {
      fail("unknown option " + a);
    }
  }
  if (i >= argc) fail("give the program to run after --");
  if (mode != "null" && mode != "capture" && mode != "lines") fail("--stdout null|capture|lines");

  int out[2] = {-1, -1};
  if (mode != "null" && pipe(out) != 0) fail("pipe failed");
  const std::int64_t spawn_us = now_us();
  const pid_t pid = fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    if (mode == "null") {
      dup2(null_fd, 1);
    } else {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
    }
    const int err = stderr_file.empty()
                        ? null_fd
                        : open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(err, 2);
    execvp(argv[i], argv + i);
    std::_Exit(127);
  }
  const std::int64_t deadline_us = spawn_us + static_cast<std::int64_t>(timeout_s * 1e6);
  std::int64_t first_us = 0;
  std::size_t lines = 0;
  std::vector<std::int64_t> latencies;
  std::string captured;
  if (mode == "null") {
    // Poll until the first event is written (or the child is gone), then just wait.
    while (first_us == 0 && now_us() < deadline_us) {
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid != 0) {
        break;  // exited (still a zombie: wait4 below reaps it with its rusage)
      }
      const long long wrote = written_bytes(pid);
      if (wrote < 0) break;
      if (wrote - file_size(stderr_file) >= 64)
        first_us = now_us();
      else
        usleep(100);
    }
  } else {
    close(out[1]);
    constexpr std::string_view sent = "\"SentAt__c\":\"";
    std::string pending;
    std::vector<char> buffer(1 << 16);
    while (true) {
      const std::int64_t left_ms = (deadline_us - now_us()) / 1000;
      if (left_ms <= 0) break;
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000))) <= 0) continue;
      const ssize_t n = read(out[0], buffer.data(), buffer.size());
      if (n <= 0) break;
      const std::int64_t at = now_us();
      if (first_us == 0) first_us = at;
      if (mode == "capture") {
        captured.append(buffer.data(), static_cast<std::size_t>(n));
        continue;
      }
      pending.append(buffer.data(), static_cast<std::size_t>(n));
      std::size_t from = 0;
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', from)) {
        const std::string_view line(pending.data() + from, nl - from);
        ++lines;
        if (auto s = line.find(sent); s != std::string_view::npos) {
          latencies.push_back(at - std::strtoll(line.data() + s + sent.size(), nullptr, 10));
        }
        from = nl + 1;
      }
      pending.erase(0, from);
    }
    close(out[0]);
  }
  int status = 0;
  rusage usage{};
  while (true) {
    const pid_t done = wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (now_us() > deadline_us) {
      kill(pid, SIGKILL);
      wait4(pid, &status, 0, &usage);
      std::fprintf(stderr, "bench_run: %s timed out and was killed\n", argv[i]);
      break;
    }
    usleep(1000);
  }
  const std::int64_t exit_us = now_us();
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "{\"spawn_us\":%lld,\"first_us\":%lld,\"exit_us\":%lld,\"exit\":%d,\"cpu_ms\":%.1f,"
      "\"peak_rss_kib\":%ld,\"lines\":%zu",
      static_cast<long long>(spawn_us), static_cast<long long>(first_us),
      static_cast<long long>(exit_us), code, ms(usage.ru_utime) + ms(usage.ru_stime),
      usage.ru_maxrss, lines);
  if (!latencies.empty()) {
    std::printf(",\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld,\"n\":%zu}",
                static_cast<long long>(percentile(latencies, 0.50)),
                static_cast<long long>(percentile(latencies, 0.99)),
                static_cast<long long>(latencies.back()), latencies.size());
  }
  if (mode == "capture") {
    while (!captured.empty() && captured.back() == '\n') captured.pop_back();
    const auto nl = captured.rfind('\n');
    const std::string last = nl == std::string::npos ? captured : captured.substr(nl + 1);
    std::printf(",\"child\":%s", !last.empty() && last.front() == '{' ? last.c_str() : "null");
  }
  std::printf("}\n");
  return 0;
}
