// The fault matrix: a publisher sends a numbered sequence continuously on three channels while
// the client streams them, and one fault is injected where it hurts, in two ways:
//   in flight    the next /meta/connect reply that carries events is spoiled (its events count
//                as sent, as on Salesforce: only a re-subscribe by replay id gets them back);
//   uncommitted  the same, while a slow handler still holds received events it has not
//                committed (a re-subscribe from the committed id would repeat or lose them).
// Channels: /event/Fault_A__e and /topic/FaultAccounts subscribed at -2, /u/faults subscribed at
// -1 with nothing published on it until the fault is armed (so it has no received id when the
// fault hits). The assertion is exact per channel: each published number delivered once and in
// order, or, for what is missing, a gap record that names it (a resubscribed_at_tip record whose
// since..until covers the event's publication); a refused replay id may restart the sequence
// only after its gap record. One table line per run is printed for the record.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "emulator/cometd/cometd_server.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using reply_fault = sfstream::emulator::fault;
using reply_fault_kind = sfstream::emulator::fault_kind;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;
using system_time = std::chrono::system_clock::time_point;

const std::string event_channel = "/event/Fault_A__e";
const std::string topic_channel = "/topic/FaultAccounts";
const std::string generic_channel = "/u/faults";
const std::vector<std::string> channels = {event_channel, topic_channel, generic_channel};

constexpr int before_fault = 10;  // numbers published on the -2 channels before the fault
constexpr int after_fault =
    30;  // numbers published at least on every channel once the fault is armed

/// The number an event carries: its text holds "#<n>#".
std::optional<int> number_of(const sfstream::event& e) {
  const std::string text(e.json());
  const auto at = text.find('#');
  if (at == std::string::npos) return std::nullopt;
  const auto end = text.find('#', at + 1);
  if (end == std::string::npos) return std::nullopt;
  try {
    return std::stoi(text.substr(at + 1, end - at - 1));
  } catch (...) {
    return std::nullopt;
  }
}

/// What one channel saw, in the order the callbacks ran: event numbers and gap records.
struct channel_log {
  struct entry {
    std::optional<int> number;                // an event
    std::optional<sfstream::gap_record> gap;  // or a gap record
  };
  std::vector<entry> entries;
  std::vector<std::int64_t> replay_ids;  // of the events, in order
};

struct recorder {
  mutable std::mutex mutex;
  std::map<std::string, channel_log> logs;
  std::map<std::string, int> subscribed;
  std::vector<std::string> rejections;
  std::chrono::milliseconds handler_delay{0};
  std::atomic<int> handled{0};

  sfstream::subscription_callbacks callbacks(const std::string& channel) {
    sfstream::subscription_callbacks c;
    c.on_event = [this, channel](const sfstream::event& e) {
      if (handler_delay.count() > 0) {
        // The first event holds its handler longer, so that the events behind it queue up.
        const bool first = handled.fetch_add(1) == 0;
        std::this_thread::sleep_for(first ? 20 * handler_delay : handler_delay);
      }
      std::lock_guard lock{mutex};
      auto& log = logs[channel];
      log.entries.push_back({number_of(e), std::nullopt});
      log.replay_ids.push_back(e.replay_id().value_or(-100));
    };
    c.on_gap = [this, channel](const sfstream::gap_record& g) {
      std::lock_guard lock{mutex};
      logs[channel].entries.push_back({std::nullopt, g});
    };
    c.on_subscribed = [this, channel](std::int64_t) {
      std::lock_guard lock{mutex};
      ++subscribed[channel];
    };
    c.on_rejected = [this, channel](const sfstream::error_info& e) {
      std::lock_guard lock{mutex};
      rejections.push_back(channel + ": " + e.diag.server_text);
    };
    return c;
  }
  std::size_t distinct(const std::string& channel) const {
    std::lock_guard lock{mutex};
    std::set<int> seen;
    auto it = logs.find(channel);
    if (it == logs.end()) return 0;
    for (const auto& e : it->second.entries)
      if (e.number) seen.insert(*e.number);
    return seen.size();
  }
  std::size_t entries() const {
    std::lock_guard lock{mutex};
    std::size_t n = 0;
    for (const auto& [name, log] : logs) n += log.entries.size();
    return n;
  }
  channel_log of(const std::string& channel) const {
    std::lock_guard lock{mutex};
    auto it = logs.find(channel);
    return it == logs.end() ? channel_log{} : it->second;
  }
};

/// When each number of a channel was published: between `before` and `after`.
struct publication {
  system_time before;
  system_time after;
};

struct published_log {
  std::mutex mutex;
  std::map<std::string, std::map<int, publication>> at;
  std::map<int, publication> of(const std::string& channel) {
    std::lock_guard lock{mutex};
    return at[channel];
  }
};

sfstream::emulator::emulator_options org_options() {
  auto o = emulator_fixture::default_options();
  sfstream::emulator::data::platform_event_definition signal;
  signal.name = "Fault_A__e";
  signal.fields = {{"Message__c", "string", "", false}};
  o.data.platform_events = {signal};
  o.data.cdc_entities = {};
  return o;
}

/// The options every run shares: small backoffs, a long-poll deadline 300 ms past the
/// emulator's 1.5 s hold, a 256 KiB body limit.
sfstream::client_config client_options(emulator_fixture& org, io_thread& io) {
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  net.max_body_bytes = 256 * 1024;
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
  config.network = net;
  config.jitter_seed = 11;
  config.backoff_initial = 10ms;
  config.backoff_max = 50ms;
  config.limit_backoff_initial = 50ms;
  config.limit_backoff_max = 100ms;
  config.long_poll_slack = 300ms;
  config.disconnect_timeout = 200ms;
  return config;
}

/// Publishes number `n` on `channel` and notes when.
void publish(emulator_fixture& org, published_log& log, const std::string& channel, int n) {
  const auto tag = "#" + std::to_string(n) + "#";
  const auto before = std::chrono::system_clock::now();
  const bool ok = org.call([&](org_emulator& o) {
    if (channel == event_channel) {
      return static_cast<bool>(
          o.rest().publish_platform_event("Fault_A__e", "{\"Message__c\":\"A" + tag + "\"}"));
    }
    if (channel == topic_channel) {
      return static_cast<bool>(o.rest().create_record("Account", "{\"Name\":\"T" + tag + "\"}"));
    }
    return static_cast<bool>(o.rest().push_generic(generic_channel, "U" + tag));
  });
  const auto after = std::chrono::system_clock::now();
  REQUIRE(ok);
  std::lock_guard lock{log.mutex};
  log.at[channel][n] = {before, after};
}

/// One line of the table and whether the channel's truth holds.
struct verdict {
  int published = 0;
  int delivered = 0;  // callbacks run (duplicates included)
  int lost = 0;       // numbers never delivered
  int uncovered = 0;  // lost numbers no gap record names
  int duplicates = 0;
  int gaps = 0;
  int out_of_order = 0;  // a number not above the previous one with no gap record between
};

verdict judge(const channel_log& log, const std::map<int, publication>& published) {
  verdict v;
  v.published = static_cast<int>(published.size());
  std::multiset<int> seen;
  int previous = -1;  // the last number delivered since the start or a restart
  std::vector<sfstream::gap_record> tip_gaps;
  for (const auto& entry : log.entries) {
    if (entry.gap) {
      ++v.gaps;
      if (entry.gap->cause == sfstream::gap_cause::resubscribed_at_tip)
        tip_gaps.push_back(*entry.gap);
      // A refused or expired position restarts from the policy's fallback: the sequence may
      // begin again after the record.
      if (entry.gap->cause != sfstream::gap_cause::resubscribed_at_tip) previous = -1;
      continue;
    }
    if (!entry.number) continue;
    ++v.delivered;
    const int n = *entry.number;
    if (seen.count(n) != 0) ++v.duplicates;
    if (n <= previous) ++v.out_of_order;
    previous = n;
    seen.insert(n);
  }
  for (const auto& [n, when] : published) {
    if (seen.count(n) != 0) continue;
    ++v.lost;
    bool covered = false;
    for (const auto& g : tip_gaps) {
      if (g.since && g.until && *g.since <= when.after && when.before <= *g.until) covered = true;
    }
    if (!covered) ++v.uncovered;
  }
  return v;
}

enum class mode { in_flight, uncommitted };

struct fault_spec {
  std::string name;
  /// Arms the fault on the emulator thread.
  std::function<void(org_emulator&)> arm;
  /// Adjusts the client's configuration (e.g. a small queue).
  std::function<void(sfstream::client_config&)> configure;
  /// True when `arm` spoils the next reply that carries events (the run waits for it to fire).
  bool spoils_reply = true;
};

fault_spec reply_spec(std::string name, reply_fault fault) {
  fault_spec s;
  s.name = std::move(name);
  s.arm = [fault](org_emulator& o) { o.cometd().spoil_next_event_replies(fault, 1); };
  return s;
}

reply_fault kind(reply_fault_kind k, std::size_t bytes = 0, std::chrono::milliseconds delay = 0ms) {
  reply_fault f;
  f.kind = k;
  f.bytes = bytes;
  f.delay = delay;
  return f;
}

/// Runs one fault in one mode; checks the truth per channel and prints the table lines.
void run_matrix(const fault_spec& spec, mode how) {
  const std::string mode_name = how == mode::in_flight ? "in flight" : "uncommitted";
  CAPTURE(spec.name);
  CAPTURE(mode_name);
  emulator_fixture org{org_options()};
  REQUIRE(static_cast<bool>(org.call([](org_emulator& o) {
    sfstream::emulator::data::pushtopic_spec topic;
    topic.name = "FaultAccounts";
    topic.query = "SELECT Id, Name FROM Account";
    return o.rest().create_pushtopic(topic);
  })));
  REQUIRE(static_cast<bool>(org.call(
      [](org_emulator& o) { return o.rest().create_streaming_channel(generic_channel); })));

  io_thread io;
  io_thread handlers;
  recorder seen;
  if (how == mode::uncommitted) seen.handler_delay = 10ms;
  auto config = client_options(org, io);
  if (spec.configure) spec.configure(config);
  if (std::getenv("SFSTREAM_FAULT_MATRIX_LOG") != nullptr) {
    config.log.min_level = sfstream::log_level::debug;
    const auto start = std::chrono::steady_clock::now();
    config.log.sink = [start](sfstream::log_level, std::string_view text) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      std::fprintf(stderr, "%6lld ms %.*s\n", static_cast<long long>(ms.count()),
                   static_cast<int>(text.size()), text.data());
    };
  }
  auto client =
      std::make_unique<sfstream::client>(io.executor(), handlers.executor(), std::move(config));
  std::atomic<bool> done{false};
  REQUIRE_FALSE(
      client->subscribe(event_channel, sfstream::replay_all, seen.callbacks(event_channel)));
  REQUIRE_FALSE(
      client->subscribe(topic_channel, sfstream::replay_all, seen.callbacks(topic_channel)));
  REQUIRE_FALSE(
      client->subscribe(generic_channel, sfstream::replay_new, seen.callbacks(generic_channel)));
  client->async_run([&done](std::error_code) { done = true; });
  REQUIRE(wait_until([&] {
    std::lock_guard lock{seen.mutex};
    return seen.subscribed.size() == channels.size();
  }));

  published_log published;
  for (int n = 0; n < before_fault; ++n) {
    publish(org, published, event_channel, n);
    publish(org, published, topic_channel, n);
    std::this_thread::sleep_for(2ms);
  }
  if (how == mode::in_flight) {
    // Everything so far handled and committed: the fault hits the reply in flight only.
    REQUIRE(wait_until([&] {
      return seen.distinct(event_channel) == before_fault &&
             seen.distinct(topic_channel) == before_fault;
    }));
  } else {
    // Events received and queued for the slow handler, not yet committed.
    REQUIRE(wait_until([&] { return client->metrics().queue_depth >= 3; }, 10s));
  }
  std::map<std::string, int> subscribed_at_arm;
  {
    std::lock_guard lock{seen.mutex};
    subscribed_at_arm = seen.subscribed;
  }
  org.call([&](org_emulator& o) {
    spec.arm(o);
    return 0;
  });
  // Publish on: `after_fault` rounds at least, and on until every channel was subscribed again
  // since the fault and 5 more rounds went out (bounded: 6 s), so each channel, the -1 one
  // too, has events after its recovery that must all arrive.
  const auto arm_time = std::chrono::steady_clock::now();
  const auto resubscribed = [&] {
    std::lock_guard lock{seen.mutex};
    for (const auto& c : channels)
      if (seen.subscribed[c] <= subscribed_at_arm[c]) return false;
    return true;
  };
  int rounds_after_recovery = 0;
  for (int n = 0; n < after_fault ||
                  (rounds_after_recovery < 5 && std::chrono::steady_clock::now() - arm_time < 6s);
       ++n) {
    publish(org, published, event_channel, before_fault + n);
    publish(org, published, topic_channel, before_fault + n);
    publish(org, published, generic_channel, n);
    std::this_thread::sleep_for(5ms);
    if (resubscribed()) ++rounds_after_recovery;
  }
  const bool fired = !spec.spoils_reply || org.call([](org_emulator& o) {
    return o.cometd().pending_reply_faults();
  }) == 0;
  CHECK(fired);

  // Wait until every number arrived, or until nothing more arrives for 3 s (bounded: 20 s): a
  // pause, a backoff and a re-handshake may all lie between two deliveries on a loaded machine.
  const auto all_in = [&] {
    for (const auto& c : channels)
      if (seen.distinct(c) < published.of(c).size()) return false;
    return true;
  };
  {
    const auto limit = std::chrono::steady_clock::now() + 20s;
    auto last_change = std::chrono::steady_clock::now();
    std::size_t last_entries = seen.entries();
    while (!all_in() && std::chrono::steady_clock::now() < limit &&
           std::chrono::steady_clock::now() - last_change < 3000ms) {
      std::this_thread::sleep_for(20ms);
      if (seen.entries() != last_entries) {
        last_entries = seen.entries();
        last_change = std::chrono::steady_clock::now();
      }
    }
  }
  std::this_thread::sleep_for(200ms);  // late duplicates, if any, show up in the table

  for (const auto& c : channels) {
    CAPTURE(c);
    const auto log = seen.of(c);
    const auto v = judge(log, published.of(c));
    std::ostringstream line;
    line << spec.name << " | " << mode_name << " | " << c << " | published " << v.published
         << " | delivered " << v.delivered << " | lost " << v.lost << " (uncovered " << v.uncovered
         << ") | duplicates " << v.duplicates << " | gap records " << v.gaps << " | out of order "
         << v.out_of_order;
    std::printf("fault matrix: %s\n", line.str().c_str());
    std::fflush(stdout);
    INFO(line.str());
    CHECK(v.uncovered == 0);
    CHECK(v.out_of_order == 0);
    // A duplicate is allowed only as the restart a refused or expired position's record names.
    bool restarted = false;
    for (const auto& e : log.entries)
      if (e.gap && e.gap->cause != sfstream::gap_cause::resubscribed_at_tip) restarted = true;
    if (!restarted) CHECK(v.duplicates == 0);
    if (!log.replay_ids.empty()) {
      const auto last = log.replay_ids.back();
      CHECK(wait_until([&] { return client->committed_replay_id(c) == last; }, 3s));
    }
  }
  {
    std::lock_guard lock{seen.mutex};
    CHECK(seen.rejections.empty());
  }
  client->cancel();
  CHECK(wait_until([&] { return done.load(); }, 10s));
  handlers.join();
  io.join();
}

void run_both(const fault_spec& spec) {
  run_matrix(spec, mode::in_flight);
  run_matrix(spec, mode::uncommitted);
}

}  // namespace

// Long end-to-end cases: the doctest suite "heavy" (CTest label heavy) runs once, in the
// normal build; the sanitizer build covers the same code with the other suites.
TEST_SUITE_BEGIN("heavy");

TEST_CASE("fault matrix: a reply cut mid-body loses nothing") {
  run_both(reply_spec("reply cut mid-body", kind(reply_fault_kind::cut, 200)));
}

TEST_CASE("fault matrix: a connection reset before the reply loses nothing") {
  run_both(reply_spec("connection reset", kind(reply_fault_kind::reset)));
}

TEST_CASE("fault matrix: a long-poll deadline that fires after the server answered loses nothing") {
  run_both(
      reply_spec("deadline after the server answered", kind(reply_fault_kind::hold, 0, 2200ms)));
}

TEST_CASE("fault matrix: a reply over the body limit loses nothing") {
  run_both(reply_spec("body over the limit", kind(reply_fault_kind::oversize, 300'000)));
}

TEST_CASE("fault matrix: one malformed message in a batch loses nothing") {
  run_both(reply_spec("malformed message in a batch", kind(reply_fault_kind::malformed)));
}

TEST_CASE("fault matrix: 403 unknown client loses nothing") {
  run_both(reply_spec("403 unknown client", kind(reply_fault_kind::unknown_client)));
}

TEST_CASE("fault matrix: 401 loses nothing") {
  fault_spec spec = reply_spec("401 authentication invalid", kind(reply_fault_kind::unauthorized));
  const auto reply = spec.arm;
  spec.arm = [reply](org_emulator& o) {
    reply(o);
    o.expire_all_sessions();  // the session really is gone: the client must log in again
  };
  run_both(spec);
}

TEST_CASE("fault matrix: a cookie rotation loses nothing") {
  run_both(reply_spec("cookie rotation", kind(reply_fault_kind::rotate_affinity)));
}

TEST_CASE("fault matrix: a server /meta/disconnect loses nothing") {
  run_both(reply_spec("server /meta/disconnect", kind(reply_fault_kind::disconnect)));
}

TEST_CASE("fault matrix: a 5xx reply loses nothing") {
  run_both(reply_spec("5xx", kind(reply_fault_kind::http_503)));
}

TEST_CASE("fault matrix: too busy loses nothing") {
  run_both(reply_spec("too busy", kind(reply_fault_kind::too_busy)));
}

TEST_CASE(
    "fault matrix: an invalid replay id on re-subscribe is a gap record, never a silent loss") {
  fault_spec spec =
      reply_spec("invalid replay id on re-subscribe", kind(reply_fault_kind::unknown_client));
  const auto reply = spec.arm;
  spec.arm = [reply](org_emulator& o) {
    reply(o);
    o.inject_bayeux_fault(sfstream::emulator::fault_kind::invalid_replay_id, 3);
  };
  run_both(spec);
}

TEST_CASE("fault matrix: a back-pressure pause loses nothing") {
  fault_spec spec;
  spec.name = "back-pressure pause";
  spec.arm = [](org_emulator&) {};
  spec.configure = [](sfstream::client_config& config) { config.queue_capacity = 4; };
  spec.spoils_reply = false;
  run_matrix(spec, mode::uncommitted);
}

TEST_SUITE_END();
