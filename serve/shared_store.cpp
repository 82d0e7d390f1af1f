#include "serve/shared_store.hpp"

namespace sfstream::serve {

namespace {

class prefixed_store final : public replay_store {
 public:
  prefixed_store(shared_store& shared, std::string prefix)
      : shared_(shared), prefix_(std::move(prefix)) {}

  std::optional<replay_position> load(const std::string& key) const override {
    return shared_.load(prefix_ + key);
  }
  std::map<std::string, replay_position> load_all() const override {
    std::map<std::string, replay_position> out;
    for (auto& [key, position] : shared_.load_all()) {
      if (key.starts_with(prefix_)) out.emplace(key.substr(prefix_.size()), std::move(position));
    }
    return out;
  }
  error_info save(const std::map<std::string, replay_position>& positions) override {
    std::map<std::string, replay_position> prefixed;
    for (const auto& [key, position] : positions) prefixed.emplace(prefix_ + key, position);
    return shared_.save(prefixed);
  }

 private:
  shared_store& shared_;
  std::string prefix_;
};

}  // namespace

std::shared_ptr<replay_store> shared_store::view(const std::string& name) {
  return std::make_shared<prefixed_store>(*this, name + "/");
}

std::optional<replay_position> shared_store::load(const std::string& key) const {
  std::lock_guard lock{mutex_};
  return inner_->load(key);
}

std::map<std::string, replay_position> shared_store::load_all() const {
  std::lock_guard lock{mutex_};
  return inner_->load_all();
}

error_info shared_store::save(const std::map<std::string, replay_position>& positions) {
  std::unique_lock lock{mutex_};
  for (const auto& [key, position] : positions) pending_[key] = position;
  const std::uint64_t mine = ++requested_;
  written_.wait(lock, [&] { return flushed_ >= mine || !writing_; });
  if (flushed_ < mine) {
    // This caller writes everything pending, its own positions and those that came meanwhile.
    writing_ = true;
    auto batch = std::move(pending_);
    pending_.clear();
    const std::uint64_t upto = requested_;
    lock.unlock();
    error_info why = inner_->save(batch);
    lock.lock();
    writing_ = false;
    flushed_ = upto;
    results_.emplace_back(upto, why);
    while (results_.size() > 64) results_.pop_front();
    written_.notify_all();
    return why;
  }
  for (const auto& [upto, why] : results_) {
    if (upto >= mine) return why;
  }
  return {};
}

}  // namespace sfstream::serve
