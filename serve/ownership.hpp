// Which connections this replica of `sfstream serve` may write for, and under which lease:
// the meeting point of the lease keeper (which claims, renews and gives up leases) and the
// writers fenced by them (the PostgreSQL replay store and sink). A writer asks fence() before
// each transaction and checks it inside; one that finds it superseded reports lost(), and the
// keeper stops that connection.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "postgresql/schema.hpp"

namespace sfstream::serve {

class ownership {
 public:
  /// The lease `connection` is held by here; empty when it is not held.
  std::optional<postgresql::fence> fence(const std::string& connection) const {
    std::lock_guard lock{mutex_};
    auto it = held_.find(connection);
    if (it == held_.end()) return std::nullopt;
    return it->second;
  }
  void hold(const std::string& connection, postgresql::fence f) {
    std::lock_guard lock{mutex_};
    held_[connection] = std::move(f);
  }
  void release(const std::string& connection) {
    std::lock_guard lock{mutex_};
    held_.erase(connection);
  }
  /// A fenced write found `connection`'s lease taken: it is released here at once (no further
  /// write is attempted under it) and the keeper is told.
  void lost(const std::string& connection) {
    std::function<void(const std::string&)> tell;
    {
      std::lock_guard lock{mutex_};
      held_.erase(connection);
      tell = on_lost_;
    }
    if (tell) tell(connection);
  }
  /// Set by the keeper before any connection starts.
  void on_lost(std::function<void(const std::string&)> f) {
    std::lock_guard lock{mutex_};
    on_lost_ = std::move(f);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, postgresql::fence> held_;
  std::function<void(const std::string&)> on_lost_;
};

}  // namespace sfstream::serve
