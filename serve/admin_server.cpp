#include "serve/admin_server.hpp"

#include <list>
#include <mutex>
#include <optional>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "serve/metrics.hpp"

namespace sfstream::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using response = http::response<http::string_body>;

response make_response(unsigned status, std::string_view content_type, std::string body,
                       unsigned version, bool keep_alive) {
  response res{static_cast<http::status>(status), version};
  res.set(http::field::server, "sfstream");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

}  // namespace

struct admin_server::impl : std::enable_shared_from_this<impl> {
  struct session;

  asio::any_io_executor executor;
  admin_options options;
  snapshot_function snapshot;
  asio::strand<asio::any_io_executor> strand;
  tcp::acceptor acceptor;
  std::uint16_t port = 0;

  std::mutex mutex;  // guards sessions and stopped
  std::list<std::weak_ptr<session>> sessions;
  bool stopped = false;

  impl(asio::any_io_executor ex, admin_options o, snapshot_function s)
      : executor(std::move(ex)),
        options(std::move(o)),
        snapshot(std::move(s)),
        strand(asio::make_strand(executor)),
        acceptor(strand) {}

  void accept();
  void close_all();

  /// The answer to one request.
  response answer(const http::request<http::string_body>& req) {
    const bool keep = req.keep_alive();
    const unsigned version = req.version();
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    const bool known =
        target == "/healthz" || target == "/readyz" || target == "/status" || target == "/metrics";
    if (!known) return make_response(404, "text/plain; charset=utf-8", "not found\n", version, keep);
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      auto res = make_response(405, "text/plain; charset=utf-8", "method not allowed\n", version,
                               keep);
      res.set(http::field::allow, "GET, HEAD");
      return res;
    }
    if (target == "/healthz") {
      return make_response(200, "text/plain; charset=utf-8", "ok\n", version, keep);
    }
    service_status status;
    try {
      if (snapshot) status = snapshot();
    } catch (const std::exception&) {
      // A snapshot that fails must not take the listener (or the process) down with it.
      return make_response(500, "text/plain; charset=utf-8", "status unavailable\n", version,
                           keep);
    }
    if (target == "/readyz") {
      std::vector<std::string> not_ready;
      if (is_ready(status, &not_ready)) {
        return make_response(200, "text/plain; charset=utf-8", "ready\n", version, keep);
      }
      std::string body = "not ready:\n";
      for (const auto& name : not_ready) body += name + "\n";
      return make_response(503, "text/plain; charset=utf-8", std::move(body), version, keep);
    }
    if (target == "/status") {
      return make_response(200, "application/json", render_status_json(status), version, keep);
    }
    return make_response(200, metrics_content_type, render_metrics(status), version, keep);
  }
};

/// One accepted connection: requests read one at a time, answered in order.
struct admin_server::impl::session : std::enable_shared_from_this<session> {
  std::weak_ptr<impl> server;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
  response res;
  std::size_t limit;
  std::chrono::milliseconds idle;

  session(std::shared_ptr<impl> owner, tcp::socket socket)
      : server(owner),
        stream(std::move(socket)),
        limit(owner->options.max_request_bytes),
        idle(owner->options.idle_timeout) {}

  void read() {
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limit, UINT32_MAX)));
    parser->body_limit(limit);
    stream.expires_after(idle);
    http::async_read(stream, buffer, *parser,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      close();
      return;
    }
    auto owner = server.lock();
    if (!owner) {
      close();
      return;
    }
    if (ec) {
      // A request we will not read to its end: answer why, then close (its remaining bytes
      // would otherwise be read as the next request).
      unsigned status = 400;
      if (ec == http::error::header_limit) status = 431;
      if (ec == http::error::body_limit) status = 413;
      res = make_response(status, "text/plain; charset=utf-8",
                          std::string(http::obsolete_reason(static_cast<http::status>(status))) +
                              "\n",
                          11, false);
    } else {
      const auto& req = parser->get();
      res = owner->answer(req);
      if (req.method() == http::verb::head) {
        const auto size = res.body().size();
        res.body().clear();
        res.content_length(size);
      }
    }
    owner.reset();
    stream.expires_after(idle);
    http::async_write(stream, res,
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        if (write_ec || !self->res.keep_alive()) {
                          self->close();
                          return;
                        }
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
  }
};

void admin_server::impl::accept() {
  acceptor.async_accept(
      asio::make_strand(executor),
      asio::bind_executor(strand, [self = shared_from_this()](beast::error_code ec,
                                                              tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!ec) {
          std::shared_ptr<session> s;
          {
            std::lock_guard lock(self->mutex);
            if (self->stopped) return;
            self->sessions.remove_if([](const std::weak_ptr<session>& w) { return w.expired(); });
            if (self->sessions.size() < self->options.max_connections) {
              s = std::make_shared<session>(self, std::move(socket));
              self->sessions.push_back(s);
            }
          }
          if (s) {
            asio::dispatch(s->stream.get_executor(), [s] { s->read(); });
          } else {
            beast::error_code ignored;
            socket.close(ignored);
          }
        }
        self->accept();
      }));
}

void admin_server::impl::close_all() {
  std::list<std::weak_ptr<session>> all;
  {
    std::lock_guard lock(mutex);
    stopped = true;
    all.swap(sessions);
  }
  for (auto& weak : all) {
    if (auto s = weak.lock()) {
      asio::post(s->stream.get_executor(), [s] { s->close(); });
    }
  }
}

admin_server::admin_server(asio::any_io_executor executor, admin_options options,
                           snapshot_function snapshot)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options), std::move(snapshot))) {}

admin_server::~admin_server() { stop(); }

error_info admin_server::listen() {
  auto fail = [&](errc code, std::string text, std::error_code cause = {}) {
    error_info info;
    info.code = make_error_code(code);
    info.diag.context = "starting the admin listener on " + impl_->options.address + ":" +
                        std::to_string(impl_->options.port);
    info.diag.server_text = std::move(text);
    info.cause = cause;
    return info;
  };
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) return fail(errc::invalid_config, "not an IP address: " + impl_->options.address);
  const tcp::endpoint endpoint{address, impl_->options.port};
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return fail(errc::connection_failed, ec.message(), ec);
  }
  impl_->port = acceptor.local_endpoint(ec).port();
  asio::dispatch(impl_->strand, [self = impl_] { self->accept(); });
  return {};
}

std::uint16_t admin_server::port() const noexcept { return impl_->port; }

void admin_server::stop() {
  asio::dispatch(impl_->strand, [self = impl_] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
  });
  impl_->close_all();
}

}  // namespace sfstream::serve
