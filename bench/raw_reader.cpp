// The ceiling reader: the least work a Bayeux long-polling client can do. It logs in with SOAP,
// handshakes, subscribes, and sends /meta/connect in a loop on one keep-alive connection,
// counting events by the occurrences of "replayId" in each reply without decoding the JSON. What
// it reaches is what the server (and the loopback network) can give: the benchmark's ceiling.
//
//   SF_PASSWORD=P SF_SECURITY_TOKEN=T bench_raw_reader --login-url URL [--ca-file PEM]
//                    --username U --channel CH [--replay -2] --count N [--latency]
//
// It prints one JSON line: the events, wall-clock microseconds (since the Unix epoch) of its start,
// of the first and of the last event, events per second between them, CPU milliseconds per 1,000
// events and peak RSS from getrusage, and with --latency the publish-to-receive latency of each
// event (its "SentAt__c" field, microseconds since the epoch) as p50, p99 and max.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "bench_raw_reader: %s\n", why.c_str());
  std::exit(1);
}

struct url_parts {
  bool tls = true;
  std::string host;
  std::string port;
};

url_parts parse_url(std::string_view url) {
  url_parts out;
  if (url.substr(0, 8) == "https://") {
    url.remove_prefix(8);
  } else if (url.substr(0, 7) == "http://") {
    out.tls = false;
    url.remove_prefix(7);
  } else {
    fail("the URL must start with http:// or https://");
  }
  url = url.substr(0, url.find('/'));
  const auto colon = url.rfind(':');
  out.host = std::string(url.substr(0, colon));
  out.port = colon == std::string_view::npos ? (out.tls ? "443" : "80")
                                             : std::string(url.substr(colon + 1));
  return out;
}

/// Text between `open` and the next `close` after it; empty when absent.
std::string_view between(std::string_view text, std::string_view open, std::string_view close) {
  const auto a = text.find(open);
  if (a == std::string_view::npos) return {};
  const auto b = text.find(close, a + open.size());
  if (b == std::string_view::npos) return {};
  return text.substr(a + open.size(), b - a - open.size());
}

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// One keep-alive HTTP/1.1 connection, plain or TLS, with a cookie jar of name=value pairs.
class connection {
 public:
  connection(const url_parts& url, const std::string& ca_file)
      : url_(url), tls_context_(asio::ssl::context::tls_client), plain_(io_) {
    tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(url.host, url.port);
    if (url.tls) {
      tls_context_.set_verify_mode(asio::ssl::verify_peer);
      tls_context_.set_default_verify_paths();
      if (!ca_file.empty()) tls_context_.load_verify_file(ca_file);
      tls_.emplace(io_, tls_context_);
      asio::connect(tls_->next_layer(), endpoints);
      tls_->set_verify_callback(asio::ssl::host_name_verification(url.host));
      tls_->handshake(asio::ssl::stream_base::client);
    } else {
      asio::connect(plain_, endpoints);
    }
  }

  /// POSTs `body` and returns the response body (the buffer is reused across calls).
  const std::string& post(const std::string& target, std::string body, std::string_view type,
                          const std::string& authorization, const char* soap_action = nullptr) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, url_.host + ":" + url_.port);
    req.set(http::field::content_type, type);
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    if (soap_action != nullptr) req.set("SOAPAction", soap_action);
    std::string cookies;
    for (const auto& [name, value] : jar_) {
      if (!cookies.empty()) cookies += "; ";
      cookies += name + "=" + value;
    }
    if (!cookies.empty()) req.set(http::field::cookie, cookies);
    req.body() = std::move(body);
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    if (tls_) {
      http::write(*tls_, req);
      http::read(*tls_, buffer_, parser);
    } else {
      http::write(plain_, req);
      http::read(plain_, buffer_, parser);
    }
    auto& res = parser.get();
    for (const auto& field : res) {
      if (field.name() != http::field::set_cookie) continue;
      std::string_view v = field.value();
      v = v.substr(0, v.find(';'));
      const auto eq = v.find('=');
      if (eq != std::string_view::npos) jar_[std::string(v.substr(0, eq))] = v.substr(eq + 1);
    }
    status_ = res.result_int();
    body_ = std::move(res.body());
    return body_;
  }

  unsigned status() const noexcept { return status_; }

 private:
  url_parts url_;
  asio::io_context io_;
  asio::ssl::context tls_context_;
  tcp::socket plain_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
  std::map<std::string, std::string> jar_;
  std::string body_;
  unsigned status_ = 0;
};

double ms(const timeval& t) {
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
}

std::int64_t percentile(std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t start_us = now_us();
  std::map<std::string, std::string> opt{{"--replay", "-2"}, {"--api-version", "64.0"}};
  bool latency = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--latency") {
      latency = true;
    } else if (i + 1 < argc && a.rfind("--", 0) == 0) {
      opt[a] = argv[++i];
    } else {
      fail("unexpected argument '" + a + "'");
    }
  }
  // Secrets come from the environment (SF_PASSWORD, SF_SECURITY_TOKEN) unless given.
  for (const auto& [flag, var] : {std::pair{"--password", "SF_PASSWORD"},
                                  std::pair{"--security-token", "SF_SECURITY_TOKEN"}}) {
    if (const char* v = std::getenv(var); opt[flag].empty() && v != nullptr) opt[flag] = v;
  }
  for (const char* required : {"--login-url", "--username", "--password", "--channel", "--count"}) {
    if (opt[required].empty()) fail(std::string("give ") + required);
  }
  const std::size_t count = std::strtoull(opt["--count"].c_str(), nullptr, 10);
  const std::string& channel = opt["--channel"];

  try {
    const url_parts login = parse_url(opt["--login-url"]);
    connection conn(login, opt["--ca-file"]);
    const std::string envelope =
        R"(<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" )"
        R"(xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">)"
        R"(<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>)" +
        xml_escape(opt["--username"]) + "</n1:username><n1:password>" +
        xml_escape(opt["--password"] + opt["--security-token"]) +
        "</n1:password></n1:login></env:Body></env:Envelope>";
    const std::string soap = conn.post("/services/Soap/u/" + opt["--api-version"], envelope,
                                       "text/xml; charset=UTF-8", {}, "login");
    const std::string session(between(soap, "<sessionId>", "</sessionId>"));
    if (conn.status() != 200 || session.empty()) fail("the SOAP login failed");
    const std::string auth = "Bearer " + session;
    const std::string path = "/cometd/" + opt["--api-version"];
    const std::string_view json = "application/json;charset=UTF-8";

    const std::string& hs =
        conn.post(path,
                  R"([{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0",)"
                  R"("supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}])",
                  json, auth);
    const std::string client_id(between(hs, "\"clientId\":\"", "\""));
    if (client_id.empty()) fail("the handshake failed: " + hs);
    const std::string& sub =
        conn.post(path,
                  R"([{"channel":"/meta/subscribe","clientId":")" + client_id +
                      R"(","subscription":")" + channel + R"(","ext":{"replay":{")" + channel +
                      R"(":)" + opt["--replay"] + R"(}},"id":"2"}])",
                  json, auth);
    if (sub.find("\"successful\":true") == std::string::npos) fail("the subscribe failed: " + sub);

    std::size_t received = 0;
    std::int64_t first_us = 0;
    std::int64_t last_us = 0;
    std::vector<std::int64_t> latencies;
    if (latency) latencies.reserve(count);
    constexpr std::string_view marker = "\"replayId\"";
    constexpr std::string_view sent_marker = "\"SentAt__c\":\"";
    for (std::uint64_t id = 3; received < count; ++id) {
      const std::string advice = id == 3 ? R"(,"advice":{"timeout":0})" : "";
      const std::string& reply = conn.post(path,
                                           R"([{"channel":"/meta/connect","clientId":")" +
                                               client_id + R"(","connectionType":"long-polling")" +
                                               advice + R"(,"id":")" + std::to_string(id) + "\"}]",
                                           json, auth);
      const std::int64_t at = now_us();
      if (conn.status() != 200) fail("a connect failed with HTTP " + std::to_string(conn.status()));
      std::size_t n = 0;
      for (auto p = reply.find(marker); p != std::string::npos; p = reply.find(marker, p + 1)) ++n;
      if (latency) {
        for (auto p = reply.find(sent_marker); p != std::string::npos;
             p = reply.find(sent_marker, p + 1)) {
          latencies.push_back(at -
                              std::strtoll(reply.c_str() + p + sent_marker.size(), nullptr, 10));
        }
      }
      if (n != 0) {
        if (received == 0) first_us = at;
        received += n;
        last_us = at;
      } else if (reply.find("\"successful\":true") == std::string::npos) {
        fail("a connect was refused: " + reply);
      }
    }

    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double cpu = ms(usage.ru_utime) + ms(usage.ru_stime);
    const double seconds = static_cast<double>(last_us - first_us) / 1e6;
    std::sort(latencies.begin(), latencies.end());
    std::printf(
        "{\"client\":\"raw\",\"events\":%zu,\"start_us\":%lld,\"first_us\":%lld,\"last_us\":%lld,"
        "\"events_per_s\":%.0f,\"cpu_ms_per_1000\":%.2f,\"peak_rss_mib\":%.1f",
        received, static_cast<long long>(start_us), static_cast<long long>(first_us),
        static_cast<long long>(last_us),
        seconds > 0 ? static_cast<double>(received) / seconds : 0.0,
        cpu * 1000.0 / static_cast<double>(received),
        static_cast<double>(usage.ru_maxrss) / 1024.0);
    if (latency) {
      std::printf(",\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"max\":%lld}",
                  static_cast<long long>(percentile(latencies, 0.50)),
                  static_cast<long long>(percentile(latencies, 0.99)),
                  static_cast<long long>(latencies.empty() ? 0 : latencies.back()));
    }
    std::printf("}\n");
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return 0;
}
