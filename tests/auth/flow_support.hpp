// Helpers for the credentials flow tests: a loopback HTTPS server whose test-local handler
// plays the Salesforce login server, bounded io_context driving, form decoding.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "emulator/net/http_server.hpp"
#include "sfstream/credentials.hpp"
#include "src/transport/http_types.hpp"

namespace auth_flow {

namespace net = sfstream::emulator::net;
namespace transport = sfstream::transport;
using namespace std::chrono_literals;

/// Runs `io` until `done()` holds or `limit` passes.
template <class Predicate>
bool run_until(boost::asio::io_context& io, Predicate done, std::chrono::milliseconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_for(20ms);
  }
  return done();
}

/// Decodes an application/x-www-form-urlencoded body ('+' and %XX).
inline std::map<std::string, std::string> decode_form(const std::string& body) {
  auto decode = [](std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out += ' ';
      } else if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  std::map<std::string, std::string> fields;
  std::string_view rest = body;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    fields[decode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1));
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return fields;
}

inline transport::http_response reply(unsigned status, std::string content_type, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : status == 500 ? "Server Error" : "Bad Request";
  r.headers.emplace_back("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

/// The result of one async_token call.
struct token_outcome {
  sfstream::error_info error;
  sfstream::access_token token;
  int calls = 0;
};

/// A TLS loopback login server answering with `handler`, recording every request.
class login_server {
 public:
  /// Answers one request; `base_url` is the server's own "https://127.0.0.1:PORT".
  using handler_type = std::function<transport::http_response(
      const transport::http_request& request, const std::string& base_url)>;

  explicit login_server(handler_type handler, bool tls = true) : handler_(std::move(handler)) {
    net::server_options options;
    if (tls) {
      certs_ = net::make_certificates();
      options.tls = net::server_tls{certs_.certificate_pem, certs_.private_key_pem};
      std::random_device rd;
      ca_path_ = std::filesystem::temp_directory_path() /
                 ("sfstream-auth-ca-" + std::to_string(rd()) + ".pem");
      std::ofstream(ca_path_) << certs_.ca_certificate_pem;
    }
    server_ = std::make_unique<net::http_server>(
        io.get_executor(), options, [this](std::shared_ptr<net::exchange> ex) {
          requests.push_back(ex->request());
          ex->respond(handler_(ex->request(), server_->base_url()));
        });
  }
  ~login_server() {
    server_->stop();
    if (!ca_path_.empty()) std::filesystem::remove(ca_path_);
  }

  std::string base_url() const { return server_->base_url(); }

  sfstream::network_options network() const {
    sfstream::network_options n;
    n.ca_file = ca_path_.string();
    n.proxy_from_environment = false;
    n.request_timeout = 10s;
    return n;
  }

  /// Asks `provider` for a token and runs the loop until the handler ran.
  token_outcome get(sfstream::credentials_provider& provider, bool force_refresh = false) {
    auto out = std::make_shared<token_outcome>();
    provider.async_token(force_refresh, [out](sfstream::error_info e, sfstream::access_token t) {
      out->error = std::move(e);
      out->token = std::move(t);
      ++out->calls;
    });
    REQUIRE(run_until(io, [&] { return out->calls > 0; }));
    return *out;
  }

  boost::asio::io_context io;
  std::vector<transport::http_request> requests;

 private:
  handler_type handler_;
  net::certificate_set certs_;
  std::filesystem::path ca_path_;
  std::unique_ptr<net::http_server> server_;
};

}  // namespace auth_flow
