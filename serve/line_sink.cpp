#include "serve/line_sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "serve/event_line.hpp"

namespace sfstream::serve {

namespace {

/// Upper bounds (seconds) of the confirmation latency histogram.
constexpr double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,   1,    2.5,   5,    10};

}  // namespace

void line_sink::deliver(const std::string& connection, const std::string& channel,
                        std::span<const event> events, batch_done done) {
  const auto started = std::chrono::steady_clock::now();
  std::string lines;
  std::size_t repaired = 0;
  for (const auto& e : events) {
    if (append_event_line(lines, connection, e)) ++repaired;
  }
  if (repaired != 0) {
    log_.log(log_level::warning, std::to_string(repaired) + " event(s) on " + channel +
                                     " were not valid JSON text: written compacted, invalid "
                                     "UTF-8 replaced by U+FFFD");
  }
  {
    std::lock_guard lock{mutex_};
    figures_.backlog += events.size();
  }
  error_info why = write(lines);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  bool report = false;
  bool recovered = false;
  {
    std::lock_guard lock{mutex_};
    figures_.backlog -= std::min(figures_.backlog, events.size());
    if (why) {
      ++figures_.failures;
      figures_.last_error = why.to_string();
      report = !failing_;
      failing_ = true;
    } else {
      recovered = failing_;
      failing_ = false;
      ++figures_.batches;
      figures_.events += events.size();
      figures_.bytes += lines.size();
      if (figures_.latency_buckets.empty()) {
        for (const double b : latency_bounds) figures_.latency_buckets[b] = 0;
      }
      for (const double b : latency_bounds) {
        if (seconds <= b) ++figures_.latency_buckets[b];
      }
      figures_.latency_sum += seconds;
      ++figures_.latency_count;
    }
  }
  if (report) {
    log_.log(log_level::error, "cannot write events to " + describe() + ": " + why.to_string() +
                                   "; nothing of the batch is committed (reported once until a "
                                   "write succeeds)");
  }
  if (recovered) log_.log(log_level::info, "writing events to " + describe() + " works again");
  if (why) return done(0, std::move(why));
  done(events.size(), {});
}

int line_sink::write_all(int fd, std::string_view data) {
  std::size_t written = 0;
  while (written < data.size()) {
    const ::ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 ? errno : EIO;
    }
  }
  return 0;
}

sink_figures line_sink::figures() const {
  std::lock_guard lock{mutex_};
  return figures_;
}

namespace {

std::mutex& stdout_mutex() {
  static std::mutex m;
  return m;
}

class stdout_sink final : public line_sink {
 public:
  using line_sink::line_sink;

 protected:
  error_info write(std::string_view lines) override {
    std::lock_guard lock{stdout_mutex()};
    if (const int err = write_all(STDOUT_FILENO, lines); err != 0) {
      return {make_error_code(errc::output_failed),
              {"", std::strerror(err), "writing to stdout"},
              std::error_code(err, std::generic_category())};
    }
    return {};
  }
  std::string describe() const override { return "stdout"; }
};

}  // namespace

std::shared_ptr<sink> make_stdout_sink(logger log) {
  return std::make_shared<stdout_sink>(std::move(log));
}

}  // namespace sfstream::serve
