// One replay store for the whole service, seen by each connection through its own key prefix
// `<connection>/`: every connection commits into the same file (one lock, one atomic write per
// save), and a restarted service finds each connection's positions under its name.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "sfstream/replay_store.hpp"

namespace sfstream::serve {

/// Serialises the calls of many connections (on many threads) to one store.
class shared_store {
 public:
  explicit shared_store(std::shared_ptr<replay_store> inner) : inner_(std::move(inner)) {}

  /// The view of connection `name`: keys without the prefix, as the client uses them.
  std::shared_ptr<replay_store> view(const std::string& name);

  std::optional<replay_position> load(const std::string& key) const;
  std::map<std::string, replay_position> load_all() const;
  error_info save(const std::map<std::string, replay_position>& positions);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<replay_store> inner_;
};

}  // namespace sfstream::serve
