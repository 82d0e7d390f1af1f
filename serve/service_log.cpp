#include "serve/service_log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "cli/json_line.hpp"
#include "sfstream/detail/json_text.hpp"
#include "sfstream/detail/redact.hpp"

namespace sfstream::serve {

struct service_log::state {
  log_format format;
  log_level level;
  std::vector<std::string> secrets;
  int fd;
  std::mutex mutex;
};

namespace {

std::string now_text() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return text;
}

}  // namespace

service_log::service_log(log_format format, log_level level, std::vector<std::string> secrets,
                         int fd)
    : state_(std::make_shared<state>()) {
  state_->format = format;
  state_->level = level;
  state_->secrets = std::move(secrets);
  state_->fd = fd;
}

std::string service_log::redact(std::string_view text) const {
  return detail::redact(text, state_->secrets);
}

void service_log::log(log_level level, const std::string& connection,
                      std::string_view message) const {
  if (level < state_->level) return;
  const std::string text = redact(message);
  std::string line;
  if (state_->format == log_format::json) {
    line = "{\"time\":\"" + now_text() + "\",\"level\":\"" + std::string(to_string(level)) +
           "\",\"connection\":";
    if (connection.empty()) {
      line += "null";
    } else {
      detail::append_json_string(line, connection);
    }
    line += ",\"message\":";
    // Server text may hold invalid UTF-8: the line stays valid JSON.
    detail::append_json_string(line, cli::valid_utf8(text));
    line += "}\n";
  } else {
    line = now_text() + " " + std::string(to_string(level)) + " ";
    if (!connection.empty()) line += "[" + connection + "] ";
    // One entry, one line: a server text with line breaks must not forge further entries.
    for (const char c : text) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
    line += "\n";
  }
  std::lock_guard lock{state_->mutex};
  std::size_t written = 0;
  while (written < line.size()) {
    const ::ssize_t n = ::write(state_->fd, line.data() + written, line.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // a log that cannot be written is not a reason to stop streaming
    }
  }
}

logger service_log::for_connection(const std::string& name) const {
  logger l;
  l.min_level = state_->level;
  l.sink = [self = *this, name](log_level level, std::string_view text) {
    self.log(level, name, text);
  };
  return l;
}

}  // namespace sfstream::serve
