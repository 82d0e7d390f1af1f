// The service in process against a real emulator: a connection whose sink keeps failing is
// marked failed and started again later, losing nothing; its status says so meanwhile.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "emulator/cometd/cometd_server.hpp"
#include "serve/service.hpp"
#include "support/emulator_fixture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace sfstream;
using namespace sfstream::serve;
using sfstream::testing::emulator_fixture;
using sfstream::testing::wait_until;

namespace {

std::size_t line_count(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

const connection_status* find(const service_status& s, const std::string& name) {
  for (const auto& c : s.connections) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a connection whose sink keeps failing is failed, restarted later and loses nothing") {
  emulator_fixture org;
  const fs::path dir =
      fs::temp_directory_path() / ("sfstream-service-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "pw") << "demo-pass";
  std::ofstream(dir / "token") << "DEMOTOKEN0000000000000";
  const fs::path out = dir / "later" / "out.jsonl";  // its directory does not exist yet
  const std::string text = "[service]\nstore = \"" + (dir / "positions.json").string() +
                           "\"\nthreads = 2\nlog_level = \"warning\"\n"
                           "[[connection]]\nname = \"acme\"\nrestart_backoff = 0.3\n"
                           "[connection.auth]\nlogin_url = \"" +
                           org.org().base_url() +
                           "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" +
                           (dir / "pw").string() + "\"\nsecurity_token_file = \"" +
                           (dir / "token").string() + "\"\n[connection.network]\nca_file = \"" +
                           org.org().ca_file() +
                           "\"\n[connection.on_failure]\naction = \"retry\"\nmax_retries = 1\n"
                           "backoff_initial = 0.05\n[connection.sink]\ntype = \"file\"\npath = \"" +
                           out.string() +
                           "\"\n[[connection.channel]]\nname = \"/event/Order__e\"\nstart = -2\n"
                           // A disabled connection is listed, stopped, and never logs in.
                           "[[connection]]\nname = \"off\"\nenabled = false\n[connection.auth]\n"
                           "login_url = \"http://127.0.0.1:9\"\nusername = \"u\"\npassword_file = \"" +
                           (dir / "pw").string() +
                           "\"\n[connection.sink]\ntype = \"stdout\"\n"
                           "[[connection.channel]]\nname = \"/u/x\"\n";
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "test.toml", problems);
  for (const auto& p : problems) INFO(p.to_string());
  REQUIRE(config.has_value());
  for (int i = 0; i < 3; ++i) {
    org.call([i](auto& o) {
      return o.cometd().publish_raw("/event/Order__e", "{\"event\":{\"replayId\":{{replayId}}},"
                                                       "\"payload\":{\"n\":" +
                                                           std::to_string(i) + "}}");
    });
  }
  {
    service svc(std::move(*config));
    REQUIRE_FALSE(svc.start());
    // The sink fails, the policy's one retry fails too: the run ends, the connection is failed
    // with the sink's error and waits to start again.
    REQUIRE(wait_until(
        [&] {
          const auto s = svc.snapshot();
          const auto* c = find(s, "acme");
          return c && c->state == connection_state::failed && c->last_error &&
                 c->last_error->find("later/out.jsonl") != std::string::npos;
        },
        15s));
    CHECK_FALSE(fs::exists(out));
    {
      const auto s = svc.snapshot();
      REQUIRE(find(s, "off") != nullptr);
      CHECK(find(s, "off")->state == connection_state::stopped);
      CHECK_FALSE(find(s, "off")->last_error.has_value());
    }
    fs::create_directories(out.parent_path());
    REQUIRE(wait_until([&] { return line_count(out) == 3; }, 20s));
    REQUIRE(wait_until(
        [&] {
          const auto s = svc.snapshot();
          const auto* c = find(s, "acme");
          return c && c->state == connection_state::streaming && c->channels.size() == 1 &&
                 c->channels[0].committed_replay_id == 3;
        },
        15s));
    svc.stop();
    svc.wait();
    const auto s = svc.snapshot();
    CHECK(s.stopping);
    REQUIRE(find(s, "acme") != nullptr);
    CHECK(find(s, "acme")->state == connection_state::stopped);
  }
  CHECK(line_count(out) == 3);  // nothing twice
  std::error_code ec;
  fs::remove_all(dir, ec);
}
