// A small HTTP/1.1 server on loopback (plain or TLS), for the emulator and the loopback tests.
// Each request becomes an `exchange` that the handler may answer at once or later (a held
// long poll), or end abnormally (dropped connection, partial reply) to simulate faults.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "src/transport/http_types.hpp"

namespace sfstream::emulator::net {

/// PEM material for a TLS server.
struct server_tls {
  std::string certificate_chain_pem;
  std::string private_key_pem;
};

/// A throwaway CA and a leaf certificate signed by it, made with OpenSSL at run time.
struct certificate_set {
  std::string ca_certificate_pem;  ///< Trust this (e.g. write it to a file for --ca-file).
  std::string certificate_pem;     ///< Leaf, valid for the names given.
  std::string private_key_pem;     ///< Leaf key.
};

/// Makes a CA and a leaf for `names` (DNS names or IP addresses) valid for `days`.
certificate_set make_certificates(const std::vector<std::string>& names = {"127.0.0.1", "localhost",
                                                                           "::1"},
                                  int days = 30);

struct server_options {
  std::string address = "127.0.0.1";     ///< Loopback only: other addresses are refused.
  std::uint16_t port = 0;                ///< 0 picks a free port.
  std::optional<server_tls> tls;         ///< Plain HTTP when empty.
  std::size_t body_limit = 1024 * 1024;  ///< Larger request bodies get 413 from the server.
};

/// Bytes shared between a reply and whoever else keeps them: an event serialized once, when it
/// is published, is written to every subscriber without being copied.
using shared_bytes = std::shared_ptr<const std::string>;

/// One request awaiting its reply. Answer it exactly once; an exchange dropped without an
/// answer closes the connection when the last reference goes. respond(), drop() and
/// respond_partial_and_drop() may be called from any thread: the work is dispatched to the
/// server's executor. While a request waits for its answer the server keeps one read
/// outstanding on the connection, so a client that closes is noticed at once (on_abandoned);
/// a request the client pipelines meanwhile is parsed and held until the first is answered.
class exchange {
 public:
  virtual ~exchange() = default;
  virtual const transport::http_request& request() const noexcept = 0;
  /// The peer's address, e.g. "127.0.0.1".
  virtual std::string remote_address() const = 0;
  /// Sends the response (keep-alive unless the request asked otherwise).
  virtual void respond(transport::http_response response) = 0;
  /// Sends a response whose body is `pieces` written back to back (`head.body` is ignored). On
  /// plain HTTP the head and the pieces go out in one gather write, without copying a piece;
  /// over TLS they are encrypted from one staging buffer. The default joins the pieces and
  /// calls respond(), for exchanges that reshape a body before it is sent.
  virtual void respond_gather(transport::http_response head, std::vector<shared_bytes> pieces);
  /// Closes the connection without answering.
  virtual void drop() = 0;
  /// Sends the head and the first `body_bytes` of the body, then closes the connection.
  virtual void respond_partial_and_drop(transport::http_response response,
                                        std::size_t body_bytes) = 0;
  virtual bool answered() const noexcept = 0;
  /// Called once if the client closes the connection before the exchange is answered.
  virtual void on_abandoned(std::function<void()> callback) = 0;
};

using request_handler = std::function<void(std::shared_ptr<exchange>)>;

class http_server {
 public:
  /// Binds and starts accepting at once; throws sfstream::error if it cannot bind.
  http_server(boost::asio::any_io_executor executor, server_options options,
              request_handler handler);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  std::uint16_t port() const noexcept;
  /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string base_url() const;
  /// Stops accepting and closes every connection. Idempotent. Call it from the executor's
  /// thread, or while the executor runs nowhere (the destructor does the same).
  void stop();
  /// Number of currently open connections.
  std::size_t connection_count() const noexcept;
  /// Number of connections accepted since the server started (tests count reuse with it).
  std::size_t accepted_count() const noexcept;
  /// Closes every connection that has no request in progress (simulates a server that drops
  /// idle keep-alive connections); the acceptor keeps running.
  void close_idle_connections();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sfstream::emulator::net
