// The client side of the transport: TLS contexts, one keep-alive HTTP(S) connection ("lane"),
// cookies, proxies. All I/O of sfstream's client goes through here.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "src/transport/http_types.hpp"

namespace boost::asio::ssl {
class context;
}

namespace sfstream::transport {

class cookie_jar;

/// An HTTP CONNECT proxy.
struct proxy_config {
  url address;           ///< http://host:port of the proxy.
  std::string username;  ///< Basic auth user; empty for none.
  std::string password;  ///< Basic auth password (a secret: never logged).
};

/// How the client transport behaves. Defaults suit Salesforce.
struct transport_options {
  std::string ca_file;  ///< Extra PEM CA file trusted besides the system store.
  std::chrono::milliseconds connect_timeout{15'000};  ///< Resolve + TCP + TLS (+ CONNECT).
  std::chrono::milliseconds request_timeout{30'000};  ///< Default deadline of one exchange.
  std::size_t body_limit = 10 * 1024 * 1024;          ///< Largest response body accepted.
  std::optional<proxy_config> proxy;  ///< Explicit proxy; wins over the environment.
  bool proxy_from_environment = true;  ///< Read HTTPS_PROXY/https_proxy and NO_PROXY.
  std::string user_agent = "sfstream";
};

/// Makes a client TLS context: TLS >= 1.2, peer verification against the system store plus
/// `ca_file` when given. Host-name verification and SNI are set per connection.
/// The system's certificate directory (or SSL_CERT_DIR's list) when it holds certificates by
/// subject hash, so that it can be searched issuer by issuer; none when SSL_CERT_FILE is set or
/// no such directory exists (the bundle file is loaded whole then).
std::optional<std::string> hashed_system_certificate_dir();
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const transport_options& options,
                                                                   error_info* why = nullptr);

/// Picks the proxy for `target`: the explicit one, else HTTPS_PROXY/https_proxy unless
/// NO_PROXY/no_proxy matches the host. Loopback and http:// targets never use an environment
/// proxy; an unparsable environment proxy is ignored. See src/transport/proxy.hpp for the
/// proxy URL parser and the NO_PROXY rules.
std::optional<proxy_config> select_proxy(const transport_options& options, const url& target);

/// One keep-alive connection to one origin, one exchange at a time. Connects lazily; after any
/// error the connection is closed and re-created by the next exchange. Plain http:// is only
/// accepted for loopback hosts. Every exchange has a deadline covering connect, write and read.
class http_lane : public std::enable_shared_from_this<http_lane> {
 public:
  using handler = std::function<void(error_info, http_response)>;

  /// `cookies` may be shared between lanes of one session; null disables cookies.
  static std::shared_ptr<http_lane> create(boost::asio::any_io_executor executor, url origin,
                                           std::shared_ptr<boost::asio::ssl::context> tls,
                                           transport_options options,
                                           std::shared_ptr<cookie_jar> cookies);
  virtual ~http_lane() = default;

  /// Sends `request` and calls `done` exactly once, on the lane's executor, with the complete
  /// response or an error (timeout, body_too_large, connection_closed, tls_error,
  /// connection_failed, proxy_error, insecure_url, ...). Responses of every status are
  /// delivered as responses, not errors, and their Set-Cookie headers go to the jar. `deadline`
  /// covers connect (itself bounded by connect_timeout), TLS, CONNECT, write and read. If a
  /// kept-alive connection turns out closed by the server before any byte of the reply, the
  /// request is sent once more on a fresh connection. Call from the lane's executor; while an
  /// exchange is in flight a second call fails with invalid_config.
  virtual void async_exchange(http_request request, std::chrono::milliseconds deadline,
                              handler done) = 0;
  /// Aborts the exchange in flight (its handler gets errc::cancelled) and closes the socket;
  /// when idle, just closes the kept connection. Safe from any thread (dispatched to the
  /// lane's executor).
  virtual void cancel() = 0;
  virtual bool busy() const noexcept = 0;
  virtual const url& origin() const noexcept = 0;
};

/// One request to a full URL on a fresh connection: for logins, token requests and REST calls.
/// `request.target` is replaced by the URL's path and query; no cookies are sent or kept.
/// `tls` may be null (a context is made from `options` for https).
void async_http_request(boost::asio::any_io_executor executor,
                        std::shared_ptr<boost::asio::ssl::context> tls,
                        const transport_options& options, const url& target,
                        http_request request, std::chrono::milliseconds deadline,
                        http_lane::handler done);

}  // namespace sfstream::transport
