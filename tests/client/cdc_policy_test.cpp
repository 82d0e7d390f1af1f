// A Change Data Capture reconciliation that fails is a failed handler: the client does not
// commit its gap event and the handler failure policy decides what follows.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/cdc.hpp"
#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using sfstream::emulator::data::gap_type;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;

const std::string channel = "/data/AccountChangeEvent";

}  // namespace

TEST_CASE(
    "a gap whose reconciliation fails ends the run with handler_failed and stays uncommitted") {
  auto options = emulator_fixture::default_options();
  options.daily_event_limit = 0;
  emulator_fixture org{options};
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();

  std::mutex mutex;
  std::vector<std::string> steps;
  std::vector<std::int64_t> ids;
  std::atomic<bool> subscribed{false};
  std::atomic<bool> done{false};
  std::error_code result;
  {
    // Handlers on their own thread: reconciliation blocks its handler while REST runs on `io`.
    io_thread io;
    io_thread handlers;
    sfstream::client_config config;
    config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
    config.network = net;
    config.jitter_seed = 7;
    sfstream::client client{io.executor(), handlers.executor(), config};

    sfstream::cdc_handler h;
    h.on_create = [&](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      steps.push_back("create");
      ids.push_back(e.replay_id.value_or(-100));
    };
    h.on_gap = [&](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      steps.push_back("gap");
      ids.push_back(e.replay_id.value_or(-100));
    };
    h.on_invalid = [&](const sfstream::event&, const sfstream::error_info& why) {
      std::lock_guard lock{mutex};
      steps.push_back("invalid " + why.diag.server_code);
    };
    h.on_subscribed = [&](std::int64_t) { subscribed = true; };
    sfstream::cdc_options o;
    o.rest.credentials = config.credentials;
    o.rest.network = net;
    o.fields["Account"] = {"Name", "NoSuchField__c"};  // the query fails with INVALID_FIELD
    o.max_attempts = 1;
    REQUIRE_FALSE(client.subscribe(channel, sfstream::replay_new, sfstream::cdc_callbacks(h, o)));
    client.async_run([&](std::error_code ec) {
      result = ec;
      done = true;
    });
    REQUIRE(wait_until([&] { return subscribed.load(); }));
    auto created = org.call(
        [](org_emulator& e) { return e.rest().create_record("Account", R"({"Name":"G0"})"); });
    REQUIRE(static_cast<bool>(created));
    REQUIRE(wait_until([&] {
      std::lock_guard lock{mutex};
      return !ids.empty();
    }));
    const std::int64_t create_id = ids.front();
    REQUIRE(wait_until([&] { return client.committed_replay_id(channel) == create_id; }));
    auto gapped = org.call([&](org_emulator& e) {
      return e.rest().emit_gap_events("Account", {created.id}, gap_type::gap_update);
    });
    REQUIRE(static_cast<bool>(gapped));
    REQUIRE(wait_until([&] { return done.load(); }, 20s));
    CHECK(result == sfstream::errc::handler_failed);
    CHECK(client.committed_replay_id(channel) == create_id);
    CHECK(client.last_error().diag.server_text.find("INVALID_FIELD") != std::string::npos);
    std::lock_guard lock{mutex};
    CHECK(steps == std::vector<std::string>{"create", "gap", "invalid INVALID_FIELD"});
  }
}
