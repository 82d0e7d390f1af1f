// The admin listener over a real socket: health, readiness, status, metrics, keep-alive,
// bounded requests, and a real Prometheus server scraping it.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <mutex>
#include <thread>

#include "serve/admin_server.hpp"
#include "serve/metrics.hpp"
#include "tests/serve/admin_support.hpp"

extern char** environ;

using namespace sfstream::serve;
using namespace admin_test;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

namespace {

/// An admin server on its own pool, serving a snapshot the test can change.
struct admin_fixture {
  boost::asio::thread_pool pool{1};
  std::mutex mutex;
  service_status status = sample_status();
  std::atomic<int> snapshots{0};
  std::atomic<bool> fail{false};
  std::unique_ptr<admin_server> server;

  explicit admin_fixture(admin_options options = {}) {
    server = std::make_unique<admin_server>(pool.get_executor(), options, [this] {
      ++snapshots;
      if (fail) throw std::runtime_error("snapshot failed");
      std::lock_guard lock(mutex);
      return status;
    });
    const auto error = server->listen();
    REQUIRE_MESSAGE(!error, error.to_string());
    REQUIRE(server->port() != 0);
  }
  ~admin_fixture() {
    server->stop();
    pool.join();
  }
  void set_state(std::size_t i, connection_state state) {
    std::lock_guard lock(mutex);
    status.connections[i].state = state;
  }
};

}  // namespace

TEST_CASE("admin: /healthz, /readyz, /status and /metrics on one kept-alive connection") {
  admin_fixture f;
  http_client c(f.server->port());

  auto health = c.get("/healthz");
  CHECK(health.result_int() == 200);
  CHECK(health.body() == "ok\n");
  CHECK(f.snapshots == 0);  // liveness does not depend on the service's locks

  auto ready = c.get("/readyz");
  CHECK(ready.result_int() == 503);
  CHECK(ready.body() == "not ready:\nwe\"st\\org\n2\n");
  f.set_state(1, connection_state::stopped);
  ready = c.get("/readyz?verbose=1");
  CHECK(ready.result_int() == 200);
  CHECK(ready.body() == "ready\n");

  auto status = c.get("/status");
  CHECK(status.result_int() == 200);
  CHECK(status[http::field::content_type] == "application/json");
  rapidjson::Document doc;
  doc.Parse(status.body().data(), status.body().size());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(doc["connections"].Size() == 2);
  CHECK(doc["ready"].GetBool());

  auto metrics = c.get("/metrics");
  CHECK(metrics.result_int() == 200);
  CHECK(metrics[http::field::content_type] == metrics_content_type);
  {
    std::lock_guard lock(f.mutex);
    CHECK(metrics.body() == render_metrics(f.status));
  }
  CHECK(metrics.keep_alive());

  auto head = c.request(http::verb::head, "/metrics");
  CHECK(head.result_int() == 200);
  CHECK(head.body().empty());
  CHECK(std::stoul(std::string(head[http::field::content_length])) == metrics.body().size());

  CHECK(c.get("/nothing").result_int() == 404);
  CHECK(c.get("/").result_int() == 404);
  auto post = c.request(http::verb::post, "/metrics", "x=1");
  CHECK(post.result_int() == 405);
  CHECK(post[http::field::allow] == "GET, HEAD");
  // Still the same connection after all of that.
  CHECK(c.get("/healthz").result_int() == 200);
}

TEST_CASE("admin: a snapshot that throws is a 500, and the listener goes on") {
  admin_fixture f;
  http_client c(f.server->port());
  f.fail = true;
  CHECK(c.get("/metrics").result_int() == 500);
  CHECK(c.get("/readyz").result_int() == 500);
  CHECK(c.get("/healthz").result_int() == 200);
  f.fail = false;
  CHECK(c.get("/status").result_int() == 200);
}

TEST_CASE("admin: an oversized request is refused with 431 or 413 and the connection closed") {
  admin_options options;
  options.max_request_bytes = 1024;
  admin_fixture f(options);
  {
    http_client c(f.server->port());
    auto r = c.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') +
                   "\r\n\r\n");
    CHECK(r.result_int() == 431);
    CHECK(c.closed_by_server());
  }
  {
    http_client c(f.server->port());
    auto r = c.raw("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                   std::string(5000, 'b'));
    CHECK(r.result_int() == 413);
    CHECK(c.closed_by_server());
  }
  {
    http_client c(f.server->port());
    auto r = c.raw("NOT HTTP AT ALL\r\n\r\n");
    CHECK(r.result_int() == 400);
    CHECK(c.closed_by_server());
  }
  // The listener is still fine.
  http_client c(f.server->port());
  CHECK(c.get("/healthz").result_int() == 200);
}

TEST_CASE("admin: Connection close is honoured, and stop() closes kept connections") {
  admin_fixture f;
  {
    http_client c(f.server->port());
    auto r = c.request(http::verb::get, "/healthz", {}, false);
    CHECK(r.result_int() == 200);
    CHECK_FALSE(r.keep_alive());
    CHECK(c.closed_by_server());
  }
  http_client kept(f.server->port());
  CHECK(kept.get("/healthz").result_int() == 200);
  f.server->stop();
  CHECK(kept.closed_by_server());
}

TEST_CASE("admin: a port in use and a bad address are clear errors") {
  admin_fixture f;
  boost::asio::thread_pool pool{1};
  admin_options busy;
  busy.port = f.server->port();
  admin_server second(pool.get_executor(), busy, [] { return service_status{}; });
  const auto error = second.listen();
  CHECK(error.code == sfstream::make_error_code(sfstream::errc::connection_failed));
  CHECK(error.to_string().find(std::to_string(busy.port)) != std::string::npos);
  admin_options bad;
  bad.address = "localhost:80";
  admin_server third(pool.get_executor(), bad, [] { return service_status{}; });
  CHECK(third.listen().code == sfstream::make_error_code(sfstream::errc::invalid_config));
  second.stop();
  third.stop();
  pool.join();
}

TEST_CASE("admin: many connections at once are each answered, beyond the cap closed"
          * doctest::timeout(60)) {
  admin_options options;
  options.max_connections = 4;
  admin_fixture f(options);
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<http_client>(f.server->port()));
    CHECK(clients.back()->get("/healthz").result_int() == 200);
  }
  http_client extra(f.server->port());
  CHECK(extra.closed_by_server());
  clients.pop_back();  // one leaves: a new one is served again
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    try {
      http_client again(f.server->port());
      served = again.get("/healthz").result_int() == 200;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(20ms);
    }
  }
  CHECK(served);
}

TEST_CASE("admin: promtool accepts what /metrics serves") {
  const auto promtool = find_program("promtool");
  REQUIRE_MESSAGE(!promtool.empty(),
                  "promtool is missing: install the Debian package prometheus (scripts/setup.sh)");
  admin_fixture f;
  http_client c(f.server->port());
  temp_dir dir;
  const auto file = dir.write("scraped.prom", c.get("/metrics").body());
  const auto result = run_command("'" + promtool + "' check metrics < '" + file.string() + "'");
  CAPTURE(result.output);
  CHECK(result.exit_code == 0);
  CHECK(result.output.empty());
}

namespace {

/// A free TCP port on 127.0.0.1 (bound, read, released).
std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("admin: a real Prometheus server scrapes /metrics and sees the target up" *
          doctest::test_suite("heavy") * doctest::timeout(120)) {
  const auto prometheus = find_program("prometheus");
  REQUIRE_MESSAGE(!prometheus.empty(),
                  "prometheus is missing: install the Debian package prometheus (scripts/setup.sh)");
  admin_fixture f;
  temp_dir dir;
  const auto web_port = free_port();
  const auto config = dir.write(
      "prometheus.yml", "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                        "scrape_configs:\n  - job_name: sfstream\n    static_configs:\n"
                        "      - targets: ['127.0.0.1:" +
                            std::to_string(f.server->port()) + "']\n");
  std::vector<std::string> args = {prometheus,
                                   "--config.file=" + config.string(),
                                   "--storage.tsdb.path=" + (dir.path / "data").string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(web_port),
                                   "--log.level=warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto log = (dir.path / "prometheus.log").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, prometheus.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);

  // Ask Prometheus itself until it has scraped us: the up series and one of our counters.
  bool up = false;
  bool ours = false;
  std::string last;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while ((!up || !ours) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(250ms);
    try {
      http_client api(web_port);
      last = api.get("/api/v1/query?query=up%7Bjob%3D%22sfstream%22%7D").body();
      up = last.find("\"value\":[") != std::string::npos &&
           last.find("\"1\"]") != std::string::npos;
      const auto events =
          api.get("/api/v1/query?query=sfstream_received_events_total%7Bconnection%3D%22acme%22%7D")
              .body();
      ours = events.find("\"1234\"") != std::string::npos;
    } catch (const std::exception& e) {
      last = e.what();
    }
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  CAPTURE(last);
  CHECK(up);
  CHECK(ours);
  CHECK(f.snapshots > 0);
}
