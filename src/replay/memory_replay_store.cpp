// The in-memory replay store: positions survive re-handshakes and reconnects, not restarts.
#include <mutex>

#include "sfstream/replay_store.hpp"

namespace sfstream {
namespace {

class memory_replay_store final : public replay_store {
 public:
  std::optional<replay_position> load(const std::string& replay_key) const override {
    const std::lock_guard lock(mutex_);
    const auto found = positions_.find(replay_key);
    if (found == positions_.end()) return std::nullopt;
    return found->second;
  }

  std::map<std::string, replay_position> load_all() const override {
    const std::lock_guard lock(mutex_);
    return positions_;
  }

  error_info save(const std::map<std::string, replay_position>& positions) override {
    const std::lock_guard lock(mutex_);
    for (const auto& [key, position] : positions) positions_[key] = position;
    return {};
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, replay_position> positions_;
};

}  // namespace

std::shared_ptr<replay_store> make_memory_replay_store() {
  return std::make_shared<memory_replay_store>();
}

}  // namespace sfstream
