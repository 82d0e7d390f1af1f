// Network settings shared by logins, REST calls and the streaming client.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace sfstream {

/// An HTTP CONNECT proxy for https:// traffic.
struct proxy_options {
  std::string url;       ///< "http://host:port".
  std::string username;  ///< Basic auth; empty for none.
  std::string password;  ///< Basic auth password; a secret, never logged.
};

/// How sfstream talks to Salesforce (or the emulator).
struct network_options {
  /// Extra PEM CA file trusted besides the system store (e.g. the emulator's CA).
  std::string ca_file;
  /// Resolve + TCP + TLS (+ proxy CONNECT) must finish within this.
  std::chrono::milliseconds connect_timeout{15'000};
  /// Deadline of a control request (handshake, subscribe, login, REST).
  std::chrono::milliseconds request_timeout{30'000};
  /// Largest response body accepted: Salesforce batches events; CometD clients use 10 MiB.
  std::size_t max_body_bytes = 10 * 1024 * 1024;
  /// Explicit proxy; wins over the environment.
  std::optional<proxy_options> proxy;
  /// Use HTTPS_PROXY/https_proxy and NO_PROXY/no_proxy when no explicit proxy is set.
  bool proxy_from_environment = true;
};

}  // namespace sfstream
