// Helpers of the client tests that run handlers against the org emulator: a SOAP-login client
// configuration, a PushTopic on Account, Accounts created in bulk, a record of handler calls, a
// replay store that records (and can fail) its saves, temporary paths.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "sfstream/client.hpp"
#include "sfstream/connector.hpp"
#include "sfstream/credentials.hpp"
#include "support/emulator_fixture.hpp"

namespace sfstream::testing {

inline const std::string topic = "/topic/AccountUpdates";

inline sfstream::client_config soap_config(emulator_fixture& org, io_thread& io) {
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::network_options net;
  net.ca_file = org.org().ca_file();
  sfstream::client_config config;
  config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
  config.network = net;
  config.jitter_seed = 7;
  return config;
}

inline void create_topic(emulator_fixture& org) {
  auto result = org.call([&](sfstream::emulator::org_emulator& o) {
    sfstream::emulator::data::pushtopic_spec spec;
    spec.name = "AccountUpdates";
    spec.query = "SELECT Id, Name FROM Account";
    return o.rest().create_pushtopic(spec);
  });
  REQUIRE(static_cast<bool>(result));
}

/// Creates Accounts named prefix+from … prefix+(to-1) in one go on the emulator's thread.
inline void create_accounts(emulator_fixture& org, const std::string& prefix, int from, int to) {
  org.call([&](sfstream::emulator::org_emulator& o) {
    for (int i = from; i < to; ++i) {
      o.rest().create_record("Account", "{\"Name\":\"" + prefix + std::to_string(i) + "\"}");
    }
    return 0;
  });
}

inline std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

/// The Account name a PushTopic event carries.
inline std::string name_of(const sfstream::event& e) {
  const auto p = e.as_pushtopic();
  auto at = p.sobject_json.find("\"Name\":\"");
  if (at == std::string::npos) return {};
  at += 8;
  return p.sobject_json.substr(at, p.sobject_json.find('"', at) - at);
}

/// Every handler call in order (a retried event appears once per call), thread-safe.
struct calls {
  mutable std::mutex mutex;
  std::vector<sfstream::event> events;
  std::atomic<bool> subscribed{false};

  void add(const sfstream::event& e) {
    std::lock_guard lock{mutex};
    events.push_back(e);
  }
  std::vector<std::string> names() const {
    std::lock_guard lock{mutex};
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(name_of(e));
    return out;
  }
  std::size_t size() const {
    std::lock_guard lock{mutex};
    return events.size();
  }
  /// The replay id of the first call for `name`.
  std::int64_t id_of(const std::string& name) const {
    std::lock_guard lock{mutex};
    for (const auto& e : events) {
      if (name_of(e) == name) return e.replay_id().value_or(-100);
    }
    return -100;
  }
  /// The event of the first call for `name`.
  sfstream::event event_of(const std::string& name) const {
    std::lock_guard lock{mutex};
    for (const auto& e : events) {
      if (name_of(e) == name) return e;
    }
    return {};
  }
};

/// A memory store that records every save and fails each save after the first `good` ones.
class recording_store : public sfstream::replay_store {
 public:
  explicit recording_store(int good = 1'000'000) : good_(good) {}

  std::optional<sfstream::replay_position> load(const std::string& key) const override {
    std::lock_guard lock{mutex_};
    auto it = stored_.find(key);
    if (it == stored_.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, sfstream::replay_position> load_all() const override {
    std::lock_guard lock{mutex_};
    return stored_;
  }
  sfstream::error_info save(
      const std::map<std::string, sfstream::replay_position>& positions) override {
    std::lock_guard lock{mutex_};
    ++attempts_;
    if (good_ <= 0) {
      return {sfstream::errc::replay_store_io, {"", "disk full", "saving the test store"}};
    }
    --good_;
    for (const auto& [key, p] : positions) {
      stored_[key] = p;
      saved_ids_.push_back(p.replay_id);
    }
    return {};
  }
  /// Every id saved, in order.
  std::vector<std::int64_t> saved_ids() const {
    std::lock_guard lock{mutex_};
    return saved_ids_;
  }
  int attempts() const {
    std::lock_guard lock{mutex_};
    return attempts_;
  }

 private:
  mutable std::mutex mutex_;
  int good_;
  int attempts_ = 0;
  std::map<std::string, sfstream::replay_position> stored_;
  std::vector<std::int64_t> saved_ids_;
};

/// A fresh path in the temporary directory, removed on destruction.
struct temp_path {
  std::filesystem::path path;
  explicit temp_path(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("sfstream-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove(path);
  }
  ~temp_path() { std::filesystem::remove(path); }
};

inline std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace sfstream::testing
