// One replay store for the whole service, seen by each connection through its own key prefix
// `<connection>/`: every connection commits into the same file (one lock, one atomic write per
// save), and a restarted service finds each connection's positions under its name.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sfstream/replay_store.hpp"

namespace sfstream::serve {

/// Serialises the calls of many connections (on many threads) to one store, and groups their
/// commits: saves that arrive while one is being written are merged and written together by
/// the next writer (one write and fsync for all of them); each caller returns once its
/// positions are durable, with the result of the write that carried them.
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
  std::condition_variable written_;
  std::shared_ptr<replay_store> inner_;
  std::map<std::string, replay_position> pending_;
  bool writing_ = false;
  std::uint64_t requested_ = 0;  // saves asked for so far
  std::uint64_t flushed_ = 0;    // saves covered by a finished write
  /// The result of each recent write: the last save it covered, and its error.
  std::deque<std::pair<std::uint64_t, error_info>> results_;
};

}  // namespace sfstream::serve
