// One file replay store for every connection of the service: prefixed views, and commits of
// many threads grouped into few writes, each durable before its save returns.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "serve/shared_store.hpp"

namespace fs = std::filesystem;
using namespace sfstream;
using namespace sfstream::serve;

namespace {

/// Counts the writes that reach the file store.
class counting_store final : public replay_store {
 public:
  explicit counting_store(std::shared_ptr<replay_store> inner) : inner_(std::move(inner)) {}
  std::optional<replay_position> load(const std::string& key) const override {
    return inner_->load(key);
  }
  std::map<std::string, replay_position> load_all() const override { return inner_->load_all(); }
  error_info save(const std::map<std::string, replay_position>& positions) override {
    ++writes;
    return inner_->save(positions);
  }
  std::atomic<int> writes{0};

 private:
  std::shared_ptr<replay_store> inner_;
};

}  // namespace

TEST_CASE("connections share one store through their prefixes, and concurrent commits are grouped") {
  const fs::path path = fs::temp_directory_path() /
                        ("sfstream-shared-store-" + std::to_string(::getpid()) + ".json");
  fs::remove(path);
  {
    auto counting = std::make_shared<counting_store>(open_file_replay_store(path));
    shared_store shared(counting);
    constexpr int connections = 8;
    constexpr int commits = 50;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int c = 0; c < connections; ++c) {
      threads.emplace_back([&, c] {
        auto view = shared.view("c" + std::to_string(c));
        for (int i = 1; i <= commits; ++i) {
          if (view->save({{"/event/E__e", {i, std::chrono::system_clock::now(), {}}}})) ++failures;
          // Durable when save returns: the view reads it back.
          const auto back = view->load("/event/E__e");
          if (!back || back->replay_id < i) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(failures == 0);
    CHECK(counting->writes <= connections * commits);
    MESSAGE("writes: " << counting->writes.load() << " for " << connections * commits
                       << " commits");
    auto one = shared.view("c3");
    REQUIRE(one->load_all().size() == 1);
    CHECK(one->load_all().begin()->first == "/event/E__e");
    CHECK(shared.load_all().size() == connections);
    CHECK(shared.load("c3//event/E__e")->replay_id == commits);
  }
  // A new process finds every connection's position under its name.
  auto reopened = open_file_replay_store(path);
  const auto all = reopened->load_all();
  CHECK(all.size() == 8);
  for (const auto& [key, position] : all) CHECK(position.replay_id == 50);
  fs::remove(path);
}
