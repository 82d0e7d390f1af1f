// http_lane: one keep-alive HTTP(S) connection, connected lazily (resolve, TCP, optional
// proxy CONNECT, TLS with SNI and host-name verification), one exchange at a time, one
// deadline per exchange. Also the client TLS context and the one-shot async_http_request.
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "src/transport/cookie_jar.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/proxy.hpp"

namespace sfstream::transport {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

error_info make_error(errc code, std::string context, std::string text = {},
                      std::error_code cause = {}) {
  error_info info;
  info.code = make_error_code(code);
  info.diag.context = std::move(context);
  info.diag.server_text = std::move(text);
  info.cause = cause;
  return info;
}

std::string host_port(const url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  return (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
}

/// Host header value: the port only when it is not the scheme's default.
std::string host_header(const url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + u.host + "]" : u.host;
  if (u.port != (u.is_https() ? 443 : 80)) out += ":" + std::to_string(u.port);
  return out;
}

bool is_ip_address(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

bool is_closed_error(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == http::error::end_of_stream ||
         ec == http::error::partial_message || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

/// One TCP (+TLS) connection. Asynchronous operations hold it by shared_ptr, so a lane can
/// drop it and start afresh while aborted operations still unwind.
/// A response body read into a std::string by appending each piece as it arrives. Beast's
/// string body grows the string first (zero-filling the new bytes) and then copies into it; a
/// Bayeux reply of a thousand events is a megabyte, so that would write every byte twice.
struct appending_body {
  using value_type = std::string;

  static std::uint64_t size(const value_type& body) noexcept { return body.size(); }

  class reader {
   public:
    template <bool is_request, class Fields>
    reader(http::header<is_request, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      // The parser has already held a declared length against the body limit.
      if (length) body_.reserve(static_cast<std::size_t>(*length));
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      std::size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
           ++it) {
        const asio::const_buffer piece = *it;
        body_.append(static_cast<const char*>(piece.data()), piece.size());
        n += piece.size();
      }
      ec = {};
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

struct connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> secure;
  /// Reads go into this buffer; reserved once so each read takes up to 64 KiB (a buffer that
  /// starts empty makes every read 512 bytes, one system call each).
  beast::flat_buffer buffer;
  bool established = false;

  connection() { buffer.reserve(64 * 1024); }

  beast::tcp_stream& lowest() { return secure ? secure->next_layer() : *plain; }
  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
};

class lane_impl final : public http_lane {
 public:
  lane_impl(asio::any_io_executor executor, url origin, std::shared_ptr<ssl::context> tls,
            transport_options options, std::shared_ptr<cookie_jar> cookies)
      : executor_(std::move(executor)),
        origin_(std::move(origin)),
        tls_(std::move(tls)),
        options_(std::move(options)),
        cookies_(std::move(cookies)),
        resolver_(executor_),
        resolve_timer_(executor_) {
    origin_.target = "/";
    proxy_ = select_proxy(options_, origin_);
  }

  void async_exchange(http_request request, std::chrono::milliseconds deadline,
                      handler done) override {
    if (busy_) {
      complete_later(std::move(done),
                     make_error(errc::invalid_config, "sending on " + origin_.origin(),
                                "an exchange is already in progress on this lane"));
      return;
    }
    if (!origin_.is_https() && !origin_.is_loopback()) {
      complete_later(std::move(done),
                     make_error(errc::insecure_url, "sending to " + origin_.origin()));
      return;
    }
    if (origin_.is_https() && !tls_) {
      error_info why;
      tls_ = make_client_tls_context(options_, &why);
      if (!tls_) {
        complete_later(std::move(done), why);
        return;
      }
    }
    busy_ = true;
    ++generation_;
    done_ = std::move(done);
    retried_ = false;
    resend_allowed_ = request.resend_if_stale;
    deadline_ = std::chrono::steady_clock::now() + deadline;
    build_message(std::move(request));
    start();
  }

  void cancel() override {
    asio::dispatch(executor_, [self = shared_from_this_lane()] {
      if (!self->busy_) {
        self->drop_connection();
        return;
      }
      self->finish(make_error(errc::cancelled, "exchange with " + self->origin_.origin()), {});
    });
  }

  bool busy() const noexcept override { return busy_; }
  const url& origin() const noexcept override { return origin_; }

 private:
  std::shared_ptr<lane_impl> shared_from_this_lane() {
    return std::static_pointer_cast<lane_impl>(shared_from_this());
  }

  void complete_later(handler done, error_info info) {
    asio::post(executor_,
               [done = std::move(done), info = std::move(info)] { done(info, http_response{}); });
  }

  void build_message(http_request request) {
    message_ = {};
    message_.version(11);
    const auto verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) {
      message_.method_string(request.method);
    } else {
      message_.method(verb);
    }
    message_.target(request.target.empty() ? "/" : request.target);
    request_url_ = origin_;
    request_url_.target = std::string(message_.target());
    bool has_cookie = false;
    for (auto& [name, value] : request.headers) {
      if (beast::iequals(name, "Host") || beast::iequals(name, "Content-Length")) continue;
      if (beast::iequals(name, "Cookie")) has_cookie = true;
      message_.insert(name, value);
    }
    message_.set(http::field::host, host_header(origin_));
    if (message_.find(http::field::user_agent) == message_.end()) {
      message_.set(http::field::user_agent, options_.user_agent);
    }
    message_.body() = std::move(request.body);
    cookie_header_added_ = !has_cookie;
    message_.keep_alive(true);
    if (message_.body().empty() &&
        (message_.method() == http::verb::get || message_.method() == http::verb::head)) {
      message_.content_length(boost::none);
    } else {
      message_.content_length(message_.body().size());
    }
  }

  /// (Re)starts the exchange: on the kept connection when there is one, else connects.
  void start() {
    if (cookies_ && cookie_header_added_) {
      const std::string value = cookies_->header_for(request_url_);
      if (value.empty()) {
        message_.erase(http::field::cookie);
      } else {
        message_.set(http::field::cookie, value);
      }
    }
    if (conn_ && conn_->established) {
      reused_ = true;
      write();
      return;
    }
    reused_ = false;
    drop_connection();
    conn_ = std::make_shared<connection>();
    if (origin_.is_https()) {
      conn_->secure = std::make_unique<ssl::stream<beast::tcp_stream>>(executor_, *tls_);
    } else {
      conn_->plain = std::make_unique<beast::tcp_stream>(executor_);
    }
    const url& first_hop = proxy_ ? proxy_->address : origin_;
    const auto connect_deadline =
        std::min(deadline_, std::chrono::steady_clock::now() + options_.connect_timeout);
    resolve_timer_.expires_at(connect_deadline);
    resolve_timer_.async_wait(
        [self = shared_from_this_lane(), gen = generation_](beast::error_code ec) {
          if (!ec && gen == self->generation_) {
            self->resolve_timed_out_ = true;
            self->resolver_.cancel();
          }
        });
    resolve_timed_out_ = false;
    resolver_.async_resolve(
        first_hop.host, std::to_string(first_hop.port),
        [self = shared_from_this_lane(), c = conn_, gen = generation_, connect_deadline](
            beast::error_code ec, tcp::resolver::results_type results) {
          self->resolve_timer_.cancel();
          if (gen != self->generation_) return;
          if (self->resolve_timed_out_) {
            self->fail(make_error(errc::timeout, "resolving " + self->first_hop_name()));
            return;
          }
          if (ec) {
            self->fail(make_error(errc::connection_failed, "resolving " + self->first_hop_name(),
                                  ec.message()));
            return;
          }
          c->lowest().expires_at(connect_deadline);
          c->lowest().async_connect(results, [self, c, gen, connect_deadline](
                                                 beast::error_code ec2, const tcp::endpoint&) {
            if (gen != self->generation_) return;
            if (ec2) {
              self->fail(ec2 == beast::error::timeout
                             ? make_error(errc::timeout, "connecting to " + self->first_hop_name())
                             : make_error(errc::connection_failed,
                                          "connecting to " + self->first_hop_name(),
                                          ec2.message()));
              return;
            }
            if (self->proxy_) {
              self->proxy_connect(c, connect_deadline);
            } else {
              self->tls_handshake(c, connect_deadline);
            }
          });
        });
  }

  std::string first_hop_name() const {
    return proxy_ ? "the proxy " + host_port(proxy_->address) : host_port(origin_);
  }

  void proxy_connect(const std::shared_ptr<connection>& c,
                     std::chrono::steady_clock::time_point connect_deadline) {
    auto request = std::make_shared<http::request<http::empty_body>>(http::verb::connect,
                                                                     host_port(origin_), 11);
    request->set(http::field::host, host_port(origin_));
    request->set(http::field::user_agent, options_.user_agent);
    if (!proxy_->username.empty()) {
      request->set(http::field::proxy_authorization,
                   "Basic " + encode_base64(proxy_->username + ":" + proxy_->password));
    }
    c->lowest().expires_at(connect_deadline);
    http::async_write(
        c->lowest(), *request,
        [self = shared_from_this_lane(), c, request, gen = generation_, connect_deadline](
            beast::error_code ec, std::size_t) {
          if (gen != self->generation_) return;
          if (ec) {
            self->fail(
                ec == beast::error::timeout
                    ? make_error(errc::timeout, "sending CONNECT to the proxy")
                    : make_error(errc::proxy_error, "sending CONNECT to the proxy", ec.message()));
            return;
          }
          auto parser = std::make_shared<http::response_parser<http::empty_body>>();
          parser->skip(true);
          auto buffer = std::make_shared<beast::flat_buffer>();
          http::async_read_header(
              c->lowest(), *buffer, *parser,
              [self, c, parser, buffer, gen, connect_deadline](beast::error_code ec2, std::size_t) {
                if (gen != self->generation_) return;
                if (ec2) {
                  self->fail(
                      ec2 == beast::error::timeout
                          ? make_error(errc::timeout, "waiting for the proxy's CONNECT reply")
                          : make_error(errc::proxy_error, "reading the proxy's CONNECT reply",
                                       ec2.message()));
                  return;
                }
                const auto& reply = parser->get();
                if (reply.result_int() < 200 || reply.result_int() > 299) {
                  error_info info =
                      make_error(errc::proxy_error, "CONNECT " + host_port(self->origin_));
                  info.diag.server_code = std::to_string(reply.result_int());
                  info.diag.server_text = std::string(reply.reason());
                  self->fail(info);
                  return;
                }
                self->tls_handshake(c, connect_deadline);
              });
        });
  }

  void tls_handshake(const std::shared_ptr<connection>& c,
                     std::chrono::steady_clock::time_point connect_deadline) {
    if (!c->secure) {
      c->established = true;
      write();
      return;
    }
    SSL* native = c->secure->native_handle();
    // SNI for names; the expected identity is also given to OpenSSL itself so that a mismatch
    // is reported with its reason ("hostname mismatch", "IP address mismatch").
    if (is_ip_address(origin_.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), origin_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(native, origin_.host.c_str());
      SSL_set1_host(native, origin_.host.c_str());
    }
    c->secure->set_verify_mode(ssl::verify_peer);
    c->secure->set_verify_callback(ssl::host_name_verification(origin_.host));
    c->lowest().expires_at(connect_deadline);
    c->secure->async_handshake(ssl::stream_base::client, [self = shared_from_this_lane(), c,
                                                          gen = generation_](beast::error_code ec) {
      if (gen != self->generation_) return;
      if (ec) {
        if (ec == beast::error::timeout) {
          self->fail(make_error(errc::timeout, "TLS handshake with " + host_port(self->origin_)));
          return;
        }
        std::string reason = ec.message();
        const long verify = SSL_get_verify_result(c->secure->native_handle());
        if (verify != X509_V_OK) {
          reason += ": ";
          reason += X509_verify_cert_error_string(verify);
        }
        self->fail(make_error(errc::tls_error, "TLS handshake with " + host_port(self->origin_),
                              reason, ec));
        return;
      }
      c->established = true;
      self->write();
    });
  }

  template <class Handler>
  void on_stream(const std::shared_ptr<connection>& c, Handler&& h) {
    if (c->secure) {
      h(*c->secure);
    } else {
      h(*c->plain);
    }
  }

  void write() {
    auto c = conn_;
    c->lowest().expires_at(deadline_);
    on_stream(c, [&](auto& stream) {
      http::async_write(stream, message_,
                        [self = shared_from_this_lane(), c, gen = generation_](beast::error_code ec,
                                                                               std::size_t) {
                          if (gen != self->generation_) return;
                          if (ec) {
                            self->transfer_failed(
                                ec, false, "sending the request to " + host_port(self->origin_));
                            return;
                          }
                          self->read();
                        });
    });
  }

  void read() {
    auto c = conn_;
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(64 * 1024);
    if (message_.method() == http::verb::head) parser_->skip(true);
    // One deadline for the whole reply: a stream timeout would re-arm its timer on every
    // read. The timer cancels the socket; the read then fails and counts as a timeout.
    c->lowest().expires_never();
    read_timed_out_ = false;
    read_timer_.expires_at(deadline_);
    read_timer_.async_wait([self = shared_from_this_lane(), c, gen = generation_](
                               beast::error_code ec) {
      if (ec || gen != self->generation_) return;
      self->read_timed_out_ = true;
      c->lowest().cancel();
    });
    on_stream(c, [&](auto& stream) {
      http::async_read(stream, c->buffer, *parser_,
                       [self = shared_from_this_lane(), c, gen = generation_](beast::error_code ec,
                                                                              std::size_t) {
                         if (gen != self->generation_) return;
                         self->read_timer_.cancel();
                         if (ec && self->read_timed_out_) ec = beast::error::timeout;
                         if (ec) {
                           self->transfer_failed(
                               ec, self->parser_->got_some(),
                               "reading the reply from " + host_port(self->origin_));
                           return;
                         }
                         self->received();
                       });
    });
  }

  void transfer_failed(const beast::error_code& ec, bool got_some, const std::string& context) {
    if (ec == beast::error::timeout) {
      fail(make_error(errc::timeout, context));
      return;
    }
    if (ec == http::error::body_limit) {
      fail(make_error(
          errc::body_too_large, context,
          "the body exceeds the limit of " + std::to_string(options_.body_limit) + " bytes"));
      return;
    }
    if (reused_ && !got_some && !retried_ && resend_allowed_ && is_closed_error(ec)) {
      // A stale keep-alive connection: the server closed it between exchanges. Nothing of the
      // reply was received, so sending again on a fresh connection is safe for a request the
      // caller marked as safe to repeat (never a /meta/connect: the server may have taken the
      // events of its reply off its queue).
      retried_ = true;
      drop_connection();
      ++generation_;
      start();
      return;
    }
    fail(make_error(errc::connection_closed, context, ec.message(), ec));
  }

  void received() {
    auto message = parser_->release();
    http_response response;
    response.status = message.result_int();
    response.reason = std::string(message.reason());
    for (const auto& field : message) {
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    if (cookies_) cookies_->store(request_url_, response.headers);
    if (!message.keep_alive()) drop_connection();
    finish({}, std::move(response));
  }

  void fail(error_info info) {
    drop_connection();
    finish(std::move(info), {});
  }

  void finish(error_info info, http_response response) {
    if (!busy_) return;
    busy_ = false;
    ++generation_;
    resolve_timer_.cancel();
    read_timer_.cancel();
    if (info) {
      resolver_.cancel();
      drop_connection();
    }
    auto done = std::move(done_);
    done_ = nullptr;
    asio::post(executor_, [done = std::move(done), info = std::move(info),
                           response = std::move(response)]() mutable {
      done(std::move(info), std::move(response));
    });
  }

  void drop_connection() {
    if (conn_) {
      conn_->close();
      conn_.reset();
    }
  }

  asio::any_io_executor executor_;
  url origin_;
  url request_url_;  ///< origin_ with the current request's target: cookies match on its path.
  std::shared_ptr<ssl::context> tls_;
  transport_options options_;
  std::shared_ptr<cookie_jar> cookies_;
  std::optional<proxy_config> proxy_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  asio::steady_timer read_timer_{executor_};
  std::shared_ptr<connection> conn_;
  http::request<http::string_body> message_;
  std::optional<http::response_parser<appending_body>> parser_;
  handler done_;
  std::chrono::steady_clock::time_point deadline_{};
  std::uint64_t generation_ = 0;
  bool busy_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool resend_allowed_ = true;
  bool resolve_timed_out_ = false;
  bool read_timed_out_ = false;
  bool cookie_header_added_ = true;
};

}  // namespace

std::optional<std::string> hashed_system_certificate_dir() {
  // OpenSSL's own order: SSL_CERT_FILE names a bundle to load whole; SSL_CERT_DIR, else the
  // built-in directory, is searched by subject hash. A bundle of the user's own is loaded as
  // OpenSSL would; SSL_CERT_FILE naming the system's bundle (as many environments set it)
  // holds the certificates the system directory holds. A directory without hashed names (no
  // c_rehash run) cannot be searched: the bundle file is loaded then.
  if (const char* file = std::getenv(X509_get_default_cert_file_env()); file && *file) {
    std::error_code ec;
    const auto given = std::filesystem::canonical(file, ec);
    if (ec) return std::nullopt;
    const auto system = std::filesystem::canonical(X509_get_default_cert_file(), ec);
    if (ec || given != system) return std::nullopt;
  }
  const char* from_env = std::getenv(X509_get_default_cert_dir_env());
  const std::string dirs = from_env && *from_env ? from_env : X509_get_default_cert_dir();
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    start = end + 1;
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec), last;
    for (int seen = 0; !ec && it != last && seen < 100'000; it.increment(ec), ++seen) {
      const std::string name = it->path().filename().string();
      const auto dot = name.find('.');
      if (dot != 8 || name.size() < 10) continue;
      if (name.find_first_not_of("0123456789abcdef") < 8) continue;
      if (name.find_first_not_of("0123456789", 9) != std::string::npos) continue;
      return dirs;
    }
  }
  return std::nullopt;
}

std::shared_ptr<ssl::context> make_client_tls_context(const transport_options& options,
                                                      error_info* why) {
  auto fail = [why](errc code, std::string text) -> std::shared_ptr<ssl::context> {
    if (why != nullptr) *why = make_error(code, "setting up TLS", std::move(text));
    return nullptr;
  };
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
    return fail(errc::tls_error, "TLS 1.2 cannot be required");
  }
  context->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (auto dir = hashed_system_certificate_dir()) {
    // Looked up one issuer at a time, when a verification asks for it. Loading the system
    // bundle file instead parses every CA it holds (some 140) for each context: tens of
    // milliseconds of CPU per process before the first byte is sent.
    if (SSL_CTX_load_verify_dir(context->native_handle(), dir->c_str()) != 1) {
      return fail(errc::tls_error, "the system certificate directory " + *dir + " cannot be used");
    }
  } else {
    context->set_default_verify_paths(ec);
    if (ec)
      return fail(errc::tls_error, "the system certificate store cannot be used: " + ec.message());
  }
  if (!options.ca_file.empty()) {
    std::ifstream probe(options.ca_file);
    if (!probe)
      return fail(errc::invalid_config, "the CA file '" + options.ca_file + "' cannot be read");
    context->load_verify_file(options.ca_file, ec);
    if (ec) {
      return fail(errc::invalid_config,
                  "the CA file '" + options.ca_file + "' holds no usable PEM certificate");
    }
  }
  return context;
}

std::shared_ptr<http_lane> http_lane::create(asio::any_io_executor executor, url origin,
                                             std::shared_ptr<ssl::context> tls,
                                             transport_options options,
                                             std::shared_ptr<cookie_jar> cookies) {
  return std::make_shared<lane_impl>(std::move(executor), std::move(origin), std::move(tls),
                                     std::move(options), std::move(cookies));
}

void async_http_request(asio::any_io_executor executor, std::shared_ptr<ssl::context> tls,
                        const transport_options& options, const url& target, http_request request,
                        std::chrono::milliseconds deadline, http_lane::handler done) {
  auto lane = http_lane::create(executor, target, std::move(tls), options, nullptr);
  request.target = target.target;
  // The exchange's own pending operations keep the lane alive; the completion holds it only
  // weakly, so an exchange abandoned with its io_context (a process that exits early) leaves
  // no reference cycle behind.
  lane->async_exchange(std::move(request), deadline,
                       [weak = std::weak_ptr<http_lane>(lane), done = std::move(done)](
                           error_info info, http_response response) {
                         if (auto held = weak.lock()) held->cancel();
                         done(std::move(info), std::move(response));
                       });
}

}  // namespace sfstream::transport
