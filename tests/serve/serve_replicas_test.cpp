// Three real `sfstream serve` processes sharing twelve connections (twelve emulated orgs)
// through one PostgreSQL store and sink, while a numbered publisher runs on every org. Round
// after round one replica is killed with SIGKILL, another frozen with SIGSTOP past its lease
// and woken with SIGCONT, and the killed one started again. Proven from the database and the
// emulator: every connection is owned by exactly one live replica within a lease ttl and one
// renewal of each fault; the events table holds every published event exactly once; no
// replica ever wrote a position under a lease that was not the current one (a trigger the test
// installs compares each write's epoch with the lease's); and no org was streamed by two
// subscribers for longer than the takeover window.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
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
using steady = std::chrono::steady_clock;

namespace {

constexpr int orgs = 12;
constexpr int replicas = 3;
constexpr auto ttl = 2000ms;
constexpr auto renewal = ttl / 3;
const std::string channel = "/event/Order__e";

std::string org_name(int i) { return "org" + std::to_string(i); }
std::string replica_name(int r) { return "r" + std::to_string(r); }

// connection → owner of its unexpired lease.
std::map<std::string, std::string> owners(pg::session& s) {
  pg::result r;
  const auto e = s.exec("SELECT connection, owner FROM sfstream.leases WHERE owner IS NOT NULL "
                        "AND expires_at > now()",
                        {}, &r);
  REQUIRE_MESSAGE(!e, e.to_string());
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i) out[std::string(r.text(i, 0))] = std::string(r.text(i, 1));
  return out;
}

// True when every connection is owned by one of `live`, each of them holding at most `most`.
bool owned_by(const std::map<std::string, std::string>& o, const std::set<std::string>& live,
              std::size_t most = orgs) {
  if (o.size() != static_cast<std::size_t>(orgs)) return false;
  std::map<std::string, std::size_t> per;
  for (const auto& [c, r] : o) {
    if (!live.count(r)) return false;
    if (++per[r] > most) return false;
  }
  return true;
}

double ms(steady::duration d) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

TEST_CASE("three serve replicas share twelve orgs through PostgreSQL: SIGKILL, SIGSTOP past the lease and restarts lose nothing, duplicate nothing, and fence out every stale writer" *
          doctest::test_suite("heavy")) {
  postgres_server db;
  auto options = emulator_fixture::default_options();
  for (int i = 1; i < orgs; ++i) {
    auto o = sfstream::emulator::org_options::demo(org_name(i), i + 1);
    o.data = options.data;
    o.daily_event_limit = 0;
    options.more_orgs.push_back(std::move(o));
  }
  options.daily_event_limit = 0;
  emulator_fixture emu(options);
  admin_test::temp_dir dir;
  const auto pw = dir.write("pw", "demo-pass");
  const auto token = dir.write("token", "DEMOTOKEN0000000000000");
  const auto dbpw = dir.write("dbpw", db.password());

  // The tables, and the fence witness: every position write records its epoch next to the
  // epoch and owner of the connection's lease at that moment.
  auto s = open_session(db);
  REQUIRE_FALSE(pg::migrate(*s, pg::tables{}));
  REQUIRE_FALSE(s->exec(
      "CREATE TABLE position_writes (connection text, write_epoch bigint, lease_epoch bigint, "
      "lease_live boolean);"
      "CREATE FUNCTION witness() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "INSERT INTO position_writes SELECT NEW.connection, NEW.epoch, l.epoch, "
      "l.expires_at > now() FROM sfstream.leases l WHERE l.connection = NEW.connection; "
      "RETURN NEW; END $$;"
      "CREATE TRIGGER witness BEFORE INSERT OR UPDATE ON sfstream.positions FOR EACH ROW "
      "EXECUTE FUNCTION witness();"));

  std::vector<fs::path> configs;
  for (int r = 0; r < replicas; ++r) {
    std::string config =
        "[service]\nstore = \"" + db.conninfo() + "\"\nstore_password_file = \"" +
        dbpw.string() + "\"\nreplica = \"" + replica_name(r) +
        "\"\nlease_ttl = 2\nthreads = 2\nsink_threads = 2\nstore_pool = 4\n"
        "log_format = \"json\"\n";
    for (int i = 0; i < orgs; ++i) {
      const std::string user =
          i == 0 ? "demo@sfstream.local" : "demo@" + org_name(i) + ".sfstream.local";
      config += "[[connection]]\nname = \"" + org_name(i) +
                "\"\nrestart_backoff = 0.2\n[connection.auth]\nlogin_url = \"" +
                emu.org().login_url() + "\"\nusername = \"" + user + "\"\npassword_file = \"" +
                pw.string() + "\"\nsecurity_token_file = \"" + token.string() +
                "\"\n[connection.network]\nca_file = \"" + emu.org().ca_file() +
                "\"\n[connection.on_failure]\nbackoff_initial = 0.05\nbackoff_max = 0.2\n"
                "[connection.sink]\ntype = \"postgresql\"\n[[connection.channel]]\nname = \"" +
                channel + "\"\nstart = -2\n";
    }
    configs.push_back(dir.write("serve-" + replica_name(r) + ".toml", config));
  }
  std::vector<fs::path> logs;
  std::vector<std::unique_ptr<sfstream::testing::child_process>> procs(replicas);
  std::vector<std::size_t> last_log(replicas, 0);
  const auto launch = [&](int r) {
    last_log[r] = logs.size();
    logs.push_back(dir.path / ("serve-" + replica_name(r) + "-" + std::to_string(logs.size()) +
                               ".log"));
    procs[r] = std::make_unique<sfstream::testing::child_process>(
        std::vector<std::string>{SFSTREAM_CLI_PATH, "serve", "--config", configs[r].string()},
        sfstream::testing::child_process::environment{}, fs::path(logs.back().string() + ".out"),
        logs.back());
  };

  // The publisher: numbered platform events on every org in turn, until told.
  std::mutex mutex;
  std::multiset<std::pair<std::string, std::int64_t>> published;
  std::atomic<bool> publishing{true};
  std::thread publisher([&] {
    for (int n = 0; publishing && n < 100'000; ++n) {
      const int i = n % orgs;
      const auto id = emu.call([&](auto& o) {
        return o.org(static_cast<std::size_t>(i))
            .cometd()
            .publish_raw(channel, "{\"event\":{\"replayId\":{{replayId}}},\"payload\":{\"n\":" +
                                      std::to_string(n) + "}}");
      });
      {
        std::lock_guard lock{mutex};
        published.emplace(org_name(i), id);
      }
      std::this_thread::sleep_for(2ms);
    }
  });

  // The watcher of the orgs: how long each had two subscribers streaming at once.
  std::atomic<bool> watching{true};
  std::vector<steady::duration> longest_double(orgs, steady::duration::zero());
  std::vector<std::size_t> doubles(orgs, 0);
  std::atomic<std::size_t> streaming_samples{0};  // the watcher does see subscribers
  std::thread watcher([&] {
    std::vector<std::optional<steady::time_point>> since(orgs);
    for (int round = 0; watching && round < 20'000; ++round) {
      const auto active = emu.call([&](auto& o) {
        std::vector<std::size_t> n(orgs);
        for (int i = 0; i < orgs; ++i)
          n[i] = o.org(static_cast<std::size_t>(i)).cometd().active_clients(300ms);
        return n;
      });
      const auto now = steady::now();
      for (int i = 0; i < orgs; ++i) {
        if (active[i] >= 1) ++streaming_samples;
        if (active[i] >= 2) {
          if (!since[i]) {
            since[i] = now;
            ++doubles[i];
          }
          longest_double[i] = std::max(longest_double[i], now - *since[i]);
        } else {
          since[i].reset();
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  });

  for (int r = 0; r < replicas; ++r) launch(r);
  std::set<std::string> live{"r0", "r1", "r2"};
  const auto started = steady::now();
  REQUIRE(wait_until([&] { return owned_by(owners(*s), live, 4); }, 30s));
  MESSAGE("three replicas hold four connections each after "
          << ms(steady::now() - started) << " ms");

  std::vector<double> takeovers;  // ms from a fault until every connection had a live owner
  const auto until_owned = [&](const std::set<std::string>& by) {
    const auto t0 = steady::now();
    const bool ok = wait_until([&] { return owned_by(owners(*s), by); }, 15s);
    takeovers.push_back(ms(steady::now() - t0));
    return ok;
  };
  constexpr int rounds = 10;
  for (int round = 0; round < rounds; ++round) {
    const int killed = round % replicas;
    const int frozen = (round + 1) % replicas;
    CAPTURE(round);
    procs[killed]->kill(SIGKILL);
    const int code = procs[killed]->wait(10s);
    if (code != -SIGKILL) {
      // It had ended before it was killed: what it said last.
      const std::string text = sfstream::testing::read_whole_file(logs[last_log[killed]]);
      MESSAGE("replica " << replica_name(killed) << " ended with " << code << "; its log ends:\n"
                         << text.substr(text.size() > 4000 ? text.size() - 4000 : 0));
    }
    CHECK(code == -SIGKILL);
    live.erase(replica_name(killed));
    CHECK(until_owned(live));

    procs[frozen]->kill(SIGSTOP);
    live.erase(replica_name(frozen));
    CHECK(until_owned(live));  // the third replica alone
    procs[frozen]->kill(SIGCONT);
    live.insert(replica_name(frozen));
    launch(killed);
    live.insert(replica_name(killed));
    // The share evens out again: four each.
    CHECK(wait_until([&] { return owned_by(owners(*s), live, 4); }, 20s));
  }

  publishing = false;
  publisher.join();
  std::multiset<std::pair<std::string, std::int64_t>> want;
  {
    std::lock_guard lock{mutex};
    want = published;
  }
  const auto rows = [&] {
    pg::result r;
    REQUIRE_FALSE(s->exec("SELECT connection, replay_id FROM sfstream.events", {}, &r));
    std::multiset<std::pair<std::string, std::int64_t>> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace(std::string(r.text(i, 0)), r.integer(i, 1));
    return out;
  };
  CHECK(wait_until([&] { return rows().size() >= want.size(); }, 30s));
  watching = false;
  watcher.join();
  for (auto& p : procs) p->kill(SIGTERM);
  for (auto& p : procs) CHECK(p->wait(20s) == 0);

  // Every published event exactly once.
  const auto got = rows();
  CHECK(got.size() == want.size());
  CHECK(got == want);
  // No position was ever written under a lease that was not the current, unexpired one.
  pg::result r;
  REQUIRE_FALSE(s->exec("SELECT count(*), count(*) FILTER (WHERE write_epoch IS DISTINCT FROM "
                        "lease_epoch OR NOT lease_live) FROM position_writes",
                        {}, &r));
  const auto writes = r.integer(0, 0);
  CHECK(writes > 0);
  CHECK(r.integer(0, 1) == 0);
  // Takeovers: within a lease ttl and one renewal of the fault (plus the sampling step).
  std::sort(takeovers.begin(), takeovers.end());
  const double median = takeovers[takeovers.size() / 2];
  const double longest = takeovers.back();
  std::size_t double_spells = 0;
  steady::duration longest_spell{};
  std::uint64_t handshakes = 0;
  for (int i = 0; i < orgs; ++i) {
    double_spells += doubles[i];
    longest_spell = std::max(longest_spell, longest_double[i]);
  }
  const auto per_org = emu.call([&](auto& o) {
    std::string t;
    std::uint64_t total = 0;
    for (int i = 0; i < orgs; ++i) {
      const auto n = o.org(static_cast<std::size_t>(i)).cometd().handshake_count();
      total += n;
      t += std::to_string(n) + " ";
    }
    return std::make_pair(total, t);
  });
  handshakes = per_org.first;
  MESSAGE(rounds << " rounds (SIGKILL, SIGSTOP past the lease, SIGCONT, restart) in "
                 << ms(steady::now() - started) << " ms; takeovers " << takeovers.size()
                 << ": median " << median << " ms, max " << longest << " ms (lease ttl "
                 << ms(ttl) << " ms, renewal every " << ms(renewal) << " ms)");
  MESSAGE("events published " << want.size() << ", rows " << got.size()
                              << ", position writes " << writes << " all under the current lease");
  MESSAGE("handshakes " << handshakes << " (per org: " << per_org.second
                        << "); spells with two subscribers on one org " << double_spells
                        << ", longest " << ms(longest_spell) << " ms; samples of a streamed org "
                        << streaming_samples.load());
  CHECK(longest < ms(ttl + renewal) + 400.0);
  CHECK(longest_spell < ttl);
  CHECK(streaming_samples.load() > 1000);
  CHECK(steady::now() - started < 150s);
  for (const auto& log : logs) {
    const std::string text = sfstream::testing::read_whole_file(log);
    CHECK(text.find(db.password()) == std::string::npos);
  }
}
