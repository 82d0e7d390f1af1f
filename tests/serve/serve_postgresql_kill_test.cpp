// `sfstream serve` (the real command) with its store and sink in PostgreSQL, killed with
// SIGKILL at varied moments while a numbered publisher runs, restarted each time: the events
// table ends with every published event exactly once and the positions equal its newest rows.
#include <doctest/doctest.h>

#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin_support.hpp"
#include "emulator/cometd/cometd_server.hpp"
#include "postgresql/database.hpp"
#include "postgresql/schema.hpp"
#include "support/child_process.hpp"
#include "support/emulator_fixture.hpp"
#include "support/postgres_session.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sfstream::testing::emulator_fixture;
using sfstream::testing::open_session;
using sfstream::testing::postgres_server;
using sfstream::testing::wait_until;
namespace pg = sfstream::postgresql;

namespace {

const std::vector<std::string> kill_channels{"/event/Order__e", "/u/Notices"};

std::unique_ptr<sfstream::testing::child_process> serve(const fs::path& config,
                                                        const fs::path& log) {
  return std::make_unique<sfstream::testing::child_process>(
      std::vector<std::string>{SFSTREAM_CLI_PATH, "serve", "--config", config.string()},
      sfstream::testing::child_process::environment{}, fs::path(log.string() + ".out"), log);
}

using row_set = std::multiset<std::pair<std::string, std::int64_t>>;

row_set table_rows(pg::session& s) {
  pg::result r;
  REQUIRE_FALSE(s.exec("SELECT channel, replay_id FROM sfstream.events WHERE connection = "
                       "'acme'",
                       {}, &r));
  row_set out;
  for (int i = 0; i < r.rows(); ++i) out.emplace(std::string(r.text(i, 0)), r.integer(i, 1));
  return out;
}

}  // namespace

TEST_CASE("serve with a PostgreSQL store and sink, killed with SIGKILL again and again while "
          "events are published, stores every event exactly once" *
          doctest::test_suite("heavy")) {
  postgres_server db;
  emulator_fixture org;
  admin_test::temp_dir dir;
  const auto pw = dir.write("pw", "demo-pass");
  const auto token = dir.write("token", "DEMOTOKEN0000000000000");
  const auto dbpw = dir.write("dbpw", db.password());
  std::string config = "[service]\nstore = \"" + db.conninfo() + "\"\nstore_password_file = \"" +
                       dbpw.string() +
                       "\"\nthreads = 2\nsink_threads = 2\nlog_format = \"json\"\n"
                       "replica = \"kill-test\"\nlease_ttl = 1\n"
                       "[[connection]]\nname = \"acme\"\nrestart_backoff = 0.2\n"
                       "[connection.auth]\nlogin_url = \"" +
                       org.org().base_url() +
                       "\"\nusername = \"demo@sfstream.local\"\npassword_file = \"" + pw.string() +
                       "\"\nsecurity_token_file = \"" + token.string() +
                       "\"\n[connection.network]\nca_file = \"" + org.org().ca_file() +
                       "\"\n[connection.on_failure]\nbackoff_initial = 0.05\nbackoff_max = 0.2\n"
                       "[connection.sink]\ntype = \"postgresql\"\nnotify = \"sf_events\"\n";
  for (const auto& ch : kill_channels)
    config += "[[connection.channel]]\nname = \"" + ch + "\"\nstart = -2\n";
  const auto config_file = dir.write("serve.toml", config);

  // The publisher: numbered events on both channels, every few milliseconds, until told.
  std::mutex mutex;
  row_set published;
  std::atomic<bool> publishing{true};
  std::thread publisher([&] {
    for (int n = 0; publishing && n < 20'000; ++n) {
      const std::string& ch = kill_channels[static_cast<std::size_t>(n) % kill_channels.size()];
      const auto id = org.call([&](auto& o) {
        return o.cometd().publish_raw(ch, "{\"event\":{\"replayId\":{{replayId}}},\"payload\":"
                                          "{\"n\":" + std::to_string(n) + "}}");
      });
      {
        std::lock_guard lock{mutex};
        published.emplace(ch, id);
      }
      std::this_thread::sleep_for(3ms);
    }
  });

  auto s = open_session(db);
  // The tables exist from the start, whether or not the first run lives long enough to make them.
  REQUIRE_FALSE(pg::migrate(*s, pg::tables{}));
  std::vector<fs::path> logs;
  // Killed at varied moments: while starting, logging in, subscribing, streaming.
  const std::chrono::milliseconds moments[] = {30ms,  120ms, 250ms, 400ms, 600ms, 90ms,
                                               800ms, 350ms, 1000ms, 180ms, 500ms, 700ms};
  std::size_t kills = 0;
  std::vector<std::size_t> counts;
  const auto started = std::chrono::steady_clock::now();
  for (const auto moment : moments) {
    logs.push_back(dir.path / ("serve-" + std::to_string(logs.size()) + ".log"));
    auto svc = serve(config_file, logs.back());
    std::this_thread::sleep_for(moment);
    svc->kill(SIGKILL);
    CHECK(svc->wait(10s) == -SIGKILL);
    ++kills;
    counts.push_back(table_rows(*s).size());
  }
  CHECK(kills >= 10);
  // Several runs were killed while streaming: they had stored events the run before had not.
  std::size_t streaming_kills = 0;
  for (std::size_t i = 1; i < counts.size(); ++i) streaming_kills += counts[i] > counts[i - 1];
  MESSAGE("rows after each kill: " << [&] {
    std::string t;
    for (auto n : counts) t += std::to_string(n) + " ";
    return t;
  }());
  CHECK(streaming_kills >= 5);
  const std::size_t before_final = table_rows(*s).size();
  publishing = false;
  publisher.join();
  row_set want;
  {
    std::lock_guard lock{mutex};
    want = published;
  }
  INFO("published " << want.size() << ", rows after the kills " << before_final);
  CHECK(before_final > 0);  // the killed runs did store events

  // A last run takes everything in; SIGTERM drains it.
  logs.push_back(dir.path / "serve-final.log");
  auto svc = serve(config_file, logs.back());
  REQUIRE(wait_until([&] { return table_rows(*s).size() >= want.size(); }, 30s));
  std::this_thread::sleep_for(300ms);
  svc->kill(SIGTERM);
  CHECK(svc->wait(20s) == 0);
  CHECK(std::chrono::steady_clock::now() - started < 90s);

  // Exactly once: the table's rows are the published events, each one time.
  const row_set rows = table_rows(*s);
  CHECK(rows.size() == want.size());
  CHECK(rows == want);
  // The positions are the newest row of each channel.
  pg::result r;
  REQUIRE_FALSE(s->exec("SELECT p.replay_key, p.replay_id, (SELECT max(replay_id) FROM "
                        "sfstream.events e WHERE e.connection = p.connection AND e.channel = "
                        "p.replay_key) FROM sfstream.positions p WHERE p.connection = 'acme'",
                        {}, &r));
  CHECK(r.rows() == static_cast<int>(kill_channels.size()));
  for (int i = 0; i < r.rows(); ++i) {
    CAPTURE(r.text(i, 0));
    CHECK(r.text(i, 1) == r.text(i, 2));
  }
  for (const auto& log : logs) {
    const std::string text = sfstream::testing::read_whole_file(log);
    CHECK(text.find(db.password()) == std::string::npos);
    CHECK(text.find("demo-pass") == std::string::npos);
  }
}
