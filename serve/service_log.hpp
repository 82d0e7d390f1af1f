// The logs of `sfstream serve`: one line per entry on stderr, as text
//   2026-01-02T03:04:05.678Z warning [acme] the message
// or, with log_format = "json", one object per line:
//   {"time":"2026-01-02T03:04:05.678Z","level":"warning","connection":"acme","message":"…"}
// ("connection" is null for the service's own lines). Every line is redacted first: the
// secrets of the configuration and whatever looks like a token, a session id or a key.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serve/config.hpp"
#include "sfstream/logger.hpp"

namespace sfstream::serve {

class service_log {
 public:
  /// Writes to `fd` (stderr by default).
  service_log(log_format format, log_level level, std::vector<std::string> secrets, int fd = 2);

  /// The logger of one connection (empty name: the service's own).
  logger for_connection(const std::string& name) const;
  void log(log_level level, const std::string& connection, std::string_view message) const;

  /// The text with every known secret and secret-looking value masked.
  std::string redact(std::string_view text) const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace sfstream::serve
