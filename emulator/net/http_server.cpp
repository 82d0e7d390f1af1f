// The loopback HTTP(S) server: Beast over Asio, one connection object per accepted socket,
// one exchange per request, answers possibly held (long polls) and faults on demand.
#include "emulator/net/http_server.hpp"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <mutex>

#include "sfstream/error.hpp"

namespace sfstream::emulator::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::seconds handshake_timeout{10};
constexpr std::chrono::seconds drain_timeout{5};
constexpr std::size_t drain_limit = 64 * 1024 * 1024;

class exchange_impl;

/// One accepted connection, plain or TLS (the stream type is the template parameter).
class connection_base : public std::enable_shared_from_this<connection_base> {
 public:
  virtual ~connection_base() = default;
  virtual void start() = 0;
  /// Closes the socket at once; pending operations complete with operation_aborted.
  virtual void close() = 0;
  /// Closes the connection only when no request is in progress.
  virtual void close_if_idle() = 0;
  virtual void send(http::response<http::string_body> response, bool keep_alive) = 0;
  virtual void send_raw_and_close(std::string bytes) = 0;
  /// Writes `head` then every piece, in one gather write where the stream allows it.
  virtual void send_gather(std::string head, std::vector<shared_bytes> pieces, bool keep_alive) = 0;
};

/// The status line and header fields of `response`, with a Content-Length of `body_size` and
/// `Connection: close` when the connection ends after it.
std::string render_head(const transport::http_response& response, std::size_t body_size,
                        bool& keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " ";
  head += response.reason.empty()
              ? std::string(http::obsolete_reason(http::int_to_status(response.status)))
              : response.reason;
  head += "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (beast::iequals(name, "Content-Length")) continue;
    if (beast::iequals(name, "Connection")) {
      if (beast::iequals(value, "close")) keep_alive = false;
      continue;
    }
    head += name + ": " + value + "\r\n";
  }
  head += "Content-Length: " + std::to_string(body_size) + "\r\n";
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

struct server_state {
  asio::any_io_executor executor;
  server_options options;
  request_handler handler;
  std::mutex mutex;
  std::list<std::weak_ptr<connection_base>> connections;
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> accepted{0};
};

class exchange_impl final : public exchange, public std::enable_shared_from_this<exchange_impl> {
 public:
  exchange_impl(std::shared_ptr<connection_base> conn, asio::any_io_executor executor,
                transport::http_request request, std::string remote, bool keep_alive)
      : conn_(std::move(conn)),
        executor_(std::move(executor)),
        request_(std::move(request)),
        remote_(std::move(remote)),
        keep_alive_(keep_alive) {}

  ~exchange_impl() override {
    if (!answered_.exchange(true)) {
      asio::dispatch(executor_, [conn = conn_] { conn->close(); });
    }
  }

  const transport::http_request& request() const noexcept override { return request_; }
  std::string remote_address() const override { return remote_; }

  void respond(transport::http_response response) override {
    if (answered_.exchange(true)) return;
    http::response<http::string_body> out;
    out.version(11);
    out.result(response.status);
    if (!response.reason.empty()) out.reason(response.reason);
    bool keep_alive = keep_alive_;
    for (auto& [name, value] : response.headers) {
      if (beast::iequals(name, "Content-Length")) continue;
      if (beast::iequals(name, "Connection") && beast::iequals(value, "close")) keep_alive = false;
      out.insert(name, value);
    }
    out.body() = std::move(response.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    asio::dispatch(executor_, [conn = conn_, msg = std::move(out), keep_alive]() mutable {
      conn->send(std::move(msg), keep_alive);
    });
  }

  void respond_gather(transport::http_response head, std::vector<shared_bytes> pieces) override {
    if (answered_.exchange(true)) return;
    std::size_t size = 0;
    for (const auto& piece : pieces) size += piece->size();
    bool keep_alive = keep_alive_;
    std::string bytes = render_head(head, size, keep_alive);
    asio::dispatch(executor_, [conn = conn_, bytes = std::move(bytes), pieces = std::move(pieces),
                               keep_alive]() mutable {
      conn->send_gather(std::move(bytes), std::move(pieces), keep_alive);
    });
  }

  void drop() override {
    if (answered_.exchange(true)) return;
    asio::dispatch(executor_, [conn = conn_] { conn->close(); });
  }

  void respond_partial_and_drop(transport::http_response response,
                                std::size_t body_bytes) override {
    if (answered_.exchange(true)) return;
    std::string raw =
        "HTTP/1.1 " + std::to_string(response.status) + " " +
        (response.reason.empty()
             ? std::string(http::obsolete_reason(http::int_to_status(response.status)))
             : response.reason) +
        "\r\n";
    for (const auto& [name, value] : response.headers) {
      if (beast::iequals(name, "Content-Length")) continue;
      raw += name + ": " + value + "\r\n";
    }
    raw += "Content-Length: " + std::to_string(response.body.size()) + "\r\n\r\n";
    raw.append(response.body, 0, std::min(body_bytes, response.body.size()));
    asio::dispatch(executor_, [conn = conn_, bytes = std::move(raw)]() mutable {
      conn->send_raw_and_close(std::move(bytes));
    });
  }

  bool answered() const noexcept override { return answered_.load(); }

  void on_abandoned(std::function<void()> callback) override {
    asio::dispatch(executor_, [self = shared_from_this(), cb = std::move(callback)]() mutable {
      if (self->abandoned_) {
        if (cb) cb();
      } else {
        self->on_abandoned_ = std::move(cb);
      }
    });
  }

  /// The client went away before the answer (runs on the executor).
  void mark_abandoned() {
    if (abandoned_ || answered_.load()) return;
    abandoned_ = true;
    answered_ = true;
    if (auto cb = std::move(on_abandoned_)) cb();
  }

 private:
  std::shared_ptr<connection_base> conn_;
  asio::any_io_executor executor_;
  transport::http_request request_;
  std::string remote_;
  bool keep_alive_;
  std::atomic<bool> answered_{false};
  bool abandoned_ = false;
  std::function<void()> on_abandoned_;
};

template <class Stream>
class connection final : public connection_base {
 public:
  connection(std::shared_ptr<server_state> state, Stream stream, std::string remote)
      : state_(std::move(state)), stream_(std::move(stream)), remote_(std::move(remote)) {}

  void start() override {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(handshake_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = self_ptr()](beast::error_code ec) {
                                if (self->closed_) return;
                                beast::get_lowest_layer(self->stream_).expires_never();
                                if (ec) {
                                  self->close();
                                  return;
                                }
                                self->do_read();
                              });
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    state_->open.fetch_sub(1);
  }

  void close_if_idle() override {
    if (!busy_ && !writing_) close();
  }

  void send(http::response<http::string_body> response, bool keep_alive) override {
    if (closed_) return;
    auto msg = std::make_shared<http::response<http::string_body>>(std::move(response));
    writing_ = true;
    http::async_write(stream_, *msg,
                      [self = self_ptr(), msg, keep_alive](beast::error_code ec, std::size_t) {
                        self->on_written(ec, keep_alive);
                      });
  }

  void send_gather(std::string head, std::vector<shared_bytes> pieces, bool keep_alive) override {
    if (closed_) return;
    struct gather {
      std::string head;
      std::vector<shared_bytes> pieces;
      std::vector<asio::const_buffer> buffers;
    };
    auto out = std::make_shared<gather>();
    out->head = std::move(head);
    out->pieces = std::move(pieces);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      out->buffers.reserve(out->pieces.size() + 1);
      out->buffers.emplace_back(asio::buffer(out->head));
      for (const auto& piece : out->pieces) out->buffers.emplace_back(asio::buffer(*piece));
    } else {
      // TLS encrypts one buffer at a time into a record of its own: staging the reply in one
      // buffer keeps records full (and TLS copies the bytes while encrypting them anyway).
      std::size_t size = out->head.size();
      for (const auto& piece : out->pieces) size += piece->size();
      out->head.reserve(size);
      for (const auto& piece : out->pieces) out->head += *piece;
      out->pieces.clear();
      out->buffers.emplace_back(asio::buffer(out->head));
    }
    writing_ = true;
    asio::async_write(stream_, out->buffers,
                      [self = self_ptr(), out, keep_alive](beast::error_code ec, std::size_t) {
                        self->on_written(ec, keep_alive);
                      });
  }

  void send_raw_and_close(std::string bytes) override {
    if (closed_) return;
    auto data = std::make_shared<std::string>(std::move(bytes));
    writing_ = true;
    asio::async_write(stream_, asio::buffer(*data),
                      [self = self_ptr(), data](beast::error_code, std::size_t) {
                        self->writing_ = false;
                        self->close();
                      });
  }

 private:
  std::shared_ptr<connection> self_ptr() {
    return std::static_pointer_cast<connection>(shared_from_this());
  }

  /// A response was written: the next request may be dispatched.
  void on_written(beast::error_code ec, bool keep_alive) {
    writing_ = false;
    if (closed_) return;
    if (ec || !keep_alive) {
      close();
      return;
    }
    current_.reset();
    busy_ = false;
    next();
  }

  void do_read() {
    if (closed_ || reading_ || queued_) return;
    parser_.emplace();
    parser_->body_limit(state_->options.body_limit);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = self_ptr()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (closed_) return;
    if (ec == http::error::body_limit) {
      too_large_ = true;
      if (!busy_ && !writing_) send_too_large();
      return;
    }
    if (ec) {
      if (auto pending = current_.lock()) pending->mark_abandoned();
      close();
      return;
    }
    auto message = parser_->release();
    transport::http_request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    queued_.emplace(std::move(request), message.keep_alive());
    if (!busy_ && !writing_) next();
  }

  /// Dispatches the queued request (if any) and keeps a read outstanding.
  void next() {
    if (closed_) return;
    if (too_large_) {
      send_too_large();
      return;
    }
    if (queued_) {
      auto [request, keep_alive] = std::move(*queued_);
      queued_.reset();
      auto ex = std::make_shared<exchange_impl>(shared_from_this(), state_->executor,
                                                std::move(request), remote_, keep_alive);
      current_ = ex;
      busy_ = true;
      do_read();
      try {
        if (state_->handler) state_->handler(ex);
      } catch (...) {
        transport::http_response failure;
        failure.status = 500;
        failure.headers.emplace_back("Content-Type", "text/plain");
        failure.body = "The request handler failed.";
        ex->respond(std::move(failure));
      }
      return;
    }
    do_read();
  }

  /// Answers 413 itself, then reads and discards what the client still sends (so that the
  /// client sees the answer rather than a reset), bounded in bytes and time, then closes.
  void send_too_large() {
    too_large_ = false;
    http::response<http::string_body> res{http::status::payload_too_large, 11};
    res.set(http::field::content_type, "text/plain");
    res.body() = "Maximum Request Size Exceeded";
    res.keep_alive(false);
    res.prepare_payload();
    auto msg = std::make_shared<http::response<http::string_body>>(std::move(res));
    writing_ = true;
    http::async_write(stream_, *msg, [self = self_ptr(), msg](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (self->closed_) return;
      if (ec) {
        self->close();
        return;
      }
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
      beast::get_lowest_layer(self->stream_).expires_after(drain_timeout);
      self->drain();
    });
  }

  void drain() {
    auto buffer = std::make_shared<std::array<char, 16384>>();
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(*buffer), [self = self_ptr(), buffer](beast::error_code ec, std::size_t n) {
          if (self->closed_) return;
          self->drained_ += n;
          if (ec || self->drained_ > drain_limit) {
            self->close();
            return;
          }
          self->drain();
        });
  }

  std::shared_ptr<server_state> state_;
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<std::pair<transport::http_request, bool>> queued_;
  std::weak_ptr<exchange_impl> current_;
  bool closed_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool busy_ = false;  ///< A request was handed out and its answer is not yet written.
  bool too_large_ = false;
  std::size_t drained_ = 0;
};

}  // namespace

void exchange::respond_gather(transport::http_response head, std::vector<shared_bytes> pieces) {
  std::size_t size = 0;
  for (const auto& piece : pieces) size += piece->size();
  head.body.clear();
  head.body.reserve(size);
  for (const auto& piece : pieces) head.body += *piece;
  respond(std::move(head));
}

struct http_server::impl : std::enable_shared_from_this<http_server::impl> {
  std::shared_ptr<server_state> state;
  tcp::acceptor acceptor;
  std::optional<asio::ssl::context> tls;
  std::uint16_t port = 0;
  bool stopped = false;

  impl(asio::any_io_executor executor, server_options options, request_handler handler)
      : state(std::make_shared<server_state>()), acceptor(executor) {
    state->executor = executor;
    state->options = std::move(options);
    state->handler = std::move(handler);
  }

  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (self->stopped || !self->acceptor.is_open()) return;
      if (!ec) self->adopt(std::move(socket));
      self->accept();
    });
  }

  void adopt(tcp::socket socket) {
    beast::error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    std::string remote = ec ? std::string() : endpoint.address().to_string();
    // A reply goes out in one gather write that may take several sends: its last, short
    // segment must not wait for the client's (delayed) acknowledgement of the others.
    socket.set_option(tcp::no_delay(true), ec);
    std::shared_ptr<connection_base> conn;
    if (tls) {
      conn = std::make_shared<connection<asio::ssl::stream<beast::tcp_stream>>>(
          state, asio::ssl::stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls),
          std::move(remote));
    } else {
      conn = std::make_shared<connection<beast::tcp_stream>>(
          state, beast::tcp_stream(std::move(socket)), std::move(remote));
    }
    state->open.fetch_add(1);
    state->accepted.fetch_add(1);
    {
      std::lock_guard lock(state->mutex);
      state->connections.remove_if([](const auto& weak) { return weak.expired(); });
      state->connections.push_back(conn);
    }
    conn->start();
  }

  std::vector<std::shared_ptr<connection_base>> live_connections() {
    std::vector<std::shared_ptr<connection_base>> out;
    std::lock_guard lock(state->mutex);
    for (auto& weak : state->connections) {
      if (auto conn = weak.lock()) out.push_back(std::move(conn));
    }
    return out;
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    beast::error_code ec;
    acceptor.close(ec);
    for (auto& conn : live_connections()) conn->close();
    std::lock_guard lock(state->mutex);
    state->connections.clear();
  }
};

http_server::http_server(boost::asio::any_io_executor executor, server_options options,
                         request_handler handler) {
  auto fail = [](errc code, std::string text) {
    error_info info;
    info.code = make_error_code(code);
    info.diag.context = "starting the loopback HTTP server";
    info.diag.server_text = std::move(text);
    throw error(std::move(info));
  };
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) fail(errc::invalid_config, "the address '" + options.address + "' is not an IP address");
  if (!address.is_loopback())
    fail(errc::invalid_config, "only loopback addresses may be used, not " + options.address);
  const std::uint16_t wanted_port = options.port;
  std::optional<server_tls> tls_material = options.tls;
  impl_ = std::make_shared<impl>(executor, std::move(options), std::move(handler));
  if (tls_material) {
    impl_->tls.emplace(asio::ssl::context::tls_server);
    auto& context = *impl_->tls;
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    context.use_certificate_chain(asio::buffer(tls_material->certificate_chain_pem), ec);
    if (ec) fail(errc::tls_error, "the certificate chain PEM could not be loaded: " + ec.message());
    context.use_private_key(asio::buffer(tls_material->private_key_pem), asio::ssl::context::pem,
                            ec);
    if (ec) fail(errc::tls_error, "the private key PEM could not be loaded");
  }
  auto& acceptor = impl_->acceptor;
  const tcp::endpoint endpoint(address, wanted_port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    fail(errc::connection_failed, "cannot listen on " + address.to_string() + ":" +
                                      std::to_string(wanted_port) + ": " + ec.message());
  impl_->port = acceptor.local_endpoint().port();
  impl_->accept();
}

http_server::~http_server() {
  stop();
}

std::uint16_t http_server::port() const noexcept {
  return impl_->port;
}

std::string http_server::base_url() const {
  const auto& address = impl_->state->options.address;
  const bool v6 = address.find(':') != std::string::npos;
  return std::string(impl_->tls ? "https" : "http") + "://" + (v6 ? "[" + address + "]" : address) +
         ":" + std::to_string(impl_->port);
}

void http_server::stop() {
  if (impl_) impl_->stop();
}

std::size_t http_server::connection_count() const noexcept {
  return impl_->state->open.load();
}

std::size_t http_server::accepted_count() const noexcept {
  return impl_->state->accepted.load();
}

void http_server::close_idle_connections() {
  for (auto& conn : impl_->live_connections()) conn->close_if_idle();
}

}  // namespace sfstream::emulator::net
