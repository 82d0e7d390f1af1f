// Helpers of the emulator tests that run the real streaming client: a SOAP-login configuration
// for any org of an emulator (logging in at the primary org's login URL), and a thread-safe
// record of the events one subscription received.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/replay_store.hpp"
#include "support/emulator_fixture.hpp"

namespace emulator_test {

/// A client of `org`'s first user that logs in at `fixture`'s (primary) login URL.
inline sfstream::client_config login_config(sfstream::testing::emulator_fixture& fixture,
                                            sfstream::emulator::org_emulator& org,
                                            sfstream::testing::io_thread& io,
                                            std::shared_ptr<sfstream::replay_store> store = {}) {
  const auto& user = org.options().users.front();
  sfstream::soap_login_options login;
  login.login_url = fixture.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = fixture.org().ca_file();
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
  config.network = net;
  if (store) config.store = std::move(store);
  return config;
}

/// The events one subscription received: their JSON and replay ids, in order.
struct received_events {
  std::mutex mutex;
  std::vector<std::string> bodies;
  std::vector<std::int64_t> ids;

  sfstream::subscription_callbacks callbacks() {
    sfstream::subscription_callbacks c;
    c.on_event = [this](const sfstream::event& e) {
      std::lock_guard lock{mutex};
      bodies.emplace_back(e.json());
      ids.push_back(e.replay_id().value_or(-100));
    };
    return c;
  }
  std::size_t size() {
    std::lock_guard lock{mutex};
    return bodies.size();
  }
  /// Events whose JSON contains `text`.
  std::size_t count(const std::string& text) {
    std::lock_guard lock{mutex};
    std::size_t n = 0;
    for (const auto& b : bodies) n += b.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  /// The Body__c value of each event (platform events with a Body__c field).
  std::vector<std::string> body_fields() {
    std::lock_guard lock{mutex};
    std::vector<std::string> out;
    for (const auto& json : bodies) {
      const auto at = json.find("\"Body__c\":\"");
      out.push_back(at == std::string::npos ? json
                                            : json.substr(at + 11, json.find('"', at + 11) - at - 11));
    }
    return out;
  }
};

}  // namespace emulator_test
