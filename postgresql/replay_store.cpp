#include "postgresql/replay_store.hpp"

#include "sfstream/postgresql.hpp"

namespace sfstream::postgresql {

namespace {

class store final : public replay_store {
 public:
  store(std::shared_ptr<pool> p, tables t, std::string scope, fence_source current)
      : pool_(std::move(p)), tables_(std::move(t)), scope_(std::move(scope)),
        current_(std::move(current)) {}

  std::optional<replay_position> load(const std::string& replay_key) const override {
    auto all = load_all();
    auto it = all.find(replay_key);
    if (it == all.end()) return std::nullopt;
    return it->second;
  }

  std::map<std::string, replay_position> load_all() const override {
    std::map<std::string, replay_position> out;
    if (auto e = pool_->run([&](session& s) { return read_positions(s, tables_, scope_, out); }))
      throw error(e);
    return out;
  }

  error_info save(const std::map<std::string, replay_position>& positions) override {
    if (positions.empty()) return {};
    std::optional<fence> f;
    if (current_) {
      f = current_();
      if (!f) {
        error_info e;
        e.code = make_error_code(errc::lease_lost);
        e.diag.context = "writing the positions of " + scope_;
        e.diag.server_text = "this replica does not hold the connection's lease";
        return e;
      }
    }
    return pool_->run([&](session& s) {
      return s.transaction([&]() -> error_info {
        if (f)
          if (auto e = check_fence(s, tables_, scope_, *f)) return e;
        return write_positions(s, tables_, scope_, positions,
                               f ? std::optional<std::int64_t>(f->epoch) : std::nullopt);
      });
    });
  }

 private:
  std::shared_ptr<pool> pool_;
  tables tables_;
  std::string scope_;
  fence_source current_;
};

}  // namespace

std::shared_ptr<replay_store> make_replay_store(std::shared_ptr<pool> p, tables t,
                                                std::string scope, fence_source current) {
  return std::make_shared<store>(std::move(p), std::move(t), std::move(scope), std::move(current));
}

}  // namespace sfstream::postgresql

namespace sfstream {

std::shared_ptr<replay_store> open_postgresql_replay_store(const postgresql_store_options& options) {
  postgresql::connect_options c;
  c.conninfo = options.conninfo;
  c.password = options.password;
  c.connect_timeout = options.connect_timeout;
  auto p = std::make_shared<postgresql::pool>(c, 1);
  postgresql::tables t(options.schema);
  if (auto e = p->run([&](postgresql::session& s) { return postgresql::migrate(s, t); }))
    throw error(e);
  return postgresql::make_replay_store(std::move(p), std::move(t), options.scope);
}

}  // namespace sfstream
