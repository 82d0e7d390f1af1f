// The logger hook: sfstream reports what it does through one user-supplied sink.
// No log line ever holds a secret (password, security token, session id, access or refresh
// token, private key): sfstream redacts before it logs.
#pragma once

#include <functional>
#include <string_view>

namespace sfstream {

enum class log_level { trace, debug, info, warning, error };

/// "trace", "debug", "info", "warning" or "error".
std::string_view to_string(log_level level) noexcept;

/// Where log lines go. `min_level` filters before the sink is called; an empty sink drops all.
struct logger {
  log_level min_level = log_level::info;
  std::function<void(log_level, std::string_view)> sink;

  bool enabled(log_level level) const noexcept { return sink && level >= min_level; }
  void log(log_level level, std::string_view text) const {
    if (enabled(level)) sink(level, text);
  }
};

}  // namespace sfstream
